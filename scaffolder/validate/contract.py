"""The generated-project contract (README.md, "The generated project"): files and entry points every generator
must provide.

The table is the contract; the LLM prompt states the same table, and this check holds any output to it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Params, Project, string


@dataclass(frozen=True)
class Entry:
    file: str
    name: str
    # Positional argument counts the contract calls it with (e.g. train.main() and train.main(overrides)).
    calls: tuple[int, ...]
    why: str


CONTRACT = (
    Entry("config.py", "load_config", (0, 1), "loads config.yaml and applies key=value overrides"),
    Entry("data.py", "build_datasets", (2,), "returns the train and eval datasets for (cfg, tokenizer)"),
    Entry("model.py", "load_tokenizer", (1,), "loads the tokenizer for cfg"),
    Entry("model.py", "build_model", (2,), "builds the (PEFT-wrapped) model for (cfg, tokenizer)"),
    Entry("model.py", "save_model", (3,), "saves (model, tokenizer, path)"),
    Entry("model.py", "load_trained", (1,), "reloads a saved model from a path"),
    Entry("train.py", "main", (0, 1), "trains; `python train.py key=value` and main(overrides)"),
    Entry("evaluation.py", "evaluate", (4,), "computes eval_ metrics"),
    Entry("predict.py", "main", (0, 1), "predicts from the command line"),
    Entry("tests/smoke.py", "run", (1,), "the offline smoke run into a work folder"),
)
SCRIPTS = ("train.py", "evaluation.py", "predict.py", "tests/smoke.py")  # runnable: need a __main__ guard
# Contract files under the names older scaffolder versions gave them: a project from then is told how to move on.
FORMER_NAMES = {"evaluation.py": "evaluate.py"}  # it shadowed the Hugging Face `evaluate` package
REQUIRED_FILES = ("config.yaml", "scaffold.toml", "pyproject.toml")  # README.md is prose: the user may move it
CONFIG_OBJECT = "cfg"  # the contract's name for the settings object; `cfg.<key>` must be a config.yaml key


def check(project: Project) -> list[Diagnostic]:
    found = [
        Diagnostic(path, 1, "C301", f"{path} is missing", f"add {path} (the project contract lists it)")
        for path in REQUIRED_FILES
        if path not in project.files
    ]
    found += [d for entry in CONTRACT if (d := _entry(project, entry)) is not None]
    found += _main_guards(project) + _metrics_written(project) + _config_keys(project)
    return found


def _entry(project: Project, entry: Entry) -> Diagnostic | None:
    module = next((m for m in project.modules.values() if m.path == entry.file), None)
    if module is None:
        former = FORMER_NAMES.get(entry.file)
        if former in project.files:
            fix = f"`scaffold regen` renames {former} to {entry.file} (it shadowed a package) and keeps your edits"
            return Diagnostic(entry.file, 1, "C301", f"{entry.file} is missing (it was {former})", fix)
        return Diagnostic(entry.file, 1, "C301", f"{entry.file} is missing", f"add it with `{entry.name}`: {entry.why}")
    if module.tree is None:
        return None  # the syntax check reports it
    if entry.name not in module.definitions:
        return Diagnostic(
            entry.file, 1, "C301", f"{entry.file} does not define `{entry.name}`", f"define `{entry.name}`: {entry.why}"
        )
    params = module.definitions[entry.name]
    if params is None:
        return None
    for count in entry.calls:
        if not _accepts(params, count):
            return Diagnostic(
                entry.file,
                1,
                "C302",
                f"`{entry.name}` cannot be called with {count} positional argument(s) as the contract does",
                f"make it `{entry.name}` that {entry.why}",
            )
    return None


def _accepts(params: Params, count: int) -> bool:
    """Whether a call with `count` positional arguments (and no keywords) fits these parameters."""
    if count > len(params.positional) and not params.var_positional:
        return False
    required_positional = [name for name in params.positional if name in params.required]
    return len(required_positional) <= count and not set(params.keyword_only) & set(params.required)


def _main_guards(project: Project) -> list[Diagnostic]:
    found = []
    for path in SCRIPTS:
        module = next((m for m in project.modules.values() if m.path == path), None)
        if (
            module is not None
            and module.tree is not None
            and '__name__ == "__main__"' not in module.source.replace("'", '"')
        ):
            found.append(
                Diagnostic(
                    path,
                    1,
                    "C301",
                    f'{path} has no `if __name__ == "__main__":` entry',
                    'end it with `if __name__ == "__main__": main()`',
                )
            )
    return found


def _metrics_written(project: Project) -> list[Diagnostic]:
    """Some non-test module names the file in a string literal ("metrics.json" or f"{out}/metrics.json")."""
    if any(module.tree is None for module in project.modules.values()):
        return []  # the module that does not parse may be the one that writes it: E001 says what to fix first
    for module in project.parsed():
        if module.path.startswith("tests/"):
            continue
        # Every string literal, the literal parts of f-strings among them.
        texts = [text for node in module.nodes(ast.Constant) if (text := string(node)) is not None]
        if any(text == "metrics.json" or text.endswith("/metrics.json") for text in texts):
            return []
    return [
        Diagnostic(
            "train.py", 1, "C303", "no module writes metrics.json",
            "write the final eval_ metrics and train_samples_per_second to <output_dir>/metrics.json",
        )
    ]  # fmt: skip


def _config_keys(project: Project) -> list[Diagnostic]:
    config = project.config
    if config is None:
        if "config.yaml" in project.files:
            return [Diagnostic("config.yaml", 1, "C305", "config.yaml is not a YAML mapping", "write key: value lines")]
        return []
    allowed = set(config) | _config_methods(project)
    found = []
    for module in project.parsed():
        for node in module.nodes(ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == CONFIG_OBJECT and node.attr not in allowed:
                found.append(_missing_key(module, node))
    return found


def _config_methods(project: Project) -> set[str]:
    """Names the settings class in config.py defines itself (cfg.to_dict() is a method, not a key)."""
    module = project.modules.get("config")
    if module is None:
        return set()
    return {
        statement.name
        for cls in module.nodes(ast.ClassDef)
        for statement in cls.body
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _missing_key(module: Module, node: ast.Attribute) -> Diagnostic:
    key = node.attr
    return Diagnostic(
        module.path,
        module.line(node),
        "C304",
        f"`cfg.{key}` is not a config.yaml key",
        f"add `{key}: <value>  # <what it does>` to config.yaml, or use an existing key",
    )
