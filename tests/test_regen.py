"""Regeneration in real git repositories: spec changes come in, user edits stay, conflicts are git's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import git
import pytest

from conftest import DATA, commit_all, edit, run_cli
from scaffolder import vcs


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder, .git included, by content hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def regen(project: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("regen", str(project), "--no-smoke", *args, cwd=project.parent, env=env)


def test_spec_change_comes_in_and_user_edits_stay(project: Path) -> None:
    edit(project, "train.py", "def main(argv", "# my note: keep this\ndef main(argv")
    edit(project, "config.yaml", "num_workers: 0", "num_workers: 2")
    commit_all(project)
    result = regen(project, "--set", "peft=lora", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["changes"] == ["peft: none -> lora", "learning_rate: 2e-05 -> 0.0002"]
    assert report["diagnostics"] == []
    assert "# my note: keep this" in (project / "train.py").read_text()
    assert "num_workers: 2" in (project / "config.yaml").read_text()
    assert "LoraConfig(" in (project / "model.py").read_text()
    assert "learning_rate: 0.0002" in (project / "config.yaml").read_text()
    assert 'peft = "lora"' in (project / "scaffold.toml").read_text()
    repo = git.Repo(project)
    assert not repo.is_dirty(untracked_files=True)
    head = repo.head.commit
    assert head.hexsha == report["merge"] and len(head.parents) == 2
    assert head.summary == "Merge regenerated project (peft: none -> lora; learning_rate: 2e-05 -> 0.0002)"
    assert "Scaffolder-Generator: jinja" in head.message
    assert head.parents[1].hexsha == report["generation"] == repo.commit("scaffold/generated").hexsha
    generation = repo.commit("scaffold/generated")
    assert generation.summary == "Regenerate: peft: none -> lora; learning_rate: 2e-05 -> 0.0002"
    assert "Scaffolder-Spec-Hash: sha256:" in generation.message
    log = run_cli("log", str(project), cwd=project.parent)
    assert "Regenerate: peft: none -> lora" in log.stdout and "smoke: skipped" in log.stdout


def test_editing_scaffold_toml_then_regen(project: Path) -> None:
    edit(project, "scaffold.toml", "max_length = 32", "max_length = 48")
    commit_all(project, "longer inputs")
    result = regen(project)
    assert result.returncode == 0, result.stderr
    assert "max_length: 48  #" in (project / "config.yaml").read_text()
    assert regen(project).stderr.count("nothing to regenerate") == 1


def test_a_dirty_tree_is_refused_byte_for_byte(project: Path) -> None:
    edit(project, "train.py", "def main(argv", "# uncommitted\ndef main(argv")
    (project / "notes.txt").write_text("untracked")
    before = snapshot(project)
    result = regen(project, "--set", "peft=lora")
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(project) == before


def test_invalid_values_are_refused_before_any_write(project: Path) -> None:
    before = snapshot(project)
    for bad, message in [("peft=qlora", "unknown PEFT method"), ("num_epochs=many", "must be an integer"),
                         ("colour=red", "expected key=value with a scaffold.toml key")]:  # fmt: skip
        result = regen(project, "--set", bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert snapshot(project) == before


def test_overlapping_edits_become_git_conflicts_and_nothing_is_lost(project: Path) -> None:
    edit(
        project,
        "model.py",
        "    if model.config.pad_token_id is None:",
        "    # mine\n    if model.config.pad_token_id is None:",
    )
    edit(project, "model.py", "    return model\n", "    return model.train()  # my change\n")
    head = commit_all(project)
    result = regen(project, "--set", "peft=lora")
    assert result.returncode == 6, result.stderr
    assert "model.py" in result.stderr and "git merge --abort" in result.stderr
    repo = git.Repo(project)
    assert repo.head.commit.hexsha == head  # nothing committed on the user's branch
    assert "UU model.py" in repo.git.status("--porcelain")
    text = (project / "model.py").read_text()
    assert "<<<<<<<" in text and ">>>>>>>" in text
    assert "return model.train()  # my change" in text and "get_peft_model(model, peft_config(cfg, model))" in text
    repo.git.merge("--abort")
    assert repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)


def test_a_deleted_file_stays_deleted_and_an_added_file_is_untouched(project: Path) -> None:
    (project / "tests" / "test_smoke.py").unlink()
    (project / "mine.py").write_text("X = 1\n")
    commit_all(project)
    result = regen(project, "--set", "num_epochs=5")
    assert result.returncode == 0, result.stderr
    assert not (project / "tests" / "test_smoke.py").exists()
    assert (project / "mine.py").read_text() == "X = 1\n"
    assert "num_epochs: 5" in (project / "config.yaml").read_text()


def test_a_renamed_file_receives_the_change(project: Path) -> None:
    (project / "docs").mkdir()
    git.Repo(project).git.mv("README.md", "docs/README.md")
    commit_all(project, "move the readme")
    result = regen(project, "--set", "peft=lora")
    assert result.returncode == 0, result.stderr
    assert not (project / "README.md").exists()
    assert "LoRA: low-rank adapters" in (project / "docs" / "README.md").read_text()


def as_before_the_rename(files: dict[str, str]) -> dict[str, str]:
    """A generation as scaffolder wrote it when evaluation.py was evaluate.py (and shadowed `evaluate`)."""
    renamed = {("evaluate.py" if path == "evaluation.py" else path): text for path, text in files.items()}
    return {path: text.replace("from evaluation import", "from evaluate import") for path, text in renamed.items()}


def test_a_project_made_with_evaluate_py_gets_evaluation_py_with_its_edits(project: Path) -> None:
    repo = git.Repo(project)
    first = repo.commit("scaffold/generated")
    files = {b.path: b.data_stream.read().decode() for b in first.tree.traverse() if b.type == "blob"}
    old = vcs.commit_tree(project, as_before_the_rename(files), first.hexsha, "Regenerate: as an older scaffolder")
    vcs.move_branch(project, "scaffold/generated", old, first.hexsha)
    repo.git.merge("-q", "--no-ff", "-m", "Merge regenerated project", "scaffold/generated")
    assert (project / "evaluate.py").exists() and not (project / "evaluation.py").exists()
    edit(project, "evaluate.py", "def evaluate(", "# my own metric goes here\ndef evaluate(")
    commit_all(project, "my metric")
    before = run_cli("check", str(project), cwd=project.parent)
    assert before.returncode != 0 and "`scaffold regen` renames evaluate.py to evaluation.py" in before.stdout
    result = regen(project, "--set", "num_epochs=5")
    assert result.returncode == 0, result.stderr
    assert not (project / "evaluate.py").exists()
    assert "# my own metric goes here\ndef evaluate(" in (project / "evaluation.py").read_text()
    assert "from evaluation import evaluate" in (project / "train.py").read_text()
    checked = run_cli("check", str(project), cwd=project.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_works_on_another_branch_with_commits_on_top_and_a_remote(project: Path, tmp_path: Path) -> None:
    repo = git.Repo(project)
    git.Repo.init(tmp_path / "remote.git", bare=True)
    repo.create_remote("origin", str(tmp_path / "remote.git"))
    repo.git.push("-q", "origin", "main")
    repo.git.checkout("-qb", "experiment")
    edit(project, "README.md", "## Run", "## Run (my notes)")
    commit_all(project, "one")
    edit(project, "data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 1")
    commit_all(project, "two")
    result = regen(project, "--set", "batch_size=32")
    assert result.returncode == 0, result.stderr
    assert repo.active_branch.name == "experiment"
    assert "SPLIT_SEED = 1" in (project / "data.py").read_text()
    assert "batch_size: 32" in (project / "config.yaml").read_text()
    assert repo.commit("main").message.startswith("Generate")  # the other branch is untouched


def test_undo_drops_the_last_regeneration(project: Path) -> None:
    head = git.Repo(project).head.commit.hexsha
    generated = git.Repo(project).commit("scaffold/generated").hexsha
    assert regen(project, "--set", "peft=lora").returncode == 0
    result = run_cli("undo", str(project), cwd=project.parent)
    assert result.returncode == 0, result.stderr
    repo = git.Repo(project)
    assert repo.head.commit.hexsha == head and repo.commit("scaffold/generated").hexsha == generated
    again = run_cli("undo", str(project), cwd=project.parent)
    assert again.returncode == 2 and "not the merge of the last regeneration" in again.stderr


def test_diff_shows_the_generation_change_and_the_users(project: Path) -> None:
    edit(project, "data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 7")
    commit_all(project)
    assert regen(project, "--set", "peft=lora").returncode == 0
    generation = run_cli("diff", str(project), cwd=project.parent).stdout
    assert "+from peft import" in generation and "SPLIT_SEED" not in generation
    user = run_cli("diff", str(project), "--user", cwd=project.parent).stdout
    assert "+SPLIT_SEED = 7" in user and "peft" not in user


@pytest.mark.parametrize("step", ["after-journal", "after-branch", "before-merge", "after-merge"])
def test_a_killed_regen_leaves_the_repo_as_before_or_after(project: Path, step: str) -> None:
    edit(project, "train.py", "def main(argv", "# mine\ndef main(argv")
    commit_all(project)
    repo = git.Repo(project)
    state = (repo.head.commit.hexsha, repo.commit("scaffold/generated").hexsha)
    killed = regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": step})
    assert killed.returncode == 137
    # The next run finds the record and puts back what the killed one moved (keeping a merge it had finished),
    # then does the whole regeneration.
    result = regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": ""})
    assert result.returncode == 0, result.stderr
    kept = "its merge " if step == "after-merge" else "main stays at"
    assert f"found an interrupted regeneration: {kept}" in result.stderr
    assert "took over the lock of pid" in result.stderr  # the killed run held it
    repo = git.Repo(project)
    assert repo.head.commit.parents[0].hexsha == state[0]
    assert repo.commit("scaffold/generated").parents[0].hexsha == state[1]
    assert "# mine" in (project / "train.py").read_text() and "LoraConfig(" in (project / "model.py").read_text()
    assert not repo.is_dirty(untracked_files=True)
    assert repo.git.stash("list") == ""  # the work tree is never stashed or reset by the recovery


@pytest.mark.slow
@pytest.mark.parametrize(("start", "switch"), [("none", "lora"), ("lora", "none")])
def test_every_peft_switch_smoke_trains(tmp_path: Path, start: str, switch: str) -> None:
    created = run_cli("new", "--task", "text-classification", "--data", str(DATA / "nli_pairs.jsonl"),
                      "--peft", start, "--output", "p", "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    result = run_cli("regen", "p", "--set", f"peft={switch}", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["smoke"]["passed"] and report["check_errors"] == 0
    log = run_cli("log", "p", cwd=tmp_path).stdout
    assert "smoke: passed" in log


def test_changes_after_a_merge_may_have_begun_are_left_to_the_user(project: Path) -> None:
    # Killed once the merge may have begun: the changes could be the merge's or the user's, so none is touched.
    assert regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": "before-merge"}).returncode == 137
    edit(project, "data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 3")
    (project / ".git" / "scaffold.lock").unlink()  # the killed run's: taken over and released like any other
    before = snapshot(project)
    refused = regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": ""})
    assert refused.returncode == 2 and "may have left its merge half-done" in refused.stderr
    assert "git stash -u" in refused.stderr
    assert snapshot(project) == before  # the record stays too, until the tree is sorted out
    git.Repo(project).git.stash("push", "-u")
    result = regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": ""})
    assert result.returncode == 0, result.stderr
    assert "LoraConfig(" in (project / "model.py").read_text()
    assert "+SPLIT_SEED = 3" in git.Repo(project).git.stash("show", "-p")


def test_edits_made_before_any_merge_began_stay_in_the_work_tree(project: Path) -> None:
    assert regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": "after-branch"}).returncode == 137
    edit(project, "data.py", "SPLIT_SEED = 0", "SPLIT_SEED = 3")
    refused = regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": ""})
    assert refused.returncode == 2 and "uncommitted changes (data.py)" in refused.stderr
    assert "SPLIT_SEED = 3" in (project / "data.py").read_text()
    assert not (project / ".git" / "scaffold-regen.json").exists()  # the record was dealt with: generated is back
    commit_all(project)
    assert regen(project, "--set", "peft=lora", env={"SCAFFOLD_CRASH_AT": ""}).returncode == 0
    assert "SPLIT_SEED = 3" in (project / "data.py").read_text() and "LoraConfig(" in (project / "model.py").read_text()


def test_training_controls_are_set_kept_and_reset_through_regen(project: Path) -> None:
    edit(project, "config.yaml", "num_workers: 0", "num_workers: 2")
    commit_all(project)
    result = regen(project, "--set", "training.early_stopping_patience=3", "--set", "training.lr_scheduler_type=cosine")
    assert result.returncode == 0, result.stderr
    config = (project / "config.yaml").read_text()
    assert "\nearly_stopping_patience: 3  # stop after this many evaluations" in config
    assert "\nlr_scheduler_type: cosine  #" in config and "num_workers: 2" in config
    spec = (project / "scaffold.toml").read_text()
    assert 'training = {early_stopping_patience = 3, lr_scheduler_type = "cosine"}' in spec
    # `null` puts a control back to its default, and scaffold.toml loses the entry.
    result = regen(project, "--set", "training.early_stopping_patience=null")
    assert result.returncode == 0, result.stderr
    assert "\nearly_stopping_patience: null  #" in (project / "config.yaml").read_text()
    assert 'training = {lr_scheduler_type = "cosine"}' in (project / "scaffold.toml").read_text()
    before = snapshot(project)
    for bad, message in [
        ("training.patience=3", "unknown training control `patience`; did you mean `early_stopping_patience`?"),
        ("training.warmup=0.1", "unknown training control `warmup`; known: report_to, eval_steps"),
        ("training.eval_steps=0", "`training.eval_steps` must be a positive integer or null, got 0"),
        ("training.optim=sgd", "`training.optim` must be one of adamw_torch_fused, adamw_torch, adafactor"),
    ]:
        refused = regen(project, "--set", bad)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert snapshot(project) == before
