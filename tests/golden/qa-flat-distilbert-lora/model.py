"""Tokenizer and model: the pretrained encoder with a span head (answer start and end), with lora.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import AutoPeftModelForQuestionAnswering, LoraConfig, TaskType, get_peft_model
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
    model = get_peft_model(model, peft_config(cfg, model))
    return model


def peft_config(cfg: Config, model: torch.nn.Module) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.QUESTION_ANS,  # the peft wrapper for this model class (keeps generate() working)
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_targets(cfg),
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        init_lora_weights=True if cfg.init_lora_weights == "default" else cfg.init_lora_weights,
    )


# PiSSA and OLoRA start from the base weights' principal directions, taken out of the base weights.
CONVERTED_INITS = ("pissa", "olora")
LORA_INIT = "lora_init"  # in output_dir: where before_training saves such an adapter's starting point


def save_adapter(model: torch.nn.Module, path: Path) -> None:
    """model.save_pretrained. PiSSA and OLoRA moved part of each adapted base weight into the adapter, so their
    adapter alone does not apply to the base model: it is saved as its change from the start (output_dir/lora_init),
    a plain LoRA adapter of twice the rank that does, as peft converts it."""
    if model.peft_config["default"].init_lora_weights not in CONVERTED_INITS:
        model.save_pretrained(path)
        return
    # Only these saves need them.
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    start = Path(path).parent / LORA_INIT  # best/ and lora_init/ are both in output_dir
    model.save_pretrained(path, path_initial_model_for_weight_conversion=str(start))
    # peft's conversion writes the LoRA matrices only: the weights that train in full (a task head) are added back.
    file = Path(path) / "adapter_model.safetensors"
    full = {name: tensor for name, tensor in get_peft_model_state_dict(model).items() if "lora_" not in name}
    if full:
        tensors = {name: tensor.contiguous() for name, tensor in full.items()}
        save_file({**load_file(file), **tensors}, file, metadata={"format": "pt"})


def lora_targets(cfg: Config) -> list[str] | str | None:
    """lora_target_modules; `all-linear` (peft's word for every linear layer but the output head) stays a word,
    also where an override made a list of it."""
    if cfg.lora_target_modules in ("all-linear", ["all-linear"]):
        return "all-linear"
    return cfg.lora_target_modules


def planned_settings(cfg: Config, total_updates: int) -> Config:
    """Settings that depend on the run's length, filled in by train.py once it knows it (none for this model)."""
    return cfg


def before_training(model: torch.nn.Module, output_dir: Path) -> None:
    """Called by train.py once before a fresh run's first update: a PiSSA or OLoRA adapter's starting point is
    saved (output_dir/lora_init), from which save_model converts the trained one to a plain LoRA adapter."""
    if model.peft_config["default"].init_lora_weights in CONVERTED_INITS:
        model.save_pretrained(output_dir / LORA_INIT)


def after_update(model: torch.nn.Module, step: int) -> None:
    """Called by train.py after each optimizer update (`step`, from 1), before its gradients are cleared: the place
    for per-update work on the model (AdaLoRA re-allocates its ranks here); nothing for this one."""
    return None


def loss_targets(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the model's loss averages over in `batch`: its windows (start and end count as one), so train.py
    weighs every window of an update the same, however the update is split into batches and processes."""
    return torch.tensor(len(batch["start_positions"]), device=batch["start_positions"].device)


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Weights (the adapter and the span head), config and tokenizer."""
    save_adapter(model, path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not (Path(path) / "adapter_config.json").is_file():  # a merged export: a plain model
        model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
    else:
        # The adapter names its base model, which is read again from its hub id or directory; a trained
        # head comes with the adapter.
        model = AutoPeftModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
    return model.eval(), tokenizer
