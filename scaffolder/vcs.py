"""Commit: write a generated project atomically and commit it (its message from scaffolder.provenance).

The files are written into a staging folder next to the destination, committed there, and the folder is
renamed into place in one step: an interrupted or failed `scaffold new` leaves nothing behind.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scaffolder.errors import MissingToolError, OutputError
from scaffolder.lock import Lock, pid_alive, project_lock

if TYPE_CHECKING:
    import git

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
    require_git()
    check_destination(output)
    with _created_parents(output.parent):
        _remove_dead_staging(output)
        try:
            staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(output, os.getpid()), dir=output.parent))
        except OSError as exc:
            raise OutputError(f"cannot write in {output.parent} ({exc.strerror}); choose another --output") from None
        try:
            for relative, text in files.items():
                path = staging / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            sha = _init_and_commit(staging, message)
            if output.is_dir():
                output.rmdir()  # empty (checked above); rename needs the name free
            os.rename(staging, output)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise OutputError(f"cannot write {output} ({exc.strerror}); choose another --output") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return sha


def _staging_prefix(output: Path, pid: int) -> str:
    """Staging folders carry their owner's pid, so that what a killed run left can be told from a live one's."""
    return f".{output.name}.scaffold-{pid}-"


def _remove_dead_staging(output: Path) -> None:
    """A SIGKILL leaves no chance to clean up: the next run removes staging folders whose process is gone."""
    for folder in output.parent.glob(f".{glob.escape(output.name)}.scaffold-*-*"):
        pid = folder.name[len(f".{output.name}.scaffold-") :].partition("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


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


def require_git() -> None:
    """git on PATH, before GitPython is imported (its import fails without one)."""
    if shutil.which("git") is None:
        raise MissingToolError("git is not installed; install git (e.g. `apt install git`) and run again")


def git_dir(project: Path) -> Path:
    """The project repository's own folder, shared by its worktrees: where scaffolder's lock and regen record
    live. The project must be the top of a repository (not a folder inside another one)."""
    require_git()
    try:
        done = subprocess.run(["git", "rev-parse", "--show-toplevel", "--git-common-dir"], cwd=project,
                              capture_output=True, text=True)  # fmt: skip
    except OSError:  # the folder does not exist
        done = None
    lines = done.stdout.splitlines() if done and done.returncode == 0 else []
    if len(lines) != 2 or Path(lines[0]).resolve() != project.resolve():
        raise OutputError(f"{project} is not a git repository made by `scaffold new`; run this in a project")
    return (project / lines[1]).resolve()


@contextmanager
def locked(project: Path) -> Iterator[Lock]:
    """One scaffold command at a time per project (scaffolder.lock)."""
    with project_lock(project, git_dir(project)) as lock:
        yield lock


def git_path(project: Path, name: str) -> Path:
    """A file of git's own for the checked-out worktree (`MERGE_HEAD`, `index.lock`)."""
    return (project / open_repo(project).git.rev_parse("--git-path", name)).resolve()


def open_repo(project: Path) -> git.Repo:
    """The project's repository; every command GitPython runs in it commits with `_identity`'s fallback."""
    require_git()
    import git

    try:
        repo = git.Repo(project)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise OutputError(f"{project} is not a git repository made by `scaffold new`; run this in a project") from None
    repo.git.update_environment(**_identity(project))
    return repo


def _identity(path: Path) -> dict[str, str]:
    """Nothing when git knows who the user is (their commits are theirs), else scaffolder's identity."""
    settings = tuple(os.environ.get(name) for name in _IDENTITY_SETTINGS)
    return _identity_for(str(path), settings)


# What decides git's identity besides the repository's own config; a change to any of them asks git again.
_IDENTITY_SETTINGS = ("HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                      "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL")  # fmt: skip


@functools.cache
def _identity_for(path: str, settings: tuple[str | None, ...]) -> dict[str, str]:
    # Two `git var` processes per call would double the cost of a regen, which opens the repository often.
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


TEXT_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".md", ".txt", ".cfg", ".json")


def project_files(project: Path) -> dict[str, str]:
    """The project's text files that git tracks or would track (ignored outputs and caches left out)."""
    listed = open_repo(project).git.ls_files("--cached", "--others", "--exclude-standard").splitlines()
    files = {}
    for relative in listed:
        path = project / relative
        if relative.endswith(TEXT_SUFFIXES) and path.is_file():
            files[relative] = path.read_text(encoding="utf-8", errors="replace")
    return files


def dirty_files(project: Path) -> list[str]:
    """Modified, staged or untracked (not ignored) paths."""
    return [line[3:] for line in open_repo(project).git.status("--porcelain").splitlines()]


def require_clean(project: Path, then: str) -> None:
    """Refuse to go on over uncommitted work: the command would mix it into its own commit or merge."""
    dirty = dirty_files(project)
    if dirty:
        shown = ", ".join(dirty[:3]) + (", …" if len(dirty) > 3 else "")
        raise OutputError(f"{project} has uncommitted changes ({shown}); commit or stash them, then {then}")


