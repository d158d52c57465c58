"""Add `from <module> import <name>` for a name a module uses when exactly one other project module defines it."""

from __future__ import annotations

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic, Project
from scaffolder.validate.names import defining_modules, undefined_names

DESCRIPTION = "Import a name the module uses from the one project module that defines it."


def apply(
    files: dict[str, str], diagnostics: list[Diagnostic], spec: ProjectSpec | None
) -> tuple[dict[str, str], list[str]]:
    wanted = {d.file for d in diagnostics if d.code == "N103"}
    project = Project.from_files(files)
    out, notes = dict(files), []
    for module in project.parsed():
        if module.path not in wanted:
            continue
        additions = []
        for name in sorted(undefined_names(module)):
            owners = defining_modules(project, name, module)
            if len(owners) == 1:
                additions.append((owners[0].name, name))
        if additions:
            out[module.path] = add_imports(module.source, additions)
            notes += [f"{module.path}: added `from {source} import {name}`" for source, name in additions]
    return out, notes


def add_imports(source: str, imports: list[tuple[str, str]]) -> str:
    context = CodemodContext()
    for module, name in imports:
        AddImportsVisitor.add_needed_import(context, module, name)
    return AddImportsVisitor(context).transform_module(cst.parse_module(source)).code
