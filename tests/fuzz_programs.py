"""Generators of random small programs from the subset srcdiff supports, and
the oracles they are checked with (see docs/testing.md).

Every generator is a plain function of a *drawer* (``choice``, ``integer``,
``boolean``, ``real``), so the same code runs under hypothesis (pytest, with
shrinking: :func:`cases`) and under a seeded ``random.Random``
(``tests/fuzz_run.py``, for large runs: :func:`random_case`).  A generator
returns a :class:`Case`: a whole module's source defining ``prog``, the
arguments to call it with and the parameters to differentiate.

:func:`check_case` runs the oracles on a case:

1. the value srcdiff's forward pass computes is the value ``prog`` computes;
2. the gradient matches central finite differences in float64 (points where
   two step sizes disagree, as at a branch boundary, are skipped);
3. where autograd runs the same module (``autograd.numpy`` for ``numpy``) and
   computes the same value, its gradient matches too.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import itertools
import os
import random
import re
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

# ---------------------------------------------------------------- drawers


class RandomDraw:
    """Draws from a seeded ``random.Random``."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def integer(self, lo, hi):
        return self.rng.randint(lo, hi)

    def boolean(self):
        return self.rng.random() < 0.5

    def real(self, lo, hi):
        return self.rng.uniform(lo, hi)


class HypothesisDraw:
    """Draws through hypothesis's ``draw`` (so failures shrink)."""

    def __init__(self, draw):
        self.draw = draw

    def choice(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def boolean(self):
        return self.draw(st.booleans())

    def real(self, lo, hi):
        return self.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def _point(d, lo=-1.5, hi=1.5):
    """A float argument, away from 0 (a common branch boundary)."""
    v = d.real(lo, hi)
    return v if abs(v) > 1e-3 else 0.37


def _vector(d, shape):
    return np.array([_point(d) for _ in range(int(np.prod(shape, dtype=int)))], dtype=float).reshape(shape)


@dataclass
class Case:
    """A module defining ``prog``, and how to call and differentiate it."""

    generator: str
    module: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    wrt: tuple = (0, 1)
    uses_other: bool = False  # imports fuzz_other (the helper in another module)

    def call(self, fn):
        return fn(*copy.deepcopy(self.args), **copy.deepcopy(self.kwargs))


# ---------------------------------------------------------------- the first generators: scalars and (3,) arrays

HEADER = '''import math
import numpy as np


def h_mix(a, b):
    return a * np.cos(b) + 0.5 * b


def h_pair(a, b):
    return a + b, a * b


def h_rec(a, n):
    if n <= 0:
        return a
    return h_rec(np.sin(a) + 0.1 * a, n - 1)


def h_loop(a, b):
    acc = a * 0.0
    for j in range(3):
        if j == 1:
            continue
        acc = acc + np.tanh(a * j + b)
    return acc


def h_early(a):
    if np.sum(a) > 0.3:
        return a * 2.0
    return np.sin(a)

'''

UNARY = ["np.sin({a})", "np.tanh({a})", "np.exp(0.1 * {a})", "({a}) ** 2", "np.sqrt({a} * {a} + 1.0)",
         "np.cos({a}) * 0.5", "-{a}", "np.log(1.0 + {a} * {a})", "abs({a} + 0.25)"]
BINARY = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1.0)", "h_mix({a}, {b})",
          "np.maximum({a}, {b} + 0.3)", "{a} * 0.5 + {b} * 0.25", "h_loop({a}, {b})", "h_early({a}) * {b}",
          "({a} if {b} > 0.2 else {b} * 2.0)"]


def gen_simple_source(d, arrays: bool = False) -> str:
    """Source text of ``def prog(x, y)`` returning a scalar (x, y floats, or
    (3,) arrays with ``arrays``); uses the helpers in :data:`HEADER`."""
    names = ["x", "y"]
    counter = itertools.count()
    lines: list[str] = []

    def var():
        return d.choice(names)

    def expr():
        if d.boolean():
            return d.choice(UNARY).format(a=var())
        text = d.choice(BINARY)
        if arrays:
            text = text.replace("if {b} > 0.2", "if np.sum({b}) > 0.2")
        return text.format(a=var(), b=var())

    def cond():
        v = var()
        c = d.choice(["0.0", "0.5", "-0.5", "1.0"])
        op = d.choice([">", "<"])
        return f"np.sum({v}) {op} {c}" if arrays else f"{v} {op} {c}"

    def block(depth: int, indent: str, in_loop: bool) -> None:
        for _ in range(d.integer(1, 3)):
            kind = d.choice(["assign", "assign", "assign", "if", "for", "while", "pair", "jump", "rec",
                             "list", "ret", "whilecond"])
            if kind == "ret" and depth == 0 and not d.boolean():
                kind = "assign"
            if kind in ("if", "for", "while") and depth >= 2:
                kind = "assign"
            if kind == "jump" and not in_loop:
                kind = "assign"
            if kind == "assign":
                target = d.choice(names + [f"v{next(counter)}"])
                lines.append(f"{indent}{target} = {expr()}")
                if target not in names:
                    names.append(target)
            elif kind == "pair":
                a, b = f"p{next(counter)}", f"q{next(counter)}"
                lines.append(f"{indent}{a}, {b} = h_pair({var()}, {var()})")
                names.extend([a, b])
            elif kind == "rec":
                target = d.choice(names)
                lines.append(f"{indent}{target} = h_rec({var()}, {d.integer(0, 2)})")
            elif kind == "list":
                lst, j = f"l{next(counter)}", f"j{next(counter)}"
                target = d.choice(names)
                lines.append(f"{indent}{lst} = []")
                lines.append(f"{indent}for {j} in range({d.integer(1, 3)}):")
                lines.append(f"{indent}    {target} = {expr()}")
                lines.append(f"{indent}    {lst}.append({target})")
                combine = d.choice([f"np.sum(np.stack({lst}))", f"sum({lst})", f"{lst}[-1]"])
                lines.append(f"{indent}{target} = {combine}" if not arrays else
                             f"{indent}{target} = {combine} * np.ones(3)")
            elif kind == "ret":
                lines.append(f"{indent}if {cond()}:")
                lines.append(f"{indent}    return " + (f"np.sum({var()})" if arrays else var()) + " * 1.5")
            elif kind == "whilecond":
                target = d.choice(names)
                k = f"k{next(counter)}"
                lines.append(f"{indent}{k} = 0")
                limit = "np.sum(np.abs({t}))" if arrays else "abs({t})"
                lines.append(f"{indent}while {limit.format(t=target)} > 0.05 and {k} < 6:")
                lines.append(f"{indent}    {k} = {k} + 1")
                lines.append(f"{indent}    {target} = {target} * 0.5")
            elif kind == "jump":
                lines.append(f"{indent}if {cond()}:")
                lines.append(f"{indent}    {d.choice(['break', 'continue'])}")
            elif kind == "if":
                lines.append(f"{indent}if {cond()}:")
                before = list(names)
                block(depth + 1, indent + "    ", in_loop)
                names[:] = before  # names first bound in a branch are not used after it
                if d.boolean():
                    lines.append(f"{indent}else:")
                    block(depth + 1, indent + "    ", in_loop)
                    names[:] = before
            elif kind == "for":
                i = f"i{next(counter)}"
                lines.append(f"{indent}for {i} in range({d.integer(1, 3)}):")
                before = list(names)
                block(depth + 1, indent + "    ", True)
                names[:] = before
            elif kind == "while":
                k = f"k{next(counter)}"
                lines.append(f"{indent}{k} = 0")
                lines.append(f"{indent}while {k} < {d.integer(1, 3)}:")
                lines.append(f"{indent}    {k} = {k} + 1")
                before = list(names)
                block(depth + 1, indent + "    ", True)
                names[:] = before

    block(0, "    ", False)
    names[:] = [n for n in names if n in ("x", "y") or n.startswith(("v", "p", "q"))]
    used = [d.choice(names) for _ in range(d.integer(1, 3))]
    total = " + ".join(f"np.sum({u})" if arrays else u for u in used)
    body = "\n".join(lines)
    return f"def prog(x, y):\n{body}\n    return {total} + 0.0 * x\n" if not arrays else \
        f"def prog(x, y):\n{body}\n    return {total} + 0.0 * np.sum(x)\n"


def gen_scalar(d) -> Case:
    return Case("scalar", HEADER + gen_simple_source(d), (_point(d), _point(d)))


def gen_array(d) -> Case:
    return Case("array", HEADER + gen_simple_source(d, arrays=True), (_vector(d, (3,)), _vector(d, (3,))))


# ---------------------------------------------------------------- shapes: reductions over axes, broadcasting

Y_SHAPES = [(3, 4), (4,), (3, 1), (1, 4), ()]


def _reduced(shape: tuple, axis, keepdims: bool) -> tuple:
    nd = len(shape)
    axes = range(nd) if axis is None else [a % nd for a in (axis if isinstance(axis, tuple) else (axis,))]
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def gen_shaped_source(d):
    """``def prog(x, y)`` with ``x`` of shape (3, 4) and ``y`` of a shape that
    broadcasts against it, mixing reductions over axes (with and without
    keepdims, function and method forms), broadcasting arithmetic and the
    shifted log-sum-exp of a stable softmax.  Returns (source, y's shape)."""
    yshape = d.choice(Y_SHAPES)
    shapes = {"x": (3, 4), "y": yshape}
    counter = itertools.count()
    lines: list[str] = []

    def pick(pred=lambda s: True):
        return d.choice(sorted(n for n, s in shapes.items() if pred(s)))

    for _ in range(d.integer(1, 5)):
        target = f"v{next(counter)}"
        kind = d.choice(["unary", "binary", "binary", "reduce", "reduce", "softmax", "setitem"])
        if kind == "unary":
            a = pick()
            text, shape = d.choice(UNARY[:4] + ["np.exp(0.1 * {a}) * 2.0"]).format(a=a), shapes[a]
        elif kind == "binary":
            a, b = pick(), pick()
            try:
                shape = tuple(np.broadcast_shapes(shapes[a], shapes[b]))
            except ValueError:
                continue
            text = d.choice(["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1.0)"]).format(a=a, b=b)
        elif kind == "reduce":
            a = pick(lambda s: len(s) >= 1)
            nd = len(shapes[a])
            axis = d.choice([None, 0, -1] + ([1, (0, 1)] if nd == 2 else []))
            keep = d.boolean()
            how = d.choice(["np.sum({a}{k})", "np.mean({a}{k})", "{a}.sum({k0})", "{a}.mean({k0})",
                            "np.max({a}{k})"])
            kw = f"axis={axis!r}" + (", keepdims=True" if keep else "")
            text = how.format(a=a, k=", " + kw, k0=kw)
            shape = _reduced(shapes[a], axis, keep)
        elif kind == "setitem":
            # a new (3, 4) array, assigned into: rows, columns, elements, in place, in a loop
            a, b = pick(lambda s: s == (3, 4)), pick()
            lines.append(f"    {target} = {a} * 1.0")
            how = d.choice(["row", "col", "elem", "aug", "loop", "mask"])
            if how == "row":
                rows = [n for n, s in shapes.items() if s in ((), (4,))]
                b = d.choice(sorted(rows)) if rows else None
                lines.append(f"    {target}[1] = np.sin({b}) * {target}[0]" if b
                             else f"    {target}[1] = {target}[2] * 2.0")
            elif how == "col":
                lines.append(f"    {target}[:, 2] = np.tanh({target}[:, 0] + np.sum({b}))")
            elif how == "elem":
                lines.append(f"    {target}[0, 3] = {target}[1, 2] * np.mean({b})")
            elif how == "aug":
                lines.append(f"    {target}[1:, :2] += np.cos({target}[:2, 2:]) * np.sum({b})")
            elif how == "loop":
                j = f"j{next(counter)}"
                lines.append(f"    for {j} in range(1, 3):")
                lines.append(f"        {target}[{j}] = {target}[{j} - 1] * 0.5 + np.sin({target}[{j}])")
            else:
                lines.append(f"    {target}[{target} > 0.5] = 0.5 * np.sum({b})")
            shapes[target] = (3, 4)
            continue
        else:
            a = pick(lambda s: len(s) == 2)
            axis = d.choice([0, 1])
            z = f"z{next(counter)}"
            lines.append(f"    {z} = {a} - np.max({a}, axis={axis}, keepdims=True)")
            text = f"{z} - np.log(np.sum(np.exp({z}), axis={axis}, keepdims=True))"
            shape = shapes[a]
        lines.append(f"    {target} = {text}")
        shapes[target] = shape
    used = [d.choice(sorted(shapes)) for _ in range(d.integer(1, 3))]
    total = " + ".join(d.choice(["np.sum({u})", "np.mean({u})", "np.sum({u} * {u})"]).format(u=u) for u in used)
    body = "\n".join(lines) or "    pass"
    return f"def prog(x, y):\n{body}\n    return {total} + 0.0 * np.sum(x) + 0.0 * np.sum(y)\n", yshape


def gen_shaped(d) -> Case:
    src, yshape = gen_shaped_source(d)
    return Case("shaped", HEADER + src, (_vector(d, (3, 4)), _vector(d, yshape) if yshape else _point(d)))


# ---------------------------------------------------------------- mixed: every construct of docs/subset.md

OTHER_MODULE = '''"""Helpers in another module, for the program generators."""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Pair(NamedTuple):
    W: float
    b: float


@dataclass
class Params:
    W: np.ndarray
    s: float = 1.0


def square_sum(a):
    return np.sum(a * a)


def scaled(a, k=2.0):
    return a * k
'''

# helpers: name -> (definition, names of the helpers it calls).  Each takes
# values that may be floats or (3,) arrays and returns the kind of ``a``.
HELPERS = {
    # an unused parameter; a parameter whose value does not matter
    "h_unused": ("def h_unused(p0, p1):\n    return p0 * p0\n", ()),
    "h_const": ("def h_const(a, b):\n    c = 2.0\n    return c + 0.0 * 3.0\n", ()),
    "h_first": ("def h_first(a, b):\n    return a\n", ()),
    # a tuple / list / dict parameter indexed several times
    "h_idx": ("def h_idx(q):\n    return q[0] * q[1] + np.sin(q[0]) - q[1]\n", ()),
    "h_dict": ('def h_dict(q):\n    return q["W1"] * q["b1"] + q["W1"] ** 2 - 0.5 * q["b1"]\n', ()),
    "h_iter": ("def h_iter(q):\n    t = 0.0\n    for e in q:\n        t = t + e * e\n    return t\n", ()),
    # keyword and keyword-only parameters with defaults, None default
    "h_kw": ("def h_kw(a, scale=2.0, *, shift=0.5):\n    return a * scale + shift\n", ()),
    "h_opt": ("def h_opt(a, b=None):\n    if b is None:\n        return a * 2.0\n    return a * b\n", ()),
    # early returns: in a loop, in a while followed by a for
    "h_loopret": ("def h_loopret(a):\n    for i in range(3):\n        if np.sum(a) > 1.0:\n"
                  "            return a * 0.5\n        a = a * 1.5 + 0.1\n    return a\n", ()),
    "h_multiret": ("def h_multiret(a, b):\n    k = 0\n    while k < 3:\n        k += 1\n"
                   "        if np.sum(a) > 2.0:\n            return a * b\n        a = a + np.sin(b)\n"
                   "    for i in range(2):\n        if np.sum(a) < -1.0:\n            return a - b\n"
                   "        a = a * 0.75\n    return a\n", ()),
    # recursion
    "h_rec": ("def h_rec(a, n):\n    if n <= 0:\n        return a\n    return h_rec(np.sin(a) + 0.1 * a, n - 1)\n", ()),
    # a backward pass with nothing to do in a loop
    "h_empty": ("def h_empty(a):\n    c = 0.0\n    for i in range(2):\n        c += 1.0\n    return a * c\n", ()),
    "h_pair": ("def h_pair(a, b):\n    return a + b, a * b\n", ()),
    # a module-level lambda
    "h_lam": ("h_lam = lambda a: a * 2.0 + 1.0\n", ()),
    # aliasing inside a helper, then op=
    "h_alias": ("def h_alias(a):\n    c = a * 1.0\n    b = c\n    c *= 3.0\n    return b + c\n", ()),
    # negative literals in powers
    "h_negpow": ("def h_negpow(a):\n    return (-1.5) ** 2 * a + -0.5 ** 2 * a * a + (-a) ** 2\n", ()),
    # the test reassigned in its own branch
    "h_testre": ("def h_testre(a):\n    b = np.sum(a) > 0.0\n    if b:\n        a = a * a\n        b = False\n"
                 "    if b:\n        a = a + 1.0\n    return a\n", ()),
    # helpers calling helpers
    "h_nested": ("def h_nested(a, b):\n    return h_unused(a, b) + h_kw(a, shift=b) + h_idx((a, b))\n",
                 ("h_unused", "h_kw", "h_idx")),
    # (3,) arrays only: assignment into a new array, a matrix-vector product
    "h_fill": ("def h_fill(a):\n    out = np.zeros(3)\n    for i in range(3):\n        out[i] = a[i] * (i + 1.0)\n"
               "    out[1:] += a[:2]\n    return out\n", ()),
    "h_mat": ("def h_mat(W, a):\n    return np.tanh(W @ a)\n", ()),
}

LITERALS = ["0.5", "1.5", "0.25", "2.0", "-0.5", "-1.5", "(-0.75)", "-2.0", "3.0"]
NEG_LITERALS = ["-0.5", "-0.25", "-1.0", "(-0.5)", "-1.5"]
CMP_LITERALS = ["0.0", "0.5", "-0.5", "1.0", "-1.0", "0.25", "(-0.25)"]

UNARY_F = ["np.sin({a})", "np.tanh({a})", "np.exp(0.1 * {a})", "{a} ** 2", "({a}) ** 2", "np.sqrt({a} * {a} + 1.0)",
           "np.cos({a}) * 0.5", "-{a}", "+{a}", "np.log(1.0 + {a} * {a})", "abs({a} + 0.25)", "(-1.5) ** 2 * {a}",
           "-1.5 ** 2 * {a}", "({a} * {a} + 1.0) ** -0.5", "{a} ** 3", "(-{a}) ** 2", "2.0 ** {a}",
           "np.exp(-0.5 * {a} * {a})", "np.arctan({a})", "np.square({a})", "np.maximum({a}, -0.25)",
           "np.where({a} > -0.5, {a}, 0.5 * {a})", "np.clip({a}, -0.75, 0.75)", "np.float_power({a} * {a} + 1.0, 1.5)",
           "np.power({a}, 2)", "np.hypot({a}, 1.0)", "np.logaddexp({a}, 0.0)"]
UNARY_MATH = ["math.sin({a})", "math.exp(0.1 * {a})", "math.tanh({a})", "math.sqrt({a} * {a} + 1.0)",
              "math.atan2({a}, 1.5)", "math.pow({a} * {a} + 1.0, -0.5)", "math.hypot({a}, 0.5)", "math.erf({a})",
              "float({a})", "abs({a})"]
BINARY_T = ["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1.0)", "np.maximum({a}, {b})",
            "np.minimum({a}, {b} + 0.3)", "{a} * 0.5 + {b} * -0.25", "np.arctan2({a}, {b} * {b} + 0.5)",
            "({a} + {b} if np.sum({b}) > -0.5 else {a} * {b})", "np.where({a} > {b}, {a} - {b}, {b} * {b})"]
