"""text-generation data: instruction pairs, chat conversations, or plain text for continued pre-training.

The layout (`data_layout`) is read from the record keys: `messages` or ShareGPT `conversations` are chat;
instruction/input/output (alpaca), instruction/context/response (dolly), prompt/completion, question/answer
and similar pairs are instruction data; a lone `text` column (or a .txt file) is plain text. `--column ROLE=NAME`
names the columns instead (roles: instruction, input, response; messages; text). A csv or tsv file without a
header row (a `prompt<TAB>response` export) is refused with the `--header` that names its columns; a .txt file
is a corpus of documents unless its lines are tab-separated fields (then it is read as tsv).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError
from scaffolder.probes import DataSummary, Probed, TextStats, headerless
from scaffolder.probes.readers import SAMPLE_ROWS, data_format, iter_records
from scaffolder.spec import ProjectSpec

LAYOUTS = ("instruction", "chat", "text")
# Roles each layout reads; the ones marked optional may be absent.
ROLES = {"instruction": ("instruction", "input", "response"), "chat": ("messages",), "text": ("text",)}
OPTIONAL_ROLES = ("input",)

# Header names, most specific first; matching ignores case. (instruction, response, optional extra input)
INSTRUCTION_COLUMNS = (
    ("instruction", "output", "input"),  # alpaca
    ("instruction", "response", "context"),  # dolly
    ("instruction", "response", "input"),
    ("prompt", "completion", None),
    ("prompt", "response", None),
    ("question", "answer", "context"),
    ("query", "response", None),
    ("input", "output", None),
)
CHAT_COLUMNS = ("messages", "conversations", "conversation")
TEXT_COLUMNS = ("text", "content", "document", "body")
# Message roles as chat templates name them; ShareGPT's `from` values map onto them. The generated data.py
# holds the same table.
ROLE_NAMES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
# Words a prompt template or chat template adds: role headers and markers around each message, and a default
# system prompt that some chat templates insert (Qwen2.5's is 14 words).
TEMPLATE_WORDS_PER_MESSAGE = 4
TEMPLATE_WORDS_PER_EXAMPLE = 16
# Plain text is cut into at least this many blocks where the task's longest max_length would make fewer: a
# 30-line file becomes blocks of 64 tokens, not one block, so that some can be held out for evaluation.
PACKED_BLOCKS = 10


@dataclass(frozen=True)
class Layout:
    name: str  # instruction, chat or text
    columns: dict[str, str]  # role -> column

    def column(self, role: str) -> str | None:
        return self.columns.get(role)


def probe(spec: ProjectSpec) -> Probed:
    sample = list(itertools.islice(records(spec.train_data, spec.header), SAMPLE_ROWS))
    if not sample:
        raise DataError(f"data file {spec.train_data} has no rows; it needs at least a few examples")
    layout = infer_layout(sample, spec.train_data, spec.columns, spec.data_layout)
    train, notes = summarize(spec.train_data, layout, spec.header)
    evaluation = None
    if spec.eval_data:
        evaluation, eval_notes = summarize(spec.eval_data, layout, spec.header)
        notes += [f"eval: {note}" for note in eval_notes]
    return Probed(
        updates={"columns": layout.columns, "data_layout": layout.name},
        train=train,
        eval=evaluation,
        description=describe(layout, train) + "".join(f"; {note}" for note in notes),
    )


def describe(layout: Layout, train: DataSummary) -> str:
    columns = layout.columns
    if layout.name == "instruction":
        prompt = columns["instruction"] + (f" + {columns['input']}" if "input" in columns else "")
        return f"instruction data: {prompt} → {columns['response']} (loss on the response only)"
    if layout.name == "chat":
        return f"conversations in `{columns['messages']}` (loss on every assistant turn)"
    return f"plain text from `{columns['text']}`, packed into max_length blocks"


# --- layout and columns ------------------------------------------------------------------------------------------


def infer_layout(sample: list[dict[str, Any]], path: Path, given: dict[str, str], layout: str | None = None) -> Layout:
    """The layout and its columns: the spec's when given (checked against the data), else from the keys."""
    names = list(sample[0])
    for role, name in given.items():
        if name not in names:
            raise DataError(f"{path} has no column `{name}` (--column {role}={name}); columns are: {', '.join(names)}")
    if layout is not None and layout not in LAYOUTS:
        raise DataError(f"unknown data_layout `{layout}`; text-generation reads: {', '.join(LAYOUTS)}")
    layout = layout or _layout_of_roles(given, path)
    if not given and layout is None:
        _refuse_other_kinds(names, path)
    found = _from_keys(names, layout)
    if found is None:
        raise DataError(
            f"{path}: cannot tell the layout from its keys ({', '.join(names)}); text-generation reads "
            "chat (`messages` [{role, content}] or ShareGPT `conversations` [{from, value}]), instruction pairs "
            "(instruction/input/output, prompt/completion, question/answer) or plain text (`text`, or a .txt "
            "file); rename the keys or pass --column ROLE=NAME (roles: instruction, input, response, messages, text)"
        )
    columns = {**found.columns, **given}
    missing = [role for role in ROLES[found.name] if role not in columns and role not in OPTIONAL_ROLES]
    if missing:
        raise DataError(f"{path}: no `{missing[0]}` column for {found.name} data; pass --column {missing[0]}=NAME")
    extra = sorted(set(columns) - set(ROLES[found.name]))
    if extra:
        roles = ", ".join(ROLES[found.name])
        raise DataError(f"column role `{extra[0]}` does not apply to {found.name} data; its roles are: {roles}")
    return Layout(found.name, {role: columns[role] for role in ROLES[found.name] if role in columns})


