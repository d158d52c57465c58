"""What regen and the other project commands do when history, the environment or another process works against
them: nothing of the user's is lost, and every refusal is one line with its exit code and the way forward."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from test_regen import regen, snapshot

from conftest import DATA, commit_all, edit, run_cli
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec, from_toml
from scaffolder.vcs import locked

JOURNAL = ".git/scaffold-regen.json"


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The error is one line, the last; a warning before it (a lock taken over) may stand on its own line."""
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith("error: "), result.stderr
    assert all(line.startswith("! ") for line in lines[:-1]), result.stderr
    return lines[-1]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


# --- the three ways to lose commits -------------------------------------------------------------


def test_an_amended_first_commit_is_refused_up_front_and_the_way_forward_works(project: Path) -> None:
    repo = git.Repo(project)
    repo.git.commit("--amend", "-qm", "my own first commit")
    before = snapshot(project)
    error = one_line_error(regen(project, "--set", "num_epochs=5"), 2)
    assert "shares no history with scaffold/generated" in error and "nothing was changed" in error
    assert snapshot(project) == before  # no journal, no ref moved, not a byte changed
    repo.git.merge("-q", "-s", "ours", "--allow-unrelated-histories", "-m", "reconnect", "scaffold/generated")
    amended = repo.head.commit.parents[0].hexsha
    assert regen(project, "--set", "num_epochs=5").returncode == 0
    assert "num_epochs: 5" in (project / "config.yaml").read_text()
    assert repo.is_ancestor(amended, repo.head.commit)


def test_commits_made_after_an_interrupted_regen_are_never_reset_away(project: Path) -> None:
    assert regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": "before-merge"}).returncode == 137
    edit(project, "train.py", "def main(argv", "# mine\ndef main(argv")
    mine = commit_all(project, "work done after the interruption")
    result = regen(project, "--set", "num_epochs=5")
    assert result.returncode == 0, result.stderr
    assert "your branches were left as they are" in result.stderr
    repo = git.Repo(project)
    assert repo.is_ancestor(mine, repo.head.commit) and "# mine" in (project / "train.py").read_text()
    # The interrupted lora change never landed; scaffold/generated went back to the generation that was merged.
    assert (
        "(num_epochs: 3 -> 5)" in repo.head.commit.message and "LoraConfig(" not in (project / "model.py").read_text()
    )
    assert repo.commit("scaffold/generated").parents[0].hexsha == repo.git.rev_list("--max-parents=0", "HEAD")


def test_a_second_command_while_one_runs_exits_2_naming_its_pid(project: Path) -> None:
    before = snapshot(project)
    with locked(project):
        for args in (["regen", str(project), "--no-smoke", "--set", "num_epochs=5"], ["undo", str(project)],
                     ["check", str(project)]):  # fmt: skip
            error = one_line_error(run_cli(*args, cwd=project.parent), 2)
            assert f"(pid {os.getpid()}) is working on" in error
        assert snapshot(project) == {**before, ".git/scaffold.lock": snapshot(project)[".git/scaffold.lock"]}
    assert snapshot(project) == before and not (project / JOURNAL).exists()


def test_two_regens_at_once_one_merges_the_other_is_refused(project: Path) -> None:
    commands = [[sys.executable, "-m", "scaffolder", "regen", str(project), "--no-smoke", "--set", f"seed={n}"]
                for n in (1, 2)]  # fmt: skip
    runs = [subprocess.Popen(c, stderr=subprocess.PIPE, text=True) for c in commands]
    results = [(run.wait(), run.stderr.read()) for run in runs if run.stderr]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # in turn, or the second found the first at work
    for code, stderr in results:
        assert code == 0 or "is working on" in stderr, stderr
    assert not (project / JOURNAL).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said(project: Path) -> None:
    pid = dead_pid()
    (project / ".git" / "scaffold.lock").write_text(f"{pid}\n")
    result = regen(project, "--set", "num_epochs=5")
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of pid {pid}" in result.stderr
    assert not (project / ".git" / "scaffold.lock").exists()


# --- history that a regeneration cannot merge into: refused before anything is written -------------------


def rebase_the_generation(project: Path) -> None:
    """A regen's merge, linearised by `git rebase`: the generation commit is replayed onto the user's, not merged."""
    edit(project, "train.py", "def main(argv", "# mine\ndef main(argv")
    commit_all(project)
    assert regen(project, "--set", "num_epochs=5").returncode == 0
    repo = git.Repo(project)
    root = repo.git.rev_list("--max-parents=0", "HEAD")
    repo.git.rebase("-q", root)


def delete_generated(project: Path) -> None:
    git.Repo(project).git.branch("-D", "scaffold/generated")


def detach(project: Path) -> None:
    git.Repo(project).git.checkout("-q", "--detach")


