"""The public face of srcdiff: ``grad``, ``value_and_grad``, ``source``,
``graph`` and ``check_grad``."""

from __future__ import annotations

import functools
import inspect
import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from . import arrays, containers, runtime
from .compiler import driver
from .compiler.activity import analyze
from .compiler.graph import Graph
from .compiler.specs import spec_key as _spec_key
from .errors import SrcdiffError
from .rules import TABLE, nondifferentiable

Wrt = Union[int, str, Sequence[int | str]]

_LOCK = threading.RLock()
# (code, globals id, closure ids, wrt, kinds) -> Compiled; a function redefined
# with the same name has a new code object, so it is never served a stale adjoint.
# Gradient functions hold their adjoints; this table only lets two of them share
# one, and forgets it when no gradient function holds it any more.
_CACHE: weakref.WeakValueDictionary[tuple, driver.Compiled] = weakref.WeakValueDictionary()
# argument shapes one gradient function specializes for; past that, calls with new
# shapes share one shape-generic adjoint (variable-length sequences, say)
MAX_SPECIALIZED = 16


def _kind(v: Any) -> str:
    t = type(v)
    if t is np.ndarray:
        k = v.dtype.kind
        if k == "f" and v.ndim:
            return "farray"
        if k in "fc":
            return "array0" if v.ndim == 0 else "carray"
        return "intarray"
    if t is float or isinstance(v, np.floating):
        return "float"
    if t is bool or isinstance(v, np.bool_):
        return "bool"
    if t is int or isinstance(v, np.integer):
        return "int"
    if t is tuple:
        return "tuple"
    if t is list:
        return "list"
    if t is dict:
        return "dict"
    if t is complex:
        return "complex"
    return t.__name__


def _check_leaves(name: str, v: Any, fname: str) -> None:
    c = containers.lookup(v)
    if c is not None:  # tuple, list, dict, NamedTuple, dataclass, registered class (srcdiff/containers.py)
        if c.kind in ("namedtuple", "dataclass"):
            clash = [f for f in c.fields or () if f in TABLE.attrs or f in TABLE.nondiff_attrs]
            if clash:
                raise SrcdiffError(
                    f"cannot differentiate {fname} with respect to {name!r}: the field {clash[0]!r} of "
                    f"{type(v).__name__} has the name of an array attribute, and srcdiff reads "
                    f"x.{clash[0]} as that attribute", hint=f"rename the field {clash[0]!r}")
        for x in c.children(v)[0]:
            _check_leaves(name, x, fname)
        return
    k = _kind(v)
    if hasattr(v, "__dict__") and not isinstance(v, np.generic) and not arrays.is_foreign(v):
        raise SrcdiffError(
            f"cannot differentiate {fname} with respect to {name!r}: it holds a {type(v).__name__}, which "
            "is not a parameter container",
            hint="make the class a dataclass or NamedTuple, or register it with srcdiff.register_container"
            "(cls, flatten, unflatten); or leave this argument out of wrt")
    if k in ("int", "bool", "intarray"):
        what = {"int": "an int", "bool": "a bool"}.get(k) or f"an array of dtype {v.dtype}"
        raise SrcdiffError(
            f"cannot differentiate {fname} with respect to {name!r}: it is {what}",
            hint="pass a float (e.g. 2.0 instead of 2) or a float array (x.astype(float)), "
            "or leave this argument out of wrt",
        )


_MISSING = object()  # an argument the call did not pass (see GradientFunction._go_fast)
_DISPATCH = """
def dispatch(*args, **kwargs):
    return slow(args, kwargs)
"""


