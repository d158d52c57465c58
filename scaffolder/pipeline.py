"""scaffolder's library API: what each `scaffold` command does, for any caller.

    from scaffolder.pipeline import new_project, regen_project
    from scaffolder.spec import ProjectSpec

    result = new_project(ProjectSpec(task="text-classification", train_data=Path("train.csv")), Path("my-clf"))
    assert result.smoke.passed
    regen_project(Path("my-clf"), ["peft=lora"])

`new_project` (spec -> plan -> render -> commit -> smoke), `regen_project` (regenerate, merge, check the merged
tree, smoke, record the outcome), `check_project` and `smoke_project` each return a result object and raise a
`ScaffoldError` for what the user must fix. Model-written code (the LLM path) is smoke-run only when `consent`
says yes to its files; `watch` is told what is going on (the CLI's spinners and lines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaffolder import provenance, render, smoke, vcs
from scaffolder.errors import MissingToolError, OutputError
from scaffolder.fixes import fix_files
from scaffolder.generator import Generator, JinjaGenerator
from scaffolder.plan import Plan, build_plan
from scaffolder.provenance import GeneratorRecord
from scaffolder.regen import RegenResult, record_outcome, regenerate, undo
from scaffolder.spec import SPEC_FILE, ProjectSpec, from_toml, is_hub_dataset
from scaffolder.validate import Diagnostic, check_files

# Asked before model-written Python runs: the files -> whether they may run (in a child process, offline).
Consent = Callable[[list[str]], bool]


def never(code: list[str]) -> bool:
    """The default consent: model-written code is not run unless the caller's user said yes."""
    return False


def _quiet(what: str) -> AbstractContextManager[object]:
    return nullcontext()


def _ignore(event: object) -> None:
    return None


@dataclass
class Watch:
    """What a caller is told while a command runs; by default, nothing."""

    busy: Callable[[str], AbstractContextManager[object]] = _quiet  # around a long step, named in words
    generated: Callable[[Any], None] = _ignore  # the NewResult or RegenOutcome, before the smoke run
    warn: Callable[[str], None] = _ignore  # a note to show (a stale lock taken over)


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


@dataclass
class RegenOutcome:
    """A regeneration merged into the user's branch, its tree checked and smoke-run; `regen.generation` is None
    when the spec changed nothing (and nothing else was done)."""

    regen: RegenResult
    diagnostics: list[Diagnostic] = field(default_factory=list)
    smoke: smoke.SmokeResult | None = None
    smoke_skipped: str | None = None
    outcome: dict[str, Any] = field(default_factory=dict)  # what the generation's note records

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def to_json(self) -> dict[str, object]:
        regen = self.regen
        return {"changes": regen.changes, "generation": regen.generation, "merge": regen.merge,
                "diagnostics": [d.to_json() for d in self.diagnostics], **self.outcome,
                "smoke_skipped": self.smoke_skipped,
                "llm": regen.record.to_json() if regen.record.name != render.GENERATOR else None}  # fmt: skip


def default_output(spec: ProjectSpec) -> Path:
    """`<data name>-<task>` in the current folder; a generic file name (train.csv) gives way to its folder's."""
    data = spec.train_data
    if is_hub_dataset(data):  # owner/name:config -> name-config
        return Path.cwd() / f"{data.name.replace(':', '-')}-{spec.task}"
    stem = data.stem if data.stem.lower() not in ("train", "data", "dataset", "training") else data.parent.name
    return Path.cwd() / f"{stem or 'data'}-{spec.task}"


def new_project(
    spec: ProjectSpec,
    output: Path,
    run_smoke: bool = True,
    generator: Generator | None = None,
    consent: Consent = never,
    watch: Watch | None = None,
) -> NewResult:
    """`scaffold new`: the project written and committed at `output`, then smoke-trained (`run_smoke`)."""
    watch = watch or Watch()
    output = output.resolve()
    vcs.check_destination(output)
    if run_smoke:
        smoke.check_training_stack()  # before any work: a missing stack is a set-up problem, not a smoke failure
    with watch.busy(_generating(generator)):
        plan = build_plan(spec)
        files, record = (generator or JinjaGenerator()).generate(plan, output)
        commit = vcs.write_project(files, output, provenance.new_message(plan, files, output, record))
    result = NewResult(output, commit, sorted(files), record.name, plan, None, record)
    watch.generated(result)
    if run_smoke:
        tiny = f"on a tiny {plan.family.model_type}"
        result.smoke, result.smoke_skipped = _smoke_if_allowed(output, record.model_code, consent, watch, tiny)
    return result


