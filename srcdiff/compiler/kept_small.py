"""Adjoints kept smaller than their values, and broadcasting in adjoints.

The adjoint of a full sum is one number standing for a filled array, that of
a row-wise sum one column: elementwise rules take them as they are (NumPy
broadcasts) and anything else writes them out first (``np.full``).  A
contribution to an argument that was broadcast is summed back to its shape.

A mixin of ``Reverse`` (reads and writes ``small`` and ``owned``)."""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from ..rules import TABLE
from . import ir
from .astlib import assign, attr, call, load
from .graph import reduced_axes, reduction_of
from .templates import is_fresh, parse_template


class KeptSmall:
    def _small_contrib(self, t: Any, op: ir.Op, p: str, x: str, y: str, expr: ast.expr) -> tuple | None:
        """The contribution of an elementwise rule to ``x`` when the adjoint of
        ``y`` is kept small (see ``self.small``): still small when NumPy's
        broadcasting gives it the right values, a real array when the template
        already has ``x``'s shape (or sums over where ``x`` was broadcast);
        None when the adjoint must be written out first."""
        if not isinstance(t, str):
            return None
        full_y, stored = self.small[self.adj(y)]
        tshape = self._uniform_shape(t, op, y, stored)
        sx = self.ctx.shapes.get(x)
        if tshape is None or sx is None or not sx.numeric:
            return None
        sx, sy = tuple(sx.shape), tuple(full_y)
        lead = len(sy) - len(sx)
        if lead < 0 or len(tshape) > len(sy):
            return None
        reduced = list(range(lead)) + [i + lead for i, n in enumerate(sx) if n == 1 and sy[i + lead] != 1]
        padded = (1,) * (len(sy) - len(tshape)) + tshape
        if reduced and padded == sy:
            return (x, self._unbroadcast(expr, x, y), True, None)  # the template is y-sized: sum it down
        if any(padded[r] != 1 for r in reduced) or len(tshape) > len(sx):
            return None
        factor = 1
        for r in reduced:
            factor *= sy[r]
        if factor != 1:
            # x was broadcast: its adjoint sums `factor` equal entries
            expr = ast.BinOp(left=expr, op=ast.Mult(), right=ast.Constant(value=factor))
        if tshape == sx:
            return (x, expr, is_fresh(expr, self.ctx.np) and p not in op.rule.aliases, None)
        return (x, expr, True, (sx, tshape))

    def _spread(self, s: ir.Assign, g: ast.expr) -> tuple | None:
        """The adjoint of ``np.sum``/``np.mean`` over known axes at the top level:
        ``g`` itself (divided by the count for a mean), kept small - one number
        for a full sum, a column for a row-wise one - and broadcast where used,
        instead of an array of copies.  None when the generic rule must do."""
        op = s.op
        kind = reduction_of(op)
        x = op.bound.get("a")
        if kind not in ("sum", "mean") or self.rev_depth or self.first_pass or not isinstance(x, ast.Name) or \
                not self.active(x.id):
            return None
        st = op.static
        axis, keep = st.get("axis", 0), st.get("keepdims")
        sx, sy = self.ctx.shapes.get(x.id), self.ctx.shapes.get(s.target)
        if keep not in (True, False) or "axis" not in st or st.get("dtype") is not None or \
                st.get("out") is not None or set(op.bound) - {"a", "axis", "keepdims", "dtype", "out"} or \
                sx is None or sy is None or not sx.numeric or sx.dtype != "f" or \
                not sy.numeric:
            return None
        sx, sy = tuple(sx.shape), tuple(sy.shape)
        axes = reduced_axes(axis, len(sx))
        if axes is None:
            return None
        dy = self.adj(s.target)
        stored = self.small[dy][1] if dy in self.small else sy
        expr: ast.expr = g
        if keep or stored == ():
            new = stored
        else:
            if len(stored) != len(sy):
                return None
            # put the reduced axes back as length-1 axes; leading ones broadcast anyway
            lead = 0
            while lead < len(axes) and axes[lead] == lead:
                lead += 1
            inner = axes[lead:]
            dims = list(stored)
            for a in inner:
                dims.insert(a - lead, 1)
            new = tuple(dims)
            if inner:
                index = [ast.Constant(value=None) if i + lead in inner else ast.Slice()
                         for i in range(inner[-1] - lead + 1)]
                expr = ast.Subscript(value=g, slice=ast.Tuple(elts=index, ctx=ast.Load()) if len(index) > 1
                                     else index[0], ctx=ast.Load())
        if kind == "mean":
            count = 1
            for a in axes:
                count *= sx[a]
            expr = ast.BinOp(left=expr, op=ast.Div(), right=ast.Constant(value=count))
        if new == sx:
            return (x.id, expr, is_fresh(expr, self.ctx.np), None)
        return (x.id, expr, True, (sx, new))

    def _uniform_shape(self, template: str, op: ir.Op, target: str, gshape: tuple = ()) -> tuple | None:
        """The shape of an elementwise template's value when ``g`` has shape
        ``gshape``, from the recorded shapes of the names it reads; None when
        unknown."""
        tree = parse_template(template)
        shapes = []
        for n in ast.walk(tree):
            if isinstance(n, ast.Call):
                f = n.func
                if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "np"
                        and TABLE.numpy_facts(f.attr).elementwise):
                    return None
            elif isinstance(n, (ast.Subscript, ast.Lambda, ast.IfExp, ast.Compare, ast.BoolOp)):
                return None
            elif isinstance(n, ast.Attribute) and not (isinstance(n.value, ast.Name) and n.value.id == "np"):
                return None
            elif isinstance(n, ast.Name):
                if n.id == "g":
                    shapes.append(tuple(gshape))
                    continue
                if n.id == "np":
                    continue
                name = target if n.id == "ans" else None
                if n.id != "ans":
                    e = op.bound.get(n.id)
                    if isinstance(e, ast.Constant) and isinstance(e.value, (int, float)):
                        continue
                    if not isinstance(e, ast.Name):
                        return None
                    name = e.id
                sh = self.ctx.shapes.get(name)
                if sh is None or not sh.numeric:
                    return None
                shapes.append(tuple(sh.shape))
        try:
            return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
        except ValueError:
            return None

    def _unbroadcast(self, expr: ast.expr, x: str, y: str) -> ast.expr:
        """Reduce ``expr`` (shaped like ``y``) to the shape of ``x``: inline
        ``np.sum`` when both shapes are known, else ``rt.unbroadcast``."""
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
            # sum(-g) -> -sum(g): negate the small reduced array, not the big one
            return ast.UnaryOp(op=ast.USub(), operand=self._unbroadcast(expr.operand, x, y))
        sx = self.ctx.shapes.get(x)
        sy = self.ctx.shapes.get(y)
        if sx is not None and sy is not None and sx.numeric and sy.numeric:
            xs, ys = sx.shape, sy.shape
            if xs == ys:
                return expr
            if xs == ():
                return call(attr(self.ctx.np, "sum"), expr)
            lead = len(ys) - len(xs)
            if lead >= 0 and all(a == b or a == 1 for a, b in zip(xs, ys[lead:])):
                ones = [i + lead for i, (a, b) in enumerate(zip(xs, ys[lead:])) if a == 1 and b != 1]
                axes = list(range(lead)) + ones
                ax = ast.Tuple(elts=[ast.Constant(value=a) for a in axes], ctx=ast.Load()) if len(axes) != 1 \
                    else ast.Constant(value=axes[0])
                kw = [ast.keyword(arg="axis", value=ax)]
                if ones:
                    kw.append(ast.keyword(arg="keepdims", value=ast.Constant(value=True)))
                # the method form: NumPy's np.sum wrapper costs a microsecond more per call
                summed = ast.Call(func=ast.Attribute(value=expr, attr="sum", ctx=ast.Load()), args=[], keywords=kw)
                if ones and lead:
                    summed = call(ast.Attribute(value=summed, attr="reshape", ctx=ast.Load()),
                                  ast.Tuple(elts=[ast.Constant(value=d) for d in xs], ctx=ast.Load()))
                return summed
        return call(attr(self.ctx.rt, "unbroadcast"), expr, load(x))

    def _may_broadcast(self, op: ir.Op, p: str, target: str = "") -> bool:
        """Could the other operands broadcast this one to a bigger shape?
        Not when they are literal scalars or the very same value, or when the
        recorded shapes of operand and result agree."""
        me = op.bound[p]
        shapes = self.ctx.shapes
        if isinstance(me, ast.Name) and me.id in shapes and target in shapes and \
                shapes[me.id].numeric and shapes[target].numeric and \
                shapes[me.id].shape == shapes[target].shape:
            return False
        others = [op.bound[q] for q in op.rule.unbroadcast if q != p and q in op.bound]
        return not all(isinstance(o, ast.Constant) or isinstance(o, ast.Name) and isinstance(me, ast.Name)
                       and o.id == me.id for o in others)

    def _materialize(self, d: str, out: list) -> None:
        shape = self.small.pop(d, None)
        if shape is not None and d in self.owned:
            full = shape[0]
            if not full:
                self.owned[d] = False  # a scalar already; it may alias g
                return
            out.append(assign(d, call(attr(self.ctx.np, "full"),
                                      ast.Tuple(elts=[ast.Constant(value=n) for n in full], ctx=ast.Load()),
                                      load(d))))
            self.owned[d] = True

    def _materialize_all(self, out: list) -> None:
        for d in sorted(self.small):
            self._materialize(d, out)



def _full_call(expr: ast.expr, np_name: str):
    """``np.full((2, 3), v)`` -> (shape tuple, v); else None."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "full" and \
            isinstance(expr.func.value, ast.Name) and expr.func.value.id == np_name and len(expr.args) == 2 and \
            not expr.keywords and isinstance(expr.args[0], ast.Tuple) and \
            all(isinstance(e, ast.Constant) for e in expr.args[0].elts):
        return tuple(e.value for e in expr.args[0].elts), expr.args[1]
    return None


