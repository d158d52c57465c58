"""Summarization and translation end to end through the CLI: new -> commit -> smoke, then the project's own
evaluation.py and predict.py on the model its smoke run trained, and its metrics checked against the packages."""

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

CASES = {
    # English csv, article + highlights, the default T5, full fine-tune.
    "news-t5-full": ["--task", "summarization", "--data", str(DATA / "news_summaries.csv")],
    # Chinese dialogues in jsonl: the default becomes mT5; LoRA.
    "dialogue-mt5-lora": ["--task", "summarization", "--data", str(DATA / "dialogue_zh.jsonl"), "--peft", "lora"],
    # WMT-style jsonl: the Marian model for en-de is the default; full fine-tune.
    "wmt-marian-full": ["--task", "translation", "--data", str(DATA / "wmt_en_de.jsonl")],
    # Language-code csv (en, zh), BART named by the user, columns named by flags; LoRA.
    "en-zh-bart-lora": ["--task", "translation", "--data", str(DATA / "en_zh.csv"), "--model", "facebook/bart-base",
                        "--column", "source=en", "--column", "target=zh", "--peft", "lora"],
}  # fmt: skip
METRICS = {
    "summarization": {"eval_rouge1", "eval_rouge2", "eval_rougeL", "eval_rougeLsum", "eval_gen_len"},
    "translation": {"eval_bleu", "eval_chrf", "eval_gen_len"},
}


def project_python(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # One thread, as scaffold's own smoke child runs: tiny models gain nothing from more, and tests run in parallel.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_commits_and_smoke_trains(case: str, tmp_path: Path) -> None:
    args = CASES[case]
    result = run_cli("new", *args, "--output", case, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke
    losses = smoke["losses"]
    assert len(losses) == 64 and all(loss == loss for loss in losses)
    assert sum(losses[-16:]) < 0.95 * sum(losses[:16])
    assert METRICS[args[1]] <= set(smoke["metrics"])
    assert not git.Repo(tmp_path / case).is_dirty(untracked_files=True)


def test_project_evaluates_and_predicts_with_its_trained_model(tmp_path: Path) -> None:
    """The smoke run's saved model through the project's own command lines, as its owner would use them. One case:
    summarization and translation share these files; this one reloads a LoRA adapter and reads Chinese."""
    case = "en-zh-bart-lora"
    result = run_cli("new", *CASES[case], "--output", "p", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    project, work = tmp_path / "p", tmp_path / "work"
    smoke = project_python(project, "-m", "tests.smoke", "--workdir", str(work))
    assert smoke.returncode == 0, smoke.stdout[-2000:] + smoke.stderr[-2000:]
    best = work / "outputs" / "best"

    evaluated = project_python(project, "evaluation.py", str(best), "--output", str(tmp_path / "eval.jsonl"))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert metrics["eval_samples"] == 4  # 10% of 40 rows held out
    lines = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {"prediction", "reference"} <= set(lines[0])

    predicted = project_python(project, "predict.py", str(best), "first input", "第二个输入", "--batch-size", "1")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    outputs = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert len(outputs) == 2 and all(isinstance(o["translation"], str) for o in outputs)

    data_file = CASES[case][CASES[case].index("--data") + 1]
    from_file = project_python(project, "predict.py", str(best), "--file", data_file, "--output", "out.jsonl")
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    assert len((project / "out.jsonl").read_text().splitlines()) == 40


def project_metrics(tmp_path: Path, task: str, data: Path, code: str) -> object:
    """Run `code` inside a freshly scaffolded project (its evaluation.py importable) and return what it prints."""
    result = run_cli("new", "--task", task, "--data", str(data), "--output", "p", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = project_python(tmp_path / "p", "-c", code)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_rouge_matches_rouge_score_on_english_and_scores_chinese_by_character(tmp_path: Path) -> None:
    code = """
import json
from rouge_score import rouge_scorer
from evaluation import compute_metrics
english = (["They ate fish. The cats were running home."], ["A cat runs home. It ate fish."])
reference = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(
    english[1][0], english[0][0])
print(json.dumps({
    "ours": compute_metrics(*english),
    "package": {name: 100 * score.fmeasure for name, score in reference.items()},
    "chinese": compute_metrics(["小王和张伟明天开会"], ["小王和张伟确认明天下午开会"]),
    "none": compute_metrics(["完全不同"], ["小王和张伟"]),
}))
"""
    found = project_metrics(tmp_path, "summarization", DATA / "news_summaries.csv", code)
    assert isinstance(found, dict)
    for name in ("rouge1", "rouge2", "rougeL"):  # stemmed English: the same numbers as rouge-score's own
        assert found["ours"][name] == pytest.approx(found["package"][name])
    # Sentences in the other order: rougeLsum (per sentence) finds both, rougeL only the longer one.
    assert found["ours"]["rougeLsum"] > found["ours"]["rougeL"]
    # 9 of the 13 reference characters in order: recall 9/13, precision 9/9.
    assert found["chinese"]["rouge1"] == pytest.approx(100 * 2 * (9 / 13) / (1 + 9 / 13))
    assert found["none"]["rouge1"] == 0.0


def test_bleu_uses_the_chinese_tokenizer_for_chinese_targets(tmp_path: Path) -> None:
    code = """
import json
import sacrebleu
from config import load_config
from evaluation import compute_metrics
cfg = load_config([])
hypotheses, references = ["我喜欢绿茶。", "火车中午出发了。"], ["我喜欢喝绿茶。", "火车中午出发。"]
print(json.dumps({
    "tokenize": cfg.bleu_tokenize,
    "ours": compute_metrics(hypotheses, references, cfg.bleu_tokenize),
    "zh": sacrebleu.corpus_bleu(hypotheses, [references], tokenize="zh").score,
    "13a": sacrebleu.corpus_bleu(hypotheses, [references]).score,
}))
"""
    found = project_metrics(tmp_path, "translation", DATA / "en_zh.csv", code)
    assert isinstance(found, dict)
    assert found["tokenize"] == "zh"
    assert found["ours"]["bleu"] == pytest.approx(found["zh"])
    assert found["zh"] > found["13a"]  # 13a sees each unspaced sentence as one word
    assert 0 < found["ours"]["chrf"] < 100
