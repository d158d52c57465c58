"""The generated project's own errors, as a user meets them: a bad setting, a missing data file, an output_dir
that cannot be written, a damaged checkpoint, a full disk and Ctrl-C each end `python train.py` with one line
and an exit status of 2 (130 for Ctrl-C), never a traceback; and every config.yaml scaffolder writes passes the
checks of its own config.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import test_train_loop as loop
import yaml

from conftest import DATA
from scaffolder import render
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec

project = loop.project  # a text-classification project with a tiny model beside it, as the loop tests use

# `python train.py ARGS` for each case, in one process (the imports take seconds; the refusals milliseconds):
# train.py runs as __main__, and its exit status and stderr are taken as the interpreter would report them.
AS_MAIN = """
import contextlib, io, json, runpy, sys, traceback
sys.path.insert(0, ".")
cases, base, results = json.loads(sys.argv[1]), sys.argv[2:], {}
for case in cases:
    sys.argv = ["train.py", *base, *case.split()]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            runpy.run_path("train.py", run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
    results[case] = [code, stderr.getvalue()]
print(json.dumps(results))
"""
# Test-only fault: the n-th checkpoint save writes part of its files, then finds the disk full.
FULL_DISK = """
import errno, runpy, sys
from pathlib import Path
from accelerate import Accelerator
save_state, saves, full_at = Accelerator.save_state, [], int(sys.argv[1])
def save_until_full(self, output_dir=None, **kwargs):
    saves.append(output_dir)
    if len(saves) == full_at:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "model.safetensors").write_bytes(b"the first half of a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")
    return save_state(self, output_dir, **kwargs)
Accelerator.save_state = save_until_full
sys.argv = ["train.py", *sys.argv[2:]]
runpy.run_path("train.py", run_name="__main__")
"""
# 32 examples in batches of 4: 8 updates, a checkpoint every 2.
CHECKPOINTED = ["num_epochs=1", "save_steps=2", "save_total_limit=4", "report_to=none"]


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def last_line(stderr: str) -> str:
    """A real run's stderr also holds its progress bars: the error is its last line."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return stderr.strip().splitlines()[-1]


# (arguments, the setting the message must name)
REFUSED = [
    ("batch_size=0", "batch_size"),
    ("batch_size=abc", "batch_size"),
    ("batch_size=", "batch_size"),
    ("learning_rate=-1", "learning_rate"),
    ("learning_rate=1e9", "learning_rate"),
    ("learning_rate=nan", "learning_rate"),
    ("num_epochs=0", "num_epochs"),
    ("num_epochs=1.5", "num_epochs"),
    ("gradient_accumulation_steps=0", "gradient_accumulation_steps"),
    ("eval_fraction=2", "eval_fraction"),
    ("max_length=0", "max_length"),
    ("max_steps=abc", "max_steps"),
    ("save_total_limit=-1", "save_total_limit"),
    ("seed=-1", "seed"),
    ("resume=1", "resume"),
    ("mixed_precision=fp8", "mixed_precision"),
    ("labels=[a,b", "labels"),
    ("num_epoch=3", "num_epochs"),  # unknown: the message offers the key meant
    ("colour=red", "colour"),
    ("batch_size", "batch_size"),  # no `=`
    ("effective_batch_size=10", "effective_batch_size"),  # not a multiple of batch_size x processes
    ("train_file={missing}", "train_file"),
    ("eval_file={missing}", "eval_file"),
    ("output_dir={a_file}", "output_dir"),
    ("output_dir={a_file}/out", "output_dir"),
    ("resume=true", "resume"),  # output_dir has no checkpoint
    ("resume=true output_dir={damaged}", "resume"),  # its only checkpoint's state file is garbage
    ("model_name_or_path={missing}", "model_name_or_path"),
]


