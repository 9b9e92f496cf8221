"""Assignment into arrays: x[i] = v, x[i] += v, slices, masks, in loops and
branches; what is saved and restored; and the programs srcdiff rejects."""

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff


def build(x, n):
    out = np.zeros(n)
    for i in range(n):
        out[i] = np.sin(x * i)
    return np.sum(out * out)


def slices(x, w):
    out = np.zeros((3, 4))
    out[0] = x * w
    out[1:, :2] = np.tanh(x[:2])
    out[2, 3] += w * 2.0
    return np.sum(out ** 2)


def read_then_write(x):
    out = np.ones(3)
    a = np.sum(out * x)
    out[1] = x[0] ** 2
    b = np.sum(out * out)
    return a + b


def broadcast_scalar(x, c):
    out = np.tile(x, (2, 1))
    out[:, 0] = c * 3.0
    return np.sum(np.sin(out))


def recurrence(a, n):
    h = np.zeros(n)
    h[0] = a
    for i in range(1, n):
        h[i] = np.tanh(h[i - 1] * a + 0.5)
    return np.sum(h)


def masked(x):
    y = x * 1.0
    y[x < 0] = 0.0
    return np.sum(y * y)


def nested(x):
    m = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            if i != j:
                m[i, j] = x[i] * x[j]
            else:
                m[i, j] += x[i]
    return np.sum(m @ m)


def overwrite_twice(x):
    out = x * 2.0
    out[0] = out[1] * out[0]
    out[0] = np.sin(out[0]) + out[2]
    return np.sum(out * x)


def copied_argument(x):
    x = x.copy()
    x[1] = x[0] * x[2]
    return np.sum(x ** 2)


def view_after(x):
    out = np.zeros(3)
    out[0] = x
    out[1] = 2.0 * x
    first = out[:2]  # a view, but nothing assigns into out after it
    return np.sum(first * first)


def invariant_looking(x):
    out = x * 1.0
    s = 0.0
    for i in range(3):
        s = s + np.sum(out * 2.0)  # out * 2.0 changes every iteration: not computed once before the loop
        out[i] = out[i] * 3.0
    return s


RNG = np.random.default_rng(0)
X = RNG.standard_normal(4)
CASES = {
    "build": (build, (0.5, 4), 0),
    "slices": (slices, (X, 0.7), (0, 1)),
    "read_then_write": (read_then_write, (X[:3],), 0),
    "broadcast_scalar": (broadcast_scalar, (X, 0.3), (0, 1)),
    "recurrence": (recurrence, (0.8, 5), 0),
    "masked": (masked, (X,), 0),
    "nested": (nested, (X[:3],), 0),
    "overwrite_twice": (overwrite_twice, (X,), 0),
    "copied_argument": (copied_argument, (X[:3],), 0),
    "view_after": (view_after, (0.4,), 0),
    "invariant_looking": (invariant_looking, (X,), 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient(name):
    f, args, wrt = CASES[name]
    assert_grad_ok(f, *args, wrt=wrt)


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_inputs_unchanged(name):
    f, args, wrt = CASES[name]
    before = [np.copy(a) for a in args]
    value, _ = srcdiff.value_and_grad(f, wrt=wrt)(*args)
    assert value == pytest.approx(f(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args]))
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def test_sizes_from_int_arguments_are_not_baked_in():
    """np.zeros(n) with n an int argument: its shape changes with n, which the
    compiled code is not keyed on, so it must not be specialized on it."""
    g = srcdiff.grad(recurrence)
    for n in (5, 3, 7):
        assert_grad_ok(recurrence, 0.8, n)
        g(0.8, n)


def test_saves_only_what_the_backward_pass_reads_again():
    g = srcdiff.grad(build)
    g(0.5, 4)
    assert "stack" not in srcdiff.source(g)  # nothing reads out's old values
    g = srcdiff.grad(read_then_write)
    g(X[:3])
    src = srcdiff.source(g)
    assert "stack.append(out[1])" in src and "out[1] = stack.pop()" in src  # a = sum(out * x) needs them


def test_loop_scatter_is_in_place():
    g = srcdiff.grad(recurrence)
    g(0.8, 6)
    src = srcdiff.source(g)
    assert "dh[i] = 0.0" in src and "index_grad" not in src, src


def into_argument(x):
    x[0] = 0.0
    return np.sum(x)


def from_view(x):
    out = x[0:2]
    out[0] = 1.0
    return np.sum(out)


def view_then_write(x):
    out = np.zeros(3)
    row = out[0:2]
    out[0] = x
    return np.sum(row)


def alias_then_write(x):
    out = np.zeros(3)
    same = out
    out[0] = x
    return np.sum(same)


def int_index(x, idx):
    out = np.zeros(3)
    out[idx] = x
    return np.sum(out)


def into_list(x):
    ys = [x, x]
    ys[0] = 2.0 * x
    return ys[0] + ys[1]


def element_of_element(x):
    out = np.zeros((2, 2))
    out[0][1] = x
    return np.sum(out)


@pytest.mark.parametrize("f, args, message", [
    (into_argument, (np.ones(3),), "would change the caller's array"),
    (from_view, (np.ones(3),), "may share memory with another array"),
    (view_then_write, (1.0,), "row = out[0:2] is another name for the memory of out, which line"),
    (alias_then_write, (1.0,), "same = out is another name"),
    (int_index, (np.ones(2), np.array([0, 2])), "integer-array index (idx)"),
    (into_list, (1.0,), "needs a NumPy array, and ys is a list"),
    (element_of_element, (1.0,), "x[i, j] = v"),
])
def test_rejected_with_a_line_and_a_hint(f, args, message):
    with pytest.raises(srcdiff.SrcdiffError) as info:
        srcdiff.grad(f)(*args)
    text = str(info.value)
    assert message in text, text
    assert "test_setitem.py:" in text and "hint:" in text


def test_graph_shows_the_assignment():
    text = str(srcdiff.graph(build))
    assert "out*" in text and "[i] =" in text
    assert "->" in srcdiff.graph(build).to_dot()


def fill(x, k):
    out = np.zeros(3)
    for i in range(3):
        out[i] = x * (i + k)
    return out


def uses_helper(x):
    a = fill(x, 1.0)
    b = fill(2.0 * x, 0.5)
    return np.sum(a * b)


def halve_entries(v):
    y = v * 1.0
    i = 0
    while np.max(np.abs(y)) > 0.1 and i < 20:
        y[i % 3] = y[i % 3] * 0.5
        i = i + 1
    return np.sum(y * y)


def test_helpers_and_while_loops():
    assert_grad_ok(uses_helper, 0.7)
    assert_grad_ok(halve_entries, np.array([0.9, -0.4, 0.3]))
