"""Data: read the files, split by document, tokenize once, and pack the text into max_length blocks.

Continued pre-training: every document is tokenized, ended with the end-of-text token, and the documents are
concatenated and cut into blocks of max_length tokens, so no compute goes to padding. A block can span the end of
one document and the start of the next (the end-of-text token marks the seam); every token is learned.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out rows, whatever `seed` trains with.
SPLIT_SEED = 0
IGNORE_INDEX = -100  # the label of tokens the loss skips (padding)


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
    (txt: a `text` per document, csv, tsv, json: a list of objects, jsonl), or None to guess from the first line.
    `encoding` reads a file that is not UTF-8 (config.yaml's data_encoding)."""
    text = read_text(path, encoding)
    fmt = fmt or guess_format(path, text)
    if fmt == "txt":
        return [{"text": document} for document in split_documents(text)]
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
    formats = "txt, csv, tsv, json or jsonl"
    raise ValueError(f"{path}: unsupported format {fmt!r}; set train_format/eval_format in config.yaml: {formats}")


def guess_format(path: str | Path, text: str) -> str:
    """How to read a file that config.yaml does not describe (one given to evaluate.py or predict.py), from its
    first line: jsonl (a whole object on it), json, tsv (a tab in it), txt (a .txt file), else csv."""
    first = text[: 1 << 16].lstrip().partition("\n")[0]
    if first.startswith(("{", "[")):
        try:
            return "jsonl" if isinstance(json.loads(first), dict) else "json"
        except ValueError:
            return "json"  # pretty-printed: one value, or objects one after another
    if "\t" in first:
        return "tsv"
    if Path(path).suffix.lower() == ".txt":
        return "txt"
    return "csv"


def csv_delimiter(text: str) -> str:
    """A comma, unless the header line has none and uses `;` (spreadsheet exports in many locales) or a tab."""
    header = text.partition("\n")[0]
    if "," in header or not (";" in header or "\t" in header):
        return ","
    return ";" if header.count(";") >= header.count("\t") else "\t"


def split_documents(text: str) -> list[str]:
    """Blank lines separate documents (line breaks inside one are kept); text without any blank line holds one
    document per line."""
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if any(not line.strip() for line in lines[:-1]):
        documents = [block.strip("\n") for block in re.split(r"\n\s*\n", text)]
    else:
        documents = lines
    return [document for document in documents if document.strip()]


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval rows: eval_file when set, else a random eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg.eval_format, cfg.data_encoding)
    else:
        shuffled = random.Random(SPLIT_SEED).sample(train, len(train))
        held_out = max(1, round(cfg.eval_fraction * len(train)))
        train, evaluation = shuffled[held_out:], shuffled[:held_out]
    # max_train_samples and max_eval_samples count blocks, so they apply after packing.
    return train, evaluation


def _subset(items: list[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded random subset: the first rows of a file are often alike."""
    if limit is None or limit >= len(items):
        return items
    return random.Random(seed).sample(items, limit)


class PackedTextDataset(torch.utils.data.Dataset):
    """Blocks of max_length tokens cut from the concatenated documents; items are unpadded (only the last block
    can be shorter than max_length)."""

    def __init__(
        self, rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config, limit: int | None
    ) -> None:
        texts = [str(row[cfg.text_column] or "") for row in rows]
        stream: list[int] = []
        for ids in tokenizer(texts)["input_ids"]:
            # The end-of-text token between documents tells the model where one ends and the next begins.
            stream += [*ids, tokenizer.eos_token_id]
        blocks = [stream[start : start + cfg.max_length] for start in range(0, len(stream), cfg.max_length)]
        self.blocks = _subset(blocks, limit, cfg.seed)

    def __len__(self) -> int:
        return len(self.blocks)

    @property
    def lengths(self) -> list[int]:
        """Tokens per block, for batching blocks of similar length together."""
        return [len(block) for block in self.blocks]

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        # The model shifts the labels itself: token t is predicted from the tokens before it.
        return {"input_ids": self.blocks[index], "labels": self.blocks[index]}


def make_dataset(
    rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config, limit: int | None = None
) -> PackedTextDataset:
    return PackedTextDataset(rows, tokenizer, cfg, limit)


def build_datasets(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> tuple[PackedTextDataset, PackedTextDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return (
        make_dataset(train_rows, tokenizer, cfg, cfg.max_train_samples),
        make_dataset(eval_rows, tokenizer, cfg, cfg.max_eval_samples),
    )


class Collator:
    """Pads a batch to its longest item on the right: input_ids with the pad token, labels with -100 (so padding
    is never learned, even where the pad token is the end-of-text token), and an attention_mask of 0 there."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, items: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        length = max(len(item["input_ids"]) for item in items)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = torch.full((len(items), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            size = len(item["input_ids"])
            input_ids[row, :size] = torch.tensor(item["input_ids"])
            labels[row, :size] = torch.tensor(item["labels"])
            attention_mask[row, :size] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> Collator:
    # Lengths that are multiples of 8 use tensor cores well; on a CPU they only add padding.
    return Collator(tokenizer.pad_token_id, pad_to_multiple_of=8 if on_gpu else None)
