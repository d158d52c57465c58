"""The command line as a user meets it: exit codes, one-line errors, nothing left behind, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git
import pytest

from conftest import DATA, reviews_csv, run_cli


def listing(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "train.csv").write_text(reviews_csv())
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.jsonl").write_text('{"text": "a", "label": 1}\n{"text": \n')
    (tmp_path / "nolabel.csv").write_text("text,notes\n" + "".join(f"t{i},n{i}\n" for i in range(20)))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    return tmp_path


BAD_INPUTS = [
    (["--task", "summarise", "--data", "train.csv"], "unknown task `summarise`; choose one of"),
    (["--task", "text-classification", "--data", "missing.csv"], "missing.csv not found; check the path"),
    (["--task", "text-classification", "--data", "empty.csv"], "empty.csv is empty"),
    (["--task", "text-classification", "--data", "broken.jsonl"], "broken.jsonl, line 2: not valid JSON"),
    (["--task", "text-classification", "--data", "nolabel.csv"], "no label column found among text, notes; pass"),
    (["--task", "text-classification", "--data", "train.csv", "--peft", "dora"], "unknown PEFT method `dora`"),
    (["--task", "text-classification", "--data", "train.csv", "--model", "./models/mine"], "model path ./models/"),
    (["--task", "text-classification", "--data", "train.csv", "--output", "taken"], "taken exists and is not empty"),
    (["--task", "text-classification", "--data", "train.csv", "--label-column", "y"], "has no column `y`"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[m.split(";")[0][:30] for _, m in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(workdir: Path, args: list[str], message: str) -> None:
    before = listing(workdir)
    result = run_cli("new", *args, "--no-smoke", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert listing(workdir) == before
    assert (workdir / "taken" / "keep.txt").read_text() == "mine"


def test_new_without_smoke_commits_a_clean_project_and_prints_json(workdir: Path) -> None:
    result = run_cli(
        "new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
        "--model", "FacebookAI/roberta-base", "--peft", "lora", "--output", "nested/nli", "--no-smoke", "--json",
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    project = workdir / "nested" / "nli"
    assert report["project"] == str(project)
    assert report["generator"] == "jinja" and report["smoke"] is None
    assert {"train.py", "data.py", "model.py", "evaluation.py", "predict.py", "config.yaml", "scaffold.toml",
            "tests/smoke.py", "pyproject.toml", "README.md"} <= set(report["files"])  # fmt: skip
    repo = git.Repo(project)
    assert repo.head.commit.hexsha == report["commit"]
    assert not repo.is_dirty(untracked_files=True)
    assert repo.commit("scaffold/generated") == repo.head.commit
    message = repo.head.commit.message
    assert message.startswith("Generate text-classification project: FacebookAI/roberta-base, lora")
    trailers = dict(line.split(": ", 1) for line in message.strip().splitlines()[-3:])
    assert trailers["Scaffolder-Version"] == "0.1.0"
    assert trailers["Scaffolder-Generator"] == "jinja"
    assert trailers["Scaffolder-Spec-Hash"].startswith("sha256:")
    assert sorted(p.name for p in workdir.iterdir()) == sorted(
        ["broken.jsonl", "empty.csv", "nolabel.csv", "taken", "train.csv", "nested"]
    )  # no staging left


def test_default_output_name_comes_from_the_data(workdir: Path) -> None:
    result = run_cli("new", "--task", "text-classification", "--data", str(DATA / "intents.json"), "--no-smoke",
                     cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (workdir / "intents-text-classification" / "train.py").is_file()
    assert result.stdout.strip() == "cd intents-text-classification && python train.py"


def test_an_empty_output_folder_is_used(workdir: Path) -> None:
    (workdir / "empty-dir").mkdir()
    result = run_cli("new", "--task", "text-classification", "--data", "train.csv", "--output", "empty-dir",
                     "--no-smoke", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (workdir / "empty-dir" / ".git").is_dir()


def test_smoke_outside_a_project_says_where_to_run_it(tmp_path: Path) -> None:
    result = run_cli("smoke", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "scaffold.toml not found; run this inside a project made by `scaffold new`" in result.stderr


def test_tasks_lists_the_catalogue() -> None:
    result = run_cli("tasks", cwd=Path.cwd())
    assert result.returncode == 0
    assert "text-classification" in result.stdout and "lora" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["early_stopping_patience", "null"] for line in lines)
    assert any(line.split()[:2] == ["lr_scheduler_type", "linear"] and "warmup_stable_decay" in line for line in lines)


def test_the_cli_imports_no_training_stack() -> None:
    probe = (
        "import sys; from scaffolder import cli, pipeline, render, plan, vcs, smoke; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
