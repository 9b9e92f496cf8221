"""Control flow: branches, loops, break/continue/return, recursion, lists."""

import math

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff


def branches(x, y):
    if x > 1.0:
        z = x * y
    elif x > 0.0:
        if y > 0.5:
            z = np.sin(x) * y
        else:
            z = x ** 3
    else:
        z = -x * 2.0
    w = z if z > 0.3 else z * z
    return w + x


@pytest.mark.parametrize("x,y", [(1.5, 0.3), (0.5, 0.9), (0.5, 0.1), (-0.4, 0.7), (0.2, 0.2)])
def test_if_elif_else_nested_and_ternary(x, y):
    assert_grad_ok(branches, x, y, wrt=(0, 1))


def array_condition(x):
    if np.max(x) > 1.0:
        y = np.sum(x ** 2)
    else:
        y = np.sum(np.exp(x))
    return y


def test_array_condition(rng):
    assert_grad_ok(array_condition, rng.uniform(0, 0.5, size=3))
    assert_grad_ok(array_condition, rng.uniform(1.2, 2, size=3))


def loops(W, x, n):
    h = x
    for t in range(n):
        h = np.tanh(W @ h)
    for row in W:
        h = h + row * 0.1
    s = 0.0
    for v in [h[0], h[1]]:
        s = s + v * v
    for i, r in enumerate(W):
        s = s + np.sum(r * h) * i
    for a, b in zip(h, x):
        s = s + a * b
    for i in range(W.shape[0]):
        for j in range(2):
            s = s + W[i, j] * h[j]
    return s


def test_for_loops_of_every_kind(rng):
    W = rng.normal(size=(3, 3)) * 0.5
    x = rng.normal(size=3)
    assert_grad_ok(loops, W, x, 4, wrt=(0, 1))


def carried_tuple(x):
    state = (x, 1.0)
    for i in range(3):
        a, b = state
        state = (a * b + 1.0, np.sin(a))
    a, b = state
    return a + b


def test_loop_carried_tuple():
    assert_grad_ok(carried_tuple, 0.3)


def reuse_name(x):
    y = x
    for i in range(3):
        tmp = y * 2.0
        y = np.sin(tmp)
        tmp = y + x
        y = tmp * 0.5
    return y


def test_name_reused_across_iterations():
    assert_grad_ok(reuse_name, 0.7)


def halve(x):
    while x > 1.0:
        x = x / 2.0
    return x * x


def newton_sqrt(a):
    x = a
    while abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def test_while_loops():
    assert_grad_ok(halve, 7.3)
    assert_grad_ok(newton_sqrt, 2.5)
    assert abs(srcdiff.grad(newton_sqrt)(4.0) - 0.25) < 1e-9


def jumps(xs, limit):
    s = 0.0
    last = 0.0
    for x in xs:
        if x < 0.0:
            continue
        s = s + x * x
        last = x
        if s > limit:
            break
    return s + last * 3.0


@pytest.mark.parametrize("limit", [0.5, 100.0])
def test_break_and_continue(limit):
    xs = np.array([0.3, -0.5, 0.9, 0.2, -0.1, 0.7])
    assert_grad_ok(jumps, xs, limit)


def loop_var_after(xs):
    for i in range(len(xs)):
        if xs[i] > 0.5:
            break
    return xs[i] * 2.0 + i


def test_loop_variable_after_break():
    assert_grad_ok(loop_var_after, np.array([0.1, 0.7, 0.9]))
    assert_grad_ok(loop_var_after, np.array([0.1, 0.2, 0.3]))


def early_return(x):
    if x > 2.0:
        return x * 10.0
    y = x * x
    if y > 1.0:
        return np.sin(y)
    return y * 3.0


@pytest.mark.parametrize("x", [2.5, 1.5, 0.5])
def test_return_inside_branch(x):
    assert_grad_ok(early_return, x)


def return_in_loop(x):
    for i in range(10):
        x = x * 1.5
        if x > 3.0:
            return x * x
    return -x


@pytest.mark.parametrize("x", [0.5, 0.01])
def test_return_inside_loop(x):
    assert_grad_ok(return_in_loop, x)


def power_tower(x, n):
    if n == 0:
        return x
    return math.sin(power_tower(x, n - 1)) + x


def test_recursion_with_depth_argument():
    assert_grad_ok(power_tower, 0.4, 5)


def lists(W, h):
    outs = []
    for t in range(4):
        h = np.tanh(W @ h)
        outs.append(h)
    stacked = np.stack(outs)
    return np.sum(stacked ** 2) + np.sum(outs[-1]) + np.sum(sum(outs))


def test_lists_append_stack_sum_and_index(rng):
    assert_grad_ok(lists, rng.normal(size=(3, 3)) * 0.5, rng.normal(size=3), wrt=(0, 1))


def dict_params(params, x):
    h = x
    for name in ["W1", "W2"]:
        h = np.tanh(params[name] @ h)
    return np.sum(h)


def test_dict_lookup_with_loop_key(rng):
    params = {"W1": rng.normal(size=(3, 3)), "W2": rng.normal(size=(2, 3))}
    g = srcdiff.grad(dict_params)(params, rng.normal(size=3))
    assert isinstance(g, dict) and set(g) == {"W1", "W2"}
    assert g["W2"].shape == (2, 3)
    assert_grad_ok(dict_params, params, rng.normal(size=3))


def rnn(W, U, b, xs, h):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h ** 2)


