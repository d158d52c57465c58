"""translation data: a sentence and its translation per record, in one of two layouts.

- `wmt`: each record holds an object of language -> text, as WMT and OPUS data on the hub do:
  `{"translation": {"en": "...", "de": "..."}}` (jsonl or json).
- `columns`: one column per language, headed by language codes (`en,zh`) or `source`/`target` (csv, tsv,
  jsonl or json). A file without a header row (Tatoeba's `en<TAB>zh<TAB>attribution` lines) is refused with the
  `--header` that names its columns, the languages guessed from the text, and read with those names.
- `moses`: two files of one sentence per line, named for their languages (`train.en` + `train.de`,
  `europarl-v7.de-en.de` + `europarl-v7.de-en.en`), as most corpora ship: `--data` names either file, the other
  is found beside it.

The direction comes from `--source-lang/--target-lang`; without them each record must hold exactly two
languages, and the first one written (the `--data` file of a pair) is the source.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, headerless, sniff
from scaffolder.probes.readers import data_encoding, data_format, is_number, text_codec
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
    pair = moses_pair(spec)
    if pair is not None:
        return _probe_moses(spec, *pair)
    sample = headerless.sample(spec.train_data, spec.header, suggest_header)
    layout = _layout(sample, spec)
    if layout == "wmt":
        column = _translation_column(sample, spec)
        source, target = _wmt_languages(sample, spec, column)
        columns, read = {"translation": column}, Reader(column, source, target)
    else:
        source_column, target_column, source, target = _language_columns(sample, spec)
        columns, read = {"source": source_column, "target": target_column}, Reader(None, source_column, target_column)
    train, non_latin = summarize(spec.train_data, read, _records(spec.train_data, spec.header))
    evaluation = summarize(spec.eval_data, read, _records(spec.eval_data, spec.header))[0] if spec.eval_data else None
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


def _records(path: Path, header: Sequence[str]) -> Iterator[dict[str, Any]]:
    return headerless.records(path, header, suggest_header)


def _layout(sample: list[dict[str, Any]], spec: ProjectSpec) -> str:
    if spec.data_layout in ("wmt", "columns"):
        return spec.data_layout
    if spec.data_layout == "moses":
        raise DataError(
            f"{spec.train_data}: data_layout `moses` reads two files of one sentence per line named for their "
            "languages (train.en + train.de); point train_data at one of them, or remove data_layout"
        )
    if spec.data_layout is not None:
        raise DataError(f"unknown translation data_layout `{spec.data_layout}`; use wmt, columns or moses")
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
            # Names that are neither languages nor roles may be the first line of a file without a header row.
            headerless_hint = (
                "" if codes or spec.header else "; or, if line 1 is data, --header en,de naming the columns"
            )
            raise DataError(
                f"{path}: cannot tell the source and target columns among {', '.join(names)} "
                f"(language columns: {', '.join(codes) or 'none'}); pass --source-lang and --target-lang "
                f"(or --column source=NAME --column target=NAME){headerless_hint}"
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


def summarize(
    path: Path, read: Reader, records: Iterable[dict[str, Any]], fmt: str | None = None, **extra: Any
) -> tuple[DataSummary, tuple[float, float]]:
    """One pass: every record has both texts; counts, lengths, and each side's share of non-Latin letters."""
    stats, sources, targets = TextStats(), TextStats(index=False), TextStats(index=False)
    fields: tuple[str, ...] = ()
    for row, record in enumerate(records, start=1):
        fields = fields or tuple(record)
        source, target = read.texts(record, path, row)
        stats.add([source], [target])
        sources.add([source])
        targets.add([target])
    if not stats.inputs:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    shares = (sources.summary(path, "", ()).non_latin_share, targets.summary(path, "", ()).non_latin_share)
    return stats.summary(path, fmt or data_format(path), fields, **extra), shares


