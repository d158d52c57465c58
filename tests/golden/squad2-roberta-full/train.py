"""Fine-tune the model in config.yaml for question-answering.

    python train.py [key=value ...]                   CPU or one GPU
    python train.py resume=true                       continue from the newest checkpoint in output_dir
    accelerate launch --num_processes 4 train.py      several GPUs, data parallel (torchrun works too)
    accelerate launch --config_file configs/accelerate/fsdp.yaml train.py   sharded: FSDP or DeepSpeed ZeRO

Settings come from config.yaml; `key=value` arguments override them. Writes to output_dir: `best/` (the
evaluation with the best `metric_for_best_model`), `checkpoints/step-N/` (training states to resume from),
metrics.json, log_history.jsonl, eval_predictions.jsonl, `tensorboard/` and the config the run used.

Exit status: 0 trained; 2 a setting, an input file, output_dir or its free disk space to fix first (one line
says which); 130 interrupted (Ctrl-C; the line names the checkpoint resume=true continues from); 1 a NaN loss,
or a bug (with its traceback).
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import (
    DistributedType,
    ProjectConfiguration,
    TorchDynamoPlugin,
    find_executable_batch_size,
    is_tensorboard_available,
    set_seed,
)
from safetensors import SafetensorError
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from config import Config, SettingError, is_hub_id, load_config
from data import build_collator, build_datasets
from evaluation import evaluate
from model import build_model, load_tokenizer, loss_targets, save_model

CHECKPOINTS = "checkpoints"  # output_dir/checkpoints/step-N: the training state after update N
STATE_FILE = "trainer_state.json"  # a checkpoint's Progress; written last, so a folder without it is incomplete
# What loading a damaged checkpoint raises: a missing file (OSError), a truncated or garbled one (safetensors' own
# error; RuntimeError from torch's zip reader; pickle's errors), or weights of another shape (RuntimeError).
UNLOADABLE = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, SafetensorError)
# What a write that runs out of disk raises: OSError, but safetensors and torch.save raise their own errors.
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


class Interrupted(SystemExit):
    """Ctrl-C: `python train.py` prints how to continue and exits 130, as shells report an interrupted program."""

    exit_code = 130


@dataclass
class Progress:
    """Where the run stands and what it has measured; saved in each checkpoint, so a resumed run continues it."""

    batch_size: int  # per process: the position in the data depends on it, so a resumed run keeps it
    gradient_accumulation_steps: int
    num_processes: int
    step: int = 0  # optimizer updates done
    epoch: int = 1  # the epoch in progress
    epoch_batches: int = 0  # batches of that epoch already trained on (this process's share)
    loss_sum: float = 0.0  # the losses of every target trained on so far (tokens or examples), all processes, added up
    targets: int = 0  # how many targets loss_sum adds up: the training loss is loss_sum / targets
    samples: int = 0  # examples trained on, all processes
    tokens: int = 0  # real (non-padding) input tokens trained on, all processes
    seconds: float = 0.0  # training time; evaluation and saving are not counted
    best: dict[str, Any] | None = None  # metrics of the best evaluation so far, with its epoch and step
    scheduler: dict[str, Any] = field(default_factory=dict)  # the learning-rate schedule's state


@dataclass
class Run:
    """Everything one training run works with, set up by `setup_run`."""

    cfg: Config
    accelerator: Accelerator
    tokenizer: PreTrainedTokenizerBase
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_loader: DataLoader
    eval_loader: DataLoader
    updates_per_epoch: int
    total_updates: int
    progress: Progress

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.total_updates / self.updates_per_epoch)

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg.output_dir)


def train(cfg: Config) -> dict[str, Any]:
    accelerator = setup_accelerator(cfg)
    # Checked before anything slow happens, so a bad combination fails in a second (load_config has checked
    # each setting alone).
    accumulation = accumulation_steps(cfg, cfg.batch_size, accelerator.num_processes)
    checkpoints = resumable_checkpoints(accelerator, Path(cfg.output_dir)) if cfg.resume else []
    check_paths(cfg)
    try:
        tokenizer = setup_tokenizer(cfg)
        if checkpoints:
            results = resume_run(cfg, accelerator, tokenizer, accumulation, checkpoints)
        else:
            results = fresh_run(cfg, accelerator, tokenizer, accumulation)
        if accelerator.is_main_process:
            (Path(cfg.output_dir) / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
        accelerator.print(json.dumps(results, indent=2))
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {how_to_continue(Path(cfg.output_dir))}") from None
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise disk_full(str(error.filename or "a file"), Path(cfg.output_dir)) from None
    finally:
        accelerator.end_training()  # flushes TensorBoard, also when the run stops early
    return results


def check_paths(cfg: Config) -> None:
    """The data files are there and output_dir takes files: found now, not after the model has loaded."""
    for key, value in {"train_file": cfg.train_file, "eval_file": cfg.eval_file}.items():
        if key == "eval_file" and value is None:
            continue  # eval_fraction of train_file is held out instead
        if hasattr(cfg, "train_split") and value and (is_hub_id(value) or is_saved_dataset(Path(value))):
            continue  # read with datasets (the layouts that have a train_split do)
        if not value or not Path(value).is_file():
            reason = "a folder, not a file" if value and Path(value).is_dir() else "no such file"
            raise SettingError(
                f"error: `{key}` must be an existing file, got {value or 'nothing'} ({reason}); "
                f"fix config.yaml or the {key}= override"
            )
    folder = Path(cfg.output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Writing a file is the test that cannot be wrong: os.access says yes to root whatever the permissions.
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        reason = "a file is in the way" if folder.is_file() else error.strerror
        raise SettingError(
            f"error: `output_dir` must be a folder that can be written to, got {folder} ({reason}); "
            "fix config.yaml or the output_dir= override"
        ) from None


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` (state.json) or `DatasetDict.save_to_disk`."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def setup_tokenizer(cfg: Config) -> PreTrainedTokenizerBase:
    try:
        return load_tokenizer(cfg)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise
        # transformers explains a model it cannot find (a typo, or a hub id while offline) in several lines, and
        # takes a folder that is not there for a hub id.
        name = str(cfg.model_name_or_path)
        missing = name.startswith(("/", ".", "~")) and not Path(name).expanduser().exists()
        reason = "no such folder" if missing else str(error).strip().splitlines()[0]
        raise SettingError(
            f"error: `model_name_or_path` {name} cannot be loaded ({reason}); "
            "fix config.yaml or the model_name_or_path= override"
        ) from None


def accumulation_steps(cfg: Config, batch_size: int, processes: int) -> int:
    """gradient_accumulation_steps, or the number that makes each update average effective_batch_size examples."""
    if cfg.effective_batch_size is None:
        return cfg.gradient_accumulation_steps
    per_step = batch_size * processes
    if cfg.effective_batch_size % per_step:
        raise SettingError(
            f"error: effective_batch_size={cfg.effective_batch_size} is not a multiple of batch_size x processes = "
            f"{batch_size} x {processes} = {per_step}; use a multiple of {per_step} or change batch_size"
        )
    return cfg.effective_batch_size // per_step


def setup_accelerator(cfg: Config) -> Accelerator:
    precision = cfg.mixed_precision
    if precision == "auto":
        # bf16 keeps fp32's range, so it needs no loss scaling; GPUs without it (and CPUs) train in fp32.
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    # Launched as several processes (torchrun, accelerate launch) on a machine without CUDA: accelerate needs
    # cpu=True to join them with the gloo backend; otherwise each process would train alone.
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    tensorboard = cfg.report_to == "tensorboard" and is_tensorboard_available()
    project = ProjectConfiguration(project_dir=cfg.output_dir, logging_dir=str(Path(cfg.output_dir) / "tensorboard"))
    # Regional compilation: one compile of the transformer block serves every layer, so compiling takes seconds
    # to a minute where the whole model would take several; prepare() applies it.
    compiled = None
    if cfg.torch_compile:
        compiled = TorchDynamoPlugin(backend=cfg.torch_compile_backend, use_regional_compilation=True)
    accelerator = Accelerator(
        mixed_precision=precision,
        cpu=cpu,
        log_with="tensorboard" if tensorboard else None,
        project_config=project,
        dynamo_plugin=compiled,
    )
    if cfg.report_to == "tensorboard" and not tensorboard:
        accelerator.print(
            "TensorBoard logging is off: the tensorboard package is not installed "
            "(pip install tensorboard, or set report_to=none to silence this)"
        )
    return accelerator


def start_tracking(run: Run, resumed: bool) -> None:
    """Open the TensorBoard log once the starting step is known (a retry after out-of-memory keeps it open)."""
    if run.accelerator.trackers:
        return
    # TensorBoard's hyperparameter table takes numbers, strings and booleans only.
    hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in run.cfg.to_dict().items()}
    # TensorBoard hides the events at and after purge_step that an earlier writer left in the folder: a resumed
    # run hides what the interrupted one logged after its checkpoint (those steps are trained again), and a
    # fresh run hides an earlier run's curves, as it replaces its best model and checkpoints.
    purge_step = run.progress.step + 1 if resumed else 0
    run.accelerator.init_trackers("run", config=hparams, init_kwargs={"tensorboard": {"purge_step": purge_step}})


def fresh_run(
    cfg: Config, accelerator: Accelerator, tokenizer: PreTrainedTokenizerBase, accumulation: int
) -> dict[str, Any]:
    """Train from the start. Out of memory, it starts over with a smaller batch and more accumulation (accelerate's
    find_executable_batch_size retries): each update is still the same one, the same examples with every target
    weighing the same (train_update)."""
    if not cfg.auto_find_batch_size or accelerator.num_processes > 1:
        # With several processes an out-of-memory error in one of them cannot be retried in step with the
        # others (they would wait for it forever), so it stops the run instead.
        return train_with(cfg, accelerator, tokenizer, cfg.batch_size, accumulation, [])
    per_update = cfg.batch_size * accumulation  # examples per update, kept by every retry
    tried = cfg.batch_size

    def smaller() -> int:
        nonlocal tried
        if tried == 1:
            raise SettingError("error: out of memory even at batch_size=1; lower max_length or use a smaller model")
        # The largest divisor of the update size up to half the batch: the accumulation stays a whole number.
        failed, tried = tried, max(d for d in range(1, tried // 2 + 1) if per_update % d == 0)
        accelerator.print(
            f"out of memory at batch_size={failed}: starting over with batch_size={tried} "
            f"x {per_update // tried} accumulation steps"
        )
        return tried

    @find_executable_batch_size(starting_batch_size=cfg.batch_size, reduce_batch_size_fn=smaller)
    def attempt(batch_size: int) -> dict[str, Any]:
        # Drops the failed attempt's model, optimizer and loaders, so that their memory is free for this one.
        accelerator.free_memory()
        return train_with(cfg, accelerator, tokenizer, batch_size, per_update // batch_size, [])

    return attempt()


def resume_run(
    cfg: Config,
    accelerator: Accelerator,
    tokenizer: PreTrainedTokenizerBase,
    accumulation: int,
    checkpoints: list[Path],
) -> dict[str, Any]:
    checkpoint = checkpoints[0]  # the newest: every checkpoint of a run has its batch layout
    saved = read_progress(checkpoint)
    if saved.num_processes != accelerator.num_processes:
        raise SettingError(
            f"error: {checkpoint} was written by {saved.num_processes} process(es), this run has "
            f"{accelerator.num_processes}; resume with the same number, or start over without resume=true"
        )
    if (saved.batch_size, saved.gradient_accumulation_steps) != (cfg.batch_size, accumulation):
        accelerator.print(
            f"resuming with the checkpoint's batch_size={saved.batch_size} x {saved.gradient_accumulation_steps} "
            "accumulation steps: the position in the data depends on them"
        )
    return train_with(cfg, accelerator, tokenizer, saved.batch_size, saved.gradient_accumulation_steps, checkpoints)


def train_with(
    cfg: Config,
    accelerator: Accelerator,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    accumulation: int,
    checkpoints: list[Path],
) -> dict[str, Any]:
    """Set up with this batch layout, train (from the start, or from the newest of `checkpoints` that loads) and
    return the results."""
    run = setup_run(cfg, accelerator, tokenizer, batch_size, accumulation)
    if checkpoints:
        restore(run, checkpoints)
    else:
        start_outputs(run)
    start_tracking(run, resumed=bool(checkpoints))
    train_epochs(run)
    return summary(run)


def setup_run(
    cfg: Config, accelerator: Accelerator, tokenizer: PreTrainedTokenizerBase, batch_size: int, accumulation: int
) -> Run:
    accelerator.gradient_accumulation_steps = accumulation
    # Every attempt starts from the seed, so a retried run is the run its batch size gives.
    set_seed(cfg.seed)
    train_loader, eval_loader = setup_data(cfg, tokenizer, accelerator, batch_size)
    # Counted before prepare() shards the batches over the processes: each process gets every n-th batch.
    batches = math.ceil(len(train_loader) / accelerator.num_processes)
    updates_per_epoch = math.ceil(batches / accumulation)  # a last partial accumulation still updates
    total_updates = cfg.max_steps or updates_per_epoch * cfg.num_epochs
    model = build_model(cfg, tokenizer)
    optimizer = setup_optimizer(cfg, model)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # DeepSpeed clips gradients inside its own step (clip_grad_norm_ only reads the norm): give it our limit.
        plugin = accelerator.state.deepspeed_plugin
        plugin.fill_match("gradient_clipping", must_match=False, gradient_clipping=cfg.max_grad_norm)
    model, optimizer, train_loader, eval_loader = accelerator.prepare(model, optimizer, train_loader, eval_loader)
    # Stepped by hand once per update (not prepared), so its length is in this process's updates.
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_updates), total_updates)
    return Run(
        cfg=cfg,
        accelerator=accelerator,
        tokenizer=tokenizer,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train_loader=train_loader,
        eval_loader=eval_loader,
        updates_per_epoch=updates_per_epoch,
        total_updates=total_updates,
        progress=Progress(batch_size, accumulation, accelerator.num_processes),
    )


def setup_data(
    cfg: Config, tokenizer: PreTrainedTokenizerBase, accelerator: Accelerator, batch_size: int
) -> tuple[DataLoader, DataLoader]:
    train_set, eval_set = build_datasets(cfg, tokenizer)
    on_gpu = accelerator.device.type == "cuda"
    collator = build_collator(tokenizer, on_gpu)
    loader_args = {"collate_fn": collator, "num_workers": cfg.num_workers, "pin_memory": on_gpu}
    lengths = train_set.lengths if cfg.group_by_length else None
    train_loader = DataLoader(
        train_set,
        batch_size=batch_size,
        sampler=EpochSampler(len(train_set), cfg.seed, lengths, batch_size, cfg.length_group_batches),
        # The loader draws a seed for its workers at each pass: from its own generator, not from the global one
        # that dropout uses, so a resumed run draws the same dropout masks as an uninterrupted one.
        generator=torch.Generator(),
        **loader_args,
    )
    # Shrinks with the training batch when an out-of-memory error made the run start over with a smaller one.
    eval_batch_size = max(1, cfg.eval_batch_size * batch_size // cfg.batch_size)
    eval_loader = DataLoader(eval_set, batch_size=eval_batch_size, **loader_args)
    accelerator.print(f"{len(train_set)} training and {len(eval_set)} evaluation examples")
    return train_loader, eval_loader


class EpochSampler(Sampler[int]):
    """A random order of the training examples that depends on the seed and the epoch only.

    A run resumed mid-epoch needs that epoch's order again, which a sampler drawing from the global random state
    would not give. With `lengths`, batches hold examples of similar length (less compute spent on padding)
    and their order stays random: `group_batches` batches' worth of shuffled examples (None: up to 50) are
    sorted by length and cut into batches, and the batches of the whole epoch are then shuffled.
    """

    def __init__(
        self, size: int, seed: int, lengths: list[int] | None, batch_size: int, group_batches: int | None
    ) -> None:
        self.size, self.seed, self.lengths, self.batch_size = size, seed, lengths, batch_size
        self.group_batches = group_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by accelerate's data loader before each pass."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        if self.lengths is None:
            return iter(order)
        return iter(index for batch in self.length_grouped(order, generator) for index in batch)

    def length_grouped(self, order: list[int], generator: torch.Generator) -> list[list[int]]:
        """Batches of similar length in a random order, the one with the longest example first (an out-of-memory
        error shows at the first step, not mid-epoch). Not transformers' get_length_grouped_indices: it leaves
        each window's batches longest to shortest, a drift of length (and of what goes with it, the labels)
        through the epoch; on SST-2 that order trained 1.5 points below random batches, and shuffled, the same
        windows matched them (mean of 5 seeds) at 2.4 times their speed."""
        window = self.batch_size * (self.group_batches or 50)
        batches = []
        for start in range(0, len(order), window):
            part = sorted(order[start : start + window], key=lambda i: -self.lengths[i])
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        # The one short batch (the epoch's remainder) stays last: the loader cuts batches from this order.
        full, rest = (batches[:-1], batches[-1:]) if len(batches[-1]) < self.batch_size else (batches, [])
        full = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        if full:
            longest = max(range(len(full)), key=lambda b: self.lengths[full[b][0]])
            full[0], full[longest] = full[longest], full[0]
        return full + rest


def setup_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            # Biases and LayerNorm weights (the 1-d parameters) are not decayed, as in BERT's recipe.
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates every parameter in one pass (one launch on a GPU; on a CPU, vectorised), as the
    # Trainer's default optimizer does.
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)


def train_epochs(run: Run) -> None:
    for epoch in range(run.progress.epoch, run.num_epochs + 1):
        if run.progress.step >= run.total_updates and run.progress.epoch_batches == 0:
            break  # resumed after the last evaluation: nothing is left to train or evaluate
        run.progress.epoch = epoch
        train_epoch(run)
        evaluate_and_keep_best(run)
        # The epoch is done: a checkpoint written from here on resumes at the start of the next one.
        run.progress.epoch, run.progress.epoch_batches = epoch + 1, 0
        if run.cfg.save_steps is None:
            save_checkpoint(run)


def train_epoch(run: Run) -> None:
    """Train on the rest of the epoch in progress (all of it unless resuming mid-epoch) or up to the last update."""
    cfg, accelerator, progress = run.cfg, run.accelerator, run.progress
    run.model.train()
    run.train_loader.set_epoch(progress.epoch)  # the sampler's order for this epoch
    done = progress.epoch_batches
    batches = accelerator.skip_first_batches(run.train_loader, done) if done else run.train_loader
    batches.set_epoch(progress.epoch)
    meter = LossMeter(accelerator.device)
    bar = tqdm(batches, desc=f"epoch {progress.epoch}", initial=done, total=len(run.train_loader),
               disable=not accelerator.is_local_main_process)  # fmt: skip
    for update in updates(bar, progress.gradient_accumulation_steps):
        if progress.step >= run.total_updates:
            break  # max_steps reached mid-epoch
        train_update(run, update, meter)
        progress.epoch_batches += len(update)
        progress.samples += sum(len(batch["input_ids"]) for batch in update) * accelerator.num_processes
        run.scheduler.step()
        progress.step += 1
        if progress.step % cfg.logging_steps == 0:
            value = meter.read_window(accelerator)
            stop_if_not_finite(run, meter, value)
            log(run, {"step": progress.step, "epoch": progress.epoch, "loss": value,
                      "learning_rate": run.scheduler.get_last_lr()[0]})  # fmt: skip
            bar.set_postfix(loss=f"{value:.4f}")
        if cfg.save_steps and progress.step % cfg.save_steps == 0:
            stop_if_not_finite(run, meter, meter.drain(accelerator, progress))
            save_checkpoint(run)
            meter.restart_clock()  # saving is not training time
    stop_if_not_finite(run, meter, meter.drain(accelerator, progress))


def updates(batches: Iterable[dict[str, torch.Tensor]], size: int) -> Iterator[list[dict[str, torch.Tensor]]]:
    """The batches in groups of `size`, one group per update; the epoch's last group may be smaller."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def train_update(run: Run, batches: list[dict[str, torch.Tensor]], meter: LossMeter) -> None:
    """One optimizer update from this process's micro-batches of it. Its loss is the sum of the target losses
    (tokens, or examples: model.loss_targets) over all its micro-batches and processes, divided by their number,
    so that every target weighs the same however the update is split (as the Trainer's num_items_in_batch does)."""
    accelerator, model = run.accelerator, run.model
    targets = [loss_targets(batch) for batch in batches]
    # Counted before the first forward pass, over every process: each micro-batch's share is known up front.
    total = accelerator.reduce(torch.stack(targets).sum(), reduction="sum").clamp(min=1)
    # accelerator.backward divides by the accumulation steps (DeepSpeed does the same) and the processes average
    # their gradients: multiplied back, the update's gradient is that of (its summed losses) / total.
    scale = accelerator.gradient_accumulation_steps * accelerator.num_processes / total
    for index, (batch, count) in enumerate(zip(batches, targets, strict=True)):
        last = index == len(batches) - 1
        # Gradients are combined across processes once, after the update's last micro-batch; the optimizer (and
        # DeepSpeed) steps there only.
        accelerator.sync_gradients = last
        with nullcontext() if last else accelerator.no_sync(model):
            loss = model(**batch).loss
            # The model's loss is its mean over the micro-batch's targets; times their number, their sum. With no
            # target at all (every label -100) the mean is NaN (0 / 0): the micro-batch adds nothing instead.
            summed = torch.where(count > 0, loss * count, 0.0)
            accelerator.backward(summed * scale)
        meter.add(summed.detach(), count, batch["attention_mask"], run.progress.step + 1)
    accelerator.clip_grad_norm_(model.parameters(), run.cfg.max_grad_norm)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)


