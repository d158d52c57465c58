"""Data: read tagged sentences, split, tokenize once with the tags aligned to sub-words, and pad per batch.

The data is CoNLL text: a `token ... TAG` line per token and a blank line between sentences. The columns
(config.yaml's conll_token_column and conll_tag_column, counted from 1; -1 is the last) split at tabs when a
line has them, else at whitespace. `-DOCSTART-` lines end a sentence, and `#` comment lines before a sentence
(GermEval 2014's source lines, CoNLL-U's `# sent_id`) are skipped.

The sentences become a Hugging Face `datasets.Dataset` and are tokenized once with `Dataset.map`, in several
processes for big data. A word the tokenizer splits into several sub-words is labelled once, on its first
sub-word; the other sub-words and the special tokens get IGNORE, which the loss and the metrics skip. So every
word counts once, however many pieces it has.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy
import torch
from datasets import Dataset, Features, Value
from sklearn.model_selection import train_test_split
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out sentences, whatever `seed` trains with.
SPLIT_SEED = 0
IGNORE = -100  # the label of positions the loss skips (PyTorch's cross_entropy ignore_index)
# Sentences per tokenizing process: below this, starting processes costs more than it saves.
ROWS_PER_PROCESS = 100_000
CONLL_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators: not sentences
# The sentences our reader makes: a token list and a tag name per token.
SENTENCE_FEATURES = Features({"tokens": [Value("string")], "tags": [Value("string")]})


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


def read_records(path: str | Path, cfg: Config, fmt: str | None = None) -> Dataset:
    """Sentences of a CoNLL file as {"tokens": [...], "tags": [...]}; `fmt` (train_format) is conll. No
    `datasets` builder reads CoNLL text: read here, held in memory as the file's text is."""
    token, tag = column_index(cfg.conll_token_column), column_index(cfg.conll_tag_column)
    text = read_text(path, cfg.data_encoding).replace("\r\n", "\n").replace("\r", "\n")
    sentences, tokens, tags = [], [], []
    for line in [*text.split("\n"), ""]:
        line = line.strip()
        if not tokens and (line == "#" or line.startswith(("# ", "#\t"))):
            continue  # a comment before a sentence
        fields = [field.strip() for field in line.split("\t")] if "\t" in line else line.split()
        if fields and fields[0] != CONLL_DOCSTART:
            tokens.append(fields[token])
            tags.append(fields[tag])
        elif tokens:  # a blank line or -DOCSTART- ends the sentence
            sentences.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
    return Dataset.from_list(sentences, features=SENTENCE_FEATURES)


def column_index(column: int) -> int:
    """config.yaml counts columns from 1 (and -1 for the last); Python indexes from 0."""
    return column - 1 if column > 0 else column


def load_splits(cfg: Config) -> tuple[Dataset, Dataset]:
    """Train and eval sentences: eval_file when set, else eval_fraction held out of train_file."""
    train = read_records(cfg.train_file, cfg, cfg.train_format)
    if cfg.eval_file:
        evaluation = read_records(cfg.eval_file, cfg, cfg.eval_format)
    else:
        kept, held = train_test_split(range(len(train)), test_size=cfg.eval_fraction, random_state=SPLIT_SEED)
        train, evaluation = select(train, kept), select(train, held)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset: neighbouring sentences of a file often come from one document."""
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


def tag_ids(tags: Sequence[Any] | None, label2id: dict[str, int]) -> list[int]:
    """Tag names as ids; integer tags are ids already (config.yaml `labels` names them)."""
    if tags is None:
        raise ValueError("a sentence has no tags; training and evaluation.py need one tag per token")
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


class TokenClassificationDataset(TokenizedExamples):
    """Tokenized sentences with aligned labels; items are unpadded (the collator pads each batch).

    Tokenized once by `Dataset.map` in batches, in several processes for big data; `lengths` holds the tokens of
    each sentence, for batching sentences of similar length together."""

    def __init__(self, rows: Dataset, tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        label2id = {name: index for index, name in enumerate(cfg.labels)}
        # Not cfg itself: map's cache key hashes what encode refers to, and a learning_rate change must not
        # tokenize the data again.
        max_length = cfg.max_length

        def encode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
            words = [[str(token) for token in tokens] for tokens in batch["tokens"]]
            encodings = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
            encodings["labels"] = [
                align_labels(encodings.word_ids(i), tag_ids(tags, label2id)) for i, tags in enumerate(batch["tags"])
            ]
            encodings["length"] = [len(ids) for ids in encodings["input_ids"]]
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


def build_datasets(
    cfg: Config, tokenizer: PreTrainedTokenizerBase
) -> tuple[TokenClassificationDataset, TokenClassificationDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return TokenClassificationDataset(train_rows, tokenizer, cfg), TokenClassificationDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorForTokenClassification:
    # Pads the labels with IGNORE as well. Lengths that are multiples of 8 use tensor cores well; on a CPU they
    # only add padding.
    return DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
