"""The shared train loop on long runs: resume, the NaN stop, max_steps, the effective batch size, out-of-memory
back-off, TensorBoard and the training controls (eval_steps, early stopping, schedules, optimizers), on a tiny
model; and the accelerate configs the project ships, through accelerate's own loaders."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml

from conftest import DATA, run_cli
from scaffolder import render
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec

# 32 training rows in batches of 4, a high learning rate so the tiny model moves, fp32 for exact comparisons.
SETTINGS = ["max_train_samples=32", "batch_size=4", "learning_rate=1e-2", "warmup_ratio=0.1", "logging_steps=1",
            "max_length=64", "mixed_precision=no"]  # fmt: skip

# Test-only hooks, applied from outside the project's code: its train module is patched, then run.
KILL_DURING_UPDATE = """
import os, signal, sys, train
add = train.LossMeter.add
def add_then_die(self, *values):
    if values[-1] == int(sys.argv[1]):  # the step
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no flush: as a crash or a preempted machine
    add(self, *values)
train.LossMeter.add = add_then_die
train.main(sys.argv[2:])
"""
POISON_FORWARD = """
import math, sys, train
build_model = train.build_model
def poisoned(cfg, tokenizer):
    model = build_model(cfg, tokenizer)
    calls = []
    def hook(module, args, kwargs, output):
        calls.append(1)
        if module.training and len(calls) == int(sys.argv[1]):
            output.loss = output.loss * math.nan
        return output
    model.register_forward_hook(hook, with_kwargs=True)
    return model
train.build_model = poisoned
train.main(sys.argv[2:])
"""
SMALL_GPU = """
import sys, torch, run_state, train
build_model = train.build_model
def small_memory(cfg, tokenizer):
    model = build_model(cfg, tokenizer)
    def hook(module, args, kwargs):
        if module.training and kwargs["input_ids"].shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    model.register_forward_pre_hook(hook, with_kwargs=True)
    return model
train.build_model = small_memory
# As under FSDP or ZeRO-3: best/ is saved from gathered weights loaded into a fresh copy of the model.
whole_model = run_state.whole_model
def counted(run, state_dict):
    print("whole_model called")
    return whole_model(run, state_dict)
run_state.whole_model = counted
run_state.weights_are_sharded = lambda accelerator: True
train.main(sys.argv[1:])
"""


# train.py, then what dynamo compiled in that process: graphs made and graph breaks (by reason).
COUNT_COMPILED_GRAPHS = """
import json, sys
import torch._dynamo.utils
import train
train.main(sys.argv[1:])
counters = torch._dynamo.utils.counters
print(json.dumps([counters["stats"]["unique_graphs"], dict(counters["graph_break"])]))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text-classification project with a tiny model in tiny/ beside it."""
    root = tmp_path_factory.mktemp("loop")
    created = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
                      "--output", "p", "--no-smoke", cwd=root)  # fmt: skip
    assert created.returncode == 0, created.stderr
    build = ("from pathlib import Path; import sys; from config import load_config; from tests.smoke import "
             "build_tiny_model; build_tiny_model(load_config([]), Path(sys.argv[1]))")  # fmt: skip
    subprocess.run([sys.executable, "-c", build, str(root / "tiny")], cwd=root / "p", check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True)  # fmt: skip
    return root / "p"


def train(project: Path, out: Path, *settings: str, driver: str | None = None, driver_args: tuple[str, ...] = (),
          env: dict[str, str] | None = None):  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", **(env or {})}
    entry = ["-c", driver, *driver_args] if driver else ["train.py"]
    args = [f"model_name_or_path={project.parent / 'tiny'}", f"output_dir={out}", *SETTINGS, *settings]
    return subprocess.run([sys.executable, *entry, *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]


def assert_same_records(records: list[dict], expected: list[dict]) -> None:
    assert [r.keys() for r in records] == [r.keys() for r in expected]
    for record, wanted in zip(records, expected, strict=True):
        assert record == pytest.approx(wanted, abs=1e-6)


def scalars(out: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (folder,) = (out / "tensorboard").iterdir()  # the run, named after the project folder
    assert folder.name == "p"
    events = EventAccumulator(str(folder))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


SAMPLE_ORDERS = """
import json, random, sys, train
rng = random.Random(0)
lengths = [rng.randint(1, 120) for _ in range(203)]
sampler = train.EpochSampler(203, 7, lengths, 8, 4)
epochs = []
for epoch in range(100):
    sampler.set_epoch(epoch)
    epochs.append(list(sampler))
