"""Derivative bodies of the NumPy rules: what their templates call as ``vjp.``.

Each function takes the incoming adjoint ``g`` (and the call's values) and
returns the adjoint of one argument.  They are used only by the rules in
``numpy_arrays.py`` and friends; the compiler itself writes only the
runtime contract (``srcdiff.runtime``, ``rt.`` in generated code).
"""

from __future__ import annotations

import numpy as np

from .. import containers as _containers
from ..errors import SrcdiffError
from ..runtime import unbroadcast, zeros_like


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
    if not shape:
        return g
    if not keepdims:
        ans = _expand(ans, shape, axis, keepdims)
        g = _expand(g, shape, axis, keepdims)
    mask = x == ans
    if axis is None:
        return np.where(mask, g / np.count_nonzero(mask), 0.0)
    count = mask.sum(axis=_norm_axis(axis, len(shape)), keepdims=True)
    return np.where(mask, g / count, 0.0)


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


def sum_list_grad(g, items):
    """Adjoint of the builtin ``sum(items)``: each item gets ``g`` (reduced to
    the item's shape when the sum broadcast it)."""
    if isinstance(items, np.ndarray):
        return np.broadcast_to(g, items.shape[1:])[None].repeat(items.shape[0], axis=0) if items.ndim else g
    return [unbroadcast(g, v) for v in items]


# -- helpers for srcdiff.rules.numpy_arrays (reductions, linear algebra, shapes) --


def _revcumsum(v, axis=-1):
    """Reverse cumulative sum along ``axis``: ``out[i] = sum(v[i:])``."""
    return np.flip(np.cumsum(np.flip(v, axis), axis=axis), axis)


def _seq_like(seq, items):
    """Return ``items`` in the container type of ``seq`` (list, tuple or stacked array)."""
    if isinstance(seq, np.ndarray):
        return np.stack(items) if items else np.zeros(seq.shape)
    if isinstance(seq, tuple):
        return tuple(items)
    return list(items)


def _float_zeros(shape, g=0.0):
    """Zeros of ``shape`` with a float (or complex, following ``g``) dtype."""
    return np.zeros(shape, dtype=np.result_type(float, np.asarray(g).dtype))


