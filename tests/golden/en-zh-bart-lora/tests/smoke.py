"""Offline smoke run: this project's own train, evaluate and predict code on a tiny bart model.

A randomly initialised bart of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data. The run passes when the loss is
finite and falls, evaluation generates text and yields its metrics, and the saved model reloads, scores the
eval slice exactly as training measured it, generates the same text, and predict.py generates text.

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
from transformers import AutoModelForSeq2SeqLM, set_seed

from config import Config
from data import Seq2SeqDataset, build_collator, load_splits, source_texts, target_texts
from evaluation import evaluate
from model import load_trained
from predict import Translator
from tests.tiny import check_same_scores, save_tiny_model, smoke_main, smoke_run, smoke_tokenizer

# A random model generates up to the length limit every time: a short limit and greedy search keep the
# evaluation after each epoch quick.
GENERATION = {"max_target_length": 16, "num_beams": 1}
METRICS = ["eval_bleu", "eval_chrf", "eval_gen_len"]


def build_tiny_model(cfg: Config, directory: Path) -> None:
    rows = load_splits(cfg)[0]
    tokenizer = smoke_tokenizer(cfg, source_texts(rows, cfg) + target_texts(rows, cfg))
    # Seeded weights: a LoRA run on a random model learns little, so a lucky or unlucky draw must not decide it.
    set_seed(cfg.seed)
    save_tiny_model(AutoModelForSeq2SeqLM, tokenizer, directory)


def run(workdir: Path) -> dict[str, Any]:
    return smoke_run(workdir, build_tiny_model, check_reload, METRICS, **GENERATION)


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores and generates on the eval slice as training did, and
    predict.py generates text with it."""
    model, tokenizer = load_trained(output_dir / "best")
    eval_rows = load_splits(cfg)[1]
    loader = DataLoader(
        Seq2SeqDataset(eval_rows, tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, predictions = evaluate(model, loader, Accelerator(cpu=True), cfg)
    failures = check_same_scores(reloaded, metrics)
    if predictions != (output_dir / "eval_predictions.jsonl").read_text():
        failures.append("the reloaded model generates other text than the best epoch did")
    inputs = source_texts(eval_rows.take(4), cfg)
    outputs = Translator(output_dir / "best", cfg, device="cpu")(inputs)
    if len(outputs) != len(inputs) or not all(isinstance(o.get("translation"), str) for o in outputs):
        failures.append(f"predict.py returned {outputs}; expected one translation per input")
    return failures


if __name__ == "__main__":
    smoke_main(run, __doc__)
