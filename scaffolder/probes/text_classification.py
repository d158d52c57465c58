"""text-classification data: text (or a text pair) and a class label per row.

Columns come from the flags, else from header names, else from the values (the label repeats, the text is
long); labels are normalized the way the generated data.py reads them (1, "1" and 1.0 are one class).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, headerless, word_count
from scaffolder.probes.readers import data_format, is_number
from scaffolder.spec import ProjectSpec

# Header names, most specific first. Matching ignores case.
PAIR_COLUMNS = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question1", "question2"),
    ("question", "sentence"),
    ("text_a", "text_b"),
    ("text", "text_pair"),
    ("query", "passage"),
)
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document", "comment", "tweet", "body", "utterance")
LABEL_COLUMNS = (
    "label", "labels", "class", "category", "target", "sentiment", "intent", "gold_label", "score", "rating", "y"
)  # fmt: skip
# Chinese csv files name their columns in Chinese, words written without spaces (`评论内容`, `情感倾向`): a name
# that contains one of these is named like a text (text, content, review, comment, sentence, body) or a label
# (label, category, sentiment, class, polarity, rating).
CJK_TEXT_WORDS = ("文本", "内容", "评论", "评价", "句子", "正文")
CJK_LABEL_WORDS = ("标签", "类别", "情感", "分类", "极性", "评分")
SINGLE, MULTI, REGRESSION = "single_label_classification", "multi_label_classification", "regression"
# Label strings that mean "no label" (compared stripped and lowercased): what pandas, and so `datasets`, read as
# missing in a csv column, less the spellings that are also class names: "NA" and "N/A" (not applicable) and
# "None" (none of the classes; LUIS intents have one). A file with any of these is refused with the row.
MISSING_LABELS = frozenset(
    {"", "nan", "-nan", "null", "<na>", "#na", "#n/a", "#n/a n/a", "1.#ind", "-1.#ind", "1.#qnan", "-1.#qnan"}
)


@dataclass(frozen=True)
class Columns:
    text: str
    text_pair: str | None
    label: str
    guessed: tuple[str, ...] = ()  # roles chosen from the values alone, no flag or name saying so

    def as_roles(self) -> dict[str, str]:
        roles = {"text": self.text, "text_pair": self.text_pair, "label": self.label}
        return {role: name for role, name in roles.items() if name}


def probe(spec: ProjectSpec) -> Probed:
    sample = headerless.sample(spec.train_data, spec.header, suggest_header)
    given = spec.columns
    columns = infer_columns(sample, spec.train_data, given.get("text"), given.get("text_pair"), given.get("label"))
    problem = spec.problem_type or problem_type(sample, columns.label)
    train = summarize(spec.train_data, columns, problem, spec.header)
    evaluation = None
    if spec.eval_data:
        _check_eval_columns(spec.eval_data, columns, spec.header)
        evaluation = summarize(spec.eval_data, columns, problem, spec.header)
    if problem != REGRESSION:
        _check_classes(train, columns)
    labels = () if problem == REGRESSION else _labels(spec, train, evaluation)
    read_as = columns.text + (f" + {columns.text_pair}" if columns.text_pair else "")
    notes = held_out(train, spec.eval_fraction).notes() if problem == SINGLE and not spec.eval_data else []
    return Probed(
        updates={
            "columns": columns.as_roles(),
            "labels": labels,
            "problem_type": problem,
        },
        train=train,
        eval=evaluation,
        description=f"{read_as} → {columns.label} ({_PROBLEM_WORDS[problem]})" + "".join(f"; {n}" for n in notes),
        warnings=tuple(guess_warnings(columns, list(sample[0]))),
    )


_PROBLEM_WORDS = {SINGLE: "one class per row", MULTI: "a set of classes per row", REGRESSION: "a number per row"}


def problem_type(sample: list[dict[str, Any]], label: str) -> str:
    """Lists of classes make a multi-label task; fractional numbers a regression; anything else single-label.

    Missing labels do not count: a NaN among integer classes is not a fractional number (it is refused later,
    with its row)."""
    values = [value for value in (record.get(label) for record in sample) if not is_missing(value)]
    if any(label_list(value) is not None for value in values):
        return MULTI
    numbers = [float(str(v)) for v in values if _numeric(v)]
    # Mostly numbers, some fractional: scores. A stray non-number is then reported with its row.
    if len(numbers) >= 0.9 * len(values) and any(not n.is_integer() for n in numbers):
        return REGRESSION
    return SINGLE


def is_missing(value: Any) -> bool:
    """No label: null, NaN (json reads it, and a missing value exported from pandas is one) or a missing-value
    string (MISSING_LABELS)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING_LABELS


