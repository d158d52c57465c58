"""question-answering probe: both SQuAD layouts read, unanswerable questions counted, bad answers refused by id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA, run_cli
from scaffolder.errors import DataError
from scaffolder.probes import Probed, probe
from scaffolder.spec import ProjectSpec

CONTEXT = "Ada Lovelace was born in London in 1815."


def probed(path: Path, **spec: object) -> Probed:
    return probe(ProjectSpec(task="question-answering", train_data=path, **spec))  # type: ignore[arg-type]


def jsonl(write_file, name: str, records: list[dict[str, object]]) -> Path:
    return write_file(name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def record(qid: str, answer: str | None, start: int | None = None, **extra: object) -> dict[str, object]:
    answers = {"text": [], "answer_start": []}
    if answer is not None:
        answers = {"text": [answer], "answer_start": [CONTEXT.index(answer) if start is None else start]}
    return {"id": qid, "question": "Where was Ada born?", "context": CONTEXT, "answers": answers, **extra}


def test_nested_squad_2_counts_unanswerable_questions() -> None:
    result = probed(DATA / "squad_v2.json")
    assert result.updates == {
        "columns": {"id": "id", "question": "question", "context": "context", "answers": "answers"},
        "data_layout": "squad",
    }
    assert result.train.label_counts == {"answerable": 40, "unanswerable": 16}
    assert result.train.format == "squad"
    assert result.train.words_p95 > 30  # question and context together


def test_flat_jsonl_with_chinese_contexts() -> None:
    result = probed(DATA / "qa_flat.jsonl")
    assert result.updates["data_layout"] == "records"
    assert result.train.label_counts == {"answerable": 39, "unanswerable": 0}


def test_answers_as_a_list_of_objects_and_is_impossible(write_file) -> None:
    listed = dict(record("a", "London"), answers=[{"text": "London", "answer_start": 25}])
    impossible = dict(record("b", None), is_impossible=True)
    result = probed(jsonl(write_file, "qa.jsonl", [listed, impossible, record("c", "1815")]))
    assert result.train.label_counts == {"answerable": 2, "unanswerable": 1}


def test_other_field_names_are_given_per_role(write_file) -> None:
    rows = [{"q": r["question"], "passage": r["context"], "answers": r["answers"]} for r in [record("a", "London")]]
    result = probed(jsonl(write_file, "qa.jsonl", rows), columns={"question": "q"})
    assert result.updates["columns"] == {"question": "q", "context": "passage", "answers": "answers"}


def test_an_answer_not_at_its_start_is_repaired_and_many_are_refused_by_id(write_file) -> None:
    rows = [record(f"q-{i}", "London", start=3 if i == 17 else None) for i in range(20)]
    result = probed(jsonl(write_file, "qa.jsonl", rows))
    assert "qa.jsonl: 1 answer_start(s) off repaired to the answer text nearest them (ids `q-17`)" in result.description
    path = jsonl(write_file, "qa.jsonl", [record("ok", "London"), record("q-17", "London", start=3)])
    with pytest.raises(DataError, match=r"1 of 2 answered questions \(50%, ids `q-17`\) have an answer_start that"):
        probed(path)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([record("a", None), record("b", None)], "no question has an answer"),
        ([{"question": "q?", "answers": {"text": [], "answer_start": []}}], "no context field"),
        ([dict(record("a", "London"), answers="London")], r'id `a`: answers must be \{"text"'),
        ([dict(record("a", "London"), answers={"text": ["London"], "answer_start": []})], "as many answer_start"),
        ([dict(record("a", "London"), context="")], "the context is empty"),
    ],
)
def test_bad_questions_are_refused(write_file, records: list[dict[str, object]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        probed(jsonl(write_file, "qa.jsonl", records))


def test_csv_is_refused_with_the_formats_that_work(write_file) -> None:
    with pytest.raises(DataError, match="reads SQuAD json or jsonl"):
        probed(write_file("qa.csv", "question,context\nq,c\n"))


def test_cli_refuses_a_misplaced_answer_in_one_line(tmp_path: Path, write_file) -> None:
    path = jsonl(write_file, "qa.jsonl", [record(f"q{i}", "London", start=0 if i == 5 else None) for i in range(12)])
    result = run_cli("new", "--task", "question-answering", "--data", str(path), "--no-smoke", cwd=tmp_path)
    assert result.returncode == 2
    assert "1 of 12 answered questions (8%, ids `q5`) have an answer_start that is not at" in result.stderr
    assert "Traceback" not in result.stderr
