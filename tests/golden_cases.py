"""Small functions whose generated adjoints are pinned as golden files."""

import numpy as np


def lecture(W0, W1, x0, y):
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    L = 0.5 * np.sum((x3 - y) ** 2)
    return L


def rnn(W, U, b, xs, h):
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return np.sum(h ** 2)


def halve(x):
    while x > 1.0:
        x = x / 2.0
    return x * x


def relu_branch(x, w):
    z = w * x
    if z > 0.0:
        y = z
    else:
        y = 0.01 * z
    return y * y


def layer(x, W, b):
    return np.tanh(W @ x + b)


def mlp(W1, b1, W2, b2, x):
    h = layer(x, W1, b1)
    out = layer(h, W2, b2)
    return np.sum(out)


CASES = {
    "lecture": (lecture, ("W0", "W1"),
                lambda: (np.array([[1.0, -3.0], [0.2, 1.0]]), np.array([[1.0, -1.0]]), np.array([1.0, 0.1]), 0.5)),
    "rnn": (rnn, ("W", "U", "b"),
            lambda: (np.eye(3) * 0.5, np.ones((3, 2)), np.zeros(3), np.ones((4, 2)), np.zeros(3))),
    "halve": (halve, "x", lambda: (7.0,)),
    "relu_branch": (relu_branch, ("x", "w"), lambda: (1.5, -0.5)),
    "mlp": (mlp, ("W1", "b1", "W2", "b2"),
            lambda: (np.ones((4, 3)), np.zeros(4), np.ones((2, 4)), np.zeros(2), np.ones(3))),
}
