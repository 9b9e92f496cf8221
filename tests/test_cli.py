"""python -m srcdiff show|graph."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff.cli import example_value, load_function, main, parse_shapes

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "lecture_backprop.py")


def test_show_prints_generated_source(capsys):
    assert main(["show", f"{EXAMPLE}:loss", "--wrt", "W0,W1"]) == 0
    out = capsys.readouterr().out
    header, _, code = out.partition("\n")
    assert header.startswith("# generic adjoint") and "--shapes" in header
    assert code.startswith("def loss_grad(W0, W1, x0, y):")
    assert "dW1 =" in code and "dW0 =" in code and "rt.unbroadcast" in code


def test_show_defaults_to_all_parameters(capsys):
    assert main(["show", f"{EXAMPLE}:loss"]) == 0
    assert "dx0" in capsys.readouterr().out


def test_graph_text_and_dot(capsys):
    assert main(["graph", f"{EXAMPLE}:loss"]) == 0
    assert "np.tanh" in capsys.readouterr().out
    assert main(["graph", f"{EXAMPLE}:loss", "--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "loss"')
    assert 'label="0.5"' in dot and 'label="2"' in dot  # constants are nodes


def test_show_with_shapes_is_what_source_shows_after_a_call(capsys):
    assert main(["show", f"{EXAMPLE}:loss", "--shapes", "W0=2x2,W1=1x2,x0=2,y=float"]) == 0
    header, _, code = capsys.readouterr().out.partition("\n")
    assert header == "# specialized for W0=2x2, W1=1x2, x0=2, y=float"
    f = load_function(f"{EXAMPLE}:loss")
    g = srcdiff.grad(f, wrt=("W0", "W1", "x0", "y"))
    g(np.ones((2, 2)), np.ones((1, 2)), np.ones(2), 0.5)
    assert code == srcdiff.source(g)
    assert "rt.unbroadcast" not in code and "np.outer" in code


def test_shapes_with_dtypes_zero_d_arrays_and_wrt(capsys):
    assert main(["show", f"{EXAMPLE}:loss", "--wrt", "W1",
                 "--shapes", "W0=(2, 2):float32,W1=1x2:float32,x0=2:float32,y=()"]) == 0
    header, _, code = capsys.readouterr().out.partition("\n")
    assert header == "# specialized for W0=2x2:float32, W1=1x2:float32, x0=2:float32, y=()"
    assert "return dW1" in code and "dW0" not in code


LOOP = """\
import numpy as np
print("loading the module")
SCALE = 3.0


def f(w, x, n, scale=1.0):
    s = 0.0
    h = x
    for i in range(n):
        h = np.tanh(w * h + 1.0)
        s = s + np.sum(h) * SCALE
    return s * scale
"""


@pytest.fixture
def loop_file(tmp_path):
    path = tmp_path / "loop.py"
    path.write_text(LOOP)
    return str(path)


def test_shapes_default_wrt_is_the_float_arguments(loop_file, capsys):
    assert main(["show", f"{loop_file}:f", "--shapes", "w=3,x=3,n=int(4)"]) == 0
    captured = capsys.readouterr()
    header, _, code = captured.out.partition("\n")
    assert header == "# specialized for w=3, x=3, n=int"
    assert code.startswith("def f_grad(w, x, n, scale=1.0):") and "return dw, dx" in code
    assert "loading the module" in captured.err and "loading the module" not in captured.out


def test_graph_dot_keeps_the_modules_prints_out(loop_file, capsys):
    assert main(["graph", f"{loop_file}:f", "--dot"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith('digraph "f" {') and captured.out.rstrip().endswith("}")
    assert "loading the module" in captured.err
    for label in ("1.0", "SCALE", "h (in, carried)", "s (in, carried)", "w (in)", "s (out)"):
        assert f'label="{label}"' in captured.out, label


@pytest.mark.parametrize("shapes,message", [
    ("w=3,x=3", "--shapes gives no shape for n"),
    ("w=3,x=3,n=int,z=2", "--shapes names z, which is not a parameter of f(w, x, n, scale)"),
    ("w=3,x=3q,n=int", "cannot read '3q'"),
    ("w=3:foo,x=3,n=int", "unknown dtype 'foo'"),
    ("w=3,x=3,n", "expected NAME=SHAPE, got 'n'"),
    ("w=3:int64,x=3:int64,n=int", "no float argument"),
    ("w=3,x=3,n=int(x)", "cannot read the value in 'int(x)'"),
])
def test_bad_shapes_are_one_line_errors(loop_file, capsys, shapes, message):
    assert main(["show", f"{loop_file}:f", "--shapes", shapes]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("srcdiff: ") and message in err


def test_parse_shapes_and_example_values():
    assert parse_shapes("a=2x3, b=(2, 3),c=(),d=float , e=3:float32") == {
        "a": "2x3", "b": "(2, 3)", "c": "()", "d": "float", "e": "3:float32"}
    assert example_value("2x3").shape == (2, 3) and example_value("2x3").dtype == np.float64
    assert example_value("(4,)").shape == (4,)
    zero_d = example_value("()")
    assert isinstance(zero_d, np.ndarray) and zero_d.shape == () and zero_d.dtype == np.float64
    assert example_value("3:float32").dtype == np.float32
    assert example_value("3:int64").tolist() == [0, 0, 0]
    assert example_value("4:bool").tolist() == [True, False, True, False]
    assert type(example_value("float")) is float and 0.1 <= example_value("float") <= 0.9
    assert example_value("int") == 1 and example_value("int(7)") == 7 and example_value("float(0.25)") == 0.25
    assert type(example_value("float32")) is np.float32 and example_value("bool") is True


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
