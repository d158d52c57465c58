"""Data: read the files, split, format each example as the model will see it, tokenize once, batch with padding.

Each conversation is written with the tokenizer's chat template when it has one, else as consecutive
`prompt_template` turns whose responses end with the end-of-text token. The loss is on every assistant turn
(its end-of-turn marker included, so the model learns to stop); system and user tokens get label -100.
Messages after the last assistant turn are dropped: there is no response to learn from them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
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
IGNORE_INDEX = -100  # the label of tokens the loss skips (prompts and padding)
# Message roles as chat templates name them; ShareGPT's `from` values map onto them.
ROLE_NAMES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}

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
    return _subset(train, cfg.max_train_samples, cfg.seed), _subset(evaluation, cfg.max_eval_samples, cfg.seed)


def _subset(items: list[Any], limit: int | None, seed: int) -> list[Any]:
    """A seeded random subset: the first rows of a file are often alike."""
    if limit is None or limit >= len(items):
        return items
    return random.Random(seed).sample(items, limit)


# --- formatting: the text the model sees, as (text, learned) segments ---------------------------------------------


def uses_chat_template(tokenizer: PreTrainedTokenizerBase, cfg: Config) -> bool:
    return cfg.use_chat_template and tokenizer.chat_template is not None


def fill(template: str, **values: str) -> str:
    """`{name}` placeholders filled in one pass: braces elsewhere (JSON in format instructions) and braces inside
    the values stay as they are."""
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), match.group(0)), template)


def render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def system_messages(cfg: Config) -> list[dict[str, str]]:
    return [{"role": "system", "content": cfg.system_prompt}] if cfg.system_prompt else []


def normalize_messages(value: list[dict[str, Any]]) -> list[dict[str, str]]:
    """[{role, content}] with the roles chat templates know, from either message format."""
    messages = []
    for message in value:
        role = ROLE_NAMES[str(message.get("role", message.get("from"))).lower()]
        messages.append({"role": role, "content": str(message.get("content", message.get("value")))})
    return messages


def with_system_prompt(messages: list[dict[str, str]], cfg: Config) -> list[dict[str, str]]:
    """config.yaml's system_prompt, for conversations that bring no system message of their own."""
    if messages and messages[0]["role"] == "system":
        return messages
    return [*system_messages(cfg), *messages]


def through_last_response(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation up to its last assistant turn: later messages have no response to learn from."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    return messages[: last + 1]


def conversation_segments(
    messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase, cfg: Config
) -> list[tuple[str, bool]]:
    """The conversation as (text, learned) segments: assistant turns are learned, the rest is not."""
    messages = with_system_prompt(messages, cfg)
    if uses_chat_template(tokenizer, cfg):
        return template_segments(messages, tokenizer)
    return [plain_turn(message, tokenizer, cfg) for message in messages]


def template_segments(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """Cut the rendered conversation at each assistant turn: rendering the messages before a turn with the
    generation prompt gives where the response starts; rendering through the turn gives where it ends."""
    segments: list[tuple[str, bool]] = []
    done = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:index], generation_prompt=True)
        through = render(tokenizer, messages[: index + 1], generation_prompt=False)
        if not (prompt.startswith(done) and through.startswith(prompt)):
            # Some templates rewrite earlier turns as the conversation grows (e.g. move the system message).
            raise ValueError(
                "the chat template renders a conversation's start differently as it grows, so its assistant turns "
                "cannot be found; set use_chat_template: false to use prompt_template"
            )
        segments += [(prompt[len(done) :], False), (through[len(prompt) :], True)]
        done = through
    return segments


def plain_turn(message: dict[str, str], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> tuple[str, bool]:
    """One message without a chat template: a system paragraph, a prompt_template turn, or a response."""
    if message["role"] == "system":
        return f"{message['content']}\n\n", False
    if message["role"] == "user":
        return fill(cfg.prompt_template, instruction=message["content"]), False
    return message["content"] + tokenizer.eos_token, True


def conversation_prompt(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> str:
    """The text before the next assistant turn of a conversation that ends with a user message."""
    messages = with_system_prompt(messages, cfg)
    if uses_chat_template(tokenizer, cfg):
        return render(tokenizer, messages, generation_prompt=True)
    return "".join(plain_turn(message, tokenizer, cfg)[0] for message in messages)


def row_segments(row: dict[str, Any], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> list[tuple[str, bool]]:
    messages = through_last_response(normalize_messages(row[cfg.messages_column]))
    return conversation_segments(messages, tokenizer, cfg)


# --- tokenization ----------------------------------------------------------------------------------------------------


def encode(
    examples: list[list[tuple[str, bool]]], tokenizer: PreTrainedTokenizerBase, cfg: Config, add_special_tokens: bool
) -> list[dict[str, list[int]]]:
    """Token ids and labels of each example's whole text, tokenized at once (as generation will see it); a token
    is learned when its characters overlap a learned segment, else its label is -100."""
    texts = ["".join(text for text, _ in segments) for segments in examples]
    encodings = tokenizer(
        texts,
        add_special_tokens=add_special_tokens,
        truncation=True,
        max_length=cfg.max_length,
        return_offsets_mapping=True,
    )
    encoded = []
    for segments, ids, offsets in zip(examples, encodings["input_ids"], encodings["offset_mapping"], strict=True):
        spans = learned_spans(segments)
        labels = [
            token if any(start < span_end and end > span_start for span_start, span_end in spans) else IGNORE_INDEX
            for token, (start, end) in zip(ids, offsets, strict=True)
        ]
        encoded.append({"input_ids": ids, "labels": labels})
    return encoded


def learned_spans(segments: list[tuple[str, bool]]) -> list[tuple[int, int]]:
    """Character ranges of the learned segments in the joined text."""
    spans, position = [], 0
    for text, learned in segments:
        if learned:
            spans.append((position, position + len(text)))
        position += len(text)
    return spans


class SupervisedDataset(torch.utils.data.Dataset):
    """Tokenized examples with their labels; items are unpadded (the collator pads each batch)."""

    def __init__(self, rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> None:
        examples = [row_segments(row, tokenizer, cfg) for row in rows]
        # A chat template writes its own special tokens (BOS included); a prompt template needs the tokenizer's.
        encoded = encode(examples, tokenizer, cfg, add_special_tokens=not uses_chat_template(tokenizer, cfg))
        # An example whose prompt alone fills max_length has no response token left to learn from.
        self.examples = [example for example in encoded if any(label != IGNORE_INDEX for label in example["labels"])]
        if len(self.examples) < len(encoded):
            logger.warning(
                "skipped %d of %d examples whose prompt fills max_length=%d; raise max_length to keep them",
                len(encoded) - len(self.examples),
                len(encoded),
                cfg.max_length,
            )

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def lengths(self) -> list[int]:
        """Tokens per example, for batching examples of similar length together."""
        return [len(example["input_ids"]) for example in self.examples]

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.examples[index]


def make_dataset(rows: Sequence[dict[str, Any]], tokenizer: PreTrainedTokenizerBase, cfg: Config) -> SupervisedDataset:
    return SupervisedDataset(rows, tokenizer, cfg)


def build_datasets(cfg: Config, tokenizer: PreTrainedTokenizerBase) -> tuple[SupervisedDataset, SupervisedDataset]:
    train_rows, eval_rows = load_splits(cfg)
    return make_dataset(train_rows, tokenizer, cfg), make_dataset(eval_rows, tokenizer, cfg)


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
