"""Shapes: run the normalized forward pass once on the first call's arguments
and record the shape of every value.

The reverse pass uses shapes that are fixed by the input shapes to write
simpler, faster adjoints: no broadcasting reductions where shapes already
match, ``np.outer`` for a matrix-vector product, and so on.  Gradients are
cached per argument shapes, so a call with other shapes compiles again.

Values whose shape can change while the input shapes stay the same (boolean
masks, lists grown by ``append``, results of non-differentiable functions
such as ``np.nonzero``) are marked unstable and never specialized.
"""

from __future__ import annotations

import ast
import copy
import operator
import warnings
from typing import Any

import numpy as np

from .. import containers
from ..rules import TABLE
from . import ir
from .astlib import funcdef
from .emit import build, render
from .graph import operand_names
from .ir import Shape

REC = "__srcdiff_record__"
CALL = "__srcdiff_call__"


def _shape(v: Any) -> Shape:
    t = type(v)
    if t is np.ndarray:
        return Shape("array", v.shape, v.dtype.kind)
    if t is float or isinstance(v, np.floating):
        return Shape("scalar", (), "f")
    if t is int or isinstance(v, np.integer):
        return Shape("scalar", (), "i")
    if t is bool or isinstance(v, np.bool_):
        return Shape("scalar", (), "b")
    if t is list or t is tuple or t is dict:
        return Shape("container", t.__name__)
    if containers.custom(v) is not None:  # a NamedTuple, dataclass or registered class
        return Shape("container", t.__name__)
    return Shape("other")


# Iterations of each loop the probe runs.  Shapes after that are known without running
# on (see stable_shapes): what a loop does later to a value of a stable shape it has
# done already, so the probe of a million-step loop costs three steps.
PROBE_ITERATIONS = 3