def _refuse_other_kinds(names: list[str], path: Path) -> None:
    """Data that looks like a layout but is another kind: its `text` or `conversations` key would be read,
    and the model would train on the wrong thing (root prompts alone, or conversations missing their answer)."""
    keys = {name.lower() for name in names}
    if {"message_id", "parent_id", "role", "text"} <= keys:
        raise DataError(
            f"{path} is a message tree (OpenAssistant's layout: one message per line, replies linked to their "
            "parent by message_id/parent_id), not conversations; read as text it would train on single messages. "
            "Build the threads first (from each root prompt, follow the best-ranked reply: rank 0) into one "
            "`messages` list of {role, content} per line, with `prompter` as the user role, and pass that file"
        )
    if {"chosen", "rejected"} <= keys:
        prompt = next((name for name in names if name.lower() in ("conversations", "messages", "prompt")), None)
        to = f" to `{prompt}`" if prompt else ""
        raise DataError(
            f"{path} holds preference pairs (a `chosen` and a `rejected` response{to}): data for preference "
            "tuning (DPO, ORPO, KTO), which text-generation does not train; to fine-tune on the preferred answers, "
            f"write each row's {prompt or 'prompt'} and its `chosen` response as one conversation (`messages`) or "
            "as prompt/completion, and pass that file"
        )


def _layout_of_roles(given: dict[str, str], path: Path) -> str | None:
    """The layout that --column roles imply, or None when no role was given."""
    layouts = {name for name, roles in ROLES.items() if set(given) & set(roles)}
    if len(layouts) > 1:
        raise DataError(f"{path}: --column roles {', '.join(sorted(given))} mix layouts; give the roles of one layout")
    return layouts.pop() if layouts else None


def _from_keys(names: list[str], layout: str | None) -> Layout | None:
    """The first layout (or the given one) whose column names the record has; columns map role -> key."""
    by_lower = {name.lower(): name for name in names}
    if layout in (None, "chat"):
        chat = next((by_lower[c] for c in CHAT_COLUMNS if c in by_lower), None)
        if chat or layout == "chat":
            return Layout("chat", {"messages": chat} if chat else {})
    if layout in (None, "instruction"):
        for instruction, response, extra in INSTRUCTION_COLUMNS:
            if instruction in by_lower and response in by_lower:
                columns = {"instruction": by_lower[instruction], "response": by_lower[response]}
                if extra in by_lower:
                    columns["input"] = by_lower[extra]
                return Layout("instruction", columns)
        if layout == "instruction":
            return Layout("instruction", {})
    if layout in (None, "text"):
        text = next((by_lower[c] for c in TEXT_COLUMNS if c in by_lower), None)
        if text or layout == "text" or len(names) == 1:
            return Layout("text", {"text": text or names[0]} if text or len(names) == 1 else {})
    return None


def suggest_header(rows: list[list[str]]) -> str:
    """The --header for a csv or tsv file without a header row: its text columns in file order are the
    instruction, then the input (of three or more), and last the response, as prompt/response exports lay them
    out; a lone text column is `text`. A first column of numbers is an `id` (a numeric answer further on is
    text); a column empty in every row, `columnN`."""
    width = max(len(fields) for fields in rows)
    filled = [i for i in range(width) if any(len(fields) > i and fields[i].strip() for fields in rows)]
    texts = [i for i in filled if i > 0 or not headerless.numbers(rows, i)]
    if not texts:
        return "text-generation needs a column of text; add one"
    names = {texts[0]: "text"} if len(texts) == 1 else {texts[0]: "instruction", texts[-1]: "response"}
    if len(texts) > 2:
        names[texts[1]] = "input"
    if 0 in filled and 0 not in texts:
        names[0] = "id"
    header = ",".join(names.get(i, f"column{i + 1}") for i in range(width))
    read_as = (
        "the text column as plain text"
        if len(texts) == 1
        else "the first text column as the instruction, the last as the response the model learns to write"
    )
    return f"name its {width} columns in order: --header {header} (read as: {read_as}; reorder the names if not)"


# --- reading every record ----------------------------------------------------------------------------------------