plain = train.EpochSampler(203, 7, None, 8, 4)
print(json.dumps({"lengths": lengths, "epochs": epochs, "again": list(sampler), "plain": list(plain)}))
"""


def test_length_grouped_batches_pad_less_and_come_in_a_random_order(project: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SAMPLE_ORDERS], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    lengths, epochs = out["lengths"], out["epochs"]
    assert all(sorted(order) == list(range(203)) for order in epochs) and out["again"] == epochs[-1]
    assert epochs[0] != epochs[1] and sorted(out["plain"]) == list(range(203))

    def batches(order: list[int]) -> list[list[int]]:
        return [order[i : i + 8] for i in range(0, len(order), 8)]

    def padding(order: list[int]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches(order))

    # A batch is cut from 4 batches' worth sorted by length: it spans about a quarter of their range of lengths,
    # so its padding is about 0.3 of a random batch's (0.29 here).
    randomly = sum(padding(random.Random(e).sample(range(203), 203)) for e in range(100))
    assert sum(map(padding, epochs)) < 0.35 * randomly
    for order in epochs:
        assert max(lengths[i] for i in batches(order)[0]) == max(lengths)  # an out-of-memory error comes first
        assert len(batches(order)[-1]) == 203 % 8  # the short batch last: every other batch is full
    # No drift of length from batch to batch (transformers' grouping goes long to short through each window, 3 of
    # 4 steps shorter here): a batch is shorter than the one before it about half the time, as in a random order.
    steps = [
        sum(lengths[i] for i in after) < sum(lengths[i] for i in before)
        for order in epochs
        for before, after in zip(batches(order)[1:-2], batches(order)[2:-1], strict=True)
    ]
    assert 0.45 < sum(steps) / len(steps) < 0.55


@pytest.mark.slow
def test_a_killed_run_resumed_from_its_last_checkpoint_ends_as_an_uninterrupted_one(project: Path, tmp_path: Path):
    # 8 batches an epoch, 2 per update: checkpoint 9 is one update into epoch 3, so resuming skips 2 batches.
    settings = ["num_epochs=4", "gradient_accumulation_steps=2", "save_steps=3"]
    whole = train(project, tmp_path / "whole", *settings)
    assert whole.returncode == 0, whole.stderr[-3000:]

    out = tmp_path / "killed"
    killed = train(project, out, *settings, driver=KILL_DURING_UPDATE, driver_args=("11",))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    checkpoints = out / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-6", "step-9"]  # save_total_limit: 2
    assert [r["step"] for r in history(out) if "loss" in r][-1] == 10  # steps 10 and 11 will be trained again
    # What a crash in the middle of a save leaves (a staging folder, a folder without its state file) is ignored.
    (checkpoints / "step-12.tmp").mkdir()
    (checkpoints / "step-12.tmp" / "model.safetensors").write_bytes(b"half")
    (checkpoints / "step-13").mkdir()

    resumed = train(project, out, *settings, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoints / 'step-9'}" in resumed.stdout

    first, second = metrics(tmp_path / "whole"), metrics(out)
    assert first["train_steps"] == second["train_steps"] == 16
    for key in ("train_loss", "eval_loss", "eval_accuracy", "best_step", "train_samples"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
    # The log reads as one run: every step once, with the uninterrupted run's losses and evaluations.
    assert_same_records(history(out), history(tmp_path / "whole"))
    assert not (checkpoints / "step-12.tmp").exists()  # the next save cleared the leftover
    # TensorBoard too: the resumed run dropped the killed run's events after step 9.
    assert [step for step, _ in scalars(out, "train/loss")] == list(range(1, 17))
    resumed_curve = [value for _, value in scalars(out, "train/loss")]
    assert resumed_curve == pytest.approx([value for _, value in scalars(tmp_path / "whole", "train/loss")], abs=1e-6)
    assert len(scalars(tmp_path / "whole", "eval/accuracy")) == 4
    # A fresh run in the same folder replaces the curves, as it replaces best/ and the checkpoints.
    again = train(project, out, *settings, "max_steps=2", "save_total_limit=0")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "starting over: removing earlier checkpoints" in again.stdout
    assert not (out / "checkpoints").exists()
    assert [step for step, _ in scalars(out, "train/loss")] == [1, 2]


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(project: Path, tmp_path: Path):
    out = tmp_path / "out"
    # The 7th forward pass returns NaN: update 7 of 8 in epoch 1. The loss is read every 4 updates.
    stopped = train(project, out, "num_epochs=2", "save_steps=2", "logging_steps=4", driver=POISON_FORWARD,
                    driver_args=("7",))  # fmt: skip
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    message = stopped.stderr.strip().splitlines()[-1]
    assert message.startswith("error: the training loss became nan at step 7 (epoch 1); lower learning_rate")
    assert f"the last good checkpoint is {out / 'checkpoints' / 'step-6'} (resume=true continues from it)" in message
    # Nothing was saved from the damaged weights: no checkpoint 8, no best model, and checkpoint 6 is whole.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-4", "step-6"]
    assert not (out / "best").exists()
    from safetensors.torch import load_file

    weights = load_file(out / "checkpoints" / "step-6" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    assert json.loads((out / "checkpoints" / "step-6" / "trainer_state.json").read_text())["step"] == 6


@pytest.mark.slow
def test_max_steps_bounds_the_run_and_the_schedule_and_effective_batch_size_sets_accumulation(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # 16 examples an update from batches of 4: 4 accumulation steps, 2 updates an epoch; 3 updates end mid-epoch 2.
    result = train(project, out, "num_epochs=16", "effective_batch_size=16", "max_steps=3", "report_to=none")
    assert result.returncode == 0, result.stderr[-3000:]
    trained = metrics(out)
    assert (trained["train_batch_size"], trained["gradient_accumulation_steps"], trained["effective_batch_size"]) == (
        4, 4, 16)  # fmt: skip
    assert trained["train_steps"] == 3 and trained["train_samples"] == 3 * 16
    records = history(out)
    losses = [r for r in records if "loss" in r]
    assert [r["step"] for r in losses] == [1, 2, 3]
    assert losses[-1]["learning_rate"] == 0.0  # the linear decay reaches 0 at max_steps, not at 16 epochs
    assert [(r["epoch"], r["step"]) for r in records if "eval_loss" in r] == [(1, 2), (2, 3)]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-3"]  # each epoch's end
    assert not (out / "tensorboard").exists()  # report_to=none


@pytest.mark.slow
def test_bad_batch_settings_fail_at_start_up_in_one_line(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = train(project, out, "effective_batch_size=10")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: effective_batch_size=10 is not a multiple of batch_size x processes = 4 x 1 = 4; "
        "use a multiple of 4 or change batch_size"
    ]
    # The other refusals, in one process (each is the SystemExit message a command line would print).
    cases = {
        "effective_batch_size=16 gradient_accumulation_steps=2": "error: set effective_batch_size or "
        "gradient_accumulation_steps, not both (effective_batch_size derives the accumulation)",
        "resume=true": f"error: resume=true, but {out / 'checkpoints'} holds no complete checkpoint; "
        "train without resume=true to start over",
        "max_steps=0": "error: `max_steps` must be a positive integer (>= 1) or null, got 0; "
        "fix the max_steps= override",
        "report_to=neptune": "error: `report_to` must name trackers among tensorboard, wandb, mlflow, comet_ml, aim, "
        "clearml, dvclive, swanlab, trackio (or be none), got 'neptune'; fix config.yaml or the report_to= override",
    }
    driver = ("import json, sys, train\n"
              "for case in json.loads(sys.argv[1]):\n"
              "    try:\n        train.main(case.split() + sys.argv[2:])\n"
              "    except SystemExit as stop:\n        print(json.dumps(stop.code))\n")  # fmt: skip
    refused = train(project, out, driver=driver, driver_args=(json.dumps(list(cases)),))
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert [json.loads(line) for line in refused.stdout.splitlines()] == list(cases.values())
    assert not out.exists()  # refused before anything was written


@pytest.mark.slow
def test_out_of_memory_starts_over_with_smaller_batches_and_the_same_update_size(project: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = train(project, out, "num_epochs=2", "batch_size=16", driver=SMALL_GPU)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "out of memory at batch_size=16: starting over with batch_size=8 x 2 accumulation steps" in result.stdout
    assert "out of memory at batch_size=8: starting over with batch_size=4 x 4 accumulation steps" in result.stdout
    trained = metrics(out)
    assert (trained["train_batch_size"], trained["gradient_accumulation_steps"], trained["effective_batch_size"]) == (
        4, 4, 16)  # fmt: skip
    assert [r["step"] for r in history(out) if "loss" in r] == [1, 2, 3, 4]  # the failed attempts left no trace
    # best/ went through the gathered-weights path and holds the trained weights of the best evaluation.
    assert "whole_model called" in result.stdout
    from safetensors.torch import load_file

    best = load_file(out / "best" / "model.safetensors")
    at_best_step = load_file(out / "checkpoints" / f"step-{trained['best_step']}" / "model.safetensors")
    assert best.keys() <= at_best_step.keys()
    assert all(torch.equal(best[key], at_best_step[key]) for key in best)


@pytest.mark.slow
def test_torch_compile_trains_the_same_model_and_saves_it_uncompiled(project: Path, tmp_path: Path) -> None:
    # Without dropout (compiled graphs may draw their masks from another generator), so that the two runs can match.
    model = tmp_path / "no-dropout"
    shutil.copytree(project.parent / "tiny", model)
    config = json.loads((model / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model / "config.json").write_text(json.dumps(config))
    # Few shapes (no length grouping, one eval batch) keep the compile short. aot_eager traces the blocks with
    # dynamo and AOT autograd as inductor does, without inductor's C++ code generation, which takes a minute and a
    # half on this CPU and is torch's own code, not the project's.
    settings = ["max_steps=3", "group_by_length=false", "max_eval_samples=4", "save_total_limit=0", "report_to=none",
                f"model_name_or_path={model}"]  # fmt: skip
    plain = train(project, tmp_path / "plain", *settings)
    compiled = train(project, tmp_path / "compiled", *settings, "torch_compile=true", "torch_compile_backend=aot_eager",
                     driver=COUNT_COMPILED_GRAPHS)  # fmt: skip
    assert plain.returncode == 0 and compiled.returncode == 0, compiled.stderr[-3000:]
    graphs, breaks = json.loads(compiled.stdout.strip().splitlines()[-1])
    assert graphs > 0 and not breaks, (graphs, breaks)  # dynamo compiled the blocks, each whole
    losses = [[r["loss"] for r in history(tmp_path / run) if "loss" in r] for run in ("plain", "compiled")]
    assert losses[1] == pytest.approx(losses[0], abs=1e-4)  # the same arithmetic, up to rounding
    from safetensors.torch import load_file

    # Saved from the model under the compiled blocks: the weight names a plain from_pretrained expects.
    assert load_file(tmp_path / "compiled" / "best" / "model.safetensors").keys() == load_file(
        tmp_path / "plain" / "best" / "model.safetensors").keys()  # fmt: skip


def on_a_gpu() -> mock._patch:
    """accelerate's plugins told that a CUDA GPU is there, by whichever check the installed release makes."""
    import accelerate.utils.dataclasses as plugins

    if hasattr(plugins, "get_torch_accelerator_backend"):
        return mock.patch.object(plugins, "get_torch_accelerator_backend", return_value=("cuda", torch.cuda))
    return mock.patch.object(plugins, "is_cuda_available", return_value=True)


