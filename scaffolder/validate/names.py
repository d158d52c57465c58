"""Cross-file names: imports between project modules resolve, attributes of project modules exist, and
every name a module uses is defined somewhere in it."""

from __future__ import annotations

import ast
import builtins
import difflib
import symtable
from collections.abc import Iterator, Sequence

from scaffolder.validate.diagnostics import Diagnostic
from scaffolder.validate.project import Module, Project

BUILTINS = set(dir(builtins))
MODULE_DUNDERS = {"__file__", "__name__", "__doc__", "__spec__", "__loader__", "__package__", "__path__"}


def check(project: Project) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for module in project.parsed():
        found += _imports(project, module) + _attributes(project, module) + _undefined(project, module)
    return found


def _imports(project: Project, module: Module) -> list[Diagnostic]:
    found = []
    for imp in module.imports:
        target = project.modules.get(imp.module)
        if target is None or target.tree is None or imp.name is None:
            continue
        if imp.name in target.definitions or f"{imp.module}.{imp.name}" in project.modules:
            continue
        close = difflib.get_close_matches(imp.name, list(target.definitions), n=2, cutoff=0.75)
        hint = (
            f"{target.path} defines `{close[0]}`: import that (scaffold check --fix repoints it)"
            if len(close) == 1
            else f"define `{imp.name}` in {target.path}, or import it from the module that defines it"
        )
        message = f"`{imp.name}` is imported from {target.path}, which does not define it"
        found.append(Diagnostic(module.path, module.line(imp.node), "N101", message, hint))
    return found


def project_module_aliases(project: Project, module: Module) -> dict[str, Module]:
    """Local names bound to project modules: `import train`, `from tests import smoke`."""
    aliases = {}
    for imp in module.imports:
        full = imp.module if imp.name is None else f"{imp.module}.{imp.name}"
        if full in project.modules and project.modules[full].tree is not None:
            aliases[imp.local] = project.modules[full]
    return aliases


