"""What the fixes share about libcst trees (the checks read `ast` trees; see scaffolder.validate.project)."""

from __future__ import annotations

import libcst as cst


def parse(source: str) -> cst.Module | None:
    """The module's libcst tree; None when libcst cannot parse it (the fix then leaves the file alone)."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None


def dotted(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None
