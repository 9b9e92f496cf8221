"""Tests for srcdiff.optim: every gradient here is written by hand."""

from __future__ import annotations

import copy
import math
import sys
import types
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from srcdiff import SrcdiffError
from srcdiff.optim import (
    SGD,
    Adam,
    AdamState,
    Clipped,
    EvolutionStrategies,
    GradientDescent,
    Momentum,
    Nesterov,
    NonFiniteLossError,
    TrainResult,
    clip_elementwise,
    clip_global_norm,
    es_gradient,
    evolution_strategies,
    minibatch_indices,
    momentum_step,
    nesterov_step,
    sgd_step,
    train,
    tree_add,
    tree_global_norm,
    tree_leaves,
    tree_map,
    tree_ravel,
    tree_scale,
    tree_sub,
    tree_zeros_like,
)

FAST = settings(max_examples=40, deadline=None)

THETA = np.array([1.0, -2.0])
G1 = np.array([0.5, 4.0])
G2 = np.array([1.0, -1.0])


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(a, b, rtol=0, atol=tol)


# ---------------------------------------------------------------------------
# Hand-checked steps
# ---------------------------------------------------------------------------


def test_gradient_descent_hand_step():
    # theta - 0.1 * g = [1 - 0.05, -2 - 0.4]
    close(sgd_step(THETA, G1, 0.1), [0.95, -2.4])
    opt = GradientDescent(lr=0.1)
    new, state = opt.update(THETA, G1, opt.init(THETA))
    close(new, [0.95, -2.4])
    assert state.step == 1


def test_sgd_has_the_gradient_descent_update():
    opt = SGD(0.1)
    assert isinstance(opt, GradientDescent)
    new, _ = opt.update(THETA, G1, opt.init(THETA))
    close(new, [0.95, -2.4])


def test_momentum_two_hand_steps():
    # step 1 (m^0 = 0):  theta1 = theta - 0.1 g1           = [0.95, -2.4]
    #                    m1     = 0.1 g1                   = [0.05, 0.4]
    # step 2:            theta2 = theta1 - 0.1 g2 - 0.9 m1 = [0.95 - 0.1 - 0.045, -2.4 + 0.1 - 0.36]
    #                    m2     = 0.1 g2 + 0.9 m1          = [0.1 + 0.045, -0.1 + 0.36]
    opt = Momentum(lr=0.1, alpha=0.9)
    state = opt.init(THETA)
    close(state.m, [0.0, 0.0])
    t1, state = opt.update(THETA, G1, state)
    close(t1, [0.95, -2.4])
    close(state.m, [0.05, 0.4])
    t2, state = opt.update(t1, G2, state)
    close(t2, [0.805, -2.66])
    close(state.m, [0.145, 0.26])
    close(state.m, t1 - t2)  # m is the step just taken
    # the functional form gives the same numbers
    f1, m1 = momentum_step(THETA, G1, np.zeros(2), 0.1, 0.9)
    f2, m2 = momentum_step(f1, G2, m1, 0.1, 0.9)
    close(f2, [0.805, -2.66])
    close(m2, [0.145, 0.26])


def test_nesterov_two_hand_steps():
    # step 1: m1 = 0.9*0 + 0.1 g1 = [0.05, 0.4]
    #         theta1 = theta - 0.1 g1 - 0.9 m1 = [1 - 0.05 - 0.045, -2 - 0.4 - 0.36] = [0.905, -2.76]
    # step 2: m2 = 0.9 m1 + 0.1 g2 = [0.045 + 0.1, 0.36 - 0.1] = [0.145, 0.26]
    #         theta2 = theta1 - 0.1 g2 - 0.9 m2 = [0.905 - 0.1 - 0.1305, -2.76 + 0.1 - 0.234]
    opt = Nesterov(lr=0.1, alpha=0.9)
    t1, state = opt.update(THETA, G1, opt.init(THETA))
    close(t1, [0.905, -2.76])
    close(state.m, [0.05, 0.4])
    t2, state = opt.update(t1, G2, state)
    close(t2, [0.6745, -2.894])
    close(state.m, [0.145, 0.26])
    f1, m1 = nesterov_step(THETA, G1, np.zeros(2), 0.1, 0.9)
    close(f1, [0.905, -2.76])
    close(m1, [0.05, 0.4])


