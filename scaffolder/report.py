"""The data report: what the data holds before anything trains on it. Rows per split, the label balance, exact
duplicates, the inputs train and eval share (leakage), the same input under different labels, empty and
over-long rows, and input lengths; with a warning and its fix for each thing that is off.

`scaffold new` prints it short, `--json` carries it as `data_report`, and the project keeps it as DATA.md
(templates/common/DATA.md.j2), all from one `DataReport`. It is built from the probe's summaries, each file
read once (`probes.rows` hashed every model input on the way), and the resolved spec (max_length); nothing
here reads a file, and nothing in it depends on the clock or the machine, so a regeneration from the same
data leaves DATA.md as it was.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

from scaffolder import tokens
from scaffolder.probes import DataSummary
from scaffolder.probes.rows import EXAMPLES, SAMPLE_ROWS, Example, RowIndex
from scaffolder.probes.text_classification import REGRESSION, SINGLE, held_out
from scaffolder.spec import ProjectSpec

# --- thresholds: when a finding becomes a warning ---------------------------------------------------------------

# A class with fewer train rows gets one eval row or none: its eval score means little, and the model has too
# few examples to learn it from.
MIN_CLASS_ROWS = 5
# Duplicate rows above this share of train weigh several times in training; with eval held out of the same
# file, copies of one input land on both sides of the split. Below it, a few copies change nothing.
DUPLICATE_SHARE = 0.01
# Above this share of a file's rows longer than max_length, truncation cuts what most examples say.
TRUNCATED_SHARE = 0.5
# Any overlap, conflicting label or empty row is a warning: each is a mistake in the data, not a matter of degree.

# --- estimating tokens ------------------------------------------------------------------------------------------

# Sub-word tokens per whitespace word (English with a BERT- or GPT-style vocabulary) and special tokens per input:
# plan.py sizes max_length with the same estimate. The tokenizer is not loaded at `scaffold new` (the CLI imports
# no transformers), so token counts are estimates, and the report says so.
TOKENS_PER_WORD = 1.4
SPECIAL_TOKENS = 4


def estimated_tokens(words: int) -> int:
    return int(words * TOKENS_PER_WORD) + SPECIAL_TOKENS


def packed_blocks(train: DataSummary, max_length: int) -> int:
    """About how many max_length blocks plain text packs into: every document's tokens and its end-of-text token."""
    words = sum(length * rows for length, rows in train.input_words.items())
    return math.ceil((int(words * TOKENS_PER_WORD) + train.num_rows) / max(max_length, 1))


# --- what differs by task ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskData:
    input: str  # what the model reads, the part two rows must share to be the same input
    labels: str = ""  # what a label count counts, for tasks with classes or tags ("" for none)
    long_inputs: str = "truncated"  # what becomes of an input over max_length: truncated, or read in windows
    hold_out: str = "ceil"  # how data.py sizes a held-out split: sklearn's ceil, or round (at least one row)


TASK_DATA = {
    "text-classification": TaskData("the text (and its pair)", labels="rows"),
    "token-classification": TaskData("the token sequence", labels="words"),
    # Long contexts are cut into overlapping windows (doc_stride), so nothing is lost.
    "question-answering": TaskData("question and context", long_inputs="windows"),
    "summarization": TaskData("the document"),
    "translation": TaskData("the source text"),
    "text-generation": TaskData("the prompt (instruction and input), or the conversation", hold_out="round"),
}
DEFAULT_TASK_DATA = TaskData("the model input")
PACKED = "packed"  # plain-text generation packs documents into max_length blocks: nothing is cut
NO_ENTITY_TAG = "O"  # outside any entity: most words of a tagging file, left out of the imbalance ratio


# --- the report -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lengths:
    """Words in a model input (whitespace words, a CJK character each)."""

    p50: int
    p95: int
    max: int


@dataclass(frozen=True)
class Split:
    name: str  # train or eval
    rows: int  # what training (or evaluation) reads
    source: str  # where the rows come from
    unit: str = "row"  # or "block": packed plain text, whose blocks are estimated from the words

    @property
    def amount(self) -> str:
        """`27 rows`, or `about 9 blocks`."""
        return plural(self.rows, self.unit) if self.unit == "row" else f"about {plural(self.rows, self.unit)}"