def commit_changes(project: Path, files: dict[str, str], message: str) -> str:
    """Write `files` (relative path -> text) into the project and commit exactly them."""
    repo = open_repo(project)
    for relative, text in files.items():
        (project / relative).write_text(text, encoding="utf-8")
    repo.git.add("--", *files)
    repo.git.commit("--quiet", "--no-verify", "-m", message)
    return repo.head.commit.hexsha


def commit_tree(project: Path, files: dict[str, str], parent: str, message: str) -> str:
    """A commit holding exactly `files`, child of `parent`, made without touching the work tree or the index.

    It is referenced by nothing until a branch is moved to it, so an interrupted run leaves no trace.
    """
    repo = open_repo(project)
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
    return repo.git.commit_tree(tree, "-p", parent, "-m", message)


def tree_of(project: Path, rev: str) -> str:
    return open_repo(project).git.rev_parse(f"{rev}^{{tree}}")


def rev(project: Path, name: str) -> str:
    return open_repo(project).git.rev_parse("--verify", name)


def rev_or_none(project: Path, name: str) -> str | None:
    import git

    try:
        return open_repo(project).git.rev_parse("--verify", "--quiet", f"{name}^{{commit}}")
    except git.GitCommandError:
        return None


def current_branch(project: Path) -> str | None:
    """The checked-out branch as a full ref (`refs/heads/main`); None when HEAD is detached."""
    import git

    try:
        return open_repo(project).git.symbolic_ref("--quiet", "HEAD")
    except git.GitCommandError:
        return None


def merge_base(project: Path, one: str, other: str) -> str | None:
    """The best common ancestor; None when the two histories share no commit."""
    import git

    try:
        return open_repo(project).git.merge_base(one, other)
    except git.GitCommandError:
        return None


def commit_info(project: Path, rev: str) -> tuple[list[str], str]:
    """A commit's parents and its whole message."""
    shown = open_repo(project).git.show("--no-patch", "--format=%P%n%B", rev)
    parents, _, message = shown.partition("\n")
    return parents.split(), message.strip()


def messages_between(project: Path, start: str, end: str) -> list[str]:
    """The whole messages of the commits reachable from `end` and not from `start`."""
    return [text.strip() for text in open_repo(project).git.log("--format=%B%x00", f"{start}..{end}").split("\0")]


def branches(project: Path) -> dict[str, str]:
    """Every local branch (full ref) and its commit."""
    listed = open_repo(project).git.for_each_ref("--format=%(refname) %(objectname)", "refs/heads").splitlines()
    return dict(line.split(" ", 1) for line in listed)


def is_ancestor(project: Path, ancestor: str, descendant: str) -> bool:
    import git

    try:
        open_repo(project).git.merge_base("--is-ancestor", ancestor, descendant)
        return True
    except git.GitCommandError:
        return False


def move_branch(project: Path, branch: str, new: str, old: str) -> None:
    """Point `branch` at `new` only if it still points at `old` (git's own compare-and-swap)."""
    open_repo(project).git.update_ref(f"refs/heads/{branch}", new, old)


def merge(project: Path, commit: str, message: str) -> list[str]:
    """Three-way merge `commit` into the current branch; the conflicted paths ([] when it merged and committed)."""
    import git

    repo = open_repo(project)
    try:
        # Nothing on a pipe of ours: were scaffolder killed mid-merge, git writing its report to the closed pipe
        # would die of SIGPIPE after its merge commit, before removing MERGE_HEAD. Quiet, it finishes alone.
        repo.git.merge("--quiet", "--no-ff", "--no-edit", "-m", message, commit, with_stdout=False)
        return []
    except git.GitCommandError:
        conflicted = repo.git.diff("--name-only", "--diff-filter=U").splitlines()
        if not conflicted:
            raise
        return conflicted


def forget_merge(project: Path) -> None:
    """Drop git's merge state (MERGE_HEAD, MERGE_MSG) and leave the index and the work tree as they are."""
    open_repo(project).git.merge("--quit")


def reset_hard(project: Path, commit: str) -> None:
    open_repo(project).git.reset("--hard", "--quiet", commit)


def files_at(project: Path, rev: str) -> dict[str, str]:
    """Every file of a commit as text, exactly as committed (a generation's pristine tree)."""
    tree = open_repo(project).commit(rev).tree
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
    return open_repo(project).git.show(f"{rev}:{path}")


def add_note(project: Path, commit: str, text: str) -> None:
    """Attach a note (refs/notes/scaffold) to a commit: smoke results that `scaffold log` shows."""
    open_repo(project).git.notes("--ref=scaffold", "add", "-f", "-m", text, commit)


def note_of(project: Path, commit: str) -> str | None:
    import git

    try:
        return open_repo(project).git.notes("--ref=scaffold", "show", commit)
    except git.GitCommandError:
        return None


def diff(project: Path, old: str, new: str) -> str:
    return open_repo(project).git.diff(old, new)
