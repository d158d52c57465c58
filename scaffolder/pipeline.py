"""The pipeline behind `scaffold new` and `scaffold smoke`: spec -> plan -> render -> commit -> smoke."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scaffolder import provenance, render, smoke, vcs
from scaffolder.fixes import fix_files
from scaffolder.generator import Generator, JinjaGenerator
from scaffolder.plan import Plan, build_plan
from scaffolder.provenance import GeneratorRecord
from scaffolder.spec import SPEC_FILE, ProjectSpec, from_toml, is_hub_dataset
from scaffolder.validate import Diagnostic, check_files


@dataclass
class NewResult:
    project: Path
    commit: str
    files: list[str]
    generator: str
    plan: Plan
    smoke: smoke.SmokeResult | None
    record: GeneratorRecord = field(default_factory=GeneratorRecord)
    smoke_skipped: str | None = None  # why the smoke run did not run (model-written code, no consent)

    def to_json(self) -> dict[str, object]:
        return {
            "project": str(self.project),
            "commit": self.commit,
            "files": self.files,
            "generator": self.generator,
            "llm": self.record.to_json() if self.record.name != render.GENERATOR else None,
            "smoke": self.smoke.to_json() if self.smoke else None,
            "smoke_skipped": self.smoke_skipped,
            "warnings": list(self.plan.warnings),
            "data_report": self.plan.data_report.to_json(),
        }


def default_output(spec: ProjectSpec) -> Path:
    """`<data name>-<task>` in the current folder; a generic file name (train.csv) gives way to its folder's."""
    data = spec.train_data
    if is_hub_dataset(data):  # owner/name:config -> name-config
        return Path.cwd() / f"{data.name.replace(':', '-')}-{spec.task}"
    stem = data.stem if data.stem.lower() not in ("train", "data", "dataset", "training") else data.parent.name
    return Path.cwd() / f"{stem or 'data'}-{spec.task}"


def new_project(
    spec: ProjectSpec, output: Path, run_smoke: bool = True, generator: Generator | None = None, trust: bool = False
) -> NewResult:
    """`trust`: smoke-run model-written code too (the CLI asks the user; a library caller says so here)."""
    output = output.resolve()
    vcs.check_destination(output)
    if run_smoke:
        smoke.check_training_stack()  # before any work: a missing stack is a set-up problem, not a smoke failure
    plan = build_plan(spec)
    files, record = (generator or JinjaGenerator()).generate(plan, output)
    commit = vcs.write_project(files, output, provenance.new_message(plan, files, output, record))
    result = NewResult(output, commit, sorted(files), record.name, plan, None, record)
    if run_smoke and record.model_code and not trust:
        result.smoke_skipped = "the project holds model-written code and running it was not allowed"
    elif run_smoke:
        result.smoke = smoke.run_smoke(output)
    return result


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    applied: list[str] = field(default_factory=list)
    commit: str | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def check_project(project: Path, fix: bool = False) -> CheckResult:
    """`scaffold check`: diagnostics for a project on disk; with `fix`, the fixes land as a commit of their own."""
    spec = from_toml(project / SPEC_FILE)
    files = vcs.project_files(project)
    if not fix:
        return CheckResult(check_files(files, spec))
    vcs.require_clean(project, "run `scaffold check --fix` again")
    result = fix_files(files, spec)
    changed = {path: text for path, text in result.files.items() if files.get(path) != text}
    commit = None
    if changed:
        message = "scaffold check --fix: " + f"{len(result.applied)} fix(es)\n\n" + "\n".join(result.applied)
        commit = vcs.commit_changes(project, changed, message)
    return CheckResult(result.remaining, result.applied, commit)


def smoke_project(project: Path) -> smoke.SmokeResult:
    from_toml(project / SPEC_FILE)  # a clear error when this is not a scaffolded project
    smoke.check_training_stack()
    return smoke.run_smoke(project)
