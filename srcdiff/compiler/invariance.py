"""Invariance: values the function's result does not change with.

A numerically stable softmax subtracts the row maximum before ``np.exp``::

    z = logits - np.max(logits, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))

``logp`` is the same whatever is subtracted, as long as it is one number per
row: the shift cancels.  So the gradient that flows through the maximum is
zero, and computing it (comparisons, tie counts, a selection, an extra
reduction) is wasted work that only adds rounding noise.  This pass proves
such cancellations and reports the values to cut, so that activity analysis
gives them no adjoint.

The proof follows one value ``s`` (the candidate) through the straight-line
top-level code, asking how each value changes when ``s`` changes by ``d`` (an
arbitrary array of ``s``'s shape, broadcast like ``s``):

* ``unchanged``;
* ``shift(c)``: the value changes by ``c * d`` (broadcast to its shape);
* ``scale(c)``: the value is multiplied by ``exp(c * d)``;
* anything else: unknown.

``x - s`` is ``shift(-1)``, ``np.exp`` turns ``shift(c)`` into ``scale(c)``,
``np.log`` turns it back, a sum along axes where ``d`` is constant keeps a
``scale``, and ``shift(c) - shift(c)`` is unchanged.  When the result comes
out unchanged, its derivative with respect to ``s`` is identically zero, and
``s`` may be cut.  Candidates are only values added to or subtracted from a
larger array; control flow, helpers and every other operation make the
answer "unknown", so the pass only ever removes work that is provably zero.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import numpy as np

from . import ir
from .graph import reduced_axes, reduction_of

UNCHANGED = ("unchanged", 0.0)
UNKNOWN = ("unknown", 0.0)



def cut_values(fn: ir.Function, shapes: dict[str, tuple], varied: set[str]) -> dict[str, str]:
    """The values whose gradient is zero because ``fn``'s result does not
    depend on them, each with the reason (for a comment in the generated code)."""
    res = fn.result
    if not isinstance(res, ast.Name) or not shapes:
        return {}
    out: dict[str, str] = {}
    for s in fn.body:
        if isinstance(s, ir.Assign) and s.target in varied and _is_candidate(s.target, fn.body, shapes):
            if _result_unchanged(s.target, fn, shapes):
                out[s.target] = "shift"
    return out


def _array_shape(shapes: dict, name: str) -> tuple | None:
    sh = shapes.get(name)
    if sh is None or not sh.numeric or sh.dtype != "f":
        return None
    return tuple(sh.shape)


def _is_candidate(name: str, body: list, shapes: dict) -> bool:
    """Is ``name`` added to or subtracted from something bigger at the top level?"""
    mine = _array_shape(shapes, name)
    if mine is None:
        return False
    for s in body:
        if isinstance(s, ir.Assign) and s.op is not None and s.op.kind == "rule" and \
                s.op.rule.fn in (operator.add, operator.sub):
            names = [e.id for e in s.op.operands]
            if name in names:
                ans = _array_shape(shapes, s.target)
                if ans is not None and int(np.prod(ans, dtype=np.int64)) > int(np.prod(mine, dtype=np.int64)):
                    return True
    return False


def _result_unchanged(cand: str, fn: ir.Function, shapes: dict) -> bool:
    delta = _array_shape(shapes, cand)
    cls: dict[str, tuple] = {cand: ("shift", 1.0)}
    seen_cand = False
    for s in fn.body:
        if isinstance(s, ir.Assign) and s.target == cand and not seen_cand:
            seen_cand = True
            continue
        if not seen_cand:
            continue
        if isinstance(s, ir.Assign):
            if s.target in cls:
                return False  # reassigned: not the straight-line SSA this proof reads
            if not any(n in cls for n in ir.names_in(s.value)):
                continue
            if s.op is None or s.counter:
                return False
            c = _transfer(s, cls, shapes, delta)
            if c == UNKNOWN:
                return False
            if c != UNCHANGED:
                cls[s.target] = c
        else:
            # control flow, unpacking, appends, side effects: give up if they see a changed value
            if _stmt_names(s) & set(cls):
                return False
    res = fn.result.id
    return res not in cls


def _stmt_names(s: Any) -> set[str]:
    """Every name a (compound) IR statement reads or writes."""
    out: set[str] = set()
    if isinstance(s, ir.Assign):
        out.add(s.target)
        out.update(ir.names_in(s.value))
    elif isinstance(s, ir.Unpack):
        out.update(s.targets)
        out.add(s.value)
    elif isinstance(s, ir.Append):
        out.add(s.lst)
        out.update(ir.names_in(s.value))
    elif isinstance(s, ir.SetItem):
        out.add(s.target)
        out.update(ir.names_in(s.index))
        out.update(ir.names_in(s.value))
    elif isinstance(s, ir.Expr):
        out.update(ir.names_in(s.node))
    elif isinstance(s, ir.BreakIf):
        out.add(s.flag)
    elif isinstance(s, ir.Return):
        out.update(ir.names_in(s.value))
    elif isinstance(s, (ir.If, ir.While)):
        out.update(ir.names_in(s.test))
    if isinstance(s, ir.For):
        out.add(s.target)
        for e in s.range_args:
            out.update(ir.names_in(e))
    if isinstance(s, (ir.For, ir.While)) and s.counter:
        out.add(s.counter)
    for block in (getattr(s, "body", None), getattr(s, "orelse", None)):
        for x in block or ():
            out |= _stmt_names(x)
    return out


def _literal(e: ast.expr) -> float | None:
    if isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
        return float(e.value)
    return None


def _kind(op: ir.Op) -> str | None:
    r = reduction_of(op)
    if r in ("sum", "mean"):
        return r
    if r in ("max", "min"):
        return "max"  # both move with a shift and scale with a positive factor
    fn = op.rule.fn
    if fn is np.exp:
        return "exp"
    if fn is np.log:
        return "log"
    return {operator.add: "add", operator.sub: "sub", operator.mul: "mul", operator.truediv: "div",
            operator.neg: "neg", operator.pos: "pos"}.get(fn)


def _norm(kind: str, c: float) -> tuple:
    return UNCHANGED if c == 0.0 else (kind, c)


def _transfer(s: ir.Assign, cls: dict, shapes: dict, delta: tuple | None) -> tuple:
    op = s.op
    if op.kind == "copy":
        return cls.get(op.operands[0].id, UNCHANGED)
    if op.kind != "rule":
        return UNKNOWN
    k = _kind(op)
    if k is None:
        return UNKNOWN

    def of(p: str) -> tuple:
        e = op.bound.get(p)
        return cls.get(e.id, UNCHANGED) if isinstance(e, ast.Name) else UNCHANGED

    if k in ("add", "sub"):
        a, b = of("a"), of("b")
        if a[0] == "scale" or b[0] == "scale":
            return UNKNOWN
        sign = 1.0 if k == "add" else -1.0
        return _norm("shift", a[1] + sign * b[1])
    if k in ("neg", "pos"):
        a = of("a")
        return _norm("shift", -a[1] if k == "neg" else a[1]) if a[0] == "shift" else a
    if k in ("mul", "div"):
        a, b = of("a"), of("b")
        if a[0] != "shift" and b[0] != "shift":
            sign = 1.0 if k == "mul" else -1.0
            return _norm("scale", a[1] + sign * b[1])
        # a shift times a literal number stays a shift
        if a[0] == "shift" and b == UNCHANGED:
            x = _literal(op.bound["b"])
            if x is not None and x != 0.0:
                return _norm("shift", a[1] * x if k == "mul" else a[1] / x)
        if k == "mul" and b[0] == "shift" and a == UNCHANGED:
            x = _literal(op.bound["a"])
            if x is not None:
                return _norm("shift", b[1] * x)
        return UNKNOWN
    if k == "exp":
        a = of("x")
        return ("scale", a[1]) if a[0] == "shift" else UNKNOWN
    if k == "log":
        a = of("x")
        return ("shift", a[1]) if a[0] == "scale" else UNKNOWN
    # reductions: the change must be constant along the reduced axes
    for p in op.bound:
        if p != "a" and of(p) != UNCHANGED:
            return UNKNOWN
    a = of("a")
    x = op.bound.get("a")
    if not isinstance(x, ast.Name) or delta is None or not _along_constant(op, _array_shape(shapes, x.id), delta):
        return UNKNOWN
    if k == "sum":
        return a if a[0] == "scale" else UNKNOWN
    if k == "mean":
        return a
    return a  # max/min: max(x + d) = max(x) + d, max(x * exp(d)) = max(x) * exp(d)


def _along_constant(op: ir.Op, shape: tuple | None, delta: tuple) -> bool:
    """Is the change (``delta``-shaped, broadcast) constant along the axes
    ``op`` reduces, so that the reduction's result changes the same way?"""
    if shape is None:
        return False
    st = op.static
    if "axis" not in st or "keepdims" not in st or st.get("out") is not None or st.get("dtype") is not None:
        return False
    axis, keep = st["axis"], st["keepdims"]
    if keep not in (True, False) or any(p not in ("a", "axis", "keepdims", "out", "dtype") for p in op.bound):
        return False
    nd = len(shape)
    axes = reduced_axes(axis, nd)
    if axes is None:
        return False
    lead = nd - len(delta)
    for ax in axes:
        i = ax - lead
        if i >= 0 and (delta[i] != 1 or not keep):
            # d varies along this axis, or the axis disappears while d has it
            return False
    return True
