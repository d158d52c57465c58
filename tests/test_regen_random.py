"""Regeneration under seeded random sequences of what users and machines do: regens, kills at every recorded
point and at random moments, commits, uncommitted edits, branch switches, two regens at once, amends and
conflicts. After every step, every commit that was reachable from a user branch still is, and the work tree
is byte-identical unless a regeneration completed.

Each regeneration runs in a forked process, as a real run would (a kill is a real kill, the lock is held by a
real pid), with a small generator so that a few hundred sequences fit in the suite: the refs, merges, journal
and lock are the real ones.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder.errors import ScaffoldError
from scaffolder.pipeline import new_project
from scaffolder.plan import Plan
from scaffolder.provenance import GeneratorRecord
from scaffolder.regen import regenerate
from scaffolder.spec import SPEC_FILE, ProjectSpec, to_toml

# 96 sequences of 6 steps in CI (about a minute); SCAFFOLDER_REGEN_SEQUENCES=25 runs the 200 of a longer sweep.
CHUNKS, STEPS = 8, 6
SEQUENCES_PER_CHUNK = int(os.environ.get("SCAFFOLDER_REGEN_SEQUENCES", "12"))
CRASH_POINTS = ("after-journal", "after-branch", "before-merge", "after-merge")


class SmallGenerator:
    """Three files that follow the spec: a spec change rewrites lines that users edit too, so merges conflict."""

    name = "jinja"

    def generate(
        self, plan: Plan, project_dir: Path, previous: dict[str, str] | None = None
    ) -> tuple[dict[str, str], GeneratorRecord]:
        spec = plan.spec
        config = f"num_epochs: {spec.num_epochs}\nwarmup: 0.1\nbatch_size: {spec.batch_size}\n\n\nseed: {spec.seed}\n"
        files = {SPEC_FILE: to_toml(spec, project_dir), "config.yaml": config, "train.py": "print('train')\n"}
        return files, GeneratorRecord()


def git(project: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0 or not check, done.stderr
    return done.stdout.strip()


def user_commits(project: Path) -> set[str]:
    """Every commit reachable from a branch of the user's (scaffold/generated is scaffolder's)."""
    return set(git(project, "rev-list", "--exclude=scaffold/*", "--branches").split())


def work_tree(project: Path) -> dict[str, str]:
    return {
        str(path.relative_to(project)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(project.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(project).parts
    }


def start(target, *args: object, crash_at: str = "") -> int:
    """Run `target(*args)` in a forked process; its exit code says how it ended (1: anything unexpected)."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        os.environ["SCAFFOLD_CRASH_AT"] = crash_at
        target(*args)
    except ScaffoldError as exc:
        code = exc.exit_code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def wait(pid: int) -> int:
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def settle(project: Path) -> None:
    """Wait for git commands a killed run left running (a SIGKILL reaches only the python process)."""
    for _ in range(200):
        cwds = []
        for proc in Path("/proc").iterdir():
            try:
                cwds.append(os.readlink(proc / "cwd"))
            except OSError:
                continue
        if str(project) not in cwds:
            return
        time.sleep(0.01)


