"""Drive the pipeline for one gradient: the user's function and every helper
it calls, specialized for the arguments that carry gradients."""

from __future__ import annotations

import ast
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import runtime
from ..errors import SrcdiffError
from ..rules import numpy_vjps
from . import emit, ir, mutation, site
from .activity import Activity, analyze
from .context import Context, HelperSpec
from .frontend import parse_function
from .graph import Resolver
from .invariance import cut_values
from .naming import Namer
from .normalize import normalize
from .reverse import Reverse
from .shapes import Probed, merge, probe
from .simplify import simplify
from .specs import spec_key


def _calls_signature(calls: list | None) -> Any:
    """The shapes a helper's recorded calls share, or None (generic helper)."""
    if not calls:
        return None
    keys = {spec_key(a, k) for a, k in calls}
    if len(keys) != 1 or None in keys:
        return None
    return keys.pop()

MAX_HELPER_DEPTH = 50


def helper_base_name(fn: Any, stmt: Any) -> str:
    """What generated names for a helper start with: its name, or for a lambda
    the name the call site uses (``sigmoid = lambda z: ...``)."""
    name = getattr(fn, "__name__", "")
    if name.isidentifier() and name != "lambda":
        return name
    called = getattr(getattr(stmt, "op", None), "name", "") or ""
    called = called.rsplit(".", 1)[-1]
    return called if called.isidentifier() else "helper"


@dataclass
class Compiled:
    """A compiled adjoint: the callable, its readable source, and the global
    bindings it depends on (rechecked so a redefined helper is never stale)."""

    fn: Any
    source: str
    deps: list[tuple[dict, str, Any]] = field(default_factory=list)
    name: str = ""
    version: int = 0  # the rules table's version it was compiled against


def front(fn: Any) -> ir.Function:
    src = parse_function(fn)
    with site.compiling(src):
        f = normalize(src)
        Resolver(f).run()
    return f


def _module_name(f: ir.Function, preferred: str, obj: Any, taken: set[str]) -> str:
    """A name for ``obj`` (numpy, math, runtime) in generated code: the
    user's own name when it means the same object, else one that is free."""
    local = _local_names(f)
    if preferred not in local:
        if preferred not in taken or f.source.resolve_global(preferred) is obj:
            return preferred
    i = 1
    while f"{preferred}_{i}" in taken:
        i += 1
    return f"{preferred}_{i}"


def _local_names(f: ir.Function) -> set[str]:
    return ir.local_names(f)


