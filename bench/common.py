"""What every benchmark does: scaffold a project, run a script in a child process measuring its peak memory,
and report both sides with their ratios (stdout table and bench/results/<name>.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# Runs a script as __main__ and prints its peak resident memory (MiB) as the last line.
# A script that ends in sys.exit(0) still gets its line printed.
MEASURED = """
import resource, runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    if exit.code:
        raise
print("PEAK_MIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
ENV = {"HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a script in a child process (with `env` on top of this one's); its stdout and its peak memory in MiB."""
    done = subprocess.run([sys.executable, "-c", MEASURED, *command], cwd=cwd, env={**os.environ, **ENV, **(env or {})},
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{command[0]} failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    peak = float(done.stdout.strip().splitlines()[-1].split()[1])
    return done.stdout, peak


def last_json(out: str) -> dict:
    """The last JSON object a reference script printed."""
    return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith('{"')))


def scaffold(args: list[str], project: Path) -> None:
    """`scaffold new ... --no-smoke` into `project` (the benchmark trains it itself)."""
    done = subprocess.run([sys.executable, "-m", "scaffolder", "new", *args, "--output", str(project), "--no-smoke"],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"scaffold new failed (exit {done.returncode}): {done.stderr.strip()}")


def train_scaffolded(
    project: Path, settings: dict, output_dir: Path, env: dict[str, str] | None = None
) -> tuple[dict, float]:
    """`python train.py key=value ...` in the project; its metrics.json and peak memory."""
    overrides = [f"{k}={v}" for k, v in {**settings, "output_dir": str(output_dir)}.items()]
    _, peak = run(["train.py", *overrides], project, env)
    return json.loads((output_dir / "metrics.json").read_text()), peak


def scaffolded_side(new_args: list[str], work: Path, settings: dict, keys: Iterable[str]) -> dict:
    """`scaffold new` with `new_args`, then its train.py with `settings`: the metrics in `keys`, the peak memory."""
    scaffold(new_args, work / "project")
    metrics, peak = train_scaffolded(work / "project", settings, work / "ours")
    return {key: metrics[key] for key in keys if key != "peak_mib"} | {"peak_mib": peak}


def trainer_side(script: str, data: list[str], work: Path, settings: dict, keys: Iterable[str]) -> dict:
    """A reference script (`script MODEL TRAIN DEV OUT_DIR SETTINGS_JSON`): the metrics it prints, the peak memory."""
    out, peak = run([str(BENCH / script), *data, str(work / "trainer"), json.dumps(settings)], BENCH)
    result = last_json(out)
    return {key: result[key] for key in keys if key != "peak_mib"} | {"peak_mib": peak}


def report(name: str, rows: list[dict], keys: dict[str, str], ratio_key: str, quality_key: str, meta: dict) -> None:
    """Means per side of `keys` ({metric: column title}), the throughput ratio and the quality difference."""

    def mean(side: str, key: str) -> float:
        values = [r[key] for r in rows if r["side"] == side]
        return sum(values) / len(values)

    summary: dict = {**meta}
    for side in ("scaffolded", "hf_trainer"):
        summary[side] = {key: mean(side, key) for key in keys}
    summary["throughput_ratio"] = summary["scaffolded"][ratio_key] / summary["hf_trainer"][ratio_key]
    summary[f"{quality_key}_delta"] = summary["scaffolded"][quality_key] - summary["hf_trainer"][quality_key]
    print(f"{'side':<12}" + "".join(f"{title:>16}" for title in keys.values()))
    for side in ("scaffolded", "hf_trainer"):
        print(f"{side:<12}" + "".join(f"{summary[side][key]:>16.4g}" for key in keys))
    print(f"throughput ratio {summary['throughput_ratio']:.2f}x ({ratio_key}), "
          f"{quality_key} {summary[f'{quality_key}_delta']:+.4f}")  # fmt: skip
    out = BENCH / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")


def alternate(sides: dict[str, Callable[[Path, dict], dict]], repeats: int, root: Path, settings: dict) -> list[dict]:
    """Run each side `repeats` times with `settings` and seeds seed, seed + 1, ..., alternating (a slow spell of the
    machine hits both sides), each in its own folder. One epoch of fine-tuning moves a point or more with the seed
    (the data order): compare means over several."""
    rows = []
    for repeat in range(repeats):
        for name, side in sides.items():
            work = root / f"{name}-{repeat}"
            work.mkdir()
            seeded = {**settings, "seed": settings["seed"] + repeat}
            rows.append({"side": name, "seed": seeded["seed"], **side(work, seeded)})
            print(rows[-1], flush=True)
    return rows
