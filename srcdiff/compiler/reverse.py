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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InternalError, SrcdiffError
from ..rules import TABLE
from . import ir, site
from .activity import Activity
from .graph import reduced_axes, reduction_of
from .simplify import simplify

COMMENT = "__srcdiff_comment__"


def N(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def S(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store())


def assign(target: str | ast.expr, value: ast.expr) -> ast.Assign:
    t = S(target) if isinstance(target, str) else target
    return ast.Assign(targets=[t], value=value, lineno=0)


def call(func: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args), keywords=[])


def attr(base: str, name: str) -> ast.Attribute:
    return ast.Attribute(value=N(base), attr=name, ctx=ast.Load())


def comment(text: str) -> ast.Expr:
    return ast.Expr(value=call(N(COMMENT), ast.Constant(value=text)))


_TEMPLATE_CACHE: dict[str, ast.expr] = {}


def parse_template(t: str) -> ast.expr:
    tree = _TEMPLATE_CACHE.get(t)
    if tree is None:
        tree = ast.parse(t, mode="eval").body
        _TEMPLATE_CACHE[t] = tree
    return copy.deepcopy(tree)


class _Subst(ast.NodeTransformer):
    def __init__(self, mapping: dict[str, ast.expr]) -> None:
        self.mapping = mapping

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.mapping:
            return copy.deepcopy(self.mapping[node.id])
        return node


def instantiate(template: str, mapping: dict[str, ast.expr]) -> ast.expr:
    return _Subst(mapping).visit(parse_template(template))


@dataclass
class HelperSpec:
    """A user helper specialized for the parameters that carry gradients."""

    fn: Any
    fwd: str
    bwd: str
    varied: list[str]  # parameters whose gradients bwd returns, in order
    params: list[str] = field(default_factory=list)
    returns_container: bool = False
    active: bool = True
    base: str = "helper"  # what its generated names start with (an identifier)


@dataclass
class Context:
    """What the reverse pass needs from the outside world."""

    np: str
    math: str
    rt: str
    inject: dict[str, Any]  # extra names the generated code refers to -> objects
    helper_spec: Any  # callable(fn, varied_params) -> HelperSpec
    kinds: dict[str, str] = field(default_factory=dict)  # wrt param -> kind
    debug_stack: bool = False  # instrumented stacks (srcdiff.stack_stats)
    keep_value: bool = True  # main function: also return f's value (value_and_grad)
    single: bool = False  # main function: one gradient rather than a tuple
    shapes: dict[str, tuple] = field(default_factory=dict)  # name -> (kind, shape, dtype kind), see shapes.py
    helper_calls: dict[int, list] = field(default_factory=dict)  # id(call stmt) -> recorded (args, kwargs)
    cut: dict[str, str] = field(default_factory=dict)  # values passing no gradient (invariance.py)
    dtypes: dict[str, str] = field(default_factory=dict)  # float array parameter -> its dtype's name
    float_arrays: set[str] = field(default_factory=set)  # always float ndarrays, shapes stable or not
    copy_views: set[int] = field(default_factory=set)  # ids of statements whose value the forward copies
    mutable: set[str] = field(default_factory=set)  # seen holding an array or a list (x op= e is in place)


