"""Regenerate: bring a spec change into a project and keep the user's edits, by a git three-way merge.

Pristine generations live on the branch `scaffold/generated`, each the child of the previous one. `regen`
renders the new spec, commits it there, and merges that commit into the user's current branch: git merges
what both sides changed, registers overlapping edits as conflicts, keeps deleted files deleted and follows
renames. Because the pristine tree is stored, never re-derived, this works for LLM output too.

Interrupted runs: the steps that move refs are recorded in `.git/scaffold-regen.json` first, and run with
Ctrl-C and SIGTERM held back, so only a SIGKILL stops them half-way. A run that finds the record puts back what
that run moved, and only that: the user's branch when it still stands where the run left it, else just
scaffold/generated. One scaffold command at a time holds the project (scaffolder.lock).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder import interrupts, provenance, vcs
from scaffolder.errors import HistoryError, MergeConflict, OutputError
from scaffolder.generator import Generator, JinjaGenerator
from scaffolder.plan import build_plan
from scaffolder.provenance import MERGE_SUBJECT, GeneratorRecord
from scaffolder.spec import SPEC_FILE, ProjectSpec, apply_sets, from_toml, spec_changes, spec_from_text
from scaffolder.tasks import TASKS

if TYPE_CHECKING:
    from scaffolder.smoke import SmokeResult

JOURNAL = "scaffold-regen.json"  # inside .git: never part of the work tree


@dataclass
class RegenResult:
    changes: list[str]
    generation: str | None  # the new pristine commit; None when the spec changed nothing
    merge: str | None = None  # the merge commit on the user's branch
    conflicts: list[str] = field(default_factory=list)
    recovered: str | None = None  # what undoing an interrupted earlier run did, when there was one
    record: GeneratorRecord = field(default_factory=GeneratorRecord)  # how this generation was made


def regenerate(project: Path, sets: list[str], generator: Generator | None = None) -> RegenResult:
    with vcs.locked(project):
        recovered = recover(project)
        check_history(project)
        vcs.require_clean(project, "run `scaffold regen` again (commit scaffold.toml edits too)")
        return _regenerate(project, sets, generator, recovered)


def _regenerate(project: Path, sets: list[str], generator: Generator | None, recovered: str | None) -> RegenResult:
    old_spec = from_toml(project / SPEC_FILE)
    spec = _with_method_defaults(old_spec, apply_sets(old_spec, sets, project), sets)
    base_spec = _generated_spec(project)
    plan = build_plan(spec)
    previous = vcs.files_at(project, vcs.GENERATED_BRANCH)
    files, record = (generator or JinjaGenerator()).generate(plan, project, previous)
    head, generated = vcs.rev(project, "HEAD"), vcs.rev(project, vcs.GENERATED_BRANCH)
    changes = spec_changes(base_spec, plan.spec, project)
    if record.instructions:
        changes.append(f"instructions: {' '.join(record.instructions.split())[:60]}")
    if not vcs.is_ancestor(project, generated, head):
        # An earlier generation was never merged (a conflict the user aborted): merge it with this one.
        changes = changes or ["merge the generation that was not merged"]
    commit = vcs.commit_tree(project, files, generated, provenance.regen_message(changes, plan.spec, project, record))
    if vcs.tree_of(project, commit) == vcs.tree_of(project, generated) and vcs.is_ancestor(project, generated, head):
        return RegenResult([], None, recovered=recovered, record=record)
    merge_message = provenance.merge_message(changes, plan.spec, project, record)
    journal = Journal(str(vcs.current_branch(project)), head, generated, commit)
    with interrupts.held_back():  # Ctrl-C or SIGTERM wait for the refs to be consistent; SIGKILL has the journal
        conflicts = _move_refs_and_merge(project, journal, merge_message)
    if conflicts:
        raise MergeConflict(
            f"the regeneration overlaps your edits in {', '.join(conflicts)}: edit out the conflict markers, "
            "then `git add` them and `git commit`; or `git merge --abort` to go back (nothing was committed)"
        )
    return RegenResult(changes, commit, vcs.rev(project, "HEAD"), recovered=recovered, record=record)


def _move_refs_and_merge(project: Path, journal: Journal, merge_message: str) -> list[str]:
    try:
        return _journaled_steps(project, journal, merge_message)
    except Exception:
        # git refused a step (disk full, a permission): put back what moved now, or leave the record to the
        # next run where the tree is in doubt.
        with contextlib.suppress(Exception):
            recover(project)
        raise


def _journaled_steps(project: Path, journal: Journal, merge_message: str) -> list[str]:
    journal.write(project, "branch")
    _crash_point("after-journal")
    vcs.move_branch(project, vcs.GENERATED_BRANCH, journal.generation, journal.generated)
    _crash_point("after-branch")
    journal.write(project, "merge")  # from here on the work tree may hold a half-done merge
    _crash_point("before-merge")
    conflicts = vcs.merge(project, journal.generation, merge_message)
    _crash_point("after-merge")
    _journal_path(project).unlink(missing_ok=True)
    return conflicts


def check_history(project: Path) -> None:
    """Refuse, before anything is written, a history that a regeneration cannot merge into: the way forward
    is in the message, and nothing of the user's is touched."""
    generated = vcs.rev_or_none(project, vcs.GENERATED_BRANCH)
    if generated is None:
        raise HistoryError(
            f"the branch {vcs.GENERATED_BRANCH} (scaffolder's pristine generations) is missing; nothing was "
            f"changed: restore it with `git branch {vcs.GENERATED_BRANCH} <commit>` (the last `Generate` or "
            "`Regenerate` commit, in `git reflog`), then run again"
        )
    branch = vcs.current_branch(project)
    if branch is None:
        raise HistoryError(
            "HEAD is detached (not on a branch); nothing was changed: `git switch <your branch>`, then run again"
        )
    if branch == f"refs/heads/{vcs.GENERATED_BRANCH}":
        raise HistoryError(
            f"{vcs.GENERATED_BRANCH} is checked out: it holds scaffolder's pristine generations, not your work; "
            "nothing was changed: `git switch <your branch>`, then run again"
        )
    if vcs.merge_base(project, "HEAD", generated) is None:
        raise HistoryError(
            f"your branch shares no history with {vcs.GENERATED_BRANCH} (its first commit was amended or rebased); "
            f"nothing was changed: `git merge -s ours --allow-unrelated-histories {vcs.GENERATED_BRANCH}` "
            "records the generation as merged without changing your files, then run again"
        )
    if vcs.rev_or_none(project, "MERGE_HEAD"):
        raise HistoryError(
            "a git merge is in progress in this project; nothing was changed: finish it with `git commit` "
            "(or `git merge --abort`), then run again"
        )
    index_lock = vcs.git_path(project, "index.lock")
    if index_lock.exists():
        raise HistoryError(
            f"{index_lock} exists: a git command is running in this project, or one was killed; nothing was "
            "changed: if no git command is running, delete it, then run again"
        )
    if not vcs.is_ancestor(project, generated, "HEAD") and _rebased_into_branch(project, generated):
        raise HistoryError(
            f"the last generation ({generated[:10]}) was rebased or cherry-picked into your branch, not merged; "
            f"nothing was changed: `git merge -s ours {vcs.GENERATED_BRANCH}` records it as merged without "
            "changing your files, then run again"
        )


