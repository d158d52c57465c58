"""token-classification data: a sentence as a list of tokens and one tag per token.

Layouts (`data_layout`):

- `conll`: CoNLL text, one `token ... TAG` line per token and a blank line between sentences; `-DOCSTART-`
  lines and `#` comment lines before a sentence (GermEval 2014's source lines, CoNLL-U's `# sent_id`) are
  skipped. Columns split at tabs when a line has them, else at whitespace. The token is column 1 and the tag
  the last column, unless column 1 numbers the tokens of each sentence (the token is then column 2) or the
  file has GermEval 2014's columns (position, token, outer tag, nested tag: the outer tags are read).
  `--column tags=N` (and `tokens=N`) read another column, counted from 1: CoNLL-2003's POS tags are
  column 2, GermEval's nested entities column 4. scaffold.toml records the numbers, or `tokens`/`tags` for
  the first and the last column.
- `records`: json/jsonl records with a token list (`tokens`, `words`) and a tag list (`ner_tags`, `ner`,
  `tags`, `labels`).
- `spans`, `cluener`, `label-studio`: entity spans over raw text, cut into tokens and BIO tags (`ner_spans`).

Tags are names (`B-PER`) or integer ids into the tag names the spec's `labels` gives; integer ids without
names are their own names.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, ner_spans, sniff
from scaffolder.probes.readers import SAMPLE_ROWS, data_encoding, data_format, iter_records, read_sample, text_codec
from scaffolder.spec import ProjectSpec

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "ner", "tags", "labels")
# The CoNLL columns a spec names by role: `tokens` is the first column, `tags` the last; a number is that column.
CONLL_COLUMNS = {"tokens": "tokens", "tags": "tags"}
ENTITY_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")
LAYOUTS = ("conll", "records", *ner_spans.LAYOUTS)
CONLL_SUFFIXES = (".conll", ".bio", ".iob")  # CoNLL text whatever its lines look like
CONLL_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators: not sentences


@dataclass(frozen=True)
class TagData:
    """What one file holds: its tag values (names, or integer ids) and a summary."""

    summary: DataSummary
    names: Counter[str]  # string tags
    ids: Counter[int]  # integer tags


def probe(spec: ProjectSpec) -> Probed:
    layout = spec.data_layout or layout_of(spec.train_data)
    columns = file_columns(spec.train_data, layout, spec.columns)
    notes = ner_spans.SpanNotes()
    train = read_tags(spec.train_data, layout, columns, notes)
    evaluation = None
    if spec.eval_data:
        # Both files are read alike (config.yaml has one layout and one pair of columns).
        if layout_of(spec.eval_data) != layout:
            raise DataError(
                f"{spec.eval_data} and {spec.train_data} differ in layout ({layout_of(spec.eval_data)} and "
                f"{layout}); convert one so both are read the same way"
            )
        evaluation = read_tags(spec.eval_data, layout, file_columns(spec.eval_data, layout, columns), notes)
    labels = tag_names(spec, [data for data in (train, evaluation) if data])
    counts = named_counts(train, labels)
    if set(counts) <= {"O"}:
        raise DataError(f"{spec.train_data}: every token is tagged `O`; tag the entities (e.g. B-PER, I-PER)")
    return Probed(
        updates={"columns": dict(columns), "labels": labels, "data_layout": layout},
        train=_with_counts(train.summary, counts),
        eval=_with_counts(evaluation.summary, named_counts(evaluation, labels)) if evaluation else None,
        description=describe(spec.train_data, layout, columns) + notes.describe() + _scheme_note(labels),
    )


def layout_of(path: Path) -> str:
    """`conll` for CoNLL text, a span layout or `records` for json/jsonl; anything else is refused."""
    if path.suffix.lower() in CONLL_SUFFIXES:
        return "conll"
    fmt = data_format(path)  # a missing or empty file is refused here
    # GermEval 2014's `#` source lines break the plain column count that tells CoNLL text from tsv or prose.
    if fmt == "conll" or (fmt in ("tsv", "txt", "csv") and _looks_like_conll(path)):
        return "conll"
    if fmt in ("tsv", "txt"):
        raise DataError(
            f"{path} does not look like CoNLL: every line should be `token TAG` (whitespace or tab separated, the "
            "tag last) with a blank line between sentences; or use jsonl records with tokens and ner_tags lists"
        )
    if fmt not in ("json", "jsonl"):
        raise DataError(
            f"{path}: token-classification reads CoNLL text (.conll, .bio, .iob, .txt, .tsv) or json/jsonl "
            "records (token and tag lists, or entity spans over the text); convert the file"
        )
    sample = read_sample(path)
    if _token_list_field(sample[0]):
        return "records"
    return ner_spans.detect_layout(sample) or "records"


def _token_list_field(record: dict[str, Any]) -> str | None:
    """A token list by name; Prodigy's `tokens` (objects with offsets, beside its `spans`) is not one."""
    return next(
        (
            key
            for key, value in record.items()
            if key.lower() in TOKEN_COLUMNS and isinstance(value, list) and not any(isinstance(t, dict) for t in value)
        ),
        None,
    )


