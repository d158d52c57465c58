"""Generate: render a plan through the Jinja templates into `{path: text}`, in memory.

`templates/common/` holds what every task shares, `templates/<task>/` what one task needs (a file there
replaces the common one of the same name). Jinja stays in value slots and whole-line blocks, so every render
is Python that parses; the checks that follow every render (generator.validated) prove it before anything is
written.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

from scaffolder import __version__
from scaffolder.plan import Plan
from scaffolder.spec import SPEC_FILE, is_local_model, portable_path, to_toml
from scaffolder.tasks import TRAINING_CONTROLS, weighs_classes

GENERATOR = "jinja"


def templates_dir() -> Path:
    """Inside the installed wheel the templates sit in the package; in a source checkout, next to it."""
    packaged = Path(__file__).resolve().parent / "templates"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "templates"


def render(plan: Plan, project_dir: Path) -> dict[str, str]:
    """Every file of the project, keyed by its path relative to the project."""
    import jinja2

    root = templates_dir()
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters.update(py=_py_literal, py_str=json.dumps, yaml=yaml_value, md=markdown_text)
    context = _context(plan, project_dir)
    files = {SPEC_FILE: to_toml(plan.spec, project_dir)}
    for relative, template in sorted(_template_files(root, plan.task.template_dir).items()):
        text = env.get_template(template).render(context)
        if text.strip() or relative.endswith("__init__.py"):  # a template that renders empty is not for this plan
            files[relative] = text
    return files


def _bytecode_cache() -> Any:
    """Compiled templates kept between runs in a per-user temporary folder (Jinja's default; each entry is
    checked against its template's checksum): compiling them is a tenth of `scaffold new`'s time."""
    import jinja2

    class Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            # A full or read-only disk costs the next run the compile, nothing more.
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        return Cache()
    except (OSError, RuntimeError):  # no safe per-user folder (Jinja refuses one another user owns)
        return None


def _template_files(root: Path, task_dir: str) -> dict[str, str]:
    """Output path -> template name; the task's folder overrides `common/`."""
    found: dict[str, str] = {}
    for folder in ("common", task_dir):
        for path in sorted((root / folder).rglob("*.j2")):
            relative = path.relative_to(root / folder).as_posix().removesuffix(".j2")
            found[relative] = path.relative_to(root).as_posix()
    return found


def _context(plan: Plan, project_dir: Path) -> dict[str, Any]:
    spec = plan.spec
    ia3 = plan.family.ia3_targets
    return {
        "version": __version__,
        "project_name": project_dir.name,
        "plan": plan,
        "report": plan.data_report,  # DATA.md
        "spec": spec,
        "task": plan.task,
        "family": plan.family,
        "peft": plan.peft,
        "train_file": portable_path(spec.train_data, project_dir),
        "eval_file": portable_path(spec.eval_data, project_dir) if spec.eval_data else None,
        "model_is_local": is_local_model(spec.model or ""),
        "lora_target_modules": list(plan.family.lora_targets) if plan.family.lora_targets else None,
        "ia3_target_modules": list(ia3[0]) if ia3 else None,
        "ia3_feedforward_modules": list(ia3[1]) if ia3 else None,
        # config.yaml's training controls: scaffold.toml's `training` table over their defaults.
        "training": {name: spec.training.get(name, control.default) for name, control in TRAINING_CONTROLS.items()},
        "training_controls": TRAINING_CONTROLS,
        # Its training loss takes class_weights and label_smoothing (model.loss_function).
        "classification_loss": weighs_classes(spec.task, spec.problem_type),
        # QLoRA: a frozen 4-bit base under low-rank adapters.
        "qlora": plan.task.quantizable and plan.peft.name in ("lora", "adalora"),
    }


def _py_literal(value: Any) -> str:
    """A Python literal for a plan value, double-quoted as formatters write it (str, number, list, dict, None)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py_literal(k)}: {_py_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def markdown_text(value: Any) -> str:
    """Data shown as is in markdown (DATA.md): example texts and label names may hold `|`, `*` or `<`."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(value))


_PLAIN_YAML = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_KEYWORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none", "~"}


def yaml_value(value: Any) -> str:
    """A YAML flow value that reads back as exactly `value` (quoted where YAML would reinterpret it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        # PyYAML reads 2e-05 as a string: a float needs a dot in its mantissa.
        if "e" in text and "." not in text.split("e")[0]:
            text = text.replace("e", ".0e")
        return text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    text = str(value)
    if _PLAIN_YAML.match(text) and text.lower() not in _YAML_KEYWORDS:
        return text
    return json.dumps(text, ensure_ascii=False)
