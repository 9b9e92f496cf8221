"""The computation graph: resolve what each A-normal-form statement computes
(which derivative rule, helper or constant operation), record the values it
reads, and show the result as text or Graphviz DOT.

This is the SSA view of the function: every value has one defining
statement; values reassigned inside loops and branches are shown as the
regions' inputs and outputs.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import operator
import types
from typing import Any

import numpy as np

from ..rules import TABLE
from . import ir
from .frontend import MISSING, static_value

BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.MatMult: operator.matmul, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}


def operand_names(e: ast.expr, local: set[str]) -> list[str]:
    return [n.id for n in ast.walk(e) if isinstance(n, ast.Name) and n.id in local]


class Resolver:
    """Classifies every ``Assign`` of a normalized function (fills ``op``)."""

    def __init__(self, fn: ir.Function) -> None:
        self.fn = fn
        self.src = fn.source
        self.local: set[str] = set(fn.params)
        for s in ir.walk(fn.body):
            if isinstance(s, ir.Assign):
                self.local.add(s.target)
            elif isinstance(s, ir.Unpack):
                self.local.update(s.targets)
            elif isinstance(s, ir.For):
                self.local.add(s.target)

    def run(self) -> None:
        for s in ir.walk(self.fn.body):
            if isinstance(s, ir.Assign):
                s.op = self.classify(s)

    def error(self, s, message, hint=None):
        return self.src.error(message, lineno=s.line, hint=hint)

    def classify(self, s: ir.Assign) -> ir.Op:
        v = s.value
        local = self.local
        ops = operand_names(v, local)
        if isinstance(v, ast.Name):
            if v.id in local:
                return ir.Op("copy", name="copy", operands=[v])
            return ir.Op("const", name="constant")
        if isinstance(v, ast.Constant) or (isinstance(v, ast.Attribute) and not ops):
            return ir.Op("const", name="constant")
        if isinstance(v, ast.BinOp):
            fn = BINOPS[type(v.op)]
            return self.rule_op(s, fn, [v.left, v.right], [], ops)
        if isinstance(v, ast.UnaryOp):
            return self.rule_op(s, UNARY[type(v.op)], [v.operand], [], ops)
        if isinstance(v, ast.Compare):
            return ir.Op("nondiff", name=_CMP.get(type(v.ops[0]), type(v.ops[0]).__name__.lower()),
                         operands=self._names(ops))
        if isinstance(v, (ast.Tuple, ast.List)):
            return ir.Op("tuple" if isinstance(v, ast.Tuple) else "list",
                         name="tuple" if isinstance(v, ast.Tuple) else "list",
                         args=list(v.elts), operands=self._names(ops))
        if isinstance(v, ast.Dict):
            return ir.Op("dict", name="dict", args=list(v.values), operands=self._names(ops))
        if isinstance(v, ast.Subscript):
            return self.rule_op(s, operator.getitem, [v.value, index_value(v.slice)], [], ops, name="getitem")
        if isinstance(v, ast.Attribute):
            rule = TABLE.attrs.get(v.attr)
            if rule is not None:
                return ir.Op("rule", rule=rule, name="." + v.attr, bound={"self": v.value},
                             operands=self._names(ops))
            if v.attr in TABLE.nondiff_attrs:
                return ir.Op("nondiff", name="." + v.attr, operands=self._names(ops))
            if v.attr not in _ARRAY_ATTRS:
                # a field of a parameter container (dataclass, NamedTuple, registered class): read
                # like an element, p["W"], whose adjoint vjp.index_grad puts at that field
                # (srcdiff/containers.py); the code keeps p.W
                return self.rule_op(s, operator.getitem, [v.value, ast.Constant(value=v.attr)], [], ops,
                                    name="." + v.attr)
            return ir.Op("unknown", name="." + v.attr, operands=self._names(ops),
                         callee=f"the attribute .{v.attr}")
        if isinstance(v, ast.JoinedStr):
            return ir.Op("nondiff", name="f-string", operands=self._names(ops))
        if isinstance(v, ast.Call):
            return self.call_op(s, v, ops)
        return ir.Op("unknown", name=type(v).__name__, operands=self._names(ops), callee=ast.unparse(v))

    def _names(self, ops: list[str]) -> list[ast.expr]:
        return [ast.Name(id=n, ctx=ast.Load()) for n in ops]

    def call_op(self, s: ir.Assign, v: ast.Call, ops: list[str]) -> ir.Op:
        f = v.func
        kw = {k.arg: k.value for k in v.keywords}
        obj = static_value(self.src, f, self.local)
        if obj is not MISSING:
            rule = TABLE.rule_for(obj)
            if rule is not None:
                return self.rule_op(s, obj, v.args, list(kw.items()), ops, rule=rule)
            if TABLE.is_nondiff(obj):
                return ir.Op("nondiff", callee=obj, name=ast.unparse(f), operands=self._names(ops))
            if isinstance(obj, types.FunctionType) and not _is_library(obj):
                return ir.Op("helper", callee=obj, name=ast.unparse(f), args=list(v.args),
                             bound=kw, operands=self._names(ops))
            fields = _constructor_fields(obj, v) if isinstance(obj, type) else None
            if fields is not None:
                # Params(W, b=b) of a NamedTuple or dataclass: a container of its arguments, in field order
                return ir.Op("tuple", callee=obj, name=ast.unparse(f), args=fields, operands=self._names(ops))
            if isinstance(obj, type) and issubclass(obj, (np.generic,)):
                # np.float64(x): a cast, gradient passes through like float()
                return ir.Op("cast", callee=obj, name=ast.unparse(f), args=list(v.args),
                             operands=self._names(ops))
            return ir.Op("unknown", callee=obj, name=ast.unparse(f), operands=self._names(ops))
        if isinstance(f, ast.Attribute):
            rule = TABLE.methods.get(f.attr)
            if rule is not None:
                return self.rule_op(s, None, [f.value] + list(v.args), list(kw.items()), ops, rule=rule,
                                    name="." + f.attr + "()")
            if f.attr in TABLE.nondiff_methods:
                return ir.Op("nondiff", name="." + f.attr + "()", operands=self._names(ops))
            return ir.Op("unknown", name="." + f.attr + "()", operands=self._names(ops),
                         callee=f"the method .{f.attr}()")
        return ir.Op("unknown", name=ast.unparse(f), operands=self._names(ops), callee=ast.unparse(f))

    def rule_op(self, s, fn, args, kwargs, ops, rule=None, name=None) -> ir.Op:
        rule = rule or TABLE.rule_for(fn)
        if rule is None:
            kind = "nondiff" if TABLE.is_nondiff(fn) else "unknown"
            return ir.Op(kind, callee=fn, name=name or getattr(fn, "__name__", "?"),
                         operands=self._names(ops))
        try:
            binding = rule.bind(len(args), [k for k, _ in kwargs])
        except TypeError as exc:
            raise self.error(s, f"cannot match this call to the derivative rule of {rule.name}: {exc}",
                             hint=f"the rule's signature is {rule.name}({rule.signature()})") from None
        kwd = dict(kwargs)
        bound: dict[str, ast.expr] = {}
        varargs: dict[str, list[ast.expr]] = {}
        static: dict[str, Any] = {}
        for pname, (kind, val) in binding.items():
            if kind == "arg":
                bound[pname] = args[val]
            elif kind == "kw":
                bound[pname] = kwd[val]
            elif kind == "varargs":
                varargs[pname] = [args[i] for i in val]
                bound[pname] = ast.Tuple(elts=[args[i] for i in val], ctx=ast.Load())
                if all(isinstance(args[i], ast.Constant) for i in val):
                    static[pname] = tuple(args[i].value for i in val)
            elif kind == "varkw":
                continue
            else:
                bound[pname] = ast.Constant(value=val)
                static[pname] = val
            e = bound[pname]
            if isinstance(e, ast.Constant):
                static[pname] = e.value
            elif isinstance(e, ast.Tuple) and all(isinstance(x, ast.Constant) for x in e.elts):
                static[pname] = tuple(x.value for x in e.elts)
        return ir.Op("rule", rule=rule, callee=fn, name=name or rule.name, bound=bound, static=static,
                     varargs=varargs, operands=self._names(ops))


def reduction_of(op: ir.Op) -> str | None:
    """``"sum"``, ``"mean"``, ``"max"``, ``"min"`` or ``"prod"`` when ``op`` is
    that NumPy reduction, as a function (``np.max``) or method (``z.max()``):
    the ``ndarray`` method its rule's facts name."""
    if op is None or op.kind != "rule":
        return None
    return op.rule.facts.reduction or None


