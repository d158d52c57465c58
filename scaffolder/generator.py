"""Generators: what turns a plan into files. The Jinja render is the default; `scaffolder.llm` is the other.

Each returns the files and a `GeneratorRecord` (scaffolder.provenance) that says how they were made: the
`--json` output and the commit trailers carry it, and it decides whether running the project needs consent.
Every render of scaffolder's templates passes through `validated`, the gate that checks and fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scaffolder import render
from scaffolder.errors import GenerationError
from scaffolder.fixes import fix_files
from scaffolder.provenance import GeneratorRecord
from scaffolder.spec import ProjectSpec

if TYPE_CHECKING:
    from scaffolder.plan import Plan


class Generator(Protocol):
    name: str

    def generate(
        self, plan: Plan, project_dir: Path, previous: dict[str, str] | None = None
    ) -> tuple[dict[str, str], GeneratorRecord]:
        """The project's files, checked and fixed; `previous` is the last generation's files on regeneration."""
        ...


class JinjaGenerator:
    name = render.GENERATOR

    def generate(
        self, plan: Plan, project_dir: Path, previous: dict[str, str] | None = None
    ) -> tuple[dict[str, str], GeneratorRecord]:
        return validated(render.render(plan, project_dir), plan.spec), GeneratorRecord()


def validated(files: dict[str, str], spec: ProjectSpec) -> dict[str, str]:
    """Check a template render across files and against the spec, apply the fixes, and refuse what is still
    wrong: nothing is written or run that fails its checks. Every caller passes a render of scaffolder's own
    templates, so an error left is scaffolder's bug."""
    result = fix_files(files, spec)
    if result.errors:
        first = result.errors[0]
        raise GenerationError(
            f"the generated project fails {len(result.errors)} check(s), first {first}; nothing was written "
            "(this is a scaffolder bug, please report it)"
        )
    return result.files
