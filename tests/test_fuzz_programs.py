"""Differential testing: random programs against two oracles.

Each program's forward value must be the value the function computes, and
its gradient must match central finite differences (and autograd, where
autograd runs the same program).  The default run checks a modest number of
programs per generator; ``--runslow`` (or ``--fuzz-programs N``) runs many.
``tests/fuzz_run.py`` runs them outside pytest, in parallel.  See
docs/testing.md.
"""

import pytest
from fuzz_programs import FAILURES, cases, check_case, error_class, random_case, reproducer
from hypothesis import HealthCheck, assume, given, settings

SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
STATS = {"checked": 0, "skipped": 0, "refused": 0}

# programs per generator in the default run (about 45 s in all on a shared 2-core machine)
DEFAULT = {"scalar": 60, "array": 30, "shaped": 40, "mixed": 15, "noalias": 15}
# programs drawn from fixed seeds, as tests/fuzz_run.py draws them: hypothesis
# starts with small programs, these are of full size
SEEDED = {"mixed": 20, "noalias": 20}
# generators that use only constructs srcdiff must accept: a refusal is a failure
NO_REFUSALS = ("scalar", "array", "shaped")


def _n(request, default):
    n = request.config.getoption("--fuzz-programs")
    if n:
        return n
    return 2000 if request.config.getoption("--runslow") else default


def check(case, refusals_allowed=True):
    outcome = check_case(case)
    if outcome.kind in FAILURES or (outcome.kind == "refusal" and not refusals_allowed):
        raise AssertionError(f"{outcome.kind}: {outcome.error or outcome.detail}\n\n"
                             + reproducer(case, outcome))
    if outcome.kind == "refusal":
        STATS["refused"] += 1
    assume(outcome.kind not in ("invalid", "refusal"))
    if outcome.kind == "skipped":
        STATS["skipped"] += 1  # value and autograd were compared; finite differences were unreliable here
    else:
        STATS["checked"] += 1
    return outcome


@pytest.mark.parametrize("generator", list(DEFAULT))
def test_random_programs(request, generator):
    """scalar and array: ``def prog(x, y)`` with branches, loops, early
    returns, break/continue, helpers and recursion, on floats or (3,) arrays;
    shaped: reductions over axes and broadcasting on a (3, 4) array; mixed:
    every construct of docs/subset.md, aliases and op= included (refusals
    allowed); noalias: the same without op= on names."""

    @settings(max_examples=_n(request, DEFAULT[generator]), **SETTINGS)
    @given(cases(generator))
    def run(case):
        check(case, refusals_allowed=generator not in NO_REFUSALS)

    run()


@pytest.mark.parametrize("generator", list(SEEDED))
def test_seeded_programs(request, generator):
    """Full-size programs from fixed seeds (``tests/fuzz_run.py --seed pytest``
    draws the same ones); every failure is reported, one reproducer per class."""
    failures = {}
    for i in range(_n(request, SEEDED[generator])):
        case = random_case(generator, f"pytest-{generator}-{i}")
        outcome = check_case(case)
        if outcome.failed:
            failures.setdefault(error_class(outcome), (i, case, outcome))
        elif outcome.kind == "refusal":
            STATS["refused"] += 1
        elif outcome.kind in ("ok", "skipped"):
            STATS["checked" if outcome.kind == "ok" else "skipped"] += 1
    assert not failures, "\n\n".join(f"{key} (program {i}):\n{reproducer(case, o)}"
                                      for key, (i, case, o) in failures.items())
