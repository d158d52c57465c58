"""Every task x model family x PEFT method that scaffolder offers builds and takes a training step.

For each combination `peft_refusal` lets through, the project is rendered in-process and its own code builds the
model (model.build_model on a tiny random model of the family, saved by the project's tests/tiny.py) and one
batch (data.build_datasets and data.build_collator on a small data file): one forward and backward pass must give
a finite loss and a gradient on the method's own parameters. A combination that fails here is one a user meets only
after scaffolding, at the first training step; the known ones are marked xfail(strict) with their cause, so that a
fix (or a refusal in scaffolder/tasks.py, which drops the case) shows up here.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import DATA, _forget_project_modules
from scaffolder import render
from scaffolder.errors import SpecError
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import FAMILIES, PEFT_METHODS, TASKS, UNSUPPORTED, family_from_name, peft_refusal

# A small data file per task (test_render.py's matrix data).
TASK_DATA = {
    "text-classification": DATA / "nli_pairs.jsonl",
    "token-classification": DATA / "ner_conll.conll",
    "question-answering": DATA / "squad_v2.json",
    "text-generation": DATA / "alpaca_mixed.jsonl",
    "summarization": DATA / "news_summaries.csv",
    "translation": DATA / "wmt_en_de.jsonl",
}
BATCH = 4  # examples in the one batch
# What the method's own trainable parameters are called in peft (a task head trains beside them, so a gradient on
# the head alone would not show that the method works); full fine-tuning trains every weight.
METHOD_PARAMETERS = {
    "none": "",
    "lora": "lora_",
    "adalora": "lora_",
    "ia3": "ia3_l",
    "prompt-tuning": "prompt_encoder",
    "prefix-tuning": "prompt_encoder",
    "p-tuning": "prompt_encoder",
}


def hub_id(family: str) -> str:
    """A hub id that names the family and is not in any cache: planning judges the family by its name."""
    return f"peft-matrix/{FAMILIES[family].name_patterns[0]}-tiny"


# Combinations that fail at the first step today, by cause: (task, family, method) -> the cause. Each is a gap in
# scaffolder's tables (or templates, or peft) that a fix or a refusal in scaffolder/tasks.py should settle; the
# strict xfail then fails and the entry goes.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}


def cases() -> Iterator[Any]:
    for task, info in TASKS.items():
        for family, model_family in FAMILIES.items():
            if model_family.architecture not in info.architectures:
                continue
            for method in PEFT_METHODS:
                if peft_refusal(info, method):
                    continue
                reason = KNOWN_FAILURES.get((task, family, method))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                yield pytest.param(task, family, method, marks=marks, id=f"{task}-{family}-{method}")


CASES = list(cases())


def test_hub_ids_name_their_families() -> None:
    assert {family: family_from_name(hub_id(family)).model_type for family in FAMILIES} == {f: f for f in FAMILIES}


def test_every_method_names_its_parameters() -> None:
    assert set(METHOD_PARAMETERS) == set(PEFT_METHODS)


def test_known_failures_are_cases() -> None:
    ids = {case.id for case in CASES}
    assert {"-".join(key) for key in KNOWN_FAILURES} <= ids


@pytest.fixture
def project_modules() -> Iterator[None]:
    """The rendered project's modules (config, data, model, tests...) are imported afresh by each case."""
    _forget_project_modules()
    yield
    _forget_project_modules()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny matrices on one thread: with `-n 2` (or any other load) torch's thread pool oversubscribes the cores
    and a tiny model's step takes 10-15 times as long."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def render_into(folder: Path, task: str, family: str, method: str) -> None:
    spec = ProjectSpec(task=task, train_data=TASK_DATA[task], model=hub_id(family), peft=method)
    for relative, text in render.render(build_plan(spec), folder).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")


