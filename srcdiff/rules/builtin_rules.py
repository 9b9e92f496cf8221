"""Rules for Python's operators, builtins and the ``math`` module."""

from __future__ import annotations

import builtins
import math
import operator

from .registry import defvjp, nondifferentiable, static_template

G = "operator"
# -- Python operators (``a + b`` is differentiated as ``operator.add(a, b)``) --
defvjp(operator.add, "a, b", a="g", b="g", unbroadcast="ab", aliases="ab", group=G, name="+", facts=dict(linear=True))
defvjp(operator.sub, "a, b", a="g", b="-g", unbroadcast="ab", aliases="a", group=G, name="-", facts=dict(linear=True))
defvjp(operator.mul, "a, b", a="g * b", b="g * a", unbroadcast="ab", group=G, name="*")
defvjp(operator.truediv, "a, b", a="g / b", b="-g * ans / b", unbroadcast="ab", group=G, name="/")
defvjp(operator.neg, "a", a="-g", group=G, name="unary -", facts=dict(linear=True))
# +a may hand back a itself (a number, or an object whose __pos__ returns it): no fresh array promised
defvjp(operator.pos, "a", a="g", aliases="a", group=G, name="unary +", facts=dict(result="", linear=True))


def _ndims(s):
    sa, sb = s.get("shape:a"), s.get("shape:b")
    return (len(sa) if sa is not None else None, len(sb) if sb is not None else None)


@static_template
def _matmul_a(s):
    """d(a @ b)/da, written out when the shapes are known from the first call."""
    return {(2, 1): "np.outer(g, b)", (2, 2): "g @ b.T", (1, 2): "b @ g", (1, 1): "g * b"}.get(
        _ndims(s), "vjp.dmatmul_a(g, a, b)")


@static_template
def _matmul_b(s):
    return {(2, 1): "a.T @ g", (2, 2): "a.T @ g", (1, 2): "np.outer(a, g)", (1, 1): "g * a"}.get(
        _ndims(s), "vjp.dmatmul_b(g, a, b)")


defvjp(operator.matmul, "a, b", a=_matmul_a, b=_matmul_b, group=G, name="@",
       facts=dict(elementwise=False, result="fresh", shaped=True))


def _pow_base_template(s, a="a", b="b"):
    """d(a ** b)/da, short for a literal exponent."""
    e = s.get(b)
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        if e == 2:
            return f"g * 2 * {a}"
        if e == 1:
            return "g"
        if e == 0.5:
            return "g * 0.5 / ans"
        return f"g * {e!r} * {a} ** {e - 1!r}"
    return f"g * {b} * {a} ** ({b} - 1)"


_pow_base = static_template(_pow_base_template)
defvjp(operator.pow, "a, b", a=_pow_base, b="g * ans * np.log(a)", unbroadcast="ab", group=G, name="**")
nondifferentiable(
    operator.floordiv, operator.mod, operator.lt, operator.le, operator.gt, operator.ge,
    operator.eq, operator.ne, operator.not_, operator.and_, operator.or_, operator.xor,
    operator.invert, operator.lshift, operator.rshift, operator.is_, operator.is_not,
    operator.contains, group=G,
)

# -- builtins --
B = "builtin"
defvjp(builtins.abs, "x", x="g * np.sign(x)", group=B, facts=dict(float_keeping=True, shaped=True))
defvjp(builtins.float, "x=0.0", x="g", aliases="x", group=B, facts=dict(shaped=True, linear=True))
defvjp(builtins.min, "a, b", a="g * (a <= b)", b="g * (b < a)", group=B,
       note="two arguments; ties go to the first", facts=dict(float_keeping=True, shaped=True))
defvjp(builtins.max, "a, b", a="g * (a >= b)", b="g * (b > a)", group=B,
       note="two arguments; ties go to the first", facts=dict(float_keeping=True, shaped=True))
defvjp(builtins.sum, "iterable, start=0", iterable="vjp.sum_list_grad(g, iterable)", start="g",
       aliases=("iterable", "start"), group=B, note="sum of a list or tuple of values")
defvjp(builtins.list, "iterable=()", iterable="vjp.sequence_grad(g, iterable)", group=B, facts=dict(container=True),
       note="a list of the items; a dict gives its keys (no gradient)")
