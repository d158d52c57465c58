"""The project spec: what the user asked for, validated in one place, stored as `scaffold.toml`.

A spec arrives from CLI flags with some fields left open (columns, labels, max length: the data decides them);
`plan.build_plan` fills them in, and the resolved spec is what `scaffold.toml` records, so that a later
regeneration reproduces the same project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomlkit

from scaffolder.errors import SpecError
from scaffolder.tasks import PEFT_METHODS, TASKS, peft_refusal, training_control_refusal, weighs_classes

SPEC_FILE = "scaffold.toml"
_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")
# transformers' names for what a sequence classifier learns (`config.problem_type`).
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class ProjectSpec:
    task: str
    train_data: Path
    model: str | None = None  # None: the task's default
    peft: str = "none"
    eval_data: Path | None = None
    eval_fraction: float = 0.1  # held out of train_data when there is no eval_data
    data_revision: str | None = None  # the commit of a hub dataset (train_data `owner/name`) the project reads
    # Data column for each role the task reads (`text`, `label`, `tokens`, `question`, ...); the data probe
    # fills in the roles left open.
    columns: dict[str, str] = field(default_factory=dict)
    data_layout: str | None = None  # how the records are shaped, when a task reads several (e.g. chat, conll)
    header: tuple[str, ...] = ()  # the column names, in file order, of csv/tsv data files without a header row
    problem_type: str | None = None  # text-classification: single_label / multi_label / regression
    labels: tuple[str, ...] = ()  # class or tag names in id order
    source_lang: str | None = None  # translation
    target_lang: str | None = None
    max_length: int | None = None
    max_target_length: int | None = None  # tokens of a generated target (summaries, translations)
    num_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int = 42
    # Training controls (tasks.TRAINING_CONTROLS) that config.yaml starts with instead of their defaults.
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def num_labels(self) -> int:
        """Outputs of a classifier head: one per class, or one for a regression."""
        return 1 if self.problem_type == "regression" else len(self.labels)


def spec_hash(spec: ProjectSpec, project_dir: Path) -> str:
    """Content hash of the resolved spec as scaffold.toml writes it (so moving a project keeps the hash)."""
    payload = json.dumps(_plain(spec, project_dir), sort_keys=True)
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def validate(spec: ProjectSpec) -> None:
    """Raise `SpecError` naming the field and the fix for the first invalid value."""
    if spec.task not in TASKS:
        raise SpecError(f"unknown task `{spec.task}`; choose one of: {', '.join(TASKS)} (see `scaffold tasks`)")
    task = TASKS[spec.task]
    if spec.peft not in PEFT_METHODS:
        raise SpecError(f"unknown PEFT method `{spec.peft}`; choose one of: {', '.join(PEFT_METHODS)}")
    refusal = peft_refusal(task, spec.peft)
    if refusal:
        raise SpecError(refusal)
    if spec.model is not None:
        _validate_model(spec.model)
    if not 0.0 < spec.eval_fraction < 0.5:
        raise SpecError(f"`eval_fraction` must be between 0 and 0.5, got {spec.eval_fraction}")
    _validate_columns(spec.task, spec.columns)
    _validate_layout(spec.task, spec.data_layout)
    _validate_header(spec.task, spec.header)
    if spec.problem_type is not None and spec.problem_type not in PROBLEM_TYPES:
        raise SpecError(f"unknown problem_type `{spec.problem_type}`; choose one of: {', '.join(PROBLEM_TYPES)}")
    for name in ("max_length", "max_target_length", "num_epochs", "batch_size"):
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SpecError(f"`{name}` must be a positive integer, got {value!r}")
    if spec.max_length is not None and spec.max_length > 8192:
        raise SpecError(f"`max_length` {spec.max_length} is larger than any encoder supports; use at most 8192")
    if spec.learning_rate is not None and not 0.0 < spec.learning_rate < 1.0:
        raise SpecError(f"`learning_rate` must be between 0 and 1, got {spec.learning_rate}")
    for name, value in spec.training.items():
        refusal = training_control_refusal(name, value, spec.peft, weighs_classes(spec.task, spec.problem_type))
        if refusal:
            raise SpecError(refusal + " (scaffold.toml `training`, or --set training.NAME=VALUE)")


def _validate_columns(task: str, columns: dict[str, str]) -> None:
    roles = TASKS[task].roles
    for role, name in columns.items():
        if not _ROLE.match(role):
            raise SpecError(f"column role `{role}` is not a lowercase name like `text` or `label`; fix `columns`")
        if role not in roles:
            raise SpecError(
                f"`columns`: {task} reads no `{role}` column; its roles are: {', '.join(roles)} (--column ROLE=NAME)"
            )
        if not isinstance(name, str) or not name:
            raise SpecError(f"column for `{role}` must be a column name, got {name!r}; fix `columns`")


def _validate_layout(task: str, layout: str | None) -> None:
    layouts = TASKS[task].layouts
    if layout is None or layout in layouts:
        return
    if not layouts:
        raise SpecError(f"`data_layout` does not apply to {task} (its data has one layout); remove `{layout}`")
    raise SpecError(f"unknown `data_layout` `{layout}` for {task}; use {' or '.join(layouts)}, or remove it")


def _validate_header(task: str, header: tuple[str, ...]) -> None:
    if header and not TASKS[task].headerless:
        raise SpecError(f"`header` (--header) does not apply to {task}; add a header line that names the columns")
    if any(not name.strip() for name in header):
        raise SpecError(f"`header` {','.join(header)!r} has an empty column name; name every column (--header a,b,c)")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise SpecError(f"`header` names `{repeated[0]}` twice; give each column its own name")


def _validate_model(model: str) -> None:
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise SpecError(f"model directory {model} has no config.json; point --model at a saved model directory")
        return
    looks_like_path = model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or os.sep + os.sep in model
    if looks_like_path:
        raise SpecError(f"model path {model} does not exist; pass an existing directory or a hub id like org/name")
    if not _HUB_ID.match(model):
        raise SpecError(f"`{model}` is neither an existing directory nor a hub id like org/name; fix --model")


def is_local_model(model: str) -> bool:
    return Path(model).expanduser().exists()


# --- scaffold.toml -------------------------------------------------------------------------------------------

_HEADER = (
    "The spec this project was generated from: scaffolder's source of truth, not read by the training code.\n"
    "Change it (or use `scaffold regen --set key=value`) and run `scaffold regen`; your own edits are kept.\n"
    "Paths are relative to this file."
)


def to_toml(spec: ProjectSpec, project_dir: Path) -> str:
    doc = tomlkit.document()
    for line in _HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    doc.add(tomlkit.nl())
    for key, value in _plain(spec, project_dir).items():
        if isinstance(value, dict):
            table = tomlkit.inline_table()
            table.update(value)
            doc.add(key, table)
        elif value is not None and value != []:
            doc.add(key, value)
    return tomlkit.dumps(doc)


def from_toml(path: Path) -> ProjectSpec:
    """Read a project's scaffold.toml; every problem names the file and the field."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # an editor's byte-order mark is not part of the TOML
    except FileNotFoundError:
        raise SpecError(f"{path} not found; run this inside a project made by `scaffold new`") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path} ({exc.strerror}); it must be the project's scaffold.toml file") from None
    return spec_from_text(text, path.parent, str(path))


