"""What generated gradient code calls at run time.

Everything here is small, pure and thread-safe: generated adjoints keep their
state (the stack of saved values) in local variables, never here.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import SrcdiffError

__all__ = [
    "unbroadcast",
    "sum_grad",
    "mean_grad",
    "extremum_grad",
    "zeros_like",
    "seed",
    "mirror",
    "getitem_grad",
    "array_grad",
    "add",
]


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


def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _expand(g, shape, axis, keepdims):
    """Give ``g`` back the reduced axes of an array of ``shape`` (as size 1)."""
    if keepdims or not shape:
        return g
    axes = _norm_axis(axis, len(shape))
    g = np.asarray(g)
    for a in sorted(axes):
        g = np.expand_dims(g, a)
    return g


def sum_grad(g, x, axis=None, keepdims=False):
    """Adjoint of ``np.sum(x, axis, keepdims=keepdims)``."""
    shape = np.shape(x)
    return np.broadcast_to(_expand(g, shape, axis, keepdims), shape)


def mean_grad(g, x, axis=None, keepdims=False):
    """Adjoint of ``np.mean(x, axis, keepdims=keepdims)``."""
    shape = np.shape(x)
    n = 1
    for a in _norm_axis(axis, len(shape)):
        n *= shape[a]
    return np.broadcast_to(_expand(g, shape, axis, keepdims), shape) / n


def extremum_grad(g, ans, x, axis=None, keepdims=False):
    """Adjoint of ``max``/``min`` reductions: ties share the gradient equally."""
    shape = np.shape(x)
    ans = _expand(ans, shape, axis, keepdims)
    g = _expand(g, shape, axis, keepdims)
    mask = np.asarray(x) == ans
    count = np.sum(mask, axis=_norm_axis(axis, len(shape)), keepdims=True) if shape else 1
    return g * mask / count


def zeros_like(x):
    """A zero gradient shaped like ``x`` (containers keep their type)."""
    if isinstance(x, tuple):
        return tuple(zeros_like(v) for v in x)
    if isinstance(x, list):
        return [zeros_like(v) for v in x]
    if isinstance(x, dict):
        return {k: zeros_like(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind in "fc" else float)
    return 0.0


def add(a, b):
    """Sum of two gradients, containers elementwise."""
    if isinstance(a, (tuple, list)):
        return type(a)(add(u, v) for u, v in zip(a, b))
    if isinstance(a, dict):
        return {k: add(a[k], b[k]) for k in a}
    return a + b


def seed(result, fname="the function"):
    """The adjoint of the output: 1.0, after checking the output is a scalar."""
    if isinstance(result, (float, int, np.floating, np.integer)) and not isinstance(result, bool):
        return 1.0
    if isinstance(result, np.ndarray) and result.size == 1:
        return np.ones_like(result, dtype=float)
    shape = getattr(result, "shape", None)
    what = f"an array of shape {shape}" if shape is not None else f"a {type(result).__name__}"
    raise SrcdiffError(
        f"{fname} must return a scalar to be differentiated by grad(), but it returned {what}",
        hint="reduce the output first (for example np.sum(...) or np.mean(...)), "
        "or differentiate one element of it",
    )


def mirror(dx, x):
    """Make gradient ``dx`` mirror its argument ``x``: float -> float, array ->
    array of the same shape and a float dtype, containers -> same container."""
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
    if isinstance(x, np.ndarray):
        out = np.asarray(dx)
        if out.shape != x.shape:
            out = np.broadcast_to(out, x.shape)
        if out.dtype.kind not in "fc":
            out = out.astype(float)
        if out.base is not None or not out.flags.writeable:
            out = np.array(out)
        return out
    if isinstance(x, numbers.Number):
        return float(np.real(dx)) if not isinstance(x, complex) else complex(dx)
    if isinstance(x, np.generic):
        return float(dx)
    return dx


def _is_zero(v):
    return isinstance(v, (int, float)) and v == 0


def getitem_grad(g, x, index):
    """Adjoint of ``x[index]``: scatter-add ``g`` into zeros shaped like ``x``.

    Repeated integer indices accumulate (``np.add.at``)."""
    if isinstance(x, (list, tuple)):
        out = list(zeros_like(x))
        if isinstance(index, slice):
            for i, gi in zip(range(*index.indices(len(x))), g):
                out[i] = gi
        else:
            out[index] = g
        return type(x)(out)
    out = np.zeros(np.shape(x), dtype=np.result_type(float, np.asarray(g).dtype))
    np.add.at(out, index, g)
    return out


def array_grad(g, obj):
    """Adjoint of ``np.array(obj)`` for a (nested) list/tuple ``obj`` of
    differentiable values: split ``g`` back into that structure."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(array_grad(g[i], v) for i, v in enumerate(obj))
    if isinstance(obj, np.ndarray):
        return g
    return g


def dmatmul_a(g, a, b):
    """Adjoint of ``a @ b`` with respect to ``a`` (1-d, 2-d and batched)."""
    a_nd, b_nd = np.ndim(a), np.ndim(b)
    if b_nd == 1:
        if a_nd == 1:
            return g * b
        return unbroadcast(np.multiply.outer(g, b), a) if a_nd == 2 else unbroadcast(g[..., None] * b, a)
    if a_nd == 1:
        return unbroadcast(g @ np.swapaxes(b, -1, -2), a) if b_nd == 2 else unbroadcast(
            (g[..., None, :] @ np.swapaxes(b, -1, -2))[..., 0, :], a)
    return unbroadcast(g @ np.swapaxes(b, -1, -2), a)


def dmatmul_b(g, a, b):
    """Adjoint of ``a @ b`` with respect to ``b`` (1-d, 2-d and batched)."""
    a_nd, b_nd = np.ndim(a), np.ndim(b)
    if a_nd == 1:
        if b_nd == 1:
            return g * a
        return unbroadcast(np.multiply.outer(a, g), b) if b_nd == 2 else unbroadcast(a[:, None] * g[..., None, :], b)
    if b_nd == 1:
        return unbroadcast(np.swapaxes(a, -1, -2) @ g, b) if a_nd == 2 else unbroadcast(
            (np.swapaxes(a, -1, -2) @ g[..., None])[..., 0], b)
    return unbroadcast(np.swapaxes(a, -1, -2) @ g, b)


class Stack(list):
    """The per-call stack, instrumented (used only by ``srcdiff.stack_stats``):
    records its peak size; every stack made during a traced call is kept in
    ``Stack.traced`` of the current thread."""

    import threading as _threading

    _local = _threading.local()

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


def sum_list_grad(g, items):
    """Adjoint of the builtin ``sum(items)``: each item gets ``g`` (reduced to
    the item's shape when the sum broadcast it)."""
    if isinstance(items, np.ndarray):
        return np.broadcast_to(g, items.shape[1:])[None].repeat(items.shape[0], axis=0) if items.ndim else g
    return [unbroadcast(g, v) for v in items]
