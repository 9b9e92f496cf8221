"""Parameter containers: NamedTuples, dataclasses and registered classes in
``wrt``, read by attribute, replaced, built, nested; bound methods and
``functools.partial``.  Every gradient is checked against central finite
differences, and its type against the argument's."""

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff
from srcdiff import SrcdiffError


class Layer(NamedTuple):
    W: np.ndarray
    b: np.ndarray


@dataclass
class Net:
    l1: Layer
    l2: Layer
    scale: float = 1.0


@dataclass
class MLP:
    layers: list
    name: str = "mlp"


def _net(rng):
    return Net(Layer(rng.normal(size=(3, 2)), rng.normal(size=3)),
               Layer(rng.normal(size=(1, 3)), rng.normal(size=1)), 0.7)


def _same_structure(g, x):
    assert type(g) is type(x)
    if isinstance(x, (tuple, list)):
        assert len(g) == len(x)
        for a, b in zip(g, x):
            _same_structure(a, b)
    elif dataclasses.is_dataclass(x):
        for f in dataclasses.fields(x):
            if isinstance(getattr(x, f.name), (float, np.ndarray, tuple, list)) or \
                    dataclasses.is_dataclass(getattr(x, f.name)):
                _same_structure(getattr(g, f.name), getattr(x, f.name))
    elif isinstance(x, np.ndarray):
        assert g.shape == x.shape


def _check(f, *args, wrt=0):
    assert_grad_ok(f, *args, wrt=wrt)
    g = srcdiff.grad(f, wrt=wrt)(*args)
    return g


def mlp(p, x):
    h = np.tanh(p.l1.W @ x + p.l1.b)
    return p.scale * np.sum((p.l2.W @ h + p.l2.b) ** 2)


def test_nested_dataclass_and_namedtuple_by_attribute(rng):
    net = _net(rng)
    g = _check(mlp, net, np.array([0.5, -1.0]))
    _same_structure(g, net)
    assert isinstance(g.l1, Layer) and isinstance(g.scale, float)


def unpacked(p, x):
    W, b = p
    return np.sum(np.tanh(W @ x + b)) + np.sum(p.W * p[0])


def test_namedtuple_unpacked_indexed_and_read_by_attribute(rng):
    p = Layer(rng.normal(size=(2, 2)), rng.normal(size=2))
    g = _check(unpacked, p, np.array([0.3, 0.8]))
    _same_structure(g, p)


def layer(lay, x):
    return np.tanh(lay.W @ x + lay.b)


def through_helper(p, x):
    for lay in p.layers:
        x = layer(lay, x)
    return np.sum(x ** 2) + p.layers[0].b[0]


def test_list_field_of_namedtuples_through_a_helper(rng):
    p = MLP([Layer(rng.normal(size=(3, 2)), rng.normal(size=3)), Layer(rng.normal(size=(2, 3)), rng.normal(size=2))])
    g = _check(through_helper, p, np.array([0.3, -0.4]))
    assert type(g) is MLP and type(g.layers) is list and all(type(x) is Layer for x in g.layers)


def replaced(p, x):
    q = dataclasses.replace(p, scale=2.0 * p.scale)
    lay = q.l1._replace(b=q.l1.b * 3.0, W=q.l1.W + 1.0)
    W, b = lay
    return q.scale * np.sum(np.tanh(W @ x + b)) + np.sum(lay.W)


def test_replace_and_namedtuple_replace(rng):
    g = _check(replaced, _net(rng), np.array([0.5, -1.0]))
    _same_structure(g, _net(rng))


def replace_in_loop(p, x):
    for _ in range(3):
        p = p._replace(b=p.b * 0.5 + 0.1)
    return np.sum(p.W @ x + p.b)


def test_replace_in_a_loop(rng):
    p = Layer(rng.normal(size=(2, 2)), rng.normal(size=2))
    _same_structure(_check(replace_in_loop, p, np.array([0.3, 0.8])), p)


def built(W, b, x):
    lay = Layer(W, b=b)
    net = Net(lay, Layer(W.T, x), scale=2.0)
    return np.sum(net.l1.W @ x + net.l1.b) * net.scale + np.sum(net.l2.b)


def test_containers_built_in_the_function(rng):
    _check(built, rng.normal(size=(2, 2)), rng.normal(size=2), np.array([0.3, 0.8]), wrt=(0, 1, 2))


class Params:
    def __init__(self, w, b):
        self.w, self.b = w, b


srcdiff.register_container(Params, lambda p: ((p.w, p.b), None), lambda aux, kids: Params(*kids))


class Tagged:
    """A container whose flatten keeps a tag out of the gradient; attributes named by fields=."""

    def __init__(self, tag, coef):
        self.tag, self.coef = tag, coef


srcdiff.register_container(Tagged, lambda t: ([t.coef], t.tag), lambda tag, kids: Tagged(tag, kids[0]),
                           fields=("coef",))


def registered(p, t, x):
    return np.sum(np.tanh(p.w * x + p.b)) * t.coef


