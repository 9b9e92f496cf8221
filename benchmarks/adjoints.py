"""Hand-written NumPy adjoints of :mod:`benchmarks.workloads` - the reference.

Each ``<name>_grad`` takes the workload's arguments and returns the gradients
with respect to the workload's ``wrt`` arguments (see :mod:`benchmarks.suite`),
as a tuple in that order.  They are written the way a careful person would
write them by hand: one forward pass that keeps what the backward pass needs,
then the backward pass, with no wasted work.  ``tests/test_benchmarks_quick.py``
checks them against central finite differences.
"""

from __future__ import annotations

import numpy as np


def lecture_grad(W0: np.ndarray, W1: np.ndarray, x0: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    dx3 = x3 - y
    dW1 = np.outer(dx3, x2)
    dx1 = (W1.T @ dx3) * (1.0 - x2 * x2)
    dW0 = np.outer(dx1, x0)
    return dW0, dW1


def mlp_grad(
    W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, X: np.ndarray, Y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    # d/dlogits of -mean_i sum_j Y_ij log p_ij
    dlogits = (p * Y.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    dW2 = h.T @ dlogits
    db2 = dlogits.sum(axis=0)
    da = (dlogits @ W2.T) * (1.0 - h * h)
    dW1 = X.T @ da
    db1 = da.sum(axis=0)
    return dW1, db1, dW2, db2


def rnn_grad(
    W: np.ndarray, U: np.ndarray, b: np.ndarray, h0: np.ndarray, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = xs.shape[0]
    hs = [h0]
    h = h0
    for t in range(steps):
        h = np.tanh(W @ h + U @ xs[t] + b)
        hs.append(h)
    dW = np.zeros_like(W)
    dU = np.zeros_like(U)
    db = np.zeros_like(b)
    dh = h / h.shape[1]
    for t in range(steps - 1, -1, -1):
        h_next = hs[t + 1]
        da = dh * (1.0 - h_next * h_next)
        dW += da @ hs[t].T
        dU += da @ xs[t].T
        db += da.sum(axis=1, keepdims=True)
        dh = W.T @ da
    return dW, dU, db


def scalar_loop_grad(k: float, c: float, x0: float, v0: float, dt: float, n_steps: int) -> tuple[float, float]:
    xs = [0.0] * n_steps
    vs = [0.0] * n_steps
    x = x0
    v = v0
    for i in range(n_steps):
        xs[i] = x
        vs[i] = v
        a = -k * x - c * v
        x += dt * v
        v += dt * a
    gx = 2.0 * x
    gv = 2.0 * v
    gk = 0.0
    gc = 0.0
    for i in range(n_steps - 1, -1, -1):
        # x' = x + dt v ;  v' = v + dt (-k x - c v)
        ga = dt * gv
        gk -= ga * xs[i]
        gc -= ga * vs[i]
        gx, gv = gx - ga * k, gv + dt * gx - ga * c
    return gk, gc


def reduce_large_grad(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(X - X.max(axis=1, keepdims=True))
    dX = e / e.sum(axis=1, keepdims=True)
    dX += w
    dw = X.sum(axis=0)
    return dX, dw
