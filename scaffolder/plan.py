"""Plan: the spec plus a look at the data and the model, resolved into everything a generator needs.

Open spec fields (columns, labels, max length, hyperparameters, model) are decided here from the data and
the task table, and written back into the spec, so that scaffold.toml records what was generated.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path

from scaffolder import probes, report, tokens
from scaffolder.errors import DataError, SpecError
from scaffolder.model_files import hub_cache, model_file
from scaffolder.probes import DataSummary, Probed, readers
from scaffolder.probes.hub import HubData, export_splits
from scaffolder.spec import ProjectSpec, is_hub_dataset, is_local_model
from scaffolder.tasks import (
    FAMILIES,
    PEFT_METHODS,
    TASKS,
    ModelFamily,
    PeftMethod,
    TaskInfo,
    family_from_name,
)

MIN_ROWS_FOR_SPLIT = 10  # below this a held-out split leaves too little to train or to evaluate on


@dataclass(frozen=True)
class Plan:
    spec: ProjectSpec  # resolved: no open fields left
    task: TaskInfo
    family: ModelFamily
    peft: PeftMethod
    train: DataSummary
    eval: DataSummary | None
    description: str  # what the data is read as, in one line
    warnings: tuple[str, ...] = ()  # what the data may be read wrong as, each with its fix
    hub: HubData | None = None  # the hub dataset the data comes from, its splits and commit

    @property
    def best_metric(self) -> str:
        return self.task.best_metric_by_problem.get(self.spec.problem_type or "", self.task.best_metric)

    @property
    def data_encoding(self) -> str:
        """The encoding data.py reads files in that are not UTF-8 (UTF-16/32 carry a byte-order mark)."""
        return next((s.encoding for s in (self.train, self.eval) if s and _legacy(s.encoding)), "utf-8")

    @functools.cached_property
    def data_report(self) -> report.DataReport:
        """Splits, label balance, duplicates, train/eval overlap, lengths: printed at `new`, kept as DATA.md."""
        return report.build(self.spec, self.train, self.eval)

    @property
    def label_counts(self) -> dict[str, int]:
        return {label: self.train.label_counts.get(label, 0) for label in self.spec.labels}


def build_plan(spec: ProjectSpec) -> Plan:
    task = TASKS[spec.task]
    spec, probed_spec, from_hub = _hub_source(spec)
    _check_encodings(probed_spec.train_data, probed_spec.eval_data)
    probed = probes.probe(probed_spec)
    if from_hub:
        probed = _named_for_hub(probed, from_hub, spec.eval_data == spec.train_data)
    train = probed.train
    packed = spec.task == "text-generation" and probed.updates.get("data_layout", spec.data_layout) == "text"
    if not packed:
        _check_sizes(train, probed.eval)
    model = spec.model or probed.default_model
    model = model or (task.multilingual_model if train.non_latin_share > 0.5 else task.default_model)
    family = model_family(model)
    if family.architecture not in task.architectures:
        raise SpecError(
            f"`{model}` is a {family.architecture} model ({family.model_type}); {spec.task} needs "
            f"{' or '.join(task.architectures)} models, e.g. {task.default_model}; change --model"
        )
    counted = None if packed else tokens.count(model, spec.task, train)  # packed text: blocks, not rows
    resolved = replace(
        spec,
        **probed.updates,
        model=model,
        max_length=spec.max_length or _max_length(train.words_p95, task.max_length_cap, counted),
        num_epochs=spec.num_epochs or task.num_epochs,
        batch_size=spec.batch_size or task.batch_size,
        learning_rate=spec.learning_rate or task.learning_rate(spec.peft),
    )
    if packed and probed.eval is None:
        _check_blocks(train, resolved.max_length or 0)
    if train.target_words_p95 and resolved.max_target_length is None:
        target_tokens = tokens.p95(counted.targets) if counted and counted.targets else None
        length = _fit(target_tokens or report.estimated_tokens(train.target_words_p95), task.max_length_cap)
        resolved = replace(resolved, max_target_length=length)
    description = probed.description + ("" if from_hub else _read_as(train, probed.eval))
    return Plan(
        resolved, task, family, PEFT_METHODS[spec.peft], train, probed.eval, description, probed.warnings, from_hub
    )


def _named_for_hub(probed: Probed, data: HubData, eval_from_hub: bool) -> Probed:
    """The summaries of a hub dataset's exported splits, named for the dataset and split in the report."""
    train = replace(probed.train, source=f"{data.source} {data.train_split}")
    evaluation = probed.eval
    if evaluation and eval_from_hub:
        evaluation = replace(evaluation, source=f"{data.source} {data.eval_split}")
    return replace(probed, train=train, eval=evaluation)


