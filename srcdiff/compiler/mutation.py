"""Mutation: the checks that make ``x[i] = v`` safe to differentiate.

An assignment into an array changes it in place.  The reverse pass saves
what it overwrites and puts it back in the backward sweep, which is exact as
long as the array is the only name for its memory.  This pass rejects, with
the user's line and a way out, the programs where it might not be:

* the array does not come from this function's own computation (an
  argument, a view of another array, a helper's result, a copy of a name);
* another name for the same memory (a view ``row = x[0]``, ``y = x``, a list
  holding ``x``) is made before a later assignment into ``x`` changes it
  behind that name's back;
* an integer-array index, which may repeat a position (NumPy keeps one of
  the writes, and which one the gradient cannot know).
"""

from __future__ import annotations

import ast
import operator
import weakref
from typing import Any

from ..rules import TABLE
from . import ir
from .frontend import parse_function
from .graph import Resolver
from .ir import NO_SHAPE
from .normalize import normalize


def inplace_changes(fn: ir.Function, mutable: set[str]) -> list[tuple[ir.Assign, str]]:
    """``x op= e`` statements on values that are arrays or lists (which change in
    place), with the name of the memory they change (the old ``x``)."""
    out = []
    for s in ir.walk(fn.body):
        if isinstance(s, ir.Assign) and s.inplace and isinstance(s.value, ast.BinOp) and \
                isinstance(s.value.left, ast.Name) and s.value.left.id in mutable:
            out.append((s, s.value.left.id))
    return out


def check(fn: ir.Function, shapes: dict[str, tuple], mutable: set[str] = frozenset()) -> None:
    """Raise a SrcdiffError for assignments into arrays srcdiff cannot follow.

    ``x op= e`` on an array (or a list) changes its memory in place, like
    ``x[...] = x op e``; srcdiff computes it as ``x = x op e``, which is the
    same program exactly when no other name sees that memory: the array is
    one this function made, and no view or second name of it is read after
    the change.  ``mutable`` names the values the probe saw as arrays or lists
    (without a probe nothing is known, and numbers rebind)."""
    src = fn.source
    for st, old in inplace_changes(fn, mutable):
        if old in fn.params:
            user = _user(old)
            raise src.error(f"{user} {_AUG.get(type(st.value.op), 'op')}= ... changes the caller's array {user} "
                            "in place, which srcdiff cannot differentiate", lineno=st.line,
                            hint=f"compute a new array instead: {user} = {user} "
                            f"{_AUG.get(type(st.value.op), 'op')} ...")
    sets = [s for s in ir.walk(fn.body) if isinstance(s, ir.SetItem)]
    changes: list = [(s, s.target) for s in sets] + inplace_changes(fn, mutable)
    if not changes:
        return
    targets = {t for _, t in changes}
    for s in sets:
        user = _user(s.target)
        sh = shapes.get(s.target)
        if sh is not None and sh.kind != "array":
            what = f"a {sh.shape}" if sh.kind == "container" and sh.shape else f"a {sh.kind}"
            raise src.error(f"x[...] = v needs a NumPy array, and {user} is {what}", lineno=s.line,
                            hint="build lists with append, or start from an array: x = np.zeros(n)")
        for n in ir.names_in(s.index):
            nsh = shapes.get(n)
            if nsh is not None and nsh.kind == "array" and nsh.dtype in "iu":
                raise src.error(f"assignment with an integer-array index ({n}) is not supported: the index may "
                                "repeat a position, and NumPy keeps only one of those writes", lineno=s.line,
                                hint="use a boolean mask, slices, or a loop over the positions")
    inplace_targets = {t for st, t in changes if isinstance(st, ir.Assign)}
    set_targets = {s.target for s in sets}
    for st in ir.walk(fn.body):
        if isinstance(st, ir.Assign) and st.target in targets and \
                not _fresh(st, helpers=st.target not in set_targets):
            if st.target in inplace_targets:
                what = f"{_user(st.target)} op= ... changes {_user(st.target)} in place, and"
            else:
                what = f"assignment into {_user(st.target)}:"
            raise src.error(f"{what} {_user(st.target)} may share memory with another array "
                            f"({_describe(st)})", lineno=st.line,
                            hint=f"srcdiff changes in place only arrays the function makes; make a new one, e.g. "
                            f"{_user(st.target)} = {ast.unparse(st.value)}.copy()")
        if isinstance(st, (ir.Unpack, ir.For)):
            names = st.targets if isinstance(st, ir.Unpack) else [st.target]
            for n in names:
                if n in targets:
                    raise src.error(f"assignment into {_user(n)}, which may share memory with another array",
                                    lineno=st.line, hint=f"make a copy first: {_user(n)} = {_user(n)}.copy()")
    # a second name for the array, read after a later assignment into it
    order: list = []
    loops_of: dict[int, list] = {}

    def visit(stmts, loops):
        for st in stmts:
            order.append(st)
            loops_of[id(st)] = loops
            if isinstance(st, ir.If):
                visit(st.body, loops)
                visit(st.orelse, loops)
            elif isinstance(st, (ir.For, ir.While)):
                visit(st.body, loops + [id(st)])

    visit(fn.body, [])
    pos = {id(st): k for k, st in enumerate(order)}
    end = len(order)
    for st in order:
        for t in _aliases(st, targets, shapes):
            for name, use in _uses_of_alias(st, order, shapes, fn):
                for s, changed in changes:
                    if changed == t and s is not st and _between(st, s, use, pos, loops_of, end):
                        how = "assigns into" if isinstance(s, ir.SetItem) else \
                            f"changes in place ({_user(t)} {_symbol(s)}= ...)"
                        again = "it" if name in fn.temps else _user(name)
                        raise src.error(
                            f"{_describe(st, fn.temps)} is another name for the memory of {_user(t)}, which line "
                            f"{s.line} {how} before {again} is read again: the gradient would miss that change",
                            lineno=st.line,
                            hint="make a copy where the second name is made (.copy()), or " + (
                                "assign into the array before it gets another name" if isinstance(s, ir.SetItem)
                                else f"write the change as a new array ({_user(t)} = {_user(t)} {_symbol(s)} ...)"))


