"""Emit: turn adjoint ASTs into Python source with ``ast.unparse``, compile
it, and register the text with ``linecache`` so tracebacks and
``inspect.getsource`` show the generated lines."""

from __future__ import annotations

import ast
import itertools
import linecache
import re
import textwrap
from typing import Any

from .reverse import COMMENT

_counter = itertools.count(1)
_COMMENT_RE = re.compile(r"^(\s*)" + COMMENT + r"\((.*)\)\s*$")


def render(funcs: list[ast.FunctionDef]) -> str:
    """The readable source of generated functions (comments restored)."""
    module = ast.Module(body=funcs, type_ignores=[])
    ast.fix_missing_locations(module)
    text = ast.unparse(module)
    out = []
    for line in text.splitlines():
        m = _COMMENT_RE.match(line)
        if m:
            out.append(f"{m.group(1)}# {ast.literal_eval(m.group(2))}")
        else:
            out.append(_strip_tuple_parens(line))
    # a blank line between functions
    joined = "\n".join(out)
    return re.sub(r"\n+def ", "\n\n\ndef ", joined) + "\n"


def _outer_parens(text: str) -> bool:
    """Is ``text`` one parenthesized group, ``(...)``?"""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and i != len(text) - 1:
                return False
    return True


def _strip_tuple_parens(line: str) -> str:
    """``(a, b) = f()`` -> ``a, b = f()`` and ``return (a, b)`` -> ``return a, b``,
    so the text is the same on every Python version (3.10 adds the former)."""
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    if body.startswith("return (") and _outer_parens(body[7:]) and "," in body:
        return f"{indent}return {body[8:-1]}"
    if body.startswith("(") and " = " in body:
        target, _, value = body.partition(" = ")
        if _outer_parens(target) and "," in target:
            return f"{indent}{target[1:-1]} = {value}"
    return line


def build(source: str, names: list[str], inject: dict[str, Any], globals_: dict, label: str) -> dict[str, Any]:
    """Compile ``source`` (one or more ``def``s) against the user's module
    globals; ``inject`` names (numpy, the runtime, other generated functions)
    are bound as closure variables, so the user's namespace is never touched
    and its globals stay live.  Returns the defined functions by name."""
    params = ", ".join(inject)
    body = textwrap.indent(source, "    ")
    ret = "    return {" + ", ".join(f"{n!r}: {n}" for n in names) + "}\n"
    text = f"def __srcdiff_factory__({params}):\n{body}\n{ret}"
    filename = f"<srcdiff {label} #{next(_counter)}>"
    code = compile(text, filename, "exec")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    ns: dict[str, Any] = {}
    exec(code, globals_, ns)  # noqa: S102 - our own generated code
    return ns["__srcdiff_factory__"](*inject.values())


def set_free_var(fn: Any, name: str, value: Any) -> None:
    """Point closure variable ``name`` of generated function ``fn`` at ``value``."""
    code = fn.__code__
    if name in code.co_freevars:
        fn.__closure__[code.co_freevars.index(name)].cell_contents = value