class CompileUnit:
    """Everything generated for one gradient: grouped by the module globals
    each function must see."""

    def __init__(self, debug_stack: bool = False) -> None:
        self.debug_stack = debug_stack
        self.groups: dict[int, dict] = {}  # id(globals) -> {"globals", "defs", "inject", "names"}
        self.specs: dict[tuple, HelperSpec] = {}
        self.taken: set[str] = set()
        self.namer = Namer(self.taken)
        self.order: list[int] = []
        self.deps: list[tuple[dict, str, Any]] = []
        self.depth = 0

    def group(self, globals_: dict) -> dict:
        g = self.groups.get(id(globals_))
        if g is None:
            g = {"globals": globals_, "defs": [], "inject": {}, "names": []}
            self.groups[id(globals_)] = g
            self.order.append(id(globals_))
        return g

    def context(self, f: ir.Function, kinds: dict[str, str]) -> Context:
        taken = f.names | self.taken
        npn = _module_name(f, "np", np, taken)
        mn = _module_name(f, "math", math, taken)
        rtn = _module_name(f, "rt", runtime, taken)
        vjpn = _module_name(f, "vjp", numpy_vjps, taken)
        f.names.update({npn, mn, rtn, vjpn})
        inject = {npn: np, mn: math, rtn: runtime, vjpn: numpy_vjps}
        for name, value in f.source.closure.items():
            if name in f.names and name not in inject:
                inject[name] = value
        return Context(np=npn, math=mn, rt=rtn, vjp=vjpn, inject=inject, helper_spec=self.helper_spec, kinds=kinds,
                       debug_stack=self.debug_stack)

    def record_deps(self, f: ir.Function) -> None:
        """Remember the global names through which helpers were reached."""
        src = f.source
        for s in ir.walk(f.body):
            if isinstance(s, ir.Assign) and s.op is not None and s.op.kind == "helper":
                fn_expr = s.value.func
                root = fn_expr
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and isinstance(fn_expr, ast.Name):
                    if root.id in src.globals:
                        self.deps.append((src.globals, root.id, src.globals[root.id]))

    def helper_spec(self, fn: Any, varied: list[str], stmt: Any, calls: list | None = None) -> HelperSpec:
        sig = _calls_signature(calls)
        key = (fn, tuple(varied), sig)
        spec = self.specs.get(key)
        if spec is not None:
            return spec
        self.depth += 1
        if self.depth > MAX_HELPER_DEPTH:
            raise SrcdiffError(f"helpers nested more than {MAX_HELPER_DEPTH} deep (at {fn.__qualname__})")
        try:
            f = front(fn)
            with site.compiling(f.source):
                return self._helper_spec(f, fn, varied, stmt, calls, key, sig)
        finally:
            self.depth -= 1

    def _helper_spec(self, f: ir.Function, fn: Any, varied: list[str], stmt: Any, calls: list | None,
                     key: tuple, sig: Any) -> HelperSpec:
        base = helper_base_name(fn, stmt)
        fwd = self.fresh_global(f"{base}_fwd", f.names)
        bwd = self.fresh_global(f"{base}_bwd", f.names)
        res = f.result
        container = False
        if isinstance(res, ast.Name):
            for s in ir.walk(f.body):
                if isinstance(s, ir.Assign) and s.target == res.id and s.op is not None and \
                        s.op.kind in ("tuple", "list", "dict"):
                    container = True
        spec = HelperSpec(fn=fn, fwd=fwd, bwd=bwd, varied=list(varied), params=list(f.params),
                          returns_container=container, base=base)
        self.specs[key] = spec
        ctx = self.context(f, {})
        runs = [probe(f, a, k) for a, k in calls] if sig is not None else []
        if sig is None:  # calls of several shapes: shape-generic, the probes only say which values are arrays
            typed = [probe(f, a, k) for a, k in calls or []]
            if typed and all(r is not None for r in typed):
                ctx.mutable |= set().union(*(r.mutable for r in typed))
            else:
                ctx.mutable |= _every_name(f)
        defs = self.compile_function(f, list(varied), ctx, runs, mode="helper", spec=spec)
        grp = self.group(f.source.globals)
        grp["defs"].extend(defs)
        grp["inject"].update(ctx.inject)
        grp["names"] += [fwd, bwd]
        return spec

    def compile_function(self, f: ir.Function, wrt: list[str], ctx: Context, runs: list[Probed | None],
                         mode: str, gen_name: str = "", spec: HelperSpec | None = None) -> Any:
        """The pipeline every function goes through, the main one and each helper:
        the probes' shapes, the mutation checks, activity without the values the
        result provably does not depend on, then the transform."""
        self.record_deps(f)
        _apply_probes(ctx, runs, f)
        mutation.check(f, ctx.shapes, ctx.mutable)
        ctx.copy_views = mutation.views_to_copy(f, ctx.shapes)
        act = _cut_invariant(f, wrt, analyze(f, wrt), ctx)
        rev = Reverse(f, act, ctx, wrt, mode=mode, gen_name=gen_name)
        if spec is not None:
            rev.spec = spec
        built = rev.build()
        facts = rev.simplify_facts()
        defs = built if isinstance(built, list) else [built]
        defs = [simplify(d, *facts) if d.name in rev.to_simplify else d for d in defs]
        return defs if isinstance(built, list) else defs[0]

    def fresh_global(self, base: str, local_names: set[str]) -> str:
        """A name for a generated function, free in every module group and in ``local_names``."""
        return self.namer.fresh(base, avoid=local_names)

    def link(self, label: str) -> tuple[dict[str, Any], str]:
        """Compile every group; bind the generated functions to each other."""
        all_names = [n for gid in self.order for n in self.groups[gid]["names"]]
        built: dict[str, Any] = {}
        sources = []
        self.filenames: list[str] = []
        for gid in self.order:
            grp = self.groups[gid]
            text = emit.render(grp["defs"])
            sources.append(text)
            inject = dict(grp["inject"])
            for n in all_names:
                if n not in grp["names"]:
                    inject.setdefault(n, None)
            fns = emit.build(text, grp["names"], inject, grp["globals"], label)
            self.filenames.append(fns.pop("__filename__"))
            built.update(fns)
        for fn in built.values():
            for n in all_names:
                if n in fn.__code__.co_freevars and n in built:
                    emit.set_free_var(fn, n, built[n])
        return built, "\n\n".join(sources)