_AUG = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
        ast.Pow: "**", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
        ast.RShift: ">>"}


def _symbol(s) -> str:
    """``*`` for the change ``x *= v``; ``op`` for an assignment into an element."""
    if isinstance(s, ir.Assign) and isinstance(s.value, ast.BinOp):
        return _AUG.get(type(s.value.op), "op")
    return "op"


def views_to_copy(fn: ir.Function, shapes: dict[str, tuple]) -> set[int]:
    """Statements that make a second name for an array assigned into (a view
    ``row = x[i]``, ``y = x``): the generated forward pass copies their value,
    so what the backward pass reads of it is what the forward pass read, not
    what a later assignment made of it.  (``check`` has made sure the forward
    pass itself never reads it after such an assignment.)"""
    targets = {s.target for s in ir.walk(fn.body) if isinstance(s, ir.SetItem)}
    return {id(st) for st in ir.walk(fn.body) if isinstance(st, ir.Assign) and _copyable(st) and
            _aliases(st, targets, shapes)}


def _copyable(st) -> bool:
    return isinstance(st, ir.Assign) and st.op is not None and st.op.kind in ("copy", "rule")


def _alias_name(st) -> str | None:
    if isinstance(st, ir.Assign):
        return st.target
    if isinstance(st, ir.Append):
        return st.lst
    return None


def _uses_of_alias(st, order: list, shapes: dict, fn: ir.Function):
    """(name, statement or None for the result) for every read of the second
    name ``st`` makes, following further names made from it."""
    names = [_alias_name(st)] if _alias_name(st) else list(st.targets) if isinstance(st, ir.Unpack) else []
    seen = set(names)
    out = []
    while names:
        a = names.pop()
        for u in order:
            if u is not st and a in ir.names_in(ir.reads_of(u)):
                out.append((a, u))
                new = _alias_name(u)
                if _aliases(u, {a}, shapes) and new and new not in seen:
                    seen.add(new)
                    names.append(new)
        if isinstance(fn.result, ast.Name) and fn.result.id == a or not _copyable(st):
            out.append((a, None))  # (a second name the forward pass cannot copy may be read by the backward)
    return out


def _between(made, change, use, pos: dict, loops_of: dict, end: int) -> bool:
    """Can ``change`` run after ``made`` and before ``use`` (None: the end)?"""
    p_made, p_change = pos[id(made)], pos[id(change)]
    p_use = end if use is None else pos[id(use)]
    if p_made < p_change < p_use:
        return True
    made_loops = set(loops_of[id(made)])
    change_loops = set(loops_of[id(change)])
    use_loops = set(loops_of[id(use)]) if use is not None else set()
    # a loop that repeats the change and the read, but not the making of the second name
    if (change_loops & use_loops) - made_loops:
        return True
    # a loop that repeats all three, with the second name carried to the next iteration
    shared = made_loops & change_loops & use_loops
    return bool(shared) and p_use < p_made


