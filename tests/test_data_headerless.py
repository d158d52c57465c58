"""Text-classification files as they are distributed without a header row: AG News and Yelp (quoted csv,
`"class","title","description"`), GLUE's CoLA (`source<TAB>label<TAB>mark<TAB>sentence`), a Chinese review
export. `scaffold new` refuses each with the `--header` that reads it; the suggested names are the ones a person
would pick, the suggested command works, and the project's data.py reads the rows a csv reader reads from the
file with those names."""

from __future__ import annotations

import csv
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import refusal, run_cli, suggested_header
from scaffolder.errors import DataError
from scaffolder.probes import headerless, text_classification, text_generation
from scaffolder.spec import ProjectSpec

TOPICS = {
    "1": ("World", ["The ministers met in {city} to talk about the border.", "Talks on the treaty resumed in {city}."]),
    "2": (
        "Sports",
        ["{city} won the final after extra time.", "The striker from {city} scored twice, the coach said."],
    ),
    "3": (
        "Business",
        [
            'Shares in {city} fell as oil rose; "a bad week", one trader said.',
            "Profits at the {city} bank doubled, beating forecasts.",
        ],
    ),
    "4": ("Sci/Tech", ["A lab in {city} released a faster chip.", "Researchers in {city} found the bug in 2 days."]),
}
CITIES = ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Perth", "Quito", "Accra", "Hanoi", "Cairo"]


def ag_news_rows(count: int = 40) -> list[list[str]]:
    """AG News as distributed: class index, title, description (commas, quotes and `\\` escapes inside)."""
    rng = random.Random(0)
    rows = []
    for i in range(count):
        label = str(i % 4 + 1)
        topic, sentences = TOPICS[label]
        city = rng.choice(CITIES)
        title = f"{topic}: {city} story #{i} (AP)"
        description = " ".join(s.format(city=city) for s in sentences) + " \\ More at 11, reports said."
        rows.append([label, title, description])
    return rows


def cola_rows(count: int = 40) -> list[list[str]]:
    """CoLA's in_domain_train.tsv: source, 0/1 judgement, `*` where unacceptable, the sentence (bare quotes)."""
    rows = []
    for i in range(count):
        good = i % 3 != 0
        sentence = f'The child "{CITIES[i % 10]}" {"sleeps soundly" if good else "soundly sleeps the"} at night.'
        rows.append(["gj04" if i < 20 else "bc01", "1" if good else "0", "" if good else "*", sentence])
    return rows


def chinese_rows(count: int = 40) -> list[list[str]]:
    """A Chinese hotel-review export: 1/0 then the review, commas inside quoted fields."""
    good, bad = "房间很干净，服务也很周到，下次还会再来", "房间太小了, 而且隔音很差，不推荐"
    return [["1" if i % 2 else "0", (good if i % 2 else bad) + f"（第{i}条）"] for i in range(count)]


def write_csv(path: Path, rows: list[list[str]], **options: Any) -> Path:
    if options == TSV:  # GLUE's tsv: fields joined by tabs as they are, quotes and all
        path.write_text("".join("\t".join(fields) + "\n" for fields in rows), encoding="utf-8")
        return path
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, **options).writerows(rows)
    return path


def read_csv(path: Path, header: list[str], **options: Any) -> list[dict[str, str]]:
    """The file as Python's csv module reads it, each line's fields named by `header`: the expectation."""
    with path.open(encoding="utf-8", newline="") as f:
        return [dict(zip(header, fields, strict=True)) for fields in csv.reader(f, **options) if fields]


def suggestion(path: Path) -> str:
    with pytest.raises(DataError) as refused:
        text_classification.probe(ProjectSpec(task="text-classification", train_data=path))
    message = str(refused.value)
    assert f"{path} has no header row: line 1 is data" in message
    return suggested_header(message)


