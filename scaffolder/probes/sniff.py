"""What a data file holds, from its bytes, not its name: the text encoding, then the layout (csv, tsv, json,
jsonl, CoNLL or plain text). Files come as distributed (`eng.train`, `dev`, JSON lines saved as `.json`, a csv
saved as `.txt`), so the suffix only breaks ties. The project's data.py decodes files by the same rule (see
templates/common/read_text.py.inc), and config.yaml records what was found here.

Encodings: a byte-order mark names its encoding (UTF-8, UTF-16, UTF-32); else valid UTF-8 is UTF-8; else
charset-normalizer guesses among the common legacy encodings (imported only then: most files are UTF-8), from
the lines outside ASCII. Its guesses on short files waver, so two preferences follow what the data is likely
to be: GB18030 for simplified Chinese (a superset of GB2312 and GBK, which it names in turn), and cp1252 for
Western European text when that reads it too (it often names cp1250, which turns è into č). Turkish cp1254
then reads as cp1252 (ş as þ): such a file is best re-saved as UTF-8.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from scaffolder.errors import DataError

# Byte-order marks, UTF-32's first: its little-endian mark starts with UTF-16's.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
CHUNK = 1 << 20  # bytes decoded at a time to check UTF-8
GUESS_BYTES = 1 << 20  # bytes of non-ASCII lines charset-normalizer sees; the whole file is checked after
HEAD_CHARS = 1 << 16  # characters read to decide the layout
SAMPLE_LINES = 200
CHINESE = ("gb2312", "gbk", "cp936", "hz", "gb18030")  # charset-normalizer's names for simplified Chinese
# The legacy encodings data files come in, the only ones guessed: among all of Python's codecs, a few accented
# words read best as a Nordic, Baltic or Urdu code page (cp1006 for `café`), and Hebrew as KOI8-R.
LEGACY = (
    "gb18030", "big5", "cp932", "euc_jp", "cp949",  # Chinese (simplified, traditional), Japanese, Korean
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874",
    "iso8859_2", "iso8859_15",
)  # fmt: skip
# A prefix this rich in valid multi-byte UTF-8 before the first invalid byte is a UTF-8 file with a foreign
# part, not a legacy encoding (whose bytes rarely form valid UTF-8 sequences even twice in a row).
MIXED_UTF8_CHARS = 8
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CONLL_SUFFIXES = (".conll", ".bio", ".iob")
CONLL_DOCSTART = "-DOCSTART-"  # CoNLL-2003 document separators: not sentences
_TO_JSONL = "convert it to jsonl: pandas.{}('{{name}}').to_json('{{stem}}.jsonl', orient='records', lines=True)"
GZIP_MAGIC = b"\x1f\x8b"  # a gzip-compressed file (`train.csv.gz`): read through gzip, as data.py does
# Columnar files `datasets` reads (and the probe, through pyarrow), by their first bytes; an Arrow stream (what
# `datasets` writes) has no magic of its own: its `.arrow` name says it.
COLUMNAR_MAGIC = ((b"PAR1", "parquet"), (b"ARROW1", "arrow"))
COLUMNAR_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow"}
# Files that are not data, by their first bytes: what they are, and the conversion that makes them readable.
MAGIC = (
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)", "save the sheet as CSV UTF-8, or unzip it"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook", "save the sheet as CSV UTF-8"),
)
# Suffixes of binary formats: a file named so is refused even if its bytes happen to read as text.
BINARY_SUFFIXES = (".xlsx", ".xls", ".pkl", ".pickle", ".npy", ".npz", ".h5", ".zip")
NAMES = {
    "csv": "CSV",
    "tsv": "TSV",
    "json": "JSON",
    "jsonl": "JSON lines",
    "conll": "CoNLL text",
    "txt": "plain text",
    "parquet": "Parquet",
    "arrow": "Arrow",
}


@dataclass(frozen=True)
class Sniffed:
    format: str  # csv, tsv, json, jsonl, conll or txt
    encoding: str  # utf-8, utf-16, utf-32, or the legacy codec that reads the file (gb18030, cp1252, ...)

    @property
    def codec(self) -> str:
        """The codec to open the file with: UTF-8's drops a byte-order mark at the start."""
        return "utf-8-sig" if self.encoding == "utf-8" else self.encoding


