"""Frontend: read a function's source, parse it with gast, and resolve the
names it refers to (globals, closure variables, builtins) at compile time."""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any

import gast

from ..errors import SrcdiffError

MISSING = object()


@dataclass
class Source:
    """A parsed user function and where it came from."""

    fn: Any
    node: ast.FunctionDef
    filename: str
    lines: list[str]  # the file's lines (1-based access via line())
    globals: dict
    closure: dict[str, Any] = field(default_factory=dict)
    # the class of the first parameter when the function is compiled as a method of it
    # (grad of a bound method, or a self.f() call): self.f() calls resolve there
    self_class: Any = None
    # functions defined inside this one (lifted by normalize): name -> the outer variables
    # each reads, passed to it as extra keyword arguments
    lifted: dict[str, list[str]] = field(default_factory=dict)

    def line(self, lineno: int | None) -> str:
        if not lineno or lineno > len(self.lines):
            return ""
        return self.lines[lineno - 1].strip()

    def error(self, message: str, node: Any = None, hint: str | None = None,
              lineno: int | None = None) -> SrcdiffError:
        if lineno is None:
            lineno = getattr(node, "lineno", None)
        return SrcdiffError(message, filename=self.filename, lineno=lineno,
                            construct=self.line(lineno) or None, hint=hint)

    def resolve_global(self, name: str) -> Any:
        """The object a free name refers to, or MISSING."""
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        b = self.globals.get("__builtins__", builtins)
        if isinstance(b, dict):
            return b.get(name, MISSING)
        return getattr(b, name, MISSING)


def _unwrap(fn: Any) -> Any:
    while True:
        inner = getattr(fn, "__srcdiff_wrapped__", None)
        if inner is None:
            return fn
        fn = inner


def parse_function(fn: Any) -> Source:
    """Parse ``fn``'s source into a standard-library ``ast.FunctionDef`` whose
    line numbers are those of the user's file."""
    fn = _unwrap(fn)
    self_class = None
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
        # a bound method: compiled as its function, the object passed as the first argument
        self_class = type(fn.__self__) if not isinstance(fn.__self__, type) else None
        fn = fn.__func__
    self_class = getattr(fn, "__srcdiff_self_class__", self_class)
    made = getattr(fn, "__srcdiff_source__", None)
    if made is not None:  # a function defined inside the function being compiled (normalize lifts it)
        return made
    if not isinstance(fn, types.FunctionType):
        raise SrcdiffError(
            f"cannot differentiate {fn!r}: it is not a Python function with source code",
            hint="pass a function defined with def (or lambda) in a .py file or notebook cell",
        )
    code = fn.__code__
    filename = code.co_filename
    try:
        src_lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise SrcdiffError(
            f"cannot read the source of {fn.__qualname__} (defined in {filename})",
            hint="srcdiff needs the function's source: define it in a file or notebook cell, "
            "not with exec() or in the interactive prompt without a file; or register its derivative "
            "with srcdiff.defvjp",
        ) from None
    text = textwrap.dedent("".join(src_lines))
    try:
        tree = gast.parse(text)
    except SyntaxError as exc:
        raise SrcdiffError(f"cannot parse the source of {fn.__qualname__}: {exc.msg}",
                           filename=filename, lineno=start) from None
    module = gast.gast_to_ast(tree)
    ast.increment_lineno(module, start - 1)
    all_lines = linecache.getlines(filename) or [line for line in src_lines]
    if not linecache.getlines(filename):
        all_lines = [""] * (start - 1) + src_lines
    node = None
    if fn.__name__ == "<lambda>":
        for n in ast.walk(module):
            if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno:
                node = ast.FunctionDef(
                    name="lambda", args=n.args,
                    body=[ast.Return(value=n.body, lineno=n.lineno, col_offset=0)],
                    decorator_list=[], returns=None, type_comment=None,
                    lineno=n.lineno, col_offset=0,
                )
                if hasattr(ast.FunctionDef, "type_params"):
                    node.type_params = []
                break
    else:
        for n in module.body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node = n
                break
    if node is None:
        raise SrcdiffError(f"cannot find the definition of {fn.__qualname__} in its source",
                           filename=filename, lineno=start)
    if isinstance(node, ast.AsyncFunctionDef):
        raise SrcdiffError("async functions cannot be differentiated", filename=filename,
                           lineno=node.lineno, construct=all_lines[node.lineno - 1].strip(),
                           hint="make it a plain def")
    closure = {}
    if fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__):
            try:
                closure[name] = cell.cell_contents
            except ValueError:
                closure[name] = MISSING
    return Source(fn=fn, node=node, filename=filename, lines=all_lines,
                  globals=fn.__globals__, closure=closure, self_class=self_class)


def static_value(src: Source, expr: ast.expr, local_names: set[str]) -> Any:
    """Evaluate a dotted name (``np.linalg.norm``, ``tanh``, ``helpers.f``) at
    compile time.  Returns MISSING when ``expr`` is not such a reference (for
    example when it starts at a local variable)."""
    if isinstance(expr, ast.Name):
        if expr.id in local_names:
            return MISSING
        return src.resolve_global(expr.id)
    if isinstance(expr, ast.Attribute):
        base = static_value(src, expr.value, local_names)
        if base is MISSING:
            return MISSING
        if not isinstance(base, (types.ModuleType, type)) and not hasattr(base, "__dict__"):
            return MISSING
        return getattr(base, expr.attr, MISSING)
    return MISSING
