"""summarization data: a document and its reference summary per row (csv, tsv, json or jsonl).

Columns come from `--column text=...` / `--column summary=...`, else from header names (CNN/DailyMail's
article + highlights, XSum's document + summary, SAMSum's dialogue + summary, ...); the document column may
also be the longest text column. The summary column is never guessed from the values: a wrong guess would train
the model to write the wrong field. A file without a header row is refused with the `--header` that names its
columns (the longer text as the document), and read with those names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, headerless
from scaffolder.probes.readers import data_format
from scaffolder.spec import ProjectSpec

# Header names, most specific first. Matching ignores case.
TEXT_COLUMNS = ("document", "article", "dialogue", "text", "content", "source", "body", "input")
SUMMARY_COLUMNS = ("summary", "highlights", "abstract", "headline", "title", "target", "output")


def probe(spec: ProjectSpec) -> Probed:
    sample = headerless.sample(spec.train_data, spec.header, suggest_header)
    text, summary = infer_columns(sample, spec.train_data, spec.columns)
    train = summarize(spec.train_data, text, summary, spec.header)
    evaluation = summarize(spec.eval_data, text, summary, spec.header) if spec.eval_data else None
    return Probed(
        updates={"columns": {"text": text, "summary": summary}},
        train=train,
        eval=evaluation,
        description=f"{text} → {summary}",
    )


def infer_columns(sample: list[dict[str, Any]], path: Path, given: dict[str, str]) -> tuple[str, str]:
    """The document and summary columns: the flags when given (checked), else header names."""
    names = list(sample[0])
    for role in ("text", "summary"):
        if role in given and given[role] not in names:
            raise DataError(f"{path} has no column `{given[role]}` (--column {role}=); columns are: {', '.join(names)}")
    by_lower = {name.lower(): name for name in names}
    summary = given.get("summary") or next((by_lower[c] for c in SUMMARY_COLUMNS if c in by_lower), None)
    if summary is None:
        raise DataError(
            f"{path}: no summary column among {', '.join(names)} (looked for {', '.join(SUMMARY_COLUMNS)}); "
            "pass --column summary=NAME"
        )
    named = (by_lower[c] for c in TEXT_COLUMNS if c in by_lower and by_lower[c] != summary)
    text = given.get("text") or next(named, None) or _longest_text_column(sample, exclude=summary)
    if text is None:
        raise DataError(f"{path}: no document column among {', '.join(names)}; pass --column text=NAME")
    if text == summary:
        raise DataError(f"{path}: column `{text}` cannot be both document and summary; pass --column text=NAME")
    return text, summary


def _longest_text_column(sample: list[dict[str, Any]], exclude: str) -> str | None:
    lengths = {
        name: sum(len(r[name]) for r in sample if isinstance(r.get(name), str)) for name in sample[0] if name != exclude
    }
    lengths = {name: length for name, length in lengths.items() if length > 0}
    return max(lengths, key=lengths.__getitem__) if lengths else None


def suggest_header(rows: list[list[str]]) -> str:
    """The --header for a file without a header row: `document` for the column with the longest texts, `summary`
    for the one with the shortest, `id` for numbers, `columnN` for any other."""
    width = max(len(fields) for fields in rows)
    lengths = {i: _mean_length(rows, i) for i in range(width) if not headerless.numbers(rows, i)}
    if len(lengths) < 2:
        return "summarization needs a document and a summary column; add them"
    document, summary = max(lengths, key=lengths.__getitem__), min(lengths, key=lengths.__getitem__)
    names = {document: "document", summary: "summary"}
    header: list[str] = []
    for i in range(width):
        numbers = i not in lengths and "id" not in header
        header.append(names.get(i) or ("id" if numbers else f"column{i + 1}"))
    return (
        f"name its {width} columns in order: --header {','.join(header)} "
        "(the longest text is read as the document, the shortest as the summary: reorder the names if not)"
    )


def _mean_length(rows: list[list[str]], index: int) -> float:
    return sum(len(fields[index]) for fields in rows if len(fields) > index) / len(rows)


def summarize(path: Path, text: str, summary: str, header: Sequence[str] = ()) -> DataSummary:
    """One pass: every row has a non-empty document and summary; row count and lengths of both."""
    stats = TextStats()
    fields: tuple[str, ...] = ()
    for row, record in enumerate(headerless.records(path, header, suggest_header), start=1):
        fields = fields or tuple(record)
        stats.add([required_text(record, text, path, row)], [required_text(record, summary, path, row)])
    if not stats.inputs:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    return stats.summary(path, data_format(path), fields)


def required_text(record: dict[str, Any], column: str, path: Path, row: int) -> str:
    """The text in `column`; a missing, empty or non-text value is an error naming the row."""
    if column not in record:
        raise DataError(f"{path}, row {row}: column `{column}` is missing; every row needs it")
    value = record[column]
    if isinstance(value, (dict, list)):
        raise DataError(f"{path}, row {row}: `{column}` holds a {type(value).__name__}, not text; fix the row")
    if value is None or not str(value).strip():
        raise DataError(f"{path}, row {row}: `{column}` is empty; fill it in or remove the row")
    return str(value)