def reduced_axes(axis: Any, ndim: int) -> list[int] | None:
    """The axes a reduction's static ``axis`` argument names, sorted and
    non-negative; None when it is not a valid literal."""
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, int) and not isinstance(axis, bool):
        axes = [axis]
    elif isinstance(axis, tuple) and all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
        axes = list(axis)
    else:
        return None
    if any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != len(axes):
        return None
    return sorted(a % ndim for a in axes)


def index_value(e: ast.expr) -> ast.expr:
    """An index as a run-time value: ``1:, None`` -> ``(slice(1, None), None)``."""
    if isinstance(e, ast.Slice):
        parts = [e.lower, e.upper, e.step]
        while len(parts) > 2 and parts[-1] is None:
            parts.pop()
        return ast.Call(func=ast.Name(id="slice", ctx=ast.Load()),
                        args=[p if p is not None else ast.Constant(value=None) for p in parts], keywords=[])
    if isinstance(e, ast.Tuple):
        return ast.Tuple(elts=[index_value(x) for x in e.elts], ctx=ast.Load())
    return e


# attributes of arrays (x.flat, x.strides ...): never read as fields of a container
_ARRAY_ATTRS = {n for n in dir(np.ndarray) if not n.startswith("_") and not callable(getattr(np.ndarray, n, None))}


