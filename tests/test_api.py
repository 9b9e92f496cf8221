"""The public API contract."""

import inspect
import linecache
import threading
import traceback

import numpy as np
import pytest

import srcdiff
from srcdiff import SrcdiffError


def f(x, w, b=0.5, *, scale=1.0):
    return np.sum(np.tanh(w * x + b)) * scale


def test_wrt_forms(rng):
    x, w = rng.normal(size=3), rng.normal(size=3)
    g0 = srcdiff.grad(f)(x, w)
    gw = srcdiff.grad(f, wrt="w")(x, w)
    both = srcdiff.grad(f, wrt=(1, "x"))(x, w)
    assert isinstance(both, tuple) and len(both) == 2
    np.testing.assert_allclose(both[0], gw)
    np.testing.assert_allclose(both[1], g0)
    gb = srcdiff.grad(f, wrt="b")(x, w)
    assert isinstance(gb, float)


def test_keyword_arguments_pass_through(rng):
    x, w = rng.normal(size=3), rng.normal(size=3)
    g = srcdiff.grad(f, wrt="w")
    np.testing.assert_allclose(g(x, w, scale=2.0), 2.0 * g(x, w))
    np.testing.assert_allclose(g(x, w=w, b=0.1), g(x, w, 0.1))


def test_decorator_forms(rng):
    @srcdiff.grad
    def g1(x):
        return np.sum(x ** 2)

    @srcdiff.grad(wrt="w")
    def g2(x, w):
        return np.sum(x * w)

    x = rng.normal(size=3)
    np.testing.assert_allclose(g1(x), 2 * x)
    np.testing.assert_allclose(g2(x, x * 0), x)


def test_value_and_grad_one_pass(rng):
    x, w = rng.normal(size=3), rng.normal(size=3)
    v, (gx, gw) = srcdiff.value_and_grad(f, wrt=("x", "w"))(x, w)
    assert v == pytest.approx(f(x, w))
    np.testing.assert_allclose(gx, srcdiff.grad(f)(x, w))


def containers(params, x):
    W, b = params["W"], params["b"]
    a, c = params["pair"]
    return np.sum(np.tanh(W @ x + b)) * a + c[0] * 2.0


def test_gradients_mirror_their_arguments(rng):
    params = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2), "pair": (1.5, [0.3, 0.4])}
    g = srcdiff.grad(containers)(params, rng.normal(size=3))
    assert isinstance(g, dict) and list(g) == ["W", "b", "pair"]
    assert g["W"].shape == (2, 3) and g["b"].shape == (2,)
    assert isinstance(g["pair"], tuple) and isinstance(g["pair"][0], float)
    assert isinstance(g["pair"][1], list) and g["pair"][1] == [2.0, 0.0]


def unused(x, y):
    return np.sum(x * 2.0)


def test_unused_argument_gets_zeros_not_none(rng):
    gx, gy = srcdiff.grad(unused, wrt=(0, 1))(rng.normal(size=3), rng.normal(size=(2, 2)))
    assert gy.shape == (2, 2) and not gy.any()
    gy = srcdiff.grad(unused, wrt=1)(rng.normal(size=3), 3.0)
    assert gy == 0.0 and isinstance(gy, float)


def test_float_in_float_out():
    def h(x):
        return x * x

    g = srcdiff.grad(h)(3.0)
    assert isinstance(g, float) and g == 6.0


def test_size_one_array_output_is_a_scalar():
    def h(x):
        return x[:1] * 2.0

    np.testing.assert_allclose(srcdiff.grad(h)(np.array([1.0, 2.0])), [2.0, 0.0])


def test_inplace_change_of_an_argument_is_refused(rng):
    # NumPy would change the caller's array through y: srcdiff says so instead of
    # differentiating a different program, and leaves the array alone
    x = rng.normal(size=4)
    x0 = x.copy()

    def h(x):
        y = x
        y += 1.0
        return np.sum(y * y)

    with pytest.raises(srcdiff.SrcdiffError, match=r"y op= \.\.\. changes y in place.*\(y = x\)"):
        srcdiff.grad(h)(x)
    np.testing.assert_array_equal(x, x0)

    def h2(x):
        y = x * 1.0
        y += 1.0  # y is the function's own array: fine
        return np.sum(y * y)

    np.testing.assert_allclose(srcdiff.grad(h2)(x), 2 * (x + 1.0))