@dataclass(frozen=True)
class DataFile:
    name: str
    role: str  # train or eval
    rows: int
    words: Lengths
    target_words: Lengths | None  # seq2seq: the target's
    empty: int  # rows with an empty input
    empty_rows: tuple[int, ...]  # the first of them
    too_long: int | None  # inputs longer than max_length (estimated); None where none is cut (packed text)
    targets_too_long: int | None  # targets longer than max_target_length (estimated); None without targets
    # Lengths in the model's tokens, counted on a sample of `counted` rows, where its tokenizer is on disk.
    tokens: Lengths | None = None
    target_tokens: Lengths | None = None
    counted: int = 0


@dataclass(frozen=True)
class LabelRow:
    name: str
    train: int
    eval: int | None  # None without an eval file


@dataclass(frozen=True)
class Shown:
    """An example of a finding: where it is, the opening of its input, the labels in conflict."""

    where: str
    text: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    kind: str  # duplicates, overlap, conflicts
    rows: int  # the rows it concerns
    inputs: int  # the distinct inputs among them
    summary: str  # one sentence
    examples: tuple[Shown, ...] = ()
    note: str = ""  # where a count covers part of a big file, or examples the first rows only


@dataclass(frozen=True)
class DataReport:
    task: str
    input: str  # what a model input is for the task
    splits: tuple[Split, ...]
    files: tuple[DataFile, ...]
    max_length: int
    max_target_length: int | None
    long_inputs: str  # truncated, windows or packed
    label_unit: str  # rows or words; "" without a label table
    labels: tuple[LabelRow, ...]
    imbalance: float | None  # the largest class's count over the smallest's
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...]  # each says what is off and what to do
    notes: tuple[str, ...] = field(default=())  # how things were counted
    tokenizer: str = ""  # the model whose tokenizer counted the files' tokens; "" where lengths are in words

    def finding(self, kind: str) -> Finding | None:
        return next((f for f in self.findings if f.kind == kind), None)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """One line for `scaffold new`: the splits, the train lengths, what was found."""
        splits = ", ".join(f"{s.name} {s.amount} ({s.source})" for s in self.splits)
        first = self.files[0]
        lengths, unit = (first.tokens, "tokens") if first.tokens else (first.words, "words")
        counted = f" (the model's tokenizer, {plural(first.counted, 'sampled row')})" if first.tokens else ""
        found = [_found(f) for f in self.findings if f.rows]
        found += [f"{plural(file.empty, 'empty row')} in {file.name}" for file in self.files if file.empty]
        return (
            f"data: {splits}; input {unit} p50 {lengths.p50}, p95 {lengths.p95}, max {lengths.max}{counted}; "
            + (", ".join(found) if found else "no duplicates, no train/eval overlap, no empty rows")
            + "; details in DATA.md"
        )


def _found(finding: Finding) -> str:
    if finding.kind == "duplicates":
        return f"{plural(finding.rows, 'duplicate row')} in train"
    if finding.kind == "overlap":
        return f"{plural(finding.rows, 'eval row')} also in train"
    return plural(finding.inputs, "input") + " with conflicting labels"


def _v(count: int, one: str, many: str) -> str:
    """The verb that agrees with `count`."""
    return one if count == 1 else many


