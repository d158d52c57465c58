"""The LLM generator: ask, check, fix, ask for repairs, and fall back to the Jinja render for what still fails.

    answer ─► read strictly ─► safety screen ─► fixes + checks ─► clean: done
                 │                 │                   └─► errors: a repair round (at most SCAFFOLD_LLM_ROUNDS)
                 │                 └─► a finding: that file is the Jinja render's, and no more rounds
                 └─► a path out of the project, or the key: the whole answer is rejected

Whatever still fails at the end is replaced by the Jinja render of the same spec, file by file while the
project then passes every check (the contract included), else as a whole. The result is never worse than the
template render: it passes the same checks, and the record says which files came from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scaffolder import render, vcs
from scaffolder.errors import ScaffoldError
from scaffolder.fixes import FixResult, fix_files
from scaffolder.generator import validated
from scaffolder.llm import prompts
from scaffolder.llm.answer import AnswerError, UnsafeAnswer, confine, parse_answer
from scaffolder.llm.client import ChatClient, Endpoint, EndpointError
from scaffolder.plan import build_plan
from scaffolder.provenance import GeneratorRecord
from scaffolder.spec import SPEC_FILE, ProjectSpec, spec_from_text
from scaffolder.validate import Diagnostic, Project, consistency, safety

if TYPE_CHECKING:
    from scaffolder.plan import Plan

# S606 (torch.load without weights_only) is a missing keyword that a fix adds; every other S code is a call out
# of the project's lane, whose purpose no fix can judge: the file is never written, run or sent for repair.
FIXABLE_SAFETY = ("S606",)


@dataclass
class LLMGenerator:
    endpoint: Endpoint
    instructions: str = ""
    name = "llm"

    def generate(
        self, plan: Plan, project_dir: Path, previous: dict[str, str] | None = None
    ) -> tuple[dict[str, str], GeneratorRecord]:
        reference = validated(render.render(plan, project_dir), plan.spec)
        record = GeneratorRecord(
            "llm", self.endpoint.model, self.endpoint.host, prompts.template_hash(), instructions=self.instructions
        )
        pinned = {path: reference[path] for path in prompts.PINNED if path in reference}
        base = {**(_with_spec_change(previous, reference, project_dir, record) if previous else reference), **pinned}
        root = project_dir if project_dir.is_dir() else None  # regeneration: links in the project count
        request = prompts.Request(plan, reference, base, self.instructions)
        files = _Session(self.endpoint, plan.spec, reference, record, root).run(request)
        return files, record


@dataclass
class _Session:
    endpoint: Endpoint
    spec: ProjectSpec
    reference: dict[str, str]  # the Jinja render: what every fallback falls back to
    record: GeneratorRecord
    root: Path | None  # the project on disk, when regenerating

    def run(self, request: prompts.Request) -> dict[str, str]:
        client = ChatClient(self.endpoint)
        messages = prompts.first_messages(request)
        current, answered = dict(request.base), False
        for round_number in range(1, self.endpoint.rounds + 2):
            try:
                answer = client.complete(messages)
            except EndpointError as exc:
                return self._whole(f"the endpoint failed: {exc}")
            self.record.rounds += 1
            messages.append({"role": "assistant", "content": answer.text})
            try:
                written = self._read(answer.text, answer.finish_reason)
            except UnsafeAnswer as exc:
                return self._whole(f"the answer was rejected whole: {exc}")
            except AnswerError as exc:
                self.record.notes.append(f"round {round_number}: {exc}")
                messages.append(prompts.format_message(str(exc), answer.finish_reason == "length"))
                continue
            answered = True
            candidate = {**current, **written}
            unsafe = self._unsafe(written)
            if unsafe:
                return self._settle(candidate, set(unsafe))  # a misled model is not asked again
            fixed = self._fix(candidate)
            current = fixed.files
            if not fixed.errors:
                return self._accept(current, set())
            if round_number <= self.endpoint.rounds:
                messages.append(prompts.repair_message(fixed.errors))
        if not answered:
            return self._whole(f"no usable answer in {self.record.rounds} round(s)")
        return self._settle(current, set())

    def _read(self, text: str, finish_reason: str | None) -> dict[str, str]:
        written = parse_answer(text, finish_reason)
        confine(written, self.root, self.endpoint.api_key)
        for path in [p for p in written if p in prompts.PINNED]:
            del written[path]
            self.record.notes.append(f"{path} is scaffolder's: the model's version was dropped")
        return written

    def _unsafe(self, written: dict[str, str]) -> dict[str, Diagnostic]:
        """The model's files with a safety finding, each with its first one. The screen reads one module at a
        time (and config.yaml for trust_remote_code), so the model's files alone are enough to check."""
        project = Project.from_files(written)
        found: dict[str, Diagnostic] = {}
        for d in sorted(safety.check(project) + consistency.check(project, self.spec)):
            if d.code.startswith("S") and d.code not in FIXABLE_SAFETY:
                found.setdefault(d.file, d)
        for path, d in sorted(found.items()):
            self.record.notes.append(f"{path}: safety finding {d.code} {d.message}: never written or run")
        return found

    def _settle(self, files: dict[str, str], failing: set[str]) -> dict[str, str]:
        """Replace failing files by the Jinja render's, widening the set while others then fail; else all."""
        files = self._revert(files, failing)
        for _ in range(len(files) + 1):
            fixed = self._fix(files)
            still = {d.file for d in fixed.errors}
            if not still:
                return self._accept(fixed.files, failing)
            if still <= failing:
                break  # the Jinja files themselves fail against the model's: only the whole render holds
            self.record.notes.append(f"{len(fixed.errors)} check error(s) left, first {fixed.errors[0]}")
            failing |= still
            files = self._revert(files, still)
        return self._whole(f"the model's files fail {len(fixed.errors)} check(s) even beside the Jinja render's")

    def _fix(self, files: dict[str, str]) -> FixResult:
        fixed = fix_files(files, self.spec)
        self.record.fixes += [note for note in fixed.applied if note not in self.record.fixes]
        return fixed

    def _revert(self, files: dict[str, str], paths: set[str]) -> dict[str, str]:
        out = {path: text for path, text in files.items() if path not in paths}
        out.update({path: self.reference[path] for path in paths if path in self.reference})
        return out

    def _accept(self, files: dict[str, str], failing: set[str]) -> dict[str, str]:
        self.record.model_files = sorted(p for p, text in files.items() if self.reference.get(p) != text)
        if failing and not self.record.model_files:
            return self._whole("every file the model wrote fell back")
        if failing:
            self.record.fallback, self.record.fallback_files = "files", sorted(failing)
        return files

    def _whole(self, reason: str) -> dict[str, str]:
        self.record.fallback, self.record.fallback_files = "whole", []
        self.record.model_files, self.record.fixes = [], []
        self.record.notes.append(reason)
        return dict(self.reference)


def _with_spec_change(
    previous: dict[str, str], reference: dict[str, str], project_dir: Path, record: GeneratorRecord
) -> dict[str, str]:
    """The last generation with the spec change brought in, as the model's starting point on regeneration.

    Per file, git's three-way merge applies the change between the Jinja renders of the old and the new spec
    to the last generation (which may hold earlier model-written changes); where they overlap, the new render's
    file is taken. Files only the last generation has (the model added them) stay.
    """
    try:
        old_spec = spec_from_text(previous[SPEC_FILE], project_dir)
        old = validated(render.render(build_plan(old_spec), project_dir), old_spec)
    except (ScaffoldError, KeyError) as exc:
        record.notes.append(f"the last generation's spec cannot be rendered ({exc}); starting from the new render")
        return dict(reference)
    base = {path: text for path, text in previous.items() if path not in old or path in reference}
    for path, new in reference.items():
        if path not in previous or path not in old:
            base[path] = new
        else:
            base[path] = vcs.merge_text(previous[path], old[path], new) or new
    return base
