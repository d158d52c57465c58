"""Smoke: run a project's own smoke entry (`python -m tests.smoke --json`) in a child process.

The child trains the project's real code on a tiny model of the same family (tests/smoke.py in the project).
It runs in its own process group with a timeout, offline, and without the parent's API keys and tokens; where
the kernel lets an unprivileged user make namespaces, in one with no network at all. A guard process
(scaffolder/smoke_guard.py) stands between: it owns the child's work dir and group, and neither outlives
scaffolder, even a SIGKILLed one.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from scaffolder import smoke_guard
from scaffolder.errors import MissingToolError

TIMEOUT_SECONDS = 600
_STOP_SECONDS = 30  # for the guard to kill the child and remove the work dir
TRAINING_STACK = ("torch", "transformers", "accelerate", "sklearn", "yaml", "tokenizers")
_SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL", "AUTH")
_SECRET_PREFIXES = ("OPENAI_", "AZURE_OPENAI")  # the endpoint's settings: the child has no business with them
# A user namespace with an empty network namespace: the child sees no interface but a downed loopback.
NO_NETWORK = ("--user", "--map-root-user", "--net", "--")


@dataclass
class SmokeResult:
    passed: bool
    losses: list[float]
    seconds: float
    failures: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    no_network: bool = False  # it ran in a namespace without network

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def check_training_stack(extra: tuple[str, ...] = ()) -> None:
    missing = [name for name in (*TRAINING_STACK, *extra) if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingToolError(
            f"the smoke run needs the training stack ({', '.join(missing)} missing); "
            "install it with `pip install 'scaffolder[train]'`, or pass --no-smoke"
        )


def child_env() -> dict[str, str]:
    """The parent's environment minus anything secret, forced offline and quiet."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not any(marker in k.upper() for marker in _SECRET_MARKERS) and not k.upper().startswith(_SECRET_PREFIXES)
    }
    env |= {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONDONTWRITEBYTECODE": "1",  # keep the committed project's tree clean
        "TQDM_DISABLE": "1",
    }
    # A tiny model gains nothing from threads, and several smoke runs at once would fight over the cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@functools.cache
def network_sandbox() -> tuple[str, ...]:
    """The prefix that runs a command without network, or () where this machine does not allow it (no
    `unshare`, user namespaces disabled, a container that forbids them): probed once, degraded silently."""
    tool = shutil.which("unshare")
    if tool is None:
        return ()
    prefix = (tool, *NO_NETWORK)
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", ""], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return prefix if probe.returncode == 0 else ()


def run_smoke(project: Path, timeout: float = TIMEOUT_SECONDS) -> SmokeResult:
    started = time.perf_counter()
    sandbox = network_sandbox()
    child = [*sandbox, sys.executable, "-m", "tests.smoke", "--json", "--workdir", smoke_guard.WORKDIR]
    # The guard owns the work dir and the child's process group, and goes with them when this process dies.
    command = [sys.executable, "-I", smoke_guard.__file__, str(os.getpid()), *child]
    process = subprocess.Popen(
        command,
        cwd=project,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the terminal's Ctrl-C reaches scaffolder, which stops the guard
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        return SmokeResult(False, [], time.perf_counter() - started, [f"timed out after {timeout:.0f} s"])
    except BaseException:
        _stop(process)
        raise
    seconds = round(time.perf_counter() - started, 2)
    result = _parse(stdout, stderr, process.returncode, seconds)
    result.no_network = bool(sandbox)
    return result


def _stop(guard: subprocess.Popen[str]) -> None:
    """Have the guard kill the child's group and remove the work dir; SIGKILL it when it does not finish."""
    guard.terminate()
    try:
        guard.communicate(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it may have finished just now
            os.killpg(guard.pid, signal.SIGKILL)  # the child dies with it; the next run removes the work dir
        guard.communicate()


def _parse(stdout: str, stderr: str, returncode: int, seconds: float) -> SmokeResult:
    lines = stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        return SmokeResult(False, [], seconds, [f"the smoke run crashed (exit {returncode}): {_last_error(stderr)}"])
    return SmokeResult(
        passed=bool(report.get("passed")) and returncode == 0,
        losses=[round(loss, 6) for loss in report.get("losses", [])],
        seconds=seconds,
        failures=list(report.get("failures", [])),
        metrics={k: v for k, v in report.get("metrics", {}).items() if isinstance(v, (int, float))},
    )


def _last_error(stderr: str) -> str:
    """The line of a traceback that names the exception, else the last non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~")) and ("Error" in line or "Exception" in line):
            return line
    return lines[-1] if lines else "no output"
