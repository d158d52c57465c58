import json
from pathlib import Path

import pytest

from conftest import DATA
from scaffolder.errors import DataError
from scaffolder.probes.readers import iter_records, read_sample
from scaffolder.probes.text_classification import Columns, infer_columns, normalize_label, probe, summarize
from scaffolder.spec import ProjectSpec


def columns_of(path: Path, **flags: str) -> Columns:
    return infer_columns(read_sample(path), path, **flags)


def test_glue_style_tsv_keeps_bare_quotes_inside_sentences() -> None:
    rows = list(iter_records(DATA / "sst_like.tsv"))
    assert len(rows) == 40
    assert any('"' in row["sentence"] for row in rows)
    assert columns_of(DATA / "sst_like.tsv") == Columns("sentence", None, "label")


def test_sentence_pairs_are_found_by_header_names() -> None:
    assert columns_of(DATA / "nli_pairs.jsonl") == Columns("premise", "hypothesis", "label")


def test_json_list_and_chinese_csv() -> None:
    assert columns_of(DATA / "intents.json") == Columns("utterance", None, "intent")
    summary = summarize(DATA / "weibo_zh.csv", columns_of(DATA / "weibo_zh.csv"))
    assert summary.label_counts == {"负面": 20, "正面": 20}
    assert summary.non_latin_share > 0.9
    assert summary.words_p95 > 10  # CJK characters count as words


def test_unknown_headers_are_inferred_from_the_values(write_file) -> None:
    rows = [{"t": f"a fairly long piece of text number {i}", "k": "yes" if i % 2 else "no"} for i in range(20)]
    path = write_file("odd.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert columns_of(path) == Columns("t", None, "k", guessed=("label", "text"))


def test_flags_win_and_are_checked(write_file) -> None:
    path = write_file("d.csv", "body,topic,stars\nhello,a,1\nworld,b,2\n")
    assert columns_of(path, text="body", label="stars") == Columns("body", None, "stars")
    with pytest.raises(DataError, match=r"has no column `txt` \(--text-column\); columns are: body, topic, stars"):
        columns_of(path, text="txt")


def test_json_with_one_list_and_jsonl_saved_as_json(write_file) -> None:
    wrapped = write_file("w.json", json.dumps({"version": 1, "data": [{"text": "a", "label": 1}]}))
    assert list(iter_records(wrapped)) == [{"text": "a", "label": 1}]
    lines = write_file("l.json", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    assert len(list(iter_records(lines))) == 2


def test_semicolon_csv_from_a_spreadsheet(write_file) -> None:
    path = write_file("s.csv", "text;label\nbonjour, le monde;pos\nau revoir;neg\n")
    assert next(iter(iter_records(path))) == {"text": "bonjour, le monde", "label": "pos"}


@pytest.mark.parametrize(
    ("value", "name"),
    [(1, "1"), ("1", "1"), (2.0, "2"), ("2.0", "2"), (" pos ", "pos"), (True, "true"), ("正面", "正面")],
)
def test_labels_normalize_to_class_names(value: object, name: str) -> None:
    assert normalize_label(value, Path("d.csv"), 1) == name


@pytest.mark.parametrize(
    ("value", "message"),
    [(0.37, "fractional number"), ("", "the label is empty"), (None, "the label is empty"), (["a"], "is a list")],
)
def test_bad_labels_are_refused_with_the_row(value: object, message: str) -> None:
    with pytest.raises(DataError, match=rf"d.csv, row 4: .*{message}"):
        normalize_label(value, Path("d.csv"), 4)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "not found; check the path"),
        ("empty.csv", "", "is empty"),
        ("header-only.csv", "text,label\n", "has no rows"),
        ("bad.jsonl", '{"text": "a"}\n{oops\n', r"line 2: not valid JSON"),
        ("bad.json", '[{"text": "a"},', "is not valid JSON"),
        ("scalars.json", "[1, 2]", "expected a JSON list of objects"),
        ("data.parquet", "x", "is not a readable Parquet file"),
        ("data.pkl", "x", "unsupported file type `.pkl`"),
        ("ragged.csv", "text,label\na,b,c\n", "more fields than the header"),
        ("cola.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\n", "the first row looks like data"),
    ],
)
def test_unreadable_files_give_one_clear_error(write_file, tmp_path: Path, name: str, content, message: str) -> None:
    path = write_file(name, content) if content is not None else tmp_path / name
    with pytest.raises(DataError, match=message):
        read_sample(path)


def test_a_latin1_file_is_read_in_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    assert read_sample(path) == [{"text": "caf\xe9", "label": "a"}]  # tests/test_data_formats.py: more encodings


