"""python -m srcdiff show|graph."""

import subprocess
import sys
from pathlib import Path

import pytest

from srcdiff.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "lecture_backprop.py")


def test_show_prints_generated_source(capsys):
    assert main(["show", f"{EXAMPLE}:loss", "--wrt", "W0,W1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def loss_grad(W0, W1, x0, y):")
    assert "dW1 =" in out and "dW0 =" in out


def test_show_defaults_to_all_parameters(capsys):
    assert main(["show", f"{EXAMPLE}:loss"]) == 0
    assert "dx0" in capsys.readouterr().out


def test_graph_text_and_dot(capsys):
    assert main(["graph", f"{EXAMPLE}:loss"]) == 0
    assert "np.tanh" in capsys.readouterr().out
    assert main(["graph", f"{EXAMPLE}:loss", "--dot"]) == 0
    assert capsys.readouterr().out.startswith('digraph "loss"')


@pytest.mark.parametrize("target,message", [
    ("missing.py:f", "no such file"),
    (f"{EXAMPLE}:nope", "has no function 'nope'"),
    (EXAMPLE, "expected FILE.py:FUNCTION"),
])
def test_bad_input_exits_nonzero_with_one_line(capsys, target, message):
    assert main(["show", target]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unsupported_code_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x):\n    try:\n        return x\n    except Exception:\n        return x\n")
    assert main(["show", f"{bad}:f"]) == 2
    err = capsys.readouterr().err
    assert "bad.py:2" in err and "try/except" in err and err.count("\n") == 1


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "srcdiff", "show", f"{EXAMPLE}:loss", "--wrt", "W1"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "dW1" in proc.stdout
