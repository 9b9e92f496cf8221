import numpy as np
import pytest

import srcdiff


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests (long fuzzing)")
    parser.addoption("--fuzz-programs", type=int, default=None, help="programs for the program fuzzer")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def assert_grad_ok(f, *args, wrt=0, tol=1e-6, **kwargs):
    """srcdiff's gradient agrees with central finite differences (float64)."""
    errs = srcdiff.check_grad(f, *args, wrt=wrt, **kwargs)
    bad = {k: v for k, v in errs.items() if not v < tol}
    assert not bad, f"gradient mismatch (relative error): {bad}"
    return errs


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_terminal_summary(terminalreporter):
    try:
        from test_fuzz_programs import STATS
    except ImportError:  # pragma: no cover
        return
    if STATS["checked"]:
        terminalreporter.write_line(f"program fuzzer: {STATS['checked']} random programs checked against "
                                    "finite differences")
