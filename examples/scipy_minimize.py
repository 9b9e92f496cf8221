"""srcdiff gradients for scipy.optimize.minimize (L-BFGS-B).

Two problems, each written as an ordinary NumPy function and handed to
``scipy.optimize.minimize(f, x0, jac=srcdiff.grad(f), method="L-BFGS-B")``:

* the Rosenbrock function in 2 and in 10 dimensions (minimum 0 at all ones);
  srcdiff's gradient is compared with SciPy's hand-written ``rosen_der``;
* an L2-regularized logistic regression on two overlapping Gaussian clouds
  (the data are made with NumPy; the bias is a weight on a column of ones).

For each we also run L-BFGS-B without ``jac`` (SciPy then uses finite
differences) and print how many function evaluations the gradient saved.

    python examples/scipy_minimize.py        # writes examples/out/scipy_minimize.png
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff

REG = 0.01  # L2 strength of the logistic regression


def rosenbrock(x: np.ndarray) -> float:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic_loss(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood (labels y in {0, 1}) plus REG/2 ||w||^2."""
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * REG * np.sum(w**2)


def make_clouds(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two 2-D Gaussian clouds, n points each; a column of ones is appended."""
    rng = np.random.default_rng(seed)
    a = rng.normal([-1.0, -0.5], 1.0, size=(n, 2))
    b = rng.normal([1.0, 1.0], 1.0, size=(n, 2))
    X = np.vstack([a, b])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return np.hstack([X, np.ones((2 * n, 1))]), y


def plot(plt: Any, path: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray, out: str) -> None:
    from scipy.optimize import rosen

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    xs = np.linspace(-2.0, 2.0, 300)
    ys = np.linspace(-1.0, 3.0, 300)
    A, B = np.meshgrid(xs, ys)
    Z = rosen(np.stack([A, B]))
    filled = ax1.contourf(A, B, np.log10(Z + 1e-3), levels=30, cmap="viridis")
    fig.colorbar(filled, ax=ax1, pad=0.02, label="log10(f(x) + 0.001)")
    ax1.plot(path[:, 0], path[:, 1], "o-", color="tab:red", ms=3, lw=1, label="L-BFGS-B iterates")
    ax1.plot(path[0, 0], path[0, 1], "ks", ms=7, label=f"start ({path[0, 0]:g}, {path[0, 1]:g})")
    ax1.plot(1.0, 1.0, "w*", mec="k", ms=14, label="minimum (1, 1)")
    ax1.set_title("Rosenbrock in 2-D; jac = srcdiff.grad(rosenbrock)")
    ax1.set_xlabel("x[0]")
    ax1.set_ylabel("x[1]")
    ax1.legend(fontsize=8, loc="upper left")

    ax2.scatter(X[y == 0, 0], X[y == 0, 1], s=10, color="tab:blue", label="class 0")
    ax2.scatter(X[y == 1, 0], X[y == 1, 1], s=10, color="tab:orange", label="class 1")
    u = np.linspace(X[:, 0].min(), X[:, 0].max(), 2)
    ax2.plot(u, -(w[0] * u + w[2]) / w[1], "k-", label="decision boundary p = 0.5")
    ax2.set_ylim(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5)
    ax2.set_title("logistic regression; jac = srcdiff.grad(logistic_loss)")
    ax2.set_xlabel("feature 1 (X[:, 0])")
    ax2.set_ylabel("feature 2 (X[:, 1])")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "scipy_minimize.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    from scipy.optimize import minimize, rosen_der

    args = parse_args(__doc__, argv)
    t0 = time.perf_counter()
    d_rosenbrock = srcdiff.grad(rosenbrock)

    print("Rosenbrock")
    rng = np.random.default_rng(0)
    probe = rng.normal(size=10)
    der_error = float(np.max(np.abs(d_rosenbrock(probe) - rosen_der(probe))))
    print(f"  srcdiff.grad vs scipy.optimize.rosen_der at a random point: max abs difference {der_error:.1e}")
    results = {}
    path = [np.array([-1.2, 1.0])]
    for n in (2, 10):
        x0 = np.tile([-1.2, 1.0], n // 2)
        callback = (lambda xk: path.append(xk.copy())) if n == 2 else None
        res = minimize(rosenbrock, x0, jac=d_rosenbrock, method="L-BFGS-B", callback=callback,
                       options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 2000})
        fd = minimize(rosenbrock, x0, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14, "maxiter": 2000})
        err = float(np.max(np.abs(res.x - 1.0)))
        results[n] = (res, err)
        print(f"  n={n:2d}: {res.nit} iterations, {res.nfev} evaluations, f = {res.fun:.2e}, "
              f"max |x - 1| = {err:.1e}; finite differences: {fd.nfev} evaluations, "
              f"max |x - 1| = {np.max(np.abs(fd.x - 1.0)):.1e}")

    print("logistic regression")
    X, y = make_clouds(100 if args.quick else 500)
    w0 = np.zeros(3)
    res = minimize(logistic_loss, w0, args=(X, y), jac=srcdiff.grad(logistic_loss), method="L-BFGS-B")
    fd = minimize(logistic_loss, w0, args=(X, y), method="L-BFGS-B")
    accuracy = float(np.mean((X @ res.x > 0) == (y == 1)))
    grad_norm = float(np.linalg.norm(srcdiff.grad(logistic_loss)(res.x, X, y)))
    print(f"  {len(y)} points: {res.nit} iterations, {res.nfev} evaluations, loss {logistic_loss(w0, X, y):.4f} "
          f"-> {res.fun:.4f}, |gradient| = {grad_norm:.1e}, training accuracy {accuracy:.1%}")
    print(f"  w = {np.round(res.x, 4)}; finite differences: {fd.nfev} evaluations, "
          f"w = {np.round(fd.x, 4)}")
    print()

    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, np.array(path), X, y, res.x, args.out)
    r2, e2 = results[2]
    r10, e10 = results[10]
    values = {"rosen_der_error": der_error, "rosen2_nit": r2.nit, "rosen2_err": e2, "rosen10_nit": r10.nit,
              "rosen10_f": float(r10.fun), "rosen10_err": e10, "logreg_nit": res.nit,
              "logreg_loss": float(res.fun), "logreg_accuracy": accuracy, "logreg_grad_norm": grad_norm}
    summary(**values, seconds=round(time.perf_counter() - t0, 1))
    return values


if __name__ == "__main__":
    main()