def records(path: Path, header: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Every record of a data file; a csv or tsv one without a header row read by the names `header` gives."""
    if data_format(path) == "txt" and not header:
        return iter_records(path)  # a corpus (a line's tab is text in it): data_format tells fields from prose
    return headerless.records(path, header, suggest_header)


def summarize(path: Path, layout: Layout, header: Sequence[str] = ()) -> tuple[DataSummary, list[str]]:
    """One pass over the file: every record checked, lengths counted; notes on what the data code will skip."""
    stats = TextStats()
    fields: tuple[str, ...] = ()
    notes: list[str] = []
    trailing = 0
    for row, record in enumerate(records(path, header), start=1):
        fields = fields or tuple(record)
        for role, column in layout.columns.items():
            if column not in record and role not in OPTIONAL_ROLES:
                raise DataError(f"{path}, row {row}: column `{column}` is missing; every row needs it")
        if layout.name == "instruction":
            texts = _instruction_texts(record, layout, path, row)
            stats.add(texts, key=texts[:2])  # the same prompt (instruction and input) is the same example
        elif layout.name == "chat":
            messages = normalize_messages(record[layout.columns["messages"]], path, row)
            trailing += messages[-1]["role"] != "assistant"
            contents = [m["content"] for m in messages]
            stats.add([*contents, _template_words(len(messages))], key=contents)
        else:
            stats.add([_text(record, layout.columns["text"], path, row)])
    if not stats.inputs:
        raise DataError(f"data file {path} has no rows; it needs at least a few examples")
    if trailing:
        notes.append(f"{trailing} conversation(s) end after the last assistant turn; the messages after it are dropped")
    summary = stats.summary(path, data_format(path), fields)
    if layout.name == "text":
        summary = _packed(summary, stats)
    return summary, notes


def _instruction_texts(record: dict[str, Any], layout: Layout, path: Path, row: int) -> list[str]:
    instruction = _text(record, layout.columns["instruction"], path, row)
    response = _text(record, layout.columns["response"], path, row)
    extra = layout.column("input")
    context = str(record.get(extra) or "") if extra else ""
    return [instruction, context, response, _template_words(3)]


def _template_words(messages: int) -> str:
    """Stand-in words for what a template adds around each message, so max_length leaves room for them."""
    return "# " * (TEMPLATE_WORDS_PER_EXAMPLE + TEMPLATE_WORDS_PER_MESSAGE * messages)


def _text(record: dict[str, Any], column: str, path: Path, row: int) -> str:
    value = record.get(column)
    if isinstance(value, (list, dict)):
        raise DataError(f"{path}, row {row}: `{column}` holds a {type(value).__name__}; it must be text")
    text = "" if value is None else str(value)
    if not text.strip():
        raise DataError(f"{path}, row {row}: `{column}` is empty; fill it in or remove the row")
    return text


def _packed(summary: DataSummary, stats: TextStats) -> DataSummary:
    """Plain text trains on max_length blocks of the concatenated documents, so a model input is a block: the
    corpus's word count over PACKED_BLOCKS decides max_length (up to the task's cap), so that a text too short
    to fill that many blocks of the cap is cut into shorter ones, some of which are held out for evaluation."""
    return replace(summary, words_p95=math.ceil(sum(stats.inputs) / PACKED_BLOCKS))


def normalize_messages(value: Any, path: Path, row: int) -> list[dict[str, str]]:
    """A conversation as [{role, content}] with roles system/user/assistant, checked; messages after the last
    assistant turn are kept (the data code drops them: they have no response to learn from)."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{path}, row {row}: the conversation must be a non-empty list of messages")
    messages = [_message(item, path, row, index) for index, item in enumerate(value, start=1)]
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(
            f"{path}, row {row}: the conversation has no assistant message, so nothing to learn from "
            "(the loss is on assistant turns); add the response or remove the row"
        )
    for index, message in enumerate(messages[1:], start=2):
        if message["role"] == "system":
            raise DataError(f"{path}, row {row}, message {index}: a system message must come first in a conversation")
    return messages


def _message(item: Any, path: Path, row: int, index: int) -> dict[str, str]:
    where = f"{path}, row {row}, message {index}"
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected an object with role/content (or ShareGPT from/value)")
    role, content = item.get("role", item.get("from")), item.get("content", item.get("value"))
    if role is None or content is None:
        raise DataError(f"{where}: has keys {', '.join(item)}; a message needs role and content (or from and value)")
    name = ROLE_NAMES.get(str(role).lower())
    if name is None:
        raise DataError(f"{where}: unknown role `{role}`; use one of: {', '.join(ROLE_NAMES)}")
    if not isinstance(content, str):
        raise DataError(f"{where}: the content is a {type(content).__name__}; it must be text")
    if name == "assistant" and not content.strip():
        raise DataError(f"{where}: the assistant response is empty; fill it in or remove the conversation")
    return {"role": name, "content": content}