def plural(count: int, noun: str) -> str:
    """`1 row`, `2 rows`, `3 classes`."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x')) else 's'}"


def build(spec: ProjectSpec, train: DataSummary, evaluation: DataSummary | None) -> DataReport:
    """The report for a resolved spec (max_length set) and the probe's summaries of its files."""
    rules = TASK_DATA.get(spec.task, DEFAULT_TASK_DATA)
    long_inputs = PACKED if spec.task == "text-generation" and spec.data_layout == "text" else rules.long_inputs
    names = _file_names(train, evaluation)
    files = [_data_file(names[0], "train", train, spec, long_inputs)]
    if evaluation is not None:
        files.append(_data_file(names[1], "eval", evaluation, spec, long_inputs))
    labels = _label_rows(spec, rules, train, evaluation)
    imbalance = _imbalance(labels)
    findings = [
        f
        for f in (
            _duplicates(names[0], train.index),
            _overlap(names, train.index, evaluation.index) if evaluation else None,
            _conflicts(names[0], train.index),
        )
        if f is not None
    ]
    report = DataReport(
        task=spec.task,
        input="a document (packed with the others into blocks of max_length tokens)"
        if long_inputs == PACKED
        else rules.input,
        splits=_splits(spec, rules, names, train, evaluation),
        files=tuple(files),
        max_length=spec.max_length or 0,
        max_target_length=spec.max_target_length if train.target_words else None,
        long_inputs=long_inputs,
        label_unit=rules.labels if labels else "",
        labels=tuple(labels),
        imbalance=imbalance,
        findings=tuple(findings),
        warnings=(),
        notes=tuple(_notes(names, train, evaluation, long_inputs)),
        tokenizer=(spec.model or "") if any(file.tokens for file in files) else "",
    )
    return replace(report, warnings=tuple(warnings(report)))


def _file_names(train: DataSummary, evaluation: DataSummary | None) -> tuple[str, str]:
    """File names as the report shows them: the name alone, with its folder where both files share a name; a
    hub dataset's split as `owner/name train`."""
    if train.source:
        return train.source, evaluation.source if evaluation and evaluation.source else ""
    if evaluation is None:
        return train.path.name, ""
    if train.path.name != evaluation.path.name:
        return train.path.name, evaluation.path.name
    return f"{train.path.parent.name}/{train.path.name}", f"{evaluation.path.parent.name}/{evaluation.path.name}"


def _splits(
    spec: ProjectSpec, rules: TaskData, names: tuple[str, str], train: DataSummary, evaluation: DataSummary | None
) -> tuple[Split, ...]:
    if evaluation is not None:
        return Split("train", train.num_rows, names[0]), Split("eval", evaluation.num_rows, names[1])
    if spec.task == "text-generation" and spec.data_layout == "text":
        blocks = packed_blocks(train, spec.max_length or 0)
        held = max(1, round(spec.eval_fraction * blocks))
        return (
            Split(
                "train", blocks - held, f"{names[0]}'s blocks of {spec.max_length} tokens less the eval blocks", "block"
            ),
            Split("eval", held, f"{spec.eval_fraction:.0%} of {names[0]}'s blocks held out, at random", "block"),
        )
    rows, how = held_out_rows(spec, rules, train)
    fraction = f"{spec.eval_fraction:.0%}"
    return (
        Split("train", train.num_rows - rows, f"{names[0]} less the eval rows"),
        Split("eval", rows, f"{fraction} of {names[0]} held out, {how}"),
    )


def held_out_rows(spec: ProjectSpec, rules: TaskData, train: DataSummary) -> tuple[int, str]:
    """The rows the project's data.py holds out of train without an eval file, and how it picks them."""
    total, fraction = train.num_rows, spec.eval_fraction
    if spec.task == "text-classification" and spec.problem_type == SINGLE:
        split = held_out(train, fraction)  # the probe's copy of data.py's hold_out rule
        return split.rows, "stratified by class" if split.stratified else "at random (too few rows to stratify)"
    if rules.hold_out == "round":
        return max(1, round(fraction * total)), "at random"
    return math.ceil(fraction * total), "at random"  # sklearn's train_test_split rounds a fractional size up


