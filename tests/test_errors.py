"""Errors are part of the interface: SrcdiffError naming file, line, construct and a hint."""

import threading  # noqa: F401  (used by a function below)

import numpy as np
import pytest

import srcdiff
from srcdiff import SrcdiffError


def _line_of(fn, text):
    import inspect

    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(text)


def uses_try(x):
    try:
        y = x * 2
    except ValueError:
        y = x
    return y


def uses_with(x):
    with open("f") as fh:  # noqa: F841
        y = x
    return y


def uses_yield(x):
    yield x


def uses_global(x):
    global COUNTER
    COUNTER = x
    return x


def uses_nonlocal_factory():
    c = 1.0

    def f(x):
        nonlocal c
        c = x
        return x * c

    return f


def uses_del(x):
    y = x * 2
    del y
    return x


def uses_class(x):
    class A:
        pass

    return x


def uses_setitem(x):
    x[0] = 1.0
    return np.sum(x)


def uses_for_else(x):
    for i in range(3):
        x = x * 2
    else:
        x = x + 1
    return x


def uses_comprehension(x):
    return sum({v * v for v in x})


def opaque(x):
    return x


class NoSource:
    def __call__(self, x):
        return x


no_source = np.frompyfunc(lambda v: v, 1, 1)


def calls_unknown(x):
    return np.sum(no_source(x * 2.0))


CASES = [
    (uses_try, "try:", "try/except"),
    (uses_with, "with open", "with"),
    (uses_global, "global COUNTER", "global"),
    (uses_del, "del y", "del"),
    (uses_class, "class A", "class"),
    (uses_setitem, "x[0] = 1.0", "assignment into the argument"),
    (uses_for_else, "for i in range(3)", "else"),
    (uses_comprehension, "sum({v * v", "comprehensions"),
    (calls_unknown, "no_source(x", "no derivative rule"),
]


@pytest.mark.parametrize("fn,text,words", CASES, ids=[c[0].__name__ for c in CASES])
def test_unsupported_constructs_name_file_line_and_hint(fn, text, words):
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(fn)(np.array([1.0, 2.0]))
    err = info.value
    msg = str(err)
    assert "test_errors.py" in msg
    assert err.lineno == _line_of(fn, text)
    assert f":{err.lineno}:" in msg
    assert words in msg
    assert err.hint, "every error says what to do instead"
    assert text.split("(")[0].strip() in msg  # the construct is quoted


def test_nonlocal_is_rejected():
    with pytest.raises(SrcdiffError, match="nonlocal"):
        srcdiff.grad(uses_nonlocal_factory())(1.0)


def test_generator_is_rejected():
    with pytest.raises(SrcdiffError, match="generator"):
        srcdiff.grad(uses_yield)(1.0)


def test_unknown_function_names_it_and_how_to_register():
    with pytest.raises(SrcdiffError) as info:
        srcdiff.grad(calls_unknown)(np.array([1.0]))
    msg = str(info.value)
    assert "no_source" in msg and "defvjp" in msg


def f2(x, n, flag):
    return x * n


def test_wrt_not_a_parameter():
    with pytest.raises(SrcdiffError, match="not a parameter of f2; its parameters are x, n, flag"):
        srcdiff.grad(f2, wrt="y")


def test_wrt_position_out_of_range():
    with pytest.raises(SrcdiffError, match="out of range"):
        srcdiff.grad(f2, wrt=5)


def test_int_and_bool_arguments_cannot_be_differentiated():
    with pytest.raises(SrcdiffError, match="'n': it is an int"):
        srcdiff.grad(f2, wrt="n")(1.0, 3, True)
    with pytest.raises(SrcdiffError, match="'flag': it is a bool"):
        srcdiff.grad(f2, wrt="flag")(1.0, 3, True)
    with pytest.raises(SrcdiffError, match="dtype int"):
        srcdiff.grad(f2, wrt="x")(np.array([1, 2]), 3, True)


def vector_out(x):
    return x * 2.0


def test_non_scalar_output():
    with pytest.raises(SrcdiffError, match="must return a scalar.*shape \\(2,\\)"):
        srcdiff.grad(vector_out)(np.array([1.0, 2.0]))


def test_no_source():
    with pytest.raises(SrcdiffError, match="not a Python function"):
        srcdiff.grad(NoSource())(1.0)
    with pytest.raises(SrcdiffError, match="not a Python function"):
        srcdiff.grad(np.sin)(1.0)


def test_bad_rule_registration_is_reported():
    with pytest.raises(SrcdiffError, match="not a parameter"):
        srcdiff.defvjp(opaque, "x", y="g")
    with pytest.raises(SrcdiffError, match="not an expression"):
        srcdiff.defvjp(opaque, "x", x="g *")
