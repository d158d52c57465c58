"""Rendering: golden files for representative projects, and properties every render must have."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import libcst
import pytest
import yaml

from conftest import DATA
from scaffolder import render
from scaffolder.errors import GenerationError
from scaffolder.plan import build_plan
from scaffolder.spec import ProjectSpec

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


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_render_matches_golden_files(name: str, request: pytest.FixtureRequest) -> None:
    files = render_variant(name)
    golden = GOLDEN / name
    if request.config.getoption("--update-golden"):
        shutil.rmtree(golden, ignore_errors=True)
        for relative, text in files.items():
            (golden / relative).parent.mkdir(parents=True, exist_ok=True)
            (golden / relative).write_text(text, encoding="utf-8")
    on_disk = {p.relative_to(golden).as_posix() for p in golden.rglob("*") if p.is_file()}
    assert on_disk == set(files), "file list changed; run `pytest --update-golden` and review the diff"
    for relative, text in files.items():
        assert text == (golden / relative).read_text(encoding="utf-8"), f"{relative} differs from its golden file"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_render_is_lint_clean_python(name: str, tmp_path: Path) -> None:
    files = render_variant(name)
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
        if relative.endswith(".py"):
            libcst.parse_module(text)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "E,F,W,I,B,UP,SIM", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
        cwd=tmp_path,
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


def test_a_template_that_renders_broken_python_is_caught_before_writing() -> None:
    with pytest.raises(GenerationError, match=r"generated train.py does not parse \(line 1"):
        render.check_syntax({"train.py": "def main(:\n"})
