"""scaffolder's modules import as a tree: no cycle, none held together by an import inside a function, and each
module imports first, before any other of scaffolder's is loaded (a cycle shows there as a partially initialized
module)."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import scaffolder

PACKAGE = Path(scaffolder.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, inside a function) for each import of a scaffolder module; `from package import submodule` is
    an import of the submodule. Imports under `if TYPE_CHECKING:` never run, so they are left out."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, in_function) for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in MODULES:
            submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
            names = submodules + ([node.module] if len(submodules) < len(node.names) else [])
            found.extend((name, in_function) for name in names)
        nested = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, nested)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    graph = {name: {dep for dep, _ in imports(path) if dep != name} for name, path in MODULES.items()}
    assert len(graph) > 40  # every module was found
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_no_scaffolder_module_is_imported_inside_a_function() -> None:
    lazy = [f"{name} -> {dep}" for name, path in MODULES.items() for dep, inside in imports(path) if inside]
    assert lazy == []


def test_each_module_imports_first() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(set(MODULES) - {'scaffolder.__main__'})!r}:\n"  # __main__ runs the CLI
        "    for loaded in [m for m in sys.modules if m == 'scaffolder' or m.startswith('scaffolder.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as error:\n"
        "        print(name, error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
