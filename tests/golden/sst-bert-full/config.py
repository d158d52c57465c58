"""Load config.yaml, apply `key=value` overrides from the command line, and check every setting.

Values keep the type of their config.yaml entry (an int stays an int; `null` entries take any value), and the
numbers must lie in the ranges of RULES below, so a typo such as `num_epochs=3.5` or `batch_size=0` fails at
start-up, in one line naming the key, instead of an hour into training. Relative paths written in config.yaml
(keys ending in `_file` or `_dir`) start at config.yaml's folder; paths given on the command line start where
you run the command, as shells do.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"
# What data files are named: `data/train.csv` is a missing file, not the hub dataset `train.csv` of `data`.
DATA_SUFFIXES = (
    ".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".arrow", ".feather", ".gz", ".conll", ".bio",
    ".iob",
)  # fmt: skip


class SettingError(SystemExit):
    """A setting to fix before running again (or what it points at: a file, the output folder, the space left
    on its disk), said in one line. `python train.py` prints it and exits 2; other scripts stop with it as with
    any SystemExit message (printed, exit 1)."""

    exit_code = 2


@dataclass(frozen=True)
class Rule:
    """The values a numeric setting takes."""

    kind: type  # int or float; YAML reads `1e-5` as text, so text that is a number is converted
    valid: Callable[[Any], bool]
    says: str  # the valid values in words, for the error message
    nullable: bool = False  # null (the setting's "all" or "off") is valid too


def or_null(rule: Rule) -> Rule:
    return replace(rule, says=f"{rule.says} or null", nullable=True)


POSITIVE_INT = Rule(int, lambda v: v >= 1, "a positive integer (>= 1)")
COUNT = Rule(int, lambda v: v >= 0, "an integer >= 0")
POSITIVE = Rule(float, lambda v: v > 0, "a number > 0")
FRACTION = Rule(float, lambda v: 0 < v < 1, "a number > 0 and < 1")
SHARE = Rule(float, lambda v: 0 <= v <= 1, "a number >= 0 and <= 1")

# The valid values of every number in config.yaml.
RULES: dict[str, Rule] = {
    "eval_fraction": FRACTION,
    "max_length": POSITIVE_INT,
    "max_train_samples": or_null(POSITIVE_INT),
    "max_eval_samples": or_null(POSITIVE_INT),
    "num_epochs": POSITIVE_INT,
    "max_steps": or_null(POSITIVE_INT),
    "batch_size": POSITIVE_INT,
    "effective_batch_size": or_null(POSITIVE_INT),
    "length_group_batches": or_null(POSITIVE_INT),
    "gradient_accumulation_steps": POSITIVE_INT,
    # An AdamW step above 1 moves a weight further than its own size: a typo (1e5 for 1e-5), not a choice.
    "learning_rate": Rule(float, lambda v: 0 < v <= 1, "a number > 0 and <= 1"),
    "weight_decay": SHARE,
    "warmup_ratio": SHARE,
    "max_grad_norm": POSITIVE,
    "seed": Rule(int, lambda v: 0 <= v < 2**32, "an integer >= 0 and < 2**32"),  # numpy's seed range
    "eval_batch_size": POSITIVE_INT,
    "logging_steps": POSITIVE_INT,
    "save_steps": or_null(POSITIVE_INT),
    "eval_steps": or_null(POSITIVE_INT),
    "early_stopping_patience": or_null(POSITIVE_INT),
    "early_stopping_threshold": Rule(float, lambda v: v >= 0, "a number >= 0"),
    "label_smoothing": Rule(float, lambda v: 0 <= v < 1, "a number >= 0 and < 1"),
    "save_total_limit": replace(COUNT, says="an integer >= 0 (0 = no checkpoints)"),
    "num_workers": COUNT,
}
# The experiment trackers accelerate reports to (report_to: one, a list, or none).
TRACKERS = ["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio"]
# Settings that take one of a few words.
CHOICES = {
    "mixed_precision": ("auto", "no", "fp16", "bf16"),
    # The torch.compile backends that need nothing beyond torch (accelerate's DynamoBackend names them all).
    "torch_compile_backend": ("inductor", "aot_eager", "eager", "cudagraphs"),
    # The training controls' words (lr_scheduler_type: the transformers schedules that step once per update).
    "lr_scheduler_type": (
        "linear",
        "cosine",
        "cosine_with_restarts",
        "polynomial",
        "constant",
        "constant_with_warmup",
        "inverse_sqrt",
        "warmup_stable_decay",
        "cosine_with_min_lr",
    ),
    "optim": (
        "adamw_torch_fused",
        "adamw_torch",
        "adafactor",
        "adamw_8bit",
        "paged_adamw_8bit",
    ),
    "attn_implementation": (
        "sdpa",
        "eager",
        "flash_attention_2",
    ),
}
# Of those, the settings where null is valid too: the library's own default.
NULLABLE_CHOICES = ("attn_implementation",)


class Config(SimpleNamespace):
    """Every config.yaml field as an attribute (`cfg.learning_rate`)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def load_config(overrides: list[str] | None = None, path: Path = CONFIG_PATH) -> Config:
    values = _read_yaml(path)
    for key, value in values.items():
        if _is_path_key(key) and isinstance(value, str) and not Path(value).is_absolute():
            local = (path.parent / value).resolve()
            values[key] = value if is_hub_id(value) and not local.parent.exists() else str(local)
    typed: dict[str, str] = {}  # override key -> the text as typed, for messages
    for item in sys.argv[1:] if overrides is None else overrides:
        key, value = _parse_override(item, values)
        values[key], typed[key] = value, item.partition("=")[2]
    for key, value in values.items():
        values[key] = _checked(key, value, typed)
    _check_together(values)
    return Config(**values)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SettingError(f"error: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SettingError(f"error: {path} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if not isinstance(values, dict):
        raise SettingError(f"error: {path} must hold `key: value` lines")
    return values


def _parse_override(item: str, values: dict[str, Any]) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep:
        raise SettingError(f"error: expected key=value, got {item!r} (e.g. num_epochs=5)")
    if key not in values:
        close = difflib.get_close_matches(key, list(values), n=1)
        known = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(values)}"
        raise SettingError(f"error: unknown config key {key!r}; {known}")
    default = values[key]
    if isinstance(default, str):
        return key, text  # as typed: YAML would read `no` or `off` as booleans
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        raise SettingError(f"error: cannot read `{key}={text}`: quote the value or fix its brackets") from None
    # A number is converted and range-checked by its rule; anything else keeps the type of its config.yaml value.
    return key, value if key in RULES else _coerce(key, value, default, text)