class Reverse:
    def __init__(self, fn: ir.Function, act: Activity, ctx: Context, wrt: list[str],
                 mode: str = "main", gen_name: str = "") -> None:
        self.fn = fn
        self.act = act
        self.ctx = ctx
        self.wrt = wrt
        self.mode = mode
        self.gen_name = gen_name
        self.alloc_taken = fn.names
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
    def fresh(self, base: str) -> str:
        taken = self.alloc_taken
        if base not in taken:
            taken.add(base)
            return base
        i = 1
        while f"{base}_{i}" in taken:
            i += 1
        taken.add(f"{base}_{i}")
        return f"{base}_{i}"

    def adj(self, name: str) -> str:
        a = self.adj_names.get(name)
        if a is None:
            a = self.fresh("d" + name if not name.startswith("_") else "d" + name)
            self.adj_names[name] = a
        return a

    def active(self, name: str) -> bool:
        return self.act.is_active(name)

    def _find_containers(self) -> None:
        for p, k in self.ctx.kinds.items():
            if k in ("tuple", "list", "dict"):
                self.containers.add(p)
        for name, sh in self.ctx.shapes.items():
            if sh[0] == "container":
                self.containers.add(name)
        # parameters of unknown kind read as sequences (p[0], a, b = p), and the parts read
        # from them: their adjoints may be containers, added elementwise (never with +)
        import operator

        def unknown(n: str) -> bool:
            return self.ctx.shapes.get(n, ("",))[0] not in ("array", "scalar") and \
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
                            or k == "rule" and s.op.callee in (list, tuple):
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
                if not all(self.ctx.shapes.get(a.id, ("",))[0] in ("array", "scalar") for a in s.op.operands):
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
                self.saved_names[id(s)] = self.fresh(f"{spec.base}_saved")
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
                self.g_param = self.fresh("g")
            self.saved_param = self.fresh("saved")
        # pass 1: the backward sweep, to learn which primal values it reads
        self.stack = ""
        taken = set(self.alloc_taken)
        self._backward(first_pass=True)
        self.needed = self._reads(self._bwd_code)
        stack_name = ""
        # then with saving planned: restoring a value can make the sweep read more
        # (a loop that only restores still needs its trip count), so repeat until stable
        # `needed` only grows, within the finite set of primal names: at most that many rounds
        for _ in range(len(self.primal) + 2):
            if not stack_name and self._needs_stack():
                stack_name = self.fresh("stack")
                taken.add(stack_name)
            self.stack = stack_name
            self._plan_pushes()
            self.alloc_taken.clear()
            self.alloc_taken.update(taken | set(self.adj_names.values()))
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

    # -- what to save -------------------------------------------------------
    def _targets(self, s) -> list[str]:
        if isinstance(s, ir.Assign):
            if s.counter:
                return []
            t = [s.target]
            if id(s) in self.saved_names:
                t.append(self.saved_names[id(s)])
            return t
        if isinstance(s, ir.Unpack):
            return list(s.targets)
        return []

    def _needs_stack(self) -> bool:
        self._plan_pushes()
        return bool(self.pushed) or any(self._saves_overwritten(s) for s in ir.walk(self.fn.body))

    def _saves_overwritten(self, s) -> bool:
        """Does ``x[i] = v`` save what it overwrites?  When the backward code of
        a statement that ran before it reads ``x`` (the forward order: earlier
        statements, and every statement of an enclosing loop), which must see
        the old values again."""
        if not isinstance(s, ir.SetItem) or s.target not in self.needed:
            return False
        before = self._ran_before.get(id(s))
        if before is None:
            before = self._ran_before[id(s)] = self._statements_before(s)
        return any(s.target in self.bwd_reads.get(i, ()) for i in before)

    def _statements_before(self, target) -> set[int]:
        """ids of the statements whose backward code runs after ``target``'s."""
        order: list = []
        loops: list = []

        def visit(stmts, enclosing):
            for st in stmts:
                order.append(st)
                if st is target:
                    loops.extend(enclosing)
                if isinstance(st, ir.If):
                    visit(st.body, enclosing)
                    visit(st.orelse, enclosing)
                elif isinstance(st, (ir.For, ir.While)):
                    visit(st.body, enclosing + [st])

        visit(self.fn.body, [])
        k = next(i for i, st in enumerate(order) if st is target)
        out = {id(st) for st in order[:k]}
        for loop in loops:
            out |= {id(st) for st in ir.walk(loop.body)}
        out.discard(id(target))
        return out

    def _plan_pushes(self) -> None:
        self.pushed = {}
        self.none_init = {}
        needed = self.needed | {self.saved_names[i] for i in self.saved_names}
        defined = set(self.fn.params)

        invariant = self._loop_invariant()
        self.remat = self._rematerializable(needed)
        for stmts in self.remat.values():
            invariant |= {id(x) for x in stmts}

        def walk(stmts, in_loop: bool, top_id=None):
            for s in stmts:
                tid = top_id if top_id is not None else id(s)
                if isinstance(s, (ir.Assign, ir.Unpack)):
                    ts = self._targets(s)
                    saved = [t for t in ts if t in needed and (in_loop or t in defined) and id(s) not in invariant]
                    if saved:
                        self.pushed[id(s)] = saved
                    defined.update(ts)
                elif isinstance(s, ir.If):
                    before = set(defined)
                    walk(s.body, in_loop, tid)
                    after_body = set(defined)
                    defined.clear()
                    defined.update(before)
                    walk(s.orelse, in_loop, tid)
                    defined.update(after_body)
                elif isinstance(s, (ir.For, ir.While)):
                    assigned = self._assigned_in(s.body)
                    fresh = sorted(n for n in assigned if n in needed and n not in defined)
                    # (only names a statement in the loop actually saves need a first value)
                    if fresh:
                        self.none_init.setdefault(id(s), []).extend(fresh)
                    defined.update(assigned)
                    if isinstance(s, ir.For):
                        defined.add(s.target)
                    walk(s.body, True, tid)

        walk(self.fn.body, False)
        pushed_names = {n for names in self.pushed.values() for n in names}
        for k in list(self.none_init):
            self.none_init[k] = [n for n in self.none_init[k] if n in pushed_names]

    def _assign_counts(self) -> dict[str, int]:
        """How many statements write each name (a parameter counts once)."""
        counts = dict.fromkeys(self.fn.params, 1)
        for s in ir.walk(self.fn.body):
            for t in _all_targets(self, s):
                counts[t] = counts.get(t, 0) + 1
        return counts

    def _assigned_in(self, stmts) -> set[str]:
        """Every name the statements (and their nested blocks) write."""
        return {t for s in ir.walk(stmts) for t in _all_targets(self, s)}

    def _rematerializable(self, needed: set[str]) -> dict[int, list]:
        """Values a ``for`` loop's backward sweep recomputes instead of saving:
        pure statements at the top level of the loop body that read only
        values the loop does not change, its index, and other such values
        (``x_t = xs[t]``).  Maps id(loop) -> statements to replay, in order."""
        out: dict[int, list] = {}
        counts = self._assign_counts()
        for loop in ir.walk(self.fn.body):
            if not isinstance(loop, ir.For) or loop.counter:
                continue
            assigned = self._assigned_in(loop.body)
            ok = {loop.target}
            chosen = []
            for st in loop.body:
                if not isinstance(st, ir.Assign) or st.op is None or st.counter or not _pure(st) \
                        or counts.get(st.target) != 1 or id(st) in self.saved_names:
                    continue
                names = {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
                if all(n in ok or n not in assigned for n in names):
                    ok.add(st.target)
                    if names & ok:  # reads the index: differs per iteration, so replay it
                        chosen.append(st)
            # replay only what the backward sweep reads (and what those read)
            want = {st.target for st in chosen if st.target in needed}
            for st in reversed(chosen):
                if st.target in want:
                    want |= {n.id for n in ast.walk(st.value) if isinstance(n, ast.Name)}
            keep = [st for st in chosen if st.target in want]
            if keep:
                out[id(loop)] = keep
        return out

    def _loop_invariant(self) -> set[int]:
        """Pure statements inside loops whose operands no enclosing loop
        changes: they store the same value in every iteration, so the value
        never needs saving.  (Names assigned twice are excluded.)"""
        out: set[int] = set()
        counts = self._assign_counts()

        def visit(stmts, outer_assigned):
            for s in stmts:
                if isinstance(s, ir.Assign) and outer_assigned is not None and s.op is not None and \
                        counts.get(s.target) == 1 and not s.counter and _pure(s):
                    names = {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}
                    if not names & outer_assigned:
                        out.add(id(s))
                elif isinstance(s, ir.If):
                    visit(s.body, outer_assigned)
                    visit(s.orelse, outer_assigned)
                elif isinstance(s, (ir.For, ir.While)):
                    if outer_assigned is None:
                        assigned = self._assigned_in(s.body)
                        if isinstance(s, ir.For):
                            assigned.add(s.target)
                        visit(s.body, assigned)
                    else:
                        visit(s.body, outer_assigned)

        visit(self.fn.body, None)
        return out

    # -- forward ------------------------------------------------------------
    def _forward(self) -> list[ast.stmt]:
        self.dead = self._dead_statements()
        return self._fwd_block(self.fn.body)

    def _live_outside(self, loop) -> set[str]:
        """Names read by the kept statements outside ``loop`` and by the backward sweep."""
        inside = {id(x) for x in ir.walk(loop.body)} | {id(loop)}
        out = set(self.needed)
        for st in ir.walk(self.fn.body):
            if id(st) not in inside and id(st) not in self.dead:
                out |= {n.id for n in ast.walk(ir.reads_of(st)) if isinstance(n, ast.Name)}
        if isinstance(self.fn.result, ast.Name):
            out.add(self.fn.result.id)
        return out

    def _dead_statements(self) -> set[int]:
        """Forward statements nothing needs: values computed only for the
        function's result, when the caller wants the gradient alone."""
        keep = set(self.needed)
        res = self.fn.result
        value_needed = self.mode != "main" or self.ctx.keep_value or any(
            isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
            and isinstance(st.value.func, ast.Attribute) and st.value.func.attr == "seed"
            for st in self.seed_code)
        if isinstance(res, ast.Name) and value_needed:
            keep.add(res.id)
        if isinstance(res, ast.Name) and self.seed_code and not value_needed:
            for st in self.seed_code:
                if any(isinstance(n, ast.Name) and n.id == res.id for n in ast.walk(st)):
                    keep.add(res.id)
        candidates = [st for st in ir.walk(self.fn.body) if isinstance(st, ir.Assign) and st.op is not None
                      and not st.counter and _pure(st) and id(st) not in self.helper_specs]
        dead: set[int] = set()
        while True:
            used = set(keep)
            for st in ir.walk(self.fn.body):
                if id(st) in dead:
                    continue
                for n in ast.walk(ir.reads_of(st)):
                    if isinstance(n, ast.Name):
                        used.add(n.id)
            new = {id(st) for st in candidates if st.target not in used} - dead
            if not new:
                return dead
            dead |= new

    def _push(self, name: str) -> ast.stmt:
        return ast.Expr(value=call(attr(self.stack, "append"), N(name)))

    def _fwd_block(self, stmts) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, (ir.For, ir.While)) and id(s) in self.none_init:
                for n in self.none_init[id(s)]:
                    out.append(assign(n, ast.Constant(value=None)))
            if isinstance(s, ir.Assign):
                if id(s) in self.dead:
                    continue
                for t in self.pushed.get(id(s), ()):
                    out.append(self._push(t))
                if id(s) in self.helper_specs:
                    spec = self.helper_specs[id(s)]
                    value = ast.Call(func=N(spec.fwd), args=list(s.op.args),
                                     keywords=[ast.keyword(arg=k, value=v) for k, v in s.op.bound.items()])
                    target = ast.Tuple(elts=[S(s.target), S(self.saved_names[id(s)])], ctx=ast.Store())
                    out.append(ast.Assign(targets=[target], value=value, lineno=0))
                elif s.counter:
                    out.append(ast.AugAssign(target=S(s.target), op=ast.Add(), value=ast.Constant(value=1)))
                elif id(s) in self.ctx.copy_views and s.target in self.needed:
                    # a view of an array assigned into later, which the backward pass reads: keep it as it is now
                    out.append(assign(s.target, call(ast.Attribute(value=self._method_form(s), attr="copy",
                                                                   ctx=ast.Load()))))
                else:
                    out.append(assign(s.target, self._method_form(s)))
            elif isinstance(s, ir.Unpack):
                for t in self.pushed.get(id(s), ()):
                    out.append(self._push(t))
                out.append(ast.Assign(targets=[ast.Tuple(elts=[S(t) for t in s.targets], ctx=ast.Store())],
                                      value=N(s.value), lineno=0))
            elif isinstance(s, ir.Append):
                out.append(ast.Expr(value=call(attr(s.lst, "append"), copy.deepcopy(s.value))))
            elif isinstance(s, ir.SetItem):
                if self.stack and self._saves_overwritten(s):
                    out.append(ast.Expr(value=call(attr(self.stack, "append"), self._selection(s, s.target, True))))
                out.append(ast.Assign(targets=[self._selection(s, s.target, store=True)],
                                      value=copy.deepcopy(s.value), lineno=0))
            elif isinstance(s, ir.Expr):
                out.append(s.node)
            elif isinstance(s, ir.If):
                body = self._fwd_block(s.body)
                orelse = self._fwd_block(s.orelse)
                out.extend(_if(s.test, body, orelse))
            elif isinstance(s, ir.For):
                hoisted, rest = self._hoist(s)
                out += self._fwd_block(hoisted)
                body = self._fwd_block(rest)
                if not body and not s.counter and s.target not in self._live_outside(s):
                    continue  # everything in it was only needed for f's value
                body = body or [ast.Pass()]
                out.append(ast.For(target=S(s.target), iter=call(N("range"), *s.range_args), body=body,
                                   orelse=[], lineno=0))
            elif isinstance(s, ir.While):
                hoisted, rest = self._hoist(s)
                out += self._fwd_block(hoisted)
                body = self._fwd_block(rest) or [ast.Pass()]
                out.append(ast.While(test=copy.deepcopy(s.test), body=body, orelse=[]))
            elif isinstance(s, ir.BreakIf):
                out.append(ast.If(test=N(s.flag), body=[ast.Break()], orelse=[]))
            elif isinstance(s, ir.Return):
                pass
        return out

    def _method_form(self, s: ir.Assign) -> ast.expr:
        """``np.max(z, axis=1)`` as ``z.max(axis=1)`` when ``z`` is known to be a
        float ndarray: the same computation, without NumPy's Python wrapper
        (about a microsecond per call)."""
        v = s.value
        op = s.op
        if op is not None and op.kind == "rule" and isinstance(v, ast.Call) and v.args and \
                isinstance(v.func, ast.Attribute) and isinstance(v.args[0], ast.Name):
            method = reduction_of(op) if op.rule.fn is not None else None
            sh = self.ctx.shapes.get(v.args[0].id)
            if method and sh is not None and sh[0] == "array" and sh[2] == "f":
                return ast.Call(func=ast.Attribute(value=copy.deepcopy(v.args[0]), attr=method, ctx=ast.Load()),
                                args=copy.deepcopy(v.args[1:]), keywords=copy.deepcopy(v.keywords))
        return copy.deepcopy(v)

    def _hoist(self, loop) -> tuple[list, list]:
        """Statements of a loop's body that compute the same value in every
        iteration (``t1 = -k`` when ``k`` never changes in the loop): computed
        once, before the loop, in the forward pass.  Only the compiler's own
        temporaries, only operations that cannot fail (+, -, *), never a value
        the stack saves.  Returns (hoisted, the rest of the body)."""
        import operator

        changing = self._assigned_in(loop.body) | ({loop.target} if isinstance(loop, ir.For) else set())
        if loop.counter:
            changing.add(loop.counter)
        hoisted, rest = [], []
        for st in loop.body:
            if isinstance(st, ir.Assign) and st.target in self.fn.temps and not st.counter and \
                    st.op is not None and st.op.kind == "rule" and \
                    st.op.rule.fn in (operator.add, operator.sub, operator.mul, operator.neg, operator.pos) and \
                    not self.pushed.get(id(st)) and id(st) not in self.dead and \
                    all(isinstance(e, ast.Constant) or isinstance(e, ast.Name) and e.id not in changing
                        for e in st.op.bound.values()) and \
                    sum(isinstance(x, ir.Assign) and x.target == st.target for x in ir.walk(loop.body)) == 1:
                hoisted.append(st)
                changing.discard(st.target)
            else:
                rest.append(st)
        return hoisted, rest

    # -- backward -----------------------------------------------------------
    def _backward(self, first_pass: bool) -> None:
        self.first_pass = first_pass
        self.adj_state: dict[str, bool] = {}
        # adjoints kept smaller than their value, broadcast: name -> (full shape, stored shape).
        # The adjoint of a full sum is one number standing for a filled array, that of a
        # row-wise sum one column; elementwise rules take them as they are (NumPy broadcasts),
        # anything else writes them out first (np.full).  Top level only.
        self.uniform: dict[str, tuple] = {}
        self.rev_depth = 0
        self.last_comment = None
        code: list[ast.stmt] = []
        res = self.fn.result
        self.seed_code: list[ast.stmt] = []
        if isinstance(res, ast.Name) and self.active(res.id):
            d = self.adj(res.id)
            if self.mode == "main":
                sh = self.ctx.shapes.get(res.id)
                if sh is not None and sh[0] == "scalar" and sh[2] == "f":
                    # the first call showed a float scalar, and shapes are fixed per compile
                    self.seed_code.append(assign(d, ast.Constant(value=1.0)))
                else:
                    self.seed_code.append(assign(d, call(attr(self.ctx.rt, "seed"), N(res.id),
                                                         ast.Constant(value=self.fn.name))))
            self.adj_state[d] = False
        elif self.mode == "main":
            self.seed_code.append(ast.Expr(value=call(attr(self.ctx.rt, "seed"), copy.deepcopy(res or
                                                      ast.Constant(value=None)),
                                                      ast.Constant(value=self.fn.name))))
        code += self._rev_block(self.fn.body)
        self._materialize_all(code)
        self._bwd_code = code
        self.final_state = dict(self.adj_state)

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
        if sh is not None and sh[0] == "scalar":
            return ast.Constant(value=0.0)
        if sh is not None and sh[0] == "array" and sh[2] == "f" and name not in self.fn.params:
            # a known shape: no need to keep the value around just to read its shape
            return call(attr(self.ctx.np, "zeros"), ast.Tuple(elts=[ast.Constant(value=d) for d in sh[1]],
                                                               ctx=ast.Load()))
        if self.ctx.kinds.get(name) == "farray":
            return call(attr(self.ctx.np, "zeros_like"), N(name))
        return call(attr(self.ctx.rt, "zeros_like"), N(name))

    def _accumulate(self, x: str, expr: ast.expr, fresh: bool, out: list, uniform: tuple | None = None) -> None:
        d = self.adj(x)
        if uniform is not None:
            if d not in self.adj_state:
                out.append(assign(d, expr))
                self.uniform[d] = uniform
            else:
                if d in self.uniform:
                    full, stored = self.uniform[d]
                    self.uniform[d] = (full, tuple(np.broadcast_shapes(stored, uniform[1])))
                out.append(assign(d, ast.BinOp(left=N(d), op=ast.Add(), right=expr)))
            # never added into in place while it is kept small: it may alias g or a primal value
            self.adj_state[d] = True
            return
        if d in self.uniform:
            # kept small, plus a real array: now a real array.  Add the small one into the
            # new array in place rather than allocating a third
            self.uniform.pop(d)
            if fresh and isinstance(expr, ast.Name):
                out.append(ast.AugAssign(target=S(expr.id), op=ast.Add(), value=N(d)))
                out.append(assign(d, expr))
            elif fresh:
                tmp = self.fresh(d)
                out.append(assign(tmp, expr))
                out.append(ast.AugAssign(target=S(tmp), op=ast.Add(), value=N(d)))
                out.append(assign(d, N(tmp)))
            else:
                out.append(assign(d, ast.BinOp(left=N(d), op=ast.Add(), right=expr)))
            self.adj_state[d] = True
            return
        if d not in self.adj_state:
            out.append(assign(d, expr))
            self.adj_state[d] = fresh
        elif x in self.containers:
            out.append(assign(d, call(attr(self.ctx.rt, "add"), N(d), expr)))
            self.adj_state[d] = True
        elif self.adj_state[d]:
            if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
                out.append(ast.AugAssign(target=S(d), op=ast.Sub(), value=expr.operand))
            else:
                out.append(ast.AugAssign(target=S(d), op=ast.Add(), value=expr))
        else:
            out.append(assign(d, ast.BinOp(left=N(d), op=ast.Add(), right=expr)))
            self.adj_state[d] = True

    def _emit_contribs(self, s, contribs: list[tuple[str, ast.expr, bool]], out: list) -> None:
        """Accumulate contributions; the target's own adjoint is reset first
        (its old value starts a fresh adjoint), then contributions to it are
        assigned."""
        y = s.target if isinstance(s, ir.Assign) else None
        dy = self.adj(y) if y else None
        contribs = [c if len(c) == 4 else (*c, None) for c in contribs]
        self_contribs = [c[:3] for c in contribs if c[0] == y]
        others = [c for c in contribs if c[0] != y]
        for x, e, fresh, uniform in others:
            self._accumulate(x, e, fresh, out, uniform)
        if dy is not None:
            self.adj_state.pop(dy, None)
        if self_contribs:
            if len(self_contribs) == 1:
                x, e, fresh = self_contribs[0]
                out.append(assign(dy, e))
                self.adj_state[dy] = fresh
            else:
                total = self_contribs[0][1]
                for _, e, _ in self_contribs[1:]:
                    total = ast.BinOp(left=total, op=ast.Add(), right=e)
                out.append(assign(dy, total))
                self.adj_state[dy] = True

    def _rev_assign(self, s: ir.Assign) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        y = s.target
        pops = self._pops(s)
        if y in self.ctx.cut and not self.first_pass:
            self._comment(s.line, out)
            what = y if y in self.user_names else ast.unparse(s.value)
            out.append(comment(f"no gradient through {what}: the result does not change when it shifts"))
        if s.counter or not self.active(y) or self.adj(y) not in self.adj_state:
            if self.active(y):
                self.adj_state.pop(self.adj(y), None)
            return out + pops
        op = s.op
        dy = self.adj(y)
        g = N(dy)
        contribs: list = []
        if dy in self.uniform and not (op.kind == "copy" or op.kind == "rule" and
                                       (op.rule.facts.elementwise or
                                        reduction_of(op) in ("sum", "mean"))):
            self._materialize(dy, out)
        rename_old: dict[str, ast.expr] = {}
        prev_stmts: list[ast.stmt] = []
        # y = f(..., y, ...) inside a loop or branch: the rule needs the old y
        if (not self.first_pass and y in self.pushed.get(id(s), ()) and op.kind != "helper"
                and y in {n.id for n in op.operands} and self._reads_old_value(s)):
            prev = self.fresh(y + "_prev")
            prev_stmts.append(assign(prev, call(attr(self.stack, "pop"))))
            rename_old[y] = N(prev)
            pops = [assign(y, N(prev))] + pops[1:]
        k = op.kind
        if k == "copy":
            x = op.operands[0].id
            if self.active(x):
                contribs.append((x, g, False, self.uniform.get(dy)))
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
            self.adj_state.pop(dy, None)
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
            self.adj_state.pop(dy, None)
            self.uniform.pop(dy, None)
            return out + prev_stmts + pops
        if any(c[0] == y for c in contribs) and any(len(c) == 4 and c[3] is not None for c in contribs):
            self._materialize(dy, out)  # y = f(y): write the scalar out and use the ordinary rules
            return self._redo_full(s, out, prev_stmts, pops, rename_old)
        self._comment(s.line, out)
        out += prev_stmts
        contribs = self._steal(dy, contribs)
        self.uniform.pop(dy, None)
        self._emit_contribs(s, contribs, out)
        return out + pops

    def _steal(self, dy: str, contribs: list) -> list:
        """A contribution that is ``dy`` itself (``d(x - m)/dx = g``) may take
        over ``dy``'s array when ``dy`` owns it and nothing else gets it: ``dy``
        is dead after this statement, so later additions can go in place."""
        bare = [i for i, c in enumerate(contribs) if isinstance(c[1], ast.Name) and c[1].id == dy]
        if len(bare) != 1 or not self.adj_state.get(dy) or dy in self.uniform:
            return contribs
        x = contribs[bare[0]][0]
        if self.adj_names.get(x) == dy or sum(c[0] == x for c in contribs) != 1:
            return contribs
        # the others must compute new values from dy (no views of it), and go first: adding
        # into the taken-over array happens after they have read it
        for j, c in enumerate(contribs):
            if j != bare[0] and any(isinstance(n, ast.Name) and n.id == dy for n in ast.walk(c[1])) and \
                    not _is_fresh(c[1], self.ctx.np):
                return contribs
        i = bare[0]
        c = contribs[i]
        return contribs[:i] + contribs[i + 1:] + [(c[0], c[1], True) + tuple(c[3:])]


    def _redo_full(self, s, out, prev_stmts, pops, rename_old):
        contribs = self._rule_contribs(s, N(self.adj(s.target)), rename_old) or []
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
        if not (sh is not None and sh[0] == "array" and sh[2] == "f" or x.id in self.ctx.float_arrays
                or float_param) or x.id in self.containers:
            return False
        index = s.value.slice
        basic = True
        for n in ast.walk(index):
            if isinstance(n, ast.Name):
                nsh = self.ctx.shapes.get(n.id)
                if nsh is None or nsh[0] not in ("array", "scalar"):
                    basic = False  # a list, or not known: np.add.at takes any index
                    continue
                if nsh[0] == "array":
                    if nsh[2] not in "iu":
                        return False  # boolean masks: the generic rule
                    basic = False
                elif nsh[2] not in "iu":
                    return False
            elif isinstance(n, ast.Constant) and not (n.value is None or n.value is Ellipsis
                                                       or isinstance(n.value, int)):
                return False
        d = self.adj(x.id)
        self._materialize(d, out)
        state = self.adj_state.get(d)
        if d in self.adj_state and not state:
            return False  # holds an alias: the generic rule adds out of place
        if d not in self.adj_state:
            out.append(assign(d, call(attr(self.ctx.np, "zeros_like"), N(x.id))))
        target = ast.Subscript(value=N(d), slice=copy.deepcopy(index), ctx=ast.Store())
        if basic:
            if d not in self.adj_state:
                out.append(ast.Assign(targets=[target], value=g, lineno=0))
            else:
                out.append(ast.AugAssign(target=target, op=ast.Add(), value=g))
        else:
            idx_value = copy.deepcopy(op.bound["index"])
            out.append(ast.Expr(value=call(ast.Attribute(value=ast.Attribute(value=N(self.ctx.np), attr="add",
                                                                             ctx=ast.Load()),
                                                         attr="at", ctx=ast.Load()), N(d), idx_value, g)))
        self.adj_state[d] = True
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
        mapping: dict[str, ast.expr] = {"g": g, "ans": N(s.target), "np": N(ctx.np), "math": N(ctx.math),
                                        "rt": N(ctx.rt)}
        for p, e in op.bound.items():
            e2 = copy.deepcopy(e)
            if rename_old:
                e2 = _Subst(rename_old).visit(e2)
            mapping[p] = e2
        out = []
        static = dict(op.static)
        for p, e in op.bound.items():
            if isinstance(e, ast.Name) and ctx.shapes.get(e.id, ("",))[0] in ("array", "scalar"):
                static["shape:" + p] = ctx.shapes[e.id][1]
        if ctx.shapes.get(s.target, ("",))[0] in ("array", "scalar"):
            static["shape:ans"] = ctx.shapes[s.target][1]
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
                expr = call(N(vname), g, N(s.target), *pos)
                expr.keywords = [ast.keyword(arg=q.name, value=mapping[q.name]) for q in rule.params
                                 if q.kind == "kwonly" and q.name in mapping]
            dy = self.adj(s.target)
            if s.target in self.nan_safe and rule.facts.elementwise and \
                    not (isinstance(expr, ast.Name) and expr.id == dy):
                # where the adjoint is 0 (a masked NaN), the contribution is 0, never 0 * nan
                if dy in self.uniform:
                    return None  # written out first
                expr = call(attr(ctx.np, "where"), ast.Compare(left=copy.deepcopy(g), ops=[ast.Eq()],
                                                               comparators=[ast.Constant(value=0.0)]),
                            ast.Constant(value=0.0), expr)
            if dy in self.uniform:
                got = self._small_contrib(t, op, p, e.id, s.target, expr)
                if got is None:
                    return None
                out.append(got)
                continue
            fresh = _is_fresh(expr, ctx.np) and (p not in rule.aliases or _always_new(expr, ctx.np))
            full = _full_call(expr, ctx.np)
            if self.rev_depth == 0 and not self.first_pass and full is not None and \
                    all(n.id == dy for n in ast.walk(full[1]) if isinstance(n, ast.Name)):
                # np.full(shape, <a number made from g>): keep the number
                gsh = ctx.shapes.get(s.target)
                if gsh is not None and gsh[0] == "scalar":
                    out.append((e.id, full[1], True, (full[0], ())))
                    continue
            if p in rule.unbroadcast and self._may_broadcast(op, p, s.target):
                expr = self._unbroadcast(expr, e.id, s.target)
                # a reduction builds a new array
                fresh = fresh or (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
                                  and expr.func.attr == "sum" and not expr.keywords == [])
            out.append((e.id, expr, fresh))
        return out

    def _small_contrib(self, t: Any, op: ir.Op, p: str, x: str, y: str, expr: ast.expr) -> tuple | None:
        """The contribution of an elementwise rule to ``x`` when the adjoint of
        ``y`` is kept small (see ``self.uniform``): still small when NumPy's
        broadcasting gives it the right values, a real array when the template
        already has ``x``'s shape (or sums over where ``x`` was broadcast);
        None when the adjoint must be written out first."""
        if not isinstance(t, str):
            return None
        full_y, stored = self.uniform[self.adj(y)]
        tshape = self._uniform_shape(t, op, y, stored)
        sx = self.ctx.shapes.get(x)
        if tshape is None or sx is None or sx[0] not in ("array", "scalar"):
            return None
        sx, sy = tuple(sx[1]), tuple(full_y)
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
            return (x, expr, _is_fresh(expr, self.ctx.np) and p not in op.rule.aliases, None)
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
                sx is None or sy is None or sx[0] not in ("array", "scalar") or sx[2] != "f" or \
                sy[0] not in ("array", "scalar"):
            return None
        sx, sy = tuple(sx[1]), tuple(sy[1])
        axes = reduced_axes(axis, len(sx))
        if axes is None:
            return None
        dy = self.adj(s.target)
        stored = self.uniform[dy][1] if dy in self.uniform else sy
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
            return (x.id, expr, _is_fresh(expr, self.ctx.np), None)
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
                if sh is None or sh[0] not in ("array", "scalar"):
                    return None
                shapes.append(tuple(sh[1]))
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
        if sx is not None and sy is not None and sx[0] in ("array", "scalar") and sy[0] in ("array", "scalar"):
            xs, ys = sx[1], sy[1]
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
        return call(attr(self.ctx.rt, "unbroadcast"), expr, N(x))

    def _may_broadcast(self, op: ir.Op, p: str, target: str = "") -> bool:
        """Could the other operands broadcast this one to a bigger shape?
        Not when they are literal scalars or the very same value, or when the
        recorded shapes of operand and result agree."""
        me = op.bound[p]
        shapes = self.ctx.shapes
        if isinstance(me, ast.Name) and me.id in shapes and target in shapes and \
                shapes[me.id][0] in ("array", "scalar") and shapes[target][0] in ("array", "scalar") and \
                shapes[me.id][1] == shapes[target][1]:
            return False
        others = [op.bound[q] for q in op.rule.unbroadcast if q != p and q in op.bound]
        return not all(isinstance(o, ast.Constant) or isinstance(o, ast.Name) and isinstance(me, ast.Name)
                       and o.id == me.id for o in others)

    def _inject_callable(self, fn: Any, rule, p: str) -> str:
        for name, obj in self.ctx.inject.items():
            if obj is fn:
                return name
        base = (getattr(fn, "__name__", "") or "vjp").strip("<>")
        if not base.isidentifier() or base == "lambda":
            base = f"{rule.name.split('.')[-1]}_vjp_{p}"
        name = self.fresh(base)
        self.ctx.inject[name] = fn
        return name

    def _rev_helper(self, s: ir.Assign, prev_stmts, pops, out) -> list[ast.stmt]:
        spec = self.helper_specs.get(id(s))
        y = s.target
        dy = self.adj(y)
        if spec is None or not spec.varied:
            self.adj_state.pop(dy, None)
            return prev_stmts + pops
        binding = self._helper_binding(s)
        atoms = [binding[p] for p in spec.varied]
        targets = [a.id if isinstance(a, ast.Name) and self.active(a.id) else None for a in atoms]
        if not any(targets):
            self.adj_state.pop(dy, None)
            return prev_stmts + pops
        self._comment(s.line, out)
        out += prev_stmts
        bwd_call = call(N(spec.bwd), N(dy), N(self.saved_names[id(s)]))
        self.adj_state.pop(dy, None)
        if len(spec.varied) == 1:
            x = targets[0]
            self._accumulate(x, bwd_call, False, out)
            return out + pops
        direct = all(t is not None and self.adj(t) not in self.adj_state for t in targets) and \
            len(set(targets)) == len(targets)
        if direct:
            out.append(ast.Assign(targets=[ast.Tuple(elts=[S(self.adj(t)) for t in targets], ctx=ast.Store())],
                                  value=bwd_call, lineno=0))
            for t in targets:
                self.adj_state[self.adj(t)] = False
            return out + pops
        temps = [self.fresh(f"d{spec.base}_{p}") for p in spec.varied]
        out.append(ast.Assign(targets=[ast.Tuple(elts=[S(t) for t in temps], ctx=ast.Store())],
                              value=bwd_call, lineno=0))
        for t, tmp in zip(targets, temps):
            if t is not None:
                self._accumulate(t, N(tmp), False, out)
        return out + pops

    def _rev_unpack(self, s: ir.Unpack) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for t in s.targets:
            self._materialize(self.adj(t), out)
        pops = self._pops(s)
        defined = [self.adj(t) in self.adj_state and self.active(t) for t in s.targets]
        if not any(defined) or not self.active(s.value):
            for t in s.targets:
                if self.active(t):
                    self.adj_state.pop(self.adj(t), None)
            return pops
        self._comment(s.line, out)
        elts = [N(self.adj(t)) if d else self._zeros(t) for t, d in zip(s.targets, defined)]
        tup = ast.Tuple(elts=elts, ctx=ast.Load())
        for t in s.targets:
            self.adj_state.pop(self.adj(t), None)
        self._accumulate(s.value, tup, False, out)
        return out + pops

    def _selection(self, s: ir.SetItem, base: str, copied: bool = False, store: bool = False) -> ast.expr:
        """``base[index]`` of ``x[index] = v``; ``copied``: a copy of it (what
        the assignment is about to overwrite, or a gradient about to be zeroed)."""
        sub = ast.Subscript(value=N(base), slice=copy.deepcopy(s.index), ctx=ast.Store() if store else ast.Load())
        if not copied:
            return sub
        sel = self.ctx.shapes.get(ir.selection_key(s))
        if sel is not None and sel[0] == "scalar":
            return sub  # one element: a NumPy scalar, already a copy
        if sel is not None and sel[0] == "array":
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
        if d is None or d not in self.adj_state:
            return restore
        self._comment(s.line, out)
        self._materialize(d, out)
        if not self.adj_state[d]:
            out.append(assign(d, call(attr(self.ctx.np, "array"), N(d))))  # may alias: copy before writing
            self.adj_state[d] = True
        v = s.value
        if isinstance(v, ast.Name) and self.active(v.id):
            key = ir.selection_key(s)
            sel, sv = self.ctx.shapes.get(key), self.ctx.shapes.get(v.id)
            if sel is not None and sv is not None and sel[0] in ("array", "scalar") and \
                    sv[0] in ("array", "scalar") and sel[1] != sv[1]:
                g = self._unbroadcast(self._selection(s, d), v.id, key)  # v was broadcast: sum it down
            elif sel is not None and sv is not None and sel[1] == sv[1]:
                g = self._selection(s, d, copied=True)
            else:
                g = call(attr(self.ctx.rt, "unbroadcast"), self._selection(s, d, copied=True), N(v.id))
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
        if self.active(lst) and dl in self.adj_state:
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

    def _materialize(self, d: str, out: list) -> None:
        shape = self.uniform.pop(d, None)
        if shape is not None and d in self.adj_state:
            full = shape[0]
            if not full:
                self.adj_state[d] = False  # a scalar already; it may alias g
                return
            out.append(assign(d, call(attr(self.ctx.np, "full"),
                                      ast.Tuple(elts=[ast.Constant(value=n) for n in full], ctx=ast.Load()),
                                      N(d))))
            self.adj_state[d] = True

    def _materialize_all(self, out: list) -> None:
        for d in sorted(self.uniform):
            self._materialize(d, out)

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
        start = dict(self.adj_state)
        self.adj_state = dict(start)
        body = self._rev_block(s.body)
        st_body = self.adj_state
        self.adj_state = dict(start)
        orelse = self._rev_block(s.orelse)
        st_else = self.adj_state
        self.adj_state = self._merge_states(st_body, st_else, body, orelse)
        self.last_comment = None
        return _if(s.test, body, orelse)

    def _rev_loop(self, s) -> list[ast.stmt]:
        pre: list[ast.stmt] = []
        self._materialize_all(pre)
        # adjoints the loop writes into (x[i] = v): their own array, before the loop rather than every step
        for st in ir.walk(s.body):
            if isinstance(st, ir.SetItem) and self.active(st.target):
                d = self.adj(st.target)
                if d in self.adj_state and not self.adj_state[d]:
                    pre.append(assign(d, call(attr(self.ctx.np, "array"), N(d))))
                    self.adj_state[d] = True
        entry = dict(self.adj_state)
        # each round adds adjoints to `entry` or turns one from owned to shared, never back:
        # a fixpoint within (number of adjoints that can exist) * 2 rounds
        for _ in range(2 * (len(self.primal) + len(self.adj_names)) + 2):
            self.adj_state = dict(entry)
            self.last_comment = None
            self.rev_depth += 1
            try:
                body = self._rev_block(s.body)
            finally:
                self.rev_depth -= 1
            exit_ = self.adj_state
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
        self.adj_state = dict(entry)
        self.last_comment = None
        if not body:
            return pre
        if isinstance(s, ir.For):
            rng: ast.expr = call(N("range"), *s.range_args)
            if s.counter:
                rng = ast.Subscript(value=rng, slice=ast.Slice(upper=N(s.counter)), ctx=ast.Load())
            loop = ast.For(target=S(s.target), iter=call(N("reversed"), rng), body=[comment(s.header)] + body,
                           orelse=[], lineno=0)
        else:
            under = self.fresh("_")
            loop = ast.For(target=S(under), iter=call(N("range"), N(s.counter)),
                           body=[comment(s.header)] + body, orelse=[], lineno=0)
        return pre + [loop]

    # -- assembling -----------------------------------------------------------
    def _assemble(self, fwd, bwd):
        fn = self.fn
        args = _arguments(fn)
        if self.stack:
            new = call(attr(self.ctx.rt, "Stack")) if self.ctx.debug_stack else ast.List(elts=[], ctx=ast.Load())
            fwd = [assign(self.stack, new)] + fwd
        res = fn.result if fn.result is not None else ast.Constant(value=None)
        restored = {n for names in self.pushed.values() for n in names}
        keep_value = self.mode != "main" or self.ctx.keep_value
        if keep_value and isinstance(res, ast.Name) and res.id in restored:
            # the backward sweep restores older values of this name: keep the result
            keep = self.fresh("value")
            fwd = fwd + [assign(keep, N(res.id))]
            res = N(keep)
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
                        grads.append(N(d) if dtype == "float64" else cast)
                    else:
                        grads.append(call(attr(self.ctx.rt, "mirror"), N(d), N(p)))
                else:
                    grads.append(call(attr(self.ctx.rt, "mirror"), self._zeros(p), N(p)))
            out: ast.expr = grads[0] if self.ctx.single else ast.Tuple(elts=grads, ctx=ast.Load())
            ret = ast.Tuple(elts=[res, out], ctx=ast.Load()) if self.ctx.keep_value else out
            body = [comment("forward pass")] + fwd + [comment("backward pass")] + self.seed_code + bwd
            body.append(ast.Return(value=ret))
            return simplify(_funcdef(self.gen_name, args, body), self._protected(), *self._simplify_facts())
        # helper: forward returns (result, saved); backward takes (g, saved)
        spec: HelperSpec = self.spec
        grads = []
        for p in spec.varied:
            d = self.adj_names.get(p)
            if d is not None and d in self.final_state:
                grads.append(N(d))
            else:
                grads.append(self._zeros(p))  # no gradient reached p: zeros shaped like it
        # the zeros read the parameter itself: it is saved like any value the backward pass reads
        needed = self.needed | (self._reads(grads) & set(fn.params))
        saved = sorted(needed - {self.stack} if self.stack else needed,
                       key=lambda n: (n not in fn.params, n))
        saved_elts = [N(n) for n in saved] + ([N(self.stack)] if self.stack else [])
        fwd_ret = ast.Return(value=ast.Tuple(elts=[res, ast.Tuple(elts=saved_elts, ctx=ast.Load())],
                                             ctx=ast.Load()))
        top = set(fn.params)
        for st in fn.body:
            if isinstance(st, ir.Assign):
                top.update(self._targets(st))
            elif isinstance(st, ir.Unpack):
                top.update(st.targets)
        predeclare = [assign(n, ast.Constant(value=None)) for n in saved if n not in top]
        fwd_def = _funcdef(spec.fwd, args, predeclare + fwd + [fwd_ret])
        unpack = []
        if saved_elts:
            names = saved + ([self.stack] if self.stack else [])
            target = ast.Tuple(elts=[S(n) for n in names], ctx=ast.Store()) if len(names) > 1 else \
                ast.Tuple(elts=[S(names[0])], ctx=ast.Store())
            unpack = [ast.Assign(targets=[target], value=N(self.saved_param), lineno=0)]
        ret = grads[0] if len(grads) == 1 else ast.Tuple(elts=grads, ctx=ast.Load())
        bwd_args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=self.g_param), ast.arg(arg=self.saved_param)],
                                 vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
        body = unpack + self.seed_code + bwd + [ast.Return(value=ret)]
        bwd_def = simplify(_funcdef(spec.bwd, bwd_args, body), self._protected(), *self._simplify_facts())
        return [fwd_def, bwd_def]

    def _simplify_facts(self) -> tuple[set[str], set[str]]:
        """Names known to hold floats, and the adjoint names (see simplify)."""
        adjoints = set(self.adj_names.values())
        floats = {n for n, sh in self.ctx.shapes.items() if sh[0] in ("array", "scalar") and sh[2] == "f"}
        return floats | adjoints, adjoints

    def _protected(self) -> set[str]:
        """Names simplify must keep: parameters and the primal values."""
        adj_params = {self.adj_names[p] for p in self.fn.params if p in self.adj_names}
        return set(self.primal) | {self.stack} | set(self.fn.params) | adj_params


