"""Summarization and translation data as it is distributed: tsv files without a header row (Tatoeba's
`en<TAB>zh<TAB>attribution` lines, `document<TAB>summary` exports) and Moses pairs of sentence-per-line files
(`train.en` + `train.de`). Each through `scaffold new` as a user runs it; the command a refusal suggests is run
too, and the generated data.py must read the same examples as the probe. A dataset on the Hugging Face Hub, named
in config.yaml, reads from the local datasets cache as an earlier online run left it."""

from __future__ import annotations

import csv
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import DATA, hub_dataset_in_cache, refusal, run_cli, suggested_header
from scaffolder.errors import DataError, SpecError
from scaffolder.probes import headerless, summarization, translation
from scaffolder.spec import ProjectSpec, from_toml


def wmt_pairs() -> list[tuple[str, str]]:
    """40 English-German sentence pairs."""
    lines = (DATA / "wmt_en_de.jsonl").read_text(encoding="utf-8").splitlines()
    return [(pair["en"], pair["de"]) for pair in (json.loads(line)["translation"] for line in lines)]


def en_zh_pairs() -> list[tuple[str, str]]:
    """40 English-Chinese sentence pairs."""
    with (DATA / "en_zh.csv").open(encoding="utf-8", newline="") as f:
        return [(row["en"], row["zh"]) for row in csv.DictReader(f)]


def news() -> list[tuple[str, str]]:
    """40 news articles with their one-line summaries."""
    with (DATA / "news_summaries.csv").open(encoding="utf-8", newline="") as f:
        return [(row["article"], row["highlights"]) for row in csv.DictReader(f)]


def tatoeba(path: Path, pairs: list[tuple[str, str]]) -> Path:
    """The ManyThings/Tatoeba layout (cmn.txt): English, its translation, the licence note; no header."""
    lines = [
        f"{en}\t{zh}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{538123 + i} (CM) & #{891077 + i} (Martha)\n"
        for i, (en, zh) in enumerate(pairs)
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tsv(path: Path, rows: Sequence[tuple[str, ...]]) -> Path:
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


def moses(folder: Path, name: str, pairs: list[tuple[str, str]], langs: tuple[str, str] = ("en", "de")) -> Path:
    """`name.en` and `name.de`, line N of one the translation of line N of the other; the first file's path."""
    for side, lang in enumerate(langs):
        (folder / f"{name}.{lang}").write_text("".join(pair[side] + "\n" for pair in pairs), encoding="utf-8")
    return folder / f"{name}.{langs[0]}"


def new(tmp_path: Path, *args: str, output: str = "p") -> Any:
    return run_cli("new", *args, "--output", output, "--no-smoke", cwd=tmp_path)


@pytest.fixture
def project_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], tuple[ModuleType, Any]]]:
    """load(project folder) -> (its data module, its Config), imported in this process."""
    modules = ("config", "data")

    def load(folder: Path) -> tuple[ModuleType, Any]:
        monkeypatch.syspath_prepend(str(folder))
        for module in modules:
            sys.modules.pop(module, None)
        config = importlib.import_module("config")
        return importlib.import_module("data"), config.load_config([], folder / "config.yaml")

    yield load
    for module in modules:
        sys.modules.pop(module, None)


# --- files without a header row ----------------------------------------------------------------------------------


def test_tatoeba_translation_file_is_refused_with_the_header_that_reads_it(tmp_path: Path, project_data) -> None:
    data = tatoeba(tmp_path / "cmn.txt", en_zh_pairs())
    message = refusal(new(tmp_path, "--task", "translation", "--data", str(data)))
    assert "cmn.txt has no header row: line 1 is data (`Good morning.` | `早上好。` | `CC-BY 2.0" in message
    assert suggested_header(message) == "en,zh,attribution"

    result = new(tmp_path, "--task", "translation", "--data", str(data), "--header", "en,zh,attribution")
    assert result.returncode == 0, result.stderr
    assert "translation: en → zh (columns en → zh)" in result.stderr
    project = tmp_path / "p"
    assert from_toml(project / "scaffold.toml").header == ("en", "zh", "attribution")
    assert "header: [en, zh, attribution]" in (project / "config.yaml").read_text()
    module, cfg = project_data(project)
    rows = module.read_records(cfg.train_file, cfg)
    probed = list(headerless.records(data, ("en", "zh", "attribution"), translation.suggest_header))
    assert rows.to_list() == probed and len(rows) == 40
    assert list(zip(module.source_texts(rows, cfg), module.target_texts(rows, cfg), strict=True)) == en_zh_pairs()
    # scaffold.toml's header is what a regeneration reads the file with.
    regen = run_cli("regen", "p", "--set", "num_epochs=1", "--no-smoke", cwd=tmp_path)
    assert regen.returncode == 0, regen.stderr


