"""Data: read the files, split, tokenize once, and batch with dynamic padding.

Each record holds a `translation` object of language -> text: the model learns to write its `de` text from
its `en` text, prefixed with config.yaml's `source_prefix`.

Inputs and targets are tokenized when the dataset is built, not in the training loop, and padded per batch to
the longest example in it (not to max_length). Padded target positions are -100, which the loss ignores.
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
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

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


def source_texts(rows: Sequence[dict[str, Any]], cfg: Config) -> list[str]:
    """The texts to translate: each record's `source_lang` entry."""
    return [str(row[cfg.translation_column][cfg.source_lang]) for row in rows]


def target_texts(rows: Sequence[dict[str, Any]], cfg: Config) -> list[str]:
    """The reference translations: each record's `target_lang` entry."""
    return [str(row[cfg.translation_column][cfg.target_lang]) for row in rows]


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval rows: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file)
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