REDUCE = ["np.sum({a})", "np.mean({a})", "{a}.sum()", "{a}.mean()", "np.max({a})", "np.min({a})", "np.prod({a})",
          "np.linalg.norm({a})", "{a} @ {a}", "np.dot({a}, {a})", "{a}[0]", "{a}[-1]", "float({a}[1])",
          "np.sum({a} * {a}, axis=0)", "np.std({a})", "{a}.max()", "np.var({a})", "np.sum({a}[{a} > 0.0])",
          "np.sum({a}[::2])", "{a}[np.argmax({a})]", "np.average({a})"]
REDUCE_M = ["np.trace({a})", "{a}[0, 1]", "np.sum({a})", "np.mean({a}, axis=(0, 1))", "np.max({a})",
            "np.linalg.norm({a})", "{a}.sum()", "np.sum({a}, axis=0)[1]", "{a}[1][2]", "np.sum({a}[:, 2])"]
VEC_FROM_V = ["{a}[::-1]", "{a}[[0, 2, 2]]", "{a}[[2, 1, 0]]", "{a}[np.argsort({a})]", "np.roll({a}, 1)",
              "np.cumsum({a})", "np.concatenate([{a}[:1], {a}[1:] * 2.0])", "np.sort({a})",
              "{a}.reshape(3, 1)[:, 0]", "G_W * {a}", "np.flip({a})", "np.tanh({a}).copy()", "{a}.T",
              "np.diff(np.concatenate([{a}, {a}[:1]]))", "{a}[idx]", "np.take({a}, [1, 1, 0])",
              "np.ravel({a}.reshape(1, 3))", "np.hstack([{a}[:2], {a}[2:]])"]
VEC_FROM_M = ["{a} @ {v}", "{a}.T @ {v}", "np.dot({a}, {v})", "{a}[0]", "{a}[:, 1]", "np.sum({a}, axis=0)",
              "{a}.mean(axis=1)", "np.max({a}, axis=1)", "np.diagonal({a})", "{a}[1, :]", "h_mat({a}, {v})",
              "np.sum({a}, axis=1, keepdims=True)[:, 0]", "{a}[:, ::-1][2]"]
MAT_FROM = ["np.outer({v}, {w})", "{v}.reshape(3, 1) * {w}", "np.stack([{v}, {w}, {v} * 0.5])", "np.diag({v})",
            "{m}.T", "{m} @ {m}", "np.tril({m})", "{m} * {v}", "np.vstack([{v}, {w}, {w}])",
            "{m}.reshape(9).reshape(3, 3)", "{m} - np.max({m}, axis=1, keepdims=True)"]


