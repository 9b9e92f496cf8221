"""Facts about primitives live on their rules, and the compiler's analyses ask
the rules (no NumPy function lists of their own)."""

import operator
import pathlib
import re

import numpy as np
import pytest

import srcdiff
from srcdiff.rules import TABLE
from srcdiff.rules.facts import Facts


def test_every_rule_has_consistent_facts():
    for rule in TABLE.all_rules():
        f = rule.facts
        assert isinstance(f, Facts), rule.name
        if f.elementwise:
            assert f.shaped, rule.name
        if f.reduction:
            assert f.reduction in ("sum", "mean", "max", "min", "prod"), rule.name


@pytest.mark.parametrize("fn, field, value", [
    (np.reshape, "result", "view"), (np.transpose, "result", "view"), (np.asarray, "result", "view"),
    (operator.getitem, "result", "view"), (np.exp, "elementwise", True), (np.exp, "result", "fresh"),
    (np.concatenate, "result", "fresh"), (np.sum, "reduction", "sum"), (np.amax, "reduction", "max"),
    (np.nansum, "skips_nan", True), (np.fmax, "skips_nan", True), (np.zeros, "sized_by_arguments", True),
    (len, "sized_by_arguments", True), (np.sum, "linear", True), (np.exp, "linear", False),
    (operator.matmul, "elementwise", False),
])
def test_facts_of_primitives(fn, field, value):
    assert getattr(TABLE.facts_of(fn), field) == value


def test_methods_and_attributes_have_facts():
    assert TABLE.member_facts("reshape").result == "view"
    assert TABLE.member_facts("T").result == "view"
    assert TABLE.member_facts("copy").result == "fresh"
    assert TABLE.member_facts("sum").reduction == "sum"  # a method alias shares its function's facts


def test_compiler_keeps_no_numpy_tables():
    """The analyses consult the rules: no module of the compiler lists NumPy functions."""
    root = pathlib.Path(srcdiff.__file__).parent / "compiler"
    table = re.compile(r"[{(\[]\s*np\.\w+\s*(,\s*np\.\w+|:\s*[\"'])")
    for path in root.glob("*.py"):
        for line in path.read_text().splitlines():
            assert not table.search(line), f"{path.name}: {line.strip()}"


def test_user_facts_reach_the_compiler():
    # a function without source, registered with facts=dict(result="view"): assigning into
    # the array after taking a window of it is refused, as for a NumPy view
    opaque = np.frompyfunc(lambda a: a, 1, 1)  # an object without source
    srcdiff.defvjp(opaque, "a", a="g", facts=dict(result="view"))

    def f(x):
        out = np.zeros(3)
        out[0] = x[0]
        w = opaque(out)
        out[1] = x[1]
        return np.sum(w * 1.0)

    try:
        with pytest.raises(srcdiff.SrcdiffError, match="another name for the memory of out"):
            srcdiff.grad(f)(np.array([1.0, 2.0, 3.0]))
    finally:
        TABLE.functions.pop(id(opaque), None)
        TABLE.version += 1