def test_adam_two_hand_steps():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    opt = Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    # step 1: m = 0.1 g1, v = 0.001 g1^2; the bias corrections undo the factors, so
    # theta1 = theta - 0.1 * g1 / (|g1| + eps) = theta - 0.1 * sign(g1) (up to eps)
    t1, s1 = opt.update(THETA, G1, opt.init(THETA))
    close(s1.m, [0.05, 0.4])
    close(s1.v, [0.00025, 0.016])
    close(t1, [1.0 - 0.1 * 0.5 / (0.5 + eps), -2.0 - 0.1 * 4.0 / (4.0 + eps)])
    close(t1, [0.9, -2.1], tol=1e-8)
    # step 2 with g2 = [1, -1]
    m = [0.9 * 0.05 + 0.1 * 1.0, 0.9 * 0.4 + 0.1 * -1.0]  # [0.145, 0.26]
    v = [0.999 * 0.00025 + 0.001 * 1.0, 0.999 * 0.016 + 0.001 * 1.0]
    m_hat = [m[0] / (1 - 0.9**2), m[1] / (1 - 0.9**2)]
    v_hat = [v[0] / (1 - 0.999**2), v[1] / (1 - 0.999**2)]
    expected = [
        t1[0] - 0.1 * m_hat[0] / (math.sqrt(v_hat[0]) + eps),
        t1[1] - 0.1 * m_hat[1] / (math.sqrt(v_hat[1]) + eps),
    ]
    t2, s2 = opt.update(t1, G2, s1)
    assert isinstance(s2, AdamState) and s2.step == 2
    close(s2.m, m)
    close(s2.v, v)
    close(t2, expected)
    # the numbers themselves: m_hat = [0.76315789..., 1.36842105...]
    close(m_hat, [0.145 / 0.19, 0.26 / 0.19])


def test_clip_elementwise_formula():
    g = np.array([0.5, 4.0, -7.0, -1.0])
    close(clip_elementwise(g, 1.0), [0.5, 1.0, -1.0, -1.0])
    assert clip_elementwise(-3.0, 2.0) == -2.0
    assert type(clip_elementwise(-3.0, 2.0)) is float
    tree = {"w": np.array([[3.0, -0.2]]), "b": 0.7}
    out = clip_elementwise(tree, 0.5)
    close(out["w"], [[0.5, -0.2]])
    assert out["b"] == 0.5


def test_clipped_gradient_descent_is_the_lecture_update():
    # theta^{k+1} = theta^k - eta [clip(v_1, -m, m), ..., clip(v_M, -m, m)]
    opt = Clipped(GradientDescent(0.1), elementwise=1.0)
    new, _ = opt.update(THETA, np.array([0.5, 4.0]), opt.init(THETA))
    close(new, [1.0 - 0.05, -2.0 - 0.1])


def test_clip_global_norm_formula():
    g = (3.0, np.array([4.0]))  # global norm 5
    assert tree_global_norm(g) == 5.0
    out = clip_global_norm(g, 1.0)  # scale by 1/5
    assert type(out) is tuple and type(out[0]) is float
    close(out[0], 0.6)
    close(out[1], [0.8])
    same = clip_global_norm(g, 10.0)  # under the threshold: unchanged (a new tree)
    close(same[0], 3.0)
    close(same[1], [4.0])
    assert same[1] is not g[1]
    # combined wrapper: elementwise first (to [-2, 2]: (2, [2]), norm 2*sqrt(2)), then norm 1
    opt = Clipped(GradientDescent(1.0), elementwise=2.0, global_norm=1.0)
    new, _ = opt.update((0.0, np.zeros(1)), g, opt.init((0.0, np.zeros(1))))
    close(new[0], -1 / math.sqrt(2))
    close(new[1], [-1 / math.sqrt(2)])


def test_clip_global_norm_leaves_non_finite_gradients_alone():
    g = np.array([np.inf, 1.0])
    out = clip_global_norm(g, 1.0)
    assert np.isinf(out[0]) and out[1] == 1.0


