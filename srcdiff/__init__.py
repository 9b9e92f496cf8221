"""srcdiff: source-to-source reverse-mode automatic differentiation for Python.

``srcdiff.grad(f)`` reads the source of an ordinary Python/NumPy function and
generates a new Python function - the adjoint - that runs the forward pass and
then backpropagates.  ``srcdiff.source(g)`` shows the generated code.
"""

from .containers import register_container
from .errors import SrcdiffError
from .rules import (
    defvjp,
    defvjp_attr,
    defvjp_method,
    method_alias,
    nondifferentiable,
    nondifferentiable_attrs,
    nondifferentiable_methods,
    static_template,
)

__version__ = "0.1.0"

__all__ = [
    "SrcdiffError",
    "register_container",
    "defvjp",
    "defvjp_attr",
    "defvjp_method",
    "method_alias",
    "nondifferentiable",
    "nondifferentiable_attrs",
    "nondifferentiable_methods",
    "static_template",
    "__version__",
]

try:  # the compiler's public face; filled in as the pipeline lands
    from .api import check_grad, grad, graph, source, stack_stats, stop_gradient, value_and_grad  # noqa: F401

    __all__ += ["grad", "value_and_grad", "source", "graph", "check_grad", "stack_stats", "stop_gradient"]
except ImportError as _exc:  # pragma: no cover - only while bootstrapping
    if "srcdiff.api" not in str(_exc) and "api" not in str(_exc):
        raise
