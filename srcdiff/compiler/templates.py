"""Rule templates as code: parse a template once, instantiate it with the
names of a statement's values, and tell whether the expression it gives
builds a new array (which an adjoint may then take over and add into)."""

from __future__ import annotations

import ast
import copy
from typing import Any

from ..rules import TABLE

_TEMPLATE_CACHE: dict[str, ast.expr] = {}


def parse_template(t: str) -> ast.expr:
    tree = _TEMPLATE_CACHE.get(t)
    if tree is None:
        tree = ast.parse(t, mode="eval").body
        _TEMPLATE_CACHE[t] = tree
    return copy.deepcopy(tree)


def instantiate(template: str, mapping: dict[str, ast.expr]) -> ast.expr:
    return _Subst(mapping).visit(parse_template(template))


def np_call(expr: ast.expr, np_name: str) -> str | None:
    """``"outer"`` for ``np.outer(...)`` (NumPy as generated code names it), else None."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and \
            isinstance(expr.func.value, ast.Name) and expr.func.value.id == np_name:
        return expr.func.attr
    return None


def is_fresh(expr: ast.expr, np_name: str) -> bool:
    """Does ``expr`` certainly build a new array whatever its arguments (safe to
    add into in place, even in a rule whose template may alias ``g``)?
    Arithmetic does, and a NumPy call whose rule's facts say so
    (``np.full(shape, g)``, ``np.outer``)."""
    if isinstance(expr, (ast.BinOp, ast.UnaryOp)):
        return True
    attr = np_call(expr, np_name)
    return attr is not None and TABLE.numpy_facts(attr).result == "fresh"


class _Subst(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.mapping:
            return copy.deepcopy(self.mapping[node.id])
        return node
