"""Generators: what turns a plan into files. The Jinja render is the default; `scaffolder.llm` is the other.

Each returns the files, already checked and fixed, and a `GeneratorRecord` that says how they were made: the
`--json` output and the commit trailers carry it, and it decides whether running the project needs consent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scaffolder import render

if TYPE_CHECKING:
    from scaffolder.plan import Plan


@dataclass
class GeneratorRecord:
    name: str = render.GENERATOR  # "jinja" or "llm"
    model: str | None = None
    endpoint: str | None = None  # host[:port] only: never a path, a user or a key
    prompt_hash: str | None = None  # hash of templates/prompts/*.j2
    rounds: int = 0  # answers received
    fallback: str = "none"  # "none", "files" (those in fallback_files are the Jinja render's) or "whole"
    fallback_files: list[str] = field(default_factory=list)
    model_files: list[str] = field(default_factory=list)  # files that differ from the Jinja render
    notes: list[str] = field(default_factory=list)  # what went wrong, one line each, for the user
    fixes: list[str] = field(default_factory=list)  # what the libcst fixes changed in the model's files
    instructions: str = ""

    @property
    def model_code(self) -> list[str]:
        """Model-written Python: running it needs the user's consent (`--trust`)."""
        return [path for path in self.model_files if path.endswith(".py")]

    def trailers(self) -> dict[str, str]:
        """Commit trailers beyond Scaffolder-Generator; none for the Jinja render."""
        if self.name == render.GENERATOR:
            return {}
        fallback = self.fallback + (f" ({', '.join(self.fallback_files)})" if self.fallback == "files" else "")
        return {
            "Scaffolder-LLM-Model": self.model or "",
            "Scaffolder-LLM-Endpoint": self.endpoint or "",
            "Scaffolder-LLM-Prompt-Hash": self.prompt_hash or "",
            "Scaffolder-LLM-Rounds": str(self.rounds),
            "Scaffolder-LLM-Fallback": fallback,
            "Scaffolder-LLM-Files": ", ".join(self.model_files) or "none",
        }

    def to_json(self) -> dict[str, object]:
        return asdict(self)


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
        from scaffolder.pipeline import validated

        return validated(render.render(plan, project_dir), plan.spec), GeneratorRecord()
