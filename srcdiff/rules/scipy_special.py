"""Rules for ``scipy.special``.

Loaded lazily (see ``lazy_rules`` in :mod:`srcdiff.rules.registry`): the
first time the rules table is consulted after the user's code has imported
``scipy.special``.  srcdiff itself never imports SciPy.

Most gradients are NumPy expressions in the result ``ans``, which keeps them
cheap and stable: ``expit`` uses ``ans * (1 - ans)``; ``log_ndtr`` uses
``exp(-x*x/2 - ans) / sqrt(2 pi)``, which stays accurate for very negative
``x`` where ``ndtr(x)`` underflows.  The ones that need another special
function (``gammaln``, ``digamma``, ``betaln``, ``gamma``, ``polygamma``)
are small Python functions that the generated code calls by name.
"""

from __future__ import annotations

import scipy.special as sc

from .registry import Rule, defvjp, static_template

RULES: list[Rule] = []  # every rule registered here (the tests check each one has a case)
GROUP = "scipy.special"
XY = ("x", "y")
SQRT_PI = "math.sqrt(math.pi)"
SQRT_2PI = "math.sqrt(2.0 * math.pi)"


def _rule(fn, signature, name=None, **kw):
    name = "scipy.special." + (name or fn.__name__)
    RULES.append(defvjp(fn, signature, group=GROUP, name=name, **kw))


# -- logistic --
_rule(sc.expit, "x", x="g * ans * (1.0 - ans)")
_rule(sc.logit, "x", x="g / (x * (1.0 - x))")
# d/dx log(expit(x)) = 1 - expit(x) = -expm1(ans), accurate when ans is near 0 (large x)
_rule(sc.log_expit, "x", x="-g * np.expm1(ans)")

# -- error function and the normal distribution --
_rule(sc.erf, "x", x=f"g * (2.0 / {SQRT_PI}) * np.exp(-x * x)")
_rule(sc.erfc, "x", x=f"-g * (2.0 / {SQRT_PI}) * np.exp(-x * x)")
_rule(sc.erfinv, "x", x=f"g * (0.5 * {SQRT_PI}) * np.exp(ans * ans)")
_rule(sc.erfcinv, "x", x=f"-g * (0.5 * {SQRT_PI}) * np.exp(ans * ans)")
_rule(sc.ndtr, "x", x=f"g * np.exp(-0.5 * x * x) / {SQRT_2PI}")
_rule(sc.log_ndtr, "x", x=f"g * np.exp(-0.5 * x * x - ans) / {SQRT_2PI}",
      note="computed from ans: stable for very negative x")
_rule(sc.ndtri, "x", x=f"g * {SQRT_2PI} * np.exp(0.5 * ans * ans)")


# -- gamma family: the derivatives are other special functions --
def gammaln_vjp(g, ans, x):
    return g * sc.digamma(x)


def digamma_vjp(g, ans, x):
    return g * sc.polygamma(1, x)


def gamma_vjp(g, ans, x):
    return g * ans * sc.digamma(x)


def polygamma_vjp(g, ans, n, x):
    return g * sc.polygamma(n + 1, x)


def betaln_vjp_a(g, ans, a, b):
    return g * (sc.digamma(a) - sc.digamma(a + b))


def betaln_vjp_b(g, ans, a, b):
    return g * (sc.digamma(b) - sc.digamma(a + b))


_rule(sc.gammaln, "x", x=gammaln_vjp, note="log|gamma(x)|; gradient digamma(x)")
_rule(sc.digamma, "x", name="digamma", x=digamma_vjp, note="also scipy.special.psi; gradient polygamma(1, x)")
_rule(sc.gamma, "x", x=gamma_vjp)
_rule(sc.polygamma, "n, x", x=polygamma_vjp, note="n is an integer order, not differentiable")
_rule(sc.betaln, "a, b", a=betaln_vjp_a, b=betaln_vjp_b, unbroadcast=("a", "b"))

# -- x * log(y) and entropies --
# xlogy(0, y) is 0 for every y, even y == 0.  Where x == 0 the gradient for
# y is 0 (not 0 / 0); the gradient for x is log(y), and 0 at the corner
# x == y == 0, where xlogy has no derivative (not -inf).
_rule(sc.xlogy, "x, y", x="g * np.log(np.where((x == 0) & (y == 0), 1.0, y))",
      y="g * x / np.where(x == 0, 1.0, y)", unbroadcast=XY,
      note="where x == 0: gradient 0 for y, and 0 for x at y == 0")
_rule(sc.xlog1py, "x, y", x="g * np.log1p(np.where((x == 0) & (y == -1), 0.0, y))",
      y="g * x / np.where(x == 0, 1.0, 1.0 + y)", unbroadcast=XY,
      note="where x == 0: gradient 0 for y, and 0 for x at y == -1")
_rule(sc.entr, "x", x="-g * (np.log(x) + 1.0)", note="-x log x; x > 0 (the gradient is inf at 0)")
_rule(sc.rel_entr, "x, y", x="g * (np.log(x / y) + 1.0)", y="-g * x / y", unbroadcast=XY,
      note="x log(x / y); x, y > 0")


# -- reductions over an axis --
def _expand(v, s):
    """``v`` (shaped like a reduction's result) as an expression that
    broadcasts against the reduced array, chosen from the literal ``axis``
    and ``keepdims`` when the call has them."""
    keep, axis = s.get("keepdims", 0), s.get("axis", 0)
    if keep is True or (keep is False and axis is None):
        return v
    if keep is False and isinstance(axis, (int, tuple)) and not isinstance(axis, bool):
        return f"np.expand_dims({v}, axis)"
    return f"({v} if keepdims or axis is None else np.expand_dims({v}, axis))"


def _logsumexp(wrt):
    """Gradient of ``logsumexp(a, axis, b, keepdims, return_sign)``:
    ``b * exp(a - ans)`` times the (expanded) adjoint, and the result's sign
    when ``return_sign=True`` (then ``ans`` and ``g`` are pairs)."""

    @static_template
    def template(s):
        sign = s.get("return_sign", 0)
        if sign is False:
            val, adj, factor = "ans", "g", ""
        elif sign is True:
            val, adj, factor = "ans[0]", "g[0]", " * " + _expand("ans[1]", s)
        else:  # return_sign is not a literal: decide when running
            val, adj = "(ans[0] if return_sign else ans)", "(g[0] if return_sign else g)"
            factor = " * " + _expand("(ans[1] if return_sign else 1.0)", s)
        out = f"{_expand(adj, s)} * np.exp(a - {_expand(val, s)}){factor}"
        if s.get("b", 0) is None:
            return out
        # a and b broadcast together before the reduction: reduce each one's
        # gradient to its shape here (``unbroadcast=`` assumes the result's shape)
        if wrt == "a":
            return f"rt.unbroadcast({out} * b, a)"
        return f"rt.unbroadcast({out} * np.ones_like(b), b)"

    return template


_rule(sc.logsumexp, "a, axis=None, b=None, keepdims=False, return_sign=False",
      a=_logsumexp("a"), b=_logsumexp("b"),
      note="b broadcasts with a; return_sign=True gives g as a pair (the sign has no gradient)")
_rule(sc.softmax, "x, axis=None", x="ans * (g - np.sum(g * ans, axis=axis, keepdims=True))")
_rule(sc.log_softmax, "x, axis=None", x="g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)")
