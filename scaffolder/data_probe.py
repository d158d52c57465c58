"""Look at a data file: its format, columns, label set and text lengths.

Reads csv, tsv, json (a list of records, or an object with one list of records) and jsonl with the standard
library only: the CLI must stay light. Every problem becomes a `DataError` that names the file and the fix.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

# Header names, most specific first. Matching ignores case.
PAIR_COLUMNS = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("text_a", "text_b"),
    ("text", "text_pair"),
    ("query", "passage"),
)
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "comment", "tweet", "body", "utterance")
LABEL_COLUMNS = ("label", "labels", "class", "category", "target", "sentiment", "intent", "gold_label", "y")

SAMPLE_ROWS = 200  # rows read to decide the columns


@dataclass(frozen=True)
class Columns:
    text: str
    text_pair: str | None
    label: str


@dataclass(frozen=True)
class DataSummary:
    path: Path
    format: str
    columns: tuple[str, ...]
    num_rows: int
    label_counts: dict[str, int]
    words_p95: int  # 95th percentile of words per example (both texts of a pair)
    non_latin_share: float  # share of letters outside Latin script in the sampled texts


def data_format(path: Path) -> str:
    if not path.exists():
        raise DataError(f"data file {path} not found; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass the data file itself (csv, tsv, json or jsonl)")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported file type `{path.suffix}`; use .csv, .tsv, .json or .jsonl")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty; it needs a header (or records) and at least a few rows")
    return fmt


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a data file as a dict, in file order."""
    fmt = data_format(path)
    try:
        if fmt in ("csv", "tsv"):
            yield from _iter_delimited(path, fmt)
        elif fmt == "jsonl":
            yield from _iter_jsonl(path)
        else:
            yield from _iter_json(path)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not valid {fmt.upper()} ({exc}); fix the file or convert it to jsonl") from None


