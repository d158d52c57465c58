"""Losses under gradient accumulation and several processes, for every task: each target of an update (a token for
the token-level tasks, an example for the per-example ones) weighs the same however the update's examples are split
into micro-batches and processes, and the logged training loss is the estimator of the eval loss.

Each task's project trains a tiny model without dropout on 10 examples of unequal lengths: one update of 8 and a
last one of 2, as 8 x 1, 2 x 4 (batch x accumulation steps) and, under torchrun, 2 processes x 4 x 1 and 2 x 2 x 2.
The gradients each optimizer step sees are compared layout against layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from conftest import DATA
from scaffolder import render
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    task: str
    data: str
    auto_class: str  # the tiny model's class
    targets: str  # what one example's loss averages over: "examples", "tokens" (labels) or "next-tokens" (shifted)
    settings: tuple[str, ...] = ()
    # The span head's softmax runs over every position, padding too: a window's loss depends on the length its
    # batch is padded to, whatever the weighting. Padded to max_length (as the Trainer's run_qa.py does by default)
    # every batch is alike.
    pad_to_max_length: bool = False


CASES = {
    "text-classification": Case(
        "text-classification", "nli_pairs.jsonl", "AutoModelForSequenceClassification", "examples"
    ),
    "token-classification": Case(
        "token-classification", "ner_conll.conll", "AutoModelForTokenClassification", "tokens"
    ),
    "question-answering": Case(
        "question-answering", "qa_flat.jsonl", "AutoModelForQuestionAnswering", "examples", pad_to_max_length=True
    ),
    "instruction": Case("text-generation", "alpaca_mixed.jsonl", "AutoModelForCausalLM", "next-tokens"),
    # Packed 32-token blocks: all of one length (but for the corpus's last), so only the epoch's short last update
    # and a logging window over micro-batches of unequal sizes tell the weightings apart.
    "text": Case("text-generation", "corpus.txt", "AutoModelForCausalLM", "next-tokens", ("max_length=32",)),
    "summarization": Case("summarization", "news_summaries.csv", "AutoModelForSeq2SeqLM", "tokens"),
    "translation": Case("translation", "wmt_en_de.jsonl", "AutoModelForSeq2SeqLM", "tokens"),
}
# The same 10 examples for training and evaluation (one seeded subset of the same file), in the sampler's plain
# order, fp32, unclipped gradients, one epoch of 2 updates, nothing saved but best/.
SETTINGS = ["max_train_samples=10", "max_eval_samples=10", "group_by_length=false", "mixed_precision=no",
            "max_grad_norm=1e9", "learning_rate=1e-3", "warmup_ratio=0.0", "weight_decay=0.0", "num_epochs=1",
            "logging_steps=1", "save_total_limit=0", "report_to=none"]  # fmt: skip
LAYOUTS = {"8x1": ["batch_size=8", "gradient_accumulation_steps=1"],
           "2x4": ["batch_size=2", "gradient_accumulation_steps=4"]}  # fmt: skip
PROCESS_LAYOUTS = {"2 processes 4x1": ["batch_size=4", "gradient_accumulation_steps=1"],
                   "2 processes 2x2": ["batch_size=2", "gradient_accumulation_steps=2"]}  # fmt: skip
# Batches of 4, 4 and 2 in updates of two: the logged window of 2 updates holds micro-batches of unequal sizes.
FROZEN = ["batch_size=4", "gradient_accumulation_steps=2", "logging_steps=2"]

# Test-only hooks from outside the project's code. The gradients each AdamW step sees (after accumulation and the
# processes' all-reduce) are saved per run; a frozen run (SGD at rate 0) keeps the tiny model's weights, so its
# logged loss can be recomputed example by example afterwards.
DRIVER = r"""
import json, os, sys
from pathlib import Path
import torch, transformers
from transformers import set_seed
import train
from config import load_config

job = json.loads(sys.argv[1])
main_process = int(os.environ.get("RANK", "0")) == 0
steps = []

def capture(optimizer, args, kwargs):
    if isinstance(optimizer, torch.optim.AdamW):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        steps.append([torch.zeros(0) if g is None else g.detach().clone() for g in grads])

from torch.optim.optimizer import register_optimizer_step_pre_hook
register_optimizer_step_pre_hook(capture)
# The process group outlives each run: the next one trains in the same processes (ended once, at the end).
from accelerate import Accelerator
end_training, Accelerator.end_training = Accelerator.end_training, lambda self: None


def build_tiny(cfg, directory, auto_class):
    from tests.tiny import save_tiny_model, smoke_tokenizer
    set_seed(0)
    tokenizer = smoke_tokenizer(cfg, Path(cfg.train_file).read_text(encoding="utf-8").splitlines())
    labelled = auto_class in ("AutoModelForSequenceClassification", "AutoModelForTokenClassification")
    # A wide initialisation: examples' losses differ more from one another than at the usual 0.02.
    save_tiny_model(getattr(transformers, auto_class), tokenizer, directory, initializer_range=0.2,
                    **({"num_labels": len(cfg.labels)} if labelled else {}))
    config = json.loads((directory / "config.json").read_text())
    for key, value in list(config.items()):
        if ("dropout" in key or key.endswith("pdrop")) and isinstance(value, float):
            config[key] = 0.0  # the layouts compared must compute the same function
    (directory / "config.json").write_text(json.dumps(config))


