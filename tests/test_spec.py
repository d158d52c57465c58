import re
import subprocess
from dataclasses import fields
from pathlib import Path

import golden_store
import pytest

from conftest import DATA, run_cli
from scaffolder.errors import SpecError
from scaffolder.probes import question_answering, text_generation, token_classification
from scaffolder.spec import (
    KINDS,
    SPEC_FILE,
    ProjectSpec,
    apply_sets,
    from_toml,
    portable_path,
    spec_from_text,
    spec_hash,
    to_toml,
)
from scaffolder.tasks import TASKS


def spec(**changes: object) -> ProjectSpec:
    values: dict[str, object] = {"task": "text-classification", "train_data": Path("/data/train.csv")}
    return ProjectSpec(**(values | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "image-classification"}, "unknown task `image-classification`; choose one of: text-classification"),
        ({"peft": "qlora"}, "unknown PEFT method `qlora`; choose one of: none, lora"),
        ({"model": "./missing-model"}, "model path ./missing-model does not exist"),
        ({"model": "a/b/c/d"}, "model path a/b/c/d does not exist"),
        ({"model": "bad id!"}, "neither an existing directory nor a hub id"),
        ({"max_length": 0}, "`max_length` must be a positive integer"),
        ({"learning_rate": 3.0}, "`learning_rate` must be between 0 and 1"),
        ({"eval_fraction": 0.9}, "`eval_fraction` must be between 0 and 0.5"),
    ],
)
def test_invalid_values_name_the_field_and_the_fix(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec(**changes)


def test_model_directory_must_hold_a_config(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="has no config.json"):
        spec(model=str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert spec(model=str(tmp_path)).model == str(tmp_path)


def test_toml_round_trip_keeps_every_field_with_paths_relative_to_the_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    original = spec(
        train_data=tmp_path / "data" / "train.csv",
        eval_data=tmp_path / "data" / "dev.csv",
        model="org/model",
        peft="lora",
        columns={"text": "sentence1", "text_pair": "sentence2", "label": "label"},
        labels=("0", "1"),
        max_length=128,
        learning_rate=2e-5,
    )
    text = to_toml(original, project)
    assert 'train_data = "../data/train.csv"' in text
    assert text.startswith("# The spec this project was generated from")
    project.mkdir()
    (project / "scaffold.toml").write_text(text)
    assert from_toml(project / "scaffold.toml") == original


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scaffold.toml"
    path.write_text('task = "text-classification"\ntrain_data = "t.csv"\nlearning_rat = 0.1\n')
    with pytest.raises(SpecError, match="unknown key `learning_rat`"):
        from_toml(path)


def test_hash_follows_the_spec_not_the_project_location(tmp_path: Path) -> None:
    a = spec(train_data=tmp_path / "train.csv")
    assert spec_hash(a, tmp_path / "p1") == spec_hash(a, tmp_path / "p2")
    assert spec_hash(a, tmp_path / "p1") != spec_hash(a.__class__(**{**a.__dict__, "seed": 7}), tmp_path / "p1")


def test_far_away_data_is_recorded_with_an_absolute_path(tmp_path: Path) -> None:
    assert portable_path(tmp_path / "a" / "b" / "train.csv", tmp_path / "x" / "y" / "proj") == str(
        tmp_path / "a" / "b" / "train.csv"
    )
    assert portable_path(tmp_path / "data" / "train.csv", tmp_path / "proj") == "../data/train.csv"


# --- types: scaffold.toml and --set share one check --------------------------------------------------------

# A value of the wrong type for every scaffold.toml key, as TOML.
WRONG_TYPES = {
    "task": "5",
    "train_data": "5",
    "model": "true",
    "peft": "[1]",
    "eval_data": "{ a = 1 }",
    "eval_fraction": '"0.1"',
    "data_revision": "40",
    "columns": "5",
    "data_layout": "1.5",
    "header": "[1, 2]",
    "problem_type": "1",
    "labels": "5",
    "source_lang": "true",
    "target_lang": "2",
    "max_length": "true",
    "max_target_length": "1.5",
    "num_epochs": '"3"',
    "batch_size": "[8]",
    "learning_rate": "true",
    "seed": "1979-05-27",
    "training": "[1, 2]",
}


def test_every_field_has_a_type_check_and_a_wrong_type_to_test() -> None:
    assert set(KINDS) == set(WRONG_TYPES) == {f.name for f in fields(ProjectSpec)}


def toml_with(key: str, value: str) -> str:
    values = {"task": '"text-classification"', "train_data": '"train.csv"', key: value}
    return "".join(f"{k} = {v}\n" for k, v in values.items())


@pytest.mark.parametrize("key", WRONG_TYPES)
def test_a_wrong_type_in_scaffold_toml_names_the_key_and_the_type(key: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=rf"^scaffold.toml: `{key}` must be (a|an) .*, got "):
        spec_from_text(toml_with(key, WRONG_TYPES[key]), tmp_path)


@pytest.mark.parametrize("key", WRONG_TYPES)
def test_a_wrong_type_in_a_set_names_the_key_and_the_type(key: str, tmp_path: Path) -> None:
    item = f"{key}={WRONG_TYPES[key]}"
    with pytest.raises(SpecError, match=rf"^--set '{re.escape(item)}': `{key}` must be (a|an) .*, got "):
        apply_sets(spec(train_data=tmp_path / "train.csv"), [item], tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{ text = 5 }", "`columns` must be a table of column names"),
        ('["a", ["b"]]', "`labels` must be a list of names"),
        ('[true, "b"]', "`labels` must be a list of names"),
        ('"data/\\u0000.csv"', "`train_data` must be a path"),
    ],
)
def test_values_of_the_wrong_type_inside_are_refused(value: str, message: str, tmp_path: Path) -> None:
    key = message.split("`")[1]
    with pytest.raises(SpecError, match=message):
        spec_from_text(toml_with(key, value), tmp_path)


def test_sets_of_the_right_type_apply(tmp_path: Path) -> None:
    changed = apply_sets(
        spec(train_data=tmp_path / "train.csv"),
        ["max_length=64", "eval_fraction=0.2", "labels=[0, 1]", "columns.label=2024"],
        tmp_path,
    )
    assert changed.max_length == 64 and changed.eval_fraction == 0.2 and changed.labels == ("0", "1")
    assert changed.columns == {"label": "2024"}  # a column name is text, even when it reads as a number
    with pytest.raises(SpecError, match="`learning_rate` must be between 0 and 1, got 1.0"):  # an integer, as a float
        apply_sets(spec(), ["learning_rate=1"], tmp_path)


def test_a_set_value_holding_a_second_key_is_one_string(tmp_path: Path) -> None:
    changed = apply_sets(spec(), ['source_lang="en"\nseed = 7'], tmp_path)
    assert (changed.source_lang, changed.seed) == ('"en"\nseed = 7', 42)


def test_a_byte_order_mark_is_not_part_of_the_toml(tmp_path: Path) -> None:
    path = tmp_path / "scaffold.toml"
    path.write_bytes(b"\xef\xbb\xbf" + toml_with("seed", "7").encode())
    assert from_toml(path).seed == 7
    assert spec_from_text("\ufeff" + toml_with("seed", "7"), tmp_path).seed == 7


def test_a_file_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "scaffold.toml"
    path.write_bytes(toml_with("source_lang", '"\xe9"').encode("latin-1"))
    with pytest.raises(SpecError, match=r"scaffold.toml is not UTF-8 text .*; save it as UTF-8"):
        from_toml(path)


# --- column roles and data layouts ------------------------------------------------------------------------------


def test_the_role_and_layout_tables_cover_every_task_and_match_the_probes() -> None:
    assert all(task.roles for task in TASKS.values())
    assert set(TASKS["text-generation"].roles) == {role for roles in text_generation.ROLES.values() for role in roles}
    assert TASKS["text-generation"].layouts == text_generation.LAYOUTS
    assert set(TASKS["question-answering"].roles) == set(question_answering.ROLE_NAMES)
    assert set(TASKS["token-classification"].roles) == set(token_classification.CONLL_COLUMNS)


def test_every_golden_project_spec_stays_valid() -> None:
    golden = Path(__file__).parent / "golden"
    names = sorted(path.name for path in golden.iterdir() if path.is_dir())
    assert len(names) >= 16
    for name in names:
        text = golden_store.read_file(golden, name, SPEC_FILE)
        spec_from_text(text, golden / name, f"{name}/{SPEC_FILE}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"columns": {"bogus": "x"}}, "`columns`: text-classification reads no `bogus` column; its roles are: text, "),
        ({"task": "translation", "columns": {"label": "y"}}, "its roles are: source, target, translation"),
        ({"data_layout": "weird"}, "`data_layout` does not apply to text-classification"),
        ({"task": "translation", "data_layout": "weird"}, "unknown `data_layout` `weird` for translation; use wmt or"),
        ({"task": "token-classification", "data_layout": "chat"}, "use conll or records"),
    ],
)
def test_roles_and_layouts_the_task_does_not_read_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        spec(**changes)


