"""The benchmark suite: each workload's function, reference adjoint and inputs."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import adjoints, workloads

# Sizes for the full run and for ``--quick`` (correctness smoke test).
FULL = "full"
QUICK = "quick"


@dataclass(frozen=True)
class Workload:
    """One benchmark problem.

    ``fn`` is the plain NumPy function every system differentiates (peers get
    their own translation, looked up by ``name``); ``adjoint`` is the
    hand-written reference returning the gradients for ``wrt`` in order.
    ``static`` names the arguments that are Python ints controlling the
    program's shape (``jax.jit`` needs them static).
    """

    name: str
    fn: Callable[..., Any]
    adjoint: Callable[..., tuple[Any, ...]]
    wrt: tuple[str, ...]
    make_inputs: Callable[[str], dict[str, Any]]
    description: str
    loop: bool = False
    static: tuple[str, ...] = ()
    # jax.jit of the unrolled Python loop takes minutes at full size.
    slow_jit: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def argnames(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.fn).parameters)

    @property
    def wrt_indices(self) -> tuple[int, ...]:
        names = self.argnames
        return tuple(names.index(n) for n in self.wrt)

    @property
    def static_indices(self) -> tuple[int, ...]:
        names = self.argnames
        return tuple(names.index(n) for n in self.static)

    def inputs(self, size: str = FULL) -> tuple[Any, ...]:
        """The positional arguments for ``fn`` at ``size`` (``"full"`` or ``"quick"``)."""
        kwargs = self.make_inputs(size)
        return tuple(kwargs[n] for n in self.argnames)


def _rng(name: str) -> np.random.Generator:
    # A fixed seed per workload, so every run and every system sees the same data.
    return np.random.default_rng(sum(map(ord, name)))


def _lecture_inputs(size: str) -> dict[str, Any]:
    return {
        "W0": np.array([[1.0, -3.0], [0.2, 1.0]]),
        "W1": np.array([[1.0, -1.0]]),
        "x0": np.array([1.0, 0.1]),
        "y": 0.5,
    }


def _mlp_inputs(batch: int, n_in: int, n_hidden: int, n_out: int, seed: str) -> dict[str, Any]:
    rng = _rng(seed)
    labels = rng.integers(0, n_out, size=batch)
    return {
        "W1": rng.standard_normal((n_in, n_hidden)) / np.sqrt(n_in),
        "b1": 0.1 * rng.standard_normal(n_hidden),
        "W2": rng.standard_normal((n_hidden, n_out)) / np.sqrt(n_hidden),
        "b2": 0.1 * rng.standard_normal(n_out),
        "X": rng.standard_normal((batch, n_in)),
        "Y": np.eye(n_out)[labels],
    }


def _mlp_small_inputs(size: str) -> dict[str, Any]:
    if size == QUICK:
        return _mlp_inputs(4, 5, 6, 3, "mlp_small")
    return _mlp_inputs(32, 64, 64, 10, "mlp_small")


def _mlp_large_inputs(size: str) -> dict[str, Any]:
    if size == QUICK:
        return _mlp_inputs(6, 7, 8, 4, "mlp_large")
    return _mlp_inputs(512, 784, 1024, 10, "mlp_large")


def _rnn_inputs(size: str) -> dict[str, Any]:
    steps, batch, hidden, n_in = (5, 3, 4, 3) if size == QUICK else (50, 16, 64, 32)
    rng = _rng("rnn")
    return {
        # spectral radius ~0.9: the state neither dies nor saturates over 50 steps
        "W": 0.9 * rng.standard_normal((hidden, hidden)) / np.sqrt(hidden),
        "U": rng.standard_normal((hidden, n_in)) / np.sqrt(n_in),
        "b": 0.1 * rng.standard_normal((hidden, 1)),
        "h0": np.zeros((hidden, batch)),
        "xs": rng.standard_normal((steps, n_in, batch)),
    }


def _scalar_loop_inputs(size: str) -> dict[str, Any]:
    return {
        "k": 4.0,
        "c": 0.3,
        "x0": 1.0,
        "v0": 0.0,
        "dt": 0.01,
        "n_steps": 50 if size == QUICK else 2000,
    }


def _reduce_large_inputs(size: str) -> dict[str, Any]:
    rows, cols = (7, 9) if size == QUICK else (2000, 2000)
    rng = _rng("reduce_large")
    return {"X": rng.standard_normal((rows, cols)), "w": rng.standard_normal(cols)}


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "lecture",
            workloads.lecture,
            adjoints.lecture_grad,
            ("W0", "W1"),
            _lecture_inputs,
            "the lecture's 2-2-1 tanh network, one example (overhead-bound)",
        ),
        Workload(
            "mlp_small",
            workloads.mlp,
            adjoints.mlp_grad,
            ("W1", "b1", "W2", "b2"),
            _mlp_small_inputs,
            "tanh MLP + softmax cross-entropy, batch 32, 64-64-10",
        ),
        Workload(
            "mlp_large",
            workloads.mlp,
            adjoints.mlp_grad,
            ("W1", "b1", "W2", "b2"),
            _mlp_large_inputs,
            "tanh MLP + softmax cross-entropy, batch 512, 784-1024-10 (BLAS-bound)",
        ),
        Workload(
            "rnn",
            workloads.rnn,
            adjoints.rnn_grad,
            ("W", "U", "b"),
            _rnn_inputs,
            "tanh RNN, Python for loop, 50 steps, batch 16, hidden 64, input 32",
            loop=True,
        ),
        Workload(
            "scalar_loop",
            workloads.scalar_loop,
            adjoints.scalar_loop_grad,
            ("k", "c"),
            _scalar_loop_inputs,
            "damped oscillator, 2000 explicit Euler steps on Python floats",
            loop=True,
            static=("n_steps",),
            slow_jit=True,
        ),
        Workload(
            "reduce_large",
            workloads.reduce_large,
            adjoints.reduce_large_grad,
            ("X", "w"),
            _reduce_large_inputs,
            "row-wise logsumexp of 2000x2000 + broadcast elementwise term",
        ),
    ]
}
