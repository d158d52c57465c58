"""Data: read the data with Hugging Face `datasets`, split, tokenize once, and batch with dynamic padding.

Files are read into Arrow tables that are memory-mapped from the datasets cache, so a file of millions of rows
need not fit in memory, and tokenized once with `Dataset.map` (cached there too: a second run starts at once).
Examples are padded per batch to the longest example in it (not to max_length), which is what makes short-text
training fast.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy
import pandas
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config, SettingError, is_hub_id

# Fixed so that every run evaluates on the same held-out rows, whatever `seed` trains with.
SPLIT_SEED = 0
# The held-out split grows to one row per class only while that holds out at most this share of train_file.
MAX_EVAL_SHARE = 0.25
# Rows per tokenizing process: below this, starting processes costs more than it saves.
ROWS_PER_PROCESS = 100_000

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


def read_records(
    path: str | Path,
    fmt: str | None = None,
    encoding: str = "utf-8",
    split: str = "train",
    revision: str | None = None,
    header: Sequence[str] | None = None,
) -> Dataset:
    """The rows of a data file (or of a saved dataset's or a hub dataset's `split`, at `revision`), as
    read_dataset reads them: for evaluation.py and predict.py, which take data of the user's."""
    return read_dataset(path, fmt, encoding, split, revision, header)


def label_name(value: Any) -> str:
    """A raw label as its class name: integers (also "3" or 3.0) as digits, other values as stripped strings."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    return str(int(number)) if number.is_integer() else str(value).strip()


def load_splits(cfg: Config) -> tuple[Dataset, Dataset]:
    """Train and eval rows: eval_file when set, else eval_fraction held out of train_file."""
    # config.yaml's `header` names the columns of files without a header row (null: their first row does).
    train = read_dataset(
        cfg.train_file, cfg.train_format, cfg.data_encoding, cfg.train_split, cfg.dataset_revision, cfg.header
    )
    if cfg.eval_file:
        evaluation = read_dataset(
            cfg.eval_file, cfg.eval_format, cfg.data_encoding, cfg.eval_split, cfg.dataset_revision, cfg.header
        )
    else:
        train, evaluation = hold_out(train, cfg)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def hold_out(rows: Dataset, cfg: Config) -> tuple[Dataset, Dataset]:
    """eval_fraction of the rows, stratified by class. sklearn stratifies only with an eval row per class, so a
    small file with many classes holds out one per class while that is at most MAX_EVAL_SHARE of it; a class
    with a single row stays in train. Otherwise the split is random."""
    labels = [label_name(value) for value in class_names(rows[cfg.label_column][:], rows.features[cfg.label_column])]
    counts = Counter(labels)
    requested = math.ceil(cfg.eval_fraction * len(rows))  # as sklearn rounds a fractional test_size
    pool = [index for index, label in enumerate(labels) if counts[label] >= 2]
    classes = sum(1 for count in counts.values() if count >= 2)
    size = max(requested, classes)
    if pool and size <= max(requested, int(MAX_EVAL_SHARE * len(rows))) and size <= len(pool) - classes:
        if size > requested:
            logger.warning("eval: %d rows held out instead of %d, as many as there are classes", size, requested)
        single = [index for index, label in enumerate(labels) if counts[label] == 1]
        if single:
            logger.warning("%d class(es) with a single row stay in train, none in eval", len(single))
        kept, held = train_test_split(
            pool, test_size=size, random_state=SPLIT_SEED, stratify=[labels[index] for index in pool]
        )
        return select(rows, kept + single), select(rows, held)
    logger.warning("eval: %d rows held out at random, not stratified: too few rows per class", requested)
    kept, held = train_test_split(range(len(rows)), test_size=requested, random_state=SPLIT_SEED)
    return select(rows, kept), select(rows, held)


def _subset(rows: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset: the first rows of a file are often all one class."""
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


def class_names(values: list[Any], feature: Any) -> list[Any]:
    """A label column's values, class names where the dataset stores classes as ids (a hub dataset's
    ClassLabel: 0 is `negative` in stanfordnlp/sst2; -1, an unlabelled row, is None)."""
    if isinstance(feature, ClassLabel):
        return [feature.int2str(value) if value is not None and value >= 0 else None for value in values]
    return list(values)


class TextClassificationDataset(TokenizedExamples):
    """Tokenized texts with class ids; items are unpadded (the collator pads each batch).

    Tokenized once by `Dataset.map` in batches, in several processes for big data; `lengths` holds the tokens of
    each example, for batching examples of similar length together."""

    def __init__(
        self, rows: Dataset, tokenizer: PreTrainedTokenizerBase, cfg: Config, with_labels: bool = True
    ) -> None:
        label2id = {name: index for index, name in enumerate(cfg.labels)}
        feature = rows.features.get(cfg.label_column)

        # The settings tokenizing reads, taken out of cfg: map's cache key hashes what encode refers to, so a
        # change to learning_rate or output_dir must not reach it (the tokens would be computed again).
        text_column, max_length, label_column = cfg.text_column, cfg.max_length, cfg.label_column

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            texts = [text_of(value) for value in batch[text_column]]
            encodings = tokenizer(texts, truncation=True, max_length=max_length)
            encodings["length"] = [len(ids) for ids in encodings["input_ids"]]
            if with_labels:
                values = class_names(batch[label_column], feature)
                encodings["labels"] = [label_id(value, label2id) for value in values]
            return dict(encodings)

        require_rows(rows)
        encoded = rows.map(
            encode,
            batched=True,
            remove_columns=rows.column_names,
            num_proc=tokenizing_processes(len(rows)),
            desc="Tokenizing",
        )
        super().__init__(encoded)


def text_of(value: Any) -> str:
    """A text cell as text: an empty cell (None) as ""."""
    return "" if value is None else str(value)


def label_id(value: Any, label2id: dict[str, int]) -> int:
    name = label_name(value)
    if name not in label2id:
        raise ValueError(f"label {name!r} is not in config.yaml `labels` {list(label2id)}; add it there")
    return label2id[name]


def build_datasets(
    cfg: Config, tokenizer: PreTrainedTokenizerBase
) -> tuple[TextClassificationDataset, TextClassificationDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return TextClassificationDataset(train_rows, tokenizer, cfg), TextClassificationDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorWithPadding:
    # Lengths that are multiples of 8 use tensor cores well; on a CPU they only add padding.
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