def test_roles_and_layouts_the_task_reads_are_kept(tmp_path: Path) -> None:
    chat = spec(task="text-generation", data_layout="chat", columns={"messages": "conversations"})
    assert apply_sets(chat, ["data_layout=instruction", "columns={}"], tmp_path).data_layout == "instruction"
    with pytest.raises(SpecError, match="unknown `data_layout` `weird` for text-generation"):
        apply_sets(chat, ["data_layout=weird"], tmp_path)
    with pytest.raises(SpecError, match="text-generation reads no `bogus` column"):
        apply_sets(chat, ["columns.bogus=x"], tmp_path)


# --- through the CLI: exit 2, one line, the key named -----------------------------------------------------------


def assert_refused(result: subprocess.CompletedProcess[str], *named: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in named:
        assert text in lines[0], lines[0]


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("max_length=true", "`max_length` must be an integer, got True"),
        ("columns.bogus=x", "reads no `bogus` column; its roles are: text, text_pair, label"),
        ("data_layout=weird", "`data_layout` does not apply to text-classification"),
        ("labels=5", "`labels` must be a list"),
    ],
)
def test_regen_refuses_a_bad_set(project: Path, item: str, named: str) -> None:
    assert_refused(run_cli("regen", str(project), "--set", item, "--no-smoke", cwd=project.parent), named)