class LossMeter:
    """Training losses added up on the device, read back only at logging, saving and evaluation points.

    Reading a loss (`.item()`) makes the CPU wait until the GPU has caught up, so doing it at every step would
    stall the queue of kernels. Instead every step marks, on the device, the first update whose loss is not
    finite (one small elementwise op, no wait); the sums are read and checked every `logging_steps` updates and
    before every checkpoint and evaluation. A NaN stops the run at most `logging_steps` updates after it
    appeared, and never after a checkpoint or a best model was written from the weights it damaged.
    """

    def __init__(self, device: torch.device) -> None:
        # Summed target losses and their number (train_update's targets): since the last drain, and since the last
        # logged loss.
        self.total, self.window = torch.zeros((), device=device), torch.zeros((), device=device)
        self.total_targets = torch.zeros((), dtype=torch.long, device=device)
        self.window_targets = torch.zeros((), dtype=torch.long, device=device)
        self.tokens = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self.started = time.perf_counter()

    def add(self, loss_sum: torch.Tensor, targets: torch.Tensor, attention_mask: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(loss_sum) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, step, self.first_bad_step)
        self.total += loss_sum
        self.window += loss_sum
        self.total_targets += targets
        self.window_targets += targets
        self.tokens += attention_mask.sum()

    def read_window(self, accelerator: Accelerator) -> float:
        """The mean loss per target since the last read, over all processes: what the eval loss is on its set."""
        loss_sum = accelerator.reduce(self.window, reduction="sum").item()
        targets = accelerator.reduce(self.window_targets, reduction="sum").item()
        self.window.zero_()
        self.window_targets.zero_()
        return loss_sum / max(targets, 1)

    def drain(self, accelerator: Accelerator, progress: Progress) -> float:
        """Move the sums into `progress`; returns the drained loss sum, which is finite when every loss was."""
        total = accelerator.reduce(self.total, reduction="sum").item()
        progress.loss_sum += total
        progress.targets += int(accelerator.reduce(self.total_targets, reduction="sum").item())
        progress.tokens += int(accelerator.reduce(self.tokens, reduction="sum").item())
        progress.seconds += time.perf_counter() - self.started
        self.total.zero_()
        self.total_targets.zero_()
        self.tokens.zero_()
        self.restart_clock()
        return total

    def restart_clock(self) -> None:
        self.started = time.perf_counter()

    def first_bad(self, accelerator: Accelerator, default: int) -> int:
        """The first update with a non-finite loss on any process (a step all processes take together)."""
        marks = [step for step in accelerator.gather(self.first_bad_step.reshape(1)).tolist() if step >= 0]
        return min(marks, default=default)