def default_model(source: str, target: str, non_latin: tuple[float, float]) -> str | None:
    """A Marian model made for the pair when Helsinki-NLP publishes one; mT5 when either side is mostly
    non-Latin (T5's vocabulary has no Chinese, Japanese, Arabic, ...); else the task's default."""
    pair = (base_language(source), base_language(target))
    if pair[1] in OPUS_MT_PAIRS.get(pair[0], ()):
        return f"Helsinki-NLP/opus-mt-{pair[0]}-{pair[1]}"
    if max(non_latin) > NON_LATIN:
        return TASKS["translation"].multilingual_model
    return None


# --- moses layout: two files of one sentence per line --------------------------------------------------------


def moses_pair(spec: ProjectSpec) -> tuple[Path, str, str] | None:
    """The common name of a Moses pair that `--data` names, with the source and target language: `--data` is
    one file of the pair (train.en: a language code for its suffix, the other language's file beside it), or
    the name both share (train, as fairseq's --trainpref names them). None for any other data file."""
    path = spec.train_data
    if spec.data_layout in ("wmt", "columns"):
        return None
    if path.exists():
        if not _language_suffix(path):
            return None
        prefix, given = path.with_suffix(""), path.suffix[1:]
    else:
        prefix, given = path, None
    found = _pair_languages(prefix)
    if not found and given is None:
        return None  # a missing file: the readers say so
    source, target = _pair_direction(spec, prefix, given, found)
    for lang, flag in ((source, "--source-lang"), (target, "--target-lang")):
        if lang not in found:
            files = ", ".join(pair_file(prefix, other).name for other in found)
            raise DataError(f"{path}: no {pair_file(prefix, lang).name} beside it for {flag} {lang}; found {files}")
    if source == target:
        raise DataError(f"source and target language are both `{source}`; pass two different languages")
    return prefix, source, target


def _pair_direction(spec: ProjectSpec, prefix: Path, given: str | None, found: list[str]) -> tuple[str, str]:
    """The flags' languages (as the files spell them: a suffix is what data.py opens), else the `--data` file's
    language as the source and the one other file's as the target."""
    spelled = {lang.lower(): lang for lang in found}
    wanted = [spelled.get(lang.lower(), lang) if lang else None for lang in (spec.source_lang, spec.target_lang)]
    source = wanted[0] or (given if given != wanted[1] else None)
    target = wanted[1] or (given if given is not None and given != source else None)
    if source is not None and target is not None:
        return source, target
    rest = [lang for lang in found if lang not in (source, target)]
    if source is None and target is None and given is None:
        raise DataError(
            f"{spec.train_data}: {' and '.join(pair_file(prefix, lang).name for lang in found)} share this name; "
            f"pass --source-lang and --target-lang ({' or '.join(found)}), or --data the source file"
        )
    if not rest:
        example = "de" if given != "de" else "en"
        raise DataError(
            f"{spec.train_data} reads as one side of a parallel corpus (a sentence per line, `{given}` by its "
            f"suffix), but no translation lies beside it; put the other language's file next to it as "
            f"{pair_file(prefix, example).name} (line N translating line N), or use csv, tsv or jsonl"
        )
    if len(rest) > 1:
        flag = "--source-lang" if source is None else "--target-lang"
        raise DataError(
            f"{spec.train_data}: {', '.join(pair_file(prefix, lang).name for lang in rest)} lie beside it; pick the "
            f"pair with {flag} ({' or '.join(rest)})"
        )
    return source or rest[0], target or rest[0]


def _language_suffix(path: Path) -> bool:
    """`.en`, `.pt_br`: no data format's suffix (csv, json, txt, ...) is a language code."""
    return is_language_code(path.suffix[1:])


def _pair_languages(prefix: Path) -> list[str]:
    """The languages of the files named `prefix` plus a language-code suffix."""
    files = (other for other in prefix.parent.glob(f"{glob.escape(prefix.name)}.*") if other.is_file())
    return sorted({f.suffix[1:] for f in files if f.name == prefix.name + f.suffix and _language_suffix(f)})


def pair_file(prefix: Path, lang: str) -> Path:
    """One file of a pair: the common name plus the language (data.py swaps the suffix of either file)."""
    return prefix.parent / f"{prefix.name}.{lang}"


