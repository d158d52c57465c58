"""Data: read tagged sentences, split, tokenize once with the tags aligned to sub-words, and pad per batch.

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
CONLL_SUFFIXES = (".conll", ".bio", ".iob", ".txt")
CONLL_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators: not sentences


def read_records(path: str | Path, cfg: Config) -> list[dict[str, Any]]:
    """Sentences of a CoNLL file, or the records of a json (a list of objects) or jsonl file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CONLL_SUFFIXES:
        return read_conll(path, cfg)
    with path.open(encoding="utf-8-sig") as f:
        if suffix in (".jsonl", ".ndjson"):
            return [json.loads(line) for line in f if line.strip()]
        if suffix == ".json":
            data = json.load(f)
            # Also accept an object that holds the list of records, e.g. {"data": [...]}.
            return next(v for v in data.values() if isinstance(v, list)) if isinstance(data, dict) else data
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use CoNLL text (.conll, .txt), .json or .jsonl")


def read_conll(path: Path, cfg: Config) -> list[dict[str, Any]]:
    """`token ... TAG` lines (the tag is the last column), a blank line after each sentence."""
    sentences, tokens, tags = [], [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines() + [""]:
        fields = line.split()
        if fields and fields[0] != CONLL_DOCSTART:
            tokens.append(fields[0])
            tags.append(fields[-1])
        elif tokens:
            sentences.append({cfg.tokens_column: tokens, cfg.tags_column: tags})
            tokens, tags = [], []
    return sentences


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval sentences: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg)
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
        words = [[str(token) for token in row[cfg.tokens_column]] for row in rows]
        self.encodings = tokenizer(words, is_split_into_words=True, truncation=True, max_length=cfg.max_length)
        label2id = {name: index for index, name in enumerate(cfg.labels)}
        self.labels = [
            align_labels(self.encodings.word_ids(i), tag_ids(row[cfg.tags_column], label2id))
            for i, row in enumerate(rows)
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