def test_registered_container(rng):
    p = Params(rng.normal(size=2), 0.5)
    t = Tagged("weights", 1.5)
    gp, gt = _check(registered, p, t, np.array([0.3, 0.8]), wrt=(0, 1))
    assert type(gp) is Params and gp.w.shape == (2,) and isinstance(gp.b, float)
    assert type(gt) is Tagged and gt.tag == "weights" and isinstance(gt.coef, float)


class Model:
    def __init__(self, X, y):
        self.X, self.y = X, y

    def predict(self, w):
        return self.X @ w

    @staticmethod
    def square(r):
        return r * r

    def loss(self, w, c=1.0):
        return c * np.sum(self.square(self.predict(w) - self.y))


class Scaled(Model):
    def predict(self, w):
        return 2.0 * (self.X @ w)


def test_bound_method_reads_self_as_constants(rng):
    m = Model(rng.normal(size=(4, 2)), rng.normal(size=4))
    w = np.array([0.3, -0.2])
    _check(m.loss, w)
    assert_grad_ok(m.loss, w, 0.5, wrt=(0, "c"))
    # self.predict() resolves in the object's own class
    s = Scaled(m.X, m.y)
    assert np.allclose(srcdiff.grad(s.loss)(w), 2 * m.X.T @ (2 * m.X @ w - m.y) * 2)
    _check(s.loss, w)


@dataclass
class Linear:
    w: np.ndarray
    b: float

    def loss(self, X, y):
        return np.mean((X @ self.w + self.b - y) ** 2)


def test_wrt_self_of_a_dataclass(rng):
    lin = Linear(np.array([1.0, 2.0]), 0.5)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=5)
    g = _check(lin.loss, X, y, wrt="self")
    assert type(g) is Linear and g.w.shape == (2,) and isinstance(g.b, float)
    gself, gX = srcdiff.grad(lin.loss, wrt=("self", "X"))(X, y)
    assert type(gself) is Linear and gX.shape == X.shape


def test_wrt_self_of_a_plain_class_is_refused(rng):
    m = Model(rng.normal(size=(4, 2)), rng.normal(size=4))
    with pytest.raises(SrcdiffError, match="not a parameter container") as info:
        srcdiff.grad(m.loss, wrt="self")(np.ones(2))
    assert "register_container" in info.value.hint


def loss(w, X, y):
    return np.sum((X @ w - y) ** 2)


def test_grad_of_a_partial(rng):
    X, y = rng.normal(size=(4, 2)), rng.normal(size=4)
    f = functools.partial(loss, X=X, y=y)
    g = _check(f, np.array([0.3, -0.2]))
    assert np.allclose(g, 2 * X.T @ (X @ np.array([0.3, -0.2]) - y))
    _check(functools.partial(loss, np.array([0.3, -0.2])), X, y, wrt="X")
    with pytest.raises(SrcdiffError, match="bound by functools.partial"):
        srcdiff.grad(f, wrt="X")


def uses_partial(w, X, y):
    f = functools.partial(loss, X=X)
    return f(w, y=y) + f(2.0 * w, y=y)


PARTIAL = functools.partial(loss, y=np.array([1.0, -1.0]))


def uses_module_partial(w, X):
    return PARTIAL(w, X)


def test_partial_called_inside(rng):
    X, y = rng.normal(size=(4, 2)), rng.normal(size=4)
    _check(uses_partial, np.array([0.3, -0.2]), X, y, wrt=(0, 1))
    _check(uses_module_partial, np.array([0.3, -0.2]), rng.normal(size=(2, 2)), wrt=(0, 1))


def test_field_named_like_an_array_attribute_is_refused():
    class Odd(NamedTuple):
        T: np.ndarray

    with pytest.raises(SrcdiffError, match="name of an array attribute"):
        srcdiff.grad(lambda p: np.sum(p.T))(Odd(np.ones(2)))


def array_attribute(x):
    return np.sum(x.flat)


def test_unknown_array_attribute_still_refused_at_its_line():
    with pytest.raises(SrcdiffError, match="attribute .flat") as info:
        srcdiff.grad(array_attribute)(np.ones(2))
    assert info.value.lineno is not None


class Pair(NamedTuple):
    W: np.ndarray
    b: float


def replaced_then_unpacked_twice(p, x):
    q = p._replace(b=p.b * 2.0)
    W, b = q
    W2, b2 = q
    return np.sum(W @ x) * b + np.sum(W2) * b2


def test_container_made_inside_is_unpacked_twice():
    # the adjoint of q (built by _replace) is a container: its two contributions are added
    # elementwise, never concatenated
    p = Pair(np.array([[1.0, 2.0], [3.0, 4.0]]), 0.5)
    x = np.array([1.0, -1.0])
    g = srcdiff.grad(replaced_then_unpacked_twice)(p, x)
    assert type(g) is Pair
    assert max(srcdiff.check_grad(replaced_then_unpacked_twice, p, x).values()) < 1e-7
