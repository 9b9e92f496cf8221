"""Programs of the kinds users write, end to end against finite differences."""

import math

import numpy as np
import pytest
from conftest import assert_grad_ok

import srcdiff


def softmax_xent(W1, b1, W2, b2, X, y):
    """Two-layer tanh MLP with a stable softmax cross-entropy, batch rows."""
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    logits = logits - np.max(logits, axis=1, keepdims=True)
    logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    n = X.shape[0]
    return -np.mean(logp[np.arange(n), y])


def test_mlp_softmax_cross_entropy(rng):
    X = rng.normal(size=(6, 4))
    y = np.array([0, 2, 1, 2, 0, 1])
    params = (rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(5, 3)), rng.normal(size=3))
    assert_grad_ok(softmax_xent, *params, X, y, wrt=(0, 1, 2, 3))


def relu_net(W, x):
    z = W @ x
    a = np.maximum(z, 0.0)
    b = np.where(z > 0.5, z * 2.0, a)
    c = np.clip(b, -1.0, 1.5)
    return np.sum(c ** 2) + np.var(a) + np.std(z)


def test_relu_where_clip_var_std(rng):
    assert_grad_ok(relu_net, rng.normal(size=(5, 3)), rng.normal(size=3), wrt=(0, 1))


def shapes_ops(A, v):
    B = A.reshape(3, 4).T
    C = np.concatenate([B, B * 2.0], axis=0)
    D = np.stack([v, v ** 2])
    E = np.transpose(np.transpose(C)) @ D.T
    return np.sum(E * E) + np.sum(A.ravel()[::2]) + np.sum(np.expand_dims(v, 0) * B[:1, :])


def test_shape_operations(rng):
    assert_grad_ok(shapes_ops, rng.normal(size=(4, 3)), rng.normal(size=3), wrt=(0, 1))


def projectile(v0, angle, drag):
    x, y = 0.0, 0.0
    vx = v0 * math.cos(angle)
    vy = v0 * math.sin(angle)
    dt = 0.01
    while y >= 0.0:
        speed = math.sqrt(vx * vx + vy * vy)
        vx = vx - dt * drag * speed * vx
        vy = vy - dt * (9.81 + drag * speed * vy)
        x = x + dt * vx
        y = y + dt * vy
    return x


def test_projectile_with_drag_while_loop():
    assert_grad_ok(projectile, 10.0, 0.8, 0.05, wrt=(0, 1, 2), tol=1e-4)


def logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def attention(Q, K, V):
    scores = Q @ K.T / math.sqrt(Q.shape[1])
    scores = scores - np.max(scores, axis=-1, keepdims=True)
    w = np.exp(scores)
    w = w / np.sum(w, axis=-1, keepdims=True)
    out = w @ V
    return np.sum(out ** 2) + logsumexp(out[0])


def test_attention_block(rng):
    Q, K, V = (rng.normal(size=(3, 4)) for _ in range(3))
    assert_grad_ok(attention, Q, K, V, wrt=(0, 1, 2))


def gelu(z):
    return z * 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def scalar_model(a, b):
    total = 0.0
    for i in range(5):
        t = a * i + b
        total = total + gelu(t) if t > 0 else total - 0.1 * t
    return total


def test_scalar_model_with_helper_and_ternary():
    assert_grad_ok(scalar_model, 0.3, -0.45, wrt=(0, 1))


def annotated(x: np.ndarray, scale: float = 2.0) -> float:
    """Docstrings, annotations, asserts and prints are allowed."""
    assert x.ndim == 1, "x must be a vector"
    y: np.ndarray = np.sin(x) * scale
    if False:
        print(f"debug {y}")
    return float(np.sum(y))


def test_annotations_docstring_assert_print(rng):
    assert_grad_ok(annotated, rng.normal(size=3))


def batch_matmul(A, B):
    return np.sum(np.tanh(A @ B))


def test_batched_matmul(rng):
    assert_grad_ok(batch_matmul, rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2)), wrt=(0, 1))


@pytest.mark.parametrize("n", [1, 3])
def test_autograd_agrees_on_mlp(rng, n):
    autograd = pytest.importorskip("autograd")
    anp = pytest.importorskip("autograd.numpy")

    def ag_loss(W1, b1, W2, b2, X, y):
        h = anp.tanh(anp.dot(X, W1) + b1)
        logits = anp.dot(h, W2) + b2
        logits = logits - anp.max(logits, axis=1, keepdims=True)
        logp = logits - anp.log(anp.sum(anp.exp(logits), axis=1, keepdims=True))
        return -anp.mean(logp[anp.arange(X.shape[0]), y])

    X = rng.normal(size=(4 * n, 4))
    y = rng.integers(0, 3, size=4 * n)
    params = (rng.normal(size=(4, 5)), rng.normal(size=5), rng.normal(size=(5, 3)), rng.normal(size=3))
    ours = srcdiff.grad(softmax_xent, wrt=(0, 1, 2, 3))(*params, X, y)
    theirs = autograd.grad(ag_loss, argnum=(0, 1, 2, 3))(*params, X, y)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
