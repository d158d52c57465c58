"""translation data: a sentence and its translation per record, in one of two layouts.

- `wmt`: each record holds an object of language -> text, as WMT and OPUS data on the hub do:
  `{"translation": {"en": "...", "de": "..."}}` (jsonl or json).
- `columns`: one column per language, headed by language codes (`en,zh`) or `source`/`target` (csv, tsv,
  jsonl or json).

The direction comes from `--source-lang/--target-lang`; without them each record must hold exactly two
languages, and the first one written is the source.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats
from scaffolder.probes.readers import data_format, is_number, iter_records, read_sample
from scaffolder.probes.summarization import required_text
from scaffolder.spec import ProjectSpec
from scaffolder.tasks import LANGUAGES, TASKS, base_language

_CODE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,4})?$")
SOURCE_COLUMNS = ("source", "src")
TARGET_COLUMNS = ("target", "tgt")
# Helsinki-NLP's Marian models (opus-mt-SRC-TGT) for common pairs: made for the pair, small and strong.
OPUS_MT_PAIRS = {
    "en": ("ar", "de", "es", "fi", "fr", "hi", "it", "nl", "ro", "ru", "sv", "zh"),
    "de": ("en", "fr"),
    "fr": ("de", "en"),
    **{lang: ("en",) for lang in ("ar", "es", "fi", "hi", "it", "ja", "ko", "nl", "ro", "ru", "sv", "zh")},
}
NON_LATIN = 0.5  # share of non-Latin letters on either side that calls for a multilingual vocabulary


def probe(spec: ProjectSpec) -> Probed:
    sample = read_sample(spec.train_data)
    layout = _layout(sample, spec)
    if layout == "wmt":
        column = _translation_column(sample, spec)
        source, target = _wmt_languages(sample, spec, column)
        columns, read = {"translation": column}, Reader(column, source, target)
    else:
        source_column, target_column, source, target = _language_columns(sample, spec)
        columns, read = {"source": source_column, "target": target_column}, Reader(None, source_column, target_column)
    train, non_latin = summarize(spec.train_data, read)
    evaluation = summarize(spec.eval_data, read)[0] if spec.eval_data else None
    return Probed(
        updates={"columns": columns, "data_layout": layout, "source_lang": source, "target_lang": target},
        train=train,
        eval=evaluation,
        description=f"{source} → {target} ({_layout_text(layout, columns)})",
        default_model=default_model(source, target, non_latin),
    )


def _layout_text(layout: str, columns: dict[str, str]) -> str:
    if layout == "wmt":
        return f"`{columns['translation']}` objects"
    return f"columns {columns['source']} → {columns['target']}"


def _layout(sample: list[dict[str, Any]], spec: ProjectSpec) -> str:
    if spec.data_layout in ("wmt", "columns"):
        return spec.data_layout
    if spec.data_layout is not None:
        raise DataError(f"unknown translation data_layout `{spec.data_layout}`; use wmt or columns")
    if "translation" in spec.columns:
        return "wmt"
    return "wmt" if any(isinstance(value, dict) for value in sample[0].values()) else "columns"


# --- wmt layout ------------------------------------------------------------------------------------------------


def _translation_column(sample: list[dict[str, Any]], spec: ProjectSpec) -> str:
    path, first = spec.train_data, sample[0]
    column = spec.columns.get("translation") or next(name for name, value in first.items() if isinstance(value, dict))
    if column not in first:
        raise DataError(f"{path} has no field `{column}` (--column translation=); fields are: {', '.join(first)}")
    return column


def _wmt_languages(sample: list[dict[str, Any]], spec: ProjectSpec, column: str) -> tuple[str, str]:
    """The flags' languages, or the two languages each record holds (the first written is the source)."""
    path = spec.train_data
    found = list(_pair(sample[0], column, path, 1))
    source = spec.source_lang or next((lang for lang in found if lang != spec.target_lang), None)
    target = spec.target_lang or next((lang for lang in found if lang != source), None)
    if (spec.source_lang is None or spec.target_lang is None) and len(found) != 2:
        raise DataError(
            f"{path}, row 1: `{column}` holds {len(found)} languages ({', '.join(found)}); "
            "pass --source-lang and --target-lang to pick the direction"
        )
    for lang, flag in ((source, "--source-lang"), (target, "--target-lang")):
        if lang not in found:
            raise DataError(
                f"{path}, row 1: `{column}` has no `{lang}` ({flag}); its languages are: {', '.join(found)}"
            )
    if source == target:
        raise DataError(f"source and target language are both `{source}`; pass two different languages")
    return str(source), str(target)


def _pair(record: dict[str, Any], column: str, path: Path, row: int) -> dict[str, Any]:
    value = record.get(column)
    if not isinstance(value, dict):
        raise DataError(
            f'{path}, row {row}: `{column}` must be an object of language -> text, like {{"en": "...", "de": "..."}}'
        )
    return value


# --- columns layout --------------------------------------------------------------------------------------------


