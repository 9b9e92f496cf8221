"""Which loss landscapes are hard to optimize?  The lecture's gallery, run.

Six functions of two variables, written as plain Python/NumPy (``if``,
``abs``, ``np.floor``, ``np.sqrt`` ...): a convex bowl, a terraced bowl
(discontinuous, but with well-defined one-sided derivatives), a plateau whose
gradient vanishes, a flat region with exactly zero gradient around a hole, a
cusp whose gradient explodes at the minimum, and a bumpy bowl with many local
minima.  On each we run gradient descent, momentum, clipped gradient descent
(gradients from srcdiff) and evolution strategies (loss values only), draw the
trajectories on contour plots and print the final losses.

    python examples/landscapes.py            # writes examples/out/landscapes*.png
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff
from srcdiff import optim

# ---------------------------------------------------------------------------
# The landscapes: ordinary Python, differentiated by srcdiff.
# ---------------------------------------------------------------------------


def convex_bowl(x: float, y: float) -> float:
    return 0.5 * x**2 + 2.0 * y**2


def terraces(x: float, y: float) -> float:
    # a jump of 0.5 at |x| = 1, 2, 3, ...; flat steps in between
    return 0.5 * x**2 + y**2 + 0.5 * np.floor(abs(x))


def plateau(x: float, y: float) -> float:
    return 1.0 - np.exp(-0.5 * (x**2 + y**2))


def zero_gradient(x: float, y: float) -> float:
    r2 = x**2 + y**2
    if r2 > 1.0:
        loss = 1.0  # flat: the gradient is exactly zero out here
    else:
        loss = r2
    return loss


def exploding(x: float, y: float) -> float:
    r = np.sqrt(x**2 + y**2)
    return np.sqrt(r)  # |grad| = 1 / (4 r^(3/2)): infinite at the minimum


def local_minima(x: float, y: float) -> float:
    return 0.1 * (x**2 + y**2) + 1.0 - np.cos(2.0 * x) * np.cos(2.0 * y)


@dataclass
class Landscape:
    """A test function, where to start, and the step sizes used on it."""

    name: str
    fn: Callable[[float, float], float]
    start: tuple[float, float]
    what: str
    lr: float = 0.2  # gradient descent, momentum and clipped descent
    clip: float = 0.5  # clipped descent: each gradient component to [-clip, clip]
    es_lr: float = 0.05
    es_sigma: float = 0.5
    extent: float = 4.0


LANDSCAPES = [
    Landscape("convex", convex_bowl, (-3.5, 2.5), "convex bowl: gradients point to the minimum",
              es_lr=0.02),
    Landscape("terraces", terraces, (3.5, 2.0), "discontinuous, with one-sided derivatives"),
    Landscape("plateau", plateau, (3.0, 2.5), "vanishing gradient: progress is slow",
              lr=1.0, es_lr=0.2, es_sigma=1.0),
    Landscape("zero_gradient", zero_gradient, (1.8, 1.2), "zero gradient outside the unit disc",
              es_lr=0.5, es_sigma=1.0),
    Landscape("exploding", exploding, (2.5, 2.0), "exploding gradient near the minimum", lr=0.2,
              clip=0.25, es_lr=0.05, es_sigma=0.3),
    Landscape("local_minima", local_minima, (2.6, 2.9), "several local minima",
              es_lr=0.2, es_sigma=1.0, extent=4.5),
]

OPTIMIZERS = ["gd", "momentum", "clipped", "es"]


def make_optimizer(kind: str, land: Landscape) -> optim.Optimizer | optim.GradientFreeOptimizer:
    if kind == "gd":
        return optim.GradientDescent(land.lr)
    if kind == "momentum":
        return optim.Momentum(land.lr, alpha=0.9)
    if kind == "clipped":
        return optim.Clipped(optim.GradientDescent(land.lr), elementwise=land.clip)
    return optim.EvolutionStrategies(lr=land.es_lr, sigma=land.es_sigma, M=50, seed=0)


def descend(land: Landscape, kind: str, steps: int) -> list[tuple[float, float]]:
    """Run one optimizer from ``land.start`` and return the visited points."""
    opt = make_optimizer(kind, land)
    f = land.fn
    grad_f = srcdiff.grad(f, wrt=("x", "y"))  # (x, y) -> (df/dx, df/dy)

    def loss_of(p: tuple[float, float]) -> float:
        return float(f(*p))

    params = land.start
    state = opt.init(params)
    path = [params]
    for _ in range(steps):
        if opt.gradient_free:
            params, state = opt.update(params, loss_of, state)
        else:
            params, state = opt.update(params, grad_f(*params), state)
        path.append(params)
    return path


def grid_values(f: Callable[[float, float], float], extent: float, n: int) -> tuple[np.ndarray, ...]:
    """f on an n x n grid (point by point: the functions use ``if``)."""
    xs = np.linspace(-extent, extent, n)
    X, Y = np.meshgrid(xs, xs)
    Z = np.vectorize(lambda a, b: float(f(a, b)))(X, Y)
    return X, Y, Z


COLORS = {"gd": "tab:red", "momentum": "tab:orange", "clipped": "tab:cyan", "es": "white"}
LABELS = {"gd": "gradient descent", "momentum": "momentum 0.9", "clipped": "clipped descent",
          "es": "evolution strategies"}
# Gradient descent and clipped descent take the same steps wherever the
# gradient is small (plateau, zero gradient, local minima), and there all three
# gradient methods may not move at all.  So the paths are drawn widest first,
# each narrower one on top of the last (a red band, an orange line in it, cyan
# dashes on that), and the end points are concentric rings, largest first:
# every method stays visible where they coincide.
STYLES = {
    "gd": dict(lw=4.0, ls="-", zorder=3),
    "momentum": dict(lw=2.0, ls="-", zorder=4),
    "clipped": dict(lw=1.5, ls=(0, (3, 2)), zorder=5),
    "es": dict(lw=1.0, ls="-", zorder=6),
}
END_RING = {"gd": 17, "momentum": 13, "clipped": 9, "es": 5}  # marker size of the end point


def plot(plt: Any, paths: dict, losses: dict, out: str, n_grid: int) -> None:
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    outline = [patheffects.withStroke(linewidth=2.5, foreground="k")]  # white on yellow needs an edge

    def handles(end_points: bool) -> list:
        hs = [Line2D([], [], color=COLORS[k] if k != "es" or end_points else "k", label=LABELS[k],
                     path_effects=outline if k == "es" and end_points else None, **STYLES[k])
              for k in OPTIMIZERS]
        if end_points:
            hs.append(Line2D([], [], ls="", marker="*", color="k", ms=12, label="start"))
            hs.append(Line2D([], [], ls="", marker="o", mfc="none", mec="k", mew=2, ms=11,
                             label="end (one ring per optimizer)"))
        return hs

    fig, axes = plt.subplots(2, 3, figsize=(16, 10.5))
    for ax, land in zip(axes.ravel(), LANDSCAPES):
        X, Y, Z = grid_values(land.fn, land.extent, n_grid)
        filled = ax.contourf(X, Y, Z, levels=30, cmap="viridis", zorder=0)
        ax.contour(X, Y, Z, levels=15, colors="k", linewidths=0.3, alpha=0.5, zorder=1)
        fig.colorbar(filled, ax=ax, shrink=0.85, pad=0.02, label="loss f(x, y)")
        ax.plot(*land.start, "*", color="k", mec="w", ms=14, zorder=30)
        for kind in OPTIMIZERS:
            p = np.array(paths[land.name, kind])
            style = STYLES[kind]
            ax.plot(p[:, 0], p[:, 1], color=COLORS[kind], solid_capstyle="round",
                    path_effects=outline if kind == "es" else None, **style)
            ax.plot(p[-1, 0], p[-1, 1], "o", mfc="none", mec=COLORS[kind], mew=2.2, ms=END_RING[kind],
                    path_effects=outline, zorder=10 + style["zorder"])
        ax.set_title(f"{land.name}: {land.what}", fontsize=10)
        ax.set_xlim(-land.extent, land.extent)
        ax.set_ylim(-land.extent, land.extent)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_aspect("equal")
    fig.suptitle("Which will be hard to optimize?  Four optimizers from the same start on six landscapes")
    fig.legend(handles=handles(True), loc="lower center", ncol=6, fontsize=9, facecolor="0.75",
               framealpha=1.0, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save(fig, out, "landscapes.png")

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, land in zip(axes.ravel(), LANDSCAPES):
        for kind in OPTIMIZERS:
            ax.plot(losses[land.name, kind], color=COLORS[kind] if kind != "es" else "k", **STYLES[kind])
        ax.set_yscale("log")
        ax.set_title(land.name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (log scale)")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Loss against step")
    fig.legend(handles=handles(False), loc="lower center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save(fig, out, "landscapes_losses.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    steps = 60 if args.quick else 150
    t0 = time.perf_counter()
    paths: dict[tuple[str, str], list] = {}
    losses: dict[tuple[str, str], list[float]] = {}
    final: dict[tuple[str, str], float] = {}
    for land in LANDSCAPES:
        for kind in OPTIMIZERS:
            path = descend(land, kind, steps)
            paths[land.name, kind] = path
            losses[land.name, kind] = [float(land.fn(*p)) for p in path]
            final[land.name, kind] = losses[land.name, kind][-1]

    print(f"loss at the start and after {steps} steps of each optimizer\n")
    print(f"{'landscape':<15}{'start':>9}" + "".join(f"{k:>11}" for k in OPTIMIZERS))
    for land in LANDSCAPES:
        row = "".join(f"{final[land.name, k]:>11.4f}" for k in OPTIMIZERS)
        print(f"{land.name:<15}{float(land.fn(*land.start)):>9.4f}{row}")
    print()

    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, paths, losses, args.out, 81 if args.quick else 201)
    elapsed = time.perf_counter() - t0

    keys = [("convex", "gd"), ("terraces", "gd"), ("plateau", "gd"), ("plateau", "momentum"),
            ("zero_gradient", "gd"), ("zero_gradient", "es"), ("exploding", "gd"),
            ("exploding", "clipped"), ("local_minima", "gd"), ("local_minima", "es")]
    values = {f"{name}_{kind}": final[name, kind] for name, kind in keys}
    summary(steps=steps, **values, seconds=round(elapsed, 1))
    return values


if __name__ == "__main__":
    main()
