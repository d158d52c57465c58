"""Benchmark: does the smoke run fail a project that works, and does it catch one that is broken?

The smoke run decides whether `scaffold new` reports a project as passed. For every task x PEFT method that
`scaffold tasks` offers, on two data shapes per task (tests/data), each project runs its smoke run with several
seeds: the seed draws the tiny model's weights, the training rows and the batches. A failure there is a false
failure (goal: none). Then each task's project is broken the ways a training loop breaks, and each breakage
must fail the smoke run:

- no-step: the optimizer never updates the weights;
- shuffled-labels: every batch's targets are shuffled against its inputs;
- frozen-head: the task head (classifier, tagger, span head) never trains; for the tasks that have one;
- no-targets: every target is masked out of the loss (a loss mask that hides everything); for the tasks whose
  loss has a mask.

    python bench/smoke_reliability.py [--seeds 1 2 3 4 5] [--tasks ...] [--methods ...] [--breakages-only]
    python bench/smoke_reliability.py --merge part1.json part2.json   # runs split over processes, or rerun

Each project runs in one process (its modules imported once) that calls its own tests/smoke.py once per seed,
with the seed set in the smoke settings; a breakage is patched into that process. Results: stdout and
bench/results/smoke_reliability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, scaffold

from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal

DATA = BENCH.parent / "tests" / "data"
# Two shapes of data per task: (name, data file, extra `scaffold new` arguments).
SHAPES = {
    "text-classification": [("sentences", "sst_like.tsv", []), ("pairs", "nli_pairs.jsonl", [])],
    "token-classification": [("conll-en", "ner_conll.conll", []), ("spans-zh", "ner_zh.jsonl", [])],
    "question-answering": [("squad2", "squad_v2.json", []), ("flat", "qa_flat.jsonl", [])],
    # The task's default model (qwen2) on chat, and GPT-2 on instructions (its learned-position tiny model).
    "text-generation": [
        ("chat", "chat_support.jsonl", []),
        ("alpaca-gpt2", "alpaca_mixed.jsonl", ["--model", "openai-community/gpt2"]),
    ],
    "summarization": [("news-en", "news_summaries.csv", []), ("dialogue-zh", "dialogue_zh.jsonl", [])],
    "translation": [("wmt-en-de", "wmt_en_de.jsonl", []), ("en-zh", "en_zh.csv", [])],
}
METHODS = tuple(PEFT_METHODS)
HEAD_TASKS = tuple(name for name, task in TASKS.items() if task.has_head)
BREAKAGES = ("no-step", "shuffled-labels", "frozen-head", "no-targets")

# Runs in the project's folder: argv = breakage ("none" or one of BREAKAGES), seeds as JSON, a work folder.
DRIVER = r"""
import json, sys
from pathlib import Path

import torch

sys.path.insert(0, ".")
import train
import tests.tiny as tiny
from tests.smoke import run

breakage, seeds, work = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
TARGETS = ("labels", "start_positions", "end_positions")
if breakage == "no-step":
    torch.optim.AdamW.step = lambda self, *args, **kwargs: None
elif breakage in ("shuffled-labels", "no-targets"):
    train_update = train.train_update  # training batches only: evaluation reads the data as it is

    def broken_update(run, batches, meter):
        for batch in batches:
            for key in TARGETS:
                if key in batch and breakage == "shuffled-labels":
                    batch[key] = batch[key][torch.randperm(len(batch[key]))]
                elif key in batch and key == "labels":
                    batch[key] = torch.full_like(batch[key], -100)
        return train_update(run, batches, meter)

    train.train_update = broken_update
elif breakage == "frozen-head":
    build_model = train.build_model
    HEADS = ("classifier", "score", "qa_outputs")

    def frozen_head(*args, **kwargs):
        built = build_model(*args, **kwargs)
        for name, parameter in built.named_parameters():
            if any(part in HEADS for part in name.split(".")):
                parameter.requires_grad_(False)
        return built

    train.build_model = frozen_head