class MosesPair:
    """The sentence pairs of two files of one sentence per line, as the project's data.py reads them: split at
    line feeds only (a carriage return before one dropped), blank lines at the end dropped, and pairs with an
    empty side skipped, as Moses' clean-corpus-n.perl skips them."""

    def __init__(self, prefix: Path, source: str, target: str) -> None:
        self.source, self.target = source, target
        self.files = (pair_file(prefix, source), pair_file(prefix, target))
        self.skipped = 0

    @property
    def encoding(self) -> str:
        """The pair's encoding besides UTF-8 (config.yaml's data_encoding reads both files): English is often
        plain ASCII beside a GB18030 or cp1252 translation. Two legacy encodings cannot share one setting."""
        found = {data_encoding(file): file for file in self.files if file.is_file()}
        legacy = [encoding for encoding in found if not encoding.startswith("utf-")]
        if len(legacy) > 1:
            file = found[legacy[1]]
            raise DataError(
                f"{file} is {legacy[1]} text and {found[legacy[0]].name} {legacy[0]}; one project reads one "
                f"encoding besides UTF-8: convert one (iconv -f {legacy[1]} -t UTF-8 {file.name} > {file.name}.tmp "
                f"&& mv {file.name}.tmp {file.name})"
            )
        return legacy[0] if legacy else "utf-8"

    def records(self) -> Iterator[dict[str, str]]:
        sources, targets = (read_lines(file) for file in self.files)
        if len(sources) != len(targets):
            raise DataError(
                f"{self.files[0]} has {len(sources):,} lines and {self.files[1]} {len(targets):,}; line N of one "
                "must translate line N of the other: find the sentence missing, or split over two lines, and fix it"
            )
        self.skipped = 0
        for source, target in zip(sources, targets, strict=True):
            if source.strip() and target.strip():
                yield {self.source: source, self.target: target}
            else:
                self.skipped += 1


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"data file {path} not found; check the path")
    try:
        with sniff.open_text(path, text_codec(path), newline="") as f:
            lines = [line.removesuffix("\r") for line in f.read().split("\n")]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not {exc.encoding} text throughout ({exc.reason}); re-save it as UTF-8") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _probe_moses(spec: ProjectSpec, prefix: Path, source: str, target: str) -> Probed:
    flags = [flag for flag, given in (("--header", spec.header), ("--column", spec.columns)) if given]
    if flags:
        raise DataError(f"{spec.train_data} is a file of one sentence per line, without columns; drop {flags[0]}")
    train = MosesPair(prefix, source, target)
    read = Reader(None, source, target)
    summary, non_latin = summarize(train.files[0], read, train.records(), "moses", encoding=train.encoding)
    evaluation = None
    if spec.eval_data:
        pair = MosesPair(_moses_eval(spec.eval_data, source, target), source, target)
        encodings = {encoding for encoding in (train.encoding, pair.encoding) if not encoding.startswith("utf-")}
        if len(encodings) > 1:
            raise DataError(
                f"eval data {pair.files[0]} is {pair.encoding} text and the training pair {train.encoding}; one "
                "project reads one encoding besides UTF-8: convert the eval files to UTF-8 (iconv -t UTF-8)"
            )
        evaluation = summarize(pair.files[0], read, pair.records(), "moses", encoding=pair.encoding)[0]
    files = " + ".join(file.name for file in train.files)
    skipped = f"; {train.skipped:,} pair(s) with an empty line skipped" if train.skipped else ""
    return Probed(
        # data.py opens the pair by swapping the suffix of a file of it: the paths recorded are the source files.
        updates={
            "columns": {},
            "data_layout": "moses",
            "source_lang": source,
            "target_lang": target,
            "train_data": train.files[0],
            "eval_data": evaluation.path if evaluation else None,
        },
        train=summary,
        eval=evaluation,
        description=f"{source} → {target} ({files}, a sentence per line{skipped})",
        default_model=default_model(source, target, non_latin),
    )


