"""Tokenizer and model: the pretrained bart encoder-decoder, wrapped with lora.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import AutoPeftModelForSeq2SeqLM, LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedTokenizerBase

from config import Config


def load_tokenizer(cfg: Config) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    # Saved with the tokenizer, so predict.py truncates inputs exactly as training did.
    tokenizer.model_max_length = cfg.max_length
    return tokenizer


def build_model(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    """The pretrained model with its language-model head. Seq2seq checkpoints carry their own pad, end and
    decoder-start tokens, so unlike a classifier it needs nothing from `tokenizer`."""
    model = AutoModelForSeq2SeqLM.from_pretrained(
        cfg.model_name_or_path,
        # Master weights in fp32; mixed precision (config `mixed_precision`) runs the matmuls in bf16/fp16.
        dtype=torch.float32,
        trust_remote_code=cfg.trust_remote_code,
    )
    model = get_peft_model(model, peft_config(cfg, model))
    return model


def peft_config(cfg: Config, model: torch.nn.Module) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM,  # the peft wrapper for this model class (keeps generate() working)
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules,
    )


def loss_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the model's loss averages over in `batch`: its target tokens (padding has label -100), so train.py
    weighs every target token of an update the same, however the update is split into batches and processes."""
    return (batch["labels"] != -100).sum()


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """The adapter (the base model is the pretrained one, reloaded by name) and the tokenizer."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not (Path(path) / "adapter_config.json").is_file():  # a merged export: a plain model
        model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=torch.float32)
    else:
        # The adapter names its base model, which is read again from its hub id or directory; a trained
        # head comes with the adapter.
        model = AutoPeftModelForSeq2SeqLM.from_pretrained(path, dtype=torch.float32)
    return model.eval(), tokenizer