def test_rnn_shared_weights_sum_over_steps(rng):
    W = rng.normal(size=(4, 4)) * 0.4
    U = rng.normal(size=(4, 3))
    b = rng.normal(size=4)
    xs = rng.normal(size=(5, 3))
    h = np.zeros(4)
    assert_grad_ok(rnn, W, U, b, xs, h, wrt=(0, 1, 2, 3, 4))
    src = srcdiff.source(srcdiff.grad(rnn, wrt=(0, 1, 2)))
    assert "for t in reversed(range(" in src


def test_stack_is_empty_after_each_call():
    stats = srcdiff.stack_stats(rnn, np.eye(3) * 0.5, np.ones((3, 2)), np.zeros(3), np.ones((6, 2)), np.zeros(3),
                                wrt=(0, 1))
    assert stats["left"] == 0 and stats["peak"] > 0
    assert srcdiff.stack_stats(halve, 100.0)["left"] == 0


def test_straight_line_code_has_no_stack():
    def f(x):
        y = np.sin(x)
        y = y * y
        return np.sum(y)

    assert "stack" not in srcdiff.source(srcdiff.grad(f))
    assert srcdiff.stack_stats(f, np.ones(3))["stacks"] == 0


def boom(x, fail):
    for i in range(3):
        x = np.sin(x)
        if fail and i == 1:
            x = x + np.ones(3)  # shapes (2,) and (3,): NumPy raises, half way through the loop
    return np.sum(x)


def test_exception_leaves_nothing_behind():
    g = srcdiff.grad(boom)
    good = g(np.ones(2), False)
    with pytest.raises(ValueError, match="broadcast"):
        g(np.ones(2), True)
    np.testing.assert_allclose(g(np.ones(2), False), good)


def test_while_else_and_generators_are_rejected():
    def f(x):
        while x > 1:
            x = x / 2
        else:
            x = x + 1
        return x

    with pytest.raises(srcdiff.SrcdiffError, match="else"):
        srcdiff.grad(f)(3.0)


# -- regressions found by the program fuzzer and by the docs/examples work --------------------------


def param_overwritten_in_loop(x, y):
    if x < 0.0:
        x = x * y
    for j in range(2):
        y = np.sin(x)
    return x + y


def test_parameter_reassigned_in_loop_is_restored():
    assert_grad_ok(param_overwritten_in_loop, -1.0, 1.0, wrt=(0, 1))


def while_in_for(x):
    for i in range(3):
        k = 0
        while abs(x) > 0.05 and k < 6:
            k = k + 1
            x = x * 0.5
        x = np.tanh(x) + 1.0
    return x


def test_while_loop_counter_inside_for_is_saved():
    assert_grad_ok(while_in_for, -1.2)


def power(x, n):
    y = 1.0
    for i in range(n):
        y = y * x
    return y


def test_value_and_grad_returns_the_final_value():
    assert srcdiff.value_and_grad(power)(1.5, 3) == (3.375, pytest.approx(6.75))
    assert srcdiff.value_and_grad(return_in_loop)(0.5)[0] == return_in_loop(0.5)


def test_indexing_in_a_loop_adds_in_place():
    def horner(coeffs, x):
        y = 0.0
        for i in range(coeffs.shape[0]):
            y = y * x + coeffs[i]
        return y

    src_args = (np.linspace(-1, 1, 7), 0.9)
    assert_grad_ok(horner, *src_args, wrt=(0, 1))
    g = srcdiff.grad(horner, wrt=0)
    g(*src_args)
    assert "dcoeffs[i] += " in srcdiff.source(g)


def iterables(params, xs, ws):
    s = 0.0
    for i, (x, w) in enumerate(zip(xs, ws)):
        s = s + x * w * i
    for a, b, c in zip(xs, ws, xs):
        s = s + a * b * c
    for x in reversed(xs):
        s = s * 0.5 + x
    for name, W in params.items():
        s = s + np.sum(W) * min(s, 1.0, 2.0)
    for W in params.values():
        s = s + np.sum(W ** 2)
    return s


def test_more_iterables(rng):
    params = {"a": rng.normal(size=(2, 2)), "b": rng.normal(size=3)}
    assert_grad_ok(iterables, params, [0.3, 0.7, -0.2], np.array([1.0, 2.0, 0.5]), wrt=(0, 1, 2))


def comprehensions(x, ws):
    sq = [v * v for v in x]
    s = sum(w * v for w, v in zip(ws, x) if w > 0.0)
    pairs = np.stack([np.tanh(a * b) for a in x for b in ws])
    v = 2.0  # the comprehensions' own v never clobbers this one
    return sum(sq) + s + np.sum(pairs) * v


def test_list_comprehensions_and_generator_expressions():
    assert_grad_ok(comprehensions, np.array([0.3, -0.5, 1.2]), np.array([0.7, -0.2, 0.4]), wrt=(0, 1))


def oscillator(k, c, x, v, n):
    for _ in range(n):
        a = -k * x - c * v
        x = x + 0.1 * v
        v = v + 0.1 * a
    return x * x + v * v


def nested_invariant(w, x, n):
    s = 0.0
    for i in range(n):
        for j in range(n):
            s = s + (w * 2.0) * x + i * j * w
    return s


def test_loop_invariant_values_are_computed_before_the_loop():
    g = srcdiff.grad(oscillator, wrt=(0, 1))
    g(2.0, 0.3, 1.0, 0.0, 5)
    src = srcdiff.source(g)
    forward = src.split("# backward pass")[0]
    assert forward.index("t1 = -k") < forward.index("for _ in range(n)"), src
    for n in (0, 1, 7):
        assert_grad_ok(oscillator, 2.0, 0.3, 1.0, 0.2, n, wrt=(0, 1, 2, 3))
    for n in (0, 1, 3):
        assert_grad_ok(nested_invariant, 0.7, 1.3, n, wrt=(0, 1))