def sniff(path: Path) -> Sniffed:
    """The encoding and layout of an existing, non-empty file (each probe asks several times: cached)."""
    stat = path.stat()
    return _sniff(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sniff(path: Path, size: int, mtime_ns: int) -> Sniffed:
    columnar = columnar_format(path)
    if columnar:
        return Sniffed(columnar, "utf-8")
    _refuse_binary(path)
    encoding = detect_encoding(path)
    codec = Sniffed("txt", encoding).codec
    return Sniffed(detect_format(path, codec), encoding)


def columnar_format(path: Path) -> str | None:
    """parquet or arrow for a columnar file (by its bytes, or an Arrow stream by its name), else None."""
    with path.open("rb") as f:
        start = f.read(8)
    found = next((name for magic, name in COLUMNAR_MAGIC if start.startswith(magic)), None)
    return found or (COLUMNAR_SUFFIXES.get(path.suffix.lower()) if not is_gzip(path) else None)


def _refuse_binary(path: Path) -> None:
    with open_binary(path) as f:
        start = f.read(8)
    compressed = " inside gzip" if is_gzip(path) else ""
    for magic, what, fix in MAGIC:
        if start.startswith(magic):
            raise DataError(f"{path} is {what}{compressed}, not text; {fix.format(name=path.name, stem=path.stem)}")
    if start.startswith((GZIP_MAGIC, *(magic for magic, _ in COLUMNAR_MAGIC))):
        raise DataError(f"{path} is compressed twice or a compressed Parquet/Arrow file; decompress it (gunzip -k)")
    if layout_suffix(path) in BINARY_SUFFIXES:
        raise DataError(
            f"{path}: unsupported file type `{layout_suffix(path)}`; "
            "convert it to jsonl, or csv, tsv, json (UTF-8 text), or parquet"
        )


# --- reading, through gzip where the file is compressed -------------------------------------------------------


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> BinaryIO:
    """A data file's bytes, decompressed when it is gzip-compressed."""
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")  # type: ignore[return-value]


def open_text(path: Path, encoding: str, errors: str = "strict", newline: str | None = None) -> TextIO:
    return io.TextIOWrapper(open_binary(path), encoding=encoding, errors=errors, newline=newline)


def read_bytes(path: Path) -> bytes:
    with open_binary(path) as f:
        return f.read()


def read_text(path: Path, encoding: str, errors: str = "strict") -> str:
    with open_text(path, encoding, errors) as f:
        return f.read()


def layout_suffix(path: Path) -> str:
    """The suffix that names a file's layout: `train.csv.gz` is a `.csv`."""
    suffixes = [item.lower() for item in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


# --- encoding ------------------------------------------------------------------------------------------------


def detect_encoding(path: Path) -> str:
    with open_binary(path) as f:
        start = f.read(4)
        for bom, name in BOMS:
            if start.startswith(bom):
                return name
        f.seek(0)
        if b"\x00" in f.read(CHUNK):  # valid UTF-8 in the ASCII range, and read so by data.py: refused
            raise DataError(
                f"{path} holds NUL bytes: UTF-16 or UTF-32 text without a byte-order mark, or not text; "
                "re-save it as UTF-8"
            )
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        prefix = ""  # the decoded text before the first invalid byte, while it is short
        while chunk := f.read(CHUNK):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return _legacy_encoding(
                    path, offset + exc.start, prefix + chunk[: exc.start].decode("utf-8", "replace")
                )
            offset += len(chunk)
            if len(prefix) < CHUNK:
                prefix += text
    return "utf-8"


def _legacy_encoding(path: Path, bad: int, before: str) -> str:
    """The encoding of a file that is not UTF-8 (its first invalid byte at offset `bad`), checked on all of it."""
    data = read_bytes(path)
    if sum(ord(ch) > 127 for ch in before) >= MIXED_UTF8_CHARS:
        raise DataError(
            f"{path}, line {_line(data, bad)}: byte 0x{data[bad]:02x} is not UTF-8, though the text before it is "
            "(files of two encodings joined together?); re-save that part as UTF-8"
        )
    encoding = guess_encoding(data)
    if encoding is None:
        raise DataError(f"{path} is not text (no text encoding reads its bytes); pass a csv, tsv, json or jsonl file")
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}, line {_line(data, exc.start)}: byte 0x{data[exc.start]:02x} is neither UTF-8 nor {encoding} "
            f"(the encoding of the lines before it); fix that line, or re-save the file as UTF-8"
        ) from None
    return encoding


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def guess_encoding(data: bytes) -> str | None:
    """charset-normalizer's best guess at a legacy encoding, with the preferences of the module docstring."""
    from charset_normalizer import from_bytes

    matches = from_bytes(_non_ascii_lines(data), cp_isolation=list(LEGACY))
    best = matches.best()
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name  # canonical: gb18030, cp1252, iso8859-10, ...
    if any(codecs.lookup(chinese).name == name for chinese in CHINESE):
        return "gb18030"
    if name.startswith(("utf-8", "ascii")):
        return None  # not UTF-8 (that was checked), so a guess of it is no guess
    candidates = {codecs.lookup(encoding).name for match in matches for encoding in match.could_be_from_charset}
    if "cp1252" in candidates and _latin(str(best)):
        return "cp1252"
    return name


