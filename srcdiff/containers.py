"""Parameter containers: the types srcdiff looks into.

A container is a value made of other values (its *children*), each of which
is a float, an array or a container again.  A gradient with respect to a
container is a container of the same type holding the children's gradients.

Every container type is described the same way, as JAX describes pytrees::

    flatten(obj) -> (children, aux)      # aux: what is not differentiated
    unflatten(aux, children) -> obj

``tuple``, ``list`` and ``dict`` are registered here; every ``NamedTuple``
and every ``@dataclass`` is registered the first time srcdiff meets one; any
other class with :func:`register_container`.

Inside generated code the gradient of a container that is not a tuple, list
or dict is a :class:`ContainerGrad` (children, possibly the zero ``0.0``,
plus how to rebuild the container), which adds with ``+``; the gradient
returned to the user is rebuilt as the container's own type
(``runtime.mirror``).
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import SrcdiffError


@dataclasses.dataclass(frozen=True)
class Container:
    """How srcdiff takes one container type apart and puts it together."""

    cls: type
    flatten: Callable[[Any], tuple[Sequence[Any], Any]]
    unflatten: Callable[[Any, Sequence[Any]], Any]
    fields: tuple[str, ...] | None = None  # attribute names of the children, in order (None: unknown)
    builtin: bool = False  # tuple, list, dict: their gradients are plain containers
    kind: str = "registered"  # "builtin", "namedtuple", "dataclass" or "registered"

    def children(self, obj: Any) -> tuple[list[Any], Any]:
        kids, aux = self.flatten(obj)
        return list(kids), aux

    def build(self, aux: Any, children: Sequence[Any]) -> Any:
        return self.unflatten(aux, list(children))

    def index_of(self, obj: Any, name: str, kids: Sequence[Any]) -> int:
        """The position among the children of the child read as ``obj.<name>``."""
        if self.fields is not None:
            if name in self.fields:
                return self.fields.index(name)
            raise SrcdiffError(
                f"cannot differentiate through the attribute .{name} of a {self.cls.__name__}: it is not one "
                f"of its fields ({', '.join(self.fields)})",
                hint="read the fields themselves, or wrap the computation in srcdiff.stop_gradient")
        value = getattr(obj, name)
        hits = [i for i, k in enumerate(kids) if k is value]
        if len(hits) == 1:
            return hits[0]
        why = "none of the children its flatten returns is" if not hits else "several children its flatten returns are"
        raise SrcdiffError(
            f"cannot differentiate through the attribute .{name} of a {self.cls.__name__}: {why} that object",
            hint="pass fields=(...) to srcdiff.register_container, naming the attribute of each child")


# called after a class is registered (the rules table counts it as a new version)
ON_REGISTER: list[Callable[[], None]] = []
# how a leaf gradient is added and zeroed (srcdiff.runtime's add and zeros_like, set by the runtime)
_LEAF: dict[str, Callable[..., Any]] = {}


def set_leaf_ops(add: Callable[[Any, Any], Any], zeros_like: Callable[[Any], Any]) -> None:
    """The runtime's add and zeros_like, for the children of a container gradient."""
    _LEAF["add"] = add
    _LEAF["zeros_like"] = zeros_like


_BUILTIN: dict[type, Container] = {}
_REGISTRY: weakref.WeakKeyDictionary[type, Container] = weakref.WeakKeyDictionary()


def register_container(cls: type, flatten: Callable[[Any], tuple[Sequence[Any], Any]],
                       unflatten: Callable[[Any, Sequence[Any]], Any], *,
                       fields: Sequence[str] | None = None) -> None:
    """Make instances of ``cls`` parameter containers, as JAX registers pytrees.

    ``flatten(obj)`` returns ``(children, aux)``: the values srcdiff
    differentiates (floats, arrays or containers again) and anything else
    needed to rebuild the object (hashable or not, never differentiated).
    ``unflatten(aux, children)`` builds an object of the class again; srcdiff
    calls it with the children's gradients to build the gradient.

    ``fields`` names the attribute of each child, in order, so that reading
    ``obj.<name>`` in a differentiated function is known to read that child;
    without it an attribute is matched to the child that is the same object.

    ``NamedTuple`` classes and dataclasses need no registration (all their
    fields are children); registering one replaces that default.
    """
    if not isinstance(cls, type):
        raise SrcdiffError(f"register_container needs a class, got {cls!r}")
    if cls in (tuple, list, dict):
        raise SrcdiffError(f"{cls.__name__} is a built-in container already")
    if not callable(flatten) or not callable(unflatten):
        raise SrcdiffError("register_container(cls, flatten, unflatten): flatten and unflatten must be functions")
    _REGISTRY[cls] = Container(cls, flatten, unflatten, tuple(fields) if fields is not None else None)
    for hook in ON_REGISTER:  # the rules table's version: adjoints compiled before are checked again
        hook()


