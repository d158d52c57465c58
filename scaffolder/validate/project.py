"""A generated project as the checks see it: parsed modules, their top-level symbols, and config.yaml.

Built once from `{path: text}` (nothing is read from disk), so the same checks run on a render in memory, on
an LLM answer, and on a project on disk.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


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
    tree: cst.Module | None  # None when it does not parse
    syntax_error: str | None = None
    line_of_error: int = 1

    @cached_property
    def wrapper(self) -> MetadataWrapper:
        assert self.tree is not None
        return MetadataWrapper(self.tree, unsafe_skip_copy=True)

    @cached_property
    def positions(self) -> Any:
        return self.wrapper.resolve(PositionProvider)

    def line(self, node: cst.CSTNode) -> int:
        try:
            return int(self.positions[node].start.line)
        except KeyError:
            return 1

    @cached_property
    def imports(self) -> list[ImportInfo]:
        return imports_of(self)

    def nodes(self, kind: type[cst.CSTNode]) -> list[Any]:
        """Every node of one concrete kind, in source order."""
        return self._nodes.get(kind, [])

    @cached_property
    def _nodes(self) -> dict[type[cst.CSTNode], list[Any]]:
        """All nodes bucketed by type, in one walk: the checks ask for a dozen kinds per module."""
        buckets: dict[type[cst.CSTNode], list[Any]] = {}
        if self.tree is not None:
            for node in _all_nodes(self.tree):
                buckets.setdefault(type(node), []).append(node)
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
    try:
        return Module(path, module_name(path), text, cst.parse_module(text))
    except cst.ParserSyntaxError as exc:
        return Module(path, module_name(path), text, None, exc.message, exc.raw_line)


def params_of(node: cst.FunctionDef, skip_first: bool = False) -> Params:
    p = node.params
    positional = [param.name.value for param in (*p.posonly_params, *p.params)]
    required = [param.name.value for param in (*p.posonly_params, *p.params) if param.default is None]
    if skip_first and positional:
        required = [name for name in required if name != positional[0]]
        positional = positional[1:]
    keyword_only = [param.name.value for param in p.kwonly_params]
    required += [param.name.value for param in p.kwonly_params if param.default is None]
    return Params(
        positional=tuple(positional),
        required=tuple(required),
        keyword_only=tuple(keyword_only),
        var_positional=isinstance(p.star_arg, cst.Param),
        var_keyword=p.star_kwarg is not None,
    )


def _class_params(node: cst.ClassDef) -> Params | None:
    """Parameters of the class's own __init__; None when it inherits one (we cannot see it)."""
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
            return params_of(statement, skip_first=True)
    return None


def _bindings(statement: cst.CSTNode) -> list[tuple[str, Params | None, bool]]:
    """(name, parameters, imported) for each top-level name a statement binds."""
    if isinstance(statement, cst.FunctionDef):
        return [(statement.name.value, params_of(statement), False)]
    if isinstance(statement, cst.ClassDef):
        return [(statement.name.value, _class_params(statement), False)]
    if isinstance(statement, (cst.If, cst.Try)):  # definitions under `if TYPE_CHECKING:` or try/except ImportError
        return [binding for inner in statement.body.body for binding in _bindings(inner)]
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    found: list[tuple[str, Params | None, bool]] = []
    for small in statement.body:
        if isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
            found += [(name, None, False) for target in targets for name in _target_names(target)]
        elif isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
            for alias in small.names:
                bound = alias.asname.name if alias.asname else alias.name
                name = dotted(bound) if isinstance(bound, (cst.Name, cst.Attribute)) else None
                if name:
                    found.append((name.split(".")[0], None, True))  # `import a.b` binds `a`
    return found


def _target_names(target: cst.BaseExpression) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _target_names(element.value)]
    return []


def dotted(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


@dataclass(frozen=True)
class ImportInfo:
    """One name an import statement binds: `from module import name as local` or `import module as local`."""

    local: str
    module: str  # absolute dotted module
    name: str | None  # None for `import module`
    node: cst.CSTNode  # the Import/ImportFrom statement
    alias: cst.ImportAlias


def imports_of(module: Module) -> list[ImportInfo]:
    found: list[ImportInfo] = []
    if module.tree is None:
        return found
    for node in [*module.nodes(cst.Import), *module.nodes(cst.ImportFrom)]:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted(alias.name) or ""
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
                found.append(
                    ImportInfo(local or full.split(".")[0], full if local else full.split(".")[0], None, node, alias)
                )
        elif isinstance(node, cst.ImportFrom) and not isinstance(node.names, cst.ImportStar):
            source = _absolute(module, node)
            for alias in node.names:
                name = dotted(alias.name) or ""
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
                found.append(ImportInfo(local, source, name, node, alias))
    return found


def _absolute(module: Module, node: cst.ImportFrom) -> str:
    """The absolute module an ImportFrom names, resolving `from . import x` against the importing module."""
    base = dotted(node.module) if node.module else ""
    dots = len(node.relative)
    if not dots:
        return base or ""
    package = module.name.split(".")
    if not module.path.endswith("__init__.py"):
        package = package[:-1]
    package = package[: len(package) - (dots - 1)] if dots > 1 else package
    return ".".join([*package, base] if base else package)


def _all_nodes(tree: cst.CSTNode) -> list[cst.CSTNode]:
    """Every node of a tree; the expressions and statements of each kind in source order (whitespace and
    punctuation nodes may come in another).

    Read straight from the nodes' dataclass fields: libcst's visitor walks the same nodes three times slower,
    and every check of every file waits for this walk."""
    collected: list[cst.CSTNode] = []
    pending: list[cst.CSTNode] = [tree]
    while pending:
        node = pending.pop()
        collected.append(node)
        children: list[cst.CSTNode] = []
        for name in _fields_in_source_order(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                children.append(value)
            elif isinstance(value, (tuple, list)):
                children += [item for item in value if isinstance(item, cst.CSTNode)]
        pending += reversed(children)
    return collected


_BLOCKS = ("body", "handlers", "orelse", "finalbody")  # after the header, in this order


@functools.cache
def _fields_in_source_order(kind: type[cst.CSTNode]) -> tuple[str, ...]:
    """A node type's fields in the order its parts appear in source. Declaration order is that order except
    where a node holds an indented block (decorators come first, blocks last), in `body if test else orelse`
    and in a `keyword=value` argument."""
    names = [f.name for f in dataclasses.fields(kind)]
    if "body" in names and kind not in (cst.IfExp, cst.Lambda):
        header = [name for name in names if name not in _BLOCKS and name != "decorators"]
        names = [name for name in ("decorators", *header, *_BLOCKS) if name in names]
    elif kind is cst.IfExp:
        names = ["body", "test", "orelse", *(name for name in names if name not in ("body", "test", "orelse"))]
    elif kind is cst.Arg:
        names = ["keyword", *(name for name in names if name != "keyword")]
    return tuple(names)
