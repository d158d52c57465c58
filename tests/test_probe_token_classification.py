"""token-classification probe: CoNLL and json tag lists read, tag names decided, bad data refused by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA, run_cli
from scaffolder.errors import DataError
from scaffolder.probes import Probed, probe
from scaffolder.probes.readers import is_conll, iter_conll
from scaffolder.spec import ProjectSpec

CONLL_NAMES = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


def probed(path: Path, **spec: object) -> Probed:
    return probe(ProjectSpec(task="token-classification", train_data=path, **spec))  # type: ignore[arg-type]


def jsonl(write_file, name: str, records: list[dict[str, object]]) -> Path:
    return write_file(name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def test_conll_2003_file_skips_docstart_and_takes_the_last_column() -> None:
    sentences = list(iter_conll(DATA / "ner_conll.conll"))
    assert len(sentences) == 48
    assert all(sentence["tokens"][0] != "-DOCSTART-" for sentence in sentences)
    result = probed(DATA / "ner_conll.conll")
    assert result.updates["data_layout"] == "conll"
    assert result.updates["columns"] == {"tokens": "tokens", "tags": "tags"}
    # O first, then by entity type with B- before I-.
    assert result.updates["labels"] == ("O", "B-LOC", "I-LOC", "B-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
    assert result.train.label_counts["B-PER"] == 30


def test_txt_is_conll_only_when_its_lines_look_like_it(write_file) -> None:
    tagged = write_file("tagged.txt", "Paris B-LOC\nis O\nnice O\n\nBerlin B-LOC\ntoo O\n")
    prose = write_file("prose.txt", "Paris is a city in France.\nBerlin is big.\nRome has a long history too.\n")
    assert is_conll(tagged) and not is_conll(prose)
    assert probed(tagged, eval_data=tagged).updates["labels"] == ("O", "B-LOC")
    with pytest.raises(DataError, match=r"prose.txt does not look like CoNLL"):
        probed(prose)


def test_chinese_characters_as_tokens_pick_the_multilingual_model() -> None:
    result = probed(DATA / "ner_zh.jsonl")
    assert result.updates["columns"] == {"tokens": "tokens", "tags": "ner_tags"}
    assert result.train.non_latin_share > 0.9
    assert result.train.num_rows == 48
    from scaffolder.plan import build_plan

    plan = build_plan(ProjectSpec(task="token-classification", train_data=DATA / "ner_zh.jsonl"))
    assert plan.spec.model == "FacebookAI/xlm-roberta-base"


def test_integer_tags_take_their_names_from_the_spec_or_are_their_own_names() -> None:
    named = probed(DATA / "ner_ids.json", labels=CONLL_NAMES)
    assert named.updates["labels"] == CONLL_NAMES
    assert named.updates["columns"] == {"tokens": "words", "tags": "tags"}
    assert named.train.label_counts["B-PER"] == 24
    bare = probed(DATA / "ner_ids.json")
    assert bare.updates["labels"] == tuple(str(i) for i in range(8))  # 0 to the largest id in the data
    assert "not B-/I- entity tags" in bare.description
    with pytest.raises(DataError, match=r"tag id 7 but `labels` names only 3 tags"):
        probed(DATA / "ner_ids.json", labels=("O", "B-PER", "I-PER"))


def test_tag_lists_of_another_length_name_the_row(write_file) -> None:
    path = jsonl(write_file, "bad.jsonl", [{"tokens": ["a", "b"], "ner_tags": ["O", "B-X"]}] * 3
                 + [{"tokens": ["Paris", "is", "nice"], "ner_tags": ["B-LOC", "O"]}])  # fmt: skip
    with pytest.raises(DataError, match=r"bad.jsonl, row 4: 3 tokens but 2 tags; give exactly one tag per token"):
        probed(path)


def test_conll_line_without_a_tag_names_the_line(write_file) -> None:
    path = write_file("bad.conll", "Paris B-LOC\nis O\n\nBerlin\n")
    with pytest.raises(DataError, match=r"bad.conll, line 4: `Berlin` has no tag"):
        probed(path)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"tokens": ["a"], "tags": ["O"]}, {"tokens": ["b"], "tags": [1]}], "mix names and integer ids"),
        ([{"tokens": ["a", "b"], "tags": ["O", "O"]}], "every token is tagged `O`"),
        ([{"tokens": "a b", "tags": ["O", "B-X"]}], "row 1: `tokens` must be a list"),
        ([{"tokens": [], "tags": []}], "row 1: the sentence has no tokens"),
        ([{"text": "a b", "label": "x"}], "no tokens list found"),
    ],
)
def test_bad_records_are_refused(write_file, records: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        probed(jsonl(write_file, "data.jsonl", records))


def test_eval_file_in_another_layout_is_refused(write_file) -> None:
    with pytest.raises(DataError, match="differ in layout"):
        probed(DATA / "ner_conll.conll", eval_data=DATA / "ner_zh.jsonl")


def test_cli_refuses_mismatched_tags_in_one_line(tmp_path: Path, write_file) -> None:
    path = jsonl(write_file, "bad.jsonl", [{"words": ["Paris", "is"], "tags": ["B-LOC"]}] * 12)
    result = run_cli("new", "--task", "token-classification", "--data", str(path), "--no-smoke", cwd=tmp_path)
    assert result.returncode == 2
    assert "row 1: 2 tokens but 1 tags" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]  # nothing written
