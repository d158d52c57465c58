"""Validate: check a generated project across files. Every check returns diagnostics and never raises."""

from __future__ import annotations

from scaffolder.spec import ProjectSpec
from scaffolder.validate import completeness, consistency, contract, names, safety, signatures
from scaffolder.validate.diagnostics import CODES, Diagnostic
from scaffolder.validate.project import Project

__all__ = ["CODES", "Diagnostic", "Project", "check_files"]


def check_files(files: dict[str, str], spec: ProjectSpec | None = None) -> list[Diagnostic]:
    """Every diagnostic for a project given as {path: text}; spec checks run when a spec is given."""
    project = Project.from_files(files)
    found = _syntax(project)
    found += names.check(project) + signatures.check(project) + contract.check(project)
    found += completeness.check(project) + safety.check(project)
    if spec is not None:
        found += consistency.check(project, spec)
    return sorted(set(found))


def _syntax(project: Project) -> list[Diagnostic]:
    return [
        Diagnostic(m.path, m.line_of_error, "E001", f"is not valid Python: {m.syntax_error}", "fix the syntax")
        for m in project.modules.values()
        if m.tree is None
    ]
