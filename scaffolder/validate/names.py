"""Cross-file names: imports between project modules resolve, attributes of project modules exist, and
every name a module uses is defined somewhere in it."""

from __future__ import annotations

import difflib

import libcst as cst
from libcst.metadata import ScopeProvider

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Project

MODULE_DUNDERS = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__path__"}


def check(project: Project) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for module in project.parsed():
        found += _imports(project, module) + _attributes(project, module) + _undefined(project, module)
    return found


def _imports(project: Project, module: Module) -> list[Diagnostic]:
    found = []
    for imp in module.imports:
        target = project.modules.get(imp.module)
        if target is None or target.tree is None or imp.name is None:
            continue
        if imp.name in target.definitions or f"{imp.module}.{imp.name}" in project.modules:
            continue
        close = difflib.get_close_matches(imp.name, list(target.definitions), n=2, cutoff=0.75)
        hint = (
            f"{target.path} defines `{close[0]}`: import that (scaffold check --fix repoints it)"
            if len(close) == 1
            else f"define `{imp.name}` in {target.path}, or import it from the module that defines it"
        )
        message = f"`{imp.name}` is imported from {target.path}, which does not define it"
        found.append(Diagnostic(module.path, module.line(imp.node), "N101", message, hint))
    return found


def project_module_aliases(project: Project, module: Module) -> dict[str, Module]:
    """Local names bound to project modules: `import train`, `from tests import smoke`."""
    aliases = {}
    for imp in module.imports:
        full = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
        if full in project.modules and project.modules[full].tree is not None:
            aliases[imp.local] = project.modules[full]
    return aliases


def _attributes(project: Project, module: Module) -> list[Diagnostic]:
    aliases = project_module_aliases(project, module)
    found = []
    for node in module.nodes(cst.Attribute):  # type: ignore[arg-type]
        if isinstance(node.value, cst.Name) and node.value.value in aliases:
            target = aliases[node.value.value]
            name = node.attr.value
            if name not in target.definitions and f"{target.name}.{name}" not in project.modules:
                message = f"`{node.value.value}.{name}`: {target.path} does not define `{name}`"
                hint = f"define `{name}` in {target.path} or use a name it defines"
                found.append(Diagnostic(module.path, module.line(node), "N102", message, hint))
    return found


def undefined_names(module: Module) -> dict[str, cst.Name]:
    """Names the module reads but never binds (nor are builtins): first use of each."""
    scopes = set(module.wrapper.resolve(ScopeProvider).values())
    missing: dict[str, cst.Name] = {}
    for scope in scopes:
        if scope is None:
            continue
        for access in scope.accesses:
            node = access.node
            if access.referents or not isinstance(node, cst.Name) or node.value in MODULE_DUNDERS:
                continue
            if node.value not in missing or module.line(node) < module.line(missing[node.value]):
                missing[node.value] = node
    return missing


def defining_modules(project: Project, name: str, exclude: Module) -> list[Module]:
    return [m for m in project.parsed() if m is not exclude and name in m.own_definitions]


def _undefined(project: Project, module: Module) -> list[Diagnostic]:
    found = []
    for name, node in sorted(undefined_names(module).items()):
        owners = defining_modules(project, name, module)
        hint = (
            f"import it: `from {owners[0].name} import {name}` (scaffold check --fix adds it)"
            if len(owners) == 1
            else f"define `{name}` or import it"
        )
        found.append(Diagnostic(module.path, module.line(node), "N103", f"`{name}` is used but never defined", hint))
    return found
