"""Reverse: build the adjoint of a normalized, resolved function.

The generated function runs the forward statements, then the backward sweep
in reverse order.  Adjoint variables are named after the primal ones
(``h`` -> ``dh``).  A static state tracks which adjoints hold a value: the
first contribution is assigned (``dz = ...``), later ones accumulate
(``dz += ...``), and a value whose adjoint is still empty gets no adjoint code
at all.  Zeros are materialized only where control flow joins paths on which
an adjoint is defined on one side only (branches, loop iterations).

Values that a loop (or a branch) overwrites are pushed on a per-call list
before being overwritten, and popped back in the backward sweep; straight-line
code never needs the stack, because ``normalize`` gave each value its own name.
"""

from __future__ import annotations

import ast
import copy
from typing import Any

import numpy as np

from ..errors import InternalError, SrcdiffError
from . import ir, site
from .activity import Activity
from .astlib import arguments_of, assign, attr, call, comment, funcdef, if_stmt, load, store
from .context import Context, HelperSpec
from .graph import reduction_of
from .ir import NO_SHAPE
from .kept_small import KeptSmall, _full_call
from .naming import Namer
from .replay import ForwardReplay
from .tape import TapePlanning
from .templates import _Subst, instantiate, is_fresh, parse_template

__all__ = ["Context", "HelperSpec", "Reverse"]


