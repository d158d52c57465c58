"""The data's lengths in the model's own tokens, where its tokenizer.json is on disk (a local model folder, or the
hub cache of an earlier download): counted on the probe's sample of rows with the `tokenizers` library, which
loads in a tenth of a second where transformers takes seconds. max_length and the data report then come from
tokens; without the file (or the library: scaffolder's `train` extra), they are estimated from words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder.model_files import model_file
from scaffolder.probes import DataSummary

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# How a sampled row's input texts become one model input, by task: a text pair (or question and context) as
# the model's pair encoding, words already split (token classification), or the texts joined by spaces.
PAIR, WORDS, JOINED = "pair", "words", "joined"
INPUT_ENCODING = {"text-classification": PAIR, "question-answering": PAIR, "token-classification": WORDS}


@dataclass(frozen=True)
class TokenCounts:
    tokenizer: Path  # the tokenizer.json counted with
    inputs: tuple[int, ...]  # each sampled row's model input, special tokens included
    targets: tuple[int, ...]  # each sampled row's target (seq2seq, generation); empty for tasks without


def count(model: str, task: str, summary: DataSummary) -> TokenCounts | None:
    """The sampled rows of `summary` in tokens of `model`'s tokenizer; None when it is not on disk."""
    path = model_file(model, "tokenizer.json")
    tokenizer = _load(path) if path and summary.sample else None
    if tokenizer is None or path is None:
        return None
    how = INPUT_ENCODING.get(task, JOINED)
    inputs = tokenizer.encode_batch([_input(texts, how) for texts, _ in summary.sample], is_pretokenized=how == WORDS)
    targets = [" ".join(texts) for _, texts in summary.sample if texts]
    return TokenCounts(
        tokenizer=path,
        inputs=tuple(len(encoding.ids) for encoding in inputs),
        targets=tuple(len(encoding.ids) for encoding in tokenizer.encode_batch(targets)) if targets else (),
    )


def p95(values: tuple[int, ...]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0


def _input(texts: tuple[str, ...], how: str) -> Any:
    if how == WORDS:
        return list(texts)
    if how == PAIR and len(texts) >= 2:
        return (texts[0], texts[1])
    return " ".join(texts)


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Tokenizer | None:
    try:
        from tokenizers import Tokenizer
    except ImportError:  # the CLI without the train extra: lengths stay in words
        return None
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception:  # tokenizers raises a bare Exception for a file it cannot parse: lengths stay in words
        return None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer
