"""Rules of the container helpers the normalizer writes (``dataclasses.replace``
and ``_replace``, ``zip(*rows)``, starred items in displays), and the rules
table's side of ``srcdiff.register_container``."""

from __future__ import annotations

from .. import containers
from ..containers import (
    concat,
    concat_vjp_a,
    concat_vjp_b,
    replace_field,
    replace_vjp_obj,
    replace_vjp_value,
    unzip,
    unzip_vjp,
)
from .registry import TABLE, defvjp

# results hold the objects of their arguments (no copies): views, for the mutation checks
defvjp(replace_field, "obj, name, value", obj=replace_vjp_obj, value=replace_vjp_value, group="containers",
       name="dataclasses.replace", note="one field at a time; also NamedTuple._replace",
       facts=dict(result="view", container=True))
defvjp(unzip, "seqs", seqs=unzip_vjp, group="containers", name="zip(*seqs)",
       facts=dict(result="view", container=True))
defvjp(concat, "a, b, kind='tuple'", a=concat_vjp_a, b=concat_vjp_b, group="containers",
       name="(*a, *b)", note="a starred item in a tuple or list display", facts=dict(result="view", container=True))


def _bump() -> None:
    TABLE.version += 1


containers.ON_REGISTER.append(_bump)
