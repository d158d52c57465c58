"""Entity spans over raw text, turned into tokens and BIO tags: the span layouts token-classification reads.

Layouts (`data_layout`), each json or jsonl:

- `spans`: records with a text and a list of spans, each `[start, end, "TYPE"]` (doccano's JSONL export) or an
  object with `start`/`end` or `start_offset`/`end_offset` and `label` or `labels: ["TYPE"]` (doccano's entity
  export, Label Studio's JSON-MIN export, Prodigy's `spans`). Ends are exclusive; an object's `text`, when
  given, is checked. Prodigy records answered `reject` or `ignore` are skipped.
- `cluener`: CLUENER 2020 records, `{"text", "label": {TYPE: {ENTITY: [[start, end], ...]}}}`; ends are
  INCLUSIVE and each ENTITY must be the text it points at.
- `label-studio`: Label Studio's JSON export, a list of tasks `{"data": {"text"}, "annotations": [{"result":
  [{"type": "labels", "from_name", "value": {"start", "end", "text", "labels"}}]}]}`; ends exclusive. Each
  task's first annotation that was not cancelled is read; tasks without one are skipped.

Tokens (`split_words`): each CJK character is a token of its own (Chinese and Japanese write no spaces, and
character tags are what their NER data uses); elsewhere the whitespace-separated words, with the punctuation
at a word's edges split off one mark per token (`(Siemens),` is `(` `Siemens` `)` `,`), so a span that stops
before a comma lines up with its word. A span that still cuts into a word (`Deutschland` in `Deutschlands`,
an off-by-one selection) is widened to the whole word: the word is the smallest unit a tag can name, the
entity and its type are kept, and `scaffold new` says how many were widened. Refused, naming the row: spans
that overlap or nest (BIO tags give each token one entity), spans out of the text's range or empty, and a
span whose text the file states but the offsets do not point at. Label Studio and doccano count offsets in
UTF-16 units, as JavaScript does, so after an emoji they run ahead of Python's; a span whose stated text
matches only that way is read that way.

The generated project's data.py reads the same files with its own copy of these rules; a contract test holds
the two to the same tokens and tags.
"""

from __future__ import annotations

import bisect
import itertools
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from scaffolder.errors import DataError
from scaffolder.probes.readers import iter_records

LAYOUTS = ("spans", "cluener", "label-studio")
TEXT_FIELDS = ("text", "sentence", "content", "document", "data")  # Label Studio: the task's `data` keys too
SPAN_FIELDS = ("label", "labels", "entities", "spans", "ner")
REJECTED = ("reject", "ignore")  # Prodigy's answers for examples that are not annotations to learn
# Kana and CJK ideographs: one token per character (as predict.py splits raw text).
CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


class Span(NamedTuple):
    start: int  # character offsets into the text, end exclusive
    end: int
    type: str
    text: str | None  # the entity text as the file states it, to check the offsets against; None if not stated
    shown: str  # the span as the file writes it, for messages


@dataclass
class SpanNotes:
    """What reading the spans changed or left out, for the one-line description."""

    widened: int = 0
    first_widened: str = ""  # `row 12: `Deutschland` -> `Deutschlands``
    skipped_tasks: int = 0  # Label Studio tasks without an annotation
    rejected: int = 0  # Prodigy records answered `reject` or `ignore`
    utf16_rows: int = 0  # rows whose offsets count UTF-16 units

    def describe(self) -> str:
        notes = []
        if self.widened:
            notes.append(
                f"{self.widened} span(s) cut into a word and were widened to the whole word ({self.first_widened})"
            )
        if self.utf16_rows:
            notes.append(f"{self.utf16_rows} row(s) count offsets in UTF-16 units (JavaScript's), read as such")
        if self.skipped_tasks:
            notes.append(f"{self.skipped_tasks} task(s) without an annotation skipped")
        if self.rejected:
            notes.append(f"{self.rejected} record(s) answered `reject` or `ignore` (Prodigy) skipped")
        return "".join(f"; {note}" for note in notes)


# --- layout and fields -------------------------------------------------------------------------------------------


def detect_layout(sample: list[dict[str, Any]]) -> str | None:
    """The span layout of json records, or None when they are not spans (token and tag lists, say)."""
    first = sample[0]
    if isinstance(first.get("data"), dict) and ("annotations" in first or "completions" in first):
        return "label-studio"
    if not any(isinstance(value, str) for value in first.values()):
        return None
    for record in sample:
        for value in record.values():
            if _holds_spans(value):
                return "cluener" if isinstance(value, dict) else "spans"
    # Only empty span lists in the sample: a text and a span field, and no token list beside them.
    lists = [value for value in first.values() if isinstance(value, list)]
    if any(isinstance(first.get(f), list) for f in SPAN_FIELDS) and not any(lists):
        return "spans"
    return None


