"""A second real text-classification dataset, of longer texts than SST-2: Debian package descriptions labelled
with the archive section that says what the software is for.

    python bench/make_debian.py OUT_DIR [--train 4000] [--dev 1000]

Why this one: it is public, written by people (each package's maintainer), and its texts run from one line to
several paragraphs (median about 60 words, against SST-2's 10), so batching by length has real lengths to work
with; and it can be fetched here, from Debian's archive, where no dataset hub can be reached. The label is the
package's section, kept only for the sections that name a purpose (games, science, sound, ...) with at least
200 source packages; language ecosystems (python, ruby) and packaging roles (libs, doc) are left out, and so
are binary packages that only split a source up (-dev, -data, lib*): one package per source, so the same
paragraph never stands in both train and dev. Files: OUT_DIR/train.csv and OUT_DIR/dev.csv (`text,label`), and
OUT_DIR/SOURCE.json naming the archive files and their sha256.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import lzma
import random
import re
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ARCHIVE = "http://deb.debian.org/debian/dists/bookworm/main"
FILES = {"Packages.xz": f"{ARCHIVE}/binary-amd64/Packages.xz", "Translation-en.xz": f"{ARCHIVE}/i18n/Translation-en.xz"}
PURPOSES = ("admin", "editors", "games", "graphics", "mail", "math", "net", "science", "sound", "text", "web")
SPLIT_ONLY = re.compile(r"^lib|-(dev|doc|dbg|data|common|examples|tests?)$")  # parts of a source, not software


def stanzas(path: Path) -> Iterator[dict[str, str]]:
    """The paragraphs of a Debian control file (RFC 822 style, continuation lines indented). Hand-written: the
    format is ten lines of parsing, and python-debian would be a dependency for that alone."""
    with lzma.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def description_text(description: str) -> str:
    """The synopsis and the long description as one text; `.` lines (paragraph breaks) become blank lines."""
    synopsis, *body = description.splitlines()
    lines = [line[1:] if line.strip() != "." else "" for line in body]
    return "\n".join([synopsis + ".", *lines]).strip()


def examples(folder: Path) -> list[dict[str, str]]:
    descriptions = {f["Package"]: f["Description-en"] for f in stanzas(folder / "Translation-en.xz")}
    first_of_source: dict[str, dict[str, str]] = {}
    for package in sorted(stanzas(folder / "Packages.xz"), key=lambda f: f["Package"]):
        if SPLIT_ONLY.search(package["Package"]) or package["Package"] not in descriptions:
            continue
        first_of_source.setdefault(package.get("Source", package["Package"]).split()[0], package)
    rows = [
        {"text": description_text(descriptions[p["Package"]]), "label": p["Section"].split("/")[-1]}
        for p in first_of_source.values()
    ]
    unique = {row["text"]: row for row in rows if row["label"] in PURPOSES}
    return list(unique.values())


def fetch(folder: Path) -> dict[str, str]:
    hashes = {}
    for name, url in FILES.items():
        path = folder / name
        if not path.exists():
            urllib.request.urlretrieve(url, path)
        hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def make(out: Path, train: int = 4000, dev: int = 1000, seed: int = 0) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    hashes = fetch(out)
    rows = examples(out)
    random.Random(seed).shuffle(rows)
    if len(rows) < train + dev:
        raise SystemExit(f"only {len(rows)} descriptions; ask for fewer than --train {train} + --dev {dev}")
    write(out / "train.csv", rows[dev : dev + train])
    write(out / "dev.csv", rows[:dev])
    counts = Counter(row["label"] for row in rows[: dev + train])
    source = {"files": FILES, "sha256": hashes, "labels": dict(sorted(counts.items())), "seed": seed}
    (out / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")
    return out / "train.csv", out / "dev.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--dev", type=int, default=1000)
    args = parser.parse_args()
    print(*make(args.out, args.train, args.dev))


if __name__ == "__main__":
    main()
