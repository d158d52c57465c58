"""Tokenizer and model: the pretrained causal language model, wrapped with lora.

Also saves and reloads the trained model, so that train.py, evaluation.py and predict.py agree on the format.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from peft import AutoPeftModelForCausalLM, LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, PreTrainedTokenizerBase

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
    quantized = quantization(cfg)
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model_name_or_path,
        # Master weights in fp32; mixed precision (config `mixed_precision`) runs the matmuls in bf16/fp16.
        dtype=torch.float32,
        quantization_config=quantized,
        # A quantized model is placed as it loads: on this process's GPU (accelerate has selected it).
        device_map={"": torch.cuda.current_device()} if quantized else None,
        trust_remote_code=cfg.trust_remote_code,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if quantized:
        # Casts the layers left in full precision (norms, embeddings, head) to fp32 and lets gradients flow from
        # the frozen 4-bit layers' inputs to the adapters; checkpointing as config.yaml says.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif cfg.gradient_checkpointing:
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
    """What the model's loss averages over in `batch`: its learned tokens (prompts and padding have label -100),
    so train.py weighs every learned token of an update the same, however the update is split into batches and
    processes."""
    # Token t predicts token t + 1: the first token of each example is never a target.
    return (batch["labels"][:, 1:] != -100).sum()


def quantization(cfg: Config) -> BitsAndBytesConfig | None:
    """QLoRA's storage for the frozen base model: 4-bit NF4 with double quantization, computing in bf16 (fp16 on
    GPUs without bf16). The adapters train in full precision; export.py merges them into the full-precision base."""
    if not cfg.load_in_4bit:
        return None
    if not torch.cuda.is_available():
        raise SystemExit("error: load_in_4bit needs a CUDA GPU (bitsandbytes); set load_in_4bit=false on this machine")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise SystemExit("error: load_in_4bit needs the bitsandbytes package: pip install bitsandbytes")
    if os.environ.get("ACCELERATE_USE_FSDP") == "true" or os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true":
        # Sharding 4-bit weights needs a matching storage type in every layer; this project trains them unsharded.
        raise SystemExit("error: load_in_4bit trains on one GPU or with DDP (accelerate launch without FSDP/DeepSpeed)")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16,
    )


def save_model(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """The adapter (the base model is read again from its hub id or directory) and the tokenizer."""
    save_adapter(model, path)
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