def _constructor_fields(cls: type, call: ast.Call) -> list[ast.expr] | None:
    """The argument of each field, in field order (a constant where the call
    leaves a field at its default), for a call of a NamedTuple or dataclass
    class whose fields are exactly its constructor's arguments; else None."""
    import dataclasses

    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        names = list(cls._fields)
    elif dataclasses.is_dataclass(cls) and not hasattr(cls, "__post_init__") and \
            all(f.init for f in dataclasses.fields(cls)) and cls.__dataclass_params__.init:
        names = [f.name for f in dataclasses.fields(cls)]
    else:
        return None
    from ..containers import _REGISTRY

    if _REGISTRY.get(cls) is not None and _REGISTRY[cls].kind == "registered":
        return None  # registered with a flatten of its own: its children need not be the arguments
    if len(call.args) > len(names) or any(k.arg not in names for k in call.keywords):
        return None
    out: list[ast.expr] = [ast.Constant(value=None)] * len(names)
    for i, a in enumerate(call.args):
        out[i] = a
    for k in call.keywords:
        out[names.index(k.arg)] = k.value
    return out


def _is_library(fn: types.FunctionType) -> bool:
    mod = getattr(fn, "__module__", "") or ""
    top = mod.split(".")[0]
    return top in {"numpy", "scipy", "math", "builtins", "srcdiff", "autograd", "jax", "torch"}


def helper_signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


