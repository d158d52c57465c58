"""Read data files as records: csv, tsv, json (a list of records, or an object with one list of records) and
jsonl (one object a line, or objects one after another), with the standard library only (the CLI must stay
light). Every problem becomes a `DataError` that names the file and the fix. Task probes (one module each in
this package) read through these functions. Plain text (txt) reads as one `text` record per document (see
`iter_text_documents`). A file's layout and encoding come from its content (`sniff`), not from its name.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import sniff

SAMPLE_ROWS = 200  # rows read to decide the columns
# Python's csv refuses fields over 131,072 characters by default; a long document is data, not a broken file.
# 2**31 - 1 is the largest limit every platform's C long holds (sys.maxsize overflows on Windows).
CSV_FIELD_LIMIT = 2**31 - 1
# The formats file names usually stand for: content decides (sniff), a suffix only breaks ties.
FORMATS = {**sniff.SUFFIX_FORMATS, **sniff.COLUMNAR_SUFFIXES, ".txt": "txt"}


def data_format(path: Path) -> str:
    """csv, tsv, json, jsonl, conll or txt, from the file's content."""
    return _sniffed(path).format


def data_encoding(path: Path) -> str:
    """utf-8, utf-16, utf-32, or the legacy encoding the file is in (gb18030, cp1252, ...)."""
    return _sniffed(path).encoding


def text_codec(path: Path) -> str:
    """The codec to open a data file with (a UTF-8 byte-order mark is dropped)."""
    return _sniffed(path).codec


def _sniffed(path: Path) -> sniff.Sniffed:
    if not path.exists():
        raise DataError(f"data file {path} not found; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a directory; pass the data file itself (csv, tsv, json or jsonl)")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty; it needs a header (or records) and at least a few rows")
    return sniff.sniff(path)


