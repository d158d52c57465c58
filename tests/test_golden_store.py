"""The golden store gives back every file as it was given, and a change that renders share is stored once."""

from __future__ import annotations

import random
from pathlib import Path

import golden_store

BASE = "".join(f"line {i}\n" if i % 7 else "\n" for i in range(60))  # blank lines repeat: contexts must grow


def variants() -> dict[str, dict[str, str]]:
    lines = BASE.splitlines(keepends=True)
    return {
        "first": {"a.py": BASE, "same.txt": "x\n", "no-newline.txt": "end", "crlf.txt": "a\r\nb\r\n"},
        "inserted-at-top": {"a.py": "# new\n" + BASE, "same.txt": "x\n"},
        "removed-at-end": {"a.py": "".join(lines[:-3]), "same.txt": "x\n", "no-newline.txt": "end"},
        "blank-lines-changed": {"a.py": BASE.replace("\n\n", "\n\n\n"), "sub/b.py": "only here\n"},
        "scattered": {"a.py": "".join(line.replace("line 3", "LINE 3") for line in lines) + "tail\n"},
    }


def test_every_file_reads_back_as_written(tmp_path: Path) -> None:
    renders = variants()
    golden_store.write(tmp_path, renders)
    for name, files in renders.items():
        assert golden_store.read(tmp_path, name) == files
    assert (tmp_path / "inserted-at-top" / "a.py.diff").is_file()  # kept as a difference, not whole
    assert (tmp_path / "removed-at-end" / "no-newline.txt").is_file()  # no final newline: kept whole


def test_random_edits_read_back(tmp_path: Path) -> None:
    rng = random.Random(0)
    lines = BASE.splitlines(keepends=True)
    renders = {}
    for n in range(12):
        edited = list(lines)
        for _ in range(rng.randint(1, 6)):
            at, edit = rng.randrange(len(edited)), rng.choice(["blank", "new", "drop"])
            if edit == "drop":
                del edited[at]
            else:
                edited.insert(at, "\n" if edit == "blank" else f"new {n}\n")
        renders[f"r{n}"] = {"a.py": "".join(edited)}
    golden_store.write(tmp_path, renders)
    assert {name: golden_store.read(tmp_path, name) for name in renders} == renders


def test_a_line_every_render_shares_changes_one_stored_line(tmp_path: Path) -> None:
    renders = variants()
    golden_store.write(tmp_path / "before", renders)
    changed = {name: {path: text.replace("line 40\n", "line forty\n") for path, text in files.items()}
               for name, files in renders.items()}  # fmt: skip
    golden_store.write(tmp_path / "after", changed)
    differing = []
    for path in sorted((tmp_path / "after").rglob("*")):
        if path.is_file():
            before = tmp_path / "before" / path.relative_to(tmp_path / "after")
            differing += [line for line in path.read_text().splitlines() if line not in before.read_text().splitlines()]
    assert differing == ["line forty"]
