"""Benchmark: how long the smoke run takes, per task and PEFT method, as `scaffold smoke` runs it after
`scaffold new` (a fresh process: build the tiny model and its tokenizer, train, evaluate, reload, predict).
Goal: under 30 s each on a 2-core CPU.

    python bench/smoke_speed.py [--peft none lora]

Each task scaffolds a project on data that ships in tests/data with the task's default model (the smoke run
builds a tiny model of its family). Results: stdout, bench/results/smoke_speed.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, scaffold

DATA = BENCH.parent / "tests" / "data"
TASKS = {
    "text-classification": DATA / "sst_like.tsv",
    "token-classification": DATA / "ner_conll.conll",
    "question-answering": DATA / "squad_v2.json",
    "text-generation": DATA / "alpaca_mixed.jsonl",
    "summarization": DATA / "news_summaries.csv",
    "translation": DATA / "en_zh.csv",
}


def smoke(project: Path) -> tuple[float, dict]:
    """`scaffold smoke PROJECT --json`: wall seconds and its report."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "scaffolder", "smoke", str(project), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"scaffold smoke {project.name} failed (exit {done.returncode}): {done.stderr.strip()}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peft", nargs="+", default=["none", "lora"])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for task, data in TASKS.items():
            for peft in args.peft:
                project = Path(tmp) / f"{task}-{peft}"
                scaffold(["--task", task, "--data", str(data), "--peft", peft], project)
                seconds, report = smoke(project)
                losses = report["losses"]
                rows.append({"task": task, "peft": peft, "seconds": round(seconds, 2),
                             "first_loss": losses[0], "last_loss": losses[-1]})  # fmt: skip
                print(f"{task:<22}{peft:<6}{seconds:>7.1f} s  loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
    slowest = max(rows, key=lambda row: row["seconds"])
    print(f"slowest: {slowest['task']} {slowest['peft']}, {slowest['seconds']:.1f} s")
    out = BENCH / "results" / "smoke_speed.json"
    out.write_text(json.dumps({"runs": rows, "slowest_seconds": slowest["seconds"]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
