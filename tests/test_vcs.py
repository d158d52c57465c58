from pathlib import Path

import git
import pytest

from scaffolder import vcs
from scaffolder.errors import OutputError


def test_project_is_committed_with_message_and_pristine_branch(tmp_path: Path) -> None:
    sha = vcs.write_project({"a.py": "x = 1\n", "tests/b.py": ""}, tmp_path / "p", "Generate\n\nKey: value")
    repo = git.Repo(tmp_path / "p")
    assert repo.head.commit.hexsha == sha
    assert repo.head.commit.message.strip() == "Generate\n\nKey: value"
    assert repo.head.commit.author.email == "test@example.com"
    assert sorted(repo.git.ls_files().splitlines()) == ["a.py", "tests/b.py"]
    assert repo.commit(vcs.GENERATED_BRANCH).hexsha == sha


def test_a_failure_mid_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(path: Path, message: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(vcs, "_init_and_commit", fail)
    with pytest.raises(KeyboardInterrupt):
        vcs.write_project({"a.py": "x = 1\n"}, tmp_path / "new" / "deeper" / "p", "m")
    assert list(tmp_path.iterdir()) == []


def test_commits_without_any_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    vcs.write_project({"a.py": ""}, tmp_path / "p", "m")
    assert git.Repo(tmp_path / "p").head.commit.author.email == vcs.FALLBACK_IDENTITY["email"]


def test_existing_file_or_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="exists and is a file"):
        vcs.write_project({}, tmp_path / "file", "m")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(OutputError, match="exists and is not empty"):
        vcs.write_project({}, tmp_path / "full", "m")