@pytest.mark.parametrize(("line", "named"), [("labels = 5", "`labels` must be a list"),
                                             ("train_data = 5", "`train_data` must be a path")])  # fmt: skip
def test_a_wrong_type_in_scaffold_toml_is_refused_by_the_cli(project: Path, line: str, named: str) -> None:
    path = project / "scaffold.toml"
    key = line.split()[0]
    path.write_text("\n".join(line if row.startswith(f"{key} =") else row for row in path.read_text().splitlines()))
    assert_refused(run_cli("check", str(project), cwd=project.parent), "scaffold.toml: ", named)


def test_a_scaffold_toml_with_a_byte_order_mark_is_read(project: Path) -> None:
    path = project / "scaffold.toml"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run_cli("check", str(project), cwd=project.parent)
    assert result.returncode == 0, result.stderr


def test_new_refuses_a_column_role_the_task_does_not_read(tmp_path: Path) -> None:
    args = ("new", "--task", "text-classification", "--data", str(DATA / "sst_like.tsv"), "--no-smoke")
    refused = run_cli(*args, "--column", "bogus=x", cwd=tmp_path)
    assert_refused(refused, "`columns`", "`bogus`", "text, text_pair, label")
    assert not list(tmp_path.iterdir())  # nothing written
    result = run_cli(*args, "--column", "text=sentence", "--output", "p", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_training_controls_in_scaffold_toml_are_checked_against_their_table(tmp_path: Path) -> None:
    spec = spec_from_text(toml_with("training", '{ eval_steps = 50, lr_scheduler_type = "cosine" }'), tmp_path)
    assert spec.training == {"eval_steps": 50, "lr_scheduler_type": "cosine"}
    for bad, message in [
        ("{ eval_step = 50 }", "unknown training control `eval_step`"),
        ("{ eval_steps = 2.5 }", "`training.eval_steps` must be a positive integer or null, got 2.5"),
        ("{ early_stopping_threshold = -1 }", "`training.early_stopping_threshold` must be a number >= 0, got -1"),
        ('{ lr_scheduler_type = "reduce_lr_on_plateau" }', "`training.lr_scheduler_type` must be one of linear"),
    ]:
        with pytest.raises(SpecError, match=re.escape(message)):
            spec_from_text(toml_with("training", bad), tmp_path)
    others = [("text-classification", "regression"), ("text-classification", "multi_label_classification"),
              ("summarization", None)]  # fmt: skip
    for task, problem in others:
        with pytest.raises(SpecError, match="applies to single-label text-classification and token-classification"):
            ProjectSpec(task=task, train_data=Path("d.csv"), problem_type=problem, training={"label_smoothing": 0.1})
    spec = ProjectSpec(task="token-classification", train_data=Path("d.conll"), training={"class_weights": "balanced"})
    assert spec.training == {"class_weights": "balanced"}
    spec = ProjectSpec(task="summarization", train_data=Path("d.csv"), training={"report_to": ["tensorboard", "wandb"]})
    assert spec.training["report_to"] == ["tensorboard", "wandb"]
    with pytest.raises(SpecError, match="`training.report_to` must be one of tensorboard, wandb, mlflow"):
        ProjectSpec(task="summarization", train_data=Path("d.csv"), training={"report_to": ["tensorboard", "neptune"]})
