"""Optimizing inputs instead of parameters: what image does the digit MLP
find most "3"-like?

We train the MLP of mlp_digits.py, then freeze its weights and run gradient
*ascent* on the input image, the lecture's unit visualization:

    x <- x + eta * d/dx [ y_j(x) - lambda * ||x||^2 ]

where y_j is the score (logit) of digit j and the L2 term keeps the image from
growing without bound.  srcdiff differentiates the same ``mlp`` function as
in training, this time with respect to its input.  Pixels are kept in the
valid range [0, 1] after each step.  We save the ten images next to the
average training image of each digit.

    python examples/optimize_inputs.py       # writes examples/out/optimize_inputs.png

Needs scikit-learn (for the data): pip install -e '.[examples]'.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary
from mlp_digits import mlp, train_mlp

import srcdiff

LAMBDA = 0.5  # strength of the L2 regularizer
STEP = 0.05  # ascent step size eta


def class_score(
    x: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, digit: int, lam: float
) -> float:
    """The network's score for ``digit`` on image x, minus lam * ||x||^2."""
    logits = mlp(W1, b1, W2, b2, x)
    return logits[digit] - lam * np.sum(x**2)


def visualize(params: tuple, digit: int, steps: int, lam: float = LAMBDA) -> tuple[np.ndarray, list[float]]:
    """Gradient ascent on the image from a blank (zero) start.
    Returns the image and the objective at every step."""
    d_score = srcdiff.value_and_grad(class_score, wrt="x")
    x = np.zeros(64)
    history = []
    for _ in range(steps):
        value, dx = d_score(x, *params, digit, lam)
        history.append(float(value))
        x = np.clip(x + STEP * dx, 0.0, 1.0)
    return x, history


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def plot(plt: Any, images: np.ndarray, means: np.ndarray, probs: np.ndarray, out: str) -> None:
    fig, axes = plt.subplots(2, 10, figsize=(13, 3.4))
    for d in range(10):
        axes[0, d].imshow(images[d].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[0, d].set_title(f"{d}: p={probs[d]:.2f}", fontsize=9)
        axes[1, d].imshow(means[d].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[0, d].axis("off")
        axes[1, d].axis("off")
    axes[0, 0].text(-1.5, 3.5, "optimized\ninput", ha="right", va="center", fontsize=9)
    axes[1, 0].text(-1.5, 3.5, "average\ntraining\nimage", ha="right", va="center", fontsize=9)
    fig.suptitle(f"argmax_x  score_j(x) - {LAMBDA} ||x||^2  by gradient ascent through the MLP "
                 "(p: the network's softmax probability of j)", fontsize=10)
    fig.tight_layout()
    save(fig, out, "optimize_inputs.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    epochs, steps = (4, 60) if args.quick else (30, 300)
    t0 = time.perf_counter()
    params, _, data = train_mlp(epochs)
    test_acc = float(np.mean(np.argmax(mlp(*params, data.X_test), axis=1) == data.y_test))
    print(f"trained the digit MLP for {epochs} epochs: held-out accuracy {test_acc:.2%}")
    print(f"gradient ascent on the input, {steps} steps of size {STEP}, lambda = {LAMBDA}\n")

    images = np.zeros((10, 64))
    probs = np.zeros(10)
    gains = np.zeros(10)
    hits = 0
    print("digit  objective start -> end   predicted   p(digit)")
    for d in range(10):
        x, history = visualize(params, d, steps)
        images[d] = x
        logits = mlp(*params, x)
        probs[d] = softmax(logits)[d]
        gains[d] = history[-1] - history[0]
        predicted = int(np.argmax(logits))
        hits += predicted == d
        print(f"{d:5d}  {history[0]:10.3f} -> {history[-1]:7.3f}   {predicted:9d}   {probs[d]:8.3f}")
    print()

    labels = np.argmax(data.Y_train, axis=1)
    means = np.array([data.X_train[labels == d].mean(axis=0) for d in range(10)])
    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, images, means, probs, args.out)
    values = {"epochs": epochs, "test_accuracy": test_acc, "steps": steps, "classified_as_target": hits,
              "mean_probability": float(np.mean(probs)), "min_gain": float(np.min(gains))}
    summary(**values, seconds=round(time.perf_counter() - t0, 1))
    return values


if __name__ == "__main__":
    main()
