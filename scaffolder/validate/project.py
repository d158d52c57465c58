"""A generated project as the checks see it: parsed modules, their top-level symbols, and config.yaml.

Built once from `{path: text}` (nothing is read from disk), so the same checks run on a render in memory, on
an LLM answer, and on a project on disk. The checks read CPython's own syntax trees (`ast`): they only look, and
`ast` parses and walks a project several times faster than libcst. The fixes, which rewrite code and must keep
its comments and layout, parse with libcst themselves.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

Node = TypeVar("Node", bound=ast.AST)
Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Params:
    """What a callable accepts: enough to check a call against it."""

    positional: tuple[str, ...]  # may be passed by position (self/cls removed)
    required: tuple[str, ...]  # no default
    keyword_only: tuple[str, ...]
    var_positional: bool
    var_keyword: bool

    @property
    def names(self) -> set[str]:
        return set(self.positional) | set(self.keyword_only)


@dataclass
class Module:
    path: str  # relative, e.g. "tests/smoke.py"
    name: str  # dotted, e.g. "tests.smoke"
    source: str
    tree: ast.Module | None  # None when it does not parse or compile
    syntax_error: str | None = None
    line_of_error: int = 1

    @staticmethod
    def line(node: ast.AST) -> int:
        return int(getattr(node, "lineno", 1))

    @cached_property
    def imports(self) -> list[ImportInfo]:
        return imports_of(self)

    def nodes(self, kind: type[Node]) -> list[Node]:
        """Every node of one concrete kind, in source order."""
        return self._nodes.get(kind, [])  # type: ignore[return-value]

    def functions(self) -> list[Function]:
        """Every def, async or not, in source order."""
        both: list[Function] = [*self.nodes(ast.FunctionDef), *self.nodes(ast.AsyncFunctionDef)]
        return sorted(both, key=lambda node: (node.lineno, node.col_offset))

    @cached_property
    def _nodes(self) -> dict[type[ast.AST], list[ast.AST]]:
        """All nodes bucketed by type, in one walk: the checks ask for a dozen kinds per module."""
        buckets: dict[type[ast.AST], list[ast.AST]] = {}
        if self.tree is not None:
            for node in ast.walk(self.tree):
                buckets.setdefault(type(node), []).append(node)
        for nodes in buckets.values():  # ast.walk goes breadth first
            nodes.sort(key=lambda node: (getattr(node, "lineno", 0), getattr(node, "col_offset", 0)))
        return buckets

    @cached_property
    def definitions(self) -> dict[str, Params | None]:
        """Top-level names (imports included): functions and classes map to their parameters, others to None."""
        return {name: params for name, params, _ in self._bindings}

    @cached_property
    def own_definitions(self) -> set[str]:
        """Top-level names this module defines itself (def, class, assignment), not ones it imports."""
        return {name for name, _, imported in self._bindings if not imported}

    @cached_property
    def _bindings(self) -> list[tuple[str, Params | None, bool]]:
        if self.tree is None:
            return []
        return [binding for statement in self.tree.body for binding in _bindings(statement)]


@dataclass
class Project:
    files: dict[str, str]
    modules: dict[str, Module] = field(default_factory=dict)  # by dotted name

    @classmethod
    def from_files(cls, files: dict[str, str]) -> Project:
        project = cls(files)
        for path, text in files.items():
            if path.endswith(".py"):
                module = parse_file(path, text)
                project.modules[module.name] = module
        return project

    def parsed(self) -> list[Module]:
        return [m for m in self.modules.values() if m.tree is not None]

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """config.yaml as a dict; None when absent or unreadable (the contract check reports it)."""
        import yaml

        text = self.files.get("config.yaml")
        if text is None:
            return None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        return loaded if isinstance(loaded, dict) else None


def module_name(path: str) -> str:
    name = path.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def parse_file(path: str, text: str) -> Module:
    """The module with its tree, or without one when Python would refuse it: it does not parse, or it parses but
    does not compile (`return` outside a function, `break` outside a loop, a duplicate argument), which
    compiling the tree finds in about a millisecond a file."""
    try:
        tree = ast.parse(text, filename=path)
        compile(tree, path, "exec", dont_inherit=True)
        return Module(path, module_name(path), text, tree)
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte in the source
        line = exc.lineno if isinstance(exc, SyntaxError) and exc.lineno else 1
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        return Module(path, module_name(path), text, None, message, line)


def params_of(node: Function, skip_first: bool = False) -> Params:
    args = node.args
    positional = [arg.arg for arg in (*args.posonlyargs, *args.args)]
    required = positional[: len(positional) - len(args.defaults)]  # defaults belong to the last ones
    if skip_first and positional:
        required = [name for name in required if name != positional[0]]
        positional = positional[1:]
    keyword_only = [arg.arg for arg in args.kwonlyargs]
    required += [arg.arg for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True) if default is None]
    return Params(
        positional=tuple(positional),
        required=tuple(required),
        keyword_only=tuple(keyword_only),
        var_positional=args.vararg is not None,
        var_keyword=args.kwarg is not None,
    )


def _class_params(node: ast.ClassDef) -> Params | None:
    """Parameters of the class's own __init__; None when it inherits one (we cannot see it)."""
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.name == "__init__":
            return params_of(statement, skip_first=True)
    return None