def _non_ascii_lines(data: bytes) -> bytes:
    """The lines with bytes outside ASCII, whole, up to GUESS_BYTES: a mostly English file with some Chinese
    rows is guessed from those rows, not from the English that every code page reads alike."""
    sample, size = [], 0
    for line in io.BytesIO(data):  # legacy multi-byte encodings never use \n inside a character
        if not line.isascii():
            sample.append(line)
            size += len(line)
            if size > GUESS_BYTES:
                break
    return b"".join(sample)


def _latin(text: str) -> bool:
    """Whether the letters outside ASCII are all Latin ones (é, ß, č: not Cyrillic or Greek)."""
    letters = {ch for ch in text if ord(ch) > 127 and ch.isalpha()}
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in letters)


# --- layout --------------------------------------------------------------------------------------------------


def detect_format(path: Path, codec: str) -> str:
    with open_text(path, codec, errors="replace", newline="") as f:
        head = f.read(HEAD_CHARS)
        whole = len(head) < HEAD_CHARS or not f.read(1)
    suffix = layout_suffix(path)
    start = head.lstrip(" \t\r\n\ufeff")
    if start.startswith(("[", "{")):
        return _json_format(path, codec, start, whole, suffix)
    lines = head.splitlines()
    if not whole:
        lines = lines[:-1]  # cut off mid-line
    lines = lines[:SAMPLE_LINES]
    if suffix in CONLL_SUFFIXES or looks_conll(lines):
        return "conll"
    return _delimited(head, lines, suffix) or SUFFIX_FORMATS.get(suffix, "txt")


def _json_format(path: Path, codec: str, start: str, whole: bool, suffix: str) -> str:
    """json (one value: a list of records, or an object holding one) or jsonl (objects one after another: one
    a line, or pretty-printed, as in Hugging Face's wmt_en_ro test files)."""
    if start.startswith("["):
        return "json"
    first, _, rest = start.partition("\n")
    try:
        value = json.loads(first)
    except ValueError:
        pass
    else:  # the first line is an object of its own: JSON lines, unless it is the whole file
        if rest.strip() or not whole:
            return "jsonl"
        # One object on one line: one record, unless it holds the list of them ({"data": [...]}).
        return "json" if suffix not in (".jsonl", ".ndjson") and _holds_records(value) else "jsonl"
    text = read_text(path, codec, errors="replace")
    decoder = json.JSONDecoder()
    try:
        _, end = decoder.raw_decode(text, len(text) - len(text.lstrip(" \t\r\n\ufeff")))
    except ValueError:
        return "json"  # the JSON reader says where it breaks
    return "jsonl" if text[end:].strip() else "json"