class Sequence:
    def __init__(self, project: Path, rng: random.Random) -> None:
        self.project, self.rng, self.branches = project, rng, ["main"]
        self.log: list[str] = []

    def regen_sets(self) -> list[str]:
        key = self.rng.choice(["num_epochs", "batch_size", "seed"])
        return [f"{key}={self.rng.randint(1, 4)}"]

    def head(self) -> str:
        return git(self.project, "rev-parse", "HEAD")

    # --- one step: what a user or the machine does, and what must hold afterwards -------------------------

    def step(self) -> None:
        action = self.rng.choices(
            ["regen", "crash", "kill", "concurrent", "commit", "dirty", "switch", "amend"],
            weights=[5, 3, 2, 2, 3, 1, 2, 1],
        )[0]
        self.log.append(action)
        if action in ("commit", "dirty", "switch", "amend"):
            getattr(self, action)()
            return
        before, tree, head = user_commits(self.project), work_tree(self.project), self.head()
        codes = getattr(self, action)()
        self.log[-1] += f" -> {codes}"
        assert 1 not in codes, f"a regeneration failed unexpectedly: {self.log}"
        # Conflict markers in the tree (exit 6, or a run killed after its merge stopped at them): the user
        # resolves them or aborts, as the message says.
        self.resolve_conflict()
        assert before <= user_commits(self.project), f"a user commit was lost: {self.log}"
        completed = self.head() != head
        if not completed:
            assert work_tree(self.project) == tree, f"the work tree changed with no regeneration: {self.log}"
        if action in ("regen", "concurrent") and 2 not in codes:  # a run that finished leaves no record
            assert not (self.project / ".git" / "scaffold-regen.json").exists(), self.log

    def regen(self) -> list[int]:
        return [wait(start(regenerate, self.project, self.regen_sets(), SmallGenerator()))]

    def crash(self) -> list[int]:
        point = self.rng.choice(CRASH_POINTS)
        # Its record stays: whatever the user does next, the next regen finds it.
        return [wait(start(regenerate, self.project, self.regen_sets(), SmallGenerator(), crash_at=point))]

    def kill(self) -> list[int]:
        pid = start(regenerate, self.project, self.regen_sets(), SmallGenerator())
        time.sleep(self.rng.uniform(0, 0.15))
        os.kill(pid, signal.SIGKILL)
        code = wait(pid)
        settle(self.project)
        return [code]

    def concurrent(self) -> list[int]:
        pids = [start(regenerate, self.project, self.regen_sets(), SmallGenerator()) for _ in range(2)]
        return [wait(pid) for pid in pids]

    def commit(self) -> None:
        path = self.project / self.rng.choice(["config.yaml", "notes.md"])
        text = path.read_text() if path.exists() else ""
        lines = text.splitlines() or [""]
        lines[self.rng.randrange(len(lines))] += f"  # mine {self.rng.randint(0, 99)}"
        path.write_text("\n".join(lines) + "\n")
        git(self.project, "add", "-A")
        git(self.project, "commit", "-q", "-m", "my edit", check=False)

    def dirty(self) -> None:
        (self.project / "scratch.txt").write_text(f"not committed {self.rng.random()}\n")

    def switch(self) -> None:
        if git(self.project, "status", "--porcelain"):
            git(self.project, "add", "-A")
            git(self.project, "commit", "-q", "-m", "before switching")
        if self.rng.random() < 0.5 or len(self.branches) == 1:
            self.branches.append(f"feature-{len(self.branches)}")
            git(self.project, "switch", "-q", "-c", self.branches[-1])
        else:
            git(self.project, "switch", "-q", self.rng.choice(self.branches))

    def amend(self) -> None:
        git(self.project, "commit", "-q", "--amend", "--allow-empty", "-m", f"amended {self.rng.random()}")
        # A regen now may refuse the rewritten history; the user follows the way forward it gives.
        if not git(self.project, "merge-base", "HEAD", "scaffold/generated", check=False):
            git(self.project, "merge", "-q", "-s", "ours", "--allow-unrelated-histories", "-m", "reconnect",
                "scaffold/generated")  # fmt: skip

    def resolve_conflict(self) -> None:
        if not (self.project / ".git" / "MERGE_HEAD").exists():
            return
        if self.rng.random() < 0.5:
            git(self.project, "merge", "--abort")
        else:
            git(self.project, "checkout", "--theirs", ".")
            git(self.project, "add", "-A")
            git(self.project, "commit", "-q", "--no-edit")


@pytest.fixture
def base_project(tmp_path: Path) -> Path:
    spec = ProjectSpec(task="text-classification", train_data=DATA / "sst_like.tsv", num_epochs=1, batch_size=1)
    return new_project(spec, tmp_path / "base", run_smoke=False, generator=SmallGenerator()).project


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_no_sequence_loses_a_commit_or_changes_the_tree_without_a_regeneration(
    base_project: Path, tmp_path: Path, chunk: int
) -> None:
    for number in range(SEQUENCES_PER_CHUNK):
        seed = chunk * SEQUENCES_PER_CHUNK + number
        project = tmp_path / f"seq-{seed}"
        subprocess.run(["cp", "-a", str(base_project), str(project)], check=True)
        sequence = Sequence(project, random.Random(seed))
        for _ in range(STEPS):
            try:
                sequence.step()
            except AssertionError as exc:
                raise AssertionError(f"seed {seed}, steps {sequence.log}: {exc}") from None
