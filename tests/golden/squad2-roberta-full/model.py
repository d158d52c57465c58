"""Tokenizer and model: the pretrained encoder with a span head (answer start and end).

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, PreTrainedTokenizerBase

from config import Config


def load_tokenizer(cfg: Config) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    # Saved with the tokenizer, so predict.py cuts windows exactly as training did.
    tokenizer.model_max_length = cfg.max_length
    return tokenizer


def build_model(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    model = AutoModelForQuestionAnswering.from_pretrained(
        cfg.model_name_or_path,
        # Master weights in fp32; mixed precision (config `mixed_precision`) runs the matmuls in bf16/fp16.
        dtype=torch.float32,
        trust_remote_code=cfg.trust_remote_code,
    )
    return model


def planned_settings(cfg: Config, total_updates: int) -> Config:
    """Settings that depend on the run's length, filled in by train.py once it knows it (none for this model)."""
    return cfg


def before_training(model: torch.nn.Module, output_dir: Path) -> None:
    """Called by train.py once before a fresh run's first update: the place for saving a starting state the saved
    model needs (LoRA's PiSSA and OLoRA do); nothing for this one."""
    return None


def after_update(model: torch.nn.Module, step: int) -> None:
    """Called by train.py after each optimizer update (`step`, from 1), before its gradients are cleared: the place
    for per-update work on the model (AdaLoRA re-allocates its ranks here); nothing for this one."""
    return None


def loss_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the model's loss averages over in `batch`: its windows (start and end count as one), so train.py
    weighs every window of an update the same, however the update is split into batches and processes."""
    return torch.tensor(len(batch["start_positions"]), device=batch["start_positions"].device)


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Weights, config and tokenizer."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
    return model.eval(), tokenizer
