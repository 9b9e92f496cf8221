"""The derivative-rule table and the public mechanism to extend it.

A rule says how to pull the adjoint ``g`` of a call's result back to each
differentiable argument.  It is written as a *template*: a Python expression
in terms of

* ``g``   - the adjoint of the call's result (same shape as the result),
* ``ans`` - the call's result,
* the parameter names of the rule's signature (bound to the call's arguments,
  or to their defaults when the call leaves them out),
* ``np``, ``math``, ``rt`` (``srcdiff.runtime``: ``rt.unbroadcast``,
  ``rt.zeros_like``, ``rt.full_like`` ...) and ``vjp``
  (``srcdiff.rules.numpy_vjps``, the derivative bodies of the NumPy rules).

The compiler inlines the template into the generated adjoint, renaming each
name to the variable that holds it, so the generated code reads like
hand-written backprop::

    defvjp(np.tanh, "x", x="g * (1.0 - ans * ans)")

generates ``dz = dh * (1.0 - h * h)`` for ``h = np.tanh(z)``.

A template may also be a function ``static -> str`` that picks an expression
from what is known when the code is compiled: ``static`` maps each parameter
given as a literal at the call site (or left at its default) to its value::

    defvjp(np.sum, "a, axis=None, dtype=None, out=None, keepdims=False",
           a=lambda s: "np.full(np.shape(a), g)" if s.get("axis", 0) is None
                       else "vjp.sum_grad(g, a, axis, keepdims)")

Or it may be an ordinary Python callable ``vjp(g, ans, *params)`` returning
the gradient for that argument; generated code then calls it by name.  This
is the convenient form for user rules with a long body.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import SrcdiffError
from .facts import NONE, Facts
from .facts import make as _make_facts

REQUIRED = object()  # marks a parameter without a default

Template = "str | Callable[[dict[str, Any]], str] | Callable[..., Any]"


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = REQUIRED
    kind: str = "pos"  # "pos", "kwonly", "varargs", "varkw"


@dataclass
class Rule:
    """One primitive: its signature and one gradient template per argument."""

    fn: Any  # the callable, or None for method and attribute rules
    name: str  # how the table and the messages spell it, e.g. "np.tanh"
    params: list[Param]
    grads: dict[str, Any]
    unbroadcast: frozenset[str] = frozenset()
    group: str = "other"
    note: str = ""
    # names of grads whose template may return an alias of ``g`` (a view or
    # ``g`` itself); the compiler never accumulates into those in place.
    aliases: frozenset[str] = field(default_factory=frozenset)
    facts: Facts = NONE  # what else the compiler may rely on (facts.py)
    # forward mode: one tangent template per differentiable parameter (slot for the
    # forward transform; filled by defjvp)
    jvps: dict[str, Any] = field(default_factory=dict)

    def signature(self) -> str:
        out = []
        star = False
        for p in self.params:
            if p.kind == "kwonly" and not star:
                out.append("*")
                star = True
            if p.kind == "varargs":
                star = True
                out.append("*" + p.name)
            elif p.kind == "varkw":
                out.append("**" + p.name)
            elif p.default is REQUIRED:
                out.append(p.name)
            else:
                out.append(f"{p.name}={p.default!r}")
        return ", ".join(out)

    def differentiable_params(self) -> list[str]:
        return [p.name for p in self.params if p.name in self.grads]

    def bind(self, nargs: int, kwnames: Iterable[str]) -> dict[str, Any]:
        """Map call-site positions/keywords to parameter names.

        Returns ``{param: ("arg", i) | ("kw", name) | ("varargs", [i...]) |
        ("default", value)}``.  Raises ``TypeError`` with a plain message when
        the call does not fit the signature.
        """
        kwnames = list(kwnames)
        bound: dict[str, Any] = {}
        positional = [p for p in self.params if p.kind == "pos"]
        varargs = next((p for p in self.params if p.kind == "varargs"), None)
        varkw = next((p for p in self.params if p.kind == "varkw"), None)
        i = 0
        for p in positional:
            if i < nargs:
                bound[p.name] = ("arg", i)
                i += 1
        if i < nargs:
            if varargs is None:
                raise TypeError(f"{self.name}() takes at most {len(positional)} positional arguments")
            bound[varargs.name] = ("varargs", list(range(i, nargs)))
        elif varargs is not None:
            bound[varargs.name] = ("varargs", [])
        extra = []
        for k in kwnames:
            p = next((q for q in self.params if q.name == k and q.kind in ("pos", "kwonly")), None)
            if p is None:
                if varkw is None:
                    raise TypeError(f"{self.name}() got an unexpected keyword argument {k!r}")
                extra.append(k)
                continue
            if p.name in bound:
                raise TypeError(f"{self.name}() got multiple values for argument {k!r}")
            bound[p.name] = ("kw", k)
        for p in self.params:
            if p.name in bound or p.kind in ("varargs", "varkw"):
                continue
            if p.default is REQUIRED:
                raise TypeError(f"{self.name}() missing required argument {p.name!r}")
            bound[p.name] = ("default", p.default)
        if varkw is not None:
            bound[varkw.name] = ("varkw", extra)
        return bound

    def template(self, param: str, static: dict[str, Any]) -> Any:
        """The template for ``param``: a str, or a callable (runtime vjp)."""
        t = self.grads[param]
        if isinstance(t, str):
            return t
        if getattr(t, "_srcdiff_static", False):
            return t(static)
        return t


def static_template(fn: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
    """Mark ``fn`` as a compile-time template chooser (``static -> str``)."""
    fn._srcdiff_static = True  # type: ignore[attr-defined]
    return fn


def _parse_signature(sig: str, name: str) -> list[Param]:
    try:
        tree = ast.parse(f"def _({sig}): pass")
    except SyntaxError as exc:
        raise SrcdiffError(f"bad signature {sig!r} for rule {name}: {exc.msg}") from None
    a = tree.body[0].args  # type: ignore[attr-defined]
    params: list[Param] = []
    pos = a.posonlyargs + a.args
    defaults = [REQUIRED] * (len(pos) - len(a.defaults)) + [ast.literal_eval(d) for d in a.defaults]
    for arg, d in zip(pos, defaults):
        params.append(Param(arg.arg, d, "pos"))
    if a.vararg:
        params.append(Param(a.vararg.arg, REQUIRED, "varargs"))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        params.append(Param(arg.arg, REQUIRED if d is None else ast.literal_eval(d), "kwonly"))
    if a.kwarg:
        params.append(Param(a.kwarg.arg, REQUIRED, "varkw"))
    return params


def _check_template(rule: Rule, param: str, t: Any) -> None:
    if param not in {p.name for p in rule.params}:
        raise SrcdiffError(
            f"rule for {rule.name}: {param!r} is not a parameter of its signature ({rule.signature()})"
        )
    if isinstance(t, str):
        try:
            ast.parse(t, mode="eval")
        except SyntaxError as exc:
            raise SrcdiffError(
                f"rule for {rule.name}: template for {param!r} is not an expression: {exc.msg}"
            ) from None
    elif not callable(t):
        raise SrcdiffError(f"rule for {rule.name}: the gradient for {param!r} must be a str or a callable")


def _display_name(fn: Any) -> str:
    mod = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if mod.startswith("numpy"):
        if mod.startswith("numpy.linalg"):
            return "np.linalg." + name
        if mod.startswith("numpy.fft"):
            return "np.fft." + name
        return "np." + name
    if isinstance(fn, type(abs)) and mod == "builtins":
        return name
    if mod == "math":
        return "math." + name
    if mod in ("builtins", None, ""):
        # numpy ufuncs have no __module__; they live in numpy
        import numpy as np

        if isinstance(fn, np.ufunc):
            return "np." + name
        return name
    return f"{mod}.{name}"


def _key(fn: Any) -> Any:
    """The table's key for ``fn``: its id.  A bound method of an object
    (``scipy.stats.norm.logpdf``) is a new object on every attribute access,
    so it is keyed by its function and its object instead."""
    if isinstance(fn, types.MethodType):
        return (id(fn.__func__), id(fn.__self__))
    return id(fn)


class Table:
    """The registry: rules for functions, array methods and attributes."""

    def __init__(self) -> None:
        self.functions: dict[Any, Rule] = {}
        self._keep: dict[Any, Any] = {}  # keep registered objects alive
        self.nondiff: dict[Any, str] = {}
        self.nondiff_facts: dict[Any, Facts] = {}
        # rules for optional libraries, loaded on first need: {library module: rules module}.
        # A lookup that misses imports the rules module of every library imported by then.
        self.lazy: dict[str, str] = {}
        self.methods: dict[str, Rule] = {}
        self.nondiff_methods: set[str] = set()
        self.attrs: dict[str, Rule] = {}
        self.nondiff_attrs: set[str] = set()
        # bumped by every registration, so compiled adjoints never use a stale table
        self.version = 0

    # -- lookup ---------------------------------------------------------
    def rule_for(self, fn: Any) -> Rule | None:
        rule = self.functions.get(_key(fn))
        if rule is None and self.lazy and self.load_lazy():
            rule = self.functions.get(_key(fn))
        return rule

    def is_nondiff(self, fn: Any) -> bool:
        if _key(fn) in self.nondiff:
            return True
        return bool(self.lazy) and self.load_lazy() and _key(fn) in self.nondiff

    def facts_of(self, fn: Any) -> Facts:
        """The facts of a function with a rule, or declared non-differentiable."""
        rule = self.rule_for(fn)
        if rule is not None:
            return rule.facts
        return self.nondiff_facts.get(_key(fn), NONE) if self.is_nondiff(fn) else NONE

    def numpy_facts(self, attr: str) -> Facts:
        """The facts of ``np.<attr>`` as generated code spells it (``np.outer``)."""
        import numpy

        fn = getattr(numpy, attr, None)
        return self.facts_of(fn) if fn is not None else NONE

    def member_facts(self, attr: str) -> Facts:
        """The facts of the array method or attribute ``.attr`` (``x.reshape``, ``x.T``)."""
        rule = self.methods.get(attr) or self.attrs.get(attr)
        return rule.facts if rule is not None else NONE

    def load_lazy(self) -> bool:
        """Import the rules of each optional library (``self.lazy``) that is
        imported by now; True when some were loaded.  The library itself is
        never imported here: code that calls it has imported it already."""
        ready = [lib for lib in self.lazy if lib in sys.modules]
        for lib in ready:
            rules_module = self.lazy.pop(lib, None)  # (None: loaded by a nested call)
            if rules_module is not None:
                importlib.import_module(rules_module)
        return bool(ready)

    # -- listing (docs) -------------------------------------------------
    def all_rules(self) -> list[Rule]:
        self.load_lazy()
        return list(self.functions.values()) + list(self.methods.values()) + list(self.attrs.values())


TABLE = Table()


def defvjp(
    fn: Any,
    signature: str,
    *,
    unbroadcast: Iterable[str] = (),
    group: str = "user",
    name: str | None = None,
    note: str = "",
    aliases: Iterable[str] = (),
    facts: Facts | dict[str, Any] | None = None,
    **grads: Any,
) -> Rule:
    """Register the reverse-mode derivative of ``fn``.

    ``signature`` is written like a Python parameter list (``"x, axis=None"``);
    each keyword in ``grads`` names a parameter and gives its gradient
    template (see the module docstring).  Parameters without a template are
    not differentiable (integers, axes, flags).  ``unbroadcast`` lists the
    parameters whose gradient the compiler reduces to the argument's shape
    (needed for elementwise functions of several arrays).

    Example: a user's function implemented in C, with no Python source::

        srcdiff.defvjp(fastlib.softplus, "x", x="g / (1.0 + np.exp(-x))")

    Registering a rule for a function that already has one replaces it.
    """
    rule = Rule(
        fn=fn,
        name=name or _display_name(fn),
        params=_parse_signature(signature, name or _display_name(fn)),
        grads=dict(grads),
        unbroadcast=frozenset(unbroadcast),
        group=group,
        note=note,
        aliases=frozenset(aliases),
        facts=_make_facts(group, facts),
    )
    for p, t in grads.items():
        _check_template(rule, p, t)
    for p in rule.unbroadcast:
        if p not in rule.grads:
            raise SrcdiffError(f"rule for {rule.name}: unbroadcast names {p!r}, which has no gradient")
    TABLE.load_lazy()  # built-in rules load first, so they never replace this one
    key = _key(fn)
    TABLE.functions[key] = rule
    TABLE._keep[key] = fn
    TABLE.nondiff.pop(key, None)
    TABLE.version += 1
    return rule


def nondifferentiable(*fns: Any, group: str = "user", facts: Facts | dict[str, Any] | None = None) -> None:
    """Declare functions whose results carry no gradient (``np.argmax``,
    ``np.floor``, ``np.zeros_like``, ``len`` ...).  Calling them on active
    values is allowed; their results are constants."""
    TABLE.load_lazy()
    for fn in fns:
        key = _key(fn)
        TABLE.nondiff[key] = group
        TABLE.nondiff_facts[key] = _make_facts(group, facts)
        TABLE._keep[key] = fn
        TABLE.functions.pop(key, None)
    TABLE.version += 1


def defvjp_method(
    method: str,
    signature: str,
    *,
    unbroadcast: Iterable[str] = (),
    group: str = "array method",
    note: str = "",
    aliases: Iterable[str] = (),
    facts: Facts | dict[str, Any] | None = None,
    **grads: Any,
) -> Rule:
    """Register the derivative of the array method ``x.method(...)``.

    The first parameter of ``signature`` is the array itself (call it
    ``self``).  Example: ``defvjp_method("reshape", "self, *shape",
    self="np.reshape(g, np.shape(self))")``.
    """
    name = "ndarray." + method
    rule = Rule(
        fn=None,
        name=name,
        params=_parse_signature(signature, name),
        grads=dict(grads),
        unbroadcast=frozenset(unbroadcast),
        group=group,
        note=note,
        aliases=frozenset(aliases),
        facts=_make_facts(group, facts),
    )
    for p, t in grads.items():
        _check_template(rule, p, t)
    TABLE.methods[method] = rule
    TABLE.nondiff_methods.discard(method)
    TABLE.version += 1
    return rule


def method_alias(method: str, fn: Any) -> Rule:
    """``x.method(*a, **k)`` differentiates like ``fn(x, *a, **k)``."""
    base = TABLE.rule_for(fn)
    if base is None:
        raise SrcdiffError(f"method_alias({method!r}): {_display_name(fn)} has no rule yet")
    rule = Rule(
        fn=None,
        name="ndarray." + method,
        params=base.params,
        grads=base.grads,
        unbroadcast=base.unbroadcast,
        group="array method",
        note=f"as {base.name}",
        aliases=base.aliases,
        facts=base.facts,
        jvps=base.jvps,
    )
    TABLE.methods[method] = rule
    TABLE.version += 1
    return rule


def nondifferentiable_methods(*methods: str) -> None:
    """Array methods whose results carry no gradient (``argmax``, ``astype(int)`` ...)."""
    for m in methods:
        TABLE.nondiff_methods.add(m)
        TABLE.methods.pop(m, None)
    TABLE.version += 1


def defvjp_attr(attr: str, *, group: str = "array attribute", aliases: Iterable[str] = (),
                facts: Facts | dict[str, Any] | None = None, self: str) -> Rule:
    """Register the derivative of reading the attribute ``x.attr`` (``x.T``)."""
    rule = Rule(
        fn=None,
        name="ndarray." + attr,
        params=[Param("self")],
        grads={"self": self},
        group=group,
        aliases=frozenset(aliases),
        facts=_make_facts(group, facts),
    )
    _check_template(rule, "self", self)
    TABLE.attrs[attr] = rule
    TABLE.version += 1
    return rule


def nondifferentiable_attrs(*attrs: str) -> None:
    """Attributes whose values carry no gradient (``shape``, ``ndim`` ...)."""
    TABLE.nondiff_attrs.update(attrs)
    TABLE.version += 1


def lazy_rules(library: str, rules_module: str) -> None:
    """Load the rules module ``rules_module`` (a dotted name) the first time
    the table is consulted after ``library`` (a module name such as
    ``"scipy.special"``) has been imported, so an optional library is never
    imported by srcdiff itself."""
    if library in sys.modules:
        importlib.import_module(rules_module)
    else:
        TABLE.lazy[library] = rules_module


def lookup_builtin(name: str) -> Any:
    return getattr(builtins, name)