def _holds_records(value: object) -> bool:
    lists = [item for item in value.values() if isinstance(item, list)] if isinstance(value, dict) else []
    return len(lists) == 1 and all(isinstance(record, dict) for record in lists[0])


def looks_conll(lines: list[str]) -> bool:
    """CoNLL text: blank lines between sentences, every other line the same few whitespace-separated columns
    (prose lines vary in length), and tags in the last one: B-/I- tags, or values that repeat (the last words
    of sentences rarely do)."""
    rows = [line.split() for line in lines]
    filled = [i for i, fields in enumerate(rows) if fields]
    if not filled:
        return False
    inner = rows[filled[0] : filled[-1] + 1]
    tokens = [fields for fields in inner if fields and fields[0] != CONLL_DOCSTART]
    if not tokens or not any(not fields or fields[0] == CONLL_DOCSTART for fields in inner):
        return False
    widths = {len(fields) for fields in tokens}
    tags = {fields[-1] for fields in tokens}
    # Repetition needs lines to repeat in: three two-word lines of prose ("A line.") have at most three "tags".
    repeated = len(tokens) >= REPEATED_TAG_LINES and len(tags) <= len(tokens) // 3
    tagged = all(_BIO_TAG.match(tag) for tag in tags) or repeated
    return len(widths) == 1 and 2 <= min(widths) <= 10 and tagged


_BIO_TAG = re.compile(r"^(O|[BIESLU][-_].+)$")  # IOB, IOB2, BIOES, BILOU
REPEATED_TAG_LINES = 6  # token lines needed to call tags without B-/I- prefixes tags by their repeating


def delimiter(header: str) -> str:
    """A csv file's delimiter from its header: a comma, unless the header has none and uses `;` (spreadsheet
    exports in many locales) or a tab."""
    if "," in header or not (";" in header or "\t" in header):
        return ","
    return ";" if header.count(";") >= header.count("\t") else "\t"


# A field that a csv writer quoted because it holds a tab, a line break or a quote: `"say ""hi"""`.
_QUOTED_FIELD = re.compile(r'(?:^|\t)"((?:[^"]|"")*(?:""|\t|\n)(?:[^"]|"")*)"(?=\t|\r?\n|$)', re.MULTILINE)


def _delimited(head: str, lines: list[str], suffix: str) -> str | None:
    """tsv or csv when the lines keep the header's number of fields; None when they do not (prose)."""
    header = next((line for line in lines if line.strip()), "")
    if "\t" in header:
        rows = [line.split("\t") for line in lines if line.strip()]
        if _consistent([len(fields) for fields in rows]):
            # GLUE's tsv files hold bare quotes; a file whose writer quoted fields is csv with tabs.
            return "csv" if _QUOTED_FIELD.search(head) and delimiter(header) == "\t" else "tsv"
    sep = delimiter(header)
    if sep not in header:
        return SUFFIX_FORMATS.get(suffix) if suffix in (".csv", ".tsv") else None  # one column, or prose
    text = "\n".join(lines)
    counts = [len(row) for row in csv.reader(io.StringIO(text), delimiter=sep) if row]
    if not _consistent(counts):
        return None
    # Prose whose lines each hold a comma has no header: a file named .csv is refused for it by the reader.
    names = next(csv.reader([header], delimiter=sep))
    if suffix != ".csv" and any(len(name.split()) >= 4 for name in names):
        return None
    return "csv"


def _consistent(counts: list[int]) -> bool:
    """At least two fields a row, the header's count in nine rows of ten (a broken row is the reader's to name)."""
    if len(counts) < 2 or counts[0] < 2:
        return False
    return sum(count == counts[0] for count in counts[1:]) >= 0.9 * (len(counts) - 1)