def strings(value: Any) -> Iterator[str]:
    """Every string in a record (nested answers, chat messages, token lists): the stand-in tokenizer's corpus."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


# Tiny models already saved in this process, by what tiny.py builds them from: the task's data (the stand-in
# tokenizer's vocabulary), the family and the method's smoke-model settings. Methods share them.
_TINY_MODELS: dict[tuple[Any, ...], Path] = {}


def tiny_model(tiny: ModuleType, cfg: Any, task: str, folders: pytest.TempPathFactory) -> Path:
    """The project's tiny model and stand-in tokenizer (tests/tiny.py), as its smoke run builds them, without the
    attempt to load the real tokenizer (a hub id that is nowhere)."""
    import transformers

    extra = {"num_labels": len(cfg.labels)} if getattr(cfg, "labels", None) else {}
    key = (task, tiny.MODEL_TYPE, repr(sorted(tiny.TINY_CONFIG.items())), repr(sorted(extra.items())))
    if key not in _TINY_MODELS:
        texts = [text for row in importlib.import_module("data").load_splits(cfg)[0] for text in strings(row)]
        tokenizer = tiny.train_wordpiece(texts) if tiny.ARCHITECTURE == "encoder" else tiny.train_bpe(texts)
        folder = folders.mktemp(f"tiny-{task}-{tiny.MODEL_TYPE}")
        tiny.save_tiny_model(getattr(transformers, TASKS[task].auto_class), tokenizer, folder, **extra)
        _TINY_MODELS[key] = folder
    return _TINY_MODELS[key]


def smoke_settings(smoke: ModuleType) -> dict[str, Any]:
    """The task's own smoke-run settings beside tests/tiny.py's: QA's windows, seq2seq's generation limits."""
    return {**getattr(smoke, "WINDOW", {}), **getattr(smoke, "GENERATION", {})}


def project_step(
    workdir: Path, task: str, method: str, tiny_models: pytest.TempPathFactory, **settings: Any
) -> tuple[Any, Any]:
    """The rendered project's model (on its tiny model) and one training batch, built by the project's own code
    as train.py builds them; `settings` as `python train.py key=value` would set them."""
    smoke, tiny = importlib.import_module("tests.smoke"), importlib.import_module("tests.tiny")
    cfg = tiny.smoke_config(workdir, **smoke_settings(smoke))
    overrides = {"model_name_or_path": str(tiny_model(tiny, cfg, task, tiny_models))}
    if method == "adalora":
        overrides["adalora_total_step"] = 10  # train.py fills it in from the number of updates
    cfg = type(cfg)(**{**cfg.to_dict(), **overrides, **settings})  # as train.py and tiny.train_tiny change settings
    model_code, data = importlib.import_module("model"), importlib.import_module("data")
    tokenizer = model_code.load_tokenizer(cfg)
    model = model_code.build_model(cfg, tokenizer)
    train_set, _ = data.build_datasets(cfg, tokenizer)
    batch = data.build_collator(tokenizer, on_gpu=False)([train_set[i] for i in range(min(BATCH, len(train_set)))])
    return model, batch


@pytest.mark.usefixtures("project_modules", "one_thread")
@pytest.mark.parametrize(("task", "family", "method"), CASES)
def test_one_training_step(
    task: str, family: str, method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    assert_one_step_trains(task, family, method, tmp_path, monkeypatch, tmp_path_factory)


def assert_one_step_trains(
    task: str, family: str, method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    """The project for (task, family, method) builds its model and one batch, and one step trains the method."""
    import torch

    render_into(tmp_path / "project", task, family, method)
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what tests/smoke.py sets on import, undone after the case
    torch.manual_seed(0)
    model, batch = project_step(tmp_path, task, method, tmp_path_factory)
    model.train()
    loss = model(**batch).loss
    assert math.isfinite(loss.item()), f"the loss is {loss.item()}"
    loss.backward()
    gradients = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert gradients, "no parameter trains"
    own = {name: grad for name, grad in gradients.items() if METHOD_PARAMETERS[method] in name}
    reached = [name for name, grad in own.items() if grad is not None and grad.abs().sum() > 0]
    assert reached, f"none of the {len(own)} {method} parameters got a gradient: {sorted(own)[:3]}..."
    assert all(torch.isfinite(gradients[name]).all() for name in reached), "a gradient is not finite"


# Each config.yaml knob of a method, a value other than its default, and the field of peft's own config that the
# knob says it sets (peft's names, from its LoraConfig, AdaLoraConfig, PromptTuningConfig, PrefixTuningConfig and
# PromptEncoderConfig).
KNOBS = {
    "lora": {"lora_r": (4, "r"), "lora_alpha": (7, "lora_alpha"), "lora_dropout": (0.25, "lora_dropout")},
    "adalora": {
        "adalora_init_r": (6, "init_r"), "adalora_target_r": (3, "target_r"), "lora_alpha": (7, "lora_alpha"),
        "lora_dropout": (0.25, "lora_dropout"), "adalora_tinit": (1, "tinit"), "adalora_tfinal": (2, "tfinal"),
        "adalora_total_step": (9, "total_step"),
    },
    "prompt-tuning": {"num_virtual_tokens": (5, "num_virtual_tokens"),
                      "prompt_init_text": ("Is this review good or bad?", "prompt_tuning_init_text")},
    "prefix-tuning": {"num_virtual_tokens": (5, "num_virtual_tokens"),
                      "prefix_projection": (True, "prefix_projection")},
    "p-tuning": {"num_virtual_tokens": (5, "num_virtual_tokens"), "encoder_hidden_size": (16, "encoder_hidden_size")},
}  # fmt: skip


def test_every_knob_is_listed() -> None:
    assert {m: set(KNOBS.get(m, {})) for m in PEFT_METHODS} == {m: set(p.knobs) for m, p in PEFT_METHODS.items()}


@pytest.mark.usefixtures("project_modules", "one_thread")
@pytest.mark.parametrize("method", sorted(KNOBS))
def test_each_knob_reaches_peft(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`python train.py lora_r=4` builds a model whose peft config (and weights) have rank 4, and so on for every
    knob config.yaml lists."""
    # prefix tuning is refused for encoder heads: a decoder carries it
    task, family = ("text-generation", "gpt2") if method == "prefix-tuning" else ("text-classification", "bert")
    render_into(tmp_path / "project", task, family, method)
    config = (tmp_path / "project" / "config.yaml").read_text()
    assert all(f"\n{knob}: " in config for knob in KNOBS[method])  # each is a line a user can edit
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = {knob: value for knob, (value, _) in KNOBS[method].items()}
    model, _ = project_step(tmp_path, task, method, tmp_path_factory, **settings)
    peft_config = model.peft_config["default"]
    assert {knob: getattr(peft_config, field) for knob, (_, field) in KNOBS[method].items()} == settings
    if method == "lora":
        ranks = {tuple(p.shape) for name, p in model.named_parameters() if "lora_A" in name}
        assert ranks and all(shape[0] == 4 for shape in ranks)
    if "num_virtual_tokens" in settings:
        embedding = model.prompt_encoder["default"].embedding.weight
        assert embedding.shape[0] == 5 * peft_config.num_transformer_submodules


@pytest.mark.usefixtures("project_modules", "one_thread")
@pytest.mark.parametrize("task", sorted({task for task, _ in UNSUPPORTED}))
def test_a_refusal_says_so_in_one_line_naming_methods_that_train(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`scaffold new` refuses each method the task cannot use in one line, naming others; each method named takes
    a training step on the task's model family (its first in the table)."""
    named: set[str] = set()
    refusals = sorted(method for t, method in UNSUPPORTED if t == task)
    for refused in refusals:
        with pytest.raises(SpecError) as refusal:
            ProjectSpec(task=task, train_data=TASK_DATA[task], peft=refused)
        message = str(refusal.value)
        assert message.startswith(f"--peft {refused} does not work for {task}: ") and "\n" not in message
        named |= set(message.rsplit("; use ", 1)[1].split(" or "))
    assert named and not named & set(refusals), named  # never another method it refuses
    family = next(name for name, f in FAMILIES.items() if f.architecture in TASKS[task].architectures)
    for method in sorted(named):
        folder = tmp_path / method
        folder.mkdir()
        with monkeypatch.context() as patched:
            assert_one_step_trains(task, family, method, folder, patched, tmp_path_factory)
        _forget_project_modules()
