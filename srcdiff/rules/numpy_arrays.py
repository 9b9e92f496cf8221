"""NumPy reductions, linear algebra, shape operations, indexing, array methods
and attributes, and the constant (non-differentiable) functions.

One short entry per primitive.  Templates are expressions in ``g`` (the
result's adjoint), ``ans`` (the result), the signature's parameter names,
``np``, ``math`` and ``rt`` (:mod:`srcdiff.runtime`); long bodies live in
``rt`` helpers.  Conventions the compiler relies on:

* functions taking any number of arrays (``np.einsum``, ``np.atleast_1d``,
  ``np.meshgrid``, ``np.broadcast_arrays``) name them as separate optional
  parameters (``op0, op1=None, ...``), each with its own template; a static
  template lists only the arguments the call passes;
* a sequence parameter's gradient is a list (or tuple) of the same length
  (``np.concatenate``, ``np.stack``, ``np.linalg.multi_dot``);
* functions returning a tuple or list receive ``g`` as a tuple/list of
  adjoints (``np.linalg.slogdet``, ``np.linalg.eigh``, ``np.split``,
  ``np.meshgrid``); entries may be ``None`` for unused outputs;
* ``aliases`` names the gradients that may be ``g`` itself or a view of it.

Symmetric-matrix functions (``cholesky``, ``eigh``, ``eigvalsh``) read one
triangle of their input; their gradient is returned as the symmetric matrix
that is correct for every symmetric perturbation (the usual convention).
"""

import operator

import numpy as np

from .registry import (
    Rule,
    defvjp,
    defvjp_attr,
    defvjp_method,
    method_alias,
    nondifferentiable,
    nondifferentiable_attrs,
    nondifferentiable_methods,
    static_template,
)

RULES: list[Rule] = []  # every rule registered here (the tests check each one has a case)
NONDIFF: list = []  # every function declared non-differentiable here


# the facts (rules/facts.py) of functions that may return a view of an argument, and of those
# that always build a new array; both linear, their shapes fixed by their arguments' shapes
_VIEW = dict(result="view", linear=True, shaped=True)
_NEW = dict(result="fresh", linear=True, shaped=True)
_SIZED = dict(result="fresh", sized_by_arguments=True)  # constructors shaped by their arguments' values
_PARTS = dict(_VIEW, container=True)  # a list of views (np.split)
_PAIR = dict(result="fresh", container=True)  # a tuple of new arrays (np.linalg.eigh)


def _fn(fn, signature, group, **kw):
    RULES.append(defvjp(fn, signature, group=group, **kw))


def _method(name, signature, **kw):
    RULES.append(defvjp_method(name, signature, **kw))


def _alias(name, fn):
    RULES.append(method_alias(name, fn))


def _nondiff(*fns, facts=None):
    NONDIFF.extend(fns)
    nondifferentiable(*fns, group="constant", facts=facts)


# ---------------------------------------------------------------- reductions
R = "reduction"


def _spread(s, g):
    """An expression giving ``g`` (a reduction's adjoint) the shape of ``a``
    again, written out when the first call recorded the shapes; else None."""
    shape, axis, keep = s.get("shape:a"), s.get("axis", 0), s.get("keepdims")
    if shape is None or "axis" not in s or not isinstance(keep, bool) and keep is not None:
        return None  # (an axis computed at run time is not known here)
    if axis is None or len(shape) == 1 and not keep:
        # (the adjoint of a number: g may be a Python float, which cannot be indexed)
        return f"np.full({tuple(shape)!r}, {g})"
    if isinstance(axis, int) and not isinstance(axis, bool) and shape and -len(shape) <= axis < len(shape):
        ax = axis % len(shape)
        base = g if g.isidentifier() else f"({g})"
        expanded = g if keep else f"{base}[{', '.join([':'] * ax + ['None'])}]"
        size = 1
        for n in shape:
            size *= n
        if size <= 1 << 16:  # small: a new array is cheaper than a broadcast view
            return f"np.repeat({expanded}, {shape[ax]}, axis={ax})"
        return f"np.broadcast_to({expanded}, {tuple(shape)!r})"
    return None


def _count(s):
    shape, axis = s.get("shape:a"), s.get("axis", 0)
    size = 1
    for i, n in enumerate(shape):
        if axis is None or i == axis % len(shape):
            size *= n
    return size