def _attributes(project: Project, module: Module) -> list[Diagnostic]:
    aliases = project_module_aliases(project, module)
    found = []
    for node in module.nodes(ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            target = aliases[node.value.id]
            name = node.attr
            if name not in target.definitions and f"{target.name}.{name}" not in project.modules:
                message = f"`{node.value.id}.{name}`: {target.path} does not define `{name}`"
                hint = f"define `{name}` in {target.path} or use a name it defines"
                found.append(Diagnostic(module.path, module.line(node), "N102", message, hint))
    return found


def undefined_names(module: Module) -> dict[str, int]:
    """Names the module reads but never binds (nor are builtins), with the line of their first such read.

    Python's own symbol tables (the compiler's scoping rules, in C) say which names each scope reads from the
    module's globals; a walk of the syntax tree, scope by scope alongside them, finds those reads' lines.
    libcst's scope analysis gives the same answer 7 times slower (the 169 golden modules), and this runs on every
    file of every generation. Annotations count as reads even where `from __future__ import annotations` leaves
    them unevaluated: a type checker still resolves them."""
    if module.tree is None:  # E001 reports it
        return {}
    table = symtable.symtable(module.source, module.path, "exec")  # it compiled: no SyntaxError
    bound = {s.get_name() for s in _symbols(table) if s.is_assigned() or s.is_imported()}
    bound |= {name for scope in _scopes(table) for name in _declared_global_and_assigned(scope)}
    first: dict[str, int] = {}
    for name, line in _global_reads(module.tree.body, table):
        if name not in bound and name not in BUILTINS and name not in MODULE_DUNDERS:
            first[name] = min(first.get(name, line), line)
    return first


def _scopes(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _scopes(child)


def _symbols(table: symtable.SymbolTable) -> list[symtable.Symbol]:
    """table.get_symbols(), without its scan of every child scope for each symbol (quadratic in a module of many
    functions, and only needed for Symbol.get_namespaces, which this check does not use)."""
    flags = getattr(getattr(table, "_table", None), "symbols", None)
    if not isinstance(flags, dict):  # another Python's internals: the public, slower way
        return table.get_symbols()
    module_scope = table.get_type() == "module"
    return [symtable.Symbol(name, value, module_scope=module_scope) for name, value in flags.items()]


def _declared_global_and_assigned(scope: symtable.SymbolTable) -> set[str]:
    """`global x; x = ...` in a function binds a module-level name."""
    return {s.get_name() for s in _symbols(scope) if s.is_declared_global() and s.is_assigned()}


# Syntax that opens a scope of its own, and the name symtable gives that scope.
SCOPE_NAMES = {ast.Lambda: "lambda", ast.ListComp: "listcomp", ast.SetComp: "setcomp", ast.DictComp: "dictcomp",
               ast.GeneratorExp: "genexpr"}  # fmt: skip


def _global_reads(nodes: Sequence[ast.AST], table: symtable.SymbolTable) -> Iterator[tuple[str, int]]:
    """(name, line) of each read in `nodes`, which make up the scope `table`, that resolves to the module's
    globals; and of such reads in the scopes nested in them."""
    module_level = table.get_type() == "module"
    reads = {s.get_name() for s in _symbols(table) if s.is_referenced() and (s.is_global() or module_level)}
    children: dict[tuple[str, int], list[symtable.SymbolTable]] = {}
    for child in table.get_children():
        children.setdefault((child.get_name(), child.get_lineno()), []).append(child)
    pending = list(reversed(nodes))
    while pending:
        current = pending.pop()
        if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Load) and current.id in reads:
            yield current.id, current.lineno
        outer, inner = _split_scope(current)
        if inner is None:
            pending += reversed(list(ast.iter_child_nodes(current)))
            continue
        pending += reversed(outer)
        assert isinstance(current, (ast.stmt, ast.expr))  # the syntax that opens scopes
        name = getattr(current, "name", None) or SCOPE_NAMES[type(current)]
        matches = children.get((name, current.lineno))
        if matches:  # in source order, as symtable made them
            yield from _global_reads(inner, matches.pop(0))
        for annotation in _annotations(current):
            yield from ((n.id, n.lineno) for n in ast.walk(annotation) if isinstance(n, ast.Name))


def _split_scope(node: ast.AST) -> tuple[list[ast.AST], list[ast.AST] | None]:
    """For syntax that opens a scope: (what the enclosing scope evaluates, what the new scope holds); else
    ([], None). Annotations are left to _annotations."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        outer = [*getattr(node, "decorator_list", []), *args.defaults, *(d for d in args.kw_defaults if d)]
        body: list[ast.AST] = [*node.body] if isinstance(node.body, list) else [node.body]
        return outer, body
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords], [*node.body]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        first, *rest = node.generators
        results = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        inner: list[ast.AST] = [first.target, *first.ifs, *results]
        for generator in rest:
            inner += [generator.target, generator.iter, *generator.ifs]
        return [first.iter], inner
    return [], None


def _annotations(node: ast.AST) -> list[ast.AST]:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return []
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, *(a for a in (args.vararg, args.kwarg) if a)]
    return [a for a in (*(arg.annotation for arg in every), node.returns) if a is not None]


def defining_modules(project: Project, name: str, exclude: Module) -> list[Module]:
    return [m for m in project.parsed() if m is not exclude and name in m.own_definitions]


def _undefined(project: Project, module: Module) -> list[Diagnostic]:
    found = []
    for name, line in sorted(undefined_names(module).items()):
        owners = defining_modules(project, name, module)
        hint = (
            f"import it: `from {owners[0].name} import {name}` (scaffold check --fix adds it)"
            if len(owners) == 1
            else f"define `{name}` or import it"
        )
        found.append(Diagnostic(module.path, line, "N103", f"`{name}` is used but never defined", hint))
    return found
