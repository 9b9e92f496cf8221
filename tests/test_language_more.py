"""Language features beyond the core subset: functions defined inside the
function, calls and displays with ``*``, ``zip(*rows)``, ``with
np.errstate(...)``, module-level lambdas; and the precise errors where
these stop.  Every gradient is checked against central finite differences."""

import warnings

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff
from srcdiff import SrcdiffError


def closure(x, k):
    s = 2.0 * x

    def inner(z):
        return np.sin(z * s) + k

    return np.sum(inner(x) + inner(x * x))


def recursive(x):
    def power(z, n):
        if n == 0:
            return 1.0
        return z * power(z, n - 1)

    return power(x, 3)


def siblings(x, a):
    def f(z):
        return z * a

    def g(z):
        return f(z) + f(z * z)

    return g(x) * 2.0


def no_free_variables(x):
    def sq(z):
        return z * z

    return sum(sq(v) for v in [x, 2.0 * x])


def test_functions_defined_inside(rng):
    x = rng.normal(size=3)
    assert_grad_ok(closure, x, 3.0, wrt=(0, 1))
    assert_grad_ok(recursive, 1.3)
    assert_grad_ok(siblings, 0.7, 1.5, wrt=(0, 1))
    assert_grad_ok(no_free_variables, 0.7)
    assert np.isclose(srcdiff.grad(recursive)(2.0), 12.0)


def passed_as_value(x):
    s = 2.0 * x

    def inner(z):
        return z * s

    return sum(map(inner, [x]))


def test_inner_function_with_free_variables_is_not_a_value():
    with pytest.raises(SrcdiffError, match="reads variables of the enclosing function") as info:
        srcdiff.grad(passed_as_value)(1.0)
    assert info.value.lineno is not None


SQUARE = lambda z: z * z  # noqa: E731


def module_lambda(x):
    return SQUARE(x) + SQUARE(2.0 * x)


def test_module_level_lambda():
    assert_grad_ok(module_lambda, 0.3)
    assert np.isclose(srcdiff.grad(SQUARE)(3.0), 6.0)


def star_reshape(x):
    y = x.reshape(*x.shape[:-1], 2, -1)
    z = y.transpose(*(0, 2, 1))
    return np.sum(z[..., 0] ** 2) + np.sum(np.random.default_rng(0).normal(size=(*x.shape,)) * x)


def star_display(x, y):
    t = (*[x, y], x * y)
    lst = [*t, *t[:1]]
    return t[0] * t[2] + lst[3] * y


def unzip(x):
    pairs = [(x[0], x[1]), (x[2], x[3]), (x[4], x[5])]
    a, b = zip(*pairs)
    total = 0.0
    for u, v in zip(*[a, b]):
        total = total + u * v
    return sum(a) * sum(b) + total


def test_star_in_calls_and_displays(rng):
    assert_grad_ok(star_reshape, rng.normal(size=(3, 4)))
    assert_grad_ok(star_display, 1.5, 2.5, wrt=(0, 1))
    assert_grad_ok(unzip, rng.normal(size=6))


def star_helper(x):
    return np.hypot(*[x, 2.0 * x])


def test_star_in_other_calls_is_refused():
    with pytest.raises(SrcdiffError, match=r"calls with \*args are supported for") as info:
        srcdiff.grad(star_helper)(1.0)
    assert info.value.lineno is not None and info.value.hint


def errstate(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(x > 0, np.log(np.abs(x) + 1.0), 0.0)
        z = y * 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = z + np.sqrt(np.abs(x))
    return np.sum(z)


def test_with_errstate_runs_the_body(rng):
    x = np.array([0.5, -1.0, 2.0])
    assert_grad_ok(errstate, x)
    before = np.geterr()
    srcdiff.grad(errstate)(x)
    assert np.geterr() == before  # the block was left


def with_return(x):
    with np.errstate(divide="ignore"):
        return 1.0 / x


def with_open(x):
    with open("data.txt"):
        y = x
    return y


def test_with_errors():
    with pytest.raises(SrcdiffError, match="return inside a with block"):
        srcdiff.grad(with_return)(1.0)
    with pytest.raises(SrcdiffError, match="with is supported for np.errstate"):
        srcdiff.grad(with_open)(1.0)