def test_fractional_scores_make_a_regression_and_lists_a_multi_label_task() -> None:
    stsb = probe(ProjectSpec(task="text-classification", train_data=DATA / "stsb_like.tsv"))
    assert stsb.updates["problem_type"] == "regression"
    assert stsb.updates["columns"] == {"text": "sentence1", "text_pair": "sentence2", "label": "score"}
    assert stsb.updates["labels"] == ()
    topics = probe(ProjectSpec(task="text-classification", train_data=DATA / "topics_multilabel.jsonl"))
    assert topics.updates["problem_type"] == "multi_label_classification"
    assert topics.updates["labels"] == ("health", "politics", "sports", "tech")
    assert sum(topics.train.label_counts.values()) > topics.train.num_rows  # some rows carry two classes


def test_multi_label_lists_stored_in_csv_cells_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    rows = [f'"text {i}","[""a"", ""b""]"' if i % 2 else f'"text {i}","[""c""]"' for i in range(12)]
    path.write_text("text,labels\n" + "\n".join(rows) + "\n")
    result = probe(ProjectSpec(task="text-classification", train_data=path))
    assert result.updates["problem_type"] == "multi_label_classification"
    assert result.updates["labels"] == ("a", "b", "c")


def test_a_regression_target_that_is_not_a_number_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("text,score\n" + "".join(f"t{i},{i / 3:.2f}\n" for i in range(12)) + "t,high\n")
    with pytest.raises(DataError, match=r"row 13: regression target 'high' is not a number"):
        probe(ProjectSpec(task="text-classification", train_data=path))


KAGGLE_AIRLINE_HEADER = (
    "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,airline,airline_sentiment_gold,name,"
    "retweet_count,text,tweet_created"
)


def kaggle_airline_rows(rows: int) -> str:
    """The Twitter US Airline Sentiment export: `airline` repeats more than the annotated `airline_sentiment`."""
    lines = [KAGGLE_AIRLINE_HEADER]
    for i in range(rows):
        sentiment = ("negative", "neutral", "positive")[i % 3]
        reason = "Late Flight" if sentiment == "negative" else ""
        airline = ("Virgin America", "United")[i % 2]
        lines.append(f'{570306133677760513 + i},{sentiment},{1.0 - i % 5 / 10},{reason},{airline},,user{i},0,'
                     f'"@united flight {i} was {sentiment}",2015-02-24 11:35:52 -0800')  # fmt: skip
    return "\n".join(lines) + "\n"


def test_a_column_named_for_the_label_wins_over_a_more_repetitive_one(write_file) -> None:
    path = write_file("Tweets.csv", kaggle_airline_rows(60))
    probed = probe(ProjectSpec(task="text-classification", train_data=path))
    assert probed.updates["columns"] == {"text": "text", "label": "airline_sentiment"}
    assert probed.updates["labels"] == ("negative", "neutral", "positive")
    assert probed.warnings == ()  # named for what it is: no guess to warn about


def test_chinese_column_names_say_which_column_is_text_and_which_label(write_file) -> None:
    """A Dianping-style export: the city repeats more than the sentiment, and no name is an English word."""
    reviews = {"正面": ["菜很好吃，服务周到", "环境优雅，下次再来"], "负面": ["上菜太慢了", "服务态度很差"]}
    lines = ["编号,城市,评论内容,情感倾向"]
    for i in range(40):
        label = ("正面", "负面")[i % 2]
        lines.append(f"{i},{('北京', '上海')[i % 4 // 2]},{reviews[label][i % 3 % 2]}{i},{label}")
    probed = probe(ProjectSpec(task="text-classification", train_data=write_file("dianping.csv", "\n".join(lines))))
    assert probed.updates["columns"] == {"text": "评论内容", "label": "情感倾向"}
    assert probed.warnings == ()


def test_a_label_picked_by_repetition_alone_is_said_loudly_with_the_flag(write_file) -> None:
    lines = ["comment_text,toxic_flag,lang"] + [f'"comment number {i} here",{i % 2},en' for i in range(30)]
    path = write_file("comments.csv", "\n".join(lines) + "\n")
    probed = probe(ProjectSpec(task="text-classification", train_data=path))
    assert probed.updates["columns"]["label"] == "toxic_flag"
    assert len(probed.warnings) == 2  # neither column is named for its role
    assert "the label column `toxic_flag` is a guess" in probed.warnings[0]
    assert "pass --label-column NAME" in probed.warnings[0] and "pass --text-column NAME" in probed.warnings[1]
