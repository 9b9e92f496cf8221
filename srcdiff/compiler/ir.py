"""The intermediate representation: A-normal form with structured regions.

After ``normalize`` a function is a tree of blocks.  Each ``Assign`` performs
one operation whose operands are atoms (names or constants), so every value
has a name and every statement a derivative rule.  Control flow stays
structured: ``If``, ``For`` (always over a ``range``) and ``While`` regions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union


class Shape(NamedTuple):
    """What the probe saw of a value: ``kind`` is ``"array"``, ``"scalar"``,
    ``"container"`` or ``"other"``; ``shape`` the array's shape (``()`` for a
    number, the type's name for a container); ``dtype`` the dtype's kind
    letter (``"f"``, ``"i"``, ``"u"``, ``"b"``, ``"c"``) or None."""

    kind: str
    shape: Any = None
    dtype: str | None = None

    @property
    def numeric(self) -> bool:
        """An array or a number (its shape is a tuple)."""
        return self.kind in ("array", "scalar")

    @property
    def float_array(self) -> bool:
        return self.kind == "array" and self.dtype == "f"


NO_SHAPE = Shape("")  # not known


# What an operation is (Op.kind):
#   copy     y = x, another name for a value
#   const    a module constant or a literal
#   rule     a call (or operator, method, attribute) with a derivative rule
#   helper   a call of the user's own Python function (its adjoint is generated)
#   nondiff  a call whose result carries no gradient (np.argmax, len, comparisons)
#   cast     np.float64(x) and friends: the value passes through
#   tuple, list, dict   a container display (a, b) [a, b] {"k": a}
#   unknown  a call srcdiff cannot differentiate (an error if a gradient must pass)
OP_KINDS = frozenset({"copy", "const", "rule", "helper", "nondiff", "cast", "tuple", "list", "dict", "unknown"})


@dataclass
class Op:
    """What an ``Assign`` computes, resolved at compile time."""

    kind: str  # one of OP_KINDS
    rule: Any = None  # registry.Rule for kind == "rule"
    callee: Any = None  # the called object (rule/helper/nondiff calls)
    name: str = ""  # how to show the operation: "np.tanh", "+", "getitem"
    # param name -> operand expression (atom or static ast) for rule ops
    bound: dict[str, ast.expr] = field(default_factory=dict)
    static: dict[str, Any] = field(default_factory=dict)
    varargs: dict[str, list[ast.expr]] = field(default_factory=dict)
    args: list[ast.expr] = field(default_factory=list)  # helper ops: positional operands
    operands: list[ast.expr] = field(default_factory=list)  # every atom read

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS:
            raise ValueError(f"unknown operation kind {self.kind!r}")


@dataclass
class Assign:
    target: str
    value: ast.expr
    line: int
    op: Op | None = None
    counter: bool = False  # loop-counter increment: never saved, no adjoint
    inplace: bool = False  # from ``x op= e``: on an array (or list) NumPy changes x's memory in place


@dataclass
class Unpack:
    targets: list[str]
    value: str
    line: int


@dataclass
class Append:
    """``lst.append(value)`` on a list the function created."""

    lst: str
    value: ast.expr
    line: int


@dataclass
class SetItem:
    """``target[index] = value`` on a float array the function created: the
    array changes in place (the backward pass restores what it overwrote)."""

    target: str
    index: ast.expr  # atoms, slices and tuples of them
    value: ast.expr  # an atom
    line: int


def selection_key(s: SetItem) -> str:
    """Where the probe records the shape of what ``x[i] = v`` overwrites (not a name)."""
    return f"<{s.target}[...] at {id(s)}>"


@dataclass
class Expr:
    """A statement evaluated for its side effect only (``print``, ``assert``)."""

    node: ast.stmt
    line: int


@dataclass
class If:
    test: ast.expr  # a Name or Constant
    body: list
    orelse: list
    line: int


@dataclass
class For:
    target: str
    range_args: list[ast.expr]
    body: list
    line: int
    counter: str | None = None  # set when the loop may break
    header: str = ""


@dataclass
class While:
    test: ast.expr
    body: list
    line: int
    counter: str = ""
    header: str = ""


@dataclass
class BreakIf:
    flag: str
    line: int


@dataclass
class Return:
    value: ast.expr
    line: int


Stmt = Union[Assign, Unpack, Append, SetItem, Expr, If, For, While, BreakIf, Return]


@dataclass
class Function:
    name: str
    params: list[str]
    defaults: dict[str, Any]
    body: list
    result: ast.expr | None  # the returned atom
    source: Any  # frontend.Source
    names: set[str]  # every name the generated code must not reuse
    temps: set[str] = field(default_factory=set)  # the values normalize named (t1, t2, ...)


def walk(stmts: list):
    """Every statement, depth first, in program order."""
    for s in stmts:
        yield s
        if isinstance(s, If):
            yield from walk(s.body)
            yield from walk(s.orelse)
        elif isinstance(s, (For, While)):
            yield from walk(s.body)


def local_names(fn: Function) -> set[str]:
    """The function's parameters and every name a statement assigns (loop indices too)."""
    out = set(fn.params)
    for s in walk(fn.body):
        if isinstance(s, Assign):
            out.add(s.target)
        elif isinstance(s, Unpack):
            out.update(s.targets)
        elif isinstance(s, For):
            out.add(s.target)
    return out


def names_in(expr: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(expr) if isinstance(n, ast.Name)]


def reads_of(s) -> ast.AST:
    """Everything statement ``s`` itself reads (not its nested blocks)."""
    if isinstance(s, Assign):
        return s.value
    if isinstance(s, Unpack):
        return ast.Name(id=s.value, ctx=ast.Load())
    if isinstance(s, Append):
        return ast.Tuple(elts=[ast.Name(id=s.lst, ctx=ast.Load()), s.value], ctx=ast.Load())
    if isinstance(s, SetItem):
        return ast.Tuple(elts=[ast.Name(id=s.target, ctx=ast.Load()), s.index, s.value], ctx=ast.Load())
    if isinstance(s, Expr):
        return s.node
    if isinstance(s, If):
        return s.test
    if isinstance(s, For):
        return ast.Tuple(elts=list(s.range_args) + ([ast.Name(id=s.counter, ctx=ast.Load())] if s.counter else []),
                         ctx=ast.Load())
    if isinstance(s, While):
        return s.test if s.test is not None else ast.Constant(value=None)
    if isinstance(s, BreakIf):
        return ast.Name(id=s.flag, ctx=ast.Load())
    if isinstance(s, Return):
        return s.value
    return ast.Constant(value=None)