@static_template
def _sum(s):
    spread = _spread(s, "g")
    if spread is not None:
        return spread
    if s.get("axis", 0) is None and not s.get("keepdims"):
        return "rt.full_like(a, g)"  # (a Dask array gets a Dask array: srcdiff/arrays.py)
    return "vjp.sum_grad(g, a, axis, keepdims)"


@static_template
def _mean(s):
    spread = _spread(s, "g")
    if spread is not None:
        return _spread(s, f"g / {_count(s)}")
    if s.get("axis", 0) is None and not s.get("keepdims"):
        return "rt.full_like(a, g / rt.size(a))"
    return "vjp.mean_grad(g, a, axis, keepdims)"


_EXT = "vjp.extremum_grad(g, ans, a, axis, keepdims)"
_DDOF = "ddof if correction is None else correction"
_RED = "a, axis=None, dtype=None, out=None, keepdims=False"
_VAR = "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, correction=None"

_fn(np.sum, _RED, R, a=_sum, aliases="a", facts=dict(reduction="sum", linear=True))
_fn(np.mean, _RED, R, a=_mean, facts=dict(reduction="mean", linear=True))
_fn(np.prod, _RED, R, a="vjp.prod_grad(g, a, axis, keepdims)", facts=dict(reduction="prod"))
for _f, _facts in ((np.max, dict(reduction="max")), (np.amax, dict(reduction="max")),
                   (np.min, dict(reduction="min")), (np.amin, dict(reduction="min")),
                   (np.nanmax, dict(skips_nan=True)), (np.nanmin, dict(skips_nan=True))):
    _fn(_f, "a, axis=None, out=None, keepdims=False", R, a=_EXT, facts=_facts)
_fn(np.ptp, "a, axis=None, out=None, keepdims=False", R,
    a="vjp.extremum_grad(g, np.max(a, axis, keepdims=keepdims), a, axis, keepdims)"
      " - vjp.extremum_grad(g, np.min(a, axis, keepdims=keepdims), a, axis, keepdims)")
_fn(np.var, _VAR, R, a=f"vjp.var_grad(g, a, axis, {_DDOF}, keepdims)")
_fn(np.std, _VAR, R, a=f"vjp.var_grad(g / (2.0 * ans), a, axis, {_DDOF}, keepdims)")
_fn(np.nanvar, _VAR, R, a=f"vjp.nanvar_grad(g, a, axis, {_DDOF}, keepdims)", facts=dict(skips_nan=True))
_fn(np.nanstd, _VAR, R, a=f"vjp.nanvar_grad(g / (2.0 * ans), a, axis, {_DDOF}, keepdims)", facts=dict(skips_nan=True))
_fn(np.nansum, _RED, R, a="vjp.sum_grad(g, a, axis, keepdims) * ~np.isnan(a)", facts=dict(skips_nan=True, linear=True))
_fn(np.nanmean, _RED, R, a="vjp.nanmean_grad(g, a, axis, keepdims)", facts=dict(skips_nan=True))
_fn(np.cumsum, "a, axis=None, dtype=None, out=None", R, a="vjp.cumsum_grad(g, a, axis)", facts=dict(linear=True))
_fn(np.nancumsum, "a, axis=None, dtype=None, out=None", R, a="vjp.cumsum_grad(g, a, axis) * ~np.isnan(a)",
    facts=dict(skips_nan=True, linear=True))
_fn(np.cumprod, "a, axis=None, dtype=None, out=None", R, a="vjp.cumprod_grad(g, ans, a, axis)")
_fn(np.cumulative_sum, "x, *, axis=None, dtype=None, out=None, include_initial=False", R,
    x="vjp.cumulative_grad(g, ans, x, axis, include_initial)")
_fn(np.cumulative_prod, "x, *, axis=None, dtype=None, out=None, include_initial=False", R,
    x="vjp.cumulative_grad(g, ans, x, axis, include_initial, prod=True)")
_fn(np.average, "a, axis=None, weights=None, returned=False, *, keepdims=False", R,
    a="vjp.average_grad(g, ans, a, axis, weights, returned, keepdims)",
    weights="vjp.average_grad(g, ans, a, axis, weights, returned, keepdims, wrt='weights')",
    note="returned=True gives g as a pair")
