"""The `scaffold` command line: thin. It builds the spec, calls the pipeline, prints, and owns the exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scaffolder import __version__, vcs
from scaffolder.errors import (
    EXIT_CODES,
    GenerationError,
    ScaffoldError,
    SmokeError,
    SpecError,
)
from scaffolder.interrupts import Terminated, handle_sigterm
from scaffolder.llm import llm_generator
from scaffolder.pipeline import (
    Consent,
    NewResult,
    RegenOutcome,
    Watch,
    check_project,
    default_output,
    new_project,
    regen_project,
    smoke_project,
    undo_project,
)
from scaffolder.provenance import GeneratorRecord
from scaffolder.regen import generations
from scaffolder.smoke import SmokeResult
from scaffolder.spec import ProjectSpec, data_path
from scaffolder.tasks import PEFT_METHODS, TASKS, TRAINING_CONTROLS, peft_refusal

# The LLM path's flags, shared by `new` and `regen`.
LlmModel = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="write the project with this model on an OpenAI-compatible endpoint (OPENAI_API_KEY, "
        "OPENAI_BASE_URL); its output is checked, repaired, or replaced by the template render",
    ),
]
LlmBaseUrl = Annotated[str | None, typer.Option(help="the endpoint for --llm; default: OPENAI_BASE_URL, else OpenAI")]
Instructions = Annotated[str | None, typer.Option(help='your requirements in words, for --llm ("weight the classes")')]
Trust = Annotated[bool, typer.Option("--trust", help="smoke-run model-written code without asking")]

app = typer.Typer(
    help="Write fine-tuning projects (transformers + peft + accelerate), check them, commit them, smoke-train them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _handle_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Every error becomes one line and its exit code (README: "Exit codes"); never a traceback."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except ScaffoldError as exc:
            _console().print(f"[red]error:[/] {_plain(exc)}")
            raise typer.Exit(exc.exit_code) from None
        except (KeyboardInterrupt, Terminated) as exc:
            raise typer.Exit(_interrupted(exc)) from None
        except Exception as exc:  # a bug: one line, unless asked for the traceback
            if os.environ.get("SCAFFOLD_DEBUG"):
                raise
            if type(exc).__name__ == "GitCommandError":  # git refused (disk, permissions, a lock): not our bug
                _console().print(f"[red]error:[/] {_plain(_git_failure(exc))}")
                raise typer.Exit(2) from None
            _console().print(
                f"[red]internal error:[/] {type(exc).__name__}: {_plain(exc)} "
                f"(rerun with SCAFFOLD_DEBUG=1 for the traceback; {EXIT_CODES[1]})"
            )
            raise typer.Exit(1) from None

    return run


def _git_failure(exc: Exception) -> str:
    """GitPython's multi-line report as one line: the git command and what git said last."""
    command = getattr(exc, "command", ["git", "?"])
    said = [line.strip() for line in str(getattr(exc, "stderr", "")).splitlines() if line.strip()]
    reason = said[-1].removeprefix("stderr: ").strip("'") if said else f"exit {getattr(exc, 'status', '?')}"
    return f"`git {command[1] if len(command) > 1 else ''}` failed: {reason}; see `git status` in the project"