TSV = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
LAYOUTS = {
    # file name, rows, csv writer/reader options, the header a person would pick
    "ag-news": ("train.csv", ag_news_rows(), {"quoting": csv.QUOTE_ALL}, "label,text_pair,text"),
    "cola": ("in_domain_train.tsv", cola_rows(), TSV, "column1,label,column3,text"),
    "chinese": ("reviews.csv", chinese_rows(), {}, "label,text"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_suggested_header_names_the_columns_a_person_would(tmp_path: Path, layout: str) -> None:
    name, rows, options, expected = LAYOUTS[layout]
    assert suggestion(write_csv(tmp_path / name, rows, **options)) == expected


@pytest.mark.parametrize("layout", LAYOUTS)
def test_data_py_reads_the_rows_a_csv_reader_reads_with_those_names(
    render_project, tmp_path: Path, layout: str
) -> None:
    name, rows, options, header = LAYOUTS[layout]
    path = write_csv(tmp_path / name, rows, **options)
    names = header.split(",")
    project = render_project("text-classification", path, header=tuple(names))
    cfg, data = project.cfg, project.data
    assert cfg.header == names
    expected = read_csv(path, names, **options)
    read = data.read_dataset(cfg.train_file, cfg.train_format, cfg.data_encoding, header=cfg.header)
    assert read.to_list() == expected
    # The probe read the same rows, and the columns by the names given.
    assert project.plan.train.num_rows == len(expected)
    assert (cfg.text_column, cfg.label_column) == ("text", "label")
    assert cfg.text_pair_column == ("text_pair" if "text_pair" in names else None)
    train, held_out = data.load_splits(cfg)
    assert len(train) + len(held_out) == len(expected)


def test_an_eval_file_without_a_header_is_read_with_the_same_names(render_project, tmp_path: Path) -> None:
    rows = ag_news_rows(48)
    train = write_csv(tmp_path / "train.csv", rows[:40], quoting=csv.QUOTE_ALL)
    test = write_csv(tmp_path / "test.csv", rows[40:], quoting=csv.QUOTE_ALL)
    project = render_project("text-classification", train, eval_data=test, header=("label", "title", "text"))
    assert project.plan.eval.num_rows == 8
    _, evaluation = project.data.load_splits(project.cfg)
    assert [row["text"] for row in evaluation] == [row[2] for row in rows[40:]]
    # evaluation.py and predict.py read a file given to them as train.py reads train_file.
    again = project.data.read_records(test, None, project.cfg.data_encoding, header=project.cfg.header)
    assert again.to_list() == evaluation.to_list()


def test_a_file_with_its_header_given_as_well_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", [["label", "text"], *chinese_rows()])
    spec = ProjectSpec(task="text-classification", train_data=path, header=("label", "text"))
    with pytest.raises(DataError, match=r"train.csv, line 1 is a header row, but --header reads files without one"):
        text_classification.probe(spec)


def test_no_class_like_column_says_so_and_still_names_every_column() -> None:
    rows = [[str(i), f"A sentence of several words, number {i}."] for i in range(30)]
    message = text_classification.suggest_header(rows)
    assert "--header column1,text" in message and "no column looks like a column of repeated classes" in message
    assert headerless.looks_like_data(rows[0])


def test_the_refused_command_suggested_by_the_cli_works(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", ag_news_rows(), quoting=csv.QUOTE_ALL)
    refused = run_cli("new", "--task", "text-classification", "--data", str(path), "--output", "p", "--no-smoke",
                      cwd=tmp_path)  # fmt: skip
    header = suggested_header(refusal(refused))
    assert not (tmp_path / "p").exists()
    made = run_cli("new", "--task", "text-classification", "--data", str(path), "--header", header, "--output", "p",
                   "--no-smoke", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "text + text_pair → label (one class per row); labels 1 10, 2 10, 3 10, 4 10" in made.stderr
    assert 'header = ["label", "text_pair", "text"]' in (tmp_path / "p" / "scaffold.toml").read_text()
    for command in (["check", "--select", "E,F,W,I,B,UP,SIM"], ["format", "--check"]):  # the project's own lint
        lint = subprocess.run([sys.executable, "-m", "ruff", *command, "--no-cache", "."], cwd=tmp_path / "p",
                              capture_output=True, text=True)  # fmt: skip
        assert lint.returncode == 0, lint.stdout


# --- text-generation: prompt/response exports without a header row --------------------------------------------------


def prompt_rows(count: int = 40) -> list[list[str]]:
    """A prompt<TAB>response export (a chatbot log, a translated instruction set): the prompt, then the answer."""
    return [[f"Write one line about {CITIES[i % 10]} in spring, please.", f"{CITIES[i % 10]} wakes up: #{i}."]
            for i in range(count)]  # fmt: skip


def alpaca_rows(count: int = 40) -> list[list[str]]:
    """Alpaca exported with its index: id, instruction, an input that is often empty, the output (quoted commas)."""
    inputs = ["" if i % 3 else f"Country {i}, in Europe" for i in range(count)]
    return [[str(i), f"Give the capital of country {i}?", inputs[i], f"It is {CITIES[i % 10]}."] for i in range(count)]


GENERATION = {
    "prompt-response": ("chat_log.tsv", prompt_rows(), TSV, "instruction,response"),
    "alpaca-with-ids": ("alpaca.csv", alpaca_rows(), {}, "id,instruction,input,response"),
}


@pytest.mark.parametrize("layout", GENERATION)
def test_text_generation_suggests_the_header_and_data_py_reads_it(render_project, tmp_path: Path, layout: str) -> None:
    name, rows, options, header = GENERATION[layout]
    path = write_csv(tmp_path / name, rows, **options)
    with pytest.raises(DataError) as refused:
        text_generation.probe(ProjectSpec(task="text-generation", train_data=path))
    assert suggested_header(str(refused.value)) == header
    names = header.split(",")
    project = render_project("text-generation", path, header=tuple(names))
    cfg, data = project.cfg, project.data
    assert (cfg.header, cfg.instruction_column, cfg.response_column) == (names, "instruction", "response")
    expected = read_csv(path, names, **options)
    read = data.read_dataset(cfg.train_file, cfg.train_format, cfg.data_encoding, header=cfg.header).to_list()
    # The csv builder reads a column of numbers as numbers and an empty field as None; the texts are the file's.
    assert [{k: str(v) if v is not None else "" for k, v in row.items()} for row in read] == expected
    assert project.plan.train.num_rows == len(expected)
    train, held_out = data.load_splits(cfg)
    assert sorted(row["instruction"] for row in [*train, *held_out]) == sorted(r["instruction"] for r in expected)


@pytest.mark.parametrize(
    ("rows", "header"),
    [
        ([[f"Name the city number {i}, please.", f"City {i}.", ""] for i in range(9)], "instruction,response,column3"),
        ([[f"What is {i} times 7?", str(7 * i)] for i in range(9)], "instruction,response"),  # a numeric answer
        ([["", f"An indented line of verse, number {i}."] for i in range(9)], "column1,text"),
    ],
    ids=["trailing-tab", "numeric-answer", "indented"],
)
def test_a_suggestion_names_no_empty_column_and_keeps_numeric_answers(rows: list[list[str]], header: str) -> None:
    assert suggested_header(text_generation.suggest_header(rows)) == header


def test_a_text_corpus_with_tabs_in_its_first_line_is_still_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("Name\tAge\tTown: a table quoted in a story.\n\n" + "The story goes on, line after line.\n" * 40)
    probed = text_generation.probe(ProjectSpec(task="text-generation", train_data=path))
    assert probed.updates["data_layout"] == "text"