def _register_builtins() -> None:
    _BUILTIN[tuple] = Container(tuple, lambda t: (list(t), None), lambda aux, kids: tuple(kids),
                                builtin=True, kind="builtin")
    _BUILTIN[list] = Container(list, lambda t: (list(t), None), lambda aux, kids: list(kids),
                               builtin=True, kind="builtin")
    _BUILTIN[dict] = Container(dict, lambda d: (list(d.values()), list(d)),
                               lambda keys, kids: dict(zip(keys, kids)), builtin=True, kind="builtin")


_register_builtins()


def _namedtuple(cls: type) -> Container:
    return Container(cls, lambda t: (list(t), None), lambda aux, kids: cls(*kids), fields=tuple(cls._fields),
                     kind="namedtuple")


def _dataclass(cls: type) -> Container:
    names = tuple(f.name for f in dataclasses.fields(cls))

    def flatten(obj: Any) -> tuple[list, None]:
        return [getattr(obj, n) for n in names], None

    def unflatten(aux: Any, kids: Sequence[Any]) -> Any:
        # the gradient is a record of the fields' gradients: built without running
        # __init__ or __post_init__ (which may check or transform real values)
        obj = object.__new__(cls)
        for n, v in zip(names, kids):
            object.__setattr__(obj, n, v)
        return obj

    return Container(cls, flatten, unflatten, fields=names, kind="dataclass")


def lookup(x: Any) -> Container | None:
    """The container description of ``x``'s type, or None."""
    t = type(x)
    c = _BUILTIN.get(t)
    if c is not None:
        return c
    return custom(x)


def custom(x: Any) -> Container | None:
    """Like :func:`lookup`, for every container but the built-in tuple, list and dict."""
    t = type(x)
    if t is np.ndarray or t is float or t is int or t is tuple or t is list or t is dict:
        return None
    try:
        c = _REGISTRY.get(t)
    except TypeError:
        return None
    if c is not None:
        return c
    if isinstance(x, tuple) and hasattr(t, "_fields"):
        c = _namedtuple(t)
    elif dataclasses.is_dataclass(t) and not isinstance(x, type):
        c = _dataclass(t)
    else:
        return None
    _REGISTRY[t] = c
    return c


def _is_zero(v: Any) -> bool:
    return (type(v) is float or type(v) is int) and v == 0


class ContainerGrad:
    """The gradient of a container (not a tuple, list or dict) inside generated
    code: its children's gradients (``0.0`` for zero) and how to rebuild the
    container.  Adds with ``+``; ``runtime.mirror`` turns it into the
    container's own type."""

    __slots__ = ("container", "aux", "children", "primal")

    def __init__(self, container: Container, aux: Any, children: list[Any], primal: Sequence[Any] = ()) -> None:
        self.container = container
        self.aux = aux
        self.children = children
        self.primal = primal  # the container's own children: what a zero child is shaped like

    def __add__(self, other: Any) -> ContainerGrad:
        return add(self, other)

    __radd__ = __add__

    def __getitem__(self, i: int) -> Any:
        """Child ``i``, a zero written out in the shape of the container's child
        (generated code reads it as the gradient of that child)."""
        g = self.children[i]
        if _is_zero(g) and i < len(self.primal):
            return _LEAF["zeros_like"](self.primal[i])
        return g

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self):
        return (self[i] for i in range(len(self.children)))

    def __repr__(self) -> str:
        return f"ContainerGrad({self.container.cls.__name__}, {self.children!r})"


def zeros(x: Any) -> ContainerGrad:
    """A zero gradient for custom container ``x`` (children left as ``0.0``)."""
    c = custom(x)
    kids, aux = c.children(x)
    return ContainerGrad(c, aux, [0.0] * len(kids), kids)


def grad_children(d: Any, x: Any, c: Container, kids: Sequence[Any]) -> list[Any]:
    """The children of ``d``, a gradient of container ``x``: a ContainerGrad, an
    object of ``x``'s type, a tuple or list from unpacking ``x``, or zero."""
    if isinstance(d, ContainerGrad):
        return list(d.children)
    if d is None or _is_zero(d):
        return [0.0] * len(kids)
    if type(d) is type(x):
        return c.children(d)[0]
    if isinstance(d, (tuple, list)) and len(d) == len(kids):
        return list(d)
    raise SrcdiffError(f"internal error in srcdiff: a gradient of type {type(d).__name__} for a "
                       f"{type(x).__name__}", hint="this is a bug in srcdiff; please report it")


