"""The contract generated code calls at run time (``rt.`` in generated code).

Small, pure and thread-safe: generated adjoints keep their state (the stack
of saved values) in local variables, never here.  The contract is what the
compiler itself writes: ``seed`` (the adjoint of the output), ``mirror`` (a
gradient shaped like its argument), ``unbroadcast``, ``zeros_like``,
``full_like``, ``size``, ``add`` (gradients, containers elementwise) and
``Stack`` (the instrumented stack of ``srcdiff.stack_stats``).  The
derivative bodies that rules call live next to the rules
(``srcdiff/rules/numpy_vjps.py``, ``vjp.`` in generated code).
"""

from __future__ import annotations

import math
import numbers
import threading

import numpy as np

from . import containers as _containers
from .arrays import is_foreign as _foreign
from .errors import SrcdiffError

__all__ = ["unbroadcast", "zeros_like", "full_like", "size", "add", "seed", "mirror", "Stack"]


def unbroadcast(g, x):
    """Reduce ``g`` (the adjoint of a broadcast result) to the shape of ``x``."""
    xshape = np.shape(x)
    gshape = np.shape(g)
    if gshape == xshape:
        return g
    if not xshape:
        return np.sum(g)
    lead = len(gshape) - len(xshape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(xshape) if n == 1 and gshape[i + lead] != 1
    )
    if axes:
        g = np.sum(g, axis=axes, keepdims=True)
    if lead:
        g = g.reshape(xshape)
    return g


