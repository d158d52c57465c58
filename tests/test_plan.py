import json
from pathlib import Path

import pytest

from conftest import DATA, reviews_csv
from scaffolder.errors import DataError, SpecError
from scaffolder.plan import build_plan, model_family
from scaffolder.spec import ProjectSpec


def plan_for(path: Path, **changes: object):
    return build_plan(ProjectSpec(task="text-classification", train_data=path, **changes))  # type: ignore[arg-type]


def test_open_fields_are_resolved_from_data_and_tables() -> None:
    plan = plan_for(DATA / "sst_like.tsv")
    spec = plan.spec
    assert spec.columns == {"text": "sentence", "label": "label"}
    assert spec.labels == ("0", "1")
    assert spec.model == "google-bert/bert-base-uncased"
    assert (spec.max_length, spec.num_epochs, spec.batch_size, spec.learning_rate) == (32, 3, 16, 2e-5)
    assert plan.family.model_type == "bert"


def test_lora_gets_its_own_learning_rate_and_explicit_values_are_kept() -> None:
    assert plan_for(DATA / "sst_like.tsv", peft="lora").spec.learning_rate == 2e-4
    assert plan_for(DATA / "sst_like.tsv", learning_rate=1e-3, max_length=256).spec.max_length == 256


def test_non_latin_data_gets_a_multilingual_default_model() -> None:
    assert plan_for(DATA / "weibo_zh.csv").spec.model == "FacebookAI/xlm-roberta-base"


def test_numeric_labels_sort_by_value_and_eval_labels_join_the_set(write_file) -> None:
    train = write_file("train.csv", "text,label\n" + "".join(f"t{i},{i % 11}\n" for i in range(33)))
    dev = write_file("dev.csv", "text,label\na,11\nb,0\n")
    assert plan_for(train, eval_data=dev).spec.labels == tuple(str(i) for i in range(12))


def test_labels_fixed_by_the_spec_must_cover_the_data(write_file) -> None:
    train = write_file("train.csv", reviews_csv())
    with pytest.raises(DataError, match="labels not in the spec's `labels`: positive"):
        plan_for(train, labels=("negative", "neutral"))


def test_too_small_or_single_class_data_is_refused(write_file) -> None:
    with pytest.raises(DataError, match="too few to hold out an eval split; .* or pass --eval-data"):
        plan_for(write_file("tiny.csv", reviews_csv(5)))
    with pytest.raises(DataError, match="every row has label `a`"):
        plan_for(write_file("one.csv", "text,label\n" + "x,a\n" * 20))


def test_eval_data_must_have_the_train_columns(write_file) -> None:
    train = write_file("train.csv", reviews_csv())
    dev = write_file("dev.csv", "sentence,label\na,positive\n")
    with pytest.raises(DataError, match="lacks column `text`"):
        plan_for(train, eval_data=dev)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("distilbert/distilbert-base-uncased", "distilbert"),
        ("FacebookAI/xlm-roberta-large", "xlm-roberta"),
        ("FacebookAI/roberta-base", "roberta"),
        ("microsoft/deberta-v3-base", "deberta-v2"),
        ("answerdotai/ModernBERT-base", "modernbert"),
        ("sentence-transformers/all-MiniLM-L6-v2", "bert"),
        ("google-bert/bert-base-cased", "bert"),
    ],
)
def test_family_from_hub_id(model: str, family: str) -> None:
    assert model_family(model).model_type == family


def test_family_of_a_local_model_comes_from_its_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "electra"}))
    assert model_family(str(tmp_path)).model_type == "electra"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(SpecError, match="is a `whisper`, which scaffolder does not support yet"):
        model_family(str(tmp_path))


def test_unknown_hub_id_asks_for_a_download_or_a_path() -> None:
    with pytest.raises(SpecError, match="cannot tell the architecture of `someone/mystery-7` offline"):
        model_family("someone/mystery-7")


@pytest.mark.parametrize("variable", ["HF_HUB_CACHE", "HF_HOME"])
def test_family_of_a_downloaded_hub_model_comes_from_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # The layout huggingface_hub writes: refs/main names the snapshot that holds the files.
    cache = tmp_path / "hub" if variable == "HF_HOME" else tmp_path
    repo = cache / "models--someone--mystery-7"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abc")
    (repo / "snapshots" / "0123abc").mkdir(parents=True)
    (repo / "snapshots" / "0123abc" / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    assert model_family("someone/mystery-7").model_type == "deberta-v2"
    from huggingface_hub import try_to_load_from_cache

    # huggingface_hub reads the variables at import: compare with it on the explicit folder.
    found = try_to_load_from_cache("someone/mystery-7", "config.json", cache_dir=cache)
    assert found == str(repo / "snapshots" / "0123abc" / "config.json")