class GradientFunction(functools.partial):
    """What ``grad`` and ``value_and_grad`` return: call it like ``f``.

    A call goes straight (through ``functools.partial``'s C call) to a small
    generated dispatcher.  Once a call has compiled or found the adjoint for
    its argument shapes, a dispatcher that checks those shapes inline and
    calls that adjoint directly takes its place, so a repeated call costs a
    few attribute checks; anything else takes the general path (``_call``)."""

    def __new__(cls, fn: Callable, wrt: Wrt, with_value: bool, compute: bool = False) -> GradientFunction:
        ns: dict[str, Any] = {"nd": np.ndarray, "T": TABLE, "MISSING": _MISSING}
        exec(_DISPATCH, ns)
        self = super().__new__(cls, ns["dispatch"])
        self._ns = ns
        ns["slow"] = self._call
        self._fast: OrderedDict[Any, Any] = OrderedDict()  # spec key -> dispatcher code checking it
        self._counter = itertools.count()
        return self

    def __reduce__(self):
        return (type(self), (self.fn, self.wrt[0] if self.single else tuple(self.wrt), self.with_value,
                             self.compute))

    def __init__(self, fn: Callable, wrt: Wrt, with_value: bool, compute: bool = False) -> None:
        if not callable(fn):
            raise SrcdiffError(f"grad() needs a function, got {type(fn).__name__}")
        if isinstance(fn, GradientFunction):
            raise SrcdiffError(
                f"{fn!r} is already a gradient: higher-order derivatives (grad of grad) are not supported yet",
                hint="differentiate the original function; for a Hessian-vector product use finite "
                "differences of the gradient, (g(x + e*v) - g(x - e*v)) / (2*e)",
            )
        # a bound method or functools.partial: the function srcdiff compiles, and the arguments
        # bound to it (the object as ``self``; the partial's), passed before the caller's
        fn, self._pre_args, self._pre_kwargs = _unbind(fn)
        self.fn = fn
        self.with_value = with_value
        self.compute = bool(compute)  # lazy (Dask) arguments' gradients computed too (srcdiff/arrays.py)
        self._sig = self._signature(fn)
        self.params = [p.name for p in self._sig.parameters.values()
                       if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        self._bound = _bound_names(fn, self.params, self._pre_args, self._pre_kwargs)
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in self._sig.parameters.values()):
            raise SrcdiffError(f"{_fname(fn)} takes *args or **kwargs, which srcdiff cannot differentiate",
                               hint="give each input its own named parameter")
        self.single = not isinstance(wrt, (tuple, list))
        items = [wrt] if self.single else list(wrt)
        if not items:
            raise SrcdiffError("wrt is empty: name at least one argument to differentiate with respect to")
        self.wrt: list[str] = [self._param_name(w) for w in items]
        self._positions = [self.params.index(w) for w in self.wrt]
        # compiled adjoints by argument shapes, least recently used first (at most MAX_SPECIALIZED)
        self._compiled: OrderedDict[Any, driver.Compiled] = OrderedDict()
        self._shapes_seen = 0  # distinct argument shapes compiled for
        self.last: driver.Compiled | None = None
        functools.update_wrapper(self, fn)
        self.__srcdiff_wrapped__ = fn

    @staticmethod
    def _signature(fn: Callable) -> inspect.Signature:
        import types

        if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
            fn = fn.__func__  # the object is passed as its first argument (see _unbind)
        if not isinstance(fn, types.FunctionType):
            raise SrcdiffError(
                f"cannot differentiate {fn!r}: it is not a Python function with source code",
                hint="pass a function defined with def (or lambda); to use a function without source inside "
                "your code, register its derivative with srcdiff.defvjp")
        try:
            return inspect.signature(fn)
        except (TypeError, ValueError):
            raise SrcdiffError(f"cannot read the signature of {fn!r}",
                               hint="srcdiff differentiates plain Python functions") from None

    def _param_name(self, w: Any) -> str:
        name = _fname(self.fn)
        if isinstance(w, bool) or not isinstance(w, (int, str)):
            raise SrcdiffError(f"wrt must be an int position, a parameter name, or a tuple of those; got {w!r}")
        # positions count the parameters the caller passes (not a method's self, nor what a partial binds)
        free = [p for p in self.params if p not in self._bound]
        if isinstance(w, int):
            if not -len(free) <= w < len(free):
                n = len(free)
                raise SrcdiffError(f"wrt={w} is out of range: {name} has {n} parameter{'s' if n != 1 else ''} "
                                   f"({', '.join(free)})")
            return free[w]
        if w not in self.params:
            raise SrcdiffError(f"wrt={w!r} is not a parameter of {name}; its parameters are "
                               f"{', '.join(free) or 'none'}",
                               hint="pass the name of one of the parameters, or its position")
        if self._bound.get(w) == "partial":
            raise SrcdiffError(f"wrt={w!r} is bound by functools.partial: its value is a constant of the "
                               f"function differentiated; the remaining parameters are {', '.join(free) or 'none'}",
                               hint="differentiate with respect to a remaining parameter, or leave this "
                               "argument out of the partial")
        return w

    def _wrt_values(self, args: tuple, kwargs: dict) -> list[Any]:
        out = []
        for name, pos in zip(self.wrt, self._positions):
            if pos < len(args):
                out.append(args[pos])
            elif name in kwargs:
                out.append(kwargs[name])
            else:
                p = self._sig.parameters[name]
                if p.default is inspect.Parameter.empty:
                    raise SrcdiffError(f"missing argument {name!r} in the call of the gradient of "
                                       f"{_fname(self.fn)}")
                out.append(p.default)
        return out

    def compiled_for(self, args: tuple, kwargs: dict) -> driver.Compiled:
        key = _spec_key(args, kwargs)
        generic = key is None or key not in self._compiled and self._shapes_seen >= MAX_SPECIALIZED
        values = self._wrt_values(args, kwargs)
        if generic:
            # ever-new shapes (or arguments too big to key): stop specializing, and let one
            # shape-generic adjoint per kind of argument serve them all
            kinds = dict(zip(self.wrt, (_kind(v) for v in values)))
            key = ("generic", tuple(sorted(kinds.items())), self._mutable_params(args, kwargs))
        c = self._compiled.get(key)
        if c is not None and c.version == TABLE.version:
            for g, n, obj in c.deps:
                if g.get(n) is not obj:
                    break
            else:
                self._compiled.move_to_end(key)
                self.last = c
                return c
        for name, v in zip(self.wrt, values):
            _check_leaves(name, v, _fname(self.fn))
        kinds = dict(zip(self.wrt, (_kind(v) for v in values)))
        if not generic and c is None:
            self._shapes_seen += 1
        # shape-generic code still learns which values are arrays from a probe run (types, not
        # shapes), except on data of another library, which a probe would compute
        probe_args = None if arrays.has_foreign(args, kwargs) else args
        c = compile_cached(self.fn, self.wrt, kinds, args=probe_args, kwargs=kwargs,
                           spec=None if generic else key, keep_value=self.with_value, single=self.single,
                           mutable=self._mutable_params(args, kwargs), specialize=not generic)
        self._compiled[key] = c
        self._compiled.move_to_end(key)
        while len(self._compiled) > MAX_SPECIALIZED:
            self._compiled.popitem(last=False)
        self.last = c
        return c

    def _mutable_params(self, args: tuple, kwargs: dict) -> frozenset[str]:
        """The parameters this call binds to arrays or lists: ``x op= v`` on one
        of them changes the caller's object (the generic adjoint has no probe
        to tell)."""
        def mutable(v: Any) -> bool:
            return isinstance(v, (np.ndarray, list)) or arrays.is_foreign(v)

        out = {p for p, v in zip(self.params, args) if mutable(v)}
        out |= {k for k, v in kwargs.items() if mutable(v)}
        return frozenset(out)

    def _call(self, args: tuple, kwargs: dict) -> Any:
        if self._bound:  # a bound method or a partial: its arguments first
            args, kwargs = self._pre_args + args, {**self._pre_kwargs, **kwargs} if self._pre_kwargs else kwargs
        key = _spec_key(args, kwargs)
        if key is None and arrays.has_foreign(args, kwargs):
            return self._call_foreign(args, kwargs)
        c = self._compiled.get(key)
        if c is None or c.deps or c.version != TABLE.version:
            c = self.compiled_for(args, kwargs)
        self.last = c
        if key is not None and not kwargs and not c.deps and self._compiled.get(key) is c and not self._bound:
            self._go_fast(key, args, c)
        # the generated function returns exactly what the user gets
        return c.fn(*args, **kwargs)

    def _call_foreign(self, args: tuple, kwargs: dict) -> Any:
        """Arguments holding arrays of another library (Dask, CuPy, ...; see
        srcdiff/arrays.py): the shape-generic adjoint (no shape probe: it would
        run the forward pass on the data), its lazy results evaluated together."""
        values = self._wrt_values(args, kwargs)
        for name, v in zip(self.wrt, values):
            arrays.check_float(name, v, _fname(self.fn))
        c = self.compiled_for(args, kwargs)
        self.last = c
        return arrays.call(c.fn, self.fn, args, kwargs, values, with_value=self.with_value, single=self.single,
                           compute=self.compute, mirror=runtime.mirror)

    def _go_fast(self, key: Any, args: tuple, c: driver.Compiled) -> None:
        """Point the dispatcher at ``c`` for calls shaped like ``args``."""
        code = self._fast.get(key)
        if code is None or code[1] is not c:
            n = next(self._counter)
            own = [f"adjoint_{n}"]
            checks = [f"T.version == {c.version}"]
            for i, a in enumerate(args):
                t = type(a)
                if t is np.ndarray:
                    self._ns[f"dtype_{n}_{i}"] = a.dtype
                    own.append(f"dtype_{n}_{i}")
                    checks.append(f"type(a{i}) is nd and a{i}.shape == {a.shape!r} and a{i}.dtype is dtype_{n}_{i}")
                elif t is float or t is int:
                    checks.append(f"type(a{i}) is {t.__name__}")
                else:
                    for name in own[1:]:
                        del self._ns[name]
                    return  # other arguments: the general path keys them
            self._ns[f"adjoint_{n}"] = c.fn
            # the arguments bind straight to positional-only parameters (no tuple to unpack);
            # a missing one is the sentinel MISSING, which no check lets through
            names = ", ".join(f"a{i}" for i in range(len(args)))
            params = "".join(f"a{i}=MISSING, " for i in range(len(args))) + ("/, " if args else "")
            checks.append("not rest and not kwargs")
            src = (f"def dispatch({params}*rest, **kwargs):\n"
                   f"    if {' and '.join(checks)}:\n"
                   f"        return adjoint_{n}({names})\n"
                   f"    given = tuple(a for a in ({names}{',' if len(args) == 1 else ''}) if a is not MISSING)\n"
                   f"    return slow(given + rest, kwargs)\n")
            exec(compile(src, f"<srcdiff dispatch {_fname(self.fn)}>", "exec"), self._ns)
            code = (self._ns.pop("dispatch"), c, own)
            self._fast[key] = code
            while len(self._fast) > MAX_SPECIALIZED:  # least recently made first
                _, (_, _, names) = self._fast.popitem(last=False)
                for name in names:
                    self._ns.pop(name, None)
        # one C call swaps the dispatcher (partial's pickling hook): no thread sees half a change
        functools.partial.__setstate__(self, (code[0], (), None, self.__dict__))

    @property
    def source(self) -> str:
        if self.last is None:
            self.last = compile_cached(self.fn, self.wrt, {}, keep_value=self.with_value, single=self.single)
        return self.last.source

    def __repr__(self) -> str:
        kind = "value_and_grad" if self.with_value else "grad"
        return f"<srcdiff {kind} of {_fname(self.fn)} wrt {', '.join(self.wrt)}>"

    def _repr_html_(self) -> str:  # Jupyter: the generated code, highlighted (srcdiff/display.py)
        from . import display
        return display.gradient_html(self)

    def _repr_markdown_(self) -> str:
        from . import display
        return display.gradient_markdown(self)