class Mixed:
    """Draws one program of the mixed generator (see :func:`gen_mixed`)."""

    def __init__(self, d, aliasing=True):
        self.d = d
        self.aliasing = aliasing  # op= on arrays that other names may see
        self.count = itertools.count()
        self.env: dict[str, str] = {}  # name -> kind: f float, v (3,), m (3, 3), r any shape, i int, l list
        self.own: set[str] = set()  # arrays the function made itself (assignable)
        self.lambdas: list[str] = []
        self.helpers: set[str] = set()
        self.must_use: list[str] = []
        self.leaves: list[tuple[str, str]] = []  # (access text, kind) of the container parameter's leaves
        self.closure: str | None = None
        self.uses_other = False
        self.needs_other = False  # the arguments are classes of fuzz_other
        self.lines: list[str] = []
        self.depth = 0

    # ------------------------------------------------------------ expressions

    def fresh(self, prefix="t"):
        return f"{prefix}{next(self.count)}"

    def names(self, kind):
        return sorted(n for n, k in self.env.items() if k == kind)

    def helper(self, name):
        self.helpers.add(name)
        for dep in HELPERS[name][1]:
            self.helper(dep)
        return name

    def atom(self, kind):
        """A operand of ``kind``: a name, a literal, or a call or a template in parentheses."""
        self.depth += 1
        try:
            if self.depth > 2:
                names = self.names(kind)
                return self.d.choice(names) if names else {"f": "x", "v": "v", "m": "np.outer(v, v)"}[kind]
            text = self._atom(kind)
        finally:
            self.depth -= 1
        if re.fullmatch(r"[\w.]+|-?[\d.]+|\(.*\)", text) and text.count("(") == text.count(")"):
            return text
        return f"({text})"

    def _atom(self, kind):
        d = self.d
        if kind == "f":
            opts = ["var"] * 6 + ["lit", "reduce", "reduce", "leaf", "misc", "call", "lambda", "reduce_m", "int"]
            how = d.choice(opts)
            if how == "lit":
                return d.choice(LITERALS)
            if how == "reduce":
                return d.choice(REDUCE).format(a=self.atom("v"))
            if how == "reduce_m":
                return d.choice(REDUCE_M).format(a=self.atom("m"))
            if how == "leaf" and any(k == "f" for _, k in self.leaves):
                return d.choice([t for t, k in self.leaves if k == "f"])
            if how == "lambda" and self.lambdas:
                return f"{d.choice(self.lambdas)}({self.atom('f')})"
            if how == "int" and self.names("i"):
                i = d.choice(self.names("i"))
                return d.choice([f"float({i})", f"({i} * 0.5)", f"{self.atom('v')}[{i}]", f"({i} + 1.0)"])
            if how == "misc":
                return self.misc_f()
            if how == "call":
                return self.call("f")
            names = self.names("f")
            return d.choice(names) if names else "x"
        if kind == "v":
            how = d.choice(["var"] * 6 + ["leaf", "from_v", "from_m", "stack", "scal", "call"])
            if how == "leaf" and any(k == "v" for _, k in self.leaves):
                return d.choice([t for t, k in self.leaves if k == "v"])
            if how == "from_v":
                return d.choice(VEC_FROM_V).format(a=self.atom("v"))
            if how == "from_m":
                return d.choice(VEC_FROM_M).format(a=self.atom("m"), v=self.atom("v"))
            if how == "stack":
                a, b, c = self.atom("f"), self.atom("f"), self.atom("f")
                return d.choice([f"np.stack([{a}, {b}, {c}])", f"np.array([{a}, {b}, {c}])",
                                 f"(np.ones(3) * {a})", f"np.full(3, {a})"])
            if how == "scal":
                return f"({self.atom('f')} * {self.atom('v')})"
            if how == "call":
                return self.call("v")
            names = self.names("v")
            return d.choice(names) if names else "v"
        if kind == "m":
            names = self.names("m")
            if names and d.integer(0, 2):
                return d.choice(names)
            if any(k == "m" for _, k in self.leaves) and d.boolean():
                return d.choice([t for t, k in self.leaves if k == "m"])
            return d.choice(MAT_FROM).format(v=self.atom("v"), w=self.atom("v"),
                                             m=d.choice(names) if names else "np.outer(v, v)")
        raise AssertionError(kind)

    def misc_f(self):
        """Builtins, non-differentiable calls, globals, closure variables,
        non-differentiated parameters."""
        d, atom = self.d, self.atom
        r = self.names("r")
        forms = [
            lambda: f"(len({atom('v')}) * 0.25)", lambda: f"({atom('v')}.shape[0] * 0.1)",
            lambda: f"sum({atom('f')} * e for e in {atom('v')})",
            lambda: f"sum(np.sin({atom('v')}[j]) for j in range(3))",
            lambda: f"min({atom('f')}, {atom('f')})", lambda: f"max({atom('f')}, -0.5)",
            lambda: f"(({atom('f')} // 0.5) * 0.1)", lambda: f"(0.1 * ({atom('f')} % 0.7 > 0.35))",
            lambda: "(G_S * 2.0)",
            lambda: f"np.sum({d.choice(r)})" if r else "G_S",
            lambda: f"fuzz_other.square_sum({atom('v')})",
            lambda: f"({self.closure} * {atom('f')})" if self.closure else f"({atom('f')} * 0.5)",
            lambda: f"np.sum({atom('v')} * noise)" if "noise" in self.env else "0.1",
            lambda: f"(float(n) * {atom('f')})", lambda: f"({atom('f')} if flag else -{atom('f')})",
            lambda: f"({atom('f')} * 2.0 if mode == 'tanh' else 1.5)",
            lambda: f"np.sum(np.floor({atom('v')}) * {atom('v')})",
        ]
        return d.choice(forms)()

    def call(self, kind):
        """A call of a helper, returning ``kind`` (f or v)."""
        d = self.d
        a, b = self.atom(kind), self.atom(kind)
        how = d.choice(["h_unused", "h_const", "h_first", "h_idx", "h_dict", "h_iter", "h_kw", "h_opt", "h_loopret",
                        "h_multiret", "h_rec", "h_empty", "h_lam", "h_alias", "h_negpow", "h_testre", "h_nested",
                        "h_pair", "other", "h_fill", "h_mat"])
        if how == "h_alias" and not self.aliasing:
            how = "h_first"
        if how == "other":
            return d.choice([f"fuzz_other.scaled({a})", f"fuzz_other.scaled({a}, k=-0.5)"])
        if how in ("h_fill", "h_mat"):
            if kind != "v":
                return f"np.sum(h_fill({self.atom('v')}))" if how == "h_fill" else \
                    f"np.sum(h_mat({self.atom('m')}, {self.atom('v')}))"
            return f"h_fill({a})" if how == "h_fill" else f"h_mat({self.atom('m')}, {a})"
        self.helper(how)
        if how == "h_const":
            return f"(h_const({a}, {b}) * {a})"
        if how == "h_idx":
            return d.choice([f"h_idx(({a}, {b}))", f"h_idx([{a}, {b}])"]
                            + (["h_idx(p)"] if self.p_seq_kind == kind else []))
        if how == "h_dict":
            return d.choice([f'h_dict({{"W1": {a}, "b1": {b}}})'] + (["h_dict(p)"] if self.p_dict_kind == kind else []))
        if how == "h_iter":
            return f"(h_iter([{a}, {b}]) * 1.0)" if kind == "f" else f"h_iter(({a}, {b}))"
        if how == "h_kw":
            return d.choice([f"h_kw({a})", f"h_kw({a}, {b})", f"h_kw({a}, shift={b})", f"h_kw(a={a}, scale=-1.5)",
                             f"h_kw({a}, shift=-0.5, scale={b})"])
        if how == "h_opt":
            return d.choice([f"h_opt({a})", f"h_opt({a}, {b})", f"h_opt({a}, b=None)"])
        if how == "h_rec":
            return f"h_rec({a}, {d.integer(0, 3)})"
        if how == "h_pair":
            return f"h_pair({a}, {b})[{d.integer(0, 1)}]"
        if how in ("h_unused", "h_first", "h_multiret", "h_nested"):
            return f"{how}({a}, {b})"
        return f"{how}({a})"

    def expr(self, kind, depth=0):
        d = self.d
        if depth >= 2 or d.integer(0, depth + 1) != 0:
            return self.atom(kind)
        how = d.choice(["unary", "unary", "binary", "binary", "math"] if kind == "f" else ["unary", "binary", "binary"])
        if how == "unary":
            return "(" + d.choice(UNARY_F).format(a=self.expr(kind, depth + 1)) + ")"
        if how == "math":
            return "(" + d.choice(UNARY_MATH).format(a=self.expr("f", depth + 1)) + ")"
        other = self.expr(d.choice([kind, "f"]), depth + 1)
        a, b = self.expr(kind, depth + 1), other
        if d.boolean():
            a, b = b, a
        return "(" + d.choice(BINARY_T).format(a=a, b=b) + ")"

    def cond(self):
        d = self.d
        f, lit = self.expr("f", 1), d.choice(CMP_LITERALS)
        how = d.choice(["cmp", "cmp", "cmp", "sum", "chain", "and", "not", "flag", "mode", "n", "int", "all", "bool"])
        if how == "sum":
            return f"np.sum({self.atom('v')}) {d.choice(['>', '<', '>='])} {lit}"
        if how == "chain":
            return f"-0.5 < {f} < {d.choice(['0.5', '1.0'])}"
        if how == "and":
            return f"{f} > {lit} {d.choice(['and', 'or'])} np.sum({self.atom('v')}) < {d.choice(CMP_LITERALS)}"
        if how == "not":
            return f"not ({f} > {lit})"
        if how == "flag":
            return d.choice(["flag", "not flag"])
        if how == "mode":
            return d.choice(['mode == "tanh"', 'mode != "tanh"'])
        if how == "n":
            return d.choice(["n > 2", "n == 2"])
        if how == "int" and self.names("i"):
            i = d.choice(self.names("i"))
            return d.choice([f"{i} == 1", f"{i} % 2 == 0", f"{i} > 0"])
        if how == "all":
            return d.choice([f"np.all({self.atom('v')} > -1.0)", f"np.any({self.atom('v')} > 0.5)"])
        if how == "bool" and self.names("b"):
            return d.choice(self.names("b"))
        return f"{f} {d.choice(['>', '<', '>=', '<='])} {lit}"

    # ------------------------------------------------------------ statements

    def emit(self, indent, text):
        self.lines.append(indent + text)

    def assignable(self, kind):
        """A name of ``kind`` to assign to: an existing one or a new one."""
        names = [n for n in self.names(kind) if n not in ("x", "v", "m")]
        if names and self.d.boolean():
            return self.d.choice(names)
        if self.d.integer(0, 4) == 0 and kind in ("f", "v"):
            return "x" if kind == "f" else "v"  # rebinding a parameter
        return self.fresh({"f": "s", "v": "a", "m": "M"}[kind])

    def bind(self, name, kind, own=False):
        self.env[name] = kind
        if own:
            self.own.add(name)
        else:
            self.own.discard(name)

    def block(self, indent, depth, in_loop, n=None):
        d = self.d
        start = len(self.lines)
        for _ in range(n if n is not None else d.integer(1, 3)):
            kinds = ["assign"] * 5 + ["aug"] * 2 + ["alias"] * 2 + ["setitem"] * 2 + ["if", "if", "for", "for", "while",
                                                                                         "ret", "comp", "append",
                                                                                         "lambda", "unpack", "annot",
                                                                                         "const", "misc", "testre",
                                                                                         "multiret"]
            if in_loop:
                kinds += ["jump", "jump"]
            kind = d.choice(kinds)
            if kind == "alias" and not self.aliasing:
                kind = "aug"
            if kind in ("if", "for", "while", "multiret") and depth >= 2:
                kind = "assign"
            getattr(self, "s_" + kind)(indent, depth, in_loop)
        if len(self.lines) == start:
            self.emit(indent, "pass")

    def nested(self, indent, depth, in_loop, n=None):
        """A block whose new names are forgotten afterwards."""
        env, own, lambdas = dict(self.env), set(self.own), list(self.lambdas)
        self.block(indent, depth, in_loop, n)
        after_own = set(self.own)
        self.env, self.lambdas = env, lambdas
        self.own = own & after_own
        for name in list(self.env):  # a name rebound to another kind inside stays of its first kind only if
            pass  # the kinds agree, which assignable() ensures

    def s_assign(self, indent, depth, in_loop):
        kind = self.d.choice(["f", "f", "v", "v", "m"])
        target = self.assignable(kind)
        value = self.expr(kind)
        self.emit(indent, f"{target} = {value}")
        self.bind(target, kind)

    def s_annot(self, indent, depth, in_loop):
        target = self.assignable("f")
        self.emit(indent, f"{target}: float = {self.expr('f')}")
        self.bind(target, "f")

    def s_aug(self, indent, depth, in_loop):
        d = self.d
        kind = d.choice(["f", "v", "v", "m"])
        names = self.names(kind)
        if self.aliasing and d.integer(0, 5):
            names = [n for n in names if n not in ("x", "v", "m")]  # op= on an argument array is refused
        if not names:
            return self.s_assign(indent, depth, in_loop)
        target = d.choice(names)
        op = d.choice(["+=", "-=", "*=", "*=", "/=", "**="])
        value = self.expr(d.choice([kind, "f"]), 1)
        if op == "/=":
            value = f"({value} * {value} + 1.0)"
        elif op == "**=":
            value = d.choice(["2", "2.0", "3"])
        if self.aliasing:
            self.emit(indent, f"{target} {op} {value}")
        else:  # the same without changing an array another name may see
            self.emit(indent, f"{target} = {target} {op[:-1]} {value}")
        if op != "**=" and d.integer(0, 3) == 0:
            self.emit(indent, f"{target} = np.tanh({target})")  # keep magnitudes moderate

    def s_alias(self, indent, depth, in_loop):
        """A second name for an array (or a float), then op= on the first."""
        d = self.d
        kind = d.choice(["v", "v", "m", "f"])
        names = self.names(kind)
        if d.integer(0, 5):
            names = [n for n in names if n not in ("x", "v", "m")]  # op= on an argument array is refused
        if not names or d.integer(0, 2) == 0:
            a = self.fresh("w")
            made = {"v": f"{self.atom('v')} * 1.0", "m": self.atom("m") + " + 0.0", "f": self.atom("f")}[kind]
            self.emit(indent, f"{a} = {made}")
            self.bind(a, kind, own=kind != "f")
        else:
            a = d.choice(names)
        b = self.fresh("b")
        if kind == "v":
            view, bkind = d.choice([(a, "v"), (f"{a}[:2]", "r"), (f"{a}.T", "v"), (f"{a}[0]", "f"),
                                    (f"{a}.reshape(3, 1)", "r"), (f"{a}.reshape(-1)", "v"), (f"{a}[::-1]", "v"),
                                    (f"{a}[1:]", "r")])
        elif kind == "m":
            view, bkind = d.choice([(a, "m"), (f"{a}.T", "m"), (f"{a}[0]", "v"), (f"{a}[:, 1]", "v"),
                                    (f"{a}.reshape(9)", "r"), (f"{a}[:2]", "r")])
        else:
            view, bkind = a, "f"
        self.emit(indent, f"{b} = {view}")
        self.bind(b, bkind)
        self.own.discard(a)
        op = d.choice(["+=", "-=", "*=", "*=", "/="])
        value = d.choice(["3.0", "-0.5", "2.0", self.expr("f", 1)])
        if op == "/=":
            value = f"({value} * {value} + 1.0)"
        if d.integer(0, 4) == 0 and kind != "f":
            self.emit(indent, f"{a}[0] {op} {value}")  # an assignment through the other name: may be refused
        else:
            self.emit(indent, f"{a} {op} {value}")
        self.must_use.append(b)
        if d.boolean():
            self.must_use.append(a)

    def own_array(self, indent, kind):
        names = [n for n in self.names(kind) if n in self.own]
        if names and self.d.boolean():
            return self.d.choice(names)
        out = self.fresh("out")
        if kind == "v":
            made = self.d.choice(["np.zeros(3)", "np.ones(3) * 0.5", f"{self.atom('v')}.copy()",
                                  f"{self.atom('v')} * 1.0", f"np.zeros_like({self.atom('v')})", "np.full(3, -0.5)",
                                  "np.array([0.0, 1.0, 2.0])", "np.empty(3)"])
            if made == "np.empty(3)":
                self.emit(indent, f"{out} = np.empty(3)")
                made = None
                self.emit(indent, f"{out}[:] = {self.atom('v')}")
        else:
            made = self.d.choice(["np.zeros((3, 3))", "np.eye(3)", f"{self.atom('m')} * 1.0",
                                  f"np.copy({self.atom('m')})"])
        if made:
            self.emit(indent, f"{out} = {made}")
        self.bind(out, kind, own=True)
        return out

    def s_setitem(self, indent, depth, in_loop):
        d = self.d
        kind = d.choice(["v", "v", "v", "m"])
        out = self.own_array(indent, kind)
        if kind == "v":
            how = d.choice(["loop", "elem", "slice", "aug_slice", "mask", "shift", "neg", "intidx", "loopread", "iaug"])
            if how == "loop" or (how in ("loopread", "iaug") and depth >= 2):
                i = self.fresh("i")
                self.emit(indent, f"for {i} in range(3):")
                self.env[i] = "i"
                self.emit(indent + "    ", f"{out}[{i}] = {self.expr('f', 1)}")
                del self.env[i]
            elif how == "loopread":
                i = self.fresh("i")
                self.emit(indent, f"for {i} in range(1, 3):")
                self.emit(indent + "    ", f"{out}[{i}] = np.tanh({out}[{i} - 1] * {self.atom('f')}) + {out}[{i}]")
            elif how == "iaug":
                i = self.fresh("i")
                self.emit(indent, f"for {i} in range(3):")
                self.emit(indent + "    ", f"{out}[{i}] += {self.atom('v')}[{i}] * {self.atom('f')}")
            elif how == "elem":
                self.emit(indent, f"{out}[{d.choice(['0', '1', '-1'])}] = {self.expr('f', 1)}")
            elif how == "slice":
                self.emit(indent, f"{out}[1:] = {self.atom('v')}[:2] * {self.atom('f')}")
            elif how == "aug_slice":
                a, b = d.choice([(0, 2), (1, 3), (0, 3)])
                self.emit(indent, f"{out}[{a}:{b}] {d.choice(['+=', '-=', '*='])} {self.atom('v')}[{a}:{b}]")
            elif how == "mask":
                self.emit(indent, f"{out}[{self.atom('v')} > 0.0] = {self.expr('f', 1)}")
            elif how == "shift":
                self.emit(indent, f"{out}[1:] = {out}[:-1] * 0.5")
            elif how == "neg":
                self.emit(indent, f"{out}[-1] *= {self.expr('f', 1)}")
            else:
                self.emit(indent, f"{out}[[0, 2]] = {self.atom('f')}")  # refused: positions may repeat
        else:
            how = d.choice(["elem", "row", "col", "loop"])
            if how == "elem":
                self.emit(indent, f"{out}[{d.integer(0, 2)}, {d.integer(0, 2)}] = {self.expr('f', 1)}")
            elif how == "row":
                self.emit(indent, f"{out}[1] = {self.expr('v', 1)}")
            elif how == "col":
                self.emit(indent, f"{out}[:, 0] += {self.atom('v')}")
            else:
                i, j = self.fresh("i"), self.fresh("j")
                self.emit(indent, f"for {i} in range(3):")
                self.emit(indent + "    ", f"for {j} in range({i} + 1):")
                self.emit(indent + "        ", f"{out}[{i}, {j}] = {self.atom('v')}[{i}] * {self.atom('v')}[{j}]")
        if d.boolean():
            self.must_use.append(out)

    def s_if(self, indent, depth, in_loop):
        d = self.d
        self.emit(indent, f"if {self.cond()}:")
        self.nested(indent + "    ", depth + 1, in_loop)
        for _ in range(d.choice([0, 0, 1, 2])):
            self.emit(indent, f"elif {self.cond()}:")
            self.nested(indent + "    ", depth + 1, in_loop)
        if d.boolean():
            self.emit(indent, "else:")
            self.nested(indent + "    ", depth + 1, in_loop)

    def s_for(self, indent, depth, in_loop):
        d = self.d
        i, e, w = self.fresh("i"), self.fresh("e"), self.fresh("u")
        how = d.choice(["range", "range", "range1", "rangen", "vec", "list", "tuple", "enum", "zip", "enumzip",
                        "reversed", "rows", "items", "keys", "values", "pseq", "listvar"])
        bound = {}
        if how == "range":
            head, bound = f"for {i} in range({d.integer(1, 3)}):", {i: "i"}
        elif how == "range1":
            head, bound = f"for {i} in range(1, {d.integer(2, 3)}):", {i: "i"}
        elif how == "rangen":
            head, bound = f"for {i} in range(n):", {i: "i"}
        elif how == "vec":
            head, bound = f"for {e} in {self.atom('v')}:", {e: "f"}
        elif how == "list":
            head, bound = f"for {e} in [{self.atom('f')}, {self.atom('f')}, {d.choice(NEG_LITERALS)}]:", {e: "f"}
        elif how == "tuple":
            head, bound = f"for {e} in ({self.atom('f')}, {self.atom('f')}):", {e: "f"}
        elif how == "enum":
            head, bound = f"for {i}, {e} in enumerate({self.atom('v')}):", {i: "i", e: "f"}
        elif how == "zip":
            head, bound = f"for {e}, {w} in zip({self.atom('v')}, {self.atom('v')}):", {e: "f", w: "f"}
        elif how == "enumzip":
            head = f"for {i}, ({e}, {w}) in enumerate(zip({self.atom('v')}, [{self.atom('f')}, 0.5, -1.0])):"
            bound = {i: "i", e: "f", w: "f"}
        elif how == "reversed":
            head, bound = f"for {e} in reversed({d.choice([self.atom('v'), '[x, 0.5, -0.25]'])}):", {e: "f"}
        elif how == "rows":
            head, bound = f"for {w} in {self.atom('m')}:", {w: "v"}
        elif how in ("items", "keys", "values") and self.p_dict_kind:
            k = self.fresh("key")
            if how == "items":
                head, bound = f"for {k}, {w} in p.items():", {w: self.p_dict_kind}
            elif how == "keys":
                head = f"for {k} in p.keys():"
                self.emit(indent, head)
                self.env[w] = self.p_dict_kind
                self.emit(indent + "    ", f"{w} = p[{k}]")
                self.nested(indent + "    ", depth + 1, True)
                del self.env[w]
                return
            else:
                head, bound = f"for {w} in p.values():", {w: self.p_dict_kind}
        elif how == "pseq" and self.p_seq_kind:
            head, bound = f"for {w} in p:", {w: self.p_seq_kind}
        elif how == "listvar" and self.names("l"):
            head, bound = f"for {e} in {d.choice(self.names('l'))}:", {e: "f"}
        else:
            head, bound = f"for {i} in range({d.integer(1, 3)}):", {i: "i"}
        self.emit(indent, head)
        saved = dict(self.env)
        self.env.update(bound)
        self.nested(indent + "    ", depth + 1, True)
        self.env = saved

    def s_while(self, indent, depth, in_loop):
        d = self.d
        k = self.fresh("k")
        how = d.choice(["count", "count", "true", "halve"])
        self.emit(indent, f"{k} = 0")
        if how == "count":
            self.emit(indent, f"while {k} < {d.integer(1, 3)}:")
            self.emit(indent + "    ", d.choice([f"{k} += 1", f"{k} = {k} + 1"]))
        elif how == "true":
            self.emit(indent, "while True:")
            self.emit(indent + "    ", f"{k} += 1")
            self.emit(indent + "    ", f"if {k} > {d.integer(1, 3)}:")
            self.emit(indent + "        ", "break")
        else:
            names = [n for n in self.names("f") if n not in ("x",)]
            t = d.choice(names) if names else self.fresh("s")
            if t not in self.env:
                self.emit(indent, f"{t} = {self.expr('f')}")
                self.bind(t, "f")
            self.emit(indent, f"while abs({t}) > 0.05 and {k} < 6:")
            self.emit(indent + "    ", f"{k} = {k} + 1")
            self.emit(indent + "    ", f"{t} = {t} * {d.choice(['0.5', '-0.5'])}")
        self.nested(indent + "    ", depth + 1, True)

    def s_jump(self, indent, depth, in_loop):
        self.emit(indent, f"if {self.cond()}:")
        self.emit(indent + "    ", self.d.choice(["break", "continue"]))

    def s_ret(self, indent, depth, in_loop):
        if self.d.integer(0, 3) == 0 and in_loop:
            self.emit(indent, f"return {self.result()}")  # unconditional, last in its block
            return
        self.emit(indent, f"if {self.cond()}:")
        self.emit(indent + "    ", f"return {self.result()}")

    def s_multiret(self, indent, depth, in_loop):
        """A while containing a return followed by a for containing a return."""
        k, i = self.fresh("k"), self.fresh("i")
        t = self.assignable("f")
        self.emit(indent, f"{t} = {self.expr('f')}")
        self.bind(t, "f")
        self.emit(indent, f"{k} = 0")
        self.emit(indent, f"while {k} < {self.d.integer(1, 3)}:")
        self.emit(indent + "    ", f"{k} += 1")
        self.emit(indent + "    ", f"if {t} > {self.d.choice(CMP_LITERALS)}:")
        self.emit(indent + "        ", f"return {self.result()}")
        self.emit(indent + "    ", f"{t} = {t} + np.sin({t})")
        self.emit(indent, f"for {i} in range({self.d.integer(1, 3)}):")
        self.emit(indent + "    ", f"{t} = {t} * {self.atom('f')}")
        self.emit(indent + "    ", f"if {t} < {self.d.choice(CMP_LITERALS)}:")
        self.emit(indent + "        ", f"return {self.result()}")

    def s_comp(self, indent, depth, in_loop):
        d = self.d
        e, e2 = self.fresh("e"), self.fresh("e")
        saved = dict(self.env)
        self.env[e] = "f"
        body = self.expr("f", 1)
        self.env[e2] = "f"
        body2 = f"{self.atom('f')} * {e2} + {e}"
        self.env = saved
        how = d.choice(["list", "listif", "nested", "sum", "sumrange", "vecs"])
        target = self.fresh("c")
        if how == "list":
            self.emit(indent, f"{target} = [{body} for {e} in {self.atom('v')}]")
        elif how == "listif":
            self.emit(indent, f"{target} = [{body} for {e} in {self.atom('v')} if {e} > {d.choice(CMP_LITERALS)}]")
        elif how == "nested":
            self.emit(indent, f"{target} = [{body2} for {e} in {self.atom('v')} for {e2} in ({self.atom('f')}, -0.5)]")
        elif how == "sum":
            self.emit(indent, f"{target} = sum({body} for {e} in {self.atom('v')})")
            self.bind(target, "f")
            return
        elif how == "sumrange":
            j = self.fresh("j")
            self.emit(indent, f"{target} = sum({self.atom('v')}[{j}] * {j} for {j} in range(3))")
            self.bind(target, "f")
            return
        else:
            j = self.fresh("j")
            self.emit(indent, f"{target} = sum([np.sin({self.atom('v')}) * {j} for {j} in range(2)])")
            self.bind(target, "v")
            return
        self.bind(target, "l")
        use = self.assignable("f")
        combine = d.choice([f"sum({target})", f"sum({target}, 0.0)", f"len({target}) * 0.5 + sum({target})"])
        self.emit(indent, f"{use} = {combine}")
        self.bind(use, "f")

    def s_append(self, indent, depth, in_loop):
        d = self.d
        lst, j = self.fresh("l"), self.fresh("j")
        kind = d.choice(["f", "v"])
        self.emit(indent, f"{lst} = []")
        self.emit(indent, f"for {j} in range({d.integer(1, 3)}):")
        saved = dict(self.env)
        self.env[j] = "i"
        self.emit(indent + "    ", f"{lst}.append({self.expr(kind, 1)})")
        self.env = saved
        target = self.assignable(kind) if kind == "f" else self.fresh("a")
        if kind == "f":
            combine = d.choice([f"sum({lst})", f"{lst}[-1]", f"np.sum(np.stack({lst}))", f"{lst}[0] * 2.0"])
            self.emit(indent, f"{target} = {combine}")
            self.bind(target, "f")
            self.bind(lst, "l")
        else:
            self.emit(indent, f"{target} = {d.choice([f'sum({lst})', f'{lst}[-1]', f'np.stack({lst}).sum(axis=0)'])}")
            self.bind(target, "v")

    def s_lambda(self, indent, depth, in_loop):
        name = self.fresh("lam")
        body = self.d.choice(["z * z + 0.5", "np.sin(z) * 2.0", "(-z) ** 2", "z * G_S - 1.0", "np.tanh(z) + z"])
        self.emit(indent, f"{name} = lambda z: {body}")
        self.lambdas.append(name)

    def s_unpack(self, indent, depth, in_loop):
        d = self.d
        a, b, c = self.fresh("s"), self.fresh("s"), self.fresh("s")
        how = d.choice(["pair", "tuple", "nested", "list", "chain", "p"])
        if how == "pair":
            self.helper("h_pair")
            self.emit(indent, f"{a}, {b} = h_pair({self.atom('f')}, {self.atom('f')})")
        elif how == "tuple":
            self.emit(indent, f"{a}, {b} = {self.expr('f', 1)}, {self.expr('f', 1)}")
        elif how == "nested":
            self.emit(indent, f"({a}, ({b}, {c})) = ({self.atom('f')}, ({self.atom('f')}, {self.atom('f')}))")
            self.bind(c, "f")
        elif how == "list":
            self.emit(indent, f"[{a}, {b}] = [{self.atom('f')}, {self.atom('f')}]")
        elif how == "p" and self.p_unpack:
            names = [self.fresh("q") for _ in self.p_unpack]
            self.emit(indent, f"{', '.join(names)} = p")
            for nm, kind in zip(names, self.p_unpack):
                self.bind(nm, kind)
            return
        else:
            self.emit(indent, f"{a} = {b} = {self.expr('f', 1)}")
        self.bind(a, "f")
        self.bind(b, "f")

    def s_const(self, indent, depth, in_loop):
        """Statements whose backward pass is empty."""
        d = self.d
        c = self.fresh("cnt")
        how = d.choice(["loop", "pass", "incr"])
        if how == "loop":
            self.emit(indent, f"{c} = 0.0")
            self.emit(indent, f"for {self.fresh('i')} in range({d.integer(1, 2)}):")
            self.emit(indent + "    ", f"{c} += 1.0")
            self.emit(indent, f"{self.assignable('f')} = {self.atom('f')} * {c}")
        elif how == "pass":
            names = [n for n in self.names("f") if n != "x"]
            t = d.choice(names) if names else "x"
            self.emit(indent, f"for {self.fresh('i')} in range(2):")
            self.emit(indent + "    ", f"{t} += 1.0" if self.aliasing else f"{t} = {t} + 1.0")
        else:
            self.emit(indent, f"if {self.cond()}:")
            self.emit(indent + "    ", "pass")
            self.emit(indent, "else:")
            self.emit(indent + "    ", f"{c} = 1")

    def s_misc(self, indent, depth, in_loop):
        d = self.d
        how = d.choice(["assert", "print", "expr", "fstring", "pass", "noise", "docstring"])
        if how == "assert":
            self.emit(indent, f"assert np.all(np.isfinite({self.atom('v')}))")
        elif how == "print":
            self.emit(indent, 'print(end="")')
        elif how == "expr":
            self.emit(indent, f"np.sum({self.atom('v')})")
        elif how == "fstring":
            self.emit(indent, f'label = f"x={{{self.atom("f")}:.3f}} mode={{mode}}"')
            self.emit(indent, "if len(label) > 200:")
            self.emit(indent + "    ", "x = x * 2.0")
        elif how == "noise":
            if self.d.integer(0, 3):
                self.emit(indent, "np.random.seed(0)")
                self.emit(indent, "noise = np.random.normal(size=3)")
            else:
                self.emit(indent, "noise = np.random.default_rng(0).normal(size=3)")
            self.env["noise"] = "v"
        elif how == "docstring":
            self.emit(indent, '"""A string statement."""')
        else:
            self.emit(indent, "pass")

    def s_testre(self, indent, depth, in_loop):
        """A test reassigned in its own branch."""
        b = self.fresh("bt")
        t = self.d.choice(self.names("f") or ["x"])
        self.emit(indent, f"{b} = {t} > {self.d.choice(CMP_LITERALS)}")
        self.emit(indent, f"if {b}:")
        self.emit(indent + "    ", f"{t} = {t} * {t}")
        self.emit(indent + "    ", f"{b} = False")
        if self.d.boolean():
            self.emit(indent, f"if {b}:")
            self.emit(indent + "    ", f"{t} = {t} + 1.0")
        self.bind(b, "b")

    # ------------------------------------------------------------ the program

    def result(self):
        d = self.d
        terms = []
        pool = sorted(n for n, k in self.env.items() if k in ("f", "v", "m", "r", "l"))
        chosen = [d.choice(pool) for _ in range(d.integer(1, 3))]
        chosen += [n for n in self.must_use if n in self.env and self.env[n] in ("f", "v", "m", "r")]
        for n in dict.fromkeys(chosen):
            k = self.env[n]
            if k == "f":
                terms.append(n)
            elif k == "l":
                terms.append(f"sum({n})")
            else:
                terms.append(d.choice([f"np.sum({n})", f"np.mean({n})", f"{n}.sum()", f"np.sum({n} * {n})"]))
        return " + ".join(terms)

    def container(self):
        """The container parameter ``p`` and its value."""
        d = self.d
        self.p_seq_kind = self.p_dict_kind = None
        self.p_unpack = None
        how = d.choice(["tuple", "list", "dict", "nested", "dictv", "tuplev", "namedtuple", "dataclass"])
        if how in ("namedtuple", "dataclass"):
            import fuzz_other

            self.needs_other = True
            if how == "namedtuple":
                self.leaves = [("p.W", "f"), ("p.b", "f"), ("p[0]", "f")]
                self.p_unpack = ["f", "f"]
                return fuzz_other.Pair(_point(d), _point(d))
            self.leaves = [("p.W", "v"), ("p.s", "f")]
            return fuzz_other.Params(_vector(d, (3,)), _point(d))
        if how == "tuple":
            value = (_point(d), _point(d))
            self.leaves = [("p[0]", "f"), ("p[1]", "f")]
            self.p_seq_kind, self.p_unpack = "f", ["f", "f"]
        elif how == "list":
            value = [_point(d), _point(d), _point(d)]
            self.leaves = [("p[0]", "f"), ("p[1]", "f"), ("p[-1]", "f")]
            self.p_seq_kind, self.p_unpack = "f", ["f", "f", "f"]
        elif how == "tuplev":
            value = (_vector(d, (3,)), _vector(d, (3,)))
            self.leaves = [("p[0]", "v"), ("p[1]", "v")]
            self.p_seq_kind, self.p_unpack = "v", ["v", "v"]
        elif how == "dict":
            value = {"W1": _point(d), "b1": _point(d)}
            self.leaves = [('p["W1"]', "f"), ('p["b1"]', "f")]
            self.p_dict_kind = "f"
        elif how == "dictv":
            value = {"W1": _vector(d, (3,)), "b1": _vector(d, (3,))}
            self.leaves = [('p["W1"]', "v"), ('p["b1"]', "v")]
            self.p_dict_kind = "v"
        else:
            value = (_point(d), [_vector(d, (3,)), {"s": _point(d)}])
            self.leaves = [("p[0]", "f"), ("p[1][0]", "v"), ('p[1][1]["s"]', "f")]
        return value

    def program(self) -> Case:
        d = self.d
        self.p_seq_kind = self.p_dict_kind = self.p_unpack = None
        params, values, wrt = ["x", "v"], {}, ["x", "v"]
        xform = d.choice(["float", "float", "float64", "0d"])
        xv = _point(d)
        values["x"] = {"float": xv, "float64": np.float64(xv), "0d": np.array(xv)}[xform]
        values["v"] = _vector(d, (3,))
        self.env.update(x="f", v="v")
        if d.boolean():
            params.append("m")
            values["m"] = _vector(d, (3, 3))
            self.env["m"] = "m"
            if d.integer(0, 3):
                wrt.append("m")
        if d.integer(0, 2):
            params.append("p")
            values["p"] = self.container()
            wrt.append("p")
        params.append("n")
        values["n"] = d.choice([1, 2, 3])
        kw_only = {"flag": d.boolean(), "mode": d.choice(["tanh", "linear"])}
        idx = np.array(d.choice([[2, 0, 1], [0, 0, 2], [1, 2, 2]]))
        lam = d.integer(0, 12) == 0
        self.closure = "c_scale" if not lam and d.integer(0, 5) == 0 else None
        if lam:
            body_expr = f"{self.expr('f')} + np.sum({self.expr('v')})"
            source = f"prog = lambda {', '.join(params)}, flag=False, mode='tanh', idx=IDX: {body_expr}\n"
        else:
            self.block("    ", 0, False, n=d.integer(2, 6))
            if d.integer(0, 5) == 0:
                self.lines.insert(0, '    """A generated program."""')
            body = "\n".join(self.lines)
            sig = ", ".join(params) + ", *, flag=False, mode='tanh', idx=IDX"
            source = f"def prog({sig}):\n{body}\n    return {self.result()}\n"
            if self.closure:
                source = "def _make(c_scale=0.625):\n" + "".join(
                    "    " + line + "\n" if line else "\n" for line in source.splitlines()) + \
                    "    return prog\n\n\nprog = _make()\n"
        self.uses_other = "fuzz_other." in source or self.needs_other
        used = set(re.findall(r"\bh_\w+", source))
        while True:  # helpers called by helpers
            more = used | {dep for h in used for dep in HELPERS[h][1]}
            if more == used:
                break
            used = more
        header = ["import math", "import numpy as np"] + (["import fuzz_other"] if self.uses_other else [])
        parts = ["\n".join(header) + "\n",
                 f"G_W = np.array([0.5, -0.25, 1.0])\nG_S = 0.75\nIDX = np.array({idx.tolist()})\n"]
        parts += [HELPERS[h][0] for h in sorted(used)]
        module = "\n\n".join(parts) + "\n\n" + source
        # call: positional for the first parameters, sometimes keywords; the keyword-only ones sometimes
        npos = d.integer(2, len(params))
        args = tuple(values[p] for p in params[:npos])
        kwargs = {p: values[p] for p in params[npos:]}
        for k, val in kw_only.items():
            if d.boolean():
                kwargs[k] = val
        wrt_t = tuple(w if d.integer(0, 2) or params.index(w) >= npos else params.index(w) for w in wrt)
        if d.integer(0, 4) == 0:
            wrt_t = wrt_t[: d.integer(1, len(wrt_t))]
        return Case("mixed" if self.aliasing else "noalias", module, args, kwargs, wrt_t, uses_other=self.uses_other)


