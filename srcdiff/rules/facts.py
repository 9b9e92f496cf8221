"""What the compiler may rely on about a primitive besides its derivative.

Every rule carries its ``Facts``; the compiler's analyses ask the rule
(``TABLE.facts_of(fn)``) instead of keeping lists of NumPy functions of their
own.  Defaults come from the rule's group (an elementwise ufunc always
returns a fresh array of the broadcast shape); a rule states the rest where
it is registered (``defvjp(np.reshape, ..., facts=Facts(result="view", ...))``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Facts:
    """Facts about one primitive.

    * ``elementwise``: applies entry by entry; the result has the broadcast
      shape of the array arguments.
    * ``linear``: linear in its differentiable arguments (its tangent rule is
      itself applied to the tangents).
    * ``reduction``: the ``ndarray`` method computing the same reduction
      (``"sum"`` for ``np.sum``), or ``""``.
    * ``result``: ``"fresh"`` when the result is always a new array nobody
      else sees, ``"view"`` when it may share memory with an argument, ``""``
      when nothing is promised.
    * ``float_keeping``: float arguments give a float result.
    * ``skips_nan``: NaN entries of its arguments do not reach the result
      (``np.nansum``): their adjoint is exactly zero.
    * ``sized_by_arguments``: a constructor (or ``len``) whose result's shape
      comes from its arguments' values, which the compiler may treat as
      stable when those arguments are.
    * ``shaped``: the result's shape follows from the arguments' shapes and
      static (literal) arguments alone, never from their values.
    * ``container``: the result is a container of values (a tuple, list, dict
      or registered class), whose adjoints are added elementwise.
    """

    elementwise: bool = False
    linear: bool = False
    reduction: str = ""
    result: str = ""
    float_keeping: bool = False
    skips_nan: bool = False
    sized_by_arguments: bool = False
    shaped: bool = False
    container: bool = False

    def __post_init__(self) -> None:
        if self.result not in ("", "fresh", "view"):
            raise ValueError(f"Facts.result must be '', 'fresh' or 'view', not {self.result!r}")


NONE = Facts()
_ELEMENTWISE = Facts(elementwise=True, result="fresh", float_keeping=True, shaped=True)

# what a rule's group says unless the rule says otherwise
BY_GROUP: dict[str, Facts] = {
    "elementwise": _ELEMENTWISE,
    "operator": _ELEMENTWISE,
    "math": Facts(float_keeping=True, shaped=True),
    "reduction": Facts(result="fresh", float_keeping=True, shaped=True),
    "linear algebra": Facts(result="fresh", float_keeping=True, shaped=True),
}


def make(group: str, facts: Facts | dict[str, Any] | None) -> Facts:
    """The facts of a rule of ``group``, with ``facts`` (a Facts, or a dict of
    fields to change) overriding the group's defaults."""
    base = BY_GROUP.get(group, NONE)
    if facts is None:
        return base
    if isinstance(facts, Facts):
        return facts
    return replace(base, **facts)
