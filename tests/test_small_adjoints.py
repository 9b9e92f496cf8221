"""Adjoints kept small, numbers folded, arrays reused.

The adjoint of a full ``np.sum`` is one number, that of a row-wise sum one
column; srcdiff keeps them that way through elementwise rules (NumPy
broadcasts them) and writes them out only where an operation needs the full
array.  Every case checks the gradient against finite differences; the
source checks pin down what the generated code does.
"""

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff


def _source(f, *args, wrt=0):
    g = srcdiff.grad(f, wrt=wrt)
    g(*args)
    return srcdiff.source(g)


def row_sums(X, w):
    s = np.sum(X * w, axis=1, keepdims=True)
    return np.sum(np.tanh(s) * 2.0)


def column_means(X):
    m = X.mean(axis=0)
    return np.sum(m * m)


def sum_then_broadcast(X, v):
    r = np.sum(X, axis=1)  # (n,)
    return np.sum(r[:, None] * v)


def mean_of_mean(X):
    return np.mean(np.mean(X, axis=1))


def tuple_axis(T):
    return np.sum(np.mean(np.sin(T), axis=(0, 2)) ** 2)


def negative_axis(T):
    return np.sum(np.cos(np.sum(T, axis=-1, keepdims=True)))


def middle_axis(T):
    s = np.sum(T, axis=1)  # (2, 4) from (2, 3, 4)
    return np.sum(s * np.arange(4.0))


def broadcast_operand(X, b):
    return np.sum(X * b) + np.sum(X + b)


def scalar_broadcast(X, c):
    return np.sum(X * c) + np.sum(np.exp(c * X))


def small_then_index(x):
    return x[0] * 3.0 + np.sum(x)


def index_then_small(x):
    return np.sum(x) + x[1] * x[2]


def small_into_matmul(X, W):
    s = np.sum(X, axis=1, keepdims=True)
    return np.sum(s * (X @ W))


def runtime_axis(X):
    ax = 1
    return np.sum(np.mean(np.sin(X), axis=ax) ** 2)


def returned_directly(X):
    return np.sum(X)


def mean_returned(X, Y):
    return np.mean(X) + np.mean(X * Y)


