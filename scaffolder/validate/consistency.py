"""Spec consistency: config.yaml and the code agree with scaffold.toml on what the spec decides.

Model id, labels, columns, max length and PEFT method. Hyperparameters (learning rate, epochs, ...) are the
user's knobs in config.yaml and are not compared.
"""

from __future__ import annotations

import ast

from scaffolder.spec import ProjectSpec
from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Project, dotted, first_argument, string

HUB_ID_CALLS = ("from_pretrained",)
LABEL_CONSTANTS = ("LABELS", "LABEL_NAMES", "CLASSES", "CLASS_NAMES")


def spec_config(spec: ProjectSpec) -> dict[str, object]:
    """The config.yaml values the spec fixes."""
    values: dict[str, object] = {
        "model_name_or_path": spec.model,
        "labels": list(spec.labels),
        "max_length": spec.max_length,
        "max_target_length": spec.max_target_length,
        "source_lang": spec.source_lang,
        "target_lang": spec.target_lang,
    }
    # Each column role is a `<role>_column` key (text_column, label_column, tokens_column, ...).
    return values | {f"{role}_column": name for role, name in spec.columns.items()}


def check(project: Project, spec: ProjectSpec) -> list[Diagnostic]:
    found = _config(project, spec)
    for module in project.parsed():
        found += code_constants(module, spec) + _peft(module, spec)
    return found


def _config(project: Project, spec: ProjectSpec) -> list[Diagnostic]:
    config = project.config
    if config is None:
        return []
    found = []
    for key, expected in spec_config(spec).items():
        if key in config and config[key] != expected:
            found.append(
                Diagnostic(
                    "config.yaml",
                    _yaml_line(project.files["config.yaml"], key),
                    "P401",
                    f"`{key}` is {config[key]!r}, scaffold.toml says {expected!r}",
                    "change scaffold.toml and `scaffold regen`, or `scaffold check --fix`",
                )
            )
    if config.get("trust_remote_code") is True:
        found.append(
            Diagnostic(
                "config.yaml",
                _yaml_line(project.files["config.yaml"], "trust_remote_code"),
                "S608",
                "trust_remote_code is true, which the spec did not ask for",
                "set it to false",
            )
        )
    return found


def _yaml_line(text: str, key: str) -> int:
    return next((n for n, line in enumerate(text.splitlines(), 1) if line.startswith(f"{key}:")), 1)


def code_constants(module: Module, spec: ProjectSpec) -> list[Diagnostic]:
    """Literal num_labels=, max_length= and hub ids in the code, and label lists, that contradict the spec."""
    found = []
    for call in module.nodes(ast.Call):
        for arg in call.keywords:
            expected = spec.num_labels
            if arg.arg == "num_labels" and _int(arg.value) not in (None, expected):
                found.append(_constant(module, arg, f"num_labels={_int(arg.value)}", f"{expected} output(s)"))
        name = dotted(call.func) or ""
        value = string(first_argument(call)) if name.endswith(HUB_ID_CALLS) else None
        if value is not None and ("/" in value or "-" in value):  # a hub id: it must come from cfg.model_name_or_path
            found.append(
                Diagnostic(
                    module.path, module.line(call), "P402",
                    f"hard-coded model {value!r}; the model comes from config.yaml (scaffold.toml: {spec.model!r})",
                    "pass cfg.model_name_or_path (scaffold check --fix does, where cfg is in scope)",
                )
            )  # fmt: skip
    for assign in module.nodes(ast.Assign):
        targets = [dotted(t) for t in assign.targets]
        labels = _strings(assign.value) if any(t in LABEL_CONSTANTS for t in targets) else None
        if labels is not None and labels != list(spec.labels):
            found.append(_constant(module, assign, f"labels {labels}", f"labels {list(spec.labels)}"))
    return found


def _constant(module: Module, node: ast.AST, got: str, expected: str) -> Diagnostic:
    return Diagnostic(
        module.path,
        module.line(node),
        "P402",
        f"hard-coded {got}; scaffold.toml says {expected}",
        "read it from cfg (config.yaml), or `scaffold check --fix` rewrites it",
    )


def _int(node: ast.expr) -> int | None:
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def _strings(node: ast.expr) -> list[str] | None:
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    values = [string(element) for element in node.elts]
    return None if None in values else values  # type: ignore[return-value]


def _peft(module: Module, spec: ProjectSpec) -> list[Diagnostic]:
    if module.path != "model.py":
        return []
    wraps = any(dotted(c.func) in ("get_peft_model", "peft.get_peft_model") for c in module.nodes(ast.Call))
    if spec.peft == "none" and wraps:
        return [
            Diagnostic(
                module.path,
                1,
                "P402",
                "model.py wraps the model with peft; scaffold.toml says peft = none",
                "remove the PEFT wrap, or set peft in scaffold.toml and `scaffold regen`",
            )
        ]
    if spec.peft != "none" and not wraps:
        return [
            Diagnostic(
                module.path,
                1,
                "P402",
                f"model.py never calls get_peft_model; scaffold.toml says peft = {spec.peft}",
                f"wrap the model with get_peft_model and a {spec.peft} config",
            )
        ]
    return []