_fn(np.median, "a, axis=None, out=None, overwrite_input=False, keepdims=False", R,
    a="vjp.quantile_grad(g, a, 0.5, axis, keepdims)")
_fn(np.quantile, "a, q, axis=None, out=None, overwrite_input=False, method='linear', keepdims=False", R,
    a="vjp.quantile_grad(g, a, q, axis, keepdims, method)",
    q="vjp.quantile_grad(g, a, q, axis, keepdims, method, 'q')", note="method='linear' only")
_fn(np.percentile, "a, q, axis=None, out=None, overwrite_input=False, method='linear', keepdims=False", R,
    a="vjp.quantile_grad(g, a, np.asarray(q) / 100.0, axis, keepdims, method)",
    q="vjp.quantile_grad(g, a, np.asarray(q) / 100.0, axis, keepdims, method, 'q') / 100.0",
    note="method='linear' only")
_fn(np.trace, "a, offset=0, axis1=0, axis2=1, dtype=None, out=None", R,
    a="vjp.diagonal_grad(np.asarray(g)[..., None], a, offset, axis1, axis2)", facts=dict(linear=True))
_fn(np.linalg.trace, "x, *, offset=0, dtype=None", R,
    x="vjp.diagonal_grad(np.asarray(g)[..., None], x, offset, -2, -1)")
_fn(np.linalg.norm, "x, ord=None, axis=None, keepdims=False", R,
    x="vjp.norm_grad(g, ans, x, ord, axis, keepdims)", note="vector p-norms; matrix fro, nuc, 1, 2, inf")
_fn(np.linalg.vector_norm, "x, *, axis=None, keepdims=False, ord=2", R,
    x="vjp.vector_norm_grad(g, ans, x, axis, keepdims, ord)")
_fn(np.linalg.matrix_norm, "x, *, keepdims=False, ord='fro'", R,
    x="vjp.matrix_norm_grad(g, ans, x, keepdims, ord)")
_fn(np.diff, "a, n=1, axis=-1, prepend=None, append=None", R,
    a="vjp.diff_grad(g, a, n, axis, prepend, append)")
_fn(np.bincount, "x, weights=None, minlength=0", R, weights="np.asarray(g)[x]")

# ------------------------------------------------------------ linear algebra
L = "linear algebra"
_fn(np.dot, "a, b, out=None", L, a="vjp.dot_grad(g, a, b, 'a')", b="vjp.dot_grad(g, a, b, 'b')")
for _f in (np.matmul, np.linalg.matmul):
    _fn(_f, "x1, x2", L, x1="vjp.dmatmul_a(g, x1, x2)", x2="vjp.dmatmul_b(g, x1, x2)")
_fn(np.vdot, "a, b", L, a="np.reshape(g * b, np.shape(a))", b="np.reshape(g * a, np.shape(b))")
_fn(np.outer, "a, b, out=None", L,
    a="np.reshape(g @ np.ravel(b), np.shape(a))", b="np.reshape(np.ravel(a) @ g, np.shape(b))")
_fn(np.linalg.outer, "x1, x2", L, x1="g @ x2", x2="x1 @ g")
_fn(np.inner, "a, b", L, a="vjp.inner_grad(g, a, b, 'a')", b="vjp.inner_grad(g, a, b, 'b')")
_fn(np.tensordot, "a, b, axes=2", L,
    a="vjp.tensordot_grad(g, a, b, axes, 'a')", b="vjp.tensordot_grad(g, a, b, axes, 'b')")
_fn(np.linalg.tensordot, "x1, x2, *, axes=2", L,
    x1="vjp.tensordot_grad(g, x1, x2, axes, 'a')", x2="vjp.tensordot_grad(g, x1, x2, axes, 'b')")


def _many(names, i, fmt):
    """Template for the i-th of several optional array parameters: ``fmt``
    filled with the passed parameters (``{args}``, a tuple) and ``{i}``."""

    @static_template
    def t(s):
        passed = [p for p in names if s.get(p, 0) is not None]
        if names[i] not in passed:
            return "None"
        return fmt.format(args="(" + ", ".join(passed) + ",)", i=i, n=len(passed), name=names[i])

    return t


