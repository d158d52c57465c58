"""Fixes: libcst codemods that repair what the checks find, re-run until nothing changes.

Each fix is one module with a `DESCRIPTION` and `apply(files, diagnostics, spec) -> (files, notes)`: it returns
the changed files and one note per change, and leaves alone what it cannot fix safely (the diagnostic stays).
Fixes keep formatting and comments: that is why they are libcst transforms, not regex or ast rewrites.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic, check_files

# In the order they run. Imported when a check finds something: libcst's codemod machinery takes longer to import
# than a clean render takes to check.
FIXES = ("repoint_import", "add_missing_import", "spec_constants", "torch_load_safe", "strip_forbidden")
MAX_ROUNDS = 5


def fix_modules() -> list[ModuleType]:
    return [importlib.import_module(f"scaffolder.fixes.{name}") for name in FIXES]


@dataclass
class FixResult:
    files: dict[str, str]
    applied: list[str] = field(default_factory=list)  # one note per change, e.g. "train.py: import evaluation ..."
    remaining: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.remaining if d.severity == "error"]


def fix_files(files: dict[str, str], spec: ProjectSpec | None = None) -> FixResult:
    """Apply every fix to the diagnostics it handles, check again, and repeat until nothing changes."""
    result = FixResult(dict(files))
    diagnostics = check_files(result.files, spec)
    for _ in range(MAX_ROUNDS if diagnostics else 0):
        changed = False
        for fix in fix_modules():
            if not diagnostics:
                break
            new_files, notes = fix.apply(result.files, diagnostics, spec)
            if new_files != result.files:
                result.files, changed = new_files, True
                result.applied += notes
                diagnostics = check_files(result.files, spec)
        if not changed:
            break
    result.remaining = diagnostics
    return result
