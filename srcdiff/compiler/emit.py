"""Emit: turn adjoint ASTs into Python source with ``ast.unparse``, compile
it, and register the text with ``linecache`` so tracebacks and
``inspect.getsource`` show the generated lines."""

from __future__ import annotations

import ast
import itertools
import linecache
import math
import re
import textwrap
from typing import Any

from ..errors import InternalError
from .astlib import COMMENT

_counter = itertools.count(1)
_COMMENT_RE = re.compile(r"^(\s*)" + COMMENT + r"\((.*)\)\s*$")


def render(funcs: list[ast.FunctionDef]) -> str:
    """The readable source of generated functions (comments restored).
    ``funcs`` are consumed: printing changes them.

    The text is checked to parse back to the same tree: ``ast.unparse`` prints
    a constant as its ``repr``, so a negative number folded into a constant
    (``-1.5``) would lose its parentheses under ``**`` and change the program;
    such constants are written as negations first."""
    module = ast.Module(body=[_Literals().visit(f) for f in funcs], type_ignores=[])  # (in place: printed once)
    for f in module.body:
        _drop_empty(f)
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
    final = re.sub(r"\n+def ", "\n\n\ndef ", joined) + "\n"
    _check_round_trip(module, final)
    return final


def _is_comment(st: ast.stmt) -> bool:
    return isinstance(st, ast.Expr) and isinstance(st.value, ast.Call) and \
        isinstance(st.value.func, ast.Name) and st.value.func.id == COMMENT


def _drop_empty(node: ast.AST) -> None:
    """Blocks left holding only comments (a backward loop whose statements all
    went away): a loop or branch that does nothing is dropped, an empty body
    that must stay gets ``pass``."""
    for field in ("body", "orelse"):
        stmts = getattr(node, field, None)
        if not isinstance(stmts, list):
            continue
        kept = []
        for st in stmts:
            _drop_empty(st)
            if isinstance(st, (ast.For, ast.While)) and all(_is_comment(x) for x in st.body):
                continue  # a loop without statements: `range` and a name test have no side effects
            if isinstance(st, ast.If):
                if all(_is_comment(x) for x in st.orelse):
                    st.orelse = []
                if all(_is_comment(x) for x in st.body) and not st.orelse:
                    continue
                if all(_is_comment(x) for x in st.body):
                    st.body = st.body + [ast.Pass()]
            kept.append(st)
        if field == "body" and isinstance(node, (ast.FunctionDef, ast.For, ast.While, ast.If)) and \
                all(_is_comment(x) for x in kept):
            kept.append(ast.Pass())
        setattr(node, field, kept)


class _Literals(ast.NodeTransformer):
    """Constants ``unparse`` cannot print as one atom: negative numbers become
    ``-(number)`` so that ``(-1.5) ** 2`` keeps its parentheses."""

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        v = node.value
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (v < 0 or v == 0 and math.copysign(1, v) < 0):
            return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-v))
        return node


class _Canonical(ast.NodeTransformer):
    """Fold what the parser makes of printed constants back into constants."""

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) and \
                isinstance(node.operand.value, (int, float, complex)) and not isinstance(node.operand.value, bool):
            return ast.Constant(value=-node.operand.value)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        left, right = node.left, node.right
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant) and \
                isinstance(node.op, (ast.Add, ast.Sub)) and \
                (isinstance(right.value, complex) or isinstance(left.value, float) and math.isinf(left.value)):
            try:
                return ast.Constant(value=left.value + right.value if isinstance(node.op, ast.Add)
                                    else left.value - right.value)
            except (TypeError, ArithmeticError):
                return node
        return node


def _canonical_dump(tree: ast.AST) -> str:
    """(Changes ``tree``: callers pass a tree of their own.)"""
    tree = _Canonical().visit(tree)
    return ast.dump(tree, annotate_fields=False)


def _check_round_trip(module: ast.Module, text: str) -> None:
    """The printed text must parse back to the tree it was printed from."""
    try:
        parsed = ast.parse(text)
    except SyntaxError as exc:
        raise InternalError(f"generated code does not parse ({exc.msg}, line {exc.lineno}):\n{text}") from None
    _strip_comments(module)  # (in place: the tree is printed already and not used again)
    if _canonical_dump(parsed) != _canonical_dump(module):
        raise InternalError(f"generated code does not read back as the tree it was printed from:\n{text}")


def _strip_comments(node: ast.AST) -> None:
    for field in ("body", "orelse"):
        stmts = getattr(node, field, None)
        if isinstance(stmts, list):
            kept = [st for st in stmts if not _is_comment(st)]
            for st in kept:
                _strip_comments(st)
            setattr(node, field, kept)


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


def build(source: str, names: list[str], inject: dict[str, Any], globals_: dict, label: str,
          register: bool = True) -> dict[str, Any]:
    """Compile ``source`` (one or more ``def``s) against the user's module
    globals; ``inject`` names (numpy, the runtime, other generated functions)
    are bound as closure variables, so the user's namespace is never touched
    and its globals stay live.  Returns the defined functions by name, and
    under ``"__filename__"`` the file name the text is registered under in
    ``linecache`` (``register``; see ``forget``)."""
    params = ", ".join(inject)
    body = textwrap.indent(source, "    ")
    ret = "    return {" + ", ".join(f"{n!r}: {n}" for n in names) + "}\n"
    text = f"def __srcdiff_factory__({params}):\n{body}\n{ret}"
    filename = f"<srcdiff {label} #{next(_counter)}>"
    code = compile(text, filename, "exec")
    if register:
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    ns: dict[str, Any] = {}
    exec(code, globals_, ns)  # noqa: S102 - our own generated code
    out = ns["__srcdiff_factory__"](*inject.values())
    out["__filename__"] = filename
    return out


def forget(filenames: list[str]) -> None:
    """Drop generated text from ``linecache`` (its functions are gone)."""
    for name in filenames:
        linecache.cache.pop(name, None)


def set_free_var(fn: Any, name: str, value: Any) -> None:
    """Point closure variable ``name`` of generated function ``fn`` at ``value``."""
    code = fn.__code__
    if name in code.co_freevars:
        fn.__closure__[code.co_freevars.index(name)].cell_contents = value