# -- printing --------------------------------------------------------------
class Graph:
    """The SSA computation graph of a function, for people to read.

    ``str(graph)`` lists one node per line: the value's name, the operation,
    its inputs and the user's source line; branches and loops are regions
    with the values that flow in and out of them.  ``graph.to_dot()`` gives
    Graphviz DOT text.
    """

    def __init__(self, fn: ir.Function, activity: Any = None) -> None:
        self.fn = fn
        self.activity = activity

    def _active(self, name: str) -> bool:
        return bool(self.activity and self.activity.is_active(name))

    def nodes(self):
        """``(depth, kind, data)`` tuples in program order."""
        yield from self._walk(self.fn.body, 0)

    def _walk(self, stmts, depth):
        for s in stmts:
            if isinstance(s, ir.Assign):
                yield depth, "node", s
            elif isinstance(s, (ir.Unpack, ir.Append, ir.SetItem, ir.Expr, ir.BreakIf, ir.Return)):
                yield depth, "node", s
            elif isinstance(s, ir.If):
                yield depth, "if", s
                yield from self._walk(s.body, depth + 1)
                if s.orelse:
                    yield depth, "else", s
                    yield from self._walk(s.orelse, depth + 1)
                yield depth, "end", s
            elif isinstance(s, (ir.For, ir.While)):
                yield depth, "loop", s
                yield from self._walk(s.body, depth + 1)
                yield depth, "end", s

    @staticmethod
    def _assigned(stmts) -> list[str]:
        out: list[str] = []
        for s in ir.walk(stmts):
            names = [s.target] if isinstance(s, (ir.Assign, ir.SetItem)) else s.targets \
                if isinstance(s, ir.Unpack) else [s.lst] if isinstance(s, ir.Append) else []
            for n in names:
                if n not in out:
                    out.append(n)
        return out

    def _read_before_write(self, stmts) -> list[str]:
        written: set[str] = set()
        out: list[str] = []
        local = set(self.fn.params) | set(self._assigned(self.fn.body))
        for s in ir.walk(stmts):
            reads: list[str] = []
            if isinstance(s, ir.Assign):
                reads = operand_names(s.value, local)
            elif isinstance(s, ir.Unpack):
                reads = [s.value]
            elif isinstance(s, ir.Append):
                reads = [s.lst] + operand_names(s.value, local)
            elif isinstance(s, ir.SetItem):
                reads = [s.target] + operand_names(s.index, local) + operand_names(s.value, local)
            elif isinstance(s, (ir.If, ir.While)) and s.test is not None:
                reads = operand_names(s.test, local)
            for r in reads:
                if r not in written and r not in out:
                    out.append(r)
            if isinstance(s, ir.Assign):
                written.add(s.target)
        return out

    def __str__(self) -> str:
        fn = self.fn
        lines = [f"graph {fn.name}({', '.join(fn.params)})"]
        for depth, kind, s in self.nodes():
            pad = "    " * (depth + 1)
            if kind == "node":
                lines.append(pad + self._node_text(s))
            elif kind == "if":
                body_out = self._assigned(s.body + s.orelse)
                lines.append(pad + f"if {ast.unparse(s.test)}:".ljust(40)
                             + f"# line {s.line}; region writes {', '.join(body_out) or 'nothing'}")
            elif kind == "else":
                lines.append(pad + "else:")
            elif kind == "loop":
                carried = [n for n in self._read_before_write(s.body) if n in self._assigned(s.body)]
                if isinstance(s, ir.For):
                    head = f"for {s.target} in range({', '.join(ast.unparse(a) for a in s.range_args)}):"
                else:
                    head = f"while {ast.unparse(s.test)}:"
                info = [f"line {s.line}", f"carried: {', '.join(carried) or 'none'}",
                        f"reads: {', '.join(n for n in self._read_before_write(s.body) if n not in carried) or 'none'}"]
                lines.append(pad + head.ljust(40) + "# " + "; ".join(info))
        if fn.result is not None:
            lines.append("    return " + ast.unparse(fn.result))
        return "\n".join(lines)

    def _node_text(self, s) -> str:
        src = self.fn.source
        if isinstance(s, ir.Assign):
            op = s.op
            name = op.name if op else "?"
            inputs = ", ".join(_inputs(s.value)) or "-"
            if op and op.kind == "const":
                inputs = ast.unparse(s.value)
            mark = "*" if self._active(s.target) else " "
            text = f"{s.target}{mark}".ljust(10) + f" = {name}({inputs})"
            return text.ljust(44) + f"# line {s.line}: {src.line(s.line)}"
        if isinstance(s, ir.Unpack):
            return f"{', '.join(s.targets)} = unpack({s.value})".ljust(44) + f"# line {s.line}"
        if isinstance(s, ir.Append):
            return f"{s.lst}.append({ast.unparse(s.value)})".ljust(44) + f"# line {s.line}"
        if isinstance(s, ir.SetItem):
            mark = "*" if self._active(s.target) else " "
            text = f"{s.target}{mark}".ljust(10) + f" [{ast.unparse(s.index)}] = {ast.unparse(s.value)}"
            return text.ljust(44) + f"# line {s.line}: {src.line(s.line)}"
        if isinstance(s, ir.BreakIf):
            return f"break if {s.flag}"
        if isinstance(s, ir.Expr):
            return f"effect: {ast.unparse(s.node)}"
        if isinstance(s, ir.Return):
            return f"return {ast.unparse(s.value)}"
        return repr(s)

    def __repr__(self) -> str:
        return str(self)

    def to_dot(self) -> str:
        """Graphviz DOT text: one node per value, an edge per use; branch and
        loop regions are clusters."""
        out = [f'digraph "{self.fn.name}" {{', "  rankdir=TB;", '  node [shape=box, fontname="monospace"];']
        for p in self.fn.params:
            out.append(f'  "{p}" [shape=ellipse, label="{p}"];')
        self._dot_block(self.fn.body, out, [0], "  ")
        if self.fn.result is not None and isinstance(self.fn.result, ast.Name):
            out.append('  "return" [shape=doublecircle];')
            out.append(f'  "{self.fn.result.id}" -> "return";')
        out.append("}")
        return "\n".join(out)

    def _dot_block(self, stmts, out, counter, pad):
        for s in stmts:
            if isinstance(s, ir.Assign):
                label = f"{s.target} = {s.op.name if s.op else '?'}"
                style = ", style=filled, fillcolor=lightyellow" if self._active(s.target) else ""
                out.append(f'{pad}"{s.target}" [label="{_esc(label)}"{style}];')
                for n in (s.op.operands if s.op else []):
                    out.append(f'{pad}"{n.id}" -> "{s.target}";')
            elif isinstance(s, ir.Unpack):
                for t in s.targets:
                    out.append(f'{pad}"{t}" [label="{t} = unpack"];')
                    out.append(f'{pad}"{s.value}" -> "{t}";')
            elif isinstance(s, ir.Append):
                for n in operand_names(s.value, {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}):
                    out.append(f'{pad}"{n}" -> "{s.lst}" [label="append"];')
            elif isinstance(s, ir.SetItem):
                for n in operand_names(s.value, {n.id for n in ast.walk(s.value) if isinstance(n, ast.Name)}):
                    out.append(f'{pad}"{n}" -> "{s.target}" [label="{_esc("[" + ast.unparse(s.index) + "] =")}"];')
            elif isinstance(s, (ir.If, ir.For, ir.While)):
                counter[0] += 1
                if isinstance(s, ir.If):
                    label = f"if {ast.unparse(s.test)}"
                elif isinstance(s, ir.For):
                    label = f"for {s.target} in range(...)"
                else:
                    label = f"while {ast.unparse(s.test)}"
                out.append(f"{pad}subgraph cluster_{counter[0]} {{")
                out.append(f'{pad}  label="{_esc(label)} (line {s.line})"; style=dashed;')
                self._dot_block(s.body, out, counter, pad + "  ")
                if isinstance(s, ir.If) and s.orelse:
                    self._dot_block(s.orelse, out, counter, pad + "  ")
                out.append(f"{pad}}}")