@pytest.fixture(scope="module")
def refusals(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """Every REFUSED case run as `python train.py` (see AS_MAIN): case -> (exit status, stderr)."""
    root = tmp_path_factory.mktemp("refused")
    (root / "a-file").write_text("not a folder\n")
    damaged = root / "damaged" / "checkpoints" / "step-3"
    damaged.mkdir(parents=True)
    (damaged / "trainer_state.json").write_text("{not json")
    paths = {"missing": root / "missing.jsonl", "a_file": root / "a-file", "damaged": root / "damaged"}
    cases = [arguments.format(**paths) for arguments, _ in REFUSED]
    done = loop.train(project, root / "out", driver=AS_MAIN, driver_args=(json.dumps(cases),))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {case: (code, stderr) for case, (code, stderr) in zip(REFUSED, results.values(), strict=True)}


@pytest.mark.parametrize(("case", "key"), REFUSED, ids=[arguments for arguments, _ in REFUSED])
def test_a_bad_setting_or_input_ends_in_one_line_naming_it_with_exit_status_2(
    refusals: dict[tuple[str, str], tuple[int, str]], case: str, key: str
) -> None:
    code, stderr = refusals[(case, key)]
    message = one_line(stderr)
    assert code == 2, stderr
    assert message.startswith("error: ") and key in message


def test_a_value_refused_in_config_yaml_is_named_there(project: Path, tmp_path: Path) -> None:
    config = load_module(project / "config.py")
    text = (project / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(re.sub(r"^batch_size: \S+", "batch_size: -4", text, flags=re.M))
    with pytest.raises(SystemExit) as refused:
        config.load_config([], path=tmp_path / "config.yaml")
    message = str(refused.value.code)
    assert message.startswith("error: `batch_size`") and "-4" in message and "config.yaml" in message
    # YAML reads `1e-5` (no dot) as text: it is still a learning rate.
    (tmp_path / "config.yaml").write_text(re.sub(r"^learning_rate: \S+", "learning_rate: 1e-5", text, flags=re.M))
    assert config.load_config([], path=tmp_path / "config.yaml").learning_rate == 1e-5


@pytest.fixture(scope="module")
def checkpointed(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run that kept checkpoints 2, 4, 6 and 8."""
    out = tmp_path_factory.mktemp("checkpointed") / "out"
    done = loop.train(project, out, *CHECKPOINTED)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4", "step-6", "step-8"]
    return out


def test_resume_skips_damaged_checkpoints_naming_each_and_continues_from_the_newest_that_loads(
    project: Path, checkpointed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(checkpointed, out)
    checkpoints = out / "checkpoints"
    weights = checkpoints / "step-8" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short
    (checkpoints / "step-6" / "optimizer.bin").unlink()  # missing
    (checkpoints / "step-4" / "trainer_state.json").write_text("garbage")
    resumed = loop.train(project, out, *CHECKPOINTED, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for step in (8, 6, 4):
        assert f"skipping checkpoint {checkpoints / f'step-{step}'}" in resumed.stdout
    assert f"resuming from {checkpoints / 'step-2'}" in resumed.stdout
    # Nothing of the checkpoints that failed to load stayed in the model: the run ends as the uninterrupted one.
    first, second = loop.metrics(checkpointed), loop.metrics(out)
    for key in ("train_steps", "train_loss", "eval_loss", "eval_accuracy"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
    loop.assert_same_records(loop.history(out), loop.history(checkpointed))


def test_a_full_disk_while_saving_ends_in_one_line_and_keeps_the_previous_checkpoint(
    project: Path, checkpointed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    full = loop.train(project, out, *CHECKPOINTED, driver=FULL_DISK, driver_args=("2",))
    assert full.returncode == 2, full.stderr[-3000:]
    message = last_line(full.stderr)
    checkpoints = out / "checkpoints"
    assert "no space left on device" in message and f"step-4 in {checkpoints}" in message
    assert f"resume=true` continues from checkpoint {checkpoints / 'step-2'}" in message
    # The half-written checkpoint is gone (its space freed); the one before it is whole, and resumes.
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-2"]
    resumed = loop.train(project, out, *CHECKPOINTED, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoints / 'step-2'}" in resumed.stdout
    assert loop.metrics(out)["eval_loss"] == pytest.approx(loop.metrics(checkpointed)["eval_loss"], abs=1e-6)


def test_ctrl_c_exits_130_in_one_line_that_says_how_to_continue(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [f"model_name_or_path={project.parent / 'tiny'}", f"output_dir={out}", *loop.SETTINGS, "num_epochs=10",
            "save_steps=2", "report_to=none"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "step-2").is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # 80 updates to go: mid-training
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    message = last_line(stderr)
    assert message.startswith("interrupted") and "python train.py resume=true" in message
    named = Path(message.rsplit(" ", 1)[-1])
    assert named.parent == out / "checkpoints" and named.is_dir()

    resumed = subprocess.run([sys.executable, "train.py", *args, "resume=true"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {named}" in resumed.stdout
    assert loop.metrics(out)["train_steps"] == 80


def load_module(path: Path, name: str = "project_config") -> ModuleType:
    """A project's config.py as a module of its own name, so that projects do not share one `config`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building Rule
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def test_every_config_yaml_passes_its_config_py_and_every_number_in_it_has_a_range(tmp_path: Path) -> None:
    from test_render import MATRIX, TASK_DATA

    specs = [ProjectSpec(task=task, train_data=TASK_DATA[task], peft=method) for task, method in MATRIX]
    specs += [ProjectSpec(task="text-classification", train_data=DATA / data, peft="lora")
              for data in ("stsb_like.tsv", "topics_multilabel.jsonl")]  # fmt: skip
    for index, spec in enumerate(specs):
        folder = tmp_path / str(index)
        files = render.render(build_plan(spec), folder)
        folder.mkdir()
        for name in ("config.py", "config.yaml"):
            (folder / name).write_text(files[name])
        config = load_module(folder / "config.py")
        values = yaml.safe_load(files["config.yaml"])
        numbers = {
            key for key, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        where = f"{spec.task} {spec.peft}"
        assert numbers <= set(config.RULES), f"{where}: no range for {numbers - set(config.RULES)}"
        assert set(config.RULES) <= set(values), f"{where}: ranges for keys it lacks"
        loaded = config.load_config([], path=folder / "config.yaml")
        assert loaded.learning_rate == values["learning_rate"], where
