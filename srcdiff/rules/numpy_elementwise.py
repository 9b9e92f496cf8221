"""NumPy elementwise functions (ufuncs and friends).

Conventions at points where a function has no derivative (kinks, ties,
jumps) are chosen to be simple and are stated in each rule's ``note``:
``abs``/``fabs`` give 0 at 0, ties of ``maximum``/``minimum`` split the
gradient equally, ``clip`` passes the gradient to ``a`` where ``a`` lies on a
bound.  Step functions (``floor``, ``sign``, comparisons ...) are declared
non-differentiable: their results are constants.
"""

import numpy as np

from .registry import TABLE, defvjp, nondifferentiable, static_template

E = "elementwise"
XX = ("x1", "x2")  # unbroadcast both arguments of a binary ufunc

# -- arithmetic --
defvjp(np.add, "x1, x2", x1="g", x2="g", unbroadcast=XX, aliases=XX, group=E, facts=dict(linear=True))
defvjp(np.subtract, "x1, x2", x1="g", x2="-g", unbroadcast=XX, aliases=("x1",), group=E, facts=dict(linear=True))
defvjp(np.multiply, "x1, x2", x1="g * x2", x2="g * x1", unbroadcast=XX, group=E)
defvjp(np.divide, "x1, x2", x1="g / x2", x2="-g * ans / x2", unbroadcast=XX, group=E)
defvjp(np.negative, "x", x="-g", group=E, facts=dict(linear=True))
defvjp(np.positive, "x", x="g", aliases=("x",), group=E, facts=dict(linear=True))
defvjp(np.reciprocal, "x", x="-g * ans * ans", group=E, note="float arguments")
defvjp(np.square, "x", x="g * 2.0 * x", group=E)
defvjp(np.sqrt, "x", x="g * 0.5 / ans", group=E)
defvjp(np.cbrt, "x", x="g / (3.0 * ans * ans)", group=E)


def _power_base(power):
    """Gradient of ``power(x1, x2)`` w.r.t. the base, specialised for a
    literal exponent (``np.power(x, 2)`` -> ``g * 2 * x``)."""

    @static_template
    def template(s):
        b = s.get("x2")
        if isinstance(b, (int, float)) and not isinstance(b, bool) and float(b).is_integer():
            if b == 0:
                return "0.0 * g"
            if b == 1:
                return "g"
            if b == 2:
                return f"g * {b!r} * x1"
            if power == "np.power":  # exact integer exponent: x ** 3 -> 3 * x ** 2
                return f"g * {b!r} * x1 ** {b - 1!r}"
        if b == 0.5:
            return "g * 0.5 / ans"
        return f"g * x2 * {power}(x1, x2 - 1.0)"

    return template


# d/dx2 x1 ** x2 = ans * log(x1); at x1 == 0 the result is 0 (or 1, or inf)
# whatever x2 is near, so log(0) is replaced by log(1) to give 0, not nan.
_POWER_EXPONENT = "g * ans * np.log(np.where(x1 == 0, 1.0, x1))"
_POWER_NOTE = "the exponent's gradient is 0 where x1 == 0 and nan where x1 < 0"
defvjp(np.power, "x1, x2", x1=_power_base("np.power"), x2=_POWER_EXPONENT,
       unbroadcast=XX, group=E, note=_POWER_NOTE)
defvjp(np.float_power, "x1, x2", x1=_power_base("np.float_power"), x2=_POWER_EXPONENT,
       unbroadcast=XX, group=E, note=_POWER_NOTE)

# -- exponentials and logarithms --
defvjp(np.exp, "x", x="g * ans", group=E)
defvjp(np.exp2, "x", x="g * ans * math.log(2.0)", group=E)
defvjp(np.expm1, "x", x="g * (ans + 1.0)", group=E)
defvjp(np.log, "x", x="g / x", group=E)
defvjp(np.log2, "x", x="g / (x * math.log(2.0))", group=E)
defvjp(np.log10, "x", x="g / (x * math.log(10.0))", group=E)
defvjp(np.log1p, "x", x="g / (1.0 + x)", group=E)
defvjp(np.logaddexp, "x1, x2", x1="g * np.exp(x1 - ans)", x2="g * np.exp(x2 - ans)",
       unbroadcast=XX, group=E)