def describe(path: Path) -> str:
    """How a file is read, for the user when that is not what its name says (`eng.train read as CoNLL text`)."""
    found = _sniffed(path)
    suffix = sniff.layout_suffix(path)
    notes = []
    named = "conll" if suffix in sniff.CONLL_SUFFIXES else FORMATS.get(suffix)
    if named != found.format:
        notes.append(sniff.NAMES[found.format])
    if found.encoding != "utf-8":
        notes.append(found.encoding.upper())
    return f"{path.name} read as {', '.join(notes)}" if notes else ""


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a data file as a dict, in file order."""
    fmt = data_format(path)
    if fmt == "conll":
        raise DataError(
            f"{path} is CoNLL text (a `token ... TAG` line per word), which token-classification reads; "
            "this task reads csv, tsv, json or jsonl records"
        )
    if fmt in ("parquet", "arrow"):
        yield from _iter_columnar(path, fmt)
        return
    try:
        if fmt in ("csv", "tsv"):
            yield from _iter_delimited(path, fmt)
        elif fmt == "jsonl":
            yield from _iter_jsonl(path)
        elif fmt == "txt":
            yield from ({"text": document} for document in iter_text_documents(path))
        else:
            yield from _iter_json(path)
    except UnicodeDecodeError as exc:
        raise _undecodable(path, exc) from None
    except csv.Error as exc:
        raise DataError(f"{path} is not valid {fmt.upper()} ({exc}); fix the file or convert it to jsonl") from None


def _iter_columnar(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of a Parquet file or an Arrow file or stream (what `datasets` saves), a batch at a time, through
    pyarrow, which the project's `datasets` reads them with too (imported only for these files: it is heavy)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"{path} is {sniff.NAMES[fmt]}: reading it needs pyarrow (pip install pyarrow), or convert it to jsonl"
        ) from None
    try:
        if fmt == "parquet":
            parquet = pq.ParquetFile(path)
            schema, batches = parquet.schema_arrow, parquet.iter_batches(batch_size=1024)
        else:
            with path.open("rb") as f:
                stream = f.read(6) != b"ARROW1"
            reader = pa.ipc.open_stream(path) if stream else pa.ipc.open_file(path)
            schema = reader.schema
            batches = iter(reader) if stream else (reader.get_batch(i) for i in range(reader.num_record_batches))
        names = class_names(schema.metadata)
        for batch in batches:
            yield from (_named(row, names) for row in batch.to_pylist()) if names else batch.to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(
            f"{path} is not a readable {sniff.NAMES[fmt]} file ({exc}); re-save it or convert it to jsonl"
        ) from None


def class_names(metadata: dict[bytes, bytes] | None) -> dict[str, tuple[list[str], bool]]:
    """Columns that a file written by `datasets` stores as ClassLabel ids (its schema's `huggingface` metadata),
    with the class names and whether the column holds lists of ids: `load_dataset` in the project reads them
    as these names, so the probe does too."""
    try:
        features = json.loads((metadata or {})[b"huggingface"])["info"]["features"]
    except (KeyError, TypeError, ValueError):
        return {}
    found = {}
    for column, feature in features.items():
        inner = feature.get("feature") if isinstance(feature, dict) else None
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            found[column] = (feature["names"], False)
        elif isinstance(inner, dict) and inner.get("_type") == "ClassLabel":
            found[column] = (inner["names"], True)
    return found


def _named(row: dict[str, Any], names: dict[str, tuple[list[str], bool]]) -> dict[str, Any]:
    for column, (labels, in_lists) in names.items():
        value = row.get(column)
        if in_lists and value is not None:
            row[column] = [_class_name(labels, item) for item in value]
        elif not in_lists:
            row[column] = _class_name(labels, value)
    return row


def _class_name(labels: list[str], value: Any) -> Any:
    """A class id's name; -1 (an unlabelled row) is no label."""
    return labels[value] if isinstance(value, int) and 0 <= value < len(labels) else None


def _iter_delimited(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with sniff.open_text(path, text_codec(path), newline="") as f:
        # GLUE-style TSV files hold bare quote characters inside sentences: quotes are not special there.
        reader = (
            csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if fmt == "tsv"
            else csv.DictReader(f, delimiter=_csv_delimiter(path))
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


def _csv_delimiter(path: Path) -> str:
    with sniff.open_text(path, text_codec(path), newline="") as f:
        return sniff.delimiter(f.readline())


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
    with sniff.open_text(path, text_codec(path)) as f:
        first = next((line for line in f if line.strip()), "")
    if not _is_json(first):  # pretty-printed objects one after another
        yield from _iter_json_values(path)
        return
    with sniff.open_text(path, text_codec(path)) as f:
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
            yield _record(path, line_no, record)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between values


def _iter_json_values(path: Path) -> Iterator[dict[str, Any]]:
    """Objects one after another, each over several lines (what `datasets` reads as JSON lines too)."""
    text = sniff.read_text(path, text_codec(path))
    index = _SPACE.match(text).end()  # type: ignore[union-attr]  # matches the empty string at least
    while index < len(text):
        line_no = text.count("\n", 0, index) + 1
        try:
            record, index = _JSON.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); write JSON objects one after another"
            ) from None
        except _RepeatedKey as exc:
            raise _repeated_key(f"{path}, line {line_no}", exc) from None
        yield _record(path, line_no, record)
        index = _SPACE.match(text, index).end()  # type: ignore[union-attr]


def _record(path: Path, line_no: int, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise DataError(f"{path}, line {line_no}: expected a JSON object per line, got {type(record).__name__}")
    return record


def _iter_json(path: Path) -> Iterator[dict[str, Any]]:
    text = sniff.read_text(path, text_codec(path))
    try:
        data = _JSON.decode(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # values one after another
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


def _undecodable(path: Path, exc: UnicodeDecodeError) -> DataError:
    """A byte the sniffed encoding does not read (the sniff checks every byte, so a file changed meanwhile)."""
    return DataError(f"{path} is not {exc.encoding} text throughout ({exc.reason}); re-save it as UTF-8")


def iter_text_documents(path: Path) -> Iterator[str]:
    """The documents of a plain-text file: blank lines separate documents (line breaks inside one are kept);
    a file without any blank line holds one document per line."""
    text = sniff.read_text(path, text_codec(path)).replace("\r\n", "\n")
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

CONLL_SUFFIXES = sniff.CONLL_SUFFIXES
CONLL_DOCSTART = sniff.CONLL_DOCSTART


def is_conll(path: Path) -> bool:
    """Whether a file is CoNLL text, by its content (sniff.looks_conll), or by a .conll, .bio or .iob suffix."""
    return path.is_file() and path.stat().st_size > 0 and data_format(path) == "conll"


def iter_conll(path: Path) -> Iterator[dict[str, Any]]:
    """Sentences of a CoNLL file as {"tokens", "tags", "line"} records; the tag is each line's last column."""
    _check_conll_file(path)
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    try:
        with sniff.open_text(path, text_codec(path)) as f:
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
    except UnicodeDecodeError as exc:
        raise _undecodable(path, exc) from None
    if tokens:
        yield {"tokens": tokens, "tags": tags, "line": start}


def _check_conll_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty; it needs sentences of `token TAG` lines")
