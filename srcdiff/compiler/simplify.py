"""Simplify: remove the copies the reverse pass leaves behind.

Adjoint rules such as ``d(a + b)/da = g`` produce copies (``dx3 = dt1``).
This pass, run on the generated function, deletes self-assignments and
propagates copies inside one straight-line block when that is safe:

* the copy's source was defined just before, used nowhere else, and is a
  compiler temporary: the definition is renamed to the copy's target (so the
  user's name survives: ``dx3 = dt2 * 2 * t1``);
* otherwise, when the copy's target is only read later in the same block and
  nothing reassigns the source meanwhile, its reads use the source directly.

Nothing crosses a loop or branch boundary, so loop-carried adjoints are never
touched.
"""

from __future__ import annotations

import ast
import re
from collections import Counter

_TEMP = re.compile(r"^d_?t\d+(_\d+)?$")


def _count(node: ast.AST) -> Counter:
    c: Counter = Counter()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            c[n.id] += 1
    return c


def _names(node: ast.AST) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name)]


def _stores(node: ast.AST, name: str) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store):
            return True
        if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name) and n.target.id == name:
            return True
    return False


def _is_comment(s: ast.stmt) -> bool:
    return isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name) and \
        s.value.func.id == "__srcdiff_comment__"


class _Replace(ast.NodeTransformer):
    def __init__(self, name: str, value: ast.expr) -> None:
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name):
        return self.value if node.id == self.name else node


def _replace_name(tree: ast.expr, name: str, value: ast.expr) -> ast.expr:
    return _Replace(name, value).visit(tree)


def _is_copy(s: ast.stmt) -> tuple[str, str] | None:
    if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
            and isinstance(s.value, ast.Name):
        return s.targets[0].id, s.value.id
    return None


def simplify(fn: ast.FunctionDef, protect: set[str] = frozenset()) -> ast.FunctionDef:
    """Simplify ``fn`` in place; names in ``protect`` are never removed."""
    changed = True
    while changed:
        counts = _count(fn)
        changed = _block(fn.body, counts, protect)
    return fn


def _block(stmts: list[ast.stmt], counts: Counter, protect: set[str]) -> bool:
    changed = False
    for s in stmts:
        for field in ("body", "orelse"):
            inner = getattr(s, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                if _block(inner, counts, protect):
                    return True
    # a = 1.0; ...; a = f(a)  ->  a = f(1.0)   (comments in between are fine)
    for i, st in enumerate(stmts):
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name) and \
                isinstance(st.value, ast.Constant) and isinstance(st.value.value, (int, float)):
            a = st.targets[0].id
            j = i + 1
            while j < len(stmts) and _is_comment(stmts[j]):
                j += 1
            if j < len(stmts) and isinstance(stmts[j], ast.Assign) and len(stmts[j].targets) == 1 and \
                    isinstance(stmts[j].targets[0], ast.Name) and stmts[j].targets[0].id == a and \
                    _count(stmts[j].value)[a] == 1:
                for n in _names(stmts[j].value):
                    if n.id == a:
                        stmts[j].value = _replace_name(stmts[j].value, a, st.value)
                del stmts[i]
                return True
    i = 0
    while i < len(stmts):
        cp = _is_copy(stmts[i])
        if cp is None:
            i += 1
            continue
        a, b = cp
        if a == b:
            del stmts[i]
            return True
        # (1) rename the definition of temporary b to a
        if _TEMP.match(b) and counts[b] == 2 and a not in protect:
            for j in range(i - 1, -1, -1):
                s = stmts[j]
                if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) \
                        and s.targets[0].id == b:
                    between = stmts[j + 1:i]
                    if not any(a in _count(x) for x in between) and a not in _count(s.value):
                        s.targets[0].id = a
                        del stmts[i]
                        return True
                    break
                if b in _count(s):
                    break
        # (2) forward-substitute reads of a by b
        rest = stmts[i + 1:]
        uses_after = sum(_count(x)[a] for x in rest)
        if a not in protect and uses_after and uses_after == counts[a] - 1:
            end = max(k for k, x in enumerate(rest) if a in _count(x))
            span = rest[:end + 1]
            if not any(_stores(x, a) or _stores(x, b) for x in span) and \
                    not any(isinstance(x, (ast.For, ast.While, ast.If)) for x in span):
                for x in span:
                    for n in _names(x):
                        if n.id == a:
                            n.id = b
                del stmts[i]
                return True
        i += 1
    return changed