def _language_columns(sample: list[dict[str, Any]], spec: ProjectSpec) -> tuple[str, str, str, str]:
    """Source column, target column and their languages."""
    path, names = spec.train_data, list(sample[0])
    for role in ("source", "target"):
        if role in spec.columns and spec.columns[role] not in names:
            raise DataError(
                f"{path} has no column `{spec.columns[role]}` (--column {role}=); columns are: {', '.join(names)}"
            )
    codes = [name for name in names if is_language_code(name) and _holds_text(sample, name)]
    by_code = {name.lower(): name for name in codes}
    source_column = spec.columns.get("source") or by_code.get((spec.source_lang or "").lower())
    target_column = spec.columns.get("target") or by_code.get((spec.target_lang or "").lower())
    by_lower = {name.lower(): name for name in names}
    source_column = source_column or next((by_lower[c] for c in SOURCE_COLUMNS if c in by_lower), None)
    target_column = target_column or next((by_lower[c] for c in TARGET_COLUMNS if c in by_lower), None)
    rest = [name for name in codes if name not in (source_column, target_column)]
    if source_column is None or target_column is None:
        needed = int(source_column is None) + int(target_column is None)
        if len(rest) != needed:
            raise DataError(
                f"{path}: cannot tell the source and target columns among {', '.join(names)} "
                f"(language columns: {', '.join(codes) or 'none'}); pass --source-lang and --target-lang "
                "(or --column source=NAME --column target=NAME)"
            )
        source_column = source_column or rest.pop(0)
        target_column = target_column or rest.pop(0)
    if source_column == target_column:
        raise DataError(f"{path}: `{source_column}` cannot be both source and target; pass two different columns")
    return source_column, target_column, *_column_languages(spec, source_column, target_column)


def _column_languages(spec: ProjectSpec, source_column: str, target_column: str) -> tuple[str, str]:
    """The flags' languages, else the column headers when they are language codes."""
    source = spec.source_lang or (source_column if is_language_code(source_column) else None)
    target = spec.target_lang or (target_column if is_language_code(target_column) else None)
    if source is None or target is None:
        raise DataError(
            f"{spec.train_data}: columns `{source_column}` and `{target_column}` do not name their languages; "
            "pass --source-lang and --target-lang (e.g. --source-lang en --target-lang de)"
        )
    return source, target


def is_language_code(name: str) -> bool:
    """`en`, `zh`, `pt-BR`, `zh_CN`: a known ISO 639-1 code, optionally with a region."""
    return bool(_CODE.match(name)) and base_language(name) in LANGUAGES


def _holds_text(sample: list[dict[str, Any]], name: str) -> bool:
    """An `id` column is a language code (Indonesian) by name, but holds numbers."""
    values = [r.get(name) for r in sample]
    return all(isinstance(v, str) for v in values) and not all(is_number(v) for v in values if v)


# --- reading ---------------------------------------------------------------------------------------------------


class Reader:
    """Source and target text of a record: in the wmt layout `source`/`target` are keys of the `pair_column`
    object, in the columns layout they are columns."""

    def __init__(self, pair_column: str | None, source: str, target: str) -> None:
        self.pair_column, self.source, self.target = pair_column, source, target

    def texts(self, record: dict[str, Any], path: Path, row: int) -> tuple[str, str]:
        if self.pair_column is None:
            return required_text(record, self.source, path, row), required_text(record, self.target, path, row)
        pair = _pair(record, self.pair_column, path, row)
        for lang in (self.source, self.target):
            if lang not in pair:
                raise DataError(f"{path}, row {row}: `{self.pair_column}` has no `{lang}`; every record needs it")
        return required_text(pair, self.source, path, row), required_text(pair, self.target, path, row)


def summarize(path: Path, read: Reader) -> tuple[DataSummary, tuple[float, float]]:
    """One pass: every record has both texts; counts, lengths, and each side's share of non-Latin letters."""
    stats, sources, targets = TextStats(), TextStats(index=False), TextStats(index=False)
    fields: tuple[str, ...] = ()
    for row, record in enumerate(iter_records(path), start=1):
        fields = fields or tuple(record)
        source, target = read.texts(record, path, row)
        stats.add([source], [target])
        sources.add([source])
        targets.add([target])
    if not stats.inputs:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    shares = (sources.summary(path, "", ()).non_latin_share, targets.summary(path, "", ()).non_latin_share)
    return stats.summary(path, data_format(path), fields), shares


def default_model(source: str, target: str, non_latin: tuple[float, float]) -> str | None:
    """A Marian model made for the pair when Helsinki-NLP publishes one; mT5 when either side is mostly
    non-Latin (T5's vocabulary has no Chinese, Japanese, Arabic, ...); else the task's default."""
    pair = (base_language(source), base_language(target))
    if pair[1] in OPUS_MT_PAIRS.get(pair[0], ()):
        return f"Helsinki-NLP/opus-mt-{pair[0]}-{pair[1]}"
    if max(non_latin) > NON_LATIN:
        return TASKS["translation"].multilingual_model
    return None
