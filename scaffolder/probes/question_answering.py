"""question-answering data: a question, the context that holds its answer, and the answer as a span of it.

Two SQuAD layouts: flat records (json/jsonl; `id`, `question`, `context`, `answers` as {"text": [...],
"answer_start": [...]} or a list of {"text", "answer_start"}) and the nested SQuAD file ({"data": [{"title",
"paragraphs": [{"context", "qas": [...]}]}]}). A question with no answers (or `is_impossible`) is unanswerable,
as in SQuAD 2.0. Every answer is checked against its context: `answer_start` should point at the answer text.
Official files have a few that do not (CMRC 2018: offsets some characters off, or -1): such an answer moves to the
occurrence of its text nearest the offset given, a question whose context lacks its answer text is skipped, and
`scaffold new` says how many of each. The project's data.py repairs and skips the same questions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, sniff
from scaffolder.probes.readers import data_format, iter_records, read_sample
from scaffolder.spec import ProjectSpec

ROLE_NAMES = {
    "question": ("question", "query"),
    "context": ("context", "passage"),
    "answers": ("answers", "answer"),
    "id": ("id", "qid", "question_id"),
}
SQUAD_COLUMNS = {"id": "id", "question": "question", "context": "context", "answers": "answers"}
# Above this share of the answered questions, answer_starts that miss their answer are refused rather than
# repaired: that many suggests offsets counted in something else (bytes, another version of the contexts), where
# the nearest occurrence of the answer text would be a guess. data.py has the same limit.
MAX_REPAIR_SHARE = 0.05
SHOWN_IDS = 3  # question ids a note or a refusal names


def probe(spec: ProjectSpec) -> Probed:
    layout = layout_of(spec.train_data)
    columns = SQUAD_COLUMNS if layout == "squad" else infer_columns(spec.train_data, spec.columns)
    train, repairs = summarize(spec.train_data, columns)
    notes = repairs.notes()
    evaluation = None
    if spec.eval_data:
        eval_layout = layout_of(spec.eval_data)
        evaluation, eval_repairs = summarize(
            spec.eval_data, columns if eval_layout == "squad" else columns_in(spec.eval_data, columns)
        )
        notes += eval_repairs.notes()
    if not train.label_counts.get("answerable"):
        raise DataError(
            f"{spec.train_data}: no question has an answer; question-answering learns from answered questions "
            "(unanswerable ones only teach the model to abstain)"
        )
    counts = train.label_counts
    read_as = (
        "nested SQuAD" if layout == "squad" else f"{columns['question']} + {columns['context']} → {columns['answers']}"
    )
    return Probed(
        updates={"columns": dict(columns), "data_layout": layout},
        train=train,
        eval=evaluation,
        description=f"{read_as}; {counts['answerable']} answerable, {counts.get('unanswerable', 0)} unanswerable"
        + "".join(f"; {note}" for note in notes),
    )


def layout_of(path: Path) -> str:
    """`squad` for the nested SQuAD file, `records` for flat json/jsonl records."""
    fmt = data_format(path)
    if fmt not in ("json", "jsonl"):
        raise DataError(f"{path}: question-answering reads SQuAD json or jsonl (answers are lists); convert the file")
    return "squad" if fmt == "json" and _nested(path) else "records"


def _nested(path: Path) -> bool:
    try:
        data = json.loads(sniff.read_text(path, "utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False  # iter_records reports it (or reads JSON lines saved as .json)
    articles = data.get("data") if isinstance(data, dict) else None
    return isinstance(articles, list) and any(isinstance(a, dict) and "paragraphs" in a for a in articles)


def infer_columns(path: Path, given: dict[str, str]) -> dict[str, str]:
    """Record fields for each role: the spec's when given (checked), else by name; `id` may be absent."""
    names = list(read_sample(path)[0])
    by_lower = {name.lower(): name for name in names}
    columns: dict[str, str] = {}
    for role, known in ROLE_NAMES.items():
        name = given.get(role) or next((by_lower[c] for c in known if c in by_lower), None)
        if name is not None and name not in names:
            raise DataError(f"{path} has no field `{name}` (--column {role}={name}); fields are: {', '.join(names)}")
        if name is None and role != "id":
            raise DataError(
                f"{path}: no {role} field among {', '.join(names)}; SQuAD records have question, context and "
                f'answers ({{"text": [...], "answer_start": [...]}}); or pass --column {role}=NAME'
            )
        if name is not None:
            columns[role] = name
    return columns


def columns_in(path: Path, columns: dict[str, str]) -> dict[str, str]:
    """The train file's fields, which the eval file must have too (config.yaml names one set)."""
    names = list(read_sample(path)[0])
    missing = [name for name in columns.values() if name not in names]
    if missing:
        raise DataError(
            f"eval data {path} lacks `{missing[0]}`, which the train data uses; its fields: {', '.join(names)}"
        )
    return columns


