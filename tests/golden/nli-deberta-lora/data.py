"""Data: read the files, split, tokenize once, and batch with dynamic padding.

Examples are tokenized when the dataset is built, not in the training loop, and padded per batch to the
longest example in it (not to max_length), which is what makes short-text training fast.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out rows, whatever `seed` trains with.
SPLIT_SEED = 0


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a csv, tsv, json (a list of objects) or jsonl file, as dicts."""
    path = Path(path)
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8-sig", newline="") as f:
        if suffix == ".tsv":
            # GLUE-style TSV holds bare quotes inside sentences: quotes are not special there.
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        if suffix == ".csv":
            return list(csv.DictReader(f, dialect=_csv_dialect(f)))
        if suffix in (".jsonl", ".ndjson"):
            return [json.loads(line) for line in f if line.strip()]
        if suffix == ".json":
            data = json.load(f)
            # Also accept an object that holds the list of records, e.g. {"data": [...]}.
            return next(v for v in data.values() if isinstance(v, list)) if isinstance(data, dict) else data
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv, .tsv, .json or .jsonl")


def _csv_dialect(f: Any) -> Any:
    header = f.readline()
    f.seek(0)
    if "," not in header and (";" in header or "\t" in header):
        return csv.Sniffer().sniff(header, delimiters=";\t")
    return csv.excel


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
    train = read_records(cfg.train_file)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file)
    else:
        labels = [label_name(r[cfg.label_column]) for r in train]
        # Stratify when every class can give at least one row to each side.
        counts = {label: labels.count(label) for label in set(labels)}
        stratify = labels if min(counts.values()) >= 2 else None
        train, evaluation = train_test_split(
            train, test_size=cfg.eval_fraction, random_state=SPLIT_SEED, stratify=stratify
        )
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset: the first rows of a file are often all one class."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


class TextClassificationDataset(torch.utils.data.Dataset):
    """Tokenized text pairs with class ids; items are unpadded (the collator pads each batch)."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        tokenizer: PreTrainedTokenizerBase,
        cfg: Config,
        with_labels: bool = True,
    ) -> None:
        texts = [str(row[cfg.text_column] or "") for row in rows]
        pairs = [str(row[cfg.text_pair_column] or "") for row in rows]
        # Truncation trims the longer text of each pair first.
        self.encodings = tokenizer(texts, pairs, truncation=True, max_length=cfg.max_length)
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