def gen_mixed(d) -> Case:
    """Programs over a float ``x``, a (3,) array ``v``, sometimes a (3, 3)
    matrix ``m`` and a container ``p`` (tuple, list, dict, nested), with
    non-differentiated ``n``, ``flag``, ``mode`` and ``idx``: every construct
    of docs/subset.md's "What works", in random combinations."""
    return Mixed(d).program()


def gen_noalias(d) -> Case:
    """:func:`gen_mixed` without op= on names (``t = t * 2.0`` instead of
    ``t *= 2.0``), so that no array changes under another name: finds the
    bugs that aliasing bugs would hide."""
    return Mixed(d, aliasing=False).program()


GENERATORS = {"scalar": gen_scalar, "array": gen_array, "shaped": gen_shaped, "mixed": gen_mixed,
              "noalias": gen_noalias}


# ---------------------------------------------------------------- drawing cases


def random_case(generator: str, seed) -> Case:
    """The case ``generator`` draws from ``random.Random(seed)``."""
    return GENERATORS[generator](RandomDraw(seed))


@st.composite
def cases(draw, generator: str):
    """Hypothesis strategy: a :class:`Case` of ``generator``."""
    return GENERATORS[generator](HypothesisDraw(draw))


@st.composite
def programs(draw, arrays: bool = False):
    """Source text of ``def prog(x, y)`` (the helpers are in :data:`HEADER`)."""
    return gen_simple_source(HypothesisDraw(draw), arrays)