def file_columns(path: Path, layout: str, given: dict[str, str]) -> dict[str, str]:
    """The columns (fields) each role is read from: the spec's when given (checked), else from the file."""
    if layout == "conll":
        return conll_columns(path, given)
    if layout == "records":
        return infer_columns(path, given)
    return ner_spans.infer_columns(layout, read_sample(path), given, path)


def infer_columns(path: Path, given: dict[str, str]) -> dict[str, str]:
    """The token-list and tag-list fields: the spec's when given (checked), else by name, else by shape."""
    sample = read_sample(path)
    names = list(sample[0])
    by_lower = {name.lower(): name for name in names}
    columns: dict[str, str] = {}
    for role, known in (("tokens", TOKEN_COLUMNS), ("tags", TAG_COLUMNS)):
        name = given.get(role) or next((by_lower[c] for c in known if c in by_lower), None)
        if name is None:
            lists = [n for n in names if isinstance(sample[0][n], list) and n not in columns.values()]
            name = lists[0] if lists else None
        if name is None or name not in sample[0]:
            raise DataError(
                f"{path}: no {role} list found among {', '.join(names)}; records need a token list and a tag "
                f"list of the same length (e.g. tokens + ner_tags), or pass --column {role}=NAME"
            )
        columns[role] = name
    return columns


# --- CoNLL text ----------------------------------------------------------------------------------------------


def conll_lines(path: Path) -> Iterator[tuple[int, list[str] | None]]:
    """(line number, columns) for each token line, (line number, None) where a sentence may end (a blank line,
    `-DOCSTART-`). A line that starts with `#` and a space or tab before a sentence's first token is a comment."""
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty; it needs sentences of `token TAG` lines")
    in_sentence = False
    try:
        with sniff.open_text(path, text_codec(path)) as f:  # the encoding sniffed from the bytes, as data.py does
            for line_no, line in enumerate(f, start=1):
                text = line.strip()
                if not in_sentence and (text == "#" or text.startswith(("# ", "#\t"))):
                    continue
                fields = [field.strip() for field in text.split("\t")] if "\t" in text else text.split()
                if not fields or fields[0] == CONLL_DOCSTART:
                    in_sentence = False
                    yield line_no, None
                    continue
                in_sentence = True
                yield line_no, fields
    except UnicodeDecodeError:
        raise DataError(f"{path} is not {data_encoding(path)} text throughout; re-save it as UTF-8") from None


def _sample_sentences(path: Path) -> list[list[list[str]]]:
    """The sentences among a file's first lines, each a list of token lines' columns."""
    sentences: list[list[list[str]]] = [[]]
    for _, fields in itertools.islice(conll_lines(path), SAMPLE_ROWS):
        if fields is None:
            sentences.append([])
        else:
            sentences[-1].append(fields)
    return [sentence for sentence in sentences if sentence]


