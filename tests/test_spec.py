from pathlib import Path

import pytest

from scaffolder.errors import SpecError
from scaffolder.spec import ProjectSpec, from_toml, portable_path, spec_hash, to_toml


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