def test_every_accelerate_config_loads_through_accelerate(tmp_path: Path) -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    spec = ProjectSpec(task="text-classification", train_data=DATA / "nli_pairs.jsonl", peft="lora")
    files = render.render(build_plan(spec), tmp_path)
    configs = sorted(path for path in files if path.startswith("configs/accelerate/"))
    assert [Path(path).name for path in configs] == ["ddp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml",
                                                     "fsdp.yaml"]  # fmt: skip
    plugins = {}
    for path in configs:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(files[path])
        assert f"accelerate launch --config_file {path} train.py" in files[path]  # the header's command
        loaded = load_config_from_file(str(tmp_path / path))
        assert loaded.mixed_precision == "bf16"
        # As `accelerate launch --config_file ...` does: the file becomes launch arguments, then environment
        # variables, from which the training process builds its plugin.
        args = launch_command_parser().parse_args(["--config_file", str(tmp_path / path), "train.py"])
        args, defaults, _ = _validate_launch_command(args)
        if loaded.distributed_type == DistributedType.DEEPSPEED:
            args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
            env = prepare_deepspeed_cmd_env(args)[1]
            with mock.patch.dict(os.environ, env):
                plugins[path] = DeepSpeedPlugin()
        else:
            env = prepare_multi_gpu_env(args)
            # FSDP asks for the GPU while parsing (to materialise weights there); there is none here. accelerate 1.16
            # asks get_torch_accelerator_backend, earlier releases is_cuda_available.
            with mock.patch.dict(os.environ, env), on_a_gpu(), mock.patch.object(torch.cuda, "current_device",
                                                                                  return_value=0):  # fmt: skip
                plugins[path] = FullyShardedDataParallelPlugin() if args.use_fsdp else None
        assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"

    assert load_config_from_file(str(tmp_path / "configs/accelerate/ddp.yaml")).distributed_type == "MULTI_GPU"
    fsdp = plugins["configs/accelerate/fsdp.yaml"]
    assert (fsdp.fsdp_version, fsdp.sharding_strategy.name, fsdp.state_dict_type.name) == (
        1, "FULL_SHARD", "SHARDED_STATE_DICT")  # fmt: skip
    assert fsdp.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert fsdp.use_orig_params and fsdp.sync_module_states and fsdp.cpu_ram_efficient_loading
    for stage in (2, 3):
        plugin = plugins[f"configs/accelerate/deepspeed_zero{stage}.yaml"]
        config = plugin.deepspeed_config
        assert config["zero_optimization"]["stage"] == stage
        # Left to config.yaml: train.py's accumulation and clipping fill these in.
        assert config["gradient_accumulation_steps"] == config["gradient_clipping"] == "auto"
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] == (stage == 3)
        assert plugin.zero3_init_flag == (stage == 3)


