"""Gradient checks: finite differences for the reference, allclose for the systems."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Every system computes in float64; they differ from the reference only by
# rounding (summation order, fused kernels), so the tolerance can be tight.
RTOL = 1e-6
ATOL = 1e-9


def compare(got: Sequence[Any], want: Sequence[Any], names: Sequence[str]) -> str | None:
    """``None`` when every gradient matches the reference, else what is wrong."""
    if len(got) != len(want):
        return f"expected {len(want)} gradients ({', '.join(names)}), got {len(got)}"
    for name, g, w in zip(names, got, want, strict=True):
        g = np.asarray(g, dtype=float)
        w = np.asarray(w, dtype=float)
        if g.shape != w.shape:
            return f"d/d{name}: shape {g.shape}, expected {w.shape}"
        scale = float(np.max(np.abs(w))) if w.size else 0.0
        if not np.allclose(g, w, rtol=RTOL, atol=ATOL * (1.0 + scale)):
            err = float(np.max(np.abs(g - w)))
            return f"d/d{name}: max abs error {err:.3g} (reference max |g| {scale:.3g})"
    return None


def finite_differences(
    fn: Callable[..., Any], args: Sequence[Any], indices: Sequence[int], eps: float = 1e-6
) -> list[Any]:
    """Central finite differences of scalar ``fn(*args)`` w.r.t. ``args[i]`` for ``i`` in ``indices``.

    Float arguments give a float, arrays an array of the same shape.
    """
    out: list[Any] = []
    for i in indices:
        x = args[i]
        if isinstance(x, float):
            hi = list(args)
            lo = list(args)
            hi[i] = x + eps
            lo[i] = x - eps
            out.append((float(fn(*hi)) - float(fn(*lo))) / (2 * eps))
            continue
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for j in np.ndindex(x.shape):
            hi = x.copy()
            lo = x.copy()
            hi[j] += eps
            lo[j] -= eps
            a = list(args)
            a[i] = hi
            f_hi = float(fn(*a))
            a[i] = lo
            f_lo = float(fn(*a))
            g[j] = (f_hi - f_lo) / (2 * eps)
        out.append(g)
    return out


def check_against_fd(
    fn: Callable[..., Any],
    grads: Sequence[Any],
    args: Sequence[Any],
    indices: Sequence[int],
    names: Sequence[str],
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> str | None:
    """``None`` when ``grads`` agree with central finite differences of ``fn``."""
    if len(grads) != len(indices):
        return f"expected {len(indices)} gradients ({', '.join(names)}), got {len(grads)}"
    fd = finite_differences(fn, args, indices)
    for name, g, w in zip(names, grads, fd, strict=True):
        g = np.asarray(g, dtype=float)
        w = np.asarray(w, dtype=float)
        if g.shape != w.shape:
            return f"d/d{name}: shape {g.shape}, finite differences give {w.shape}"
        scale = float(np.max(np.abs(w))) if w.size else 0.0
        if not np.allclose(g, w, rtol=rtol, atol=atol * (1.0 + scale)):
            err = float(np.max(np.abs(g - w)))
            return f"d/d{name}: max abs error {err:.3g} against finite differences"
    return None