def _holds_spans(value: Any) -> bool:
    """A CLUENER label object ({TYPE: {ENTITY: [[start, end]]}}) or a non-empty list of spans."""
    if isinstance(value, dict):
        return bool(value) and all(isinstance(entities, dict) for entities in value.values())
    return isinstance(value, list) and bool(value) and all(_looks_like_span(item) for item in value)


def _looks_like_span(item: Any) -> bool:
    if isinstance(item, (list, tuple)):
        return len(item) == 3 and isinstance(item[2], str) and all(_is_offset(x) for x in item[:2])
    return isinstance(item, dict) and ("start" in item or "start_offset" in item)


def _is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def infer_columns(layout: str, sample: list[dict[str, Any]], given: dict[str, str], path: Path) -> dict[str, str]:
    """`tokens`: the field holding the text the tokens are cut from; `tags`: the field (Label Studio: the
    labels control, `from_name`) holding the spans the tags are made from."""
    if layout == "label-studio":
        return _label_studio_columns(sample, given, path)
    first = sample[0]
    text = given.get("tokens") or next((f for f in TEXT_FIELDS if isinstance(first.get(f), str)), None)
    if text is None:
        strings = [name for name, value in first.items() if isinstance(value, str)]
        text = max(strings, key=lambda name: len(first[name])) if strings else None
    if text is None or text not in first:
        raise DataError(
            f"{path}: no text field found among {', '.join(first)}; span records need the text the spans point "
            "into (e.g. `text`), or pass --column tokens=NAME"
        )
    kind = dict if layout == "cluener" else list
    spans = given.get("tags") or next((f for f in SPAN_FIELDS if isinstance(first.get(f), kind)), None)
    if spans is None:  # by shape: the field whose value is a CLUENER label object or a list of spans
        spans = next((n for n, v in first.items() if isinstance(v, kind) and n != text and _holds_spans(v)), None)
    if spans is None or spans not in first:
        raise DataError(
            f"{path}: no span field found among {', '.join(first)}; span records need a list of entity spans "
            "(e.g. `label`: [[start, end, TYPE]]), or pass --column tags=NAME"
        )
    return {"tokens": text, "tags": spans}


def _label_studio_columns(sample: list[dict[str, Any]], given: dict[str, str], path: Path) -> dict[str, str]:
    data = sample[0].get("data") or {}
    text = given.get("tokens") or ("text" if isinstance(data.get("text"), str) else None)
    if text is None:
        strings = [key for key, value in data.items() if isinstance(value, str)]
        text = strings[0] if len(strings) == 1 else None
    if text is None:
        raise DataError(
            f"{path}: cannot tell which of the tasks' data fields ({', '.join(data)}) holds the text; "
            "pass --column tokens=NAME"
        )
    controls = sorted(
        {
            str(result.get("from_name"))
            for task in sample
            for annotation in _annotations(task)
            for result in annotation.get("result") or []
            if isinstance(result, dict) and result.get("type") == "labels"
        }
    )
    if given.get("tags"):
        return {"tokens": text, "tags": given["tags"]}
    if len(controls) > 1:
        raise DataError(
            f"{path}: the tasks hold spans from {len(controls)} labels controls ({', '.join(controls)}); "
            f"pass the one to learn, e.g. --column tags={controls[0]}"
        )
    return {"tokens": text, "tags": controls[0] if controls else "label"}


def describe(layout: str, columns: dict[str, str]) -> str:
    text, spans = f"`{columns['tokens']}`", f"`{columns['tags']}`"
    tokens = "tokens (each CJK character, else words with punctuation apart)"
    if layout == "cluener":
        return f"CLUENER spans (ends inclusive): text {text} cut into {tokens}, {spans} spans → BIO tags"
    if layout == "label-studio":
        return (
            f"Label Studio tasks: text `data.{columns['tokens']}` cut into {tokens}, {spans} spans of each task's "
            "first annotation → BIO tags"
        )
    return f"entity spans: text {text} cut into {tokens}, {spans} spans → BIO tags"


# --- reading -----------------------------------------------------------------------------------------------------


def iter_span_sentences(
    path: Path, layout: str, columns: dict[str, str], notes: SpanNotes
) -> Iterator[tuple[str, list[str], list[str]]]:
    """(where, tokens, tags) per record, `where` naming the row; `notes` collects what was widened or skipped."""
    for row, record in enumerate(iter_records(path), start=1):
        where = f"{path}, row {row}"
        if layout == "label-studio":
            found = _label_studio_task(record, columns, where)
            if found is None:
                notes.skipped_tasks += 1
                continue
            text, spans = found
        elif record.get("answer") in REJECTED:
            notes.rejected += 1
            continue
        else:
            text = _text(record, columns["tokens"], where)
            if columns["tags"] not in record:
                empty = "{}" if layout == "cluener" else "[]"
                raise DataError(
                    f'{where} has no `{columns["tags"]}`; give `"{columns["tags"]}": {empty}` to a text without '
                    "entities"
                )
            value = record[columns["tags"]]
            spans = _cluener_spans(value, where) if layout == "cluener" else _listed_spans(value, where)
        tokens, tags = to_bio(text, spans, where, notes)
        yield f"row {row}", tokens, tags


