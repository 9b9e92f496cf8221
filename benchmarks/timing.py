"""Timing and memory measurement.

``measure`` times one call of a zero-argument callable: a warm-up call
estimates its cost, calls are grouped so that each timed sample lasts at
least ``min_sample`` seconds (a fast call is timed over a batch and divided),
and the number of samples is chosen so the whole measurement takes about
``budget`` seconds (never fewer than 3 samples).  The reported figure is the
median per-call time over the samples.  The garbage collector stays on (its
cost is part of an AD system's cost) but runs before each measurement.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    median: float
    min: float
    q1: float
    q3: float
    samples: int
    number: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    fn: Callable[[], Any],
    budget: float = 1.0,
    min_sample: float = 2e-3,
    min_samples: int = 5,
    max_samples: int = 200,
) -> Timing:
    """Median per-call time of ``fn()`` in seconds (``fn`` has already run at least once)."""
    clock = time.perf_counter
    gc.collect()
    t0 = clock()
    fn()  # warm-up, and a first estimate
    est = clock() - t0
    number = 1
    if est < min_sample:
        number = max(1, math.ceil(min_sample / max(est, 1e-7)))
        t0 = clock()
        for _ in range(number):
            fn()
        est = (clock() - t0) / number
        number = max(1, math.ceil(min_sample / max(est, 1e-7)))
    per_sample = est * number
    samples = int(budget / per_sample) if per_sample > 0 else max_samples
    samples = max(3 if per_sample * min_samples > budget else min_samples, min(samples, max_samples))
    times = []
    for _ in range(samples):
        t0 = clock()
        for _ in range(number):
            fn()
        times.append((clock() - t0) / number)
    times.sort()
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return Timing(statistics.median(times), times[0], q[0], q[2], samples, number)


def peak_alloc(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated (as seen by ``tracemalloc``: Python objects and NumPy
    buffers, not JAX or PyTorch buffers) during one call of ``fn()``."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - base
