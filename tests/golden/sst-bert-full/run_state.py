"""The run machinery train.py uses: where a run stands (`Progress`, saved in each checkpoint), the training-loss
meter, checkpoints (written in one rename, pruned, found and restored on resume=true), the best model (gathered
whole under FSDP and DeepSpeed ZeRO-3), and the run's outputs: log_history.jsonl, TensorBoard and the figures of
metrics.json. train.py holds the loop and its setup; what is trained, and how, is decided there.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import re
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors import SafetensorError
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from config import Config, SettingError
from evaluation import REPORT_FILE
from model import build_model, save_model

PROJECT = Path(__file__).resolve().parent.name  # what trackers call the run's project (the project folder)
CHECKPOINTS = "checkpoints"  # output_dir/checkpoints/step-N: the training state after update N
STATE_FILE = "trainer_state.json"  # a checkpoint's Progress; written last, so a folder without it is incomplete
# What loading a damaged checkpoint raises: a missing file (OSError), a truncated or garbled one (safetensors' own
# error; RuntimeError from torch's zip reader; pickle's errors), or weights of another shape (RuntimeError).
UNLOADABLE = (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, SafetensorError)
# What a write that runs out of disk raises: OSError, but safetensors and torch.save raise their own errors.
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


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
    stale_evaluations: int = 0  # evaluations in a row that did not improve on the best (early_stopping_patience)
    stopped_early: bool = False  # early_stopping_patience ended the run
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
    # The training loss of a batch, where it is not the model's own (class_weights, label_smoothing).
    loss_function: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor] | None = None

    @property
    def num_epochs(self) -> int:
        return math.ceil(self.total_updates / self.updates_per_epoch)

    @property
    def output_dir(self) -> Path:
        return Path(self.cfg.output_dir)


def start_tracking(run: Run, resumed: bool) -> None:
    """Start the report_to trackers once the starting step is known (a retry after out-of-memory keeps them), as
    the project folder's name: the wandb project, the MLflow experiment, the TensorBoard run in
    output_dir/tensorboard. Where wandb and MLflow send their records, their own settings say (WANDB_MODE,
    MLFLOW_TRACKING_URI, ...); wandb keeps its local files in output_dir."""
    if run.accelerator.trackers or not run.accelerator.log_with:
        return
    # TensorBoard's hyperparameter table takes numbers, strings and booleans only.
    hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in run.cfg.to_dict().items()}
    # TensorBoard hides the events at and after purge_step that an earlier writer left in the folder: a resumed
    # run hides what the interrupted one logged after its checkpoint (those steps are trained again), and a
    # fresh run hides an earlier run's curves, as it replaces its best model and checkpoints.
    purge_step = run.progress.step + 1 if resumed else 0
    options = {"tensorboard": {"purge_step": purge_step}, "wandb": {"dir": str(run.output_dir)}}
    try:
        run.accelerator.init_trackers(PROJECT, config=hparams, init_kwargs=options)
    except Exception as error:  # a tracker's own setup (no wandb login, an unreachable MLflow server): any error
        run.accelerator.trackers = []  # the one that failed to start has nothing to finish
        reason = (str(error).strip().splitlines() or [""])[0]
        raise SettingError(
            f"error: a report_to tracker did not start ({type(error).__name__}: {reason}); fix its setup "
            "(e.g. `wandb login`, WANDB_MODE=offline, MLFLOW_TRACKING_URI) or leave it out of report_to"
        ) from None


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
    (run.output_dir / REPORT_FILE).write_text(report)


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
        if any(tracker.name == "tensorboard" for tracker in accelerator.trackers):
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
        "stopped_early": progress.stopped_early,
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