def _data_file(name: str, role: str, summary: DataSummary, spec: ProjectSpec, long_inputs: str) -> DataFile:
    index = summary.index
    limit = spec.max_length or 0
    target_limit = spec.max_target_length
    counted = tokens.count(spec.model, spec.task, summary) if spec.model else None
    too_long = _over(summary.input_words, limit)
    targets_too_long = _over(summary.target_words, target_limit) if summary.target_words and target_limit else None
    if counted:  # the share of the sample over the limit, of all the rows
        too_long = _share_over(counted.inputs, limit, summary.num_rows)
        if counted.targets and target_limit:
            targets_too_long = _share_over(counted.targets, target_limit, summary.num_rows)
    return DataFile(
        name=name,
        role=role,
        rows=summary.num_rows,
        words=_lengths(summary.input_words),
        target_words=_lengths(summary.target_words) if summary.target_words else None,
        empty=index.empty if index else 0,
        empty_rows=tuple(index.empty_rows) if index else (),
        too_long=None if long_inputs == PACKED else too_long,
        targets_too_long=targets_too_long,
        tokens=_lengths(Counter(counted.inputs)) if counted else None,
        target_tokens=_lengths(Counter(counted.targets)) if counted and counted.targets else None,
        counted=len(counted.inputs) if counted else 0,
    )


def _share_over(lengths: tuple[int, ...], limit: int, rows: int) -> int:
    return round(sum(length > limit for length in lengths) / len(lengths) * rows) if lengths else 0


def _lengths(counts: dict[int, int]) -> Lengths:
    return Lengths(_percentile(counts, 0.5), _percentile(counts, 0.95), max(counts, default=0))


def _percentile(counts: dict[int, int], share: float) -> int:
    """The value at `share` of the sorted values, by the rule of probes.p95, from a histogram."""
    total = sum(counts.values())
    if not total:
        return 0
    position, seen = min(total - 1, int(share * total)), 0
    for value, count in sorted(counts.items()):
        seen += count
        if seen > position:
            return value
    return max(counts)


def _over(counts: dict[int, int], limit: int) -> int:
    return sum(count for words, count in counts.items() if estimated_tokens(words) > limit)


def _label_rows(
    spec: ProjectSpec, rules: TaskData, train: DataSummary, evaluation: DataSummary | None
) -> list[LabelRow]:
    if not rules.labels or spec.problem_type == REGRESSION:
        return []
    return [
        LabelRow(name, train.label_counts.get(name, 0), evaluation.label_counts.get(name, 0) if evaluation else None)
        for name in spec.labels
    ]


def _imbalance(labels: list[LabelRow]) -> float | None:
    counts = [row.train for row in labels if row.train and row.name != NO_ENTITY_TAG]
    return round(max(counts) / min(counts), 1) if len(counts) > 1 else None


# --- findings ---------------------------------------------------------------------------------------------------


def _duplicates(name: str, index: RowIndex | None) -> Finding | None:
    if index is None:
        return None
    rows, inputs = index.duplicate_rows, len(index.repeats)
    summary = f"{plural(rows, 'duplicate row')} in {name}, each with the input of an earlier row"
    summary += f" ({plural(inputs, 'distinct input')})"
    examples = tuple(_shown(example) for example in index.duplicates)
    return Finding("duplicates", rows, inputs, summary, examples, _partial(name, index))


def _conflicts(name: str, index: RowIndex | None) -> Finding | None:
    if index is None or not index.labelled:
        return None
    inputs = len(index.conflicting)
    rows = sum(index.occurrences(digest) for digest in index.conflicting)
    summary = f"{plural(inputs, 'input')} of {name} with more than one label ({plural(rows, 'row')})"
    examples = tuple(_shown(example) for example in index.conflicts)
    return Finding("conflicts", rows, inputs, summary, examples, _partial(name, index))


def _overlap(names: tuple[str, str], train: RowIndex | None, evaluation: RowIndex | None) -> Finding | None:
    """Eval rows whose input is also in train, and those of them with another label there."""
    if train is None or evaluation is None:
        return None
    shared = {digest for digest in evaluation.digests if digest in train.digests}
    rows = sum(evaluation.occurrences(digest) for digest in shared)
    relabelled = _relabelled(shared, train, evaluation) if train.labelled else 0
    summary = f"eval rows ({names[1]}) whose input is also in {names[0]}: {rows} of {evaluation.rows}"
    summary += f" ({plural(len(shared), 'distinct input')}"
    summary += f", {relabelled} with another label there)" if relabelled else ")"
    examples = _overlap_examples(shared, train, evaluation)
    notes = [note for note in (_partial(names[0], train), _partial(names[1], evaluation)) if note]
    if len(examples) < min(len(shared), EXAMPLES):
        notes.append(f"examples come from the first {SAMPLE_ROWS:,} rows of each file")
    return Finding("overlap", rows, len(shared), summary, examples, "; ".join(notes))


