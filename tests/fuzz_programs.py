"""A generator of random small programs from the subset srcdiff supports,
for differential testing against finite differences."""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import tempfile

import numpy as np
from hypothesis import strategies as st

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


@st.composite
def programs(draw, arrays: bool = False):
    """Source text of ``def prog(x, y)`` returning a scalar."""
    names = ["x", "y"]
    counter = itertools.count()
    lines: list[str] = []

    def var():
        return draw(st.sampled_from(names))

    def expr():
        if draw(st.booleans()):
            return draw(st.sampled_from(UNARY)).format(a=var())
        text = draw(st.sampled_from(BINARY))
        if arrays:
            text = text.replace("if {b} > 0.2", "if np.sum({b}) > 0.2")
        return text.format(a=var(), b=var())

    def cond():
        v = var()
        c = draw(st.sampled_from(["0.0", "0.5", "-0.5", "1.0"]))
        op = draw(st.sampled_from([">", "<"]))
        test = f"np.sum({v}) {op} {c}" if arrays else f"{v} {op} {c}"
        return test

    def block(depth: int, indent: str, in_loop: bool) -> None:
        n = draw(st.integers(1, 3))
        for _ in range(n):
            kind = draw(st.sampled_from(["assign", "assign", "assign", "if", "for", "while", "pair", "jump", "rec",
                                         "list", "ret", "whilecond"]))
            if kind == "ret" and (in_loop or depth == 0):
                kind = "assign"
            if kind in ("if", "for", "while") and depth >= 2:
                kind = "assign"
            if kind == "jump" and not in_loop:
                kind = "assign"
            if kind == "assign":
                target = draw(st.sampled_from(names + [f"v{next(counter)}"]))
                lines.append(f"{indent}{target} = {expr()}")
                if target not in names:
                    names.append(target)
            elif kind == "pair":
                a, b = f"p{next(counter)}", f"q{next(counter)}"
                lines.append(f"{indent}{a}, {b} = h_pair({var()}, {var()})")
                names.extend([a, b])
            elif kind == "rec":
                target = draw(st.sampled_from(names))
                lines.append(f"{indent}{target} = h_rec({var()}, {draw(st.integers(0, 2))})")
            elif kind == "list":
                lst, j = f"l{next(counter)}", f"j{next(counter)}"
                target = draw(st.sampled_from(names))
                lines.append(f"{indent}{lst} = []")
                lines.append(f"{indent}for {j} in range({draw(st.integers(1, 3))}):")
                lines.append(f"{indent}    {target} = {expr()}")
                lines.append(f"{indent}    {lst}.append({target})")
                combine = draw(st.sampled_from([f"np.sum(np.stack({lst}))", f"sum({lst})", f"{lst}[-1]"]))
                lines.append(f"{indent}{target} = {combine}" if not arrays else
                             f"{indent}{target} = {combine} * np.ones(3)")
            elif kind == "ret":
                lines.append(f"{indent}if {cond()}:")
                lines.append(f"{indent}    return " + (f"np.sum({var()})" if arrays else var()) + " * 1.5")
            elif kind == "whilecond":
                target = draw(st.sampled_from(names))
                k = f"k{next(counter)}"
                lines.append(f"{indent}{k} = 0")
                limit = "np.sum(np.abs({t}))" if arrays else "abs({t})"
                lines.append(f"{indent}while {limit.format(t=target)} > 0.05 and {k} < 6:")
                lines.append(f"{indent}    {k} = {k} + 1")
                lines.append(f"{indent}    {target} = {target} * 0.5")
            elif kind == "jump":
                lines.append(f"{indent}if {cond()}:")
                lines.append(f"{indent}    {draw(st.sampled_from(['break', 'continue']))}")
            elif kind == "if":
                lines.append(f"{indent}if {cond()}:")
                before = list(names)
                block(depth + 1, indent + "    ", in_loop)
                names[:] = before  # names first bound in a branch are not used after it
                if draw(st.booleans()):
                    lines.append(f"{indent}else:")
                    block(depth + 1, indent + "    ", in_loop)
                    names[:] = before
            elif kind == "for":
                i = f"i{next(counter)}"
                lines.append(f"{indent}for {i} in range({draw(st.integers(1, 3))}):")
                before = list(names)
                block(depth + 1, indent + "    ", True)
                names[:] = before
            elif kind == "while":
                k = f"k{next(counter)}"
                lines.append(f"{indent}{k} = 0")
                lines.append(f"{indent}while {k} < {draw(st.integers(1, 3))}:")
                lines.append(f"{indent}    {k} = {k} + 1")
                before = list(names)
                block(depth + 1, indent + "    ", True)
                names[:] = before

    block(0, "    ", False)
    names[:] = [n for n in names if n in ("x", "y") or n.startswith(("v", "p", "q"))]
    used = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    total = " + ".join(f"np.sum({u})" if arrays else u for u in used)
    body = "\n".join(lines)
    return f"def prog(x, y):\n{body}\n    return {total} + 0.0 * x\n" if not arrays else \
        f"def prog(x, y):\n{body}\n    return {total} + 0.0 * np.sum(x)\n"