def prod_grad(g, x, axis=None, keepdims=False):
    """Adjoint of ``np.prod(x, axis, keepdims=keepdims)``.

    Each element receives the product of the *other* elements, computed from
    exclusive prefix and suffix products, so zeros in ``x`` are exact."""
    x = np.asarray(x)
    if x.ndim == 0:
        return g
    axes = _norm_axis(axis, x.ndim)
    dest = tuple(range(x.ndim - len(axes), x.ndim))
    xm = np.moveaxis(x, axes, dest)
    flat = xm.reshape(xm.shape[: x.ndim - len(axes)] + (-1,))
    if flat.shape[-1] == 0:
        return _float_zeros(x.shape, g)
    one = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    left = np.cumprod(np.concatenate([one, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([one, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = np.moveaxis((left * right).reshape(xm.shape), dest, axes)
    return others * _expand(g, x.shape, axis, keepdims)


def var_grad(g, x, axis=None, ddof=0, keepdims=False):
    """Adjoint of ``np.var(x, axis, ddof=ddof, keepdims=keepdims)``."""
    x = np.asarray(x)
    axes = _norm_axis(axis, x.ndim)
    n = 1
    for a in axes:
        n *= x.shape[a]
    d = x - np.mean(x, axis=axes, keepdims=True)
    return 2.0 * d * _expand(g, x.shape, axis, keepdims) / np.float64(n - ddof)


def nanvar_grad(g, x, axis=None, ddof=0, keepdims=False):
    """Adjoint of ``np.nanvar``: like :func:`var_grad`, NaNs get zero."""
    x = np.asarray(x)
    axes = _norm_axis(axis, x.ndim)
    ok = ~np.isnan(x)
    n = np.sum(ok, axis=axes, keepdims=True)
    d = np.where(ok, x - np.nanmean(x, axis=axes, keepdims=True), 0.0)
    return 2.0 * d * _expand(g, x.shape, axis, keepdims) / (n - ddof)


def nanmean_grad(g, x, axis=None, keepdims=False):
    """Adjoint of ``np.nanmean``: ``g / count`` on the non-NaN entries."""
    x = np.asarray(x)
    ok = ~np.isnan(x)
    n = np.sum(ok, axis=_norm_axis(axis, x.ndim), keepdims=True)
    return np.where(ok, _expand(g, x.shape, axis, keepdims) / np.maximum(n, 1), 0.0)


def cumsum_grad(g, x, axis=None):
    """Adjoint of ``np.cumsum(x, axis)``: a reverse cumulative sum of ``g``."""
    g = np.asarray(g)
    if axis is None:
        return np.reshape(_revcumsum(g.reshape(-1)), np.shape(x))
    return _revcumsum(g, axis)


def cumprod_grad(g, ans, x, axis=None):
    """Adjoint of ``np.cumprod(x, axis)``, exact when ``x`` has zeros.

    Before the first zero of a row the gradient is ``revcumsum(g * ans) / x``;
    at the first zero it is ``revcumsum(g * cumprod(x'))`` with that zero
    replaced by one; after it, zero."""
    x = np.asarray(x)
    shape = x.shape
    if axis is None:
        x, axis = x.reshape(-1), 0
    xm = np.moveaxis(x, axis, -1)
    gm = np.moveaxis(np.asarray(g), axis, -1)
    am = np.moveaxis(np.asarray(ans), axis, -1)
    zero = xm == 0
    if not zero.any():
        out = _revcumsum(gm * am) / xm
    else:
        n = xm.shape[-1]
        first = np.where(zero.any(axis=-1), np.argmax(zero, axis=-1), n)[..., None]
        idx = np.arange(n)
        before, at = idx < first, idx == first
        t1 = _revcumsum(gm * am) / np.where(before, xm, 1)
        t2 = _revcumsum(gm * np.cumprod(np.where(at, 1, xm), axis=-1))
        out = np.where(before, t1, np.where(at, t2, 0.0))
    return np.moveaxis(out, -1, axis).reshape(shape)


def cumulative_grad(g, ans, x, axis=None, include_initial=False, prod=False):
    """Adjoint of ``np.cumulative_sum`` / ``np.cumulative_prod`` (``prod=True``)."""
    ax = 0 if axis is None else axis
    if include_initial:
        g, ans = np.asarray(g), np.asarray(ans)
        cut = (slice(None),) * (ax % g.ndim) + (slice(1, None),)
        g, ans = g[cut], ans[cut]
    return cumprod_grad(g, ans, x, ax) if prod else cumsum_grad(g, x, ax)


def average_grad(g, ans, a, axis=None, weights=None, returned=False, keepdims=False, wrt="a"):
    """Adjoint of ``np.average`` with respect to ``a`` or (``wrt="weights"``) the weights."""
    a = np.asarray(a)
    shape = a.shape
    gsum = None
    if returned:
        (g, gsum), ans = g, ans[0]
    if weights is None:
        return mean_grad(g, a, axis, keepdims)
    w = np.asarray(weights)
    wb = w
    if w.shape != shape:  # 1-d weights along an int axis
        ax = axis % a.ndim
        wb = w.reshape([w.size if i == ax else 1 for i in range(a.ndim)])
    sw = np.sum(np.broadcast_to(wb, shape), axis=_norm_axis(axis, a.ndim), keepdims=True)
    ge = _expand(g, shape, axis, keepdims)
    if wrt == "a":
        return ge * wb / sw
    gw = ge * (a - _expand(ans, shape, axis, keepdims)) / sw
    if gsum is not None:
        gw = gw + _expand(gsum, shape, axis, keepdims)
    if w.shape != shape:
        gw = np.sum(gw, axis=tuple(i for i in range(a.ndim) if i != ax)).reshape(w.shape)
    return gw


def _vnorm_grad(g, ans, x, ord, axes, keepdims):
    """Adjoint of a vector p-norm of ``x`` over ``axes``."""
    ge = _expand(g, x.shape, axes, keepdims)
    ae = _expand(ans, x.shape, axes, keepdims)
    if ord is None or ord == 2:
        return ge * x / np.where(ae == 0, 1.0, ae)
    if ord in (np.inf, -np.inf):
        mask = np.abs(x) == ae
        return ge * np.sign(x) * mask / np.sum(mask, axis=axes, keepdims=True)
    if ord == 0:
        return _float_zeros(x.shape, g)
    if ord == 1:
        return ge * np.sign(x)
    return ge * np.sign(x) * (np.abs(x) / np.where(ae == 0, 1.0, ae)) ** (ord - 1)


def _mnorm_grad(g, ans, x, ord, axes, keepdims):
    """Adjoint of a matrix norm of ``x`` over the two ``axes`` (rows, columns)."""
    if ord in (None, "fro", "f"):
        return _vnorm_grad(g, ans, x, 2, axes, keepdims)
    xm = np.moveaxis(x, axes, (-2, -1))
    gm = np.reshape(g, xm.shape[:-2])[..., None, None]
    if ord in ("nuc", 2, -2):
        u, _, vh = np.linalg.svd(xm, full_matrices=False)
        if ord == "nuc":
            d = u @ vh
        else:
            i = 0 if ord == 2 else -1
            d = u[..., :, i, None] * vh[..., i, None, :]
    elif ord in (1, -1, np.inf, -np.inf):
        red, other = (-2, -1) if ord in (1, -1) else (-1, -2)
        sums = np.sum(np.abs(xm), axis=red, keepdims=True)
        best = (np.max if ord > 0 else np.min)(sums, axis=other, keepdims=True)
        mask = sums == best
        d = np.sign(xm) * mask / np.sum(mask, axis=other, keepdims=True)
    else:
        raise SrcdiffError(f"no gradient for the matrix norm ord={ord!r}")
    return np.moveaxis(gm * d, (-2, -1), axes)


def norm_grad(g, ans, x, ord=None, axis=None, keepdims=False):
    """Adjoint of ``np.linalg.norm(x, ord, axis, keepdims)`` (vector and matrix norms)."""
    x = np.asarray(x)
    if axis is None:
        if ord is None or x.ndim == 1:
            return _vnorm_grad(g, ans, x, ord, tuple(range(x.ndim)), keepdims)
        return _mnorm_grad(g, ans, x, ord, (0, 1), keepdims)
    axes = tuple(int(a) % x.ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))
    if len(axes) == 1:
        return _vnorm_grad(g, ans, x, ord, axes, keepdims)
    return _mnorm_grad(g, ans, x, ord, axes, keepdims)


def vector_norm_grad(g, ans, x, axis=None, keepdims=False, ord=2):
    """Adjoint of ``np.linalg.vector_norm`` (``axis`` may be None or a tuple)."""
    x = np.asarray(x)
    return _vnorm_grad(g, ans, x, ord, _norm_axis(axis, x.ndim), keepdims)


def matrix_norm_grad(g, ans, x, keepdims=False, ord="fro"):
    """Adjoint of ``np.linalg.matrix_norm`` over the last two axes."""
    x = np.asarray(x)
    return _mnorm_grad(g, ans, x, ord, (x.ndim - 2, x.ndim - 1), keepdims)


def quantile_grad(g, a, q, axis=None, keepdims=False, method="linear", wrt="a"):
    """Adjoint of ``np.quantile(a, q, axis, keepdims=keepdims)`` (method
    ``"linear"``, the default; also median) with respect to ``a`` or ``q``."""
    if method != "linear":
        raise SrcdiffError(f"no gradient for np.quantile with method={method!r}", hint="use method='linear'")
    a = np.asarray(a)
    qa = np.asarray(q, dtype=float)
    axes = _norm_axis(axis, a.ndim)
    dest = tuple(range(a.ndim - len(axes), a.ndim))
    am = np.moveaxis(a, axes, dest)
    flat = am.reshape(am.shape[: a.ndim - len(axes)] + (-1,))
    lead, n = flat.shape[:-1], flat.shape[-1]
    perm = np.argsort(flat, axis=-1)
    v = qa.reshape(-1) * (n - 1)
    lo = np.clip(np.floor(v).astype(int), 0, n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = v - lo
    gq = np.reshape(g, (v.size,) + lead)
    if wrt == "q":
        s = np.take_along_axis(flat, perm, axis=-1)
        slope = (s[..., hi] - s[..., lo]) * (n - 1)  # lead + (nq,)
        return np.reshape(np.sum(np.moveaxis(slope, -1, 0) * gq, axis=tuple(range(1, gq.ndim))), qa.shape)
    ws = _float_zeros(lead + (n,), g)
    for i in range(v.size):
        ws[..., lo[i]] += gq[i] * (1.0 - frac[i])
        ws[..., hi[i]] += gq[i] * frac[i]
    out = np.empty_like(ws)
    np.put_along_axis(out, perm, ws, axis=-1)
    return np.moveaxis(out.reshape(am.shape), dest, axes)


def sort_grad(g, a, axis=-1):
    """Adjoint of ``np.sort(a, axis)``: route ``g`` back through the sorting permutation."""
    a = np.asarray(a)
    out = _float_zeros(a.size if axis is None else a.shape, g)
    if axis is None:
        out[np.argsort(a, axis=None)] = g
        return out.reshape(a.shape)
    np.put_along_axis(out, np.argsort(a, axis=axis), g, axis=axis)
    return out


def diff_grad(g, a, n=1, axis=-1, prepend=None, append=None):
    """Adjoint of ``np.diff(a, n, axis, prepend, append)`` with respect to ``a``."""
    g = np.asarray(g)
    for _ in range(n):
        z = np.zeros(g.shape[:axis % g.ndim] + (1,) + g.shape[axis % g.ndim + 1:])
        g = -np.diff(np.concatenate([z, g, z], axis=axis), axis=axis)
    shape = np.shape(a)
    pre = 0 if prepend is None else (1 if np.ndim(prepend) == 0 else np.shape(prepend)[axis])
    keep = (slice(None),) * (axis % g.ndim) + (slice(pre, pre + shape[axis]),)
    return g[keep]


def dot_grad(g, a, b, wrt="a"):
    """Adjoint of ``np.dot(a, b)`` for scalars, vectors, matrices and N-d arrays."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * b, a) if wrt == "a" else unbroadcast(g * a, b)
    if np.ndim(b) <= 2:
        return dmatmul_a(g, a, b) if wrt == "a" else dmatmul_b(g, a, b)
    return tensordot_grad(g, a, b, ([np.ndim(a) - 1], [np.ndim(b) - 2]), wrt)


def _tensordot_axes(axes, na, nb):
    """``np.tensordot``'s ``axes`` as two lists of non-negative axes."""
    if isinstance(axes, (int, np.integer)):
        return list(range(na - int(axes), na)), list(range(int(axes)))
    ax_a, ax_b = axes
    ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else ax_a
    ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else ax_b
    return [int(i) % na for i in ax_a], [int(i) % nb for i in ax_b]


def tensordot_grad(g, a, b, axes=2, wrt="a"):
    """Adjoint of ``np.tensordot(a, b, axes)`` with respect to ``a`` or ``b``."""
    a, b, g = np.asarray(a), np.asarray(b), np.asarray(g)
    ax_a, ax_b = _tensordot_axes(axes, a.ndim, b.ndim)
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    nfa = len(free_a)
    if wrt == "a":
        out = np.tensordot(g, b, axes=(list(range(nfa, g.ndim)), free_b))
        labels = free_a + [ax_a[j] for j in np.argsort(ax_b, kind="stable")]
    else:
        out = np.tensordot(a, g, axes=(free_a, list(range(nfa))))
        labels = [ax_b[j] for j in np.argsort(ax_a, kind="stable")] + free_b
    return np.transpose(out, np.argsort(labels).astype(int))


_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_terms(subscripts, shapes):
    """Input terms and output of an einsum, ellipses expanded to fresh letters."""
    s = subscripts.replace(" ", "")
    ins, out = s.split("->") if "->" in s else (s, None)
    ins = ins.split(",")
    free = [c for c in _EINSUM_LETTERS if c not in s]
    nell = max([len(sh) - len(t) + 3 for t, sh in zip(ins, shapes, strict=True) if "..." in t] + [0])
    ell = "".join(free[:nell])
    terms = []
    for t, sh in zip(ins, shapes, strict=True):
        k = len(sh) - len(t) + 3
        terms.append(t.replace("...", ell[nell - k:] if k else ""))
    if out is None:
        letters = "".join(terms)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return terms, out.replace("...", ell)


def einsum_grad(g, subscripts, operands, wrt=None):
    """Adjoint of ``np.einsum(subscripts, *operands)`` with respect to operand
    ``wrt`` (or a tuple, one per operand, when ``wrt`` is None): an einsum of
    ``g`` with the other operands; repeated indices are written back onto the
    diagonal and broadcast axes summed."""
    ops = [np.asarray(o) for o in operands]
    terms, out = _einsum_terms(subscripts, [o.shape for o in ops])
    grads = []
    for i, (t, o) in enumerate(zip(terms, ops, strict=True)):
        if wrt is not None and i != wrt:
            continue
        others = [j for j in range(len(ops)) if j != i]
        avail = set(out).union(*[terms[j] for j in others])
        uniq = "".join(dict.fromkeys(t))
        keep = "".join(c for c in uniq if c in avail)
        expr = ",".join([out] + [terms[j] for j in others]) + "->" + keep
        r = np.einsum(expr, g, *[ops[j] for j in others], optimize=len(ops) > 2)
        r = r.reshape([r.shape[keep.index(c)] if c in keep else 1 for c in uniq])
        sizes = [o.shape[t.index(c)] for c in uniq]
        summed = tuple(k for k, (m, n) in enumerate(zip(r.shape, sizes, strict=True)) if n == 1 and m != 1)
        if summed:
            r = np.sum(r, axis=summed, keepdims=True)
        if len(uniq) == len(t):
            grads.append(np.broadcast_to(r, sizes))
            continue
        res = _float_zeros(o.shape, r)
        strides = [sum(res.strides[p] for p, c2 in enumerate(t) if c2 == c) for c in uniq]
        np.lib.stride_tricks.as_strided(res, shape=sizes, strides=strides)[...] = r
        grads.append(res)
    return tuple(grads) if wrt is None else grads[0]


def kron_grad(g, a, b, wrt="a"):
    """Adjoint of ``np.kron(a, b)`` with respect to ``a`` or ``b``."""
    a, b = np.asarray(a), np.asarray(b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    gg = np.reshape(g, [d for pair in zip(sa, sb, strict=True) for d in pair])
    if wrt == "a":
        return np.tensordot(gg, b.reshape(sb), axes=(list(range(1, 2 * nd, 2)), list(range(nd)))).reshape(
            a.shape)
    return np.tensordot(gg, a.reshape(sa), axes=(list(range(0, 2 * nd, 2)), list(range(nd)))).reshape(b.shape)


def solve_grad(g, ans, a, b, wrt="a"):
    """Adjoint of ``x = np.linalg.solve(a, b)``: ``gb = solve(a^T, g)``, ``ga = -gb x^T``."""
    a, b, g, x = np.asarray(a), np.asarray(b), np.asarray(g), np.asarray(ans)
    at = np.swapaxes(a, -1, -2)
    if b.ndim == 1:
        gb = np.linalg.solve(at, g[..., None])[..., 0]
        return unbroadcast(gb, b) if wrt == "b" else unbroadcast(-gb[..., :, None] * x[..., None, :], a)
    gb = np.linalg.solve(at, g)
    return unbroadcast(gb, b) if wrt == "b" else unbroadcast(-gb @ np.swapaxes(x, -1, -2), a)


def _sym_part(m):
    """``(m + m^T) / 2`` over the last two axes."""
    return 0.5 * (m + np.swapaxes(m, -1, -2))


def cholesky_grad(g, ans, upper=False):
    """Adjoint of ``np.linalg.cholesky(a)`` as a *symmetric* matrix: with
    ``P = tril(L^T gL)`` (diagonal halved), ``ga = sym(L^-T P L^-1)``."""
    L = np.swapaxes(ans, -1, -2) if upper else np.asarray(ans)
    gL = np.swapaxes(g, -1, -2) if upper else np.asarray(g)
    P = np.tril(np.swapaxes(L, -1, -2) @ gL)
    P = P - 0.5 * (np.eye(P.shape[-1]) * P)
    Linv = np.linalg.inv(L)
    return _sym_part(np.swapaxes(Linv, -1, -2) @ P @ Linv)


def eigh_grad(g, ans, a=None):
    """Adjoint of ``w, v = np.linalg.eigh(a)`` (``g = (gw, gv)``, either may be
    None) as a symmetric matrix; assumes distinct eigenvalues."""
    w, v = ans
    gw, gv = g
    vt = np.swapaxes(v, -1, -2)
    inner = np.zeros(np.shape(v)) if gw is None else np.asarray(gw)[..., None, :] * np.eye(np.shape(w)[-1])
    if gv is not None:
        dw = w[..., None, :] - w[..., :, None]
        f = 1.0 / np.where(dw == 0, np.inf, dw)
        inner = inner + f * (vt @ gv)
    return _sym_part(v @ inner @ vt)


def pinv_grad(g, ans, a):
    """Adjoint of ``np.linalg.pinv(a)`` (constant-rank formula)."""
    p, a, g = np.asarray(ans), np.asarray(a), np.asarray(g)
    pt, gt = np.swapaxes(p, -1, -2), np.swapaxes(g, -1, -2)
    t1 = -(pt @ g @ pt)
    x = gt @ p @ pt
    t2 = x - a @ (p @ x)
    y = pt @ p @ gt
    t3 = y - (y @ p) @ a
    return t1 + t2 + t3


def matrix_power_grad(g, a, n):
    """Adjoint of ``np.linalg.matrix_power(a, n)`` for any integer ``n``."""
    a, g = np.asarray(a), np.asarray(g)
    if n == 0:
        return _float_zeros(a.shape, g)
    b = a if n > 0 else np.linalg.inv(a)
    m = abs(n)
    bt = np.swapaxes(b, -1, -2)
    pows = [np.broadcast_to(np.eye(a.shape[-1]), a.shape)]
    for _ in range(m - 1):
        pows.append(pows[-1] @ bt)
    gb = sum(pows[k] @ g @ pows[m - 1 - k] for k in range(m))
    return gb if n > 0 else -(bt @ gb @ bt)


def multi_dot_grad(g, arrays):
    """Adjoint of ``np.linalg.multi_dot(arrays)``: a list, one gradient per array."""
    mats = [np.asarray(x) for x in arrays]
    if mats[0].ndim == 1:
        mats[0] = mats[0][None, :]
    if mats[-1].ndim == 1:
        mats[-1] = mats[-1][:, None]
    gm = np.reshape(g, (mats[0].shape[0], mats[-1].shape[1]))
    k = len(mats)
    left, right = [None] * k, [None] * k
    for i in range(1, k):
        left[i] = mats[0] if i == 1 else left[i - 1] @ mats[i - 1]
    for i in range(k - 2, -1, -1):
        right[i] = mats[-1] if i == k - 2 else mats[i + 1] @ right[i + 1]
    out = []
    for i in range(k):
        gi = gm if left[i] is None else left[i].T @ gm
        gi = gi if right[i] is None else gi @ right[i].T
        out.append(gi.reshape(np.shape(arrays[i])))
    return _seq_like(arrays, out)


def diagonal_grad(g, a, offset=0, axis1=0, axis2=1):
    """Adjoint of ``np.diagonal(a, offset, axis1, axis2)``; also of ``np.trace``
    when called with ``g[..., None]``."""
    out = _float_zeros(np.shape(a), g)
    view = np.moveaxis(out, (axis1, axis2), (-2, -1))
    n1, n2 = view.shape[-2:]
    i = np.arange(max(0, -offset), max(0, min(n1, n2 - offset)))
    view[..., i, i + offset] = g
    return out


def cross_grad(g, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None, wrt="a"):
    """Adjoint of ``np.cross(a, b, ...)`` (3- and 2-vectors):
    ``ga = b x g``, ``gb = g x a``."""
    if axis is not None:
        axisa = axisb = axisc = axis
    am, bm = np.moveaxis(np.asarray(a), axisa, -1), np.moveaxis(np.asarray(b), axisb, -1)
    da, db = am.shape[-1], bm.shape[-1]
    pad = lambda v: v if v.shape[-1] == 3 else np.concatenate([v, np.zeros(v.shape[:-1] + (1,))], -1)
    g = np.asarray(g)
    if da == 2 and db == 2:
        g3 = np.stack([np.zeros_like(g), np.zeros_like(g), g], -1)
    else:
        g3 = np.moveaxis(g, axisc, -1)
    if wrt == "a":
        return unbroadcast(np.moveaxis(np.cross(pad(bm), g3)[..., :da], -1, axisa), a)
    return unbroadcast(np.moveaxis(np.cross(g3, pad(am))[..., :db], -1, axisb), b)


def convolve_grad(g, a, v, mode="full", wrt="a", correlate=False):
    """Adjoint of ``np.convolve(a, v, mode)`` (or ``np.correlate`` when
    ``correlate=True``) with respect to ``a`` or ``v``."""
    a, v = np.asarray(a), np.asarray(v)
    n, m = a.size, v.size
    if correlate:
        v = v[::-1]
    gfull = _float_zeros(n + m - 1, g)
    if mode == "full":
        start = 0
    elif mode == "same":
        lo = min(n, m)
        start = n - 1 - (n - 1) // 2 if correlate and n < m else (lo - 1) // 2
    else:
        start = min(n, m) - 1
    gfull[start:start + np.size(g)] = g
    if wrt == "a":
        return np.correlate(gfull, v, "valid")
    gv = np.correlate(gfull, a, "valid")
    return gv[::-1] if correlate else gv


def transpose_grad(g, axes=None):
    """Adjoint of ``np.transpose(x, axes)`` and of ``x.transpose(*axes)``."""
    if isinstance(axes, tuple) and len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    if axes is None or len(axes) == 0:
        return np.transpose(g)
    return np.transpose(g, np.argsort([int(a) % np.ndim(g) for a in axes]))


def _split_along(g, seq, shapes, axis):
    """Cut ``g`` along ``axis`` into pieces of ``shapes``, reshaped like ``seq``'s items."""
    sizes = [s[axis] for s in shapes]
    pieces = np.split(g, np.cumsum(sizes)[:-1], axis=axis)
    return _seq_like(seq, [np.reshape(p, np.shape(x)) for p, x in zip(pieces, seq, strict=True)])


def concatenate_grad(g, arrays, axis=0):
    """Adjoint of ``np.concatenate(arrays, axis)``: slices of ``g``, one per array."""
    if axis is None:
        return _split_along(g, arrays, [(np.size(x),) for x in arrays], 0)
    return _split_along(g, arrays, [np.shape(x) for x in arrays], axis)


def stack_grad(g, arrays, axis=0):
    """Adjoint of ``np.stack(arrays, axis)``: the slices of ``g`` along ``axis``."""
    return _seq_like(arrays, list(np.moveaxis(g, axis, 0)))


def _shape_nd(x, nd):
    """The shape of ``np.atleast_{nd}d(x)`` without building it."""
    s = np.shape(x)
    if len(s) >= nd:
        return s
    if nd == 3:
        return {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)]
    return (1,) * (nd - len(s)) + s


def hstack_grad(g, tup):
    """Adjoint of ``np.hstack(tup)``."""
    shapes = [_shape_nd(x, 1) for x in tup]
    return _split_along(g, tup, shapes, 0 if len(shapes[0]) == 1 else 1)


def vstack_grad(g, tup):
    """Adjoint of ``np.vstack(tup)``."""
    return _split_along(g, tup, [_shape_nd(x, 2) for x in tup], 0)


def dstack_grad(g, tup):
    """Adjoint of ``np.dstack(tup)``."""
    return _split_along(g, tup, [_shape_nd(x, 3) for x in tup], 2)


def column_stack_grad(g, tup):
    """Adjoint of ``np.column_stack(tup)`` (1-d arrays become columns)."""
    shapes = [np.shape(x) if np.ndim(x) >= 2 else (np.size(x), 1) for x in tup]
    return _split_along(g, tup, shapes, 1)


def split_grad(g, ary, indices_or_sections, axis=0):
    """Adjoint of ``np.split``/``np.array_split`` (and h/v/dsplit): add each
    piece's adjoint into its slice (``None`` stands for an unused piece)."""
    shape = np.shape(ary)
    ax = axis % len(shape)
    n = shape[ax]
    if np.ndim(indices_or_sections) == 0:
        k = int(indices_or_sections)
        sizes = [n // k + 1] * (n % k) + [n // k] * (k - n % k)
        stops = np.cumsum(sizes).tolist()
        bounds = list(zip([0] + stops[:-1], stops, strict=True))
    else:
        div = [0] + [int(i) for i in indices_or_sections] + [n]
        bounds = [slice(a, b).indices(n)[:2] for a, b in zip(div[:-1], div[1:], strict=True)]
    out = _float_zeros(shape, next((gi for gi in g if gi is not None), 0.0))
    lead = (slice(None),) * ax
    for gi, (a, b) in zip(g, bounds, strict=True):
        if gi is not None and b > a:
            out[lead + (slice(a, b),)] += gi
    return out


def atleast_grad(g, arys, i):
    """Adjoint of ``np.atleast_1d/2d/3d(*arys)`` with respect to ``arys[i]``
    (``g`` is an array for one argument, else a tuple)."""
    return np.reshape(g if len(arys) == 1 else g[i], np.shape(arys[i]))


def tile_grad(g, A, reps):
    """Adjoint of ``np.tile(A, reps)``: sum the tiles."""
    shape = np.shape(A)
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(reps)
    nd = max(len(shape), len(reps))
    s = (1,) * (nd - len(shape)) + shape
    r = (1,) * (nd - len(reps)) + reps
    gg = np.reshape(g, [d for pair in zip(r, s, strict=True) for d in pair])
    return np.sum(gg, axis=tuple(range(0, 2 * nd, 2))).reshape(shape)


def repeat_grad(g, a, repeats, axis=None):
    """Adjoint of ``np.repeat(a, repeats, axis)`` (int or per-element repeats)."""
    shape = np.shape(a)
    g = np.asarray(g)
    base, ax = ((int(np.prod(shape)),), 0) if axis is None else (shape, axis % len(shape))
    r = np.asarray(repeats)
    if r.size == 1:
        gg = g.reshape(g.shape[:ax] + (base[ax], int(r.reshape(-1)[0])) + g.shape[ax + 1:])
        return np.sum(gg, axis=ax + 1).reshape(shape)
    out = _float_zeros(base, g)
    np.add.at(np.moveaxis(out, ax, 0), np.repeat(np.arange(base[ax]), r), np.moveaxis(g, ax, 0))
    return out.reshape(shape)


def pad_grad(g, array, pad_width, mode="constant", reflect_type="even"):
    """Adjoint of ``np.pad`` for the modes that copy elements (constant,
    empty, edge, reflect, symmetric, wrap)."""
    shape = np.shape(array)
    g = np.asarray(g)
    if mode in ("constant", "empty"):
        pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (len(shape), 2))
        return g[tuple(slice(lo, lo + n) for (lo, _), n in zip(pw, shape, strict=True))]
    if mode not in ("edge", "reflect", "symmetric", "wrap") or reflect_type != "even":
        raise SrcdiffError(f"no gradient for np.pad with mode={mode!r}",
                           hint="use one of constant, edge, reflect, symmetric, wrap")
    size = int(np.prod(shape))
    idx = np.pad(np.arange(size).reshape(shape), pad_width, mode=mode)
    return np.bincount(idx.ravel(), weights=g.ravel(), minlength=size).reshape(shape)


def take_grad(g, a, indices, axis=None, mode="raise"):
    """Adjoint of ``np.take(a, indices, axis, mode=mode)``; repeats accumulate."""
    shape = np.shape(a)
    idx = np.asarray(indices)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    idx = np.clip(idx, 0, n - 1) if mode == "clip" else idx % n
    g = np.asarray(g)
    if axis is None:
        w = np.broadcast_to(g, idx.shape).ravel()
        return np.bincount(idx.ravel(), weights=w, minlength=n).reshape(shape)
    ax = axis % len(shape)
    out = _float_zeros(shape, g)
    gm = np.moveaxis(g, tuple(range(ax, ax + idx.ndim)), tuple(range(idx.ndim)))
    np.add.at(np.moveaxis(out, ax, 0), idx, gm)
    return out


def take_along_axis_grad(g, arr, indices, axis=-1):
    """Adjoint of ``np.take_along_axis(arr, indices, axis)``; repeats accumulate."""
    shape = np.shape(arr)
    g = np.asarray(g)
    if axis is None:
        n = int(np.prod(shape))
        return np.bincount(np.asarray(indices) % n, weights=g, minlength=n).reshape(shape)
    ax = axis % len(shape)
    ind = np.asarray(indices) % shape[ax]
    where = []
    for d in range(len(shape)):
        if d == ax:
            where.append(ind)
        else:
            k = np.arange(g.shape[d]) if shape[d] != 1 else np.zeros(g.shape[d], dtype=int)
            where.append(k.reshape([-1 if e == d else 1 for e in range(len(shape))]))
    out = _float_zeros(shape, g)
    np.add.at(out, tuple(where), g)
    return out


def _basic_index(index):
    """True for an index with no arrays, lists or booleans (a view, no repeats)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)) and not isinstance(i, bool)
        for i in items
    )


def index_grad(g, x, index):
    """Adjoint of ``x[index]``: ``g`` written (basic index) or scatter-added
    (advanced index: repeats accumulate, boolean masks work) into zeros shaped
    like ``x``.  For a list, tuple or dict ``x`` the result is a container of
    the same type holding ``g`` at ``index`` and zeros elsewhere.  A str
    ``index`` of a container that is no dict is a field read, ``x.name``."""
    if type(index) is str and not isinstance(x, dict):
        return _containers.field_vjp(g, None, x, index)
    if isinstance(x, dict):
        out = zeros_like(x)
        out[index] = g
        return out
    if isinstance(x, (list, tuple)):
        out = list(zeros_like(x))
        if isinstance(index, slice):
            for i, gi in zip(range(*index.indices(len(x))), g, strict=True):
                out[i] = gi
        else:
            out[index] = g
        c = _containers.custom(x)  # a NamedTuple (or a registered tuple class)
        if c is not None:
            return _containers.ContainerGrad(c, c.children(x)[1], out, list(x))
        return type(x)(out)
    out = _float_zeros(np.shape(x), g)
    if _basic_index(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def _split_nested(g, obj):
    """Split ``g`` into the nested list/tuple structure of ``obj``."""
    if isinstance(obj, (list, tuple)):
        items = [_split_nested(g[i], v) for i, v in enumerate(obj)]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return g


def asarray_grad(g, obj, dtype=None, ndmin=0):
    """Adjoint of ``np.array(obj)`` / ``np.asarray(obj)`` where ``obj`` may be a
    nested list or tuple of differentiable scalars and arrays: ``g`` split back
    into that structure.  An integer or boolean ``dtype`` gives zeros."""
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        return zeros_like(obj)
    g = np.asarray(g)
    if ndmin and g.ndim:
        g = np.reshape(g, np.shape(obj))
    return _split_nested(g, obj)


def linspace_grad(g, start, stop, num=50, endpoint=True, axis=0, wrt="start"):
    """Adjoint of ``np.linspace(start, stop, num, endpoint, axis=axis)``."""
    div = num - 1 if endpoint else num
    t = np.arange(num) / div if div > 0 else np.zeros(num)
    gm = np.moveaxis(np.asarray(g), axis, 0)
    to_stop = np.tensordot(t, gm, axes=(0, 0))
    if wrt == "stop":
        return unbroadcast(to_stop, stop)
    return unbroadcast(np.sum(gm, axis=0) - to_stop, start)


def meshgrid_grad(g, n, i, indexing="xy"):
    """Adjoint of ``np.meshgrid(*xi, indexing=indexing)`` with respect to
    ``xi[i]`` (of ``n`` inputs): sum ``g[i]`` over every axis but its own."""
    gi = np.asarray(g[i])
    d = 1 - i if indexing == "xy" and n > 1 and i < 2 else i
    return np.sum(gi, axis=tuple(k for k in range(gi.ndim) if k != d)).reshape(-1)


def item_grad(g, x, args=()):
    """Adjoint of ``x.item(*args)``."""
    out = _float_zeros(np.shape(x), g)
    if not args:
        out.reshape(-1)[0] = g
    elif len(args) == 1 and not isinstance(args[0], tuple):
        out.reshape(-1)[args[0]] = g
    else:
        out[args[0] if len(args) == 1 else args] = g
    return out


def inner_grad(g, a, b, wrt="a"):
    """Adjoint of ``np.inner(a, b)`` (contracts the last axes; scalars multiply)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return dot_grad(g, a, b, wrt)
    return tensordot_grad(g, a, b, ([-1], [-1]), wrt)


def sequence_grad(g, items):
    """Adjoint of ``list(items)`` / ``tuple(items)``: the item adjoints, back in
    the container ``items`` came in (a dict's keys carry no gradient)."""
    if isinstance(items, dict):
        return zeros_like(items)
    if isinstance(items, np.ndarray):
        return np.asarray(g)
    if isinstance(items, (list, tuple)):
        return type(items)(g)
    return list(g)


def reversed_grad(g, seq):
    """Adjoint of ``reversed(seq)``: the item adjoints in the original order."""
    items = list(g)[::-1]
    if isinstance(seq, np.ndarray):
        return np.asarray(items)
    if isinstance(seq, tuple):
        return tuple(items)
    return items
