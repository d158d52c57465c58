"""Data: read the files, split, tokenize once, and batch with dynamic padding.

Each row holds a document (`dialogue`) and its reference summary (`summary`): the model learns to
write the summary from the document, which is prefixed with config.yaml's `source_prefix`.

Inputs and targets are tokenized when the dataset is built, not in the training loop, and padded per batch to
the longest example in it (not to max_length). Padded target positions are -100, which the loss ignores.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out rows, whatever `seed` trains with.
SPLIT_SEED = 0


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


def source_texts(rows: Sequence[dict[str, Any]], cfg: Config) -> list[str]:
    """The documents to summarize."""
    return [str(row[cfg.text_column]) for row in rows]


def target_texts(rows: Sequence[dict[str, Any]], cfg: Config) -> list[str]:
    """The reference summaries."""
    return [str(row[cfg.summary_column]) for row in rows]


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval rows: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg.eval_format, cfg.data_encoding)
    else:
        train, evaluation = train_test_split(train, test_size=cfg.eval_fraction, random_state=SPLIT_SEED)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset: the first rows of a file are often alike."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


class Seq2SeqDataset(torch.utils.data.Dataset):
    """Tokenized inputs with their tokenized targets as `labels`; items are unpadded (the collator pads).

    Evaluation scores generated text against `references`, the target texts as written, rather than against
    the labels decoded back (truncated, and normalised by the tokenizer); it decodes with `tokenizer`.
    """

    def __init__(self, rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        self.tokenizer = tokenizer
        self.references = target_texts(rows, cfg)
        sources = [cfg.source_prefix + text for text in source_texts(rows, cfg)]
        self.encodings = tokenizer(sources, truncation=True, max_length=cfg.max_length)
        # text_target= tokenizes with the target side's settings (Marian models have a target vocabulary).
        targets = tokenizer(text_target=self.references, truncation=True, max_length=cfg.max_target_length)
        self.encodings["labels"] = targets["input_ids"]

    def __len__(self) -> int:
        return len(self.encodings["input_ids"])

    @property
    def lengths(self) -> list[int]:
        """Input tokens per example, for batching examples of similar length together."""
        return [len(ids) for ids in self.encodings["input_ids"]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {key: values[index] for key, values in self.encodings.items()}


def build_datasets(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> tuple[Seq2SeqDataset, Seq2SeqDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return Seq2SeqDataset(train_rows, tokenizer, cfg), Seq2SeqDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorForSeq2Seq:
    # Inputs are padded with the pad token, labels with -100. No model is passed: the model itself builds its
    # decoder inputs from the labels (shifted right, -100 read as padding).
    # Lengths that are multiples of 8 use tensor cores well; on a CPU they only add padding.
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100, pad_to_multiple_of=8 if on_gpu else None)