def eval_records(out: Path) -> list[dict]:
    return [r for r in history(out) if "eval_loss" in r]


@pytest.mark.slow
def test_early_stopping_counts_evaluations_every_eval_steps_and_a_resumed_run_stops_where_the_whole_one_did(
    project: Path, tmp_path: Path
) -> None:
    # 8 updates an epoch, an evaluation every 2. No evaluation beats the best by 10 (accuracy and F1 lie in [0, 1]):
    # the first one sets the best, and the next 3 without improvement stop the run after evaluation 4, at step 8,
    # in the first of 4 epochs.
    settings = ["num_epochs=4", "eval_steps=2", "early_stopping_patience=3", "early_stopping_threshold=10",
                "save_steps=3"]  # fmt: skip
    whole = train(project, tmp_path / "whole", *settings)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert "early stopping at step 8" in whole.stdout
    trained = metrics(tmp_path / "whole")
    assert trained["stopped_early"] is True and trained["train_steps"] == 8
    assert [(r["step"], r["epoch"]) for r in eval_records(tmp_path / "whole")] == [(2, 1), (4, 1), (6, 1), (8, 1)]

    # Killed in update 7: checkpoint 6 holds two evaluations without improvement. A resumed run that counted
    # from 0 again would stop at step 12; this one stops at step 8, as the whole run did.
    out = tmp_path / "killed"
    killed = train(project, out, *settings, driver=KILL_DURING_UPDATE, driver_args=("7",))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = json.loads((out / "checkpoints" / "step-6" / "trainer_state.json").read_text())
    assert saved["stale_evaluations"] == 2 and saved["stopped_early"] is False
    resumed = train(project, out, *settings, "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "early stopping at step 8" in resumed.stdout
    for key in ("train_steps", "train_loss", "eval_loss", "best_step", "stopped_early"):
        assert metrics(out)[key] == pytest.approx(trained[key], abs=1e-6), key
    assert_same_records(history(out), history(tmp_path / "whole"))


@pytest.mark.slow
def test_early_stopping_follows_the_eval_loss_it_logs(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = train(project, out, "num_epochs=8", "eval_steps=1", "early_stopping_patience=2",
                   "metric_for_best_model=eval_loss", "report_to=none", "save_total_limit=0")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["eval_loss"] for r in eval_records(out)]
    # Replayed by hand from the log: the run stops at the first evaluation that ends 2 in a row without a loss
    # below the lowest before them, and trains on to the last step when there is none.
    stale, stop = 0, None
    for index, loss in enumerate(losses):
        stale = 0 if index == 0 or loss < min(losses[:index]) else stale + 1
        if stale == 2:
            stop = index
            break
    assert stop == len(losses) - 1 if stop is not None else len(losses) == 64
    trained = metrics(out)
    assert trained["stopped_early"] is (stop is not None)
    assert trained["eval_loss"] == min(losses) and trained["best_step"] == losses.index(min(losses)) + 1


def cosine(progress: float, cycles: float = 0.5) -> float:
    return 0.5 * (1 + math.cos(math.pi * 2 * cycles * progress))


# learning_rate=1e-2, 10 updates, 2 of them warmup: the rate after update k, by the schedules' published formulas.
SCHEDULES = {
    "linear": ([], lambda k: k / 2 if k < 2 else (10 - k) / 8),
    "cosine": ([], lambda k: k / 2 if k < 2 else cosine((k - 2) / 8)),
    # Two cosine cycles over the 8 updates after warmup, each restarting at the peak.
    "cosine_with_restarts": (["lr_scheduler_kwargs={num_cycles: 2}"],
                             lambda k: k / 2 if k < 2 else 0.0 if k == 10 else cosine(((k - 2) / 8 * 2) % 1, 0.5)),
    # Warmup, the peak until the last tenth (1 update) of the run, then a cosine decay over that update.
    "warmup_stable_decay": ([], lambda k: k / 2 if k < 2 else 1.0 if k < 9 else cosine((k - 9) / 1)),
    "constant_with_warmup": ([], lambda k: min(k / 2, 1.0)),
    "inverse_sqrt": ([], lambda k: k / 2 if k < 2 else 1 / math.sqrt((k - 2) / 2 + 1)),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_lr_scheduler_type_sets_the_learning_rate_of_every_update(project: Path, tmp_path: Path, schedule: str):
    extra, formula = SCHEDULES[schedule]
    out = tmp_path / "out"
    result = train(project, out, "max_steps=10", "warmup_ratio=0.2", f"lr_scheduler_type={schedule}", *extra,
                   "report_to=none", "save_total_limit=0", "max_eval_samples=4")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rates = [r["learning_rate"] for r in history(out) if "loss" in r]
    assert rates == pytest.approx([1e-2 * formula(k) for k in range(1, 11)], abs=1e-9)


@pytest.mark.slow
def test_adafactor_trains_with_factored_moments_and_8bit_adamw_is_refused_off_cuda(project: Path, tmp_path: Path):
    out = tmp_path / "out"
    # One batch of 8, 20 updates: it fits them (the loss falls from ln 3 = 1.10 to about 0.4 here).
    result = train(project, out, "max_train_samples=8", "batch_size=8", "num_epochs=20", "optim=adafactor",
                   "report_to=none", "save_total_limit=1")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in history(out) if "loss" in r]
    assert losses[0] == pytest.approx(math.log(3), abs=0.05) and max(losses[-3:]) < 0.7 * losses[0]
    state = torch.load(out / "checkpoints" / "step-20" / "optimizer.bin", weights_only=True)["state"]
    # Adafactor keeps a row and a column vector per weight matrix instead of AdamW's full second moment.
    assert any("exp_avg_sq_row" in moments for moments in state.values())
    for optim in ("adamw_8bit", "paged_adamw_8bit"):
        refused = train(project, tmp_path / optim, f"optim={optim}")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.strip() == (
            f"error: optim={optim} runs on CUDA GPUs only (bitsandbytes), and this run is on cpu; "
            "use optim=adamw_torch_fused here"
        )
        assert not (tmp_path / optim).exists()


# train.py, counting what autograd keeps for the backward pass of each training forward (the activation memory
# gradient checkpointing is for), and printing the attention kernel the model runs with.
SAVED_FOR_BACKWARD = """
import json, sys, torch, train
build_model, setup_optimizer = train.build_model, train.setup_optimizer
sizes, state = [], {}
def pack(tensor):
    state["bytes"] += tensor.numel() * tensor.element_size()
    return tensor
def before(module, args, kwargs):
    if module.training:
        state["bytes"], state["hooks"] = 0, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        state["hooks"].__enter__()
def after(module, args, kwargs, output):
    if "hooks" in state:
        state.pop("hooks").__exit__(None, None, None)
        sizes.append(state["bytes"])
def measured(cfg, tokenizer):
    model = build_model(cfg, tokenizer)
    model.register_forward_pre_hook(before, with_kwargs=True)
    model.register_forward_hook(after, with_kwargs=True)
    return model
def reporting(cfg, model):
    print("attention:", model.config._attn_implementation)
    return setup_optimizer(cfg, model)
train.build_model, train.setup_optimizer = measured, reporting
train.main(sys.argv[1:])
print(json.dumps(sizes))
"""


@pytest.mark.slow
def test_gradient_checkpointing_keeps_less_for_backward_and_trains_the_same(project: Path, tmp_path: Path) -> None:
    settings = ["max_steps=4", "group_by_length=false", "report_to=none", "save_total_limit=0"]
    runs = {}
    for name, extra in {"plain": [], "checkpointed": ["gradient_checkpointing=true"],
                        "eager": ["attn_implementation=eager"]}.items():  # fmt: skip
        result = train(project, tmp_path / name, *settings, *extra, driver=SAVED_FOR_BACKWARD)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = (json.loads(result.stdout.strip().splitlines()[-1]), result.stdout)
    plain, checkpointed = runs["plain"][0], runs["checkpointed"][0]
    assert len(plain) == len(checkpointed) == 4
    # Inside the checkpointed blocks autograd keeps only their inputs: under half of what the plain run keeps.
    assert all(kept < 0.5 * full for kept, full in zip(checkpointed, plain, strict=True)), (checkpointed, plain)
    # Recomputed, not approximated: the same losses (dropout replayed with the same random state).
    losses = {name: [r["loss"] for r in history(tmp_path / name) if "loss" in r] for name in runs}
    assert losses["checkpointed"] == pytest.approx(losses["plain"], abs=1e-6)
    assert "attention: sdpa" in runs["plain"][1] and "attention: eager" in runs["eager"][1]
    assert losses["eager"] == pytest.approx(losses["plain"], abs=1e-5)  # the same attention, another kernel
    refused = train(project, tmp_path / "flash", "attn_implementation=flash_attention_2")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: attn_implementation=flash_attention_2 runs on CUDA GPUs only (flash-attn), and this run is on cpu; "
        "use attn_implementation=sdpa here"
    )


