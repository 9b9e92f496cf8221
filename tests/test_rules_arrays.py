"""Derivative rules for NumPy reductions, linear algebra, shapes, indexing,
array methods and attributes (``srcdiff/rules/numpy_arrays.py``).

Every differentiable entry has at least one *case* below: a function that
draws arguments (shapes, axes, flags from hypothesis; values from a seeded
generator) and names the parameters to check.  The rule's gradient, evaluated
exactly as compiled code would (:func:`srcdiff.rules.testing.vjp`), must match
central finite differences (:func:`numeric_vjp`, eps 1e-6) of
``sum(g * f(...))`` for a random output adjoint ``g`` -- for every
differentiable leaf of every checked argument (arrays, scalars, the elements
of lists/tuples/dicts), and must have that leaf's shape.  A rule without a
case fails ``test_every_rule_has_a_case``.

Inputs are kept away from non-smooth points: distinct values for max/min/
sort/quantiles, distinct absolute values for inf-norms, well-conditioned
matrices for inv/det/solve, SPD matrices for cholesky, well-separated
eigenvalues for eigh.

Symmetric-matrix functions (cholesky, eigh, eigvalsh) read one triangle of
their input, so the partial derivatives in the other triangle are zero and
the rules return instead the symmetric gradient that is right for every
symmetric perturbation.  Their numeric check therefore differentiates
``S -> f((S + S^T) / 2)`` at a symmetric ``S``, whose gradient is exactly the
symmetric part of the true one; the rule's gradient must equal it (and so be
symmetric itself).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from srcdiff.rules import TABLE
from srcdiff.rules import numpy_arrays as arrays
from srcdiff.rules.testing import bind_values, numeric_vjp, vjp, vjp_attr, vjp_method

RTOL, ATOL = 1e-6, 1e-8
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ----------------------------------------------------------------- drawing
class D:
    """What a case draws from: hypothesis for structure, a seeded RNG for values."""

    def __init__(self, data):
        self.data = data
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))

    def draw(self, strategy, label=None):
        return self.data.draw(strategy, label=label)

    def pick(self, options):
        return self.draw(st.sampled_from(options))

    def int(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def flag(self):
        return self.draw(st.booleans())

    def shape(self, min_dims=0, max_dims=3, min_side=1, max_side=4):
        return self.draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                          max_side=max_side))

    def arr(self, shape, lo=-1.0, hi=1.0):
        return np.asarray(self.rng.uniform(lo, hi, shape))

    def distinct(self, shape):
        """Values at least 1/size apart (no ties anywhere)."""
        n = int(np.prod(shape))
        v = (self.rng.permutation(n) + self.rng.uniform(0.2, 0.8, n)) / max(n, 1) * 2.0 - 1.0
        return v.reshape(shape)

    def distinct_abs(self, shape):
        """Nonzero values whose absolute values are distinct."""
        n = int(np.prod(shape))
        v = (self.rng.permutation(n) + 1.0 + self.rng.uniform(0.0, 0.5, n)) / n
        return (v * self.rng.choice([-1.0, 1.0], n)).reshape(shape)

    def with_zeros(self, shape):
        x = self.arr(shape)
        if self.flag():
            x[self.rng.uniform(size=shape) < 0.3] = 0.0
        return x

    def with_nan(self, shape):
        """One NaN (every slice along any axis keeps a number: all sides >= 2)."""
        x = self.arr(shape)
        if x.size > 1:
            x.flat[self.rng.integers(x.size)] = np.nan
        return x

    def axis(self, ndim, none=True, tuples=True):
        """None, an int (maybe negative) or a tuple of distinct axes."""
        opts = [st.integers(-ndim, ndim - 1)] if ndim else []
        if none or not ndim:
            opts.append(st.none())
        if tuples and ndim:
            opts.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
                lambda axes: st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes])))
        return self.draw(st.one_of(*opts))

    def perm(self, n):
        return tuple(int(i) for i in self.rng.permutation(n))

    def matrix(self, shape):
        """Well-conditioned square matrices (batched)."""
        n = shape[-1]
        return self.arr(shape) * 0.4 / np.sqrt(n) + np.eye(n)

    def spd(self, shape):
        n = shape[-1]
        b = self.arr(shape)
        return b @ np.swapaxes(b, -1, -2) / n + np.eye(n)

    def sym_distinct_eig(self, n):
        q, _ = np.linalg.qr(self.arr((n, n)))
        w = np.arange(n) * 0.7 + self.arr(n, 0.0, 0.2)
        return (q * w) @ q.T


# ------------------------------------------------------------------ cases
@dataclass
class Case:
    name: str
    kind: str  # "fn", "method" or "attr"
    target: Any  # the function, or the method / attribute name
    make: Callable[[D], tuple]  # d -> (args, kwargs)
    wrt: tuple[str, ...]
    sym: bool = False  # numeric check through (S + S^T) / 2 (see the module docstring)
    extra: dict = field(default_factory=dict)


CASES: list[Case] = []


def case(target, wrt, kind="fn", sym=False, name=None):
    def deco(make):
        label = name or make.__name__.removeprefix("c_").removeprefix("m_")
        CASES.append(Case(label, kind, target, make, tuple(wrt.split()), sym))
        return make
    return deco


def method(target, wrt="self", **kw):
    return case(target, wrt, kind="method", **kw)


def red_kwargs(d, nd, keepdims=True, tuples=True):
    kw = {"axis": d.axis(nd, tuples=tuples)}
    if keepdims:
        kw["keepdims"] = d.flag()
    return kw


# -- reductions
@case(np.sum, "a")
def c_sum(d):
    s = d.shape()
    return (d.arr(s),), red_kwargs(d, len(s))


@case(np.mean, "a")
def c_mean(d):
    s = d.shape()
    return (d.arr(s),), red_kwargs(d, len(s))


@case(np.prod, "a")
def c_prod(d):
    s = d.shape()
    return (d.with_zeros(s),), red_kwargs(d, len(s))


def _extremum(fn):
    @case(fn, "a", name=fn.__name__)
    def make(d):
        s = d.shape()
        return (d.distinct(s),), red_kwargs(d, len(s))


for _f in (np.max, np.amax, np.min, np.amin, np.ptp):
    _extremum(_f)


def _nan_extremum(fn):
    @case(fn, "a", name=fn.__name__)
    def make(d):
        s = d.shape(min_dims=1, min_side=2)
        x = d.distinct(s)
        x.flat[d.int(0, x.size - 1)] = np.nan
        return (x,), red_kwargs(d, len(s))


for _f in (np.nanmax, np.nanmin):
    _nan_extremum(_f)


def _var(fn, nan):
    @case(fn, "a", name=fn.__name__)
    def make(d):
        s = d.shape(min_dims=1, min_side=3 if nan else 2)
        x = d.with_nan(s) if nan else d.arr(s)
        kw = red_kwargs(d, len(s))
        if d.flag():
            kw["ddof"] = d.int(0, 1)
        elif d.flag():
            kw["correction"] = 1
        return (x,), kw


for _f, _nan in ((np.var, False), (np.std, False), (np.nanvar, True), (np.nanstd, True)):
    _var(_f, _nan)


@case(np.nansum, "a")
def c_nansum(d):
    s = d.shape(min_side=2)
    return (d.with_nan(s),), red_kwargs(d, len(s))


@case(np.nanmean, "a")
def c_nanmean(d):
    s = d.shape(min_side=2)
    return (d.with_nan(s),), red_kwargs(d, len(s))


@case(np.cumsum, "a")
def c_cumsum(d):
    s = d.shape()
    return (d.arr(s),), {"axis": d.axis(len(s), tuples=False)}


@case(np.nancumsum, "a")
def c_nancumsum(d):
    s = d.shape(min_side=2)
    return (d.with_nan(s),), {"axis": d.axis(len(s), tuples=False)}


@case(np.cumprod, "a")
def c_cumprod(d):
    s = d.shape()
    x = d.with_zeros(s)
    if x.size > 2 and d.flag():  # two zeros in one row
        x.flat[:2] = 0.0
    return (x,), {"axis": d.axis(len(s), tuples=False)}


def _cumulative(fn, zeros):
    @case(fn, "x", name=fn.__name__)
    def make(d):
        s = d.shape(min_dims=1)
        x = d.with_zeros(s) if zeros else d.arr(s)
        kw = {"include_initial": d.flag()}
        if len(s) > 1 or d.flag():
            kw["axis"] = d.int(-len(s), len(s) - 1)
        return (x,), kw


_cumulative(np.cumulative_sum, False)
_cumulative(np.cumulative_prod, True)


@case(np.average, "a weights")
def c_average(d):
    s = d.shape(min_dims=1)
    x = d.arr(s)
    kind = d.pick(["none", "full", "1d"])
    if kind == "none":
        kw = red_kwargs(d, len(s))
    elif kind == "full":
        kw = red_kwargs(d, len(s))
        kw["weights"] = d.arr(s, 0.5, 2.0)
    else:
        ax = d.int(-len(s), len(s) - 1)
        kw = {"axis": ax, "weights": d.arr(s[ax], 0.5, 2.0), "keepdims": d.flag()}
    kw["returned"] = d.flag()
    return (x,), kw


@case(np.median, "a")
def c_median(d):
    s = d.shape()
    return (d.distinct(s),), red_kwargs(d, len(s))


def _quantile(fn, scale):
    @case(fn, "a q", name=fn.__name__)
    def make(d):
        s = d.shape()
        q = d.arr(d.pick([(), (1,), (3,)]), 0.05, 0.95) * scale
        return (d.distinct(s), q), red_kwargs(d, len(s))


_quantile(np.quantile, 1.0)
_quantile(np.percentile, 100.0)


@case(np.trace, "a")
def c_trace(d):
    s = d.shape(min_dims=2)
    a1, a2 = d.draw(st.lists(st.integers(0, len(s) - 1), min_size=2, max_size=2, unique=True))
    return (d.arr(s),), {"offset": d.int(-2, 2), "axis1": a1 - len(s) * d.int(0, 1), "axis2": a2}


@case(np.linalg.trace, "x")
def c_linalg_trace(d):
    s = d.shape(min_dims=2)
    return (d.arr(s),), {"offset": d.int(-1, 1)}


@case(np.linalg.norm, "x", name="norm-flat")
def c_norm_flat(d):
    s = d.shape()
    return (d.arr(s),), {"keepdims": d.flag()}


VEC_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0, 1.5]
MAT_ORDS = [None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]


def _norm_cases(o):
    @case(np.linalg.norm, "x", name=f"norm-vector-{o}")
    def vector(d):
        s = d.shape(min_dims=1)
        if d.flag():
            return (d.distinct_abs(s[:1]),), {"ord": o}
        return (d.distinct_abs(s),), {"ord": o, "axis": d.int(-len(s), len(s) - 1), "keepdims": d.flag()}


def _mnorm_cases(o):
    @case(np.linalg.norm, "x", name=f"norm-matrix-{o}")
    def matrix(d):
        if d.flag():
            return (d.arr(d.shape(2, 2)),), {"ord": o}
        s = d.shape(min_dims=2)
        ax = tuple(d.draw(st.lists(st.integers(0, len(s) - 1), min_size=2, max_size=2, unique=True)))
        return (d.arr(s),), {"ord": o, "axis": ax, "keepdims": d.flag()}


for _o in VEC_ORDS:
    _norm_cases(_o)
for _o in MAT_ORDS:
    _mnorm_cases(_o)


@case(np.linalg.vector_norm, "x")
def c_vector_norm(d):
    s = d.shape(min_dims=1)
    return (d.distinct_abs(s),), {"ord": d.pick([2, 1, np.inf, 3]), **red_kwargs(d, len(s))}


@case(np.linalg.matrix_norm, "x")
def c_matrix_norm(d):
    s = d.shape(min_dims=2)
    return (d.arr(s),), {"ord": d.pick(["fro", "nuc", 2, 1, np.inf]), "keepdims": d.flag()}


@case(np.diff, "a")
def c_diff(d):
    s = d.shape(min_dims=1, min_side=3)
    ax = d.int(-len(s), len(s) - 1)
    kw = {"n": d.int(1, 2), "axis": ax}
    if d.flag():
        kw["prepend"] = 0.5
    if d.flag():
        shape = list(s)
        shape[ax] = 2
        kw["append"] = d.arr(tuple(shape))
    return (d.arr(s),), kw


@case(np.bincount, "weights")
def c_bincount(d):
    n = d.int(1, 8)
    return (d.rng.integers(0, 4, n),), {"weights": d.arr(n), "minlength": d.int(0, 6)}


# -- linear algebra
def _pair_shapes(d, batched):
    m, n, k = d.int(1, 4), d.int(1, 4), d.int(1, 4)
    b = d.int(1, 3)
    opts = [((n,), (n,)), ((m, n), (n,)), ((n,), (n, k)), ((m, n), (n, k))]
    if batched:
        opts += [((b, m, n), (b, n, k)), ((1, m, n), (b, n, k)), ((b, m, n), (n, k)), ((b, m, n), (n,)),
                 ((n,), (b, n, k)), ((2, 1, m, n), (b, n, k))]
    return d.pick(opts)


@case(np.dot, "a b")
def c_dot(d):
    m, n, k = d.int(1, 3), d.int(1, 3), d.int(1, 3)
    sa, sb = d.pick([_pair_shapes(d, False), ((), (m, n)), ((m, n), ()), ((2, m, n), (n,)),
                     ((2, m, n), (3, n, k)), ((n,), (2, n, k))])
    return (d.arr(sa), d.arr(sb)), {}


def _matmul(fn):
    @case(fn, "x1 x2", name="matmul" if fn is np.matmul else "linalg.matmul")
    def make(d):
        sa, sb = _pair_shapes(d, True)
        return (d.arr(sa), d.arr(sb)), {}


_matmul(np.matmul)
_matmul(np.linalg.matmul)


@case(np.vdot, "a b")
def c_vdot(d):
    return (d.arr((2, 3)), d.arr(d.pick([(6,), (3, 2)]))), {}


@case(np.outer, "a b")
def c_outer(d):
    return (d.arr(d.shape(max_dims=2)), d.arr(d.shape(max_dims=2))), {}


@case(np.linalg.outer, "x1 x2")
def c_linalg_outer(d):
    return (d.arr(d.int(1, 4)), d.arr(d.int(1, 4))), {}


@case(np.inner, "a b")
def c_inner(d):
    k = d.int(1, 4)
    sa = d.shape(max_dims=2) + (k,)
    sb = d.shape(max_dims=2) + (k,)
    if d.flag():
        sa, sb = d.pick([((), sb), (sa, ())])
    return (d.arr(sa), d.arr(sb)), {}


def _tensordot_args(d):
    a_shape = d.shape(min_dims=0, max_dims=3)
    if d.flag():
        n = d.int(0, len(a_shape))
        b_shape = a_shape[len(a_shape) - n:] + d.shape(max_dims=2)
        axes = n
    else:
        n = d.int(0, len(a_shape))
        ax_a = list(d.rng.permutation(len(a_shape))[:n])
        free_b = d.shape(max_dims=2)
        nb = n + len(free_b)
        ax_b = list(d.rng.permutation(nb)[:n])
        b_shape = [0] * nb
        for i, j in zip(ax_a, ax_b, strict=True):
            b_shape[j] = a_shape[i]
        it = iter(free_b)
        b_shape = tuple(s if k in ax_b else next(it) for k, s in enumerate(b_shape))
        axes = ([int(i) - len(a_shape) * d.int(0, 1) for i in ax_a], [int(j) for j in ax_b])
    return d.arr(a_shape), d.arr(b_shape), axes


@case(np.tensordot, "a b")
def c_tensordot(d):
    a, b, axes = _tensordot_args(d)
    return (a, b), {"axes": axes}


@case(np.linalg.tensordot, "x1 x2")
def c_linalg_tensordot(d):
    a, b, axes = _tensordot_args(d)
    return (a, b), {"axes": axes}


EINSUMS = [
    ("ij,jk->ik", "ij jk"), ("ij,jk", "ij jk"), ("i,i->", "i i"), ("i,i", "i i"), ("ii->i", "ii"),
    ("ii", "ii"), ("ij->ji", "ij"), ("ijk,ikl->ijl", "ijk ikl"), ("i,j->ij", "i j"), ("ij,ij->i", "ij ij"),
    ("iij->j", "iij"), ("ij,kl->", "ij kl"), ("ba", "ba"), ("bij,j->bi", "bij j"), ("i->", "i"),
    ("ij,j,k->ik", "ij j k"), ("...ij,...jk->...ik", "xij yjk"), ("...i,i->...", "xi i"), ("ij->", "ij"),
    ("i,->i", "i -"), ("ijj,jk->ik", "ijj jk"), ("Ab,bC", "Ab bC"), ("i j , j -> i", "ij j"),
]


def _einsum_case(subs, spec):
    @case(np.einsum, " ".join(f"op{i}" for i in range(8)), name=f"einsum[{subs}]")
    def make(d):
        size = {c: d.int(1, 3) for c in "ijklabABC"}
        ops = []
        for t in spec.split():
            if t == "-":
                ops.append(float(d.arr(())))
                continue
            shape = tuple(size[c] for c in t if c not in "xy")
            if "x" in t:  # ellipsis batch dims (broadcasting against each other)
                shape = d.pick([(), (2,), (2, 1), (1, 2)]) + shape
            if "y" in t:
                shape = d.pick([(), (1,), (2,), (2, 2)]) + shape
            ops.append(d.arr(shape))
        return (subs, *ops), {}


for _subs, _spec in EINSUMS:
    _einsum_case(_subs, _spec)


@case(np.kron, "a b")
def c_kron(d):
    return (d.arr(d.shape(max_dims=3)), d.arr(d.shape(max_dims=3))), {}


def _vecdot(fn):
    @case(fn, "x1 x2", name="vecdot" if fn is np.vecdot else "linalg.vecdot")
    def make(d):
        k = d.int(1, 4)
        b = d.int(1, 3)
        sa, sb = d.pick([((b, k), (k,)), ((k,), (b, k)), ((b, k), (b, k)), ((1, k), (b, 1, k))])
        return (d.arr(sa), d.arr(sb)), {}


_vecdot(np.vecdot)
_vecdot(np.linalg.vecdot)


@case(np.cross, "a b")
def c_cross(d):
    n = d.int(1, 3)
    # 2-vectors are deprecated in NumPy 2.0 and rejected from NumPy 2.5 on
    legacy = tuple(int(v) for v in np.__version__.split(".")[:2]) < (2, 5)
    kind = d.pick(["plain", "axes", "axis", "2d", "mixed"] if legacy else ["plain", "axes", "axis"])
    if kind == "plain":
        return (d.arr((n, 3)), d.arr((3,))), {}
    if kind == "axes":
        return (d.arr((3, n)), d.arr((n, 3))), {"axisa": 0, "axisb": 1, "axisc": 0}
    if kind == "axis":
        return (d.arr((3, n)), d.arr((3, n))), {"axis": 0}
    if kind == "2d":
        return (d.arr((n, 2)), d.arr((n, 2))), {}
    return (d.arr((n, 2)), d.arr((n, 3))), {}


@case(np.linalg.cross, "x1 x2")
def c_linalg_cross(d):
    n = d.int(1, 3)
    return (d.arr((n, 3)), d.arr((n, 3))), {"axis": d.pick([-1, 1])}


@case(np.linalg.multi_dot, "arrays")
def c_multi_dot(d):
    dims = [d.int(1, 3) for _ in range(d.int(3, 5))]
    mats = [d.arr((dims[i], dims[i + 1])) for i in range(len(dims) - 1)]
    if d.flag():
        mats[0] = d.arr(dims[1])
    if d.flag():
        mats[-1] = d.arr(dims[-2])
    return (mats,), {}


@case(np.linalg.matrix_power, "a")
def c_matrix_power(d):
    return (d.matrix(d.pick([(3, 3), (2, 2, 2)])), d.int(-2, 3)), {}


@case(np.linalg.inv, "a")
def c_inv(d):
    return (d.matrix(_square(d)),), {}


def _square(d, batch=True):
    n = d.int(1, 4)
    lead = d.shape(0, 1, max_side=2) if batch else ()
    return lead + (n, n)


@case(np.linalg.det, "a")
def c_det(d):
    return (d.matrix(_square(d)),), {}


@case(np.linalg.slogdet, "a")
def c_slogdet(d):
    return (d.matrix(_square(d)) * d.pick([1.0, -1.0]),), {}


@case(np.linalg.solve, "a b")
def c_solve(d):
    n = d.int(1, 4)
    kind = d.pick(["vec", "mat", "batch", "batch-vec", "bcast"])
    if kind == "vec":
        return (d.matrix((n, n)), d.arr(n)), {}
    if kind == "mat":
        return (d.matrix((n, n)), d.arr((n, d.int(1, 3)))), {}
    if kind == "batch":
        return (d.matrix((2, n, n)), d.arr((2, n, 2))), {}
    if kind == "batch-vec":
        return (d.matrix((2, n, n)), d.arr(n)), {}
    return (d.matrix((n, n)), d.arr((2, n, 3))), {}


@case(np.linalg.cholesky, "a", sym=True)
def c_cholesky(d):
    return (d.spd(_square(d)),), {"upper": d.flag()}


@case(np.linalg.eigh, "a", sym=True)
def c_eigh(d):
    return (d.sym_distinct_eig(d.int(1, 4)),), {}


@case(np.linalg.eigvalsh, "a", sym=True)
def c_eigvalsh(d):
    return (d.sym_distinct_eig(d.int(1, 4)),), {}


@case(np.linalg.pinv, "a")
def c_pinv(d):
    m, n = d.int(1, 4), d.int(1, 4)
    k = min(m, n)
    u, _ = np.linalg.qr(d.arr((m, m)))
    v, _ = np.linalg.qr(d.arr((n, n)))
    a = (u[:, :k] * d.arr(k, 1.0, 2.0)) @ v[:, :k].T  # full rank, singular values in [1, 2]
    return (a,), {}


@case(np.diag, "v")
def c_diag(d):
    if d.flag():
        return (d.arr(d.int(1, 4)),), {"k": d.int(-2, 2)}
    return (d.arr(d.shape(2, 2)),), {"k": d.int(-2, 2)}


@case(np.diagonal, "a")
def c_diagonal(d):
    s = d.shape(min_dims=2)
    a1, a2 = d.draw(st.lists(st.integers(0, len(s) - 1), min_size=2, max_size=2, unique=True))
    return (d.arr(s),), {"offset": d.int(-2, 2), "axis1": a1, "axis2": a2 - len(s) * d.int(0, 1)}


@case(np.linalg.diagonal, "x")
def c_linalg_diagonal(d):
    return (d.arr(d.shape(min_dims=2)),), {"offset": d.int(-1, 1)}


def _tri(fn):
    @case(fn, "m", name=fn.__name__)
    def make(d):
        return (d.arr(d.shape(1, 3)),), {"k": d.int(-2, 2)}


_tri(np.triu)
_tri(np.tril)


def _conv(fn):
    @case(fn, "a v", name=fn.__name__)
    def make(d):
        return (d.arr(d.int(1, 6)), d.arr(d.int(1, 6))), {"mode": d.pick(["full", "same", "valid"])}


_conv(np.convolve)
_conv(np.correlate)


# -- shapes
def _new_shape(d, shape):
    n = int(np.prod(shape))
    options = [(n,), (1, n), (n, 1), (-1,), tuple(reversed(shape))]
    for k in (2, 3):
        if n % k == 0:
            options += [(k, n // k), (k, -1)]
    return d.pick(options)


@case(np.reshape, "a")
def c_reshape(d):
    s = d.shape()
    kw = {"order": d.pick(["C", "F"])} if d.flag() else {}
    return (d.arr(s), _new_shape(d, s)), kw


@case(np.ravel, "a")
def c_ravel(d):
    return (d.arr(d.shape()),), {"order": d.pick(["C", "F"])}


@case(np.transpose, "a")
def c_transpose(d):
    s = d.shape()
    if d.flag():
        return (d.arr(s),), {}
    return (d.arr(s),), {"axes": tuple(a - len(s) * d.int(0, 1) for a in d.perm(len(s)))}


def _mT(fn):
    @case(fn, "x", name="matrix_transpose" if fn is np.matrix_transpose else "linalg.matrix_transpose")
    def make(d):
        return (d.arr(d.shape(min_dims=2)),), {}


_mT(np.matrix_transpose)
_mT(np.linalg.matrix_transpose)


@case(np.swapaxes, "a")
def c_swapaxes(d):
    s = d.shape(min_dims=1)
    return (d.arr(s), d.int(-len(s), len(s) - 1), d.int(-len(s), len(s) - 1)), {}


@case(np.rollaxis, "a")
def c_rollaxis(d):
    s = d.shape(min_dims=1)
    n = len(s)
    return (d.arr(s), d.int(-n, n - 1), d.int(-n, n)), {}


@case(np.moveaxis, "a")
def c_moveaxis(d):
    s = d.shape(min_dims=1)
    k = d.int(1, len(s))
    src, dst = d.perm(len(s))[:k], d.perm(len(s))[:k]
    if k == 1 and d.flag():
        return (d.arr(s), src[0], dst[0] - len(s)), {}
    return (d.arr(s), src, dst), {}


@case(np.expand_dims, "a")
def c_expand_dims(d):
    s = d.shape()
    axis = d.pick([0, -1, (0, 1), (0, -1)])
    return (d.arr(s), axis), {}


@case(np.squeeze, "a")
def c_squeeze(d):
    s = (1, d.int(1, 3), 1, d.int(1, 3))
    return (d.arr(s),), {"axis": d.pick([None, 0, 2, (0, -2)])}


def _atleast(fn):
    @case(fn, "a0 a1 a2 a3 a4 a5", name=fn.__name__)
    def make(d):
        return tuple(d.arr(d.shape(0, 3)) for _ in range(d.int(1, 4))), {}


for _f in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    _atleast(_f)


@case(np.broadcast_to, "array")
def c_broadcast_to(d):
    s = d.pick([(), (1,), (3,), (2, 1), (1, 3)])
    return (d.arr(s), (2,) + tuple(n if n > 1 else d.int(1, 3) for n in ((1,) * (2 - len(s)) + s))), {}


@case(np.broadcast_arrays, "a0 a1 a2 a3 a4 a5")
def c_broadcast_arrays(d):
    return (d.arr((2, 1)), d.arr((3,)), d.arr(())), {}


def _seq(d, n, shape_fn):
    return [d.arr(shape_fn(i)) for i in range(n)]


@case(np.concatenate, "arrays")
def c_concatenate(d):
    base = d.shape(min_dims=1)
    ax = d.int(-len(base), len(base) - 1)
    if d.flag() and d.flag():
        return ([d.arr(d.shape()) for _ in range(3)],), {"axis": None}
    def shp(i):
        s = list(base)
        s[ax] = d.int(1, 3)
        return tuple(s)
    seq = _seq(d, d.int(1, 3), shp)
    return (tuple(seq) if d.flag() else seq,), {"axis": ax}


@case(np.stack, "arrays")
def c_stack(d):
    s = d.shape()
    return (_seq(d, d.int(1, 3), lambda i: s),), {"axis": d.int(-len(s) - 1, len(s))}


def _stacker(fn, shapes):
    @case(fn, "tup", name=fn.__name__)
    def make(d):
        return (d.pick(shapes)(d),), {}


def _hs(d):
    if d.flag():
        return [d.arr(d.int(1, 3)), d.arr(()), d.arr(d.int(1, 3))]
    m = d.int(1, 3)
    return [d.arr((m, d.int(1, 3), 2)) for _ in range(2)]


def _vs(d):
    n = d.int(1, 3)
    return [d.arr(n), d.arr((d.int(1, 3), n)), d.arr(n)]


def _ds(d):
    m, n = d.int(1, 3), d.int(1, 3)
    return [d.arr((m, n)), d.arr((m, n, 2))] if m > 0 else []


def _ds1(d):
    n = d.int(1, 3)
    return [d.arr(n), d.arr((1, n, 2)), d.arr(())] if n == 1 else [d.arr(n), d.arr((1, n, 2))]


def _cs(d):
    n = d.int(1, 3)
    return [d.arr(n), d.arr((n, 2)), d.arr(n)]


_stacker(np.hstack, [_hs])
_stacker(np.vstack, [_vs])
_stacker(np.dstack, [_ds, _ds1])
_stacker(np.column_stack, [_cs])


def _split(fn, axis_of):
    @case(fn, "ary", name=fn.__name__)
    def make(d):
        s = d.shape(min_dims={np.dsplit: 3, np.vsplit: 2}.get(fn, 1), min_side=2, max_side=6)
        ax = axis_of(d, s)
        n = s[ax]
        if fn in (np.split, np.hsplit, np.vsplit, np.dsplit):
            sections = d.pick([k for k in (1, 2, 3) if n % k == 0] + [[1], [1, 1], [0, n - 1], [2, 1]])
        else:
            sections = d.pick([1, 2, 3, 4, [1], [2, 1], [3, -1]])
        kw = {"axis": ax} if fn in (np.split, np.array_split) else {}
        return (d.arr(s), sections), kw


_split(np.split, lambda d, s: d.int(-len(s), len(s) - 1))
_split(np.array_split, lambda d, s: d.int(-len(s), len(s) - 1))
_split(np.hsplit, lambda d, s: 1 if len(s) > 1 else 0)
_split(np.vsplit, lambda d, s: 0)
_split(np.dsplit, lambda d, s: 2)


@case(np.tile, "A")
def c_tile(d):
    reps = d.pick([d.int(1, 3), (2, 1), (1, 2, 2), (2,)])
    return (d.arr(d.shape(0, 2)), reps), {}


@case(np.repeat, "a")
def c_repeat(d):
    s = d.shape()
    if s and d.flag():
        ax = d.int(-len(s), len(s) - 1)
        reps = d.pick([d.int(0, 3), list(d.rng.integers(0, 3, s[ax]))])
        return (d.arr(s), reps), {"axis": ax}
    return (d.arr(s), d.pick([d.int(0, 3), list(d.rng.integers(0, 3, int(np.prod(s))))])), {}


@case(np.flip, "m")
def c_flip(d):
    s = d.shape(min_dims=1)
    return (d.arr(s),), {"axis": d.axis(len(s))}


def _flip2(fn):
    @case(fn, "m", name=fn.__name__)
    def make(d):
        return (d.arr(d.shape(1 if fn is np.flipud else 2, 3)),), {}


_flip2(np.fliplr)
_flip2(np.flipud)


@case(np.rot90, "m")
def c_rot90(d):
    s = d.shape(2, 3)
    return (d.arr(s),), {"k": d.int(-2, 3), "axes": tuple(d.perm(len(s))[:2])}


@case(np.roll, "a")
def c_roll(d):
    s = d.shape(min_dims=1)
    kind = d.pick(["flat", "axis", "tuple"])
    if kind == "flat":
        return (d.arr(s), d.int(-5, 5)), {}
    if kind == "axis":
        return (d.arr(s), d.int(-5, 5)), {"axis": d.int(-len(s), len(s) - 1)}
    axes = d.perm(len(s))[:2]
    return (d.arr(s), tuple(d.int(-3, 3) for _ in axes)), {"axis": axes}


@case(np.pad, "array")
def c_pad(d):
    s = d.shape(1, 3, min_side=2)
    pw = d.pick([1, (1, 2), [(0, 1)] * len(s), ((2, 1),)])
    mode = d.pick(["constant", "edge", "reflect", "symmetric", "wrap"])
    kw = {"mode": mode}
    if mode == "constant" and d.flag():
        kw["constant_values"] = 0.5
    return (d.arr(s), pw), kw


@case(np.take, "a")
def c_take(d):
    s = d.shape(min_dims=1)
    if d.flag():
        n = int(np.prod(s))
        return (d.arr(s), d.rng.integers(-n, n, d.shape(0, 2))), {}
    ax = d.int(-len(s), len(s) - 1)
    n = s[ax]
    mode = d.pick(["raise", "wrap", "clip"])
    idx = d.rng.integers(-n, n, d.shape(0, 2)) if mode == "raise" else d.rng.integers(-2 * n, 2 * n, 3)
    return (d.arr(s), idx), {"axis": ax, "mode": mode}


@case(np.take_along_axis, "arr")
def c_take_along_axis(d):
    s = d.shape(min_dims=1)
    x = d.arr(s)
    if d.flag():
        return (x, d.rng.integers(0, x.size, 5)), {"axis": None}
    ax = d.int(-len(s), len(s) - 1)
    idx_shape = list(s)
    idx_shape[ax] = d.int(1, 4)
    return (x, d.rng.integers(-s[ax], s[ax], idx_shape)), {"axis": ax}


@case(np.sort, "a")
def c_sort(d):
    s = d.shape()
    return (d.distinct(s),), ({"axis": d.pick([None] + list(range(-len(s), len(s))))} if s else {"axis": None})


@case(np.array, "object")
def c_array(d):
    kind = d.pick(["scalars", "nested", "arrays", "array", "ndmin"])
    if kind == "scalars":
        return ([float(v) for v in d.arr(d.int(1, 4))],), {}
    if kind == "nested":
        return ([[float(v) for v in d.arr(3)], (1.0 * d.int(0, 3), float(d.arr(())), 2.5)],), {}
    if kind == "arrays":
        s = d.shape(max_dims=2)
        return ([d.arr(s) for _ in range(d.int(1, 3))],), {}
    if kind == "array":
        return (d.arr(d.shape()),), {}
    return ([float(v) for v in d.arr(2)],), {"ndmin": 3}


def _asarray(fn):
    @case(fn, "a", name=fn.__name__)
    def make(d):
        if d.flag():
            return ([d.arr(2), d.arr(2)],), {}
        return (d.arr(d.shape()),), {"dtype": d.pick([None, float, np.float64])}


for _f in (np.asarray, np.asanyarray, np.ascontiguousarray, np.asfortranarray):
    _asarray(_f)


@case(np.copy, "a")
def c_copy(d):
    return (d.arr(d.shape()),), {}


@case(np.meshgrid, "x0 x1 x2 x3 x4 x5")
def c_meshgrid(d):
    xs = tuple(d.arr(d.pick([(), (d.int(1, 3),), (2, 2)])) for _ in range(d.int(1, 3)))
    return xs, {"indexing": d.pick(["xy", "ij"]), "sparse": d.flag()}


@case(np.linspace, "start stop")
def c_linspace(d):
    if d.flag():
        start, stop = float(d.arr(())), float(d.arr(()))
        return (start, stop), {"num": d.int(1, 6), "endpoint": d.flag()}
    start, stop = d.arr(2), d.arr(d.pick([(2,), ()]))
    return (start, stop, d.int(1, 5)), {"endpoint": d.flag(), "axis": d.pick([0, -1, 1])}


@case(np.full, "fill_value")
def c_full(d):
    s = d.shape(1, 3)
    fill = d.pick([float(d.arr(())), d.arr(s[-1:])])
    return (s, fill), {}


@case(np.full_like, "fill_value")
def c_full_like(d):
    s = d.shape(1, 3)
    return (d.arr(s), d.pick([float(d.arr(())), d.arr(s[-1:])])), {}


# -- indexing
@case(operator.getitem, "a", name="getitem")
def c_getitem(d):
    s = d.shape(2, 3, min_side=2)
    x = d.arr(s)
    n = s[0]
    kind = d.pick(["int", "neg", "slice", "tuple", "none", "ellipsis", "mask", "repeats", "pairs", "list",
                   "mixed", "list-container", "tuple-container", "dict"])
    index = {
        "int": 1,
        "neg": -1,
        "slice": slice(1, None, d.pick([1, 2, -1])),
        "tuple": (slice(None), d.int(-s[1], s[1] - 1)),
        "none": (None, slice(0, 1), Ellipsis, None),
        "ellipsis": (Ellipsis, 0),
        "mask": d.arr(s) > 0,
        "repeats": np.array([0, 1, 0, -1, 0]),
        "pairs": (np.arange(n), d.rng.integers(0, s[1], n)),
        "list": [1, 1, 0],
        "mixed": (slice(None), [0, 0, 1]),
    }.get(kind)
    if kind == "list-container":
        return ([d.arr(d.shape()) for _ in range(3)], d.pick([0, -1, slice(0, 2), slice(None, None, -1)])), {}
    if kind == "tuple-container":
        return ((d.arr(2), float(d.arr(())), d.arr((2, 2))), d.pick([0, 1, 2])), {}
    if kind == "dict":
        return ({"w": d.arr((2, 3)), "b": d.arr(3)}, d.pick(["w", "b"])), {}
    return (x, index), {}


# -- polynomials and interpolation
@case(np.polyval, "p x")
def c_polyval(d):
    p = d.arr(d.int(1, 5))
    x = float(d.arr(())) if d.flag() else d.arr(d.shape(), -1.5, 1.5)
    return (p, x), {}


@case(np.interp, "x fp left right")
def c_interp(d):
    n = d.int(1, 6)
    xp = np.sort(d.distinct(n)) * 2.0  # knots at least 2/n apart
    x = d.arr(d.shape(), -2.5, 2.5)  # also outside the knots
    kw = {}
    if d.flag():
        kw["left"] = float(d.arr(()))
    if d.flag():
        kw["right"] = float(d.arr(()))
    return (x, xp, d.arr(n)), kw


@case(np.interp, "x fp left right", name="interp_period")
def c_interp_period(d):
    n = d.int(1, 5)
    xp = d.distinct(n) * 3.0  # unsorted, some beyond one period
    x = d.arr(d.shape(), -4.0, 4.0)
    return (x, xp, d.arr(n)), {"period": 2.5}


# -- array methods
def _alias_case(name, make_fn, wrt="a"):
    case(name, wrt, kind="method")(make_fn)
    CASES[-1].name = "ndarray." + name


def _red_method(name, values="arr"):
    def make(d):
        s = d.shape()
        x = getattr(d, values)(s)
        return (x,), red_kwargs(d, len(s))
    _alias_case(name, make)


for _name, _vals in [("sum", "arr"), ("mean", "arr"), ("prod", "with_zeros"), ("max", "distinct"),
                     ("min", "distinct")]:
    _red_method(_name, _vals)


def _var_method(name):
    def make(d):
        s = d.shape(min_dims=1, min_side=2)
        return (d.arr(s),), {**red_kwargs(d, len(s)), "ddof": d.int(0, 1)}
    _alias_case(name, make)


_var_method("var")
_var_method("std")


def _cum_method(name):
    def make(d):
        s = d.shape()
        return (d.with_zeros(s),), {"axis": d.axis(len(s), tuples=False)}
    _alias_case(name, make)


_cum_method("cumsum")
_cum_method("cumprod")
_alias_case("dot", lambda d: ((d.arr((2, 3)), d.arr(d.pick([(3,), (3, 2)]))), {}), wrt="a b")
_alias_case("ravel", lambda d: ((d.arr(d.shape()),), {"order": d.pick(["C", "F"])}))
_alias_case("squeeze", lambda d: ((d.arr((1, 3, 1)),), {"axis": d.pick([None, 0, (0, 2)])}))
_alias_case("swapaxes", lambda d: ((d.arr((2, 3, 4)), d.int(-3, 2), d.int(0, 2)), {}))
_alias_case("repeat", lambda d: ((d.arr((2, 3)), d.pick([2, [1, 0, 2]])), {"axis": d.pick([1, -1])}))
_alias_case("trace", lambda d: ((d.arr((3, 4, 2)),), {"offset": d.int(-1, 1), "axis1": 0, "axis2": 2}))
_alias_case("diagonal", lambda d: ((d.arr((3, 4)),), {"offset": d.int(-1, 2)}))
_alias_case("take", lambda d: ((d.arr((3, 4)), [0, 0, -1]), {"axis": d.pick([None, 0, 1])}))


@method("reshape")
def m_reshape(d):
    s = d.shape()
    new = _new_shape(d, s)
    kw = {"order": d.pick(["C", "F"])} if d.flag() else {}
    return ((d.arr(s), new) if d.flag() or not new else (d.arr(s), *new)), kw


@method("flatten")
def m_flatten(d):
    return (d.arr(d.shape()),), {"order": d.pick(["C", "F"])}


@method("transpose")
def m_transpose(d):
    s = d.shape()
    p = d.perm(len(s))
    x = d.arr(s)
    return d.pick([(x,), (x, *p), (x, p), (x, None)]), {}


@method("copy")
def m_copy(d):
    return (d.arr(d.shape()),), {}


@method("astype")
def m_astype(d):
    return (np.asarray(d.arr(d.shape()) * 3), d.pick([float, np.float64, "float64", int, bool, np.int32])), {}


@method("conj")
def m_conj(d):
    return (d.arr(d.shape()),), {}


@method("conjugate")
def m_conjugate(d):
    return (d.arr(d.shape()),), {}


@method("item")
def m_item(d):
    if d.flag():
        return (d.arr(d.pick([(), (1,), (1, 1)])),), {}
    s = d.shape(1, 3)
    x = d.arr(s)
    k = d.int(0, x.size - 1)
    return d.pick([(x, k), (x, *np.unravel_index(k, s)), (x, tuple(int(i) for i in np.unravel_index(k, s)))]), {}


@method("tolist")
def m_tolist(d):
    return (d.arr(d.shape()),), {}


def _clip_case(d):
    s = d.shape()
    x = d.distinct(s)
    lo = d.pick([None, -0.3, d.arr(s[-1:], -0.5, -0.1)])
    hi = d.pick([None, 0.4, d.arr(s[-1:], 0.1, 0.5)]) if lo is not None else d.pick([0.4, d.arr(s[-1:])])
    if d.flag():
        return (x, lo, hi), {}
    kw = {}
    if lo is not None:
        kw["min"] = lo
    if hi is not None:
        kw["max"] = hi
    return (x,), kw


_alias_case("clip", _clip_case, wrt="a a_min a_max min max")


# -- attributes
for _attr, _min in [("T", 0), ("mT", 2), ("real", 0), ("imag", 0)]:
    case(_attr, "self", kind="attr", name="attr." + _attr)(
        lambda d, _min=_min: ((d.arr(d.shape(min_dims=_min)),), {}))


# ------------------------------------------------------------------ checker
def _leaves(v, path=()):
    """(path, value) of each differentiable leaf of an argument."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves(x, path + (k,))
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            yield from _leaves(x, path + (i,))
    elif isinstance(v, (float, np.floating)) and not isinstance(v, bool) or (
            isinstance(v, np.ndarray) and v.dtype.kind == "f"):
        yield path, v


