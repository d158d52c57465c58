"""Data as it comes from the wild: repeated column names and header lines, missing labels among classes, fields
longer than csv's default limit, BOM + CRLF + quoted newlines, many classes in few rows. The probe refuses what
would train wrongly (naming the line or row) and the project's data.py reads and splits what is fine."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sklearn.model_selection import train_test_split

from conftest import run_cli
from scaffolder.errors import DataError
from scaffolder.probes.readers import iter_records
from scaffolder.probes.text_classification import held_out, probe, problem_type
from scaffolder.spec import ProjectSpec

CSV_DEFAULT_LIMIT = 131_072


def probed(path: Path):
    return probe(ProjectSpec(task="text-classification", train_data=path))


def rows_csv(rows: list[dict[str, str]]) -> str:
    return "text,label\n" + "".join(f"{row['text']},{row['label']}\n" for row in rows)


def class_rows(counts: dict[str, int]) -> list[dict[str, str]]:
    """Rows with the given number of each class, interleaved as a file usually holds them."""
    left = dict(counts)
    rows = []
    while any(left.values()):
        for label in counts:
            if left[label]:
                rows.append({"text": f"text number {len(rows)} about {label}", "label": label})
                left[label] -= 1
    return rows


# --- repeated columns and header lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "header"), [("d.csv", "text,label,text"), ("d.tsv", "text\tlabel\ttext")])
def test_a_column_name_used_twice_is_refused_naming_it(write_file, name: str, header: str) -> None:
    sep = "\t" if name.endswith(".tsv") else ","
    path = write_file(name, header + "\n" + "".join(sep.join([f"a{i}", str(i % 2), f"b{i}"]) + "\n" for i in range(12)))
    with pytest.raises(DataError, match=r"the header names `text` more than once; .*rename or remove"):
        list(iter_records(path))


def test_unnamed_columns_may_repeat_and_are_never_a_role(write_file) -> None:
    # pandas' to_csv writes its index as an unnamed first column; trailing commas make more unnamed columns.
    path = write_file("kaggle.csv", ",text,label,,\n" + "".join(f"{i},some text {i},{i % 2},,\n" for i in range(12)))
    assert probed(path).updates["columns"] == {"text": "text", "label": "label"}
    odd = write_file("odd.csv", ",review\n" + "".join(f"{i},a long review number {i}\n" for i in range(12)))
    with pytest.raises(DataError, match="no label column found"):  # not the index column
        probed(odd)


@pytest.mark.parametrize(
    "record",
    ['{"text": "a", "label": 1, "text": "b"}', '{"text": "a", "meta": {"k": 1, "k": 2}, "label": 1}'],
)  # json.loads would keep the last value of each
def test_a_json_key_used_twice_in_one_object_is_refused(write_file, record: str) -> None:
    lines = ['{"text": "x", "label": 0}', '{"text": "y", "label": 1}', record]
    path = write_file("d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl, line 3: key `(text|k)` appears twice in one object"):
        list(iter_records(path))
    whole = write_file("d.json", "[" + ",".join(lines) + "]")
    with pytest.raises(DataError, match=r"d.json: key `(text|k)` appears twice"):
        list(iter_records(whole))


def test_a_header_repeated_inside_the_data_is_refused_naming_its_line(tmp_path: Path) -> None:
    # Two exports joined: BOM, CRLF line ends and quoted newlines, and the second file's BOM and header at line 9
    # (lines 2-8 hold six rows, one of them over two lines).
    first = ['1,"one\r\nline two",a', "2,two,b", '3,"three, with a comma",a', "4,four,b", "5,five,a", "6,six,b"]
    second = ["7,seven,a", "8,eight,b"]
    path = tmp_path / "joined.csv"
    body = "\ufeffid,text,label\r\n" + "\r\n".join(first) + "\r\n\ufeffid,text,label\r\n" + "\r\n".join(second)
    path.write_bytes(body.encode("utf-8"))
    with pytest.raises(DataError, match=r"joined.csv, line 9 repeats the header \(files joined together\?\); remove"):
        list(iter_records(path))


def test_jsonl_files_joined_with_their_byte_order_marks_are_refused_at_the_line(tmp_path: Path) -> None:
    part = "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(6))
    path = tmp_path / "joined.jsonl"
    path.write_bytes(("\ufeff" + part + "\ufeff" + part).encode("utf-8"))  # the first mark is the file's own
    with pytest.raises(DataError, match=r"joined.jsonl, line 7 starts with a byte-order mark"):
        list(iter_records(path))


def test_a_spreadsheet_delimiter_hint_is_refused(write_file) -> None:
    path = write_file("excel.csv", "sep=;\ntext;label\n" + "".join(f"t{i};{i % 2}\n" for i in range(12)))
    with pytest.raises(DataError, match=r"the first line \(`sep=...`\) is a spreadsheet's delimiter hint"):
        list(iter_records(path))


# --- missing labels ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "shown"),
    [("NaN", "`NaN`, a missing value"), ("null", "empty"), ('""', "empty"), ('"nan"', "`nan`, a missing value"),
     ('"NULL"', "`NULL`, a missing value"), ('"  "', "empty")],
)  # fmt: skip
def test_a_missing_label_among_integer_classes_is_refused_with_its_row(write_file, label: str, shown: str) -> None:
    # Row 8 (the eighth record) has no label; json reads NaN as a float, which once made this a regression.
    lines = [json.dumps({"text": f"text {i}", "label": i % 3}) for i in range(20)]
    lines[7] = '{"text": "text 7", "label": ' + label + "}"
    path = write_file("d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"d.jsonl, row 8: the label is {shown}; fill it in or remove the row"):
        probed(path)


def test_missing_labels_do_not_make_a_regression() -> None:
    sample = [{"label": value} for value in [0, 1, 2, float("nan"), None, "", "nan", 1, 0, 2]]
    assert problem_type(sample, "label") == "single_label_classification"
    scores = [{"label": value} for value in [0.5, 1.25, float("nan"), 3.75, 2.0, 4.5, 0.25, 1.0, 3.5, 2.75]]
    assert problem_type(scores, "label") == "regression"


def test_every_row_without_a_label_is_counted(write_file) -> None:
    rows = [f"text {i},{'' if i in (3, 9, 15) else ('NaN' if i == 12 else i % 2)}" for i in range(20)]
    path = write_file("d.csv", "text,label\n" + "\n".join(rows) + "\n")
    # Data rows 4, 10, 13 and 16 (file lines 5, 11, 14, 17).
    with pytest.raises(DataError, match=r"row 4: the label is empty, and 3 more row\(s\) have no label \(10, 13, 16\)"):
        probed(path)


def test_a_nan_regression_target_is_refused_with_its_row(write_file) -> None:
    lines = [json.dumps({"text": f"pair {i}", "score": i / 4}) for i in range(16)]
    lines[10] = '{"text": "pair 10", "score": NaN}'
    path = write_file("d.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"d.jsonl, row 11: the label is `NaN`, a missing value"):
        probed(path)


@pytest.mark.parametrize("name", ["None", "NA", "N/A", "n/a", "none"])
def test_missing_value_spellings_that_name_classes_stay_classes(write_file, name: str) -> None:
    # LUIS has a `None` intent; "NA"/"N/A" is "not applicable" in many annotation schemes.
    labels = ["book", "play", name]
    path = write_file("d.csv", "text,label\n" + "".join(f"utterance {i},{labels[i % 3]}\n" for i in range(18)))
    assert name in probed(path).updates["labels"]


# --- long fields -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["long.csv", "long.tsv"])
def test_a_field_over_csvs_default_limit_is_read_by_the_probe_and_the_project(
    write_file, project_data, name: str
) -> None:
    sep = "\t" if name.endswith(".tsv") else ","
    long_text = "word " * (CSV_DEFAULT_LIMIT // 4)
    rows = [sep.join([long_text if i == 3 else f"text {i}", str(i % 2)]) for i in range(12)]
    path = write_file(name, f"text{sep}label\n" + "\n".join(rows) + "\n")
    assert len(long_text) > CSV_DEFAULT_LIMIT
    assert probed(path).train.num_rows == 12
    data, _, _ = project_data(path)
    csv.field_size_limit(CSV_DEFAULT_LIMIT)  # the probe raised it in this process; the project must raise it itself
    assert data.read_records(path)[3]["text"] == long_text


# --- a messy but valid file --------------------------------------------------------------------------------------


def test_bom_crlf_quoted_newlines_and_an_index_column_read_as_written(tmp_path: Path, project_data) -> None:
    texts = [f'review {i}, with "quotes" and\r\na second line' if i % 3 == 0 else f"review {i}" for i in range(24)]
    lines = [f'{i},"{text.replace(chr(34), chr(34) * 2)}",{"ab"[i % 2]}' for i, text in enumerate(texts)]
    path = tmp_path / "export.csv"
    path.write_bytes(("\ufeff,text,label\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    result = probed(path)
    assert result.updates["columns"] == {"text": "text", "label": "label"}
    assert result.train.num_rows == 24 and result.train.label_counts == {"a": 12, "b": 12}
    data, _, _ = project_data(path)
    assert [row["text"] for row in data.read_records(path)] == texts


# --- the held-out split ------------------------------------------------------------------------------------------


@pytest.fixture
def project_data(render_project) -> Callable[[Path], tuple[ModuleType, Any, Any]]:
    """load(data file) -> (the generated data module, its Config, the plan): a project rendered in-process."""
    return lambda train_data: render_project("text-classification", train_data)[:3]


def split_of(project_data, path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    data, cfg, plan = project_data(path)
    train, evaluation = data.load_splits(cfg)
    return train.to_list(), evaluation.to_list(), plan


def test_many_classes_in_few_rows_hold_out_one_row_per_class(write_file, project_data, caplog) -> None:
    rows = class_rows({f"c{k}": 5 for k in range(8)})  # 40 rows, 8 classes: 10% is 4 rows
    labels = [row["label"] for row in rows]
    with pytest.raises(ValueError, match="should be greater or equal to the number of classes"):
        train_test_split(rows, test_size=0.1, random_state=0, stratify=labels)  # what data.py did
    path = write_file("many.csv", rows_csv(rows))
    train, evaluation, plan = split_of(project_data, path)
    expected_train, expected_eval = train_test_split(rows, test_size=8, random_state=0, stratify=labels)
    assert (train, evaluation) == (expected_train, expected_eval)
    assert Counter(row["label"] for row in evaluation) == {f"c{k}": 1 for k in range(8)}
    assert "eval: 8 rows held out instead of 4, as many as there are classes" in caplog.text  # data.py says so
    assert "eval: 8 rows held out instead of 10% (4), as many as there are classes" in plan.description
    assert held_out(plan.train, 0.1).rows == len(evaluation)


def test_classes_with_a_single_row_stay_in_train(write_file, project_data) -> None:
    counts = {**{f"c{k}": 6 for k in range(7)}, "rare1": 1, "rare2": 1, "rare3": 1}  # 45 rows: 10% is 5 rows
    rows = class_rows(counts)
    path = write_file("rare.csv", rows_csv(rows))
    train, evaluation, plan = split_of(project_data, path)
    pool = [row for row in rows if counts[row["label"]] > 1]
    single = [row for row in rows if counts[row["label"]] == 1]
    expected_train, expected_eval = train_test_split(
        pool, test_size=7, random_state=0, stratify=[row["label"] for row in pool]
    )
    assert evaluation == expected_eval and train == expected_train + single
    assert "3 class(es) with a single row stay in train, none in eval (rare1, rare2, rare3)" in plan.description
    assert held_out(plan.train, 0.1).rows == len(evaluation) == 7


def test_too_many_classes_for_the_rows_split_at_random_and_say_so(write_file, project_data) -> None:
    rows = class_rows({f"c{k}": 2 for k in range(10)})  # 20 rows: a row per class would be half of them
    path = write_file("pairs.csv", rows_csv(rows))
    train, evaluation, plan = split_of(project_data, path)
    assert (train, evaluation) == tuple(train_test_split(rows, test_size=2, random_state=0))
    assert "eval: 2 rows held out at random, not stratified (a row for each of the 10 classes" in plan.description


def test_a_split_that_sklearn_could_stratify_is_unchanged(write_file, project_data) -> None:
    rows = class_rows({"pos": 20, "neg": 15})  # 10% of 35 rows: sklearn rounds up to 4
    path = write_file("reviews.csv", rows_csv(rows))
    train, evaluation, plan = split_of(project_data, path)
    labels = [row["label"] for row in rows]
    assert (train, evaluation) == tuple(train_test_split(rows, test_size=0.1, random_state=0, stratify=labels))
    assert len(evaluation) == held_out(plan.train, 0.1).rows == 4
    assert "eval:" not in plan.description


# --- through the command line ------------------------------------------------------------------------------------


def test_the_cli_refuses_a_messy_bad_file_in_one_line_and_reads_a_messy_good_one(tmp_path: Path) -> None:
    good = "\ufeff,text,label\r\n" + "".join(f'{i},"line one of {i}\r\nline two",c{i % 8}\r\n' for i in range(40))
    (tmp_path / "good.csv").write_bytes(good.encode("utf-8"))
    (tmp_path / "bad.csv").write_bytes((good + "\ufeff,text,label\r\n0,again,c0\r\n").encode("utf-8"))
    bad = run_cli("new", "--task", "text-classification", "--data", "bad.csv", "--no-smoke", "--output", "out",
                  cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1, bad.stderr
    assert "bad.csv, line 82 repeats the header (files joined together?); remove that line" in bad.stderr
    assert not (tmp_path / "out").exists()
    done = run_cli("new", "--task", "text-classification", "--data", "good.csv", "--no-smoke", "--output", "out",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "eval: 8 rows held out instead of 10% (4)" in done.stderr
    assert (tmp_path / "out" / "data.py").is_file()
