"""The forward pass of a reverse-mode adjoint: the user's statements again,
with the pushes the tape plan asks for, loop-invariant temporaries hoisted,
values only the function's result needed dropped when the caller wants the
gradient alone, and reductions in their ``ndarray`` method form.

A mixin of ``Reverse`` (reads ``pushed``, ``none_init``, ``needed``,
``helper_specs``, ``saved_names``, ``seed_code`` and ``ctx``)."""

from __future__ import annotations

import ast
import copy

from . import ir
from .astlib import assign, attr, call, if_stmt, load, store
from .graph import reduction_of
from .tape import _pure


class ForwardReplay:
    def _forward(self) -> list[ast.stmt]:
        self.dead = self._dead_statements()
        return self._fwd_block(self.fn.body)

    def _live_outside(self, loop) -> set[str]:
        """Names read by the kept statements outside ``loop`` and by the backward sweep."""
        inside = {id(x) for x in ir.walk(loop.body)} | {id(loop)}
        out = set(self.needed)
        for st in ir.walk(self.fn.body):
            if id(st) not in inside and id(st) not in self.dead:
                out |= {n.id for n in ast.walk(ir.reads_of(st)) if isinstance(n, ast.Name)}
        if isinstance(self.fn.result, ast.Name):
            out.add(self.fn.result.id)
        return out

    def _dead_statements(self) -> set[int]:
        """Forward statements nothing needs: values computed only for the
        function's result, when the caller wants the gradient alone."""
        keep = set(self.needed)
        res = self.fn.result
        value_needed = self.mode != "main" or self.ctx.keep_value or any(
            isinstance(st, ast.Expr) and isinstance(st.value, ast.Call)
            and isinstance(st.value.func, ast.Attribute) and st.value.func.attr == "seed"
            for st in self.seed_code)
        if isinstance(res, ast.Name) and value_needed:
            keep.add(res.id)
        if isinstance(res, ast.Name) and self.seed_code and not value_needed:
            for st in self.seed_code:
                if any(isinstance(n, ast.Name) and n.id == res.id for n in ast.walk(st)):
                    keep.add(res.id)
        candidates = [st for st in ir.walk(self.fn.body) if isinstance(st, ir.Assign) and st.op is not None
                      and not st.counter and _pure(st) and id(st) not in self.helper_specs]
        dead: set[int] = set()
        while True:
            used = set(keep)
            for st in ir.walk(self.fn.body):
                if id(st) in dead:
                    continue
                for n in ast.walk(ir.reads_of(st)):
                    if isinstance(n, ast.Name):
                        used.add(n.id)
            new = {id(st) for st in candidates if st.target not in used} - dead
            if not new:
                return dead
            dead |= new

    def _push(self, name: str) -> ast.stmt:
        return ast.Expr(value=call(attr(self.stack, "append"), load(name)))

    def _fwd_block(self, stmts) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for s in stmts:
            if isinstance(s, (ir.For, ir.While)) and id(s) in self.none_init:
                for n in self.none_init[id(s)]:
                    out.append(assign(n, ast.Constant(value=None)))
            if isinstance(s, ir.Assign):
                if id(s) in self.dead:
                    continue
                for t in self.pushed.get(id(s), ()):
                    out.append(self._push(t))
                if id(s) in self.helper_specs:
                    spec = self.helper_specs[id(s)]
                    value = ast.Call(func=load(spec.fwd), args=list(s.op.args),
                                     keywords=[ast.keyword(arg=k, value=v) for k, v in s.op.bound.items()])
                    target = ast.Tuple(elts=[store(s.target), store(self.saved_names[id(s)])], ctx=ast.Store())
                    out.append(ast.Assign(targets=[target], value=value, lineno=0))
                elif s.counter:
                    out.append(ast.AugAssign(target=store(s.target), op=ast.Add(), value=ast.Constant(value=1)))
                elif id(s) in self.ctx.copy_views and s.target in self.needed:
                    # a view of an array assigned into later, which the backward pass reads: keep it as it is now
                    out.append(assign(s.target, call(ast.Attribute(value=self._method_form(s), attr="copy",
                                                                   ctx=ast.Load()))))
                else:
                    out.append(assign(s.target, self._method_form(s)))
            elif isinstance(s, ir.Unpack):
                for t in self.pushed.get(id(s), ()):
                    out.append(self._push(t))
                out.append(ast.Assign(targets=[ast.Tuple(elts=[store(t) for t in s.targets], ctx=ast.Store())],
                                      value=load(s.value), lineno=0))
            elif isinstance(s, ir.Append):
                out.append(ast.Expr(value=call(attr(s.lst, "append"), copy.deepcopy(s.value))))
            elif isinstance(s, ir.SetItem):
                if self.stack and self._saves_overwritten(s):
                    out.append(ast.Expr(value=call(attr(self.stack, "append"), self._selection(s, s.target, True))))
                out.append(ast.Assign(targets=[self._selection(s, s.target, store=True)],
                                      value=copy.deepcopy(s.value), lineno=0))
            elif isinstance(s, ir.Expr):
                out.append(s.node)
            elif isinstance(s, ir.If):
                body = self._fwd_block(s.body)
                orelse = self._fwd_block(s.orelse)
                out.extend(if_stmt(s.test, body, orelse))
            elif isinstance(s, ir.For):
                hoisted, rest = self._hoist(s)
                out += self._fwd_block(hoisted)
                body = self._fwd_block(rest)
                if not body and not s.counter and s.target not in self._live_outside(s):
                    continue  # everything in it was only needed for f's value
                body = body or [ast.Pass()]
                out.append(ast.For(target=store(s.target), iter=call(load("range"), *s.range_args), body=body,
                                   orelse=[], lineno=0))
            elif isinstance(s, ir.While):
                hoisted, rest = self._hoist(s)
                out += self._fwd_block(hoisted)
                body = self._fwd_block(rest) or [ast.Pass()]
                out.append(ast.While(test=copy.deepcopy(s.test), body=body, orelse=[]))
            elif isinstance(s, ir.BreakIf):
                out.append(ast.If(test=load(s.flag), body=[ast.Break()], orelse=[]))
            elif isinstance(s, ir.Return):
                pass
        return out

    def _method_form(self, s: ir.Assign) -> ast.expr:
        """``np.max(z, axis=1)`` as ``z.max(axis=1)`` when ``z`` is known to be a
        float ndarray: the same computation, without NumPy's Python wrapper
        (about a microsecond per call)."""
        v = s.value
        op = s.op
        if op is not None and op.kind == "rule" and isinstance(v, ast.Call) and v.args and \
                isinstance(v.func, ast.Attribute) and isinstance(v.args[0], ast.Name):
            method = reduction_of(op) if op.rule.fn is not None else None
            sh = self.ctx.shapes.get(v.args[0].id)
            if method and sh is not None and sh.float_array:
                return ast.Call(func=ast.Attribute(value=copy.deepcopy(v.args[0]), attr=method, ctx=ast.Load()),
                                args=copy.deepcopy(v.args[1:]), keywords=copy.deepcopy(v.keywords))
        return copy.deepcopy(v)

    def _hoist(self, loop) -> tuple[list, list]:
        """Statements of a loop's body that compute the same value in every
        iteration (``t1 = -k`` when ``k`` never changes in the loop): computed
        once, before the loop, in the forward pass.  Only the compiler's own
        temporaries, only operations that cannot fail (+, -, *), never a value
        the stack saves.  Returns (hoisted, the rest of the body)."""
        import operator

        changing = self._assigned_in(loop.body) | ({loop.target} if isinstance(loop, ir.For) else set())
        if loop.counter:
            changing.add(loop.counter)
        hoisted, rest = [], []
        for st in loop.body:
            if isinstance(st, ir.Assign) and st.target in self.fn.temps and not st.counter and \
                    st.op is not None and st.op.kind == "rule" and \
                    st.op.rule.fn in (operator.add, operator.sub, operator.mul, operator.neg, operator.pos) and \
                    not self.pushed.get(id(st)) and id(st) not in self.dead and \
                    all(isinstance(e, ast.Constant) or isinstance(e, ast.Name) and e.id not in changing
                        for e in st.op.bound.values()) and \
                    sum(isinstance(x, ir.Assign) and x.target == st.target for x in ir.walk(loop.body)) == 1:
                hoisted.append(st)
                changing.discard(st.target)
            else:
                rest.append(st)
        return hoisted, rest

