"""Command line: ``python -m srcdiff show FILE.py:FUNC [--wrt a,b]`` prints
the generated gradient source; ``python -m srcdiff graph FILE.py:FUNC
[--dot]`` prints the SSA graph.  Exit status 0 on success, 2 on bad input."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

from .errors import SrcdiffError


class CliError(Exception):
    pass


def load_function(spec: str) -> Any:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="srcdiff", description="Show the gradient code srcdiff generates.")
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the generated gradient source of FILE.py:FUNC")
    show.add_argument("target", help="FILE.py:FUNCTION")
    show.add_argument("--wrt", help="comma-separated parameter names or positions (default: all parameters)")
    gr = sub.add_parser("graph", help="print the SSA computation graph of FILE.py:FUNC")
    gr.add_argument("target", help="FILE.py:FUNCTION")
    gr.add_argument("--dot", action="store_true", help="print Graphviz DOT instead of text")
    gr.add_argument("--wrt", help="parameters that carry gradients (marks active values with *)")
    args = parser.parse_args(argv)
    from . import api

    try:
        fn = load_function(args.target)
        wrt = _wrt(args.wrt)
        if args.command == "show":
            if wrt is None:
                import inspect

                wrt = tuple(inspect.signature(fn).parameters)
                if len(wrt) == 1:
                    wrt = wrt[0]
            print(api.source(api.grad(fn, wrt=wrt)), end="")
        else:
            g = api.graph(fn, wrt=wrt)
            print(g.to_dot() if args.dot else g)
        return 0
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except (CliError, SrcdiffError) as exc:
        msg = str(exc).splitlines()
        print("srcdiff: " + " | ".join(m.strip() for m in msg), file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