CASES = {
    "row_sums": (row_sums, lambda r: (r.standard_normal((4, 3)), r.standard_normal(3)), (0, 1)),
    "column_means": (column_means, lambda r: (r.standard_normal((4, 3)),), 0),
    "sum_then_broadcast": (sum_then_broadcast, lambda r: (r.standard_normal((4, 3)), r.standard_normal(5)), (0, 1)),
    "mean_of_mean": (mean_of_mean, lambda r: (r.standard_normal((4, 3)),), 0),
    "tuple_axis": (tuple_axis, lambda r: (r.standard_normal((2, 3, 4)),), 0),
    "negative_axis": (negative_axis, lambda r: (r.standard_normal((2, 3, 4)),), 0),
    "middle_axis": (middle_axis, lambda r: (r.standard_normal((2, 3, 4)),), 0),
    "broadcast_operand": (broadcast_operand, lambda r: (r.standard_normal((4, 3)), r.standard_normal(3)), (0, 1)),
    "broadcast_column": (broadcast_operand, lambda r: (r.standard_normal((4, 3)), r.standard_normal((4, 1))),
                         (0, 1)),
    "scalar_broadcast": (scalar_broadcast, lambda r: (r.standard_normal((4, 3)), 0.7), (0, 1)),
    "small_then_index": (small_then_index, lambda r: (r.standard_normal(5),), 0),
    "index_then_small": (index_then_small, lambda r: (r.standard_normal(5),), 0),
    "small_into_matmul": (small_into_matmul, lambda r: (r.standard_normal((4, 3)), r.standard_normal((3, 2))),
                          (0, 1)),
    "runtime_axis": (runtime_axis, lambda r: (r.standard_normal((4, 4)),), 0),
    "returned_directly": (returned_directly, lambda r: (r.standard_normal((4, 3)),), 0),
    "mean_returned": (mean_returned, lambda r: (r.standard_normal((4, 3)), r.standard_normal((4, 3))), (0, 1)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient(name):
    f, make, wrt = CASES[name]
    assert_grad_ok(f, *make(np.random.default_rng(1)), wrt=wrt)


@pytest.mark.parametrize("name", ["returned_directly", "mean_returned", "broadcast_operand", "row_sums"])
def test_gradients_are_fresh_writable_arrays(name):
    """A kept-small adjoint is written out before it is returned, and never
    aliases an argument: changing the gradient leaves the inputs alone."""
    f, make, wrt = CASES[name]
    args = make(np.random.default_rng(2))
    before = [np.copy(a) for a in args]
    grads = srcdiff.grad(f, wrt=wrt)(*args)
    grads = grads if isinstance(grads, tuple) else (grads,)
    for g, i in zip(grads, wrt if isinstance(wrt, tuple) else (wrt,)):
        assert isinstance(g, np.ndarray) and g.shape == np.shape(args[i]) and g.flags.writeable
        g += 1.0
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_row_sum_adjoint_stays_a_column():
    src = _source(row_sums, np.ones((4, 3)), np.ones(3), wrt=(0, 1))
    assert "np.repeat" not in src and "np.full" not in src and "broadcast_to" not in src, src


def test_sum_without_keepdims_gets_an_axis_back():
    src = _source(sum_then_broadcast, np.ones((4, 3)), np.ones(5), wrt=0)
    assert "[:, None]" in src, src


def test_full_sum_of_a_product_sums_the_other_factor():
    # d/dw sum(X * w) = X.sum(axis=0): no multiplication by the seed 1.0 over the whole array
    def f(X, w):
        return np.sum(X * w)

    src = _source(f, np.ones((4, 3)), np.ones(3), wrt=(0, 1))
    assert "dw = X.sum(axis=0)" in src, src
    assert_grad_ok(f, np.random.default_rng(0).standard_normal((4, 3)), np.arange(3.0), wrt=(0, 1))


def test_seed_multiplications_fold_away():
    def f(W, x, y):
        r = W @ x - y
        return 0.5 * np.sum(r ** 2)

    src = _source(f, np.ones((2, 3)), np.ones(3), np.ones(2))
    code = "\n".join(line for line in src.splitlines() if not line.strip().startswith("#"))
    assert "dr = r\n" in code, src
    assert "0.5" not in code and "* 2" not in code, src


def test_fold_keeps_the_adjoint_its_own_array():
    """``dx = 1.0 * x`` may not become an alias of ``x`` when the adjoint is
    later added into in place."""

    def f(x):
        return x * x

    g = srcdiff.grad(f)
    x = np.array(1.5)
    assert float(g(x)) == pytest.approx(3.0)
    assert float(x) == 1.5

    def h(x):
        return np.sum(x * x)

    x = np.arange(3.0)
    np.testing.assert_allclose(srcdiff.grad(h)(x), 2 * np.arange(3.0))
    np.testing.assert_array_equal(x, np.arange(3.0))


def test_dead_adjoint_is_reused_in_place():
    """``d(z - m)/dz = g``: z's adjoint takes over the array, so the next
    contribution is added in place."""

    def f(X, Y):
        z = X - np.max(X, axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        return -np.sum(Y * logp)

    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    src = _source(f, X, Y)
    assert "dz += " in src, src
    assert_grad_ok(f, X, Y)


def reductions_positional(X):
    a = np.sum(X, 0)
    b = np.max(X, 1, None, True)
    c = np.mean(X * X, axis=(0, 1))
    d = np.prod(X[:2] + 2.0, axis=0)
    return np.sum(a * a) + np.sum(b) + c + np.sum(d)


def reduction_of_a_list(x):
    return np.sum([x, 2.0 * x]) + np.max(x)


def test_forward_reductions_use_the_method_form():
    X = np.random.default_rng(4).standard_normal((3, 4))
    g = srcdiff.value_and_grad(reductions_positional)  # computes every value of the forward pass
    value, _ = g(X)
    assert value == pytest.approx(reductions_positional(X))
    src = srcdiff.source(g)
    forward = src.split("# backward pass")[0]
    for m in ("X.sum(0)", "X.max(1, None, True)", ".mean(axis=(0, 1))", ".prod(axis=0)"):
        assert m in forward, src
    assert "np.sum" not in forward and "np.max" not in forward
    assert_grad_ok(reductions_positional, X)
    # a list, or a float: the function form as written
    src = _source(reduction_of_a_list, 0.5)
    assert "np.sum([" in src or "np.sum(t" in src, src
    assert_grad_ok(reduction_of_a_list, 0.5)