def _iter_delimited(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        # GLUE-style TSV files hold bare quote characters inside sentences: quotes are not special there.
        reader = (
            csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if fmt == "tsv"
            else csv.DictReader(f, dialect=_sniff_csv(path))
        )
        _check_header(path, reader.fieldnames)
        for line, row in enumerate(reader, start=2):
            if None in row:  # more fields than the header names
                raise DataError(f"{path}, line {line}: more fields than the header has; quote fields with commas")
            yield row


def _check_header(path: Path, names: Sequence[str] | None) -> None:
    """A header names columns: a number or a sentence in it means the file starts with data (GLUE's CoLA)."""
    if not names or not any(name.strip() for name in names):
        raise DataError(f"{path} has no header row; add one that names the columns (e.g. text,label)")
    for name in names:
        if _is_number(name) or len(name.split()) >= 4:
            raise DataError(
                f"{path}: the first row looks like data, not a header (`{name[:40]}`); "
                "add a header row that names the columns (e.g. text,label)"
            )


def _sniff_csv(path: Path) -> type[csv.Dialect] | csv.Dialect:
    """Comma-separated unless the header clearly uses `;` (spreadsheet exports in many locales) or a tab."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = f.readline()
    if "," not in header and (";" in header or "\t" in header):
        return csv.Sniffer().sniff(header, delimiters=";\t")
    return csv.excel


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {line_no}: not valid JSON ({exc.msg}); one object per line") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}, line {line_no}: expected a JSON object per line, got {type(record).__name__}")
            yield record


def _iter_json(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved with a .json suffix
            yield from _iter_jsonl(path)
            return
        raise DataError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it or use jsonl") from None
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a list of records (or an object holding one list of them)")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of objects, one per example")
    yield from data


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    sample = []
    for record in iter_records(path):
        sample.append(record)
        if len(sample) >= rows:
            break
    if not sample:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    return sample


# --- columns ---------------------------------------------------------------------------------------------------


def infer_columns(
    sample: list[dict[str, Any]],
    path: Path,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
) -> Columns:
    """Columns for text / pair / label: the flags when given (checked), else header names, else the data."""
    names = list(sample[0])
    for flag, value in (("--text-column", text), ("--text-pair-column", text_pair), ("--label-column", label)):
        if value is not None and value not in names:
            raise DataError(f"{path} has no column `{value}` ({flag}); columns are: {', '.join(names)}")
    by_lower = {name.lower(): name for name in names}
    if text is None:
        text, found_pair = _text_columns(by_lower)
        text_pair = text_pair if text_pair is not None else found_pair
    label = label or next((by_lower[c] for c in LABEL_COLUMNS if c in by_lower), None)
    label = label or _guess_label(sample, exclude={text, text_pair})
    if label is None:
        raise DataError(f"{path}: no label column found among {', '.join(names)}; pass --label-column NAME")
    text = text or _guess_text(sample, exclude={label, text_pair})
    if text is None:
        raise DataError(f"{path}: no text column found among {', '.join(names)}; pass --text-column NAME")
    if label in (text, text_pair):
        raise DataError(f"{path}: column `{label}` cannot be both text and label; pass --text-column/--label-column")
    return Columns(text=text, text_pair=text_pair, label=label)


def _text_columns(by_lower: dict[str, str]) -> tuple[str | None, str | None]:
    for first, second in PAIR_COLUMNS:
        if first in by_lower and second in by_lower:
            return by_lower[first], by_lower[second]
    return next((by_lower[c] for c in TEXT_COLUMNS if c in by_lower), None), None


def _guess_label(sample: list[dict[str, Any]], exclude: set[str | None]) -> str | None:
    """The column whose values repeat most: few distinct values relative to the rows."""
    best, best_distinct = None, math.inf
    for name in sample[0]:
        if name in exclude:
            continue
        values = [_label_key(r.get(name)) for r in sample]
        distinct = len(set(values))
        if 1 < distinct <= max(2, len(sample) // 2) and distinct < best_distinct:
            best, best_distinct = name, distinct
    return best


def _guess_text(sample: list[dict[str, Any]], exclude: set[str | None]) -> str | None:
    """The string column with the longest values."""
    lengths = {
        name: sum(len(r[name]) for r in sample if isinstance(r.get(name), str)) / len(sample)
        for name in sample[0]
        if name not in exclude
    }
    lengths = {name: length for name, length in lengths.items() if length > 0}
    return max(lengths, key=lengths.__getitem__) if lengths else None


def _label_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else str(value)


# --- labels and sizes -------------------------------------------------------------------------------------------


def normalize_label(value: Any, path: Path, row: int) -> str:
    """A label value as its class name: integers (also "3" or 3.0) as digits, strings stripped.

    The generated data.py applies the same rule, so names written to config.yaml match the data.
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) or (isinstance(value, str) and _is_number(value)):
        number = float(value)
        if number.is_integer():
            return str(int(number))
        raise DataError(
            f"{path}, row {row}: label {value!r} is a fractional number (a regression target); "
            "text-classification needs class labels"
        )
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{path}, row {row}: the label is empty; fill it in or remove the row")
    if isinstance(value, (list, dict)):
        raise DataError(f"{path}, row {row}: the label is a {type(value).__name__}; one class per row is expected")
    return str(value).strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def summarize(path: Path, columns: Columns) -> DataSummary:
    """One pass over the file: row count, label counts, text lengths, script."""
    labels: Counter[str] = Counter()
    words: list[int] = []
    letters = non_latin = 0
    rows = 0
    fields: tuple[str, ...] = ()
    for rows, record in enumerate(iter_records(path), start=1):
        fields = fields or tuple(record)
        for name in (columns.text, columns.text_pair, columns.label):
            if name is not None and name not in record:
                raise DataError(f"{path}, row {rows}: column `{name}` is missing; every row needs it")
        labels[normalize_label(record[columns.label], path, rows)] += 1
        texts = [str(record[columns.text] or "")]
        if columns.text_pair:
            texts.append(str(record[columns.text_pair] or ""))
        words.append(sum(_word_count(t) for t in texts))
        if rows <= 2000:
            for ch in "".join(texts):
                if ch.isalpha():
                    letters += 1
                    non_latin += ord(ch) > 0x24F
    if rows == 0:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    words.sort()
    return DataSummary(
        path=path,
        format=data_format(path),
        columns=fields,
        num_rows=rows,
        label_counts=dict(labels),
        words_p95=words[min(len(words) - 1, int(0.95 * len(words)))],
        non_latin_share=non_latin / letters if letters else 0.0,
    )


def _word_count(text: str) -> int:
    """Whitespace words, counting each CJK character as a word (those scripts do not separate words)."""
    cjk = sum(1 for ch in text if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return len(text.split()) + cjk
