"""Completeness: nothing left unwritten (stub bodies, NotImplementedError, TODOs, placeholders)."""

from __future__ import annotations

import ast
import re

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Project, dotted

PLACEHOLDER = re.compile(r"#.*\b(TODO|FIXME|XXX)\b|your code here|implement (me|this)", re.IGNORECASE)
EXEMPT_DECORATORS = {"abstractmethod", "abc.abstractmethod", "overload", "typing.overload"}


def check(project: Project) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for module in project.parsed():
        found += _stub_bodies(module) + _not_implemented(module) + _placeholders(module)
    return found


def _stub_bodies(module: Module) -> list[Diagnostic]:
    found = []
    for node in module.functions():
        decorators = {dotted(d) for d in node.decorator_list}
        if decorators & EXEMPT_DECORATORS or not _is_stub(node.body):
            continue
        found.append(
            Diagnostic(
                module.path,
                module.line(node),
                "I501",
                f"`{node.name}` has no body",
                f"write `{node.name}` or remove it",
            )
        )
    return found


def _is_stub(body: list[ast.stmt]) -> bool:
    """Only `pass`, `...` and docstrings."""
    for statement in body:
        expression = statement.value if isinstance(statement, ast.Expr) else None
        value = expression.value if isinstance(expression, ast.Constant) else None
        if not (isinstance(statement, ast.Pass) or isinstance(value, str) or value is Ellipsis):
            return False
    return True


def _not_implemented(module: Module) -> list[Diagnostic]:
    found = []
    for node in module.nodes(ast.Raise):
        raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if raised is not None and dotted(raised) == "NotImplementedError":
            found.append(
                Diagnostic(
                    module.path, module.line(node), "I502", "raises NotImplementedError", "implement the code path"
                )
            )
    return found


def _placeholders(module: Module) -> list[Diagnostic]:
    return [
        Diagnostic(module.path, number, "I503", f"placeholder left in: {line.strip()[:60]}", "finish it or delete it")
        for number, line in enumerate(module.source.splitlines(), start=1)
        if PLACEHOLDER.search(line)
    ]
