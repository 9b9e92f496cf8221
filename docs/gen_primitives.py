"""Generate docs/primitives.md from the rules table ``srcdiff.rules.TABLE``.

    python docs/gen_primitives.py            # rewrite docs/primitives.md
    python docs/gen_primitives.py --stdout   # print the page instead

The page lists every function, array method and array attribute srcdiff has
a derivative rule for (group, name, signature, differentiable parameters,
gradient template, note), then everything declared non-differentiable.  The
output is sorted, so it depends only on the table, never on registration
order.
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

# groups in reading order; any group not listed follows, alphabetically
GROUP_ORDER = [
    "operator", "builtin", "math", "elementwise", "reduction", "linear algebra", "shape", "indexing",
    "constant", "array method", "array attribute",
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
}

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
        if group == "operator":
            lines.append("`a + b` is differentiated as the rule named `+`, and so on.\n")
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