_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is",
        ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _inputs(v: ast.expr) -> list[str]:
    """The operands of one A-normal-form operation, constants included."""
    if isinstance(v, ast.BinOp):
        parts = [v.left, v.right]
    elif isinstance(v, ast.UnaryOp):
        parts = [v.operand]
    elif isinstance(v, ast.Compare):
        parts = [v.left] + list(v.comparators)
    elif isinstance(v, ast.Call):
        out = [ast.unparse(a) for a in v.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in v.keywords]
        if isinstance(v.func, ast.Attribute) and isinstance(v.func.value, ast.Name):
            out.insert(0, v.func.value.id) if not _is_module_ref(v.func) else None
        return out
    elif isinstance(v, ast.Subscript):
        return [ast.unparse(v.value), ast.unparse(v.slice)]
    elif isinstance(v, ast.Attribute):
        parts = [v.value]
    elif isinstance(v, (ast.Tuple, ast.List)):
        parts = list(v.elts)
    elif isinstance(v, ast.Dict):
        return [f"{ast.unparse(k)}: {ast.unparse(x)}" for k, x in zip(v.keys, v.values)]
    else:
        parts = [v]
    return [ast.unparse(p) for p in parts]


def _is_module_ref(f: ast.Attribute) -> bool:
    """``np.tanh`` (a module function) rather than ``x.sum`` (a method)."""
    return isinstance(f.value, ast.Name) and f.value.id[:1].islower() and f.value.id in (
        "np", "onp", "numpy", "math", "jnp", "scipy") or isinstance(f.value, ast.Attribute)


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def builtin_names() -> set[str]:
    return set(dir(builtins))