def test_two_column_tsv_without_header_gets_guessed_languages_and_reads(tmp_path: Path) -> None:
    """Short sentences (`Go.`) pass readers' header rule; the sentence ends give them away."""
    data = tsv(tmp_path / "deu.tsv", wmt_pairs())
    message = refusal(new(tmp_path, "--task", "translation", "--data", str(data)))
    assert suggested_header(message) == "en,de"
    result = new(tmp_path, "--task", "translation", "--data", str(data), "--header", "en,de")
    assert result.returncode == 0, result.stderr
    assert "translation: en → de" in result.stderr
    assert 'model = "Helsinki-NLP/opus-mt-en-de"' in (tmp_path / "p" / "scaffold.toml").read_text()


def test_headerless_summaries_are_refused_with_a_working_header(tmp_path: Path, project_data) -> None:
    data = tsv(tmp_path / "news.tsv", news())
    message = refusal(new(tmp_path, "--task", "summarization", "--data", str(data)))
    assert "news.tsv has no header row: line 1 is data (`On Monday in Riverton" in message
    assert suggested_header(message) == "document,summary"

    result = new(tmp_path, "--task", "summarization", "--data", str(data), "--header", "document,summary")
    assert result.returncode == 0, result.stderr
    assert "summarization: document → summary" in result.stderr
    module, cfg = project_data(tmp_path / "p")
    rows = module.read_records(cfg.train_file, cfg)
    assert [(row["document"], row["summary"]) for row in rows] == news()
    assert rows.to_list() == list(headerless.records(data, ("document", "summary"), summarization.suggest_header))


def test_eval_data_without_header_is_read_with_the_same_names(tmp_path: Path, project_data) -> None:
    articles = news()
    train, dev = tsv(tmp_path / "train.tsv", articles[:30]), tsv(tmp_path / "dev.tsv", articles[30:])
    result = new(tmp_path, "--task", "summarization", "--data", str(train), "--eval-data", str(dev),
                 "--header", "document,summary")  # fmt: skip
    assert result.returncode == 0, result.stderr
    module, cfg = project_data(tmp_path / "p")
    train_rows, eval_rows = module.load_splits(cfg)
    assert len(train_rows) == 30 and [row["summary"] for row in eval_rows] == [s for _, s in articles[30:]]


def test_an_id_column_and_the_longer_text_name_the_suggestion() -> None:
    rows = [["17", "A long article about the harbour and the ferries that cross it.", "Ferries cross."]] * 3
    assert "--header id,document,summary " in summarization.suggest_header(rows)
    assert "--header summary,document " in summarization.suggest_header([[short, long] for _, long, short in rows])


def test_header_flag_refusals_name_the_line(tmp_path: Path) -> None:
    articles = news()
    data = tsv(tmp_path / "news.tsv", [*articles[:5], (articles[5][0], articles[5][1], "extra"), *articles[6:]])
    message = refusal(new(tmp_path, "--task", "summarization", "--data", str(data), "--header", "document,summary"))
    assert "news.tsv, line 6: 3 field(s), but --header names 2 column(s) (document,summary)" in message

    headed = tsv(tmp_path / "dev.tsv", [("document", "summary"), *articles[:12]])
    message = refusal(new(tmp_path, "--task", "summarization", "--data", str(tsv(tmp_path / "t.tsv", articles)),
                          "--eval-data", str(headed), "--header", "document,summary"))  # fmt: skip
    assert "dev.tsv, line 1 is a header row, but --header reads files without one" in message

    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"document": d, "summary": s}) + "\n" for d, s in articles))
    message = refusal(new(tmp_path, "--task", "summarization", "--data", str(jsonl), "--header", "a,b"))
    assert "--header names the columns of a csv or tsv file without a header row" in message


def test_header_is_refused_where_the_task_does_not_read_it(tmp_path: Path) -> None:
    data = tsv(tmp_path / "reviews.tsv", [("a fine film", "pos"), ("a dull film", "neg")] * 10)
    message = refusal(new(tmp_path, "--task", "token-classification", "--data", str(data), "--header", "text,label"))
    assert "`header` (--header) does not apply to token-classification" in message
    with pytest.raises(SpecError, match="names `en` twice"):
        ProjectSpec(task="translation", train_data=data, header=("en", "en"))


def test_a_file_with_a_header_reads_as_before(tmp_path: Path) -> None:
    data = tsv(tmp_path / "d.tsv", [("en", "de"), *wmt_pairs()])
    probed = translation.probe(ProjectSpec(task="translation", train_data=data))
    assert probed.updates["columns"] == {"source": "en", "target": "de"} and probed.train.num_rows == 40


