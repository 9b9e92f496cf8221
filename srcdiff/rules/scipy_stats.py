"""Rules for ``scipy.stats.norm``: ``logpdf``, ``pdf``, ``cdf``, ``logcdf``,
``sf``, ``logsf`` and ``ppf``, differentiable in ``x`` (or ``q``), ``loc``
and ``scale``.

``scipy.stats.norm`` is an object, and ``norm.logpdf`` a bound method that
Python creates anew on every attribute access; the table keys such methods
by their function and object (``registry._key``), so ``norm.logpdf(...)``,
``scipy.stats.norm.logpdf(...)`` and ``stats.norm.logpdf(...)`` all find
the rule.  Loaded lazily, once the user's code has imported ``scipy.stats``.

With ``z = (x - loc) / scale``: ``d/dx = (d/dz) / scale``, ``d/dloc =
-d/dx`` and ``d/dscale = -z * d/dx`` (plus ``-1 / scale`` from the
normalisation of ``logpdf``).  ``logcdf`` and ``logsf`` use
``exp(-z*z/2 - ans)``, stable in the far tails.
"""

from __future__ import annotations

from scipy.stats import norm

from .registry import Rule, defvjp

RULES: list[Rule] = []
GROUP = "scipy.stats"
SIG = "x, loc=0.0, scale=1.0"
XLS = ("x", "loc", "scale")
Z = "((x - loc) / scale)"
SQRT_2PI = "math.sqrt(2.0 * math.pi)"


def _rule(method, dz, negative=False, **kw):
    """A rule for ``norm.<method>`` whose derivative in z is ``dz`` (``-dz``
    when ``negative``)."""
    plus, minus = ("-", "") if negative else ("", "-")
    grads = {"x": f"{plus}g * {dz} / scale", "loc": f"{minus}g * {dz} / scale",
             "scale": f"{minus}g * {dz} / scale * {Z}"}
    grads.update(kw)
    RULES.append(defvjp(getattr(norm, method), SIG, group=GROUP, name="scipy.stats.norm." + method,
                        unbroadcast=XLS, **grads))


PDF = f"np.exp(-0.5 * {Z} ** 2) / {SQRT_2PI}"  # the standard normal density at z
# (log)pdf also depends on scale through its normalisation, 1 / scale
_rule("logpdf", Z, negative=True, scale=f"g * ({Z} ** 2 - 1.0) / scale")
_rule("pdf", f"ans * {Z}", negative=True, scale=f"g * ans * ({Z} ** 2 - 1.0) / scale")
_rule("cdf", PDF)
_rule("logcdf", f"np.exp(-0.5 * {Z} ** 2 - ans) / {SQRT_2PI}")
_rule("sf", PDF, negative=True)
_rule("logsf", f"np.exp(-0.5 * {Z} ** 2 - ans) / {SQRT_2PI}", negative=True)
RULES.append(defvjp(norm.ppf, "q, loc=0.0, scale=1.0", group=GROUP, name="scipy.stats.norm.ppf",
                    unbroadcast=("q", "loc", "scale"),
                    q=f"g * scale * {SQRT_2PI} * np.exp(0.5 * ((ans - loc) / scale) ** 2)",
                    loc="g", scale="g * (ans - loc) / scale", aliases=("loc",)))
