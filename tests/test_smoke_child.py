"""The smoke child never outlives scaffolder: killed with it (even by SIGKILL), its work dir removed.

Processes are found through /proc (Linux): every process of a smoke run (the guard, the child, what the child
starts) works in the project folder. TMPDIR points at the test's own folder, where the work dirs appear.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder.smoke import run_smoke
from scaffolder.smoke_guard import PREFIX, remove_stale_workdirs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A stand-in for a project's tests/smoke.py: reports its work dir; with `sleep` in ./mode it starts a worker of
# its own and sleeps (a smoke run still training), with `sleep-alone` it sleeps.
FAKE_SMOKE = textwrap.dedent(
    """
    import json, pathlib, subprocess, sys, time
    workdir = pathlib.Path(sys.argv[sys.argv.index("--workdir") + 1])
    (workdir / "model.bin").write_text("weights")
    mode = pathlib.Path("mode").read_text()
    if mode == "sleep":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    if mode.startswith("sleep"):
        time.sleep(120)
    print(json.dumps({"passed": True, "losses": [2.0, 1.0], "metrics": {"eval_loss": 1.0}, "failures": [str(workdir)]}))
    """
)


def fake_project(root: Path, mode: str) -> Path:
    project = root / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "smoke.py").write_text(FAKE_SMOKE)
    (project / "mode").write_text(mode)
    return project


@pytest.fixture
def tmpdir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for the smoke runs this test starts: where their work dirs are made."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def processes_in(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder and not zombie(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def workdirs(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{PREFIX}*"))


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


def is_guard(pid: int) -> bool:
    return any(arg.endswith("smoke_guard.py") for arg in cmdline(pid))


def smoke_pid(project: Path) -> int | None:
    """The smoke child: the `tests.smoke` process working in `project` (the guard's command line names it too)."""
    return next((pid for pid in processes_in(project) if "tests.smoke" in cmdline(pid) and not is_guard(pid)), None)


def start_smoke_parent(project: Path) -> subprocess.Popen[str]:
    """A scaffolder process in the middle of run_smoke."""
    code = f"from pathlib import Path; from scaffolder.smoke import run_smoke; run_smoke(Path({str(project)!r}))"
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_stale_work_dirs_of_dead_pids_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    unreaped = subprocess.Popen(["true"])  # a zombie until waited for: dead too
    wait_for(lambda: zombie(unreaped.pid), 10, "a zombie")
    stale = [tmp_path / f"{PREFIX}{dead.pid}-ab12", tmp_path / f"{PREFIX}{unreaped.pid}-cd34"]
    live = tmp_path / f"{PREFIX}{os.getpid()}-ef56"
    other = tmp_path / f"{PREFIX}x1y2z3"  # not named for a pid
    for folder in (*stale, live, other):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "model.bin").write_text("weights")
    (tmp_path / f"{PREFIX}{dead.pid}-file").write_text("not a work dir")
    assert sorted(remove_stale_workdirs(tmp_path)) == sorted(stale)
    unreaped.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, f"{PREFIX}{dead.pid}-file"])


def test_the_child_output_reaches_run_smoke_and_the_work_dir_goes(tmp_path: Path, tmpdir_env: Path) -> None:
    result = run_smoke(fake_project(tmp_path, "fast"))
    assert (result.passed, result.losses, result.metrics) == (True, [2.0, 1.0], {"eval_loss": 1.0})
    workdir = Path(result.failures[0])  # the fake reports its work dir there
    assert workdir.parent == tmpdir_env and workdir.name.startswith(PREFIX)
    assert workdir.name[len(PREFIX) :].partition("-")[0].isdigit()  # named for its guard's pid
    assert workdirs(tmpdir_env) == []


def test_a_timeout_kills_the_child_group_and_removes_the_work_dir(tmp_path: Path, tmpdir_env: Path) -> None:
    project = fake_project(tmp_path, "sleep")
    result = run_smoke(project, timeout=1)
    assert result.failures == ["timed out after 1 s"]
    assert processes_in(project) == [] and workdirs(tmpdir_env) == []


def test_a_sigkilled_parent_takes_the_child_group_and_the_work_dir_along(tmp_path: Path, tmpdir_env: Path) -> None:
    project = fake_project(tmp_path, "sleep")
    parent = start_smoke_parent(project)
    wait_for(lambda: len(processes_in(project)) == 3, 30, "the guard, the child and its worker")
    parent.kill()
    parent.communicate()
    wait_for(lambda: processes_in(project) == [], 5, "every process of the smoke run gone")
    assert workdirs(tmpdir_env) == []


def test_a_sigkilled_guard_takes_the_child_along_and_the_next_run_removes_its_work_dir(
    tmp_path: Path, tmpdir_env: Path
) -> None:
    project = fake_project(tmp_path, "sleep-alone")  # a worker would outlive a SIGKILLed guard: nothing kills it
    parent = start_smoke_parent(project)
    wait_for(lambda: smoke_pid(project), 30, "the smoke child")
    guard = next(pid for pid in processes_in(project) if is_guard(pid))
    os.kill(guard, signal.SIGKILL)
    parent.kill()
    parent.communicate()
    wait_for(lambda: processes_in(project) == [], 5, "the smoke child gone with its guard")
    left = workdirs(tmpdir_env)
    assert len(left) == 1 and left[0].name.startswith(f"{PREFIX}{guard}-")
    (project / "mode").write_text("fast")
    assert run_smoke(project).passed
    assert workdirs(tmpdir_env) == []


@pytest.mark.slow
def test_a_sigkilled_scaffold_new_leaves_no_smoke_child_and_no_work_dir(tmp_path: Path, tmpdir_env: Path) -> None:
    project = tmp_path / "p"
    command = [sys.executable, "-m", "scaffolder", "new", "--task", "text-classification",
               "--data", str(DATA / "sst_like.tsv"), "--output", str(project)]  # fmt: skip
    scaffold = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: smoke_pid(project) or scaffold.poll() is not None, 120, "the smoke child started")
        time.sleep(1)  # well into its start-up (importing torch)
        assert scaffold.poll() is None, scaffold.communicate()
        assert smoke_pid(project) is not None and workdirs(tmpdir_env) != []
    finally:
        scaffold.kill()
        scaffold.communicate()
    wait_for(lambda: smoke_pid(project) is None, 5, "no tests.smoke process of the project")
    wait_for(lambda: processes_in(project) == [] and workdirs(tmpdir_env) == [], 5, "no guard and no work dir")
