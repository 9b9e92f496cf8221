"""Generate docs/primitives.md from the rules table ``srcdiff.rules.TABLE``.

    python docs/gen_primitives.py            # rewrite docs/primitives.md
    python docs/gen_primitives.py --stdout   # print the page instead

The page lists every function, array method and array attribute srcdiff has
a derivative rule for (group, name, signature, differentiable parameters,
gradient template, note), then everything declared non-differentiable, then
what is not covered yet.  The SciPy rules load only once SciPy is imported,
so this script imports ``scipy.special`` and ``scipy.stats`` (when installed)
to list them.  The output is sorted, so it depends only on the table, never
on registration order.
"""

from __future__ import annotations

import argparse
import inspect
import operator
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "primitives.md")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from srcdiff.rules import TABLE  # noqa: E402
from srcdiff.rules.registry import Rule, _display_name  # noqa: E402

try:  # the SciPy rules load lazily, once SciPy is imported
    import scipy.special  # noqa: F401
    import scipy.stats  # noqa: F401
except ImportError:
    pass
TABLE.load_lazy()

# groups in reading order; any group not listed follows, alphabetically
GROUP_ORDER = [
    "operator", "builtin", "math", "elementwise", "reduction", "linear algebra",
    "polynomials and interpolation", "shape", "indexing", "constant", "array method", "array attribute",
    "scipy.special", "scipy.stats",
]
GROUP_TITLES = {
    "operator": "Python operators",
    "builtin": "Python builtins",
    "math": "The math module",
    "elementwise": "NumPy elementwise functions",
    "reduction": "NumPy reductions",
    "linear algebra": "Linear algebra",
    "shape": "Shape and construction",
    "indexing": "Indexing",
    "constant": "Constants",
    "array method": "Array methods (x.method(...))",
    "array attribute": "Array attributes (x.attr)",
    "polynomials and interpolation": "Polynomials and interpolation",
    "scipy.special": "SciPy special functions (scipy.special)",
    "scipy.stats": "SciPy distributions (scipy.stats)",
}
GROUP_INTROS = {
    "operator": "`a + b` is differentiated as the rule named `+`, and so on.\n",
    "scipy.special": (
        "SciPy is optional: srcdiff never imports it. These rules load the first time srcdiff\n"
        "looks up a function after your code has imported `scipy.special`. Rules marked *calls*\n"
        "need another special function (`digamma`, `polygamma`) and are small Python functions.\n"),
    "scipy.stats": (
        "Methods of the `scipy.stats.norm` object, however it is spelled (`norm.logpdf`,\n"
        "`scipy.stats.norm.logpdf`, `stats.norm.logpdf`); `loc` and `scale` are differentiable too.\n"
        "With `z = (x - loc) / scale`. Loaded once your code has imported `scipy.stats`.\n"),
}

# What autograd (numpy_vjps.py, its scipy wrappers) or common models use that
# the table has no rule for yet, and why.  Shown at the end of the page.
NOT_COVERED = [
    ("`np.fft.*` (`fft`, `ifft`, `rfft`, `irfft`, their 2-d and n-d forms, `fftshift`)",
     "complex results; srcdiff's rules and their tests are for real-valued code"),
    ("`np.linalg.svd`, `np.linalg.eig`, `np.linalg.eigvals`, `np.linalg.qr`, `np.linalg.lstsq`",
     "tuple results whose gradients need care with repeated singular values, complex eigenvalues and "
     "`full_matrices`; `eigh`, `eigvalsh`, `cholesky`, `pinv` and `slogdet` are covered"),
    ("complex-valued code",
     "not supported: `np.real`, `np.conj` and `np.real_if_close` pass the gradient of real arguments, and "
     "`np.imag` and `np.angle` are constants (as they are for real arguments)"),
    ("`np.gradient`, `np.partition`",
     "rare in models (`np.gradient` is linear and could be added; `np.sort` covers most uses of `partition`)"),
    ("`min(...)` / `max(...)` of one iterable or of three or more values",
     "the builtins' rules take two arguments; use `np.max` / `np.min` on an array"),
    ("frozen distributions: `scipy.stats.norm(loc, scale).logpdf(x)`",
     "each call makes a new distribution object; write `norm.logpdf(x, loc, scale)` instead"),
    ("other `scipy.stats` distributions (`t`, `gamma`, `beta`, `poisson`, `multivariate_normal`, "
     "`dirichlet` ...)", "not written yet; their log-densities are short enough for `srcdiff.defvjp`"),
    ("`scipy.special` Bessel functions (`i0`, `i1`, `iv`, `ive`, `j0`, `j1`, `jn`, `y0`, `y1`, `yn`), "
     "`gammainc`, `gammaincc`, `rgamma`, `erfcx`",
     "not written yet (the gradient of `gammainc` in its first argument has no closed form)"),
    ("`scipy.linalg` (`sqrtm`, `expm`, `solve_triangular`, `cho_solve` ...), `scipy.signal.convolve`",
     "not written yet; `np.linalg.solve`, `np.linalg.cholesky` and `np.convolve` are covered"),
]

