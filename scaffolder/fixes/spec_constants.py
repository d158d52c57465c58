"""Rewrite what the spec decides to the spec's values: config.yaml entries, literal num_labels and label lists;
and a literal hub id to cfg.model_name_or_path, so the model comes from config.yaml."""

from __future__ import annotations

import re

import libcst as cst

from scaffolder.fixes.nodes import dotted, parse
from scaffolder.render import yaml_value
from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic
from scaffolder.validate.consistency import HUB_ID_CALLS, LABEL_CONSTANTS, spec_config
from scaffolder.validate.contract import CONFIG_OBJECT

DESCRIPTION = "Set config.yaml entries and literal constants in the code that scaffold.toml decides to its values."


def apply(
    files: dict[str, str], diagnostics: list[Diagnostic], spec: ProjectSpec | None
) -> tuple[dict[str, str], list[str]]:
    if spec is None:
        return files, []
    out, notes = dict(files), []
    for path in sorted({d.file for d in diagnostics if d.code in ("P401", "P402")}):
        if path == "config.yaml":
            out[path], changed = fix_config(files[path], spec)
        elif (tree := parse(files[path])) is not None:
            transformer = _Constants(spec)
            out[path] = tree.visit(transformer).code
            changed = transformer.changed
        else:
            changed = []
        notes += [f"{path}: {change}" for change in changed]
    return out, notes


def fix_config(text: str, spec: ProjectSpec) -> tuple[str, list[str]]:
    """Replace the value of each spec-decided key in place, keeping its comment."""
    import yaml

    current = yaml.safe_load(text) or {}
    changed = []
    lines = text.splitlines(keepends=True)
    for key, expected in spec_config(spec).items():
        if key not in current or current[key] == expected:
            continue
        for index, line in enumerate(lines):
            match = re.match(rf"^{re.escape(key)}:(\s*)(.*?)(\s+#.*)?(\n?)$", line)
            if match:
                space, _, comment, end = match.groups()
                lines[index] = f"{key}:{space or ' '}{yaml_value(expected)}{comment or ''}{end}"
                changed.append(f"set {key} to {yaml_value(expected)} as scaffold.toml says")
                break
    return "".join(lines), changed


class _Constants(cst.CSTTransformer):
    def __init__(self, spec: ProjectSpec) -> None:
        self.spec = spec
        self.changed: list[str] = []
        self.cfg_in_scope: list[bool] = []

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        labels = self.spec.num_labels
        is_num_labels = updated.keyword is not None and updated.keyword.value == "num_labels"
        if is_num_labels and isinstance(updated.value, cst.Integer) and int(updated.value.value) != labels:
            self.changed.append(f"num_labels {updated.value.value} -> {labels}")
            return updated.with_changes(value=cst.Integer(str(labels)))
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        names = {p.name.value for p in (*node.params.posonly_params, *node.params.params, *node.params.kwonly_params)}
        self.cfg_in_scope.append(CONFIG_OBJECT in names)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.cfg_in_scope.pop()
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        """A literal hub id becomes cfg.model_name_or_path where the function has cfg; elsewhere it stays."""
        name = dotted(updated.func) or ""
        if not (name.endswith(HUB_ID_CALLS) and updated.args and isinstance(updated.args[0].value, cst.SimpleString)):
            return updated
        value = str(updated.args[0].value.evaluated_value)
        if ("/" in value or "-" in value) and self.cfg_in_scope and self.cfg_in_scope[-1]:
            self.changed.append(f"model {value!r} -> cfg.model_name_or_path")
            first = updated.args[0].with_changes(value=cst.parse_expression(f"{CONFIG_OBJECT}.model_name_or_path"))
            return updated.with_changes(args=[first, *updated.args[1:]])
        return updated

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if not any(dotted(t.target) in LABEL_CONSTANTS for t in updated.targets):
            return updated
        if not isinstance(updated.value, (cst.List, cst.Tuple)):
            return updated
        current = [e.value for e in updated.value.elements]
        if not all(isinstance(v, cst.SimpleString) for v in current):
            return updated
        if [v.evaluated_value for v in current] == list(self.spec.labels):  # type: ignore[attr-defined]
            return updated
        self.changed.append(f"labels -> {list(self.spec.labels)}")
        elements = [cst.Element(_string(label)) for label in self.spec.labels]
        return updated.with_changes(value=updated.value.with_changes(elements=elements))


def _string(value: str) -> cst.SimpleString:
    import json

    return cst.SimpleString(json.dumps(value, ensure_ascii=False))
