"""Golden renders stored once: each file of each render is either kept whole or as its difference from the same
file of an earlier render (the most similar one), so a template line that every render shares lives in one golden
file, and changing it changes one line of tests/golden.

    tests/golden/<render>/FILES          every path the render writes, one per line
    tests/golden/<render>/<path>         a file kept whole
    tests/golden/<render>/<path>.diff    `from <render>` and the hunks that turn that render's file into this one

A hunk names no line numbers (they would change with every line added above it): it is the lines before the
change that locate it (as few as make the place unique from the end of the previous hunk), then the lines it
removes (`-`) and adds (`+`). Only files whose lines all end in a newline are stored as differences. Why not
git's or difflib's patch formats: their hunk headers hold line numbers, which is the noise this store removes.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

LISTING = "FILES"
DIFF = ".diff"
MAX_CONTEXT = 12  # lines of context a hunk may need to be unique; beyond, the file is kept whole
WHOLE_SHARE = 0.5  # a difference longer than this share of the file is no easier to review than the file


def write(root: Path, renders: dict[str, dict[str, str]]) -> None:
    """Replace `root` with `renders` (render name -> path -> text), in the order given."""
    shutil.rmtree(root, ignore_errors=True)
    done: dict[str, dict[str, str]] = {}
    for name, files in renders.items():
        folder = root / name
        folder.mkdir(parents=True)
        (folder / LISTING).write_text("".join(f"{path}\n" for path in sorted(files)), encoding="utf-8")
        for path, text in sorted(files.items()):
            stored = _as_difference(path, text, done)
            target = folder / (path + DIFF if stored is not None else path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text if stored is None else stored, encoding="utf-8", newline="")
        done[name] = files


def read(root: Path, name: str) -> dict[str, str]:
    """The files of render `name`, as `write` was given them."""
    paths = (root / name / LISTING).read_text(encoding="utf-8").splitlines()
    return {path: read_file(root, name, path) for path in paths}


def read_file(root: Path, name: str, path: str) -> str:
    whole = root / name / path
    if whole.is_file():
        return _read(whole)
    base, _, hunks = _read(root / name / (path + DIFF)).partition("\n")
    return apply(read_file(root, base.removeprefix("from "), path), hunks)


def _read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as f:  # as written: a `\r` stays
        return f.read()


def stored_paths(root: Path, name: str) -> set[str]:
    """What render `name` keeps on disk besides its listing."""
    folder = root / name
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != LISTING}


def _as_difference(path: str, text: str, done: dict[str, dict[str, str]]) -> str | None:
    """The stored difference from the most similar earlier render's file, or None to keep the file whole."""
    if not _lines_end(text):
        return None
    candidates = [(name, files[path]) for name, files in done.items() if path in files and _lines_end(files[path])]
    found = [(hunks, name) for name, base in candidates if (hunks := diff(base, text)) is not None]
    if not found:
        return None
    hunks, name = min(found, key=lambda item: len(item[0]))
    return f"from {name}\n{hunks}" if hunks.count("\n") <= WHOLE_SHARE * text.count("\n") else None


def _lines_end(text: str) -> bool:
    return text.endswith("\n") and "\r" not in text


def diff(base: str, text: str) -> str | None:
    """The hunks that turn `base` into `text`; None when a change cannot be located uniquely."""
    old, new = base.splitlines(keepends=True), text.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0  # where the previous hunk ended in `old`
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        context = _context(old, cursor, i1, i2)
        if context is None:
            return None
        out.append(f"@@ {context}\n")
        out.extend(" " + line for line in old[i1 - context : i1])
        out.extend("-" + line for line in old[i1:i2])
        out.extend("+" + line for line in new[j1:j2])
        cursor = i2
    return "".join(out)


def _context(old: list[str], cursor: int, start: int, end: int) -> int | None:
    """The fewest lines before old[start:end] that make (those lines + old[start:end]) occur once from cursor."""
    for context in range(0, min(MAX_CONTEXT, start - cursor) + 1):
        block = old[start - context : end]
        if not block:
            if start == cursor:
                return 0  # an insertion right where the previous hunk ended
            continue
        if _find(old, block, cursor) == [start - context]:
            return context
    return None


def _find(lines: list[str], block: list[str], start: int) -> list[int]:
    return [i for i in range(start, len(lines) - len(block) + 1) if lines[i : i + len(block)] == block]


def apply(base: str, hunks: str) -> str:
    """`base` with the hunks of `diff` applied."""
    old = base.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    entries = hunks.splitlines(keepends=True)
    i = 0
    while i < len(entries):
        context = int(entries[i].removeprefix("@@ "))
        i += 1
        body = []
        while i < len(entries) and not entries[i].startswith("@@ "):
            body.append(entries[i])
            i += 1
        before = [line[1:] for line in body if line.startswith(" ")]
        removed = [line[1:] for line in body if line.startswith("-")]
        added = [line[1:] for line in body if line.startswith("+")]
        block = before + removed
        found = _find(old, block, cursor) if block else [cursor]
        if len(found) != 1:
            raise ValueError(f"a hunk matches {len(found)} places: {''.join(block)[:200]!r}")
        at = found[0] + context
        out.extend(old[cursor:at])
        out.extend(added)
        cursor = at + len(removed)
    out.extend(old[cursor:])
    return "".join(out)