def on_generated(project: Path) -> None:
    git.Repo(project).git.checkout("-q", "scaffold/generated")


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        (rebase_the_generation, "rebased or cherry-picked into your branch"),
        (delete_generated, "scaffold/generated (scaffolder's pristine generations) is missing"),
        (detach, "HEAD is detached"),
        (on_generated, "scaffold/generated is checked out"),
    ],
)
def test_rewritten_history_is_refused_with_the_way_forward(project: Path, rewrite, expected: str) -> None:
    rewrite(project)
    before = snapshot(project)
    error = one_line_error(regen(project, "--set", "num_epochs=3"), 2)
    assert expected in error and "nothing was changed" in error
    assert snapshot(project) == before


def test_an_unreadable_journal_is_refused_naming_how_to_clear_it(project: Path) -> None:
    (project / JOURNAL).write_text("{not json")
    error = one_line_error(regen(project, "--set", "num_epochs=5"), 2)
    assert "unreadable" in error and f"delete {project / JOURNAL}" in error


def test_a_journal_whose_branch_was_moved_by_someone_else_is_refused(project: Path) -> None:
    assert regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": "after-branch"}).returncode == 137
    repo = git.Repo(project)
    by_hand = repo.git.commit_tree("HEAD^{tree}", "-p", "HEAD", "-m", "made by hand")
    repo.git.branch("-f", "scaffold/generated", by_hand)  # moved by hand since
    (project / ".git" / "scaffold.lock").unlink()  # the killed run's; taken over and released like any other
    before = snapshot(project)
    error = one_line_error(regen(project, "--set", "num_epochs=5"), 2)
    assert "has moved since" in error and "delete" in error
    assert snapshot(project) == before


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie has finished
    except (OSError, IndexError):
        return False