def _get(v, path):
    for k in path:
        v = v[k]
    return v


def _set(v, path, new):
    if not path:
        return new
    k, rest = path[0], path[1:]
    if isinstance(v, dict):
        return {**v, k: _set(v[k], rest, new)}
    items = list(v)
    items[k] = _set(items[k], rest, new)
    return type(v)(items)


def _random_like(rng, ans):
    if isinstance(ans, (tuple, list)):
        return type(ans)(_random_like(rng, a) for a in ans) if not hasattr(ans, "_fields") else tuple(
            _random_like(rng, a) for a in ans)
    if isinstance(ans, np.ndarray):
        return rng.uniform(-1.0, 1.0, ans.shape)
    return float(rng.uniform(-1.0, 1.0))


def _total(g, out):
    """sum(g * out) over a possibly nested result."""
    if isinstance(out, (tuple, list)):
        return sum(_total(gi, oi) for gi, oi in zip(g, out, strict=True))
    return float(np.sum(np.asarray(g) * np.asarray(out)))


def _aliases_g(grad, g):
    gs = [x for _, x in _leaves(g)] if isinstance(g, (tuple, list)) else [g]
    grads = [x for _, x in _leaves(grad)] if isinstance(grad, (tuple, list, dict)) else [grad]
    return any(isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.shares_memory(a, b)
               for a in grads for b in gs) or any(
        isinstance(a, np.ndarray) and not a.flags.writeable for a in grads)


