"""What generated code is specialized on: the types and shapes of a call's
arguments, as a hashable key (``None`` when they cannot be keyed cheaply).

Used by the API's caches and by the driver to tell whether a helper's
recorded calls share their shapes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import containers


def _spec(v: Any, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unkeyable
    t = type(v)
    if t is np.ndarray:
        return (v.shape, v.dtype.char)
    if t is float or t is int or t is bool or t is str or v is None:
        return t
    if t is tuple or t is list:
        return (t, tuple(_spec(x, budget) for x in v))
    if t is dict:
        return (dict, tuple((k, _spec(x, budget)) for k, x in v.items()))
    if isinstance(v, (np.generic,)):
        return (t, np.shape(v))
    c = containers.custom(v)  # a NamedTuple, dataclass or registered class: its type and children
    if c is not None:
        kids, aux = c.children(v)
        try:
            hash(aux)
        except TypeError:
            raise _Unkeyable from None
        return (t, aux, tuple(_spec(x, budget) for x in kids))
    raise _Unkeyable


class _Unkeyable(Exception):
    pass


_ndarray = np.ndarray


def spec_key(args: tuple, kwargs: dict) -> Any:
    """What the generated code is specialized on: the types and shapes of
    the arguments.  ``None`` (no shape specialization) for arguments we
    cannot key cheaply."""
    if not kwargs:
        key = []
        for a in args:
            t = type(a)
            if t is _ndarray:
                key.append((a.shape, a.dtype.char))
            elif t is float or t is int:
                key.append(t)
            else:
                break
        else:
            return tuple(key)
    budget = [256]
    try:
        key = tuple(_spec(a, budget) for a in args)
        if kwargs:
            key += tuple((k, _spec(v, budget)) for k, v in sorted(kwargs.items()))
        return key
    except _Unkeyable:
        return None