def _np_call(expr: ast.expr, np_name: str) -> str | None:
    """``"outer"`` for ``np.outer(...)`` (NumPy as generated code names it), else None."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and \
            isinstance(expr.func.value, ast.Name) and expr.func.value.id == np_name:
        return expr.func.attr
    return None


def _always_new(expr: ast.expr, np_name: str) -> bool:
    """Arithmetic, or a NumPy call that builds a new array from scratch whatever
    its arguments (``np.full(shape, g)``), even in a rule that may alias ``g``."""
    if isinstance(expr, (ast.BinOp, ast.UnaryOp)):
        return True
    attr = _np_call(expr, np_name)
    return attr is not None and TABLE.numpy_facts(attr).result == "fresh"


def _is_fresh(expr: ast.expr, np_name: str) -> bool:
    """Does ``expr`` certainly build a new value (safe to add into in place)?"""
    return _always_new(expr, np_name)


def _full_call(expr: ast.expr, np_name: str):
    """``np.full((2, 3), v)`` -> (shape tuple, v); else None."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "full" and \
            isinstance(expr.func.value, ast.Name) and expr.func.value.id == np_name and len(expr.args) == 2 and \
            not expr.keywords and isinstance(expr.args[0], ast.Tuple) and \
            all(isinstance(e, ast.Constant) for e in expr.args[0].elts):
        return tuple(e.value for e in expr.args[0].elts), expr.args[1]
    return None


