"""The NumPy elementwise rules against central finite differences.

``CASES`` lists every differentiable elementwise rule with a domain for each
argument (points away from kinks, branch points and jumps).  A rule added to
the table without a case here fails ``test_every_rule_has_a_case``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from srcdiff.rules import TABLE
from srcdiff.rules.testing import numeric_vjp, vjp

RTOL, ATOL = 1e-6, 1e-8
E = "elementwise"


# -- domains: how to draw one argument ------------------------------------
@dataclass(frozen=True)
class Domain:
    draw: Callable[[np.random.Generator, tuple], Any]  # (rng, shape) -> array
    diff: bool = True  # compare this argument's gradient with finite differences
    kind: type = float


def interval(lo, hi):
    return Domain(lambda rng, shape: rng.uniform(lo, hi, shape))


def away_from_zero(lo, hi):
    """|x| in (lo, hi), either sign."""
    return Domain(lambda rng, shape: rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape))


def _with_nonfinite(rng, shape):
    x = rng.uniform(-2, 2, shape)
    special = rng.choice([np.nan, np.inf, -np.inf], shape)
    return np.where(rng.uniform(size=shape) < 0.3, special, x)


R = interval(-2.0, 2.0)
P = interval(0.2, 3.0)
NZ = away_from_zero(0.2, 2.0)
U = interval(-0.9, 0.9)
GT1 = interval(1.1, 3.0)
NONFINITE = Domain(_with_nonfinite)
BOOL = Domain(lambda rng, shape: rng.uniform(size=shape) < 0.5, diff=False, kind=bool)
INT = Domain(lambda rng, shape: rng.integers(-3, 4, shape), diff=False, kind=int)


def const(v):
    return Domain(lambda rng, shape: v, diff=False, kind=type(v))


# -- validity conditions (keep finite differences away from jumps and ties) --
def apart(x1, x2):
    return np.all(np.abs(np.subtract(x1, x2)) > 0.01)


def off_integer_ratio(x1, x2):
    r = np.divide(x1, x2)
    return np.all(np.abs(r - np.round(r)) > 1e-3)


def inside_clip(a, lo, hi):
    return apart(a, lo) and apart(a, hi)


@dataclass
class Case:
    fn: Any
    domains: tuple
    ok: Callable[..., bool] | None = None
    arrays: int | None = None  # leading args drawn with (broadcast) shapes; the rest are scalars
    kwargs: dict = field(default_factory=dict)

    @property
    def n_arrays(self):
        return len(self.domains) if self.arrays is None else self.arrays

    def __repr__(self):
        return TABLE.rule_for(self.fn).name


CASES = [
    # arithmetic
    Case(np.add, (R, R)),
    Case(np.subtract, (R, R)),
    Case(np.multiply, (R, R)),
    Case(np.divide, (R, NZ)),
    Case(np.negative, (R,)),
    Case(np.positive, (R,)),
    Case(np.reciprocal, (NZ,)),
    Case(np.square, (R,)),
    Case(np.sqrt, (P,)),
    Case(np.cbrt, (NZ,)),
    Case(np.power, (P, R)),
    Case(np.float_power, (P, R)),
    # exponentials and logarithms
    Case(np.exp, (R,)),
    Case(np.exp2, (R,)),
    Case(np.expm1, (R,)),
    Case(np.log, (P,)),
    Case(np.log2, (P,)),
    Case(np.log10, (P,)),
    Case(np.log1p, (interval(-0.5, 2.0),)),
    Case(np.logaddexp, (R, R)),
    Case(np.logaddexp2, (R, R)),
    # trigonometric
    Case(np.sin, (R,)),
    Case(np.cos, (R,)),
    Case(np.tan, (interval(-1.2, 1.2),)),
    Case(np.arcsin, (U,)),
    Case(np.arccos, (U,)),
    Case(np.arctan, (R,)),
    Case(np.arctan2, (NZ, NZ)),
    Case(np.hypot, (NZ, NZ)),
    Case(np.sinc, (R,)),
    Case(np.deg2rad, (R,)),
    Case(np.radians, (R,)),
    Case(np.rad2deg, (R,)),
    Case(np.degrees, (R,)),
    # hyperbolic
    Case(np.sinh, (R,)),
    Case(np.cosh, (R,)),
    Case(np.tanh, (R,)),
    Case(np.arcsinh, (R,)),
    Case(np.arccosh, (GT1,)),
    Case(np.arctanh, (U,)),
    # sign, magnitude, remainders
    Case(np.absolute, (NZ,)),
    Case(np.fabs, (NZ,)),
    Case(np.copysign, (NZ, NZ)),
    Case(np.remainder, (R, NZ), ok=off_integer_ratio),
    Case(np.fmod, (R, NZ), ok=off_integer_ratio),
    Case(np.ldexp, (R, INT)),
    # selection
    Case(np.maximum, (R, R), ok=apart),
    Case(np.minimum, (R, R), ok=apart),
    Case(np.fmax, (R, R), ok=apart),
    Case(np.fmin, (R, R), ok=apart),
    Case(np.where, (BOOL, R, R)),
    Case(np.clip, (interval(-3.0, 3.0), interval(-2.0, -0.5), interval(0.5, 2.0)), ok=inside_clip),
    Case(np.nan_to_num, (NONFINITE, const(True), R, R, R), arrays=1),
    # real parts of real arguments
    Case(np.real, (R,)),
    Case(np.conjugate, (R,)),
    Case(np.real_if_close, (R,)),
]

# Other spellings: the same object in NumPy 2 (nothing to add), a copy of the
# rule under a distinct object in older NumPy (tested like the original).
ALIASES = {"true_divide": np.divide, "abs": np.absolute, "mod": np.remainder, "pow": np.power,
           "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
           "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "conj": np.conjugate}
for _name, _orig in ALIASES.items():
    _alias = getattr(np, _name, None)
    if _alias is not None and _alias is not _orig:
        CASES.append(replace(next(c for c in CASES if c.fn is _orig), fn=_alias))

MULTI = [c for c in CASES if c.n_arrays > 1]

# broadcasting combinations that must always work
BROADCAST = {
    2: [((3, 1), (4,)), ((4,), (3, 1)), ((1,), (2, 3)), ((2, 3), (1,)), ((), (2, 3)), ((2, 3), ()),
        ((), ()), ((3,), (3,))],
    3: [((2, 3), (), ()), ((), (3,), (2, 1)), ((3, 1), (4,), (1,)), ((), (), ()), ((2, 1), (1, 3), (3,))],
}
UNARY_SHAPES = [(), (1,), (3,), (2, 3), (3, 1)]


def shapes_for(case):
    n = case.n_arrays
    if n == 1:
        return st.sampled_from(UNARY_SHAPES).map(lambda s: (s,))
    drawn = mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3, max_side=3)
    return st.one_of(st.sampled_from(BROADCAST[n]), drawn.map(lambda r: r.input_shapes))


def make_args(case, shapes, rng):
    shapes = tuple(shapes) + ((),) * (len(case.domains) - len(shapes))
    args = []
    for dom, shape in zip(case.domains, shapes, strict=True):
        v = dom.draw(rng, shape)
        args.append(dom.kind(v) if shape == () else v)  # scalars as Python numbers
    return tuple(args)


def adjoint(ans, rng):
    """A random adjoint with magnitudes in (0.5, 1.5), shaped like ``ans``."""
    shape = np.shape(ans)
    g = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return float(g) if shape == () else g


def check(case, args):
    rule = TABLE.rule_for(case.fn)
    rng = np.random.default_rng(0)
    g = adjoint(case.fn(*args, **case.kwargs), rng)
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        _, grads = vjp(case.fn, *args, g=g, **case.kwargs)
    positional = [p.name for p in rule.params if p.kind == "pos"]
    compared = 0
    for i, (param, dom) in enumerate(zip(positional, case.domains, strict=False)):
        if param not in rule.grads or not dom.diff:
            continue
        got = grads[param]
        assert np.shape(got) == np.shape(args[i]), f"{rule.name}: gradient of {param} has the wrong shape"
        if isinstance(got, np.ndarray) and isinstance(g, np.ndarray) and np.shares_memory(got, g):
            assert param in rule.aliases, f"{rule.name}: gradient of {param} aliases g; list it in aliases="
        want = numeric_vjp(case.fn, args, case.kwargs, g, i)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{rule.name} w.r.t. {param}")
        compared += 1
    assert compared, f"{rule.name}: no gradient compared"


@pytest.mark.parametrize("case", CASES, ids=repr)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_rule_matches_finite_differences(case, data):
    shapes = data.draw(shapes_for(case), label="shapes")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    args = make_args(case, shapes, np.random.default_rng(seed))
    if case.ok is not None:
        assume(case.ok(*args[: case.n_arrays]))
    check(case, args)


@pytest.mark.parametrize("case", MULTI, ids=repr)
def test_rule_broadcasts(case):
    rng = np.random.default_rng(1)
    for shapes in BROADCAST[case.n_arrays]:
        for _ in range(50):  # redraw until the case's validity condition holds
            args = make_args(case, shapes, rng)
            if case.ok is None or case.ok(*args[: case.n_arrays]):
                break
        check(case, args)


@pytest.mark.parametrize("case", [c for c in CASES if c.fn is not np.float_power], ids=repr)
def test_float32_stays_float32(case):
    rng = np.random.default_rng(3)
    for _ in range(50):
        args = make_args(case, [(2, 3)] * case.n_arrays, rng)
        if case.ok is None or case.ok(*args[: case.n_arrays]):
            break
    args = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == float else a for a in args)
    g = np.ones(np.shape(case.fn(*args, **case.kwargs)), np.float32)
    _, grads = vjp(case.fn, *args, g=g, **case.kwargs)
    params = [p.name for p in TABLE.rule_for(case.fn).params]
    for param, dom, a in zip(params, case.domains, args, strict=False):
        if param in grads and dom.diff and isinstance(a, np.ndarray):
            assert grads[param].dtype == np.float32, f"{param}: {grads[param].dtype}"

def test_every_rule_has_a_case():
    covered = {id(c.fn) for c in CASES}
    missing = [r.name for r in TABLE.functions.values() if r.group == E and id(r.fn) not in covered]
    assert not missing, f"elementwise rules without a test case: {missing}"


# -- the templates themselves ---------------------------------------------
STATIC_SAMPLES = [{}, {"x2": 0}, {"x2": 1}, {"x2": 2}, {"x2": 3}, {"x2": -1}, {"x2": 0.5}, {"x2": 2.5},
                  {"x2": 3.0}, {"x2": None}]


def _templates(rule):
    for param, t in rule.grads.items():
        if isinstance(t, str):
            yield param, t
        elif getattr(t, "_srcdiff_static", False):
            for s in STATIC_SAMPLES:
                yield param, t(s)


@pytest.mark.parametrize("rule", [r for r in TABLE.functions.values() if r.group == E], ids=lambda r: r.name)
def test_templates_use_only_known_names(rule):
    allowed = {p.name for p in rule.params} | {"g", "ans", "np", "math", "rt"}
    modules = {"np": np, "math": math}
    for param, t in _templates(rule):
        tree = ast.parse(t, mode="eval")
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert names <= allowed, f"{rule.name}, {param}: unknown names {names - allowed} in {t!r}"
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in modules:
                assert hasattr(modules[n.value.id], n.attr), f"{rule.name}: {n.value.id}.{n.attr}"


@pytest.mark.parametrize("rule", [r for r in TABLE.functions.values() if r.group == E], ids=lambda r: r.name)
def test_binary_rules_unbroadcast(rule):
    if [p.name for p in rule.params] == ["x1", "x2"]:
        assert set(rule.grads) <= rule.unbroadcast


# -- conventions and special points -----------------------------------------
@pytest.mark.parametrize("fn", [np.power, np.float_power], ids=lambda f: f.__name__)
@pytest.mark.parametrize("b", [0, 1, 2, 3, -1, 0.5, 2.5, 3.0, -2.0])
def test_power_literal_exponent(fn, b):
    rng = np.random.default_rng(2)
    x = (P if b == 0.5 or b == 2.5 else NZ).draw(rng, (2, 3))
    g = adjoint(x, rng)
    with np.errstate(invalid="ignore"):  # the exponent's gradient: log of a negative base
        _, grads = vjp(fn, x, b, g=g)
    np.testing.assert_allclose(grads["x1"], numeric_vjp(fn, (x, b), {}, g, 0), rtol=RTOL, atol=ATOL)
    assert np.shape(grads["x1"]) == x.shape


def test_power_literal_templates_are_short():
    t = TABLE.rule_for(np.power).template
    assert t("x1", {"x2": 2}) == "g * 2 * x1"
    assert t("x1", {"x2": 1}) == "g"
    assert t("x1", {"x2": 3}) == "g * 3 * x1 ** 2"
    assert t("x1", {"x2": 0.5}) == "g * 0.5 / ans"
    assert t("x1", {}) == "g * x2 * np.power(x1, x2 - 1.0)"


def test_power_exponent_gradient_at_zero_base():
    _, grads = vjp(np.power, np.array([0.0, 2.0]), np.array([1.5, 1.5]))
    np.testing.assert_allclose(grads["x2"], [0.0, 2.0**1.5 * np.log(2.0)])


def test_power_integer_arrays():
    x, y = np.array([1, 2, 3]), np.array([0, 1, 2])
    _, grads = vjp(np.power, x, y)
    np.testing.assert_allclose(grads["x1"], [0.0, 1.0, 6.0])


@pytest.mark.parametrize("fn", [np.maximum, np.minimum, np.fmax, np.fmin], ids=lambda f: f.__name__)
def test_extremum_ties_split(fn):
    _, grads = vjp(fn, np.array([1.0, 2.0]), np.array([1.0, 2.0]), g=np.array([2.0, 4.0]))
    np.testing.assert_array_equal(grads["x1"], [1.0, 2.0])
    np.testing.assert_array_equal(grads["x2"], [1.0, 2.0])


@pytest.mark.parametrize("fn", [np.fmax, np.fmin], ids=lambda f: f.__name__)
def test_fmax_fmin_skip_nan(fn):
    _, grads = vjp(fn, np.array([np.nan, 1.0]), np.array([2.0, np.nan]), g=np.array([3.0, 5.0]))
    np.testing.assert_array_equal(grads["x1"], [0.0, 5.0])
    np.testing.assert_array_equal(grads["x2"], [3.0, 0.0])


def test_maximum_nan_gives_no_gradient():
    _, grads = vjp(np.maximum, np.array([np.nan, 1.0]), np.array([2.0, 0.0]))
    np.testing.assert_array_equal(grads["x1"], [0.0, 1.0])
    np.testing.assert_array_equal(grads["x2"], [0.0, 0.0])


def test_clip_bounds_inclusive_for_a():
    a = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    _, grads = vjp(np.clip, a, -1.0, 1.0)
    np.testing.assert_array_equal(grads["a"], [0.0, 1.0, 1.0, 1.0, 0.0])
    assert grads["a_min"] == 1.0 and grads["a_max"] == 1.0


def test_clip_equal_bounds_do_not_double_count():
    _, grads = vjp(np.clip, np.array([-1.0, 0.0, 1.0]), 0.0, 0.0)
    assert grads["a_min"] + grads["a_max"] + np.sum(grads["a"]) == 3.0


@pytest.mark.parametrize("lo, hi", [(None, 0.5), (-0.5, None)])
def test_clip_one_sided(lo, hi):
    a = np.array([-1.3, -0.2, 0.3, 1.1])
    g = np.array([1.0, -2.0, 3.0, 0.5])
    _, grads = vjp(np.clip, a, lo, hi, g=g)
    np.testing.assert_allclose(grads["a"], numeric_vjp(np.clip, (a, lo, hi), {}, g, 0), rtol=RTOL, atol=ATOL)
    bound = 1 if lo is not None else 2
    num = numeric_vjp(np.clip, (a, lo, hi), {}, g, bound)
    np.testing.assert_allclose(grads["a_min" if lo is not None else "a_max"], num, rtol=RTOL, atol=ATOL)


def test_clip_min_max_keywords():
    try:
        np.clip(1.0, min=0.0, max=2.0)
    except TypeError:
        pytest.skip("np.clip has no min=/max= in this NumPy")
    a = np.array([[-1.3, -0.2], [0.3, 1.1]])
    lo, hi = np.array([-0.5, -0.4]), 0.5
    g = np.array([[1.0, -2.0], [3.0, 0.5]])
    _, grads = vjp(np.clip, a, min=lo, max=hi, g=g)

    def call(a, lo, hi):
        return np.clip(a, min=lo, max=hi)

    for i, p in enumerate(["a", "min", "max"]):
        np.testing.assert_allclose(grads[p], numeric_vjp(call, (a, lo, hi), {}, g, i), rtol=RTOL, atol=ATOL)
        assert np.shape(grads[p]) == np.shape((a, lo, hi)[i])


def test_where_scalar_branches():
    cond = np.array([[True, False, True]])
    _, grads = vjp(np.where, cond, 2.0, np.array([1.0, 2.0, 3.0]), g=np.array([[1.0, 2.0, 4.0]]))
    assert grads["x"] == 5.0
    np.testing.assert_array_equal(grads["y"], [0.0, 2.0, 0.0])


def test_sinc_at_zero():
    with np.errstate(all="raise"):
        _, grads = vjp(np.sinc, np.array([0.0, 0.5]))
    np.testing.assert_allclose(grads["x"], [0.0, -4.0 / np.pi])


def test_abs_at_zero_is_zero():
    for fn in (np.abs, np.fabs):
        _, grads = vjp(fn, np.array([0.0, -3.0]))
        np.testing.assert_array_equal(grads["x"], [0.0, -1.0])


def test_nan_to_num_passes_finite_only():
    x = np.array([1.0, np.nan, np.inf, -np.inf])
    _, grads = vjp(np.nan_to_num, x, g=np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(grads["x"], [1.0, 0.0, 0.0, 0.0])
    assert (grads["nan"], grads["posinf"], grads["neginf"]) == (2.0, 3.0, 4.0)


def test_add_returns_g_itself():
    g = np.ones(3)
    _, grads = vjp(np.add, np.zeros(3), np.zeros(3), g=g)
    assert grads["x1"] is g and grads["x2"] is g


# -- registration ---------------------------------------------------------
def test_aliases_share_the_rule():
    for name, orig in ALIASES.items():
        alias = getattr(np, name, None)
        if alias is None:
            continue
        rule = TABLE.rule_for(alias)
        assert rule is not None, f"np.{name} has no rule"
        assert rule.grads == TABLE.rule_for(orig).grads
        if alias is orig:
            assert f"np.{name}" in rule.note  # listed once, as "also np.<alias>"


NONDIFF = """sign heaviside floor ceil rint trunc fix round around floor_divide isnan isfinite isinf
    isposinf isneginf signbit greater greater_equal less less_equal equal not_equal
    logical_and logical_or logical_xor logical_not imag angle iscomplex isreal""".split()


@pytest.mark.parametrize("name", NONDIFF)
def test_nondifferentiable(name):
    fn = getattr(np, name)
    assert TABLE.is_nondiff(fn) and TABLE.rule_for(fn) is None



# -- the builtin pow ----------------------------------------------------------
def _pow2(base, exp):
    return pow(base, exp)


@pytest.mark.parametrize("exp", [2, 3, 0.5, -1.5, 1, 2.7])
@pytest.mark.parametrize("base", [0.3, 1.7, 4.0])
def test_builtin_pow(base, exp):
    rule = TABLE.rule_for(pow)
    assert rule is not None and rule.name == "pow"
    _, grads = vjp(pow, base, exp)
    assert math.isclose(grads["base"], numeric_vjp(_pow2, (base, exp), {}, 1.0, 0), rel_tol=RTOL, abs_tol=ATOL)
    assert math.isclose(grads["exp"], numeric_vjp(_pow2, (base, exp), {}, 1.0, 1), rel_tol=RTOL, abs_tol=ATOL)
    # the literal-exponent shortcut chosen when compiling agrees
    ns = {"g": 1.0, "ans": pow(base, exp), "base": base, "exp": exp, "np": np, "math": math}
    short = eval(rule.template("base", {"exp": exp, "mod": None}), ns)  # noqa: S307
    assert math.isclose(short, grads["base"], rel_tol=1e-12)


def test_builtin_pow_arrays_broadcast():
    base = np.array([[0.5, 1.5, 2.0]])
    exp = np.array([[1.0], [2.5]])
    g = np.array([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0]])
    _, grads = vjp(pow, base, exp, g=g)
    np.testing.assert_allclose(grads["base"], numeric_vjp(_pow2, (base, exp), {}, g, 0), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grads["exp"], numeric_vjp(_pow2, (base, exp), {}, g, 1), rtol=RTOL, atol=ATOL)


def test_builtin_pow_three_arguments_has_no_gradient():
    rule = TABLE.rule_for(pow)
    assert rule.template("base", {"mod": 7}) == "0.0 * g"
    assert rule.template("exp", {"mod": 7}) == "0.0 * g"
    _, grads = vjp(pow, 3, 4, 5)
    assert grads == {"base": 0.0, "exp": 0.0}


def test_builtin_pow_compiles():
    import srcdiff

    def f(x, e):
        return pow(x, 3) + pow(x, e) * pow(2, 5, 3)

    gx, ge = srcdiff.grad(f, wrt=(0, 1))(1.3, 0.7)
    assert math.isclose(gx, 3 * 1.3**2 + 2 * 0.7 * 1.3 ** -0.3, rel_tol=1e-12)
    assert math.isclose(ge, 2 * 1.3**0.7 * math.log(1.3), rel_tol=1e-12)
    assert "x ** 2" in srcdiff.source(srcdiff.grad(f))
