"""csv and tsv files without a header row: Tatoeba's `en<TAB>zh<TAB>attribution` sentence pairs, exports of
`document<TAB>summary` lines. Their first line is data, which a header never is (a number, a sentence), so they
are refused with the `--header NAMES` that reads them; with it, each line's fields are named in file order, as
the project's data.py names them (config.yaml `header`). A .txt file of tab-separated fields reads as tsv. Files
are decoded as readers decodes them (their byte-order mark, UTF-8, or the encoding found).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder.errors import DataError
from scaffolder.probes import readers, sniff

if TYPE_CHECKING:
    import _csv

SENTENCE_ENDS = (".", "!", "?", "…", "。", "！", "？")  # no column name ends like a sentence
SHOWN = 3  # fields of the first line a refusal quotes


def records(path: Path, header: Sequence[str], fix: Callable[[list[list[str]]], str]) -> Iterator[dict[str, Any]]:
    """The records of a data file: its lines named by `header` when given (a file without a header row), else
    the file's own records, refused when its first line is data. `fix(rows)`: the refusal's fix for a file whose
    first rows (fields as read without a header) are these, naming the --header that reads it."""
    if header:
        yield from iter_named(path, header)
        return
    rows = data_rows(path)
    if rows:
        shown = " | ".join(f"`{field.strip()[:40]}`" for field in rows[0][:SHOWN])
        raise DataError(f"{path} has no header row: line 1 is data ({shown}); {fix(rows)}")
    yield from readers.iter_records(path)


def sample(
    path: Path, header: Sequence[str], fix: Callable[[list[list[str]]], str], rows: int = readers.SAMPLE_ROWS
) -> list[dict[str, Any]]:
    """The first `rows` records, as `records` reads them."""
    found = list(itertools.islice(records(path, header, fix), rows))
    if not found:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    return found


def data_rows(path: Path, rows: int = readers.SAMPLE_ROWS) -> list[list[str]]:
    """The first rows of a csv or tsv file (or plain text of tab-separated fields) whose first line is data, not
    column names: a number, four words or more (the rule readers applies to any header), or a field that ends
    like a sentence. Empty for any other file."""
    fmt = readers.data_format(path)
    if fmt not in ("csv", "tsv", "txt"):
        return []
    csv.field_size_limit(readers.CSV_FIELD_LIMIT)  # long documents are data, as readers reads them
    with sniff.open_text(path, readers.text_codec(path), errors="replace", newline="") as f:
        first = f.readline()
        if fmt == "txt" and "\t" not in first:
            return []
        f.seek(0)
        try:
            found = [fields for fields in itertools.islice(_reader(f, first), rows) if fields]
        except csv.Error:  # a broken file: readers names the problem when it reads the records
            return []
    return found if found and looks_like_data(found[0]) else []


def numbers(rows: list[list[str]], index: int) -> bool:
    """Whether column `index` of these rows holds numbers only (ids, scores): never the text a suggestion names."""
    values = [fields[index] for fields in rows if len(fields) > index and fields[index].strip()]
    return bool(values) and all(readers.is_number(value) for value in values)


def looks_like_data(fields: Sequence[str]) -> bool:
    names = [field.strip() for field in fields if field.strip()]
    return any(readers.is_number(name) or len(name.split()) >= 4 or name.endswith(SENTENCE_ENDS) for name in names)


def _reader(lines: Iterable[str], first_line: str) -> _csv.Reader:
    """Fields by the first line, as data.py splits them: tab-separated where it holds a tab (quotes are plain
    characters there, as in GLUE files: sentences hold bare quotes); else csv, comma-separated, or `;` or a tab
    where the first line has no comma (spreadsheet exports)."""
    if "\t" in first_line:
        return csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(lines, delimiter=";" if "," not in first_line and ";" in first_line else ",")


def iter_named(path: Path, header: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Each non-blank line as a record of `header` -> field; a line with another number of fields, or a line
    that is the header itself, is refused with its line number."""
    fmt = readers.data_format(path)  # a missing or empty file is refused as any data file is
    if fmt not in ("csv", "tsv", "txt"):
        raise DataError(
            f"{path}: --header names the columns of a csv or tsv file without a header row; {fmt} records name "
            "their own fields, so drop --header"
        )
    csv.field_size_limit(readers.CSV_FIELD_LIMIT)
    names = [name.lower() for name in header]
    try:
        with sniff.open_text(path, readers.text_codec(path), newline="") as f:
            first = f.readline()
            f.seek(0)
            reader = _reader(f, first)
            for fields in reader:
                if fields:
                    yield _named(fields, header, names, path, reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not {exc.encoding} text throughout ({exc.reason}); re-save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not valid {fmt.upper()} ({exc}); fix the file or convert it to jsonl") from None


def _named(fields: list[str], header: Sequence[str], names: list[str], path: Path, line: int) -> dict[str, Any]:
    if len(fields) != len(header):
        raise DataError(
            f"{path}, line {line}: {len(fields)} field(s), but --header names {len(header)} column(s) "
            f"({','.join(header)}); fix the line, or name {len(fields)} columns"
        )
    if [field.strip().lower() for field in fields] == names:
        raise DataError(
            f"{path}, line {line} is a header row, but --header reads files without one (--data and "
            "--eval-data alike); delete that line"
        )
    return dict(zip(header, fields, strict=True))
