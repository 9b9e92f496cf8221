"""How gradient functions and graphs show themselves in notebooks and the
terminal.

A gradient function (what :func:`srcdiff.grad` and
:func:`srcdiff.value_and_grad` return) shows its generated code in Jupyter:
syntax-highlighted HTML when Pygments is installed, an escaped ``<pre>``
otherwise, and a fenced ``python`` block as Markdown.  A note above the code
says which version is shown: the one specialized for the argument shapes of
the most recent call, or, before the first call, the generic adjoint.

A graph (what :func:`srcdiff.graph` returns) shows as an SVG drawing when
Graphviz's ``dot`` program is installed, and as text otherwise.

Nothing here is imported by ``import srcdiff``: the display hooks import
this module when a notebook asks, and this module imports Pygments only
when it highlights.
"""

from __future__ import annotations

import ast
import html
import re
import shutil
import subprocess
from typing import Any

from .errors import SrcdiffError

__all__ = [
    "code_and_note",
    "describe_spec",
    "dot_to_svg",
    "gradient_html",
    "gradient_markdown",
    "graph_dot",
    "graph_html",
    "graph_markdown",
    "highlight_html",
    "specialization",
]

DOT_TIMEOUT = 10.0  # seconds for one run of Graphviz's dot


# -- which code a gradient function has ---------------------------------------------
def _dims(shape: tuple) -> str:
    return "()" if not shape else "x".join(str(d) for d in shape)


def _describe_one(spec: Any) -> str:
    """One argument's part of a specialization key, in ``--shapes`` syntax."""
    import numpy as np

    if spec is float:
        return "float"
    if spec is int:
        return "int"
    if spec is bool:
        return "bool"
    if spec is None or spec is type(None):
        return "None"
    if isinstance(spec, type):
        return spec.__name__
    if isinstance(spec, tuple) and len(spec) == 2:
        head, rest = spec
        if isinstance(head, tuple) and isinstance(rest, str):  # an array: (shape, dtype char)
            dtype = np.dtype(rest)
            return _dims(head) + ("" if dtype == np.float64 else f":{dtype.name}")
        if head is tuple or head is list:
            inner = ", ".join(_describe_one(x) for x in rest)
            return f"({inner})" if head is tuple else f"[{inner}]"
        if head is dict:
            return "{" + ", ".join(f"{k!r}: {_describe_one(x)}" for k, x in rest) + "}"
        if isinstance(head, type) and issubclass(head, np.generic):  # a NumPy scalar: (type, shape)
            return head.__name__
    return repr(spec)


def describe_spec(params: list[str], key: Any) -> str:
    """The argument types and shapes of a specialization key, as
    ``W0=2x2, x0=2, y=float`` (the syntax of ``python -m srcdiff show
    --shapes``); ``2x2:float32`` for a dtype other than float64, ``()`` for
    a 0-d array."""
    if key is None:
        return "the argument types (not keyed by shape)"
    parts = []
    for position, item in enumerate(key):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):  # (keyword, spec)
            parts.append(f"{item[0]}={_describe_one(item[1])}")
        elif position < len(params):
            parts.append(f"{params[position]}={_describe_one(item)}")
        else:
            parts.append(_describe_one(item))
    return ", ".join(parts) if parts else "no arguments"


def specialization(g: Any) -> str | None:
    """What the code ``srcdiff.source(g)`` shows is specialized for, in the
    words of :func:`describe_spec`; ``None`` when it is the generic adjoint
    (``g`` has not been called, or was only asked for its source)."""
    last = g.last
    if last is None:
        return None
    for key, c in getattr(g, "_compiled", {}).items():
        if c is last:
            return describe_spec(list(g.params), key)
    return None


def code_and_note(g: Any) -> tuple[str | None, str]:
    """``(source, note)`` for gradient function ``g``: the code
    ``srcdiff.source(g)`` shows, and one sentence saying which version it is.
    The source is ``None`` when srcdiff cannot compile the function (the
    note then gives the error)."""
    spec = specialization(g)  # before source(), which compiles the generic adjoint if there is no code yet
    try:
        code = g.source
    except SrcdiffError as exc:
        return None, f"srcdiff cannot compile this function: {exc}"
    if spec is None:
        note = ("Generic adjoint: not called yet, so compiled without knowing the argument types. "
                "The first call compiles a version specialized for its argument shapes.")
    else:
        note = f"Specialized for the most recent call's arguments: {spec}."
    return code, note


def _title(g: Any) -> tuple[str, str, str]:
    kind = "value_and_grad" if g.with_value else "grad"
    name = getattr(g.fn, "__qualname__", None) or getattr(g.fn, "__name__", None) or type(g.fn).__name__
    return kind, name, ", ".join(g.wrt)