def _many_sig(prefix, n):
    names = [f"{prefix}{i}" for i in range(n)]
    return names, ", ".join([names[0]] + [f"{p}=None" for p in names[1:]])


_OPS, _OPS_SIG = _many_sig("op", 8)
_fn(np.einsum, f"subscripts, {_OPS_SIG}, *, out=None, optimize=False", L, aliases=_OPS,
    note="up to 8 operands; subscripts must be a str; ellipsis and repeated indices work",
    **{p: _many(_OPS, i, "vjp.einsum_grad(g, subscripts, {args}, {i})") for i, p in enumerate(_OPS)})
_fn(np.kron, "a, b", L, a="vjp.kron_grad(g, a, b, 'a')", b="vjp.kron_grad(g, a, b, 'b')")
_VD1 = "rt.unbroadcast(np.expand_dims(g, axis) * x2, x1)"
_VD2 = "rt.unbroadcast(np.expand_dims(g, axis) * x1, x2)"
_fn(np.vecdot, "x1, x2, out=None, *, axis=-1", L, x1=_VD1, x2=_VD2)
_fn(np.linalg.vecdot, "x1, x2, *, axis=-1", L, x1=_VD1, x2=_VD2)
_fn(np.cross, "a, b, axisa=-1, axisb=-1, axisc=-1, axis=None", L,
    a="vjp.cross_grad(g, a, b, axisa, axisb, axisc, axis, 'a')",
    b="vjp.cross_grad(g, a, b, axisa, axisb, axisc, axis, 'b')")
_fn(np.linalg.cross, "x1, x2, *, axis=-1", L,
    x1="vjp.cross_grad(g, x1, x2, axis=axis, wrt='a')", x2="vjp.cross_grad(g, x1, x2, axis=axis, wrt='b')")
_fn(np.linalg.multi_dot, "arrays, *, out=None", L, arrays="vjp.multi_dot_grad(g, arrays)")
_fn(np.linalg.matrix_power, "a, n", L, a="vjp.matrix_power_grad(g, a, n)")
_fn(np.linalg.inv, "a", L, a="-(np.swapaxes(ans, -1, -2) @ g @ np.swapaxes(ans, -1, -2))")
_fn(np.linalg.det, "a", L, a="np.asarray(g * ans)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)")
_fn(np.linalg.slogdet, "a", L, a="np.asarray(g[1])[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)",
    note="g is the pair (g_sign, g_logabsdet); the sign has no gradient", facts=_PAIR)
_fn(np.linalg.solve, "a, b", L, a="vjp.solve_grad(g, ans, a, b, 'a')", b="vjp.solve_grad(g, ans, a, b, 'b')")
_fn(np.linalg.cholesky, "a, *, upper=False", L, a="vjp.cholesky_grad(g, ans, upper)",
    note="symmetric gradient (valid for symmetric perturbations)")
_fn(np.linalg.eigh, "a, UPLO='L'", L, a="vjp.eigh_grad(g, ans)",
    note="g is the pair (g_w, g_v); distinct eigenvalues; symmetric gradient", facts=_PAIR)
_fn(np.linalg.eigvalsh, "a, UPLO='L'", L, a="vjp.eigh_grad((g, None), np.linalg.eigh(a, UPLO))",
    note="symmetric gradient")
_fn(np.linalg.pinv, "a, rcond=None, hermitian=False", L, a="vjp.pinv_grad(g, ans, a)",
    note="valid where the rank is locally constant")
_fn(np.diag, "v, k=0", L, v="np.diagonal(g, k) if np.ndim(v) == 1 else vjp.diagonal_grad(g, v, k)",
    aliases=("v",))
_fn(np.diagonal, "a, offset=0, axis1=0, axis2=1", L, a="vjp.diagonal_grad(g, a, offset, axis1, axis2)",
    facts=dict(result="view", linear=True))
_fn(np.linalg.diagonal, "x, *, offset=0", L, x="vjp.diagonal_grad(g, x, offset, -2, -1)")
_fn(np.triu, "m, k=0", L, m="np.triu(g, k) if np.ndim(m) >= 2 else np.sum(np.triu(g, k), axis=0)")
_fn(np.tril, "m, k=0", L, m="np.tril(g, k) if np.ndim(m) >= 2 else np.sum(np.tril(g, k), axis=0)")
_fn(np.convolve, "a, v, mode='full'", L,
    a="vjp.convolve_grad(g, a, v, mode, 'a')", v="vjp.convolve_grad(g, a, v, mode, 'v')")
