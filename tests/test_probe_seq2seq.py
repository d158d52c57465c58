"""The summarization and translation probes: columns, layouts, languages, default models and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder.errors import DataError, SpecError
from scaffolder.plan import build_plan
from scaffolder.probes import summarization, translation
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import FAMILIES, family_from_name


def summarization_spec(path: Path, **fields: object) -> ProjectSpec:
    return ProjectSpec(task="summarization", train_data=path, **fields)  # type: ignore[arg-type]


def translation_spec(path: Path, **fields: object) -> ProjectSpec:
    return ProjectSpec(task="translation", train_data=path, **fields)  # type: ignore[arg-type]


def jsonl(write_file, name: str, records: list[dict[str, object]]) -> Path:
    return write_file(name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# --- summarization -----------------------------------------------------------------------------------------------


def test_news_csv_reads_article_and_highlights() -> None:
    probed = summarization.probe(summarization_spec(DATA / "news_summaries.csv"))
    assert probed.updates == {"columns": {"text": "article", "summary": "highlights"}}
    assert probed.train.num_rows == 40
    assert probed.train.words_p95 > probed.train.target_words_p95 > 3
    assert probed.description == "article → highlights"


def test_chinese_dialogue_jsonl_counts_characters_and_picks_mt5() -> None:
    plan = build_plan(summarization_spec(DATA / "dialogue_zh.jsonl"))
    assert plan.spec.columns == {"text": "dialogue", "summary": "summary"}
    assert plan.train.non_latin_share > 0.9
    assert plan.spec.model == "google/mt5-small"
    assert plan.family.model_type == "mt5"
    # Summaries of about 20 characters: a target length of 64 tokens, inputs of 64 to 128.
    assert plan.spec.max_target_length == 64
    assert plan.spec.max_length in (64, 128)


def test_column_flags_override_header_names(write_file) -> None:
    path = write_file("d.csv", "body,notes,title\n" + "a long body of text,short note,a title\n" * 12)
    probed = summarization.probe(summarization_spec(path, columns={"text": "body", "summary": "notes"}))
    assert probed.updates["columns"] == {"text": "body", "summary": "notes"}
    with pytest.raises(DataError, match=r"has no column `abstract` \(--column summary=\); columns are: body"):
        summarization.probe(summarization_spec(path, columns={"summary": "abstract"}))


def test_document_column_falls_back_to_the_longest_text(write_file) -> None:
    path = write_file("d.csv", "id,story,summary\n" + "7,a much longer story about many things,short\n" * 12)
    assert summarization.probe(summarization_spec(path)).updates["columns"] == {"text": "story", "summary": "summary"}


def test_missing_summary_column_is_refused_with_the_flag_to_use(write_file) -> None:
    path = write_file("d.csv", "article,notes\n" + "some text here,x\n" * 12)
    with pytest.raises(DataError, match=r"no summary column among article, notes .*pass --column summary=NAME"):
        summarization.probe(summarization_spec(path))


def test_empty_summary_names_the_row(write_file) -> None:
    path = jsonl(write_file, "d.jsonl", [{"text": "a text", "summary": "s"}, {"text": "another text", "summary": " "}])
    with pytest.raises(DataError, match=r"d.jsonl, row 2: `summary` is empty; fill it in or remove the row"):
        summarization.probe(summarization_spec(path))


def test_eval_file_without_the_columns_is_refused(write_file) -> None:
    path = write_file("e.csv", "text,label\nx,y\n")
    spec = summarization_spec(DATA / "news_summaries.csv", eval_data=path)
    with pytest.raises(DataError, match=r"e.csv, row 1: column `article` is missing"):
        summarization.probe(spec)


# --- translation -------------------------------------------------------------------------------------------------


def test_wmt_jsonl_takes_the_first_language_as_source_and_a_marian_model() -> None:
    plan = build_plan(translation_spec(DATA / "wmt_en_de.jsonl"))
    spec = plan.spec
    assert (spec.data_layout, spec.columns) == ("wmt", {"translation": "translation"})
    assert (spec.source_lang, spec.target_lang) == ("en", "de")
    assert spec.model == "Helsinki-NLP/opus-mt-en-de"
    assert plan.family.model_type == "marian"
    assert plan.family.source_prefix("translation", "en", "de") == ""
    assert plan.train.num_rows == 40


def test_language_flags_pick_the_direction() -> None:
    probed = translation.probe(translation_spec(DATA / "wmt_en_de.jsonl", source_lang="de", target_lang="en"))
    assert (probed.updates["source_lang"], probed.updates["target_lang"]) == ("de", "en")
    assert probed.default_model == "Helsinki-NLP/opus-mt-de-en"


def test_csv_with_language_code_headers() -> None:
    probed = translation.probe(translation_spec(DATA / "en_zh.csv"))
    assert probed.updates == {
        "columns": {"source": "en", "target": "zh"},
        "data_layout": "columns",
        "source_lang": "en",
        "target_lang": "zh",
    }
    assert probed.description == "en → zh (columns en → zh)"


def test_source_target_headers_need_the_languages(write_file) -> None:
    path = write_file("st.tsv", "id\tsource\ttarget\n" + "".join(f"{i}\thello\thallo\n" for i in range(12)))
    with pytest.raises(DataError, match=r"`source` and `target` do not name their languages; pass --source-lang"):
        translation.probe(translation_spec(path))
    probed = translation.probe(translation_spec(path, source_lang="en", target_lang="de"))
    assert probed.updates["columns"] == {"source": "source", "target": "target"}


def test_a_numeric_id_column_is_not_indonesian(write_file) -> None:
    path = write_file("p.csv", "id,fr,en\n" + "".join(f"{i},bonjour,hello\n" for i in range(12)))
    probed = translation.probe(translation_spec(path))
    assert (probed.updates["source_lang"], probed.updates["target_lang"]) == ("fr", "en")


def test_three_languages_without_flags_are_refused(write_file) -> None:
    records = [{"translation": {"en": "hello", "de": "hallo", "fr": "bonjour"}}] * 12
    path = jsonl(write_file, "three.jsonl", records)
    with pytest.raises(DataError, match=r"row 1: `translation` holds 3 languages \(en, de, fr\); pass --source-lang"):
        translation.probe(translation_spec(path))
    probed = translation.probe(translation_spec(path, source_lang="fr", target_lang="de"))
    assert (probed.updates["source_lang"], probed.updates["target_lang"]) == ("fr", "de")
    with pytest.raises(DataError, match=r"`translation` has no `ro` \(--target-lang\); its languages are: en, de, fr"):
        translation.probe(translation_spec(path, source_lang="en", target_lang="ro"))


def test_three_language_columns_without_flags_are_refused(write_file) -> None:
    path = write_file("m.csv", "en,de,fr\n" + "hello,hallo,bonjour\n" * 12)
    with pytest.raises(DataError, match=r"cannot tell the source and target columns .*language columns: en, de, fr"):
        translation.probe(translation_spec(path))
    probed = translation.probe(translation_spec(path, source_lang="de", target_lang="fr"))
    assert probed.updates["columns"] == {"source": "de", "target": "fr"}


def test_a_record_missing_its_target_language_names_the_row(write_file) -> None:
    records = [{"translation": {"en": "hello", "de": "hallo"}}] * 3 + [{"translation": {"en": "bye"}}]
    path = jsonl(write_file, "gap.jsonl", records)
    with pytest.raises(DataError, match=r"gap.jsonl, row 4: `translation` has no `de`; every record needs it"):
        translation.probe(translation_spec(path))


def test_empty_translation_is_refused(write_file) -> None:
    path = write_file("e.csv", "en,de\nhello,hallo\nbye,\n")
    with pytest.raises(DataError, match=r"e.csv, row 2: `de` is empty"):
        translation.probe(translation_spec(path))


def test_default_models_by_pair_and_script() -> None:
    assert translation.default_model("en", "zh", (0.0, 1.0)) == "Helsinki-NLP/opus-mt-en-zh"
    assert translation.default_model("pt_BR", "en", (0.0, 0.0)) is None  # no table entry: T5
    assert translation.default_model("el", "bg", (1.0, 1.0)) == "google/mt5-small"


def test_t5_prefixes_name_the_languages() -> None:
    t5 = FAMILIES["t5"]
    assert t5.source_prefix("translation", "en", "de") == "translate English to German: "
    assert t5.source_prefix("translation", "zh_CN", "xx") == "translate Chinese to xx: "
    assert t5.source_prefix("summarization") == "summarize: "
    assert FAMILIES["bart"].source_prefix("summarization") == ""


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("google-t5/t5-small", "t5"),
        ("google/flan-t5-base", "t5"),
        ("google/mt5-small", "mt5"),
        ("facebook/bart-large-cnn", "bart"),
        ("sshleifer/distilbart-cnn-12-6", "bart"),
        ("Helsinki-NLP/opus-mt-en-zh", "marian"),
    ],
)
def test_seq2seq_families_by_name(name: str, family: str) -> None:
    found = family_from_name(name)
    assert found is not None and found.model_type == family
    assert found.architecture == "encoder-decoder"


def test_an_encoder_model_is_refused_for_translation() -> None:
    with pytest.raises(SpecError, match=r"translation needs encoder-decoder models"):
        build_plan(translation_spec(DATA / "wmt_en_de.jsonl", model="google-bert/bert-base-uncased"))
