"""Prompts: the messages sent to the model, rendered from `templates/prompts/*.j2`.

Built from the spec, the project contract (the same table the checks hold every generator to), the Jinja
reference render of the same spec, a short sample of the data and the user's instructions. The data and the
instructions are untrusted: truncated, stripped of control characters, and fenced in tags whose name carries a
hash of their content, so that the text cannot close its own fence; the system prompt says what they may and
may not ask for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scaffolder.render import templates_dir
from scaffolder.spec import SPEC_FILE
from scaffolder.tasks import TRAINING_CONTROLS
from scaffolder.validate import contract

if TYPE_CHECKING:
    import jinja2

    from scaffolder.plan import Plan
    from scaffolder.validate import Diagnostic

PROMPTS = "prompts"
# Files scaffolder owns in every project: the spec record, and the smoke test that proves the project trains
# (a model that could rewrite its own exam would pass it). The model is told so; what it writes there is dropped.
PINNED = (SPEC_FILE, "tests/smoke.py", "DATA.md")
# Kept out of the prompt: the data report quotes rows of the data (untrusted text, shown only fenced, as the
# sample is) and is nothing the model writes.
UNSHOWN = ("DATA.md",)
SAMPLE_LINES, SAMPLE_LINE_CHARS, SAMPLE_CHARS = 12, 400, 4000
INSTRUCTION_CHARS = 2000
MAX_DIAGNOSTICS = 40  # a repair prompt names at most this many problems; the rest follow once these are fixed


@dataclass(frozen=True)
class Request:
    """What the first prompt is built from."""

    plan: Plan
    reference: dict[str, str]  # the Jinja render of the spec, checked and fixed
    base: dict[str, str]  # what files the model leaves out keep: the reference, or the last generation on regen
    instructions: str


def template_hash() -> str:
    """The prompt templates' content hash: the commit trailers record which prompts wrote a project."""
    digest = hashlib.sha256()
    for path in sorted((templates_dir() / PROMPTS).glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()[:16]


def first_messages(request: Request) -> list[dict[str, str]]:
    spec = request.plan.spec
    system = _render(
        "system.j2",
        spec=spec,
        plan=request.plan,
        contract=contract.CONTRACT,
        required_files=contract.REQUIRED_FILES,
        scripts=contract.SCRIPTS,
        config_object=contract.CONFIG_OBJECT,
        pinned=PINNED,
        training_controls=TRAINING_CONTROLS,
    )
    changed_reference = {p: t for p, t in request.reference.items() if request.base.get(p) != t and p not in UNSHOWN}
    user = _render(
        "generate.j2",
        spec_toml=request.reference[SPEC_FILE],
        base={path: text for path, text in request.base.items() if path not in UNSHOWN},
        regenerating=request.base != request.reference,
        changed_reference=changed_reference,
        data_name=spec.train_data.name,
        sample=data_sample(spec.train_data),
        instructions=request.instructions.strip()[:INSTRUCTION_CHARS],
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_message(diagnostics: list[Diagnostic]) -> dict[str, str]:
    shown = [str(d) for d in diagnostics[:MAX_DIAGNOSTICS]]
    return {"role": "user", "content": _render("repair.j2", diagnostics=shown, more=len(diagnostics) - len(shown))}


def format_message(problem: str, cut_off: bool) -> dict[str, str]:
    return {"role": "user", "content": _render("format.j2", problem=problem, cut_off=cut_off)}


def data_sample(path: Path) -> str:
    """The first lines of the data file, each and all truncated: enough to show its layout."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = [handle.readline() for _ in range(SAMPLE_LINES)]
    except OSError:
        return ""
    shown = [line.rstrip("\r\n")[:SAMPLE_LINE_CHARS] for line in lines if line]
    return "\n".join(shown)[:SAMPLE_CHARS]


def untrusted(text: str, kind: str) -> str:
    """`text` fenced as data. The tag's name holds a hash of the text: the text cannot contain its closing tag."""
    clean = "".join(c for c in text if c in "\n\t" or c.isprintable())
    tag = f"untrusted-{kind}-{hashlib.sha256(clean.encode()).hexdigest()[:12]}"
    return f"<{tag}>\n{clean}\n</{tag}>"


def _render(name: str, **context: object) -> str:
    return _environment().get_template(name).render(context)


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir() / PROMPTS)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["untrusted"] = untrusted
    return env
