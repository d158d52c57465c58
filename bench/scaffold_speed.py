"""Benchmark: scaffolder's own speed. `scaffold new --no-smoke` (probe the data, render, check every file across
files, commit to git) against copier rendering the same files, each run as a user would run it: a fresh process,
a fresh output folder. Reports the median wall time of each and the ratio.

    python bench/scaffold_speed.py [--repeats 7]

The copier template is made from the scaffolded project itself: every file of it (as a raw Jinja block, so copier
renders it unchanged) plus a copier.yml asking the spec's questions with their defaults. copier writes the files
and stops; scaffolder also parses and checks them and makes the git commit. Needs `pip install copier`.
Results: stdout, bench/results/scaffold_speed.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, ENV

REPO = BENCH.parent
COMMAND = ["new", "--task", "text-classification", "--data", str(REPO / "examples/text-classification/train.csv"),
           "--eval-data", str(REPO / "examples/text-classification/dev.csv"), "--no-smoke"]  # fmt: skip


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env={**ENV, "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                                          "HOME": str(cwd)}, check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def copier_template(project: Path, template: Path) -> int:
    """A copier template that renders `project`'s files; returns how many files it holds."""
    files = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.relative_to(project).parts]
    for path in files:
        target = template / "template" / f"{path.relative_to(project)}.jinja"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("{% raw %}" + path.read_text(encoding="utf-8") + "{% endraw %}", encoding="utf-8")
    answers = {"task": "text-classification", "model": "google-bert/bert-base-uncased", "peft": "none"}
    questions = "".join(f"{key}:\n  type: str\n  default: {value}\n" for key, value in answers.items())
    (template / "copier.yml").write_text(f"_subdirectory: template\n_templates_suffix: .jinja\n{questions}")
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    copier = shutil.which("copier", path=str(Path(sys.executable).parent))
    if copier is None:
        raise SystemExit("copier is not installed: pip install copier")
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        root = Path(tmp)
        timed([sys.executable, "-m", "scaffolder", *COMMAND, "--output", str(root / "first")], root)
        count = copier_template(root / "first", root / "copier-template")
        for i in range(args.repeats):  # alternating, so a slow spell of the machine hits both
            scaffold = [sys.executable, "-m", "scaffolder", *COMMAND, "--output", str(root / f"ours-{i}")]
            ours.append(timed(scaffold, root))
            theirs.append(timed([copier, "copy", "--defaults", "--quiet", "--trust", str(root / "copier-template"),
                                 str(root / f"copier-{i}")], root))  # fmt: skip
            print(f"scaffold new --no-smoke {ours[-1]:.2f} s, copier copy {theirs[-1]:.2f} s", flush=True)
    summary = {"files": count, "repeats": args.repeats, "scaffold_new_seconds": statistics.median(ours),
               "copier_copy_seconds": statistics.median(theirs)}  # fmt: skip
    summary["ratio"] = summary["scaffold_new_seconds"] / summary["copier_copy_seconds"]
    print(f"{count} files: scaffold new --no-smoke {summary['scaffold_new_seconds']:.2f} s, copier copy "
          f"{summary['copier_copy_seconds']:.2f} s (median of {args.repeats}): "
          f"{summary['ratio']:.2f}x copier's time")  # fmt: skip
    out = BENCH / "results" / "scaffold_speed.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
