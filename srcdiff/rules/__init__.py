# isort: skip_file
"""The table of derivative rules (one short entry per primitive).

Importing this package registers the built-in rules.  The rules for SciPy
(``scipy_special``, ``scipy_stats``) load the first time the table is
consulted after SciPy has been imported; srcdiff never imports SciPy itself.
Users add their own with the same functions: :func:`defvjp`, :func:`nondifferentiable`,
:func:`defvjp_method`, :func:`method_alias`, :func:`defvjp_attr`.
"""

from .registry import (  # noqa: F401
    TABLE,
    Rule,
    defvjp,
    defvjp_attr,
    defvjp_method,
    lazy_rules,
    method_alias,
    nondifferentiable,
    nondifferentiable_attrs,
    nondifferentiable_methods,
    static_template,
)
from . import builtin_rules  # noqa: F401,E402  (registers python/math rules)
from . import numpy_elementwise  # noqa: F401,E402
from . import numpy_arrays  # noqa: F401,E402
from . import container_rules  # noqa: F401,E402
from . import runtime_rules  # noqa: F401,E402

lazy_rules("scipy.special", "srcdiff.rules.scipy_special")
lazy_rules("scipy.stats", "srcdiff.rules.scipy_stats")
