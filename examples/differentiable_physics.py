"""Differentiable physics: fit a projectile's launch velocity and air drag to
a noisy observed trajectory, by differentiating through the simulation loop.

The simulator is a plain Python loop (semi-implicit Euler, quadratic drag):

    v <- v - dt * (g e_y + drag * |v| v),    p <- p + dt * v

and the loss is the mean squared distance between the simulated and the
observed positions.  srcdiff differentiates the whole loop - 105 time steps -
with respect to the initial velocity (vx, vy) and the drag coefficient.  The
three parameters live on very different scales (m/s versus 1/m), so we use
Adam, whose per-parameter step size copes with that.  We plot the trajectory
of the initial guess and of the fitted parameters against the observations.

    python examples/differentiable_physics.py   # writes examples/out/differentiable_physics.png
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff
from srcdiff import optim

GRAVITY = 9.81  # m/s^2
DT = 0.02  # s
STEPS = 105  # time steps simulated (and observed)
TRUE = (12.0, 14.0, 0.08)  # vx (m/s), vy (m/s), drag (1/m): what the fit should recover
GUESS = (8.0, 8.0, 0.0)
NOISE = 0.1  # m, standard deviation of the observation noise


def trajectory_loss(vx: float, vy: float, drag: float, observed_x: np.ndarray, observed_y: np.ndarray) -> float:
    """Simulate from the origin and compare with the observed positions."""
    x = 0.0
    y = 0.0
    loss = 0.0
    for ox, oy in zip(observed_x, observed_y):
        speed = math.sqrt(vx * vx + vy * vy)
        vx = vx - DT * drag * speed * vx
        vy = vy - DT * (GRAVITY + drag * speed * vy)
        x = x + DT * vx
        y = y + DT * vy
        loss = loss + (x - ox) ** 2 + (y - oy) ** 2
    return loss / len(observed_x)


def simulate(vx: float, vy: float, drag: float, steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """The positions the simulator visits (same update as trajectory_loss)."""
    x = y = 0.0
    xs, ys = [], []
    for _ in range(steps):
        speed = math.sqrt(vx * vx + vy * vy)
        vx = vx - DT * drag * speed * vx
        vy = vy - DT * (GRAVITY + drag * speed * vy)
        x = x + DT * vx
        y = y + DT * vy
        xs.append(x)
        ys.append(y)
    return np.array(xs), np.array(ys)


def observations(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The true trajectory plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    xs, ys = simulate(*TRUE)
    return xs + rng.normal(0.0, NOISE, STEPS), ys + rng.normal(0.0, NOISE, STEPS)


def describe(vx: float, vy: float, drag: float) -> str:
    return f"vx={vx:.3g}, vy={vy:.3g}, drag={drag:.3g}"


def plot(plt: Any, obs: tuple[np.ndarray, np.ndarray], fitted: tuple, history: list[float], out: str) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    ax1.plot(*obs, ".", color="0.5", label="observed (noisy)")
    ax1.plot(*simulate(*GUESS), "--", color="tab:blue", label="before: " + describe(*GUESS))
    ax1.plot(*simulate(*fitted), "-", color="tab:red", lw=2, label="after: " + describe(*fitted))
    ax1.plot(*simulate(*TRUE), ":", color="k", label="truth: " + describe(*TRUE))
    ax1.axhline(0.0, color="k", lw=0.5)
    ax1.set_xlabel("x (m)")
    ax1.set_ylabel("y (m)")
    ax1.set_aspect("equal")
    ax1.set_title("projectile with quadratic drag")
    ax1.legend(fontsize=8, loc="lower left")
    ax2.plot(history)
    ax2.axhline(2 * NOISE**2, color="k", ls=":", label="noise level 2 sigma^2")
    ax2.set_yscale("log")
    ax2.set_xlabel("Adam step")
    ax2.set_ylabel("mean squared distance (m^2)")
    ax2.set_title("gradient through the simulation loop")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "differentiable_physics.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    steps = 400 if args.quick else 1500
    t0 = time.perf_counter()
    obs_x, obs_y = observations()

    errors = srcdiff.check_grad(trajectory_loss, *GUESS[:2], 0.05, obs_x, obs_y, wrt=("vx", "vy", "drag"))
    grad_check = max(errors.values())
    print(f"gradient through {STEPS} simulation steps vs. finite differences: worst relative error "
          f"{grad_check:.1e}")

    loss_and_grads = srcdiff.value_and_grad(trajectory_loss, wrt=("vx", "vy", "drag"))
    result = optim.train(loss_and_grads, GUESS, optim.Adam(0.1), steps=steps, data=(obs_x, obs_y),
                         unpack_params=True)
    vx, vy, drag = result.params
    final = float(trajectory_loss(vx, vy, drag, obs_x, obs_y))
    print(f"{steps} Adam steps: loss {result.history[0]:.3f} -> {final:.4f} m^2 "
          f"(noise level 2 sigma^2 = {2 * NOISE**2:.3f})")
    print(f"{'':>10}{'guess':>10}{'fitted':>10}{'truth':>10}")
    for name, g, f, t in zip(("vx", "vy", "drag"), GUESS, result.params, TRUE):
        print(f"{name:>10}{g:>10.3f}{f:>10.4f}{t:>10.3f}")
    print()

    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, (obs_x, obs_y), result.params, result.history, args.out)
    values = {"steps": steps, "initial_loss": result.history[0], "final_loss": final, "vx": vx, "vy": vy,
              "drag": drag, "grad_check": grad_check}
    summary(**values, seconds=round(time.perf_counter() - t0, 1))
    return values


if __name__ == "__main__":
    main()
