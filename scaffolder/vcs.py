"""Commit: write a generated project atomically and commit it, with provenance trailers.

The files are written into a staging folder next to the destination, committed there, and the folder is
renamed into place in one step: an interrupted or failed `scaffold new` leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scaffolder.errors import MissingToolError, OutputError

if TYPE_CHECKING:
    from scaffolder.generator import GeneratorRecord

GENERATED_BRANCH = "scaffold/generated"  # pristine generations; the user's branch merges them (`scaffold regen`)
# Used only when git has no identity configured, so that a fresh machine can still commit.
FALLBACK_IDENTITY = {"name": "scaffolder", "email": "scaffolder@localhost"}


def check_destination(output: Path) -> None:
    """Refuse an existing file or a non-empty folder before any work is done."""
    if output.is_file() or output.is_symlink():
        raise OutputError(f"{output} exists and is a file; choose another --output")
    if output.is_dir() and any(output.iterdir()):
        raise OutputError(f"{output} exists and is not empty; choose another --output or remove it")


def write_project(files: dict[str, str], output: Path, message: str) -> str:
    """Write `files` to `output` as a new git repository with one commit; returns the commit sha."""
    if shutil.which("git") is None:
        raise MissingToolError("git is not installed; install git (e.g. `apt install git`) and run again")
    check_destination(output)
    with _created_parents(output.parent):
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
        try:
            for relative, text in files.items():
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            sha = _init_and_commit(staging, message)
            if output.is_dir():
                output.rmdir()  # empty (checked above); rename needs the name free
            os.rename(staging, output)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return sha


@contextmanager
def _created_parents(parent: Path) -> Iterator[None]:
    """Create missing parent folders, and remove the ones created here if the block fails."""
    missing = []
    for folder in [parent, *parent.parents]:
        if folder.exists():
            break
        missing.append(folder)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {parent} ({exc.strerror}); choose another --output") from None
    try:
        yield
    except BaseException:
        for folder in missing:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _init_and_commit(path: Path, message: str) -> str:
    # Plain git processes: a fresh repository needs nothing GitPython offers, and importing it costs more than
    # the commands themselves.
    _git(path, "init", "--quiet")
    _git(path, "add", "--all")
    _git(path, "commit", "--quiet", "--no-verify", "-m", message, env=_identity(path))
    _git(path, "branch", GENERATED_BRANCH)
    return _git(path, "rev-parse", "HEAD").strip()


def _git(path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode:
        raise OutputError(f"git {args[0]} failed in {path}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def _identity(path: Path) -> dict[str, str]:
    """Nothing when git knows who the user is (their commits are theirs), else scaffolder's identity."""
    for role in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        if subprocess.run(["git", "var", role], cwd=path, capture_output=True).returncode:
            name, email = FALLBACK_IDENTITY["name"], FALLBACK_IDENTITY["email"]
            return {
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email,
            }
    return {}


def commit_trailers(version: str, spec_hash: str, generator: GeneratorRecord) -> str:
    """Provenance: scaffolder's version, the spec's hash, and how the files were generated (model, endpoint
    host, prompt hash, rounds, fallback for the LLM path)."""
    trailers = {"Scaffolder-Version": version, "Scaffolder-Spec-Hash": spec_hash}
    trailers |= {"Scaffolder-Generator": generator.name, **generator.trailers()}
    return "\n".join(f"{key}: {' '.join(value.split())}" for key, value in trailers.items())


TEXT_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".md", ".txt", ".cfg", ".json")


def project_files(project: Path) -> dict[str, str]:
    """The project's text files that git tracks or would track (ignored outputs and caches left out)."""
    import git

    try:
        repo = git.Repo(project)
        listed = repo.git.ls_files("--cached", "--others", "--exclude-standard").splitlines()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise OutputError(f"{project} is not a git repository made by `scaffold new`; run this in a project") from None
    files = {}
    for relative in listed:
        path = project / relative
        if relative.endswith(TEXT_SUFFIXES) and path.is_file():
            files[relative] = path.read_text(encoding="utf-8", errors="replace")
    return files


def dirty_files(project: Path) -> list[str]:
    """Modified, staged or untracked (not ignored) paths."""
    import git

    return [line[3:] for line in git.Repo(project).git.status("--porcelain").splitlines()]


def require_clean(project: Path, then: str) -> None:
    """Refuse to go on over uncommitted work: the command would mix it into its own commit or merge."""
    dirty = dirty_files(project)
    if dirty:
        shown = ", ".join(dirty[:3]) + (", …" if len(dirty) > 3 else "")
        raise OutputError(f"{project} has uncommitted changes ({shown}); commit or stash them, then {then}")


