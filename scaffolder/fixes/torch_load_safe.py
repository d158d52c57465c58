"""Add weights_only=True to torch.load calls that lack it, so loading a checkpoint cannot run pickled code."""

from __future__ import annotations

import libcst as cst

from scaffolder.fixes.nodes import dotted, parse
from scaffolder.spec import ProjectSpec
from scaffolder.validate import Diagnostic
from scaffolder.validate.project import parse_file
from scaffolder.validate.safety import qualified_names, qualify

DESCRIPTION = "Pass weights_only=True to torch.load (an explicit weights_only=False is left for a person to decide)."


def apply(
    files: dict[str, str], diagnostics: list[Diagnostic], spec: ProjectSpec | None
) -> tuple[dict[str, str], list[str]]:
    out, notes = dict(files), []
    for path in sorted({d.file for d in diagnostics if d.code == "S606"}):
        out[path], count = add_weights_only(files[path])
        notes += [f"{path}: torch.load now passes weights_only=True"] * count
    return out, notes


def add_weights_only(source: str) -> tuple[str, int]:
    module, tree = parse_file("x.py", source), parse(source)
    if module.tree is None or tree is None:
        return source, 0
    transformer = _WeightsOnly(qualified_names(module))
    return tree.visit(transformer).code, transformer.count


class _WeightsOnly(cst.CSTTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names, self.count = names, 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if qualify(dotted(updated.func), self.names) != "torch.load":
            return updated
        if any(arg.keyword is not None and arg.keyword.value == "weights_only" for arg in updated.args):
            return updated
        self.count += 1
        keyword = cst.Arg(
            keyword=cst.Name("weights_only"),
            value=cst.Name("True"),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        args = list(updated.args)
        if args:
            args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated.with_changes(args=[*args, keyword])