def zeros_like(x):
    """A zero gradient shaped like ``x`` (containers keep their type)."""
    if _containers.custom(x) is not None:  # NamedTuple, dataclass, registered class
        return _containers.zeros(x)
    if isinstance(x, tuple):
        return tuple(zeros_like(v) for v in x)
    if isinstance(x, list):
        return [zeros_like(v) for v in x]
    if isinstance(x, dict):
        return {k: zeros_like(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind in "fc" else float)
    if _foreign(x):  # Dask, CuPy, ...: zeros of the same library (and chunks), lazily
        return np.zeros_like(x, dtype=x.dtype if x.dtype.kind in "fc" else float)
    return 0.0


def full_like(a, v):
    """An array shaped like ``a`` filled with the number ``v`` (a float or a
    0-d array): a NumPy array for NumPy ``a`` (or a list), else an array of
    ``a``'s own library, laid out like ``a`` (Dask: the same chunks)."""
    if _foreign(a) or _foreign(v):
        if not _foreign(a):
            return np.full(np.shape(a), v)
        dtype = np.result_type(a.dtype if a.dtype.kind in "fc" else float, getattr(v, "dtype", float))
        if _foreign(v):
            return np.zeros_like(a, dtype=dtype) + v
        return np.full_like(a, v, dtype=dtype)
    return np.full(np.shape(a), v)


def size(a):
    """The number of elements of ``a``, from its shape (never its values)."""
    return math.prod(np.shape(a))


def add(a, b):
    """Sum of two gradients, containers elementwise."""
    if isinstance(a, _containers.ContainerGrad) or isinstance(b, _containers.ContainerGrad) or \
            _containers.custom(a) is not None or _containers.custom(b) is not None:
        return _containers.add(a if isinstance(a, _containers.ContainerGrad) else _as_grad(a),
                               b if isinstance(b, _containers.ContainerGrad) else _as_grad(b))
    if isinstance(a, (tuple, list, dict)) and _is_zero(b):
        return a
    if isinstance(b, (tuple, list, dict)) and _is_zero(a):
        return b
    if isinstance(a, (tuple, list)):
        return type(a)(add(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return {k: add(a[k], b[k]) for k in a}
    return a + b


def _as_grad(v):
    """A gradient held as its container's own type, as a ContainerGrad (others unchanged)."""
    c = _containers.custom(v)
    if c is None:
        return v
    kids, aux = c.children(v)
    return _containers.ContainerGrad(c, aux, kids, kids)


def seed(result, fname="the function"):
    """The adjoint of the output: 1.0, after checking the output is a scalar."""
    if isinstance(result, (float, int, np.floating, np.integer)) and not isinstance(result, bool):
        return 1.0
    if isinstance(result, np.ndarray) and result.size == 1:
        return np.ones_like(result, dtype=float)
    shape = getattr(result, "shape", None)
    if _foreign(result) and shape is not None and math.prod(shape) == 1 and result.dtype.kind in "fiu":
        # a lazy (Dask) or device scalar: its shape says it is one; its value is not needed
        return 1.0 if not shape else np.ones_like(result, dtype=float)
    if np.iscomplexobj(result):
        what = "a complex number" if not shape else f"a complex array of shape {shape}"
    else:
        what = f"an array of shape {shape}" if shape is not None else f"a {type(result).__name__}"
    raise SrcdiffError(
        f"{fname} must return a scalar to be differentiated by grad(), but it returned {what}",
        hint="reduce the output first (for example np.sum(...) or np.mean(...)), "
        "or differentiate one element of it",
    )


def mirror(dx, x):
    """Make gradient ``dx`` mirror its argument ``x``: float -> float, array ->
    array of the same shape and a float dtype, containers -> same container."""
    c = _containers.custom(x)
    if c is not None:  # NamedTuple, dataclass, registered class: rebuilt as its own type
        kids, aux = c.children(x)
        return c.build(aux, [mirror(d, v) for d, v in zip(_containers.grad_children(dx, x, c, kids), kids)])
    if isinstance(x, tuple):
        if not isinstance(dx, (tuple, list)):
            dx = zeros_like(x) if _is_zero(dx) else dx
        return tuple(mirror(d, v) for d, v in zip(dx, x))
    if isinstance(x, list):
        if not isinstance(dx, (tuple, list)):
            dx = zeros_like(x) if _is_zero(dx) else dx
        return [mirror(d, v) for d, v in zip(dx, x)]
    if isinstance(x, dict):
        if not isinstance(dx, dict):
            dx = zeros_like(x)
        return {k: mirror(dx.get(k, 0.0), v) for k, v in x.items()}
    tx = type(x)
    if tx is not np.ndarray and tx is not float and _foreign(x) or type(dx) not in _PLAIN and _foreign(dx):
        return _mirror_foreign(dx, x)
    if isinstance(x, np.ndarray):
        out = np.asarray(dx)
        if out.shape != x.shape:
            out = np.broadcast_to(out, x.shape)
        if out.dtype.kind not in "fc":
            out = out.astype(float)
        if x.dtype.kind == "f" and out.dtype != x.dtype:
            out = out.astype(x.dtype)  # a float32 argument gets a float32 gradient
        if out.base is not None or not out.flags.writeable:
            out = np.array(out)
        return out
    if isinstance(x, np.floating):
        return type(x)(np.real(dx))
    if isinstance(x, numbers.Number):
        return float(np.real(dx)) if not isinstance(x, complex) else complex(dx)
    if isinstance(x, np.generic):
        return float(dx)
    return dx


_PLAIN = {np.ndarray, float, int, np.float64}


def _mirror_foreign(dx, x):
    """``mirror`` where ``dx`` or ``x`` is an array of another library
    (srcdiff.arrays): for such an ``x``, an array of its library, shape and a
    float dtype, built lazily; for a NumPy or Python ``x``, ``dx`` as it is -
    the caller (``srcdiff.arrays.finish``) evaluates it and mirrors the result."""
    if not _foreign(x):
        return dx
    dtype = x.dtype if x.dtype.kind in "fc" else np.dtype(float)
    if not _foreign(dx):
        return full_like(x, dx).astype(dtype, copy=False)
    if dx.shape != x.shape:
        dx = np.broadcast_to(dx, x.shape)
    if dx.dtype != dtype and (dx.dtype.kind not in "fc" or x.dtype.kind == "f"):
        dx = dx.astype(dtype)
    return dx


def _is_zero(v):
    return isinstance(v, (int, float)) and v == 0


class Stack(list):
    """The per-call stack, instrumented (used only by ``srcdiff.stack_stats``):
    records its peak size; every stack made during a traced call is kept in
    ``Stack.traced`` of the current thread."""

    _local = threading.local()

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0
        log = getattr(Stack._local, "log", None)
        if log is not None:
            log.append(self)

    def append(self, value) -> None:
        super().append(value)
        if len(self) > self.peak:
            self.peak = len(self)


_containers.set_leaf_ops(add, zeros_like)