@st.composite
def shaped_programs(draw):
    """(source of ``def prog(x, y)``, y's shape); see :func:`gen_shaped_source`."""
    return gen_shaped_source(HypothesisDraw(draw))


# ---------------------------------------------------------------- loading

_counter = itertools.count()
_dir = tempfile.mkdtemp(prefix="srcdiff_fuzz_")
with open(os.path.join(_dir, "fuzz_other.py"), "w") as _fh:
    _fh.write(OTHER_MODULE)
if _dir not in sys.path:
    sys.path.insert(0, _dir)


def load_module(text: str, name: str = "prog"):
    """Write ``text`` to a module file, import it and return its ``name``."""
    mod = f"fuzz_prog_{os.getpid()}_{next(_counter)}"
    path = os.path.join(_dir, mod + ".py")
    with open(path, "w") as fh:
        fh.write(text)
    spec = importlib.util.spec_from_file_location(mod, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod] = module
    spec.loader.exec_module(module)
    return getattr(module, name)


def load(source: str):
    """Import ``prog`` from ``source`` preceded by :data:`HEADER`."""
    return load_module(HEADER + source)


# ---------------------------------------------------------------- flattening the differentiated arguments


def _leaves(obj, out):
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            _leaves(getattr(obj, f.name), out)
    elif isinstance(obj, dict):
        for k in obj:
            _leaves(obj[k], out)
    elif isinstance(obj, (tuple, list)):
        for e in obj:
            _leaves(e, out)
    else:
        out.append(np.asarray(obj, dtype=float).ravel())
    return out


