"""The PEFT catalogue end to end: every method scaffolds through the CLI and passes its smoke run, and the
combinations peft gets wrong are refused before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA, run_cli
from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal

# none and lora run in test_e2e / test_families; the refused ones in the refusal tests below.
METHODS = [m for m in PEFT_METHODS if m not in ("none", "lora") and not peft_refusal(TASKS["text-classification"], m)]


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_every_peft_method_smoke_trains_through_the_cli(method: str, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
                     "--peft", method, "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]
    # export.py folds a LoRA-type adapter into the base weights; prompt methods add virtual tokens, which do not
    # fold, and IA3's merge fails on module heads in peft (scaffolder/tasks.py)
    assert (tmp_path / "p" / "export.py").exists() == (method == "adalora")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "metric"), [("stsb_like.tsv", "eval_pearson"), ("topics_multilabel.jsonl", "eval_micro_f1")]
)
def test_regression_and_multi_label_smoke_train_through_the_cli(data: str, metric: str, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / data), "--peft", "lora",
                     "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]
    assert metric in smoke["metrics"]


@pytest.mark.parametrize("model", ["google-bert/bert-base-uncased", "distilbert/distilbert-base-uncased"])
def test_prefix_tuning_on_an_encoder_head_is_refused(tmp_path: Path, model: str) -> None:
    # transformers 5 encoders take no past key values, which peft hands them the prefixes as: the first training
    # step failed ("Model does not support past key values which are required for prefix tuning").
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"),
                     "--model", model, "--peft", "prefix-tuning", "--output", "p", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "prefix-tuning does not work" in result.stderr and "use none or lora" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "p").exists()


# One method beyond none/lora per other task, each with the data layout that exercises it most.
OTHER_TASKS = {
    "token-classification": ("ner_conll.conll", "adalora"),
    "question-answering": ("squad_v2.json", "ia3"),
    "summarization": ("news_summaries.csv", "ia3"),
    "translation": ("wmt_en_de.jsonl", "prompt-tuning"),
    "text-generation": ("alpaca_mixed.jsonl", "p-tuning"),
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(OTHER_TASKS))
def test_other_tasks_take_the_catalogue(task: str, tmp_path: Path) -> None:
    data, method = OTHER_TASKS[task]
    result = run_cli("new", "--task", task, "--data", str(DATA / data), "--peft", method,
                     "--output", "p", "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke["failures"]


def test_prompt_methods_for_token_tasks_are_refused_naming_one_that_works(tmp_path: Path) -> None:
    result = run_cli("new", "--task", "token-classification", "--data", str(DATA / "ner_conll.conll"),
                     "--peft", "p-tuning", "--output", "p", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "p-tuning does not work for token-classification" in result.stderr and "use none or lora" in result.stderr
    assert not (tmp_path / "p").exists()