def _fname(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _unbind(fn: Callable) -> tuple[Callable, tuple, dict]:
    """``(function, arguments bound before the caller's, keywords bound)`` of a
    ``functools.partial`` (nested too), a bound method (its object is the first
    argument; the method itself stays what is compiled, so that ``self.f()``
    calls resolve in its class)."""
    import types

    pre_args: tuple = ()
    pre_kwargs: dict = {}
    while isinstance(fn, functools.partial) and not isinstance(fn, GradientFunction):
        pre_args = tuple(fn.args) + pre_args
        pre_kwargs = {**fn.keywords, **pre_kwargs}
        fn = fn.func
    if isinstance(fn, types.MethodType):
        pre_args = (fn.__self__,) + pre_args
    return fn, pre_args, pre_kwargs


def _bound_names(fn: Callable, params: list[str], pre_args: tuple, pre_kwargs: dict) -> dict[str, str]:
    """The parameters a bound method (``"self"``) or a partial (``"partial"``) binds."""
    import types

    out: dict[str, str] = {}
    n_self = 1 if isinstance(fn, types.MethodType) else 0
    if len(pre_args) > len(params):
        raise SrcdiffError(f"the partial passes {len(pre_args) - n_self} positional arguments to {_fname(fn)}, "
                           f"which takes {len(params) - n_self}")
    for i, p in enumerate(params[:len(pre_args)]):
        out[p] = "self" if i < n_self else "partial"
    for k in pre_kwargs:
        if k not in params:
            raise SrcdiffError(f"the partial binds {k!r}, which is not a parameter of {_fname(fn)}; its "
                               f"parameters are {', '.join(params)}")
        out[k] = "partial"
    return out


def _closure_key(fn: Callable) -> tuple:
    cells = getattr(fn, "__closure__", None) or ()
    out = []
    for c in cells:
        try:
            out.append(id(c.cell_contents))
        except ValueError:
            out.append(None)
    return tuple(out)


def compile_cached(fn: Callable, wrt: list[str], kinds: dict[str, str], debug_stack: bool = False,
                   args: tuple | None = None, kwargs: dict | None = None, spec: Any = None,
                   keep_value: bool = True, single: bool = False,
                   mutable: frozenset[str] = frozenset(), specialize: bool = True) -> driver.Compiled:
    """Compile (or fetch) the adjoint of ``fn``; with ``args`` and ``specialize``
    it is specialized for the shapes of these arguments (``spec`` is their
    key); without ``specialize`` they only show which values are arrays.
    ``mutable``: parameters that hold arrays or lists in this call."""
    code = getattr(fn, "__code__", None)
    if getattr(fn, "__self__", None) is not None:  # a bound method: self.f() resolves in the object's class
        code = (code, type(fn.__self__))
    key = (code, id(getattr(fn, "__globals__", None)), _closure_key(fn), tuple(wrt),
           tuple(sorted(kinds.items())), debug_stack, spec if args is not None and specialize else None,
           keep_value, single, mutable, specialize and args is not None)
    with _LOCK:
        c = _CACHE.get(key)
        if c is not None and c.version == TABLE.version and all(g.get(n) is obj for g, n, obj in c.deps):
            return c
        c = _reported(lambda: driver.compile_adjoint(fn, wrt, kinds, debug_stack=debug_stack, args=args,
                                                     kwargs=kwargs, keep_value=keep_value, single=single,
                                                     mutable=mutable, specialize=specialize))
        _CACHE[key] = c
        return c


def _reported(compile_it: Callable[[], driver.Compiled]) -> driver.Compiled:
    """Errors of the compiler as the user sees them: a ``SrcdiffError`` with its
    message and no compiler frames; any other exception from inside the compiler
    is a bug of srcdiff's, reported as an internal ``SrcdiffError`` that names the
    function and line being compiled (``SRCDIFF_DEBUG=1`` chains the original)."""
    from .compiler import site

    site.reset()
    try:
        return compile_it()
    except SrcdiffError as exc:
        if os.environ.get("SRCDIFF_DEBUG"):
            raise
        raise exc.with_traceback(None) from None
    except RecursionError:
        raise
    except Exception as exc:  # noqa: BLE001 - every other exception is srcdiff's own bug
        filename, line, where = site.describe()
        err = SrcdiffError(
            f"internal error in srcdiff while compiling {where or 'a gradient'}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            filename=filename, lineno=line,
            hint="this is a bug in srcdiff, not in your code; please report it with the source of the "
            "function (and its helpers) and the shapes of the arguments; SRCDIFF_DEBUG=1 shows the "
            "compiler's traceback")
        err.internal = exc
        if os.environ.get("SRCDIFF_DEBUG"):
            raise err from exc
        raise err.with_traceback(None) from None


def _decorator(fn: Callable | None, wrt: Wrt, with_value: bool, compute: bool = False):
    if fn is None:
        return lambda f: GradientFunction(f, wrt, with_value, compute)
    if isinstance(fn, (int, str, tuple, list)) and not callable(fn):
        raise SrcdiffError("pass wrt by keyword: grad(f, wrt=...) or @grad(wrt=...)")
    return GradientFunction(fn, wrt, with_value, compute)


def stop_gradient(x: Any) -> Any:
    """Return ``x`` unchanged; inside a function srcdiff differentiates, no
    gradient flows back through it (its result is a constant).

    Useful where the gradient through a value is not wanted (the target of
    a temporal-difference update, say), or is known to be zero in a form
    srcdiff does not recognize by itself.  The shift of a stable softmax or
    log-sum-exp written the usual way is recognized without it::

        m = np.max(z, axis=1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))

    (the shift cancels, so the adjoint skips the work for the max; see
    "Shifts that cancel" in docs/how-it-works.md).
    """
    return x


nondifferentiable(stop_gradient, group="constant", facts=dict(shaped=True))  # its result is shaped like x


def grad(fn: Callable | None = None, wrt: Wrt = 0, *, compute: bool = False) -> Any:
    """The gradient of scalar-valued ``fn``.

    ``wrt`` is a parameter position, a parameter name, or a tuple of those: an
    int or str gives one gradient, a tuple a tuple of gradients in that order.
    Each gradient mirrors its argument (float -> float, array -> array of the
    same shape, tuple/list/dict -> the same container).  Usable as
    ``@grad`` and ``@grad(wrt="w")``.

    Arrays of other libraries that NumPy dispatches to (Dask, CuPy, ...) are
    accepted wherever NumPy arrays are (docs/dask.md).  With Dask data the
    value and the gradients of one call are evaluated together, once;
    gradients with respect to NumPy arguments come back as NumPy arrays, with
    respect to Dask arguments as lazy Dask arrays, unless ``compute=True``
    (then NumPy arrays too, from the same single evaluation).
    """
    return _decorator(fn, wrt, with_value=False, compute=compute)


def value_and_grad(fn: Callable | None = None, wrt: Wrt = 0, *, compute: bool = False) -> Any:
    """Like :func:`grad`, but the function returns ``(fn(...), gradient)``
    from a single forward pass (with Dask data: the value a float, evaluated
    with the gradients)."""
    return _decorator(fn, wrt, with_value=True, compute=compute)


def source(g: Any) -> str:
    """The generated Python source of gradient function ``g``: its adjoint,
    followed by the adjoints of any helpers it calls."""
    if isinstance(g, GradientFunction):
        return g.source
    raise SrcdiffError(f"source() needs a function made by srcdiff.grad or value_and_grad, got {g!r}")


class _Graph(Graph):
    """A graph that Jupyter shows as an SVG drawing (with Graphviz) or text (srcdiff/display.py)."""

    def _repr_html_(self) -> str:
        from . import display
        return display.graph_html(self)

    def _repr_markdown_(self) -> str:
        from . import display
        return display.graph_markdown(self)


def graph(fn: Callable, wrt: Wrt | None = None) -> Graph:
    """The SSA computation graph of ``fn`` after normalization.  Values that
    carry gradients (for ``wrt``, all parameters by default) are marked ``*``."""
    f = driver.front(getattr(fn, "__srcdiff_wrapped__", fn))
    if wrt is None:
        names = list(f.params)
    else:
        items = [wrt] if not isinstance(wrt, (tuple, list)) else list(wrt)
        names = [f.params[w] if isinstance(w, int) else w for w in items]
    return _Graph(f, analyze(f, names))


def stack_stats(fn: Callable, *args: Any, wrt: Wrt = 0, **kwargs: Any) -> dict[str, int]:
    """Run the gradient of ``fn`` once with instrumented stacks.

    Returns ``{"stacks": number of stacks made (one per call of an adjoint
    that saves values), "peak": the largest size any reached, "left": values
    left on them at the end (always 0 for a correct adjoint)}``.  Straight-line
    code makes no stack at all.
    """
    from . import runtime

    g = GradientFunction(fn, wrt, with_value=False)
    args, kwargs = g._pre_args + tuple(args), {**g._pre_kwargs, **kwargs}
    values = g._wrt_values(args, kwargs)
    kinds = dict(zip(g.wrt, (_kind(v) for v in values)))
    c = compile_cached(g.fn, g.wrt, kinds, debug_stack=True, args=args, kwargs=kwargs,
                       spec=_spec_key(args, kwargs))
    log: list = []
    runtime.Stack._local.log = log
    try:
        c.fn(*args, **kwargs)
    finally:
        runtime.Stack._local.log = None
    return {"stacks": len(log), "peak": max((s.peak for s in log), default=0),
            "left": sum(len(s) for s in log)}


def check_grad(fn: Callable, *args: Any, wrt: Wrt = 0, eps: float = 1e-6, **kwargs: Any) -> dict[str, float]:
    """Compare srcdiff's gradient with central finite differences.

    Returns ``{parameter: worst relative error}``; values around 1e-7 or
    smaller mean agreement in float64.  Each relative error is
    ``|analytic - numeric| / max(1, |analytic|, |numeric|)`` per component.
    """
    import types

    g = grad(fn, wrt=wrt)
    grads = g(*args, **kwargs)
    if g.single:
        grads = (grads,)
    # a bound method or partial: perturb and call the function itself, with every argument
    args, kwargs = g._pre_args + tuple(args), {**g._pre_kwargs, **kwargs}
    fn = g.fn.__func__ if isinstance(g.fn, types.MethodType) else g.fn
    out: dict[str, float] = {}
    params = g.wrt
    for name, pos, analytic in zip(params, g._positions, grads):
        args_l = list(args)
        kw = dict(kwargs)
        if pos < len(args_l):
            base = args_l[pos]
        elif name in kw:
            base = kw[name]
        else:
            base = kw[name] = g._sig.parameters[name].default
        leaves, rebuild = _flatten(base)
        a_leaves, _ = _flatten(analytic)
        worst = 0.0
        for li, (leaf, a_leaf) in enumerate(zip(leaves, a_leaves)):
            if not _float_leaf(leaf):
                continue  # a field such as a name or a flag: not differentiated
            arr = np.array(leaf, dtype=float)
            a_arr = np.asarray(a_leaf, dtype=float)
            for idx in np.ndindex(arr.shape):
                vals = []
                for sign in (1, -1):
                    pert = arr.copy()
                    pert[idx] += sign * eps
                    new_leaves = list(leaves)
                    new_leaves[li] = pert if np.ndim(leaf) else float(pert)
                    value = rebuild(new_leaves)
                    if pos < len(args_l):
                        args_l[pos] = value
                    else:
                        kw[name] = value
                    vals.append(float(np.asarray(fn(*args_l, **kw))))
                numeric = (vals[0] - vals[1]) / (2 * eps)
                a = float(a_arr[idx])
                err = abs(a - numeric) / max(1.0, abs(a), abs(numeric))
                worst = max(worst, err)
        out[name] = worst
    return out


def _float_leaf(v: Any) -> bool:
    return isinstance(v, (float, np.floating)) or isinstance(v, np.ndarray) and v.dtype.kind == "f"


def _flatten(v: Any):
    """``(leaves, rebuild)``: the leaves of ``v`` (through every container,
    srcdiff/containers.py) and a function making ``v`` again from new leaves."""
    c = containers.lookup(v)
    if c is None:
        return [v], lambda ls: ls[0]
    kids, aux = c.children(v)
    parts = [_flatten(x) for x in kids]
    leaves = [leaf for p in parts for leaf in p[0]]

    def rebuild(ls, parts=parts):
        out, i = [], 0
        for p in parts:
            n = len(p[0])
            out.append(p[1](ls[i:i + n]))
            i += n
        if c.kind == "dataclass":  # a copy with new fields: attributes made by __post_init__ stay
            import copy

            obj = copy.copy(v)
            for name, x in zip(c.fields or (), out):
                object.__setattr__(obj, name, x)
            return obj
        return c.build(aux, out)
    return leaves, rebuild