def flat(obj) -> np.ndarray:
    parts = _leaves(obj, [])
    return np.concatenate(parts) if parts else np.zeros(0)


def _rebuild(template, z, off=0):
    """``template``'s structure with leaves from ``z[off:]`` (slices, so that
    autograd's boxes pass through); returns (value, next offset)."""
    if dataclasses.is_dataclass(template):
        values = {}
        for f in dataclasses.fields(template):
            values[f.name], off = _rebuild(getattr(template, f.name), z, off)
        return dataclasses.replace(template, **values), off
    if isinstance(template, dict):
        out = {}
        for k, v in template.items():
            out[k], off = _rebuild(v, z, off)
        return out, off
    if isinstance(template, (tuple, list)):
        items = []
        for v in template:
            item, off = _rebuild(v, z, off)
            items.append(item)
        return (type(template)(*items) if hasattr(template, "_fields") else type(template)(items)), off
    if isinstance(template, np.ndarray):
        n = template.size
        return z[off:off + n].reshape(template.shape), off + n
    if isinstance(template, np.floating) and isinstance(z, np.ndarray):
        return type(template)(z[off]), off + 1
    return (float(z[off]) if isinstance(z, np.ndarray) else z[off]), off + 1


def structure(obj):
    """Container types and leaf shapes, to compare a gradient with its argument."""
    if dataclasses.is_dataclass(obj):
        return (type(obj).__name__, tuple((f.name, structure(getattr(obj, f.name))) for f in dataclasses.fields(obj)))
    if isinstance(obj, dict):
        return ("dict", tuple((k, structure(v)) for k, v in obj.items()))
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__, tuple(structure(v) for v in obj))
    return ("leaf", np.shape(obj))


class Prepared:
    """``case`` with its differentiated arguments as one flat vector."""

    def __init__(self, case: Case, fn):
        self.case, self.fn = case, fn
        import inspect

        self.names = list(inspect.signature(fn).parameters)
        self.slots = []  # ("arg", position) or ("kw", name), in wrt order
        for w in case.wrt:
            name = self.names[w] if isinstance(w, int) else w
            pos = self.names.index(name)
            self.slots.append(("arg", pos) if pos < len(case.args) else ("kw", name))
        self.templates = [self.get(case.args, case.kwargs, s) for s in self.slots]

    @staticmethod
    def get(args, kwargs, slot):
        return args[slot[1]] if slot[0] == "arg" else kwargs[slot[1]]

    def point(self) -> np.ndarray:
        return flat(self.templates)

    def call_at(self, z, fn=None):
        args, kwargs = list(copy.deepcopy(self.case.args)), copy.deepcopy(self.case.kwargs)
        off = 0
        for slot, t in zip(self.slots, self.templates):
            val, off = _rebuild(t, z, off)
            if slot[0] == "arg":
                args[slot[1]] = val
            else:
                kwargs[slot[1]] = val
        return (fn or self.fn)(*args, **kwargs)

    def numeric(self, eps):
        z0 = self.point()
        out = np.zeros_like(z0)
        for k in range(len(z0)):
            zp, zm = z0.copy(), z0.copy()
            zp[k] += eps
            zm[k] -= eps
            out[k] = (float(np.real(self.call_at(zp))) - float(np.real(self.call_at(zm)))) / (2 * eps)
        return out


# ---------------------------------------------------------------- the oracles


@dataclass
class Outcome:
    """What :func:`check_case` found.  ``kind`` is one of ok, skipped (finite
    differences unreliable: only the value and autograd were compared),
    invalid (the program itself fails or is out of range: not a test),
    refusal (a located SrcdiffError), internal, value, gradient, autograd."""

    kind: str
    detail: str = ""
    inexact_value: bool = False  # srcdiff's value is close to, not bit-identical with, f's
    autograd_checked: bool = False
    error: str = ""  # exception type and first line, for errors
    numeric: object = None
    srcdiff_grad: object = None
    autograd_grad: object = None

    @property
    def failed(self) -> bool:
        return self.kind in FAILURES


FAILURES = ("internal", "value", "gradient", "autograd")


def _scalar(v):
    return np.size(v) == 1 and np.issubdtype(np.asarray(v).dtype, np.number)


def _is_refusal(exc) -> bool:
    import srcdiff

    return (isinstance(exc, srcdiff.SrcdiffError) and bool(getattr(exc, "filename", None))
            and bool(getattr(exc, "lineno", None)) and "internal" not in str(exc).lower())


def _autograd_module(text: str) -> str:
    return text.replace("import numpy as np", "import autograd.numpy as np")