Y_SHAPES = [(3, 4), (4,), (3, 1), (1, 4), ()]


def _reduced(shape: tuple, axis, keepdims: bool) -> tuple:
    nd = len(shape)
    axes = range(nd) if axis is None else [a % nd for a in (axis if isinstance(axis, tuple) else (axis,))]
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


@st.composite
def shaped_programs(draw):
    """``def prog(x, y)`` with ``x`` of shape (3, 4) and ``y`` of a shape that
    broadcasts against it, mixing reductions over axes (with and without
    keepdims, function and method forms), broadcasting arithmetic and the
    shifted log-sum-exp of a stable softmax.  Returns (source, y's shape)."""
    yshape = draw(st.sampled_from(Y_SHAPES))
    shapes = {"x": (3, 4), "y": yshape}
    counter = itertools.count()
    lines: list[str] = []

    def pick(pred=lambda s: True):
        return draw(st.sampled_from(sorted(n for n, s in shapes.items() if pred(s))))

    for _ in range(draw(st.integers(1, 5))):
        target = f"v{next(counter)}"
        kind = draw(st.sampled_from(["unary", "binary", "binary", "reduce", "reduce", "softmax", "setitem"]))
        if kind == "unary":
            a = pick()
            text, shape = draw(st.sampled_from(UNARY[:4] + ["np.exp(0.1 * {a}) * 2.0"])).format(a=a), shapes[a]
        elif kind == "binary":
            a, b = pick(), pick()
            try:
                shape = tuple(np.broadcast_shapes(shapes[a], shapes[b]))
            except ValueError:
                continue
            text = draw(st.sampled_from(["{a} + {b}", "{a} - {b}", "{a} * {b}", "{a} / ({b} * {b} + 1.0)"]))
            text = text.format(a=a, b=b)
        elif kind == "reduce":
            a = pick(lambda s: len(s) >= 1)
            nd = len(shapes[a])
            axis = draw(st.sampled_from([None, 0, -1] + ([1, (0, 1)] if nd == 2 else [])))
            keep = draw(st.booleans())
            how = draw(st.sampled_from(["np.sum({a}{k})", "np.mean({a}{k})", "{a}.sum({k0})", "{a}.mean({k0})",
                                        "np.max({a}{k})"]))
            kw = f"axis={axis!r}" + (", keepdims=True" if keep else "")
            text = how.format(a=a, k=", " + kw, k0=kw)
            shape = _reduced(shapes[a], axis, keep)
        elif kind == "setitem":
            # a new (3, 4) array, assigned into: rows, columns, elements, in place, in a loop
            a, b = pick(lambda s: s == (3, 4)), pick()
            lines.append(f"    {target} = {a} * 1.0")
            how = draw(st.sampled_from(["row", "col", "elem", "aug", "loop", "mask"]))
            if how == "row":
                rows = [n for n, s in shapes.items() if s in ((), (4,))]
                b = draw(st.sampled_from(sorted(rows))) if rows else None
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
            axis = draw(st.sampled_from([0, 1]))
            z = f"z{next(counter)}"
            lines.append(f"    {z} = {a} - np.max({a}, axis={axis}, keepdims=True)")
            text = f"{z} - np.log(np.sum(np.exp({z}), axis={axis}, keepdims=True))"
            shape = shapes[a]
        lines.append(f"    {target} = {text}")
        shapes[target] = shape
    used = draw(st.lists(st.sampled_from(sorted(shapes)), min_size=1, max_size=3))
    total = " + ".join(draw(st.sampled_from(["np.sum({u})", "np.mean({u})", "np.sum({u} * {u})"])).format(u=u)
                       for u in used)
    body = "\n".join(lines) or "    pass"
    return f"def prog(x, y):\n{body}\n    return {total} + 0.0 * np.sum(x) + 0.0 * np.sum(y)\n", yshape


_counter = itertools.count()
_dir = tempfile.mkdtemp(prefix="srcdiff_fuzz_")


def load(source: str):
    """Write ``source`` to a module file and import ``prog`` from it."""
    name = f"fuzz_prog_{os.getpid()}_{next(_counter)}"
    path = os.path.join(_dir, name + ".py")
    with open(path, "w") as fh:
        fh.write(HEADER + source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.prog
