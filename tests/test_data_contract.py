"""One corpus of data files in every layout scaffolder reads, and one contract over all of them: the rows the
probe counts are the rows the generated data.py loads, split as the data report says, under the column names
config.yaml gives. The corpus is the data that ships in tests/data and the files the data tests write as
distributed (CoNLL under its own names, span exports, other encodings, header-less csv and tsv, Moses pairs, a
short story), Chinese included."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import test_data_formats
import test_data_headerless
import test_data_ner
import test_data_seq2seq

from conftest import DATA

# Each shipped file, and the task it is data for.
SHIPPED = {
    "alpaca_mixed.jsonl": "text-generation",
    "chat_support.jsonl": "text-generation",
    "corpus.txt": "text-generation",
    "sharegpt.json": "text-generation",
    "dialogue_zh.jsonl": "summarization",
    "news_summaries.csv": "summarization",
    "en_zh.csv": "translation",
    "wmt_en_de.jsonl": "translation",
    "intents.json": "text-classification",
    "nli_pairs.jsonl": "text-classification",
    "sst_like.tsv": "text-classification",
    "stsb_like.tsv": "text-classification",
    "topics_multilabel.jsonl": "text-classification",
    "weibo_zh.csv": "text-classification",
    "ner_conll.conll": "token-classification",
    "ner_ids.json": "token-classification",
    "ner_zh.jsonl": "token-classification",
    "qa_flat.jsonl": "question-answering",
    "squad_v2.json": "question-answering",
}
# A corpus entry: tmp folder -> (task, train file, spec fields beyond task and train_data).
Entry = Callable[[Path], tuple[str, Path, dict[str, Any]]]


def shipped(name: str) -> Entry:
    return lambda folder: (SHIPPED[name], DATA / name, {})


def written(name: str, task: str, data: bytes, **spec: Any) -> Entry:
    def write(folder: Path) -> tuple[str, Path, dict[str, Any]]:
        (folder / name).write_bytes(data)
        return task, folder / name, spec

    return write


def ner_file(name: str) -> Entry:
    encoding = test_data_ner.ENCODINGS.get(name, "utf-8")
    text = test_data_ner.CORPUS[name]
    text = text.replace("\n", "\r\n") if name in test_data_ner.ENCODINGS else text
    return written(name, "token-classification", text.encode(encoding))


def headerless(layout: str, task: str = "text-classification") -> Entry:
    layouts = test_data_headerless.LAYOUTS if task == "text-classification" else test_data_headerless.GENERATION
    name, rows, options, header = layouts[layout]

    def write(folder: Path) -> tuple[str, Path, dict[str, Any]]:
        path = test_data_headerless.write_csv(folder / name, rows, **options)
        return task, path, {"header": tuple(header.split(","))}

    return write


def tatoeba(folder: Path) -> tuple[str, Path, dict[str, Any]]:
    path = test_data_seq2seq.tatoeba(folder / "cmn.txt", test_data_seq2seq.en_zh_pairs())
    return "translation", path, {"header": ("en", "zh", "attribution")}


def moses(folder: Path) -> tuple[str, Path, dict[str, Any]]:
    return "translation", test_data_seq2seq.moses(folder, "train", test_data_seq2seq.wmt_pairs()), {}


def story(folder: Path) -> tuple[str, Path, dict[str, Any]]:
    import test_probe_text_generation

    (folder / "story.txt").write_text(test_probe_text_generation.thirty_three_lines(), encoding="utf-8")
    return "text-generation", folder / "story.txt", {}


CORPUS: dict[str, Entry] = {
    **{f"shipped {name}": shipped(name) for name in SHIPPED},
    **{case: written(found.name, found.task, found.data) for case, found in test_data_formats.CASES.items()},
    **{f"ner {name}": ner_file(name) for name in test_data_ner.CORPUS},
    **{f"header-less {layout}": headerless(layout) for layout in test_data_headerless.LAYOUTS},
    **{f"header-less {layout}": headerless(layout, "text-generation") for layout in test_data_headerless.GENERATION},
    "tatoeba without a header": tatoeba,
    "moses pair": moses,
    "a story of 33 lines": story,
}
# The layouts whose rows are records of named fields: config.yaml's column names are the loaded columns.
NAMED_FIELDS = {"text-classification", "question-answering", "summarization", "text-generation"}


@pytest.mark.parametrize("entry", sorted(CORPUS))
def test_data_py_loads_the_rows_the_probe_counted_split_as_the_report_says(
    entry: str, tmp_path: Path, render_project
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    task, path, spec = CORPUS[entry](folder)
    project = render_project(task, path, **spec)
    plan, cfg = project.plan, project.cfg
    train, evaluation = project.data.load_splits(cfg)
    packed = task == "text-generation" and plan.spec.data_layout == "text"
    if packed:  # documents, packed and split into blocks later (test_probe_text_generation checks the blocks)
        assert (len(train), evaluation) == (plan.train.num_rows, None)
        return
    assert len(train) + len(evaluation) == plan.train.num_rows
    splits = {split.name: split.rows for split in plan.data_report.splits}
    assert splits == {"train": len(train), "eval": len(evaluation)}
    layout = plan.spec.data_layout
    if task in NAMED_FIELDS and layout != "squad":
        columns = set(plan.spec.columns.values())
        assert columns <= set(train.column_names), (columns, train.column_names)
