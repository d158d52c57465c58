"""Regenerate: bring a spec change into a project and keep the user's edits, by a git three-way merge.

Pristine generations live on the branch `scaffold/generated`, each the child of the previous one. `regen`
renders the new spec, commits it there, and merges that commit into the user's current branch: git merges
what both sides changed, registers overlapping edits as conflicts, keeps deleted files deleted and follows
renames. Because the pristine tree is stored, never re-derived, this works for LLM output too.

Interrupted runs: the steps that move refs are recorded in `.git/scaffold-regen.json` first; a run that finds
the record rolls the repository back to where it stood (the tree was clean, so nothing of the user's is lost).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder import __version__, vcs
from scaffolder.errors import MergeConflict, OutputError
from scaffolder.generator import Generator, GeneratorRecord, JinjaGenerator
from scaffolder.plan import build_plan
from scaffolder.spec import SPEC_FILE, ProjectSpec, apply_sets, from_toml, spec_changes, spec_from_text, spec_hash
from scaffolder.tasks import TASKS

if TYPE_CHECKING:
    from scaffolder.smoke import SmokeResult

JOURNAL = "scaffold-regen.json"  # inside .git: never part of the work tree
MERGE_SUBJECT = "Merge regenerated project"


@dataclass
class RegenResult:
    changes: list[str]
    generation: str | None  # the new pristine commit; None when the spec changed nothing
    merge: str | None = None  # the merge commit on the user's branch
    conflicts: list[str] = field(default_factory=list)
    recovered: bool = False  # an interrupted earlier run was rolled back first
    record: GeneratorRecord = field(default_factory=GeneratorRecord)  # how this generation was made


def regenerate(project: Path, sets: list[str], generator: Generator | None = None) -> RegenResult:
    recovered = recover(project)
    vcs.require_clean(project, "run `scaffold regen` again (commit scaffold.toml edits too)")
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
    commit = vcs.commit_tree(project, files, generated, _message(changes, plan.spec, project, record))
    if vcs.tree_of(project, commit) == vcs.tree_of(project, generated) and vcs.is_ancestor(project, generated, head):
        return RegenResult([], None, recovered=recovered, record=record)
    _write_journal(project, head, generated)
    _crash_point("after-journal")
    vcs.move_branch(project, vcs.GENERATED_BRANCH, commit, generated)
    _crash_point("after-branch")
    trailers = vcs.commit_trailers(__version__, spec_hash(plan.spec, project), record)
    merge_message = f"{MERGE_SUBJECT} ({'; '.join(changes) or 'no spec change'})\n\n{trailers}"
    conflicts = vcs.merge(project, commit, merge_message)
    _crash_point("after-merge")
    _journal(project).unlink(missing_ok=True)
    if conflicts:
        raise MergeConflict(
            f"the regeneration overlaps your edits in {', '.join(conflicts)}: edit out the conflict markers, "
            "then `git add` them and `git commit`; or `git merge --abort` to go back (nothing was committed)"
        )
    return RegenResult(changes, commit, vcs.rev(project, "HEAD"), recovered=recovered, record=record)


def _generated_spec(project: Path) -> ProjectSpec:
    """The spec of the last pristine generation, to say what changed."""
    return spec_from_text(vcs.file_at(project, vcs.GENERATED_BRANCH, SPEC_FILE), project)


def _with_method_defaults(old: ProjectSpec, new: ProjectSpec, sets: list[str]) -> ProjectSpec:
    """Switching PEFT method without naming a learning rate: a rate that was the old method's default becomes
    the new method's (full fine-tuning and adapters want rates 10x apart)."""
    from dataclasses import replace

    named = {item.partition("=")[0] for item in sets}
    if new.peft == old.peft or "learning_rate" in named:
        return new
    rates = TASKS[new.task].learning_rates
    if old.learning_rate == rates.get(old.peft):
        return replace(new, learning_rate=rates[new.peft])
    return new


def _message(changes: list[str], spec: ProjectSpec, project: Path, record: GeneratorRecord) -> str:
    from scaffolder.pipeline import generator_lines

    subject = "Regenerate: " + ("; ".join(changes) if changes else "same spec")
    trailers = vcs.commit_trailers(__version__, spec_hash(spec, project), record)
    body = generator_lines(record)
    return "\n\n".join([subject, "\n".join(body), trailers] if body else [subject, trailers])


# --- interrupted runs ---------------------------------------------------------------------------------------


def _journal(project: Path) -> Path:
    return project / ".git" / JOURNAL


def _write_journal(project: Path, head: str, generated: str) -> None:
    path = _journal(project)
    path.write_text(json.dumps({"head": head, "generated": generated}))


def recover(project: Path) -> bool:
    """Roll back a regeneration that was interrupted between moving refs and finishing its merge."""
    path = _journal(project)
    if not path.exists():
        return False
    record = json.loads(path.read_text())
    import git

    repo = git.Repo(project)
    if repo.git.ls_files("--unmerged"):
        repo.git.merge("--abort")
    if vcs.dirty_files(project):
        # Half-updated files from the interrupted merge, or edits made since: kept in a stash, never dropped.
        repo.git.stash("push", "--include-untracked", "-m", "scaffold: work tree found after an interrupted regen")
    vcs.reset_hard(project, record["head"])
    repo.git.update_ref(f"refs/heads/{vcs.GENERATED_BRANCH}", record["generated"])
    path.unlink()
    return True


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
    import git

    repo = git.Repo(project)
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


def model_code(project: Path) -> list[str]:
    """Model-written Python files named by any generation's trailers: smoke-running the project needs consent."""
    import git

    found: set[str] = set()
    for commit in git.Repo(project).iter_commits(vcs.GENERATED_BRANCH, first_parent=True):
        for line in str(commit.message).splitlines():
            key, _, value = line.partition(": ")
            if key == "Scaffolder-LLM-Files" and value != "none":
                found |= {path for path in value.split(", ") if path.endswith(".py")}
    return sorted(found)


def undo(project: Path) -> str:
    """Drop the last regeneration: HEAD must be its merge, with nothing committed on top. Returns the new HEAD."""
    import git

    vcs.require_clean(project, "run `scaffold undo` again")
    repo = git.Repo(project)
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
