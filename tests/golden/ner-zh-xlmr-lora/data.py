"""Data: read tagged sentences, split, tokenize once with the tags aligned to sub-words, and pad per batch.

The data is json or jsonl records with a token list and a tag list (config.yaml's tokens_column, tags_column).

A word the tokenizer splits into several sub-words is labelled once, on its first sub-word; the other
sub-words and the special tokens get IGNORE, which the loss and the metrics skip. So every word counts once,
however many pieces it has.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out sentences, whatever `seed` trains with.
SPLIT_SEED = 0
IGNORE = -100  # the label of positions the loss skips (PyTorch's cross_entropy ignore_index)


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


def json_records(path: str | Path, cfg: Config, fmt: str | None) -> list[dict[str, Any]]:
    """The records of a json file (a list of objects, or an object holding one) or of JSON lines (objects one
    after another). `fmt`: config.yaml's train_format or eval_format, or None to tell from the first line."""
    text = read_text(path, cfg.data_encoding)
    if fmt is None:  # a file given to evaluate.py or predict.py
        first = text.lstrip().partition("\n")[0]
        try:
            fmt = "jsonl" if isinstance(json.loads(first), dict) else "json"
        except ValueError:
            fmt = "json"  # pretty-printed
    values = json_values(text)
    if fmt == "json" and len(values) == 1:
        data = values[0]
        if isinstance(data, dict):  # an object that holds the list of records, e.g. {"data": [...]}
            return next((value for value in data.values() if isinstance(value, list)), [data])
        return data
    return values  # JSON lines, or objects one after another


def read_records(path: str | Path, cfg: Config, fmt: str | None = None) -> list[dict[str, Any]]:
    """Sentences as {"tokens": [...], "tags": [...]} from the records' token and tag lists."""
    return [
        {"tokens": record[cfg.tokens_column], "tags": record.get(cfg.tags_column)}
        for record in json_records(path, cfg, fmt)
    ]


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval sentences: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg, cfg.train_format)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg, cfg.eval_format)
    else:
        train, evaluation = train_test_split(train, test_size=cfg.eval_fraction, random_state=SPLIT_SEED)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset: neighbouring sentences of a file often come from one document."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


def tag_ids(tags: Sequence[Any], label2id: dict[str, int]) -> list[int]:
    """Tag names as ids; integer tags are ids already (config.yaml `labels` names them)."""
    ids = []
    for tag in tags:
        if isinstance(tag, int):
            ids.append(tag)
        elif tag.strip() in label2id:
            ids.append(label2id[tag.strip()])
        else:
            raise ValueError(f"tag {tag!r} is not in config.yaml `labels` {list(label2id)}; add it there")
    return ids


def align_labels(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """One label per sub-word: the word's tag on its first sub-word, IGNORE on the rest and on special tokens."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE if word is None or word == previous else tags[word])
        previous = word
    return labels


class TokenClassificationDataset(torch.utils.data.Dataset):
    """Tokenized sentences with aligned labels; items are unpadded (the collator pads each batch)."""

    def __init__(self, rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        words = [[str(token) for token in row["tokens"]] for row in rows]
        self.encodings = tokenizer(words, is_split_into_words=True, truncation=True, max_length=cfg.max_length)
        label2id = {name: index for index, name in enumerate(cfg.labels)}
        self.labels = [
            align_labels(self.encodings.word_ids(i), tag_ids(row["tags"], label2id)) for i, row in enumerate(rows)
        ]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> list[int]:
        """Tokens per sentence, for batching sentences of similar length together."""
        return [len(ids) for ids in self.encodings["input_ids"]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def build_datasets(
    cfg: Config, tokenizer: PreTrainedTokenizerBase
) -> tuple[TokenClassificationDataset, TokenClassificationDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return TokenClassificationDataset(train_rows, tokenizer, cfg), TokenClassificationDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorForTokenClassification:
    # Pads the labels with IGNORE as well. Lengths that are multiples of 8 use tensor cores well; on a CPU they
    # only add padding.
    return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
