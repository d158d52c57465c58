"""Offline smoke run: this project's own train, evaluate and predict code on a tiny mistral model.

A randomly initialised mistral of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data. The run passes when the loss is
finite and falls, evaluation yields its metrics, the saved model reloads and scores the eval slice exactly as
training measured it, and predict.py generates the same text for a batch as for one prompt at a time (left
padding done right).

    python -m tests.smoke [--workdir DIR] [--json]
"""

from __future__ import annotations

import os

# Never download during a smoke run: the model's own tokenizer is used only when it is on disk already.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path
from typing import Any

from accelerate import Accelerator
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM

from config import Config
from data import build_collator, load_splits, make_dataset, normalize_messages, through_last_response
from evaluation import evaluate
from model import load_trained
from predict import Generator
from tests.tiny import check_same_scores, save_tiny_model, smoke_main, smoke_run, smoke_tokenizer


def training_texts(rows: Dataset, cfg: Config) -> list[str]:
    """Every text the model will see, prompt format included, for a stand-in tokenizer's vocabulary."""
    texts = [message["content"] for row in rows for message in normalize_messages(row[cfg.messages_column])]
    return [*texts, cfg.prompt_template]


def build_tiny_model(cfg: Config, directory: Path) -> None:
    tokenizer = smoke_tokenizer(cfg, training_texts(load_splits(cfg)[0], cfg))
    # A wider init than the usual 0.02: under LoRA the embeddings and the LM head stay frozen, and a random
    # 32-wide head at 0.02 cannot move its logits far enough from uniform to show learning in a few steps.
    save_tiny_model(AutoModelForCausalLM, tokenizer, directory, initializer_range=0.2)


def run(workdir: Path) -> dict[str, Any]:
    return smoke_run(workdir, build_tiny_model, check_reload, ["eval_perplexity", "eval_tokens"])


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores the eval slice as training did and generates text."""
    model, tokenizer = load_trained(output_dir / "best")
    loader = DataLoader(
        make_dataset(load_splits(cfg)[1], tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, _ = evaluate(model, loader, Accelerator(cpu=True), cfg)
    failures = check_same_scores(reloaded, metrics)
    # Prompts the model trained on: even a tiny model answers those with text rather than an immediate stop.
    train_rows = load_splits(cfg)[0].take(3)
    return failures + check_generation(Generator(output_dir / "best", cfg, device="cpu"), train_rows, cfg)


# At least 8 new tokens: a tiny model may well stop at once, which would leave nothing to compare.
GREEDY = {"max_new_tokens": 8, "min_new_tokens": 8, "temperature": 0.0}


def check_generation(generator: Generator, rows: Dataset, cfg: Config) -> list[str]:
    """Greedy generation for a batch of prompts of different lengths (left-padded) matches one prompt at a time."""
    # Each conversation up to its last user message: the model writes the assistant turn that follows.
    conversations = [through_last_response(normalize_messages(row[cfg.messages_column]))[:-1] for row in rows]
    batched = generator.respond(conversations, **GREEDY)
    alone = [generator.respond([messages], **GREEDY)[0] for messages in conversations]
    if not any(text.strip() for text in batched):
        return [f"predict.py generated no text for {len(batched)} prompts: {batched}"]
    if batched != alone:
        return [f"predict.py generates differently in a batch ({batched}) than one prompt at a time ({alone})"]
    return []


if __name__ == "__main__":
    smoke_main(run, __doc__)