defvjp(np.logaddexp2, "x1, x2", x1="g * np.exp2(x1 - ans)", x2="g * np.exp2(x2 - ans)",
       unbroadcast=XX, group=E)

# -- trigonometric --
defvjp(np.sin, "x", x="g * np.cos(x)", group=E)
defvjp(np.cos, "x", x="-g * np.sin(x)", group=E)
defvjp(np.tan, "x", x="g * (1.0 + ans * ans)", group=E)
# (1 - x) * (1 + x) rather than 1 - x * x: accurate near |x| = 1
defvjp(np.arcsin, "x", x="g / np.sqrt((1.0 - x) * (1.0 + x))", group=E)
defvjp(np.arccos, "x", x="-g / np.sqrt((1.0 - x) * (1.0 + x))", group=E)
defvjp(np.arctan, "x", x="g / (1.0 + x * x)", group=E)
defvjp(np.arctan2, "x1, x2", x1="g * x2 / (x1 * x1 + x2 * x2)", x2="-g * x1 / (x1 * x1 + x2 * x2)",
       unbroadcast=XX, group=E)
defvjp(np.hypot, "x1, x2", x1="g * x1 / ans", x2="g * x2 / ans", unbroadcast=XX, group=E)
defvjp(np.sinc, "x", x="g * (np.cos(np.pi * x) - ans) / np.where(x == 0, 1.0, x)", group=E,
       note="normalised sinc, sin(pi x) / (pi x); gradient 0 at 0")
defvjp(np.deg2rad, "x", x="g * (np.pi / 180.0)", group=E)
defvjp(np.radians, "x", x="g * (np.pi / 180.0)", group=E)
defvjp(np.rad2deg, "x", x="g * (180.0 / np.pi)", group=E)
defvjp(np.degrees, "x", x="g * (180.0 / np.pi)", group=E)

# -- hyperbolic --
defvjp(np.sinh, "x", x="g * np.cosh(x)", group=E)
defvjp(np.cosh, "x", x="g * np.sinh(x)", group=E)
defvjp(np.tanh, "x", x="g * (1.0 - ans * ans)", group=E)
defvjp(np.arcsinh, "x", x="g / np.hypot(x, 1.0)", group=E)
defvjp(np.arccosh, "x", x="g / np.sqrt((x - 1.0) * (x + 1.0))", group=E)
defvjp(np.arctanh, "x", x="g / ((1.0 - x) * (1.0 + x))", group=E)

# -- sign, magnitude, rounding remainders --
defvjp(np.absolute, "x", x="g * np.sign(x)", group=E, note="real x; gradient 0 at 0")
defvjp(np.fabs, "x", x="g * np.sign(x)", group=E, note="gradient 0 at 0")
defvjp(np.copysign, "x1, x2", x1="g * np.sign(x1) * np.copysign(1.0, x2)", unbroadcast=("x1",),
       group=E, note="x2 (only its sign matters) is not differentiable; gradient 0 at x1 == 0")
defvjp(np.remainder, "x1, x2", x1="g", x2="-g * np.floor_divide(x1, x2)", unbroadcast=XX,
       aliases=("x1",), group=E, note="piecewise: x1 - floor(x1 / x2) * x2")
defvjp(np.fmod, "x1, x2", x1="g", x2="-g * np.trunc(x1 / x2)", unbroadcast=XX, aliases=("x1",),
       group=E, note="piecewise: x1 - trunc(x1 / x2) * x2")
defvjp(np.ldexp, "x1, x2", x1="np.ldexp(g, x2)", unbroadcast=("x1",), group=E,
       note="x2 is an integer exponent, not differentiable")

# -- selection --
# Each argument gets g where it is the result; where x1 == x2 each gets half.
# Written with ``ans`` so that fmax/fmin (which skip nan) need no special case.
_TIES = "ties (x1 == x2) split the gradient equally"
for _fn, _note in ((np.maximum, _TIES), (np.minimum, _TIES),
                   (np.fmax, _TIES + "; a nan argument gets none"),
                   (np.fmin, _TIES + "; a nan argument gets none")):
    defvjp(_fn, "x1, x2", x1="np.where(x1 == x2, 0.5 * g, g * (x1 == ans))",
           x2="np.where(x1 == x2, 0.5 * g, g * (x2 == ans))", unbroadcast=XX, group=E, note=_note,
           facts=dict(skips_nan=_fn in (np.fmax, np.fmin)))
