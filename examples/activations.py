"""Activation functions and their derivatives, by srcdiff.

ReLU, GELU (z * Phi(z), with Phi from math.erf), sigmoid, tanh and softplus,
each written for one number with the ``math`` module.  srcdiff.grad gives each
derivative; we evaluate it point by point on a grid, compare it with the
derivative worked out by hand (the printed max abs error), and plot both.

ReLU has a kink at 0: it is differentiable almost everywhere, and srcdiff
uses the common convention relu'(0) = 0 (``max(0.0, z)`` passes a tie to its
first argument).  GELU is smooth everywhere.

    python examples/activations.py           # writes examples/out/activations.png
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff

SQRT2 = math.sqrt(2.0)


def relu(z: float) -> float:
    return max(0.0, z)


def gelu(z: float) -> float:
    Phi = 0.5 * (1.0 + math.erf(z / SQRT2))  # the standard normal CDF
    return z * Phi


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def tanh(z: float) -> float:
    return math.tanh(z)


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


# the derivatives worked out by hand, for comparison (vectorized NumPy)
def _erf(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ANALYTIC: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: (z > 0).astype(float),
    "gelu": lambda z: 0.5 * (1.0 + _erf(z / SQRT2)) + z * np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi),
    "sigmoid": lambda z: _sigmoid(z) * (1.0 - _sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "softplus": _sigmoid,
}

ACTIVATIONS = [relu, gelu, sigmoid, tanh, softplus]


def derivative_on_grid(f: Callable[[float], float], zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """f and f' at every point of ``zs``, one scalar call at a time; f' by srcdiff."""
    df = srcdiff.value_and_grad(f)
    values = np.empty_like(zs)
    slopes = np.empty_like(zs)
    for i, z in enumerate(zs):
        values[i], slopes[i] = df(float(z))
    return values, slopes


def plot(plt: Any, zs: np.ndarray, results: dict, out: str) -> None:
    fig, axes = plt.subplots(2, len(ACTIVATIONS), figsize=(16, 6), sharex=True)
    for col, f in enumerate(ACTIVATIONS):
        name = f.__name__
        values, slopes = results[name]
        top, bottom = axes[0, col], axes[1, col]
        top.plot(zs, values, color="tab:blue")
        top.set_title(name)
        top.grid(alpha=0.3)
        bottom.plot(zs, slopes, color="tab:red", lw=2.5, label="srcdiff.grad")
        bottom.plot(zs, ANALYTIC[name](zs), "k--", lw=1.0, label="by hand")
        bottom.set_xlabel("z")
        bottom.grid(alpha=0.3)
    axes[0, 0].set_ylabel("f(z)")
    axes[1, 0].set_ylabel("f'(z)")
    axes[1, 0].legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "activations.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    t0 = time.perf_counter()
    zs = np.linspace(-4.0, 4.0, 201 if args.quick else 801)
    results = {}
    errors = {}
    print("activation   max |srcdiff - by hand|     f(0)    f'(0)")
    for f in ACTIVATIONS:
        name = f.__name__
        values, slopes = derivative_on_grid(f, zs)
        results[name] = (values, slopes)
        errors[name] = float(np.max(np.abs(slopes - ANALYTIC[name](zs))))
        value0, slope0 = srcdiff.value_and_grad(f)(0.0)
        print(f"{name:<10} {errors[name]:>24.2e} {value0:>8.4f} {slope0:>8.4f}")
    print()

    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, zs, results, args.out)
    worst = max(errors, key=errors.get)
    summary(functions=len(ACTIVATIONS), points=len(zs), max_abs_error=errors[worst], worst=worst,
            seconds=round(time.perf_counter() - t0, 1))
    return errors


if __name__ == "__main__":
    main()
