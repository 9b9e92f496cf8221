"""The example programs in examples/: each runs in --quick mode and its
closing ``summary:`` line reports what the example promises.

Each example is imported and its ``main([...])`` called in this process
(plots go to a pytest tmp folder).  Examples needing scikit-learn or SciPy are
skipped without them; matplotlib is optional (quick mode then skips the plots).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# key=value, where value may be a bracketed list with spaces: "dL/dW1=[-0.113, -0.054]"
_PAIR = re.compile(r"(\S+?)=(\[[^\]]*\]|\S+)")


def parse_summary(text: str) -> dict[str, str]:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert lines, "the example printed nothing"
    assert lines[-1].startswith("summary:"), f"the last line is not the summary: {lines[-1]!r}"
    return dict(_PAIR.findall(lines[-1][len("summary:"):]))


def numbers(value: str) -> list[float]:
    return [float(v) for v in value.strip("[]").split(",")]


@pytest.fixture
def run(monkeypatch, capsys, tmp_path):
    """Import examples/<name>.py, call main(["--quick", "--out", tmp]) and
    return its summary as {key: str}."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def _run(name: str) -> dict[str, str]:
        module = importlib.import_module(name)
        module.main(["--quick", "--out", str(tmp_path)])
        out = capsys.readouterr().out
        printed[name] = out
        return parse_summary(out)

    printed: dict[str, str] = {}
    _run.printed = printed

    return _run


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pngs(tmp_path: Path) -> set[str]:
    return {p.name for p in tmp_path.glob("*.png")}


def test_every_example_is_tested():
    tested = {"lecture_backprop", "landscapes", "activations", "mlp_digits", "rnn_parameter_sharing",
              "optimize_inputs", "differentiable_physics", "scipy_minimize", "dask_logistic"}
    present = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    assert present == tested


def test_lecture_backprop(run):
    s = run("lecture_backprop")
    assert float(s["dL/dx3"]) == pytest.approx(-0.1869, abs=1e-4)
    assert numbers(s["dL/dW1"]) == pytest.approx([-0.113, -0.054], abs=1e-3)
    assert numbers(s["W1_new"]) == pytest.approx([1.02, -0.989], abs=5e-3)


def test_landscapes(run, tmp_path):
    s = {k: float(v) for k, v in run("landscapes").items()}
    assert s["convex_gd"] < 1e-6
    assert s["terraces_gd"] < 1e-6  # the jumps do not stop gradient descent
    assert s["plateau_gd"] > 0.9  # vanishing gradient: gradient descent barely moves
    assert s["plateau_momentum"] < 0.5 * s["plateau_gd"]
    assert s["zero_gradient_gd"] == 1.0  # zero gradient: stuck on the flat region
    assert s["zero_gradient_es"] < 0.5  # evolution strategies finds the hole
    assert s["exploding_clipped"] < 0.3
    assert s["local_minima_gd"] > 1.5  # stuck in a local minimum
    assert s["local_minima_es"] < 0.5
    if _has_matplotlib():
        assert pngs(tmp_path) == {"landscapes.png", "landscapes_losses.png"}


def test_activations(run, tmp_path):
    s = run("activations")
    assert int(s["functions"]) == 5
    assert float(s["max_abs_error"]) < 1e-12
    if _has_matplotlib():
        assert pngs(tmp_path) == {"activations.png"}


def test_mlp_digits(run, tmp_path):
    pytest.importorskip("sklearn")
    s = run("mlp_digits")
    assert float(s["final_loss"]) < 0.5 * float(s["initial_loss"])
    assert float(s["test_accuracy"]) >= 0.9
    assert float(s["grad_check"]) < 1e-6
    if _has_matplotlib():
        assert pngs(tmp_path) == {"mlp_digits_loss.png", "mlp_digits_predictions.png"}


def test_rnn_parameter_sharing(run, tmp_path):
    s = run("rnn_parameter_sharing")
    # the excerpt of the generated backward loop on the examples page is what the example prints
    page = (ROOT / "docs" / "examples.md").read_text()
    excerpt = page.split("This is its backward loop:", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    assert excerpt.strip() and excerpt in run.printed["rnn_parameter_sharing"], \
        "docs/examples.md shows a stale excerpt of the RNN adjoint; copy it from the example's output"
    assert int(s["dW_line"]) > 0  # the dW += ... line was found in the backward loop
    assert float(s["shared_vs_sum"]) < 1e-12  # shared gradient == sum of per-step gradients
    assert float(s["grad_check"]) < 1e-6
    assert float(s["test_loss"]) < 0.2 * float(s["baseline_loss"])
    if _has_matplotlib():
        assert pngs(tmp_path) == {"rnn_parameter_sharing.png"}


def test_optimize_inputs(run, tmp_path):
    pytest.importorskip("sklearn")
    s = run("optimize_inputs")
    assert int(s["classified_as_target"]) >= 9
    assert float(s["min_gain"]) > 0  # the objective increased for every digit
    if _has_matplotlib():
        assert pngs(tmp_path) == {"optimize_inputs.png"}


def test_differentiable_physics(run, tmp_path):
    s = {k: float(v) for k, v in run("differentiable_physics").items()}
    assert s["final_loss"] < 0.05 * s["initial_loss"]
    assert s["grad_check"] < 1e-6
    if _has_matplotlib():
        assert pngs(tmp_path) == {"differentiable_physics.png"}


def test_scipy_minimize(run, tmp_path):
    pytest.importorskip("scipy")
    s = {k: float(v) for k, v in run("scipy_minimize").items()}
    assert s["rosen_der_error"] < 1e-10  # srcdiff's gradient == SciPy's hand-written rosen_der
    assert s["rosen2_err"] < 1e-4
    assert s["rosen10_err"] < 1e-4
    assert s["logreg_grad_norm"] < 1e-4
    assert s["logreg_accuracy"] > 0.8
    if _has_matplotlib():
        assert pngs(tmp_path) == {"scipy_minimize.png"}


def test_dask_logistic(run):
    pytest.importorskip("distributed")
    pytest.importorskip("dask.array")
    pytest.importorskip("scipy")
    s = run("dask_logistic")
    # the same model as dask-glm (or the hand-written gradient without it), on the same cluster
    assert abs(float(s["acc_srcdiff"]) - float(s["acc_reference"])) < 1e-3
    assert float(s["coef_diff"]) < 1e-3
    assert float(s["acc_srcdiff"]) >= float(s["acc_true"]) - 5e-3
