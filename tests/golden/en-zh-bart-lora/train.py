"""Fine-tune the model in config.yaml for translation with lora.

    python train.py [key=value ...]              CPU or one GPU
    accelerate launch train.py [key=value ...]   several GPUs or machines, same code

Settings come from config.yaml; `key=value` arguments override them. Writes to output_dir: `best/` (the
epoch with the best `metric_for_best_model`), metrics.json, log_history.jsonl, eval_predictions.jsonl
and the config the run used.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from config import Config, load_config
from data import build_collator, build_datasets
from evaluate import evaluate
from model import build_model, load_tokenizer, save_model


def setup_accelerator(cfg: Config) -> Accelerator:
    precision = cfg.mixed_precision
    if precision == "auto":
        # bf16 keeps fp32's range, so it needs no loss scaling; GPUs without it (and CPUs) train in fp32.
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    # Launched as several processes (torchrun, accelerate launch) on a machine without CUDA: accelerate needs
    # cpu=True to join them with the gloo backend; otherwise each process would train alone.
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=cfg.gradient_accumulation_steps, cpu=cpu)


def setup_data(
    cfg: Config, tokenizer: PreTrainedTokenizerBase, accelerator: Accelerator
) -> tuple[DataLoader, DataLoader]:
    train_set, eval_set = build_datasets(cfg, tokenizer)
    on_gpu = accelerator.device.type == "cuda"
    collator = build_collator(tokenizer, on_gpu)
    loader_args = {"collate_fn": collator, "num_workers": cfg.num_workers, "pin_memory": on_gpu}
    # Batches of similar length spend less compute on padding. The order stays random: shuffled mega-batches of
    # 50 batches are sorted by length inside, so each batch is random but homogeneous.
    sampler = LengthGroupedSampler(cfg.batch_size, lengths=train_set.lengths) if cfg.group_by_length else None
    train_loader = DataLoader(
        train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler, **loader_args
    )
    eval_loader = DataLoader(eval_set, batch_size=cfg.eval_batch_size, **loader_args)
    accelerator.print(f"{len(train_set)} training and {len(eval_set)} evaluation examples")
    return train_loader, eval_loader


def setup_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            # Biases and LayerNorm weights (the 1-d parameters) are not decayed, as in BERT's recipe.
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # On CUDA the fused kernel updates every parameter in one launch.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=torch.cuda.is_available())


def train(cfg: Config) -> dict[str, Any]:
    accelerator = setup_accelerator(cfg)
    set_seed(cfg.seed)
    output_dir = Path(cfg.output_dir)
    tokenizer = load_tokenizer(cfg)
    train_loader, eval_loader = setup_data(cfg, tokenizer, accelerator)
    model = build_model(cfg, tokenizer)
    optimizer = setup_optimizer(cfg, model)
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    # Counted after prepare(): each process sees its own shard. The scheduler is stepped by hand once per
    # update (not prepared), so its length is in this process's updates.
    updates_per_epoch = math.ceil(len(train_loader) / cfg.gradient_accumulation_steps)
    total_updates = updates_per_epoch * cfg.num_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_updates), total_updates)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "log_history.jsonl").write_text("")
        (output_dir / "train_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    best: dict[str, Any] | None = None
    step, train_seconds, train_samples, train_tokens, loss_sum, loss_count = 0, 0.0, 0, 0, 0.0, 0
    for epoch in range(1, cfg.num_epochs + 1):
        started = time.perf_counter()
        epoch_loss, samples, tokens = train_epoch(
            cfg, accelerator, model, optimizer, scheduler, train_loader, epoch, step
        )
        train_seconds += time.perf_counter() - started
        step += updates_per_epoch
        train_samples += samples
        train_tokens += tokens
        loss_sum, loss_count = loss_sum + epoch_loss * len(train_loader), loss_count + len(train_loader)

        metrics, report = evaluate(model, eval_loader, accelerator, cfg)
        log(accelerator, output_dir, {"step": step, "epoch": epoch, **metrics})
        accelerator.print(f"epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        if best is None or is_better(metrics, best, cfg.metric_for_best_model):
            best = {**metrics, "best_epoch": epoch}
            save_best(accelerator, model, tokenizer, output_dir, report)

    results = {
        **best,
        "train_loss": loss_sum / loss_count,
        "train_samples": train_samples,
        "train_runtime": train_seconds,
        # Training steps only: evaluation and checkpoint saving are not counted.
        "train_samples_per_second": train_samples / train_seconds,
        # Real (non-padding) input tokens: the figure that compares runs with different padding.
        "train_tokens_per_second": train_tokens / train_seconds,
    }
    if accelerator.is_main_process:
        (output_dir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    accelerator.print(json.dumps(results, indent=2))
    accelerator.end_training()
    return results


def train_epoch(
    cfg: Config,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader: DataLoader,
    epoch: int,
    step: int,
) -> tuple[float, int, int]:
    """One pass over the training data; returns the mean loss and the examples and real tokens seen (all
    processes)."""
    model.train()
    # Losses stay on the device and are summed there: reading one with .item() waits for the GPU, so that
    # happens only at logging steps.
    window_loss, window_batches = torch.zeros((), device=accelerator.device), 0
    epoch_loss, samples = torch.zeros((), device=accelerator.device), 0
    tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
    bar = tqdm(loader, desc=f"epoch {epoch}", disable=not accelerator.is_local_main_process)
    for batch in bar:
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()  # skipped by accelerate while gradients accumulate
            optimizer.zero_grad(set_to_none=True)
        window_loss += loss.detach()
        epoch_loss += loss.detach()
        window_batches += 1
        samples += len(batch["input_ids"]) * accelerator.num_processes
        tokens += batch["attention_mask"].sum()
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        step += 1
        if step % cfg.logging_steps == 0:
            value = accelerator.reduce(window_loss, reduction="mean").item() / window_batches
            if not math.isfinite(value):
                raise RuntimeError(f"loss is {value} at step {step}; lower learning_rate or check the data")
            record = {"step": step, "epoch": epoch, "loss": value, "learning_rate": scheduler.get_last_lr()[0]}
            log(accelerator, Path(cfg.output_dir), record)
            bar.set_postfix(loss=f"{value:.4f}")
            window_loss.zero_()
            window_batches = 0
    mean_loss = accelerator.reduce(epoch_loss, reduction="mean").item() / len(loader)
    return mean_loss, samples, int(accelerator.reduce(tokens, reduction="sum").item())


def is_better(metrics: dict[str, float], best: dict[str, float], metric: str) -> bool:
    """Better on `metric`; on a tie (accuracy often ties on small eval sets), lower eval loss wins."""
    sign = -1 if metric.endswith("loss") else 1
    return (sign * metrics[metric], -metrics["eval_loss"]) > (sign * best[metric], -best["eval_loss"])


def save_best(
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    report: str,
) -> None:
    """Write output_dir/best; a crash while saving leaves the previous best in place."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    staging, best = output_dir / "best.tmp", output_dir / "best"
    shutil.rmtree(staging, ignore_errors=True)
    save_model(accelerator.unwrap_model(model), tokenizer, staging)
    shutil.rmtree(best, ignore_errors=True)
    os.replace(staging, best)
    (output_dir / "eval_predictions.jsonl").write_text(report)


def log(accelerator: Accelerator, output_dir: Path, record: dict[str, Any]) -> None:
    if accelerator.is_main_process:
        with (output_dir / "log_history.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return train(load_config(argv))


if __name__ == "__main__":
    main()
