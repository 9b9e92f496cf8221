"""The runtime contract generated code calls has rules of its own, so code
srcdiff generates can be differentiated again."""

import numpy as np

import srcdiff
from srcdiff import runtime as rt
from srcdiff.rules import TABLE


def test_every_contract_function_has_a_rule():
    for name in rt.__all__:
        fn = getattr(rt, name)
        if isinstance(fn, type):  # Stack: the list of saved values, not an operation
            continue
        assert TABLE.rule_for(fn) is not None or TABLE.is_nondiff(fn), name


def summed_down(x, y):
    return np.sum(rt.unbroadcast(x * y, x[0:1]) ** 2)


def added(x, y):
    return np.sum(rt.add(x * x, np.sin(y)))


def filled(x, v):
    return np.sum(rt.full_like(x, v) * x)


def mirrored(x, v):
    return np.sum(rt.mirror(v * 2.0, x) * x) + float(rt.seed(np.sum(x))) + rt.size(x)


def test_contract_rules_match_finite_differences():
    x = np.array([0.5, -1.0, 2.0])
    y = np.array([1.5, 0.3, -0.7])
    for f, args in [(summed_down, (x, y)), (added, (x, y)), (filled, (x, 0.7)), (mirrored, (x, 0.3))]:
        errors = srcdiff.check_grad(f, *args, wrt=(0, 1))
        assert max(errors.values()) < 1e-7, (f.__name__, errors)