HEADER = """\
<!-- GENERATED FILE: do not edit by hand.
     Made by `python docs/gen_primitives.py` from srcdiff.rules.TABLE;
     tests/test_docs.py fails when it is out of date. -->

# Primitives

Every function, array method and attribute srcdiff knows how to
differentiate, straight from its rules table (`srcdiff.rules.TABLE`).
A call to anything listed here becomes one line of the generated backward
pass, built from the **gradient** template: `g` is the adjoint of the
result, `ans` the result, and the other names are the call's arguments (see
[Custom rules](custom-rules.md) for the template language).

* **differentiable**: the parameters that receive a gradient. Other
  parameters (axes, shapes, flags, integer exponents) are treated as
  constants.
* *chosen when compiling*: the template depends on arguments written as
  literals in your code (for example `np.sum(x)` versus `np.sum(x, axis=0)`);
  `srcdiff.source` shows the one picked.
{calls}
Functions in the last section are **non-differentiable**: calling them is
allowed anywhere, and their results are treated as constants (no gradient
flows through them). Anything not on this page and without Python source
makes srcdiff raise `SrcdiffError`; add a rule with `srcdiff.defvjp`.
"""


# Python operators srcdiff treats as constants, shown as written in code
OPERATOR_SYMBOLS = {
    operator.floordiv: "//", operator.mod: "%", operator.lt: "<", operator.le: "<=", operator.gt: ">",
    operator.ge: ">=", operator.eq: "==", operator.ne: "!=", operator.not_: "not", operator.and_: "&",
    operator.or_: "|", operator.xor: "^", operator.invert: "~", operator.lshift: "<<",
    operator.rshift: ">>", operator.is_: "is", operator.is_not: "is not", operator.contains: "in",
}


def _name_of(fn) -> str:
    """How the page spells a non-differentiable callable."""
    for op, symbol in OPERATOR_SYMBOLS.items():
        if fn is op:
            return symbol
    if (getattr(fn, "__module__", None) or "").startswith("numpy.random"):
        # np.random.normal is a method of NumPy's global RandomState
        return "np.random." + fn.__name__
    return _display_name(fn)


def _group_key(group: str) -> tuple:
    if group in GROUP_ORDER:
        return (0, GROUP_ORDER.index(group), group)
    return (1, 0, group)


def _title(group: str) -> str:
    return GROUP_TITLES.get(group, group[:1].upper() + group[1:])


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """A code span in a table cell (a pipe inside backticks does not split the cell)."""
    text = text.replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _template(t) -> str:
    if isinstance(t, str):
        return _code(t)
    if getattr(t, "_srcdiff_static", False):
        return "*chosen when compiling*"
    name = getattr(t, "__name__", None) or type(t).__name__
    return f"*calls* {_code(name)}"


def _row(rule: Rule) -> str:
    diff = ", ".join(f"`{p}`" for p in rule.differentiable_params()) or "none"
    grads = "<br>".join(f"`{p}`: {_template(t)}" for p, t in rule.grads.items())
    return (f"| {_code(rule.name)} | {_code(rule.signature())} | {diff} | {grads} | "
            f"{_cell(rule.note)} |")


def _nondiff_names() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, group in TABLE.nondiff.items():
        fn = TABLE._keep.get(key)
        name = _name_of(fn) if fn is not None else f"<object {key}>"
        out.setdefault(group, []).append(name)
    if TABLE.nondiff_methods:
        out.setdefault("array method", []).extend(f"ndarray.{m}" for m in TABLE.nondiff_methods)
    if TABLE.nondiff_attrs:
        out.setdefault("array attribute", []).extend(f"ndarray.{a}" for a in TABLE.nondiff_attrs)
    return {g: sorted(set(names)) for g, names in out.items()}


def render() -> str:
    rules: dict[str, list[Rule]] = {}
    for rule in TABLE.all_rules():
        if rule.group == "user":
            continue  # registered by user code, not part of srcdiff
        rules.setdefault(rule.group, []).append(rule)
    nondiff = {g: names for g, names in _nondiff_names().items() if g != "user"}
    n_rules = sum(len(v) for v in rules.values())
    n_nondiff = sum(len(v) for v in nondiff.values())

    has_calls = any(not isinstance(t, str) and not getattr(t, "_srcdiff_static", False)
                    for group in rules.values() for rule in group for t in rule.grads.values())
    calls = ("* *calls* `name`: the rule is a Python function called at run time with\n"
             "  `(g, ans, *arguments)`.\n") if has_calls else ""
    lines = [HEADER.format(calls=calls)]
    lines.append(f"{n_rules} differentiable primitives and {n_nondiff} non-differentiable ones.\n")
    lines.append("## Differentiable\n")
    for group in sorted(rules, key=_group_key):
        lines.append(f"### {_title(group)}\n")
        if group in GROUP_INTROS:
            lines.append(GROUP_INTROS[group])
        lines.append("| name | signature | differentiable | gradient | note |")
        lines.append("|---|---|---|---|---|")
        for rule in sorted(rules[group], key=lambda r: (r.name, r.signature())):
            lines.append(_row(rule))
        lines.append("")
    lines.append("## Non-differentiable\n")
    lines.append("Results of these carry no gradient.\n")
    lines.append("| group | names |")
    lines.append("|---|---|")
    for group in sorted(nondiff, key=_group_key):
        names = ", ".join(_code(n) for n in nondiff[group])
        lines.append(f"| {_cell(_title(group))} | {names} |")
    lines.append("")
    lines.append("## Not covered yet\n")
    lines.append("Functions a model may call that have no rule yet, and why. Until they do, register a\n"
                 "rule with `srcdiff.defvjp` (see [Custom rules](custom-rules.md)).\n")
    lines.append("| what | why |")
    lines.append("|---|---|")
    for what, why in NOT_COVERED:
        lines.append(f"| {what} | {_cell(why)} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=inspect.cleandoc(__doc__ or "").splitlines()[0])
    parser.add_argument("--stdout", action="store_true", help="print the page instead of writing it")
    args = parser.parse_args(argv)
    text = render()
    if args.stdout:
        sys.stdout.write(text)
    else:
        with open(OUT, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        print(f"wrote {os.path.relpath(OUT, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
