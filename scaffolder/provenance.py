"""Provenance: how a generation was made (`GeneratorRecord`) and the commit messages that record it.

Every generated commit ends in trailers: scaffolder's version, the spec's hash, the generator, and for the LLM
path its model, endpoint host, prompt hash, rounds, fallback and the files the model wrote. `--json` carries
the record too, and regen reads the trailers back: model-written Python needs consent before it is run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scaffolder import __version__, render, vcs
from scaffolder.spec import ProjectSpec, spec_hash

if TYPE_CHECKING:
    from scaffolder.plan import Plan

MERGE_SUBJECT = "Merge regenerated project"  # regen's merge commits; undo and recovery recognise them by it
MODEL_FILES_TRAILER = "Scaffolder-LLM-Files"


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
            MODEL_FILES_TRAILER: ", ".join(self.model_files) or "none",
        }

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def trailers(spec: ProjectSpec, project: Path, record: GeneratorRecord) -> str:
    """The trailer lines: scaffolder's version, the spec's hash, and how the files were generated."""
    found = {"Scaffolder-Version": __version__, "Scaffolder-Spec-Hash": spec_hash(spec, project)}
    found |= {"Scaffolder-Generator": record.name, **record.trailers()}
    return "\n".join(f"{key}: {' '.join(value.split())}" for key, value in found.items())


def new_message(plan: Plan, files: dict[str, str], project: Path, record: GeneratorRecord) -> str:
    """`scaffold new`'s commit: what was generated, from which data, read how."""
    spec = plan.spec
    method = "full fine-tune" if plan.peft.name == "none" else plan.peft.name
    data = f"{spec.train_data.name} ({plan.train.num_rows} rows)"
    held_out = (
        f"eval: {spec.eval_data.name} ({plan.eval.num_rows} rows)"
        if spec.eval_data and plan.eval
        else f"eval: {spec.eval_fraction:.0%} of the training rows held out"
    )
    return "\n".join(
        [
            f"Generate {spec.task} project: {spec.model}, {method}",
            "",
            f"Files: {', '.join(sorted(files))}",
            f"Data: {data}; {held_out}",
            f"Read as: {plan.description}",
            *generator_lines(record),
            "",
            trailers(spec, project, record),
        ]
    )


def regen_message(changes: list[str], spec: ProjectSpec, project: Path, record: GeneratorRecord) -> str:
    """A regeneration's commit on scaffold/generated: the spec changes it brings."""
    subject = "Regenerate: " + ("; ".join(changes) if changes else "same spec")
    body = "\n".join(generator_lines(record))
    return "\n\n".join(part for part in (subject, body, trailers(spec, project, record)) if part)


def merge_message(changes: list[str], spec: ProjectSpec, project: Path, record: GeneratorRecord) -> str:
    """The merge of a regeneration into the user's branch."""
    return f"{MERGE_SUBJECT} ({'; '.join(changes) or 'no spec change'})\n\n{trailers(spec, project, record)}"


def generator_lines(record: GeneratorRecord) -> list[str]:
    """Commit-message lines on an LLM generation: the instructions and what fell back (the trailers say more)."""
    if record.name == render.GENERATOR:
        return []
    lines = [f"Instructions: {' '.join(record.instructions.split())[:300]}"] if record.instructions else []
    return lines + [f"LLM: {note[:300]}" for note in record.notes]


def model_code(project: Path) -> list[str]:
    """Model-written Python files named by any generation's trailers: smoke-running the project needs consent."""
    found: set[str] = set()
    for commit in vcs.open_repo(project).iter_commits(vcs.GENERATED_BRANCH, first_parent=True):
        for line in str(commit.message).splitlines():
            key, _, value = line.partition(": ")
            if key == MODEL_FILES_TRAILER and value != "none":
                found |= {path for path in value.split(", ") if path.endswith(".py")}
    return sorted(found)