def test_source_and_linecache(rng):
    g = srcdiff.grad(f, wrt="w")
    g(rng.normal(size=3), rng.normal(size=3))
    src = srcdiff.source(g)
    assert src.startswith("def f_grad(")
    assert "# forward pass" in src and "# backward pass" in src
    assert "# return np.sum(np.tanh(w * x + b)) * scale" in src  # the user's line as a comment
    inner = g.last.fn
    assert "dw" in inspect.getsource(inner)
    assert linecache.getlines(inner.__code__.co_filename)


def explode(x):
    y = np.log(x)
    return np.sum(y[np.array([5])])


def test_tracebacks_show_generated_lines():
    with pytest.raises(IndexError) as info:
        srcdiff.grad(explode)(np.ones(3))
    text = "".join(traceback.format_exception(info.value))
    assert "t2 = y[t1]" in text or "y[" in text


def test_source_includes_helpers():
    from test_language import helper_chain

    g = srcdiff.grad(helper_chain, wrt=(0, 1))
    g(np.ones(3), np.eye(3))
    src = srcdiff.source(g)
    for name in ("def helper_chain_grad", "def affine_fwd", "def affine_bwd", "def level3_bwd"):
        assert name in src


def test_cache_hits_and_redefinition():
    def h(x):
        return x * 3.0

    g = srcdiff.grad(h)
    assert g(1.0) == 3.0
    c1 = g.last
    g(2.0)
    assert g.last is c1  # same shapes: compiled once

    def h(x):  # noqa: F811 - redefined, as in a notebook
        return x * 5.0

    assert srcdiff.grad(h)(1.0) == 5.0


def user_helper(x):
    return x * x


def uses_user_helper(x):
    return user_helper(x)


def test_global_helper_redefinition_recompiles(monkeypatch):
    g = srcdiff.grad(uses_user_helper)
    assert g(3.0) == 6.0

    def user_helper(x):
        return x * x * x

    monkeypatch.setitem(globals(), "user_helper", user_helper)
    assert g(3.0) == 27.0


