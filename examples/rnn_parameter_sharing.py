"""Parameter sharing: a recurrent network, and where srcdiff sums the gradients.

A tanh RNN reads a sequence one number at a time and must echo each input
DELAY steps later:

    h_t = tanh(h_{t-1} W + x_t U + b),    prediction_t = h_t V + c,

with the *same* W, U, b, V, c at every time step.  The lecture's rule for
shared parameters is "sum the gradients"; in srcdiff's adjoint that is the
``dW += ...`` inside the backward loop, which runs once per time step.  We
print the generated adjoint with those lines marked, check that the shared
gradient equals the sum of the gradients of an unrolled network that has its
own copy W_t per step, then train the RNN with Adam and plot a test sequence.

    python examples/rnn_parameter_sharing.py   # writes examples/out/rnn_parameter_sharing.png
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff
from srcdiff import optim

HIDDEN = 16
LENGTH = 12  # time steps per sequence
DELAY = 2  # the target at step t is the input at step t - DELAY


def rnn_loss(
    W: np.ndarray, U: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray, X: np.ndarray, Y: np.ndarray
) -> float:
    """Mean squared error over all steps; X and Y are (batch, time, 1)."""
    steps = np.swapaxes(X, 0, 1)  # time first, so the loop runs over time
    targets = np.swapaxes(Y, 0, 1)
    h = np.zeros((X.shape[0], W.shape[0]))
    loss = 0.0
    for x_t, y_t in zip(steps, targets):
        h = np.tanh(h @ W + x_t @ U + b)  # the same W at every step
        prediction = h @ V + c
        loss = loss + np.mean((prediction - y_t) ** 2)
    return loss / X.shape[1]


def unrolled_loss(
    Ws: list[np.ndarray], U: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray, X: np.ndarray,
    Y: np.ndarray,
) -> float:
    """The same network, but step t uses its own recurrent matrix Ws[t]."""
    steps = np.swapaxes(X, 0, 1)
    targets = np.swapaxes(Y, 0, 1)
    h = np.zeros((X.shape[0], U.shape[1]))
    loss = 0.0
    # (indexing instead of zip(Ws, steps, targets): srcdiff cannot yet zip three sequences)
    for t in range(len(Ws)):
        h = np.tanh(h @ Ws[t] + steps[t] @ U + b)
        prediction = h @ V + c
        loss = loss + np.mean((prediction - targets[t]) ** 2)
    return loss / X.shape[1]


def predict(W: np.ndarray, U: np.ndarray, b: np.ndarray, V: np.ndarray, c: np.ndarray, X: np.ndarray) -> np.ndarray:
    steps = np.swapaxes(X, 0, 1)
    h = np.zeros((X.shape[0], W.shape[0]))
    out = []
    for x_t in steps:
        h = np.tanh(h @ W + x_t @ U + b)
        out.append(h @ V + c)
    return np.swapaxes(np.array(out), 0, 1)


def make_sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n random sequences in [-1, 1] and their echoes, both (n, LENGTH, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, LENGTH, 1))
    Y = np.zeros_like(X)
    Y[:, DELAY:] = X[:, :-DELAY]
    return X, Y


def init_params(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), size=(HIDDEN, HIDDEN))
    U = rng.normal(0.0, 1.0, size=(1, HIDDEN))
    V = rng.normal(0.0, 1.0 / np.sqrt(HIDDEN), size=(HIDDEN, 1))
    return W, U, np.zeros(HIDDEN), V, np.zeros(1)


def show_adjoint(grad_fn: srcdiff.api.GradientFunction) -> int:
    """Print the generated adjoint, marking the lines that sum the gradients
    of the shared parameters.  Returns the line number of ``dW += ...``."""
    lines = srcdiff.source(grad_fn).splitlines()
    loop = next(i for i, ln in enumerate(lines) if ln.strip().startswith("for ") and "reversed(" in ln)
    dW_line = -1
    print("the adjoint srcdiff generated for rnn_loss (wrt W, U, b, V, c):\n")
    for i, line in enumerate(lines):
        stripped = line.strip()
        mark = ""
        if i > loop and stripped.startswith(("dW +=", "dU +=", "db +=", "dV +=", "dc +=")):
            mark = "   <-- shared parameter: one term per time step is summed here"
            if stripped.startswith("dW +="):
                dW_line = i + 1
                mark = "   <== dW: the gradient of the shared W, summed over the time steps"
        elif i == loop:
            mark = "   <-- the backward loop: once per time step, last step first"
        print(f"{i + 1:4d}  {line}{mark}")
    print()
    return dW_line


def plot(plt: Any, history: list[float], X: np.ndarray, Y: np.ndarray, P: np.ndarray, out: str) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    ax1.plot(history)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("mean squared error")
    ax1.set_title("training the RNN (Adam, srcdiff gradients)")
    t = np.arange(LENGTH)
    ax2.plot(t, X[0, :, 0], "o-", color="0.6", label="input x_t")
    ax2.plot(t, Y[0, :, 0], "s", ms=9, mfc="none", color="k", label=f"target x_(t-{DELAY})")
    ax2.plot(t, P[0, :, 0], "x-", color="tab:red", label="RNN prediction")
    ax2.set_xlabel("time step t")
    ax2.set_title("a held-out sequence")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out, "rnn_parameter_sharing.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    epochs = 10 if args.quick else 60
    t0 = time.perf_counter()
    X, Y = make_sequences(512, seed=0)
    X_test, Y_test = make_sequences(256, seed=1)
    params = init_params()
    names = ("W", "U", "b", "V", "c")

    loss_and_grads = srcdiff.value_and_grad(rnn_loss, wrt=names)
    _, grads = loss_and_grads(*params, X[:8], Y[:8])
    dW_line = show_adjoint(loss_and_grads)

    # parameter sharing -> sum the gradients: the shared dW equals the sum of
    # the gradients of the per-step copies W_0, ..., W_{T-1} of an unrolled net
    W = params[0]
    dWs = srcdiff.grad(unrolled_loss, wrt="Ws")([W] * LENGTH, *params[1:], X[:8], Y[:8])
    sum_error = float(np.max(np.abs(sum(dWs) - grads[0])))
    print(f"max |dW - sum_t dW_t| = {sum_error:.2e}  (shared gradient vs. unrolled per-step gradients)")
    norms = ", ".join(f"{np.linalg.norm(d):.3f}" for d in dWs)
    print(f"the per-step terms |dW_t|, t = 0..{LENGTH - 1}: {norms}")
    print("(dW_0 is 0: the state before the first step is zero, so W_0 has no effect)")
    errors = srcdiff.check_grad(rnn_loss, *params, X[:4], Y[:4], wrt=("W", "c"))
    grad_check = max(errors.values())
    print(f"gradient check against finite differences: worst relative error {grad_check:.1e}\n")

    result = optim.train(loss_and_grads, params, optim.Adam(0.01), data=(X, Y), batch_size=32,
                         epochs=epochs, unpack_params=True, seed=0)
    test_loss = float(rnn_loss(*result.params, X_test, Y_test))
    baseline = float(np.mean(Y_test**2))  # always predicting 0
    print(f"{epochs} epochs ({result.steps} steps of Adam): training loss {result.history[0]:.4f} -> "
          f"{result.history[-1]:.5f}")
    print(f"held-out mean squared error {test_loss:.5f} (predicting 0 everywhere: {baseline:.4f})\n")

    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, result.history, X_test, Y_test, predict(*result.params, X_test), args.out)
    values = {"epochs": epochs, "dW_line": dW_line, "shared_vs_sum": sum_error, "grad_check": grad_check,
              "initial_loss": result.history[0], "test_loss": test_loss, "baseline_loss": baseline}
    summary(**values, seconds=round(time.perf_counter() - t0, 1))
    return values


if __name__ == "__main__":
    main()