def _text(record: dict[str, Any], field: str, where: str) -> str:
    text = record.get(field)
    if not isinstance(text, str):
        raise DataError(f"{where}: `{field}` must be the text the spans point into, got {type(text).__name__}")
    return text


def _listed_spans(value: Any, where: str) -> list[Span]:
    """doccano's `[start, end, TYPE]` lists, or objects with start/end (or start_offset/end_offset) and a label."""
    if not isinstance(value, list):
        raise DataError(f'{where}: the spans must be a list like [[0, 5, "PER"]], got {type(value).__name__}')
    spans = []
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 3:
            start, end, kind, text = item[0], item[1], item[2], None
        elif isinstance(item, dict):
            start = item.get("start", item.get("start_offset"))
            end = item.get("end", item.get("end_offset"))
            kind, text = _span_type(item, where), item.get("text")
        else:
            raise DataError(
                f"{where}: span {item!r} is neither [start, end, TYPE] nor an object with start, end and label"
            )
        spans.append(_span(start, end, kind, text, f"[{start}, {end}]", where))
    return spans


def _span_type(item: dict[str, Any], where: str) -> Any:
    labels = item.get("labels", [item.get("label")])
    if not isinstance(labels, list) or len(labels) != 1:
        raise DataError(
            f"{where}: span {_short(item)} has labels {labels!r}; a token gets one tag, so give each span one label"
        )
    return labels[0]


def _cluener_spans(value: Any, where: str) -> list[Span]:
    """{TYPE: {ENTITY: [[start, end], ...]}}, ends inclusive; each ENTITY is the text its spans point at."""
    shape = 'like {"name": {"叶老桂": [[9, 11]]}}'
    if not isinstance(value, dict):
        raise DataError(f"{where}: the label must be an object {shape}, got {type(value).__name__}")
    spans = []
    for kind, entities in value.items():
        if not isinstance(entities, dict):
            raise DataError(f"{where}: label `{kind}` must map each entity text to its spans, {shape}")
        for entity, positions in entities.items():
            if not isinstance(positions, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(_is_offset(x) for x in p) for p in positions
            ):
                raise DataError(f"{where}: `{kind}` `{entity}` must list [start, end] pairs {shape}, got {positions!r}")
            for start, end in positions:
                spans.append(_span(start, end + 1, kind, entity, f"[{start}, {end}] (end inclusive)", where))
    return spans


def _label_studio_task(task: dict[str, Any], columns: dict[str, str], where: str) -> tuple[str, list[Span]] | None:
    """The text and the spans of a task's first annotation that was not cancelled; None when it has none."""
    data = task.get("data")
    if not isinstance(data, dict):
        raise DataError(f"{where}: a Label Studio task needs a `data` object holding its text")
    annotation = next((a for a in _annotations(task) if not a.get("was_cancelled")), None)
    if annotation is None:
        return None
    text = _text(data, columns["tokens"], f"{where}, data")
    spans = []
    for result in annotation.get("result") or []:
        if not isinstance(result, dict) or result.get("type") != "labels" or result.get("from_name") != columns["tags"]:
            continue  # relations, choices, other controls
        value = result.get("value")
        if not isinstance(value, dict):
            raise DataError(f"{where}: a `labels` result needs a `value` with start, end and labels")
        start, end = value.get("start"), value.get("end")
        spans.append(_span(start, end, _span_type(value, where), value.get("text"), f"[{start}, {end}]", where))
    return text, spans


