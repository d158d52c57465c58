"""Look at the data: one probe module per task (named in the task table) decides the columns, labels and data
layout the spec left open, and summarizes each file (rows, classes, text lengths, script).

A probe module defines `probe(spec) -> Probed`. It reads files through `readers`, reports every problem as a
`DataError` that names the file and the fix, and uses the standard library only: the CLI must stay light.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder.probes.readers import data_encoding
from scaffolder.probes.rows import RowIndex
from scaffolder.tasks import TASKS

if TYPE_CHECKING:
    from scaffolder.spec import ProjectSpec


@dataclass(frozen=True)
class DataSummary:
    path: Path
    format: str  # how the file is read, found from its content: csv, tsv, json, jsonl, conll, txt (or squad)
    fields: tuple[str, ...]  # the record's keys (a csv header)
    num_rows: int
    words_p95: int  # 95th percentile of words in a model input (both texts of a pair, question + context, ...)
    target_words_p95: int = 0  # the same for a generated target (summary, translation, response); 0 if none
    label_counts: dict[str, int] = field(default_factory=dict)  # classes or tags; empty for tasks without
    non_latin_share: float = 0.0  # share of letters outside Latin script in the sampled texts
    # Rows by the word count of their model input (and of their target): the data report's lengths.
    input_words: dict[int, int] = field(default_factory=dict)
    target_words: dict[int, int] = field(default_factory=dict)
    # Every row's input hashed (duplicates, conflicting labels, empty rows; compared across files by the data
    # report); None for a summary made without one.
    index: RowIndex | None = field(default=None, compare=False, repr=False)
    encoding: str = "utf-8"  # the file's text encoding: utf-8, utf-16, utf-32 or a legacy one (gb18030, cp1252)
    source: str = ""  # where a hub dataset's split came from (`stanfordnlp/sst2 train`); "" for a user's file
    # A seeded random sample of rows as (input texts, target texts), to count with the model's tokenizer.
    sample: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Probed:
    updates: dict[str, Any]  # spec fields the data decided (columns, labels, data_layout, ...)
    train: DataSummary
    eval: DataSummary | None
    description: str  # one line for the user: what is read as what
    # The model to use when --model is not given and the data calls for one (e.g. a translation model made
    # for the language pair); None leaves the choice to the task's defaults.
    default_model: str | None = None
    warnings: tuple[str, ...] = ()  # what may be read wrong (a guessed column), shown loudly with the fix


def probe(spec: ProjectSpec) -> Probed:
    module = importlib.import_module(f"{__name__}.{TASKS[spec.task].probe}")
    result: Probed = module.probe(spec)
    return result


class TextStats:
    """Word counts and script share, gathered record by record while a probe reads a file."""

    SCRIPT_SAMPLE = 2000  # records whose letters are counted for the script share
    TOKEN_SAMPLE = 2000  # rows kept, a seeded reservoir sample of the file, to count tokens in

    def __init__(self, index: bool = True) -> None:
        """`index`: hash each row's input (`rows.RowIndex`); off for stats kept only for a script share."""
        self.inputs: list[int] = []
        self.targets: list[int] = []
        self.letters = self.non_latin = 0
        self.index = RowIndex() if index else None
        self.sample: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        self._sampler = random.Random(0)

    def add(
        self,
        inputs: Iterable[str],
        targets: Iterable[str] = (),
        *,
        key: Iterable[str] | None = None,
        label: str | None = None,
    ) -> None:
        """A row: its model input's texts and its target's. `key`: the texts that make the input the same as
        another row's, when not all of `inputs` (an instruction's prompt, without the response); `label`: the
        row's class, to find the same input under different labels."""
        inputs, targets = list(inputs), list(targets)
        if self.index is not None:
            self.index.add(inputs if key is None else key, label)
        self.inputs.append(sum(word_count(text) for text in inputs))
        if targets:
            self.targets.append(sum(word_count(text) for text in targets))
        self._keep(tuple(inputs), tuple(targets))
        if len(self.inputs) <= self.SCRIPT_SAMPLE:
            for ch in "".join(inputs + targets):
                if ch.isalpha():
                    self.letters += 1
                    self.non_latin += ord(ch) > 0x24F

    def _keep(self, inputs: tuple[str, ...], targets: tuple[str, ...]) -> None:
        """Reservoir sampling (Algorithm R): every row so far has the same chance to be in the sample."""
        seen = len(self.inputs)
        if seen <= self.TOKEN_SAMPLE:
            self.sample.append((inputs, targets))
            return
        slot = self._sampler.randrange(seen)
        if slot < self.TOKEN_SAMPLE:
            self.sample[slot] = (inputs, targets)

    def summary(self, path: Path, fmt: str, fields: tuple[str, ...], **extra: Any) -> DataSummary:
        if path.is_file():
            extra.setdefault("encoding", data_encoding(path))
        return DataSummary(
            path=path,
            format=fmt,
            fields=fields,
            num_rows=len(self.inputs),
            words_p95=p95(self.inputs),
            target_words_p95=p95(self.targets),
            non_latin_share=self.non_latin / self.letters if self.letters else 0.0,
            input_words=histogram(self.inputs),
            target_words=histogram(self.targets),
            index=self.index,
            sample=tuple(self.sample),
            **extra,
        )


def histogram(values: list[int]) -> dict[int, int]:
    """How many values are each number, by number."""
    return dict(sorted(Counter(values).items()))


def p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0


def word_count(text: str) -> int:
    """Whitespace words, counting each CJK character as a word (those scripts do not separate words)."""
    cjk = sum(1 for ch in text if "\u3040" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return len(text.split()) + cjk