def _console() -> Console:
    """Messages go to stderr, so stdout carries only results (and the --json line)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _plain(text: object) -> str:
    """Text shown as is: data values and messages may hold brackets that rich would read as markup. The API
    key is never shown, whatever message carries it."""
    shown, key = str(text), os.environ.get("OPENAI_API_KEY")
    return escape(shown.replace(key, "<key>") if key else shown)


@app.command()
@_handle_errors
def new(
    task: Annotated[str, typer.Option(help="what to fine-tune for; see `scaffold tasks`")],
    data: Annotated[
        Path,
        typer.Option(
            help="training data: a csv, tsv, json, jsonl, parquet or arrow file (also .gz), or a Hugging Face Hub "
            "dataset id (owner/name, owner/name:config)"
        ),
    ],
    eval_data: Annotated[
        Path | None, typer.Option(help="evaluation data; default: hold out 10% of --data (recorded)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="hub id or local directory; default: the task's")] = None,
    output: Annotated[Path | None, typer.Option(help="project folder; default: <data>-<task> here")] = None,
    text_column: Annotated[str | None, typer.Option(help="input text column; default: inferred")] = None,
    text_pair_column: Annotated[str | None, typer.Option(help="second text of a pair; default: inferred")] = None,
    label_column: Annotated[str | None, typer.Option(help="label column; default: inferred")] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="the data column for a role the task reads: ROLE=NAME (repeatable; see `scaffold tasks`)"),
    ] = None,
    problem_type: Annotated[
        str | None,
        typer.Option(
            help="text-classification: single_label_classification, multi_label_classification or regression; "
            "default: from the labels (lists: multi-label; fractional numbers: regression)"
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            help="class or tag names in id order, comma-separated (integer tags index them); default: from the data"
        ),
    ] = None,
    header: Annotated[
        str | None,
        typer.Option(
            help="text-classification, text-generation, summarization, translation: the column names of a csv/tsv "
            "file without a header row, comma-separated in file order (label,text or en,zh,attribution)"
        ),
    ] = None,
    source_lang: Annotated[str | None, typer.Option(help="translation: source language; default: inferred")] = None,
    target_lang: Annotated[str | None, typer.Option(help="translation: target language; default: inferred")] = None,
    peft: Annotated[str, typer.Option(help="PEFT method, or none for a full fine-tune; see `scaffold tasks`")] = "none",
    max_length: Annotated[int | None, typer.Option(help="tokens per example; default: from the data")] = None,
    num_epochs: Annotated[int | None, typer.Option(help="default: the task's")] = None,
    batch_size: Annotated[int | None, typer.Option(help="default: the task's")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="default: the task's, per PEFT method")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 42,
    no_smoke: Annotated[bool, typer.Option("--no-smoke", help="skip the smoke training run")] = False,
    llm: LlmModel = None,
    llm_base_url: LlmBaseUrl = None,
    instructions: Instructions = None,
    trust: Trust = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
) -> None:
    """Generate a fine-tuning project, commit it to a new git repository, and smoke-train it."""
    spec = ProjectSpec(
        task=task,
        train_data=data_path(data),
        eval_data=data_path(eval_data) if eval_data else None,
        model=_model_arg(model),
        peft=peft,
        columns=_columns(column or [], text=text_column, text_pair=text_pair_column, label=label_column),
        problem_type=problem_type,
        labels=tuple(name.strip() for name in labels.split(",")) if labels else (),
        header=tuple(name.strip() for name in header.split(",")) if header else (),
        source_lang=source_lang,
        target_lang=target_lang,
        max_length=max_length,
        num_epochs=num_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    console, destination = _console(), output.expanduser() if output else default_output(spec)
    generator = llm_generator(llm, llm_base_url, instructions)  # its settings are checked before any work
    result = new_project(spec, destination, not no_smoke, generator, _consent(console, trust, destination),
                         _watch(console, lambda made: _print_new(console, made)))  # fmt: skip
    _print_smoke(console, result.smoke)
    if as_json:
        print(json.dumps(result.to_json()))
    if result.smoke and not result.smoke.passed:
        raise SmokeError(
            f"smoke run failed: {'; '.join(result.smoke.failures)} (the project is committed at "
            f"{result.project}; re-run with `scaffold smoke {result.project}`)"
        )
    if not as_json:
        print(f"cd {os.path.relpath(result.project)} && python train.py")


def _columns(items: list[str], **flags: str | None) -> dict[str, str]:
    """`--column role=name` items plus the --text-column style shortcuts, as a role -> column mapping."""
    columns = {role: name for role, name in flags.items() if name is not None}
    for item in items:
        role, sep, name = item.partition("=")
        if not sep or not role or not name:
            raise SpecError(f"--column {item!r}: expected ROLE=NAME, e.g. --column text=review")
        columns[role.strip()] = name
    return columns


def _model_arg(model: str | None) -> str | None:
    """Local directories are recorded as absolute paths; hub ids as given."""
    if model is None:
        return None
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else model


@app.command()
@_handle_errors
def smoke(
    project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
) -> None:
    """Re-run the smoke training run of an existing project."""
    console = _console()
    result = smoke_project(project.expanduser(), _watch(console))
    _print_smoke(console, result)
    if as_json:
        print(json.dumps(result.to_json()))
    if not result.passed:
        raise SmokeError(f"smoke run failed: {'; '.join(result.failures)}")


@app.command()
@_handle_errors
def check(
    project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path("."),
    fix: Annotated[bool, typer.Option("--fix", help="apply the fixes and commit them on their own")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
) -> None:
    """Check a project across files (names, signatures, contract, spec, completeness, safety); exit 3 on errors."""
    console = _console()
    result = check_project(project.expanduser(), fix=fix, watch=_watch(console))
    for note in result.applied:
        _done(console, f"fixed {note}")
    if result.commit:
        _done(console, f"committed the fixes as {result.commit[:10]}")
    for diagnostic in result.diagnostics:
        print(diagnostic)
    if as_json:
        print(json.dumps({"diagnostics": [d.to_json() for d in result.diagnostics], "applied": result.applied,
                          "commit": result.commit}))  # fmt: skip
    if result.errors:
        hint = "" if fix else "; `scaffold check --fix` repairs what it safely can"
        raise GenerationError(f"{len(result.errors)} error(s) in {project.expanduser().resolve()}{hint}")
    if not as_json and not result.diagnostics:
        _done(console, "no problems found")


@app.command()
@_handle_errors
def regen(
    project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path("."),
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="change a scaffold.toml value first: key=value (repeatable)")
    ] = None,
    no_smoke: Annotated[bool, typer.Option("--no-smoke", help="skip the smoke run after the merge")] = False,
    llm: LlmModel = None,
    llm_base_url: LlmBaseUrl = None,
    instructions: Instructions = None,
    trust: Trust = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
) -> None:
    """Regenerate after a spec change and merge it into your branch, keeping your edits (a git 3-way merge)."""
    console, project = _console(), project.expanduser().resolve()
    generator = llm_generator(llm, llm_base_url, instructions)
    result = regen_project(project, sets or [], generator, not no_smoke, _consent(console, trust, project),
                           _watch(console, lambda merged: _print_merged(console, merged)))  # fmt: skip
    if result.regen.generation is None:
        return
    _print_smoke(console, result.smoke)
    if as_json:
        print(json.dumps(result.to_json()))
    if result.errors:
        raise GenerationError(f"the merged project has {len(result.errors)} check error(s) (listed above); "
                              "fix them, or `scaffold undo` to drop the regeneration")  # fmt: skip
    if result.smoke and not result.smoke.passed:
        raise SmokeError(f"smoke run failed after the merge: {'; '.join(result.smoke.failures)} "
                         "(`scaffold undo` drops the regeneration)")  # fmt: skip


@app.command()
@_handle_errors
def diff(
    project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path("."),
    user: Annotated[bool, typer.Option("--user", help="what you changed since the last generation")] = False,
) -> None:
    """What the last generation changed (pristine against pristine), or with --user what you changed."""
    project = project.expanduser().resolve()
    history = generations(project)
    if user:
        print(vcs.diff(project, history[0].commit, "HEAD"))
    elif len(history) > 1:
        print(vcs.diff(project, history[1].commit, history[0].commit))
    else:
        _console().print("only the first generation exists: nothing to compare it with")


@app.command()
@_handle_errors
def log(project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path(".")) -> None:
    """The generations of this project, newest first, with their spec changes and smoke results."""
    for generation in generations(project.expanduser().resolve()):
        print(f"{generation.commit[:10]}  {generation.date}  {generation.subject}{generation.summary()}")


@app.command()
@_handle_errors
def undo(project: Annotated[Path, typer.Argument(help="a project made by `scaffold new`")] = Path(".")) -> None:
    """Drop the last regeneration, when nothing was committed on top of its merge."""
    console = _console()
    head = undo_project(project.expanduser(), _watch(console))
    _done(console, f"dropped the last regeneration; HEAD is {head[:10]} again")


@app.command()
def tasks() -> None:
    """List the tasks, the PEFT methods, which methods each task supports, and the training controls."""
    console = Console(highlight=False, soft_wrap=True, width=160)  # the matrix is wide; pipes get it whole
    for info in TASKS.values():
        console.print(f"[bold]{info.name}[/]  {info.summary}")
        console.print(f"    default model {info.default_model} (mostly non-Latin data: {info.multilingual_model})")
        console.print(f"    metrics {', '.join(info.metrics)}")
    console.print()
    matrix = Table("task \\ --peft", *PEFT_METHODS, box=None, show_edge=False)
    for info in TASKS.values():
        matrix.add_row(info.name, *("-" if peft_refusal(info, m) else "yes" for m in PEFT_METHODS))
    console.print(matrix)
    console.print()
    for method in PEFT_METHODS.values():
        console.print(f"  {method.name:<14} {method.summary}")
    console.print()
    console.print("training controls: config.yaml lines, `python train.py KEY=VALUE` for one run, and")
    console.print("`scaffold regen --set training.KEY=VALUE` to record them in scaffold.toml (see the README)")
    for name, control in TRAINING_CONTROLS.items():
        default = "null" if control.default is None else control.default
        console.print(f"  {name:<25} {default!s:<18} {control.comment}", markup=False)


def _done(console: Console, text: str) -> None:
    console.print("[green]✓[/] " + _plain(text))


def _print_new(console: Console, result: NewResult) -> None:
    plan, spec = result.plan, result.plan.spec
    counts = ", ".join(f"{label} {count}" for label, count in list(plan.label_counts.items())[:8])
    more = f", … ({len(spec.labels)} in all)" if len(spec.labels) > 8 else ""
    _done(console, f"{spec.task}: {plan.description}" + (f"; labels {counts}{more}" if counts else ""))
    for warning in plan.warnings:
        _warn(console, warning)
    _done(console, plan.data_report.summary())
    for warning in plan.data_report.warnings:
        _warn(console, warning)
    _done(console, f"model {spec.model} ({plan.family.model_type}), {plan.peft.name}, max_length {spec.max_length}")
    _done(console, f"wrote {result.project} ({len(result.files)} files), commit {result.commit[:10]}")
    _print_record(console, result.record)


def _warn(console: Console, text: str) -> None:
    console.print("[yellow]![/] " + _plain(text))


def _print_record(console: Console, record: GeneratorRecord) -> None:
    """How an LLM generation went: the model's files, every note, and what fell back to the Jinja render."""
    if record.model is None:
        return
    written = ", ".join(record.model_files) or "none"
    summary = f"{record.model} at {record.endpoint}: {record.rounds} answer(s); model-written files: {written}"
    (_warn if record.fallback == "whole" else _done)(console, summary)
    for note in record.fixes:
        _done(console, f"fixed {note}")
    for note in record.notes:
        _warn(console, note)
    if record.fallback != "none":
        where = ", ".join(record.fallback_files) if record.fallback == "files" else "the whole project"
        _warn(console, f"fell back to the Jinja render for {where}")


