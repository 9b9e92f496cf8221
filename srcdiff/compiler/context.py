"""What a transform needs from the driver: the names generated code uses
for NumPy, ``math`` and the runtime, the recorded shapes, the helper calling
convention, and the options of the call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class HelperSpec:
    """A user helper specialized for the parameters that carry gradients."""

    fn: Any
    fwd: str
    bwd: str
    varied: list[str]  # parameters whose gradients bwd returns, in order
    params: list[str] = field(default_factory=list)
    returns_container: bool = False
    active: bool = True
    base: str = "helper"  # what its generated names start with (an identifier)


@dataclass
class Context:
    """What the reverse pass needs from the outside world."""

    np: str
    math: str
    rt: str
    vjp: str  # the name of srcdiff.rules.numpy_vjps (derivative bodies of the NumPy rules)
    inject: dict[str, Any]  # extra names the generated code refers to -> objects
    helper_spec: Any  # callable(fn, varied_params) -> HelperSpec
    kinds: dict[str, str] = field(default_factory=dict)  # wrt param -> kind
    debug_stack: bool = False  # instrumented stacks (srcdiff.stack_stats)
    keep_value: bool = True  # main function: also return f's value (value_and_grad)
    single: bool = False  # main function: one gradient rather than a tuple
    shapes: dict[str, tuple] = field(default_factory=dict)  # name -> (kind, shape, dtype kind), see shapes.py
    helper_calls: dict[int, list] = field(default_factory=dict)  # id(call stmt) -> recorded (args, kwargs)
    cut: dict[str, str] = field(default_factory=dict)  # values passing no gradient (invariance.py)
    dtypes: dict[str, str] = field(default_factory=dict)  # float array parameter -> its dtype's name
    float_arrays: set[str] = field(default_factory=set)  # always float ndarrays, shapes stable or not
    copy_views: set[int] = field(default_factory=set)  # ids of statements whose value the forward copies
    mutable: set[str] = field(default_factory=set)  # seen holding an array or a list (x op= e is in place)


