"""Ctrl-C and SIGTERM: both stop scaffolder the same way, and neither can land between two git steps.

SIGTERM (what `timeout`, a CI cancel and a plain `kill` send) is turned into `Terminated`, raised like a
KeyboardInterrupt, so the same clean-up runs for both (a half-written project is removed, a smoke child is
killed). The steps of
a regeneration that move refs run with both signals held back: an interrupt arrives before them or after them.
Only a SIGKILL can stop one half-way, and the record in `.git` (scaffolder.regen) is for that.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HELD_BACK = {signal.SIGINT, signal.SIGTERM}


class Terminated(BaseException):
    """SIGTERM arrived; the CLI exits with 143 (128 + 15), as a process killed by it would. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` swallows it; not a KeyboardInterrupt, which click turns
    into its own exit 130 while it reads the command line."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def handle_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextmanager
def held_back() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM blocked; one that came meanwhile is delivered when it ends.

    Child processes inherit the mask, so the git commands of the block finish too (a Ctrl-C at a terminal
    signals the whole foreground group, git included).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_BACK)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
