"""Optimizers for the gradients srcdiff computes.

Everything here works on plain values and plain callables; nothing needs the
compiler.  A gradient function is anything that returns a gradient mirroring
its parameter (``srcdiff.grad(f)``, a hand-written gradient, ...), and a
"value and gradient" function is anything returning ``(loss, gradient)``
(``srcdiff.value_and_grad(f)``).

Parameters may be any *tree*: a float, a NumPy array, or a tuple / list / dict
whose entries are trees.  A gradient has exactly the structure of its
parameter (float -> float, array -> array of the same shape, container -> the
same container).  Nothing in this module mutates its arguments: every update
returns new parameters and a new optimizer state.

The pieces:

* tree helpers: :func:`tree_map`, :func:`tree_leaves`, :func:`tree_add`,
  :func:`tree_sub`, :func:`tree_scale`, :func:`tree_zeros_like`,
  :func:`tree_global_norm`, :func:`tree_ravel`;
* one-step functions: :func:`sgd_step`, :func:`momentum_step`,
  :func:`nesterov_step`, :func:`clip_elementwise`, :func:`clip_global_norm`,
  :func:`es_gradient`, :func:`evolution_strategies`;
* optimizer objects with ``init(params) -> state`` and
  ``update(params, grads, state) -> (new_params, new_state)``:
  :class:`GradientDescent`, :class:`SGD`, :class:`Momentum`,
  :class:`Nesterov`, :class:`Adam`, the wrapper :class:`Clipped`, and the
  gradient-free :class:`EvolutionStrategies`;
* a training loop, :func:`train`, with seeded minibatching
  (:func:`minibatch_indices`), a loss history, an optional progress bar and a
  stop on non-finite loss (:class:`NonFiniteLossError`).
"""

from __future__ import annotations

import abc
import math
import numbers
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, TypeAlias

import numpy as np

from .errors import SrcdiffError

__all__ = [
    # trees
    "Tree",
    "tree_map",
    "tree_leaves",
    "tree_add",
    "tree_sub",
    "tree_scale",
    "tree_zeros_like",
    "tree_global_norm",
    "tree_ravel",
    # one-step functions
    "sgd_step",
    "momentum_step",
    "nesterov_step",
    "clip_elementwise",
    "clip_global_norm",
    "es_gradient",
    "evolution_strategies",
    # optimizer objects
    "Optimizer",
    "GradientFreeOptimizer",
    "StepState",
    "MomentumState",
    "AdamState",
    "ESState",
    "GradientDescent",
    "SGD",
    "Momentum",
    "Nesterov",
    "Adam",
    "Clipped",
    "EvolutionStrategies",
    # training
    "NonFiniteLossError",
    "TrainResult",
    "minibatch_indices",
    "chunk_minibatch_indices",
    "train",
]

Tree: TypeAlias = Any
"""A parameter or gradient: a float, an ndarray, or a tuple/list/dict of trees."""

RNGLike: TypeAlias = "np.random.Generator | int | None"


# ---------------------------------------------------------------------------
# Trees
# ---------------------------------------------------------------------------

_CONTAINERS = (tuple, list, dict)


def _describe(x: Any) -> str:
    if isinstance(x, dict):
        return f"a dict with keys {list(x)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of length {len(x)}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape}"
    return f"a {type(x).__name__}"


def _mismatch(path: str, expected: Any, got: Any) -> SrcdiffError:
    where = f" at {path}" if path else ""
    detail = f"expected {_describe(expected)}, got {_describe(got)}"
    if isinstance(expected, dict) and isinstance(got, dict):
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        detail = "; ".join(
            part
            for part in (
                f"missing keys {missing}" if missing else "",
                f"unexpected keys {extra}" if extra else "",
            )
            if part
        )
    return SrcdiffError(
        f"tree structures differ{where}: {detail}",
        hint="a gradient (and an optimizer state) must mirror its parameters exactly: "
        "float -> float, array -> array of the same shape, tuple/list/dict -> the same container",
    )


def _rebuild_seq(template: tuple | list, items: list) -> tuple | list:
    if isinstance(template, list):
        return items
    if type(template) is tuple:
        return tuple(items)
    if hasattr(template, "_fields"):  # a namedtuple
        return type(template)(*items)
    try:
        return type(template)(items)
    except TypeError:
        return tuple(items)


def _rebuild_dict(template: dict, items: dict) -> dict:
    if type(template) is dict:
        return items
    try:
        return type(template)(items)
    except TypeError:
        return items


def _as_kind(value: Any, template: Any) -> Any:
    """Give a leaf result the kind of its template leaf: arrays stay arrays
    (NumPy turns 0-d results into scalars), real scalars become ``float``."""
    if isinstance(template, np.ndarray):
        if isinstance(value, (np.generic, numbers.Number)) and not isinstance(value, bool):
            return np.asarray(value)
        return value
    if isinstance(template, (numbers.Real, np.generic)) and not isinstance(template, (bool, np.bool_)):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
            return float(value)
        if isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool):
            return float(value)
    return value