def _relabelled(shared: set[int], train: RowIndex, evaluation: RowIndex) -> int:
    """Shared inputs whose eval label differs from their train label (the first row's of each)."""
    eval_names, train_names = evaluation.label_names, train.label_names
    return sum(1 for d in shared if eval_names[evaluation.digests[d]] != train_names[train.digests[d]])


def _overlap_examples(shared: set[int], train: RowIndex, evaluation: RowIndex) -> tuple[Shown, ...]:
    """The first shared inputs among eval's first rows, then among train's, in reading order."""
    picked: dict[int, str] = {}
    for index in (evaluation, train):
        for digest, _, text in index.sampled():
            if len(picked) == EXAMPLES:
                break
            if digest in shared:
                picked.setdefault(digest, text)
    return tuple(_shared(digest, text, train, evaluation) for digest, text in picked.items())


def _shared(digest: int, text: str, train: RowIndex, evaluation: RowIndex) -> Shown:
    rows = (("eval", evaluation.first_row(digest)), ("train", train.first_row(digest)))
    labels = (evaluation.label_name(digest), train.label_name(digest)) if train.labelled else ()
    return Shown(
        ", ".join(f"{side} row {row}" for side, row in rows if row), text, labels if len(set(labels)) > 1 else ()
    )


def _shown(example: Example) -> Shown:
    rows = [str(row) for row in (example.other_row, example.row) if row]
    return Shown(("rows " if len(rows) > 1 else "row ") + " and ".join(rows), example.text, example.labels)


def _partial(name: str, index: RowIndex) -> str:
    if not index.partial:
        return ""
    return f"counted over the first {index.compared:,} of the {index.rows:,} rows of {name}"


def _notes(names: tuple[str, str], train: DataSummary, evaluation: DataSummary | None, long_inputs: str) -> list[str]:
    notes = [
        "Words are whitespace words, each CJK character a word. Token counts are estimated from them "
        f"({TOKENS_PER_WORD} tokens a word plus {SPECIAL_TOKENS} special tokens, the estimate max_length was "
        "chosen by): the tokenizer is not loaded at `scaffold new`.",
        "Inputs are compared after stripping whitespace at their ends; rows are counted from 1 in reading order.",
    ]
    if long_inputs == "windows":
        notes.append("An input over max_length is read in overlapping windows (doc_stride), not cut.")
    if long_inputs == PACKED:
        notes.append("Plain text is packed into max_length blocks, so no document is cut.")
    for name, summary in zip(names, (train, evaluation), strict=False):
        if summary is not None and summary.index is None:
            notes.append(f"{name} was not hashed: no duplicates or overlap are counted for it.")
    return notes


# --- warnings ---------------------------------------------------------------------------------------------------


def warnings(report: DataReport) -> list[str]:
    """What is off, each with what to do, the most harmful first: leakage makes every eval score wrong."""
    return [
        *_overlap_warnings(report),
        *_duplicate_warnings(report),
        *_conflict_warnings(report),
        *_label_warnings(report),
        *_empty_warnings(report),
        *_length_warnings(report),
    ]


def _overlap_warnings(report: DataReport) -> list[str]:
    overlap = report.finding("overlap")
    if not overlap or not overlap.rows:
        return []
    return [
        f"leakage: {plural(overlap.rows, 'eval row')} of {report.files[1].name} {_v(overlap.rows, 'has', 'have')} "
        "the same input as a train row, "
        "so eval scores overstate the model; remove those rows from the eval file"
    ]