def test_threads_give_sequential_results(rng):
    from test_control_flow import rnn

    W = rng.normal(size=(4, 4)) * 0.4
    U = rng.normal(size=(4, 3))
    b = rng.normal(size=4)
    g = srcdiff.grad(rnn, wrt=(0, 1, 2))
    inputs = [(rng.normal(size=(5, 3)), rng.normal(size=4)) for _ in range(8)]
    expected = [g(W, U, b, xs, h) for xs, h in inputs]
    results: list = [None] * len(inputs)

    def work(i):
        for _ in range(20):
            results[i] = g(W, U, b, *inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r, e in zip(results, expected):
        for a, b_ in zip(r, e):
            np.testing.assert_array_equal(a, b_)


def test_graph_text_and_dot():
    from test_control_flow import rnn

    gr = srcdiff.graph(rnn, wrt=(0,))
    text = str(gr)
    assert text.splitlines()[0] == "graph rnn(W, U, b, xs, h)"
    assert "np.tanh" in text and "for t in range(" in text and "carried: h" in text
    assert "# line" in text
    dot = gr.to_dot()
    assert dot.startswith('digraph "rnn"') and "cluster_1" in dot and dot.rstrip().endswith("}")


def test_check_grad_reports_per_argument(rng):
    errs = srcdiff.check_grad(f, rng.normal(size=3), rng.normal(size=3), wrt=("x", "w"))
    assert set(errs) == {"x", "w"} and max(errs.values()) < 1e-6


def test_source_of_non_gradient():
    with pytest.raises(SrcdiffError):
        srcdiff.source(f)


def test_user_rule_registration():
    secret = np.frompyfunc(lambda v: v, 1, 1)  # a function without Python source

    def softplus_c(x):  # stand-in for a C function: we register a rule for it
        return np.log1p(np.exp(x))

    fast_softplus = np.vectorize(softplus_c)
    srcdiff.defvjp(fast_softplus, "x", x="g / (1.0 + np.exp(-x))")

    def model(x):
        return np.sum(fast_softplus(x) * 2.0)

    x = np.array([0.3, -1.2])
    np.testing.assert_allclose(srcdiff.grad(model)(x), 2.0 / (1.0 + np.exp(-x)))
    assert "np.exp(-x)" in srcdiff.source(srcdiff.grad(model))

    srcdiff.defvjp(secret, "x", x=lambda g, ans, x: g * 3.0)

    def model2(x):
        return np.sum(secret(x).astype(float))

    assert secret is not None and model2 is not None


def test_nondifferentiable_registration():
    def noisy_round(x):
        return np.round(x)

    srcdiff.nondifferentiable(noisy_round)

    def model(x):
        return np.sum(noisy_round(x) * x)

    np.testing.assert_allclose(srcdiff.grad(model)(np.array([1.2, 2.7])), [1.0, 3.0])


def test_grad_of_grad_is_a_clear_error():
    g = srcdiff.grad(f)
    with pytest.raises(SrcdiffError, match="higher-order"):
        srcdiff.grad(g)


def test_rule_registered_after_compiling_is_used():
    def mine(x):
        return x * 1.0

    def uses(x):
        return mine(x) * 2.0

    g = srcdiff.grad(uses)
    assert g(3.0) == 2.0
    srcdiff.defvjp(mine, "x", x="g * 10.0")
    assert g(3.0) == 20.0


def test_check_grad_with_a_default_argument():
    def h(x, w=2.0):
        return x * w * w

    assert srcdiff.check_grad(h, 3.0, wrt="w")["w"] < 1e-7


def test_star_args_are_rejected_early():
    def h(*args):
        return args[0]

    with pytest.raises(SrcdiffError, match="\\*args"):
        srcdiff.grad(h)


def lse_shifted(z):
    m = srcdiff.stop_gradient(np.max(z, axis=1, keepdims=True))
    return np.sum(m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)))


def lse_plain(z):
    m = np.max(z, axis=1, keepdims=True)
    return np.sum(m + np.log(np.sum(np.exp(z - m), axis=1, keepdims=True)))


def test_stop_gradient(rng):
    z = rng.normal(size=(4, 5))
    np.testing.assert_allclose(srcdiff.grad(lse_shifted)(z), srcdiff.grad(lse_plain)(z), rtol=1e-12)
    g = srcdiff.grad(lse_shifted)
    g(z)
    assert "extremum_grad" not in srcdiff.source(g)

    def blocked(x):
        return np.sum(srcdiff.stop_gradient(x) * x)

    np.testing.assert_allclose(srcdiff.grad(blocked)(np.array([1.0, 2.0])), [1.0, 2.0])


def _count_general_calls(g):
    calls = []
    general = g._ns["slow"]

    def counting(args, kwargs):
        calls.append(args)
        return general(args, kwargs)

    g._ns["slow"] = counting
    return calls


def test_repeated_calls_take_the_fast_path(rng):
    g = srcdiff.grad(f, wrt=("x", "w"))
    calls = _count_general_calls(g)
    x, w = rng.normal(size=3), rng.normal(size=3)
    first = g(x, w)
    assert len(calls) == 1
    for _ in range(5):
        again = g(x, w)
        np.testing.assert_allclose(again[0], first[0])
    assert len(calls) == 1  # same shapes and types: straight to the compiled adjoint
    g(x, w, 2.0)  # another number of arguments: the general path, then fast again
    g(x, w, 2.0)
    assert len(calls) == 2
    expected = srcdiff.check_grad(f, x, w, 2.0, wrt=("x", "w"))
    assert max(expected.values()) < 1e-6


