"""Plan: the spec plus a look at the data and the model, resolved into everything a generator needs.

Open spec fields (columns, labels, max length, hyperparameters, model) are decided here from the data and
the task table, and written back into the spec, so that scaffold.toml records what was generated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from scaffolder import data_probe
from scaffolder.data_probe import Columns, DataSummary
from scaffolder.errors import DataError, SpecError
from scaffolder.spec import ProjectSpec, is_local_model
from scaffolder.tasks import FAMILIES, PEFT_METHODS, TASKS, ModelFamily, PeftMethod, TaskInfo, family_from_name

MIN_ROWS_FOR_SPLIT = 10  # below this a held-out split leaves too little to train or to evaluate on


@dataclass(frozen=True)
class Plan:
    spec: ProjectSpec  # resolved: no open fields left
    task: TaskInfo
    family: ModelFamily
    peft: PeftMethod
    train: DataSummary
    eval: DataSummary | None

    @property
    def label_counts(self) -> dict[str, int]:
        return {label: self.train.label_counts.get(label, 0) for label in self.spec.labels}


def build_plan(spec: ProjectSpec) -> Plan:
    task = TASKS[spec.task]
    train_path = spec.train_data
    sample = data_probe.read_sample(train_path)
    columns = data_probe.infer_columns(sample, train_path, spec.text_column, spec.text_pair_column, spec.label_column)
    train = data_probe.summarize(train_path, columns)
    evaluation = _eval_summary(spec.eval_data, columns) if spec.eval_data else None
    _check_sizes(train, evaluation, spec)
    model = spec.model or (task.multilingual_model if train.non_latin_share > 0.5 else task.default_model)
    resolved = replace(
        spec,
        model=model,
        text_column=columns.text,
        text_pair_column=columns.text_pair,
        label_column=columns.label,
        labels=_labels(spec, train, evaluation),
        max_length=spec.max_length or _max_length(train.words_p95),
        num_epochs=spec.num_epochs or task.num_epochs,
        batch_size=spec.batch_size or task.batch_size,
        learning_rate=spec.learning_rate or task.learning_rates[spec.peft],
    )
    return Plan(resolved, task, model_family(model), PEFT_METHODS[spec.peft], train, evaluation)


def _eval_summary(path: Path, columns: Columns) -> DataSummary:
    sample = data_probe.read_sample(path)
    missing = [name for name in (columns.text, columns.text_pair, columns.label) if name and name not in sample[0]]
    if missing:
        raise DataError(
            f"eval data {path} lacks column `{missing[0]}` that the train data uses; "
            f"its columns are: {', '.join(sample[0])}"
        )
    return data_probe.summarize(path, columns)


def _check_sizes(train: DataSummary, evaluation: DataSummary | None, spec: ProjectSpec) -> None:
    if evaluation is None and train.num_rows < MIN_ROWS_FOR_SPLIT:
        raise DataError(
            f"{train.path} has {train.num_rows} rows, too few to hold out an eval split; "
            f"add rows (at least {MIN_ROWS_FOR_SPLIT}) or pass --eval-data"
        )
    if len(train.label_counts) < 2:
        only = next(iter(train.label_counts))
        raise DataError(
            f"{train.path}: every row has label `{only}`; classification needs at least two classes "
            f"(is `{spec.label_column or 'the label column'}` the right column? pass --label-column)"
        )


def _labels(spec: ProjectSpec, train: DataSummary, evaluation: DataSummary | None) -> tuple[str, ...]:
    """Class names in id order: numeric labels by value, names alphabetically; kept as the spec fixes them."""
    seen = set(train.label_counts) | set(evaluation.label_counts if evaluation else ())
    if spec.labels:
        extra = sorted(seen - set(spec.labels))
        if extra:
            raise DataError(
                f"the data has labels not in the spec's `labels`: {', '.join(extra)}; add them to scaffold.toml"
            )
        return spec.labels
    if all(label.lstrip("-").isdigit() for label in seen):
        return tuple(sorted(seen, key=int))
    return tuple(sorted(seen))


def _max_length(words_p95: int) -> int:
    """Enough tokens for 95% of the examples (about 1.4 sub-words a word, plus special tokens), as a power of 2."""
    needed = int(words_p95 * 1.4) + 4
    length = 32
    while length < needed and length < 512:
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
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the bare tool without the training stack
        return None
    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str):
        return json.loads(Path(cached).read_text(encoding="utf-8")).get("model_type")
    return None
