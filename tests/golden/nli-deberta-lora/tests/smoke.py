"""Offline smoke run: this project's own train, evaluate and predict code on a tiny deberta-v2 model.

A randomly initialised deberta-v2 of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data. The run passes when the loss is
finite and falls, evaluation yields its metrics, and the saved model reloads and scores the eval slice exactly
as training measured it.

    python -m tests.smoke [--workdir DIR] [--json]
"""

from __future__ import annotations

import os

# Never download during a smoke run: the model's own tokenizer is used only when it is on disk already.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification

from config import Config
from data import TextClassificationDataset, build_collator, load_splits
from evaluation import evaluate
from export import export
from model import load_trained
from predict import Classifier
from tests.tiny import check_same_scores, save_tiny_model, smoke_main, smoke_run, smoke_tokenizer


def build_tiny_model(cfg: Config, directory: Path) -> None:
    rows = load_splits(cfg)[0]
    texts = [str(row[cfg.text_column]) for row in rows]
    texts += [str(row[cfg.text_pair_column]) for row in rows]
    tokenizer = smoke_tokenizer(cfg, texts)
    save_tiny_model(AutoModelForSequenceClassification, tokenizer, directory, num_labels=len(cfg.labels))


EXPECTED_METRICS = ["eval_accuracy", "eval_macro_f1"]


def run(workdir: Path) -> dict[str, Any]:
    return smoke_run(workdir, build_tiny_model, check_reload, EXPECTED_METRICS)


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores the eval slice as training did and predicts labels."""
    model, tokenizer = load_trained(output_dir / "best")
    eval_rows = load_splits(cfg)[1]
    loader = DataLoader(
        TextClassificationDataset(eval_rows, tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, _ = evaluate(model, loader, Accelerator(cpu=True), cfg)
    failures = check_same_scores(reloaded, metrics)
    inputs = [(str(row[cfg.text_column]), str(row[cfg.text_pair_column])) for row in eval_rows.take(4)]
    predictions = Classifier(output_dir / "best", device="cpu")(inputs)
    if any(p["label"] not in cfg.labels or abs(sum(p["scores"].values()) - 1) > 1e-4 for p in predictions):
        failures.append(f"predict.py returned labels outside config.yaml or bad scores: {predictions}")
    merged = Classifier(export(output_dir / "best", output_dir / "merged"), device="cpu")(inputs)
    pairs = zip(predictions, merged, strict=True)
    if any(abs(a["score"] - b["score"]) > 1e-4 for a, b in pairs):
        failures.append(f"export.py's merged model predicts {merged}, the adapter {predictions}")
    return failures


if __name__ == "__main__":
    smoke_main(run, __doc__)
