"""Differential testing: random programs' gradients against finite differences.

The default run checks a modest number of programs; ``--runslow`` (or
``--fuzz-programs N``) runs a large number.
"""

import numpy as np
from fuzz_programs import load, programs, shaped_programs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import srcdiff

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STATS = {"checked": 0, "skipped": 0}


def _numeric(f, args, i, eps):
    a = [np.array(v, dtype=float) for v in args]
    out = np.zeros_like(a[i])
    for idx in np.ndindex(a[i].shape):
        ap = [v.copy() for v in a]
        am = [v.copy() for v in a]
        ap[i][idx] += eps
        am[i][idx] -= eps
        cast = (lambda v: v) if a[i].ndim else float
        fp = f(*[cast(v) if np.ndim(v) == 0 else v for v in ap])
        fm = f(*[cast(v) if np.ndim(v) == 0 else v for v in am])
        out[idx] = (fp - fm) / (2 * eps)
    return out


def check_program(src: str, args: tuple) -> None:
    f = load(src)
    with np.errstate(all="ignore"):
        try:
            value = f(*args)
        except (OverflowError, ZeroDivisionError, FloatingPointError):
            assume(False)
        assume(np.isfinite(value) and abs(value) < 1e6)
        for i in range(2):
            n1 = _numeric(f, args, i, 1e-6)
            n2 = _numeric(f, args, i, 1e-4)
            # near a branch boundary the two step sizes disagree: skip the draw
            assume(np.all(np.isfinite(n1)) and np.allclose(n1, n2, rtol=1e-3, atol=1e-5))
    STATS["checked"] += 1
    try:
        g = srcdiff.grad(f, wrt=(0, 1))(*args)
    except Exception as exc:
        raise AssertionError(f"program:\n{src}\nargs={args}\n{type(exc).__name__}: {exc}") from exc
    for i in range(2):
        numeric = _numeric(f, args, i, 1e-6)
        np.testing.assert_allclose(np.asarray(g[i], dtype=float), numeric, rtol=1e-5, atol=1e-6,
                                   err_msg=f"program:\n{src}\nargs={args}")


scalars = st.floats(-1.5, 1.5, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


def _n(request, default):
    n = request.config.getoption("--fuzz-programs")
    if n:
        return n
    return 2000 if request.config.getoption("--runslow") else default


def test_random_scalar_programs(request):
    @settings(max_examples=_n(request, 60), **SETTINGS)
    @given(programs(), scalars, scalars)
    def run(src, x, y):
        check_program(src, (x, y))

    run()


def test_random_array_programs(request):
    arr = st.lists(scalars, min_size=3, max_size=3).map(np.array)

    @settings(max_examples=_n(request, 30), **SETTINGS)
    @given(programs(arrays=True), arr, arr)
    def run(src, x, y):
        check_program(src, (x, y))

    run()


def test_random_shaped_programs(request):
    """Reductions over axes and broadcasting: the adjoints srcdiff keeps small
    (a column for a row-wise sum) and the shifts it cuts (stable softmax)."""

    @settings(max_examples=_n(request, 40), **SETTINGS)
    @given(shaped_programs(), st.integers(0, 2**32 - 1))
    def run(prog, seed):
        src, yshape = prog
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1.5, 1.5, (3, 4))
        y = rng.uniform(-1.5, 1.5, yshape)
        check_program(src, (x, y))

    run()