class _Probe:
    def __init__(self, fn: ir.Function, truncate: bool = True) -> None:
        self.fn = fn
        self.sites: list[str] = []
        self.site_stmts: list[Any] = []  # the statement each site records (an Assign), or None
        self.calls: list[ir.Assign] = []  # helper call statements, by call-site number
        self.truncate = truncate
        self.loops = 0
        taken = set(fn.names)
        self.counter_base = next(f"__srcdiff_n{i}" for i in range(10**6) if f"__srcdiff_n{i}" not in taken)

    def limit(self, body: list[ast.stmt]) -> tuple[list[ast.stmt], list[ast.stmt]]:
        """(statements before the loop, its body) counting iterations and leaving
        the loop after PROBE_ITERATIONS of them."""
        if not self.truncate:
            return [], body
        self.loops += 1
        n = f"{self.counter_base}_{self.loops}"
        count = ast.AugAssign(target=ast.Name(id=n, ctx=ast.Store()), op=ast.Add(), value=ast.Constant(value=1))
        stop = ast.If(test=ast.Compare(left=ast.Name(id=n, ctx=ast.Load()), ops=[ast.GtE()],
                                       comparators=[ast.Constant(value=PROBE_ITERATIONS)]),
                      body=[ast.Break()], orelse=[])
        init = ast.Assign(targets=[ast.Name(id=n, ctx=ast.Store())], value=ast.Constant(value=0), lineno=0)
        return [init], [count, stop] + body

    def rec(self, name: str, stmt: Any = None) -> ast.stmt:
        self.sites.append(name)
        self.site_stmts.append(stmt)
        return ast.Expr(value=ast.Call(func=ast.Name(id=REC, ctx=ast.Load()),
                                       args=[ast.Constant(value=len(self.sites) - 1),
                                             ast.Name(id=name, ctx=ast.Load())], keywords=[]))

    def rec_expr(self, key: str, expr: ast.expr) -> ast.stmt:
        self.sites.append(key)
        self.site_stmts.append(None)
        return ast.Expr(value=ast.Call(func=ast.Name(id=REC, ctx=ast.Load()),
                                       args=[ast.Constant(value=len(self.sites) - 1), expr], keywords=[]))

    def block(self, stmts) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, ir.Assign):
                if s.counter:
                    out.append(ast.AugAssign(target=ast.Name(id=s.target, ctx=ast.Store()), op=ast.Add(),
                                             value=ast.Constant(value=1)))
                    continue
                value = copy.deepcopy(s.value)
                if s.op is not None and s.op.kind == "helper":
                    # record the arguments, so the helper can be probed with them too
                    self.calls.append(s)
                    value = ast.Call(func=ast.Name(id=CALL, ctx=ast.Load()),
                                     args=[ast.Constant(value=len(self.calls) - 1), value.func] + value.args,
                                     keywords=value.keywords)
                out.append(ast.Assign(targets=[ast.Name(id=s.target, ctx=ast.Store())], value=value, lineno=0))
                out.append(self.rec(s.target, s))
            elif isinstance(s, ir.Unpack):
                out.append(ast.Assign(targets=[ast.Tuple(elts=[ast.Name(id=t, ctx=ast.Store()) for t in s.targets],
                                                         ctx=ast.Store())],
                                      value=ast.Name(id=s.value, ctx=ast.Load()), lineno=0))
                out += [self.rec(t) for t in s.targets]
            elif isinstance(s, ir.Append):
                out.append(ast.Expr(value=ast.Call(
                    func=ast.Attribute(value=ast.Name(id=s.lst, ctx=ast.Load()), attr="append", ctx=ast.Load()),
                    args=[copy.deepcopy(s.value)], keywords=[])))
            elif isinstance(s, ir.SetItem):
                selection = _subscript_store(s)
                selection.ctx = ast.Load()
                out.append(self.rec_expr(ir.selection_key(s), selection))
                out.append(ast.Assign(targets=[_subscript_store(s)], value=copy.deepcopy(s.value), lineno=0))
            elif isinstance(s, ir.Expr):
                continue  # no side effects (print ...) in the probe
            elif isinstance(s, ir.If):
                body = self.block(s.body) or [ast.Pass()]
                orelse = self.block(s.orelse)
                out.append(ast.If(test=copy.deepcopy(s.test), body=body, orelse=orelse))
            elif isinstance(s, ir.For):
                body = [self.rec(s.target)] + self.block(s.body)
                pre, body = self.limit(body)
                out += pre
                out.append(ast.For(target=ast.Name(id=s.target, ctx=ast.Store()),
                                   iter=ast.Call(func=ast.Name(id="range", ctx=ast.Load()),
                                                 args=list(s.range_args), keywords=[]),
                                   body=body, orelse=[], lineno=0))
            elif isinstance(s, ir.While):
                pre, body = self.limit(self.block(s.body) or [ast.Pass()])
                out += pre
                out.append(ast.While(test=copy.deepcopy(s.test), body=body, orelse=[]))
            elif isinstance(s, ir.BreakIf):
                out.append(ast.If(test=ast.Name(id=s.flag, ctx=ast.Load()), body=[ast.Break()], orelse=[]))
        return out


def _subscript_store(s: ir.SetItem) -> ast.Subscript:
    return ast.Subscript(value=ast.Name(id=s.target, ctx=ast.Load()), slice=copy.deepcopy(s.index), ctx=ast.Store())


class Probed:
    """What one probe run learned."""

    def __init__(self, shapes: dict[str, tuple], calls: dict[int, list], float_arrays: set[str] = frozenset(),
                 mutable: set[str] = frozenset()) -> None:
        self.shapes = shapes  # name -> (kind, shape, dtype kind) for stable values
        self.calls = calls  # id(helper call statement) -> [(args, kwargs), ...] recorded
        self.float_arrays = float_arrays  # always a float ndarray, even where the shape is not stable
        self.mutable = mutable  # held an ndarray or a list at least once: x op= e changes it in place


def probe(fn: ir.Function, args: tuple, kwargs: dict) -> Probed | None:
    """Run ``fn``'s normalized forward pass on these arguments, recording the
    shape of every value and the arguments of helper calls.  Loops run their
    first PROBE_ITERATIONS iterations only; if the code after a loop cut
    short fails (it read what the later iterations would have made), the probe
    runs again in full.  ``None`` when the probe cannot run."""
    got = _probe(fn, args, kwargs, truncate=True)
    if got is None:
        got = _probe(fn, args, kwargs, truncate=False)
    return got