def _coerce(key: str, value: Any, default: Any, text: str) -> Any:
    """Convert a parsed override to the type of the config.yaml value it replaces."""
    if default is None or value is None:
        return value
    if isinstance(default, list):
        return value if isinstance(value, list) else [value]
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if isinstance(default, (int, float)):  # a number of your own, without a rule: keeps its type
            return _number(value, type(default))
    except (TypeError, ValueError, OverflowError):
        says = "true or false" if isinstance(default, bool) else f"a {type(default).__name__} like {default!r}"
        raise _bad(key, says, {key: text}) from None
    return value


def _checked(key: str, value: Any, typed: dict[str, str]) -> Any:
    """`value` converted to its rule's kind; SettingError when it is out of the rule's range."""
    if key in CHOICES:
        if value is False and "no" in CHOICES[key]:
            value = "no"  # YAML reads a bare `no` in config.yaml as false
        nullable = key in NULLABLE_CHOICES
        if value in ("null", "") and nullable and key in typed:
            value = None  # an override is read as text: `attn_implementation=null` means null
        if value not in CHOICES[key] and not (value is None and nullable):
            raise _bad(key, f"one of {', '.join(CHOICES[key])}{' or null' if nullable else ''}", typed, value)
        return value
    rule = RULES.get(key)
    if rule is None or (value is None and rule.nullable):
        return value
    try:
        number = _number(value, rule.kind)
    except (TypeError, ValueError, OverflowError):
        raise _bad(key, rule.says, typed, value) from None
    if not rule.valid(number):  # NaN fails every comparison, so it is refused too
        raise _bad(key, rule.says, typed, value)
    return number


def _number(value: Any, kind: type) -> int | float:
    """`value` as an int or a float; ValueError when it is not that (true is not 1, and 2.5 is not an int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    if kind is int and isinstance(value, int):
        return value
    number = float(value)
    if kind is float:
        return number
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _bad(key: str, says: str, typed: dict[str, str], value: Any = None) -> SettingError:
    """The one-line refusal: the key, its valid values, the value as written and where to fix it."""
    if key in typed:
        got, fix = typed[key] or "nothing", f"the {key}= override"
    else:
        got, fix = "null" if value is None else repr(value), f"`{key}` in config.yaml"
    return SettingError(f"error: `{key}` must be {says}, got {got}; fix {fix}")


def _check_together(values: dict[str, Any]) -> None:
    """Settings that are valid alone but not with each other."""
    values["report_to"] = _trackers(values["report_to"])
    if not isinstance(values.get("lr_scheduler_kwargs", {}), dict):
        raise SettingError(
            f"error: `lr_scheduler_kwargs` must be a mapping like {{num_cycles: 2}}, got "
            f"{values['lr_scheduler_kwargs']!r}; fix config.yaml or the lr_scheduler_kwargs= override"
        )
    if values.get("effective_batch_size") is not None and values.get("gradient_accumulation_steps", 1) != 1:
        raise SettingError(
            "error: set effective_batch_size or gradient_accumulation_steps, not both "
            "(effective_batch_size derives the accumulation)"
        )
    weights = values["class_weights"]
    if weights not in (None, "balanced") and not (
        isinstance(weights, list)
        and len(weights) == len(values["labels"])
        and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
    ):
        raise SettingError(
            f"error: `class_weights` must be balanced, null, or a list of {len(values['labels'])} weights >= 0 (one "
            f"per label, in labels order), got {weights!r}; fix config.yaml or the class_weights= override"
        )


def _trackers(value: Any) -> list[str]:
    """report_to as a list of tracker names: one name, a list, or names joined by commas (report_to=tensorboard,wandb
    on the command line); none (or an empty list) is no tracker."""
    if isinstance(value, str) and value.strip().startswith("["):
        value = yaml.safe_load(value)  # a list typed on the command line: report_to=[tensorboard, wandb]
    names = value if isinstance(value, list) else str(value).split(",") if value not in (None, False) else []
    names = [str(name).strip() for name in names if str(name).strip() not in ("", "none")]
    for name in names:
        if name not in TRACKERS:
            raise SettingError(
                f"error: `report_to` must name trackers among {', '.join(TRACKERS)} (or be none), got {name!r}; "
                "fix config.yaml or the report_to= override"
            )
    return names


def _is_path_key(key: str) -> bool:
    return key.endswith(("_file", "_dir"))


def is_hub_id(value: str) -> bool:
    """`owner/name`, or `owner/name:config`: a dataset on the Hugging Face Hub, not a path (where a folder
    `owner` is next to config.yaml, the path is read)."""
    parts = value.partition(":")[0].split("/")
    named_like_a_file = Path(parts[-1]).suffix.lower() in DATA_SUFFIXES
    return len(parts) == 2 and all(part and not part.startswith(".") for part in parts) and not named_like_a_file
