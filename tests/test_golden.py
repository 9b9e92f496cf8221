"""Golden tests: the generated source of small functions is the spec.

A change to code generation shows up here as a diff.  After checking the new
output by eye, regenerate with ``SRCDIFF_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

import os
import pathlib

import pytest
from golden_cases import CASES

import srcdiff

HERE = pathlib.Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_golden(name):
    fn, wrt, make_args = CASES[name]
    g = srcdiff.grad(fn, wrt=wrt)
    g(*make_args())
    src = srcdiff.source(g)
    path = HERE / f"{name}.py"
    if os.environ.get("SRCDIFF_UPDATE_GOLDEN"):
        path.write_text(src)
    assert path.exists(), f"no golden file {path}; run with SRCDIFF_UPDATE_GOLDEN=1"
    assert src == path.read_text(), f"generated code for {name} changed; review the diff and update the golden file"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_gradients_are_right(name):
    from conftest import assert_grad_ok

    fn, wrt, make_args = CASES[name]
    assert_grad_ok(fn, *make_args(), wrt=wrt)