def example_by_example(overrides, targets):
    # The mean loss over the training set's targets, one example at a time: each example's mean loss times its
    # number of targets is the sum of its target losses.
    from data import build_collator, build_datasets
    from model import build_model, load_tokenizer
    cfg = load_config(overrides)
    tokenizer = load_tokenizer(cfg)
    set_seed(cfg.seed)
    model = build_model(cfg, tokenizer).eval()
    train_set, _ = build_datasets(cfg, tokenizer)
    collate = build_collator(tokenizer, False)
    total, count = 0.0, 0
    with torch.no_grad():
        for index in range(len(train_set)):
            batch = collate([train_set[index]])
            if targets == "examples":
                n = 1
            else:
                labels = batch["labels"][:, 1:] if targets == "next-tokens" else batch["labels"]
                n = int((labels != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    return total / count


if job["pad_to_max_length"]:
    import data
    from transformers import DataCollatorWithPadding
    def padded(tokenizer, on_gpu):
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=tokenizer.model_max_length)
    train.build_collator = data.build_collator = padded

if job.get("build"):
    build_tiny(load_config(job["settings"]), Path(job["build"]), job["auto_class"])
for name, settings in job["runs"].items():
    out = Path(job["out"]) / name
    overrides = [*job["settings"], *settings, f"output_dir={out}"]
    steps.clear()
    if name == "frozen":
        train.setup_optimizer = lambda cfg, model: torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=0.0)
    train.main(overrides)
    if main_process:
        torch.save(steps, out / "gradients.pt")
    if name == "frozen" and main_process:
        (out / "recomputed.json").write_text(json.dumps(example_by_example(overrides, job["targets"])))
end_training(Accelerator())
"""


@dataclass
class Trained:
    project: Path
    runs: Path
    settings: list[str]


def drive(trained: Trained, case: Case, runs: dict[str, list[str]], processes: int = 1, **extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    job = {"settings": trained.settings, "runs": runs, "out": str(trained.runs), "targets": case.targets,
           "auto_class": case.auto_class, "pad_to_max_length": case.pad_to_max_length, **extra}  # fmt: skip
    # A file (torchrun runs scripts only), in the project folder so that the project's modules import.
    driver = trained.project / "weighting_driver.py"
    driver.write_text(DRIVER)
    command = [*(launcher if processes > 1 else [sys.executable]), driver.name, json.dumps(job)]
    result = subprocess.run(command, cwd=trained.project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="module", params=list(CASES))
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Trained]:
    """The case's project with a tiny model beside it, trained in one process as 8 x 1, 2 x 4 and frozen."""
    case = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    project = root / "p"
    for relative, text in render.render(build_plan(ProjectSpec(task=case.task, train_data=DATA / case.data)),
                                        project).items():  # fmt: skip
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    config = yaml.safe_load((project / "config.yaml").read_text())
    settings = [*SETTINGS, f"model_name_or_path={root / 'tiny'}", f"eval_file={config['train_file']}", *case.settings]
    if "train_format" in config:  # read the eval file as the training file is
        settings.append(f"eval_format={config['train_format']}")
    result = Trained(project, root / "runs", settings)
    drive(result, case, {**LAYOUTS, "frozen": FROZEN}, build=str(root / "tiny"))
    return case, result


def gradients(trained: Trained, run: str) -> list[list[torch.Tensor]]:
    return torch.load(trained.runs / run / "gradients.pt")


def logged(trained: Trained, run: str) -> list[dict]:
    lines = (trained.runs / run / "log_history.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "loss" in record]


def assert_same_gradients(steps: list[list[torch.Tensor]], expected: list[list[torch.Tensor]], what: str) -> None:
    assert len(steps) == len(expected), what
    for step, (grads, wanted) in enumerate(zip(steps, expected, strict=True), start=1):
        worst = max((g - w).abs().max().item() for g, w in zip(grads, wanted, strict=True) if w.numel())
        scale = max(w.abs().max().item() for w in wanted if w.numel())
        # Within 1e-5, relative to the largest gradient where that is over 1.
        assert worst <= 1e-5 * max(scale, 1.0), f"{what}, update {step}: gradients differ by {worst:.3g} of {scale:.3g}"


def test_accumulation_steps_give_the_same_updates_as_one_batch(trained: tuple[Case, Trained]) -> None:
    _, run = trained
    whole = gradients(run, "8x1")
    assert len(whole) == 2  # an update of 8 examples, then the epoch's last of 2
    assert_same_gradients(gradients(run, "2x4"), whole, "2 x 4 against 8 x 1")
    # The same model after each update: the same logged losses.
    assert [r["loss"] for r in logged(run, "2x4")] == pytest.approx([r["loss"] for r in logged(run, "8x1")], rel=1e-5)


def test_the_logged_loss_is_the_mean_over_the_windows_targets_as_the_eval_loss_is(
    trained: tuple[Case, Trained],
) -> None:
    _, run = trained
    recomputed = json.loads((run.runs / "frozen" / "recomputed.json").read_text())
    records = logged(run, "frozen")
    assert [r["step"] for r in records] == [2]  # one window over both updates: micro-batches of 4, 4 and 2
    metrics = json.loads((run.runs / "frozen" / "metrics.json").read_text())
    # The weights never moved and the eval set is the training set: the three are one number.
    assert records[0]["loss"] == pytest.approx(recomputed, rel=1e-5)
    assert metrics["train_loss"] == pytest.approx(recomputed, rel=1e-5)
    assert metrics["eval_loss"] == pytest.approx(recomputed, rel=1e-5)


def test_two_processes_give_the_same_update_as_one(trained: tuple[Case, Trained]) -> None:
    case, run = trained
    drive(run, case, PROCESS_LAYOUTS, processes=2)
    whole = gradients(run, "8x1")[:1]  # the first update: the last one is evened out with repeated examples
    for name in PROCESS_LAYOUTS:
        assert_same_gradients(gradients(run, name)[:1], whole, f"{name} against 8 x 1")
        assert logged(run, name)[0]["loss"] == pytest.approx(logged(run, "8x1")[0]["loss"], rel=1e-5), name
