"""Command line: ``python -m srcdiff show FILE.py:FUNC [--wrt a,b] [--shapes
a=2x3,b=float]`` prints the generated gradient source (specialized for the
given argument shapes, or the generic adjoint without them); ``python -m
srcdiff graph FILE.py:FUNC [--dot]`` prints the SSA graph.  Exit status 0 on
success, 2 on bad input."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import os
import re
import sys
from typing import Any

from .errors import SrcdiffError


class CliError(Exception):
    pass


def load_function(spec: str) -> Any:
    """Import ``FILE.py`` and return its function ``FUNC`` (a dotted name
    reaches into modules the file imports).  Whatever the file prints while
    it is imported goes to standard error, so standard output holds only
    srcdiff's own output."""
    if ":" not in spec:
        raise CliError(f"expected FILE.py:FUNCTION, got {spec!r}")
    path, _, name = spec.rpartition(":")
    if not os.path.isfile(path):
        raise CliError(f"no such file: {path}")
    mod_name = "_srcdiff_cli_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    if module_spec is None or module_spec.loader is None:
        raise CliError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    directory = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, directory)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            module_spec.loader.exec_module(module)
    except SrcdiffError:
        raise
    except Exception as exc:  # the user's module failed to import
        raise CliError(f"importing {path} failed: {type(exc).__name__}: {exc}") from None
    finally:
        if sys.path and sys.path[0] == directory:
            sys.path.pop(0)
    obj: Any = module
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CliError(f"{path} has no function {name!r}")
    obj = getattr(obj, "__srcdiff_wrapped__", obj)
    if not callable(obj):
        raise CliError(f"{name} in {path} is not a function")
    return obj


def _wrt(text: str | None) -> Any:
    if text is None:
        return None
    items: list[Any] = [int(w) if w.strip().lstrip("-").isdigit() else w.strip() for w in text.split(",") if w]
    return items[0] if len(items) == 1 else tuple(items)


# -- example arguments from --shapes ------------------------------------------------
SHAPES_HELP = ("example argument shapes, e.g. 'W=2x3,b=3,x=(),n=int,y=float': "
               "NxM... or () for a float64 array (add :float32 or another dtype, e.g. 3x3:float32), "
               "float, int, bool, a NumPy scalar type (float32), int(5) or float(0.3) for a value")
_SCALAR = re.compile(r"^(float|int|bool)(?:\((.*)\))?$")
_SHAPE = re.compile(r"^(\(\s*\)|\(\s*\d+\s*(?:,\s*\d+\s*)*,?\s*\)|\d+(?:x\d+)*)(?::(\w+))?$")


def parse_shapes(text: str) -> dict[str, str]:
    """``"W0=2x2,x=(2, 3),y=float"`` -> ``{"W0": "2x2", "x": "(2, 3)", "y":
    "float"}`` (commas inside parentheses do not separate)."""
    items: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    out: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        name, eq, spec = item.partition("=")
        if not eq or not name.strip() or not spec.strip():
            raise CliError(f"--shapes: expected NAME=SHAPE, got {item.strip()!r}")
        out[name.strip()] = spec.strip()
    return out


