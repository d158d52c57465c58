"""Completeness: nothing left unwritten (stub bodies, NotImplementedError, TODOs, placeholders)."""

from __future__ import annotations

import re

import libcst as cst

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
    for node in module.nodes(cst.FunctionDef):  # type: ignore[arg-type]
        decorators = {dotted(d.decorator) for d in node.decorators}
        if decorators & EXEMPT_DECORATORS or not _is_stub(node.body):
            continue
        found.append(
            Diagnostic(
                module.path,
                module.line(node),
                "I501",
                f"`{node.name.value}` has no body",
                f"write `{node.name.value}` or remove it",
            )
        )
    return found


def _is_stub(body: cst.BaseSuite) -> bool:
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for statement in statements:
        smalls = statement.body if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) else None
        if smalls is None:
            return False
        for small in smalls:
            value = small.value if isinstance(small, cst.Expr) else None
            is_docstring = isinstance(value, (cst.SimpleString, cst.ConcatenatedString))
            is_ellipsis = isinstance(value, cst.Ellipsis)
            if not (isinstance(small, cst.Pass) or is_docstring or is_ellipsis):
                return False
    return True


def _not_implemented(module: Module) -> list[Diagnostic]:
    found = []
    for node in module.nodes(cst.Raise):  # type: ignore[arg-type]
        raised = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
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