def run_case(c: Case, d: D) -> None:
    args, kwargs = c.make(d)
    if c.kind == "fn":
        rule, call = TABLE.rule_for(c.target), c.target
    elif c.kind == "method":
        rule = TABLE.methods[c.target]

        def call(s, *a, **k):
            return getattr(s, c.target)(*a, **k)
    else:
        rule = TABLE.attrs[c.target]

        def call(s):
            return getattr(s, c.target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, np.exceptions.ComplexWarning))
        ans = call(*args, **kwargs)
        g = _random_like(d.rng, ans)
        if c.kind == "fn":
            _, grads = vjp(c.target, *args, g=g, **kwargs)
        elif c.kind == "method":
            _, grads = vjp_method(c.target, *args, g=g, **kwargs)
        else:
            _, grads = vjp_attr(c.target, *args, g=g)
        values = bind_values(rule, args, kwargs)
        where = rule.bind(len(args), kwargs.keys())
        checked = 0
        for p in c.wrt:
            assert p in rule.grads, f"{c.name}: {p} has no gradient template"
            if values.get(p) is None:
                continue
            grad = grads[p]
            if _aliases_g(grad, g):
                assert p in rule.aliases, f"{c.name}: the gradient of {p} is a view of g but not declared in aliases"
            kind, loc = where[p]
            for path, leaf in _leaves(values[p]):
                got = _get(grad, path)
                assert np.shape(got) == np.shape(leaf), (c.name, p, path, np.shape(got), np.shape(leaf))

                def f(x, path=path, kind=kind, loc=loc, leaf=leaf):
                    if isinstance(leaf, np.ndarray):  # numeric_vjp passes 0-d arrays as floats
                        x = np.asarray(x)
                    if c.sym:
                        x = 0.5 * (x + np.swapaxes(x, -1, -2))
                    a2, k2 = list(args), dict(kwargs)
                    if kind == "arg":
                        a2[loc] = _set(a2[loc], path, x)
                    elif kind == "kw":
                        k2[loc] = _set(k2[loc], path, x)
                    else:  # varargs
                        a2[loc[path[0]]] = _set(a2[loc[path[0]]], path[1:], x)
                    return _total(g, call(*a2, **k2))

                want = numeric_vjp(f, (leaf,), {}, 1.0, 0)
                np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                                           err_msg=f"{c.name}: d/d{p}{list(path)} args={args!r} kw={kwargs!r}")
                checked += 1
    assert checked or all(values.get(p) is None for p in c.wrt)


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
@SETTINGS
@given(data=st.data())
def test_rule_matches_finite_differences(c, data):
    run_case(c, D(data))