def _user(name: str) -> str:
    """The user's spelling of an SSA name (x_1 -> x)."""
    base, _, suffix = name.rpartition("_")
    return base if base and suffix.isdigit() else name


def _describe(st, temps: set[str] = frozenset()) -> str:
    if isinstance(st, ir.Assign):
        if st.target in temps:  # a value the compiler named: say what it is
            what = "the result of a helper" if st.op is not None and st.op.kind == "helper" else "a value"
            return f"{what} on this line"
        return f"{_user(st.target)} = {ast.unparse(st.value)}"
    if isinstance(st, ir.Append):
        return f"{_user(st.lst)}.append({ast.unparse(st.value)})"
    if isinstance(st, ir.Unpack):
        return f"{', '.join(map(_user, st.targets))} = {_user(st.value)}"
    return "this statement"


def _fresh(st: ir.Assign, helpers: bool = False) -> bool:
    """Does ``st`` always make a new array (never a view or another name)?
    The rule (or the non-differentiable function) says so in its facts.
    ``helpers``: a helper's result counts when the helper returns a new array
    - only for ``x op= e``, which srcdiff computes as a new array: the
    helper's backward pass keeps its result (and its arguments) and reads
    them again, so an assignment into them (``x[i] = v``) is never fresh."""
    op = st.op
    if op is None:
        return False
    if op.kind == "const":
        return True
    if op.kind == "nondiff":
        return TABLE.facts_of(op.callee).result == "fresh"
    if op.kind == "helper":
        return helpers and _helper_returns_fresh(op.callee)
    return op.kind == "rule" and op.rule.facts.result == "fresh"


_HELPER_FRESH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _helper_returns_fresh(fn: Any, depth: int = 0) -> bool:
    """Does the user's helper ``fn`` always return a new array (``return
    np.tanh(...)``), never one of its arguments or a view of one?  Read from
    its own normalized code; anything unclear (no source, a container, a
    helper nested deeper than a few calls) is not fresh."""
    try:
        known = _HELPER_FRESH.get(fn)
    except TypeError:
        return False
    if known is not None:
        return known
    fresh = False
    if depth < 4:
        try:
            f = normalize(parse_function(fn))
            Resolver(f).run()
        except Exception:  # noqa: BLE001 - compiling it for real reports what is wrong with it
            f = None
        if f is not None and isinstance(f.result, ast.Name) and f.result.id not in f.params:
            res = f.result.id
            defs = [st for st in ir.walk(f.body) if res in _written_by(st)]
            fresh = bool(defs) and all(
                isinstance(st, ir.Assign) and st.op is not None and
                (_fresh(st) if st.op.kind != "helper" else _helper_returns_fresh(st.op.callee, depth + 1))
                for st in defs)
    _HELPER_FRESH[fn] = fresh
    return fresh


def _written_by(st) -> list[str]:
    if isinstance(st, ir.Assign):
        return [st.target]
    if isinstance(st, ir.Unpack):
        return list(st.targets)
    if isinstance(st, ir.For):
        return [st.target]
    return []


def _aliases(st, targets: set[str], shapes: dict) -> list[str]:
    """The assigned-into arrays ``st`` gives another name to."""
    if isinstance(st, ir.Append):
        return [n for n in ir.names_in(st.value) if n in targets]
    if isinstance(st, ir.Unpack):
        return [st.value] if st.value in targets else []
    if not isinstance(st, ir.Assign) or st.op is None:
        return []
    op = st.op
    read = [n.id for n in op.operands if n.id in targets]
    if not read:
        return []
    if op.kind in ("copy", "helper", "tuple", "list", "dict", "unknown", "cast"):
        return read
    if op.kind != "rule":
        return []
    rule = op.rule
    if rule.fn is operator.getitem:
        a = op.bound.get("a")
        sh = shapes.get(st.target)
        if not isinstance(a, ast.Name) or a.id not in targets or sh is not None and sh.kind == "scalar":
            return []  # one element: a copy
        index = op.bound.get("index")
        if index is not None and any(shapes.get(n, NO_SHAPE).kind == "array" for n in ir.names_in(index)):
            return []  # an array index selects a copy
        return [a.id]
    return read if rule.facts.result == "view" else []