def _numeric(value: Any) -> bool:
    return not isinstance(value, bool) and (isinstance(value, (int, float)) or is_number(str(value)))


def label_list(value: Any) -> list[Any] | None:
    """A multi-label value: a JSON list, or a string holding one (how csv files store lists)."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def _check_eval_columns(path: Path, columns: Columns, header: Sequence[str]) -> None:
    sample = headerless.sample(path, header, suggest_header)
    missing = [name for name in (columns.text, columns.text_pair, columns.label) if name and name not in sample[0]]
    if missing:
        raise DataError(
            f"eval data {path} lacks column `{missing[0]}` that the train data uses; "
            f"its columns are: {', '.join(sample[0])}"
        )


def _check_classes(train: DataSummary, columns: Columns) -> None:
    if len(train.label_counts) < 2:
        only = next(iter(train.label_counts))
        raise DataError(
            f"{train.path}: every row has label `{only}`; classification needs at least two classes "
            f"(is `{columns.label}` the right column? pass --label-column)"
        )


def _labels(spec: ProjectSpec, train: DataSummary, evaluation: DataSummary | None) -> tuple[str, ...]:
    """Class names in id order: numeric labels by value, names alphabetically; kept as the spec fixes them."""
    seen = set(train.label_counts) | set(evaluation.label_counts if evaluation else ())
    if spec.labels:
        extra = sorted(seen - set(spec.labels))
        if extra:
            raise DataError(
                f"the data has labels not in the spec's `labels`: {', '.join(extra)}; add them to scaffold.toml"
            )
        return spec.labels
    if all(label.lstrip("-").isdigit() for label in seen):
        return tuple(sorted(seen, key=int))
    return tuple(sorted(seen))


# --- columns ---------------------------------------------------------------------------------------------------


def infer_columns(
    sample: list[dict[str, Any]],
    path: Path,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
) -> Columns:
    """Columns for text / pair / label: the flags when given (checked), else header names, else the data."""
    names = list(sample[0])
    for flag, value in (("--text-column", text), ("--text-pair-column", text_pair), ("--label-column", label)):
        if value is not None and value not in names:
            raise DataError(f"{path} has no column `{value}` ({flag}); columns are: {', '.join(names)}")
    by_lower = {name.lower(): name for name in names}
    if text is None:
        text, found_pair = _text_columns(by_lower)
        text_pair = text_pair if text_pair is not None else found_pair
    text = text or _cjk_named(sample, CJK_TEXT_WORDS, exclude={label}, fits=_holds_text)
    guessed = []
    label = label or next((by_lower[c] for c in LABEL_COLUMNS if c in by_lower), None)
    label = label or _label_by_name(sample, exclude={text, text_pair})
    label = label or _cjk_named(sample, CJK_LABEL_WORDS, exclude={text, text_pair}, fits=_looks_like_classes)
    if label is None:
        label, guessed = _guess_label(sample, exclude={text, text_pair}), ["label"]
    if label is None:
        raise DataError(f"{path}: no label column found among {', '.join(names)}; pass --label-column NAME")
    if text is None:
        text, guessed = _guess_text(sample, exclude={label, text_pair}), [*guessed, "text"]
    if text is None:
        raise DataError(f"{path}: no text column found among {', '.join(names)}; pass --text-column NAME")
    if label in (text, text_pair):
        raise DataError(f"{path}: column `{label}` cannot be both text and label; pass --text-column/--label-column")
    return Columns(text=text, text_pair=text_pair, label=label, guessed=tuple(guessed))


def suggest_header(rows: list[list[str]]) -> str:
    """The --header for a file without a header row (GLUE's CoLA, AG News and Yelp as distributed): `label` for a
    column of a few repeated values (the fewest; coded as numbers first), `text` for the longest texts, `text_pair`
    for a second column of sentences (a premise and its hypothesis), `columnN` for any other."""
    width = max(len(fields) for fields in rows)
    values = [[fields[i].strip() if i < len(fields) else "" for fields in rows] for i in range(width)]
    classes = [i for i in range(width) if _class_values(values[i])]
    label = min(classes, key=lambda i: (len(set(values[i])), not all(map(is_number, values[i])), i), default=None)
    texts = sorted(
        (i for i in range(width) if i != label and _mean_words(values[i]) >= SENTENCE_WORDS),
        key=lambda i: -sum(map(len, values[i])),
    )
    names: dict[int | None, str] = {label: "label", **dict(zip(texts[:2], ("text", "text_pair"), strict=False))}
    header = ",".join(names.get(i, f"column{i + 1}") for i in range(width))
    if label is None or not texts:
        missing = "a column of repeated classes (name it label)" if label is None else "a column of text (name it text)"
        return f"name its {width} columns in order (--header {header}); no column looks like {missing}"
    return (
        f"name its {width} columns in order: --header {header} (read as: `label` the column of few repeated "
        "values, `text` the longest texts; reorder the names if not)"
    )


# A column of text averages at least this many words a row (a class name has one or two).
SENTENCE_WORDS = 3


def _class_values(values: list[str]) -> bool:
    present = [value for value in values if value]
    return len(present) > len(values) / 2 and 1 < len(set(present)) <= max(2, len(values) // 2)


def _mean_words(values: list[str]) -> float:
    return sum(map(word_count, values)) / max(len(values), 1)


def guess_warnings(columns: Columns, names: list[str]) -> list[str]:
    """Said loudly at `scaffold new`: a column picked from its values alone may be the wrong one (a Kaggle
    export has many repetitive columns), and training on it would go unnoticed."""
    why = {"label": "its values repeat (no column is named like a label)",
           "text": "it holds the longest strings (no column is named like a text)"}  # fmt: skip
    return [
        f"the {role} column `{getattr(columns, role)}` is a guess: {why[role]}, among {', '.join(names)}; "
        f"if it is wrong, pass --{role}-column NAME"
        for role in columns.guessed
    ]


def _text_columns(by_lower: dict[str, str]) -> tuple[str | None, str | None]:
    for first, second in PAIR_COLUMNS:
        if first in by_lower and second in by_lower:
            return by_lower[first], by_lower[second]
    return next((by_lower[c] for c in TEXT_COLUMNS if c in by_lower), None), None


def _label_by_name(sample: list[dict[str, Any]], exclude: set[str | None]) -> str | None:
    """A column whose name holds a label word (`airline_sentiment`, `Category Name`) and whose values look like
    classes. Kaggle exports carry many repetitive columns (the airline, the country): the name says which one
    was annotated, so it wins over repetition. Of several, the one with the fewest other words in its name
    (`airline_sentiment` before `airline_sentiment_gold`)."""
    found = []
    for name in sample[0]:
        words = _name_words(name)
        if name not in exclude and words & set(LABEL_COLUMNS) and _looks_like_classes(sample, name):
            found.append((len(words), name))
    return min(found)[1] if found else None


def _cjk_named(sample: list[dict[str, Any]], words: tuple[str, ...], exclude: set[str | None], fits: Any) -> str | None:
    """The first column whose Chinese name contains one of `words` and whose values fit the role."""
    return next(
        (name for name in sample[0] if name not in exclude and any(w in name for w in words) and fits(sample, name)),
        None,
    )


def _holds_text(sample: list[dict[str, Any]], name: str) -> bool:
    return all(isinstance(r.get(name), str) or r.get(name) is None for r in sample)


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)  # camelCase: airlineSentiment
    return {word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word}


def _looks_like_classes(sample: list[dict[str, Any]], name: str) -> bool:
    """Repeating values, filled in for most rows (a `_gold` column that is mostly empty is not the label)."""
    values = [r.get(name) for r in sample]
    present = [_label_key(v) for v in values if not is_missing(v)]
    return len(present) > len(values) / 2 and 1 < len(set(present)) <= max(2, len(sample) // 2)


def _guess_label(sample: list[dict[str, Any]], exclude: set[str | None]) -> str | None:
    """The column whose values repeat most: few distinct values relative to the rows."""
    best, best_distinct = None, math.inf
    for name in sample[0]:
        if name in exclude or not name.strip():  # an unnamed column is an index (pandas writes one), not a role
            continue
        values = [_label_key(r.get(name)) for r in sample]
        distinct = len(set(values))
        if 1 < distinct <= max(2, len(sample) // 2) and distinct < best_distinct:
            best, best_distinct = name, distinct
    return best


def _guess_text(sample: list[dict[str, Any]], exclude: set[str | None]) -> str | None:
    """The string column with the longest values."""
    lengths = {
        name: sum(len(r[name]) for r in sample if isinstance(r.get(name), str)) / len(sample)
        for name in sample[0]
        if name not in exclude and name.strip()
    }
    lengths = {name: length for name, length in lengths.items() if length > 0}
    return max(lengths, key=lengths.__getitem__) if lengths else None


def _label_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else str(value)


# --- labels and sizes -------------------------------------------------------------------------------------------


def normalize_label(value: Any, path: Path, row: int) -> str:
    """A label value as its class name: integers (also "3" or 3.0) as digits, strings stripped.

    The generated data.py applies the same rule, so names written to config.yaml match the data.
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if is_missing(value):
        raise DataError(f"{path}, row {row}: {_missing_words(value)}; fill it in or remove the row")
    if isinstance(value, float) or (isinstance(value, str) and is_number(value)):
        number = float(value)
        if number.is_integer():
            return str(int(number))
        raise DataError(
            f"{path}, row {row}: label {value!r} is a fractional number (a regression target); "
            "text-classification needs class labels"
        )
    if isinstance(value, (list, dict)):
        raise DataError(f"{path}, row {row}: the label is a {type(value).__name__}; one class per row is expected")
    return str(value).strip()


def _refuse_missing(path: Path, missing: dict[int, Any]) -> None:
    """Rows without a label are refused, not dropped: a few are usually a broken export that the user should
    see, and dropping them here would need the project's data.py to drop the very same rows."""
    (row, value), *others = missing.items()
    if not others:
        raise DataError(f"{path}, row {row}: {_missing_words(value)}; fill it in or remove the row")
    rows = ", ".join(str(other) for other, _ in others[:5]) + (", ..." if len(others) > 5 else "")
    raise DataError(
        f"{path}, row {row}: {_missing_words(value)}, and {len(others)} more row(s) have no label ({rows}); "
        "fill the labels in or remove those rows"
    )


def _missing_words(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "the label is empty"
    shown = "NaN" if isinstance(value, float) else str(value).strip()
    return f"the label is `{shown}`, a missing value"


def summarize(path: Path, columns: Columns, problem: str = SINGLE, header: Sequence[str] = ()) -> DataSummary:
    """One pass over the file: row count, label counts, text lengths, script."""
    labels: Counter[str] = Counter()
    stats = TextStats()
    fields: tuple[str, ...] = ()
    missing: dict[int, Any] = {}  # row -> its missing label, all reported at once
    for row, record in enumerate(headerless.records(path, header, suggest_header), start=1):
        fields = fields or tuple(record)
        for name in (columns.text, columns.text_pair, columns.label):
            if name is not None and name not in record:
                raise DataError(f"{path}, row {row}: column `{name}` is missing; every row needs it")
        if is_missing(record[columns.label]):
            missing[row] = record[columns.label]
            continue
        names = _row_labels(record[columns.label], problem, path, row)
        for name in names:
            labels[name] += 1
        texts = [str(record[columns.text] or "")]
        if columns.text_pair:
            texts.append(str(record[columns.text_pair] or ""))
        # The row's class (its set of classes), to find the same text labelled two ways; none for a regression.
        label = names[0] if len(names) == 1 else ", ".join(sorted(set(names)))
        stats.add(texts, label=None if problem == REGRESSION else label)
    if missing:
        _refuse_missing(path, missing)
    if not stats.inputs:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    return stats.summary(path, data_format(path), fields, label_counts=dict(labels))


def _row_labels(value: Any, problem: str, path: Path, row: int) -> list[str]:
    """The class names a row's label value holds (none for a regression target, which must be a number)."""
    if problem == REGRESSION:
        if not _numeric(value):
            raise DataError(f"{path}, row {row}: regression target {value!r} is not a number; fix or remove the row")
        return []
    if problem == MULTI:
        values = label_list(value)
        if values is None:
            raise DataError(
                f'{path}, row {row}: label {value!r} is not a list; multi-label rows hold lists like ["a", "b"]'
            )
        return [normalize_label(item, path, row) for item in values]
    return [normalize_label(value, path, row)]


# --- the held-out split ------------------------------------------------------------------------------------------

MAX_EVAL_SHARE = 0.25  # the eval split grows to one row per class only while that holds out at most this share


@dataclass(frozen=True)
class HeldOut:
    """The eval split of a single-label train file without eval data, by the rule of `hold_out` in the project's
    data.py (which makes the split with sklearn; this package stays on the standard library)."""

    rows: int  # held out
    requested: int  # eval_fraction of the rows, rounded up as sklearn rounds a fractional test_size
    fraction: float
    classes: int  # classes with two rows or more: the strata
    pooled: int  # the rows of those classes
    stratified: bool
    train_only: tuple[str, ...]  # classes with a single row, kept in train when stratified
    total: int

    def notes(self) -> list[str]:
        """What `scaffold new` says about the split where it is not eval_fraction, stratified by class."""
        if not self.stratified:
            return [f"eval: {self.rows} rows held out at random, not stratified ({self._why_random()})"]
        notes = []
        if self.rows > self.requested:
            notes.append(
                f"eval: {self.rows} rows held out instead of {self.fraction:.0%} ({self.requested}), "
                f"as many as there are classes, so that the split can be stratified"
            )
        if self.train_only:
            names = ", ".join(self.train_only[:5]) + (", ..." if len(self.train_only) > 5 else "")
            notes.append(f"{len(self.train_only)} class(es) with a single row stay in train, none in eval ({names})")
        return notes

    def _why_random(self) -> str:
        if not self.classes:
            return "no class has two rows"
        if max(self.requested, self.classes) > max(self.requested, int(MAX_EVAL_SHARE * self.total)):
            return f"a row for each of the {self.classes} classes would be over a quarter of the {self.total} rows"
        return f"only {self.pooled} rows are in classes that have two or more"


def held_out(train: DataSummary, fraction: float) -> HeldOut:
    """eval_fraction of the rows, stratified; raised to one row per class while that is at most a quarter of the
    rows (sklearn needs as many eval rows as classes to stratify); classes with a single row stay in train.
    Otherwise a random split of eval_fraction."""
    total = train.num_rows
    requested = math.ceil(fraction * total)  # as sklearn's train_test_split rounds a fractional test_size
    paired = {label: count for label, count in train.label_counts.items() if count >= 2}
    pooled = sum(paired.values())
    rows = max(requested, len(paired))
    # sklearn's conditions: as many eval rows as classes, and as many train rows left.
    if paired and rows <= max(requested, int(MAX_EVAL_SHARE * total)) and rows <= pooled - len(paired):
        single = tuple(sorted(set(train.label_counts) - set(paired)))
        return HeldOut(rows, requested, fraction, len(paired), pooled, True, single, total)
    return HeldOut(requested, requested, fraction, len(paired), pooled, False, (), total)
