"""The SciPy rules (``srcdiff/rules/scipy_special.py``, ``scipy_stats.py``)
against central finite differences.

Each rule is checked twice: its templates evaluated directly
(:func:`srcdiff.rules.testing.vjp`) for every differentiable argument, and
through ``srcdiff.grad`` on a small function calling it.  Points include the
edge regions where a careless formula overflows or cancels (large ``|x|`` for
``expit``, ``log_ndtr``, ``logsumexp``, the far tails of ``norm.logcdf``).
A rule without a case fails ``test_every_rule_has_a_case``.

SciPy is optional for srcdiff: ``import srcdiff`` must not import it, and
its rules load only once the user's code has imported SciPy
(``test_import_does_not_load_scipy``, run in a fresh interpreter).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.stats  # noqa: E402
from scipy import special  # noqa: E402
from scipy.stats import norm  # noqa: E402

import srcdiff  # noqa: E402
from srcdiff.rules import TABLE, scipy_special, scipy_stats  # noqa: E402
from srcdiff.rules.testing import bind_values, numeric_vjp, vjp  # noqa: E402

RTOL, ATOL = 1e-6, 1e-8


def a(*v):
    return np.array(v, dtype=float)


@dataclass
class Case:
    fn: Any
    args: tuple
    wrt: tuple[str, ...]
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def __repr__(self):
        rule = TABLE.rule_for(self.fn)
        return rule.name.split(".")[-1] + (f"[{self.label}]" if self.label else "")


BIG = a(-40.0, -12.0, -0.3, 0.0, 0.7, 12.0, 40.0)
M = np.array([[0.3, -1.2, 2.0, 0.1], [5.0, 4.0, -3.0, 0.0], [1000.0, 999.0, 998.5, -1000.0]])
B = np.array([[0.5, 2.0, 1.0, 0.1]])
X = a(-2.0, -0.4, 0.3, 1.1, 2.5)

CASES = [
    # logistic
    Case(special.expit, (BIG,), ("x",)),
    Case(special.expit, (0.37,), ("x",), label="float"),
    Case(special.logit, (a(1e-3, 0.2, 0.5, 0.9, 0.999),), ("x",)),
    Case(special.log_expit, (BIG,), ("x",)),
    # error function and normal distribution
    Case(special.erf, (a(-3.0, -0.5, 0.0, 0.4, 2.5),), ("x",)),
    Case(special.erfc, (a(-3.0, -0.5, 0.0, 0.4, 2.5, 5.0),), ("x",)),
    Case(special.erfinv, (a(-0.99, -0.3, 0.0, 0.5, 0.95),), ("x",)),
    Case(special.erfcinv, (a(0.05, 0.7, 1.0, 1.5, 1.95),), ("x",)),
    Case(special.ndtr, (a(-8.0, -1.0, 0.0, 1.3, 8.0),), ("x",)),
    Case(special.log_ndtr, (a(-40.0, -10.0, -1.0, 0.0, 2.0, 10.0),), ("x",)),
    Case(special.ndtri, (a(1e-3, 0.3, 0.5, 0.9, 0.999),), ("x",)),
    # gamma family
    Case(special.gammaln, (a(0.1, 0.5, 1.0, 3.3, 20.0, -0.5, -2.7),), ("x",)),
    Case(special.digamma, (a(0.1, 1.0, 2.5, 30.0, -0.5),), ("x",)),
    Case(special.gamma, (a(0.3, 1.5, 4.2, -0.5),), ("x",)),
    Case(special.polygamma, (1, a(0.5, 2.0, 7.0)), ("x",)),
    Case(special.polygamma, (np.array([0, 2, 3]), a(0.5, 2.0, 7.0)), ("x",), label="orders"),
    Case(special.betaln, (a(0.5, 2.0, 10.0), a(1.5, 0.3, 4.0)), ("a", "b")),
    Case(special.betaln, (a(0.5, 2.0, 10.0)[:, None], a(1.5, 0.3)), ("a", "b"), label="broadcast"),
    # x log y and entropies
    Case(special.xlogy, (a(0.5, 2.0, 1e-3, 0.0, -1.0), a(0.1, 3.0, 2.0, 0.4, 0.5)), ("x", "y")),
    Case(special.xlogy, (a(0.5, 0.0, 2.0)[:, None], a(0.1, 3.0)), ("x", "y"), label="broadcast"),
    Case(special.xlog1py, (a(0.5, 0.0, 2.0, -1.0), a(-0.5, 0.3, 4.0, 1e-3)), ("x", "y")),
    Case(special.entr, (a(0.01, 0.5, 1.0, 3.0),), ("x",)),
    Case(special.rel_entr, (a(0.2, 1.0, 3.0), a(0.5, 1.0, 0.1)), ("x", "y")),
    Case(special.rel_entr, (a(0.2, 1.0, 3.0), 0.7), ("x", "y"), label="scalar y"),
    # reductions
    Case(special.logsumexp, (M,), ("a",)),
    Case(special.logsumexp, (M,), ("a",), {"axis": 0}, "axis0"),
    Case(special.logsumexp, (M,), ("a",), {"axis": -1, "keepdims": True}, "keepdims"),
    Case(special.logsumexp, (M,), ("a",), {"axis": (0, 1)}, "tuple axis"),
    Case(special.logsumexp, (M[None],), ("a",), {"axis": (0, 2)}, "3d"),
    Case(special.logsumexp, (M[:2], 1), ("a", "b"), {"b": B}, "b"),
    Case(special.logsumexp, (M[:2],), ("a", "b"), {"axis": 1, "b": B}, "b axis"),
    Case(special.logsumexp, (M[:2, :1],), ("a", "b"), {"axis": 1, "b": B, "keepdims": True}, "b broadcasts a"),
    Case(special.logsumexp, (M[:2],), ("a", "b"),
         {"axis": 1, "b": np.array([[0.5, -2.0, 1.0, 0.1]]), "return_sign": True}, "sign"),
    Case(special.softmax, (M,), ("x",)),
    Case(special.softmax, (M,), ("x",), {"axis": 1}, "axis1"),
    Case(special.softmax, (M,), ("x",), {"axis": (0, 1)}, "tuple axis"),
    Case(special.log_softmax, (M,), ("x",)),
    Case(special.log_softmax, (M,), ("x",), {"axis": 0}, "axis0"),
    Case(special.log_softmax, (M,), ("x",), {"axis": -1}, "axis-1"),
    # scipy.stats.norm
    Case(norm.logpdf, (X,), ("x",)),
    Case(norm.logpdf, (X, 0.3, 1.7), ("x", "loc", "scale")),
    Case(norm.logpdf, (X[:, None], a(0.1, -0.5), a(0.8, 2.0)), ("x", "loc", "scale"), label="broadcast"),
    Case(norm.pdf, (X, 0.3, 1.7), ("x", "loc", "scale")),
    Case(norm.pdf, (X,), ("x", "loc", "scale"), {"loc": a(0.1, 0.2, 0.3, 0.4, 0.5), "scale": 0.6}, "keywords"),
    Case(norm.cdf, (X, 0.3, 1.7), ("x", "loc", "scale")),
    Case(norm.logcdf, (a(-60.0, -8.0, -1.0, 0.5, 9.0), 0.3, 1.7), ("x", "loc", "scale")),
    Case(norm.sf, (X, -0.3, 0.7), ("x", "loc", "scale")),
    Case(norm.logsf, (a(-9.0, -0.5, 1.0, 8.0, 60.0), 0.3, 1.7), ("x", "loc", "scale")),
    Case(norm.ppf, (a(0.01, 0.2, 0.5, 0.9, 0.99), 0.3, 1.7), ("q", "loc", "scale")),
]


def _adjoint(ans, rng):
    if isinstance(ans, tuple):  # (value, sign): the sign carries no gradient
        return (_adjoint(ans[0], rng), np.zeros(np.shape(ans[1])))
    shape = np.shape(ans)
    g = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return float(g) if shape == () else g


def _numeric(case, g, param):
    rule = TABLE.rule_for(case.fn)
    values = bind_values(rule, case.args, case.kwargs)
    names = [p.name for p in rule.params if p.name in values]

    def call(v):
        vals = dict(values, **{param: v})
        pos = [vals[p.name] for p in rule.params if p.kind == "pos" and p.name in vals]
        # pass only what the case passed (bound methods take their own defaults)
        given = len(case.args)
        return case.fn(*pos[:given], **{k: vals[k] for k in case.kwargs})

    assert param in names, f"{case!r}: {param} not passed"
    return numeric_vjp(call, (values[param],), {}, g, 0)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_rule_matches_finite_differences(case):
    rng = np.random.default_rng(0)
    ans = case.fn(*case.args, **case.kwargs)
    g = _adjoint(ans, rng)
    # finite differences of sum(g * ans) carry rounding noise ~ 1e-16 * sum|ans| / eps
    atol = max(ATOL, 1e-9 * float(np.sum(np.abs(ans[0] if isinstance(ans, tuple) else ans))))
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        _, grads = vjp(case.fn, *case.args, g=g, **case.kwargs)
    values = bind_values(TABLE.rule_for(case.fn), case.args, case.kwargs)
    for param in case.wrt:
        got = grads[param]
        assert np.shape(got) == np.shape(values[param]), f"{case!r}: gradient of {param} has the wrong shape"
        assert np.all(np.isfinite(got)), f"{case!r}: gradient of {param} is not finite: {got}"
        want = _numeric(case, g, param)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=f"{case!r} w.r.t. {param}")


ALL_RULES = scipy_special.RULES + scipy_stats.RULES


def _key(fn):
    return (id(fn.__func__), id(fn.__self__)) if hasattr(fn, "__func__") else id(fn)


def test_every_rule_has_a_case():
    covered = {_key(c.fn) for c in CASES}
    missing = [r.name for r in ALL_RULES if _key(r.fn) not in covered]
    assert not missing, f"scipy rules without a test case: {missing}"


def test_every_differentiable_parameter_is_checked():
    for rule in ALL_RULES:
        checked = set().union(*[c.wrt for c in CASES if _key(c.fn) == _key(rule.fn)])
        missing = set(rule.grads) - checked
        assert not missing, f"{rule.name}: parameters with a gradient never checked: {missing}"


def test_rules_are_registered_under_their_scipy_names():
    assert len(ALL_RULES) >= 25
    for rule in ALL_RULES:
        assert TABLE.rule_for(rule.fn) is rule, rule.name
        assert rule.name.startswith(("scipy.special.", "scipy.stats.norm.")), rule.name
        assert rule.group in ("scipy.special", "scipy.stats")


STATIC_SAMPLES = [{}, {"axis": None, "b": None, "keepdims": False, "return_sign": False},
                  {"axis": 1, "keepdims": False, "return_sign": True}, {"axis": (0, 1), "keepdims": True},
                  {"return_sign": False}]


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.name)
def test_templates_use_only_known_names(rule):
    import ast

    allowed = {p.name for p in rule.params} | {"g", "ans", "np", "math", "rt"}
    for param, t in rule.grads.items():
        if callable(t) and not getattr(t, "_srcdiff_static", False):
            assert t.__name__.isidentifier() and t.__module__ == "srcdiff.rules.scipy_special"
            continue
        for text in [t] if isinstance(t, str) else [t(st) for st in STATIC_SAMPLES]:
            tree = ast.parse(text, mode="eval")
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            assert names <= allowed, f"{rule.name}, {param}: unknown names {names - allowed} in {text!r}"
            for n in ast.walk(tree):
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("np", "math"):
                    assert hasattr({"np": np, "math": math}[n.value.id], n.attr), text


# -- the same rules through srcdiff.grad ---------------------------------------
W = a(0.7, -1.3, 0.4, 1.1, -0.2)


def c_expit(x):
    return np.sum(np.sin(special.expit(x)))


def c_logit(x):
    return np.sum(W * special.logit(x))


def c_log_expit(x):
    return np.sum(np.sin(special.log_expit(x)))


def c_erf(x):
    return np.sum(W * special.erf(x) + special.erfc(x) ** 2)


def c_erfinv(x, y):
    return np.sum(W * special.erfinv(x) + np.sin(special.erfcinv(y)))


def c_ndtr(x):
    return np.sum(W * special.ndtr(x) + special.log_ndtr(x))


def c_ndtri(x):
    return np.sum(np.sin(special.ndtri(x)))


def c_gamma(x, n):
    return np.sum(W * special.gammaln(x) + special.digamma(x) ** 2 + special.gamma(x) / n)


def c_polygamma(x):
    return np.sum(W * special.polygamma(1, x) + special.polygamma(2, x))


def c_betaln(p, q):
    return np.sum(np.sin(special.betaln(p, q)))


def c_xlogy(x, y):
    return np.sum(np.sin(special.xlogy(x, y) + special.xlog1py(x, y)))


def c_entr(x, y):
    return np.sum(W * special.entr(x)) + np.sum(special.rel_entr(x, y) ** 2)


def c_logsumexp(m, b):
    return (special.logsumexp(m) + np.sum(np.sin(special.logsumexp(m, axis=1)))
            + np.sum(special.logsumexp(m, axis=0, keepdims=True) ** 2)
            + np.sum(np.cos(special.logsumexp(m, axis=-1, b=b))))


def c_logsumexp_sign(m, b):
    r, s = special.logsumexp(m, axis=1, b=b, return_sign=True)
    return np.sum(np.sin(r) * s)


def c_softmax(m):
    return np.sum(np.sin(special.softmax(m, axis=1))) + np.sum(special.softmax(m) ** 2) + np.sum(
        np.cos(special.log_softmax(m, axis=0))) + np.sum(special.log_softmax(m) ** 2)


def c_norm(x, mu, s):
    return (np.sum(norm.logpdf(x, mu, s)) + np.sum(np.sin(scipy.stats.norm.pdf(x, loc=mu, scale=s)))
            + np.sum(scipy.stats.norm.cdf(x, mu, s) ** 2) + np.sum(norm.logcdf(x, mu, scale=s))
            + np.sum(np.sin(norm.sf(x, mu, s))) + np.sum(norm.logsf(x, mu, s)))


def c_norm_default(x):
    return np.sum(norm.logpdf(x)) + np.sum(norm.cdf(x) ** 2)


def c_norm_ppf(q, mu, s):
    return np.sum(np.sin(norm.ppf(q, mu, s)))


POS = a(0.3, 1.5, 2.0, 4.2, 7.5)
UNIT = a(0.05, 0.3, 0.5, 0.8, 0.97)
Mc = np.array([[0.3, -1.2, 2.0], [5.0, 4.0, -3.0], [40.0, 39.0, -38.5]])  # (squares of ~1e3 would drown FD)
COMPILED = [
    (c_expit, (BIG[:5] * 0.5,)), (c_expit, (a(-40.0, -30.0, 0.0, 30.0, 40.0),)), (c_logit, (UNIT,)),
    (c_log_expit, (BIG,)), (c_erf, (X,)), (c_erfinv, (UNIT * 2 - 1, UNIT * 1.5)), (c_ndtr, (X * 4,)),
    (c_ndtr, (a(-40.0, -38.0, -20.0, -9.0, 10.0),)), (c_ndtri, (UNIT,)), (c_gamma, (POS, 2)),
    (c_polygamma, (POS,)), (c_betaln, (POS, POS[::-1])), (c_betaln, (POS[:, None], POS)), (c_xlogy, (POS, UNIT)),
    (c_xlogy, (a(0.5, 0.0, 2.0, 0.0, 1.0), UNIT)), (c_entr, (POS, UNIT)), (c_logsumexp, (Mc, a(0.5, 2.0, 1.5))),
    (c_logsumexp_sign, (Mc, a(0.5, -2.0, 1.5))), (c_softmax, (Mc,)), (c_norm, (X, 0.3, 1.7)),
    (c_norm, (X, a(0.1, -0.2, 0.3, 0.0, 0.5), a(0.5, 1.0, 2.0, 1.5, 0.8))), (c_norm_default, (X,)),
    (c_norm_ppf, (UNIT, 0.3, 1.7)),
]


@pytest.mark.parametrize("fn, args", COMPILED, ids=[f"{f.__name__}-{i}" for i, (f, _) in enumerate(COMPILED)])
def test_compiled_gradient_matches_finite_differences(fn, args):
    wrt = tuple(i for i, v in enumerate(args) if isinstance(v, (float, np.ndarray)))
    errs = srcdiff.check_grad(fn, *args, wrt=wrt)
    assert max(errs.values()) < 1e-6, errs


def test_compiled_code_reads_like_the_templates():
    src = srcdiff.source(srcdiff.grad(c_expit))
    assert "special.expit(x)" in src and "(1.0 - " in src
    src = srcdiff.source(srcdiff.grad(c_gamma))
    assert "gammaln_vjp(" in src and "digamma_vjp(" in src
    src = srcdiff.source(srcdiff.grad(c_logsumexp, wrt=(0, 1)))
    assert "np.expand_dims(" in src


def test_every_spelling_resolves():
    from scipy import stats

    def f1(x, mu, s):
        return np.sum(norm.logpdf(x, mu, s))

    def f2(x, mu, s):
        return np.sum(scipy.stats.norm.logpdf(x, mu, s))

    def f3(x, mu, s):
        return np.sum(stats.norm.logpdf(x, loc=mu, scale=s))

    def f4(x, mu, s):
        return np.sum(special.expit(x) + scipy.special.expit(mu * x) * s)

    x = a(0.2, -1.0, 2.0)
    want = srcdiff.grad(f1, wrt=(0, 1, 2))(x, 0.3, 1.4)
    np.testing.assert_allclose(want[0], -(x - 0.3) / 1.4**2)
    for f in (f2, f3):
        for got, w in zip(srcdiff.grad(f, wrt=(0, 1, 2))(x, 0.3, 1.4), want, strict=True):
            np.testing.assert_allclose(got, w)
    assert max(srcdiff.check_grad(f4, x, 0.3, 1.4, wrt=(0, 1, 2)).values()) < 1e-7
    # a new bound method object on every access, one rule
    assert norm.logpdf is not norm.logpdf
    assert TABLE.rule_for(norm.logpdf) is TABLE.rule_for(scipy.stats.norm.logpdf) is not None
    # other distributions share rv_continuous.logpdf but have no rule
    assert TABLE.rule_for(scipy.stats.t.logpdf) is None


# -- conventions ------------------------------------------------------------------
def test_expit_and_log_ndtr_far_out():
    _, gr = vjp(special.expit, a(-800.0, 800.0))
    np.testing.assert_array_equal(gr["x"], [0.0, 0.0])
    # d/dx log ndtr(x) = pdf(x) / ndtr(x) ~ t + 1/t - 2/t^3 + 10/t^5 with t = -x large
    t = a(1e4, 300.0, 40.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _, gr = vjp(special.log_ndtr, -t)
    # (rtol: at x = -1e4, -x*x/2 - ans cancels down from 5e7, losing 8 digits of 16)
    np.testing.assert_allclose(gr["x"], t + 1 / t - 2 / t**3 + 10 / t**5, rtol=1e-8)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _, gr = vjp(norm.logcdf, a(-1e3, 1e3), 0.0, 1.0)
    np.testing.assert_allclose(gr["x"], [1e3 + 1e-3 - 2e-9, 0.0], rtol=1e-9)


def test_xlogy_at_zero():
    x, y = a(0.0, 0.0, 0.0, 2.0), a(0.0, 0.5, 3.0, 3.0)
    with np.errstate(all="raise"):
        _, gr = vjp(special.xlogy, x, y)
    np.testing.assert_array_equal(gr["y"], [0.0, 0.0, 0.0, 2.0 / 3.0])
    # d/dx x log y is log y wherever y > 0 (also at x == 0); 0 at x == y == 0
    np.testing.assert_allclose(gr["x"], [0.0, np.log(0.5), np.log(3.0), np.log(3.0)])
    with np.errstate(all="raise"):
        _, gr = vjp(special.xlog1py, a(0.0, 0.0, 1.0), a(-1.0, 0.5, 0.5))
    np.testing.assert_allclose(gr["x"], [0.0, np.log1p(0.5), np.log1p(0.5)])
    np.testing.assert_allclose(gr["y"], [0.0, 0.0, 1.0 / 1.5])


def test_softmax_large_values_stay_finite():
    x = a(1000.0, 1001.0, -1000.0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for fn in (special.softmax, special.log_softmax, special.logsumexp):
            _, gr = vjp(fn, x)
            assert np.all(np.isfinite(gr["x" if fn is not special.logsumexp else "a"]))


def test_logsumexp_templates_are_chosen_from_literals():
    t = TABLE.rule_for(special.logsumexp).template
    defaults = {"axis": None, "b": None, "keepdims": False, "return_sign": False}
    assert t("a", defaults) == "g * np.exp(a - ans)"
    assert t("a", dict(defaults, axis=1)) == "np.expand_dims(g, axis) * np.exp(a - np.expand_dims(ans, axis))"
    assert t("a", dict(defaults, axis=1, keepdims=True)) == "g * np.exp(a - ans)"
    assert "g[0]" in t("a", dict(defaults, return_sign=True))
    unknown = t("a", {"b": None})  # axis, keepdims and return_sign computed at run time
    assert "return_sign" in unknown and "keepdims" in unknown


def test_logsumexp_with_run_time_flags():
    def f(m, axis, keep, sign):
        r = special.logsumexp(m, axis=axis, keepdims=keep, return_sign=sign)
        return np.sum(np.sin(r[0] if sign else r))

    m = Mc
    for axis, keep, sign in [(0, False, False), (1, True, False), (None, False, True), (-1, False, True)]:
        got = srcdiff.grad(f)(m, axis, keep, sign)
        want = numeric_vjp(f, (m, axis, keep, sign), {}, 1.0, 0)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _run(code, tmp_path):
    """Run ``code`` in a fresh interpreter, from a file (srcdiff reads the
    functions' source); it must print ok."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_user_rule_replaces_the_builtin_one(tmp_path):
    _run("""
        import numpy as np
        import srcdiff
        from scipy.special import expit
        from srcdiff.rules import TABLE
        srcdiff.defvjp(expit, "x", x="g * 0.0")   # registered before srcdiff ever looked at scipy
        assert TABLE.rule_for(expit).group == "user"
        def f(x):
            return np.sum(expit(x))
        assert np.all(srcdiff.grad(f)(np.ones(3)) == 0.0)
        print("ok")
    """, tmp_path)


def test_import_does_not_load_scipy(tmp_path):
    _run("""
        import sys
        import numpy as np
        import srcdiff
        from srcdiff.rules import TABLE
        assert "scipy" not in sys.modules, "import srcdiff imported scipy"
        def f(x):
            return np.sum(np.tanh(x) ** 2)
        srcdiff.grad(f)(np.ones(3))
        assert "scipy" not in sys.modules, "differentiating numpy code imported scipy"
        assert set(TABLE.lazy) == {"scipy.special", "scipy.stats"}
        from scipy import special
        def h(x):
            return np.sum(special.expit(x))
        srcdiff.grad(h)(np.ones(3))
        assert "scipy.stats" not in sys.modules, "the scipy.special rules imported scipy.stats"
        assert set(TABLE.lazy) == {"scipy.stats"}
        print("ok")
    """, tmp_path)


def test_without_scipy_nothing_changes(tmp_path):
    _run("""
        import sys
        sys.modules["scipy"] = None   # as if SciPy were not installed: importing it fails
        import numpy as np
        import srcdiff
        def f(x):
            return np.sum(np.exp(x) * 2.0)
        g = srcdiff.grad(f)(np.zeros(2))
        assert np.all(g == 2.0)
        print("ok")
    """, tmp_path)


def test_math_module_is_unchanged():
    # the SciPy rules do not touch math.erf and friends
    assert TABLE.rule_for(math.erf).group == "math"
