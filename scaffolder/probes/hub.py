"""Datasets on the Hugging Face Hub (`--data stanfordnlp/sst2`, or `owner/name:config`): read with `datasets`,
as the generated project reads them, and exported as Parquet files that the task probes read like any file.

`datasets` is imported only here and only for a hub id (it is heavy, and it is the project's dependency, not
scaffold's). Offline (HF_HUB_OFFLINE=1), a dataset downloaded before is read from the datasets cache. The commit
that was read is pinned in the project's config.yaml (`dataset_revision`), so its runs read the same data.
Class ids that a dataset stores as a ClassLabel are exported as their names, which the project's data.py also
reads them as.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffolder.errors import DataError

# The splits that hold evaluation data, in the order they are preferred (GLUE's `test` has no labels).
EVAL_SPLITS = ("validation", "dev", "valid", "val")


@dataclass(frozen=True)
class HubData:
    source: str  # owner/name or owner/name:config, as given
    revision: str | None  # the commit read
    train_split: str
    eval_split: str | None  # None: no evaluation split; the project holds rows out of train
    train_file: Path  # the exports the probes read
    eval_file: Path | None


def export_splits(source: str, eval_wanted: bool, folder: Path, revision: str | None = None) -> HubData:
    """Read the hub dataset's train split (and its evaluation split when `eval_wanted`) at `revision` (None: the
    newest commit, which is then pinned) and write them as Parquet files under `folder`."""
    datasets = _datasets(source)
    name, _, subset = source.partition(":")
    try:
        builder = datasets.load_dataset_builder(name, subset or None, revision=revision)
        # A dataset card without split info (files uploaded by hand) is asked for its splits.
        splits = list(builder.info.splits or {}) or datasets.get_dataset_split_names(name, subset or None)
        if "train" not in splits:
            raise DataError(f"hub dataset {source} has no train split (it has {', '.join(splits) or 'none'})")
        evaluation = next((split for split in EVAL_SPLITS if split in splits), None) if eval_wanted else None
        revision = builder.hash if _is_commit(builder.hash) else revision
        train = _export(
            datasets.load_dataset(name, subset or None, split="train", revision=revision), folder, source, "train"
        )
        held = None
        if evaluation:
            evaluation_rows = datasets.load_dataset(name, subset or None, split=evaluation, revision=revision)
            held = _export(evaluation_rows, folder, source, evaluation)
    # RuntimeError: a dataset that needs a loading script, which datasets no longer runs.
    except (ConnectionError, FileNotFoundError, ValueError, RuntimeError) as exc:
        raise DataError(_unreadable(source, exc)) from None
    return HubData(source, revision, "train", evaluation, train, held)


def _datasets(source: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"reading the hub dataset {source} needs the `datasets` library: pip install 'scaffolder[train]'"
        ) from None
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()  # its offline notes ("Using the latest cached version") are not ours
    return datasets


def _is_commit(value: str | None) -> bool:
    return bool(value) and re.fullmatch(r"[0-9a-f]{40}", value or "") is not None


def _export(rows: Any, folder: Path, source: str, split: str) -> Path:
    path = folder / f"{source.replace('/', '___').replace(':', '--')}.{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    _with_class_names(rows).to_parquet(str(path))
    return path


def _with_class_names(rows: Any) -> Any:
    """ClassLabel columns (and lists of them) with names instead of ids: what the project reads them as."""
    from datasets import ClassLabel, List, Value

    named = {}
    for column, feature in rows.features.items():
        if isinstance(feature, ClassLabel):
            named[column] = (feature, False)
        elif isinstance(getattr(feature, "feature", None), ClassLabel):
            named[column] = (feature.feature, True)
    if not named:
        return rows

    def to_names(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for column, (label, in_lists) in named.items():
            batch[column] = [
                [_name(label, value) for value in row] if in_lists else _name(label, row) for row in batch[column]
            ]
        return batch

    features = rows.features.copy()
    for column, (_, in_lists) in named.items():
        features[column] = List(Value("string")) if in_lists else Value("string")
    return rows.map(to_names, batched=True, features=features)


def _name(label: Any, value: int | None) -> str | None:
    """A class id's name; -1 (GLUE's unlabelled test rows) is no label."""
    return label.int2str(value) if value is not None and value >= 0 else None


def _unreadable(source: str, exc: BaseException) -> str:
    reason = " ".join(str(exc).split())[:300]
    return (
        f"cannot read the hub dataset {source} ({reason}); check the id, download it first online "
        f"(python -c \"import datasets; datasets.load_dataset('{source.partition(':')[0]}')\"), or pass a data file"
    )