@pytest.mark.parametrize(
    ("texts", "language"),
    [
        ([en for en, _ in wmt_pairs()], "en"),
        ([de for _, de in wmt_pairs()], "de"),
        ([zh for _, zh in en_zh_pairs()], "zh"),
        (["今日は天気がいいです。", "駅はどこですか。"], "ja"),
        (["Где вокзал?", "Сегодня хорошая погода."], "ru"),
        (["12", "CC-BY"], None),
    ],
)
def test_languages_are_guessed_from_script_and_frequent_words(texts: list[str], language: str | None) -> None:
    assert translation.guess_language(texts) == language


# --- Moses pairs: one sentence per line in two files -------------------------------------------------------------


def test_moses_pair_is_read_from_either_file_and_data_py_reads_the_same(tmp_path: Path, project_data) -> None:
    pairs = wmt_pairs()
    # What real corpora hold: Windows line ends in one file, a line separator inside a sentence (text, not a
    # line break), an untranslated line (skipped on both sides), a blank line at the end of one file.
    pairs[3] = (pairs[3][0] + "\u2028(continued)", pairs[3][1])
    pairs[7] = (pairs[7][0], "")
    (tmp_path / "train.en").write_text("".join(en + "\r\n" for en, _ in pairs), encoding="utf-8")
    (tmp_path / "train.de").write_text("".join(de + "\n" for _, de in pairs) + "\n", encoding="utf-8")
    result = new(tmp_path, "--task", "translation", "--data", str(tmp_path / "train.en"))
    assert result.returncode == 0, result.stderr
    assert "en → de (train.en + train.de, a sentence per line; 1 pair(s) with an empty line skipped)" in result.stderr
    project = tmp_path / "p"
    spec = from_toml(project / "scaffold.toml")
    assert (spec.data_layout, spec.source_lang, spec.target_lang) == ("moses", "en", "de")
    assert spec.train_data == tmp_path / "train.en" and spec.model == "Helsinki-NLP/opus-mt-en-de"

    probed = list(translation.MosesPair(tmp_path / "train", "en", "de").records())
    module, cfg = project_data(project)
    rows = module.read_records(cfg.train_file, cfg)
    assert rows.to_list() == probed and len(rows) == 39
    expected = [pair for i, pair in enumerate(pairs) if i != 7]
    assert list(zip(module.source_texts(rows, cfg), module.target_texts(rows, cfg), strict=True)) == expected

    # The other file names the same pair; the direction follows it, or the flags.
    reverse = translation.probe(ProjectSpec(task="translation", train_data=tmp_path / "train.de"))
    assert (reverse.updates["source_lang"], reverse.updates["target_lang"]) == ("de", "en")
    flagged = translation.probe(ProjectSpec(task="translation", train_data=tmp_path / "train.de", source_lang="en"))
    assert (flagged.updates["source_lang"], flagged.updates["train_data"]) == ("en", tmp_path / "train.en")


def test_opus_names_and_a_dev_pair(tmp_path: Path, project_data) -> None:
    """OPUS/Europarl name both files for the pair (`europarl-v7.de-en.de`); `--eval-data dev.en` finds dev.de."""
    pairs = wmt_pairs()
    train = moses(tmp_path, "europarl-v7.de-en", [(de, en) for en, de in pairs[:32]], ("de", "en"))
    dev = moses(tmp_path, "dev", pairs[32:])
    result = new(tmp_path, "--task", "translation", "--data", str(train), "--eval-data", str(dev))
    assert result.returncode == 0, result.stderr
    assert "de → en (europarl-v7.de-en.de + europarl-v7.de-en.en" in result.stderr
    module, cfg = project_data(tmp_path / "p")
    train_rows, eval_rows = module.load_splits(cfg)
    assert len(train_rows) == 32 and [row["en"] for row in eval_rows] == [en for en, _ in pairs[32:]]

    (tmp_path / "dev.de").unlink()
    message = refusal(new(tmp_path, "--task", "translation", "--data", str(train), "--eval-data", str(dev),
                          output="q"))  # fmt: skip
    assert "eval data" in message and "no dev.de beside it" in message


