"""The run machinery's bookkeeping (run_state.py) on folders and numbers alone: no model is trained here."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator

from config import SettingError
from run_state import (
    CHECKPOINTS,
    STATE_FILE,
    LossMeter,
    Progress,
    complete_checkpoints,
    find_checkpoint,
    log_record,
    prune_checkpoints,
    resumable_checkpoints,
)


def checkpoint(output_dir: Path, name: str, complete: bool = True) -> Path:
    folder = output_dir / CHECKPOINTS / name
    folder.mkdir(parents=True)
    if complete:
        (folder / STATE_FILE).write_text(json.dumps(asdict(Progress(8, 1, 1, step=int(name.split("-")[1])))))
    return folder


def test_only_complete_checkpoints_count_in_step_order(tmp_path: Path) -> None:
    for name in ("step-10", "step-9", "step-100"):
        checkpoint(tmp_path, name)
    checkpoint(tmp_path, "step-200", complete=False)  # a save cut short: no state file
    (tmp_path / CHECKPOINTS / "step-300.tmp").mkdir()  # a staging folder left by a crash
    names = [path.name for path in complete_checkpoints(tmp_path / CHECKPOINTS)]
    assert names == ["step-9", "step-10", "step-100"]  # by step, not by name
    assert find_checkpoint(tmp_path) == tmp_path / CHECKPOINTS / "step-100"


def test_pruning_keeps_the_newest_and_drops_staging_folders(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        checkpoint(tmp_path, f"step-{step}")
    (tmp_path / CHECKPOINTS / "step-5.tmp").mkdir()
    prune_checkpoints(tmp_path / CHECKPOINTS, keep=2)
    assert sorted(path.name for path in (tmp_path / CHECKPOINTS).iterdir()) == ["step-3", "step-4"]


def test_resume_skips_a_checkpoint_whose_state_does_not_read(tmp_path: Path) -> None:
    checkpoint(tmp_path, "step-1")
    (checkpoint(tmp_path, "step-2") / STATE_FILE).write_text("{not json")
    assert resumable_checkpoints(Accelerator(cpu=True), tmp_path) == [tmp_path / CHECKPOINTS / "step-1"]
    with pytest.raises(SettingError, match="holds no complete checkpoint"):
        resumable_checkpoints(Accelerator(cpu=True), tmp_path / "elsewhere")


def test_the_loss_meter_weighs_every_target_the_same() -> None:
    accelerator = Accelerator(cpu=True)
    meter, progress = LossMeter(accelerator.device), Progress(8, 1, 1)
    mask = torch.ones(2, 3, dtype=torch.long)
    meter.add(torch.tensor(6.0), torch.tensor(3), mask, step=1)  # 3 targets, mean loss 2
    meter.add(torch.tensor(1.0), torch.tensor(1), mask, step=1)  # 1 target, loss 1
    assert meter.read_window(accelerator) == pytest.approx(7 / 4)  # not the mean of the means, 1.5
    assert meter.drain(accelerator, progress) == pytest.approx(7.0)
    assert (progress.loss_sum, progress.targets, progress.tokens) == (pytest.approx(7.0), 4, 12)


def test_a_log_line_cut_short_is_skipped() -> None:
    assert log_record('{"step": 3, "loss": 0.5}') == {"step": 3, "loss": 0.5}
    assert log_record('{"step": 4, "lo') is None