_fn(np.correlate, "a, v, mode='valid'", L,
    a="vjp.convolve_grad(g, a, v, mode, 'a', True)", v="vjp.convolve_grad(g, a, v, mode, 'v', True)")

# ------------------------------------------------------------------- shapes
S = "shape"
_BACK = "np.reshape(g, np.shape(a))"


def _reshape_to(name):
    @static_template
    def t(s):
        if s.get("order", "C") == "C":
            return f"np.reshape(g, np.shape({name}))"
        return f"np.reshape(g, np.shape({name}), order=order)"
    return t


_reshape_back = _reshape_to("a")


@static_template
def _transpose(s):
    return "np.transpose(g)" if s.get("axes", 0) is None else "vjp.transpose_grad(g, axes)"


_fn(np.reshape, "a, shape=None, order='C', *, copy=None", S, a=_reshape_back, aliases="a", facts=_VIEW)
_fn(np.ravel, "a, order='C'", S, a=_reshape_back, aliases="a", facts=_VIEW)
_fn(np.transpose, "a, axes=None", S, a=_transpose, aliases="a", note="also np.permute_dims", facts=_VIEW)
_fn(np.matrix_transpose, "x", S, x="np.swapaxes(g, -1, -2)", aliases="x", facts=_VIEW)
_fn(np.linalg.matrix_transpose, "x", S, x="np.swapaxes(g, -1, -2)", aliases="x", facts=_VIEW)
_fn(np.swapaxes, "a, axis1, axis2", S, a="np.swapaxes(g, axis1, axis2)", aliases="a", facts=_VIEW)
_fn(np.moveaxis, "a, source, destination", S, a="np.moveaxis(g, destination, source)", aliases="a", facts=_VIEW)


def rollaxis_vjp(g, ans, a, axis, start=0):
    """np.rollaxis moved ``axis`` to before ``start``; move it back."""
    n = np.ndim(a)
    axis = axis % n
    dest = start + n if start < 0 else start
    if axis < dest:
        dest -= 1
    return np.moveaxis(g, dest, axis)


_fn(np.rollaxis, "a, axis, start=0", S, a=rollaxis_vjp, aliases="a", facts=_VIEW)
_fn(np.expand_dims, "a, axis", S, a=_BACK, aliases="a", facts=_VIEW)
_fn(np.squeeze, "a, axis=None", S, a=_BACK, aliases="a", facts=_VIEW)
_ARYS, _ARYS_SIG = _many_sig("a", 6)
for _f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):  # one argument: g is an array, else a tuple
    _fn(_f, _ARYS_SIG, S, aliases=_ARYS, note="up to 6 arguments",
        **{p: _many(_ARYS, i, "vjp.atleast_grad(g, {args}, {i})") for i, p in enumerate(_ARYS)}, facts=_VIEW)
_fn(np.broadcast_to, "array, shape, subok=False", S, array="rt.unbroadcast(g, array)", aliases=("array",), facts=_VIEW)
_fn(np.broadcast_arrays, _ARYS_SIG + ", *, subok=False", S, aliases=_ARYS, note="up to 6 arguments",
    **{p: _many(_ARYS, i, "rt.unbroadcast(g[{i}], {name})") for i, p in enumerate(_ARYS)}, facts=_PARTS)
_fn(np.concatenate, "arrays, axis=0, out=None, *, dtype=None, casting='same_kind'", S,
    arrays="vjp.concatenate_grad(g, arrays, axis)", aliases=("arrays",), note="also np.concat", facts=_NEW)
_fn(np.stack, "arrays, axis=0, out=None, *, dtype=None, casting='same_kind'", S,
    arrays="vjp.stack_grad(g, arrays, axis)", aliases=("arrays",), facts=_NEW)
_fn(np.hstack, "tup, *, dtype=None, casting='same_kind'", S, tup="vjp.hstack_grad(g, tup)", aliases=("tup",),
    facts=_NEW)
_fn(np.vstack, "tup, *, dtype=None, casting='same_kind'", S, tup="vjp.vstack_grad(g, tup)", aliases=("tup",),
    facts=_NEW)
