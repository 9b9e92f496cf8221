"""Builders for the Python code the transforms generate (standard-library ``ast``).

Shared by every transform and by the probe: names, assignments, calls, the
comment marker that ``emit`` turns into ``# ...`` lines, and function
definitions that carry the user's signature."""

from __future__ import annotations

import ast
import copy
import sys

from . import ir

COMMENT = "__srcdiff_comment__"  # comment("text") marks a line ``emit`` prints as ``# text``


def load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def store(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Store())


def assign(target: str | ast.expr, value: ast.expr) -> ast.Assign:
    t = store(target) if isinstance(target, str) else target
    return ast.Assign(targets=[t], value=value, lineno=0)


def call(func: ast.expr, *args: ast.expr) -> ast.Call:
    return ast.Call(func=func, args=list(args), keywords=[])


def attr(base: str, name: str) -> ast.Attribute:
    return ast.Attribute(value=load(base), attr=name, ctx=ast.Load())


def comment(text: str) -> ast.Expr:
    return ast.Expr(value=call(load(COMMENT), ast.Constant(value=text)))


def if_stmt(test: ast.expr, body: list, orelse: list) -> list[ast.stmt]:
    if not body and not orelse:
        return []
    if not body:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return [ast.If(test=copy.deepcopy(test.operand), body=orelse, orelse=[])]
        return [ast.If(test=ast.UnaryOp(op=ast.Not(), operand=copy.deepcopy(test)), body=orelse, orelse=[])]
    return [ast.If(test=copy.deepcopy(test), body=body, orelse=orelse)]


def arguments_of(fn: ir.Function) -> ast.arguments:
    node = fn.source.node
    return copy.deepcopy(node.args)


def funcdef(name: str, args: ast.arguments, body: list[ast.stmt]) -> ast.FunctionDef:
    kw = {}
    if hasattr(ast.FunctionDef, "type_params") or sys.version_info >= (3, 12):
        kw["type_params"] = []
    return ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None,
                           type_comment=None, lineno=0, **kw)
