"""Data: read questions, split, cut each question + context into windows once, and pad per batch.

A context longer than max_length is read in overlapping windows (doc_stride tokens shared), each its own
training example ("feature"). A window is trained to point at the answer's first and last token, or at the
first token ([CLS] / <s>) when the question has no answer or the answer is not wholly inside the window.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config

# Fixed so that every run evaluates on the same held-out questions, whatever `seed` trains with.
SPLIT_SEED = 0
NO_ANSWER = 0  # the token a window points at for "no answer here": the first, [CLS] / <s>


def read_examples(path: str | Path, cfg: Config) -> list[dict[str, Any]]:
    """Questions as {"id", "question", "context", "answers": [{"text", "answer_start"}, ...]}, from a nested
    SQuAD file or from json/jsonl records with the columns of config.yaml."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as f:
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            data: Any = [json.loads(line) for line in f if line.strip()]
        else:
            data = json.load(f)
    if isinstance(data, dict) and any("paragraphs" in article for article in data.get("data", [])):
        return list(_squad_examples(data))
    if isinstance(data, dict):  # an object that holds the list of records, e.g. {"data": [...]}
        data = next(value for value in data.values() if isinstance(value, list))
    return [_record_example(record, row, cfg) for row, record in enumerate(data, start=1)]


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


def _record_example(record: dict[str, Any], row: int, cfg: Config) -> dict[str, Any]:
    return {
        "id": str(record[cfg.id_column]) if cfg.id_column else str(row),
        "question": record[cfg.question_column],
        "context": record[cfg.context_column],
        "answers": [] if record.get("is_impossible") else _answers(record[cfg.answers_column]),
    }


def _answers(value: Any) -> list[dict[str, Any]]:
    """{"text": [...], "answer_start": [...]} (Hugging Face datasets) or [{"text", "answer_start"}] (SQuAD)."""
    if isinstance(value, list):
        return [{"text": a["text"], "answer_start": a["answer_start"]} for a in value]
    texts, starts = value["text"], value["answer_start"]
    if isinstance(texts, str):
        texts, starts = [texts], [starts]
    return [{"text": text, "answer_start": start} for text, start in zip(texts, starts, strict=True)]


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval questions: eval_file when set, else eval_fraction held out of train_file."""
    train = read_examples(cfg.train_file, cfg)
    if cfg.eval_file:
        evaluation = read_examples(cfg.eval_file, cfg)
    else:
        train, evaluation = train_test_split(train, test_size=cfg.eval_fraction, random_state=SPLIT_SEED)
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded random subset: neighbouring questions of a file often share one context."""
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


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


class QuestionAnsweringDataset(torch.utils.data.Dataset):
    """Tokenized windows of question + context; items are unpadded (the collator pads each batch).

    Evaluation turns token positions back into answers, so each window keeps, outside the batches the model
    sees, the index of its question (`example_ids`) and the character span of each token in the context
    (`offsets`; None for question, special and padding tokens).
    """

    def __init__(self, examples: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        self.examples = list(examples)
        self.encodings = tokenizer(
            # Leading spaces in a question only waste window room (some SQuAD questions have many).
            [example["question"].lstrip() for example in self.examples],
            [example["context"] for example in self.examples],
            truncation="only_second",  # only the context is cut into windows, never the question
            max_length=cfg.max_length,
            stride=cfg.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        self.example_ids: list[int] = self.encodings.pop("overflow_to_sample_mapping")
        spans = self.encodings.pop("offset_mapping")
        self.offsets = [context_offsets(spans[i], self.encodings.sequence_ids(i)) for i in range(len(spans))]
        self.positions = [
            answer_positions(self.examples[example]["answers"], offsets)
            for example, offsets in zip(self.example_ids, self.offsets, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def lengths(self) -> list[int]:
        """Tokens per window, for batching windows of similar length together."""
        return [len(ids) for ids in self.encodings["input_ids"]]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["start_positions"], item["end_positions"] = self.positions[index]
        return item


def build_datasets(
    cfg: Config, tokenizer: PreTrainedTokenizerBase
) -> tuple[QuestionAnsweringDataset, QuestionAnsweringDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return QuestionAnsweringDataset(train_rows, tokenizer, cfg), QuestionAnsweringDataset(eval_rows, tokenizer, cfg)


def build_collator(tokenizer: PreTrainedTokenizerBase, on_gpu: bool) -> DataCollatorWithPadding:
    # Lengths that are multiples of 8 use tensor cores well; on a CPU they only add padding.
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