_fn(np.dstack, "tup", S, tup="vjp.dstack_grad(g, tup)", aliases=("tup",), facts=_NEW)
_fn(np.column_stack, "tup", S, tup="vjp.column_stack_grad(g, tup)", aliases=("tup",), facts=_NEW)
_SPLIT = "vjp.split_grad(g, ary, indices_or_sections, {})"
_fn(np.split, "ary, indices_or_sections, axis=0", S, ary=_SPLIT.format("axis"), facts=_PARTS)
_fn(np.array_split, "ary, indices_or_sections, axis=0", S, ary=_SPLIT.format("axis"), facts=_PARTS)
_fn(np.hsplit, "ary, indices_or_sections", S, ary=_SPLIT.format("1 if np.ndim(ary) > 1 else 0"), facts=_PARTS)
_fn(np.vsplit, "ary, indices_or_sections", S, ary=_SPLIT.format("0"), facts=_PARTS)
_fn(np.dsplit, "ary, indices_or_sections", S, ary=_SPLIT.format("2"), facts=_PARTS)
_fn(np.tile, "A, reps", S, A="vjp.tile_grad(g, A, reps)", facts=_NEW)
_fn(np.repeat, "a, repeats, axis=None", S, a="vjp.repeat_grad(g, a, repeats, axis)", facts=_NEW)
_fn(np.flip, "m, axis=None", S, m="np.flip(g, axis)", aliases="m", facts=_VIEW)
_fn(np.fliplr, "m", S, m="np.fliplr(g)", aliases="m", facts=_VIEW)
_fn(np.flipud, "m", S, m="np.flipud(g)", aliases="m", facts=_VIEW)
_fn(np.rot90, "m, k=1, axes=(0, 1)", S, m="np.rot90(g, -k, axes)", aliases="m", facts=_VIEW)
_fn(np.roll, "a, shift, axis=None", S, a="np.roll(g, np.negative(shift), axis)", facts=_NEW)
_fn(np.pad, "array, pad_width, mode='constant', *, constant_values=0, end_values=0, reflect_type='even',"
    " stat_length=None", S, array="vjp.pad_grad(g, array, pad_width, mode, reflect_type)", aliases=("array",),
    note="modes constant, empty, edge, reflect, symmetric, wrap", facts=_NEW)
_fn(np.take, "a, indices, axis=None, out=None, mode='raise'", S, a="vjp.take_grad(g, a, indices, axis, mode)",
    facts=_NEW)
_fn(np.take_along_axis, "arr, indices, axis=-1", S, arr="vjp.take_along_axis_grad(g, arr, indices, axis)", facts=_NEW)
_fn(np.sort, "a, axis=-1, kind=None, order=None, *, stable=None", S, a="vjp.sort_grad(g, a, axis)", facts=_NEW)
_fn(np.array, "object, dtype=None, *, copy=True, order='K', subok=False, ndmin=0", S,
    object="vjp.asarray_grad(g, object, dtype, ndmin)", aliases=("object",), facts=dict(result="fresh", linear=True))
for _f in (np.asarray, np.asanyarray):
    _fn(_f, "a, dtype=None, order=None", S, a="vjp.asarray_grad(g, a, dtype)", aliases="a", facts=_VIEW)
for _f in (np.ascontiguousarray, np.asfortranarray):  # these make 0-d arrays 1-d
    _fn(_f, "a, dtype=None", S, a="vjp.asarray_grad(g, a, dtype, 1)", aliases="a", facts=_VIEW)
_fn(np.copy, "a, order='K', subok=False", S, a="g", aliases="a", facts=_NEW)
_XI, _XI_SIG = _many_sig("x", 6)
_MESH = "np.reshape(vjp.meshgrid_grad(g, {n}, {i}, indexing), np.shape({name}))"
_fn(np.meshgrid, _XI_SIG + ", *, copy=True, sparse=False, indexing='xy'", S, note="up to 6 arguments",
    **{p: _many(_XI, i, _MESH) for i, p in enumerate(_XI)}, facts=dict(_NEW, container=True))
_fn(np.linspace, "start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0", S,
    start="vjp.linspace_grad(g, start, stop, num, endpoint, axis, 'start')",
    stop="vjp.linspace_grad(g, start, stop, num, endpoint, axis, 'stop')", note="retstep=False only", facts=_SIZED)
