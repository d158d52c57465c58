"""Offline smoke run: this project's own train, evaluate and predict code on a tiny bert model.

A randomly initialised bert of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data. The run passes when the loss is
finite and falls, evaluation yields its metrics, the saved model reloads and scores the eval slice exactly
as training measured it, and predict.py tags raw text with entities whose spans point into it.

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
from transformers import AutoModelForTokenClassification

from config import Config
from data import TokenClassificationDataset, build_collator, load_splits
from evaluation import evaluate
from model import load_trained
from predict import Tagger
from tests.tiny import check_same_scores, save_tiny_model, smoke_main, smoke_run, smoke_tokenizer


def build_tiny_model(cfg: Config, directory: Path) -> None:
    rows = load_splits(cfg)[0]
    tokenizer = smoke_tokenizer(cfg, [" ".join(str(token) for token in tokens) for tokens in rows["tokens"]])
    save_tiny_model(AutoModelForTokenClassification, tokenizer, directory, num_labels=len(cfg.labels))


def run(workdir: Path) -> dict[str, Any]:
    return smoke_run(workdir, build_tiny_model, check_reload, ["eval_f1", "eval_precision", "eval_recall"])


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores the eval slice as training did and tags raw text."""
    model, tokenizer = load_trained(output_dir / "best")
    eval_rows = load_splits(cfg)[1]
    loader = DataLoader(
        TokenClassificationDataset(eval_rows, tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, _ = evaluate(model, loader, Accelerator(cpu=True), cfg)
    failures = check_same_scores(reloaded, metrics)
    texts = [" ".join(str(token) for token in tokens) for tokens in eval_rows[:4]["tokens"]]
    for result in Tagger(output_dir / "best", device="cpu")(texts):
        if len(result["tags"]) != len(result["words"]) or not set(result["tags"]) <= set(cfg.labels):
            failures.append(f"predict.py returned tags outside config.yaml or not one per word: {result}")
        if any(result["text"][e["start"] : e["end"]] != e["text"] for e in result["entities"]):
            failures.append(f"predict.py returned entity spans that do not point at their text: {result}")
    return failures


if __name__ == "__main__":
    smoke_main(run, __doc__)
