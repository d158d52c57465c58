"""Tokenizer and model: the pretrained causal language model.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from config import Config


def load_tokenizer(cfg: Config) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        # Decoder tokenizers often have no pad token. Padding is masked out of attention and labels, so the
        # end-of-text token can stand in without the model unlearning when to stop.
        tokenizer.pad_token = tokenizer.eos_token
    # Training pads on the right (data.Collator); predict.py switches to the left for batched generation.
    tokenizer.padding_side = "right"
    return tokenizer


def build_model(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model_name_or_path,
        # Master weights in fp32; mixed precision (config `mixed_precision`) runs the matmuls in bf16/fp16.
        dtype=torch.float32,
        trust_remote_code=cfg.trust_remote_code,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if cfg.gradient_checkpointing:
        # Non-reentrant checkpointing also carries gradients through layers whose inputs need none (the frozen
        # embeddings under LoRA), so no enable_input_require_grads() is needed.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
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
    """What the model's loss averages over in `batch`: its learned tokens (prompts and padding have label -100),
    so train.py weighs every learned token of an update the same, however the update is split into batches and
    processes."""
    # Token t predicts token t + 1: the first token of each example is never a target.
    return (batch["labels"][:, 1:] != -100).sum()


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Weights, config and tokenizer (with its chat template)."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
