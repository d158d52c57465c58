"""Data: read questions with Hugging Face `datasets`, split, cut each question + context into windows once, and
pad per batch.

Questions are read into Arrow tables (memory-mapped from the datasets cache, so big data need not fit in memory):
json/jsonl records, parquet and arrow files, saved datasets and hub datasets (`rajpurkar/squad`) through
`datasets`, a nested SQuAD file through the reader below. They are tokenized once with `Dataset.map`.

A context longer than max_length is read in overlapping windows (doc_stride tokens shared), each its own
training example ("feature"). A window is trained to point at the answer's first and last token, or at the
first token ([CLS] / <s>) when the question has no answer or the answer is not wholly inside the window.
Every window holds the whole question, so a question is cut to max_question_length tokens first.

An answer_start that misses its answer text (a few in files such as CMRC 2018: some characters off, or -1) is
moved to the occurrence of the text nearest it; a question whose context lacks its answer text is skipped.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy
import pandas
import torch
from datasets import Dataset, DatasetDict, Features, List, Value, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config, SettingError, is_hub_id

# Fixed so that every run evaluates on the same held-out questions, whatever `seed` trains with.
SPLIT_SEED = 0
NO_ANSWER = 0  # the token a window points at for "no answer here": the first, [CLS] / <s>
# Above this share of the answered questions, answer_starts that miss their answer text are refused rather than
# repaired: that many suggests offsets counted in something else (bytes, another version of the contexts), where
# the nearest occurrence of the text would be a guess. scaffold new refused such a file the same way.
MAX_REPAIR_SHARE = 0.05
# Rows per tokenizing process: below this, starting processes costs more than it saves.
ROWS_PER_PROCESS = 100_000
# What read_examples returns, whatever it read: the answers as SQuAD lists them.
EXAMPLE_FEATURES = Features(
    {
        "id": Value("string"),
        "question": Value("string"),
        "context": Value("string"),
        "answers": List({"text": Value("string"), "answer_start": Value("int64")}),
    }
)
# Arrow types that the json builder infers from JSON text but JSON does not have: dates and times in strings.
TEMPORAL_TYPES = ("timestamp", "date", "time", "duration")

logger = logging.getLogger(__name__)


# Byte-order marks and the codecs that read them; UTF-32's first, since its little-endian mark starts with UTF-16's.
BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: str | Path) -> BinaryIO:
    """A data file's bytes, decompressed when it is gzip-compressed (`train.csv.gz`)."""
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[return-value]


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A data file's text: in the encoding its byte-order mark names, else UTF-8 when it is valid UTF-8, else in
    `encoding` (config.yaml's data_encoding: scaffold new found it by the same rule)."""
    with open_binary(path) as f:
        data = f.read()
    for mark, codec in BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return data.decode(codec)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise ValueError(
            f"{path} is neither UTF-8 nor {encoding} text; set data_encoding in config.yaml to its encoding "
            "(e.g. gb18030, cp1252) or re-save it as UTF-8"
        ) from None


def json_values(text: str) -> list[Any]:
    """The JSON values of a text, one after another: one value (json), one a line (jsonl), or pretty-printed
    objects end to end."""
    decoder, values, index, end = json.JSONDecoder(), [], 0, len(text)
    while True:
        while index < end and text[index] in " \t\r\n":
            index += 1
        if index == end:
            return values
        value, index = decoder.raw_decode(text, index)
        values.append(value)


# The `datasets` builder of each format config.yaml can name; the others are read here (see read_dataset).
BUILDERS = {"csv": "csv", "tsv": "csv", "jsonl": "json", "parquet": "parquet", "arrow": "arrow"}
FORMATS = "csv, tsv, json, jsonl, parquet or arrow"


def read_dataset(
    source: str | Path,
    fmt: str | None = None,
    encoding: str = "utf-8",
    split: str = "train",
    revision: str | None = None,
    header: Sequence[str] | None = None,
) -> Dataset:
    """A data source's rows, memory-mapped from Arrow (a file of millions of rows need not fit in memory).

    `source` is a data file (csv, tsv, json, jsonl, parquet or arrow, also gzip-compressed:
    `train.csv.gz`), a folder written by `Dataset.save_to_disk`, or a dataset on the Hugging Face Hub
    (`stanfordnlp/sst2`, or `name:config`) whose `split` is read at `revision` (config.yaml pins it). `fmt`
    says how a file is read (config.yaml's train_format or eval_format; None: guessed from its first line) and
    `encoding` reads a text file that is not UTF-8 (config.yaml's data_encoding). `header` names the columns, in
    order, of a csv or tsv file without a header row (config.yaml's header)."""
    path = Path(source)
    if path.is_dir():
        return saved_dataset(path, split)
    if not path.exists():
        if is_hub_id(str(source)):
            return hub_dataset(str(source), split, revision)
        raise SettingError(f"error: {path} not found; check train_file/eval_file in config.yaml")
    fmt = fmt or guess_format(path)
    try:
        if fmt in ("json", "jsonl") and file_codec(path, encoding) not in ("utf-8", "utf-8-sig"):
            # The json builder decodes other encodings in chunks that can split a character (UTF-16 over 10 MB).
            return records_dataset(records_of_json(read_text(path, encoding), fmt))
        if fmt in BUILDERS:
            options = builder_options(path, fmt, encoding, header)
            return load_dataset(BUILDERS[fmt], data_files=str(path), split="train", **options)
        if fmt == "json":
            return load_dataset("json", data_files=str(path), split="train", **json_options(path, encoding))
    except DatasetGenerationError as exc:  # the parser's own message is on the cause, over several lines
        reason = " ".join(str(exc.__cause__ or exc).split())
        raise ValueError(f"{path} cannot be read as {fmt}: {reason}; fix the file or its format") from None
    raise ValueError(f"{path}: unsupported format {fmt!r}; set train_format/eval_format in config.yaml: {FORMATS}")


def saved_dataset(folder: Path, split: str) -> Dataset:
    """A folder written by `Dataset.save_to_disk` (one split) or `DatasetDict.save_to_disk` (read at `split`)."""
    try:
        saved = load_from_disk(str(folder))
    except FileNotFoundError:
        raise SettingError(f"error: {folder} is a folder, not a saved dataset; point config.yaml at the data") from None
    if not isinstance(saved, DatasetDict):
        return saved
    if split not in saved:
        raise SettingError(
            f"error: {folder} has no split {split!r} (it has {', '.join(saved)}); set train_split/eval_split"
        )
    return saved[split]


def hub_dataset(source: str, split: str, revision: str | None) -> Dataset:
    """The `split` of a hub dataset (`owner/name` or `owner/name:config`) at `revision`; offline, from the
    datasets cache of an earlier download."""
    name, _, subset = source.partition(":")
    try:
        return load_dataset(name, subset or None, split=split, revision=revision)
    except (ConnectionError, FileNotFoundError, ValueError) as error:  # unreachable, unknown, or no such split
        reason = " ".join(str(error).split())[:300]
        raise SettingError(
            f"error: cannot read the hub dataset {source}, split {split!r} ({reason}); check the id, the split "
            "(train_split/eval_split) and dataset_revision in config.yaml, or download it once online"
        ) from None


def builder_options(path: Path, fmt: str, encoding: str, header: Sequence[str] | None = None) -> dict[str, Any]:
    """How the csv and json builders read a text file like scaffold new read it; `header` names the columns of
    a csv or tsv file whose first line is data."""
    if fmt in ("parquet", "arrow"):
        return {}
    codec = file_codec(path, encoding)
    if fmt == "jsonl":
        return {"encoding": codec}
    # GLUE-style TSV holds bare quotes inside sentences: quotes are not special there.
    delimiter = "\t" if fmt == "tsv" else csv_delimiter(header_line(path, codec))
    options = {"sep": delimiter, "quoting": csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL}
    if header:
        options["column_names"] = list(header)  # and no line is read as column names
    # Every column as text, as written: pandas would read "NA", "null" and "" as missing and "007" as 7.
    columns = header or pandas.read_csv(path, nrows=0, encoding=codec, **options).columns
    features = Features({name: Value("string") for name in columns})
    return {**options, "encoding": codec, "features": features, "keep_default_na": False, "na_filter": False}


def json_options(path: Path, encoding: str) -> dict[str, Any]:
    """A JSON document read as records: a list of them, or an object holding one list (`{"data": [...]}`,
    read from that field); objects one after another read as JSON lines."""
    codec = file_codec(path, encoding)
    values = json_values(read_text(path, encoding))
    if len(values) == 1 and isinstance(values[0], dict):
        field = next((key for key, value in values[0].items() if isinstance(value, list)), None)
        if field is not None:
            return {"field": field, "encoding": codec}
    return {"encoding": codec}


def records_of_json(text: str, fmt: str) -> list[dict[str, Any]]:
    """The records of a JSON text as the json builder reads them: JSON lines (values one after another), or
    a json document's list, or the one list an object holds."""
    values = json_values(text)
    if fmt == "jsonl" or len(values) != 1:
        return values
    if isinstance(values[0], list):
        return values[0]
    if isinstance(values[0], dict):
        return next((value for value in values[0].values() if isinstance(value, list)), values)
    return values


def records_dataset(records: list[dict[str, Any]]) -> Dataset:
    """Records as a Dataset with every key any of them has (Dataset.from_list takes the first record's), a key
    whose values mix types (1 and "1") as text, as the json builder reads such a column."""
    keys = dict.fromkeys(key for record in records for key in record)
    columns = {key: [record.get(key) for record in records] for key in keys}
    for key, values in columns.items():
        if len({type(value) for value in values if value is not None}) > 1:
            columns[key] = [as_text(value) for value in values]
    return Dataset.from_dict(columns)


def as_text(value: Any) -> str | None:
    """A JSON value as text: a string as it is, a number or a list as JSON (1 as "1")."""
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def file_codec(path: Path, encoding: str) -> str:
    """The codec that reads a text file: the one its byte-order mark names, else UTF-8 when all of it is UTF-8,
    else `encoding` (the rule read_text follows)."""
    with open_binary(path) as f:
        start = f.read(4)
        for mark, codec in BYTE_ORDER_MARKS:
            if start.startswith(mark):
                return codec
        if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            return "utf-8"  # nothing else to fall back to: no need to read the whole file to decide
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return encoding
    return "utf-8"


def header_line(path: Path, codec: str) -> str:
    with open_binary(path) as f:
        return io.TextIOWrapper(f, encoding=codec, errors="replace", newline="").readline()


def guess_format(path: str | Path) -> str:
    """How to read a file that config.yaml does not describe (one given to evaluation.py or predict.py): parquet
    or arrow by name, else from its first line: jsonl (a whole object on it), json, tsv (a tab in it),
    else csv."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes if suffix.lower() != ".gz"]
    if suffixes and suffixes[-1] in (".parquet", ".arrow", ".feather"):
        return "parquet" if suffixes[-1] == ".parquet" else "arrow"
    with open_binary(Path(path)) as f:
        first = io.TextIOWrapper(f, encoding="utf-8-sig", errors="replace").read(1 << 16).lstrip().partition("\n")[0]
    if first.startswith(("{", "[")):
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else "json"
        except ValueError:
            return "json"  # pretty-printed: one value, or objects one after another
    if "\t" in first:
        return "tsv"
    return "csv"


def csv_delimiter(header: str) -> str:
    """A comma, unless the header line has none and uses `;` (spreadsheet exports in many locales) or a tab."""
    if "," in header or not (";" in header or "\t" in header):
        return ","
    return ";" if header.count(";") >= header.count("\t") else "\t"


def read_examples(
    source: str | Path, cfg: Config, fmt: str | None = None, split: str = "train", revision: str | None = None
) -> Dataset:
    """Questions as {"id", "question", "context", "answers": [{"text", "answer_start"}, ...]}, answers at their
    texts (below). `source` is a nested SQuAD file, or records with the columns of config.yaml (answers as
    {"text": [...], "answer_start": [...]} or SQuAD's list): a json, jsonl, parquet or arrow file, a folder
    written by `Dataset.save_to_disk`, or a hub dataset (`rajpurkar/squad`) whose `split` is read at `revision`.
    `fmt`: config.yaml's train_format or eval_format (squad, json or jsonl); None: found from the file."""
    path = Path(source)
    if not path.is_file():  # a saved dataset or a hub one: records already in Arrow
        examples = record_examples(read_dataset(source, None, cfg.data_encoding, split, revision), source, cfg)
        return located_answers(examples, source)
    guessed = fmt or guess_format(path)
    if fmt is None and guessed in ("csv", "tsv"):  # guess_format reads UTF-8: a UTF-16 json file looks like csv
        guessed = "json"
    # A one-line SQuAD file looks like jsonl to guess_format; a file that config.yaml says is jsonl holds records.
    nested = fmt != "jsonl" and guessed in ("squad", "json", "jsonl")
    document = squad_document(path, cfg.data_encoding) if nested else None
    if document is not None:
        examples = as_examples(list(_squad_examples(document)))
    else:
        examples = file_examples(path, cfg, "json" if guessed == "squad" else guessed)
    return located_answers(examples, path)


def squad_document(path: Path, encoding: str) -> dict[str, Any] | None:
    """The nested SQuAD document (`data` / `paragraphs` / `qas`) that a json file is, or None when it holds
    records. Only its first JSON value is parsed: the first record of a jsonl file."""
    text = read_text(path, encoding).lstrip()
    try:
        first, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} cannot be read as json: {error}; fix the file or its format") from None
    articles = first.get("data") if isinstance(first, dict) else None
    nested = isinstance(articles, list) and any(isinstance(a, dict) and "paragraphs" in a for a in articles)
    return first if nested else None


def _squad_examples(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                yield {
                    "id": str(qa["id"]),
                    "question": qa["question"],
                    "context": paragraph["context"],
                    # SQuAD 2.0 keeps `plausible_answers` apart; an impossible question has none to learn.
                    "answers": [] if qa.get("is_impossible") else _answers(qa["answers"]),
                }


def as_examples(examples: list[dict[str, Any]]) -> Dataset:
    """Examples made here (nested SQuAD, predict.py's questions) as a Dataset. Built from columns, as
    Dataset.from_list would, but also when there are none."""
    columns = {name: [example[name] for example in examples] for name in EXAMPLE_FEATURES}
    return Dataset.from_dict(columns, features=EXAMPLE_FEATURES)


def file_examples(path: Path, cfg: Config, fmt: str) -> Dataset:
    """A file's records as examples: read by the `datasets` builder where it reads them as JSON has them, else
    by the json module (see read_as_written)."""
    if fmt not in ("json", "jsonl", "parquet", "arrow"):
        raise ValueError(
            f"{path}: questions are read from SQuAD json, json or jsonl records, parquet or arrow, not {fmt}; "
            "convert the file, or set train_format/eval_format in config.yaml"
        )
    if fmt in ("parquet", "arrow"):  # typed tables: read as they are
        return record_examples(read_dataset(path, fmt, cfg.data_encoding), path, cfg)
    if file_codec(path, cfg.data_encoding) not in ("utf-8", "utf-8-sig"):
        # The json builder decodes other encodings in chunks that can split a character (UTF-16 over 10 MB).
        return parsed_examples(path, cfg, fmt)
    options = json_options(path, cfg.data_encoding) if fmt == "json" else builder_options(path, fmt, cfg.data_encoding)
    try:
        rows = load_dataset("json", data_files=str(path), split="train", **options)
    except DatasetGenerationError:  # values Arrow cannot put in one column
        return parsed_examples(path, cfg, fmt)
    return record_examples(rows, path, cfg) if read_as_written(rows.features, cfg) else parsed_examples(path, cfg, fmt)


def read_as_written(features: Features, cfg: Config) -> bool:
    """Whether Arrow holds the columns data.py reads as the JSON has them. It does not when it found dates in
    text (a column of ISO dates becomes timestamps), or made an id column of whole numbers and fractions floats
    (id 1 would read as "1.0")."""
    for part, name in record_fields(cfg).items():
        types = list(_value_types(features.get(name))) if name else []
        if any(kind.startswith(TEMPORAL_TYPES) for kind in types):
            return False
        if part == "id" and any(kind.startswith("float") for kind in types):
            return False
    return True


def _value_types(feature: Any) -> Iterator[str]:
    """The Arrow types of a feature's values, inside its lists and structs."""
    if isinstance(feature, dict):
        for inner in feature.values():
            yield from _value_types(inner)
    elif isinstance(feature, Value):
        yield feature.dtype
    elif hasattr(feature, "feature"):  # List, LargeList
        yield from _value_types(feature.feature)


def json_records(path: Path, encoding: str, fmt: str) -> list[dict[str, Any]]:
    """A json or jsonl file's records, by the json module: a list of objects, an object that holds the list
    (`{"data": [...]}`), or objects one after another."""
    try:
        values = json_values(read_text(path, encoding))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} cannot be read as {fmt}: {error}; fix the file or its format") from None
    data: Any = values if fmt == "jsonl" or len(values) != 1 else values[0]
    if isinstance(data, dict):
        data = next((value for value in data.values() if isinstance(value, list)), [data])
    if not all(isinstance(record, dict) for record in data):
        raise ValueError(f"{path}: every record must be a JSON object with the fields config.yaml names")
    return data


def parsed_examples(path: Path, cfg: Config, fmt: str) -> Dataset:
    """A json or jsonl file's records as examples, parsed by the json module: for values that Arrow would not
    hold as written."""
    records = json_records(path, cfg.data_encoding, fmt)
    names = list(dict.fromkeys(name for record in records for name in record))
    _check_columns(names, path, cfg)
    columns = {name: [record.get(name) for record in records] for name in names}
    try:
        examples = _record_batch(columns, list(range(len(records))), record_fields(cfg))
    except ValueError as error:  # answers in no layout data.py reads
        raise ValueError(f"{path}: {error}") from None
    return Dataset.from_dict(examples, features=EXAMPLE_FEATURES)


def record_examples(rows: Dataset, source: str | Path, cfg: Config) -> Dataset:
    """Records in Arrow (a file, a saved or a hub dataset) as examples, by Dataset.map."""
    _check_columns(rows.column_names, source, cfg)
    try:
        return rows.map(
            _record_batch,
            batched=True,
            with_indices=True,
            remove_columns=rows.column_names,
            features=EXAMPLE_FEATURES,
            # The fields only, not all of cfg: the cached tokens then outlive changes to other settings.
            fn_kwargs={"fields": record_fields(cfg)},
            desc="Reading questions",
        )
    except ValueError as error:  # answers in no layout data.py reads
        raise ValueError(f"{source}: {error}") from None


def _check_columns(names: list[str], source: str | Path, cfg: Config) -> None:
    for part, name in record_fields(cfg).items():
        if name and name not in names:
            raise ValueError(
                f"{source} has no `{name}` field (config.yaml's {part}_column); its fields are {', '.join(names)}: "
                f"set {part}_column to the one that holds it"
            )


def record_fields(cfg: Config) -> dict[str, str | None]:
    """The record field of each part of a question, as config.yaml names them (id: null for the row number)."""
    return {
        "id": cfg.id_column,
        "question": cfg.question_column,
        "context": cfg.context_column,
        "answers": cfg.answers_column,
    }


def _record_batch(batch: dict[str, list[Any]], indices: list[int], fields: dict[str, Any]) -> dict[str, list[Any]]:
    """A batch of records as examples: the id is the row number (from 1) when there is no id field; a record
    marked is_impossible (SQuAD 2.0 keeps its plausible answers in `answers`) has none."""
    ids = batch[fields["id"]] if fields["id"] else [index + 1 for index in indices]
    impossible = batch.get("is_impossible") or [None] * len(indices)
    answers = [[] if no else _answers(value) for no, value in zip(impossible, batch[fields["answers"]], strict=True)]
    return {
        "id": [str(value) for value in ids],
        "question": batch[fields["question"]],
        "context": batch[fields["context"]],
        "answers": answers,
    }


def _answers(value: Any) -> list[dict[str, Any]]:
    """{"text": [...], "answer_start": [...]} (Hugging Face datasets) or [{"text", "answer_start"}] (SQuAD)."""
    if isinstance(value, list):
        return [{"text": a["text"], "answer_start": a["answer_start"]} for a in value]
    if not isinstance(value, dict):
        raise ValueError(
            'answers must be {"text": [...], "answer_start": [...]} or a list of {"text", "answer_start"}, got '
            f"{str(value)[:60]!r}; set answers_column in config.yaml to the field that holds them"
        )
    texts, starts = value["text"], value["answer_start"]
    if isinstance(texts, str):
        texts, starts = [texts], [starts]
    return [{"text": text, "answer_start": start} for text, start in zip(texts, starts, strict=True)]


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


def located_answers(examples: Dataset, source: str | Path) -> Dataset:
    """The examples with every answer at its text: moved there when its answer_start is off, dropped when the
    context lacks the text; a question left without answers is skipped (it must not train as unanswerable)."""
    if len(examples) == 0:
        raise ValueError(f"{source} holds no questions; check the file (or train_split/eval_split in config.yaml)")
    located = examples.map(_locate_batch, batched=True, desc="Locating answers")
    checks, ids = located["answer_check"][:], located["id"][:]
    repaired = [qid for qid, check in zip(ids, checks, strict=True) if check == "repaired"]
    skipped = [qid for qid, check in zip(ids, checks, strict=True) if check == "skipped"]
    _report_repairs(source, sum(check != "unanswerable" for check in checks), repaired, skipped)
    if skipped:
        located = select(located, [index for index, check in enumerate(checks) if check != "skipped"])
    return located.remove_columns("answer_check")


def _locate_batch(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Each question's answers at their texts, and what that took (`answer_check`): ok, repaired, skipped (no
    answer left) or unanswerable (none to locate)."""
    answers, checks = [], []
    for context, given in zip(batch["context"], batch["answers"], strict=True):
        starts = [answer_start(context, answer["text"], answer["answer_start"]) for answer in given]
        kept = [{"text": a["text"], "answer_start": s} for a, s in zip(given, starts, strict=True) if s is not None]
        answers.append(kept)
        checks.append("unanswerable" if not given else "skipped" if not kept else "ok" if kept == given else "repaired")
    return {"answers": answers, "answer_check": checks}


def _report_repairs(source: str | Path, answered: int, repaired: list[str], skipped: list[str]) -> None:
    bad = repaired + skipped
    if answered and len(bad) > MAX_REPAIR_SHARE * answered:
        raise SettingError(
            f"error: {source}: {len(bad)} of {answered} answered questions (ids {_ids(bad)}) have an answer_start "
            f"that is not at their answer text, too many to repair (at most {MAX_REPAIR_SHARE:.0%}); answer_start "
            "is the 0-based character offset of the answer in its context: fix the offsets"
        )
    notes = {
        "answer_start(s) off repaired to the answer text nearest them": repaired,
        "question(s) skipped, their answer text is not in their context": skipped,
    }
    for what, ids in notes.items():
        if ids:
            logger.warning("%s: %d %s (ids %s)", source, len(ids), what, _ids(ids))


def _ids(ids: list[str], shown: int = 3) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def load_splits(cfg: Config) -> tuple[Dataset, Dataset]:
    """Train and eval questions: eval_file when set, else eval_fraction held out of train_file."""
    train = read_examples(cfg.train_file, cfg, cfg.train_format, cfg.train_split, cfg.dataset_revision)
    if cfg.eval_file:
        evaluation = read_examples(cfg.eval_file, cfg, cfg.eval_format, cfg.eval_split, cfg.dataset_revision)
    else:
        kept, held = train_test_split(range(len(train)), test_size=cfg.eval_fraction, random_state=SPLIT_SEED)
        train, evaluation = select(train, kept), select(train, held)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset: neighbouring questions of a file often share one context."""
    if limit is None or limit >= len(rows):
        return rows
    return select(rows, random.Random(seed).sample(range(len(rows)), limit))


def select(rows: Dataset, indices: Sequence[int]) -> Dataset:
    """The rows at `indices`, in that order. As an array: `datasets` fingerprints a list of millions of
    indices six times slower."""
    return rows.select(numpy.asarray(indices, dtype=numpy.int64))


def tokenizing_processes(rows: int) -> int | None:
    """Processes for Dataset.map: one per ROWS_PER_PROCESS rows, up to the cores (None: this process only)."""
    processes = min(os.cpu_count() or 1, rows // ROWS_PER_PROCESS)
    return processes if processes > 1 else None


def require_rows(rows: Dataset) -> None:
    """Refuse an empty split in one line: Dataset.map adds no columns to an empty dataset, so it would fail later."""
    if not len(rows):
        raise ValueError("no examples to tokenize: the split is empty; check train_file/eval_file in config.yaml")


class TokenizedExamples(torch.utils.data.Dataset):
    """Examples tokenized by Dataset.map, read from its Arrow table; items are unpadded (the collator pads each
    batch). `lengths` holds each example's tokens (the map's `length` column), for batching examples of
    similar length together; `kept_apart` names the map's other columns that are not model inputs."""

    def __init__(self, encoded: Dataset, kept_apart: Sequence[str] = ()) -> None:
        # [:] reads the whole column at once: a lazy Column reads an item at a time, 0.6 ms each.
        self.lengths = encoded.with_format("numpy")["length"][:]
        self.data = encoded.remove_columns(["length", *kept_apart])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.data[index]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        """A batch's examples in one read (the DataLoader asks for a batch at once)."""
        columns = self.data[indices]
        return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def context_offsets(spans: list[tuple[int, int]], sequence_ids: list[int | None]) -> list[tuple[int, int] | None]:
    """Character spans of a window's context tokens; None for the question and the special tokens."""
    return [tuple(span) if sequence == 1 else None for span, sequence in zip(spans, sequence_ids, strict=True)]


def answer_positions(answers: list[dict[str, Any]], offsets: list[tuple[int, int] | None]) -> tuple[int, int]:
    """Token positions of the first answer in one window, or NO_ANSWER twice when it is not wholly inside."""
    if not answers:
        return NO_ANSWER, NO_ANSWER
    start_char = answers[0]["answer_start"]
    end_char = start_char + len(answers[0]["text"])
    context = [index for index, span in enumerate(offsets) if span is not None]
    if offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return NO_ANSWER, NO_ANSWER
    # The first token that ends after the answer starts, and the last one that starts before it ends.
    start = next(index for index in context if offsets[index][1] > start_char)
    end = next(index for index in reversed(context) if offsets[index][0] < end_char)
    return start, end


def question_budget(tokenizer: PreTrainedTokenizerBase, cfg: Config) -> int:
    """max_question_length, checked against the window: the tokenizer steps from one window to the next only
    when the question and the special tokens leave it more than doc_stride tokens of context."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    if not 1 <= cfg.max_question_length < cfg.max_length - specials - cfg.doc_stride:
        raise SettingError(
            f"error: `max_question_length` ({cfg.max_question_length}) + doc_stride ({cfg.doc_stride}) + "
            f"{specials} special tokens must stay below max_length ({cfg.max_length}), so that every window has "
            "more than doc_stride tokens of context; lower max_question_length or doc_stride, or raise max_length"
        )
    return cfg.max_question_length


def clip_questions(questions: list[str], tokenizer: PreTrainedTokenizerBase, budget: int) -> list[str]:
    """Each question cut to at most `budget` tokens, before its first token past the budget.

    Leading spaces go too: they only take window room (some SQuAD questions have many). A cut question is
    tokenized again, and cut again in the rare case it comes out longer (a word cut in two may split into more
    pieces); each cut drops at least a character, so this ends.
    """
    clipped = [question.lstrip() for question in questions]
    pending = list(range(len(clipped)))
    while pending:
        spans = tokenizer([clipped[i] for i in pending], add_special_tokens=False, return_offsets_mapping=True)
        over = [(i, span) for i, span in zip(pending, spans["offset_mapping"], strict=True) if len(span) > budget]
        for i, span in over:
            clipped[i] = clipped[i][: min(span[budget][0], len(clipped[i]) - 1)].rstrip()
        pending = [i for i, _ in over]
    return clipped


def window_encoder(tokenizer: PreTrainedTokenizerBase, cfg: Config) -> Callable[..., dict[str, list[Any]]]:
    """The function Dataset.map cuts a batch of questions into windows with, as run_qa.py of transformers does:
    each window with its answer positions, the index of its question (`example_index`) and its context offsets;
    `question_cut` is true on the first window of a question cut to max_question_length."""
    budget = question_budget(tokenizer, cfg)  # refused here, before any window is cut
    max_length, stride = cfg.max_length, cfg.doc_stride  # the only settings the tokenized cache depends on

    def encode(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        questions = clip_questions(batch["question"], tokenizer, budget)
        encodings = tokenizer(
            questions,
            batch["context"],
            truncation="only_second",  # only the context is cut into windows; the question is whole in each
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        sources = encodings.pop("overflow_to_sample_mapping")  # each window's question, in this batch
        spans = encodings.pop("offset_mapping")
        offsets = [context_offsets(spans[i], encodings.sequence_ids(i)) for i in range(len(spans))]
        positions = [answer_positions(batch["answers"][s], o) for s, o in zip(sources, offsets, strict=True)]
        firsts = [i == 0 or sources[i - 1] != source for i, source in enumerate(sources)]
        encodings["start_positions"] = [start for start, _ in positions]
        encodings["end_positions"] = [end for _, end in positions]
        encodings["example_index"] = [indices[source] for source in sources]
        encodings["offsets"] = offsets
        encodings["length"] = [len(ids) for ids in encodings["input_ids"]]
        cut = [question != asked.lstrip() for question, asked in zip(questions, batch["question"], strict=True)]
        encodings["question_cut"] = [first and cut[s] for s, first in zip(sources, firsts, strict=True)]
        return dict(encodings)

    return encode


class QuestionAnsweringDataset(TokenizedExamples):
    """Tokenized windows of question + context; items are unpadded (the collator pads each batch).

    Tokenized once by `Dataset.map` in batches (a question may become several windows), in several processes for
    big data. Evaluation turns token positions back into answers, so each window keeps, outside the items the model
    sees, the index of its question (`example_ids`) and the character span of each token in the context
    (`offsets`, read from Arrow when asked; None for question and special tokens). `lengths` holds the tokens of
    each window, for batching windows of similar length together.
    """

    def __init__(self, examples: Dataset, tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        self.examples = examples
        windows = examples.map(
            window_encoder(tokenizer, cfg),
            batched=True,
            with_indices=True,
            remove_columns=examples.column_names,
            num_proc=tokenizing_processes(len(examples)),
            desc="Tokenizing",
        )
        # Counted from the windows rather than while cutting: a second run reads them from the cache.
        cut = int(windows.with_format("numpy")["question_cut"][:].sum())
        if cut:
            budget = cfg.max_question_length
            logger.warning(
                "%d of %d questions are over max_question_length (%d tokens): cut", cut, len(examples), budget
            )
        self.example_ids: list[int] = windows["example_index"][:]
        self.offsets = windows["offsets"]
        super().__init__(windows, kept_apart=("question_cut", "example_index", "offsets"))


def build_datasets(
    cfg: Config, tokenizer: PreTrainedTokenizerBase
) -> tuple[QuestionAnsweringDataset, QuestionAnsweringDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return QuestionAnsweringDataset(train_rows, tokenizer, cfg), QuestionAnsweringDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorWithPadding:
    # Lengths that are multiples of 8 use tensor cores well; on a CPU they only add padding.
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