@FAST
@given(
    hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=5), elements=st.floats(-1e6, 1e6)),
    st.floats(0.01, 100.0),
)
def test_clipping_properties(g, c):
    e = clip_elementwise(g, c)
    assert e.shape == g.shape and np.all(np.abs(e) <= c)
    close(e, np.clip(g, -c, c), tol=0)
    n = clip_global_norm(g, c)
    norm = np.linalg.norm(g)
    assert tree_global_norm(n) <= c * (1 + 1e-9)
    if norm > c:
        np.testing.assert_allclose(n, g * (c / norm), rtol=1e-12, atol=1e-300)
    else:
        close(n, g, tol=0)


class FakeRNG:
    """Hands out prescribed noise, in the order es_gradient asks for it."""

    def __init__(self, draws):
        self.draws = [np.asarray(d, dtype=float) for d in draws]

    def standard_normal(self, size=None, dtype=np.float64):
        out = self.draws.pop(0)
        assert out.shape == tuple(size)
        return out.astype(dtype)


def test_evolution_strategies_hand_step():
    # J(x) = x1^2 + x2^2 at theta = [1, 2], sigma = 0.5, M = 2, eps1 = [1, 0], eps2 = [0, -1]
    # s1 = J([1.5, 2]) = 6.25, s2 = J([1, 1.5]) = 3.25
    # theta - 0.1 / (0.5 * 2) * (6.25 [1, 0] + 3.25 [0, -1]) = [1 - 0.625, 2 + 0.325]
    J = lambda x: float(np.sum(x**2))
    theta = np.array([1.0, 2.0])
    new = evolution_strategies(J, theta, sigma=0.5, lr=0.1, M=2, rng=FakeRNG([[1, 0], [0, -1]]))
    close(new, [0.375, 2.325])
    g = es_gradient(J, theta, sigma=0.5, M=2, rng=FakeRNG([[1, 0], [0, -1]]))
    close(g, [6.25, -3.25])
    close(theta, [1.0, 2.0])  # not mutated


def test_evolution_strategies_is_seeded_and_works_on_trees():
    J = lambda p: float(np.sum(p["w"] ** 2) + p["b"] ** 2)
    theta = {"w": np.ones((2, 2)), "b": 1.0}
    a = evolution_strategies(J, theta, 0.1, 0.01, 5, rng=3)
    b = evolution_strategies(J, theta, 0.1, 0.01, 5, rng=np.random.default_rng(3))
    close(a["w"], b["w"])
    assert a["b"] == b["b"] and type(a["b"]) is float
    opt = EvolutionStrategies(lr=0.01, sigma=0.1, M=5, seed=7)
    s0 = opt.init(theta)
    p1, s1 = opt.update(theta, J, s0)
    p1_again, _ = opt.update(theta, J, s0)  # update is a pure function of its inputs
    close(p1["w"], p1_again["w"])
    p2, _ = opt.update(p1, J, s1)
    assert not np.allclose(p2["w"] - p1["w"], p1["w"] - theta["w"])  # fresh noise each step


# ---------------------------------------------------------------------------
# Convergence on a convex quadratic, f(x) = 1/2 x^T A x - b^T x
# ---------------------------------------------------------------------------

A = np.array([[3.0, 1.0], [1.0, 2.0]])
B = np.array([1.0, -1.0])
X_STAR = np.linalg.solve(A, B)


def quad(x):
    return 0.5 * x @ A @ x - B @ x


def quad_grad(x):
    return A @ x - B


@pytest.mark.parametrize(
    "opt, steps, tol",
    [
        (GradientDescent(0.2), 200, 1e-8),
        (SGD(0.2), 200, 1e-8),
        (Momentum(0.1, alpha=0.5), 200, 1e-8),
        (Nesterov(0.1, alpha=0.5), 200, 1e-8),
        (Adam(0.05), 2000, 1e-4),
        (Clipped(GradientDescent(0.2), elementwise=0.5), 300, 1e-8),
        (Clipped(Momentum(0.1), global_norm=1.0), 400, 1e-8),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, (int, float)) else str(v),
)
def test_converges_on_a_convex_quadratic(opt, steps, tol):
    x = np.array([4.0, -3.0])
    state = opt.init(x)
    for _ in range(steps):
        x, state = opt.update(x, quad_grad(x), state)
    assert np.linalg.norm(x - X_STAR) < tol
    assert state.step == steps


