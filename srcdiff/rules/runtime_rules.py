"""Rules for the runtime contract (``srcdiff.runtime``, ``rt.`` in generated
code), so that code srcdiff generates can be differentiated again.

``unbroadcast`` and ``add`` are linear, ``full_like`` broadcasts a value and
``mirror`` gives a gradient its argument's shape (and may broadcast it);
``seed``, ``zeros_like`` and ``size`` are constants.  The derivative bodies
in ``numpy_vjps`` (``vjp.`` in generated code) get rules with forward mode,
where a gradient's own gradient is needed."""

from __future__ import annotations

from .. import runtime
from .registry import defvjp, nondifferentiable

R = "runtime"
LINEAR = dict(linear=True)

# (parameter names other than g: a rule's template calls the incoming adjoint g)
defvjp(runtime.unbroadcast, "value, like", value="np.broadcast_to(g, np.shape(value))", aliases=("value",),
       group=R, name="rt.unbroadcast", facts=LINEAR,
       note="sums value down to like's shape; the adjoint broadcasts back")
defvjp(runtime.add, "a, b", a="g", b="g", aliases=("a", "b"), group=R, name="rt.add", facts=LINEAR,
       note="containers elementwise")
defvjp(runtime.full_like, "like, value", value="rt.unbroadcast(g, value)", aliases=("value",), group=R,
       name="rt.full_like", facts=dict(LINEAR, result="fresh"))
defvjp(runtime.mirror, "value, like", value="rt.unbroadcast(g, value)", aliases=("value",), group=R,
       name="rt.mirror", facts=LINEAR, note="shapes and casts a gradient like its argument")
nondifferentiable(runtime.seed, runtime.zeros_like, runtime.size, group=R)