_fn(np.full, "shape, fill_value, dtype=None, order='C'", S,
    fill_value="rt.unbroadcast(g, fill_value)", aliases=("fill_value",), facts=_SIZED)
_fn(np.full_like, "a, fill_value, dtype=None, order='K', subok=True, shape=None", S,
    fill_value="rt.unbroadcast(g, fill_value)", aliases=("fill_value",), facts=_SIZED)

# ------------------------------------------------ polynomials and interpolation
PI = "polynomials and interpolation"


def _interp_knots(x, xp, fp, period):
    """``x`` and the knots as ``np.interp`` uses them: with ``period``, x and
    xp taken modulo the period, sorted, and one knot added at each end.
    Also returns which entry of ``fp`` each knot holds."""
    x = np.asarray(x, dtype=float)
    xp = np.asarray(xp, dtype=float)
    which = np.arange(len(xp))
    if period is not None:
        period = abs(period)
        x = x % period
        which = np.argsort(xp % period)
        xs = (xp % period)[which]
        xp = np.concatenate([[xs[-1] - period], xs, [xs[0] + period]])
        which = np.concatenate([[which[-1]], which, [which[0]]])
    return x, xp, which


def _interp_segments(x, xp, period):
    """Where each ``x`` falls: the segment ``j`` (between knots j and j + 1),
    the weight ``w`` of knot j + 1, and masks of the points left of the first
    knot and right of the last (which take ``left`` / ``right``)."""
    n = len(xp)
    j = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, max(n - 2, 0))
    if n < 2:
        w = np.zeros(np.shape(x))
    else:
        w = (x - xp[j]) / (xp[j + 1] - xp[j])
    if period is not None:
        return j, w, np.zeros(np.shape(x), bool), np.zeros(np.shape(x), bool)
    return j, w, x < xp[0], x > xp[-1]


def interp_vjp_x(g, ans, x, xp, fp, left=None, right=None, period=None):
    """d np.interp / dx: the slope of the segment x lies in (the one to its
    right at a knot), 0 outside the knots."""
    xv, knots, which = _interp_knots(x, xp, fp, period)
    if len(knots) < 2:
        return np.zeros(np.shape(x))
    j, _, below, above = _interp_segments(xv, knots, period)
    values = np.asarray(fp, dtype=float)[which]
    slope = (values[j + 1] - values[j]) / (knots[j + 1] - knots[j])
    return np.where(below | above, 0.0, g * slope)


def interp_vjp_fp(g, ans, x, xp, fp, left=None, right=None, period=None):
    """d np.interp / dfp: each x sends (1 - w) * g and w * g to the two knots
    around it; points outside the knots send g to fp[0] / fp[-1] unless
    ``left`` / ``right`` replace those."""
    xv, knots, which = _interp_knots(x, xp, fp, period)
    j, w, below, above = _interp_segments(xv, knots, period)
    g = np.broadcast_to(g, np.shape(xv))
    inside = ~(below | above)
    n = len(knots)
    out = np.zeros(np.size(fp))
    j1 = np.minimum(j + 1, n - 1)
    np.add.at(out, which[j], np.where(inside, g * (1.0 - w), 0.0))
    np.add.at(out, which[j1], np.where(inside, g * w, 0.0))
    if left is None:
        out[0] += np.sum(g[below])
    if right is None:
        out[-1] += np.sum(g[above])
    return np.reshape(out, np.shape(fp))


_fn(np.polyval, "p, x", PI, p="np.vander(np.ravel(x), len(p)).T @ np.ravel(g)",
    x="g * np.polyval(np.polyder(p), x)", note="p a 1-d array of coefficients", facts=dict(result="fresh", shaped=True))
_fn(np.interp, "x, xp, fp, left=None, right=None, period=None", PI, x=interp_vjp_x, fp=interp_vjp_fp,
    left="np.sum(np.where(np.asarray(x) < np.asarray(xp)[0], g, 0.0)) if period is None else 0.0",
    right="np.sum(np.where(np.asarray(x) > np.asarray(xp)[-1], g, 0.0)) if period is None else 0.0",
    note="xp (increasing) is not differentiable; at a knot x gets the slope to its right (at the last "
    "knot, the last segment's)", facts=dict(result="fresh", shaped=True))

