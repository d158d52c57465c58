"""The libcst fixes: before/after on small sources, then on seeded mistakes in real renders."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from scaffolder import smoke, vcs
from scaffolder.fixes import (
    add_missing_import,
    fix_files,
    repoint_import,
    spec_constants,
    strip_forbidden,
    torch_load_safe,
)
from scaffolder.spec import ProjectSpec
from scaffolder.validate import check_files
from test_validate import MUTATIONS, mutate, rendered


def code(text: str) -> str:
    return dedent(text).lstrip("\n")


def test_add_missing_import_keeps_comments_and_layout() -> None:
    before = code('''
        """Train."""

        import json  # stdlib

        # the loop
        def main():
            return evaluate(json)
    ''')
    after = add_missing_import.add_imports(before, [("evaluation", "evaluate")])
    assert after == code('''
        """Train."""

        import json  # stdlib
        from evaluation import evaluate

        # the loop
        def main():
            return evaluate(json)
    ''')


def test_repoint_renames_the_import_and_its_uses_only() -> None:
    before = code("""
        from data import build_dataset  # renamed upstream


        def setup(build_dataset_count):
            return build_dataset(1), build_dataset_count
    """)
    after = repoint_import.rename_imported(before, {"build_dataset": "build_datasets"})
    assert after == code("""
        from data import build_datasets  # renamed upstream


        def setup(build_dataset_count):
            return build_datasets(1), build_dataset_count
    """)


def test_torch_load_gets_weights_only_but_an_explicit_false_is_left() -> None:
    before = code("""
        import torch as T

        state = T.load(path, map_location="cpu")
        risky = T.load(path, weights_only=False)
    """)
    after, count = torch_load_safe.add_weights_only(before)
    assert count == 1
    assert after == code("""
        import torch as T

        state = T.load(path, map_location="cpu", weights_only=True)
        risky = T.load(path, weights_only=False)
    """)


def test_strip_removes_unused_forbidden_calls_and_their_imports() -> None:
    before = code("""
        import os
        import subprocess

        def main():
            subprocess.run(["curl", "http://x"])  # phone home
            os.system("rm -rf ~")
            return os.getcwd()
    """)
    after, removed = strip_forbidden.strip(before)
    assert removed == ['subprocess.run(["curl", "http://x"])', 'os.system("rm -rf ~")', "import subprocess"]
    assert after == code("""
        import os

        def main():
            return os.getcwd()
    """)


def test_strip_refuses_when_the_result_is_used_or_the_block_would_be_empty() -> None:
    used = code("""
        import subprocess

        def version():
            return subprocess.check_output(["git", "describe"])
    """)
    assert strip_forbidden.strip(used) == (used, [])
    alone = code("""
        import os

        def cleanup():
            os.system("make clean")
    """)
    assert strip_forbidden.strip(alone) == (alone, [])


def test_spec_constants_rewrite_config_and_code(tmp_path: Path) -> None:
    spec = ProjectSpec(task="text-classification", train_data=tmp_path / "t.csv", model="org/encoder",
                       labels=("neg", "pos"), max_length=64)  # fmt: skip
    config, changed = spec_constants.fix_config(
        "labels: [a, b, c]  # class names\nmax_length: 128\nlearning_rate: 0.1  # mine\n", spec
    )
    assert config == "labels: [neg, pos]  # class names\nmax_length: 64\nlearning_rate: 0.1  # mine\n"
    assert len(changed) == 2
    source = code("""
        LABELS = ["a", "b", "c"]


        def build(cfg):
            return AutoModel.from_pretrained("bert-base-uncased", num_labels=3)  # the base


        TOKENIZER = AutoTokenizer.from_pretrained("bert-base-uncased")
    """)
    files, notes = spec_constants.apply({"model.py": source}, check_files({"model.py": source}, spec), spec)
    assert files["model.py"] == code("""
        LABELS = ["neg", "pos"]


        def build(cfg):
            return AutoModel.from_pretrained(cfg.model_name_or_path, num_labels=2)  # the base


        TOKENIZER = AutoTokenizer.from_pretrained("bert-base-uncased")
    """)
    assert len(notes) == 3  # the module-level one has no cfg to read from: left, still reported


FIXABLE = ["misspelled import", "missing import", "requests", "label count in code", "hub id in code",
           "hub id by keyword", "labels in config", "max length in config", "os.system", "subprocess",
           "torch.load"]  # fmt: skip


@pytest.mark.parametrize("name", FIXABLE)
def test_fixable_mistakes_are_fixed_to_zero_errors(name: str) -> None:
    files, spec = rendered()
    result = fix_files(mutate(files, name), spec)
    assert result.errors == [], [str(d) for d in result.errors]
    assert result.applied, "a fix should say what it changed"


@pytest.mark.parametrize("name", sorted(set(MUTATIONS) - set(FIXABLE)))
def test_the_rest_are_refused_not_papered_over(name: str) -> None:
    files, spec = rendered()
    result = fix_files(mutate(files, name), spec)
    # A contract function renamed away: the import may be repointed, but the contract still refuses it.
    expected = "C301" if name == "renamed function" else MUTATIONS[name][3]
    assert expected in {d.code for d in result.errors}


def test_fixes_leave_a_clean_render_alone() -> None:
    files, spec = rendered("pair", "lora")
    result = fix_files(files, spec)
    assert result.files == files and result.applied == [] and result.remaining == []


@pytest.mark.slow
def test_a_project_with_every_fixable_mistake_at_once_is_fixed_and_smoke_trains(tmp_path: Path) -> None:
    # One smoke run for all of them: each fix is proven alone above; this proves the fixed code runs.
    project = tmp_path / "p"
    files, spec = rendered(project_dir=project)
    for name in FIXABLE:
        files = mutate(files, name)
    fixed = fix_files(files, spec)
    assert fixed.errors == [], [str(d) for d in fixed.errors]
    assert len(fixed.applied) >= len(FIXABLE)
    vcs.write_project(fixed.files, project, "fixed")
    result = smoke.run_smoke(project)
    assert result.passed, result.failures
