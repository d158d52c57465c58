"""The smoke run's guard: a small process between scaffolder and the smoke child, so the child never outlives it.

    python -I smoke_guard.py PARENT_PID COMMAND...      ({workdir} in COMMAND becomes the work dir)

`smoke.run_smoke` starts the guard; the guard makes the work dir, starts COMMAND in its own process group (its
output goes straight to scaffolder, which parses it) and waits. When the child exits, the guard kills whatever
the child left in its group, removes the work dir and exits with the child's status. When scaffolder dies (even
by SIGKILL) or asks it to stop (SIGTERM), the guard kills the child's whole group first.

- Linux tells the guard at once that its parent died (PR_SET_PDEATHSIG); elsewhere, and as a backstop, the guard
  sees its parent's pid change (it is re-parented) within half a second.
- The child gets SIGKILL when the guard dies (PR_SET_PDEATHSIG again), so a SIGKILLed guard takes it along; the
  work dir is then left, named for the guard's pid, and the next smoke run removes it (`remove_stale_workdirs`).

Standard library only, run isolated (-I): it starts in milliseconds, and neither the project folder it runs in
nor the environment can shadow a module it imports.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

WORKDIR = "{workdir}"
PREFIX = "scaffold-smoke-"  # a work dir is PREFIX + the guard's pid + "-" + random letters, in the temp dir
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print(f"usage: python -I {Path(__file__).name} PARENT_PID COMMAND...", file=sys.stderr)
        return 2
    parent, command = int(argv[0]), argv[1:]
    signals = _Signals()
    prctl = _prctl()
    # Set before looking: a parent that died before prctl took effect shows as a changed parent pid instead.
    _die_with_parent(prctl, signal.SIGTERM)
    if os.getppid() != parent:
        return 128 + signal.SIGTERM
    remove_stale_workdirs(Path(tempfile.gettempdir()))
    workdir = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    try:
        child = subprocess.Popen(
            [workdir if arg == WORKDIR else arg for arg in command],
            start_new_session=True,  # its own process group, which the guard kills whole
            # The guard has one thread, as preexec_fn needs.
            preexec_fn=functools.partial(_child_dies_with_guard, prctl, os.getpid()),
        )
        try:
            stopped = signals.wait(child, parent)
        finally:
            _kill_group(child)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if stopped is not None:
        return 128 + stopped
    return child.returncode if child.returncode >= 0 else 128 - child.returncode


def remove_stale_workdirs(folder: Path) -> list[Path]:
    """Remove the work dirs in `folder` whose guard is dead (this user's only); return them. A live pid's dir is
    kept, even when the pid now belongs to another process: a dir left a while is better than a running
    smoke run's dir removed."""
    removed = []
    for entry in folder.glob(f"{PREFIX}*-*"):
        pid = entry.name[len(PREFIX) :].partition("-")[0]
        try:
            info = entry.lstat()
        except OSError:
            continue
        if pid.isdigit() and stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    """Running, or stopped; not a zombie (a SIGKILLed guard whose parent died too waits for init to reap it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):  # no /proc (not Linux), or it exited just now
        return True
    return state not in ("Z", "X")


class _Signals:
    """Stop signals are noted, and every signal (the child's exit, SIGCHLD, too) wakes `wait` at once."""

    def __init__(self) -> None:
        self.stops: list[int] = []
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda signum, _frame: self.stops.append(signum))
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        self._wake, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)

    def wait(self, child: subprocess.Popen[bytes], parent: int) -> int | None:
        """Wait for the child to exit (None), a stop signal, or the parent to die (the signal to report)."""
        while child.poll() is None:
            if self.stops:
                return self.stops[0]
            if os.getppid() != parent:
                return signal.SIGTERM
            ready, _, _ = select.select([self._wake], [], [], _POLL_SECONDS)
            if ready:
                os.read(self._wake, 512)
        return None


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (workers it started included) and reap the child."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # the clean-up runs to its end
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux (looked up here, before any fork), else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


def _die_with_parent(prctl: Callable[..., int] | None, signum: int) -> None:
    """Have the kernel send `signum` when the parent exits (Linux). It watches the parent *thread* that started
    this process: scaffolder starts the guard from the thread that then waits for it, and the guard has one."""
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def _child_dies_with_guard(prctl: Callable[..., int] | None, guard: int) -> None:
    """In the forked child, before exec: SIGKILL when the guard dies (kept across exec, `unshare`'s included)."""
    _die_with_parent(prctl, signal.SIGKILL)
    if os.getppid() != guard:  # the guard died before the signal was set
        os._exit(128 + signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