def _moses_eval(path: Path, source: str, target: str) -> Path:
    """The eval data is a pair in the same languages, named by one of its files or by their common name: dev.en
    (or dev) finds dev.de."""
    prefix = path.with_suffix("") if path.exists() and path.suffix[1:] in (source, target) else path
    missing = [pair_file(prefix, lang).name for lang in (source, target) if not pair_file(prefix, lang).is_file()]
    if len(missing) == 1:
        raise DataError(f"eval data {path}: no {missing[0]} beside it; the eval pair needs both files")
    if missing:
        raise DataError(
            f"eval data {path}: the training data is a pair of sentence-per-line files, so the eval data must be "
            f"a pair too: pass --eval-data dev.{source} with dev.{target} beside it"
        )
    return prefix


# --- files without a header row --------------------------------------------------------------------------------


def suggest_header(rows: list[list[str]]) -> str:
    """The --header for a file without a header row: a language code for each text column whose language the
    text shows, `attribution` for Tatoeba's licence notes, `id` for numbers, `columnN` for anything else."""
    width = max(len(fields) for fields in rows)
    names: list[str] = []
    for index in range(width):
        values = [fields[index] for fields in rows if len(fields) > index and fields[index].strip()]
        name = _column_name(values)
        names.append(name if name and name not in names else f"column{index + 1}")
    languages = [name for name in names if is_language_code(name)]
    if len(languages) == 2:
        return (
            f"name its {width} columns in order: --header {','.join(names)} (languages guessed from the text: "
            "check them; the first is the source)"
        )
    return (
        f"name its {width} columns in order with --header, a language code for each of the two languages "
        f"(e.g. --header en,de{',note' * (width - 2)})"
    )


def _column_name(values: list[str]) -> str | None:
    if not values:
        return None
    if sum("attribution" in value.lower() or "cc-by" in value.lower() for value in values) > len(values) / 2:
        return "attribution"
    if all(is_number(value) for value in values):
        return "id"
    return guess_language(values)


# Scripts that one language writes in far more than any other; kana first (Japanese also writes Han).
_SCRIPTS = (
    ("ja", ((0x3040, 0x30FF),)),
    ("ko", ((0xAC00, 0xD7AF), (0x1100, 0x11FF))),
    ("zh", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))),
    ("ru", ((0x0400, 0x04FF),)),
    ("ar", ((0x0600, 0x06FF),)),
    ("he", ((0x0590, 0x05FF),)),
    ("el", ((0x0370, 0x03FF),)),
    ("th", ((0x0E00, 0x0E7F),)),
    ("hi", ((0x0900, 0x097F),)),
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent short words of Latin-script languages, none in two of the lists.
_FUNCTION_WORDS = {
    "en": _words("the is are you i to it and of this that he she have my do not what"),
    "de": _words("der die das und ist ich nicht du sie ein eine wir mit sind haben auf"),
    "fr": _words("le les est et je vous pas nous suis ce il une des très"),
    "es": _words("el los las y es yo tengo muy por pero qué"),
    "it": _words("è di che non sono io ho molto gli"),
    "pt": _words("o os é não eu você muito com uma"),
    "nl": _words("het een niet ik zijn wat van ook dat"),
}
_WORD = re.compile(r"[^\W\d_]+")


def guess_language(texts: list[str]) -> str | None:
    """The language a column's texts are in, where the script or the frequent words tell it; else None."""
    letters = [ch for text in texts for ch in text if ch.isalpha()]
    if not letters:
        return None
    for lang, ranges in _SCRIPTS:
        share = sum(any(low <= ord(ch) <= high for low, high in ranges) for ch in letters) / len(letters)
        if share > (0.1 if lang == "ja" else 0.5):
            return lang
    words = Counter(word.lower() for text in texts for word in _WORD.findall(text))
    votes = sorted(((sum(words[w] for w in common), lang) for lang, common in _FUNCTION_WORDS.items()), reverse=True)
    (best, lang), (second, _) = votes[0], votes[1]
    return lang if best >= 3 and best >= 2 * second else None