def _map(fn: Callable[..., Any], tree: Any, rest: Sequence[Any], path: str) -> Any:
    if isinstance(tree, dict):
        for other in rest:
            if not isinstance(other, dict) or other.keys() != tree.keys():
                raise _mismatch(path, tree, other)
        out = {k: _map(fn, v, [o[k] for o in rest], f"{path}[{k!r}]") for k, v in tree.items()}
        return _rebuild_dict(tree, out)
    if isinstance(tree, (tuple, list)):
        for other in rest:
            if not isinstance(other, (tuple, list)) or len(other) != len(tree):
                raise _mismatch(path, tree, other)
        items = [_map(fn, v, [o[i] for o in rest], f"{path}[{i}]") for i, v in enumerate(tree)]
        return _rebuild_seq(tree, items)
    for other in rest:
        if isinstance(other, _CONTAINERS):
            raise _mismatch(path, tree, other)
    return _as_kind(fn(tree, *rest), tree)


def tree_map(fn: Callable[..., Any], tree: Tree, *rest: Tree) -> Tree:
    """Apply ``fn`` leaf by leaf: ``fn(leaf, *matching_leaves_of_rest)``.

    The result has the structure of ``tree`` (tuples stay tuples - namedtuples
    included -, lists stay lists, dicts keep their key order).  Each result
    leaf takes the kind of ``tree``'s leaf: where ``tree`` has an array the
    result is an array (even 0-d), where it has a number the result is a
    Python ``float``.  ``rest`` must have the same structure as ``tree``
    (a tuple and a list of the same length match); otherwise a
    :class:`~srcdiff.SrcdiffError` names the first place they differ.
    """
    return _map(fn, tree, rest, "")


def tree_leaves(tree: Tree) -> list[Any]:
    """The leaves of ``tree`` in traversal order (sequence order, dict
    insertion order) - the order :func:`tree_map` and :func:`tree_ravel` use."""
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in tree_leaves(v)]
    if isinstance(tree, (tuple, list)):
        return [leaf for v in tree for leaf in tree_leaves(v)]
    return [tree]


def tree_add(a: Tree, b: Tree) -> Tree:
    """Leafwise ``a + b`` (a new tree)."""
    return tree_map(lambda x, y: x + y, a, b)


def tree_sub(a: Tree, b: Tree) -> Tree:
    """Leafwise ``a - b`` (a new tree)."""
    return tree_map(lambda x, y: x - y, a, b)


def tree_scale(tree: Tree, c: float) -> Tree:
    """Leafwise ``c * tree`` (a new tree)."""
    return tree_map(lambda x: c * x, tree)


def tree_zeros_like(tree: Tree) -> Tree:
    """Zeros with the structure of ``tree``: ``0.0`` for numbers, a float array
    of the same shape (and the same dtype if it is floating) for arrays."""

    def zero(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind in "fc" else float)
        return 0.0

    return tree_map(zero, tree)


def tree_global_norm(tree: Tree) -> float:
    """The Euclidean norm of all leaves taken together,
    $\\|g\\| = \\sqrt{\\sum_{\\text{leaves}} \\sum_j g_j^2}$.

    Computed with scaling so that huge entries (``1e200``) do not overflow."""
    leaves = [np.abs(np.asarray(x, dtype=float)) for x in tree_leaves(tree)]
    if not leaves:
        return 0.0
    biggest = max((float(np.max(x)) if x.size else 0.0) for x in leaves)
    if biggest == 0.0 or not math.isfinite(biggest):
        return biggest
    total = sum(float(np.sum(np.square(x / biggest))) for x in leaves)
    return biggest * math.sqrt(total)


def tree_ravel(tree: Tree) -> tuple[np.ndarray, Callable[[np.ndarray], Tree]]:
    """Flatten ``tree`` into one float64 vector; return it and the inverse.

    ``unravel(vector)`` rebuilds a tree of the original structure (numbers
    become ``float``, arrays regain their shape).  This is the bridge to
    vector-only optimizers such as ``scipy.optimize.minimize``::

        x0, unravel = tree_ravel(params)
        res = minimize(lambda x: f(unravel(x)), x0,
                       jac=lambda x: tree_ravel(g(unravel(x)))[0], method="L-BFGS-B")
        best = unravel(res.x)
    """
    leaves = tree_leaves(tree)
    if leaves:
        vector = np.concatenate([np.ravel(np.asarray(x, dtype=float)) for x in leaves])
    else:
        vector = np.zeros(0)
    total = int(vector.size)

    def unravel(v: np.ndarray) -> Tree:
        v = np.asarray(v, dtype=float)
        if v.shape != (total,):
            raise SrcdiffError(f"unravel expects a vector of shape ({total},), got shape {v.shape}")
        offset = 0

        def piece(template: Any) -> Any:
            nonlocal offset
            n = int(np.size(template))
            chunk = v[offset : offset + n]
            offset += n
            if isinstance(template, np.ndarray):
                return chunk.reshape(template.shape).copy()
            return float(chunk[0])

        return tree_map(piece, tree)

    return vector, unravel


