"""Array library dispatch: gradients of NumPy code called with arrays that
are not NumPy arrays (Dask, CuPy, ``sparse``, ...).

The generated adjoint is NumPy code, and NumPy functions hand arrays that
implement NumPy's dispatch protocols (``__array_function__``,
``__array_ufunc__``) to their own library.  So one adjoint serves every such
library; what is library-specific lives here and in the contract functions of
:mod:`srcdiff.runtime` (``seed``, ``mirror``, ``zeros_like``, ``full_like``):

* :func:`is_foreign` - an array-like that implements ``__array_function__``
  and is not a NumPy array: a call with one anywhere in its arguments takes
  :func:`call`, never the NumPy fast path, and runs the shape-generic adjoint
  (compiled without the shape probe, which would run the forward pass on the
  data);
* :func:`call` - run the adjoint with a guard that turns a NumPy function the
  array library lacks (Dask would compute the whole array on the client to
  run NumPy's own) into a :class:`~srcdiff.SrcdiffError` naming the operation
  and the line, then :func:`finish` the result;
* :func:`finish` - lazy arrays (Dask collections) in the result are evaluated
  together, with one ``dask.compute`` call, so the forward pass over the data
  is shared by the value and every gradient.  Gradients with respect to NumPy
  (or Python) arguments come back as NumPy arrays (floats), the value as a
  float; gradients with respect to lazy arguments stay lazy unless the
  gradient function was made with ``compute=True``.
"""

from __future__ import annotations

import inspect
import linecache
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import SrcdiffError

__all__ = ["is_foreign", "is_lazy", "has_foreign", "call", "finish", "to_numpy"]

_NUMPY = (np.ndarray, np.generic)


def is_foreign(x: Any) -> bool:
    """An array of another library that NumPy functions dispatch to: it
    implements ``__array_function__`` and is not a NumPy array or scalar."""
    return not isinstance(x, _NUMPY) and hasattr(type(x), "__array_function__")


def is_lazy(x: Any) -> bool:
    """A Dask collection (anything implementing the Dask collection protocol):
    its values exist only once it is computed."""
    return hasattr(type(x), "__dask_graph__") and x.__dask_graph__() is not None


def has_foreign(args: tuple, kwargs: dict, budget: int = 256) -> bool:
    """Does any argument hold a foreign array (looking into tuples, lists and
    dicts, at most ``budget`` items)?"""
    todo = list(args) + list(kwargs.values())
    while todo and budget > 0:
        budget -= 1
        v = todo.pop()
        t = type(v)
        if t is np.ndarray or t is float or t is int:
            continue
        if t is tuple or t is list:
            todo.extend(v)
        elif t is dict:
            todo.extend(v.values())
        elif is_foreign(v):
            return True
    return False


def to_numpy(v: Any) -> Any:
    """A computed foreign array as a NumPy array (CuPy's ``get``, ``sparse``'s
    ``todense``), anything else unchanged."""
    if not is_foreign(v):
        return v
    if hasattr(v, "todense"):
        v = v.todense()
    elif hasattr(v, "get") and callable(v.get) and not isinstance(v, dict):
        v = v.get()
    return np.asarray(v)


# -- the guard: NumPy functions the array library lacks --------------------------------

# Dask runs a NumPy function it does not implement by computing its array arguments and
# calling NumPy's own on the results: the whole array, on the client.  Inside a gradient
# that is an error, reported with the operation and the line.
_FALLBACK = re.compile(r"The `([\w.]+)` function is not implemented by (\w+) array")


def _where(exc: BaseException, fn: Callable, op: str | None = None) -> tuple[str | None, int | None, str | None]:
    """The user's file, line and code for the generated line ``exc`` came from
    (its nearest comment: the source line the generated code stands for)."""
    tb = exc.__traceback__
    frame_file, frame_line = None, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.startswith("<srcdiff"):
            frame_file, frame_line = name, tb.tb_lineno
        tb = tb.tb_next
    if frame_file is None:
        return None, None, None
    lines = linecache.getlines(frame_file)
    text = None
    for i in range(min(frame_line, len(lines)) - 1, -1, -1):
        s = lines[i].strip()
        if s.startswith("# ") and s not in ("# forward pass", "# backward pass"):
            text = s[2:]
            break
    else:
        # the forward pass carries no comments: the generated line itself
        text = lines[frame_line - 1].strip() if 0 < frame_line <= len(lines) else None
    filename = getattr(getattr(fn, "__code__", None), "co_filename", None)
    lineno = None
    try:
        src, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        src, first = [], 0
    for k, s in enumerate(src):
        if text is not None and s.strip() == text:
            return filename, first + k, text
    if op is not None:  # a forward-pass line: the user's line calling the operation
        for k, s in enumerate(src):
            if re.search(rf"\b{re.escape(op)}\(", s):
                return filename, first + k, s.strip()
    return filename, lineno, text


def _library(args: tuple, kwargs: dict) -> str:
    for v in list(args) + list(kwargs.values()):
        if is_foreign(v):
            return type(v).__module__.split(".")[0]
    return "the array library"