def _probe(fn: ir.Function, args: tuple, kwargs: dict, truncate: bool) -> Probed | None:
    p = _Probe(fn, truncate)
    body = [p.rec(n) for n in fn.params] + p.block(fn.body)
    body.append(ast.Return(value=ast.Constant(value=None)))
    fdef = funcdef("probe", copy.deepcopy(fn.source.node.args), body)
    seen: dict[int, set] = {}

    def record(i: int, v: Any) -> None:
        s = seen.get(i)
        if s is None:
            seen[i] = {_shape(v)}
        elif len(s) < 3:
            s.add(_shape(v))

    calls: dict[int, list] = {}

    def record_call(site: int, func: Any, *a: Any, **k: Any) -> Any:
        got = calls.setdefault(site, [])
        if len(got) < 4:
            got.append((a, k))
        return func(*a, **k)

    inject = {REC: record, CALL: record_call}
    for name, value in fn.source.closure.items():
        inject.setdefault(name, value)
    try:
        built = build(render([fdef]), ["probe"], inject, fn.source.globals, f"probe {fn.name}", register=False)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the user sees their warnings once, from the gradient's call
            built["probe"](*args, **kwargs)
    except Exception:  # the gradient call will raise the same error, with a better traceback
        return None
    by_name: dict[str, set] = {}
    for i, name in enumerate(p.sites):
        if i in seen:
            by_name.setdefault(name, set()).update(seen[i])
    unexecuted = _infer_unexecuted(p, seen, by_name)
    # (a value some statement that did not run may assign is not known to be a float array,
    # and may be an array: x op= e on it might change it in place)
    float_arrays = {n for n, shs in by_name.items() if shs and all(sh.float_array for sh in shs)} - unexecuted
    mutable = {n for n, shs in by_name.items() if any(sh.kind == "array" or (sh.kind, sh.shape) == ("container", "list")
                                                      for sh in shs)} | unexecuted
    return Probed(stable_shapes(fn, by_name, unexecuted), {id(p.calls[i]): c for i, c in calls.items()},
                  float_arrays, mutable)


def _dummy(sh: tuple) -> Any:
    kind, shape, dkind = sh
    if kind == "scalar":
        return {"f": 1.0, "i": 1, "b": True}.get(dkind, 1.0)
    return np.ones(shape, dtype={"f": float, "i": int, "u": np.uint64, "b": bool, "c": complex}[dkind])


def _infer_unexecuted(p: _Probe, seen: dict[int, set], by_name: dict[str, set]) -> set[str]:
    """Statements the probe did not run (a branch not taken, a loop cut short):
    the shape of a copy, a constant or an elementwise operation of values with
    one known shape is computed from those shapes (on stand-in values); any
    other such statement makes its value unstable.  Returns the unstable names
    (and selection keys)."""
    todo = [i for i in range(len(p.sites)) if i not in seen]
    unknown: set[str] = set()
    progress = True
    while todo and progress:
        progress = False
        rest = []
        for i in todo:
            sh = _infer(p.site_stmts[i], by_name)
            if sh is None:
                rest.append(i)
            else:
                by_name.setdefault(p.sites[i], set()).add(sh)
                progress = True
        todo = rest
    unknown.update(p.sites[i] for i in todo)
    return unknown


def _infer(st: Any, by_name: dict[str, set]) -> tuple | None:
    if not isinstance(st, ir.Assign) or st.op is None or st.counter:
        return None
    op = st.op
    values = []
    for a in op.operands:
        got = by_name.get(a.id)
        if not got or len(got) != 1 or not next(iter(got)).numeric:
            return None
        values.append(next(iter(got)))
    if op.kind == "copy":
        return values[0]
    if op.kind == "const" and isinstance(st.value, ast.Constant):
        return _shape(st.value.value)
    if op.kind != "rule" or op.rule.fn is None or op.rule.fn is operator.getitem or op.varargs:
        return None
    facts = op.rule.facts
    # elementwise: ints are values, never sizes; otherwise an int argument may be an axis or a size
    if not facts.elementwise and (not facts.shaped or any(sh.kind == "scalar" and sh.dtype != "f" for sh in values)):
        return None
    env = {a.id: _dummy(sh) for a, sh in zip(op.operands, values)}
    args: list = []
    kwargs: dict = {}
    for q in op.rule.params:
        if q.name not in op.bound:
            continue
        e = op.bound[q.name]
        if isinstance(e, ast.Name) and e.id in env:
            v = env[e.id]
        elif isinstance(e, ast.Constant):
            v = e.value
        else:
            return None
        if q.kind == "pos" and not kwargs and len(args) == op.rule.params.index(q):
            args.append(v)
        elif q.kind in ("pos", "kwonly"):
            kwargs[q.name] = v
        else:
            return None
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _shape(op.rule.fn(*args, **kwargs))
    except Exception:  # noqa: BLE001 - no stand-in result: the value stays unknown
        return None