def _rebased_into_branch(project: Path, generated: str) -> bool:
    """A copy of the generation commit (same message) on the branch: a rebase or cherry-pick replayed it."""
    _, message = vcs.commit_info(project, generated)
    return message in vcs.messages_between(project, generated, "HEAD")


def _generated_spec(project: Path) -> ProjectSpec:
    """The spec of the last pristine generation, to say what changed."""
    return spec_from_text(vcs.file_at(project, vcs.GENERATED_BRANCH, SPEC_FILE), project)


def _with_method_defaults(old: ProjectSpec, new: ProjectSpec, sets: list[str]) -> ProjectSpec:
    """Switching PEFT method without naming a learning rate: a rate that was the old method's default becomes
    the new method's (full fine-tuning and adapters want rates 10x apart)."""
    named = {item.partition("=")[0] for item in sets}
    if new.peft == old.peft or "learning_rate" in named:
        return new
    task = TASKS[new.task]
    if old.learning_rate == task.learning_rate(old.peft):
        return replace(new, learning_rate=task.learning_rate(new.peft))
    return new


# --- interrupted runs ---------------------------------------------------------------------------------------


@dataclass
class Journal:
    """What a regeneration is about to move: the user's branch at `head`, scaffold/generated from `generated`
    to `generation`. Written before the first ref moves and removed after the merge."""

    branch: str  # full ref of the user's branch
    head: str
    generated: str
    generation: str
    step: str = "branch"  # "branch": refs may have moved; "merge": the work tree may hold a half-done merge

    def write(self, project: Path, step: str) -> None:
        self.step = step
        path = _journal_path(project)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, path)  # whole or not at all: a kill mid-write leaves the previous record