del _fn, _note
defvjp(np.where, "condition, x=None, y=None", x="np.where(condition, g, 0.0)",
       y="np.where(condition, 0.0, g)", unbroadcast=("x", "y"), group=E,
       note="three arguments; condition is not differentiable")
# ``ans`` tells which bound applied: raised to a_min (ans > a), lowered to
# a_max (ans < a), or untouched.  NumPy >= 2.1 also spells the bounds min=/max=.
defvjp(np.clip, "a, a_min=None, a_max=None, out=None, *, min=None, max=None",
       a="np.where(ans == a, g, 0.0)", a_min="np.where(ans > a, g, 0.0)",
       a_max="np.where(ans < a, g, 0.0)", min="np.where(ans > a, g, 0.0)",
       max="np.where(ans < a, g, 0.0)", unbroadcast=("a", "a_min", "a_max", "min", "max"), group=E,
       note="a gets the gradient where it lies within the bounds (inclusive), a bound where it "
       "applies; assumes a_min <= a_max")
defvjp(np.nan_to_num, "x, copy=True, nan=0.0, posinf=None, neginf=None",
       x="np.where(np.isfinite(x), g, 0.0)", nan="np.where(np.isnan(x), g, 0.0)",
       posinf="np.where(np.isposinf(x), g, 0.0)", neginf="np.where(np.isneginf(x), g, 0.0)",
       unbroadcast=("nan", "posinf", "neginf"), group=E, facts=dict(skips_nan=True),
       note="x gets the gradient where it is finite, each replacement value where it is used")

# -- real and complex parts (srcdiff differentiates real-valued code) --
defvjp(np.real, "val", val="np.real(g)", aliases=("val",), group=E, note="real arguments",
       facts=dict(result="view", linear=True))
defvjp(np.conjugate, "x", x="np.conjugate(g)", group=E)
defvjp(np.real_if_close, "a, tol=100", a="np.real(g)", aliases=("a",), group=E, note="real arguments",
       facts=dict(result="view"))

# -- step functions, predicates and integer operations: no gradient --
nondifferentiable(
    np.imag, np.angle, np.iscomplex, np.isreal,
    np.sign, np.heaviside, np.floor, np.ceil, np.rint, np.trunc, np.fix, np.round, np.around,
    np.floor_divide, np.spacing,
    np.isnan, np.isfinite, np.isinf, np.isposinf, np.isneginf, np.signbit, np.isclose,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, np.left_shift, np.right_shift,
    np.gcd, np.lcm,
    group=E,
)


# -- other spellings --
def _also(fn, *names):
    """Give ``fn``'s rule to NumPy's other spellings of it.

    Most aliases are the very same object (``np.abs is np.absolute``, and in
    NumPy 2 ``np.acos is np.arccos``): those only get listed in the note,
    so the table holds each function once.  A spelling that is a distinct
    object gets its own copy of the rule; one missing from this NumPy is
    skipped."""
    rule = TABLE.rule_for(fn)
    same = []
    for n in names:
        other = getattr(np, n, None)
        if other is None:
            continue
        if id(other) == id(fn):
            same.append("np." + n)
        elif TABLE.rule_for(other) is None:
            defvjp(other, rule.signature(), unbroadcast=rule.unbroadcast, group=rule.group,
                   name="np." + n, note=rule.note, aliases=rule.aliases, **rule.grads)
    if same:
        rule.note = "; ".join(filter(None, ["also " + ", ".join(same), rule.note]))


_also(np.divide, "true_divide")
_also(np.absolute, "abs")
_also(np.remainder, "mod")
_also(np.power, "pow")
_also(np.arcsin, "asin")
_also(np.arccos, "acos")
_also(np.arctan, "atan")
_also(np.arctan2, "atan2")
_also(np.arcsinh, "asinh")
_also(np.arccosh, "acosh")
_also(np.arctanh, "atanh")
_also(np.conjugate, "conj")