def example_value(spec: str, seed: int = 0) -> Any:
    """An example argument of the type and shape ``spec`` describes (the
    syntax of ``--shapes``).  Floats are drawn from [0.1, 0.9] so that logs
    and square roots stay finite; ints are 1 and integer arrays 0 (valid
    as loop counts and indices) unless a value is given, as in ``int(5)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    m = _SCALAR.match(spec)
    if m:
        kind, value = m.groups()
        if value is None:
            return {"float": float(rng.uniform(0.1, 0.9)), "int": 1, "bool": True}[kind]
        try:
            return {"float": float, "int": int, "bool": lambda v: v.strip() in ("True", "1")}[kind](value)
        except ValueError:
            raise CliError(f"--shapes: cannot read the value in {spec!r}") from None
    m = _SHAPE.match(spec)
    if m is None:
        dtype = _dtype(spec, None)
        if dtype is None:
            raise CliError(f"--shapes: cannot read {spec!r}: expected a shape such as 2x3, 3 or () "
                           "(optionally with :float32 or another dtype), or float, int, bool or a NumPy "
                           "scalar type such as float32")
        return dtype.type(rng.uniform(0.1, 0.9) if dtype.kind in "fc" else 1)
    dims, dtype_name = m.groups()
    shape = tuple(int(d) for d in re.findall(r"\d+", dims))
    dtype = np.dtype(np.float64) if dtype_name is None else _dtype(dtype_name, spec)
    assert dtype is not None
    if dtype.kind in "fc":
        return rng.uniform(0.1, 0.9, size=shape).astype(dtype)
    if dtype.kind == "b":
        return (np.arange(int(np.prod(shape))) % 2 == 0).reshape(shape)
    return np.zeros(shape, dtype=dtype)


def _dtype(name: str, spec: str | None) -> Any:
    import numpy as np

    try:
        dtype = np.dtype(name)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "fcbiu" or not name[:1].isalpha():
        if spec is None:
            return None
        raise CliError(f"--shapes: unknown dtype {name!r} in {spec!r} (try float64, float32, int64 or bool)")
    return dtype


def example_arguments(fn: Any, shapes: dict[str, str]) -> tuple[tuple, dict[str, Any]]:
    """Positional and keyword arguments for a call of ``fn`` built from
    ``shapes`` (``{parameter: spec}``); parameters left out take their
    defaults."""
    params = inspect.signature(fn).parameters
    unknown = [n for n in shapes if n not in params]
    if unknown:
        raise CliError(f"--shapes names {', '.join(unknown)}, which "
                       f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of "
                       f"{fn.__name__}({', '.join(params)})")
    missing = [n for n, p in params.items() if n not in shapes and p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise CliError(f"--shapes gives no shape for {', '.join(missing)} "
                       f"(a parameter without a default needs one)")
    positional = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    last = max((i for i, n in enumerate(positional) if n in shapes), default=-1)
    args = tuple(example_value(shapes[n], seed=i) if n in shapes else params[n].default
                 for i, n in enumerate(positional[:last + 1]))
    kwargs = {n: example_value(shapes[n], seed=len(positional) + i)
              for i, n in enumerate(params) if n in shapes and n not in positional}
    return args, kwargs


def _one(names: tuple) -> Any:
    return names[0] if len(names) == 1 else names


def _differentiable(value: Any) -> bool:
    import numpy as np

    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "fc"
    return True


def show_source(fn: Any, wrt: Any = None, shapes: dict[str, str] | None = None) -> str:
    """What ``python -m srcdiff show`` prints: a comment line saying which
    version of the adjoint follows, then its source.  With ``shapes`` it is
    the version a call with arguments of those shapes compiles (what
    ``srcdiff.source(g)`` shows after such a call); without, the generic
    adjoint.  ``wrt`` defaults to every parameter (with ``shapes``, every
    parameter given a float type)."""
    from . import api, display

    if shapes is None:
        if wrt is None:
            wrt = _one(tuple(inspect.signature(fn).parameters))
        g = api.grad(fn, wrt=wrt)
        code = api.source(g)
        header = "# generic adjoint: argument types unknown (--shapes NAME=SHAPE,... shows the specialized code)"
        return f"{header}\n{code}"
    args, kwargs = example_arguments(fn, shapes)
    if wrt is None:
        values = dict(zip(inspect.signature(fn).parameters, args)) | kwargs
        names = tuple(n for n, v in values.items() if n in shapes and _differentiable(v))
        if not names:
            raise CliError("--shapes gives no float argument to differentiate; name one with --wrt")
        wrt = _one(names)
    g = api.grad(fn, wrt=wrt)
    with contextlib.redirect_stdout(sys.stderr):  # compiling runs the forward pass once, prints and all
        g.compiled_for(args, kwargs)
    code = api.source(g)
    spec = display.specialization(g) or ", ".join(f"{k}={v}" for k, v in shapes.items())
    return f"# specialized for {spec}\n{code}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="srcdiff", description="Show the gradient code srcdiff generates.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the generated gradient source of FILE.py:FUNC")
    show.add_argument("target", help="FILE.py:FUNCTION")
    show.add_argument("--wrt", help="comma-separated parameter names or positions (default: all parameters; "
                      "with --shapes, all given a float type)")
    show.add_argument("--shapes", help=SHAPES_HELP + "; shows the code specialized for them")
    gr = sub.add_parser("graph", help="print the SSA computation graph of FILE.py:FUNC")
    gr.add_argument("target", help="FILE.py:FUNCTION")
    gr.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of text")
    gr.add_argument("--wrt", help="parameters that carry gradients (marks active values with *)")
    args = parser.parse_args(argv)
    from . import api, display

    try:
        fn = load_function(args.target)
        wrt = _wrt(args.wrt)
        if args.command == "show":
            shapes = parse_shapes(args.shapes) if args.shapes is not None else None
            print(show_source(fn, wrt, shapes), end="")
        else:
            g = api.graph(fn, wrt=wrt)
            print(display.graph_dot(g) if args.dot else g)
        return 0
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except (CliError, SrcdiffError) as exc:
        msg = str(exc).splitlines()
        print("srcdiff: " + " | ".join(m.strip() for m in msg), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
