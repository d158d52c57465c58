"""One scaffold command at a time per project: a lock file in `.git` that holds the pid of its owner.

The lock is the file plus an advisory `flock` on it. The kernel drops the flock when its process dies, however
it dies, so a lock left by a killed run is never mistaken for a live one (a pid check alone would be, once the
pid is reused) and two runs that find the same stale file cannot both take it over. The pid in the file is
what the message names.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scaffolder.errors import BusyError

LOCK_FILE = "scaffold.lock"
_held: dict[Path, int] = {}  # lock path -> depth: a command that calls another library entry holds it once


@dataclass
class Lock:
    path: Path
    stale_pid: int | None  # a dead process's pid found in the file: its lock was taken over


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (one of another user's counts: it cannot be signalled, but runs)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def project_lock(project: Path, git_dir: Path) -> Iterator[Lock]:
    """Hold the project's lock (in its repository's `git_dir`) for the block; `BusyError`, naming the other
    pid, when another command has it."""
    path = git_dir / LOCK_FILE
    if path in _held:
        _held[path] += 1
        try:
            yield Lock(path, None)
        finally:
            _held[path] -= 1
        return
    fd, stale = _acquire(path, project)
    _held[path] = 1
    try:
        yield Lock(path, stale)
    finally:
        del _held[path]
        path.unlink(missing_ok=True)  # before the flock goes: a waiter that opened this file sees it gone
        os.close(fd)


def _acquire(path: Path, project: Path) -> tuple[int, int | None]:
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise BusyError(
                f"another scaffold command ({who}) is working on {project}; wait for it to finish, then run again"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its owner removed it between our open and our flock: take the new one
    stale = _pid_in(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd, stale if stale != os.getpid() else None


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
