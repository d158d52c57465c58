"""Each row's model input, hashed while a probe reads a file: exact duplicates, the same input under different
labels and empty inputs, counted in the same pass, and the digests the data report (`scaffolder.report`)
compares across train and eval.

Texts are not kept. An input is an 8-byte blake2b digest of its parts, each stripped of whitespace at the ends
(two million distinct inputs collide with odds of about one in ten million, and the same data gives the same
digests in every run, so the report does not change between runs). Digests are held for the first MAX_ROWS
rows of a file; past them rows are counted but not compared, and the report says so. Only a few examples are
kept, cut to EXAMPLE_CHARS, and the openings of the first SAMPLE_ROWS rows, to show the inputs eval shares
with train.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from hashlib import blake2b

# A digest costs about 70 bytes in the dict that holds it (the key object and its slot): 2M rows, ~140 MB.
MAX_ROWS = 2_000_000
# Openings kept to show which rows eval shares with train: about 200 bytes a row, 4 MB a file.
SAMPLE_ROWS = 20_000
EXAMPLES = 3  # examples kept per finding: enough to recognize the pattern and find the rows
EXAMPLE_CHARS = 80  # an example's text is cut to this many characters, on one line
SEPARATOR = "\x1f"  # joins an input's parts (a text pair, question + context, tokens) before hashing


@dataclass(frozen=True)
class Example:
    row: int | None  # counted from 1 in reading order (records; sentences in CoNLL text; questions in SQuAD)
    text: str  # the input's opening, on one line
    other_row: int | None = None  # the earlier row with the same input, when among the first SAMPLE_ROWS
    labels: tuple[str, ...] = ()  # conflicting labels: the earlier row's, then this row's


class RowIndex:
    """The inputs of one file, fed row by row (`TextStats.add` calls `add`)."""

    def __init__(self) -> None:
        self.rows = 0  # rows read, empty ones included
        self.empty = 0  # rows whose input is empty or whitespace only: not hashed
        self.empty_rows: list[int] = []  # the first EXAMPLES of them
        self.digests: dict[int, int] = {}  # digest -> label id of its first row (0 without labels)
        self.repeats: dict[int, int] = {}  # digest -> rows after its first with the same input
        self.conflicting: set[int] = set()  # digests whose rows carry more than one label
        self.duplicates: list[Example] = []
        self.conflicts: list[Example] = []
        self.sample: dict[int, tuple[int, str]] = {}  # digest -> (first row, opening), first SAMPLE_ROWS rows
        self._label_ids: dict[str, int] = {}
        self.label_names = [""]  # by label id; 0 is "no label"

    @property
    def compared(self) -> int:
        """Rows whose inputs were hashed: the first MAX_ROWS."""
        return min(self.rows, MAX_ROWS)

    @property
    def partial(self) -> bool:
        """The file has more rows than were hashed: its counts cover the first MAX_ROWS."""
        return self.rows > MAX_ROWS

    @property
    def duplicate_rows(self) -> int:
        return sum(self.repeats.values())

    @property
    def labelled(self) -> bool:
        """Rows came with labels (classification), so conflicting labels were looked for."""
        return len(self.label_names) > 1

    def label_name(self, digest: int) -> str:
        return self.label_names[self.digests[digest]]

    def occurrences(self, digest: int) -> int:
        return 1 + self.repeats.get(digest, 0)

    def add(self, parts: Iterable[str], label: str | None = None) -> None:
        """A row's input, as its parts (a text, a text pair, tokens), and its label (None without labels).

        Runs once per row of every file: kept to a hash and a dict lookup where nothing repeats."""
        self.rows += 1
        row = self.rows
        stripped = [part.strip() for part in parts]
        if not any(stripped):
            self.empty += 1
            if len(self.empty_rows) < EXAMPLES:
                self.empty_rows.append(row)
            return
        if row > MAX_ROWS:
            return
        data = SEPARATOR.join(stripped).encode("utf-8", "surrogatepass")  # lone surrogates (JSON \ud800) pass
        digest = int.from_bytes(blake2b(data, digest_size=8).digest(), "little")
        label_id = 0 if label is None else self._label_ids.get(label) or self._new_label(label)
        first = self.digests.get(digest)
        if first is None:
            self.digests[digest] = label_id
            if row <= SAMPLE_ROWS:
                self.sample[digest] = (row, opening(stripped))
        else:
            self._repeat(digest, row, stripped, first, label_id)

    def _repeat(self, digest: int, row: int, parts: list[str], first: int, label_id: int) -> None:
        """A row whose input an earlier row has: a duplicate, and a conflict where the labels differ."""
        repeats = self.repeats[digest] = self.repeats.get(digest, 0) + 1
        if repeats == 1 and len(self.duplicates) < EXAMPLES:
            self.duplicates.append(Example(row, opening(parts), self.first_row(digest)))
        if first != label_id and digest not in self.conflicting:
            self.conflicting.add(digest)
            if len(self.conflicts) < EXAMPLES:
                labels = (self.label_names[first], self.label_names[label_id])
                self.conflicts.append(Example(row, opening(parts), self.first_row(digest), labels))

    def first_row(self, digest: int) -> int | None:
        kept = self.sample.get(digest)
        return kept[0] if kept else None

    def sampled(self) -> Iterator[tuple[int, int, str]]:
        """(digest, first row, opening) of the first SAMPLE_ROWS rows, in reading order."""
        for digest, (row, text) in self.sample.items():
            yield digest, row, text

    def _new_label(self, label: str) -> int:
        self._label_ids[label] = len(self.label_names)  # ids from 1: 0 is "no label"
        self.label_names.append(label)
        return self._label_ids[label]


def opening(parts: list[str]) -> str:
    """An input as one short line: parts joined by ` | ` (a text pair, question and context), by spaces when
    they are words (a token sequence); whitespace runs as one space; cut to EXAMPLE_CHARS."""
    words = all(len(part.split()) <= 1 for part in parts)
    text = " ".join((" " if words else " | ").join(parts).split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1].rstrip() + "…"
