"""The simplify pass on small hand-written inputs: copies, numbers, temporaries."""

import ast
import textwrap

import pytest

from srcdiff.compiler.astlib import COMMENT
from srcdiff.compiler.simplify import simplify


def run(src: str, protect=(), floats=(), adjoints=()) -> str:
    fn = ast.parse(textwrap.dedent(src)).body[0]
    out = simplify(fn, set(protect), set(floats), set(adjoints))
    return ast.unparse(out).replace(f"{COMMENT}(", "#(")


def body(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()[1:]]


def test_copy_of_a_temporary_takes_the_users_name():
    out = run("""
        def f(t1, x2):
            dt2 = t1 * 2.0
            dx3 = dt2
            return x2 @ dx3
        """, protect={"t1", "x2"})
    assert body(out) == ["dx3 = t1 * 2.0", "return x2 @ dx3"]


def test_seed_numbers_fold_when_they_remove_an_operation():
    out = run("""
        def f(t1, x2):
            dt3 = 1.0
            dt2 = dt3 * 0.5
            dx3 = dt2 * 2 * t1
            return dx3 @ x2
        """, protect={"t1", "x2"}, floats={"t1", "x2", "dt3", "dt2", "dx3"}, adjoints={"dt3", "dt2", "dx3"})
    assert body(out) == ["dx3 = t1", "return dx3 @ x2"]


def test_a_number_that_would_replace_a_name_is_not_put_in():
    out = run("""
        def f(Y):
            dt11 = 1.0
            dt10 = -dt11
            dt8 = dt10 / 32
            dlogp = dt8 * Y
            return dlogp
        """, protect={"Y"}, floats={"Y", "dt11", "dt10", "dt8", "dlogp"}, adjoints={"dt11", "dt10", "dt8", "dlogp"})
    assert "dlogp = dt8 * Y" in out and "0.03125" not in out


def test_multiplying_an_int_by_one_is_kept():
    # 1.0 * n is a float, n may be an int array: the multiplication stays
    out = run("""
        def f(n, X):
            dt = 1.0
            dn = dt * n
            dX = (dt * X).sum()
            return (dn, dX)
        """, protect={"n", "X"}, floats={"X", "dt", "dn", "dX"}, adjoints={"dt", "dn", "dX"})
    assert "dt * n" in out and "X.sum()" in out


@pytest.mark.parametrize("later", ["dx += y", "dx[0] += y", "return dx", "return (dx.T, y)",
                                   "return rt.mirror(dx, x)"])
def test_no_alias_when_the_adjoint_is_changed_in_place_or_returned(later):
    out = run(f"""
        def f(x, y):
            dt = 1.0
            dx = dt * x
            {later}
        """, protect={"x", "y"}, floats={"x", "y", "dt", "dx"}, adjoints={"dt", "dx"})
    assert "dx = dt * x" in out


def test_alias_is_fine_when_only_read_then_replaced():
    out = run("""
        def f(x, y):
            dt = 1.0
            dx = dt * x
            dy = dx * y
            dx = dx + y
            return (dx, dy)
        """, protect={"x", "y"}, floats={"x", "y", "dt", "dx", "dy"}, adjoints={"dt", "dx", "dy"})
    assert body(out)[0] == "dx = x"


def test_forward_temporaries_go_back_into_their_expression():
    out = run("""
        def f(X, W1, b1, stack):
            t1 = X @ W1
            t2 = t1 + b1
            stack.append(X)
            h = np.tanh(t2)
            return h
        """)
    assert body(out) == ["stack.append(X)", "h = np.tanh(X @ W1 + b1)", "return h"]


@pytest.mark.parametrize("between", [
    "x = stack.pop()",       # an operand changes
    "x.sort()",              # an operand may change in place
    "xs.append(x)",          # the list the expression reads grows
    "helper(x)",             # the user's code could change x
    "#('x = 1')",            # a comment: another source line's code
])
def test_temporaries_stay_when_something_between_could_change_them(between):
    out = run(f"""
        def f(x, xs, stack):
            t1 = x * 2.0 + np.sum(xs)
            {between}
            y = t1 + 1.0
            return y
        """.replace("#(", f"{COMMENT}("))
    assert "t1 = " in out


def test_adjoint_temporaries_stay_one_line_per_operation():
    out = run("""
        def f(dlogp, t6, t5, dk, da, x):
            dt7 = -dlogp.sum(axis=1, keepdims=True)
            dt5 = dt7 / t6
            dz = dt5 * t5
            dt1 = da * x
            dk -= dt1
            return (dz, dk)
        """)
    assert body(out) == ["dt7 = -dlogp.sum(axis=1, keepdims=True)", "dt5 = dt7 / t6", "dz = dt5 * t5",
                         "dk -= da * x", "return (dz, dk)"]


def test_user_names_are_never_inlined():
    out = run("""
        def f(x):
            z = x * 2.0
            y = np.sin(z)
            return y
        """)
    assert "z = x * 2.0" in out


def test_negation_goes_into_the_sign_of_the_additions():
    out = run("""
        def f(da, v, c, dc, dv):
            dt3 = -da
            dc += dt3 * v
            dv += c * dt3
            return (dc, dv)
        """)
    assert body(out) == ["dc -= da * v", "dv -= c * da", "return (dc, dv)"]


@pytest.mark.parametrize("uses", [
    ["dw = dt3 * v", "dv += dt3 * v"],       # not an addition into an adjoint
    ["dc += dt3 + v", "dv += dt3 * v"],      # not a product
    ["dc += dt3 * v", "da = 2.0", "dv += dt3 * v"],  # da changes between the uses
])
def test_negation_stays_when_used_otherwise(uses):
    lines = "\n".join("    " + u for u in ["dt3 = -da"] + uses + ["return (dc, dv)"])
    out = run("def f(da, v, dc, dv):\n" + lines + "\n")
    assert "dt3 = -da" in out, out
