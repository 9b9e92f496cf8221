"""The workloads written for JAX, as a JAX user would write them.

Same maths, inputs and ``wrt`` as :mod:`benchmarks.workloads`; Python loops
stay Python loops (``jax.jit`` unrolls them).  ``rnn_scan`` and
``scalar_loop_scan`` are the compiled-loop idiom (``lax.scan``/``fori_loop``),
benchmarked as an extra row.  Importing this module turns on float64
(``jax_enable_x64``) for the whole process: every system runs in float64.
"""

import jax
import jax.numpy as jnp
from jax import Array
from jax.scipy.special import logsumexp

jax.config.update("jax_enable_x64", True)

Scalar = Array | float


def lecture(W0: Array, W1: Array, x0: Array, y: float) -> Array:
    x2 = jnp.tanh(W0 @ x0)
    x3 = W1 @ x2
    return jnp.sum(0.5 * (x3 - y) ** 2)


def mlp(W1: Array, b1: Array, W2: Array, b2: Array, X: Array, Y: Array) -> Array:
    h = jnp.tanh(X @ W1 + b1)
    logp = jax.nn.log_softmax(h @ W2 + b2, axis=1)
    return -jnp.mean(jnp.sum(Y * logp, axis=1))


def rnn(W: Array, U: Array, b: Array, h0: Array, xs: Array) -> Array:
    h = h0
    for t in range(xs.shape[0]):
        h = jnp.tanh(W @ h + U @ xs[t] + b)
    return 0.5 * jnp.mean(jnp.sum(h * h, axis=0))


def rnn_scan(W: Array, U: Array, b: Array, h0: Array, xs: Array) -> Array:
    def step(h: Array, x: Array) -> tuple[Array, None]:
        return jnp.tanh(W @ h + U @ x + b), None

    h, _ = jax.lax.scan(step, h0, xs)
    return 0.5 * jnp.mean(jnp.sum(h * h, axis=0))


def scalar_loop(k: Scalar, c: Scalar, x0: float, v0: float, dt: float, n_steps: int) -> Array:
    x = x0
    v = v0
    for _ in range(n_steps):
        a = -k * x - c * v
        x = x + dt * v
        v = v + dt * a
    return x * x + v * v


def scalar_loop_scan(k: Scalar, c: Scalar, x0: float, v0: float, dt: float, n_steps: int) -> Array:
    def step(_: int, state: tuple[Array, Array]) -> tuple[Array, Array]:
        x, v = state
        a = -k * x - c * v
        return x + dt * v, v + dt * a

    x, v = jax.lax.fori_loop(0, n_steps, step, (jnp.asarray(x0, float), jnp.asarray(v0, float)))
    return x * x + v * v


def reduce_large(X: Array, w: Array) -> Array:
    return jnp.sum(logsumexp(X, axis=1)) + jnp.sum(X * w)


FNS = {
    "lecture": lecture,
    "mlp_small": mlp,
    "mlp_large": mlp,
    "rnn": rnn,
    "scalar_loop": scalar_loop,
    "reduce_large": reduce_large,
}
SCAN_FNS = {"rnn": rnn_scan, "scalar_loop": scalar_loop_scan}
