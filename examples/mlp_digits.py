"""A two-layer MLP on handwritten digits, trained with srcdiff gradients.

scikit-learn's bundled 8x8 digits (1797 images, no download) are split into a
training and a held-out set.  The network is x -> relu(x W1 + b1) -> W2 + b2
-> softmax, the loss the mean cross-entropy; every gradient comes from
``srcdiff.value_and_grad`` and the training loop is ``srcdiff.optim.train``
with minibatch SGD + momentum.  We print the held-out accuracy and plot the
loss curve and some test digits with their predicted labels.

    python examples/mlp_digits.py            # writes examples/out/mlp_digits_*.png

Needs scikit-learn (for the data): pip install -e '.[examples]'.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
from _common import parse_args, pyplot, save, summary

import srcdiff
from srcdiff import optim

HIDDEN = 64
LEARNING_RATE = 0.05
MOMENTUM = 0.9
BATCH_SIZE = 32


# ---------------------------------------------------------------------------
# The model and its loss: plain NumPy, differentiated by srcdiff.
# ---------------------------------------------------------------------------


def mlp(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class scores (logits) for a batch of images X, one image per row."""
    h = np.maximum(X @ W1 + b1, 0.0)
    return h @ W2 + b2


def cross_entropy(
    W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, X: np.ndarray, Y: np.ndarray
) -> float:
    """Mean cross-entropy of the softmax of the logits; Y is one-hot."""
    logits = mlp(W1, b1, W2, b2, X)
    logits = logits - np.max(logits, axis=1, keepdims=True)  # for stability
    log_probs = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * log_probs, axis=1))


# ---------------------------------------------------------------------------


class Data(NamedTuple):
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_data(seed: int = 0) -> Data:
    """The digits, pixels scaled to [0, 1], split 75% / 25% (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    return Data(X_train, np.eye(10)[y_train], X_test, y_test)


def init_params(seed: int = 0, hidden: int = HIDDEN) -> tuple[np.ndarray, ...]:
    """He-initialized weights and zero biases: (W1, b1, W2, b2)."""
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0.0, np.sqrt(2.0 / 64), size=(64, hidden))
    W2 = rng.normal(0.0, np.sqrt(2.0 / hidden), size=(hidden, 10))
    return W1, np.zeros(hidden), W2, np.zeros(10)


def accuracy(params: tuple[np.ndarray, ...], X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(mlp(*params, X), axis=1) == y))


def train_mlp(epochs: int, data: Data | None = None, seed: int = 0) -> tuple[tuple, optim.TrainResult, Data]:
    """Train the MLP for ``epochs`` passes over the training set.
    Returns ``(params, train_result, data)``."""
    data = load_data(seed) if data is None else data
    loss_and_grads = srcdiff.value_and_grad(cross_entropy, wrt=("W1", "b1", "W2", "b2"))
    result = optim.train(
        loss_and_grads,
        init_params(seed),
        optim.Momentum(LEARNING_RATE, alpha=MOMENTUM),
        data=(data.X_train, data.Y_train),
        batch_size=BATCH_SIZE,
        epochs=epochs,
        unpack_params=True,  # params (W1, b1, W2, b2) -> cross_entropy(W1, b1, W2, b2, X, Y)
        seed=seed,
    )
    return result.params, result, data


def plot(plt: Any, result: optim.TrainResult, params: tuple, data: Data, epochs: int, out: str) -> None:
    history = np.array(result.history)
    per_epoch = len(history) // epochs
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history, lw=0.5, alpha=0.5, label="minibatch loss")
    epoch_means = history[: per_epoch * epochs].reshape(epochs, per_epoch).mean(axis=1)
    ax.plot((np.arange(epochs) + 1) * per_epoch, epoch_means, "o-", color="tab:red", label="epoch mean")
    ax.set_yscale("log")
    ax.set_xlabel(f"step (minibatch of {BATCH_SIZE})")
    ax.set_ylabel("cross-entropy")
    ax.set_title("MLP on digits: SGD + momentum, srcdiff gradients")
    ax.legend()
    fig.tight_layout()
    save(fig, out, "mlp_digits_loss.png")

    predicted = np.argmax(mlp(*params, data.X_test), axis=1)
    wrong = predicted != data.y_test
    order = np.concatenate([np.flatnonzero(wrong), np.flatnonzero(~wrong)])[:24]
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.4))
    for ax, i in zip(axes.ravel(), order):
        ax.imshow(data.X_test[i].reshape(8, 8), cmap="gray_r")
        title = f"{predicted[i]}" if not wrong[i] else f"{predicted[i]} (is {data.y_test[i]})"
        ax.set_title(title, color="red" if wrong[i] else "k", fontsize=11)
        ax.axis("off")
    fig.suptitle("held-out digits with the predicted label: the mistakes (red) first")
    fig.tight_layout()
    save(fig, out, "mlp_digits_predictions.png")


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(__doc__, argv)
    epochs = 4 if args.quick else 30
    t0 = time.perf_counter()
    data = load_data()
    # srcdiff's gradient against central finite differences, on a few images
    errors = srcdiff.check_grad(cross_entropy, *init_params(), data.X_train[:20], data.Y_train[:20],
                                wrt=("b1", "b2"))
    grad_check = max(errors.values())
    t_train = time.perf_counter()
    params, result, data = train_mlp(epochs, data)
    elapsed = time.perf_counter() - t_train
    train_acc = accuracy(params, data.X_train, np.argmax(data.Y_train, axis=1))
    test_acc = accuracy(params, data.X_test, data.y_test)
    final_loss = float(cross_entropy(*params, data.X_train, data.Y_train))
    print(f"{len(data.X_train)} training and {len(data.X_test)} held-out images, hidden layer of {HIDDEN}")
    print(f"{epochs} epochs, {result.steps} minibatch steps in {elapsed:.1f} s")
    print(f"training loss {result.history[0]:.3f} -> {final_loss:.4f}")
    print(f"accuracy: training {train_acc:.2%}, held-out {test_acc:.2%}")
    print(f"gradient check (b1, b2 against finite differences): worst relative error {grad_check:.1e}")
    print()
    plt = pyplot(args.quick)
    if plt is not None:
        plot(plt, result, params, data, epochs, args.out)
    values = {"epochs": epochs, "steps": result.steps, "initial_loss": result.history[0],
              "final_loss": final_loss, "train_accuracy": train_acc, "test_accuracy": test_acc,
              "grad_check": grad_check}
    summary(**values, seconds=round(time.perf_counter() - t0, 1))
    return values


if __name__ == "__main__":
    main()
