"""Signatures: every call from one project module to a function or class of another matches its parameters."""

from __future__ import annotations

import ast
import difflib

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.names import project_module_aliases
from scaffolder.validate.project import Module, Params, Project


def check(project: Project) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for module in project.parsed():
        targets = _callables(project, module)
        for call in module.nodes(ast.Call):
            target = _resolve(call.func, targets, project_module_aliases(project, module))
            if target is not None:
                label, params = target
                found += [
                    Diagnostic(module.path, module.line(call), code, f"{label}: {message}", hint)
                    for code, message, hint in mismatches(call, params)
                ]
    return found


def _callables(project: Project, module: Module) -> dict[str, tuple[str, Params]]:
    """Local names imported from project modules that are functions or classes with a visible __init__."""
    found = {}
    for imp in module.imports:
        target = project.modules.get(imp.module)
        if target is None or imp.name is None:
            continue
        params = target.definitions.get(imp.name)
        if params is not None:
            found[imp.local] = (f"{imp.name}() of {target.path}", params)
    return found


def _resolve(
    func: ast.expr, names: dict[str, tuple[str, Params]], modules: dict[str, Module]
) -> tuple[str, Params] | None:
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules:
        target = modules[func.value.id]
        params = target.definitions.get(func.attr)
        return (f"{func.attr}() of {target.path}", params) if params is not None else None
    return None


def mismatches(call: ast.Call, params: Params) -> list[tuple[str, str, str]]:
    positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
    keywords = [keyword.arg for keyword in call.keywords if keyword.arg is not None]
    unpacks = len(positional) < len(call.args) or len(keywords) < len(call.keywords)  # *args or **kwargs
    found = []
    if not params.var_positional and not unpacks and len(positional) > len(params.positional):
        found.append(
            (
                "A201",
                f"takes {len(params.positional)} positional arguments, the call passes {len(positional)}",
                f"pass at most {len(params.positional)}: {', '.join(params.positional)}",
            )
        )
    for keyword in keywords:
        if keyword not in params.names and not params.var_keyword:
            close = difflib.get_close_matches(keyword, sorted(params.names), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"it takes: {', '.join(sorted(params.names)) or 'none'}"
            found.append(("A202", f"has no parameter `{keyword}`", hint))
    if not unpacks:
        covered = set(params.positional[: len(positional)]) | set(keywords)
        missing = [name for name in params.required if name not in covered]
        if missing:
            found.append(("A203", f"the call leaves out required `{'`, `'.join(missing)}`", "pass them"))
    return found
