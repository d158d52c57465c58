"""token-classification data: a sentence as a list of tokens and one tag per token.

Read from CoNLL text (`token ... TAG` lines, blank lines between sentences) or from json/jsonl records with a
token list (`tokens`, `words`) and a tag list (`ner_tags`, `ner`, `tags`, `labels`). Tags are names (`B-PER`)
or integer ids into the tag names the spec's `labels` gives; integer ids without names are their own names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats
from scaffolder.probes.readers import data_format, is_conll, iter_conll, iter_records, read_sample
from scaffolder.spec import ProjectSpec

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "ner", "tags", "labels")
CONLL_COLUMNS = {"tokens": "tokens", "tags": "tags"}  # the record keys CoNLL sentences are read into
ENTITY_PREFIXES = ("B-", "I-", "E-", "S-", "L-", "U-")


@dataclass(frozen=True)
class TagData:
    """What one file holds: its tag values (names, or integer ids) and a summary."""

    summary: DataSummary
    names: Counter[str]  # string tags
    ids: Counter[int]  # integer tags


def probe(spec: ProjectSpec) -> Probed:
    layout = layout_of(spec.train_data)
    columns = CONLL_COLUMNS if layout == "conll" else infer_columns(spec.train_data, spec.columns)
    train = read_tags(spec.train_data, columns)
    evaluation = None
    if spec.eval_data:
        conll = layout_of(spec.eval_data) == "conll"
        # Both files are read with the same column names (config.yaml has one pair); CoNLL names its own.
        if conll != (layout == "conll"):
            raise DataError(
                f"{spec.eval_data} and {spec.train_data} differ in layout (CoNLL text and json records); "
                "convert one so both are CoNLL or both json/jsonl"
            )
        evaluation = read_tags(spec.eval_data, columns if conll else infer_columns(spec.eval_data, columns))
    labels = tag_names(spec, [data for data in (train, evaluation) if data])
    counts = named_counts(train, labels)
    if set(counts) <= {"O"}:
        raise DataError(f"{spec.train_data}: every token is tagged `O`; tag the entities (e.g. B-PER, I-PER)")
    read_as = "CoNLL sentences" if layout == "conll" else f"{columns['tokens']} → {columns['tags']}"
    return Probed(
        updates={"columns": dict(columns), "labels": labels, "data_layout": layout},
        train=_with_counts(train.summary, counts),
        eval=_with_counts(evaluation.summary, named_counts(evaluation, labels)) if evaluation else None,
        description=read_as + _scheme_note(labels),
    )


def layout_of(path: Path) -> str:
    """`conll` for CoNLL text, `records` for json/jsonl; anything else is refused."""
    if is_conll(path):
        return "conll"
    if path.suffix.lower() == ".txt":
        raise DataError(
            f"{path} does not look like CoNLL: every line should be `token TAG` (whitespace separated, the tag "
            "last) with a blank line between sentences; or use jsonl records with tokens and ner_tags lists"
        )
    if data_format(path) not in ("json", "jsonl"):
        raise DataError(
            f"{path}: token-classification reads CoNLL text (.conll, .bio, .iob, .txt) or json/jsonl records "
            "with a token list and a tag list; convert the file"
        )
    return "records"


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


def _sentences(path: Path, columns: dict[str, str]) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """(where, tokens, tags) per sentence, `where` naming the row or line for error messages."""
    if layout_of(path) == "conll":
        for record in iter_conll(path):
            yield f"line {record['line']}", record["tokens"], record["tags"]
        return
    for row, record in enumerate(iter_records(path), start=1):
        for role in ("tokens", "tags"):
            if not isinstance(record.get(columns[role]), list):
                raise DataError(
                    f"{path}, row {row}: `{columns[role]}` must be a list (one {role[:-1]} per entry), "
                    f"got {type(record.get(columns[role])).__name__}"
                )
        yield f"row {row}", record[columns["tokens"]], record[columns["tags"]]


def read_tags(path: Path, columns: dict[str, str]) -> TagData:
    """One pass over a file: sentence count, tags, token counts, script; every sentence checked."""
    names: Counter[str] = Counter()
    ids: Counter[int] = Counter()
    stats = TextStats()
    for where, tokens, tags in _sentences(path, columns):
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
    fmt = "conll" if layout_of(path) == "conll" else data_format(path)
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