def merge(runs: list[Probed | None]) -> dict[str, tuple]:
    """Shapes that every run agrees on (a helper probed at several call sites)."""
    if not runs or any(r is None for r in runs):
        return {}
    out = dict(runs[0].shapes)
    for r in runs[1:]:
        out = {k: v for k, v in out.items() if r.shapes.get(k) == v}
    return out


def stable_shapes(fn: ir.Function, by_name: dict[str, set], unexecuted: set[str] = frozenset()) -> dict[str, tuple]:
    """The shapes compiled code may rely on: values with one recorded shape,
    every statement assigning them run at least once, and no operand unstable.

    This holds for every call with arguments of these shapes, however long
    its loops run (the probe runs each loop a few times only): a statement
    whose operands have stable shapes gives the same shape each time, unless
    its shape depends on a value (``np.zeros(n)``, ``x[:t]`` with ``t`` a loop
    index or an int the loop counts, a mask) - those are unstable here - and
    a statement that never ran makes its value unstable."""
    unstable = _unstable(fn, by_name, set(unexecuted))
    out: dict[str, tuple] = {}
    for name, shapes in by_name.items():
        if name in unstable or len(shapes) != 1:
            continue
        sh = next(iter(shapes))
        if sh.kind != "other":
            out[name] = sh
    # containers are recorded even when unstable (lists grown by append): only their type is used
    for name, shapes in by_name.items():
        if name not in out and all(sh.kind == "container" for sh in shapes):
            out[name] = Shape("container")
    return out


def _element_read(s: ir.Assign, shapes: dict[str, set]) -> bool:
    """``h[i]`` read a number: a number, whatever the array's size."""
    return isinstance(s.value, ast.Subscript) and bool(shapes.get(s.target)) and \
        all(sh.kind == "scalar" for sh in shapes[s.target])


def _int_scalar(name: str, shapes: dict[str, set], kinds: str = "iub") -> bool:
    got = shapes.get(name, ())
    return bool(got) and all(sh.kind == "scalar" and sh.dtype in kinds for sh in got)


def _in_blocks(fn: ir.Function) -> list:
    """Statements inside a branch or a loop (their values may differ from call to call)."""
    out: list = []
    for s in ir.walk(fn.body):
        if isinstance(s, ir.If):
            out += list(ir.walk(s.body)) + list(ir.walk(s.orelse))
        elif isinstance(s, (ir.For, ir.While)):
            out += list(ir.walk(s.body))
    return out


def _shape_reads_value(s: ir.Assign, valued: set[str], local: set[str], shapes: dict[str, set]) -> bool:
    """Can the shape of ``s``'s result depend on the value of a name in ``valued``?
    Elementwise operations: no.  Indexing with an int as a whole index entry
    (``xs[t]``, ``h[i, j]``) picks a position, not a size: no.  Anything else
    reading the value (``x[:t]``, ``np.zeros(n)``, ``x[b]`` with a bool): yes."""
    op = s.op
    if op is not None and op.kind == "rule" and op.rule.facts.elementwise:
        return False
    v = s.value
    if op is not None and op.kind == "rule" and op.rule.fn is operator.getitem and isinstance(v, ast.Subscript):
        entries = v.slice.elts if isinstance(v.slice, ast.Tuple) else [v.slice]
        for e in entries:
            if isinstance(e, ast.Name) and e.id in valued and _int_scalar(e.id, shapes, "iu"):
                continue
            if any(n in valued for n in operand_names(e, local)):
                return True
        return any(n in valued for n in operand_names(v.value, local))
    return True


