"""The unchanged train.py under torchrun with two processes on the CPU (gloo): one run, not two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, run_cli

pytestmark = pytest.mark.slow
# The smoke run's recipe (16 epochs of 32 rows, 8 rows an update): a random tiny model learns from it reliably.
SETTINGS = ["num_epochs=16", "learning_rate=1e-2", "logging_steps=1", "warmup_ratio=0.0", "max_length=64",
            "max_train_samples=32", "length_group_batches=1"]  # fmt: skip


def train(project: Path, tiny: Path, out: Path, processes: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    # The same 8 examples an update either way: each of two processes takes 4 of them.
    command = [*(launcher if processes > 1 else [sys.executable]), "train.py", f"model_name_or_path={tiny}",
               f"output_dir={out}", f"batch_size={8 // processes}", *SETTINGS]  # fmt: skip
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count('"train_samples_per_second"') == 1, "metrics printed by more than one process"
    return json.loads((out / "metrics.json").read_text())


def losses(out: Path) -> list[float]:
    return [r["loss"] for r in map(json.loads, (out / "log_history.jsonl").read_text().splitlines()) if "loss" in r]


def test_two_processes_train_one_model_and_score_each_eval_example_once(tmp_path: Path) -> None:
    created = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
                      "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    project = tmp_path / "p"
    build = ("from pathlib import Path; import sys; from config import load_config; from tests.smoke import "
             "build_tiny_model; build_tiny_model(load_config([]), Path(sys.argv[1]))")  # fmt: skip
    subprocess.run([sys.executable, "-c", build, str(tmp_path / "tiny")], cwd=project, check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True)  # fmt: skip

    single = train(project, tmp_path / "tiny", tmp_path / "one", processes=1)
    double = train(project, tmp_path / "tiny", tmp_path / "two", processes=2)

    eval_rows = 5  # 10% of the 45 rows, held out
    assert single["eval_samples"] == double["eval_samples"] == eval_rows  # none dropped, none counted twice
    assert single["train_samples"] == double["train_samples"] == 32 * 16
    assert single["effective_batch_size"] == double["effective_batch_size"] == 8
    # Each process takes half of every update's examples: as many updates as one process, and the loss falls.
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(two) == len(one) == 64
    for curve in (one, two):
        quarter = len(curve) // 4
        assert sum(curve[-quarter:]) < 0.95 * sum(curve[:quarter])
    # The best model is written once, completely; each training checkpoint holds both processes' random states.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "best", "checkpoints", "classification_report.txt", "log_history.jsonl", "metrics.json", "tensorboard",
        "train_config.yaml"]  # fmt: skip
    assert (tmp_path / "two" / "best" / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-60", "step-64"]
    assert {"model.safetensors", "random_states_0.pkl", "random_states_1.pkl", "trainer_state.json"} <= {
        p.name for p in (tmp_path / "two" / "checkpoints" / "step-64").iterdir()}  # fmt: skip