def call(adjoint: Callable, fn: Callable, args: tuple, kwargs: dict, wrt_values: list[Any], *,
         with_value: bool, single: bool, compute: bool, mirror: Callable[[Any, Any], Any]) -> Any:
    """Run the shape-generic ``adjoint`` of ``fn`` on arguments holding foreign
    arrays, and :func:`finish` its result (``mirror``: the runtime's, shaping a
    computed gradient like its NumPy argument)."""
    lib = _library(args, kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_FALLBACK.pattern, category=FutureWarning)
        try:
            out = adjoint(*args, **kwargs)
        except SrcdiffError:
            raise
        except FutureWarning as exc:
            m = _FALLBACK.search(str(exc))
            if m is None:
                raise
            filename, lineno, text = _where(exc, fn, m.group(1).rsplit(".", 1)[-1])
            raise SrcdiffError(
                f"{m.group(1)} is not implemented by {m.group(2)} arrays: running NumPy's own would load "
                "the whole array into memory", filename=filename, lineno=lineno, construct=text,
                hint=f"write this step with operations {m.group(2)} implements (or with "
                "dask.array.map_blocks), or differentiate with NumPy arrays") from None
        except (TypeError, NotImplementedError, ValueError) as exc:
            filename, lineno, text = _where(exc, fn)
            if filename is None or "NotImplemented" not in str(exc) and "not supported" not in str(exc) \
                    and not isinstance(exc, NotImplementedError):
                raise
            m = re.search(r"<ufunc '(\w+)'>, '(\w+)'", str(exc))
            what = f"np.{m.group(1)}.{m.group(2)}" if m else "this operation"
            raise SrcdiffError(
                f"{what} is not supported for {lib} arrays", filename=filename, lineno=lineno,
                construct=text, hint="scatter-adds (np.add.at, ufunc.at), in-place writes into arrays and "
                "some sorting have no formulation for this library here; differentiate this step with "
                "NumPy arrays, or rewrite it without them") from None
    return finish(out, wrt_values, with_value=with_value, single=single, compute=compute, mirror=mirror)


def finish(out: Any, wrt_values: list[Any], *, with_value: bool, single: bool, compute: bool,
           mirror: Callable[[Any, Any], Any]) -> Any:
    """Evaluate the lazy arrays of an adjoint's result together.

    ``out`` is what the adjoint returned: ``grads`` or ``(value, grads)``,
    with ``grads`` one gradient (``single``) or a tuple, each mirroring its
    argument in ``wrt_values``.  The value, and every gradient whose argument
    is not foreign itself (or all of them with ``compute``), are computed with
    one ``dask.compute`` call and converted to what NumPy arguments get
    (NumPy arrays, floats).  A foreign array that is not lazy (CuPy,
    ``sparse``) is converted the same way where its argument is NumPy."""
    value, grads = out if with_value else (None, out)
    grads = [grads] if single else list(grads)
    leaves: list[Any] = []
    if with_value and is_foreign(value):
        leaves.append(value)
    for g, x in zip(grads, wrt_values):
        _leaves(g, x, compute, leaves)
    lazy = [v for v in leaves if is_lazy(v)]
    done: dict[int, Any] = {}
    if lazy:
        import dask

        for v, got in zip(lazy, dask.compute(*lazy)):
            done[id(v)] = got
    grads = [_convert(g, x, compute, done, mirror) for g, x in zip(grads, wrt_values)]
    result = grads[0] if single else tuple(grads)
    if not with_value:
        return result
    if is_foreign(value):
        v = to_numpy(done.get(id(value), value))
        value = float(v) if np.ndim(v) == 0 and v.dtype.kind in "fiub" else v
    return value, result


def _leaves(g: Any, x: Any, compute: bool, out: list) -> None:
    """The gradient leaves in ``g`` (mirroring ``x``) to evaluate."""
    if isinstance(x, (tuple, list)) and isinstance(g, (tuple, list)):
        for gk, xk in zip(g, x):
            _leaves(gk, xk, compute, out)
    elif isinstance(x, dict) and isinstance(g, dict):
        for k, gk in g.items():
            _leaves(gk, x.get(k), compute, out)
    elif is_foreign(g) and (compute or not is_foreign(x)):
        out.append(g)


def _convert(g: Any, x: Any, compute: bool, done: dict[int, Any], mirror: Callable[[Any, Any], Any]) -> Any:
    """``g`` with its evaluated leaves as NumPy values mirroring ``x``."""
    if isinstance(x, (tuple, list)) and isinstance(g, (tuple, list)):
        items = [_convert(gk, xk, compute, done, mirror) for gk, xk in zip(g, x)]
        if isinstance(g, list):
            return items
        return type(g)(*items) if hasattr(g, "_fields") else type(g)(items)
    if isinstance(x, dict) and isinstance(g, dict):
        return {k: _convert(gk, x.get(k), compute, done, mirror) for k, gk in g.items()}
    if is_foreign(g) and (compute or not is_foreign(x)):
        v = to_numpy(done.get(id(g), g))
        return mirror(v, x) if not is_foreign(x) else np.array(v, dtype=x.dtype)
    return g


def check_float(name: str, v: Any, fname: str) -> None:
    """A differentiated argument holding foreign arrays must hold float ones."""
    if isinstance(v, (tuple, list)):
        for x in v:
            check_float(name, x, fname)
    elif isinstance(v, dict):
        for x in v.values():
            check_float(name, x, fname)
    elif is_foreign(v) and np.dtype(getattr(v, "dtype", float)).kind not in "fc":
        raise SrcdiffError(
            f"cannot differentiate {fname} with respect to {name!r}: it is an array of dtype {v.dtype}",
            hint="pass a float array (x.astype(float)), or leave this argument out of wrt")