class Reverse(TapePlanning, ForwardReplay, KeptSmall):
    """The reverse transform of one function: ``build()`` gives the adjoint (the
    main function) or the forward/backward pair (a helper).  Tape planning,
    the forward replay and kept-small adjoints are the mixins' jobs; this
    class holds the backward sweep, adjoint accumulation, helper calls and
    the assembling of the generated function."""

    def __init__(self, fn: ir.Function, act: Activity, ctx: Context, wrt: list[str],
                 mode: str = "main", gen_name: str = "") -> None:
        self.fn = fn
        self.act = act
        self.ctx = ctx
        self.wrt = wrt
        self.mode = mode
        self.gen_name = gen_name
        self.namer = Namer(fn.names)  # allocates into the function's own name set
        self.primal: set[str] = set(fn.params)
        self.user_names = {n.id for n in ast.walk(fn.source.node) if isinstance(n, ast.Name)}
        for s in ir.walk(fn.body):
            if isinstance(s, ir.Assign):
                self.primal.add(s.target)
            elif isinstance(s, ir.Unpack):
                self.primal.update(s.targets)
            elif isinstance(s, ir.For):
                self.primal.add(s.target)
            elif isinstance(s, ir.Append):
                self.primal.add(s.lst)
            elif isinstance(s, ir.SetItem):
                self.primal.add(s.target)
        self.adj_names: dict[str, str] = {}
        self.containers: set[str] = set()
        self._find_containers()
        self.saved_names: dict[int, str] = {}  # id(helper Assign) -> saved-tuple name
        self.pushed: dict[int, list[str]] = {}  # id(statement) -> its targets saved on the stack
        self.none_init: dict[int, list[str]] = {}
        self.bwd_reads: dict[int, set[str]] = {}  # id(statement) -> primal names its backward code reads
        self._ran_before: dict[int, set[int]] = {}
        self.remat: dict[int, list] = {}
        self.needed: set[str] = set()
        self.stack = ""
        self.helper_specs: dict[int, HelperSpec] = {}
        self._resolve_helpers()
        self.last_comment = None
        self.nan_safe = self._nan_upstream()

    # -- names ----------------------------------------------------------
    def new_name(self, base: str) -> str:
        return self.namer.fresh(base)

    def adj(self, name: str) -> str:
        a = self.adj_names.get(name)
        if a is None:
            a = self.new_name("d" + name if not name.startswith("_") else "d" + name)
            self.adj_names[name] = a
        return a

    def active(self, name: str) -> bool:
        return self.act.is_active(name)

    def _find_containers(self) -> None:
        for p, k in self.ctx.kinds.items():
            if k in ("tuple", "list", "dict"):
                self.containers.add(p)
        for name, sh in self.ctx.shapes.items():
            if sh.kind == "container":
                self.containers.add(name)
        # parameters of unknown kind read as sequences (p[0], a, b = p), and the parts read
        # from them: their adjoints may be containers, added elementwise (never with +)
        import operator

        def unknown(n: str) -> bool:
            return self.ctx.shapes.get(n, NO_SHAPE).kind not in ("array", "scalar") and \
                n not in self.ctx.float_arrays and self.ctx.kinds.get(n) not in ("farray", "float", "array0")

        maybe = {p for p in self.fn.params if unknown(p)}
        changed = True
        while changed:
            changed = False
            for s in ir.walk(self.fn.body):
                parts: list[str] = []
                if isinstance(s, ir.Unpack) and s.value in maybe:
                    parts = list(s.targets)
                    self.containers.add(s.value)
                elif isinstance(s, ir.Assign) and s.op is not None and s.op.kind == "rule" and \
                        s.op.rule.fn is operator.getitem and isinstance(s.op.bound.get("a"), ast.Name) and \
                        s.op.bound["a"].id in maybe:
                    parts = [s.target]
                    self.containers.add(s.op.bound["a"].id)
                elif isinstance(s, ir.Assign) and s.op is not None and s.op.kind == "copy" and \
                        s.op.operands[0].id in maybe:
                    parts = [s.target]
                for t in parts:
                    if t not in maybe and unknown(t):
                        maybe.add(t)
                        changed = True
        changed = True
        while changed:
            changed = False
            for s in ir.walk(self.fn.body):
                if isinstance(s, ir.Assign) and s.target not in self.containers and s.op is not None:
                    k = s.op.kind
                    if k in ("tuple", "list", "dict") or k == "copy" and s.op.operands[0].id in self.containers \
                            or k == "rule" and s.op.rule.facts.container:
                        self.containers.add(s.target)
                        changed = True

    def _resolve_helpers(self) -> None:
        for s in ir.walk(self.fn.body):
            if isinstance(s, ir.Assign) and s.op is not None and s.op.kind == "helper":
                if s.target not in self.act.varied:
                    continue
                varied = self._helper_varied(s)
                calls = self.ctx.helper_calls.get(id(s), [])
                # the recorded arguments are trusted only when their shapes are stable
                if not all(self.ctx.shapes.get(a.id, NO_SHAPE).kind in ("array", "scalar") for a in s.op.operands):
                    calls = []
                try:
                    spec = self.ctx.helper_spec(s.op.callee, varied, s, calls)
                except SrcdiffError as exc:
                    if exc.filename is not None:
                        raise
                    # the helper itself has no place to point at (no source): point at the call
                    raise self.fn.source.error(f"cannot differentiate through {s.op.name}: {exc.message}",
                                               lineno=s.line, hint=exc.hint) from None
                self.helper_specs[id(s)] = spec
                if spec.returns_container:
                    self.containers.add(s.target)
                self.saved_names[id(s)] = self.new_name(f"{spec.base}_saved")
                self.primal.add(self.saved_names[id(s)])

    def _helper_binding(self, s: ir.Assign) -> dict[str, ast.expr]:
        import inspect

        sig = inspect.signature(s.op.callee)
        try:
            b = sig.bind(*s.op.args, **s.op.bound)
        except TypeError as exc:
            raise self.fn.source.error(f"cannot call {s.op.name}: {exc}", lineno=s.line) from None
        out = {}
        for k, v in b.arguments.items():
            out[k] = v
        return out

    def _helper_varied(self, s: ir.Assign) -> list[str]:
        binding = self._helper_binding(s)
        return [p for p, e in binding.items()
                if isinstance(e, ast.Name) and e.id in self.act.varied]

    def _nan_upstream(self) -> set[str]:
        """Values that flow into an operation that skips NaN (``np.nansum``,
        ``np.nanmean``, ``np.fmax`` ...).  An entry of such a value that is NaN
        (or infinite) is masked out, so its adjoint is exactly 0 there; the
        elementwise rules upstream must then give 0, not ``0 * nan``: their
        contributions are taken as 0 wherever the incoming adjoint is 0."""
        seeds: set[str] = set()
        producers: dict[str, list] = {}
        for s in ir.walk(self.fn.body):
            if isinstance(s, ir.Assign) and s.op is not None:
                producers.setdefault(s.target, []).append(s)
                if s.op.kind == "rule" and s.op.rule.facts.skips_nan:
                    seeds.update(n.id for n in s.op.operands)
        out: set[str] = set()
        todo = list(seeds)
        while todo:
            n = todo.pop()
            if n in out:
                continue
            out.add(n)
            for s in producers.get(n, ()):
                if s.op.kind in ("rule", "copy"):
                    todo.extend(a.id for a in s.op.operands)
        return out

    # -- entry ----------------------------------------------------------
    def build(self) -> ast.FunctionDef | list[ast.FunctionDef]:
        if self.mode == "helper":
            res = self.fn.result
            if isinstance(res, ast.Name) and self.active(res.id):
                self.g_param = self.adj(res.id)
            else:
                self.g_param = self.new_name("g")
            self.saved_param = self.new_name("saved")
        # pass 1: the backward sweep, to learn which primal values it reads
        self.stack = ""
        taken = set(self.namer.taken)
        self._backward(first_pass=True)
        self.needed = self._reads(self._bwd_code)
        stack_name = ""
        # then with saving planned: restoring a value can make the sweep read more
        # (a loop that only restores still needs its trip count), so repeat until stable
        # `needed` only grows, within the finite set of primal names: at most that many rounds
        for _ in range(len(self.primal) + 2):
            if not stack_name and self._needs_stack():
                stack_name = self.new_name("stack")
                taken.add(stack_name)
            self.stack = stack_name
            self._plan_pushes()
            self.namer.reset(taken | set(self.adj_names.values()))
            self._backward(first_pass=False)
            more = self._reads(self._bwd_code) - self.needed
            if not more:
                break
            self.needed |= more
        else:
            raise InternalError("planning the values to save did not converge")
        fwd = self._forward()
        bwd = self._bwd_code
        return self._assemble(fwd, bwd)

    def _reads(self, code: list[ast.stmt]) -> set[str]:
        out = set()
        for st in code:
            for n in ast.walk(st):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in self.primal:
                    out.add(n.id)
        return out

    # -- backward -----------------------------------------------------------
    def _backward(self, first_pass: bool) -> None:
        self.first_pass = first_pass
        # the adjoints that hold a value: name -> whether it owns its array (may be added
        # into in place) or may be another value's array (g, a view, a primal value)
        self.owned: dict[str, bool] = {}
        # adjoints kept smaller than their value, broadcast: name -> (full shape, stored shape).
        # The adjoint of a full sum is one number standing for a filled array, that of a
        # row-wise sum one column; elementwise rules take them as they are (NumPy broadcasts),
        # anything else writes them out first (np.full).  Top level only.
        self.small: dict[str, tuple] = {}
        self.rev_depth = 0
        self.last_comment = None
        code: list[ast.stmt] = []
        res = self.fn.result
        self.seed_code: list[ast.stmt] = []
        if isinstance(res, ast.Name) and self.active(res.id):
            d = self.adj(res.id)
            if self.mode == "main":
                sh = self.ctx.shapes.get(res.id)
                if sh is not None and sh.kind == "scalar" and sh.dtype == "f":
                    # the first call showed a float scalar, and shapes are fixed per compile
                    self.seed_code.append(assign(d, ast.Constant(value=1.0)))
                else:
                    self.seed_code.append(assign(d, call(attr(self.ctx.rt, "seed"), load(res.id),
                                                         ast.Constant(value=self.fn.name))))
            self.owned[d] = False
        elif self.mode == "main":
            self.seed_code.append(ast.Expr(value=call(attr(self.ctx.rt, "seed"), copy.deepcopy(res or
                                                      ast.Constant(value=None)),
                                                      ast.Constant(value=self.fn.name))))
        code += self._rev_block(self.fn.body)
        self._materialize_all(code)
        self._bwd_code = code
        self.final_state = dict(self.owned)

    def _comment(self, line: int, out: list) -> None:
        if line and line != self.last_comment:
            text = self.fn.source.line(line)
            if text:
                out.append(comment(text))
            self.last_comment = line

    def _rev_block(self, stmts) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in reversed(stmts):
            site.at(getattr(s, "line", None))
            if isinstance(s, ir.Assign):
                code = self._rev_assign(s)
            elif isinstance(s, ir.Unpack):
                code = self._rev_unpack(s)
            elif isinstance(s, ir.Append):
                code = self._rev_append(s)
            elif isinstance(s, ir.SetItem):
                code = self._rev_setitem(s)
            elif isinstance(s, ir.If):
                code = self._rev_if(s)
            elif isinstance(s, (ir.For, ir.While)):
                code = self._rev_loop(s)
            else:
                continue
            if self.first_pass:
                self.bwd_reads[id(s)] = self._reads(code)
            out += code
        return out

    def _pops(self, s) -> list[ast.stmt]:
        if self.first_pass or id(s) not in self.pushed:
            return []
        out = []
        for t in reversed(self.pushed[id(s)]):
            out.append(assign(t, call(attr(self.stack, "pop"))))
        return out

    def _zeros(self, name: str) -> ast.expr:
        sh = self.ctx.shapes.get(name)
        if sh is not None and sh.kind == "scalar":
            return ast.Constant(value=0.0)
        if sh is not None and sh.float_array and name not in self.fn.params:
            # a known shape: no need to keep the value around just to read its shape
            return call(attr(self.ctx.np, "zeros"), ast.Tuple(elts=[ast.Constant(value=d) for d in sh.shape],
                                                               ctx=ast.Load()))
        if self.ctx.kinds.get(name) == "farray":
            return call(attr(self.ctx.np, "zeros_like"), load(name))
        return call(attr(self.ctx.rt, "zeros_like"), load(name))

    def _accumulate(self, x: str, expr: ast.expr, fresh: bool, out: list, small: tuple | None = None) -> None:
        d = self.adj(x)
        if small is not None:
            if d not in self.owned:
                out.append(assign(d, expr))
                self.small[d] = small
            else:
                if d in self.small:
                    full, stored = self.small[d]
                    self.small[d] = (full, tuple(np.broadcast_shapes(stored, small[1])))
                out.append(assign(d, ast.BinOp(left=load(d), op=ast.Add(), right=expr)))
            # never added into in place while it is kept small: it may alias g or a primal value
            self.owned[d] = True
            return
        if d in self.small:
            # kept small, plus a real array: now a real array.  Add the small one into the
            # new array in place rather than allocating a third
            self.small.pop(d)
            if fresh and isinstance(expr, ast.Name):
                out.append(ast.AugAssign(target=store(expr.id), op=ast.Add(), value=load(d)))
                out.append(assign(d, expr))
            elif fresh:
                tmp = self.new_name(d)
                out.append(assign(tmp, expr))
                out.append(ast.AugAssign(target=store(tmp), op=ast.Add(), value=load(d)))
                out.append(assign(d, load(tmp)))
            else:
                out.append(assign(d, ast.BinOp(left=load(d), op=ast.Add(), right=expr)))
            self.owned[d] = True
            return
        if d not in self.owned:
            out.append(assign(d, expr))
            self.owned[d] = fresh
        elif x in self.containers:
            out.append(assign(d, call(attr(self.ctx.rt, "add"), load(d), expr)))
            self.owned[d] = True
        elif self.owned[d]:
            if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
                out.append(ast.AugAssign(target=store(d), op=ast.Sub(), value=expr.operand))
            else:
                out.append(ast.AugAssign(target=store(d), op=ast.Add(), value=expr))
        else:
            out.append(assign(d, ast.BinOp(left=load(d), op=ast.Add(), right=expr)))
            self.owned[d] = True

    def _emit_contribs(self, s, contribs: list[tuple[str, ast.expr, bool]], out: list) -> None:
        """Accumulate contributions; the target's own adjoint is reset first
        (its old value starts a fresh adjoint), then contributions to it are
        assigned."""
        y = s.target if isinstance(s, ir.Assign) else None
        dy = self.adj(y) if y else None
        contribs = [c if len(c) == 4 else (*c, None) for c in contribs]
        self_contribs = [c[:3] for c in contribs if c[0] == y]
        others = [c for c in contribs if c[0] != y]
        for x, e, fresh, small in others:
            self._accumulate(x, e, fresh, out, small)
        if dy is not None:
            self.owned.pop(dy, None)
        if self_contribs:
            if len(self_contribs) == 1:
                x, e, fresh = self_contribs[0]
                out.append(assign(dy, e))
                self.owned[dy] = fresh
            else:
                total = self_contribs[0][1]
                for _, e, _ in self_contribs[1:]:
                    total = ast.BinOp(left=total, op=ast.Add(), right=e)
                out.append(assign(dy, total))
                self.owned[dy] = True

    def _rev_assign(self, s: ir.Assign) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        y = s.target
        pops = self._pops(s)
        if y in self.ctx.cut and not self.first_pass:
            self._comment(s.line, out)
            what = y if y in self.user_names else ast.unparse(s.value)
            out.append(comment(f"no gradient through {what}: the result does not change when it shifts"))
        if s.counter or not self.active(y) or self.adj(y) not in self.owned:
            if self.active(y):
                self.owned.pop(self.adj(y), None)
            return out + pops
        op = s.op
        dy = self.adj(y)
        g = load(dy)
        contribs: list = []
        if dy in self.small and not (op.kind == "copy" or op.kind == "rule" and
                                       (op.rule.facts.elementwise or
                                        reduction_of(op) in ("sum", "mean"))):
            self._materialize(dy, out)
        rename_old: dict[str, ast.expr] = {}
        prev_stmts: list[ast.stmt] = []
        # y = f(..., y, ...) inside a loop or branch: the rule needs the old y
        if (not self.first_pass and y in self.pushed.get(id(s), ()) and op.kind != "helper"
                and y in {n.id for n in op.operands} and self._reads_old_value(s)):
            prev = self.new_name(y + "_prev")
            prev_stmts.append(assign(prev, call(attr(self.stack, "pop"))))
            rename_old[y] = load(prev)
            pops = [assign(y, load(prev))] + pops[1:]
        k = op.kind
        if k == "copy":
            x = op.operands[0].id
            if self.active(x):
                contribs.append((x, g, False, self.small.get(dy)))
        elif k in ("tuple", "list"):
            for i, e in enumerate(op.args):
                if isinstance(e, ast.Name) and self.active(e.id):
                    contribs.append((e.id, ast.Subscript(value=g, slice=ast.Constant(value=i), ctx=ast.Load()),
                                     False))
        elif k == "dict":
            keys = s.value.keys
            for kk, e in zip(keys, op.args):
                if isinstance(e, ast.Name) and self.active(e.id):
                    contribs.append((e.id, ast.Subscript(value=g, slice=copy.deepcopy(kk), ctx=ast.Load()), False))
        elif k == "cast":
            for e in op.args[:1]:
                if isinstance(e, ast.Name) and self.active(e.id):
                    contribs.append((e.id, g, False))
        elif k == "rule" and (spread := self._spread(s, g)) is not None:
            contribs.append(spread)
        elif k == "rule" and self._getitem_inplace(s, contribs_out := [], g):
            self._comment(s.line, out)
            out += prev_stmts + contribs_out
            self.owned.pop(dy, None)
            return out + pops
        elif k == "rule":
            got = self._rule_contribs(s, g, rename_old)
            if got is None:  # a scalar-for-array adjoint this rule cannot take: write it out first
                self._materialize(dy, out)
                got = self._rule_contribs(s, g, rename_old)
            contribs += got
        elif k == "helper":
            return self._rev_helper(s, prev_stmts, pops, out)
        elif k == "unknown":
            self._unknown_error(s)
        if not contribs:
            self.owned.pop(dy, None)
            self.small.pop(dy, None)
            return out + prev_stmts + pops
        if any(c[0] == y for c in contribs) and any(len(c) == 4 and c[3] is not None for c in contribs):
            self._materialize(dy, out)  # y = f(y): write the scalar out and use the ordinary rules
            return self._redo_full(s, out, prev_stmts, pops, rename_old)
        self._comment(s.line, out)
        out += prev_stmts
        contribs = self._steal(dy, contribs)
        self.small.pop(dy, None)
        self._emit_contribs(s, contribs, out)
        return out + pops

    def _steal(self, dy: str, contribs: list) -> list:
        """A contribution that is ``dy`` itself (``d(x - m)/dx = g``) may take
        over ``dy``'s array when ``dy`` owns it and nothing else gets it: ``dy``
        is dead after this statement, so later additions can go in place."""
        bare = [i for i, c in enumerate(contribs) if isinstance(c[1], ast.Name) and c[1].id == dy]
        if len(bare) != 1 or not self.owned.get(dy) or dy in self.small:
            return contribs
        x = contribs[bare[0]][0]
        if self.adj_names.get(x) == dy or sum(c[0] == x for c in contribs) != 1:
            return contribs
        # the others must compute new values from dy (no views of it), and go first: adding
        # into the taken-over array happens after they have read it
        for j, c in enumerate(contribs):
            if j != bare[0] and any(isinstance(n, ast.Name) and n.id == dy for n in ast.walk(c[1])) and \
                    not is_fresh(c[1], self.ctx.np):
                return contribs
        i = bare[0]
        c = contribs[i]
        return contribs[:i] + contribs[i + 1:] + [(c[0], c[1], True) + tuple(c[3:])]


    def _redo_full(self, s, out, prev_stmts, pops, rename_old):
        contribs = self._rule_contribs(s, load(self.adj(s.target)), rename_old) or []
        self._comment(s.line, out)
        out += prev_stmts
        self._emit_contribs(s, contribs, out)
        return out + pops

    def _reads_old_value(self, s: ir.Assign) -> bool:
        """Does the adjoint of ``y = f(..., y, ...)`` read the old ``y``?  (For
        ``v = v + a`` it does not: the pop can restore ``v`` directly.)"""
        op = s.op
        if op.kind != "rule":
            return True
        for p in op.rule.grads:
            e = op.bound.get(p)
            if not isinstance(e, ast.Name) or not self.active(e.id):
                continue
            t = op.rule.template(p, dict(op.static))
            if not isinstance(t, str):
                return True
            names = {n.id for n in ast.walk(parse_template(t)) if isinstance(n, ast.Name)}
            for q, bound in op.bound.items():
                if q in names and any(isinstance(n, ast.Name) and n.id == s.target for n in ast.walk(bound)):
                    return True
        return False

    def _getitem_inplace(self, s: ir.Assign, out: list, g: ast.expr) -> bool:
        """``y = x[idx]`` on a float array: scatter ``dy`` into ``dx`` in place
        (``dx[idx] += dy``, or ``np.add.at`` for integer-array indices) instead
        of building a full-size array for every element read in a loop."""
        import operator

        op = s.op
        if op.rule.fn is not operator.getitem or not isinstance(s.value, ast.Subscript):
            return False
        x = op.bound.get("a")
        if not isinstance(x, ast.Name) or not self.active(x.id) or x.id == s.target:
            return False
        sh = self.ctx.shapes.get(x.id)
        # a float array: known from the probe, or a float-array parameter the function never rebinds
        float_param = self.ctx.kinds.get(x.id) == "farray" and x.id in self.fn.params and \
            x.id not in self._assigned_in(self.fn.body)
        if not (sh is not None and sh.float_array or x.id in self.ctx.float_arrays
                or float_param) or x.id in self.containers:
            return False
        index = s.value.slice
        basic = True
        for n in ast.walk(index):
            if isinstance(n, ast.Name):
                nsh = self.ctx.shapes.get(n.id)
                if nsh is None or not nsh.numeric:
                    basic = False  # a list, or not known: np.add.at takes any index
                    continue
                if nsh.kind == "array":
                    if nsh.dtype not in "iu":
                        return False  # boolean masks: the generic rule
                    basic = False
                elif nsh.dtype not in "iu":
                    return False
            elif isinstance(n, ast.Constant) and not (n.value is None or n.value is Ellipsis
                                                       or isinstance(n.value, int)):
                return False
        d = self.adj(x.id)
        self._materialize(d, out)
        state = self.owned.get(d)
        if d in self.owned and not state:
            return False  # holds an alias: the generic rule adds out of place
        if d not in self.owned:
            out.append(assign(d, call(attr(self.ctx.np, "zeros_like"), load(x.id))))
        target = ast.Subscript(value=load(d), slice=copy.deepcopy(index), ctx=ast.Store())
        if basic:
            if d not in self.owned:
                out.append(ast.Assign(targets=[target], value=g, lineno=0))
            else:
                out.append(ast.AugAssign(target=target, op=ast.Add(), value=g))
        else:
            idx_value = copy.deepcopy(op.bound["index"])
            out.append(ast.Expr(value=call(ast.Attribute(value=ast.Attribute(value=load(self.ctx.np), attr="add",
                                                                             ctx=ast.Load()),
                                                         attr="at", ctx=ast.Load()), load(d), idx_value, g)))
        self.owned[d] = True
        return True

    def _unknown_error(self, s: ir.Assign) -> None:
        op = s.op
        callee = op.callee
        what = op.name
        reason = "it has no derivative rule and no Python source"
        hint = ("register its derivative with srcdiff.defvjp(fn, 'x', x='g * ...'), "
                "or mark it constant with srcdiff.nondifferentiable(fn)")
        if isinstance(callee, str):
            what = callee
            if callee.startswith("the method"):
                reason = "it has no derivative rule"
                hint = ("register the method with srcdiff.defvjp_method(name, 'self, ...', self='...'), "
                        "or call the NumPy function form instead")
                if callee == "the method .get()":
                    hint = "index the dict instead: d['key'] (differentiable), or register .get with defvjp_method"
            elif callee.startswith("the attribute"):
                reason = "it has no derivative rule"
                hint = "register it with srcdiff.defvjp_attr(name, self='...'), or use a NumPy function instead"
        elif type(callee).__name__ == "GradientFunction":
            reason = "it is a srcdiff gradient, and higher-order derivatives are not supported yet"
            hint = "differentiate the original function instead"
        elif callee is not None:
            module = getattr(callee, "__module__", "") or ""
            what = f"{op.name} ({module or type(callee).__name__})"
            if module.split(".")[0] in ("numpy", "scipy", "math"):
                reason = f"it has no derivative rule (srcdiff reads only your code, not {module.split('.')[0]}'s)"
        raise self.fn.source.error(f"srcdiff cannot differentiate through {what}: {reason}", lineno=s.line,
                                   hint=hint)

    def _rule_contribs(self, s: ir.Assign, g: ast.expr, rename_old: dict) -> list:
        op = s.op
        rule = op.rule
        ctx = self.ctx
        mapping: dict[str, ast.expr] = {"g": g, "ans": load(s.target), "np": load(ctx.np), "math": load(ctx.math),
                                        "rt": load(ctx.rt), "vjp": load(ctx.vjp)}
        for p, e in op.bound.items():
            e2 = copy.deepcopy(e)
            if rename_old:
                e2 = _Subst(rename_old).visit(e2)
            mapping[p] = e2
        out = []
        static = dict(op.static)
        for p, e in op.bound.items():
            if isinstance(e, ast.Name) and ctx.shapes.get(e.id, NO_SHAPE).kind in ("array", "scalar"):
                static["shape:" + p] = ctx.shapes[e.id].shape
        if ctx.shapes.get(s.target, NO_SHAPE).kind in ("array", "scalar"):
            static["shape:ans"] = ctx.shapes[s.target].shape
        for p in rule.grads:
            e = op.bound.get(p)
            if p in op.varargs:
                if any(isinstance(a, ast.Name) and self.active(a.id) for a in op.varargs[p]):
                    raise self.fn.source.error(
                        f"the derivative rule of {rule.name} has a gradient for *{p}, which srcdiff cannot "
                        "pass back to separate arguments yet", lineno=s.line,
                        hint="pass the values as one list or tuple, or register the rule with named parameters")
                continue
            if not isinstance(e, ast.Name) or not self.active(e.id):
                continue
            t = rule.template(p, static)
            if isinstance(t, str):
                expr = instantiate(t, mapping)
            else:
                vname = self._inject_callable(t, rule, p)
                pos = [mapping[q.name] for q in rule.params if q.kind == "pos" and q.name in mapping]
                expr = call(load(vname), g, load(s.target), *pos)
                expr.keywords = [ast.keyword(arg=q.name, value=mapping[q.name]) for q in rule.params
                                 if q.kind == "kwonly" and q.name in mapping]
            dy = self.adj(s.target)
            if s.target in self.nan_safe and rule.facts.elementwise and \
                    not (isinstance(expr, ast.Name) and expr.id == dy):
                # where the adjoint is 0 (a masked NaN), the contribution is 0, never 0 * nan
                if dy in self.small:
                    return None  # written out first
                expr = call(attr(ctx.np, "where"), ast.Compare(left=copy.deepcopy(g), ops=[ast.Eq()],
                                                               comparators=[ast.Constant(value=0.0)]),
                            ast.Constant(value=0.0), expr)
            if dy in self.small:
                got = self._small_contrib(t, op, p, e.id, s.target, expr)
                if got is None:
                    return None
                out.append(got)
                continue
            fresh = is_fresh(expr, ctx.np)
            full = _full_call(expr, ctx.np)
            if self.rev_depth == 0 and not self.first_pass and full is not None and \
                    all(n.id == dy for n in ast.walk(full[1]) if isinstance(n, ast.Name)):
                # np.full(shape, <a number made from g>): keep the number
                gsh = ctx.shapes.get(s.target)
                if gsh is not None and gsh.kind == "scalar":
                    out.append((e.id, full[1], True, (full[0], ())))
                    continue
            if p in rule.unbroadcast and self._may_broadcast(op, p, s.target):
                expr = self._unbroadcast(expr, e.id, s.target)
                # a reduction builds a new array
                fresh = fresh or (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                                  and expr.func.attr == "sum" and not expr.keywords == [])
            out.append((e.id, expr, fresh))
        return out

    def _inject_callable(self, fn: Any, rule, p: str) -> str:
        for name, obj in self.ctx.inject.items():
            if obj is fn:
                return name
        base = (getattr(fn, "__name__", "") or "vjp").strip("<>")
        if not base.isidentifier() or base == "lambda":
            base = f"{rule.name.split('.')[-1]}_vjp_{p}"
        name = self.new_name(base)
        self.ctx.inject[name] = fn
        return name

    def _rev_helper(self, s: ir.Assign, prev_stmts, pops, out) -> list[ast.stmt]:
        spec = self.helper_specs.get(id(s))
        y = s.target
        dy = self.adj(y)
        if spec is None or not spec.varied:
            self.owned.pop(dy, None)
            return prev_stmts + pops
        binding = self._helper_binding(s)
        atoms = [binding[p] for p in spec.varied]
        targets = [a.id if isinstance(a, ast.Name) and self.active(a.id) else None for a in atoms]
        if not any(targets):
            self.owned.pop(dy, None)
            return prev_stmts + pops
        self._comment(s.line, out)
        out += prev_stmts
        bwd_call = call(load(spec.bwd), load(dy), load(self.saved_names[id(s)]))
        self.owned.pop(dy, None)
        if len(spec.varied) == 1:
            x = targets[0]
            self._accumulate(x, bwd_call, False, out)
            return out + pops
        direct = all(t is not None and self.adj(t) not in self.owned for t in targets) and \
            len(set(targets)) == len(targets)
        if direct:
            out.append(ast.Assign(targets=[ast.Tuple(elts=[store(self.adj(t)) for t in targets], ctx=ast.Store())],
                                  value=bwd_call, lineno=0))
            for t in targets:
                self.owned[self.adj(t)] = False
            return out + pops
        temps = [self.new_name(f"d{spec.base}_{p}") for p in spec.varied]
        out.append(ast.Assign(targets=[ast.Tuple(elts=[store(t) for t in temps], ctx=ast.Store())],
                              value=bwd_call, lineno=0))
        for t, tmp in zip(targets, temps):
            if t is not None:
                self._accumulate(t, load(tmp), False, out)
        return out + pops

    def _rev_unpack(self, s: ir.Unpack) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for t in s.targets:
            self._materialize(self.adj(t), out)
        pops = self._pops(s)
        defined = [self.adj(t) in self.owned and self.active(t) for t in s.targets]
        if not any(defined) or not self.active(s.value):
            for t in s.targets:
                if self.active(t):
                    self.owned.pop(self.adj(t), None)
            return pops
        self._comment(s.line, out)
        elts = [load(self.adj(t)) if d else self._zeros(t) for t, d in zip(s.targets, defined)]
        tup = ast.Tuple(elts=elts, ctx=ast.Load())
        for t in s.targets:
            self.owned.pop(self.adj(t), None)
        self._accumulate(s.value, tup, False, out)
        return out + pops

    def _selection(self, s: ir.SetItem, base: str, copied: bool = False, store: bool = False) -> ast.expr:
        """``base[index]`` of ``x[index] = v``; ``copied``: a copy of it (what
        the assignment is about to overwrite, or a gradient about to be zeroed)."""
        sub = ast.Subscript(value=load(base), slice=copy.deepcopy(s.index), ctx=ast.Store() if store else ast.Load())
        if not copied:
            return sub
        sel = self.ctx.shapes.get(ir.selection_key(s))
        if sel is not None and sel.kind == "scalar":
            return sub  # one element: a NumPy scalar, already a copy
        if sel is not None and sel.kind == "array":
            return call(ast.Attribute(value=sub, attr="copy", ctx=ast.Load()))
        return call(attr(self.ctx.np, "copy"), sub)

    def _rev_setitem(self, s: ir.SetItem) -> list[ast.stmt]:
        """``x[i] = v``: ``v`` gets what arrived at ``x[i]``, which then stops
        there (the old values were overwritten), and ``x[i]`` gets its old
        values back for the statements before."""
        out: list[ast.stmt] = []
        restore = []
        if not self.first_pass and self.stack and self._saves_overwritten(s):
            restore.append(ast.Assign(targets=[self._selection(s, s.target, store=True)],
                                      value=call(attr(self.stack, "pop")), lineno=0))
        d = self.adj(s.target) if self.active(s.target) else None
        if d is None or d not in self.owned:
            return restore
        self._comment(s.line, out)
        self._materialize(d, out)
        if not self.owned[d]:
            out.append(assign(d, call(attr(self.ctx.np, "array"), load(d))))  # may alias: copy before writing
            self.owned[d] = True
        v = s.value
        if isinstance(v, ast.Name) and self.active(v.id):
            key = ir.selection_key(s)
            sel, sv = self.ctx.shapes.get(key), self.ctx.shapes.get(v.id)
            if sel is not None and sv is not None and sel.numeric and \
                    sv.numeric and sel.shape != sv.shape:
                g = self._unbroadcast(self._selection(s, d), v.id, key)  # v was broadcast: sum it down
            elif sel is not None and sv is not None and sel.shape == sv.shape:
                g = self._selection(s, d, copied=True)
            else:
                g = call(attr(self.ctx.rt, "unbroadcast"), self._selection(s, d, copied=True), load(v.id))
            self._accumulate(v.id, g, True, out)
        out.append(ast.Assign(targets=[self._selection(s, d, store=True)], value=ast.Constant(value=0.0), lineno=0))
        return out + restore

    def _rev_append(self, s: ir.Append) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        self._materialize(self.adj(s.lst), out)
        lst = s.lst
        if lst in self.needed or self.first_pass:
            out.append(ast.Expr(value=call(attr(lst, "pop"))))
        v = s.value
        dl = self.adj(lst)
        if self.active(lst) and dl in self.owned:
            popped = call(attr(dl, "pop"))
            if isinstance(v, ast.Name) and self.active(v.id):
                self._comment(s.line, out)
                self._accumulate(v.id, popped, False, out)
            else:
                out.append(ast.Expr(value=popped))
        return out

    def _merge_states(self, a: dict, b: dict, code_a: list, code_b: list) -> dict:
        merged = {}
        for k in sorted(set(a) | set(b)):
            if k in a and k in b:
                merged[k] = a[k] and b[k]
            else:
                primal = self._primal_of(k)
                z = assign(k, self._zeros(primal))
                (code_b if k in a else code_a).append(z)
                merged[k] = (a.get(k, True) and b.get(k, True))
        return merged

    def _primal_of(self, adj_name: str) -> str:
        for p, a in self.adj_names.items():
            if a == adj_name:
                return p
        raise KeyError(adj_name)

    def _rev_if(self, s: ir.If) -> list[ast.stmt]:
        pre: list[ast.stmt] = []
        self._materialize_all(pre)
        return pre + self._rev_if_body(s)

    def _rev_if_body(self, s: ir.If) -> list[ast.stmt]:
        self.rev_depth += 1
        try:
            return self._rev_if_inner(s)
        finally:
            self.rev_depth -= 1

    def _rev_if_inner(self, s: ir.If) -> list[ast.stmt]:
        start = dict(self.owned)
        self.owned = dict(start)
        body = self._rev_block(s.body)
        st_body = self.owned
        self.owned = dict(start)
        orelse = self._rev_block(s.orelse)
        st_else = self.owned
        self.owned = self._merge_states(st_body, st_else, body, orelse)
        self.last_comment = None
        return if_stmt(s.test, body, orelse)

    def _rev_loop(self, s) -> list[ast.stmt]:
        pre: list[ast.stmt] = []
        self._materialize_all(pre)
        # adjoints the loop writes into (x[i] = v): their own array, before the loop rather than every step
        for st in ir.walk(s.body):
            if isinstance(st, ir.SetItem) and self.active(st.target):
                d = self.adj(st.target)
                if d in self.owned and not self.owned[d]:
                    pre.append(assign(d, call(attr(self.ctx.np, "array"), load(d))))
                    self.owned[d] = True
        entry = dict(self.owned)
        # each round adds adjoints to `entry` or turns one from owned to shared, never back:
        # a fixpoint within (number of adjoints that can exist) * 2 rounds
        for _ in range(2 * (len(self.primal) + len(self.adj_names)) + 2):
            self.owned = dict(entry)
            self.last_comment = None
            self.rev_depth += 1
            try:
                body = self._rev_block(s.body)
            finally:
                self.rev_depth -= 1
            exit_ = self.owned
            changed = False
            added = set()
            for k in exit_:
                if k not in entry:
                    pre.append(assign(k, self._zeros(self._primal_of(k))))
                    entry[k] = True
                    added.add(k)
                    changed = True
            for k in list(entry):
                if k not in added and k in exit_ and entry[k] and not exit_[k]:
                    entry[k] = False
                    changed = True
            if not changed:
                break
        else:
            raise InternalError("the adjoints live across a backward loop did not reach a fixpoint")
        for k in entry:
            if k not in exit_:
                body.append(assign(k, self._zeros(self._primal_of(k))))
        if body and not self.first_pass:
            replay = [assign(st.target, copy.deepcopy(st.value)) for st in getattr(self, "remat", {}).get(id(s), [])]
            body = replay + body
        self.owned = dict(entry)
        self.last_comment = None
        if not body:
            return pre
        if isinstance(s, ir.For):
            rng: ast.expr = call(load("range"), *s.range_args)
            if s.counter:
                rng = ast.Subscript(value=rng, slice=ast.Slice(upper=load(s.counter)), ctx=ast.Load())
            loop = ast.For(target=store(s.target), iter=call(load("reversed"), rng), body=[comment(s.header)] + body,
                           orelse=[], lineno=0)
        else:
            under = self.new_name("_")
            loop = ast.For(target=store(under), iter=call(load("range"), load(s.counter)),
                           body=[comment(s.header)] + body, orelse=[], lineno=0)
        return pre + [loop]

    # -- assembling -----------------------------------------------------------
    def _assemble(self, fwd, bwd):
        fn = self.fn
        args = arguments_of(fn)
        if self.stack:
            new = call(attr(self.ctx.rt, "Stack")) if self.ctx.debug_stack else ast.List(elts=[], ctx=ast.Load())
            fwd = [assign(self.stack, new)] + fwd
        res = fn.result if fn.result is not None else ast.Constant(value=None)
        restored = {n for names in self.pushed.values() for n in names}
        keep_value = self.mode != "main" or self.ctx.keep_value
        if keep_value and isinstance(res, ast.Name) and res.id in restored:
            # the backward sweep restores older values of this name: keep the result
            keep = self.new_name("value")
            fwd = fwd + [assign(keep, load(res.id))]
            res = load(keep)
        if self.mode == "main":
            grads = []
            for p in self.wrt:
                d = self.adj_names.get(p)
                if d is not None and d in self.final_state:
                    kind = self.ctx.kinds.get(p)
                    if kind == "farray" and self.final_state[d]:
                        dtype = self.ctx.dtypes.get(p, "float64")
                        # a float32 argument gets a float32 gradient (free when it already is one)
                        cast = ast.Call(func=attr(d, "astype"), args=[ast.Constant(value=dtype)],
                                        keywords=[ast.keyword(arg="copy", value=ast.Constant(value=False))])
                        grads.append(load(d) if dtype == "float64" else cast)
                    else:
                        grads.append(call(attr(self.ctx.rt, "mirror"), load(d), load(p)))
                else:
                    grads.append(call(attr(self.ctx.rt, "mirror"), self._zeros(p), load(p)))
            out: ast.expr = grads[0] if self.ctx.single else ast.Tuple(elts=grads, ctx=ast.Load())
            ret = ast.Tuple(elts=[res, out], ctx=ast.Load()) if self.ctx.keep_value else out
            body = [comment("forward pass")] + fwd + [comment("backward pass")] + self.seed_code + bwd
            body.append(ast.Return(value=ret))
            self.to_simplify = {self.gen_name}
            return funcdef(self.gen_name, args, body)
        # helper: forward returns (result, saved); backward takes (g, saved)
        spec: HelperSpec = self.spec
        grads = []
        for p in spec.varied:
            d = self.adj_names.get(p)
            if d is not None and d in self.final_state:
                grads.append(load(d))
            else:
                grads.append(self._zeros(p))  # no gradient reached p: zeros shaped like it
        # the zeros read the parameter itself: it is saved like any value the backward pass reads
        needed = self.needed | (self._reads(grads) & set(fn.params))
        saved = sorted(needed - {self.stack} if self.stack else needed,
                       key=lambda n: (n not in fn.params, n))
        saved_elts = [load(n) for n in saved] + ([load(self.stack)] if self.stack else [])
        fwd_ret = ast.Return(value=ast.Tuple(elts=[res, ast.Tuple(elts=saved_elts, ctx=ast.Load())],
                                             ctx=ast.Load()))
        top = set(fn.params)
        for st in fn.body:
            if isinstance(st, ir.Assign):
                top.update(self._targets(st))
            elif isinstance(st, ir.Unpack):
                top.update(st.targets)
        predeclare = [assign(n, ast.Constant(value=None)) for n in saved if n not in top]
        fwd_def = funcdef(spec.fwd, args, predeclare + fwd + [fwd_ret])
        unpack = []
        if saved_elts:
            names = saved + ([self.stack] if self.stack else [])
            target = ast.Tuple(elts=[store(n) for n in names], ctx=ast.Store()) if len(names) > 1 else \
                ast.Tuple(elts=[store(names[0])], ctx=ast.Store())
            unpack = [ast.Assign(targets=[target], value=load(self.saved_param), lineno=0)]
        ret = grads[0] if len(grads) == 1 else ast.Tuple(elts=grads, ctx=ast.Load())
        bwd_args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=self.g_param), ast.arg(arg=self.saved_param)],
                                 vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        body = unpack + self.seed_code + bwd + [ast.Return(value=ret)]
        bwd_def = funcdef(spec.bwd, bwd_args, body)
        self.to_simplify = {spec.bwd}  # (the forward function is the user's code as it is)
        return [fwd_def, bwd_def]

    def simplify_facts(self) -> tuple[set[str], set[str], set[str]]:
        """What simplify must know of the generated code: the names it must keep
        (parameters and primal values), the names known to hold floats, and the
        adjoint names."""
        return (self._protected(), *self._simplify_facts())

    def _simplify_facts(self) -> tuple[set[str], set[str]]:
        """Names known to hold floats, and the adjoint names (see simplify)."""
        adjoints = set(self.adj_names.values())
        floats = {n for n, sh in self.ctx.shapes.items() if sh.numeric and sh.dtype == "f"}
        return floats | adjoints, adjoints

    def _protected(self) -> set[str]:
        """Names simplify must keep: parameters and the primal values."""
        adj_params = {self.adj_names[p] for p in self.fn.params if p in self.adj_names}
        return set(self.primal) | {self.stack} | set(self.fn.params) | adj_params
