"""Tokenizer and model: the pretrained encoder with a 3-class head, wrapped with lora.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import AutoPeftModelForSequenceClassification, LoraConfig, TaskType, get_peft_model
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

from config import Config


def load_tokenizer(cfg: Config) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        # Decoder-only tokenizers have no pad token; batches need one, and the model ignores padded positions.
        tokenizer.pad_token = tokenizer.eos_token
    # Saved with the tokenizer, so predict.py truncates exactly as training did.
    tokenizer.model_max_length = cfg.max_length
    return tokenizer


def build_model(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> torch.nn.Module:
    model = AutoModelForSequenceClassification.from_pretrained(
        cfg.model_name_or_path,
        num_labels=len(cfg.labels),
        id2label=dict(enumerate(cfg.labels)),
        label2id={name: index for index, name in enumerate(cfg.labels)},
        # Picks the loss: cross-entropy, binary cross-entropy per class, or mean squared error.
        problem_type=cfg.problem_type,
        # A checkpoint that already has a head of another size gets a fresh one of the right size.
        ignore_mismatched_sizes=True,
        # Master weights in fp32; mixed precision (config `mixed_precision`) runs the matmuls in bf16/fp16.
        dtype=torch.float32,
        trust_remote_code=cfg.trust_remote_code,
    )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model = get_peft_model(model, peft_config(cfg, model))
    return model


def peft_config(cfg: Config, model: torch.nn.Module) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.SEQ_CLS,  # also makes the task head train in full and be saved with the adapter
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_targets(cfg),
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=True if cfg.init_lora_weights == "default" else cfg.init_lora_weights,
        # Randomly initialised in the base checkpoint, so it has to train (and be saved) too.
        modules_to_save=["pooler"],
    )


def lora_targets(cfg: Config) -> list[str] | str | None:
    """lora_target_modules; `all-linear` (peft's word for every linear layer but the output head) stays a word,
    also where an override made a list of it."""
    if cfg.lora_target_modules in ("all-linear", ["all-linear"]):
        return "all-linear"
    return cfg.lora_target_modules


def planned_settings(cfg: Config, total_updates: int) -> Config:
    """Settings that depend on the run's length, filled in by train.py once it knows it (none for this model)."""
    return cfg


def after_update(model: torch.nn.Module, step: int) -> None:
    """Called by train.py after each optimizer update (`step`, from 1), before its gradients are cleared: the place
    for per-update work on the model (AdaLoRA re-allocates its ranks here); nothing for this one."""
    return None


def loss_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the model's loss averages over in `batch`: its examples, so train.py weighs every example of an
    update the same, however the update is split into batches and processes."""
    return torch.tensor(len(batch["labels"]), device=batch["labels"].device)


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Weights (the adapter and the head), config with the label maps, and tokenizer."""
    model.save_pretrained(path)
    # The base model's config carries num_labels and the label maps that loading needs.
    model.get_base_model().config.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not (Path(path) / "adapter_config.json").is_file():  # a merged export: a plain model
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    else:
        config = AutoConfig.from_pretrained(path)
        # The base model is rebuilt with the trained label maps, so its head has the trained size; the head's
        # weights come from the adapter file (saved there because the head trains in full).
        model = AutoPeftModelForSequenceClassification.from_pretrained(
            path,
            num_labels=config.num_labels,
            id2label=config.id2label,
            label2id=config.label2id,
            problem_type=config.problem_type,
            ignore_mismatched_sizes=True,
            dtype=torch.float32,
        )
    return model.eval(), tokenizer