def spec_from_text(text: str, base: Path, name: str = SPEC_FILE) -> ProjectSpec:
    """A spec from scaffold.toml text whose relative data paths start at `base`."""
    try:
        raw = tomlkit.parse(text.removeprefix("\ufeff")).unwrap()
    except tomlkit.exceptions.ParseError as exc:
        raise SpecError(f"{name} is not valid TOML ({exc}); fix the line it names") from None
    known = {f.name for f in fields(ProjectSpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SpecError(f"{name}: unknown key `{unknown[0]}`; known keys: {', '.join(sorted(known))}")
    if "task" not in raw or "train_data" not in raw:
        raise SpecError(f"{name} must set `task` and `train_data`")
    for key, value in raw.items():
        _check_type(key, value, name)
    return ProjectSpec(**_arguments(raw, base))


# A dataset on the Hugging Face Hub: owner/name, optionally :config, whose last part is not named like a file
# (`data/train.csv` is a missing file, not a dataset).
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(:[\w.-]+)?")
FILE_SUFFIXES = (
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".arrow", ".feather", ".gz", ".conll", ".bio",
    ".iob",
)  # fmt: skip


def is_hub_dataset(path: Path) -> bool:
    """Whether a data path names a hub dataset rather than a file: `owner/name[:config]`, with nothing on disk
    by that name and no folder `owner` here (`wmt/train` beside wmt/train.en is a two-file prefix)."""
    text = path.as_posix()
    name = text.partition(":")[0]
    return (
        not path.is_absolute()
        and not path.exists()
        and HUB_ID.fullmatch(text) is not None
        and not name.lower().endswith(FILE_SUFFIXES)
        and not Path(name).parent.exists()
    )


def data_path(path: Path, base: Path | None = None) -> Path:
    """A data path as scaffold records it: a hub dataset id as given, a file resolved (from `base`)."""
    if is_hub_dataset(path) and not (base and (base / path).parent.exists()):
        return path
    return ((base / path) if base else path.expanduser()).resolve()


def portable_path(path: Path, project_dir: Path) -> str:
    """Relative to the project when the data sits nearby (so both can move together), else absolute; a hub
    dataset id as it is."""
    if is_hub_dataset(path):
        return path.as_posix()
    relative = Path(os.path.relpath(path, project_dir))
    return relative.as_posix() if relative.parts[:2].count("..") <= 1 else path.as_posix()


def _plain(spec: ProjectSpec, project_dir: Path) -> dict[str, object]:
    """The spec as TOML-ready values; data paths relative to the project so the pair can move together."""
    out: dict[str, object] = {}
    for key, value in asdict(spec).items():
        if isinstance(value, Path):
            value = portable_path(value, project_dir)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        out[key] = value
    if not out["training"]:
        del out["training"]  # so that the scaffold.toml (and spec hash) of a project without controls stays as it was
    return out


def apply_sets(spec: ProjectSpec, sets: list[str], project_dir: Path) -> ProjectSpec:
    """`key=value` changes (keys as in scaffold.toml), validated like `scaffold new` validates its flags."""
    values: dict[str, Any] = _plain(spec, project_dir)
    known = {f.name for f in fields(ProjectSpec)}
    for item in sets:
        key, sep, text = item.partition("=")
        table, dot, role = key.partition(".")
        value: object
        if sep and dot and table == "columns":  # columns.text=review changes one role
            name = _toml_value(text)
            # A column name is text: a bare `columns.label=2024` names the column "2024".
            key, value = "columns", {**values["columns"], role: name if isinstance(name, str) else text}
        elif sep and dot and table == "training":  # training.eval_steps=100 sets one control
            controls = dict(values.get("training", {}))
            if text in ("null", "default"):  # TOML has no null: the control goes back to its default
                controls.pop(role, None)
            else:
                controls[role] = _toml_value(text)
            key, value = "training", controls
        elif not sep or key not in known:
            raise SpecError(f"--set {item!r}: expected key=value with a scaffold.toml key ({', '.join(sorted(known))})")
        else:
            value = _toml_value(text)
        _check_type(key, value, f"--set {item!r}")
        values[key] = value
    return ProjectSpec(**_arguments(values, project_dir))


def _toml_value(text: str) -> object:
    """A TOML value (`3`, `1e-4`, `true`, `["a", "b"]`, `"x"`), or the bare text as a string (`peft=lora`)."""
    try:
        document = tomlkit.parse(f"v = {text}").unwrap()
    except (tomlkit.exceptions.TOMLKitError, ValueError):  # not a TOML value: a plain string
        return text
    return document["v"] if list(document) == ["v"] else text  # `x\ny = 1` sets one key, not two


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_path(value: object) -> bool:
    return isinstance(value, str) and "\0" not in value  # the OS refuses a NUL in a path


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_names(value: object) -> bool:
    return isinstance(value, list) and all(_is_string(name) or _is_number(name) for name in value)


def _is_strings(value: object) -> bool:
    return isinstance(value, list) and all(_is_string(name) for name in value)


def _is_table(value: object) -> bool:
    return isinstance(value, dict) and all(_is_string(key) for key in value)


def _is_columns(value: object) -> bool:
    return isinstance(value, dict) and all(_is_string(role) and _is_string(name) for role, name in value.items())


_PATH = 'a path (a string like "data/train.csv")'
_INTEGER = "an integer"
# What each scaffold.toml key holds (every ProjectSpec field): scaffold.toml and `--set` share this one check,
# so a value of the wrong type is a SpecError naming its key, never a crash further on.
KINDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "task": ('a task name (a string like "text-classification")', _is_string),
    "train_data": (_PATH, _is_path),
    "model": ('a hub id or model directory (a string like "org/name")', _is_string),
    "peft": ('a PEFT method (a string like "lora")', _is_string),
    "eval_data": (_PATH, _is_path),
    "eval_fraction": ("a number like 0.1", _is_number),
    "data_revision": ('a commit of the hub dataset (a string like "3f0d...")', _is_string),
    "columns": ('a table of column names like { text = "review", label = "stars" }', _is_columns),
    "data_layout": ('a layout name (a string like "chat")', _is_string),
    "header": ('a list of column names like ["en", "zh"]', _is_strings),
    "problem_type": ('a problem type (a string like "regression")', _is_string),
    "labels": ('a list of names like ["neg", "pos"]', _is_names),
    "source_lang": ('a language code (a string like "en")', _is_string),
    "target_lang": ('a language code (a string like "de")', _is_string),
    "max_length": (_INTEGER, _is_integer),
    "max_target_length": (_INTEGER, _is_integer),
    "num_epochs": (_INTEGER, _is_integer),
    "batch_size": (_INTEGER, _is_integer),
    "learning_rate": ("a number like 2e-5", _is_number),
    "seed": (_INTEGER, _is_integer),
    "training": ('a table of training controls like { eval_steps = 200, lr_scheduler_type = "cosine" }', _is_table),
}


def _check_type(key: str, value: object, where: str) -> None:
    """Raise `SpecError` when `value` (None: left open) is not what the scaffold.toml key `key` holds."""
    expected, accepts = KINDS[key]
    if value is not None and not accepts(value):
        raise SpecError(f"{where}: `{key}` must be {expected}, got {value!r}")


def _arguments(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Type-checked scaffold.toml values as ProjectSpec arguments: data paths from `base`, labels as text."""
    arguments = dict(values)
    for key in ("train_data", "eval_data"):
        if arguments.get(key) is not None:
            arguments[key] = data_path(Path(arguments[key]), base)
    for key in ("eval_fraction", "learning_rate"):
        if arguments.get(key) is not None:
            arguments[key] = float(arguments[key])
    if "labels" in arguments:
        arguments["labels"] = tuple(str(label) for label in arguments["labels"])
    if "header" in arguments:
        arguments["header"] = tuple(arguments["header"])
    return arguments


def spec_changes(old: ProjectSpec, new: ProjectSpec, project_dir: Path) -> list[str]:
    """`peft: none -> lora` for every field that differs, in scaffold.toml's terms."""
    before, after = _plain(old, project_dir), _plain(new, project_dir)
    keys = [*after, *(key for key in before if key not in after)]  # `training` is left out when empty
    changed = [key for key in keys if before.get(key) != after.get(key)]
    return [f"{key}: {before.get(key, {})} -> {after.get(key, {})}" for key in changed]