def _bindings(statement: ast.stmt) -> list[tuple[str, Params | None, bool]]:
    """(name, parameters, imported) for each top-level name a statement binds."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [(statement.name, params_of(statement), False)]
    if isinstance(statement, ast.ClassDef):
        return [(statement.name, _class_params(statement), False)]
    if isinstance(statement, (ast.If, ast.Try)):  # definitions under `if TYPE_CHECKING:` or try/except ImportError
        return [binding for inner in statement.body for binding in _bindings(inner)]
    if isinstance(statement, ast.Assign):
        return [(name, None, False) for target in statement.targets for name in _target_names(target)]
    if isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        return [(name, None, False) for name in _target_names(statement.target)]
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        names = [alias.asname or alias.name for alias in statement.names if alias.name != "*"]
        return [(name.split(".")[0], None, True) for name in names]  # `import a.b` binds `a`
    return []


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    return []


def dotted(node: ast.AST | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def first_argument(call: ast.Call) -> ast.expr | None:
    """The first argument a call passes, by position or else by keyword."""
    if call.args:
        return call.args[0]
    return call.keywords[0].value if call.keywords else None


def string(node: ast.AST | None) -> str | None:
    """The value of a string literal, else None."""
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


@dataclass(frozen=True)
class ImportInfo:
    """One name an import statement binds: `from module import name as local` or `import module as local`."""

    local: str
    module: str  # absolute dotted module
    name: str | None  # None for `import module`
    asname: str | None  # `as <asname>`
    node: ast.Import | ast.ImportFrom


def imports_of(module: Module) -> list[ImportInfo]:
    found: list[ImportInfo] = []
    for node in module.nodes(ast.Import):
        for alias in node.names:
            head = alias.name.split(".")[0]
            module_name = alias.name if alias.asname else head
            found.append(ImportInfo(alias.asname or head, module_name, None, alias.asname, node))
    for node_from in module.nodes(ast.ImportFrom):
        source = _absolute(module, node_from)
        found += [
            ImportInfo(alias.asname or alias.name, source, alias.name, alias.asname, node_from)
            for alias in node_from.names
            if alias.name != "*"
        ]
    return found


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names, resolving `from . import x` against the importing module."""
    base = node.module or ""
    dots = node.level
    if not dots:
        return base
    package = module.name.split(".")
    if not module.path.endswith("__init__.py"):
        package = package[:-1]
    package = package[: len(package) - (dots - 1)] if dots > 1 else package
    return ".".join([*package, base] if base else package)
