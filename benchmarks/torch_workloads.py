"""The workloads written for PyTorch (eager, CPU, float64), as a PyTorch user would.

Same maths, inputs and ``wrt`` as :mod:`benchmarks.workloads`.  The MLP uses
``F.cross_entropy`` with the one-hot labels as class probabilities, which is
the same loss (mean over the batch of ``-sum(Y * log_softmax(logits))``).
"""

import torch
import torch.nn.functional as F
from torch import Tensor


def lecture(W0: Tensor, W1: Tensor, x0: Tensor, y: float) -> Tensor:
    x2 = torch.tanh(W0 @ x0)
    x3 = W1 @ x2
    return (0.5 * (x3 - y) ** 2).sum()


def mlp(W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, X: Tensor, Y: Tensor) -> Tensor:
    h = torch.tanh(X @ W1 + b1)
    return F.cross_entropy(h @ W2 + b2, Y)


def rnn(W: Tensor, U: Tensor, b: Tensor, h0: Tensor, xs: Tensor) -> Tensor:
    h = h0
    for t in range(xs.shape[0]):
        h = torch.tanh(W @ h + U @ xs[t] + b)
    return 0.5 * (h * h).sum(dim=0).mean()


def scalar_loop(k: Tensor, c: Tensor, x0: float, v0: float, dt: float, n_steps: int) -> Tensor:
    x: Tensor | float = x0
    v: Tensor | float = v0
    for _ in range(n_steps):
        a = -k * x - c * v
        x = x + dt * v
        v = v + dt * a
    return torch.as_tensor(x * x + v * v)


def reduce_large(X: Tensor, w: Tensor) -> Tensor:
    return torch.logsumexp(X, dim=1).sum() + (X * w).sum()


FNS = {
    "lecture": lecture,
    "mlp_small": mlp,
    "mlp_large": mlp,
    "rnn": rnn,
    "scalar_loop": scalar_loop,
    "reduce_large": reduce_large,
}