def _duplicate_warnings(report: DataReport) -> list[str]:
    duplicates, train = report.finding("duplicates"), report.files[0]
    if not duplicates or not duplicates.rows or duplicates.rows < DUPLICATE_SHARE * train.rows:
        return []
    share = f"{duplicates.rows / train.rows:.0%}"
    what = f"{plural(duplicates.rows, 'row')} of {train.name} ({share}) {_v(duplicates.rows, 'repeats', 'repeat')}"
    what += " another row's input"
    if len(report.files) == 1:  # eval is held out of this file
        return [
            f"{what}; eval is held out of the same file, so copies land on both sides of the split and leak into "
            "eval: dedupe the file before scaffolding, or pass --eval-data"
        ]
    return [f"{what} and weigh several times in training: dedupe {train.name}"]


def _conflict_warnings(report: DataReport) -> list[str]:
    conflicts = report.finding("conflicts")
    if not conflicts or not conflicts.inputs:
        return []
    first = conflicts.examples[0] if conflicts.examples else None
    example = f" (e.g. {first.where}: {' and '.join(first.labels)})" if first else ""
    return [
        f"conflicting labels: {plural(conflicts.inputs, 'input')} of {report.files[0].name} "
        f"{_v(conflicts.inputs, 'carries', 'carry')} different "
        f"labels{example}, so the model learns both answers: fix the labels, or keep one row of each"
    ]


def _empty_warnings(report: DataReport) -> list[str]:
    found = []
    for file in report.files:
        if file.empty:
            rows = ", ".join(map(str, file.empty_rows)) + (", …" if file.empty > len(file.empty_rows) else "")
            found.append(
                f"{plural(file.empty, 'row')} of {file.name} {_v(file.empty, 'has', 'have')} an empty input "
                f"({_v(len(file.empty_rows), 'row', 'rows')} {rows}) and {_v(file.empty, 'teaches', 'teach')} "
                f"nothing: remove {_v(file.empty, 'it', 'them')}"
            )
    return found


def _label_warnings(report: DataReport) -> list[str]:
    kind = "tag" if report.label_unit == "words" else "class"
    found = []
    rare = [row for row in report.labels if 0 < row.train < MIN_CLASS_ROWS]
    if rare:
        listed = ", ".join(f"{row.name} ({row.train})" for row in rare[:8]) + (", …" if len(rare) > 8 else "")
        found.append(
            f"{plural(len(rare), kind)} with fewer than {MIN_CLASS_ROWS} train {report.label_unit}: {listed}; "
            f"an eval score over so few means little, and the model barely learns {_v(len(rare), 'it', 'them')}: "
            f"add {report.label_unit}, or merge {_v(len(rare), 'it', 'them')} into a related {kind}"
        )
    absent = [row.name for row in report.labels if row.train == 0 and row.eval]
    if absent:
        found.append(
            f"eval has {plural(len(absent), kind)} that train lacks: {', '.join(absent[:8])}; the model never learns "
            f"{'it' if len(absent) == 1 else 'them'}: add train {report.label_unit}"
        )
    return found


def _length_warnings(report: DataReport) -> list[str]:
    if report.long_inputs != "truncated":
        return []
    found = []
    for file in report.files:
        how = f"counted on {plural(file.counted, 'sampled row')}" if file.tokens else "estimated from words"
        sides = [("input", "max_length", file.too_long, report.max_length, _p95_tokens(file.tokens, file.words))]
        if file.target_words and report.max_target_length:
            sides.append(("target", "max_target_length", file.targets_too_long, report.max_target_length,
                          _p95_tokens(file.target_tokens, file.target_words)))  # fmt: skip
        for what, setting, over, limit, p95_tokens in sides:
            if over and over > TRUNCATED_SHARE * file.rows:
                found.append(
                    f"{over} of {plural(file.rows, what)} in {file.name} {_v(over, 'is', 'are')} longer than "
                    f"{setting} {limit} ({how}) and will be cut: raise {setting}{_suggested(p95_tokens, limit)}"
                )
    return found


def _p95_tokens(counted: Lengths | None, words: Lengths) -> int:
    return counted.p95 if counted else estimated_tokens(words.p95)


def _suggested(tokens_p95: int, current: int) -> str:
    """` (about N fits 95% of them)`: the smallest power of two over 95% of them, when above `current`."""
    length = 32
    while length < tokens_p95:
        length *= 2
    return f" (about {length} fits 95% of them)" if length > current else ""