# -- HTML and Markdown ---------------------------------------------------------------
_BOX = ("display: inline-block; font-family: var(--jp-content-font-family, sans-serif); border: 1px solid #d0d7de; "
        "border-radius: 4px; background: #f8f8f8; color: #1f2328; margin: 2px 0; max-width: 100%;")
_HEAD = "padding: 6px 10px; border-bottom: 1px solid #d0d7de; font-size: 13px;"
_PRE = ("margin: 0; padding: 8px 10px; overflow-x: auto; background: #f8f8f8; color: #1f2328; "
        "font-family: var(--jp-code-font-family, monospace); font-size: 13px; line-height: 1.35;")


def highlight_html(code: str) -> str:
    """``code`` as a ``<pre>`` of HTML: highlighted with inline styles when
    Pygments is installed (they survive notebook front ends that drop
    ``<style>`` sheets), plainly escaped otherwise."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return f'<pre class="srcdiff-code" style="{_PRE}">{html.escape(code)}</pre>'
    body = highlight(code, PythonLexer(), HtmlFormatter(nowrap=True, noclasses=True, style="default"))
    return f'<pre class="srcdiff-code srcdiff-highlight" style="{_PRE}">{body}</pre>'


def gradient_html(g: Any) -> str:
    """The notebook display of gradient function ``g``: a header naming the
    function and ``wrt``, the note of :func:`code_and_note`, and the code."""
    kind, name, wrt = _title(g)
    code, note = code_and_note(g)
    head = (f'<div class="srcdiff-head" style="{_HEAD}"><b>srcdiff.{kind}</b> of '
            f"<code>{html.escape(name)}</code> with respect to <code>{html.escape(wrt)}</code>"
            f'<div class="srcdiff-note" style="color: #57606a; margin-top: 3px;">{html.escape(note)}</div></div>')
    body = highlight_html(code) if code is not None else ""
    return f'<div class="srcdiff-grad" style="{_BOX}">{head}{body}</div>'


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def gradient_markdown(g: Any) -> str:
    """Markdown for gradient function ``g``: a line naming it, the note, and
    the code in a fenced ``python`` block."""
    kind, name, wrt = _title(g)
    code, note = code_and_note(g)
    head = f"**srcdiff.{kind}** of `{name}` with respect to `{wrt}`. {note}\n"
    if code is None:
        return head
    fence = _fence(code)
    return f"{head}\n{fence}python\n{code.rstrip()}\n{fence}\n"


# -- graphs ----------------------------------------------------------------------
def dot_to_svg(dot: str, timeout: float = DOT_TIMEOUT) -> str | None:
    """Graphviz's SVG drawing of DOT text, without the XML prolog so it can
    sit inside HTML; ``None`` when ``dot`` is not installed, fails or takes
    longer than ``timeout`` seconds."""
    exe = shutil.which("dot")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    start = proc.stdout.find("<svg")
    if proc.returncode != 0 or start < 0:
        return None
    return proc.stdout[start:]


def graph_html(graph: Any) -> str:
    """The notebook display of a graph: its drawing as SVG (from
    :func:`graph_dot`) when Graphviz is installed, its text otherwise."""
    svg = dot_to_svg(graph_dot(graph))
    if svg is not None:
        return f'<div class="srcdiff-graph" style="max-width: 100%; overflow-x: auto;">{svg}</div>'
    return f'<pre class="srcdiff-graph" style="{_PRE}">{html.escape(str(graph))}</pre>'


def graph_markdown(graph: Any) -> str:
    """A graph's text in a fenced block."""
    text = str(graph)
    fence = _fence(text)
    return f"{fence}text\n{text}\n{fence}\n"