def iter_examples(path: Path, columns: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Flat examples {id, question, context, answers: [(text, start), ...]} from either layout."""
    if layout_of(path) == "squad":
        yield from _iter_squad(path)
        return
    for row, record in enumerate(iter_records(path), start=1):
        for name in columns.values():
            if name not in record:
                raise DataError(f"{path}, row {row}: field `{name}` is missing; every record needs it")
        qid = str(record[columns["id"]]) if "id" in columns else str(row)
        answers = _answers(record[columns["answers"]], f"{path}, id `{qid}`")
        if record.get("is_impossible") is True:
            answers = []
        yield {
            "id": qid,
            "question": record[columns["question"]],
            "context": record[columns["context"]],
            "answers": answers,
        }


def _iter_squad(path: Path) -> Iterator[dict[str, Any]]:
    data = json.loads(sniff.read_text(path, "utf-8-sig"))
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph.get("context")
            for qa in paragraph.get("qas", []):
                qid = str(qa.get("id", ""))
                answers = [] if qa.get("is_impossible") else _answers(qa.get("answers", []), f"{path}, id `{qid}`")
                yield {"id": qid, "question": qa.get("question"), "context": context, "answers": answers}


def _answers(value: Any, where: str) -> list[tuple[str, int]]:
    """Answers as (text, start) pairs from {"text": [...], "answer_start": [...]} or [{"text", "answer_start"}]."""
    if isinstance(value, dict):
        texts, starts = value.get("text", []), value.get("answer_start", [])
        texts, starts = ([texts], [starts]) if isinstance(texts, str) else (texts, starts)
    elif isinstance(value, list) and all(isinstance(a, dict) for a in value):
        texts, starts = [a.get("text") for a in value], [a.get("answer_start") for a in value]
    else:
        raise DataError(
            f'{where}: answers must be {{"text": [...], "answer_start": [...]}} or a list of '
            f'{{"text", "answer_start"}} objects, got {json.dumps(value, ensure_ascii=False)[:60]}'
        )
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise DataError(f"{where}: answers need as many answer_start values as texts; fix the answers")
    return [(text, start) for text, start in zip(texts, starts, strict=True)]


def check_example(example: dict[str, Any], path: Path) -> None:
    """Texts and answers of the right types; where each answer is, `located_answers` decides."""
    where = f"{path}, id `{example['id']}`"
    for role in ("question", "context"):
        if not isinstance(example[role], str) or not example[role].strip():
            raise DataError(f"{where}: the {role} is empty or not text; fill it in or remove the question")
    for text, start in example["answers"]:
        if not isinstance(text, str) or not text or isinstance(start, bool) or not isinstance(start, int):
            raise DataError(f"{where}: answer {text!r} at {start!r} needs a non-empty text and an integer answer_start")


def answer_start(context: str, text: str, given: int) -> int | None:
    """`given` when the answer text is there, else the start of the occurrence of the text nearest it (the
    earlier of two as near); None when the context does not hold the text."""
    if given >= 0 and context.startswith(text, given):
        return given
    nearest = None
    found = context.find(text)
    while found != -1:
        if nearest is None or abs(found - given) < abs(nearest - given):
            nearest = found
        found = context.find(text, found + 1)
    return nearest


@dataclass
class AnswerRepairs:
    """The answered questions of one file whose answers were not all at their answer_start, by id."""

    path: Path
    answered: int = 0
    repaired: list[str] = field(default_factory=list)  # an answer moved to its text (or dropped, others kept)
    skipped: list[str] = field(default_factory=list)  # no answer text in the context: the question is left out

    def located_answers(self, example: dict[str, Any]) -> list[tuple[str, int]] | None:
        """The example's answers at their texts; None when none is in the context (the question is skipped)."""
        if not example["answers"]:
            return []
        self.answered += 1
        located = [(text, answer_start(example["context"], text, start)) for text, start in example["answers"]]
        answers = [(text, start) for text, start in located if start is not None]
        if not answers:
            self.skipped.append(example["id"])
            return None
        if answers != example["answers"]:
            self.repaired.append(example["id"])
        return answers

    def check(self) -> None:
        bad = self.repaired + self.skipped
        if self.answered and len(bad) > MAX_REPAIR_SHARE * self.answered:
            raise DataError(
                f"{self.path}: {len(bad)} of {self.answered} answered questions ({len(bad) / self.answered:.0%}, "
                f"ids {_ids(bad)}) have an answer_start that is not at their answer text, too many to repair "
                f"(at most {MAX_REPAIR_SHARE:.0%}); answer_start is the 0-based character offset of the answer in "
                "its context: fix the offsets"
            )

    def notes(self) -> list[str]:
        notes = []
        if self.repaired:
            notes.append(
                f"{self.path.name}: {len(self.repaired)} answer_start(s) off repaired to the answer text nearest "
                f"them (ids {_ids(self.repaired)})"
            )
        if self.skipped:
            notes.append(
                f"{self.path.name}: {len(self.skipped)} question(s) skipped, their answer text is not in their "
                f"context (ids {_ids(self.skipped)})"
            )
        return notes


def _ids(ids: list[str]) -> str:
    shown = ", ".join(f"`{qid}`" for qid in ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


def kept_examples(path: Path, columns: dict[str, str], repairs: AnswerRepairs) -> Iterator[dict[str, Any]]:
    """The examples training reads: each checked, its answers at their texts; questions whose context lacks
    every answer text left out. `repairs` records what was repaired and skipped."""
    for example in iter_examples(path, columns):
        check_example(example, path)
        answers = repairs.located_answers(example)
        if answers is not None:
            yield {**example, "answers": answers}


def summarize(path: Path, columns: dict[str, str]) -> tuple[DataSummary, AnswerRepairs]:
    """One pass: questions, answerable share, question + context lengths, script; every answer located."""
    stats = TextStats()
    counts = {"answerable": 0, "unanswerable": 0}
    repairs = AnswerRepairs(path)
    for example in kept_examples(path, columns, repairs):
        counts["answerable" if example["answers"] else "unanswerable"] += 1
        stats.add([example["question"], example["context"]])
    repairs.check()
    if not stats.inputs:
        raise DataError(f"data file {path} has no questions; it needs at least a few answered questions")
    fmt = "squad" if layout_of(path) == "squad" else data_format(path)
    return stats.summary(path, fmt, tuple(columns.values()), label_counts=counts), repairs