def test_a_regen_killed_while_git_merges_leaves_a_finished_merge_that_the_next_run_keeps(project: Path) -> None:
    # The hook holds git between its merge and its merge commit; scaffolder is killed there, and git goes on.
    mark = project.parent / "merging"
    hook = project / ".git" / "hooks" / "pre-merge-commit"
    hook.write_text(f'#!/bin/sh\necho $PPID > "{mark}.tmp" && mv "{mark}.tmp" "{mark}"\nsleep 1\n')
    hook.chmod(0o755)
    command = [sys.executable, "-m", "scaffolder", "regen", str(project), "--no-smoke", "--set", "num_epochs=5"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(600):
        if mark.exists() or run.poll() is not None:
            break
        time.sleep(0.05)
    assert mark.exists(), run.communicate()
    run.kill()
    run.wait()
    git_pid = int(mark.read_text())
    for _ in range(200):
        if not running(git_pid):
            break
        time.sleep(0.05)
    hook.unlink()
    repo = git.Repo(project)
    assert repo.head.commit.message.startswith("Merge regenerated project (num_epochs: 3 -> 5)")
    assert not (project / ".git" / "MERGE_HEAD").exists() and not repo.is_dirty(untracked_files=True)
    result = regen(project, "--set", "seed=7")
    assert result.returncode == 0, result.stderr
    assert "had finished and is kept" in result.stderr
    config = (project / "config.yaml").read_text()
    assert "num_epochs: 5" in config and "seed: 7" in config


def test_a_merge_committed_by_a_git_that_died_before_its_cleanup_is_kept(project: Path) -> None:
    # The state a git killed by SIGPIPE after its merge commit leaves: the merge is HEAD, and MERGE_HEAD stays.
    assert regen(project, "--set", "num_epochs=5", env={"SCAFFOLD_CRASH_AT": "before-merge"}).returncode == 137
    read_end, write_end = os.pipe()
    os.close(read_end)
    merge = ["git", "merge", "--no-ff", "--no-edit", "-m", "Merge regenerated project (num_epochs: 3 -> 5)",
             "scaffold/generated"]  # fmt: skip
    died = subprocess.run(merge, cwd=project, stdout=write_end, stderr=subprocess.DEVNULL)
    os.close(write_end)
    repo = git.Repo(project)
    assert died.returncode == -signal.SIGPIPE and (project / ".git" / "MERGE_HEAD").exists()
    assert repo.head.commit.parents[1] == repo.commit("scaffold/generated")
    result = regen(project, "--set", "seed=7")
    assert result.returncode == 0, result.stderr
    assert "had finished and is kept" in result.stderr and not (project / ".git" / "MERGE_HEAD").exists()
    config = (project / "config.yaml").read_text()
    assert "num_epochs: 5" in config and "seed: 7" in config


def test_a_merge_in_progress_of_the_users_own_is_refused_before_anything_moves(project: Path) -> None:
    repo = git.Repo(project)
    repo.git.switch("-q", "-c", "side")
    edit(project, "README.md", "#", "# side:")
    commit_all(project, "on the side")
    repo.git.switch("-q", "main")
    repo.git.merge("--no-ff", "--no-commit", "side")
    before = snapshot(project)
    error = one_line_error(regen(project, "--set", "num_epochs=5"), 2)
    assert "a git merge is in progress" in error and "nothing was changed" in error
    assert snapshot(project) == before


# --- the environment ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["regen", "check", "log", "diff", "undo"])
def test_without_git_every_project_command_exits_5(project: Path, tmp_path: Path, command: str) -> None:
    empty = tmp_path / "no-git"
    empty.mkdir()
    error = one_line_error(run_cli(command, str(project), cwd=tmp_path, env={"PATH": str(empty)}), 5)
    assert "git is not installed" in error


def test_with_no_git_identity_regen_commits_and_records_its_outcome(project: Path, tmp_path: Path) -> None:
    nobody = tmp_path / "gitconfig-nobody"
    nobody.write_text("[user]\n\tuseConfigOnly = true\n")  # git may not guess a name: no identity at all
    env = {"GIT_CONFIG_GLOBAL": str(nobody), "EMAIL": ""}
    assert subprocess.run(["git", "var", "GIT_AUTHOR_IDENT"], cwd=project, env={**os.environ, **env}).returncode
    assert regen(project, "--set", "num_epochs=5", env=env).returncode == 0
    result = regen(project, "--set", "num_epochs=6", env=env)
    assert result.returncode == 0, result.stderr
    log = run_cli("log", str(project), cwd=project.parent, env=env)
    assert log.stdout.count("smoke: skipped") == 2  # both finished regens have their outcome note
    assert git.Repo(project).head.commit.author.name == "scaffolder"


def test_new_into_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    script = f'mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && exec "$@"'
    namespace = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    if subprocess.run([*namespace, "true"], capture_output=True).returncode:
        pytest.skip("this machine does not allow a mount namespace for a read-only folder")
    command = [sys.executable, "-m", "scaffolder", "new", "--task", "text-classification", "--data",
               str(DATA / "sst_like.tsv"), "--output", str(folder / "p"), "--no-smoke"]  # fmt: skip
    result = subprocess.run([*namespace, *command], capture_output=True, text=True)
    error = one_line_error(result, 2)
    assert f"cannot write in {folder}" in error and "Read-only file system" in error
    assert list(folder.iterdir()) == []


def test_staging_folders_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / f".p.scaffold-{dead_pid()}-abc123"
    live = tmp_path / f".p.scaffold-{os.getppid()}-def456"
    for folder in (dead, live):
        (folder / "data.py").parent.mkdir(parents=True)
        (folder / "data.py").write_text("half-written")
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"), "--output", "p",
                     "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not dead.exists() and live.exists()


SLOW_GIT = """#!/bin/sh
# git, but a commit waits first: a window in which `scaffold new` has its staging folder half-written.
[ "$1" = commit ] && { touch "$MARK"; sleep 30; }
exec {git} "$@"
"""


def test_sigterm_while_writing_exits_143_and_leaves_nothing(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    wrapper = tools / "git"
    wrapper.write_text(SLOW_GIT.replace("{git}", subprocess.check_output(["which", "git"], text=True).strip()))
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    mark = tmp_path / "committing"
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "MARK": str(mark)}
    command = [sys.executable, "-m", "scaffolder", "new", "--task", "text-classification", "--data",
               str(DATA / "sst_like.tsv"), "--output", "p", "--no-smoke"]  # fmt: skip
    run = subprocess.Popen(command, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if mark.exists() or run.poll() is not None:
            break
        time.sleep(0.05)
    assert mark.exists() and any(work.iterdir())  # the staging folder is there, half-written
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=20) == 143
    assert run.stderr and "terminated" in run.stderr.read()
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("method", ["adalora", "ia3", "prompt-tuning", "p-tuning"])  # prefix-tuning: refused
def test_regen_switches_to_every_peft_method_with_its_learning_rate(project: Path, method: str) -> None:
    result = regen(project, "--set", f"peft={method}")
    assert result.returncode == 0, result.stderr
    switched = from_toml(project / "scaffold.toml")
    # The same rate as a project made with that method from the start.
    fresh = build_plan(ProjectSpec(task="text-classification", train_data=DATA / "sst_like.tsv", peft=method))
    assert switched.peft == method and switched.learning_rate == fresh.spec.learning_rate != 2e-5


def test_a_left_index_lock_is_refused_before_anything_moves(project: Path) -> None:
    (project / ".git" / "index.lock").touch()  # a git command killed mid-write, or one still running
    before = snapshot(project)
    error = one_line_error(regen(project, "--set", "num_epochs=5"), 2)
    assert "index.lock exists" in error and "nothing was changed" in error
    assert snapshot(project) == before


def test_regen_in_a_git_worktree_of_the_project(project: Path) -> None:
    git.Repo(project).git.worktree("add", "-q", str(project.parent / "wt"), "-b", "experiment")
    result = run_cli("regen", "--no-smoke", "--set", "num_epochs=5", cwd=project.parent / "wt")
    assert result.returncode == 0, result.stderr
    assert "num_epochs: 5" in (project.parent / "wt" / "config.yaml").read_text()
    assert "num_epochs: 5" not in (project / "config.yaml").read_text()  # main's worktree is untouched


@pytest.mark.parametrize("command", ["regen", "undo", "check", "log", "diff"])
def test_a_folder_that_is_not_a_project_is_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "scaffold.toml").write_text('task = "text-classification"\n')  # a spec, but no repository
    error = one_line_error(run_cli(command, str(tmp_path), cwd=tmp_path), 2)
    assert "is not a git repository made by `scaffold new`" in error