def _esc(text: str, limit: int = 40) -> str:
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Dot:
    """Writes the DOT of one graph.  Every definition of a name is its own
    node (a name assigned twice is two nodes); constants are small grey
    nodes; a loop has a node for each value flowing in (``in``) and out
    (``out``) of it, and a dashed edge carries a value to the next
    iteration; a branch has a node for each value it may change."""

    def __init__(self, graph: Any) -> None:
        from .compiler import ir
        from .compiler.graph import Graph

        self.ir = ir
        self.Graph = Graph
        self.graph = graph
        self.fn = graph.fn
        self.out: list[str] = []
        self.edges: list[str] = []
        self.count = 0
        local = ir.local_names(self.fn)
        for s in ir.walk(self.fn.body):
            if isinstance(s, (ir.Append,)):
                local.add(s.lst)
            elif isinstance(s, ir.SetItem):
                local.add(s.target)
        self.local = local

    def new(self, prefix: str, pad: str, label: str, attrs: str = "") -> str:
        self.count += 1
        node = f"{prefix}{self.count}"
        self.out.append(f'{pad}{node} [label="{_esc(label)}"{attrs}];')
        return node

    def active(self, name: str) -> str:
        return ", style=filled, fillcolor=lightyellow" if self.graph._active(name) else ""

    def names(self, e: ast.AST) -> list[str]:
        seen: list[str] = []
        for n in ast.walk(e):
            if isinstance(n, ast.Name) and n.id in self.local and n.id not in seen:
                seen.append(n.id)
        return seen

    def edge(self, pad: str, src: str | None, dst: str, attrs: str = "") -> None:
        # every edge goes at the top level: an edge inside a cluster would pull its nodes into it
        if src is not None:
            self.edges.append(f"  {src} -> {dst}{(' [' + attrs + ']') if attrs else ''};")

    def read(self, env: dict[str, str], pad: str, e: ast.AST, dst: str) -> None:
        """Edges into ``dst`` from the definitions of the names ``e`` reads."""
        for n in self.names(e):
            self.edge(pad, env.get(n), dst)

    def operands(self, env: dict[str, str], pad: str, v: ast.expr, dst: str) -> None:
        """Edges into ``dst`` for each operand of operation ``v``: from the
        value's definition, or from a new constant node."""
        if isinstance(v, ast.BinOp):
            parts: list[ast.expr] = [v.left, v.right]
        elif isinstance(v, ast.UnaryOp):
            parts = [v.operand]
        elif isinstance(v, ast.Compare):
            parts = [v.left, *v.comparators]
        elif isinstance(v, ast.Call):
            parts = list(v.args) + [k.value for k in v.keywords]
            if isinstance(v.func, ast.Attribute) and self.names(v.func.value):
                parts.insert(0, v.func.value)
        elif isinstance(v, ast.Subscript):
            index = v.slice.elts if isinstance(v.slice, ast.Tuple) else [v.slice]
            parts = [v.value, *index]
        elif isinstance(v, ast.Attribute):
            parts = [v.value]
        elif isinstance(v, (ast.Tuple, ast.List)):
            parts = list(v.elts)
        elif isinstance(v, ast.Dict):
            parts = list(v.values)
        else:
            parts = [v]
        for p in parts:
            if isinstance(p, ast.Starred):
                p = p.value
            if self.names(p):
                self.read(env, pad, p, dst)
            else:
                c = self.new("c", pad, ast.unparse(p), ", shape=plaintext, fontcolor=gray30")
                self.edge(pad, c, dst, "color=gray60")

    def assigned(self, stmts: list) -> list[str]:
        return self.Graph._assigned(stmts)

    def read_before_write(self, stmts: list) -> list[str]:
        return self.graph._read_before_write(stmts)

    def used_outside(self, region: Any) -> set[str]:
        """Names read anywhere but inside ``region`` (and the result)."""
        inside = {id(s) for s in self.ir.walk([region])}
        used: set[str] = set()
        for s in self.ir.walk(self.fn.body):
            if id(s) not in inside:
                used.update(self.names(self.ir.reads_of(s)))
        if self.fn.result is not None:
            used.update(self.names(self.fn.result))
        return used

    def run(self) -> str:
        fn = self.fn
        self.out = [f'digraph "{_esc(fn.name, 200)}" {{', "  rankdir=TB;",
                    '  node [shape=box, fontname="monospace", fontsize=11];', '  edge [fontsize=9];']
        env: dict[str, str] = {}
        for p in fn.params:
            env[p] = self.new("p", "  ", p, ", shape=ellipse" + self.active(p))
        self.block(fn.body, env, "  ")
        if fn.result is not None:
            ret = self.new("r", "  ", "return", ", shape=doublecircle")
            self.operands(env, "  ", fn.result, ret)
        self.out += self.edges
        self.out.append("}")
        return "\n".join(self.out)

    def block(self, stmts: list, env: dict[str, str], pad: str) -> None:
        ir = self.ir
        for s in stmts:
            if isinstance(s, ir.Assign):
                op = s.op
                if op is not None and op.kind == "const":
                    label = f"{s.target} = {ast.unparse(s.value)}"
                    node = self.new("v", pad, label, self.active(s.target))
                else:
                    node = self.new("v", pad, f"{s.target} = {op.name if op else '?'}", self.active(s.target))
                    self.operands(env, pad, s.value, node)
                env[s.target] = node
            elif isinstance(s, ir.Unpack):
                for i, t in enumerate(s.targets):
                    node = self.new("v", pad, f"{t} = {s.value}[{i}]", self.active(t))
                    self.edge(pad, env.get(s.value), node)
                    env[t] = node
            elif isinstance(s, ir.Append):
                node = self.new("v", pad, f"{s.lst}.append", self.active(s.lst))
                self.edge(pad, env.get(s.lst), node)
                self.operands(env, pad, s.value, node)
                env[s.lst] = node
            elif isinstance(s, ir.SetItem):
                node = self.new("v", pad, f"{s.target}[{ast.unparse(s.index)}] =", self.active(s.target))
                self.edge(pad, env.get(s.target), node)
                self.read(env, pad, s.index, node)
                self.operands(env, pad, s.value, node)
                env[s.target] = node
            elif isinstance(s, ir.Expr):
                node = self.new("e", pad, ast.unparse(s.node), ", shape=note")
                self.read(env, pad, s.node, node)
            elif isinstance(s, ir.BreakIf):
                node = self.new("e", pad, f"break if {s.flag}", ", shape=diamond")
                self.edge(pad, env.get(s.flag), node)
            elif isinstance(s, ir.Return):
                node = self.new("r", pad, "return", ", shape=doublecircle")
                self.operands(env, pad, s.value, node)
            elif isinstance(s, ir.If):
                self.branch(s, env, pad)
            elif isinstance(s, (ir.For, ir.While)):
                self.loop(s, env, pad)

    def _cluster(self, pad: str, label: str) -> None:
        self.count += 1
        self.out.append(f"{pad}subgraph cluster_{self.count} {{")
        self.out.append(f'{pad}  label="{_esc(label, 80)}"; style=dashed; fontname="monospace"; fontsize=11;')

    def branch(self, s: Any, env: dict[str, str], pad: str) -> None:
        self._cluster(pad, f"if {ast.unparse(s.test)} (line {s.line})")
        inner = pad + "  "
        test = self.new("b", inner, f"if {ast.unparse(s.test)}", ", shape=diamond")
        self.read(env, inner, s.test, test)
        ends = []
        for part, stmts in (("then", s.body), ("else", s.orelse)):
            sub = dict(env)
            if stmts:
                self.block(stmts, sub, inner)
            ends.append((part, sub))
        outputs = [n for n in self.assigned(s.body + s.orelse) if n in self.used_outside(s)]
        for n in outputs:
            node = self.new("o", inner, f"{n} (out)", ", shape=invhouse" + self.active(n))
            for part, sub in ends:
                self.edge(inner, sub.get(n), node, f'label="{part}", style=dotted')
            env[n] = node
        for n in self.assigned(s.body + s.orelse):
            if n not in outputs:
                env[n] = ends[0][1].get(n) or ends[1][1].get(n) or env.get(n, "")
                if not env[n]:
                    del env[n]
        self.out.append(f"{pad}}}")

    def loop(self, s: Any, env: dict[str, str], pad: str) -> None:
        ir = self.ir
        if isinstance(s, ir.For):
            head = f"for {s.target} in range({', '.join(ast.unparse(a) for a in s.range_args)})"
        else:
            head = f"while {ast.unparse(s.test)}"
        self._cluster(pad, f"{head} (line {s.line})")
        inner = pad + "  "
        written = self.assigned(s.body)
        reads = [n for n in self.read_before_write([s] if isinstance(s, ir.While) else s.body) if n in env]
        carried = [n for n in reads if n in written]
        if isinstance(s, ir.For):
            counter = self.new("v", inner, f"{s.target} = range", ", shape=hexagon")
            for a in s.range_args:
                self.operands(env, inner, a, counter)
            env[s.target] = counter
        entry: dict[str, str] = {}
        before = {n: env[n] for n in reads if n not in written}  # read-only inputs: unchanged after the loop
        for n in reads:
            label = f"{n} (in, carried)" if n in carried else f"{n} (in)"
            node = self.new("i", inner, label, ", shape=house" + self.active(n))
            self.edge(inner, env.get(n), node)
            entry[n] = node
            env[n] = node
        if isinstance(s, ir.While):
            test = self.new("b", inner, head, ", shape=diamond")
            self.read(env, inner, s.test, test)
        self.block(s.body, env, inner)
        used = self.used_outside(s)
        for n in carried:  # the value the next iteration starts from
            self.edge(inner, env.get(n), entry[n], 'style=dashed, constraint=false, label="next"')
        for n in written:
            if n in used:
                node = self.new("o", inner, f"{n} (out)", ", shape=invhouse" + self.active(n))
                self.edge(inner, env.get(n), node)
                env[n] = node
        env.update(before)
        self.out.append(f"{pad}}}")


def graph_dot(graph: Any) -> str:
    """Graphviz DOT text for a graph made by :func:`srcdiff.graph`.

    Unlike ``graph.to_dot()``, each definition of a name is its own node,
    constant operands are shown (grey), and each loop shows the values that
    flow into it (``in``; ``carried`` when an iteration passes it to the
    next, along a dashed edge) and out of it (``out``).  Values that carry
    a gradient are filled."""
    return _Dot(graph).run()
