"""Normalize: lower a parsed function to A-normal form (one operation per
statement, see ``ir``).

Along the way it
* names every intermediate value (``t1``, ``t2`` ... never a user's name),
* gives a straight-line reassignment a new name (``h`` then ``h_1``), so
  straight-line code needs no saved values,
* rewrites early ``return``, ``break`` and ``continue`` into structured code,
  and every ``for`` loop into a loop over a ``range``,
* inlines calls of local lambdas,
* rejects unsupported constructs with a ``SrcdiffError`` at the user's line.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import types
from typing import Any

from . import ir, site
from .frontend import MISSING, Source, static_value
from .naming import Namer

UNSUPPORTED_STMTS = {
    ast.Try: ("try/except", "move the error handling outside the function you differentiate"),
    ast.Global: ("global", "pass the value as an argument and return the new value"),
    ast.Nonlocal: ("nonlocal", "pass the value as an argument and return the new value"),
    ast.Delete: ("del", "let the variable go out of use instead of deleting it"),
    ast.ClassDef: ("a class definition", "define the class at module level"),
    ast.Import: ("import", "import at module level"),
    ast.ImportFrom: ("import", "import at module level"),
    ast.AsyncFor: ("async for", "use a plain for loop"),
    ast.AsyncWith: ("async with", "move it outside the function"),
    ast.AsyncFunctionDef: ("async def", "use plain functions"),
    ast.Raise: ("raise", "check inputs before calling the gradient"),
}
if hasattr(ast, "TryStar"):
    UNSUPPORTED_STMTS[ast.TryStar] = UNSUPPORTED_STMTS[ast.Try]
if hasattr(ast, "Match"):
    UNSUPPORTED_STMTS[ast.Match] = ("match", "use if/elif/else")


def _written(st) -> list[str]:
    """The names an IR statement (not its nested blocks) writes."""
    if isinstance(st, ir.Assign):
        return [st.target]
    if isinstance(st, ir.Unpack):
        return list(st.targets)
    if isinstance(st, ir.For):
        return [st.target]
    if isinstance(st, ir.Append):
        return [st.lst]
    if isinstance(st, ir.SetItem):
        return [st.target]
    return []


def _const(v: Any) -> ast.Constant:
    return ast.Constant(value=v)


def _name(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Load())


def _store(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Store())


def _jumps(stmts: list[ast.stmt], kinds: tuple) -> bool:
    """Does this block always end in one of ``kinds`` (break/continue/return)?"""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, kinds):
        return True
    if isinstance(last, ast.If):
        return _jumps(last.body, kinds) and _jumps(last.orelse, kinds)
    return False


def _contains(stmts: list[ast.stmt], kinds: tuple, into_loops: bool) -> bool:
    for s in stmts:
        if isinstance(s, kinds):
            return True
        if isinstance(s, ast.If):
            if _contains(s.body, kinds, into_loops) or _contains(s.orelse, kinds, into_loops):
                return True
        elif isinstance(s, (ast.For, ast.While)) and into_loops:
            if _contains(s.body, kinds, into_loops):
                return True
    return False


class Normalizer:
    def __init__(self, src: Source) -> None:
        self.src = src
        fn = src.node
        user_names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        user_names |= {a.arg for a in ast.walk(fn) if isinstance(a, ast.arg)}
        self.user_names = user_names
        self.alloc = Namer(set(user_names))
        self.current: dict[str, str] = {}  # user variable -> name in generated code
        self.depth = 0
        self.out: list = []
        self.line = fn.lineno
        self.lambdas: dict[str, ast.Lambda] = {}
        # p = functools.partial(f, a, k=v): name -> (f, bound positional atoms, bound keywords)
        self.partials: dict[str, tuple[ast.expr, list[ast.expr], list[ast.keyword]]] = {}
        self.injected: dict[int, str] = {}  # id(object) -> the name generated code calls it by
        self.locals = self._assigned_names(fn) | {a.arg for a in fn.args.args + fn.args.posonlyargs
                                                    + fn.args.kwonlyargs}
        self.int_names: set[str] = set()
        self.retval: str | None = None

    # -- helpers ----------------------------------------------------------
    def error(self, message: str, node: Any = None, hint: str | None = None):
        line = getattr(node, "lineno", None) or self.line
        return self.src.error(message, lineno=line, hint=hint)

    @staticmethod
    def _assigned_names(fn: ast.FunctionDef) -> set[str]:
        out = set()
        for n in ast.walk(fn):
            if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                out.add(n.id)
        return out

    def emit(self, stmt) -> None:
        self.out.append(stmt)

    def temp(self) -> str:
        t = self.alloc.numbered("t")
        self.current[t] = t
        return t

    def bind_target(self, user: str) -> str:
        """The generated name a new assignment to ``user`` writes."""
        if user in self.current:
            if self.depth == 0:
                new = self.alloc.fresh(user)
                self.current[user] = new
                return new
            return self.current[user]
        self.current[user] = user
        self.alloc.taken.add(user)
        return user

    def block(self, stmts: list[ast.stmt]) -> list:
        saved = self.out
        self.out = []
        self.depth += 1
        try:
            for s in stmts:
                self.stmt(s)
            return self.out
        finally:
            self.out = saved
            self.depth -= 1

    # -- entry ------------------------------------------------------------
    def run(self) -> ir.Function:
        fn = self.src.node
        a = fn.args
        if a.vararg or a.kwarg:
            raise self.error("functions with *args or **kwargs cannot be differentiated", fn,
                             hint="give each input its own parameter")
        params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
        self.params = set(params)
        for p in params:
            self.current[p] = p
        defaults: dict[str, Any] = {}
        pos = a.posonlyargs + a.args
        for p, d in zip(pos[len(pos) - len(a.defaults):], a.defaults):
            defaults[p.arg] = d
        for p, d in zip(a.kwonlyargs, a.kw_defaults):
            if d is not None:
                defaults[p.arg] = d
        body = self.lower_returns(list(fn.body), top=True)
        self.result_var: str | None = None
        inner = body[:-1] if body and isinstance(body[-1], ast.Return) else body
        if _contains(inner, (ast.Return,), into_loops=True):
            # returns inside branches: each one assigns the result variable
            self.result_var = self.retval or self.alloc.fresh("result")
        for s in body:
            self.stmt(s)
        result = None
        if self.result_var is not None:
            if self.out and isinstance(self.out[-1], ir.Return):
                self.out.pop()
            result = self.atom(ast.Name(id=self.result_var, ctx=ast.Load()))
        elif self.out and isinstance(self.out[-1], ir.Return):
            result = self.out.pop().value
        return ir.Function(name=fn.name, params=params, defaults=defaults, body=self.out,
                           result=result, source=self.src, names=self.alloc.taken,
                           temps=set(self.alloc.numbered_names))

    # -- early returns ----------------------------------------------------
    def lower_returns(self, stmts: list[ast.stmt], top: bool = False) -> list[ast.stmt]:
        """Make every return the last statement of its block, and move loop
        returns out of loops (through a flag and ``break``)."""
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            if isinstance(s, ast.Return):
                out.append(s)
                return out
            if isinstance(s, ast.If):
                s = copy.copy(s)
                s.body = self.lower_returns(s.body)
                s.orelse = self.lower_returns(s.orelse)
                rest = stmts[i + 1:]
                if _contains([s], (ast.Return,), into_loops=False) and rest:
                    if _jumps(s.body, (ast.Return,)):
                        s.orelse = self.lower_returns(s.orelse + rest)
                    elif _jumps(s.orelse, (ast.Return,)):
                        s.body = self.lower_returns(s.body + rest)
                    else:
                        s.body = self.lower_returns(s.body + rest) if not _jumps(s.body, (ast.Return,)) \
                            else s.body
                        s.orelse = self.lower_returns(s.orelse + rest) \
                            if not _jumps(s.orelse, (ast.Return,)) else s.orelse
                    out.append(s)
                    return out
                out.append(s)
                continue
            if isinstance(s, (ast.For, ast.While)) and _contains(s.body, (ast.Return,), into_loops=True):
                if self.retval is None:
                    self.retval = self.alloc.fresh("result")
                    self.returned = self.alloc.fresh("returned")
                    out.append(ast.Assign(targets=[_store(self.returned)], value=_const(False),
                                          lineno=s.lineno, col_offset=0))
                    out.append(ast.Assign(targets=[_store(self.retval)], value=_const(None),
                                          lineno=s.lineno, col_offset=0))
                s = copy.copy(s)
                s.body = self._returns_to_breaks(s.body)
                out.append(s)
                after = ast.If(test=_name(self.returned),
                               body=[ast.Return(value=_name(self.retval), lineno=s.lineno, col_offset=0)],
                               orelse=[], lineno=s.lineno, col_offset=0)
                rest = stmts[i + 1:]
                return out + self.lower_returns([after] + rest)
            out.append(s)
        return out

    def _returns_to_breaks(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, ast.Return):
                line = dict(lineno=s.lineno, col_offset=0)
                val = s.value if s.value is not None else _const(None)
                out += [ast.Assign(targets=[_store(self.retval)], value=val, **line),
                        ast.Assign(targets=[_store(self.returned)], value=_const(True), **line),
                        ast.Break(**line)]
                return out
            if isinstance(s, ast.If):
                s = copy.copy(s)
                s.body = self._returns_to_breaks(s.body)
                s.orelse = self._returns_to_breaks(s.orelse)
            elif isinstance(s, (ast.For, ast.While)) and _contains(s.body, (ast.Return,), True):
                s = copy.copy(s)
                s.body = self._returns_to_breaks(s.body)
                out.append(s)
                out.append(ast.If(test=_name(self.returned), body=[ast.Break(lineno=s.lineno, col_offset=0)],
                                  orelse=[], lineno=s.lineno, col_offset=0))
                continue
            out.append(s)
        return out

    # -- break / continue -------------------------------------------------
    def lower_jumps(self, stmts: list[ast.stmt], flags: dict[str, str]) -> list[ast.stmt]:
        """Rewrite break/continue of this loop body into structured code."""
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            line = dict(lineno=s.lineno, col_offset=0)
            if isinstance(s, ast.Continue):
                if "cont" in flags:
                    out.append(ast.Assign(targets=[_store(flags["cont"])], value=_const(True), **line))
                return out
            if isinstance(s, ast.Break):
                out.append(ast.Assign(targets=[_store(flags["brk"])], value=_const(True), **line))
                return out
            if isinstance(s, ast.If) and _contains([s], (ast.Break, ast.Continue), into_loops=False):
                s = copy.copy(s)
                rest = stmts[i + 1:]
                kinds = (ast.Break, ast.Continue)
                if _jumps(s.body, kinds) and rest:
                    s.body = self.lower_jumps(s.body, flags)
                    s.orelse = self.lower_jumps(s.orelse + rest, flags)
                    out.append(s)
                    return out
                if _jumps(s.orelse, kinds) and rest:
                    s.orelse = self.lower_jumps(s.orelse, flags)
                    s.body = self.lower_jumps(s.body + rest, flags)
                    out.append(s)
                    return out
                s.body = self.lower_jumps(s.body, flags)
                s.orelse = self.lower_jumps(s.orelse, flags)
                out.append(s)
                if rest:
                    # some path jumped: run the rest only when no flag is set
                    flags.setdefault("cont", self.alloc.fresh("skip"))
                    test: ast.expr = _name(flags["cont"])
                    if "brk" in flags:
                        test = ast.BoolOp(op=ast.Or(), values=[_name(flags["brk"]), test])
                    out.append(ast.If(test=ast.UnaryOp(op=ast.Not(), operand=test),
                                      body=self.lower_jumps(rest, flags), orelse=[], **line))
                return out
            out.append(s)
        return out

    # -- statements -------------------------------------------------------
    def stmt(self, s: ast.stmt) -> None:
        self.line = getattr(s, "lineno", self.line)
        site.at(self.line)
        for kind, (what, hint) in UNSUPPORTED_STMTS.items():
            if isinstance(s, kind):
                raise self.error(f"{what} is not supported in a function srcdiff differentiates", s, hint)
        if isinstance(s, ast.FunctionDef):
            return self.nested_def(s)
        if isinstance(s, ast.With):
            return self.with_stmt(s)
        if isinstance(s, ast.Assign):
            return self.assign_stmt(s)
        if isinstance(s, ast.AnnAssign):
            if s.value is None:
                return
            return self.assign_stmt(ast.Assign(targets=[s.target], value=s.value, lineno=s.lineno))
        if isinstance(s, ast.AugAssign):
            if isinstance(s.target, ast.Subscript):
                return self.aug_setitem(s)
            if not isinstance(s.target, ast.Name):
                raise self.error("augmented assignment to an attribute is not supported", s,
                                 hint="keep the value in a local variable")
            # x op= e rebinds x to x op e: exact for numbers; for arrays and lists, which NumPy and
            # Python change in place, mutation.check makes sure no other name sees the change
            value = ast.BinOp(left=_name(s.target.id), op=s.op, right=s.value)
            return self.assign_name(s.target.id, value, s.lineno, inplace=True)
        if isinstance(s, ast.Return):
            if self.result_var is not None:
                return self.assign_name(self.result_var, s.value if s.value is not None else _const(None),
                                        s.lineno)
            value = self.atom(s.value) if s.value is not None else _const(None)
            return self.emit(ir.Return(value=value, line=s.lineno))
        if isinstance(s, ast.Expr):
            return self.expr_stmt(s)
        if isinstance(s, ast.Pass):
            return
        if isinstance(s, ast.If):
            return self.if_stmt(s)
        if isinstance(s, ast.For):
            return self.for_stmt(s)
        if isinstance(s, ast.While):
            return self.while_stmt(s)
        if isinstance(s, ast.Assert):
            return self.emit(ir.Expr(node=self.rename_expr_stmt(s), line=s.lineno))
        if isinstance(s, (ast.Break, ast.Continue)):
            raise self.error(f"{type(s).__name__.lower()} outside a loop", s)
        raise self.error(f"unsupported statement ({type(s).__name__})", s)

    def rename_expr_stmt(self, s: ast.stmt) -> ast.stmt:
        s = copy.deepcopy(s)
        for n in ast.walk(s):
            if isinstance(n, ast.Name) and n.id in self.current:
                n.id = self.current[n.id]
        return s

    def expr_stmt(self, s: ast.Expr) -> None:
        v = s.value
        if isinstance(v, ast.Constant):
            return  # docstring
        if (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "append"
                and isinstance(v.func.value, ast.Name) and v.func.value.id in self.current
                and len(v.args) == 1 and not v.keywords):
            lst = self.current[v.func.value.id]
            value = self.atom(v.args[0])
            return self.emit(ir.Append(lst=lst, value=value, line=s.lineno))
        if isinstance(v, (ast.Yield, ast.YieldFrom, ast.Await)):
            raise self.error("generators and coroutines cannot be differentiated", s,
                             hint="return a value instead of yielding it")
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and isinstance(v.func.value, ast.Name) \
                and v.func.value.id in self.current and v.func.attr in ("extend", "insert", "pop", "remove",
                                                                        "sort", "reverse", "update", "clear",
                                                                        "fill", "resize", "setdefault"):
            raise self.error(f"in-place .{v.func.attr}() on a variable is not supported", s,
                             hint="build a new value instead (append is supported)")
        # a call of something that exists only in the compiler's view (a lambda, a partial or a def
        # of this function, which are inlined or lifted): computed like any expression, result unused
        rewritten = set(self.lambdas) | set(self.partials) | set(getattr(self.src, "lifted", {}))
        if any(isinstance(n, ast.Name) and n.id in rewritten and n.id not in self.current for n in ast.walk(v)):
            self.atom(v)
            return
        # evaluated for side effects only (print, logging ...)
        self.emit(ir.Expr(node=self.rename_expr_stmt(s), line=s.lineno))

    def assign_stmt(self, s: ast.Assign) -> None:
        value = s.value
        if isinstance(value, ast.Lambda):
            if len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
                self.lambdas[s.targets[0].id] = value
                return
        if self._is_call_to(value, functools.partial) and len(s.targets) == 1 and \
                isinstance(s.targets[0], ast.Name) and value.args:
            return self.make_partial(s.targets[0].id, value)
        if len(s.targets) == 1 and isinstance(s.targets[0], ast.Subscript):
            return self.setitem(s.targets[0], self.atom(value), s.lineno)
        for t in s.targets:
            self.check_target(t)
        if len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            return self.assign_name(s.targets[0].id, value, s.lineno)
        # several targets or unpacking: compute once into an atom
        atom = self.atom(value)
        for t in s.targets:
            self.assign_target(t, atom, s.lineno)

    def check_target(self, t: ast.expr) -> None:
        if isinstance(t, ast.Name):
            return
        if isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                if isinstance(e, ast.Starred):
                    raise self.error("starred assignment is not supported", t,
                                     hint="unpack a fixed number of values, or index the sequence")
                self.check_target(e)
            return
        if isinstance(t, ast.Subscript):
            raise self.error("assignment to an element is only supported as the only target (x[i] = v)", t,
                             hint="write one assignment per element")
        if isinstance(t, ast.Attribute):
            raise self.error("assignment to an attribute is not supported", t,
                             hint="keep the value in a local variable and return it")
        raise self.error(f"unsupported assignment target {ast.unparse(t)}", t)

    def setitem_base(self, t: ast.Subscript) -> str:
        base = t.value
        if isinstance(base, ast.Subscript):
            raise self.error("assignment into an element of an element (x[i][j] = v) is not supported", t,
                             hint="index once: x[i, j] = v")
        if not isinstance(base, ast.Name) or base.id not in self.current:
            raise self.error(f"assignment to an element of {ast.unparse(base)} is not supported", t,
                             hint="assign into an array variable of this function (x = np.zeros(n); x[i] = v)")
        name = self.current[base.id]
        if name in self.params:
            raise self.error(f"assignment into the argument {base.id!r} would change the caller's array", t,
                             hint=f"copy it first: {base.id} = {base.id}.copy()")
        return name

    def setitem(self, t: ast.Subscript, value: ast.expr, line: int) -> None:
        """``x[i] = v``: the value is computed first, then the index, as Python does."""
        base = self.setitem_base(t)
        index = self.index(t.slice)
        self.emit(ir.SetItem(target=base, index=index, value=value, line=line))

    def aug_setitem(self, s: ast.AugAssign) -> None:
        """``x[i] += v`` -> ``t = x[i]; t2 = t + v; x[i] = t2`` (the index evaluated once)."""
        base = self.setitem_base(s.target)
        index = self.index(s.target.slice)
        old = self.temp()
        self.emit(ir.Assign(target=old, value=ast.Subscript(value=_name(base), slice=copy.deepcopy(index),
                                                            ctx=ast.Load()), line=s.lineno))
        new = self.atom(ast.BinOp(left=_name(old), op=s.op, right=s.value, lineno=s.lineno))
        self.emit(ir.SetItem(target=base, index=index, value=new, line=s.lineno))

    def assign_target(self, t: ast.expr, atom: ast.expr, line: int) -> None:
        if isinstance(t, ast.Name):
            target = self.bind_target(t.id)
            self.emit(ir.Assign(target=target, value=atom, line=line))
            return
        assert isinstance(t, (ast.Tuple, ast.List))
        if not isinstance(atom, ast.Name):
            tmp = self.temp()
            self.emit(ir.Assign(target=tmp, value=atom, line=line))
            atom = _name(tmp)
        targets = []
        nested = []
        for e in t.elts:
            if isinstance(e, ast.Name):
                targets.append(e)
            else:
                tmp = self.temp()
                targets.append(_name(tmp))
                nested.append((e, tmp))
        names = [self.bind_target(e.id) if not any(e.id == tmp for _, tmp in nested) else e.id
                 for e in targets]
        self.emit(ir.Unpack(targets=names, value=atom.id, line=line))
        for e, tmp in nested:
            self.assign_target(e, _name(tmp), line)

    def assign_name(self, user: str, value: ast.expr, line: int, inplace: bool = False) -> None:
        op = self.flat(value)
        target = self.bind_target(user)
        if isinstance(op, ast.Name) and op.id == target:
            return
        self.emit(ir.Assign(target=target, value=op, line=line,
                            inplace=inplace and isinstance(op, ast.BinOp) and isinstance(op.left, ast.Name)))
        if isinstance(value, ast.Constant) and isinstance(value.value, int):
            self.int_names.add(target)

    def if_stmt(self, s: ast.If) -> None:
        test = self.test_atom(s.test)
        body = self.block(s.body)
        orelse = self.block(s.orelse)
        self.emit_if(test, body, orelse, s.lineno)

    def emit_if(self, test: ast.expr, body: list, orelse: list, line: int) -> None:
        """Emit ``if test: body else: orelse``.  The backward sweep branches on
        the test again after the branch has run, so a test that reads a name
        the branch reassigns (``if b: ...; b = False``) is first copied into a
        name of its own, which keeps the value the forward pass branched on."""
        written = {t for st in ir.walk(body + orelse) for t in _written(st)}
        if any(n in written for n in ir.names_in(test)):
            cond = self.alloc.fresh("cond")
            inner = test.operand if isinstance(test, ast.UnaryOp) else test
            self.emit(ir.Assign(target=cond, value=copy.deepcopy(inner), line=line))
            test = _name(cond) if inner is test else ast.UnaryOp(op=ast.Not(), operand=_name(cond))
        self.emit(ir.If(test=test, body=body, orelse=orelse, line=line))

    def test_atom(self, test: ast.expr) -> ast.expr:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self.atom(test.operand)
            return ast.UnaryOp(op=ast.Not(), operand=inner)
        return self.atom(test)

    def _loop_flags(self, s) -> tuple[list[ast.stmt], dict[str, str]]:
        flags: dict[str, str] = {}
        body = list(s.body)
        if s.orelse:
            raise self.error(f"{type(s).__name__.lower()} ... else is not supported", s,
                             hint="use a flag variable set before break instead of the else clause")
        if _contains(body, (ast.Break,), into_loops=False):
            flags["brk"] = self.alloc.fresh("stop")
        if _contains(body, (ast.Continue,), into_loops=False):
            flags["cont"] = self.alloc.fresh("skip")
        if flags:
            body = self.lower_jumps(body, flags)
        return body, flags

    def for_stmt(self, s: ast.For) -> None:
        body, flags = self._loop_flags(s)
        line = dict(lineno=s.lineno, col_offset=0)
        pre: list[ast.stmt] = []
        it = s.iter
        target = s.target
        if isinstance(target, ast.Name) and self._is_call_to(it, range):
            if it.keywords or not 1 <= len(it.args) <= 3:
                raise self.error("range() takes 1 to 3 positional arguments here", s)
            range_args = [self.atom(a) for a in it.args]
            loop_var = target.id
        else:
            # lower ``for x in xs`` / enumerate / zip into an indexed loop
            index_user = None
            seqs: list[tuple[ast.expr, ast.expr]] = []  # (target, sequence atom)
            if self._is_call_to(it, enumerate) and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                if len(it.args) != 1 or it.keywords:
                    raise self.error("enumerate() with a start argument is not supported yet", s,
                                     hint="add the offset to the index inside the loop")
                if isinstance(target.elts[0], ast.Name):
                    index_user = target.elts[0].id
                inner, inner_target = it.args[0], target.elts[1]
                if self._is_call_to(inner, zip) and isinstance(inner_target, ast.Tuple) and \
                        len(inner_target.elts) == len(inner.args) and not inner.keywords:
                    for t, a in zip(inner_target.elts, inner.args):
                        seqs.append((t, self.seq_atom(a)))
                else:
                    seqs.append((inner_target, self.seq_atom(inner)))
            elif self._is_call_to(it, zip) and isinstance(target, ast.Tuple) and len(target.elts) == len(it.args):
                for t, a in zip(target.elts, it.args):
                    seqs.append((t, self.seq_atom(a)))
            elif isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and not it.args and \
                    it.func.attr in ("items", "keys", "values") and not self.is_static(it.func):
                # for k, v in d.items(): iterate over a list of the keys, look each value up
                d = self.atom(it.func.value)
                keys = self.temp()
                self.emit(ir.Assign(target=keys, value=ast.Call(func=_name("list"), args=[d], keywords=[]),
                                    line=s.lineno))
                key_user = None
                if it.func.attr == "items" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                    key_target, value_target = target.elts
                elif it.func.attr == "keys":
                    key_target, value_target = target, None
                elif it.func.attr == "values":
                    key_target, value_target = None, target
                else:
                    raise self.error("unpack .items() into two names: for key, value in d.items()", s)
                key_user = key_target if key_target is not None else _store(self.alloc.fresh("key"))
                seqs.append((key_user, _name(keys)))
                if value_target is not None:
                    pre_value = (value_target, d, key_user)
                    seqs.append(("value-of", pre_value))
            else:
                seqs.append((target, self.seq_atom(it)))
            lookups = [p for t, p in seqs if t == "value-of"]
            seqs = [(t, self.fixed_sequence(q, s)) for t, q in seqs if t != "value-of"]
            n_atoms = []
            for _, seq in seqs:
                n = self.temp()
                self.emit(ir.Assign(target=n, value=ast.Call(func=_name("len"), args=[seq], keywords=[]),
                                    line=s.lineno))
                self.int_names.add(n)
                n_atoms.append(_name(n))
            while len(n_atoms) > 1:
                n = self.temp()
                self.emit(ir.Assign(target=n, value=ast.Call(func=_name("min"), args=n_atoms[:2], keywords=[]),
                                    line=s.lineno))
                self.int_names.add(n)
                n_atoms = [_name(n)] + n_atoms[2:]
            range_args = n_atoms
            loop_var = index_user or self.alloc.fresh("i")
            for t, seq in seqs:
                pre.append(ast.Assign(targets=[t], value=ast.Subscript(value=seq, slice=_name(loop_var),
                                                                        ctx=ast.Load()), **line))
            for value_target, d, key in lookups:
                key_load = ast.Name(id=key.id, ctx=ast.Load()) if isinstance(key, ast.Name) else key
                pre.append(ast.Assign(targets=[value_target], value=ast.Subscript(value=d, slice=key_load,
                                                                                   ctx=ast.Load()), **line))
        if not isinstance(target, ast.Name) and self._is_call_to(it, range):
            raise self.error("the target of a range loop must be a single name", s)
        loop_name = self.bind_loop_var(loop_var)
        self.int_names.add(loop_name)
        counter = None
        if "brk" in flags:
            self.current[flags["brk"]] = flags["brk"]
            self.emit(ir.Assign(target=flags["brk"], value=_const(False), line=s.lineno))
            counter = self.alloc.fresh("n_iter")
            self.emit(ir.Assign(target=counter, value=_const(0), line=s.lineno))
        inner: list[ast.stmt] = []
        if "cont" in flags:
            inner.append(ast.Assign(targets=[_store(flags["cont"])], value=_const(False), **line))
        inner += pre + body
        self.depth += 1
        saved = self.out
        self.out = []
        try:
            if counter:
                self.emit(ir.Assign(target=counter, value=ast.BinOp(left=_name(counter), op=ast.Add(),
                                                                     right=_const(1)),
                                    line=s.lineno, counter=True))
            for st in inner:
                self.stmt(st)
            if "brk" in flags:
                self.emit(ir.BreakIf(flag=flags["brk"], line=s.lineno))
            block = self.out
        finally:
            self.out = saved
            self.depth -= 1
        self.emit(ir.For(target=loop_name, range_args=range_args, body=block, line=s.lineno,
                         counter=counter, header=self.src.line(s.lineno)))

    def spellable(self, atom: ast.expr) -> ast.expr:
        """``atom`` as a name the user's code (normalized again) reads as that
        value: a temporary (``t3``) is, a renamed variable (``x_1``) is copied
        into one."""
        if not isinstance(atom, ast.Name) or self.current.get(atom.id) == atom.id:
            return atom
        t = self.temp()
        self.emit(ir.Assign(target=t, value=_name(atom.id), line=self.line))
        return _name(t)

    def fixed_sequence(self, seq: ast.expr, loop: ast.For) -> ast.expr:
        """The sequence a loop indexes, as a name the loop body reads as it is:
        Python evaluates ``for x in xs`` once, so a body that rebinds ``xs``
        (``xs = xs * x``) must not change what it iterates over, and a name the
        normalizer made (``xs_1``) is not one the body's statements can spell."""
        if not isinstance(seq, ast.Name):
            return seq
        written = {n.id for st in loop.body for n in ast.walk(st)
                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        user = next((u for u, g in self.current.items() if g == seq.id), None)
        if self.current.get(seq.id) == seq.id and seq.id not in written and user == seq.id:
            return seq
        t = self.temp()
        self.emit(ir.Assign(target=t, value=_name(seq.id), line=loop.lineno))
        return _name(t)

    def seq_atom(self, e: ast.expr) -> ast.expr:
        """A sequence to index: names and displays as they are; anything else
        (a generator, zip, map ...) is first made a list."""
        if isinstance(e, (ast.Name, ast.Tuple, ast.List, ast.Subscript, ast.Attribute)) or \
                isinstance(e, ast.Call) and not self._is_call_to(e, zip) and not self._is_call_to(e, enumerate) \
                and not self._is_call_to(e, map) and not self._is_call_to(e, reversed) \
                and not self._is_call_to(e, filter):
            return self.atom(e)
        return self.atom(ast.Call(func=_name("list"), args=[e], keywords=[]))

    def bind_loop_var(self, user: str) -> str:
        if user in self.current:
            return self.current[user]
        self.current[user] = user
        self.alloc.taken.add(user)
        return user

    def while_stmt(self, s: ast.While) -> None:
        body, flags = self._loop_flags(s)
        line = dict(lineno=s.lineno, col_offset=0)
        if "brk" in flags:
            self.current[flags["brk"]] = flags["brk"]
            self.emit(ir.Assign(target=flags["brk"], value=_const(False), line=s.lineno))
        simple = self._simple_test(s.test)
        counter = self.alloc.fresh("n_iter")
        self.emit(ir.Assign(target=counter, value=_const(0), line=s.lineno))
        if simple:
            test_expr = None
        else:
            cond_user = self.alloc.fresh("cond")
            self.assign_name(cond_user, s.test, s.lineno)
            test_expr = _name(self.current[cond_user])
        inner: list[ast.stmt] = []
        if "cont" in flags:
            inner.append(ast.Assign(targets=[_store(flags["cont"])], value=_const(False), **line))
        inner += body
        self.depth += 1
        saved = self.out
        self.out = []
        try:
            self.emit(ir.Assign(target=counter, value=ast.BinOp(left=_name(counter), op=ast.Add(),
                                                                 right=_const(1)),
                                line=s.lineno, counter=True))
            for st in inner:
                self.stmt(st)
            if not simple:
                self.assign_name(cond_user, s.test, s.lineno)
            if "brk" in flags:
                self.emit(ir.BreakIf(flag=flags["brk"], line=s.lineno))
            block = self.out
        finally:
            self.out = saved
            self.depth -= 1
        if simple:
            test_expr = self.rename_expr(s.test)
        self.emit(ir.While(test=test_expr, body=block, line=s.lineno, counter=counter,
                           header=self.src.line(s.lineno)))

    def _simple_test(self, test: ast.expr) -> bool:
        """Conditions evaluated in the while header as written: comparisons,
        names, constants and boolean combinations of them."""
        if isinstance(test, (ast.Name, ast.Constant)):
            return True
        if isinstance(test, ast.Compare):
            return all(isinstance(x, (ast.Name, ast.Constant)) for x in [test.left] + test.comparators)
        if isinstance(test, ast.BoolOp):
            return all(self._simple_test(v) for v in test.values)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self._simple_test(test.operand)
        return False

    def rename_expr(self, e: ast.expr) -> ast.expr:
        e = copy.deepcopy(e)
        for n in ast.walk(e):
            if isinstance(n, ast.Name) and n.id in self.current:
                n.id = self.current[n.id]
        return e

    def _is_call_to(self, e: ast.expr, obj: Any) -> bool:
        return (isinstance(e, ast.Call) and static_value(self.src, e.func, self.locals) is obj)

    # -- expressions ------------------------------------------------------
    def arg_atom(self, e: ast.expr) -> ast.expr:
        """A call argument: an atom, or a tuple of numbers kept as written
        (``axis=(0, 1)``), so the compiler sees its value."""
        if isinstance(e, ast.Tuple) and e.elts and all(
                isinstance(x, ast.Constant) and isinstance(x.value, int) or
                isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.USub) and isinstance(x.operand, ast.Constant)
                and isinstance(x.operand.value, int) for x in e.elts):
            return ast.Tuple(elts=[self.atom(x) for x in e.elts], ctx=ast.Load())
        return self.atom(e)

    def atom(self, e: ast.expr) -> ast.expr:
        """Lower ``e`` to an atom: a name, a constant or a static reference."""
        if isinstance(e, ast.Constant):
            return _const(e.value)
        if isinstance(e, ast.Name):
            return self.name_atom(e)
        if isinstance(e, ast.Attribute) and self.is_static(e):
            return copy.deepcopy(e)
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) and isinstance(e.operand, ast.Constant):
            return _const(-e.operand.value)
        op = self.flat(e)
        if isinstance(op, (ast.Name, ast.Constant)):
            return op
        t = self.temp()
        self.emit(ir.Assign(target=t, value=op, line=getattr(e, "lineno", self.line)))
        if self._int_valued(op):
            self.int_names.add(t)
        return _name(t)

    def _int_valued(self, op: ast.expr) -> bool:
        if isinstance(op, ast.Call) and isinstance(op.func, ast.Name) and op.func.id in ("len", "int"):
            return True
        if isinstance(op, ast.BinOp) and isinstance(op.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
            parts = [op.left, op.right]
            return all(isinstance(p, ast.Constant) and isinstance(p.value, int)
                       or isinstance(p, ast.Name) and p.id in self.int_names for p in parts)
        return False

    def is_static(self, e: ast.expr) -> bool:
        return static_value(self.src, e, set(self.current) | self.locals) is not MISSING

    def name_atom(self, e: ast.Name) -> ast.expr:
        if e.id in self.current:
            return _name(self.current[e.id])
        if e.id in self.lambdas:
            raise self.error(f"the lambda {e.id} can only be called here, not passed as a value", e,
                             hint="call it directly, or define a module-level function")
        if e.id in self.partials:
            raise self.error(f"the partial {e.id} can only be called here, not passed as a value", e,
                             hint="call it directly, or make the partial outside the function")
        if self.src.lifted.get(e.id):
            raise self.error(f"{e.id} reads variables of the enclosing function, so it can only be called "
                             "here, not passed as a value", e,
                             hint=f"call it directly, or pass those variables to {e.id} as arguments")
        if e.id in self.locals:
            raise self.error(f"variable {e.id!r} is used before it is assigned", e)
        if self.src.resolve_global(e.id) is MISSING:
            raise self.error(f"name {e.id!r} is not defined", e)
        return _name(e.id)

    def flat(self, e: ast.expr) -> ast.expr:
        """Lower the operands of ``e`` to atoms; return the one operation."""
        self.line = getattr(e, "lineno", self.line)
        if isinstance(e, (ast.Constant, ast.Name)):
            return self.atom(e)
        if isinstance(e, ast.BinOp):
            return ast.BinOp(left=self.atom(e.left), op=e.op, right=self.atom(e.right))
        if isinstance(e, ast.UnaryOp):
            if isinstance(e.op, ast.USub) and isinstance(e.operand, ast.Constant):
                return _const(-e.operand.value)
            return ast.UnaryOp(op=e.op, operand=self.atom(e.operand))
        if isinstance(e, ast.Compare):
            if len(e.ops) == 1:
                return ast.Compare(left=self.atom(e.left), ops=e.ops, comparators=[self.atom(e.comparators[0])])
            # a < b < c  ->  (a < b) and (b < c), evaluating b once (the parts are normalized
            # again as the user's code: each operand a name that code can spell)
            left = self.spellable(self.atom(e.left))
            parts = []
            for op, right in zip(e.ops, e.comparators):
                r = self.spellable(self.atom(right))
                parts.append(ast.Compare(left=left, ops=[op], comparators=[r]))
                left = r
            return self.flat(ast.BoolOp(op=ast.And(), values=parts))
        if isinstance(e, ast.BoolOp):
            return self.boolop(e)
        if isinstance(e, ast.IfExp):
            t = self.alloc.numbered("t")
            test = self.test_atom(e.test)
            self.current[t] = t
            body = self._branch_value(t, e.body)
            orelse = self._branch_value(t, e.orelse)
            self.emit_if(test, body, orelse, getattr(e, "lineno", self.line))
            return _name(t)
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, ast.Attribute):
            if self.is_static(e):
                return copy.deepcopy(e)
            return ast.Attribute(value=self.atom(e.value), attr=e.attr, ctx=ast.Load())
        if isinstance(e, ast.Subscript):
            return ast.Subscript(value=self.atom(e.value), slice=self.index(e.slice), ctx=ast.Load())
        if isinstance(e, (ast.Tuple, ast.List)):
            if any(isinstance(x, ast.Starred) for x in e.elts):
                return self.starred_display(e)
            cls = type(e)
            return cls(elts=[self.atom(x) for x in e.elts], ctx=ast.Load())
        if isinstance(e, ast.Dict):
            if any(k is None for k in e.keys):
                raise self.error("dict unpacking (**) is not supported", e)
            return ast.Dict(keys=[self.atom(k) for k in e.keys], values=[self.atom(v) for v in e.values])
        if isinstance(e, ast.JoinedStr):
            # f"{expr:spec}": each expr computed like any other (it may call a lambda of this function)
            parts = []
            for part in e.values:
                if isinstance(part, ast.FormattedValue):
                    part = ast.FormattedValue(value=self.atom(part.value), conversion=part.conversion,
                                              format_spec=self.rename_expr(part.format_spec)
                                              if part.format_spec is not None else None)
                parts.append(part)
            return ast.JoinedStr(values=parts)
        if isinstance(e, ast.Lambda):
            raise self.error("a lambda can only be assigned to a name and called", e,
                             hint="assign it first: f = lambda x: ..., then call f(...)")
        if isinstance(e, (ast.ListComp, ast.GeneratorExp)):
            return self.comprehension(e)
        if isinstance(e, (ast.SetComp, ast.DictComp)):
            raise self.error("set and dict comprehensions are not supported", e,
                             hint="build a list with a comprehension or a loop, or a dict entry by entry")
        if isinstance(e, (ast.Yield, ast.YieldFrom, ast.Await)):
            raise self.error("generators and coroutines cannot be differentiated", e,
                             hint="return a value instead of yielding it")
        if isinstance(e, ast.NamedExpr):
            raise self.error("the walrus operator := is not supported", e, hint="assign on its own line")
        if isinstance(e, ast.Set):
            raise self.error("sets are not supported", e, hint="use a list or tuple")
        raise self.error(f"unsupported expression {type(e).__name__}", e)

    def comprehension(self, e: ast.expr) -> ast.expr:
        """``[f(v) for v in xs if c]`` -> a list built by a loop with ``append``
        (a generator expression is built the same way).  The comprehension's
        variables get fresh names, so they never clobber the function's own."""
        line = dict(lineno=getattr(e, "lineno", self.line), col_offset=0)
        lst = self.alloc.fresh("items")
        renames: dict[str, str] = {}

        def rename(node: ast.AST) -> ast.AST:
            node = copy.deepcopy(node)
            for n in ast.walk(node):
                if isinstance(n, ast.Name) and n.id in renames:
                    n.id = renames[n.id]
            return node

        loops = []
        for gen in e.generators:
            if getattr(gen, "is_async", 0):
                raise self.error("async comprehensions are not supported", e)
            it = rename(gen.iter)
            targets = [gen.target] if isinstance(gen.target, ast.Name) else \
                list(gen.target.elts) if isinstance(gen.target, ast.Tuple) else None
            if targets is None or not all(isinstance(t, ast.Name) for t in targets):
                raise self.error("a comprehension's variables must be names", e)
            for t in targets:
                renames[t.id] = self.alloc.fresh(t.id + "_")
            loops.append((rename(gen.target), it, [rename(c) for c in gen.ifs]))
        body: list[ast.stmt] = [ast.Expr(value=ast.Call(
            func=ast.Attribute(value=_name(lst), attr="append", ctx=ast.Load()),
            args=[rename(e.elt)], keywords=[]), **line)]
        for target, it, ifs in reversed(loops):
            for c in reversed(ifs):
                body = [ast.If(test=c, body=body, orelse=[], **line)]
            for t in ast.walk(target):
                if isinstance(t, ast.Name):
                    t.ctx = ast.Store()
            body = [ast.For(target=target, iter=it, body=body, orelse=[], **line)]
        self.stmt(ast.Assign(targets=[_store(lst)], value=ast.List(elts=[], ctx=ast.Load()), **line))
        for st in body:
            self.stmt(st)
        return _name(self.current[lst])

    def _branch_value(self, t: str, e: ast.expr) -> list:
        saved = self.out
        self.out = []
        self.depth += 1
        try:
            op = self.flat(e)
            self.emit(ir.Assign(target=t, value=op, line=getattr(e, "lineno", self.line)))
            return self.out
        finally:
            self.out = saved
            self.depth -= 1

    def boolop(self, e: ast.BoolOp) -> ast.expr:
        # a and b -> t = a; if t: t = b      a or b -> t = a; if not t: t = b
        t = self.alloc.numbered("t")
        self.current[t] = t
        first = self.flat(e.values[0])
        self.emit(ir.Assign(target=t, value=first, line=self.line))
        for v in e.values[1:]:
            body = self._branch_value(t, v)
            test: ast.expr = _name(t)
            if isinstance(e.op, ast.Or):
                test = ast.UnaryOp(op=ast.Not(), operand=_name(t))
            self.emit_if(test, body, [], self.line)
        return _name(t)

    def index(self, e: ast.expr) -> ast.expr:
        if isinstance(e, ast.Slice):
            return ast.Slice(lower=self.atom(e.lower) if e.lower else None,
                             upper=self.atom(e.upper) if e.upper else None,
                             step=self.atom(e.step) if e.step else None)
        if isinstance(e, ast.Tuple):
            return ast.Tuple(elts=[self.index(x) for x in e.elts], ctx=ast.Load())
        return self.atom(e)

    def call(self, e: ast.Call) -> ast.expr:
        e = self.rewrite_call(e)
        if not isinstance(e, ast.Call):
            return e  # lowered to statements already (dataclasses.replace): its result
        starred = any(isinstance(a, ast.Starred) for a in e.args)
        if starred:
            from ..rules import TABLE

            obj = static_value(self.src, e.func, set(self.current) | self.locals)
            if obj is MISSING or not TABLE.is_nondiff(obj):
                raise self.error(
                    "calls with *args are supported for x.reshape(*shape), x.transpose(*axes), zip(*rows) and "
                    "functions whose results carry no gradient (np.random.randn(*shape))", e,
                    hint="pass the arguments one by one, or build a tuple first: (*a, b) works")
            args = [ast.Starred(value=self.atom(a.value), ctx=ast.Load()) if isinstance(a, ast.Starred)
                    else self.arg_atom(a) for a in e.args]
            kws = [ast.keyword(arg=k.arg, value=self.arg_atom(k.value)) for k in e.keywords if k.arg is not None]
            if len(kws) != len(e.keywords):
                raise self.error("calls with **kwargs are not supported", e, hint="pass keywords one by one")
            return ast.Call(func=copy.deepcopy(e.func), args=args, keywords=kws)
        for k in e.keywords:
            if k.arg is None:
                raise self.error("calls with **kwargs are not supported", e, hint="pass keywords one by one")
        f = e.func
        if isinstance(f, ast.Name) and f.id in self.lambdas and f.id not in self.current:
            return self.inline_lambda(self.lambdas[f.id], e)
        if isinstance(f, ast.Name) and f.id in self.current:
            raise self.error(f"calling the local variable {f.id!r} is not supported", e,
                             hint="call a module-level function or a lambda defined in this function")
        if len(e.args) > 2 and not e.keywords and (self._is_call_to(e, min) or self._is_call_to(e, max)):
            # min(a, b, c) -> min(min(a, b), c)
            nested = ast.Call(func=e.func, args=e.args[:2], keywords=[])
            for a in e.args[2:]:
                nested = ast.Call(func=copy.deepcopy(e.func), args=[nested, a], keywords=[])
            return self.call(nested)
        args = [self.arg_atom(a) for a in e.args]
        kws = [ast.keyword(arg=k.arg, value=self.arg_atom(k.value)) for k in e.keywords]
        if self.is_static(f) or isinstance(f, ast.Name):
            func = copy.deepcopy(f)
            if isinstance(f, ast.Name) and not self.is_static(f):
                self.name_atom(f)  # raises "not defined"
        elif isinstance(f, ast.Attribute):
            func = ast.Attribute(value=self.atom(f.value), attr=f.attr, ctx=ast.Load())
        else:
            func = self.atom(f)
        return ast.Call(func=func, args=args, keywords=kws)

    # -- calls srcdiff rewrites: partials, inner functions, methods, replace, *args --
    def inject(self, obj: Any, base: str) -> str:
        """A name generated code calls ``obj`` by (a closure constant of the function)."""
        name = self.injected.get(id(obj))
        if name is None:
            name = self.alloc.fresh(base if base.isidentifier() else "fn")
            self.src.closure[name] = obj
            self.injected[id(obj)] = name
        return name

    def rewrite_call(self, e: ast.Call) -> ast.expr:
        """The call ``e`` as srcdiff compiles it: a partial's function with its
        arguments, a lifted inner function with the variables it reads, a
        method of ``self`` as its function, ``dataclasses.replace`` as one
        ``replace_field`` per field, ``zip(*rows)`` as ``unzip(rows)``."""
        f = e.func
        line = dict(lineno=getattr(e, "lineno", self.line), col_offset=0)
        if isinstance(f, ast.Name) and f.id in self.partials and f.id not in self.current:
            func, args, kws = self.partials[f.id]
            return self.rewrite_call(ast.Call(func=copy.deepcopy(func), args=list(args) + list(e.args),
                                              keywords=list(kws) + list(e.keywords), **line))
        if isinstance(f, ast.Name) and f.id in self.src.lifted and f.id not in self.current:
            extra = [ast.keyword(arg=v, value=_name(v)) for v in self.src.lifted[f.id]]
            return ast.Call(func=f, args=list(e.args), keywords=list(e.keywords) + extra, **line)
        if isinstance(f, ast.Name) and f.id in self.lambdas:
            return e
        obj = static_value(self.src, f, set(self.current) | self.locals)
        if type(obj) is functools.partial and isinstance(obj.func, types.FunctionType):  # (not a subclass: a gradient)
            # a partial made outside the function: its function and arguments, read when this compiles
            fname = self.inject(obj.func, obj.func.__name__)
            args = [self._constant_ref(v, f"{fname}_arg{i}") for i, v in enumerate(obj.args)]
            kws = [ast.keyword(arg=k, value=self._constant_ref(v, f"{fname}_{k}")) for k, v in obj.keywords.items()]
            return self.rewrite_call(ast.Call(func=_name(fname), args=args + list(e.args),
                                              keywords=kws + list(e.keywords), **line))
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == self.self_name:
            method = self.method_of_self(f.attr)
            if method is not None:
                fn, pass_self = method
                args = ([_name(self.self_name)] if pass_self else []) + list(e.args)
                return ast.Call(func=_name(self.inject(fn, f.attr)), args=args, keywords=list(e.keywords), **line)
        is_replace = obj is dataclasses.replace
        if is_replace or isinstance(f, ast.Attribute) and f.attr == "_replace" and obj is MISSING:
            return self.replace_fields(e, is_replace)
        if obj is zip and len(e.args) == 1 and isinstance(e.args[0], ast.Starred) and not e.keywords:
            from .. import containers

            return ast.Call(func=_name(self.inject(containers.unzip, "unzip")), args=[e.args[0].value],
                            keywords=[], **line)
        if isinstance(f, ast.Attribute) and f.attr in ("reshape", "transpose") and obj is MISSING and \
                any(isinstance(a, ast.Starred) for a in e.args):
            # x.reshape(*shape, 2) == x.reshape((*shape, 2))
            return ast.Call(func=f, args=[ast.Tuple(elts=list(e.args), ctx=ast.Load())], keywords=list(e.keywords),
                            **line)
        return e

    def _constant_ref(self, v: Any, base: str) -> ast.expr:
        if v is None or isinstance(v, (bool, int, float, str)):
            return _const(v)
        return _name(self.inject(v, base))

    @property
    def self_name(self) -> str | None:
        """The name of ``self`` when the function is compiled as a method (and never reassigns it)."""
        if self.src.self_class is None:
            return None
        a = self.src.node.args
        pos = a.posonlyargs + a.args
        if not pos or pos[0].arg in self._assigned_names(self.src.node):
            return None
        return pos[0].arg

    def method_of_self(self, attr: str) -> tuple[Any, bool] | None:
        """``(function, pass self)`` for ``self.<attr>(...)``: a method (a
        function of the class, compiled knowing the class of its ``self``) or
        a staticmethod; None for anything else (an attribute holding a function)."""
        cls = self.src.self_class
        try:
            raw = inspect.getattr_static(cls, attr)
        except AttributeError:
            return None
        if isinstance(raw, staticmethod) and isinstance(raw.__func__, types.FunctionType):
            return raw.__func__, False
        if isinstance(raw, types.FunctionType):
            return _as_method_of(raw, cls), True
        return None

    def replace_fields(self, e: ast.Call, is_replace: bool) -> ast.expr:
        """``dataclasses.replace(p, W=a, b=c)`` / ``p._replace(W=a)``: one
        ``replace_field(p, 'W', a)`` per field, each a new container."""
        from .. import containers

        if (len(e.args) != 1 if is_replace else bool(e.args)) or any(k.arg is None for k in e.keywords):
            raise self.error("dataclasses.replace / _replace take the object and the fields by keyword", e,
                             hint="write dataclasses.replace(p, W=new_W) or p._replace(W=new_W)")
        cur = self.atom(e.args[0] if is_replace else e.func.value)
        fn = self.inject(containers.replace_field, "replace_field")
        if not e.keywords:
            return cur
        for k in e.keywords[:-1]:
            value = self.atom(k.value)
            t = self.temp()
            self.emit(ir.Assign(target=t, value=ast.Call(func=_name(fn), args=[cur, _const(k.arg), value],
                                                        keywords=[]), line=self.line))
            cur = _name(t)
        k = e.keywords[-1]
        return ast.Call(func=_name(fn), args=[cur, _const(k.arg), self.atom(k.value)], keywords=[])

    def make_partial(self, user: str, value: ast.Call) -> None:
        """``p = functools.partial(f, a, k=v)``: calls ``p(x)`` become ``f(a, x, k=v)``
        (the arguments evaluated here, as partial does)."""
        func = value.args[0]
        if any(isinstance(a, ast.Starred) for a in value.args) or any(k.arg is None for k in value.keywords):
            raise self.error("functools.partial with *args or **kwargs is not supported", value,
                             hint="bind the arguments one by one")
        if not (isinstance(func, ast.Name) and (func.id in self.lambdas or func.id in self.src.lifted
                                                 or func.id in self.partials) or self.is_static(func)):
            raise self.error("functools.partial of a local variable is not supported", value,
                             hint="make a partial of a module-level function, a lambda or a function defined here")
        args = [self.atom(a) for a in value.args[1:]]
        kws = [ast.keyword(arg=k.arg, value=self.atom(k.value)) for k in value.keywords]
        self.partials[user] = (copy.deepcopy(func), args, kws)
        self.current.pop(user, None)

    def nested_def(self, s: ast.FunctionDef) -> None:
        """A function defined inside this one becomes a helper of its own (its
        adjoint is generated too): the variables of this function it reads are
        passed to it as extra keyword arguments at every call."""
        if s.decorator_list:
            raise self.error("a decorated function defined inside the function is not supported", s,
                             hint="define it at module level")
        a = s.args
        for d in a.defaults + [d for d in a.kw_defaults if d is not None]:
            if not isinstance(d, ast.Constant):
                raise self.error(f"the default values of {s.name} must be constants here", s,
                                 hint="define it at module level, or pass the value at each call")
        own = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs} | \
            {x.arg for x in (a.vararg, a.kwarg) if x is not None}
        assigned = self._assigned_names(s)
        loads = {n.id for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        outer = loads - own - assigned - {s.name}
        for n in outer:
            if n in self.lambdas or n in self.partials:
                raise self.error(f"{s.name} calls {n}, a lambda or partial of the enclosing function", s,
                                 hint=f"define {n} inside {s.name}, or at module level")
        free = {n for n in outer if n in self.locals and n not in self.src.lifted}
        for n in outer & set(self.src.lifted):
            free |= set(self.src.lifted[n])  # a function defined earlier, called from this one
        free_list = sorted(free)
        node = copy.deepcopy(s)
        node.args.kwonlyargs = node.args.kwonlyargs + [ast.arg(arg=v) for v in free_list]
        node.args.kw_defaults = node.args.kw_defaults + [None] * len(free_list)
        # built inside a factory, so that the names it reads from the enclosing function's
        # closure, the other functions defined here, and itself (recursion) are closure cells
        cells = sorted(n for n in outer if n in self.src.closure and n not in free)
        factory = ast.FunctionDef(
            name="__srcdiff_factory__",
            args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=c) for c in cells], vararg=None, kwonlyargs=[],
                               kw_defaults=[], kwarg=None, defaults=[]),
            body=[node, ast.Return(value=_name(s.name), lineno=s.lineno, col_offset=0)],
            decorator_list=[], returns=None, type_comment=None, lineno=s.lineno, col_offset=0)
        for n in ast.walk(factory):
            if hasattr(n, "lineno"):
                n.end_lineno = max(getattr(n, "end_lineno", None) or n.lineno, n.lineno)
        if hasattr(ast.FunctionDef, "type_params"):
            factory.type_params = []
        module = ast.Module(body=[factory], type_ignores=[])
        ast.fix_missing_locations(module)
        code = compile(module, self.src.filename, "exec")
        factory_code = next(c for c in code.co_consts if isinstance(c, types.CodeType))
        fn = types.FunctionType(factory_code, self.src.globals)(*[self.src.closure[c] for c in cells])
        fn.__qualname__ = f"{self.src.node.name}.<locals>.{s.name}"
        from .frontend import Source

        self.src.lifted[s.name] = free_list
        self.src.closure[s.name] = fn
        fn.__srcdiff_source__ = Source(fn=fn, node=node, filename=self.src.filename, lines=self.src.lines,
                                       globals=self.src.globals, closure=dict(self.src.closure),
                                       lifted=dict(self.src.lifted))

    def with_stmt(self, s: ast.With) -> None:
        """``with cm: body``: ``cm.__enter__()``, the body, ``cm.__exit__(None, None, None)``,
        in the forward pass (the backward pass runs outside the block)."""
        for n in _own_nodes(s.body):
            if isinstance(n, ast.Return):
                raise self.error("return inside a with block is not supported", n,
                                 hint="assign the result inside the block and return it after the block")
        if _contains(s.body, (ast.Break, ast.Continue), into_loops=False) or any(
                isinstance(n, (ast.Break, ast.Continue)) for n in _own_nodes(s.body, loops=False)):
            raise self.error("break or continue inside a with block is not supported", s,
                             hint="set a flag inside the block and break after it")
        import contextlib
        import warnings

        import numpy as np

        allowed = (np.errstate, warnings.catch_warnings, contextlib.nullcontext)
        for item in s.items:
            c = item.context_expr
            if not (isinstance(c, ast.Call) and any(self._is_call_to(c, a) for a in allowed)):
                raise self.error("with is supported for np.errstate(...), warnings.catch_warnings() and "
                                 "contextlib.nullcontext() only", s,
                                 hint="move the with-block outside the function you differentiate")
        exits = []
        for item in s.items:
            cm = self.atom(item.context_expr)
            enter = ast.Call(func=ast.Attribute(value=copy.deepcopy(cm), attr="__enter__", ctx=ast.Load()),
                             args=[], keywords=[])
            if item.optional_vars is None:
                self.emit(ir.Expr(node=ast.Expr(value=enter, lineno=s.lineno, col_offset=0), line=s.lineno))
            elif isinstance(item.optional_vars, ast.Name):
                target = self.bind_target(item.optional_vars.id)
                self.emit(ir.Assign(target=target, value=enter, line=s.lineno))
            else:
                raise self.error("with ... as (a, b) is not supported", s, hint="use with ... as name")
            exits.append(cm)
        for st in s.body:
            self.stmt(st)
        for cm in reversed(exits):
            done = ast.Call(func=ast.Attribute(value=copy.deepcopy(cm), attr="__exit__", ctx=ast.Load()),
                            args=[_const(None), _const(None), _const(None)], keywords=[])
            self.emit(ir.Expr(node=ast.Expr(value=done, lineno=s.lineno, col_offset=0), line=s.lineno))

    def starred_display(self, e: ast.Tuple | ast.List) -> ast.expr:
        """``(*a, b, *c)``: ``concat(concat(a, (b,)), c)``, which knows where each
        part's gradient is."""
        from .. import containers

        kind = "tuple" if isinstance(e, ast.Tuple) else "list"
        cls = type(e)
        parts: list[ast.expr] = []
        run: list[ast.expr] = []
        for x in e.elts:
            if isinstance(x, ast.Starred):
                if run:
                    parts.append(self.atom(cls(elts=run, ctx=ast.Load())))
                    run = []
                parts.append(self.atom(x.value))
            else:
                run.append(x)
        if run:
            parts.append(self.atom(cls(elts=run, ctx=ast.Load())))
        if len(parts) == 1:
            parts.insert(0, self.atom(cls(elts=[], ctx=ast.Load())))
        fn = self.inject(containers.concat, "concat")
        acc = parts[0]
        for p in parts[1:-1]:
            t = self.temp()
            self.emit(ir.Assign(target=t, value=ast.Call(func=_name(fn), args=[acc, p, _const(kind)], keywords=[]),
                                line=self.line))
            acc = _name(t)
        return ast.Call(func=_name(fn), args=[acc, parts[-1], _const(kind)], keywords=[])

    def inline_lambda(self, lam: ast.Lambda, call: ast.Call) -> ast.expr:
        a = lam.args
        names = [p.arg for p in a.posonlyargs + a.args]
        if a.vararg or a.kwarg or a.kwonlyargs or call.keywords or len(call.args) > len(names):
            raise self.error("this lambda call is too complex to inline", call,
                             hint="use positional arguments, or a module-level function")
        args = [self.atom(x) for x in call.args]
        defaults = a.defaults
        missing = names[len(args):]
        if len(missing) > len(defaults):
            raise self.error("missing arguments in the lambda call", call)
        args += [self.atom(d) for d in defaults[len(defaults) - len(missing):]]
        saved = dict(self.current)
        saved_lambdas = dict(self.lambdas)
        try:
            for n, v in zip(names, args):
                if isinstance(v, ast.Name):
                    self.current[n] = v.id
                else:
                    t = self.temp()
                    self.emit(ir.Assign(target=t, value=v, line=self.line))
                    self.current[n] = t
                self.lambdas.pop(n, None)
            return self.flat(lam.body)
        finally:
            self.current = saved
            self.lambdas = saved_lambdas


def _own_nodes(stmts: list[ast.stmt], loops: bool = True):
    """The nodes of ``stmts``, not inside functions or lambdas defined there
    (nor, with ``loops=False``, inside loops)."""
    todo = list(stmts)
    while todo:
        n = todo.pop()
        yield n
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if not loops and isinstance(n, (ast.For, ast.While)):
            continue
        todo.extend(ast.iter_child_nodes(n))


_METHOD_COPIES: dict[tuple[int, int], tuple[Any, type, Any]] = {}


def _as_method_of(fn: types.FunctionType, cls: type) -> types.FunctionType:
    """``fn`` (a function of ``cls`` or a base class) as a function of its own
    that knows the class of its ``self``, so that its ``self.f()`` calls
    resolve where the object's own class resolves them."""
    key = (id(fn), id(cls))
    got = _METHOD_COPIES.get(key)
    if got is not None and got[0] is fn and got[1] is cls:
        return got[2]
    new = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    new.__srcdiff_self_class__ = cls  # type: ignore[attr-defined]
    _METHOD_COPIES[key] = (fn, cls, new)
    return new


def normalize(src: Source) -> ir.Function:
    """Lower the parsed function ``src`` to A-normal form."""
    return Normalizer(src).run()
