"""The benchmark workloads, each a plain NumPy function as a user would write it.

These are the functions srcdiff differentiates (it reads their source), and
autograd runs the very same code with ``autograd.numpy`` in place of ``np``.
They use only arithmetic, ``@``, ``np.tanh/exp/log/max/sum/mean``, indexing,
``for`` over ``range`` and Python floats.  Keep them that way: helpers, library
shortcuts (``scipy.special.logsumexp``) and in-place array updates would
change what is being measured.  They carry no type annotations on purpose:
this is the code as a NumPy user writes it.

Conventions (inputs are made by :mod:`benchmarks.suite`):

* ``lecture``: column vectors, ``W0 (2, 2)``, ``W1 (1, 2)``, ``x0 (2,)``.
* ``mlp``: row-major batches, ``X (batch, n_in)``, ``W1 (n_in, n_hidden)``,
  ``b1 (n_hidden,)``, ``W2 (n_hidden, n_out)``, ``b2 (n_out,)`` and one-hot
  labels ``Y (batch, n_out)``; loss = mean cross-entropy.
* ``rnn``: column form ``h (hidden, batch)``, ``W (hidden, hidden)``,
  ``U (hidden, n_in)``, ``b (hidden, 1)``, ``xs (steps, n_in, batch)``;
  loss = 0.5 * mean over the batch of ``|h_T|^2``.
* ``scalar_loop``: explicit Euler for ``x'' = -k x - c x'`` with Python floats.
* ``reduce_large``: row-wise logsumexp plus a broadcast elementwise term.
"""

import numpy as np


def lecture(W0, W1, x0, y):
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    return np.sum(0.5 * (x3 - y) ** 2)


def mlp(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    z = logits - np.max(logits, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * logp, axis=1))


def rnn(W, U, b, h0, xs):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t] + b)
    return 0.5 * np.mean(np.sum(h * h, axis=0))


def scalar_loop(k, c, x0, v0, dt, n_steps):
    x = x0
    v = v0
    for _ in range(n_steps):
        a = -k * x - c * v
        x += dt * v
        v += dt * a
    return x * x + v * v


def reduce_large(X, w):
    m = np.max(X, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(X - m), axis=1, keepdims=True))
    return np.sum(lse) + np.sum(X * w)