defvjp(builtins.tuple, "iterable=()", iterable="vjp.sequence_grad(g, iterable)", group=B, facts=dict(container=True))
defvjp(builtins.reversed, "seq", seq="vjp.reversed_grad(g, seq)", group=B)


def _builtin_pow(template):
    """pow(base, exp[, mod]): like ``base ** exp``; the three-argument form
    takes integers only, so it has no gradient."""

    @static_template
    def t(s):
        mod = s.get("mod", 0)
        if mod is None:
            return template(s)
        if "mod" in s:  # a literal modulus
            return "0.0 * g"
        return f"({template(s)}) if mod is None else 0.0 * g"

    return t


defvjp(builtins.pow, "base, exp, mod=None", group=B, unbroadcast=("base", "exp"),
       base=_builtin_pow(lambda s: _pow_base_template(s, "base", "exp")),
       exp=_builtin_pow(lambda s: "g * ans * np.log(base)"),
       note="as base ** exp; pow(base, exp, mod) works on integers only and has no gradient")
nondifferentiable(builtins.len, group=B, facts=dict(sized_by_arguments=True))  # len(x): fixed by x's shape
nondifferentiable(builtins.range, builtins.int, builtins.bool, builtins.round,
                  builtins.isinstance, builtins.print,
                  builtins.type, builtins.str, builtins.repr, builtins.hash, builtins.id,
                  builtins.any, builtins.all, group=B)

# -- math --
M = "math"
defvjp(math.sin, "x", x="g * math.cos(x)", group=M)
defvjp(math.cos, "x", x="-g * math.sin(x)", group=M)
defvjp(math.tan, "x", x="g * (1.0 + ans * ans)", group=M)
defvjp(math.asin, "x", x="g / math.sqrt(1.0 - x * x)", group=M)
defvjp(math.acos, "x", x="-g / math.sqrt(1.0 - x * x)", group=M)
defvjp(math.atan, "x", x="g / (1.0 + x * x)", group=M)
defvjp(math.sinh, "x", x="g * math.cosh(x)", group=M)
defvjp(math.cosh, "x", x="g * math.sinh(x)", group=M)
defvjp(math.tanh, "x", x="g * (1.0 - ans * ans)", group=M)
defvjp(math.asinh, "x", x="g / math.sqrt(x * x + 1.0)", group=M)
defvjp(math.acosh, "x", x="g / math.sqrt(x * x - 1.0)", group=M)
defvjp(math.atanh, "x", x="g / (1.0 - x * x)", group=M)
defvjp(math.exp, "x", x="g * ans", group=M)
defvjp(math.expm1, "x", x="g * (ans + 1.0)", group=M)
defvjp(math.log, "x, base=None",
       x=static_template(lambda s: "g / x" if s.get("base", 0) is None else "g / (x * math.log(base))"),
       base="-g * ans / (base * math.log(base))", group=M)
defvjp(math.log1p, "x", x="g / (1.0 + x)", group=M)
defvjp(math.log2, "x", x="g / (x * math.log(2.0))", group=M)
defvjp(math.log10, "x", x="g / (x * math.log(10.0))", group=M)
defvjp(math.sqrt, "x", x="g * 0.5 / ans", group=M)
defvjp(math.pow, "x, y", x="g * y * math.pow(x, y - 1.0)", y="g * ans * math.log(x)", group=M)
defvjp(math.fabs, "x", x="g * math.copysign(1.0, x)", group=M)
defvjp(math.atan2, "y, x", y="g * x / (x * x + y * y)", x="-g * y / (x * x + y * y)", group=M)
defvjp(math.hypot, "x, y", x="g * x / ans", y="g * y / ans", group=M, note="two arguments")
defvjp(math.erf, "x", x="g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)", group=M)
defvjp(math.erfc, "x", x="-g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)", group=M)
defvjp(math.degrees, "x", x="g * (180.0 / math.pi)", group=M)
defvjp(math.radians, "x", x="g * (math.pi / 180.0)", group=M)
defvjp(math.copysign, "x, y", x="g * math.copysign(1.0, x) * math.copysign(1.0, y)", group=M)
nondifferentiable(math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite,
                  math.factorial, math.gcd, math.isclose, group=M)