def _hub_source(spec: ProjectSpec) -> tuple[ProjectSpec, ProjectSpec, HubData | None]:
    """(the spec, the spec the probes read, the hub data): for a hub dataset, the probes read its splits
    exported as Parquet files, and its validation split is the eval data unless --eval-data names a file."""
    if not is_hub_dataset(spec.train_data):
        return spec, spec, None
    eval_from_hub = spec.eval_data is None or spec.eval_data == spec.train_data
    folder = hub_cache().parent / "scaffolder" / "hub-exports"
    data = export_splits(spec.train_data.as_posix(), eval_from_hub, folder, spec.data_revision)
    spec = replace(spec, data_revision=data.revision)  # pinned: a regen reads the same commit, offline too
    if eval_from_hub:
        spec = replace(spec, eval_data=spec.train_data if data.eval_split else None)
    probed = replace(spec, train_data=data.train_file, eval_data=data.eval_file if eval_from_hub else spec.eval_data)
    return spec, probed, data


def _check_sizes(train: DataSummary, evaluation: DataSummary | None) -> None:
    if evaluation is None and train.num_rows < MIN_ROWS_FOR_SPLIT:
        raise DataError(
            f"{train.path} has {train.num_rows} rows, too few to hold out an eval split; "
            f"add rows (at least {MIN_ROWS_FOR_SPLIT}) or pass --eval-data"
        )


def _check_blocks(train: DataSummary, max_length: int) -> None:
    """Plain text holds blocks out, not documents: it needs two blocks, one to train on and one to evaluate."""
    blocks = report.packed_blocks(train, max_length)
    if blocks < 2:
        raise DataError(
            f"{train.path} packs into about {blocks} block of max_length={max_length} tokens, too few to hold one "
            "out for evaluation; lower --max-length, add text, or pass --eval-data"
        )


def _legacy(encoding: str) -> bool:
    return not encoding.startswith("utf-")


def _check_encodings(train: Path, evaluation: Path | None) -> None:
    """config.yaml's data_encoding reads every file that is not UTF-8: two such files must share it."""
    if evaluation is None or not (train.is_file() and evaluation.is_file()):
        return  # missing files are the probe's to report (and a translation pair names files it reads apart)
    train_encoding, encoding = readers.data_encoding(train), readers.data_encoding(evaluation)
    if _legacy(train_encoding) and _legacy(encoding) and train_encoding != encoding:
        raise DataError(
            f"{evaluation} is {encoding} text and {train.name} {train_encoding}; one project reads one encoding "
            f"besides UTF-8: convert it (iconv -f {encoding} -t UTF-8 {evaluation.name} > "
            f"{evaluation.stem}.utf8{evaluation.suffix}) and pass that"
        )


def _read_as(train: DataSummary, evaluation: DataSummary | None) -> str:
    """`; eng.train read as CoNLL text` where a file is read other than its name says, or not as UTF-8."""
    notes = [readers.describe(s.path) for s in (train, evaluation) if s and s.path.is_file()]
    return "".join(f"; {note}" for note in notes if note)


def _max_length(words_p95: int, cap: int, counted: tokens.TokenCounts | None = None) -> int:
    """Enough tokens for 95% of the examples, as a power of 2 from 32 up to the task's cap: counted with the
    model's tokenizer on a sample of rows where it is on disk, else about 1.4 sub-words a word plus special
    tokens."""
    return _fit(tokens.p95(counted.inputs) if counted else report.estimated_tokens(words_p95), cap)


def _fit(needed: int, cap: int) -> int:
    length = 32
    while length < needed and length < cap:
        length *= 2
    return length


def model_family(model: str) -> ModelFamily:
    """The family of a local model (its config.json), a cached hub model, or a hub id judged by its name."""
    model_type = _local_model_type(model) if is_local_model(model) else _cached_model_type(model)
    if model_type is None:
        family = family_from_name(model)
        if family is None:
            raise SpecError(
                f"cannot tell the architecture of `{model}` offline; download it first "
                f"(`hf download {model}`) or pass a local directory; supported: {', '.join(FAMILIES)}"
            )
        return family
    if model_type not in FAMILIES:
        raise SpecError(
            f"model `{model}` is a `{model_type}`, which scaffolder does not support yet; "
            f"use one of: {', '.join(FAMILIES)}"
        )
    return FAMILIES[model_type]


def _local_model_type(model: str) -> str | None:
    config = Path(model).expanduser() / "config.json"
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"cannot read {config} ({exc}); point --model at a saved model directory") from None


def _cached_model_type(model: str) -> str | None:
    """model_type from the config.json of the hub cache's `main` snapshot of `model`, if it was downloaded."""
    config = model_file(model, "config.json")
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") if config else None
    except (OSError, ValueError):  # a damaged cache entry: judged by its name instead
        return None