def add(a: Any, b: Any) -> ContainerGrad:
    """Sum of two gradients of one container, at least one a ContainerGrad."""
    if not isinstance(a, ContainerGrad):
        a, b = b, a
    if b is None or _is_zero(b):
        return a
    if isinstance(b, ContainerGrad):
        kids = b.children
    elif isinstance(b, (tuple, list)):
        kids = list(b)
    elif (cb := custom(b)) is not None:
        kids = cb.children(b)[0]
    else:
        raise TypeError(f"cannot add a gradient of type {type(b).__name__} to one of a "
                        f"{a.container.cls.__name__}")
    return ContainerGrad(a.container, a.aux, [_LEAF["add"](u, v) for u, v in zip(a.children, kids, strict=True)],
                         a.primal or getattr(b, "primal", ()))


def child(g: Any, i: int) -> Any:
    """Child ``i`` of gradient ``g`` (zero stays zero)."""
    if g is None or _is_zero(g):
        return 0.0
    if isinstance(g, (ContainerGrad, tuple, list)):
        return g[i]
    c = lookup(g)
    return c.children(g)[0][i]


# -- the derivative rules of reading and replacing fields ----------------------
def field_vjp(g: Any, ans: Any, obj: Any, name: str) -> Any:
    """Adjoint of ``obj.<name>`` for a container ``obj``: zeros, with ``g`` at that field."""
    c = custom(obj)
    if c is None:
        raise SrcdiffError(
            f"cannot differentiate through the attribute .{name} of a {type(obj).__name__}: it is not a "
            "parameter container",
            hint="make the class a dataclass or NamedTuple, register it with srcdiff.register_container, "
            "or pass the attribute's value as an argument")
    kids, aux = c.children(obj)
    out = [0.0] * len(kids)
    out[c.index_of(obj, name, kids)] = g
    return ContainerGrad(c, aux, out, kids)


def replace_field(obj: Any, name: str, value: Any) -> Any:
    """``dataclasses.replace(obj, name=value)`` / ``obj._replace(name=value)``
    for any container: what srcdiff lowers those calls to, one field at a time."""
    c = custom(obj)
    if c is not None and c.kind == "dataclass":
        return dataclasses.replace(obj, **{name: value})
    if c is not None and c.kind == "namedtuple":
        return obj._replace(**{name: value})
    if c is None:
        raise SrcdiffError(f"cannot replace the field {name!r} of a {type(obj).__name__}: it is not a parameter "
                           "container", hint="use a dataclass or NamedTuple, or srcdiff.register_container")
    kids, aux = c.children(obj)
    kids[c.index_of(obj, name, kids)] = value
    return c.build(aux, kids)


def replace_vjp_obj(g: Any, ans: Any, obj: Any, name: str, value: Any) -> Any:
    c = custom(obj)
    kids, aux = c.children(obj)
    out = grad_children(g, ans, c, kids)
    out[c.index_of(obj, name, kids)] = 0.0
    return ContainerGrad(c, aux, out, kids)


def replace_vjp_value(g: Any, ans: Any, obj: Any, name: str, value: Any) -> Any:
    c = custom(obj)
    kids, _ = c.children(obj)
    return child(g, c.index_of(obj, name, kids))


def unzip(seqs: Any) -> list:
    """``zip(*seqs)`` as a list: the columns of a sequence of equally long rows."""
    return list(zip(*seqs))


def unzip_vjp(g: Any, ans: Any, seqs: Any) -> Any:
    rows = []
    for i, row in enumerate(seqs):
        items = [child(col, i) for col in g] if not _is_zero(g) else [0.0] * len(ans)
        rows.append(type(row)(items) if type(row) in (tuple, list) else tuple(items))
    return type(seqs)(rows) if type(seqs) in (tuple, list) else rows


def concat(a: Any, b: Any, kind: str = "tuple") -> Any:
    """``(*a, *b)`` (``kind`` "tuple") or ``[*a, *b]`` (``kind`` "list")."""
    out = list(a) + list(b)
    return tuple(out) if kind == "tuple" else out


def _part(g: Any, seq: Any, start: int) -> Any:
    n = len(seq)
    items = [0.0] * n if _is_zero(g) else list(g)[start:start + n]
    if isinstance(seq, np.ndarray):
        return np.asarray(items)
    return type(seq)(items) if type(seq) in (tuple, list) else list(items)


def concat_vjp_a(g: Any, ans: Any, a: Any, b: Any, kind: str = "tuple") -> Any:
    return _part(g, a, 0)


def concat_vjp_b(g: Any, ans: Any, a: Any, b: Any, kind: str = "tuple") -> Any:
    return _part(g, b, len(a))
