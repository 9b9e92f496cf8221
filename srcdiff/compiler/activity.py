"""Activity analysis: which values depend on a ``wrt`` argument (varied) and
reach the output (useful).  Only values that are both - active - get adjoint
code.  The analysis is flow-insensitive over names, so loop-carried values
are handled by iterating to a fixpoint."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from . import ir


def diff_operands(s: ir.Assign) -> list[str]:
    """Names read by ``s`` in differentiable positions."""
    op = s.op
    if op is None or s.counter:
        return []
    k = op.kind
    if k in ("copy",):
        return [op.operands[0].id]
    if k in ("tuple", "list", "dict"):
        return [a.id for a in op.args if isinstance(a, ast.Name)]
    if k == "rule":
        out: list[str] = []
        for p in op.rule.grads:
            e = op.bound.get(p)
            if e is None:
                continue
            for n in ast.walk(e):
                if isinstance(n, ast.Name) and n.id not in out:
                    out.append(n.id)
        return out
    if k in ("helper", "cast"):
        return [n.id for n in op.operands]
    if k == "unknown":
        return [n.id for n in op.operands]
    return []


@dataclass
class Activity:
    varied: set[str] = field(default_factory=set)
    useful: set[str] = field(default_factory=set)

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful


def analyze(fn: ir.Function, wrt: list[str], cut: set[str] | dict = frozenset()) -> Activity:
    """Active values of ``fn`` for the parameters ``wrt``.  Names in ``cut``
    pass no gradient (values the result provably does not depend on, see
    ``invariance``)."""
    local = set(fn.params)
    stmts = list(ir.walk(fn.body))
    for s in stmts:
        if isinstance(s, ir.Assign):
            local.add(s.target)
        elif isinstance(s, ir.Unpack):
            local.update(s.targets)
    act = Activity(varied=set(wrt))
    changed = True
    while changed:
        changed = False
        for s in stmts:
            if isinstance(s, ir.Assign):
                if s.target not in act.varied and s.target not in cut and \
                        any(n in act.varied and n in local for n in diff_operands(s)):
                    act.varied.add(s.target)
                    changed = True
            elif isinstance(s, ir.Unpack):
                if s.value in act.varied:
                    for t in s.targets:
                        if t not in act.varied:
                            act.varied.add(t)
                            changed = True
            elif isinstance(s, ir.Append):
                if s.lst not in act.varied and any(
                        isinstance(n, ast.Name) and n.id in act.varied for n in ast.walk(s.value)):
                    act.varied.add(s.lst)
                    changed = True
            elif isinstance(s, ir.SetItem):
                if s.target not in act.varied and isinstance(s.value, ast.Name) and s.value.id in act.varied:
                    act.varied.add(s.target)
                    changed = True
    if isinstance(fn.result, ast.Name):
        act.useful.add(fn.result.id)
    changed = True
    while changed:
        changed = False
        for s in stmts:
            if isinstance(s, ir.Assign):
                if s.target in act.useful:
                    for n in diff_operands(s):
                        if n in act.varied and n not in act.useful:
                            act.useful.add(n)
                            changed = True
            elif isinstance(s, ir.Unpack):
                if any(t in act.useful for t in s.targets) and s.value not in act.useful:
                    act.useful.add(s.value)
                    changed = True
            elif isinstance(s, ir.SetItem):
                if s.target in act.useful and isinstance(s.value, ast.Name) and s.value.id in act.varied and \
                        s.value.id not in act.useful:
                    act.useful.add(s.value.id)
                    changed = True
            elif isinstance(s, ir.Append):
                if s.lst in act.useful:
                    for n in ast.walk(s.value):
                        if isinstance(n, ast.Name) and n.id in act.varied and n.id not in act.useful:
                            act.useful.add(n.id)
                            changed = True
    return act
