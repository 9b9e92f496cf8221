"""How gradient functions and graphs show themselves in notebooks
(srcdiff/display.py): HTML, Markdown, SVG, and a real browser's rendering."""

import html
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import srcdiff
from srcdiff import display

ROOT = Path(__file__).resolve().parents[1]
SCALE = 3.0


def loss(W, x, y):
    h = np.tanh(W @ x)
    return 0.5 * np.sum((h - y) ** 2)


def looped(w, x, n):
    s = 0.0
    h = x
    for i in range(n):
        h = np.tanh(w * h + 1.0)
        s = s + np.sum(h) * SCALE
    if s > 0:
        s = s * 2
    return s + w[0]


def compares(x):
    return np.sum(np.where(x < 0.5, x, 2.0 * x))


def uses_try(x):
    try:
        return x
    except Exception:
        return x


class _Tags(HTMLParser):
    """Checks that every opened tag is closed, in order."""

    VOID = {"br", "hr", "img", "meta", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.spans, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        self.spans += tag == "span"

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(markup):
    p = _Tags()
    p.feed(markup)
    p.close()
    assert p.stack == []
    return p


def has_pygments():
    try:
        import pygments  # noqa: F401
    except ImportError:
        return False
    return True


# -- gradient functions ---------------------------------------------------------
def test_before_the_first_call_the_generic_adjoint_is_shown():
    g = srcdiff.grad(loss, wrt="W")
    code, note = display.code_and_note(g)
    assert note.startswith("Generic adjoint") and "first call" in note
    assert code == srcdiff.source(g) and "rt." in code
    assert display.specialization(g) is None


def test_after_a_call_the_specialized_code_is_shown():
    W, x = np.ones((2, 3)), np.ones(3)
    g = srcdiff.value_and_grad(loss, wrt=("W", "x"))
    g(W, x, 0.5)
    code, note = display.code_and_note(g)
    assert code == srcdiff.source(g)
    assert note == "Specialized for the most recent call's arguments: W=2x3, x=3, y=float."
    g(W.astype(np.float32), x, np.float64(0.5))
    assert display.specialization(g) == "W=2x3:float32, x=3, y=float64"


def test_html_structure():
    g = srcdiff.grad(compares)
    g(np.linspace(0, 1, 4))
    page = g._repr_html_()
    p = parse(page)
    text = html.unescape("".join(p.text))
    assert "srcdiff.grad" in text and "compares" in text and "Specialized for" in text and "x=4" in text
    assert "x < 0.5" in text  # the comparison, escaped in the markup
    assert "x < 0.5" not in page and "&lt;" in page
    assert srcdiff.source(g).strip() in text
    if has_pygments():
        assert p.spans > 10 and '<span style="color' in page and "srcdiff-highlight" in page
        assert 'font-weight: bold">def</span>' in page


def test_names_are_escaped():
    g = srcdiff.grad(lambda x: x * x)
    page = g._repr_html_()
    assert "&lt;lambda&gt;" in page and "<lambda>" not in page
    parse(page)
    assert "<locals>.<lambda>` with respect to `x`" in g._repr_markdown_()


def test_html_without_pygments(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygments", None)  # import pygments now raises ImportError
    g = srcdiff.grad(compares)
    page = g._repr_html_()
    p = parse(page)
    assert p.spans == 0 and "&lt;" in page and "srcdiff-code" in page
    assert srcdiff.source(g).strip() in html.unescape("".join(p.text))


def test_markdown_is_a_fenced_python_block():
    g = srcdiff.grad(loss, wrt="W")
    md = g._repr_markdown_()
    head, _, rest = md.partition("\n\n")
    assert head.startswith("**srcdiff.grad** of `loss` with respect to `W`. Generic adjoint")
    assert rest.startswith("```python\ndef loss_grad(") and rest.endswith("\n```\n")
    g(np.ones((2, 2)), np.ones(2), 0.0)
    assert "Specialized for the most recent call's arguments: W=2x2, x=2, y=float." in g._repr_markdown_()


def test_fence_outgrows_backticks_in_the_code():
    assert display._fence("a ``` b") == "````"
    assert display._fence("plain") == "```"


def test_a_function_srcdiff_cannot_compile_displays_the_error():
    g = srcdiff.grad(uses_try)
    page = g._repr_html_()
    assert "cannot compile" in page and "try/except" in page
    assert "cannot compile" in g._repr_markdown_()
    assert repr(g) == "<srcdiff grad of uses_try wrt x>"


def test_import_srcdiff_imports_neither_display_nor_pygments():
    code = ("import sys, srcdiff; assert 'pygments' not in sys.modules, 'pygments'; "
            "assert 'srcdiff.display' not in sys.modules, 'display'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_describe_spec():
    assert display.describe_spec(["a", "b", "c"], (((), "d"), ((2, 3), "f"), int)) == "a=(), b=2x3:float32, c=int"
    assert display.describe_spec(["a", "k"], (float, ("k", ((3,), "d")))) == "a=float, k=3"
    assert display.describe_spec(["a"], ((tuple, (float, ((2,), "d"))),)) == "a=(float, 2)"
    assert display.describe_spec(["a"], None).startswith("the argument types")


# -- graphs ------------------------------------------------------------------------
def test_graph_markdown_and_text_fallback(monkeypatch):
    gr = srcdiff.graph(looped)
    assert gr._repr_markdown_() == f"```text\n{gr}\n```\n"
    monkeypatch.setattr(display.shutil, "which", lambda name: None)
    page = gr._repr_html_()
    assert page.startswith('<pre class="srcdiff-graph"') and "<svg" not in page
    assert "for i in range(n):" in html.unescape(page)
    assert repr(gr) == str(gr)


def test_dot_that_hangs_or_fails_falls_back_to_text(monkeypatch):
    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout"))

    monkeypatch.setattr(display.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(display.subprocess, "run", hang)
    assert display.dot_to_svg("digraph {}") is None
    assert srcdiff.graph(looped)._repr_html_().startswith("<pre")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_graph_html_is_svg_with_graphviz():
    page = srcdiff.graph(looped)._repr_html_()
    assert page.startswith('<div class="srcdiff-graph"') and "<svg" in page and "<?xml" not in page
    assert "h (in, carried)" in page and "SCALE" in page


def test_graph_dot_shows_constants_loop_inputs_and_outputs():
    dot = display.graph_dot(srcdiff.graph(looped, wrt="w"))
    lines = dot.splitlines()
    assert lines[0] == 'digraph "looped" {' and lines[-1] == "}"
    labels = [line.split('label="', 1)[1].split('"', 1)[0] for line in lines if "[label=" in line]
    for constant in ("1.0", "SCALE", "2", "0"):
        assert constant in labels, constant
    assert "s = 0.0" in labels
    assert {"h (in, carried)", "s (in, carried)", "w (in)", "s (out)"} <= set(labels)
    assert "h (out)" not in labels  # nothing after the loop reads h
    # each definition of s is its own node, so no value feeds itself
    edges = [line.strip().rstrip(";").split(" [")[0].split(" -> ") for line in lines if " -> " in line]
    assert edges and all(a != b for a, b in edges)
    assert sum(label.startswith("s = ") for label in labels) == 3  # s = 0.0, s = + in the loop, s = * in the if
    assert any('label="next"' in line for line in lines)
    assert "fillcolor=lightyellow" in dot


def test_graph_dot_of_every_statement_kind():
    def many(x, n):
        out = np.zeros(3)
        acc = []
        k = 0
        while k < n:
            out[k % 3] = x * k
            acc.append(x)
            k = k + 1
            if k > 5:
                break
        a, b = (x, 2.0 * x)
        if a > 0:
            return a * b + np.sum(out)
        print("negative", a)
        return sum(acc) + b

    dot = display.graph_dot(srcdiff.graph(many))
    for label in ("out[t2] =", "acc.append", "a = t5[0]", "while k < n", "break if stop", "k (in, carried)",
                  "print('negative', a)", "result (out)"):
        assert f'label="{label}"' in dot, label
    if shutil.which("dot"):
        assert display.dot_to_svg(dot) is not None


# -- a real browser -------------------------------------------------------------------
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page_html: str, png: Path, size: str = "1000,800") -> None:
    """Render ``page_html`` in headless Chromium and save a PNG of it."""
    page = png.with_suffix(".html")
    page.write_text('<!doctype html><html><head><meta charset="utf-8"></head>'
                    f'<body style="margin: 6px; background: white">{page_html}</body></html>')
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={size}", page.as_uri()],
                       capture_output=True, timeout=120, check=True)


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed")
def test_browser_renders_highlighted_code(tmp_path):
    g = srcdiff.value_and_grad(loss, wrt=("W", "x"))
    g(np.ones((2, 3)), np.ones(3), 0.5)
    png = tmp_path / "display.png"
    screenshot(g._repr_html_(), png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    try:
        from PIL import Image
    except ImportError:
        return
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    dark = (img.sum(axis=2) < 300).sum()
    r, gr, b = img[..., 0], img[..., 1], img[..., 2]
    green = ((gr - r > 60) & (gr - b > 60)).sum()  # Pygments' keywords (def, return) are green
    assert dark > 500, "no text rendered"
    if has_pygments():
        assert green > 20, "no highlighted keywords"


if __name__ == "__main__":  # python tests/test_display.py: redraw docs/img/notebook_display.png
    sys.path.insert(0, str(ROOT / "examples"))
    import lecture_backprop as lb

    shown = srcdiff.value_and_grad(lb.loss, wrt=("W0", "W1"))
    shown(lb.W0, lb.W1, lb.x0, lb.y)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "notebook_display.png"
        screenshot(shown._repr_html_(), out, size="560,400")
        shutil.copy(out, ROOT / "docs" / "img" / "notebook_display.png")
