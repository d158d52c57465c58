"""Offline smoke run: this project's own train, evaluate and predict code on a tiny distilbert model.

A randomly initialised distilbert of a few thousand parameters is built from a config (nothing is
downloaded) and trained for a few epochs on a small slice of the real data, with short windows so that long
contexts are read in several: a window holds the slice's longest question (cut to config.yaml's
max_question_length, and to QUESTION_CAP tokens) and CONTEXT_TOKENS of context. The run passes when the loss is
finite and falls, evaluation yields its metrics, the saved model reloads and scores the eval slice exactly as
training measured it, and predict.py returns answers that are spans of their contexts.

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
from transformers import AutoModelForQuestionAnswering, PreTrainedTokenizerBase

from config import Config
from data import QuestionAnsweringDataset, build_collator, load_splits
from evaluation import evaluate
from model import load_trained
from predict import QuestionAnswerer
from tests.tiny import check_same_scores, save_tiny_model, smoke_config, smoke_main, smoke_run, smoke_tokenizer

# Windows shorter than most question + context pairs, so that contexts are read in overlapping windows.
WINDOW = {"max_length": 48, "doc_stride": 16}
CONTEXT_TOKENS = 32  # context tokens a window holds beside the longest question (doc_stride of them shared)
QUESTION_CAP = 64  # smoke windows stay short whatever the questions: longer ones are cut (as data.py cuts)


def run(workdir: Path) -> dict[str, Any]:
    cfg = smoke_config(workdir, **WINDOW)
    train, evaluation = load_splits(cfg)
    tokenizer = smoke_tokenizer(cfg, [*train["question"], *train["context"]])

    def build_tiny_model(cfg: Config, directory: Path) -> None:
        save_tiny_model(AutoModelForQuestionAnswering, tokenizer, directory)

    window = smoke_window(cfg, tokenizer, [*train["question"], *evaluation["question"]])
    return smoke_run(workdir, build_tiny_model, check_reload, ["eval_exact_match", "eval_f1"], **window)


def smoke_window(cfg: Config, tokenizer: PreTrainedTokenizerBase, questions: list[str]) -> dict[str, int]:
    """max_length, doc_stride and max_question_length that fit the longest question of the smoke slice (up to
    config.yaml's max_question_length and QUESTION_CAP) with CONTEXT_TOKENS of context beside it."""
    lengths = tokenizer([q.lstrip() for q in questions], add_special_tokens=False)["input_ids"]
    question = max(1, min(max(map(len, lengths), default=1), cfg.max_question_length, QUESTION_CAP))
    window = question + tokenizer.num_special_tokens_to_add(pair=True) + CONTEXT_TOKENS
    return {**WINDOW, "max_length": max(WINDOW["max_length"], window), "max_question_length": question}


def check_reload(cfg: Config, output_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The saved best model, reloaded from disk, scores the eval slice as training did and answers questions."""
    model, tokenizer = load_trained(output_dir / "best")
    examples = load_splits(cfg)[1]
    loader = DataLoader(
        QuestionAnsweringDataset(examples, tokenizer, cfg),
        batch_size=cfg.eval_batch_size,
        collate_fn=build_collator(tokenizer, on_gpu=False),
    )
    reloaded, _ = evaluate(model, loader, Accelerator(cpu=True), cfg)
    failures = check_same_scores(reloaded, metrics)
    pairs = list(zip(examples["question"][:4], examples["context"][:4], strict=True))
    answers = QuestionAnswerer(output_dir / "best", cfg, device="cpu")(pairs)
    for (_, context), answer in zip(pairs, answers, strict=True):
        span = context[answer["start"] : answer["end"]] if answer["start"] is not None else ""
        if span != answer["answer"] or not 0 <= answer["score"] <= 1 or (not span and not cfg.allow_unanswerable):
            failures.append(f"predict.py returned an answer that is not a span of its context: {answer}")
    return failures


if __name__ == "__main__":
    smoke_main(run, __doc__)
