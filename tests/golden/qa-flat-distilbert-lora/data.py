"""Data: read questions, split, cut each question + context into windows once, and pad per batch.

A context longer than max_length is read in overlapping windows (doc_stride tokens shared), each its own
training example ("feature"). A window is trained to point at the answer's first and last token, or at the
first token ([CLS] / <s>) when the question has no answer or the answer is not wholly inside the window.
Every window holds the whole question, so a question is cut to max_question_length tokens first.

An answer_start that misses its answer text (a few in files such as CMRC 2018: some characters off, or -1) is
moved to the occurrence of the text nearest it; a question whose context lacks its answer text is skipped.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from config import Config, SettingError

# Fixed so that every run evaluates on the same held-out questions, whatever `seed` trains with.
SPLIT_SEED = 0
NO_ANSWER = 0  # the token a window points at for "no answer here": the first, [CLS] / <s>
# Above this share of the answered questions, answer_starts that miss their answer text are refused rather than
# repaired: that many suggests offsets counted in something else (bytes, another version of the contexts), where
# the nearest occurrence of the text would be a guess. scaffold new refused such a file the same way.
MAX_REPAIR_SHARE = 0.05

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


def read_examples(path: str | Path, cfg: Config, fmt: str | None = None) -> list[dict[str, Any]]:
    """Questions as {"id", "question", "context", "answers": [{"text", "answer_start"}, ...]}, from a nested
    SQuAD file or from json/jsonl records with the columns of config.yaml; answers at their texts (below).
    `fmt`: config.yaml's train_format or eval_format (squad, json or jsonl); None reads a lone value as json."""
    path = Path(path)
    values = json_values(read_text(path, cfg.data_encoding))
    data: Any = values if fmt == "jsonl" or len(values) != 1 else values[0]
    if isinstance(data, dict) and any("paragraphs" in article for article in data.get("data", [])):
        examples = list(_squad_examples(data))
    else:
        if isinstance(data, dict):  # an object that holds the list of records, e.g. {"data": [...]}
            data = next(value for value in data.values() if isinstance(value, list))
        examples = [_record_example(record, row, cfg) for row, record in enumerate(data, start=1)]
    return located_answers(examples, path)


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


def answer_start(context: str, text: str, given: int) -> int | None:
    """`given` when the answer text is there, else the start of the occurrence of the text nearest it (the
    earlier of two as near); None when the context does not hold the text."""
    if given >= 0 and context.startswith(text, given):
        return given
    nearest = None
    found = context.find(text)
    while found != -1:
        if nearest is None or abs(found - given) < abs(nearest - given):
            nearest = found
        found = context.find(text, found + 1)
    return nearest


def located_answers(examples: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The examples with every answer at its text: moved there when its answer_start is off, dropped when the
    context lacks the text; a question left without answers is skipped (it must not train as unanswerable)."""
    kept: list[dict[str, Any]] = []
    repaired: list[str] = []
    skipped: list[str] = []
    answered = 0
    for example in examples:
        if not example["answers"]:
            kept.append(example)
            continue
        answered += 1
        context = example["context"]
        located = [
            {"text": answer["text"], "answer_start": answer_start(context, answer["text"], answer["answer_start"])}
            for answer in example["answers"]
        ]
        answers = [answer for answer in located if answer["answer_start"] is not None]
        if not answers:
            skipped.append(example["id"])
            continue
        if answers != example["answers"]:
            repaired.append(example["id"])
        kept.append({**example, "answers": answers})
    _report_repairs(path, answered, repaired, skipped)
    return kept


def _report_repairs(path: Path, answered: int, repaired: list[str], skipped: list[str]) -> None:
    bad = repaired + skipped
    if answered and len(bad) > MAX_REPAIR_SHARE * answered:
        raise SettingError(
            f"error: {path}: {len(bad)} of {answered} answered questions (ids {_ids(bad)}) have an answer_start "
            f"that is not at their answer text, too many to repair (at most {MAX_REPAIR_SHARE:.0%}); answer_start "
            "is the 0-based character offset of the answer in its context: fix the offsets"
        )
    notes = {
        "answer_start(s) off repaired to the answer text nearest them": repaired,
        "question(s) skipped, their answer text is not in their context": skipped,
    }
    for what, ids in notes.items():
        if ids:
            logger.warning("%s: %d %s (ids %s)", path, len(ids), what, _ids(ids))


def _ids(ids: list[str], shown: int = 3) -> str:
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def load_splits(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train and eval questions: eval_file when set, else eval_fraction held out of train_file."""
    train = read_examples(cfg.train_file, cfg, cfg.train_format)
    if cfg.eval_file:
        evaluation = read_examples(cfg.eval_file, cfg, cfg.eval_format)
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


def question_budget(tokenizer: PreTrainedTokenizerBase, cfg: Config) -> int:
    """max_question_length, checked against the window: the tokenizer steps from one window to the next only
    when the question and the special tokens leave it more than doc_stride tokens of context."""
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    if not 1 <= cfg.max_question_length < cfg.max_length - specials - cfg.doc_stride:
        raise SettingError(
            f"error: `max_question_length` ({cfg.max_question_length}) + doc_stride ({cfg.doc_stride}) + "
            f"{specials} special tokens must stay below max_length ({cfg.max_length}), so that every window has "
            "more than doc_stride tokens of context; lower max_question_length or doc_stride, or raise max_length"
        )
    return cfg.max_question_length


def clip_questions(questions: list[str], tokenizer: PreTrainedTokenizerBase, budget: int) -> list[str]:
    """Each question cut to at most `budget` tokens, before its first token past the budget.

    Leading spaces go too: they only take window room (some SQuAD questions have many). A cut question is
    tokenized again, and cut again in the rare case it comes out longer (a word cut in two may split into more
    pieces); each cut drops at least a character, so this ends.
    """
    clipped = [question.lstrip() for question in questions]
    pending = list(range(len(clipped)))
    while pending:
        spans = tokenizer([clipped[i] for i in pending], add_special_tokens=False, return_offsets_mapping=True)
        over = [(i, span) for i, span in zip(pending, spans["offset_mapping"], strict=True) if len(span) > budget]
        for i, span in over:
            clipped[i] = clipped[i][: min(span[budget][0], len(clipped[i]) - 1)].rstrip()
        pending = [i for i, _ in over]
    cut = sum(clip != question.lstrip() for clip, question in zip(clipped, questions, strict=True))
    if cut:
        logger.warning("%d of %d questions are over max_question_length (%d tokens): cut", cut, len(questions), budget)
    return clipped


class QuestionAnsweringDataset(torch.utils.data.Dataset):
    """Tokenized windows of question + context; items are unpadded (the collator pads each batch).

    Evaluation turns token positions back into answers, so each window keeps, outside the batches the model
    sees, the index of its question (`example_ids`) and the character span of each token in the context
    (`offsets`; None for question, special and padding tokens).
    """

    def __init__(self, examples: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        self.examples = list(examples)
        questions = [example["question"] for example in self.examples]
        self.encodings = tokenizer(
            clip_questions(questions, tokenizer, question_budget(tokenizer, cfg)),
            [example["context"] for example in self.examples],
            truncation="only_second",  # only the context is cut into windows; the question is whole in each
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
