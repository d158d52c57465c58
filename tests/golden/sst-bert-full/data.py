"""Data: read the files, split, tokenize once, and batch with dynamic padding.

Examples are tokenized when the dataset is built, not in the training loop, and padded per batch to the
longest example in it (not to max_length), which is what makes short-text training fast.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out rows, whatever `seed` trains with.
SPLIT_SEED = 0
# The held-out split grows to one row per class only while that holds out at most this share of train_file.
MAX_EVAL_SHARE = 0.25

logger = logging.getLogger(__name__)


# Byte-order marks and the codecs that read them; UTF-32's first, since its little-endian mark starts with UTF-16's.
BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A data file's text: in the encoding its byte-order mark names, else UTF-8 when it is valid UTF-8, else in
    `encoding` (config.yaml's data_encoding: scaffold new found it by the same rule)."""
    data = Path(path).read_bytes()
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


def read_records(path: str | Path, fmt: str | None = None, encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Rows of a data file as dicts. `fmt` says how to read it: config.yaml's train_format or eval_format
    (csv, tsv, json: a list of objects, jsonl), or None to guess from the first line.
    `encoding` reads a file that is not UTF-8 (config.yaml's data_encoding)."""
    text = read_text(path, encoding)
    fmt = fmt or guess_format(path, text)
    if fmt in ("json", "jsonl"):
        values = json_values(text)
        if fmt == "json" and len(values) == 1:
            data = values[0]
            if isinstance(data, dict):  # an object that holds the list of records, e.g. {"data": [...]}
                return next((value for value in data.values() if isinstance(value, list)), [data])
            return data
        return values  # JSON lines, or objects one after another
    # csv's default limit refuses fields over 131,072 characters: long documents are data, not broken files.
    csv.field_size_limit(2**31 - 1)  # the most that every platform's C long holds
    if fmt == "tsv":
        # GLUE-style TSV holds bare quotes inside sentences: quotes are not special there.
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=csv_delimiter(text)))
    formats = "csv, tsv, json or jsonl"
    raise ValueError(f"{path}: unsupported format {fmt!r}; set train_format/eval_format in config.yaml: {formats}")


def guess_format(path: str | Path, text: str) -> str:
    """How to read a file that config.yaml does not describe (one given to evaluate.py or predict.py), from its
    first line: jsonl (a whole object on it), json, tsv (a tab in it), else csv."""
    first = text[: 1 << 16].lstrip().partition("\n")[0]
    if first.startswith(("{", "[")):
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else "json"
        except ValueError:
            return "json"  # pretty-printed: one value, or objects one after another
    if "\t" in first:
        return "tsv"
    return "csv"


def csv_delimiter(text: str) -> str:
    """A comma, unless the header line has none and uses `;` (spreadsheet exports in many locales) or a tab."""
    header = text.partition("\n")[0]
    if "," in header or not (";" in header or "\t" in header):
        return ","
    return ";" if header.count(";") >= header.count("\t") else "\t"


def label_name(value: Any) -> str:
    """A raw label as its class name: integers (also "3" or 3.0) as digits, other values as stripped strings."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    return str(int(number)) if number.is_integer() else str(value).strip()


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval rows: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg.eval_format, cfg.data_encoding)
    else:
        train, evaluation = hold_out(train, cfg)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def hold_out(rows: list[dict[str, Any]], cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """eval_fraction of the rows, stratified by class. sklearn stratifies only with an eval row per class, so a
    small file with many classes holds out one per class while that is at most MAX_EVAL_SHARE of it; a class
    with a single row stays in train. Otherwise the split is random."""
    labels = [label_name(row[cfg.label_column]) for row in rows]
    counts = Counter(labels)
    requested = math.ceil(cfg.eval_fraction * len(rows))  # as sklearn rounds a fractional test_size
    pool = [(row, label) for row, label in zip(rows, labels, strict=True) if counts[label] >= 2]
    classes = sum(1 for count in counts.values() if count >= 2)
    size = max(requested, classes)
    if pool and size <= max(requested, int(MAX_EVAL_SHARE * len(rows))) and size <= len(pool) - classes:
        if size > requested:
            logger.warning("eval: %d rows held out instead of %d, as many as there are classes", size, requested)
        single = [row for row, label in zip(rows, labels, strict=True) if counts[label] == 1]
        if single:
            logger.warning("%d class(es) with a single row stay in train, none in eval", len(single))
        train, evaluation = train_test_split(
            [row for row, _ in pool], test_size=size, random_state=SPLIT_SEED, stratify=[label for _, label in pool]
        )
        return train + single, evaluation
    logger.warning("eval: %d rows held out at random, not stratified: too few rows per class", requested)
    return train_test_split(rows, test_size=requested, random_state=SPLIT_SEED)


def _subset(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset: the first rows of a file are often all one class."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


class TextClassificationDataset(torch.utils.data.Dataset):
    """Tokenized texts with class ids; items are unpadded (the collator pads each batch)."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        tokenizer: PreTrainedTokenizerBase,
        cfg: Config,
        with_labels: bool = True,
    ) -> None:
        texts = [str(row[cfg.text_column] or "") for row in rows]
        self.encodings = tokenizer(texts, truncation=True, max_length=cfg.max_length)
        label2id = {name: index for index, name in enumerate(cfg.labels)}
        self.labels = [label_id(row[cfg.label_column], label2id) for row in rows] if with_labels else None

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    @property
    def lengths(self) -> list[int]:
        """Tokens per example, for batching examples of similar length together."""
        return [len(ids) for ids in self.encodings["input_ids"]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.encodings.items()}
        if self.labels is not None:
            item["labels"] = self.labels[index]
        return item


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
