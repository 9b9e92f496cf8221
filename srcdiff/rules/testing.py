"""Evaluate a rule's templates directly, without compiling a function.

Used by the rule tests: ``vjp(np.tanh, x, g=g)`` returns the gradient of
``sum(g * np.tanh(x))`` with respect to every differentiable argument, as the
compiler would compute it, so each table entry can be checked against finite
differences on its own.
"""

from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from .. import runtime as rt
from . import numpy_vjps
from .registry import REQUIRED, TABLE, Rule


def _static(rule: Rule, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for p in rule.params:
        if p.name in values:
            v = values[p.name]
            if v is None or isinstance(v, (bool, int, float, str, tuple)) and not isinstance(v, np.ndarray):
                out[p.name] = v
    return out


def bind_values(rule: Rule, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = rule.bind(len(args), kwargs.keys())
    values: dict[str, Any] = {}
    for name, how in bound.items():
        kind, v = how
        if kind == "arg":
            values[name] = args[v]
        elif kind == "kw":
            values[name] = kwargs[v]
        elif kind == "varargs":
            values[name] = tuple(args[i] for i in v)
        elif kind == "varkw":
            values[name] = {k: kwargs[k] for k in v}
        else:
            values[name] = v
    for p in rule.params:
        if p.name not in values and p.default is not REQUIRED:
            values[p.name] = p.default
    return values


def apply_rule(rule: Rule, call, args: tuple, kwargs: dict, g: Any) -> tuple[Any, dict[str, Any]]:
    """Run ``call(*args, **kwargs)`` and the rule's templates with adjoint ``g``."""
    ans = call(*args, **kwargs)
    values = bind_values(rule, args, kwargs)
    static = _static(rule, values)
    env = dict(values, g=g, ans=ans, np=np, math=math, rt=rt, vjp=numpy_vjps)
    grads = {}
    for param in rule.grads:
        if param not in values:
            continue
        t = rule.template(param, static)
        if isinstance(t, str):
            ast.parse(t, mode="eval")
            val = eval(t, {"__builtins__": __builtins__}, env)  # noqa: S307 - our own templates
        else:
            pos = [values[p.name] for p in rule.params if p.kind == "pos"]
            val = t(g, ans, *pos)
        if param in rule.unbroadcast:
            val = rt.unbroadcast(val, values[param])
        grads[param] = val
    return ans, grads


def vjp(fn: Any, *args: Any, g: Any = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """``(fn(*args, **kwargs), {param: gradient})`` with output adjoint ``g``
    (ones by default), using the registered rule of ``fn``."""
    rule = TABLE.rule_for(fn)
    if rule is None:
        raise KeyError(f"no rule registered for {fn!r}")
    if g is None:
        g = np.ones_like(np.asarray(fn(*args, **kwargs), dtype=float))
    return apply_rule(rule, fn, args, kwargs, g)


def vjp_method(method: str, self: Any, *args: Any, g: Any = None, **kwargs: Any):
    """Like :func:`vjp` for the array method ``self.method(*args, **kwargs)``."""
    rule = TABLE.methods[method]

    def call(s, *a, **k):
        return getattr(s, method)(*a, **k)

    if g is None:
        g = np.ones_like(np.asarray(call(self, *args, **kwargs), dtype=float))
    return apply_rule(rule, call, (self,) + args, kwargs, g)


def vjp_attr(attr: str, self: Any, g: Any = None):
    rule = TABLE.attrs[attr]

    def call(s):
        return getattr(s, attr)

    if g is None:
        g = np.ones_like(np.asarray(call(self), dtype=float))
    return apply_rule(rule, call, (self,), {}, g)


def numeric_vjp(call, args: tuple, kwargs: dict, g: Any, argnum: int, eps: float = 1e-6) -> Any:
    """Central finite differences of ``sum(g * call(...))`` w.r.t. ``args[argnum]``."""
    x = np.array(args[argnum], dtype=float)
    out = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp = x.copy()
        xm = x.copy()
        xp[i] += eps
        xm[i] -= eps
        ap = list(args)
        am = list(args)
        ap[argnum] = xp if np.ndim(args[argnum]) else float(xp)
        am[argnum] = xm if np.ndim(args[argnum]) else float(xm)
        fp = np.sum(np.asarray(g) * np.asarray(call(*ap, **kwargs)))
        fm = np.sum(np.asarray(g) * np.asarray(call(*am, **kwargs)))
        out[i] = (fp - fm) / (2 * eps)
    return out if np.ndim(args[argnum]) else float(out)
