"""Tokenizer and model: the pretrained encoder with a 2-class head.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import torch
from sklearn.utils.class_weight import compute_class_weight
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedTokenizerBase

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


def loss_function(
    cfg: Config, train_set: Any
) -> Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None:
    """The training loss train.py uses, or None for the model's own cross-entropy (no class_weights, no
    label_smoothing). Either way it is the mean over the batch's targets (label -100 is none): the weighted sum
    divided by their number, so that train.py's sums over an update stay exact. "balanced" weights average 1 over
    the training set, so the learning rate keeps its meaning; eval_loss stays the plain cross-entropy."""
    if cfg.class_weights is None and not cfg.label_smoothing:
        return None
    weights = class_weights(cfg, train_set)
    on_device: dict[torch.device, torch.Tensor] = {}  # copied to the device once, not at every step

    def loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        labels = batch["labels"]
        logits = model(**{key: value for key, value in batch.items() if key != "labels"}).logits
        if weights is not None and logits.device not in on_device:
            on_device[logits.device] = weights.to(logits.device)
        summed = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            labels.reshape(-1),
            weight=on_device.get(logits.device),
            ignore_index=-100,
            label_smoothing=cfg.label_smoothing,
            reduction="sum",
        )
        return summed / (labels != -100).sum()  # 0 / 0 = NaN without targets, as the model's mean; train.py drops it

    return loss


def class_weights(cfg: Config, train_set: Any) -> torch.Tensor | None:
    """class_weights as one weight per label: as listed, or "balanced" (scikit-learn's n / (classes x count))."""
    if cfg.class_weights is None:
        return None
    if cfg.class_weights != "balanced":
        return torch.tensor(cfg.class_weights, dtype=torch.float32)
    column = train_set.data["labels"][:]
    ids = numpy.array([label for labels in column for label in numpy.atleast_1d(labels) if label != -100])
    present = numpy.unique(ids)
    # A label the training set lacks never weighs a training target: its weight is never read.
    weights = numpy.ones(len(cfg.labels))
    weights[present] = compute_class_weight("balanced", classes=present, y=ids)
    return torch.tensor(weights, dtype=torch.float32)


def loss_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the model's loss averages over in `batch`: its examples, so train.py weighs every example of an
    update the same, however the update is split into batches and processes."""
    return torch.tensor(len(batch["labels"]), device=batch["labels"].device)


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Weights, config with the label maps, and tokenizer."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    return model.eval(), tokenizer
