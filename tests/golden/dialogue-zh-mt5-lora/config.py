"""Load config.yaml and apply `key=value` overrides from the command line.

Values keep the type of their config.yaml entry (an int stays an int; `null` entries take any value), so a
typo such as `num_epochs=3.5` fails at start-up instead of an hour into training. Relative paths written in
config.yaml (keys ending in `_file` or `_dir`) start at config.yaml's folder; paths given on the command line
start where you run the command, as shells do.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"


class Config(SimpleNamespace):
    """Every config.yaml field as an attribute (`cfg.learning_rate`)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def load_config(overrides: list[str] | None = None, path: Path = CONFIG_PATH) -> Config:
    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in values.items():
        if _is_path_key(key) and isinstance(value, str) and not Path(value).is_absolute():
            values[key] = str((path.parent / value).resolve())
    for item in sys.argv[1:] if overrides is None else overrides:
        key, value = _parse_override(item, values)
        values[key] = value
    return Config(**values)


def _parse_override(item: str, values: dict[str, Any]) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep:
        raise SystemExit(f"error: expected key=value, got {item!r} (e.g. num_epochs=5)")
    if key not in values:
        raise SystemExit(f"error: unknown config key {key!r}; known keys: {', '.join(values)}")
    default = values[key]
    if isinstance(default, str):
        return key, text  # as typed: YAML would read `no` or `off` as booleans
    return key, _coerce(key, yaml.safe_load(text) if text else None, default)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Convert a parsed override to the type of the config.yaml value it replaces."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if isinstance(default, float):
            return float(value)
        if isinstance(default, list):
            return value if isinstance(value, list) else [value]
        return value
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise SystemExit(f"error: {key} must be {kind} like its config.yaml value {default!r}, got {value!r}") from None


def _is_path_key(key: str) -> bool:
    return key.endswith(("_file", "_dir"))