def _looks_like_conll(path: Path) -> bool:
    """Same few columns on every line (prose lines vary in length), and tags in the last that repeat (the
    last words of sentences rarely do)."""
    try:
        rows = [fields for sentence in _sample_sentences(path) for fields in sentence]
    except DataError:
        return False
    widths = {len(fields) for fields in rows}
    tags = {fields[-1] for fields in rows}
    return len(widths) == 1 and 2 <= min(widths) <= 10 and len(tags) <= max(2, len(rows) // 3)


@dataclass(frozen=True)
class ConllShape:
    """The columns of a CoNLL file, from its first sentences."""

    width: int  # columns per token line (the most seen)
    numbered: bool  # column 1 numbers the tokens of each sentence: 1, 2, 3, ...
    germeval: bool  # GermEval 2014: position, token, outer entity tag, nested entity tag

    @property
    def default_columns(self) -> dict[str, str]:
        return {"tokens": "2" if self.numbered else "tokens", "tags": "3" if self.germeval else "tags"}


def conll_shape(path: Path) -> ConllShape:
    sentences = _sample_sentences(path)
    rows = [fields for sentence in sentences for fields in sentence]
    width = Counter(len(fields) for fields in rows).most_common(1)[0][0] if rows else 2
    numbered = bool(rows) and all(
        len(fields) >= 3 and fields[0] == str(position)
        for sentence in sentences
        for position, fields in enumerate(sentence, start=1)
    )
    germeval = numbered and width == 4 and all(_is_entity_tag(f[2]) and _is_entity_tag(f[3]) for f in rows)
    return ConllShape(width, numbered, germeval)


def _is_entity_tag(value: str) -> bool:
    return value == "O" or value[:2] in ENTITY_PREFIXES


def conll_columns(path: Path, given: dict[str, str]) -> dict[str, str]:
    """The token and tag columns: the spec's (a column number, or `tokens`/`tags` for the file's default),
    else the file's default."""
    defaults = conll_shape(path).default_columns
    columns = {}
    for role, default in defaults.items():
        name = given.get(role, default)
        if name == CONLL_COLUMNS[role]:
            name = default
        if name != CONLL_COLUMNS[role] and not (name.isdigit() and int(name) >= 1):
            raise DataError(
                f"{path}: CoNLL columns have no names; pass the column's number, counted from 1 "
                f"(--column {role}=2), not `{name}`"
            )
        columns[role] = name
    if conll_index(columns, "tokens") == conll_index(columns, "tags"):
        raise DataError(f"{path}: the tokens and the tags are both read from column {columns['tokens']}; pick two")
    return columns


def conll_index(columns: dict[str, str], role: str) -> int:
    """The Python index of a role's column: `tokens` the first, `tags` the last, a number that column."""
    name = columns[role]
    return int(name) - 1 if name.isdigit() else (0 if role == "tokens" else -1)


def _conll_sentences(path: Path, columns: dict[str, str]) -> Iterator[tuple[str, list[Any], list[Any]]]:
    token, tag = conll_index(columns, "tokens"), conll_index(columns, "tags")
    needed = max(token, tag, 1) + 1  # a token line has a tag at least
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for line_no, fields in itertools.chain(conll_lines(path), [(0, None)]):
        if fields is None:
            if tokens:
                yield f"line {start}", tokens, tags
            tokens, tags = [], []
            continue
        if len(fields) < needed:
            if needed == 2:
                raise DataError(
                    f"{path}, line {line_no}: `{' '.join(fields)[:40]}` has no tag; CoNLL lines are `token TAG` "
                    "(whitespace separated, the tag last) with a blank line between sentences"
                )
            tag_column = "the last column" if tag < 0 else f"column {tag + 1}"
            raise DataError(
                f"{path}, line {line_no} has {len(fields)} columns, but the tokens are read from column {token + 1} "
                f"and the tags from {tag_column}; fix the line, or pick columns with --column tags=N"
            )
        start = start if tokens else line_no
        tokens.append(fields[token])
        tags.append(fields[tag])


def describe(path: Path, layout: str, columns: dict[str, str]) -> str:
    if layout == "records":
        return f"{columns['tokens']} → {columns['tags']}"
    if layout != "conll":
        return ner_spans.describe(layout, columns)
    shape = conll_shape(path)
    tag = conll_index(columns, "tags") % max(shape.width, 1) + 1
    if shape.germeval:
        other = 4 if tag == 3 else 3
        return (
            "GermEval 2014 columns: 1 position, 2 token, 3 outer entity tags, 4 nested entity tags; "
            f"reading column {tag} (--column tags={other} reads the {'nested' if other == 4 else 'outer'} ones)"
        )
    if shape.width <= 2 and columns == CONLL_COLUMNS:
        return "CoNLL sentences"
    token = conll_index(columns, "tokens") + 1
    return (
        f"CoNLL sentences: {shape.width} columns, token column {token}, tags column {tag}"
        f"{' (the last)' if tag == shape.width else ''}; --column tags=N reads another column"
    )


# --- reading -------------------------------------------------------------------------------------------------


def iter_sentences(
    path: Path, layout: str, columns: dict[str, str], notes: ner_spans.SpanNotes | None = None
) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """(where, tokens, tags) per sentence, `where` naming the row or line for error messages; `notes` collects
    what reading spans widened or skipped."""
    if layout == "conll":
        yield from _conll_sentences(path, columns)
        return
    if layout != "records":
        yield from ner_spans.iter_span_sentences(path, layout, columns, notes or ner_spans.SpanNotes())
        return
    for row, record in enumerate(iter_records(path), start=1):
        for role in ("tokens", "tags"):
            if not isinstance(record.get(columns[role]), list):
                raise DataError(
                    f"{path}, row {row}: `{columns[role]}` must be a list (one {role[:-1]} per entry), "
                    f"got {type(record.get(columns[role])).__name__}"
                )
        yield f"row {row}", record[columns["tokens"]], record[columns["tags"]]


def read_tags(path: Path, layout: str, columns: dict[str, str], notes: ner_spans.SpanNotes) -> TagData:
    """One pass over a file: sentence count, tags, token counts, script; every sentence checked."""
    names: Counter[str] = Counter()
    ids: Counter[int] = Counter()
    stats = TextStats()
    for where, tokens, tags in iter_sentences(path, layout, columns, notes):
        if len(tokens) != len(tags):
            raise DataError(
                f"{path}, {where}: {len(tokens)} tokens but {len(tags)} tags; give exactly one tag per token"
            )
        if not tokens:
            raise DataError(f"{path}, {where}: the sentence has no tokens; remove it")
        for tag in tags:
            _count_tag(tag, names, ids, f"{path}, {where}")
        # Each token counts as at least one word (CJK characters as two): an upper bound for max_length.
        stats.add([str(token) for token in tokens])
    if not stats.inputs:
        raise DataError(f"data file {path} has no sentences; it needs at least a few tagged sentences")
    if names and ids:
        raise DataError(f"{path}: tags mix names and integer ids; use one kind (names like B-PER, or ids)")
    fmt = "conll" if layout == "conll" else data_format(path)
    return TagData(stats.summary(path, fmt, tuple(columns.values())), names, ids)


def _count_tag(tag: Any, names: Counter[str], ids: Counter[int], where: str) -> None:
    if isinstance(tag, bool) or not isinstance(tag, (int, str)) or (isinstance(tag, str) and not tag.strip()):
        raise DataError(f"{where}: tag {tag!r} is neither a tag name nor an integer id; fix the tag list")
    if isinstance(tag, int):
        if tag < 0:
            raise DataError(f"{where}: tag id {tag} is negative; ids index the tag names from 0")
        ids[tag] += 1
    else:
        names[tag.strip()] += 1


def tag_names(spec: ProjectSpec, files: list[TagData]) -> tuple[str, ...]:
    """Tag names in id order: the spec's (checked against the data), else from the data."""
    names = set().union(*(data.names for data in files))
    largest_id = max((max(data.ids) for data in files if data.ids), default=-1)
    if spec.labels:
        unknown = sorted(names - set(spec.labels))
        if unknown:
            raise DataError(f"the data has tags not in the spec's `labels`: {', '.join(unknown)}; add them")
        if largest_id >= len(spec.labels):
            raise DataError(
                f"the data has tag id {largest_id} but `labels` names only {len(spec.labels)} tags "
                f"(ids 0 to {len(spec.labels) - 1}); pass every tag name in id order with --labels"
            )
        return spec.labels
    if largest_id >= 0:
        # Integer ids with no names: each id up to the largest is a tag, named by its number.
        return tuple(str(i) for i in range(largest_id + 1))
    return tuple(sorted(names, key=_tag_order))


def _tag_order(tag: str) -> tuple[int, str, str]:
    """`O` first, then by entity type, B- before I- (B-LOC, I-LOC, B-PER, I-PER)."""
    if tag == "O":
        return (0, "", "")
    if tag[:2] in ENTITY_PREFIXES:
        return (1, tag[2:], str(ENTITY_PREFIXES.index(tag[:2])))
    return (1, tag, "")


def named_counts(data: TagData, labels: tuple[str, ...]) -> dict[str, int]:
    counts = dict(data.names)
    for tag_id, count in data.ids.items():
        counts[labels[tag_id]] = counts.get(labels[tag_id], 0) + count
    return counts


def _with_counts(summary: DataSummary, counts: dict[str, int]) -> DataSummary:
    return replace(summary, label_counts=counts)


def _scheme_note(labels: tuple[str, ...]) -> str:
    """Entity F1 needs B-/I- style tags; other tag sets (POS, bare ids) are scored by token accuracy only."""
    if all(tag == "O" or tag[:2] in ENTITY_PREFIXES for tag in labels):
        return ""
    return " (tags are not B-/I- entity tags: entity F1 finds no entities, compare eval_accuracy)"
