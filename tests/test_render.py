"""Rendering: golden files for representative projects, and properties every render must have."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import golden_store
import libcst
import pytest
import yaml

from conftest import DATA
from scaffolder import render
from scaffolder.errors import GenerationError
from scaffolder.generator import validated
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal
from scaffolder.validate import check_files

GOLDEN = Path(__file__).parent / "golden"
VARIANTS = {
    "sst-bert-full": {"train_data": DATA / "sst_like.tsv", "model": "google-bert/bert-base-uncased"},
    "nli-deberta-lora": {
        "train_data": DATA / "nli_pairs.jsonl",
        "model": "microsoft/deberta-v3-base",
        "peft": "lora",
    },
    "intents-distilbert-lora": {
        "train_data": DATA / "intents.json",
        "eval_data": DATA / "intents.json",
        "model": "distilbert/distilbert-base-uncased",
        "peft": "lora",
    },
    # token-classification: CoNLL text; Chinese tokens in jsonl; integer tags named by the spec.
    "ner-conll-bert-full": {"task": "token-classification", "train_data": DATA / "ner_conll.conll"},
    "ner-zh-xlmr-lora": {"task": "token-classification", "train_data": DATA / "ner_zh.jsonl", "peft": "lora"},
    "ner-ids-deberta-lora": {
        "task": "token-classification",
        "train_data": DATA / "ner_ids.json",
        "model": "microsoft/deberta-v3-base",
        "peft": "lora",
        "labels": ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"),
    },
    # question-answering: nested SQuAD 2.0 with unanswerable questions; flat jsonl records.
    "squad2-roberta-full": {"task": "question-answering", "train_data": DATA / "squad_v2.json"},
    "qa-flat-distilbert-lora": {
        "task": "question-answering",
        "train_data": DATA / "qa_flat.jsonl",
        "model": "distilbert/distilbert-base-cased",
        "peft": "lora",
    },
    # text-generation: one variant per data layout and file format.
    "alpaca-qwen2-lora": {"task": "text-generation", "train_data": DATA / "alpaca_mixed.jsonl", "peft": "lora"},
    "chat-tinyllama-full": {
        "task": "text-generation",
        "train_data": DATA / "chat_support.jsonl",
        "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    },
    "sharegpt-mistral-lora": {
        "task": "text-generation",
        "train_data": DATA / "sharegpt.json",
        "model": "mistralai/Mistral-7B-Instruct-v0.3",
        "peft": "lora",
    },
    "corpus-gpt2-full": {
        "task": "text-generation",
        "train_data": DATA / "corpus.txt",
        "model": "openai-community/gpt2",
    },
    # Sequence to sequence: each data layout once, the four encoder-decoder families, full and LoRA.
    "news-t5-full": {"task": "summarization", "train_data": DATA / "news_summaries.csv"},
    "dialogue-zh-mt5-lora": {"task": "summarization", "train_data": DATA / "dialogue_zh.jsonl", "peft": "lora"},
    "wmt-en-de-marian-full": {"task": "translation", "train_data": DATA / "wmt_en_de.jsonl"},
    "en-zh-bart-lora": {
        "task": "translation",
        "train_data": DATA / "en_zh.csv",
        "model": "facebook/bart-base",
        "peft": "lora",
    },
}


def render_variant(name: str) -> dict[str, str]:
    spec = ProjectSpec(**{"task": "text-classification", **VARIANTS[name]})  # type: ignore[arg-type]
    # A project folder next to tests/data keeps the recorded data paths short and stable.
    return render.render(build_plan(spec), Path(__file__).parent / name)


@pytest.fixture(scope="module")
def golden(request: pytest.FixtureRequest) -> Path:
    """tests/golden, rewritten from every variant's render first under --update-golden (tests/golden_store.py:
    each file kept once, as its difference from the most similar earlier render)."""
    if request.config.getoption("--update-golden"):
        if os.environ.get("PYTEST_XDIST_WORKER"):
            pytest.fail("run --update-golden in one process (without -n): it rewrites tests/golden as a whole")
        golden_store.write(GOLDEN, {name: render_variant(name) for name in VARIANTS})
    return GOLDEN


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_render_matches_golden_files(name: str, golden: Path) -> None:
    files = render_variant(name)
    stored = golden_store.read(golden, name)
    assert set(stored) == set(files), "file list changed; run `pytest --update-golden` and review the diff"
    kept = {path + ("" if (golden / name / path).is_file() else golden_store.DIFF) for path in stored}
    assert golden_store.stored_paths(golden, name) == kept, "tests/golden holds stray files; run --update-golden"
    for relative, text in files.items():
        assert text == stored[relative], f"{relative} differs from its golden file; run --update-golden and review"


# A data file per task for the task x method matrix below.
TASK_DATA = {
    "summarization": DATA / "news_summaries.csv",
    "translation": DATA / "wmt_en_de.jsonl",
    "text-classification": DATA / "nli_pairs.jsonl",
    "token-classification": DATA / "ner_conll.conll",
    "question-answering": DATA / "squad_v2.json",
    "text-generation": DATA / "alpaca_mixed.jsonl",
}
MATRIX = [(task, method) for task, info in TASKS.items() for method in PEFT_METHODS if not peft_refusal(info, method)]


def test_every_task_has_matrix_data() -> None:
    assert set(TASK_DATA) == set(TASKS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_golden_variant_is_lint_clean_python(name: str, tmp_path: Path) -> None:
    assert_lint_clean(render_variant(name), tmp_path)


@pytest.mark.parametrize(("task", "method"), MATRIX, ids=[f"{t}-{m}" for t, m in MATRIX])
def test_every_task_and_method_renders_clean_checked_python(task: str, method: str, tmp_path: Path) -> None:
    spec = ProjectSpec(task=task, train_data=TASK_DATA[task], peft=method)
    plan = build_plan(spec)
    files = render.render(plan, tmp_path)
    assert [str(d) for d in check_files(files, plan.spec) if d.severity == "error"] == []
    assert ("export.py" in files) == PEFT_METHODS[method].mergeable
    assert_lint_clean(files, tmp_path)


@pytest.mark.parametrize("data", ["stsb_like.tsv", "topics_multilabel.jsonl"])
@pytest.mark.parametrize("method", ["none", "lora", "ia3"])
def test_regression_and_multi_label_render_clean_checked_python(data: str, method: str, tmp_path: Path) -> None:
    plan = build_plan(ProjectSpec(task="text-classification", train_data=DATA / data, peft=method))
    files = render.render(plan, tmp_path)
    assert [str(d) for d in check_files(files, plan.spec) if d.severity == "error"] == []
    config = yaml.safe_load(files["config.yaml"])
    assert config["problem_type"] == plan.spec.problem_type
    assert config["metric_for_best_model"] == plan.best_metric
    assert_lint_clean(files, tmp_path)


def assert_lint_clean(files: dict[str, str], folder: Path) -> None:
    # config.yaml sets each key once: YAML would keep the last of two silently.
    keys = re.findall(r"^([A-Za-z_]\w*):", files["config.yaml"], flags=re.M)
    assert sorted(key for key in set(keys) if keys.count(key) > 1) == []
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
        if relative.endswith(".py"):
            libcst.parse_module(text)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E,F,W,I,B,UP,SIM", "."],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout


def test_config_yaml_reads_back_the_spec_values() -> None:
    files = render_variant("intents-distilbert-lora")
    config = yaml.safe_load(files["config.yaml"])
    assert config["labels"] == ["book_flight", "play_music", "weather"]
    assert config["learning_rate"] == pytest.approx(2e-4)
    assert isinstance(config["learning_rate"], float)
    assert config["lora_target_modules"] == ["q_lin", "v_lin"]  # distilbert: not in peft's own table
    assert config["text_pair_column"] is None
    assert config["train_file"] == "../data/intents.json"


@pytest.mark.parametrize("task", sorted(TASKS))
def test_the_evaluate_command_in_config_yaml_never_scores_the_training_file(task: str) -> None:
    """Without an eval file, the header's evaluate command takes no file: evaluation.py then scores the rows the
    run held out (naming train_file there scored the model on its own training data)."""
    data = TASK_DATA[task]
    header = render.render(build_plan(ProjectSpec(task=task, train_data=data)), Path("/tmp/p"))["config.yaml"]
    command = next(line for line in header.splitlines() if line.startswith("# Evaluate:"))
    assert data.name not in command and "held out of train_file" in command


def test_yaml_values_that_yaml_would_misread_are_quoted() -> None:
    for value in ["no", "yes", "on", "null", "1", "0.5", "1e-3", "a: b", "正面", "- x", "#tag"]:
        assert yaml.safe_load(f"k: {render.yaml_value(value)}")["k"] == value
    assert yaml.safe_load(f"k: {render.yaml_value(2e-5)}")["k"] == 2e-5
    assert yaml.safe_load(f"k: {render.yaml_value(['0', 'no', 'x y'])}")["k"] == ["0", "no", "x y"]


def test_lora_projects_train_the_head_and_fresh_modules() -> None:
    model_py = render_variant("nli-deberta-lora")["model.py"]
    assert "task_type=TaskType.SEQ_CLS" in model_py
    assert 'modules_to_save=["pooler"]' in model_py  # deberta's pooler starts random
    full = render_variant("sst-bert-full")["model.py"]
    assert "peft" not in full


def test_a_template_that_renders_broken_python_is_refused_as_scaffolders_bug() -> None:
    spec = ProjectSpec(**{"task": "text-classification", **VARIANTS["sst-bert-full"]})  # type: ignore[arg-type]
    files = {**render.render(build_plan(spec), Path(__file__).parent / "sst-bert-full"), "train.py": "def main(:\n"}
    with pytest.raises(GenerationError, match=r"fails 1 check\(s\), first train.py:1: E001 .*scaffolder bug"):
        validated(files, spec)


def test_token_and_span_heads_leave_the_pooler_alone() -> None:
    """deberta's fresh pooler trains under a sequence classifier only; token and span heads never read it."""
    model_py = render_variant("ner-ids-deberta-lora")["model.py"]
    assert "task_type=TaskType.TOKEN_CLS" in model_py
    assert "modules_to_save" not in model_py


def test_token_classification_config_names_integer_tags() -> None:
    config = yaml.safe_load(render_variant("ner-ids-deberta-lora")["config.yaml"])
    assert config["labels"][:3] == ["O", "B-PER", "I-PER"]
    assert (config["tokens_column"], config["tags_column"]) == ("words", "tags")
    conll = yaml.safe_load(render_variant("ner-conll-bert-full")["config.yaml"])
    assert conll["model_name_or_path"] == "google-bert/bert-base-cased"


def test_question_answering_config_follows_the_data() -> None:
    squad = yaml.safe_load(render_variant("squad2-roberta-full")["config.yaml"])
    assert squad["allow_unanswerable"] is True  # the file has unanswerable questions
    assert squad["doc_stride"] == squad["max_length"] // 4
    flat = render_variant("qa-flat-distilbert-lora")
    assert yaml.safe_load(flat["config.yaml"])["allow_unanswerable"] is False
    assert "task_type=TaskType.QUESTION_ANS" in flat["model.py"]
    assert '"seqeval' not in flat["pyproject.toml"]
    assert '"seqeval>=1.2"' in render_variant("ner-conll-bert-full")["pyproject.toml"]