def _check_like(params: Any, other: Any, what: str, path: str = "") -> None:
    """Raise unless ``other`` mirrors ``params`` (structure and leaf shapes)."""
    if isinstance(params, dict):
        if not isinstance(other, dict) or other.keys() != params.keys():
            raise _mismatch(path, params, other)
        for k in params:
            _check_like(params[k], other[k], what, f"{path}[{k!r}]")
        return
    if isinstance(params, (tuple, list)):
        if not isinstance(other, (tuple, list)) or len(other) != len(params):
            raise _mismatch(path, params, other)
        for i, (p, o) in enumerate(zip(params, other, strict=True)):
            _check_like(p, o, what, f"{path}[{i}]")
        return
    if isinstance(other, _CONTAINERS):
        raise _mismatch(path, params, other)
    if np.shape(params) != np.shape(other):
        where = f" at {path}" if path else ""
        raise SrcdiffError(
            f"the {what} has shape {np.shape(other)}{where}, but the parameter has shape {np.shape(params)}",
            hint=f"the {what} must have exactly the shape of its parameter",
        )


# ---------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise SrcdiffError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SrcdiffError(f"{name} must be finite, got {value!r}")
    return value


def _positive(name: str, value: Any) -> float:
    v = _real(name, value)
    if v <= 0:
        raise SrcdiffError(f"{name} must be > 0, got {value!r}")
    return v


