"""Repoint `from m import old` to the one close match `new` that m defines (a renamed function), and rename
the module's uses of it."""

from __future__ import annotations

import difflib

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic, Project

DESCRIPTION = "Point an import of a missing name at the one close match its module defines, and rename its uses."


def apply(
    files: dict[str, str], diagnostics: list[Diagnostic], spec: ProjectSpec | None
) -> tuple[dict[str, str], list[str]]:
    wanted = {d.file for d in diagnostics if d.code == "N101"}
    project = Project.from_files(files)
    out, notes = dict(files), []
    for module in project.parsed():
        if module.path not in wanted:
            continue
        renames = {}
        for imp in module.imports:
            target = project.modules.get(imp.module)
            if target is None or imp.name is None or imp.name in target.definitions:
                continue
            close = difflib.get_close_matches(imp.name, sorted(target.own_definitions), n=2, cutoff=0.75)
            if len(close) == 1:
                renames[imp.name] = close[0]
                notes.append(f"{module.path}: `{imp.name}` is not in {target.path}; repointed to `{close[0]}`")
        if renames:
            out[module.path] = rename_imported(module.source, renames)
    return out, notes


def rename_imported(source: str, renames: dict[str, str]) -> str:
    """Rename imported names and every reference to their bindings (aliased imports keep their alias)."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    scopes = wrapper.resolve(ScopeProvider)
    targets: set[cst.CSTNode] = set()
    for scope in set(scopes.values()):
        if scope is None:
            continue
        for old in renames:
            for assignment in scope.assignments[old]:
                if isinstance(getattr(assignment, "node", None), cst.ImportFrom):
                    targets |= {access.node for access in assignment.references}
    return wrapper.module.visit(_Renamer(renames, targets)).code


class _Renamer(cst.CSTTransformer):
    def __init__(self, renames: dict[str, str], references: set[cst.CSTNode]) -> None:
        self.renames, self.references = renames, references

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        if isinstance(updated.names, cst.ImportStar):
            return updated
        names = [
            alias.with_changes(name=cst.Name(self.renames[alias.name.value]))
            if isinstance(alias.name, cst.Name) and alias.name.value in self.renames
            else alias
            for alias in updated.names
        ]
        return updated.with_changes(names=names)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if original in self.references and original.value in self.renames:
            return updated.with_changes(value=self.renames[original.value])
        return updated
