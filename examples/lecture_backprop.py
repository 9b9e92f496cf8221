"""The lecture's worked backpropagation example, run by srcdiff.

A 2-2-1 network: x1 = W0 x0, x2 = tanh(x1), x3 = W1 x2, L = 1/2 (x3 - y)^2,
with W0 = [[1, -3], [0.2, 1]], W1 = [[1, -1]], x0 = [1.0, 0.1], y = 0.5.
We print the forward values, the adjoint srcdiff generates, the gradients,
and the weights after one gradient-descent step with learning rate 0.2.

    python examples/lecture_backprop.py
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import srcdiff  # noqa: E402

W0 = np.array([[1.0, -3.0], [0.2, 1.0]])
W1 = np.array([[1.0, -1.0]])
x0 = np.array([1.0, 0.1])
y = 0.5
LEARNING_RATE = 0.2


def loss(W0, W1, x0, y):
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    L = 0.5 * np.sum((x3 - y) ** 2)
    return L


def run(verbose: bool = True) -> dict:
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    L = loss(W0, W1, x0, y)
    value_and_grad = srcdiff.value_and_grad(loss, wrt=("W0", "W1"))
    value, (dW0, dW1) = value_and_grad(W0, W1, x0, y)
    dx3 = x3 - y  # the lecture's first backward step, for the printout
    new_W0 = W0 - LEARNING_RATE * dW0
    new_W1 = W1 - LEARNING_RATE * dW1
    if verbose:
        np.set_printoptions(precision=4, suppress=True)
        print("forward pass")
        print(f"  x1 = W0 @ x0     = {x1}")
        print(f"  x2 = tanh(x1)    = {x2}")
        print(f"  x3 = W1 @ x2     = {x3}")
        print(f"  L  = (x3 - y)^2/2 = {L:.4f}")
        print()
        print("the adjoint srcdiff generated:")
        print()
        print(srcdiff.source(value_and_grad))
        print("backward pass")
        print(f"  dL/dx3 = {dx3}")
        print(f"  dL/dW1 = {dW1}")
        print(f"  dL/dW0 =\n{dW0}")
        print()
        print(f"one SGD step with learning rate {LEARNING_RATE}")
        print(f"  W0 <- W0 - 0.2 dL/dW0 =\n{np.round(new_W0, 3)}")
        print(f"  W1 <- W1 - 0.2 dL/dW1 = {np.round(new_W1, 3)}")
    return {"L": value, "dx3": float(dx3[0]), "dW0": dW0, "dW1": dW1, "W0": new_W0, "W1": new_W1}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="no plots to make; same as the full run")
    parser.add_argument("--out", default=None, help="unused (no plots)")
    parser.parse_args(argv)
    res = run()
    print(f"summary: L={res['L']:.4f} dL/dx3={res['dx3']:.4f} "
          f"dL/dW1={np.round(res['dW1'].ravel(), 3).tolist()} "
          f"W1_new={np.round(res['W1'].ravel(), 3).tolist()}")


if __name__ == "__main__":
    main()
