"""Read data files as records: csv, tsv, json (a list of records, or an object with one list of records) and
jsonl, with the standard library only (the CLI must stay light). Every problem becomes a `DataError` that
names the file and the fix. Task probes (one module each in this package) read through these functions.
Plain text (txt) reads as one `text` record per document (see `iter_text_documents`).
"""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}

SAMPLE_ROWS = 200  # rows read to decide the columns
# Python's csv refuses fields over 131,072 characters by default; a long document is data, not a broken file.
# 2**31 - 1 is the largest limit every platform's C long holds (sys.maxsize overflows on Windows).
CSV_FIELD_LIMIT = 2**31 - 1


def data_format(path: Path) -> str:
    if not path.exists():
        raise DataError(f"data file {path} not found; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass the data file itself (csv, tsv, json or jsonl)")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unsupported file type `{path.suffix}`; use .csv, .tsv, .json, .jsonl or .txt")
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
        elif fmt == "txt":
            yield from ({"text": document} for document in iter_text_documents(path))
        else:
            yield from _iter_json(path)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not valid {fmt.upper()} ({exc}); fix the file or convert it to jsonl") from None


def _iter_delimited(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open(encoding="utf-8-sig", newline="") as f:
        # GLUE-style TSV files hold bare quote characters inside sentences: quotes are not special there.
        reader = (
            csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if fmt == "tsv"
            else csv.DictReader(f, dialect=_sniff_csv(path))
        )
        header = _check_header(path, reader.fieldnames)
        names = [_field_key(name) for name in header]
        end = reader.line_num  # lines read so far: a quoted field can span several
        for row in reader:
            line, end = end + 1, reader.line_num
            if None in row:  # more fields than the header names
                raise DataError(f"{path}, line {line}: more fields than the header has; quote fields with commas")
            if _field_key(row[header[0]]) == names[0] and [_field_key(row[name]) for name in header] == names:
                raise DataError(f"{path}, line {line} repeats the header (files joined together?); remove that line")
            yield row


def _check_header(path: Path, names: Sequence[str] | None) -> Sequence[str]:
    """A header names columns: a number or a sentence in it means the file starts with data (GLUE's CoLA)."""
    if not names or not any(name.strip() for name in names):
        raise DataError(f"{path} has no header row; add one that names the columns (e.g. text,label)")
    if names[0].strip().lower() == "sep=" and not any(name.strip() for name in names[1:]):
        raise DataError(
            f"{path}: the first line (`sep=...`) is a spreadsheet's delimiter hint, not a header; delete that line"
        )
    for name in names:
        if is_number(name) or len(name.split()) >= 4:
            raise DataError(
                f"{path}: the first row looks like data, not a header (`{name[:40]}`); "
                "add a header row that names the columns (e.g. text,label)"
            )
    # A csv reader keeps only the last of two columns with one name. Unnamed columns (an index column, or
    # trailing delimiters) are read by no one, so those may repeat.
    repeated = sorted(name for name, count in Counter(names).items() if count > 1 and name.strip())
    if repeated:
        raise DataError(
            f"{path}: the header names {', '.join(f'`{name}`' for name in repeated)} more than once; only one "
            "column of a name can be read, so rename or remove the others"
        )
    return names


def _field_key(value: str | None) -> str:
    """A field as a header line compares: stripped, without a byte-order mark (joined files keep theirs)."""
    return (value or "").strip().lstrip("\ufeff").strip()


def _sniff_csv(path: Path) -> type[csv.Dialect] | csv.Dialect:
    """Comma-separated unless the header clearly uses `;` (spreadsheet exports in many locales) or a tab."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = f.readline()
    if "," not in header and (";" in header or "\t" in header):
        return csv.Sniffer().sniff(header, delimiters=";\t")
    return csv.excel


class _RepeatedKey(Exception):
    """An object with one key twice: json keeps the last value without a word, so the reader refuses it."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) < len(pairs):
        keys = [key for key, _ in pairs]
        raise _RepeatedKey(next(key for key in keys if keys.count(key) > 1))
    return record


# One decoder for every record: json.loads with a hook would build a new decoder per line (twice as slow).
_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _repeated_key(where: str, exc: _RepeatedKey) -> DataError:
    return DataError(
        f"{where}: key `{exc}` appears twice in one object; JSON keeps only the last value, "
        "so rename or remove the other"
    )


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if line.startswith("\ufeff"):  # json refuses it, the project's data.py too
                raise DataError(
                    f"{path}, line {line_no} starts with a byte-order mark (files joined together?); delete it"
                )
            try:
                record = _JSON.decode(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {line_no}: not valid JSON ({exc.msg}); one object per line") from None
            except _RepeatedKey as exc:
                raise _repeated_key(f"{path}, line {line_no}", exc) from None
            if not isinstance(record, dict):
                raise DataError(f"{path}, line {line_no}: expected a JSON object per line, got {type(record).__name__}")
            yield record


def _iter_json(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        data = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved with a .json suffix
            yield from _iter_jsonl(path)
            return
        raise DataError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it or use jsonl") from None
    except _RepeatedKey as exc:
        raise _repeated_key(str(path), exc) from None
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a list of records (or an object holding one list of them)")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of objects, one per example")
    yield from data


def iter_text_documents(path: Path) -> Iterator[str]:
    """The documents of a plain-text file: blank lines separate documents (line breaks inside one are kept);
    a file without any blank line holds one document per line."""
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    lines = text.split("\n")
    if any(not line.strip() for line in lines[:-1]):
        documents = [block.strip("\n") for block in re.split(r"\n\s*\n", text)]
    else:
        documents = lines
    yield from (document for document in documents if document.strip())


def read_sample(path: Path, rows: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    sample = []
    for record in iter_records(path):
        sample.append(record)
        if len(sample) >= rows:
            break
    if not sample:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    return sample


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


# --- CoNLL: one `token ... TAG` line per token, a blank line between sentences ---------------------------------

CONLL_SUFFIXES = (".conll", ".bio", ".iob")
CONLL_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators: not sentences


def is_conll(path: Path) -> bool:
    """Whether a file is CoNLL text: by its suffix, or a .txt file whose lines look like `token TAG`."""
    suffix = path.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return True
    if suffix != ".txt" or not path.is_file():
        return False
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        lines = [line.split() for line in itertools.islice(f, SAMPLE_ROWS)]
    rows = [fields for fields in lines if fields and fields[0] != CONLL_DOCSTART]
    # Columns: every line has the same few fields (prose lines vary in length), and the tags in the last one
    # repeat (the last words of sentences rarely do).
    widths = {len(fields) for fields in rows}
    tags = {fields[-1] for fields in rows}
    return len(widths) == 1 and 2 <= min(widths) <= 10 and len(tags) <= max(2, len(rows) // 3)


def iter_conll(path: Path) -> Iterator[dict[str, Any]]:
    """Sentences of a CoNLL file as {"tokens", "tags", "line"} records; the tag is each line's last column."""
    _check_conll_file(path)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    try:
        with path.open(encoding="utf-8-sig") as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.split()
                if not fields or fields[0] == CONLL_DOCSTART:  # both end a sentence
                    if tokens:
                        yield {"tokens": tokens, "tags": tags, "line": start}
                    tokens, tags = [], []
                    continue
                if len(fields) < 2:
                    raise DataError(
                        f"{path}, line {line_no}: `{line.strip()[:40]}` has no tag; CoNLL lines are `token TAG` "
                        "(whitespace separated, the tag last) with a blank line between sentences"
                    )
                start = start if tokens else line_no
                tokens.append(fields[0])
                tags.append(fields[-1])
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; re-save it as UTF-8") from None
    if tokens:
        yield {"tokens": tokens, "tags": tags, "line": start}


def _check_conll_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty; it needs sentences of `token TAG` lines")