def stop_if_not_finite(run: Run, meter: LossMeter, value: float) -> None:
    """A NaN or infinite loss ends the run with one line; the checkpoints written before it stay as they are."""
    if math.isfinite(value):
        return
    step = meter.first_bad(run.accelerator, default=run.progress.step)
    last = find_checkpoint(run.output_dir)
    kept = f"the last good checkpoint is {last} (resume=true continues from it)" if last else "no checkpoint was kept"
    fp32 = " or train in fp32 (mixed_precision=no)" if run.accelerator.mixed_precision != "no" else ""
    message = (
        f"error: the training loss became {value} at step {step} (epoch {run.progress.epoch}); lower "
        f"learning_rate (now {run.cfg.learning_rate}){fp32}, or look for broken examples in the data; {kept}"
    )
    raise SystemExit(message if run.accelerator.is_main_process else 1)


def evaluate_and_keep_best(run: Run) -> None:
    progress = run.progress
    metrics, report = evaluate(run.model, run.eval_loader, run.accelerator, run.cfg)
    log(run, {"step": progress.step, "epoch": progress.epoch, **metrics})
    run.accelerator.print(f"epoch {progress.epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    if progress.best is None or is_better(metrics, progress.best, run.cfg.metric_for_best_model):
        progress.best = {**metrics, "best_epoch": progress.epoch, "best_step": progress.step}
        save_best(run, report)


def is_better(metrics: dict[str, float], best: dict[str, float], metric: str) -> bool:
    """Better on `metric`; on a tie (accuracy often ties on small eval sets), lower eval loss wins."""
    sign = -1 if metric.endswith("loss") else 1
    return (sign * metrics[metric], -metrics["eval_loss"]) > (sign * best[metric], -best["eval_loss"])


def save_best(run: Run, report: str) -> None:
    """Write output_dir/best with the whole model; a crash while saving leaves the previous best in place."""
    accelerator = run.accelerator
    # Under FSDP and DeepSpeed ZeRO-3 every process holds a slice of each weight: gathering the whole model is a
    # step all processes take together (onto the main process's CPU).
    state_dict = accelerator.get_state_dict(run.model) if weights_are_sharded(accelerator) else None
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    if state_dict is None:
        model = accelerator.unwrap_model(run.model, keep_torch_compile=False)
    else:
        model = whole_model(run, state_dict)
    staging, best = run.output_dir / "best.tmp", run.output_dir / "best"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        save_model(model, run.tokenizer, staging)
    except WRITE_ERRORS as error:
        if not out_of_space(error, run.output_dir):
            raise
        shutil.rmtree(staging, ignore_errors=True)  # frees what it took; the previous best/ is untouched
        raise disk_full(f"the best model in {best}", run.output_dir) from None
    shutil.rmtree(best, ignore_errors=True)
    os.replace(staging, best)
    (run.output_dir / "eval_predictions.jsonl").write_text(report)


def weights_are_sharded(accelerator: Accelerator) -> bool:
    """Whether no single process holds the whole model: FSDP, and DeepSpeed's ZeRO stage 3."""
    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    plugin = accelerator.state.deepspeed_plugin
    return accelerator.distributed_type == DistributedType.DEEPSPEED and plugin.zero_stage == 3


def whole_model(run: Run, state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A fresh, unsharded copy of the model on the CPU holding the gathered weights, for save_model.

    It costs one more load of the base model per best save; in return save_model sees an ordinary model, the
    same as without sharding.
    """
    plugin = run.accelerator.state.deepspeed_plugin
    # Built on the main process alone: ZeRO-3's sharded construction would wait for the other processes.
    unsharded = plugin.zero3_init_context_manager(enable=False) if plugin is not None else nullcontext()
    with unsharded:
        model = build_model(run.cfg, run.tokenizer)
    model.load_state_dict(state_dict)
    return model


def save_checkpoint(run: Run) -> None:
    """accelerator.save_state into checkpoints/step-N, made visible by one rename once every process is done."""
    if run.cfg.save_total_limit == 0:
        return
    accelerator, progress = run.accelerator, run.progress
    folder = run.output_dir / CHECKPOINTS
    staging, final = folder / f"step-{progress.step}.tmp", folder / f"step-{progress.step}"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        # Model, optimizer and each process's random states (under FSDP and ZeRO each process writes its shard).
        accelerator.save_state(str(staging))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            progress.scheduler = run.scheduler.state_dict()
            (staging / STATE_FILE).write_text(json.dumps(asdict(progress), indent=2) + "\n")
    except WRITE_ERRORS as error:
        if not out_of_space(error, folder):
            raise
        shutil.rmtree(staging, ignore_errors=True)  # frees what it took; the earlier checkpoints are untouched
        raise disk_full(f"checkpoint {final.name} in {folder}", run.output_dir) from None
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        prune_checkpoints(folder, run.cfg.save_total_limit)
        if accelerator.trackers:
            # The TensorBoard log reaches the checkpoint too, even if the process is killed before it flushes.
            accelerator.get_tracker("tensorboard", unwrap=True).flush()
    accelerator.wait_for_everyone()


def out_of_space(error: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of disk: OSError says so; safetensors' and torch's errors may not, so a
    disk left with under a megabyte tells."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def disk_full(what: str, output_dir: Path) -> SettingError:
    then = how_to_continue(output_dir)
    return SettingError(f"error: no space left on device while saving {what}; free space and {then}")


def how_to_continue(output_dir: Path) -> str:
    last = find_checkpoint(output_dir)
    if last is None:
        return "run `python train.py` again (no checkpoint was saved yet)"
    return f"`python train.py resume=true` continues from checkpoint {last}"


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Keep the newest `keep` checkpoints; staging folders left by a crash go too."""
    for stale in folder.glob("*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old)


def complete_checkpoints(folder: Path) -> list[Path]:
    """step-N folders holding their state file, oldest first; a save cut short left step-N.tmp instead."""
    found = [
        (int(match[1]), path)
        for path in folder.glob("step-*")
        if (match := re.fullmatch(r"step-(\d+)", path.name)) and (path / STATE_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def find_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint in output_dir."""
    found = complete_checkpoints(output_dir / CHECKPOINTS)
    return found[-1] if found else None


def resumable_checkpoints(accelerator: Accelerator, output_dir: Path) -> list[Path]:
    """resume=true: the complete checkpoints whose state file reads, newest first; restore() takes the first
    that loads."""
    found = complete_checkpoints(output_dir / CHECKPOINTS)
    if not found:
        raise SettingError(
            f"error: resume=true, but {output_dir / CHECKPOINTS} holds no complete checkpoint; "
            "train without resume=true to start over"
        )
    readable = []
    for checkpoint in reversed(found):
        try:
            read_progress(checkpoint)
            readable.append(checkpoint)
        except (OSError, ValueError, TypeError) as error:  # TypeError: JSON that is not a Progress
            accelerator.print(skipped(checkpoint, error))
    if not readable:
        raise no_loadable_checkpoint(output_dir)
    return readable


def read_progress(checkpoint: Path) -> Progress:
    return Progress(**json.loads((checkpoint / STATE_FILE).read_text()))


def restore(run: Run, checkpoints: list[Path]) -> None:
    """Continue from the newest of `checkpoints` that loads: weights, optimizer, random states, schedule and the
    run's own progress."""
    checkpoint = load_newest(run, checkpoints)
    run.accelerator.print(f"resuming from {checkpoint}")
    run.progress = read_progress(checkpoint)
    run.scheduler.load_state_dict(run.progress.scheduler)
    if run.accelerator.is_main_process:
        # Checkpoints past it were skipped as damaged; this run trains their steps again and saves them anew.
        for later in complete_checkpoints(run.output_dir / CHECKPOINTS):
            if int(later.name.removeprefix("step-")) > run.progress.step:
                shutil.rmtree(later)
        # Records after the checkpoint came from the interrupted run: they are trained again. A line cut short
        # (by a crash or a full disk) goes with them.
        log_file = run.output_dir / "log_history.jsonl"
        lines = log_file.read_text().splitlines() if log_file.is_file() else []
        kept = [line for line in lines if (record := log_record(line)) and record["step"] <= run.progress.step]
        log_file.write_text("".join(line + "\n" for line in kept))
        write_run_config(run)


def load_newest(run: Run, checkpoints: list[Path]) -> Path:
    """accelerator.load_state from the first of `checkpoints` that loads; one that does not is named and skipped
    (a later load replaces whatever it had loaded)."""
    accelerator = run.accelerator
    for checkpoint in checkpoints:
        failed = False
        try:
            accelerator.load_state(str(checkpoint))
        except UNLOADABLE as error:
            failed = True
            print(skipped(checkpoint, error), flush=True)
        # Each process reads files of its own: all of them skip a checkpoint that failed on any, to stay in step.
        if not accelerator.gather(torch.tensor([failed], device=accelerator.device)).any():
            return checkpoint
    raise no_loadable_checkpoint(run.output_dir)


def skipped(checkpoint: Path, error: BaseException) -> str:
    reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0]  # the first sentence says what failed
    return f"skipping checkpoint {checkpoint}: it cannot be loaded ({type(error).__name__}: {reason})"


def no_loadable_checkpoint(output_dir: Path) -> SettingError:
    return SettingError(
        f"error: resume=true, but no checkpoint in {output_dir / CHECKPOINTS} can be loaded (each is named "
        "above); start fresh with resume=false"
    )


def log_record(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def start_outputs(run: Run) -> None:
    """A fresh run starts a fresh log; checkpoints of an earlier run in output_dir are removed, so that
    resume=true never continues the wrong run."""
    if not run.accelerator.is_main_process:
        return
    run.output_dir.mkdir(parents=True, exist_ok=True)
    old = run.output_dir / CHECKPOINTS
    if old.is_dir():
        run.accelerator.print(f"starting over: removing earlier checkpoints in {old} (resume=true continues from them)")
        shutil.rmtree(old)
    (run.output_dir / "log_history.jsonl").write_text("")
    write_run_config(run)


def write_run_config(run: Run) -> None:
    (run.output_dir / "train_config.yaml").write_text(yaml.safe_dump(run.cfg.to_dict(), sort_keys=False))


def log(run: Run, record: dict[str, Any]) -> None:
    """One line in log_history.jsonl, and the same values in TensorBoard (train/... and eval/...)."""
    scalars = {
        (f"eval/{key[5:]}" if key.startswith("eval_") else f"train/{key}"): value
        for key, value in record.items()
        if key not in ("step", "epoch")
    }
    run.accelerator.log(scalars, step=record["step"])
    if run.accelerator.is_main_process:
        with (run.output_dir / "log_history.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")


def summary(run: Run) -> dict[str, Any]:
    """metrics.json: the best evaluation's metrics, the training figures and the batch layout it ran with."""
    progress = run.progress
    return {
        **progress.best,
        # The mean over every target trained on (tokens, or examples), as eval_loss is over the eval set's.
        "train_loss": progress.loss_sum / max(progress.targets, 1),
        "train_steps": progress.step,
        "train_samples": progress.samples,
        "train_runtime": progress.seconds,
        # Training steps only: evaluation and checkpoint saving are not counted.
        "train_samples_per_second": progress.samples / progress.seconds,
        # Real (non-padding) input tokens: the figure that compares runs with different padding.
        "train_tokens_per_second": progress.tokens / progress.seconds,
        # As trained, after any out-of-memory back-off.
        "train_batch_size": progress.batch_size,
        "gradient_accumulation_steps": progress.gradient_accumulation_steps,
        "effective_batch_size": progress.batch_size * progress.gradient_accumulation_steps * progress.num_processes,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return train(load_config(argv))


def command_line(argv: list[str] | None = None) -> int:
    """`python train.py`: a setting to fix and Ctrl-C end in one line and their exit status (2, 130) instead
    of a traceback. Any other error keeps its traceback: it is a bug to see whole."""
    try:
        main(argv)
    except (SettingError, Interrupted) as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # before training started: nothing to continue from
        print("interrupted", file=sys.stderr)
        return Interrupted.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(command_line())