for seed in seeds:
    tiny.SMOKE_SETTINGS["seed"] = seed
    try:
        result = run(work / f"seed-{seed}")
    except Exception as error:  # a breakage that crashes the run is caught too
        result = {"passed": False, "failures": [f"{type(error).__name__}: {error}"[:300]], "losses": []}
    losses = result["losses"]
    quarter = max(len(losses) // 4, 1)
    print(json.dumps({
        "seed": seed, "passed": result["passed"], "failures": result["failures"],
        "first": sum(losses[:quarter]) / quarter if losses else None,
        "last": sum(losses[-quarter:]) / quarter if losses else None,
    }), flush=True)
"""


def offered(task: str, method: str) -> bool:
    """The task x method pairs `scaffold tasks` marks yes (its own table)."""
    return peft_refusal(TASKS[task], method) is None


def applies(breakage: str, task: str) -> bool:
    """frozen-head: the tasks with a head; no-targets: the tasks whose loss has a mask (question answering's span
    positions have none)."""
    if breakage == "frozen-head":
        return task in HEAD_TASKS
    return breakage != "no-targets" or task != "question-answering"


def smoke_seeds(project: Path, breakage: str, seeds: list[int], work: Path) -> list[dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", DRIVER, breakage, json.dumps(seeds), str(work)], cwd=project,
                          capture_output=True, text=True, env=env)  # fmt: skip
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"seed"')]
    if len(results) != len(seeds):
        tail = done.stderr.strip().splitlines()[-3:]
        results += [
            {"seed": s, "passed": False, "failures": [f"the driver died: {tail}"]} for s in seeds[len(results) :]
        ]
    return results


def summarize(runs: list[dict]) -> dict:
    working = [r for r in runs if r["breakage"] == "none"]
    broken = [r for r in runs if r["breakage"] != "none"]
    caught: dict[str, list[bool]] = {}
    for r in broken:
        caught.setdefault(f"{r['task']} {r['breakage']}", []).append(not r["passed"])
    return {
        "false_failures": sum(not r["passed"] for r in working),
        "working_runs": len(working),
        "breakages_missed": sum(r["passed"] for r in broken),
        "broken_runs": len(broken),
        "missed": sorted({f"{r['task']} {r['method']} {r['breakage']}" for r in broken if r["passed"]}),
        "falsely_failed": sorted(
            f"{r['task']} {r['shape']} {r['method']} seed {r['seed']}" for r in working if not r["passed"]
        ),
        "caught_by_task": {key: f"{sum(hits)}/{len(hits)}" for key, hits in sorted(caught.items())},
    }


def merge(files: list[Path], out: Path) -> None:
    """One results file from runs made in several processes (tasks split over the cores), or run again."""
    parts = [json.loads(file.read_text()) for file in files]
    # A run in a later file replaces the same run (task, shape, method, breakage, seed) in an earlier one.
    keyed = {(r["task"], r["shape"], r["method"], r["breakage"], r["seed"]): r for part in parts for r in part["runs"]}
    runs = list(keyed.values())
    summary = {**summarize(runs), "seeds": parts[0]["summary"]["seeds"],
               "breakage_seeds": parts[0]["summary"]["breakage_seeds"],
               "minutes": [part["summary"]["minutes"] for part in parts]}  # fmt: skip
    print(json.dumps(summary, indent=2))
    out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--tasks", nargs="+", default=list(SHAPES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--breakage-seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--breakages-only", action="store_true")
    parser.add_argument("--breakages", nargs="+", choices=BREAKAGES, default=list(BREAKAGES))
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "smoke_reliability.json")
    parser.add_argument("--merge", nargs="+", type=Path, help="write --out from these results files instead")
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    runs: list[dict] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="smoke-reliability-") as tmp:
        for task in args.tasks:
            for index, (shape, data, extra) in enumerate(SHAPES[task]):
                for method in args.methods:
                    if not offered(task, method):
                        continue
                    project = Path(tmp) / f"{task}-{shape}-{method}"
                    scaffold(["--task", task, "--data", str(DATA / data), "--peft", method, *extra], project)
                    plans = [] if args.breakages_only else [("none", args.seeds)]
                    if index == 0 and method in ("none", "lora"):  # breakages: the first shape, full and LoRA
                        plans += [(b, args.breakage_seeds) for b in args.breakages if applies(b, task)]
                    for breakage, seeds in plans:
                        for result in smoke_seeds(
                            project, breakage, seeds, Path(tmp) / "work" / project.name / breakage
                        ):
                            runs.append(
                                {"task": task, "shape": shape, "method": method, "breakage": breakage, **result}
                            )
                            verdict = "passed" if result["passed"] else "FAILED " + "; ".join(result["failures"])[:160]
                            print(f"{task:<21}{shape:<12}{method:<14}{breakage:<16}seed {result['seed']}: {verdict}",
                                  flush=True)  # fmt: skip
    summary = summarize(runs)
    summary.update(seeds=args.seeds, breakage_seeds=args.breakage_seeds,
                   minutes=round((time.perf_counter() - started) / 60, 1))  # fmt: skip
    print(json.dumps(summary, indent=2))
    args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