# ------------------------------------------------------------- the table
MY_GROUPS = {"reduction", "linear algebra", "shape", "indexing", "array method", "array attribute", "constant",
             "polynomials and interpolation"}


def _rule_key(rule):
    if rule.fn is not None:
        return ("fn", id(rule.fn))
    name = rule.name.removeprefix("ndarray.")
    if TABLE.methods.get(name) is rule:
        return ("method", name)
    return ("attr", name)


def _case_key(c):
    return ("fn", id(c.target)) if c.kind == "fn" else (c.kind, c.target)


def test_every_rule_has_a_case():
    covered = {_case_key(c) for c in CASES}
    missing = [r.name for r in arrays.RULES if _rule_key(r) not in covered]
    assert not missing, f"rules without a test case: {missing}"


def test_every_case_checks_every_differentiable_parameter():
    for c in CASES:
        rule = TABLE.rule_for(c.target) if c.kind == "fn" else (
            TABLE.methods[c.target] if c.kind == "method" else TABLE.attrs[c.target])
        missing = set(rule.grads) - set(c.wrt)
        assert not missing, f"{c.name}: parameters with a gradient but not checked: {missing}"


def test_rules_are_registered_and_grouped():
    for r in arrays.RULES:
        assert r.group in MY_GROUPS, r.name
        kind, key = _rule_key(r)
        current = TABLE.functions.get(key) if kind == "fn" else (
            TABLE.methods.get(key) if kind == "method" else TABLE.attrs.get(key))
        assert current is r, f"{r.name} was registered twice or replaced"
    fns = [r for r in arrays.RULES if r.fn is not None]
    assert len(fns) >= 90
    assert len(arrays.RULES) >= 110