def _consent(console: Console, trust: bool, project: Path) -> Consent:
    """Model-written code runs only with consent: --trust, or a yes typed at a terminal."""

    def ask(code: list[str]) -> bool:
        question = f"smoke-run the model-written {', '.join(code)} (a child process, offline)?"
        if trust or (sys.stdin.isatty() and typer.confirm(question, default=False, err=True)):
            return True
        _warn(
            console,
            f"smoke run skipped: {', '.join(code)} are model-written and running them needs your consent; "
            f"review them, then `scaffold smoke {os.path.relpath(project)}` (or pass --trust)",
        )
        return False

    return ask


def _watch(console: Console, generated: Callable[[Any], None] | None = None) -> Watch:
    """Spinners while the pipeline works, its notes as warnings, and what it generated before the smoke run."""
    return Watch(busy=console.status, generated=generated or (lambda _: None), warn=lambda text: _warn(console, text))


def _print_merged(console: Console, result: RegenOutcome) -> None:
    regen = result.regen
    _print_record(console, regen.record)
    if regen.recovered:
        _done(console, f"found an interrupted regeneration: {regen.recovered}")
    if regen.generation is None:
        _done(console, "nothing to regenerate: the spec renders the project as it was generated")
        return
    _done(console, f"regenerated ({'; '.join(regen.changes)}), merged as {str(regen.merge)[:10]}")
    for diagnostic in result.diagnostics:
        print(diagnostic)


def _print_smoke(console: Console, result: SmokeResult | None) -> None:
    """Success only: a failure is reported once, as the error line the exit code goes with."""
    if result and result.passed:
        losses = result.losses
        _done(
            console,
            f"smoke run passed in {result.seconds:.1f} s: loss {losses[0]:.3f} → {losses[-1]:.3f} "
            f"over {len(losses)} steps",
        )


def main() -> None:
    handle_sigterm()
    try:
        app()
    except (KeyboardInterrupt, Terminated) as exc:  # while typer was still building the command line
        raise SystemExit(_interrupted(exc)) from None


def _interrupted(exc: BaseException) -> int:
    """The line for Ctrl-C or SIGTERM, and the exit code a shell reports for a process that signal stopped."""
    what = "terminated" if isinstance(exc, Terminated) else "interrupted"
    _console().print(f"[red]{what}[/]: nothing half-written is left (what was already committed stays)")
    return 143 if isinstance(exc, Terminated) else 130


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        print(f"scaffold {__version__}")
        raise typer.Exit()