def test_evolution_strategies_reduce_a_non_differentiable_loss():
    # sum of |x| in steps of 1/4: piecewise constant, its gradient is 0 almost everywhere
    J = lambda x: float(np.sum(np.floor(4 * np.abs(x)) / 4))
    x0 = np.array([2.0, -3.0, 1.5])
    assert J(x0) == 6.5
    res = train(J, x0, EvolutionStrategies(lr=0.05, sigma=0.5, M=40, seed=0), steps=150)
    assert res.history[0] == 6.5
    assert J(res.params) < 1.0
    # a gradient method gets nowhere: the (almost everywhere) gradient is zero
    assert np.array_equal(sgd_step(x0, np.zeros(3), 0.1), x0)


# ---------------------------------------------------------------------------
# Parameter structures
# ---------------------------------------------------------------------------

STRUCTURES = {
    "float": lambda: (1.5, 0.5),
    "array": lambda: (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.1, -0.2], [0.3, 0.4]])),
    "zero-d array": lambda: (np.array(2.0), np.array(1.0)),
    "tuple": lambda: ((np.array([1.0, 2.0]), 3.0), (np.array([0.5, 0.5]), -1.0)),
    "list": lambda: ([np.ones(3), np.zeros((2, 1))], [np.full(3, 0.2), np.ones((2, 1))]),
    "dict": lambda: (
        {"w": np.eye(2), "b": 0.5, "layers": [np.ones(2), (2.0,)]},
        {"w": np.full((2, 2), 0.1), "b": -0.5, "layers": [np.ones(2), (1.0,)]},
    ),
}

OPTIMIZERS = {
    "gd": lambda: GradientDescent(0.1),
    "sgd": lambda: SGD(0.1),
    "momentum": lambda: Momentum(0.1),
    "nesterov": lambda: Nesterov(0.1),
    "adam": lambda: Adam(0.1),
    "clipped": lambda: Clipped(Adam(0.1), elementwise=0.3, global_norm=0.5),
}


