"""Tokenizer and model: the pretrained causal language model, wrapped with lora.

Also saves and reloads the trained model, so that train.py, evaluate.py and predict.py agree on the format.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import AutoPeftModelForCausalLM, LoraConfig, TaskType, get_peft_model
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
    model = get_peft_model(model, peft_config(cfg, model))
    return model


def peft_config(cfg: Config, model: torch.nn.Module) -> LoraConfig:
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,  # the peft wrapper for this model class (keeps generate() working)
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules,
    )


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """The adapter (the base model is read again from its hub id or directory) and the tokenizer."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load_trained(path: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A model saved by `save_model` (or merged by export.py), in eval mode, with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not (Path(path) / "adapter_config.json").is_file():  # a merged export: a plain model
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    else:
        # The adapter names its base model, which is read again from its hub id or directory; a trained
        # head comes with the adapter.
        model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