def _every_name(f: ir.Function) -> set[str]:
    """Every name the function assigns or takes: what may hold an array when
    the probe could not run (x op= e on any of them may change it in place)."""
    return ir.local_names(f)


def _apply_probes(ctx: Context, runs: list[Probed | None], f: ir.Function) -> None:
    """What the probe runs of a function (one for the main function, one per
    recorded call for a helper) let the transform rely on: shapes all runs
    agree on, values always float arrays, and what any run saw."""
    if not runs:
        return
    ctx.shapes = merge(runs)
    if any(r is None for r in runs):
        ctx.mutable |= _every_name(f)  # nothing is known: any value may be an array
        return
    ctx.float_arrays = set.intersection(*(set(r.float_arrays) for r in runs))
    ctx.helper_calls = {}
    for r in runs:
        ctx.mutable |= r.mutable
        for call_site, recorded in r.calls.items():
            ctx.helper_calls.setdefault(call_site, []).extend(recorded)


def _cut_invariant(f: ir.Function, wrt: list[str], act: Activity, ctx: Context) -> Activity:
    """Activity again, without the values the result provably does not depend on."""
    ctx.cut = cut_values(f, ctx.shapes, act.varied)
    return analyze(f, wrt, ctx.cut) if ctx.cut else act


def compile_adjoint(fn: Any, wrt: list[str], kinds: dict[str, str], debug_stack: bool = False,
                    args: tuple | None = None, kwargs: dict | None = None, keep_value: bool = True,
                    single: bool = False, mutable: frozenset[str] = frozenset(),
                    specialize: bool = True) -> Compiled:
    """Generate, compile and link the adjoint of ``fn`` w.r.t. the parameters
    ``wrt``.  The result's ``fn`` returns the gradient (one, or a tuple when
    not ``single``), preceded by f's value when ``keep_value``.  ``mutable``
    names parameters known to hold arrays or lists.  ``args`` are probed for
    the shapes of the values (``specialize``) or only for which are arrays."""
    f = front(fn)
    with site.compiling(f.source):
        return _compile_main(f, fn, wrt, kinds, debug_stack, args, kwargs, keep_value, single, mutable,
                             specialize)


def _compile_main(f: ir.Function, fn: Any, wrt: list[str], kinds: dict[str, str], debug_stack: bool,
                  args: tuple | None, kwargs: dict | None, keep_value: bool, single: bool,
                  mutable: frozenset[str], specialize: bool) -> Compiled:
    unit = CompileUnit(debug_stack)
    unit.taken |= f.names
    base = f.name if f.name.isidentifier() and f.name != "lambda" else "f"
    gen_name = unit.fresh_global(f"{base}_grad", f.names)
    ctx = unit.context(f, kinds)
    ctx.keep_value = keep_value
    ctx.single = single
    ctx.mutable |= mutable
    runs: list[Probed | None] = []
    if args is not None and specialize:
        bound = dict(zip(f.params, args)) | dict(kwargs or {})
        ctx.dtypes = {p: v.dtype.name for p, v in bound.items()
                      if type(v) is np.ndarray and v.dtype.kind == "f" and v.dtype != np.float64}
        runs = [probe(f, args, kwargs or {})]
    elif args is not None:  # shape-generic code: the probe only says which values are arrays
        run = probe(f, args, kwargs or {})
        ctx.mutable |= run.mutable if run is not None else _every_name(f)
    fdef = unit.compile_function(f, wrt, ctx, runs, mode="main", gen_name=gen_name)
    grp = unit.group(f.source.globals)
    # the main function first, then helpers
    grp["defs"].insert(0, fdef)
    grp["names"].insert(0, gen_name)
    grp["inject"].update(ctx.inject)
    unit.order.remove(id(f.source.globals))
    unit.order.insert(0, id(f.source.globals))
    built, source = unit.link(getattr(fn, "__qualname__", base))
    from ..rules import TABLE

    compiled = Compiled(fn=built[gen_name], source=source, deps=unit.deps, name=gen_name, version=TABLE.version)
    # the text stays in linecache (tracebacks, inspect) exactly as long as the code can run
    weakref.finalize(compiled, emit.forget, list(unit.filenames))
    return compiled