def _sized_by_values(fn: ir.Function, shapes: dict[str, set], local: set[str]) -> set[str]:
    """Arrays whose shape comes from the value of an int (``np.zeros(n)``,
    ``x[:n]``): the compiled code is keyed by the arguments' types and shapes,
    not their values, and loops run only a few iterations in the probe, so
    their shapes may change from call to call (or step to step).  The ints
    are int arguments, loop indices, and ints assigned in branches and loops
    (``k += 1`` counting something), and numbers computed from those."""
    valued = {p for p in fn.params if _int_scalar(p, shapes)}
    for s in ir.walk(fn.body):
        if isinstance(s, ir.For):
            valued.add(s.target)
    for s in _in_blocks(fn):
        if isinstance(s, ir.Assign) and _int_scalar(s.target, shapes):
            valued.add(s.target)
        elif isinstance(s, ir.Unpack):
            valued.update(t for t in s.targets if _int_scalar(t, shapes))
    bad: set[str] = set()
    changed = True
    while changed:
        changed = False
        for s in ir.walk(fn.body):
            if not isinstance(s, ir.Assign) or s.target in valued or s.target in bad or \
                    not any(n in valued for n in operand_names(s.value, local)):
                continue
            if any(sh.kind == "array" for sh in shapes.get(s.target, ())):
                if _shape_reads_value(s, valued, local, shapes):
                    bad.add(s.target)  # an array sized (or sliced) by the value
                    changed = True
            else:
                valued.add(s.target)  # a number computed from the value: it can size an array in turn
                changed = True
    for s in ir.walk(fn.body):
        if not isinstance(s, ir.SetItem):
            continue
        entries = s.index.elts if isinstance(s.index, ast.Tuple) else [s.index]
        if any(not (isinstance(e, ast.Name) and _int_scalar(e.id, shapes, "iu"))
               and any(n in valued for n in operand_names(e, local)) for e in entries):
            bad.add(ir.selection_key(s))
    return bad


def _unstable(fn: ir.Function, shapes: dict[str, set], bad: set[str]) -> set[str]:
    """Names whose shape may change while input shapes stay the same (``bad``:
    known so already)."""
    local = ir.local_names(fn)
    for s in ir.walk(fn.body):
        if isinstance(s, ir.Append):
            bad.add(s.lst)
        elif isinstance(s, ir.Assign) and s.op is not None:
            k = s.op.kind
            # a call with no derivative rule may size its result from the data (np.nonzero,
            # int(x.sum()) ...), unless its facts say a constructor sized by its (stable)
            # arguments, or a result shaped by its arguments' shapes (srcdiff.stop_gradient)
            if k == "unknown" or k == "nondiff" and isinstance(s.value, ast.Call) and \
                    not (TABLE.facts_of(s.op.callee).sized_by_arguments or TABLE.facts_of(s.op.callee).shaped):
                bad.add(s.target)
            if isinstance(s.value, ast.Subscript):
                for n in operand_names(s.value.slice, local):
                    if any(sh.kind == "array" and sh.dtype == "b" or sh.kind == "other" for sh in shapes.get(n, ())):
                        bad.add(s.target)
    bad |= _sized_by_values(fn, shapes, local)
    changed = True
    while changed:
        changed = False
        for s in ir.walk(fn.body):
            if isinstance(s, ir.SetItem) and ir.selection_key(s) not in bad and \
                    any(n in bad or any(sh.kind == "array" and sh.dtype == "b" for sh in shapes.get(n, ()))
                        for n in operand_names(s.index, local)):
                bad.add(ir.selection_key(s))  # a mask selects a data-dependent number of elements
            if isinstance(s, ir.Assign) and s.target not in bad:
                if any(n in bad for n in operand_names(s.value, local)) and not _element_read(s, shapes):
                    bad.add(s.target)
                    changed = True
            elif isinstance(s, ir.Unpack) and s.value in bad:
                for t in s.targets:
                    if t not in bad:
                        bad.add(t)
                        changed = True
    return bad
