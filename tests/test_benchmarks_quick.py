"""The benchmark suite's quick correctness check (``python -m benchmarks.run --quick``).

Small sizes, no timing.  The hand-written adjoints are checked against finite
differences, and every installed system's gradient against them.  Peers that
are not installed are skipped; srcdiff is skipped only while ``srcdiff.grad``
does not exist (ImportError/AttributeError) - any other srcdiff error fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import check, harness  # noqa: E402
from benchmarks.suite import QUICK, WORKLOADS  # noqa: E402
from benchmarks.systems import SYSTEMS  # noqa: E402

PEERS = [k for k in SYSTEMS if k != "srcdiff"]
PEER_CASES = [(w, s) for w in WORKLOADS for s in PEERS if SYSTEMS[s].applies(WORKLOADS[w])]


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_reference_adjoint_matches_finite_differences(name: str) -> None:
    assert harness.reference_error(WORKLOADS[name], QUICK) is None


def test_lecture_numbers_match_the_lecture() -> None:
    w = WORKLOADS["lecture"]
    args = w.inputs(QUICK)
    dW0, dW1 = w.adjoint(*args)
    # the lecture's worked example: dL/dx1 = (-0.1186, 0.171), dL/dW1 = (-0.113, -0.054)
    np.testing.assert_allclose(dW1, [[-0.113, -0.054]], atol=1e-3)
    np.testing.assert_allclose(dW0, [[-0.1186, -0.01186], [0.171, 0.0171]], atol=1e-3)
    assert abs(float(w.fn(*args)) - 0.5 * (0.313 - 0.5) ** 2) < 1e-3


def test_checks_catch_a_wrong_gradient() -> None:
    w = WORKLOADS["mlp_small"]
    args = w.inputs(QUICK)
    grads = list(w.adjoint(*args))
    grads[1] = grads[1] * 1.001
    assert check.compare(grads, w.adjoint(*args), w.wrt) is not None
    assert check.check_against_fd(w.fn, grads, args, w.wrt_indices, w.wrt) is not None
    assert check.compare(grads[:2], w.adjoint(*args), w.wrt) is not None


@pytest.mark.parametrize(("name", "system"), PEER_CASES)
def test_peer_gradient_matches_reference(name: str, system: str) -> None:
    reason = SYSTEMS[system].unavailable()
    if reason:
        pytest.skip(reason)
    assert harness.gradient_error(WORKLOADS[name], system, QUICK) is None


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_srcdiff_gradient_matches_reference(name: str) -> None:
    try:
        import srcdiff

        srcdiff.grad  # noqa: B018
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"srcdiff.grad does not exist yet ({type(exc).__name__}: {exc})")
    assert harness.gradient_error(WORKLOADS[name], "srcdiff", QUICK) is None


def test_quick_run_reports_every_system() -> None:
    results = harness.run(["lecture"], size=QUICK, log=lambda _: None)
    assert {r.system for r in results} == {k for k in SYSTEMS if SYSTEMS[k].applies(WORKLOADS["lecture"])}
    assert not [r for r in results if r.status == harness.FAILED]
    table = harness.markdown_tables(results, timed=False)
    assert "| lecture |" in table
