"""The invariance pass: a shift the result cannot see gets no gradient.

Each case checks the gradient against finite differences, and whether the
generated code cut the shift (its comment, and no max adjoint) or kept it.
"""

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff

CUT = "the result does not change when it shifts"


def logsumexp_rows(X, w):
    m = np.max(X, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(X - m), axis=1, keepdims=True))
    return np.sum(lse) + np.sum(X * w)


def cross_entropy(W, X, Y):
    logits = X @ W
    z = logits - np.max(logits, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * logp, axis=1))


def softmax_weighted(X, c):
    e = np.exp(X - X.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return np.sum(p * c)


def softmax_vector(x, c):
    z = x - np.max(x)
    p = np.exp(z) / np.sum(np.exp(z))
    return np.dot(p, c)


def column_shift(X):
    m = np.max(X, axis=0)  # one number per column, broadcast down the rows
    z = X - m
    return np.sum(np.log(np.sum(np.exp(z), axis=0)) + m)


def mean_shift(X, Y):
    z = X - np.mean(X, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return np.sum(Y * logp)


def temperature(X, Y):
    z = (X - np.max(X, axis=1, keepdims=True)) / 2.0
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return np.sum(Y * logp)


def two_softmaxes(A, B):
    pa = np.exp(A - np.max(A, axis=1, keepdims=True))
    pa = pa / np.sum(pa, axis=1, keepdims=True)
    zb = B - np.amax(B, axis=1, keepdims=True)
    pb = np.exp(zb) / np.sum(np.exp(zb), axis=1, keepdims=True)
    return np.sum(pa * pb)


def scaled_max(X):
    m = np.max(X, axis=1, keepdims=True)
    e = np.exp(X - m)
    top = np.max(e, axis=1, keepdims=True)  # a max of a scaled value is scaled the same way
    return np.sum(np.log(top) - np.log(np.mean(e, axis=1, keepdims=True)))


# the result does depend on the shift: it must keep its gradient
def squared(X):
    m = np.max(X, axis=1, keepdims=True)
    return np.sum((X - m) ** 2)


def shift_not_added_back(X):
    m = np.max(X, axis=1, keepdims=True)
    return np.sum(np.log(np.sum(np.exp(X - m), axis=1, keepdims=True)))


def wrong_axis(X):
    m = np.max(X, axis=1, keepdims=True)
    e = np.exp(X - m)
    return np.sum(e / np.sum(e, axis=0, keepdims=True))


def dropped_axis(X):
    m = np.max(X, axis=1, keepdims=True)
    e = np.exp(X - m)
    return np.sum(np.log(np.sum(e, axis=1)))


def shift_in_loop(X, n):
    m = np.max(X, axis=1, keepdims=True)
    z = X
    for _ in range(n):
        z = z - m
    return np.sum(np.exp(z))


def shift_summed(X):
    m = np.max(X, axis=1, keepdims=True)
    return np.sum(X - m)


def column_shift_row_sums(X):
    m = np.max(X, axis=0)
    z = X - m
    return np.sum(np.log(np.sum(np.exp(z), axis=1)))


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 4))
    Y = np.eye(4)[rng.integers(0, 4, 5)]
    return rng, X, Y


def _source(f, *args, wrt=0):
    g = srcdiff.grad(f, wrt=wrt)
    g(*args)
    return srcdiff.source(g)


CUT_CASES = {
    "logsumexp_rows": (logsumexp_rows, lambda rng, X, Y: (X, rng.standard_normal(4)), (0, 1)),
    "cross_entropy": (cross_entropy, lambda rng, X, Y: (rng.standard_normal((3, 4)), X[:, :3], Y), 0),
    "softmax_weighted": (softmax_weighted, lambda rng, X, Y: (X, rng.standard_normal((5, 4))), 0),
    "softmax_vector": (softmax_vector, lambda rng, X, Y: (X[0], rng.standard_normal(4)), 0),
    "column_shift": (column_shift, lambda rng, X, Y: (X,), 0),
    "mean_shift": (mean_shift, lambda rng, X, Y: (X, Y), 0),
    "temperature": (temperature, lambda rng, X, Y: (X, Y), 0),
    "two_softmaxes": (two_softmaxes, lambda rng, X, Y: (X, rng.standard_normal((5, 4))), (0, 1)),
    "scaled_max": (scaled_max, lambda rng, X, Y: (X,), 0),
}

KEEP_CASES = {
    "squared": (squared, lambda rng, X, Y: (X,)),
    "shift_not_added_back": (shift_not_added_back, lambda rng, X, Y: (X,)),
    "wrong_axis": (wrong_axis, lambda rng, X, Y: (X,)),
    "dropped_axis": (dropped_axis, lambda rng, X, Y: (X,)),
    "shift_in_loop": (shift_in_loop, lambda rng, X, Y: (X, 3)),
    "shift_summed": (shift_summed, lambda rng, X, Y: (X,)),
    "column_shift_row_sums": (column_shift_row_sums, lambda rng, X, Y: (X,)),
}


@pytest.mark.parametrize("name", sorted(CUT_CASES))
def test_shift_is_cut(name, data):
    f, make, wrt = CUT_CASES[name]
    args = make(*data)
    assert_grad_ok(f, *args, wrt=wrt)
    src = _source(f, *args, wrt=wrt)
    assert CUT in src, src
    # only the max that is not a shift (scaled_max's `top`) keeps its adjoint
    assert src.count("extremum_grad") == (name == "scaled_max"), src


@pytest.mark.parametrize("name", sorted(KEEP_CASES))
def test_shift_is_kept(name, data):
    f, make = KEEP_CASES[name]
    args = make(*data)
    assert_grad_ok(f, *args)
    src = _source(f, *args)
    assert CUT not in src, src


def test_cut_gradient_equals_uncut(data):
    """Cutting changes nothing but rounding: compare with stop_gradient removed
    the other way round (the max's adjoint computed in full by a helper the
    pass cannot see into)."""
    rng, X, Y = data

    def shifted(X):
        return X - np.max(X, axis=1, keepdims=True)

    def opaque(X, Y):
        z = shifted(X)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.sum(Y * logp)

    def plain(X, Y):
        z = X - np.max(X, axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.sum(Y * logp)

    g_opaque = srcdiff.grad(opaque)(X, Y)
    g_plain = srcdiff.grad(plain)(X, Y)
    assert CUT not in _source(opaque, X, Y)
    np.testing.assert_allclose(g_plain, g_opaque, rtol=1e-12, atol=1e-15)


def test_ties_in_the_max(data):
    """With ties the max's own gradient is split between them; cut or not,
    the total is the same because the shift cancels."""
    X = np.array([[1.0, 1.0, 0.5], [2.0, -1.0, 2.0]])
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    g = srcdiff.grad(mean_shift)(X, Y)
    e = np.exp(X - X.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    expected = Y - p * Y.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)


def test_value_and_grad_keeps_the_value(data):
    rng, X, Y = data
    value, grad = srcdiff.value_and_grad(cross_entropy)(np.ones((3, 4)), X[:, :3], Y)
    assert value == pytest.approx(cross_entropy(np.ones((3, 4)), X[:, :3], Y))
    assert_grad_ok(cross_entropy, np.ones((3, 4)), X[:, :3], Y)