# ----------------------------------------------------------------- indexing
_fn(operator.getitem, "a, index", "indexing", a="vjp.index_grad(g, a, index)", aliases="a", name="x[index]",
    note="arrays (repeats accumulate, masks), lists, tuples and dicts",
    facts=dict(result="view", linear=True))  # basic indexing gives a view; an element or fancy index a copy

# ------------------------------------------------------------- array methods
for _m, _f in [("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("max", np.max), ("min", np.min),
               ("var", np.var), ("std", np.std), ("cumsum", np.cumsum), ("cumprod", np.cumprod),
               ("dot", np.dot), ("ravel", np.ravel), ("squeeze", np.squeeze), ("swapaxes", np.swapaxes),
               ("repeat", np.repeat), ("trace", np.trace), ("diagonal", np.diagonal), ("take", np.take),
               ("clip", np.clip)]:  # np.clip's rule comes from numpy_elementwise (imported first)
    _alias(_m, _f)
_method("reshape", "self, *shape, order='C'", self=_reshape_to("self"), aliases=("self",),
        facts=_VIEW)
_method("flatten", "self, order='C'", self=_reshape_to("self"), aliases=("self",),
        facts=_NEW)
_method("transpose", "self, *axes", aliases=("self",), facts=_VIEW,
        self=static_template(lambda s: "np.transpose(g)" if s.get("axes") == () else "vjp.transpose_grad(g, axes)"))
_method("copy", "self, order='C'", self="g", aliases=("self",), facts=_NEW)
_method("astype", "self, dtype, order='K', casting='unsafe', subok=True, copy=True",
        self="g if np.dtype(dtype).kind in 'fc' else np.zeros(np.shape(self))", aliases=("self",),
        facts=dict(result="fresh", shaped=True))
_method("conj", "self", self="np.conj(g)")
_method("conjugate", "self", self="np.conj(g)")
_method("item", "self, *args", self="vjp.item_grad(g, self, args)")
_method("tolist", "self", self="np.reshape(np.asarray(g, dtype=float), np.shape(self))",
        note="g is the nested list of the elements' adjoints")
nondifferentiable_methods("argmax", "argmin", "argsort", "argpartition", "nonzero", "all", "any",
                          "round", "searchsorted")

# ---------------------------------------------------------- array attributes
RULES.append(defvjp_attr("T", self="g.T", aliases=("self",), facts=_VIEW))
RULES.append(defvjp_attr("mT", self="np.swapaxes(g, -1, -2)", aliases=("self",),
                          facts=_VIEW))
RULES.append(defvjp_attr("real", self="np.real(g)", aliases=("self",), facts=dict(result="view", linear=True)))
RULES.append(defvjp_attr("imag", self="np.zeros(np.shape(self))", facts=dict(result="view")))
nondifferentiable_attrs("shape", "ndim", "size", "dtype", "itemsize", "nbytes", "strides", "flags")

# --------------------------------------------------- constants and integers
# constructors: a new array shaped by their arguments
_nondiff(np.zeros, np.ones, np.empty, np.zeros_like, np.ones_like, np.empty_like, np.eye, np.identity,
         facts=_SIZED)
_nondiff(np.tri, np.arange, np.logspace, np.geomspace, facts=dict(result="fresh"))
_nondiff(
    np.indices, np.tril_indices, np.triu_indices, np.diag_indices,
    np.argmax, np.argmin, np.argsort, np.argpartition, np.argwhere, np.nonzero, np.flatnonzero, np.lexsort,
    np.nanargmax, np.nanargmin, np.searchsorted, np.digitize, np.unique, np.count_nonzero, np.histogram,
    np.unravel_index, np.ravel_multi_index, np.shape, np.ndim, np.size, np.allclose,
    np.array_equal, np.array_equiv, np.any, np.all, np.result_type, np.broadcast_shapes, np.isscalar,
    np.iscomplexobj, np.isrealobj,
)
_nondiff(*[getattr(np.random, _n) for _n in (
    "seed", "rand", "randn", "randint", "random", "random_sample", "uniform", "normal", "standard_normal",
    "choice", "permutation", "shuffle", "default_rng", "binomial", "poisson", "exponential", "gamma",
    "beta", "laplace", "multivariate_normal", "dirichlet", "get_state", "set_state")])