# train.py, printing the first training forward's logits and labels and the training set's labels.
CAPTURE_FIRST_UPDATE = """
import json, sys, train
seen = {}
build_datasets, build_model, train_update = train.build_datasets, train.build_model, train.train_update
def datasets(cfg, tokenizer):
    train_set, eval_set = build_datasets(cfg, tokenizer)
    seen["train_labels"] = list(train_set.data["labels"][:])
    return train_set, eval_set
def model_with_hook(cfg, tokenizer):
    model = build_model(cfg, tokenizer)
    def hook(module, args, kwargs, output):
        if module.training and "logits" not in seen:
            seen["logits"] = output.logits.tolist()
    model.register_forward_hook(hook, with_kwargs=True)
    return model
def update(run, batches, meter):
    seen.setdefault("labels", batches[0]["labels"].tolist())
    train_update(run, batches, meter)
train.build_datasets, train.build_model, train.train_update = datasets, model_with_hook, update
train.main(sys.argv[1:])
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_class_weights_and_label_smoothing_give_the_loss_of_their_formula(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = train(project, out, "max_steps=1", "class_weights=balanced", "label_smoothing=0.1", "report_to=none",
                   "save_total_limit=0", driver=CAPTURE_FIRST_UPDATE)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    classes = 3
    counts = [seen["train_labels"].count(c) for c in range(classes)]
    weights = [len(seen["train_labels"]) / (classes * count) for count in counts]  # "balanced"
    # Smoothed targets: 1 - 0.1 on the label plus 0.1 / classes on every class, each class's term weighted.
    total = 0.0
    for logits, label in zip(seen["logits"], seen["labels"], strict=True):
        log_norm = math.log(sum(math.exp(x) for x in logits))
        nll = [log_norm - x for x in logits]
        total += 0.9 * weights[label] * nll[label] + 0.1 / classes * sum(
            w * n for w, n in zip(weights, nll, strict=True)
        )
    logged = next(r["loss"] for r in history(out) if "loss" in r)
    assert logged == pytest.approx(total / len(seen["labels"]), rel=1e-5)
    # The model's own loss is the plain cross-entropy, a different number on the same batch.
    pairs = zip(seen["logits"], seen["labels"], strict=True)
    plain = sum(math.log(sum(math.exp(x) for x in logits)) - logits[label] for logits, label in pairs)
    assert abs(plain / len(seen["labels"]) - logged) > 1e-3
    for bad in ("class_weights=[1, 2]", "class_weights=heavy", "label_smoothing=1"):
        refused = train(project, tmp_path / "bad", bad)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr[-2000:]


@pytest.mark.slow
def test_report_to_sends_the_logged_metrics_to_every_tracker_named(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # wandb offline (files in output_dir/wandb) and MLflow's local file store: no server, nothing sent.
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
           "MLFLOW_ALLOW_FILE_STORE": "true"}  # fmt: skip
    result = train(project, out, "max_steps=3", "save_total_limit=0", "report_to=tensorboard,wandb,mlflow", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [(r["step"], r["loss"]) for r in history(out) if "loss" in r]
    accuracy = next(r["eval_accuracy"] for r in history(out) if "eval_accuracy" in r)
    assert [step for step, _ in losses] == [1, 2, 3]
    # MLflow: an experiment named after the project folder, the loss at every step.
    (metric,) = (tmp_path / "mlruns").glob("*/*/metrics/train/loss")
    assert yaml.safe_load((metric.parents[3] / "meta.yaml").read_text())["name"] == "p"
    rows = [line.split() for line in metric.read_text().splitlines()]
    assert [int(step) for _, _, step in rows] == [step for step, _ in losses]
    assert [float(value) for _, value, _ in rows] == pytest.approx([loss for _, loss in losses])
    # wandb: its offline run file records every value logged, under its TensorBoard-style name. (wandb's reader of
    # these files is its Go core; the values are stored as JSON text, so they are looked for as such.)
    (records,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    recorded = records.read_bytes()
    assert b"train/loss" in recorded and b"eval/accuracy" in recorded
    assert all(json.dumps(value).encode() in recorded for value in [*(loss for _, loss in losses), accuracy])
    assert [step for step, _ in scalars(out, "train/loss")] == [1, 2, 3]  # and TensorBoard as before

    missing = train(project, tmp_path / "missing", "report_to=[tensorboard, comet_ml]")
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "error: report_to names comet_ml, whose package is not installed: pip install comet-ml "
        "(or leave it out of report_to)"
    )
    # wandb online without a login: one line naming the fix, not wandb's traceback.
    offline = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    no_login = train(project, tmp_path / "no-login", "report_to=wandb",
                     env={**offline, "WANDB_MODE": "online", "WANDB_API_KEY": "", "HOME": str(tmp_path)})  # fmt: skip
    assert no_login.returncode == 2 and "Traceback" not in no_login.stderr, no_login.stderr[-3000:]
    assert no_login.stderr.strip().splitlines()[-1].startswith("error: a report_to tracker did not start (")