def test_fast_path_checks_shapes_types_and_rules(rng):
    def h(x, y):
        return np.sum(np.sin(x) * y)

    g = srcdiff.grad(h)
    calls = _count_general_calls(g)
    x3, x4 = rng.normal(size=3), rng.normal(size=(2, 2))
    for x in (x3, x4, x3, x4):  # alternating shapes: each call checked, each right
        np.testing.assert_allclose(g(x, 2.0), 2.0 * np.cos(x))
    assert len(calls) == 4
    np.testing.assert_allclose(g(x4.astype(np.float32), 2.0), 2.0 * np.cos(x4), rtol=1e-6)
    np.testing.assert_allclose(g(x4, 2), 2.0 * np.cos(x4))  # an int y: another specialization
    np.testing.assert_allclose(g(x=x4, y=2.0), 2.0 * np.cos(x4))  # keywords: the general path
    x = rng.normal(size=4)
    g(x, 1.0)
    x.shape = (2, 2)  # reshaped in place: the shape check sees it
    np.testing.assert_allclose(g(x, 1.0), np.cos(x))
    n = len(calls)

    def mysin(v):
        return np.sin(v)

    g(x, 1.0)
    assert len(calls) == n
    srcdiff.defvjp(mysin, "v", v="g * np.cos(v)")  # a new rule: compiled code may be stale
    g(x, 1.0)
    assert len(calls) == n + 1


def test_gradient_function_keeps_signature_and_pickles(rng):
    import pickle

    g = srcdiff.value_and_grad(f, wrt=("w", "b"))
    assert inspect.signature(g) == inspect.signature(f)
    assert g.__name__ == "f" and g.__wrapped__ is f
    h = pickle.loads(pickle.dumps(g))
    w, x = rng.normal(size=3), rng.normal(size=3)
    value, (dw, db) = h(w, x)
    value2, (dw2, db2) = g(w, x)
    assert value == value2
    np.testing.assert_allclose(dw, dw2)
    assert repr(h) == repr(g)


def swapped_names(a1, a0):
    return np.sum(a1 * 2.0 + a0 * 3.0)


def test_fast_path_with_keywords_and_missing_arguments():
    """The dispatcher's own parameters take positions only: keywords named like
    them, and missing arguments, reach the general path unchanged."""
    g = srcdiff.grad(swapped_names, wrt=(0, 1))
    x, y = np.ones(3), np.ones(3)
    g(x, y)  # the dispatcher now expects two arrays
    d1, d0 = g(a0=y, a1=x)
    np.testing.assert_allclose(d1, 2.0)
    np.testing.assert_allclose(d0, 3.0)
    d1, d0 = g(x, a0=y)
    np.testing.assert_allclose(d0, 3.0)
    with pytest.raises(srcdiff.SrcdiffError, match="missing argument 'a0'"):
        g(x)


def _sum_all(x):
    return np.sum(x)


def _mixed(a, x, w):
    h = np.tanh(x * a)
    for _ in range(2):
        h = h * w
    return np.sum(h * h) + np.mean(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_gradients_have_their_arguments_dtype(dtype):
    x = np.linspace(-1, 1, 4).astype(dtype)
    assert srcdiff.grad(_sum_all)(x).dtype == dtype
    ga, gx, gw = srcdiff.grad(_mixed, wrt=(0, 1, 2))(dtype(0.5), x, x[::-1].copy())
    assert type(ga) is dtype and gx.dtype == dtype and gw.dtype == dtype
    # the generic version (compiled without seeing arguments) returns through rt.mirror
    from srcdiff import runtime

    assert runtime.mirror(np.ones(4), x).dtype == dtype
    assert type(runtime.mirror(1.0, dtype(0.5))) is dtype
    ref = srcdiff.grad(_mixed, wrt=(0, 1, 2))(0.5, x.astype(float), x[::-1].astype(float))
    np.testing.assert_allclose(gx, ref[1], rtol={np.float16: 1e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype])