def _annotations(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Label Studio names them `annotations` (`completions` before version 1.0)."""
    found = task.get("annotations", task.get("completions")) or []
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def _span(start: Any, end: Any, kind: Any, text: Any, shown: str, where: str) -> Span:
    if not (_is_offset(start) and _is_offset(end)):
        raise DataError(f"{where}: span {shown} needs integer character offsets (start, end)")
    if not isinstance(kind, str) or not kind.strip():
        raise DataError(f"{where}: span {shown} has no entity type (got {kind!r}); name its type, e.g. PER")
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: span {shown} states its text as {text!r}; give a string or leave it out")
    return Span(start, end, kind.strip(), text, f"{shown} `{kind.strip()}`")


def _short(item: dict[str, Any]) -> str:
    return repr(item) if len(repr(item)) <= 60 else repr(item)[:57] + "..."


# --- spans to tags -----------------------------------------------------------------------------------------------


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


def split_words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token: a CJK character alone; else a whitespace-separated word, the punctuation at
    its edges split off one mark per token (`U.S.` is `U.S` and `.`; inner marks stay: `2001/2002`, `e-mail`)."""
    tokens: list[tuple[int, int]] = []
    start = None  # where the current run of characters that are neither space nor CJK began
    for index, char in enumerate(text + " "):
        if not (char.isspace() or is_cjk(char)):
            start = index if start is None else start
            continue
        if start is not None:
            tokens += _peel_punctuation(text, start, index)
            start = None
        if is_cjk(char):
            tokens.append((index, index + 1))
    return tokens


def _peel_punctuation(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A run of non-space characters as tokens: each edge punctuation mark alone, the word between them whole."""
    first, last = start, end
    while first < last and _is_punctuation(text[first]):
        first += 1
    while last > first and _is_punctuation(text[last - 1]):
        last -= 1
    marks = [(i, i + 1) for i in range(start, first)]
    word = [(first, last)] if first < last else []
    return marks + word + [(i, i + 1) for i in range(last, end)]


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def to_bio(text: str, spans: list[Span], where: str, notes: SpanNotes) -> tuple[list[str], list[str]]:
    """The text's tokens and a B-/I-/O tag for each: B-TYPE on a span's first token, I-TYPE on the rest."""
    spans = _located(text, spans, where, notes)
    words = split_words(text)
    if not words:
        raise DataError(f"{where}: the text is empty; remove the row")
    starts, ends = [s for s, _ in words], [e for _, e in words]
    tags = ["O"] * len(words)
    owner: dict[int, Span] = {}
    for span in spans:
        first, stop = bisect.bisect_right(ends, span.start), bisect.bisect_left(starts, span.end)
        if first >= stop:
            raise DataError(f"{where}: span {span.shown} covers only spaces; fix its offsets or remove it")
        for index in range(first, stop):
            if index in owner:
                word = text[words[index][0] : words[index][1]]
                raise DataError(
                    f"{where}: spans {owner[index].shown} and {span.shown} both fall in the word `{word}`; "
                    "a token gets one tag, so keep one of them"
                )
            owner[index] = span
            tags[index] = ("B-" if index == first else "I-") + span.type
        if starts[first] < span.start or ends[stop - 1] > span.end:
            notes.widened += 1
            if notes.widened == 1:
                cut, whole = text[span.start : span.end], text[starts[first] : ends[stop - 1]]
                notes.first_widened = f"{where.rpartition(', ')[2]}: `{cut}` -> `{whole}`"
    return [text[s:e] for s, e in words], tags


def _located(text: str, spans: list[Span], where: str, notes: SpanNotes) -> list[Span]:
    """The spans checked against the text (in range, stated text matched), exact repeats dropped, in order of
    their start; overlapping spans refused."""
    problems = [_problem(text, span) for span in spans]
    if any(problems) and any(s.text is not None for s in spans) and any(ord(char) > 0xFFFF for char in text):
        # One tool wrote the row's offsets: read them all as UTF-16 units when that makes every span fit.
        as_utf16 = [_from_utf16(text, span) for span in spans]
        if not any(_problem(text, span) for span in as_utf16):
            spans, problems = as_utf16, [None] * len(spans)
            notes.utf16_rows += 1
    problem = next((p for p in problems if p), None)
    if problem:
        raise DataError(f"{where}: {problem}")
    ordered = sorted({(s.start, s.end, s.type): s for s in spans}.values(), key=lambda s: (s.start, s.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end:
            raise DataError(
                f"{where}: spans {before.shown} and {after.shown} overlap; BIO tags give each token one entity, "
                "so keep one of them"
            )
    return ordered


def _problem(text: str, span: Span) -> str | None:
    """What is wrong with a span's offsets against the text, or None."""
    if span.start >= span.end:
        return f"span {span.shown} is empty or reversed; its end must come after its start"
    if span.start < 0 or span.end > len(text):
        return f"span {span.shown} lies outside the text ({len(text)} characters); fix its offsets"
    if span.text is not None and text[span.start : span.end] != span.text:
        return (
            f"span {span.shown} points at `{text[span.start : span.end]}`, but the file says `{span.text}`; "
            "fix the offsets or the text"
        )
    return None


def _from_utf16(text: str, span: Span) -> Span:
    """The span with offsets counted in UTF-16 code units (JavaScript's string length) as Python's indices."""
    index, units = {}, 0
    for position, char in enumerate(text + " "):
        index[units] = position
        units += 2 if ord(char) > 0xFFFF else 1
    return span._replace(start=index.get(span.start, -1), end=index.get(span.end, -1))