def test_a_gb18030_chinese_side_beside_ascii_english_reads_the_same(tmp_path: Path, project_data) -> None:
    """Chinese corpora still ship in GB18030; the English side is plain ASCII, which is UTF-8 too. config.yaml's
    data_encoding takes the Chinese file's encoding, and data.py decodes each file as the probe did."""
    pairs = en_zh_pairs()
    data = moses(tmp_path, "news-commentary", pairs, ("en", "zh"))
    (tmp_path / "news-commentary.zh").write_bytes("".join(zh + "\n" for _, zh in pairs).encode("gb18030"))
    result = new(tmp_path, "--task", "translation", "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert "data_encoding: gb18030" in (tmp_path / "p" / "config.yaml").read_text()
    module, cfg = project_data(tmp_path / "p")
    rows = module.read_records(cfg.train_file, cfg)
    assert rows.to_list() == list(translation.MosesPair(tmp_path / "news-commentary", "en", "zh").records())
    assert [(row["en"], row["zh"]) for row in rows] == pairs


def test_a_gb18030_file_without_header_reads_the_same(tmp_path: Path, project_data) -> None:
    data = tatoeba(tmp_path / "cmn.txt", en_zh_pairs())
    data.write_bytes(data.read_text(encoding="utf-8").encode("gb18030"))
    result = new(tmp_path, "--task", "translation", "--data", str(data), "--header", "en,zh,attribution")
    assert result.returncode == 0, result.stderr
    module, cfg = project_data(tmp_path / "p")
    assert [(row["en"], row["zh"]) for row in module.read_records(cfg.train_file, cfg)] == en_zh_pairs()


def test_different_line_counts_are_refused_in_one_line(tmp_path: Path) -> None:
    pairs = wmt_pairs()
    data = moses(tmp_path, "train", pairs)
    (tmp_path / "train.de").write_text("".join(de + "\n" for _, de in pairs[:-1]), encoding="utf-8")
    message = refusal(new(tmp_path, "--task", "translation", "--data", str(data)))
    assert "train.en has 40 lines and " in message and "train.de 39; line N of one must translate line N" in message
    assert not (tmp_path / "p").exists()


def test_a_pair_refusal_names_the_flag_that_picks_the_pair_and_it_works(tmp_path: Path) -> None:
    pairs = wmt_pairs()
    data = moses(tmp_path, "train", pairs)
    (tmp_path / "train.fr").write_text("".join(f"({de})\n" for _, de in pairs), encoding="utf-8")
    message = refusal(new(tmp_path, "--task", "translation", "--data", str(data)))
    assert "train.de, train.fr lie beside it; pick the pair with --target-lang (de or fr)" in message
    result = new(tmp_path, "--task", "translation", "--data", str(data), "--target-lang", "de")
    assert result.returncode == 0, result.stderr

    (tmp_path / "notes.en").write_text("A lone English sentence.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes.en reads as one side of a parallel corpus .* as notes.de"):
        translation.probe(ProjectSpec(task="translation", train_data=tmp_path / "notes.en"))


@pytest.mark.slow
def test_moses_pair_smoke_trains(tmp_path: Path) -> None:
    data = moses(tmp_path, "train", wmt_pairs())
    result = run_cli("new", "--task", "translation", "--data", str(data), "--output", "p", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke
    assert {"eval_bleu", "eval_chrf"} <= set(smoke["metrics"])


# --- a dataset on the Hugging Face Hub -----------------------------------------------------------------------------


SPLITS_OF_THE_PROJECT = """
import json
from config import load_config
from data import load_splits, source_texts, target_texts
cfg = load_config([])
print(json.dumps([list(zip(source_texts(rows, cfg), target_texts(rows, cfg))) for rows in load_splits(cfg)]))
"""


def test_a_summarization_project_reads_a_hub_dataset_from_the_local_cache(tmp_path: Path) -> None:
    articles = news()
    splits = {
        "train": [{"document": document, "summary": summary} for document, summary in articles[:30]],
        "test": [{"document": document, "summary": summary} for document, summary in articles[30:]],
    }
    home = tmp_path / "hf"
    commit = hub_dataset_in_cache(home, "newsroom/briefs", splits)
    result = new(tmp_path, "--task", "summarization", "--data", str(DATA / "news_summaries.csv"))
    assert result.returncode == 0, result.stderr
    config = tmp_path / "p" / "config.yaml"
    settings = {"train_file": "newsroom/briefs", "eval_file": "newsroom/briefs", "eval_split": "test",
                "dataset_revision": commit, "text_column": "document", "summary_column": "summary"}  # fmt: skip
    text = config.read_text(encoding="utf-8")
    for key, value in settings.items():
        text, found = re.subn(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.MULTILINE)
        assert found == 1, key
    config.write_text(text, encoding="utf-8")

    # The tests' own datasets cache (conftest) gives way to the one of this HF_HOME.
    env = {**os.environ, "HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", SPLITS_OF_THE_PROJECT], cwd=tmp_path / "p", env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    train, evaluation = json.loads(run.stdout.strip().splitlines()[-1])
    assert [tuple(pair) for pair in train] == articles[:30]
    assert [tuple(pair) for pair in evaluation] == articles[30:]
