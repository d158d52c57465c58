"""QLoRA in text-generation projects: `load_in_4bit: true` builds bitsandbytes' 4-bit NF4 config on a CUDA machine
and stops in one line anywhere it cannot train. No GPU here: the CUDA side is checked up to the config handed to
from_pretrained, with the device probes patched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, run_cli

PROBE = """
import importlib.util, sys, torch
from unittest import mock
from config import load_config
import model

cfg = load_config(sys.argv[1:-1])  # the last argument is cuda=yes or cuda=no
cuda = sys.argv[-1] == "cuda=yes"
found = importlib.util.find_spec
installed = lambda name, *rest: object() if name == "bitsandbytes" else found(name, *rest)
with mock.patch.object(torch.cuda, "is_available", return_value=cuda), \\
        mock.patch.object(torch.cuda, "is_bf16_supported", return_value=True), \\
        mock.patch.object(importlib.util, "find_spec", installed):
    config = model.quantization(cfg)
print(None if config is None else (config.load_in_4bit, config.bnb_4bit_quant_type, config.bnb_4bit_use_double_quant,
                                   str(config.bnb_4bit_compute_dtype)))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qlora")
    created = run_cli("new", "--task", "text-generation", "--data", str(DATA / "alpaca_mixed.jsonl"), "--peft", "lora",
                      "--output", "p", "--no-smoke", cwd=root)  # fmt: skip
    assert created.returncode == 0, created.stderr
    return root / "p"


def probe(project: Path, *settings: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, *settings], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=300)  # fmt: skip


def test_4bit_nf4_with_double_quantization_on_cuda_and_off_by_default(project: Path) -> None:
    assert "load_in_4bit: false" in (project / "config.yaml").read_text()
    assert 'qlora = ["bitsandbytes' in (project / "pyproject.toml").read_text()
    assert probe(project, "cuda=yes").stdout.strip() == "None"
    done = probe(project, "load_in_4bit=true", "cuda=yes")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(True, 'nf4', True, 'torch.bfloat16')"


@pytest.mark.parametrize(
    ("cuda", "env", "message"),
    [
        ("cuda=no", {}, "error: load_in_4bit needs a CUDA GPU (bitsandbytes); set load_in_4bit=false on this machine"),
        ("cuda=yes", {"ACCELERATE_USE_FSDP": "true"},
         "error: load_in_4bit trains on one GPU or with DDP (accelerate launch without FSDP/DeepSpeed)"),
    ],
)  # fmt: skip
def test_4bit_where_it_cannot_train_stops_in_one_line(project: Path, cuda: str, env: dict, message: str) -> None:
    done = probe(project, "load_in_4bit=true", cuda, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == message


def test_train_py_stops_in_one_line_without_a_gpu(project: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    build = ("from pathlib import Path; import sys; from config import load_config; from tests.smoke import "
             "build_tiny_model; build_tiny_model(load_config([]), Path(sys.argv[1]))")  # fmt: skip
    tiny = project.parent / "tiny"
    subprocess.run([sys.executable, "-c", build, str(tiny)], cwd=project, check=True, env=env, capture_output=True)
    command = [sys.executable, "train.py", f"model_name_or_path={tiny}", "load_in_4bit=true", "report_to=none"]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: load_in_4bit needs a CUDA GPU")


def test_methods_that_cannot_quantize_have_no_such_setting(tmp_path: Path) -> None:
    created = run_cli("new", "--task", "text-generation", "--data", str(DATA / "alpaca_mixed.jsonl"), "--peft", "none",
                      "--output", "full", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "load_in_4bit" not in (tmp_path / "full" / "config.yaml").read_text()