def test_nondifferentiable_functions():
    assert len(arrays.NONDIFF) >= 60
    for fn in arrays.NONDIFF:
        assert TABLE.is_nondiff(fn) and TABLE.rule_for(fn) is None, fn
    for m in ("argmax", "argmin", "argsort", "nonzero", "all", "any"):
        assert m in TABLE.nondiff_methods
    for a in ("shape", "ndim", "size", "dtype"):
        assert a in TABLE.nondiff_attrs


# ------------------------------------------------------- specific behaviour
def test_prod_with_zeros_is_exact():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, 2.0, 4.0]])
    _, gr = vjp(np.prod, x, axis=1)
    np.testing.assert_array_equal(gr["a"], [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 4.0, 2.0]])
    _, gr = vjp(np.cumprod, np.array([2.0, 0.0, 3.0, 0.0]))
    np.testing.assert_array_equal(gr["a"], [1.0, 2.0 + 6.0, 0.0, 0.0])


def test_ties_share_the_gradient():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    _, gr = vjp(np.max, x, axis=1)
    np.testing.assert_allclose(gr["a"], [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    _, gr = vjp_method("min", x)
    np.testing.assert_allclose(gr["a"], [[1.0, 0, 0], [0, 0, 0]])


def test_getitem_accumulates_and_scatters():
    x = np.arange(6.0).reshape(3, 2)
    _, gr = vjp(operator.getitem, x, np.array([0, 2, 0, 0]), g=np.ones((4, 2)))
    np.testing.assert_array_equal(gr["a"], [[3, 3], [0, 0], [1, 1]])
    labels = np.array([1, 0, 1])
    _, gr = vjp(operator.getitem, x, (np.arange(3), labels), g=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(gr["a"], [[0, 1], [2, 0], [0, 3]])
    _, gr = vjp(operator.getitem, x, x > 2.5, g=np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(gr["a"], [[0, 0], [0, 1], [2, 3]])
    xs = [np.ones(2), np.ones(3)]
    _, gr = vjp(operator.getitem, xs, -1, g=np.full(3, 7.0))
    assert isinstance(gr["a"], list)
    np.testing.assert_array_equal(gr["a"][0], [0, 0])
    np.testing.assert_array_equal(gr["a"][1], [7, 7, 7])


def test_sequence_gradients_keep_the_container():
    a, b = np.ones((2, 2)), np.ones((1, 2))
    _, gr = vjp(np.concatenate, [a, b])
    assert isinstance(gr["arrays"], list) and [x.shape for x in gr["arrays"]] == [(2, 2), (1, 2)]
    _, gr = vjp(np.stack, (a, a), axis=1)
    assert isinstance(gr["arrays"], tuple)
    _, gr = vjp(np.einsum, "ij,jk->ik", a, 2 * a)
    assert {k for k, v in gr.items() if v is not None} == {"op0", "op1"}


def test_split_accepts_zero_adjoints_for_unused_pieces():
    x = np.arange(6.0)
    _, gr = vjp(np.split, x, 3, g=[np.ones(2), None, np.zeros(2)])
    np.testing.assert_array_equal(gr["ary"], [1, 1, 0, 0, 0, 0])


def test_slogdet_takes_a_pair_and_cholesky_is_symmetric():
    a = np.array([[2.0, 0.5], [0.3, 1.0]])
    _, gr = vjp(np.linalg.slogdet, a, g=(0.0, 1.0))
    np.testing.assert_allclose(gr["a"], np.linalg.inv(a).T)
    spd = np.array([[4.0, 1.0], [1.0, 3.0]])
    _, gr = vjp(np.linalg.cholesky, spd, g=np.array([[1.0, 0.0], [2.0, 1.0]]))
    np.testing.assert_allclose(gr["a"], gr["a"].T)


def test_astype_int_has_zero_gradient():
    _, gr = vjp_method("astype", np.array([1.5, 2.5]), int)
    np.testing.assert_array_equal(gr["self"], [0.0, 0.0])


def test_interp_outside_the_knots_and_at_the_last_knot():
    xp, fp = np.array([0.0, 1.0, 3.0]), np.array([1.0, 3.0, 2.0])
    x = np.array([-1.0, 0.5, 1.0, 3.0, 4.0])
    _, gr = vjp(np.interp, x, xp, fp)
    np.testing.assert_allclose(gr["x"], [0.0, 2.0, -0.5, -0.5, 0.0])  # slope to the right; last segment at the end
    np.testing.assert_allclose(gr["fp"], [1.5, 1.5, 2.0])
    _, gr = vjp(np.interp, x, xp, fp, left=0.0, right=5.0)
    np.testing.assert_allclose(gr["fp"], [0.5, 1.5, 1.0])
    assert gr["left"] == 1.0 and gr["right"] == 1.0


def test_polyval_and_interp_compile():
    import srcdiff

    xp = np.array([-1.0, 0.0, 0.5, 2.0])

    def f(p, x, fp):
        y = np.polyval(p, x)
        return np.sum(np.interp(y, xp, fp) ** 2) + np.sum(np.polyval(p, x))

    rng = np.random.default_rng(5)
    p, x, fp = rng.normal(size=3), rng.uniform(-1, 1, (2, 3)), rng.normal(size=4)
    errs = srcdiff.check_grad(f, p, x, fp, wrt=(0, 1, 2))
    assert max(errs.values()) < 1e-6, errs
