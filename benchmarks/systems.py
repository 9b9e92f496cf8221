"""The systems being compared, each behind one small adapter.

A system is *unavailable* (reported as n/a) when its package is not installed
or, for srcdiff, while ``srcdiff.grad`` does not exist yet.  Every other
failure - an exception or a wrong gradient - is a failure, never an n/a.

``System.prepare`` does the untimed set-up (converting inputs to the system's
arrays, building the gradient function) and returns zero-argument callables
for one gradient call and one primal call, each of which waits for the result
(``block_until_ready`` for JAX).
"""

from __future__ import annotations

import importlib
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .suite import FULL, Workload


@dataclass
class Prepared:
    grad: Callable[[], Any]
    primal: Callable[[], Any]
    to_numpy: Callable[[Any], list[Any]]
    # seconds spent building the gradient function (e.g. srcdiff.grad(f)); the
    # first call's own time is added by the runner
    build_s: float = 0.0
    # the primal is plain NumPy on the same arrays: measured once per workload
    numpy_primal: bool = False
    # tracemalloc sees this system's buffers (NumPy-backed systems)
    traced_memory: bool = False
    # srcdiff-side statistics about its stack of saved values, after a call
    stack_stats: Callable[[], Any] | None = None
    notes: list[str] = field(default_factory=list)


class System:
    key: str = ""
    label: str = ""

    def unavailable(self) -> str | None:
        """Why this system cannot run here (reported as n/a), or ``None``."""
        return None

    def skip(self, workload: Workload, size: str, skip_slow_jit: bool) -> str | None:
        """Why this system does not run ``workload`` (reported as skipped), or ``None``."""
        return None

    def applies(self, workload: Workload) -> bool:
        """Whether this system has a row for ``workload`` at all."""
        return True

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        raise NotImplementedError


def _missing(*modules: str) -> str | None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            return f"{name} not installed ({exc})"
    return None


def _as_list(result: Any, names: Sequence[str]) -> list[Any]:
    if isinstance(result, Mapping):
        return [result[n] for n in names]
    if isinstance(result, (tuple, list)):
        return list(result)
    if len(names) == 1:
        return [result]
    raise TypeError(f"expected {len(names)} gradients ({', '.join(names)}), got a {type(result).__name__}")


class Hand(System):
    key = "hand"
    label = "hand-written"

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        adjoint = workload.adjoint
        fn = workload.fn
        return Prepared(
            grad=lambda: adjoint(*args),
            primal=lambda: fn(*args),
            to_numpy=lambda r: _as_list(r, workload.wrt),
            numpy_primal=True,
            traced_memory=True,
        )


class Srcdiff(System):
    key = "srcdiff"
    label = "srcdiff"

    def unavailable(self) -> str | None:
        try:
            import srcdiff

            srcdiff.grad  # noqa: B018
        except (ImportError, AttributeError) as exc:
            return f"srcdiff.grad not available yet ({type(exc).__name__}: {exc})"
        return None

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        import srcdiff

        fn = workload.fn
        t0 = time.perf_counter()
        g = srcdiff.grad(fn, wrt=workload.wrt)  # compiles lazily, on the first call
        build_s = time.perf_counter() - t0
        # srcdiff.stack_stats(fn, *args, wrt=...) runs one instrumented gradient
        # call (its own compiled variant, untimed) and reports the stack sizes.
        hook = getattr(srcdiff, "stack_stats", None)
        stats = (lambda: hook(fn, *args, wrt=workload.wrt)) if callable(hook) and workload.loop else None
        return Prepared(
            grad=lambda: g(*args),
            primal=lambda: fn(*args),
            to_numpy=lambda r: _as_list(r, workload.wrt),
            build_s=build_s,
            numpy_primal=True,
            traced_memory=True,
            stack_stats=stats,
        )


class Autograd(System):
    key = "autograd"
    label = "autograd"

    def unavailable(self) -> str | None:
        return _missing("autograd")

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        import autograd
        import autograd.numpy as anp

        # autograd's idiom is the user's NumPy code with autograd.numpy as np:
        # run the workload's own code object with that one global swapped.
        fn = workload.fn
        f = types.FunctionType(fn.__code__, {**fn.__globals__, "np": anp}, fn.__name__)
        idx = workload.wrt_indices
        g = autograd.grad(f, idx if len(idx) > 1 else idx[0])
        return Prepared(
            grad=lambda: g(*args),
            primal=lambda: fn(*args),
            to_numpy=lambda r: _as_list(r, workload.wrt),
            numpy_primal=True,
            traced_memory=True,
        )


class _Jax(System):
    jit = False
    scan = False

    def unavailable(self) -> str | None:
        return _missing("jax", "jaxlib")

    def applies(self, workload: Workload) -> bool:
        # the lax.scan / fori_loop variants exist for the loop workloads only
        return workload.loop or not self.scan

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        import jax
        import jax.numpy as jnp

        from . import jax_workloads

        f = (jax_workloads.SCAN_FNS if self.scan else jax_workloads.FNS)[workload.name]
        jargs = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        idx = workload.wrt_indices
        g = jax.grad(f, argnums=idx if len(idx) > 1 else idx[0])
        p = f
        if self.jit:
            g = jax.jit(g, static_argnums=workload.static_indices)
            p = jax.jit(f, static_argnums=workload.static_indices)
        block = jax.block_until_ready
        return Prepared(
            grad=lambda: block(g(*jargs)),
            primal=lambda: block(p(*jargs)),
            to_numpy=lambda r: [np.asarray(a) for a in _as_list(r, workload.wrt)],
        )


class JaxEager(_Jax):
    key = "jax"
    label = "JAX grad (eager)"


class JaxJit(_Jax):
    key = "jax_jit"
    label = "JAX jit(grad)"
    jit = True

    def skip(self, workload: Workload, size: str, skip_slow_jit: bool) -> str | None:
        if workload.slow_jit and size == FULL and skip_slow_jit:
            return (
                "jit of the unrolled Python loop compiles for minutes; "
                "--no-skip-slow-jit to include it (the lax.scan row is compiled JAX)"
            )
        return None


class JaxJitScan(_Jax):
    key = "jax_jit_scan"
    label = "JAX jit(grad), lax loop"
    jit = True
    scan = True


class Torch(System):
    key = "torch"
    label = "PyTorch eager"

    def unavailable(self) -> str | None:
        return _missing("torch")

    def prepare(self, workload: Workload, args: Sequence[Any]) -> Prepared:
        import torch

        from . import torch_workloads

        f = torch_workloads.FNS[workload.name]
        wrt = set(workload.wrt_indices)
        targs: list[Any] = []
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                a = torch.tensor(a, dtype=torch.float64)
            elif isinstance(a, float) and i in wrt:
                a = torch.tensor(a, dtype=torch.float64)
            if i in wrt:
                a.requires_grad_(True)
            targs.append(a)
        params = [targs[i] for i in workload.wrt_indices]

        def grad() -> Any:
            return torch.autograd.grad(f(*targs), params)

        def primal() -> Any:
            with torch.no_grad():
                return f(*targs)

        return Prepared(
            grad=grad,
            primal=primal,
            to_numpy=lambda r: [t.detach().numpy() for t in r],
        )


SYSTEMS: dict[str, System] = {
    s.key: s for s in [Srcdiff(), Hand(), Autograd(), JaxEager(), JaxJit(), JaxJitScan(), Torch()]
}
