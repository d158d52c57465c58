"""text-generation: the data probe (layouts, columns, checks) and the plan it leads to."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from conftest import DATA, run_cli
from scaffolder.errors import DataError, SpecError
from scaffolder.plan import Plan, build_plan, model_family
from scaffolder.probes.readers import iter_records
from scaffolder.probes.text_generation import Layout, infer_layout, summarize
from scaffolder.spec import ProjectSpec


def plan_for(path: Path, **changes: Any) -> Plan:
    return build_plan(ProjectSpec(task="text-generation", train_data=path, **changes))


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def chat(*turns: tuple[str, str]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


@pytest.mark.parametrize(
    ("file", "layout", "columns"),
    [
        ("alpaca_mixed.jsonl", "instruction", {"instruction": "instruction", "input": "input", "response": "output"}),
        ("chat_support.jsonl", "chat", {"messages": "messages"}),
        ("sharegpt.json", "chat", {"messages": "conversations"}),
        ("corpus.txt", "text", {"text": "text"}),
    ],
)
def test_shipped_files_are_read_as_their_layout(file: str, layout: str, columns: dict[str, str]) -> None:
    plan = plan_for(DATA / file)
    assert plan.spec.data_layout == layout
    assert plan.spec.columns == columns
    # The default model: small, multilingual, with a chat template.
    assert plan.spec.model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert plan.family.model_type == "qwen2"
    assert plan.spec.max_target_length is None  # prompt and response share one max_length


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        ("prompt,completion", {"instruction": "prompt", "response": "completion"}),
        ("Question,Answer,Context", {"instruction": "Question", "input": "Context", "response": "Answer"}),
        ("instruction,context,response,category",
         {"instruction": "instruction", "input": "context", "response": "response"}),
    ],
)  # fmt: skip
def test_instruction_pairs_by_their_usual_names(write_file, header: str, columns: dict[str, str]) -> None:
    row = ",".join(["some words here"] * len(header.split(",")))
    path = write_file("pairs.csv", "\n".join([header] + [row] * 12) + "\n")
    assert plan_for(path).spec.columns == columns


def test_a_lone_text_column_is_plain_text_and_max_length_grows_to_the_cap(write_file) -> None:
    path = write_file("docs.jsonl", jsonl([{"text": "word " * 400, "source": "web"} for _ in range(12)]))
    plan = plan_for(path)
    assert plan.spec.data_layout == "text"
    assert plan.spec.max_length == 1024  # blocks span documents: the corpus is far longer than the cap
    assert plan_for(DATA / "alpaca_mixed.jsonl").spec.max_length == 128  # short pairs plus the template markers


def test_text_documents_are_split_by_blank_lines_else_by_lines(write_file) -> None:
    paragraphs = write_file("p.txt", "first line\nsame document\n\n  \nsecond document\n\n\nthird\n")
    assert [r["text"] for r in iter_records(paragraphs)] == ["first line\nsame document", "second document", "third"]
    lines = write_file("l.txt", "one\r\ntwo\r\nthree\r\n")
    assert [r["text"] for r in iter_records(lines)] == ["one", "two", "three"]
    docs = list(iter_records(DATA / "corpus.txt"))
    assert (
        len(docs) == 46
        and any("\n" in d["text"] for d in docs)
        and any("长城" in d["text"] or "蜜蜂" in d["text"] for d in docs)
    )


def test_column_flags_name_the_roles_and_pick_the_layout(write_file) -> None:
    path = write_file(
        "odd.jsonl",
        jsonl([{"ask": f"q{i}", "say": f"a{i}", "body": f"a few words of body text {i}"} for i in range(12)]),
    )
    plan = plan_for(path, columns={"instruction": "ask", "response": "say"})
    assert (plan.spec.data_layout, plan.spec.columns) == ("instruction", {"instruction": "ask", "response": "say"})
    assert plan_for(path, columns={"text": "body"}).spec.data_layout == "text"
    with pytest.raises(DataError, match=r"no `response` column for instruction data; pass --column response=NAME"):
        plan_for(path, columns={"instruction": "ask"})
    with pytest.raises(DataError, match=r"mix layouts"):
        plan_for(path, columns={"instruction": "ask", "text": "body"})
    with pytest.raises(DataError, match=r"has no column `asks` \(--column instruction=asks\)"):
        plan_for(path, columns={"instruction": "asks", "response": "say"})


def test_the_recorded_layout_is_kept_on_regeneration() -> None:
    sample = list(iter_records(DATA / "alpaca_mixed.jsonl"))[:5]
    layout = infer_layout(sample, DATA / "alpaca_mixed.jsonl", {}, "instruction")
    assert layout == Layout("instruction", {"instruction": "instruction", "input": "input", "response": "output"})
    with pytest.raises(DataError, match="unknown data_layout `qa`; text-generation reads: instruction, chat, text"):
        infer_layout(sample, DATA / "alpaca_mixed.jsonl", {}, "qa")


def test_records_of_no_known_layout_name_their_keys_and_the_layouts(write_file) -> None:
    path = write_file("odd.jsonl", jsonl([{"title": "t", "score": 1}] * 12))
    with pytest.raises(DataError) as error:
        plan_for(path)
    message = str(error.value)
    assert "cannot tell the layout from its keys (title, score)" in message
    assert "`messages` [{role, content}]" in message and "instruction/input/output" in message
    assert "--column ROLE=NAME" in message


def test_conversations_are_counted_and_trailing_user_turns_noted() -> None:
    summary, notes = summarize(DATA / "chat_support.jsonl", Layout("chat", {"messages": "messages"}))
    assert summary.num_rows == 28 and summary.non_latin_share > 0.05  # three conversations in Chinese
    assert notes == ["1 conversation(s) end after the last assistant turn; the messages after it are dropped"]
    assert "1 conversation(s) end after the last assistant turn" in plan_for(DATA / "chat_support.jsonl").description
    summary, notes = summarize(DATA / "sharegpt.json", Layout("chat", {"messages": "conversations"}))
    assert summary.num_rows == 24 and notes == []


@pytest.mark.parametrize(
    ("record", "error"),
    [
        (chat(("user", "hi"), ("user", "anyone?")), "row 3: the conversation has no assistant message"),
        (chat(("user", "hi"), ("assistant", " ")), r"row 3, message 2: the assistant response is empty"),
        (chat(("user", "hi"), ("tool", "{}")), r"row 3, message 2: unknown role `tool`; use one of: system, user"),
        (chat(("user", "hi"), ("system", "be brief"), ("assistant", "ok")), "a system message must come first"),
        ({"messages": [{"speaker": "a", "text": "b"}]}, "message 1: has keys speaker, text; a message needs role"),
        ({"messages": "hello"}, "row 3: the conversation must be a non-empty list of messages"),
        ({"messages": [{"role": "user", "content": ["a"]}]}, "message 1: the content is a list; it must be text"),
    ],
)
def test_bad_conversations_are_refused_with_row_and_fix(write_file, record: dict[str, Any], error: str) -> None:
    good = chat(("system", "be kind"), ("user", "hi"), ("assistant", "hello"))
    path = write_file("chat.jsonl", jsonl([good, good, record, *[good] * 10]))
    with pytest.raises(DataError, match=error):
        plan_for(path)


def test_empty_instruction_parts_are_refused(write_file) -> None:
    rows = [{"instruction": "say hi", "input": "", "output": "hi"}] * 11
    path = write_file("a.jsonl", jsonl([*rows, {"instruction": "say bye", "input": "", "output": ""}]))
    with pytest.raises(DataError, match=r"a.jsonl, row 12: `output` is empty; fill it in or remove the row"):
        plan_for(path)
    path = write_file("b.jsonl", jsonl([*rows, {"instruction": None, "input": "x", "output": "y"}]))
    with pytest.raises(DataError, match=r"row 12: `instruction` is empty"):
        plan_for(path)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("openai-community/gpt2", "gpt2"),
        ("distilbert/distilgpt2", "gpt2"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "qwen2"),
        ("Qwen/Qwen2-1.5B", "qwen2"),
        ("meta-llama/Llama-3.2-1B-Instruct", "llama"),
        ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
    ],
)
def test_decoder_families_from_hub_ids(model: str, family: str) -> None:
    assert model_family(model).model_type == family


def test_tasks_refuse_models_of_the_wrong_architecture() -> None:
    with pytest.raises(SpecError, match=r"`openai-community/gpt2` is a decoder model \(gpt2\); text-classification"):
        build_plan(
            ProjectSpec(task="text-classification", train_data=DATA / "sst_like.tsv", model="openai-community/gpt2")
        )
    with pytest.raises(
        SpecError, match=r"is an? encoder model \(bert\); text-generation needs decoder models, e.g. Qwen"
    ):
        plan_for(DATA / "alpaca_mixed.jsonl", model="google-bert/bert-base-cased")
    # Qwen3 checkpoints are a model type of their own, not yet in the family table.
    with pytest.raises(SpecError, match="cannot tell the architecture of `Qwen/Qwen3-0.6B` offline"):
        plan_for(DATA / "alpaca_mixed.jsonl", model="Qwen/Qwen3-0.6B")


def test_bad_chat_data_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    rows = [chat(("user", "hi"), ("assistant", "hello"))] * 12 + [chat(("user", "hi"), ("user", "still there?"))]
    (tmp_path / "chat.jsonl").write_text(jsonl(rows))
    result = run_cli("new", "--task", "text-generation", "--data", "chat.jsonl", "--no-smoke", cwd=tmp_path)
    assert result.returncode == 2
    assert "chat.jsonl, row 13: the conversation has no assistant message" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.jsonl"]


OASST_MESSAGES = [
    {"message_id": "m1", "parent_id": None, "user_id": "u1", "created_date": "2023-02-05T14:23:50",
     "text": "Can you explain what a monad is in simple terms?", "role": "prompter", "lang": "en", "rank": None},
    {"message_id": "m2", "parent_id": "m1", "user_id": "u2", "created_date": "2023-02-05T15:01:12",
     "text": "A monad is a design pattern that wraps values and chains computations.", "role": "assistant",
     "lang": "en", "rank": 0},
    {"message_id": "m3", "parent_id": "m1", "user_id": "u3", "created_date": "2023-02-05T16:40:02",
     "text": "Think of it as a box with rules for putting things in and taking them out.", "role": "assistant",
     "lang": "en", "rank": 1},
]  # fmt: skip
PREFERENCE_SHAREGPT = {
    "conversations": [{"from": "human", "value": "Write a haiku about autumn."}],
    "chosen": {"from": "gpt", "value": "Crimson leaves drifting / the maple lets go slowly / cold wind hums goodbye"},
    "rejected": {"from": "gpt", "value": "Autumn is a season."},
}


@pytest.mark.parametrize(
    ("records", "says"),
    [
        (OASST_MESSAGES, "is a message tree (OpenAssistant's layout"),
        ([PREFERENCE_SHAREGPT] * 3, "holds preference pairs (a `chosen` and a `rejected` response to `conversations`)"),
        ([{"prompt": "2+2?", "chosen": "4", "rejected": "5"}] * 3, "holds preference pairs"),
    ],
)
def test_other_kinds_of_data_are_named_not_misread(tmp_path: Path, records: list[dict[str, Any]], says: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records) + "\n")
    result = run_cli("new", "--task", "text-generation", "--data", str(path), "--output", "p", "--no-smoke",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "p").exists()


# --- the project's data.py -----------------------------------------------------------------------------------------


def word_tokenizer(texts: list[str]) -> Any:
    """A whitespace tokenizer over the words of `texts`, with an end-of-text token and no special tokens of its own."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({word for text in texts for word in text.split()})
    vocab = {word: index for index, word in enumerate(["[UNK]", "</s>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="</s>", pad_token="</s>")


def test_plain_text_is_packed_into_blocks_of_the_documents_end_to_end(write_file, render_project) -> None:
    documents = [" ".join(f"w{d}x{i}" for i in range(3 + d % 5)) for d in range(30)]
    path = write_file("corpus.txt", "\n\n".join(documents) + "\n")
    rendered = render_project("text-generation", path, "max_length=8", "max_train_samples=5")
    data, cfg = rendered.data, rendered.cfg
    tokenizer = word_tokenizer(documents)
    train, evaluation = data.load_splits(cfg)
    assert list(train["text"]) == documents and evaluation is None  # blocks are held out after packing

    stream = [token for text in documents for token in [*tokenizer(text)["input_ids"], tokenizer.eos_token_id]]
    blocks = [stream[start : start + 8] for start in range(0, len(stream), 8)]
    # Held out as a shuffle of the blocks with seed 0 leaves them: eval_fraction of them, at least one; the
    # rest, in order, sampled down to max_train_samples with the training seed.
    order = random.Random(0).sample(range(len(blocks)), len(blocks))
    held = max(1, round(cfg.eval_fraction * len(blocks)))
    kept = [blocks[i] for i in sorted(order[held:])]
    expected = random.Random(cfg.seed).sample(kept, 5)
    packed, held_out = data.build_datasets(cfg, tokenizer)
    assert [packed[i]["input_ids"] for i in range(len(packed))] == expected
    assert [packed[i]["labels"] for i in range(len(packed))] == expected
    assert list(packed.lengths) == [len(block) for block in expected]
    assert [held_out[i]["input_ids"] for i in range(len(held_out))] == [blocks[i] for i in sorted(order[:held])]
    whole = data.make_dataset(train, tokenizer, cfg)
    assert [whole[i]["input_ids"] for i in range(len(whole))] == blocks


def thirty_three_lines() -> str:
    """A short story of 33 lines in 3 paragraphs, the size of a first try at continued pre-training."""
    words = ["the", "harbour", "wind", "boats", "nets", "morning", "old", "keeper", "salt", "grey", "waves", "bell"]
    rng = random.Random(3)
    paragraphs = [
        "\n".join(" ".join(rng.choices(words, k=rng.randint(7, 12))).capitalize() + "." for _ in range(11))
        for _ in range(3)
    ]
    return "\n\n".join(paragraphs) + "\n"


def test_a_text_of_three_paragraphs_holds_out_blocks_not_paragraphs(write_file, render_project) -> None:
    path = write_file("story.txt", thirty_three_lines())
    rendered = render_project("text-generation", path)
    plan, data, cfg = rendered.plan, rendered.data, rendered.cfg
    assert plan.train.num_rows == 3 and plan.spec.max_length == 64  # blocks short enough to hold some out
    train, evaluation = plan.data_report.splits
    assert (train.unit, evaluation.unit, evaluation.rows) == ("block", "block", 1)
    tokenizer = word_tokenizer(path.read_text().split())
    packed, held_out = data.build_datasets(cfg, tokenizer)
    words = len(path.read_text().split())
    blocks = -(-(words + 3) // 64)  # each word one token, and an end-of-text token after each paragraph
    assert (len(packed), len(held_out)) == (blocks - max(1, round(0.1 * blocks)), max(1, round(0.1 * blocks)))
    starts = sorted([*packed.starts, *held_out.starts])
    assert starts == list(range(0, words + 3, 64)) and not set(packed.starts) & set(held_out.starts)


def test_a_text_too_short_for_two_blocks_is_refused_naming_the_fix(write_file, render_project) -> None:
    path = write_file("note.txt", "A line.\n\nAnother line.\n\nA third.\n")
    with pytest.raises(DataError, match=r"note.txt packs into about 1 block of max_length=32 tokens, too few to hold "
                                        r"one out for evaluation; lower --max-length"):  # fmt: skip
        build_plan(ProjectSpec(task="text-generation", train_data=path))
    rendered = render_project("text-generation", write_file("story.txt", thirty_three_lines()), "max_length=1024")
    with pytest.raises(SystemExit, match=r"packs into 1 block of max_length=1024 tokens, too few to hold one out"):
        rendered.data.build_datasets(rendered.cfg, word_tokenizer(["a"]))


def test_conversations_in_both_message_formats_read_as_written(write_file, render_project) -> None:
    """Arrow gives every message of a file the keys of all of them (None where a message has no such key): a
    file that mixes {role, content} and ShareGPT's {from, value} still reads each message as written."""
    turns = [(("user", f"question {i}"), ("assistant", f"answer {i}")) for i in range(24)]
    records = [
        chat(*pair) if i % 2 else {"messages": [{"from": {"user": "human"}.get(r, "gpt"), "value": c} for r, c in pair]}
        for i, pair in enumerate(turns)
    ]
    path = write_file("mixed.jsonl", jsonl(records))
    rendered = render_project("text-generation", path)
    data, cfg = rendered.data, rendered.cfg
    read = [data.normalize_messages(row[cfg.messages_column]) for row in data.read_records(path)]
    assert read == [[{"role": role, "content": content} for role, content in pair] for pair in turns]