def check_case(case: Case, *, use_autograd: bool = True, fn=None) -> Outcome:
    """Run the oracles on ``case`` (see the module docstring)."""
    import srcdiff

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fn = fn or load_module(case.module)
            ref = case.call(fn)
        except Exception as exc:  # the program itself is broken: a generator problem, not a finding
            return Outcome("invalid", f"f raised {type(exc).__name__}: {exc}")
        if not _scalar(ref) or not np.isfinite(ref) or abs(ref) > 1e4:
            return Outcome("invalid", f"f returned {ref!r}")
        prep = Prepared(case, fn)
        try:
            value, g = srcdiff.value_and_grad(fn, wrt=case.wrt)(*copy.deepcopy(case.args),
                                                                 **copy.deepcopy(case.kwargs))
        except Exception as exc:
            head = str(exc).splitlines()[0] if str(exc) else ""
            err = f"{type(exc).__name__}: {head}"
            if _is_refusal(exc):
                m = re.search(r"(?:name|variable) '(\w+)' is (?:not defined|used before it is assigned)", head)
                if m and not re.search(rf"\b{m.group(1)}\b", case.module):
                    # the compiler's own name leaked into a refusal: an internal error
                    return Outcome("internal", str(exc), error="spurious refusal: " + err)
                return Outcome("refusal", str(exc), error=err)
            return Outcome("internal", traceback.format_exc(limit=-6), error=err)
        if not isinstance(case.wrt, tuple):
            g = (g,)
        out = Outcome("ok", srcdiff_grad=g)
        # oracle 1: the forward value
        if not np.array_equal(np.asarray(value), np.asarray(ref)):
            if not (_scalar(value) and np.allclose(value, ref, rtol=1e-12, atol=0)):
                out.kind, out.detail = "value", f"srcdiff value {value!r} != f value {ref!r}"
                return out
            out.inexact_value = True
        # the gradient's structure mirrors the arguments
        if structure(tuple(g)) != structure(tuple(prep.templates)):
            out.kind, out.detail = "gradient", f"gradient structure {structure(tuple(g))} != arguments' " \
                                               f"{structure(tuple(prep.templates))}"
            return out
        gflat = flat(list(g))
        if not np.all(np.isfinite(gflat)):
            out.kind, out.detail = "skipped", "non-finite gradient"
            return out
        # oracle 3: autograd on the same module, when it computes the same value
        if use_autograd:
            ag = _autograd_grad(case, prep)
            if ag is not None:
                out.autograd_checked = True
                out.autograd_grad = ag
                if not np.allclose(gflat, ag, rtol=1e-7, atol=1e-9):
                    out.kind = "autograd"
                    out.detail = f"srcdiff {gflat.tolist()}\nautograd {ag.tolist()}"
                    return out
        # oracle 2: central finite differences, where two step sizes agree
        try:
            n1, n2 = prep.numeric(1e-6), prep.numeric(1e-4)
        except Exception as exc:
            out.kind, out.detail = "skipped", f"finite differences raised {type(exc).__name__}"
            return out
        out.numeric = n1
        if not (np.all(np.isfinite(n1)) and np.all(np.abs(n1) < 1e5) and
                np.allclose(n1, n2, rtol=1e-3, atol=1e-5)):
            out.kind, out.detail = "skipped", "finite differences unreliable here"
            return out
        if not np.allclose(gflat, n1, rtol=1e-5, atol=1e-6):
            if out.autograd_checked:
                # srcdiff and autograd agree, finite differences not: a branch decided by rounding
                # (np.sum(a) > 0 for an a that sums to 0 exactly), where f is not differentiable
                out.kind, out.detail = "skipped", "finite differences disagree with srcdiff and autograd alike"
                return out
            out.kind = "gradient"
            out.detail = f"srcdiff {gflat.tolist()}\nnumeric {n1.tolist()}"
        return out


def _autograd_grad(case: Case, prep: Prepared):
    """autograd's gradient, flattened, or None where autograd cannot run the
    program or computes another value (in-place changes are not seen by its boxes)."""
    try:
        import autograd
    except ImportError:  # pragma: no cover
        return None
    try:
        afn = load_module(_autograd_module(case.module))
        value, ag = autograd.value_and_grad(lambda z: prep.call_at(z, afn))(prep.point())
        ref = case.call(prep.fn)
        if not np.allclose(value, ref, rtol=1e-12, atol=0):
            return None
        ag = np.asarray(ag, dtype=float)
        return ag if np.all(np.isfinite(ag)) else None
    except Exception:
        return None


# ---------------------------------------------------------------- reports


def to_source(v) -> str:
    """Python source that rebuilds ``v`` exactly."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return f"np.array({[float(t) for t in v.ravel()]!r}).reshape({v.shape!r})" if v.ndim else \
                f"np.array({float(v)!r})"
        return f"np.array({v.tolist()!r})"
    if isinstance(v, np.floating):
        return f"np.float64({float(v)!r})"
    if dataclasses.is_dataclass(v) or hasattr(v, "_fields"):
        names = [f.name for f in dataclasses.fields(v)] if dataclasses.is_dataclass(v) else v._fields
        return f"fuzz_other.{type(v).__name__}(" + ", ".join(f"{n}={to_source(getattr(v, n))}" for n in names) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {to_source(x)}" for k, x in v.items()) + "}"
    if isinstance(v, tuple):
        return "(" + "".join(to_source(x) + ", " for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(to_source(x) for x in v) + "]"
    return repr(v)


def reproducer(case: Case, outcome: Outcome, note: str = "") -> str:
    """A standalone script: the program, its arguments, and the check that fails."""
    head = [f"# srcdiff fuzz finding: {outcome.kind} ({case.generator}) {note}".rstrip()]
    for line in (outcome.error or outcome.detail).splitlines()[:12]:
        head.append(f"# {line}")
    pre = ""
    if case.uses_other:
        pre = ("import os\nimport sys\n\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  "
               "# fuzz_other.py is next to this file\n")
    expected = ""
    if outcome.numeric is not None:
        expected += f"FINITE_DIFFERENCES = {np.asarray(outcome.numeric).tolist()!r}\n"
    if outcome.autograd_grad is not None:
        expected += f"AUTOGRAD = {np.asarray(outcome.autograd_grad).tolist()!r}\n"
    main = f'''

ARGS = {to_source(case.args)}
KWARGS = {to_source(case.kwargs)}
WRT = {case.wrt!r}
{expected}
if __name__ == "__main__":
    import copy

    import srcdiff

    print("f:", prog(*copy.deepcopy(ARGS), **copy.deepcopy(KWARGS)))
    value, grads = srcdiff.value_and_grad(prog, wrt=WRT)(*copy.deepcopy(ARGS), **copy.deepcopy(KWARGS))
    print("srcdiff value:", value)
    print("srcdiff gradient:", grads)
'''
    if outcome.numeric is not None:
        main += '    print("finite differences (flattened):", FINITE_DIFFERENCES)\n'
    if outcome.autograd_grad is not None:
        main += '    print("autograd (flattened):", AUTOGRAD)\n'
    return "\n".join(head) + "\n" + pre + case.module + main


def error_class(outcome: Outcome) -> str:
    """A key that groups outcomes with the same cause (errors by their
    message with names and numbers blanked out)."""
    if outcome.kind in ("internal", "refusal"):
        text = re.sub(r"\S+\.py:\d+: ", "", outcome.error)
        text = re.sub(r"'[^']*'", "'…'", text)
        text = re.sub(r"\b[a-zA-Z_]+\d+\b", "NAME", text)
        text = re.sub(r"\d+", "N", text)
        return f"{outcome.kind}: {text[:160]}"
    return outcome.kind


def _split_sum(text):
    """``text`` split at its top-level `` + ``."""
    parts, depth, last = [], 0, 0
    for k, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and text.startswith(" + ", k):
            parts.append(text[last:k])
            last = k + 3
    return parts + [text[last:]]


def minimize(case: Case, outcome: Outcome, budget: int = 300, best: list | None = None) -> tuple[Case, Outcome]:
    """Delete lines, whole blocks, or a block's header (keeping its body)
    while the same class of failure remains; returns the smallest case found
    (also kept in ``best[0]``, for a caller that interrupts the search)."""
    key = error_class(outcome)
    best = best if best is not None else []
    best[:] = [(case, outcome)]
    lines = case.module.splitlines()
    tries = 0

    def block_end(i):
        ind = len(lines[i]) - len(lines[i].lstrip())
        j = i + 1
        if lines[i].rstrip().endswith(":"):
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > ind):
                j += 1
        return j

    changed = True
    while changed and tries < budget:
        changed = False
        i = 0
        while i < len(lines) and tries < budget:
            line = lines[i]
            if not line.strip() or line.startswith(("import", "def prog", "prog =", "def _make")):
                i += 1
                continue
            j = block_end(i)
            cands = [lines[:i] + lines[j:]]
            stripped = line.lstrip()
            if stripped.startswith("return "):  # drop one term of a sum
                terms = _split_sum(stripped[7:])
                for t in range(len(terms) if len(terms) > 1 else 0):
                    rest = " + ".join(terms[:t] + terms[t + 1:])
                    cands.append(lines[:i] + [line[:len(line) - len(stripped)] + "return " + rest] + lines[i + 1:])
            if j > i + 1 and line.lstrip().startswith(("if ", "for ", "while ", "else", "elif ")):
                cands.append(lines[:i] + [ln[4:] for ln in lines[i + 1:j]] + lines[j:])
            for cand in cands:
                text = "\n".join(cand) + "\n"
                try:
                    compile(text, "<fuzz>", "exec")
                except SyntaxError:
                    continue
                tries += 1
                c = Case(case.generator, text, case.args, case.kwargs, case.wrt, "fuzz_other." in text)
                o = check_case(c)
                if error_class(o) == key:
                    best[0], lines, changed = (c, o), cand, True
                    break
            else:
                i += 1
    return best[0]
