"""Logistic regression on a Dask cluster: srcdiff's gradient against dask-glm.

The data, 10 million rows by default, are made lazily chunk by chunk on the
workers (each chunk from its own seed; the client never holds the data) and
kept in the workers' memory.  The loss is ordinary NumPy code;
``srcdiff.value_and_grad`` runs it on the Dask arrays, and each call builds
one Dask graph for the loss and its gradient, evaluated once on the cluster.
L-BFGS-B (``scipy.optimize.minimize(jac=True)``) fits it; the same cluster
then fits the same data with ``dask_glm.algorithms.lbfgs`` (its hand-written
``Logistic`` gradient), or, when dask-glm is not installed, with a
hand-written gradient written the way dask-glm's is.  Both get the same
tolerance; the accuracies and fit times are printed side by side.

    python examples/dask_logistic.py                  # 10M rows, 2 worker processes
    python examples/dask_logistic.py --rows 2000000 --workers 2 --features 20
    python examples/dask_logistic.py --quick          # small, for the tests
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import srcdiff  # noqa: E402


def loss(beta: np.ndarray, X: Any, y: Any) -> float:
    """Negative log-likelihood, summed over the rows (dask-glm's ``Logistic.loglike``
    is the same sum; the last column of X is the intercept's column of ones)."""
    z = X @ beta
    return np.sum(np.logaddexp(0.0, z) - y * z)


def hand_value_and_grad(beta: np.ndarray, X: Any, y: Any) -> tuple[Any, Any]:
    """The gradient the way dask-glm's ``families.Logistic.gradient`` writes it,
    ``X.T @ (sigmoid(X beta) - y)``, with the loss; both lazy."""
    z = X @ beta
    p = 1.0 / (1.0 + np.exp(-z))
    return np.sum(np.logaddexp(0.0, z) - y * z), X.T @ (p - y)


def make_data(rows: int, features: int, chunk: int, seed: int = 0) -> tuple[Any, Any, np.ndarray]:
    """(X, y, true beta): X has ``features`` standard-normal columns and a column
    of ones; y ~ Bernoulli(sigmoid(X beta)).  Each chunk is made on a worker
    from its own seed, so nothing the size of the data passes through the client."""
    import dask.array as da

    beta = np.random.default_rng(seed).normal(size=features + 1) / np.sqrt(features)
    rows_per = [chunk] * (rows // chunk) + ([rows % chunk] if rows % chunk else [])

    def block(block_info: Any = None) -> np.ndarray:
        i = block_info[None]["chunk-location"][0]
        n = block_info[None]["chunk-shape"][0]
        rng = np.random.default_rng([seed, i])
        Xb = np.empty((n, features + 1))
        Xb[:, :features] = rng.normal(size=(n, features))
        Xb[:, features] = 1.0
        prob = 1.0 / (1.0 + np.exp(-(Xb @ beta)))
        # the label rides along as one more column (split off below): one draw per chunk
        return np.hstack([Xb, (rng.random(n) < prob)[:, None].astype(float)])

    full = da.map_blocks(block, chunks=(tuple(rows_per), (features + 2,)), dtype=float, meta=np.empty((0, 0)))
    return full[:, : features + 1], full[:, features + 1], beta


def accuracy(beta: np.ndarray, X: Any, y: Any) -> Any:
    return ((X @ beta > 0) == (y > 0.5)).mean()


def fit_srcdiff(X: Any, y: Any, tol: float, max_iter: int) -> tuple[np.ndarray, int, float]:
    from scipy.optimize import minimize

    vg = srcdiff.value_and_grad(loss, wrt=0)
    t0 = time.perf_counter()
    res = minimize(vg, np.zeros(X.shape[1]), args=(X, y), jac=True, method="L-BFGS-B",
                   options=dict(gtol=tol, maxiter=max_iter))
    return res.x, res.nfev, time.perf_counter() - t0


def fit_reference(X: Any, y: Any, tol: float, max_iter: int) -> tuple[np.ndarray, str, float]:
    t0 = time.perf_counter()
    try:
        from dask_glm.algorithms import lbfgs
        from dask_glm.families import Logistic
    except ImportError:
        import dask
        from scipy.optimize import minimize

        def fun(beta: np.ndarray) -> tuple[float, np.ndarray]:
            value, g = dask.compute(*hand_value_and_grad(beta, X, y))
            return float(value), np.asarray(g)

        res = minimize(fun, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B",
                       options=dict(gtol=tol, maxiter=max_iter))
        return res.x, "hand-written gradient (dask-glm not installed)", time.perf_counter() - t0
    beta = lbfgs(X, y, family=Logistic, max_iter=max_iter, tol=tol)
    return np.asarray(beta), "dask_glm.algorithms.lbfgs", time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (for the tests)")
    parser.add_argument("--out", default=None, help="unused (no plots); accepted like every example")
    parser.add_argument("--rows", type=int, default=None, help="rows of data (default 10,000,000; quick 200,000)")
    parser.add_argument("--features", type=int, default=None, help="features (default 20; quick 5)")
    parser.add_argument("--chunk", type=int, default=None, help="rows per chunk (default 500,000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster")
    parser.add_argument("--no-persist", action="store_true",
                        help="make the data anew in every pass instead of keeping it in the workers' memory")
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    features = args.features or (5 if args.quick else 20)
    chunk = args.chunk or (25_000 if args.quick else 500_000)
    tol, max_iter = 1e-4 * rows / 1000, 100  # the gradient of a sum grows with the rows

    import dask
    from distributed import Client, LocalCluster, progress

    t_start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster, Client(cluster) as client:
        X, y, beta_true = make_data(rows, features, chunk)
        print(f"data: {rows:,} rows x {features + 1} columns in {X.numblocks[0]} chunks, "
              f"{X.nbytes / 1e9:.2f} GB on {len(client.scheduler_info()['workers'])} worker processes")
        if not args.no_persist:
            X, y = dask.persist(X, y)
            progress(X, y)  # Dask's progress bar while the workers make the data
            print()
        beta_s, nfev, t_s = fit_srcdiff(X, y, tol, max_iter)
        print(f"srcdiff gradient + L-BFGS-B: {nfev} loss+gradient evaluations, {t_s:.2f} s")
        beta_r, ref_name, t_r = fit_reference(X, y, tol, max_iter)
        print(f"{ref_name}: {t_r:.2f} s")
        accs = client.compute([accuracy(beta_s, X, y), accuracy(beta_r, X, y), accuracy(beta_true, X, y)])
        progress(accs)
        print()
        acc_s, acc_r, acc_true = (float(a) for a in client.gather(accs))
    diff = float(np.max(np.abs(beta_s - beta_r)))
    print(f"{'':28s}{'accuracy':>10s}{'fit time':>10s}")
    print(f"{'srcdiff (value_and_grad)':28s}{acc_s:10.4f}{t_s:9.2f}s")
    print(f"{ref_name.split(' (')[0]:28s}{acc_r:10.4f}{t_r:9.2f}s")
    print(f"{'true coefficients':28s}{acc_true:10.4f}")
    print(f"largest coefficient difference: {diff:.2e}")
    values = dict(rows=rows, acc_srcdiff=round(acc_s, 4), acc_reference=round(acc_r, 4),
                  acc_true=round(acc_true, 4), coef_diff=diff, fit_srcdiff_s=round(t_s, 2),
                  fit_reference_s=round(t_r, 2), reference=ref_name.split(" ")[0],
                  seconds=round(time.perf_counter() - t_start, 1))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import summary

    summary(**values)
    return values


if __name__ == "__main__":
    main()