def regen_project(
    project: Path,
    sets: list[str],
    generator: Generator | None = None,
    run_smoke: bool = True,
    consent: Consent = never,
    watch: Watch | None = None,
) -> RegenOutcome:
    """`scaffold regen`: `sets` (scaffold.toml key=value) applied, the project regenerated and merged into the
    user's branch (regen.regenerate), the merged tree checked and smoke-run, and the outcome recorded on the
    generation (`scaffold log` shows it). Check errors and a failed smoke run are in the result, not raised:
    the merge is committed either way, and `scaffold undo` drops it."""
    watch = watch or Watch()
    project = project.resolve()
    if run_smoke:
        smoke.check_training_stack()
    with _locked(project, watch):
        with watch.busy(_generating(generator) + " and merging"):
            result = RegenOutcome(regenerate(project, sets, generator))
        if result.regen.generation is None:  # the spec renders the project as it was generated
            watch.generated(result)
            return result
        result.diagnostics = check_files(vcs.project_files(project), from_toml(project / SPEC_FILE))
        watch.generated(result)
        if run_smoke:
            code = provenance.model_code(project)
            result.smoke, result.smoke_skipped = _smoke_if_allowed(project, code, consent, watch, "the merged project")
        result.outcome = record_outcome(project, result.regen.generation, len(result.errors), result.smoke)
    return result


def _smoke_if_allowed(
    project: Path, code: list[str], consent: Consent, watch: Watch, what: str = ""
) -> tuple[smoke.SmokeResult | None, str | None]:
    """The smoke run, or why it did not run: model-written code runs only with consent."""
    if code and not consent(code):
        return None, f"model-written code ({', '.join(code)}) needs consent to run, and it was not given"
    with watch.busy(f"smoke-training {what or 'on a tiny model'}…"):
        return smoke.run_smoke(project), None


def _generating(generator: Generator | None) -> str:
    model = getattr(getattr(generator, "endpoint", None), "model", None)
    if model is None:
        return "planning, rendering and committing…"
    return f"writing the project with {model}, checking and committing…"


@contextmanager
def _locked(project: Path, watch: Watch, optional: bool = False) -> Iterator[None]:
    """One scaffold command at a time per project; a lock that a killed run left is taken over, and said so.
    `optional`: a command that needs no git (smoke) also runs in a copy of the project without its repository."""
    if optional:
        try:
            vcs.git_dir(project)
        except (MissingToolError, OutputError):
            yield
            return
    with vcs.locked(project) as lock:
        if lock.stale_pid:
            watch.warn(f"took over the lock of pid {lock.stale_pid}, a scaffold command that is no longer running")
        yield


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    applied: list[str] = field(default_factory=list)
    commit: str | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def check_project(project: Path, fix: bool = False, watch: Watch | None = None) -> CheckResult:
    """`scaffold check`: diagnostics for a project on disk; with `fix`, the fixes land as a commit of their own."""
    project = project.resolve()
    with _locked(project, watch or Watch()):
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


def smoke_project(project: Path, watch: Watch | None = None) -> smoke.SmokeResult:
    """`scaffold smoke`: the smoke run of a project on disk (a copy without its repository runs too)."""
    watch = watch or Watch()
    project = project.resolve()
    from_toml(project / SPEC_FILE)  # a clear error when this is not a scaffolded project
    smoke.check_training_stack()
    with _locked(project, watch, optional=True), watch.busy("smoke-training on a tiny model…"):
        return smoke.run_smoke(project)


def undo_project(project: Path, watch: Watch | None = None) -> str:
    """`scaffold undo`: drop the last regeneration (regen.undo); the new HEAD."""
    project = project.resolve()
    with _locked(project, watch or Watch()):
        return undo(project)