def same_structure(a, b):
    """a and b have the same containers and the same kinds/shapes of leaves."""
    if isinstance(a, dict):
        return type(b) is type(a) and list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(b) is type(a) and len(a) == len(b) and all(map(same_structure, a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and b.dtype.kind == "f"
    return type(b) is float


def assert_tree_equal(a, b):
    assert same_structure(a, b)
    for x, y in zip(tree_leaves(a), tree_leaves(b), strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_structures_are_kept_and_not_mutated(name, structure):
    params, grads = STRUCTURES[structure]()
    params_before, grads_before = copy.deepcopy(params), copy.deepcopy(grads)
    opt = OPTIMIZERS[name]()
    state0 = opt.init(params)
    state0_before = copy.deepcopy(state0)
    new, state1 = opt.update(params, grads, state0)
    new2, _ = opt.update(new, grads, state1)
    assert same_structure(params, new) and same_structure(params, new2)
    assert_tree_equal(params, params_before)
    assert_tree_equal(grads, grads_before)
    for x, y in zip(state0, state0_before, strict=True):  # the old state is untouched too
        assert_tree_equal(x, y) if not isinstance(x, int) else x == y
    # something moved, in the direction against the gradient
    moved = [np.any(a != b) for a, b in zip(tree_leaves(params), tree_leaves(new), strict=True)]
    assert all(moved)
    # and the update is a pure function
    again, _ = opt.update(params, grads, state0)
    assert_tree_equal(new, again)


@pytest.mark.parametrize("structure", list(STRUCTURES))
def test_functional_steps_and_clipping_keep_structures(structure):
    params, grads = STRUCTURES[structure]()
    before = copy.deepcopy(params)
    zeros = tree_zeros_like(params)
    for out in (
        sgd_step(params, grads, 0.1),
        momentum_step(params, grads, zeros, 0.1)[0],
        momentum_step(params, grads, zeros, 0.1)[1],
        nesterov_step(params, grads, zeros, 0.1)[0],
        clip_elementwise(grads, 0.1),
        clip_global_norm(grads, 0.1),
        evolution_strategies(lambda p: tree_global_norm(p), params, 0.1, 0.1, 3, rng=0),
        tree_add(params, grads),
        tree_sub(params, grads),
        tree_scale(params, 2.0),
        zeros,
    ):
        assert same_structure(params, out)
    assert_tree_equal(params, before)


def test_namedtuple_parameters_keep_their_type():
    P = namedtuple("P", "w b")
    params = P(np.ones(2), 1.0)
    new = sgd_step(params, (np.ones(2), 1.0), 0.5)  # a gradient tuple mirrors a namedtuple
    assert type(new) is P
    close(new.w, [0.5, 0.5])
    assert new.b == 0.5


def test_mismatched_gradients_are_reported():
    with pytest.raises(SrcdiffError, match=r"missing keys \['b'\]; unexpected keys \['c'\]"):
        sgd_step({"w": np.ones(2), "b": 1.0}, {"w": np.ones(2), "c": 1.0}, 0.1)
    with pytest.raises(SrcdiffError, match="shape"):
        sgd_step((np.ones(3),), (np.ones((3, 1)),), 0.1)
    with pytest.raises(SrcdiffError, match="length"):
        Adam().update((1.0, 2.0), (1.0,), Adam().init((1.0, 2.0)))
    with pytest.raises(SrcdiffError):
        tree_add(1.0, (1.0,))


@pytest.mark.parametrize(
    "make",
    [
        lambda: GradientDescent(0.0),
        lambda: GradientDescent(float("nan")),
        lambda: Momentum(0.1, alpha=1.0),
        lambda: Adam(beta2=1.5),
        lambda: Adam(eps=-1.0),
        lambda: Clipped(GradientDescent(0.1)),
        lambda: Clipped(GradientDescent(0.1), elementwise=-1.0),
        lambda: EvolutionStrategies(0.1, M=0),
        lambda: EvolutionStrategies(0.1, sigma=0.0),
        lambda: clip_elementwise(np.ones(2), 0.0),
        lambda: sgd_step(1.0, 1.0, True),
    ],
)
def test_bad_hyperparameters_are_rejected(make):
    with pytest.raises(SrcdiffError):
        make()


# ---------------------------------------------------------------------------
# Tree helpers
# ---------------------------------------------------------------------------


def test_tree_helpers():
    t = {"a": 1.0, "b": (np.array([1.0, 2.0]), [np.array(3.0)])}
    assert [np.ndim(x) for x in tree_leaves(t)] == [0, 1, 0]
    doubled = tree_map(lambda x: 2 * x, t)
    assert type(doubled["a"]) is float
    assert isinstance(doubled["b"][1][0], np.ndarray) and doubled["b"][1][0].shape == ()
    close(tree_global_norm(t), math.sqrt(1 + 1 + 4 + 9))
    assert tree_global_norm(()) == 0.0
    huge = (np.array([3e200]), 4e200)
    assert tree_global_norm(huge) == pytest.approx(5e200)


@FAST
@given(
    st.recursive(
        st.one_of(
            st.floats(-10, 10),
            hnp.arrays(
                np.float64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), elements=st.floats(-10, 10)
            ),
        ),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.lists(children, max_size=3).map(tuple),
            st.dictionaries(st.text("abc", min_size=1, max_size=2), children, max_size=3),
        ),
        max_leaves=8,
    )
)
def test_tree_ravel_roundtrip_and_updates_on_random_trees(tree):
    vec, unravel = tree_ravel(tree)
    assert vec.shape == (sum(int(np.size(x)) for x in tree_leaves(tree)),)
    back = unravel(vec)
    assert same_structure(tree, back)
    for x, y in zip(tree_leaves(tree), tree_leaves(back), strict=True):
        assert np.array_equal(x, y)
    before = copy.deepcopy(tree)
    new, _ = Momentum(0.1).update(tree, tree, Momentum(0.1).init(tree))
    assert same_structure(tree, new)
    close(tree_ravel(new)[0], 0.9 * vec)
    for x, y in zip(tree_leaves(tree), tree_leaves(before), strict=True):
        assert np.array_equal(x, y)


def test_scipy_minimize_through_tree_ravel():
    from scipy.optimize import minimize

    def f(p):
        return quad(p["x"]) + (p["c"] - 2.0) ** 2

    def g(p):
        return {"x": quad_grad(p["x"]), "c": 2.0 * (p["c"] - 2.0)}

    x0, unravel = tree_ravel({"x": np.zeros(2), "c": 0.0})
    res = minimize(lambda v: f(unravel(v)), x0, jac=lambda v: tree_ravel(g(unravel(v)))[0], method="L-BFGS-B")
    best = unravel(res.x)
    close(best["x"], X_STAR, tol=1e-5)
    assert abs(best["c"] - 2.0) < 1e-5


# ---------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------


def quad_value_and_grad(x):
    return quad(x), quad_grad(x)


def test_train_with_value_and_grad():
    x0 = np.array([4.0, -3.0])
    res = train(quad_value_and_grad, x0, GradientDescent(0.2), steps=100)
    assert isinstance(res, TrainResult)
    assert len(res.history) == res.steps == 100
    assert all(b <= a + 1e-15 for a, b in zip(res.history, res.history[1:], strict=False))
    close(res.params, X_STAR, tol=1e-8)
    assert not res.stopped_early and res.message is None
    close(x0, [4.0, -3.0])


def test_train_with_plain_grad_and_loss_matches():
    x0 = np.array([4.0, -3.0])
    a = train(quad_value_and_grad, x0, Nesterov(0.1), steps=30)
    b = train(quad_grad, x0, Nesterov(0.1), loss=quad, steps=30)
    close(a.params, b.params, tol=0)
    assert a.history == b.history


def make_regression(n=40, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5
    return X, y


def mse_value_and_grads(w, b, X, y):
    """What srcdiff.value_and_grad(mse, wrt=(0, 1)) returns, written by hand."""
    r = X @ w + b - y
    return np.mean(r**2), (2 * X.T @ r / len(y), 2 * float(np.mean(r)))


def test_train_minibatch_sgd_with_unpacked_params():
    X, y = make_regression()
    params = (np.zeros(2), 0.0)
    res = train(
        mse_value_and_grads, params, SGD(0.1), data=(X, y), batch_size=8, epochs=60, unpack_params=True
    )
    assert res.steps == 60 * 5
    w, b = res.params
    assert type(res.params) is tuple and type(b) is float
    close(w, [2.0, -1.0], tol=1e-6)
    assert abs(b - 0.5) < 1e-6
    assert res.history[-1] < 1e-10 < res.history[0]
    assert np.array_equal(params[0], np.zeros(2))


def recorded_batches(seed, n=10, batch_size=3, epochs=3):
    seen = []

    def fn(p, idx):
        seen.append(idx.tolist())
        return 0.0, 0.0 * p

    res = train(fn, 0.0, SGD(0.1), data=np.arange(n), batch_size=batch_size, epochs=epochs, seed=seed)
    return seen, res


def test_train_minibatches_are_seeded_and_cover_each_epoch():
    seen, res = recorded_batches(seed=5)
    assert res.steps == len(seen) == 3 * 4  # ceil(10 / 3) = 4 batches per epoch
    assert [len(b) for b in seen] == [3, 3, 3, 1] * 3
    for e in range(3):
        epoch = sum(seen[4 * e : 4 * e + 4], [])
        assert sorted(epoch) == list(range(10))
    assert recorded_batches(seed=5)[0] == seen
    assert recorded_batches(seed=6)[0] != seen
    # full batch: every step sees all the data, in order
    full, _ = recorded_batches(seed=5, batch_size=None, epochs=2)
    assert full == [list(range(10))] * 2


@FAST
@given(st.integers(1, 30), st.integers(1, 40), st.integers(0, 2**32))
def test_minibatch_indices_visit_every_example_once_per_epoch(n, batch_size, seed):
    it = minibatch_indices(n, batch_size, seed)
    per_epoch = -(-n // min(batch_size, n))
    for _ in range(2):
        epoch = np.concatenate([next(it) for _ in range(per_epoch)])
        assert sorted(epoch.tolist()) == list(range(n))
    it2 = minibatch_indices(n, batch_size, seed)
    first = [next(it2) for _ in range(per_epoch)]
    it3 = minibatch_indices(n, batch_size, np.random.default_rng(seed))
    assert all(np.array_equal(a, next(it3)) for a in first)


def diverging(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return 5.0 * np.sum(x**2), 10.0 * x


def test_non_finite_loss_raises_with_the_result_so_far():
    x0 = np.array([1.0, -1.0])
    with pytest.raises(NonFiniteLossError, match="loss is inf") as info:
        train(diverging, x0, GradientDescent(1.0), steps=10_000)  # |1 - 10| = 9 > 1: diverges
    err = info.value
    assert isinstance(err, SrcdiffError) and isinstance(err, FloatingPointError)
    assert "smaller learning rate" in str(err)
    res = err.result
    assert res.stopped_early and "step" in res.message
    assert not math.isfinite(res.history[-1])
    assert all(math.isfinite(v) for v in res.history[:-1])
    assert len(res.history) == res.steps + 2  # finite losses up to res.params, then the bad step
    assert np.all(np.isfinite(res.params))
    np.testing.assert_allclose(res.params, x0 * (-9.0) ** res.steps, rtol=1e-12)
    assert res.history[-2] == 5.0 * np.sum(res.params**2)


def test_non_finite_loss_stop_mode_returns():
    res = train(diverging, np.array([1.0]), GradientDescent(1.0), steps=10_000, on_nonfinite="stop")
    assert res.stopped_early and res.steps < 10_000
    assert "training stopped" in res.message
    assert not math.isfinite(res.history[-1])
    # nan right away: the initial parameters come back
    res = train(lambda x: (float("nan"), x), 3.0, Adam(), steps=5, on_nonfinite="stop")
    assert res.params == 3.0 and res.steps == 0 and len(res.history) == 1
    assert "initial parameters" in res.message


def test_train_evolution_strategies_with_data():
    X, y = make_regression(n=20)

    def mse(w, X, y):
        return float(np.mean((X @ w[:2] + w[2] - y) ** 2))

    opt = EvolutionStrategies(lr=0.01, sigma=0.1, M=30, seed=1)
    res = train(mse, np.zeros(3), opt, data=(X, y), batch_size=10, steps=300)
    again = train(mse, np.zeros(3), opt, data=(X, y), batch_size=10, steps=300)
    close(res.params, again.params, tol=0)
    assert res.history[-1] < 0.05 * res.history[0]
    with pytest.raises(SrcdiffError, match="loss="):
        train(mse, np.zeros(3), opt, loss=mse, steps=1)


def test_train_progress_plain_fallback(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    train(quad_value_and_grad, np.ones(2), GradientDescent(0.1), steps=20, progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("step 20/20  loss ")
    train(quad_value_and_grad, np.ones(2), GradientDescent(0.1), steps=20)
    assert capsys.readouterr().err == ""  # off by default


def test_train_progress_uses_tqdm_when_installed(monkeypatch):
    calls = []

    class FakeBar:
        def __init__(self, total, **kwargs):
            calls.append(("init", total))

        def set_postfix(self, **kwargs):
            calls.append(("postfix", kwargs["loss"]))

        def update(self, k):
            calls.append(("update", k))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeBar))
    train(quad_value_and_grad, np.ones(2), GradientDescent(0.1), steps=3, progress=True)
    assert calls[0] == ("init", 3) and calls[-1] == ("close",)
    assert [c for c in calls if c[0] == "update"] == [("update", 1)] * 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 3, "epochs": 1}, "exactly one"),
        ({}, "exactly one"),
        ({"steps": 3, "batch_size": 2}, "needs data"),
        ({"steps": 3, "data": (np.ones(3), np.ones(4))}, "first dimension"),
        ({"steps": 3, "on_nonfinite": "ignore"}, "on_nonfinite"),
        ({"steps": 3, "unpack_params": True}, "tuple"),
    ],
)
def test_train_argument_errors(kwargs, match):
    with pytest.raises(SrcdiffError, match=match):
        train(quad_value_and_grad, np.ones(2), GradientDescent(0.1), **kwargs)


def test_train_explains_a_bad_fn():
    with pytest.raises(SrcdiffError, match=r"\(loss, grads\)"):
        train(quad_grad, np.ones(2), GradientDescent(0.1), steps=1)  # forgot loss=
    with pytest.raises(SrcdiffError, match="scalar loss"):
        train(lambda w: (w, w), np.ones(2), GradientDescent(0.1), steps=1)
