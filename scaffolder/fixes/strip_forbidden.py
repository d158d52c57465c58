"""Strip a forbidden call when that is safe: a statement of its own whose result nothing uses, in a block that
keeps other statements. Then drop imports of forbidden modules that nothing uses any more. Anything else is
refused: the diagnostic stays and the project is not written or run."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import RemoveImportsVisitor

from scaffolder.fixes.nodes import dotted, parse
from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic
from scaffolder.validate.project import parse_file
from scaffolder.validate.safety import FORBIDDEN_MODULES, forbidden_code, qualified_names, qualify

DESCRIPTION = "Remove forbidden calls whose result is unused, and the forbidden imports left unused."
STRIPPABLE = ("S601", "S602", "S603", "S604", "S605")


def apply(
    files: dict[str, str], diagnostics: list[Diagnostic], spec: ProjectSpec | None
) -> tuple[dict[str, str], list[str]]:
    out, notes = dict(files), []
    for path in sorted({d.file for d in diagnostics if d.code in STRIPPABLE}):
        out[path], removed = strip(files[path])
        notes += [f"{path}: removed `{code}` (nothing used it)" for code in removed]
    return out, notes


def strip(source: str) -> tuple[str, list[str]]:
    module, original = parse_file("x.py", source), parse(source)
    if module.tree is None or original is None:
        return source, []
    stripper = _Stripper(qualified_names(module))
    tree = original.visit(stripper)
    context = CodemodContext()
    for imp in parse_file("x.py", tree.code).imports:
        full = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
        if any(full == m or full.startswith(m + ".") for modules in FORBIDDEN_MODULES.values() for m in modules):
            RemoveImportsVisitor.remove_unused_import(context, imp.module, imp.name, imp.asname)
    stripped = RemoveImportsVisitor(context).transform_module(tree)
    dropped = _imported(tree) - _imported(stripped)
    return stripped.code, stripper.removed + [f"import {name}" for name in sorted(dropped)]


def _imported(tree: cst.Module) -> set[str]:
    return {
        imp.module if imp.name is None else f"{imp.module}.{imp.name}" for imp in parse_file("x.py", tree.code).imports
    }


class _Stripper(cst.CSTTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.removed: list[str] = []

    def _forbidden_statement(self, statement: cst.BaseStatement) -> str | None:
        """The code of a statement that is only a forbidden call, else None."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if not (isinstance(small, cst.Expr) and isinstance(small.value, cst.Call)):
            return None
        qualified = qualify(dotted(small.value.func), self.names)
        if qualified is None or forbidden_code(qualified) not in STRIPPABLE:
            return None
        return cst.Module([]).code_for_node(small.value)

    def _filter(self, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement] | None:
        kept: list[cst.BaseStatement] = []
        removed: list[str] = []
        for statement in body:
            code = self._forbidden_statement(statement)
            if code:
                removed.append(code)
            else:
                kept.append(statement)
        if not removed or not kept:  # nothing to do, or the block would be empty: refuse
            return None
        self.removed += removed
        return kept

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        kept = self._filter(updated.body)
        return updated if kept is None else updated.with_changes(body=kept)

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        kept = self._filter(updated.body)
        return updated if kept is None else updated.with_changes(body=kept)
