"""One gradient pass over Dask data on a LocalCluster: srcdiff's generated
gradient against dask-glm's hand-written ``Logistic.gradient``.

The loss is the logistic negative log-likelihood, summed (dask-glm's
``Logistic.loglike``); srcdiff differentiates the NumPy function
``examples/dask_logistic.py:loss``.  Both gradients run on the same cluster
(``--workers`` processes, one thread each) over the same data, kept in the
workers' memory, and are timed in interleaved rounds (srcdiff, then dask-glm,
then srcdiff ...); the report gives each median and the median of the
per-round ratios, and the number of tasks in each graph (after Dask's
optimization, which is what the scheduler runs).  Without dask-glm the
reference is the same formula, ``X.T @ (sigmoid(X @ beta) - y)``, written by
hand here.

    python -m benchmarks.dask_gradient                 # 4M rows x 21, 16 chunks, 2 workers, 15 rounds
    python -m benchmarks.dask_gradient --quick         # small, a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, os.path.join(HERE, ".."))

from dask_logistic import loss, make_data  # noqa: E402

import srcdiff  # noqa: E402


def n_tasks(*collections: Any) -> int:
    """Tasks in the optimized graph of ``collections`` (what the scheduler gets)."""
    import dask

    keys: set = set()
    for c in dask.optimize(*collections):
        keys.update(dict(c.__dask_graph__()))
    return len(keys)


def hand_gradient(beta: np.ndarray, X: Any, y: Any) -> Any:
    """dask-glm's formula, ``X.T @ (sigmoid(X beta) - y)``, in plain Dask (lazy)."""
    p = 1.0 / (1.0 + np.exp(-(X @ beta)))
    return X.T @ (p - y)


def reference() -> tuple[Any, str]:
    """dask-glm's pointwise gradient (lazy), or the same formula by hand."""
    try:
        from dask_glm.families import Logistic
    except ImportError:
        return hand_gradient, "hand-written X.T @ (sigmoid(X beta) - y) (dask-glm not installed)"
    return Logistic.pointwise_gradient, "dask_glm.families.Logistic.pointwise_gradient"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 4_000_000)
    chunk = args.chunk or (25_000 if args.quick else 250_000)
    rounds = args.rounds or (3 if args.quick else 15)

    import dask
    from distributed import Client, LocalCluster, wait

    ref, ref_name = reference()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, Client(cluster):
        X, y, _ = make_data(rows, args.features, chunk)
        X, y = dask.persist(X, y)
        wait([X, y])
        beta = np.random.default_rng(1).normal(size=X.shape[1]) * 0.1
        g = srcdiff.grad(loss, wrt=0)
        first = time.perf_counter()
        ours = g(beta, X, y)
        first = time.perf_counter() - first
        theirs = np.asarray(ref(beta, X, y).compute())
        err = float(np.max(np.abs(ours - theirs)) / max(1.0, float(np.max(np.abs(theirs)))))
        # the lazy graph srcdiff builds (what g computes with one dask.compute)
        lazy = g.compiled_for((beta, X, y), {}).fn(beta, X, y)
        tasks_ours, tasks_theirs = n_tasks(lazy), n_tasks(ref(beta, X, y))
        tasks_hand = n_tasks(hand_gradient(beta, X, y))
        t_ours, t_theirs, t_hand, ratios, ratios_hand = [], [], [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            g(beta, X, y)
            t1 = time.perf_counter()
            ref(beta, X, y).compute()
            t2 = time.perf_counter()
            hand_gradient(beta, X, y).compute()
            t3 = time.perf_counter()
            t_ours.append(t1 - t0)
            t_theirs.append(t2 - t1)
            t_hand.append(t3 - t2)
            ratios.append((t1 - t0) / (t2 - t1))
            ratios_hand.append((t1 - t0) / (t3 - t2))
    out = dict(rows=rows, features=args.features + 1, chunks=X.numblocks[0], workers=args.workers, rounds=rounds,
               srcdiff_s=statistics.median(t_ours), reference_s=statistics.median(t_theirs),
               ratio=statistics.median(ratios), tasks_srcdiff=tasks_ours, tasks_reference=tasks_theirs,
               hand_s=statistics.median(t_hand), ratio_hand=statistics.median(ratios_hand), tasks_hand=tasks_hand,
               first_call_s=first, rel_err=err, reference=ref_name)
    print(f"data: {rows:,} rows x {args.features + 1} columns, {X.numblocks[0]} chunks, persisted on "
          f"{args.workers} worker processes (1 thread each); {rounds} interleaved rounds")
    print(f"reference: {ref_name}")
    print("| gradient | median time | tasks (optimized graph) |")
    print("|---|---:|---:|")
    print(f"| srcdiff `grad(loss)` (computed to NumPy) | {out['srcdiff_s'] * 1e3:.0f} ms | {tasks_ours} |")
    print(f"| dask-glm `Logistic.gradient` (`.compute()`) | {out['reference_s'] * 1e3:.0f} ms | {tasks_theirs} |")
    print(f"| the same formula in plain Dask, `X.T @ (sigmoid(X @ beta) - y)` | {out['hand_s'] * 1e3:.0f} ms "
          f"| {tasks_hand} |")
    print(f"median of per-round ratios: srcdiff / dask-glm {out['ratio']:.3f}x, srcdiff / plain Dask formula "
          f"{out['ratio_hand']:.3f}x; first srcdiff call "
          f"(compile + one pass): {first * 1e3:.0f} ms; relative difference of the gradients {err:.1e}")
    return out


if __name__ == "__main__":
    main()