def commit_changes(project: Path, files: dict[str, str], message: str) -> str:
    """Write `files` (relative path -> text) into the project and commit exactly them."""
    import git

    repo = git.Repo(project)
    for relative, text in files.items():
        (project / relative).write_text(text, encoding="utf-8")
    repo.git.add("--", *files)
    repo.git.commit("--quiet", "--no-verify", "-m", message, env=_identity(project))
    return repo.head.commit.hexsha


def commit_tree(project: Path, files: dict[str, str], parent: str, message: str) -> str:
    """A commit holding exactly `files`, child of `parent`, made without touching the work tree or the index.

    It is referenced by nothing until a branch is moved to it, so an interrupted run leaves no trace.
    """
    import git

    repo = git.Repo(project)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        paths = sorted(files)
        sources = []
        for number, relative in enumerate(paths):
            source = Path(tmp) / f"blob-{number}"
            source.write_text(files[relative], encoding="utf-8")
            sources.append(str(source))
        blobs = repo.git.hash_object("-w", *sources).splitlines()
        index_info = "".join(f"100644 {blob}\t{path}\n" for blob, path in zip(blobs, paths, strict=True))
        (Path(tmp) / "index-info").write_text(index_info, encoding="utf-8")
        with (Path(tmp) / "index-info").open("rb") as stdin:
            repo.git.update_index("--index-info", istream=stdin, env=env)
        tree = repo.git.write_tree(env=env)
    return repo.git.commit_tree(tree, "-p", parent, "-m", message, env=_identity(project))


def tree_of(project: Path, rev: str) -> str:
    import git

    return git.Repo(project).git.rev_parse(f"{rev}^{{tree}}")


def rev(project: Path, name: str) -> str:
    import git

    return git.Repo(project).git.rev_parse("--verify", name)


def is_ancestor(project: Path, ancestor: str, descendant: str) -> bool:
    import git

    try:
        git.Repo(project).git.merge_base("--is-ancestor", ancestor, descendant)
        return True
    except git.GitCommandError:
        return False


def move_branch(project: Path, branch: str, new: str, old: str) -> None:
    """Point `branch` at `new` only if it still points at `old` (git's own compare-and-swap)."""
    import git

    git.Repo(project).git.update_ref(f"refs/heads/{branch}", new, old)


def merge(project: Path, commit: str, message: str) -> list[str]:
    """Three-way merge `commit` into the current branch; the conflicted paths ([] when it merged and committed)."""
    import git

    repo = git.Repo(project)
    try:
        repo.git.merge("--no-ff", "--no-edit", "-m", message, commit, env=_identity(project))
        return []
    except git.GitCommandError:
        conflicted = repo.git.diff("--name-only", "--diff-filter=U").splitlines()
        if not conflicted:
            raise
        return conflicted


def reset_hard(project: Path, commit: str) -> None:
    import git

    git.Repo(project).git.reset("--hard", "--quiet", commit)


def files_at(project: Path, rev: str) -> dict[str, str]:
    """Every file of a commit as text, exactly as committed (a generation's pristine tree)."""
    import git

    tree = git.Repo(project).commit(rev).tree
    return {
        str(blob.path): blob.data_stream.read().decode("utf-8", errors="replace")  # type: ignore[union-attr]
        for blob in tree.traverse()
        if blob.type == "blob"  # type: ignore[union-attr]
    }


def merge_text(ours: str, base: str, theirs: str) -> str | None:
    """git's three-way merge of one file's texts; None when the two sides' changes overlap."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / name for name in ("ours", "base", "theirs")]
        for path, text in zip(paths, (ours, base, theirs), strict=True):
            path.write_text(text, encoding="utf-8")
        merged = subprocess.run(["git", "merge-file", "-p", "--quiet", *map(str, paths)], capture_output=True)
    return merged.stdout.decode("utf-8") if merged.returncode == 0 else None


def file_at(project: Path, rev: str, path: str) -> str:
    import git

    return git.Repo(project).git.show(f"{rev}:{path}")


def add_note(project: Path, commit: str, text: str) -> None:
    """Attach a note (refs/notes/scaffold) to a commit: smoke results that `scaffold log` shows."""
    import git

    git.Repo(project).git.notes("--ref=scaffold", "add", "-f", "-m", text, commit)


def note_of(project: Path, commit: str) -> str | None:
    import git

    try:
        return git.Repo(project).git.notes("--ref=scaffold", "show", commit)
    except git.GitCommandError:
        return None


def diff(project: Path, old: str, new: str) -> str:
    import git

    return git.Repo(project).git.diff(old, new)