def _unit_interval(name: str, value: Any) -> float:
    v = _real(name, value)
    if not 0.0 <= v < 1.0:
        raise SrcdiffError(f"{name} must be in [0, 1), got {value!r}")
    return v


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise SrcdiffError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise SrcdiffError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _as_rng(rng: Any) -> Any:
    """A ``np.random.Generator`` from a Generator, a seed or ``None``.

    Any object with a ``standard_normal(size, dtype=...)`` method is used as is."""
    if rng is None or isinstance(rng, (numbers.Integral, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    if hasattr(rng, "standard_normal"):
        return rng
    raise SrcdiffError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


# ---------------------------------------------------------------------------
# One-step functions
# ---------------------------------------------------------------------------


def sgd_step(params: Tree, grads: Tree, lr: float) -> Tree:
    """One step of gradient descent: $\\theta \\leftarrow \\theta - \\eta\\, g$.

    With ``grads`` the full-data gradient this is gradient descent; with the
    gradient of a minibatch it is stochastic gradient descent.  Returns new
    parameters; ``params`` is not modified.
    """
    lr = _positive("lr", lr)
    _check_like(params, grads, "gradient")
    return tree_map(lambda p, g: p - lr * g, params, grads)


def momentum_step(params: Tree, grads: Tree, m: Tree, lr: float, alpha: float = 0.9) -> tuple[Tree, Tree]:
    """One heavy-ball momentum step, as in the lecture:

    $$\\theta^{t+1} = \\theta^t - \\eta \\nabla f(\\theta^t) - \\alpha m^t,
    \\qquad m^{t+1} = \\eta \\nabla f(\\theta^t) + \\alpha m^t = \\theta^t - \\theta^{t+1}$$

    ``m`` is the previous step taken (zeros at the start, see
    :func:`tree_zeros_like`).  Returns ``(new_params, new_m)``.
    """
    lr = _positive("lr", lr)
    alpha = _unit_interval("alpha", alpha)
    _check_like(params, grads, "gradient")
    _check_like(params, m, "momentum")
    new_params = tree_map(lambda p, g, v: p - lr * g - alpha * v, params, grads, m)
    new_m = tree_map(lambda p, g, v: lr * g + alpha * v, params, grads, m)
    return new_params, new_m


def nesterov_step(params: Tree, grads: Tree, m: Tree, lr: float, alpha: float = 0.9) -> tuple[Tree, Tree]:
    """One Nesterov momentum step, with the gradient taken at ``params``:

    $$m^{t+1} = \\alpha m^t + \\eta \\nabla f(\\theta^t), \\qquad
    \\theta^{t+1} = \\theta^t - \\eta \\nabla f(\\theta^t) - \\alpha m^{t+1}$$

    This is Nesterov's accelerated gradient written for the look-ahead point
    (the parameters one holds are the point where the next gradient is
    evaluated), so it needs no extra gradient evaluation.  It differs from
    :func:`momentum_step` only in using the *new* momentum ``m^{t+1}``.
    Returns ``(new_params, new_m)``.
    """
    lr = _positive("lr", lr)
    alpha = _unit_interval("alpha", alpha)
    _check_like(params, grads, "gradient")
    _check_like(params, m, "momentum")
    new_m = tree_map(lambda p, g, v: alpha * v + lr * g, params, grads, m)
    new_params = tree_map(lambda p, g, v: p - lr * g - alpha * v, params, grads, new_m)
    return new_params, new_m


def clip_elementwise(grads: Tree, m: float) -> Tree:
    """Clip every component of the gradient to $[-m, m]$, as in the lecture:

    $$\\operatorname{clip}(v)_i = \\min(\\max(v_i, -m), m)$$

    Returns a new tree of the same structure.
    """
    m = _positive("m", m)
    return tree_map(lambda g: np.clip(g, -m, m), grads)


def clip_global_norm(grads: Tree, max_norm: float) -> Tree:
    """Rescale the whole gradient so that its global norm is at most ``max_norm``:

    $$g \\leftarrow g \\cdot \\min\\left(1, \\frac{c}{\\|g\\|}\\right),
    \\qquad \\|g\\| = \\text{tree\\_global\\_norm}(g)$$

    The direction is kept.  If the norm is not finite (an ``inf`` or ``nan``
    component) the gradient is returned unchanged, so the problem stays
    visible.  Returns a new tree.
    """
    max_norm = _positive("max_norm", max_norm)
    norm = tree_global_norm(grads)
    scale = max_norm / norm if math.isfinite(norm) and norm > max_norm else 1.0
    return tree_map(lambda g: g * scale, grads)


def _normal_like(rng: Any, leaf: Any) -> Any:
    floating = isinstance(leaf, np.ndarray) and leaf.dtype in (np.float32, np.float64)
    dtype = leaf.dtype if floating else np.float64
    return rng.standard_normal(np.shape(leaf), dtype=dtype)


def _scalar(value: Any, what: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "biuf":
        shape = getattr(value, "shape", None)
        got = f"an array of shape {shape}" if shape is not None else f"a {type(value).__name__}"
        raise SrcdiffError(
            f"{what} must return a scalar loss, but it returned {got}",
            hint="reduce it first, for example with np.sum(...) or np.mean(...)",
        )
    return float(arr.reshape(()))


def es_gradient(J: Callable[[Tree], Any], theta: Tree, sigma: float, M: int, rng: RNGLike = None) -> Tree:
    """The evolution-strategies estimate of the gradient of ``J`` at ``theta``:

    $$\\epsilon_i \\sim \\mathcal{N}(0, I), \\quad s_i = J(\\theta + \\sigma\\epsilon_i), \\quad
    \\hat g = \\frac{1}{\\sigma M} \\sum_{i=1}^M s_i \\epsilon_i$$

    Only values of ``J`` are used, so ``J`` may be non-differentiable.  The
    noise is drawn sample by sample, leaf by leaf in :func:`tree_leaves` order,
    from ``rng`` (a ``np.random.Generator``, an int seed, or ``None`` for fresh
    entropy).  ``J`` is called ``M`` times.
    """
    sigma = _positive("sigma", sigma)
    M = _count("M", M, 1)
    rng = _as_rng(rng)
    total = tree_zeros_like(theta)
    for _ in range(M):
        eps = tree_map(lambda leaf: _normal_like(rng, leaf), theta)
        s = _scalar(J(tree_map(lambda p, e: p + sigma * e, theta, eps)), "J")
        total = tree_map(lambda t, e: t + s * e, total, eps)
    return tree_scale(total, 1.0 / (sigma * M))


def evolution_strategies(
    J: Callable[[Tree], Any], theta: Tree, sigma: float, lr: float, M: int, rng: RNGLike = None
) -> Tree:
    """One evolution-strategies step, exactly as in the lecture:

    $$\\epsilon_i \\sim \\mathcal{N}(0, I), \\quad s_i = J(\\theta + \\sigma\\epsilon_i), \\quad
    \\theta^{k+1} = \\theta^k - \\eta \\frac{1}{\\sigma M} \\sum_{i=1}^M s_i \\epsilon_i$$

    A gradient-free baseline: ``J`` only has to return a number.  Returns the
    new ``theta``; see :func:`es_gradient` for the noise and ``rng``.
    """
    lr = _positive("lr", lr)
    estimate = es_gradient(J, theta, sigma, M, rng)
    return tree_map(lambda p, g: p - lr * g, theta, estimate)


# ---------------------------------------------------------------------------
# Optimizer objects
# ---------------------------------------------------------------------------


class StepState(NamedTuple):
    """State of a stateless optimizer: just the number of updates done."""

    step: int


class MomentumState(NamedTuple):
    """State of :class:`Momentum` and :class:`Nesterov`."""

    step: int
    m: Tree


class AdamState(NamedTuple):
    """State of :class:`Adam`: first and second moment estimates."""

    step: int
    m: Tree
    v: Tree


class ESState(NamedTuple):
    """State of :class:`EvolutionStrategies`: the step count and the seed
    entropy; the noise of step ``k`` is a pure function of both."""

    step: int
    entropy: int


class Optimizer(abc.ABC):
    """A gradient-based optimizer.

    Use it functionally::

        state = opt.init(params)
        for _ in range(steps):
            params, state = opt.update(params, grad_fn(params), state)

    ``update`` never modifies ``params``, ``grads`` or ``state``.
    """

    gradient_free: ClassVar[bool] = False

    @abc.abstractmethod
    def init(self, params: Tree) -> Any:
        """The initial state for ``params``."""

    @abc.abstractmethod
    def update(self, params: Tree, grads: Tree, state: Any) -> tuple[Tree, Any]:
        """One step: return ``(new_params, new_state)``."""


@dataclass(frozen=True)
class GradientDescent(Optimizer):
    """Gradient descent: $\\theta^{k+1} = \\theta^k - \\eta \\nabla_\\theta J(\\theta^k)$.

    Args:
        lr: the learning rate $\\eta > 0$.
    """

    lr: float

    def __post_init__(self) -> None:
        _positive("lr", self.lr)

    def init(self, params: Tree) -> StepState:
        return StepState(0)

    def update(self, params: Tree, grads: Tree, state: StepState) -> tuple[Tree, StepState]:
        return sgd_step(params, grads, self.lr), StepState(state.step + 1)


@dataclass(frozen=True)
class SGD(GradientDescent):
    """Stochastic (minibatch) gradient descent: $\\theta \\leftarrow \\theta - \\eta\\, g_B$.

    The update is the one of :class:`GradientDescent`; what makes it
    stochastic is that $g_B$ is the gradient of the loss on a random
    minibatch $B$ (``train(..., batch_size=...)`` does the sampling).
    """


@dataclass(frozen=True)
class Momentum(Optimizer):
    """Heavy-ball momentum, the lecture's update:

    $$\\theta^{t+1} = \\theta^t - \\eta \\nabla f(\\theta^t) - \\alpha m^t,
    \\qquad m^{t+1} = \\eta \\nabla f(\\theta^t) + \\alpha m^t,\\quad m^0 = 0$$

    so $m^{t+1} = \\theta^t - \\theta^{t+1}$ is the step just taken.

    Args:
        lr: the learning rate $\\eta > 0$.
        alpha: the momentum strength, $0 \\le \\alpha < 1$.
    """

    lr: float
    alpha: float = 0.9

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _unit_interval("alpha", self.alpha)

    def init(self, params: Tree) -> MomentumState:
        return MomentumState(0, tree_zeros_like(params))

    def update(self, params: Tree, grads: Tree, state: MomentumState) -> tuple[Tree, MomentumState]:
        new_params, m = momentum_step(params, grads, state.m, self.lr, self.alpha)
        return new_params, MomentumState(state.step + 1, m)


@dataclass(frozen=True)
class Nesterov(Optimizer):
    """Nesterov momentum (gradient at the parameters held, i.e. the look-ahead point):

    $$m^{t+1} = \\alpha m^t + \\eta \\nabla f(\\theta^t), \\qquad
    \\theta^{t+1} = \\theta^t - \\eta \\nabla f(\\theta^t) - \\alpha m^{t+1},\\quad m^0 = 0$$

    Args:
        lr: the learning rate $\\eta > 0$.
        alpha: the momentum strength, $0 \\le \\alpha < 1$.
    """

    lr: float
    alpha: float = 0.9

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _unit_interval("alpha", self.alpha)

    def init(self, params: Tree) -> MomentumState:
        return MomentumState(0, tree_zeros_like(params))

    def update(self, params: Tree, grads: Tree, state: MomentumState) -> tuple[Tree, MomentumState]:
        new_params, m = nesterov_step(params, grads, state.m, self.lr, self.alpha)
        return new_params, MomentumState(state.step + 1, m)


@dataclass(frozen=True)
class Adam(Optimizer):
    """Adam, with bias-corrected moment estimates (step $t = 1, 2, \\dots$):

    $$m_t = \\beta_1 m_{t-1} + (1-\\beta_1) g_t, \\qquad
    v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g_t^2,$$
    $$\\hat m_t = \\frac{m_t}{1-\\beta_1^t}, \\qquad \\hat v_t = \\frac{v_t}{1-\\beta_2^t}, \\qquad
    \\theta_t = \\theta_{t-1} - \\eta \\frac{\\hat m_t}{\\sqrt{\\hat v_t} + \\varepsilon}$$

    with $m_0 = v_0 = 0$ and all operations elementwise.

    Args:
        lr: the learning rate $\\eta > 0$.
        beta1: decay of the first moment, in $[0, 1)$.
        beta2: decay of the second moment, in $[0, 1)$.
        eps: $\\varepsilon \\ge 0$, guards the division.
    """

    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _unit_interval("beta1", self.beta1)
        _unit_interval("beta2", self.beta2)
        if _real("eps", self.eps) < 0:
            raise SrcdiffError(f"eps must be >= 0, got {self.eps!r}")

    def init(self, params: Tree) -> AdamState:
        zeros = tree_zeros_like(params)
        return AdamState(0, zeros, zeros)

    def update(self, params: Tree, grads: Tree, state: AdamState) -> tuple[Tree, AdamState]:
        _check_like(params, grads, "gradient")
        lr, b1, b2, eps = self.lr, self.beta1, self.beta2, self.eps
        t = state.step + 1
        m = tree_map(lambda p, g, m0: b1 * m0 + (1.0 - b1) * g, params, grads, state.m)
        v = tree_map(lambda p, g, v0: b2 * v0 + (1.0 - b2) * (g * g), params, grads, state.v)
        c1 = 1.0 - b1**t
        c2 = 1.0 - b2**t
        new_params = tree_map(lambda p, mt, vt: p - lr * (mt / c1) / (np.sqrt(vt / c2) + eps), params, m, v)
        return new_params, AdamState(t, m, v)


@dataclass(frozen=True)
class Clipped(Optimizer):
    """Clip the gradient, then let ``inner`` take its step.

    ``elementwise=m`` applies :func:`clip_elementwise` (each component to
    $[-m, m]$); ``global_norm=c`` applies :func:`clip_global_norm`.  With
    both, elementwise clipping comes first.  The lecture's clipped gradient
    descent is ``Clipped(GradientDescent(lr), elementwise=m)``:

    $$\\theta^{k+1} = \\theta^k - \\eta\\,[\\operatorname{clip}(v_1, -m, m), \\dots]^T,
    \\qquad v = \\nabla_\\theta J(\\theta^k)$$

    The state is the inner optimizer's state.
    """

    inner: Optimizer
    elementwise: float | None = None
    global_norm: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Optimizer):
            raise SrcdiffError(f"Clipped wraps a gradient-based Optimizer, got {self.inner!r}")
        if self.elementwise is None and self.global_norm is None:
            raise SrcdiffError("Clipped needs elementwise=m, global_norm=c, or both")
        if self.elementwise is not None:
            _positive("elementwise", self.elementwise)
        if self.global_norm is not None:
            _positive("global_norm", self.global_norm)

    def init(self, params: Tree) -> Any:
        return self.inner.init(params)

    def update(self, params: Tree, grads: Tree, state: Any) -> tuple[Tree, Any]:
        if self.elementwise is not None:
            grads = clip_elementwise(grads, self.elementwise)
        if self.global_norm is not None:
            grads = clip_global_norm(grads, self.global_norm)
        return self.inner.update(params, grads, state)


class GradientFreeOptimizer(abc.ABC):
    """An optimizer that needs only loss values.

    ``update(params, loss_fn, state)`` takes the loss function
    ``loss_fn(params) -> float`` where a gradient-based optimizer takes the
    gradient.
    """

    gradient_free: ClassVar[bool] = True

    @abc.abstractmethod
    def init(self, params: Tree) -> Any:
        """The initial state for ``params``."""

    @abc.abstractmethod
    def update(self, params: Tree, loss_fn: Callable[[Tree], Any], state: Any) -> tuple[Tree, Any]:
        """One step: return ``(new_params, new_state)``."""


@dataclass(frozen=True)
class EvolutionStrategies(GradientFreeOptimizer):
    """Evolution strategies as an optimizer (see :func:`evolution_strategies`):

    $$\\epsilon_i \\sim \\mathcal{N}(0, I), \\quad s_i = J(\\theta + \\sigma\\epsilon_i), \\quad
    \\theta^{k+1} = \\theta^k - \\eta \\frac{1}{\\sigma M} \\sum_{i=1}^M s_i \\epsilon_i$$

    The noise of step ``k`` is drawn from a generator derived from ``seed``
    and ``k`` only, so a run is reproducible and ``update`` is a pure function.

    Args:
        lr: the learning rate $\\eta > 0$.
        sigma: the perturbation scale $\\sigma > 0$.
        M: the number of perturbations per step ($J$ is called $M$ times).
        seed: an int for reproducible noise, or ``None`` for fresh entropy.
    """

    lr: float
    sigma: float = 0.1
    M: int = 50
    seed: int | None = None

    def __post_init__(self) -> None:
        _positive("lr", self.lr)
        _positive("sigma", self.sigma)
        _count("M", self.M, 1)

    def init(self, params: Tree) -> ESState:
        return ESState(0, int(np.random.SeedSequence(self.seed).entropy))

    def update(self, params: Tree, loss_fn: Callable[[Tree], Any], state: ESState) -> tuple[Tree, ESState]:
        rng = np.random.default_rng(np.random.SeedSequence(state.entropy, spawn_key=(state.step,)))
        new_params = evolution_strategies(loss_fn, params, self.sigma, self.lr, self.M, rng)
        return new_params, ESState(state.step + 1, state.entropy)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: the final parameters (after a non-finite stop: the last
            parameters whose loss was finite, or the initial ones).
        state: the optimizer state that goes with ``params``.
        history: ``history[k]`` is the loss computed at step ``k``, at the
            parameters before update ``k`` (on the minibatch of step ``k``).
            After a non-finite stop its last entry is the non-finite value.
        steps: the number of updates that produced ``params``.
        stopped_early: True if training stopped on a non-finite loss.
        message: why it stopped early, else ``None``.
    """

    params: Tree
    state: Any
    history: list[float] = field(default_factory=list)
    steps: int = 0
    stopped_early: bool = False
    message: str | None = None


class NonFiniteLossError(SrcdiffError, FloatingPointError):
    """Training met a loss that is ``nan`` or infinite.

    ``error.result`` is the :class:`TrainResult` so far (the last parameters
    with a finite loss, and the history ending in the bad value).
    """

    def __init__(self, message: str, *, result: TrainResult, hint: str | None = None) -> None:
        self.result = result
        super().__init__(message, hint=hint)


def minibatch_indices(n: int, batch_size: int, seed: RNGLike = None) -> Iterator[np.ndarray]:
    """Endless minibatch indices: each epoch is a fresh permutation of
    ``range(n)`` (from ``np.random.default_rng(seed)``) cut into consecutive
    batches of ``batch_size``; the last batch of an epoch may be smaller.  So
    every example is visited exactly once per epoch, and the sequence depends
    only on ``seed``.
    """
    n = _count("n", n, 1)
    batch_size = min(_count("batch_size", batch_size, 1), n)
    rng = _as_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]


def _prepare_data(data: Any) -> tuple[tuple[np.ndarray, ...], int | None]:
    from .arrays import is_foreign

    if data is None:
        return (), None
    arrays = (data,) if isinstance(data, np.ndarray) or is_foreign(data) else data
    if not isinstance(arrays, (tuple, list)) or not arrays:
        raise SrcdiffError(
            f"data must be an array or a non-empty tuple/list of arrays, got {type(data).__name__}"
        )
    # Dask (CuPy, ...) arrays stay what they are: never loaded here
    arrays = tuple(a if is_foreign(a) else np.asarray(a) for a in arrays)
    lengths = {a.shape[0] if a.ndim else None for a in arrays}
    if None in lengths or len(lengths) != 1:
        raise SrcdiffError(
            f"the data arrays must share their first dimension, got shapes {[a.shape for a in arrays]}",
            hint="pass data=(X, y) with X.shape[0] == y.shape[0] == number of examples",
        )
    n = lengths.pop()
    if n == 0:
        raise SrcdiffError("data has no examples")
    return arrays, n


def _batches(
    arrays: tuple[np.ndarray, ...], n: int | None, batch_size: int | None, seed: RNGLike
) -> Iterator[tuple]:
    if batch_size is None:
        while True:
            yield arrays
    assert n is not None
    blocks = _row_blocks(arrays)
    indices = minibatch_indices(n, batch_size, seed) if blocks is None else \
        chunk_minibatch_indices(blocks, batch_size, seed)
    for idx in indices:
        yield tuple(a[idx] for a in arrays)


def _row_blocks(arrays: tuple) -> list[tuple[int, int]] | None:
    """The row chunks (start, stop) of lazy (Dask) data, or None for in-memory data."""
    from .arrays import is_lazy

    lazy = [a for a in arrays if is_lazy(a)]
    if not lazy:
        return None
    chunks = getattr(lazy[0], "chunks", None)
    if not chunks:
        return None
    rows = chunks[0]
    if any(getattr(a, "chunks", (rows,))[0] != rows for a in lazy[1:]):
        raise SrcdiffError(
            "the Dask data arrays are chunked differently along their first axis: "
            f"{[getattr(a, 'chunks', ((),))[0][:4] for a in lazy]}",
            hint="rechunk them alike, e.g. y = y.rechunk((X.chunks[0],)), so a minibatch reads one chunk of each",
        )
    stops = np.cumsum(rows).tolist()
    return list(zip([0] + stops[:-1], stops))


def chunk_minibatch_indices(
    blocks: Sequence[tuple[int, int]], batch_size: int, seed: RNGLike = None
) -> Iterator[np.ndarray]:
    """Endless minibatch indices that never cross a chunk boundary, for data
    too large to load whole (Dask arrays chunked along the examples).

    ``blocks`` are the chunks' ``(start, stop)`` rows.  Each epoch visits the
    chunks in a fresh random order; each chunk's rows, in a fresh random
    order, are cut into batches of ``batch_size`` (a chunk's last batch may
    be smaller).  So every example is visited exactly once per epoch, each
    batch reads one chunk, and the sequence depends only on ``seed``.
    """
    batch_size = _count("batch_size", batch_size, 1)
    rng = _as_rng(seed)
    blocks = [(int(a), int(b)) for a, b in blocks if b > a]
    if not blocks:
        raise SrcdiffError("data has no examples")
    while True:
        for k in rng.permutation(len(blocks)):
            start, stop = blocks[k]
            order = start + rng.permutation(stop - start)
            for i in range(0, stop - start, batch_size):
                yield order[i : i + batch_size]


class _Progress:
    """tqdm if it is installed, else a line on stderr every tenth of the run."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.bar = None
        self.enabled = enabled and total > 0
        if not self.enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self.every = max(1, total // 10)
        else:
            self.bar = tqdm(total=total, desc="train", leave=True)

    def update(self, loss: float) -> None:
        if not self.enabled:
            return
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self.bar.update(1)
        elif self.done % self.every == 0 or self.done == self.total or not math.isfinite(loss):
            print(f"step {self.done}/{self.total}  loss {loss:.6g}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(
    fn: Callable[..., Any],
    params: Tree,
    optimizer: Optimizer | GradientFreeOptimizer,
    *,
    loss: Callable[..., Any] | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    data: np.ndarray | Sequence[np.ndarray] | None = None,
    batch_size: int | None = None,
    seed: RNGLike = 0,
    unpack_params: bool = False,
    progress: bool = False,
    on_nonfinite: Literal["raise", "stop"] = "raise",
) -> TrainResult:
    """Run ``optimizer`` on ``params`` and record the loss.

    What ``fn`` is depends on the optimizer:

    * gradient-based, ``loss=None``: ``fn(params, *batch) -> (loss, grads)``,
      e.g. ``srcdiff.value_and_grad(f)`` (one pass for both);
    * gradient-based, ``loss=f``: ``fn(params, *batch) -> grads`` is a plain
      gradient function (e.g. ``srcdiff.grad(f)``), and ``loss(params, *batch)``
      gives the loss (two passes);
    * gradient-free (:class:`EvolutionStrategies`): ``fn(params, *batch)`` is
      the loss itself.

    With ``unpack_params=True`` the parameters (a tuple) are spread into
    separate leading arguments, ``fn(*params, *batch)``, which is what
    ``srcdiff.value_and_grad(f, wrt=(0, 1))`` expects for ``f(w, b, X, y)``;
    the gradient is then the tuple of the gradients.

    Data and batches: ``data`` is an array or a tuple of arrays sharing their
    first dimension (the examples); ``*batch`` above is those arrays, indexed
    by the batch.  With ``batch_size=None`` every step sees all the data
    (gradient descent).  With ``batch_size=b`` each epoch visits every example
    exactly once, in an order drawn from ``np.random.default_rng(seed)`` (see
    :func:`minibatch_indices`); the same ``seed`` gives the same batches.
    Without ``data`` the functions are called with the parameters only.
    Dask arrays (docs/dask.md) are never loaded here: full-batch steps pass
    them whole (each gradient call evaluates one graph over the data), and
    minibatches are drawn within chunks (:func:`chunk_minibatch_indices`:
    each step reads one chunk; an epoch has a batch count per chunk).

    Give exactly one of ``steps`` (number of updates) or ``epochs`` (passes
    over the data; ``ceil(n / batch_size)`` steps each, or one step each
    without minibatches).

    Non-finite loss: training stops at the first step whose loss is ``nan``
    or infinite.  With ``on_nonfinite="raise"`` (the default) a
    :class:`NonFiniteLossError` is raised, whose ``.result`` holds the
    :class:`TrainResult` so far; with ``"stop"`` that result is returned,
    with ``stopped_early=True`` and a ``message``.  Either way
    ``result.params`` are the last parameters whose loss was finite.

    ``progress=True`` shows a tqdm bar if tqdm is installed, otherwise prints
    ``step k/N  loss x`` to stderr ten times over the run.

    Returns:
        a :class:`TrainResult` with the final params, optimizer state and loss
        history (one value per step, for plotting).
    """
    gradient_free = bool(getattr(optimizer, "gradient_free", False))
    if not isinstance(optimizer, (Optimizer, GradientFreeOptimizer)):
        if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
            raise SrcdiffError(
                f"optimizer must have init(params) and update(params, grads, state), got {optimizer!r}"
            )
    if gradient_free and loss is not None:
        raise SrcdiffError(
            "a gradient-free optimizer takes the loss as fn; do not also pass loss=",
            hint="train(loss_fn, params, EvolutionStrategies(...))",
        )
    if on_nonfinite not in ("raise", "stop"):
        raise SrcdiffError(f'on_nonfinite must be "raise" or "stop", got {on_nonfinite!r}')
    if unpack_params and not isinstance(params, (tuple, list)):
        raise SrcdiffError("unpack_params=True needs params to be a tuple (or list) of parameters")

    arrays, n = _prepare_data(data)
    if batch_size is not None:
        if n is None:
            raise SrcdiffError("batch_size needs data= to draw the batches from")
        batch_size = min(_count("batch_size", batch_size, 1), n)
    if (steps is None) == (epochs is None):
        raise SrcdiffError("give exactly one of steps= or epochs=")
    if steps is not None:
        total = _count("steps", steps, 0)
    else:
        blocks = _row_blocks(arrays) if batch_size is not None else None
        if batch_size is None:
            per_epoch = 1
        elif blocks is not None:  # batches within chunks (Dask data)
            per_epoch = sum(-(-(b - a) // batch_size) for a, b in blocks)
        else:
            per_epoch = -(-n // batch_size)  # type: ignore[operator]
        total = _count("epochs", epochs, 0) * per_epoch

    def call(f: Callable[..., Any], p: Tree, batch: tuple) -> Any:
        return f(*p, *batch) if unpack_params else f(p, *batch)

    batches = _batches(arrays, n, batch_size, seed)
    state = optimizer.init(params)
    current = params
    good_params, good_state, good_steps = params, state, 0
    history: list[float] = []
    bar = _Progress(total, progress)
    try:
        for k in range(total):
            batch = next(batches)
            # ``direction`` is what optimizer.update takes second: the gradient,
            # or (gradient-free) the loss as a function of the parameters
            if gradient_free:

                def direction(p: Tree, batch: tuple = batch) -> Any:
                    return call(fn, p, batch)

                value = _scalar(direction(current), "the loss function")
            elif loss is None:
                out = call(fn, current, batch)
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise SrcdiffError(
                        f"fn must return (loss, grads), got {_describe(out)}",
                        hint="build fn with srcdiff.value_and_grad(f), or pass a plain gradient "
                        "function together with loss=f",
                    )
                value, direction = out
                value = _scalar(value, "fn (as the first item of its (loss, grads) result)")
            else:
                direction = call(fn, current, batch)
                value = _scalar(call(loss, current, batch), "loss")
            history.append(value)
            bar.update(value)
            if not math.isfinite(value):
                where = "at the initial parameters" if k == 0 else f"after {k} update(s)"
                message = (
                    f"training stopped: the loss is {value} at step {k} ({where}); "
                    f"result.params are the last parameters with a finite loss ({good_steps} update(s))"
                )
                result = TrainResult(good_params, good_state, history, good_steps, True, message)
                if on_nonfinite == "raise":
                    raise NonFiniteLossError(
                        message,
                        result=result,
                        hint="try a smaller learning rate, gradient clipping (Clipped(...)), "
                        "or check the loss and the data for nan/inf",
                    )
                return result
            good_params, good_state, good_steps = current, state, k
            current, state = optimizer.update(current, direction, state)
    finally:
        bar.close()
    return TrainResult(current, state, history, total)