def _journal_path(project: Path) -> Path:
    return vcs.git_dir(project) / JOURNAL


def _read_journal(project: Path) -> Journal | None:
    path = _journal_path(project)
    if not path.exists():
        return None
    try:
        return Journal(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise HistoryError(
            f"{path} (the record of an interrupted regeneration) is unreadable; nothing was changed: check "
            f"`git log --all --oneline`, then delete {path} and run again"
        ) from None


def recover(project: Path) -> str | None:
    """Undo what an interrupted regeneration moved, and only that; what was done, or None when there was none.

    No user branch is moved and the work tree is never touched: a merge the run committed is kept (it was
    done), a branch that moved since is the user's work, and where its merge may have begun and left files,
    the user is asked to sort them out first. scaffold/generated goes back unless its new generation was merged.
    """
    journal = _read_journal(project)
    if journal is None:
        return None
    generated = vcs.rev_or_none(project, vcs.GENERATED_BRANCH)
    if generated not in (journal.generated, journal.generation):
        raise HistoryError(
            f"{_journal_path(project)} records an interrupted regeneration ({vcs.GENERATED_BRANCH} "
            f"{journal.generated[:10]} -> {journal.generation[:10]}), but {vcs.GENERATED_BRANCH} has moved since "
            f"(now {generated[:10] if generated else 'deleted'}); nothing was changed: check "
            f"`git log {vcs.GENERATED_BRANCH}`, then delete {_journal_path(project)} and run again"
        )
    branch_at = vcs.branches(project).get(journal.branch)
    if branch_at is not None and _is_our_merge(project, branch_at, journal):
        # Killed after its merge commit: the regeneration is done but for its record; it is kept as it is.
        _forget_finished_merge(project, journal)
        note = f"its merge {branch_at[:10]} had finished and is kept"
    elif branch_at == journal.head:
        _refuse_a_tree_in_doubt(project, journal)
        note = f"{journal.branch.removeprefix('refs/heads/')} stays at {journal.head[:10]}"
    else:
        note = "your branches were left as they are (they moved since)"
    if generated == journal.generation and not _merged_anywhere(project, journal.generation):
        vcs.move_branch(project, vcs.GENERATED_BRANCH, journal.generated, journal.generation)
    _journal_path(project).unlink()
    return note


def _is_our_merge(project: Path, commit: str, journal: Journal) -> bool:
    parents, message = vcs.commit_info(project, commit)
    return parents == [journal.head, journal.generation] and message.startswith(MERGE_SUBJECT)


def _forget_finished_merge(project: Path, journal: Journal) -> None:
    """A git killed between its merge commit and its cleanup (a signal meant for scaffolder) leaves MERGE_HEAD
    naming the generation that commit already merged: stale, and in the way of every later merge."""
    on_branch = vcs.current_branch(project) == journal.branch
    if on_branch and vcs.rev_or_none(project, "MERGE_HEAD") == journal.generation:
        vcs.forget_merge(project)


def _refuse_a_tree_in_doubt(project: Path, journal: Journal) -> None:
    """Where the interrupted run's merge may have begun, the work tree is left to the user: a merge still in
    progress, or changes that may be a half-done merge's or the user's own (only they can tell)."""
    if journal.step != "merge" or vcs.current_branch(project) != journal.branch:
        return
    if vcs.rev_or_none(project, "MERGE_HEAD"):
        raise HistoryError(
            "an interrupted regeneration stopped in its merge, which is still in progress; nothing was changed: "
            "resolve it and `git commit` (or `git merge --abort`), then run again"
        )
    if vcs.dirty_files(project):
        raise HistoryError(
            "an interrupted regeneration may have left its merge half-done, and the work tree has changes "
            f"({', '.join(vcs.dirty_files(project)[:3])}); nothing was changed: look at `git status`, keep what is "
            "yours with `git stash -u` (or commit it), then run again"
        )


def _merged_anywhere(project: Path, generation: str) -> bool:
    """The interrupted run's generation is part of a user branch (its merge finished): it stays the latest."""
    return any(
        vcs.is_ancestor(project, generation, commit)
        for ref, commit in vcs.branches(project).items()
        if ref != f"refs/heads/{vcs.GENERATED_BRANCH}"
    )


def _crash_point(step: str) -> None:
    """Fault injection for the interruption tests: SCAFFOLD_CRASH_AT=<step> kills the process there."""
    if os.environ.get("SCAFFOLD_CRASH_AT") == step:
        os._exit(137)


# --- history ------------------------------------------------------------------------------------------------


@dataclass
class Generation:
    commit: str
    subject: str
    date: str
    outcome: dict[str, Any] | None  # what record_outcome stored: check errors and the smoke result

    def summary(self) -> str:
        if self.outcome is None:
            return ""
        smoke = self.outcome.get("smoke")
        if smoke is None:
            return "  smoke: skipped"
        return f"  smoke: {'passed' if smoke['passed'] else 'FAILED'} in {smoke['seconds']:.1f} s"


def record_outcome(project: Path, generation: str, check_errors: int, smoke: SmokeResult | None) -> dict[str, Any]:
    """Attach the merged tree's check and smoke results to the generation (a git note that `log` reads)."""
    outcome = {"check_errors": check_errors, "smoke": smoke.to_json() if smoke else None}
    vcs.add_note(project, generation, json.dumps(outcome))
    return outcome


def generations(project: Path) -> list[Generation]:
    repo = vcs.open_repo(project)
    found = []
    for commit in repo.iter_commits(vcs.GENERATED_BRANCH, first_parent=True):
        note = vcs.note_of(project, commit.hexsha)
        found.append(
            Generation(
                commit.hexsha,
                str(commit.summary),
                commit.committed_datetime.isoformat(timespec="seconds"),
                json.loads(note) if note else None,
            )
        )
    return found


def undo(project: Path) -> str:
    """Drop the last regeneration: HEAD must be its merge, with nothing committed on top. Returns the new HEAD."""
    with vcs.locked(project):
        vcs.require_clean(project, "run `scaffold undo` again")
        return _undo(project)


def _undo(project: Path) -> str:
    repo = vcs.open_repo(project)
    head = repo.head.commit
    generated = repo.commit(vcs.GENERATED_BRANCH)
    is_merge = len(head.parents) == 2 and head.parents[1] == generated
    is_regen_merge = is_merge and str(head.message).startswith(MERGE_SUBJECT)
    if not is_regen_merge or not generated.parents:
        raise OutputError(
            "HEAD is not the merge of the last regeneration (commits were made on top, or there is none); "
            "nothing was changed: use git revert to undo it by hand"
        )
    vcs.reset_hard(project, head.parents[0].hexsha)
    vcs.move_branch(project, vcs.GENERATED_BRANCH, generated.parents[0].hexsha, generated.hexsha)
    return head.parents[0].hexsha