def _all_targets(rev: Reverse, s) -> list[str]:
    """Every name statement ``s`` writes, loop counters and lists included."""
    out = rev._targets(s)
    if isinstance(s, ir.Assign) and s.counter:
        out = [s.target]
    elif isinstance(s, ir.For):
        out = [s.target]
    elif isinstance(s, ir.Append):
        out = [s.lst]
    elif isinstance(s, ir.SetItem):
        out = [s.target]
    return out


def _pure(s: ir.Assign) -> bool:
    """Does evaluating ``s`` again give the same value, with no side effect?"""
    k = s.op.kind
    if k in ("rule", "copy", "const", "tuple", "list", "dict", "cast"):
        return True
    return k == "nondiff" and not isinstance(s.value, ast.Call)


def _if(test: ast.expr, body: list, orelse: list) -> list[ast.stmt]:
    if not body and not orelse:
        return []
    if not body:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return [ast.If(test=copy.deepcopy(test.operand), body=orelse, orelse=[])]
        return [ast.If(test=ast.UnaryOp(op=ast.Not(), operand=copy.deepcopy(test)), body=orelse, orelse=[])]
    return [ast.If(test=copy.deepcopy(test), body=body, orelse=orelse)]


def _arguments(fn: ir.Function) -> ast.arguments:
    node = fn.source.node
    return copy.deepcopy(node.args)


def _funcdef(name: str, args: ast.arguments, body: list[ast.stmt]) -> ast.FunctionDef:
    kw = {}
    if hasattr(ast.FunctionDef, "type_params") or __import__("sys").version_info >= (3, 12):
        kw["type_params"] = []
    return ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None, lineno=0, **kw)
