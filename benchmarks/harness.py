"""Runs the suite: verify every system's gradient, then time it.

Import-friendly (the quick test calls :func:`gradient_error` and
:func:`reference_error` directly); the command line is :mod:`benchmarks.run`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import check, timing
from .suite import FULL, QUICK, WORKLOADS, Workload
from .systems import SYSTEMS, Prepared, System

OK, NA, SKIPPED, FAILED = "ok", "n/a", "skipped", "FAILED"


@dataclass
class Result:
    workload: str
    system: str
    label: str
    status: str = OK
    reason: str = ""
    grad: timing.Timing | None = None
    primal: timing.Timing | None = None
    build_s: float | None = None
    first_call_s: float | None = None
    grad_over_primal: float | None = None
    vs_hand: float | None = None
    peak_alloc_bytes: int | None = None
    stack: Any = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["grad"] = self.grad.as_dict() if self.grad else None
        d["primal"] = self.primal.as_dict() if self.primal else None
        d["grad_s"] = self.grad.median if self.grad else None
        d["primal_s"] = self.primal.median if self.primal else None
        d["compile_s"] = (
            max(0.0, self.first_call_s - self.grad.median) if self.first_call_s is not None and self.grad else None
        )
        return d


def reference_error(workload: Workload, size: str = QUICK) -> str | None:
    """Check the hand-written adjoint against central finite differences."""
    args = workload.inputs(size)
    grads = workload.adjoint(*args)
    return check.check_against_fd(workload.fn, grads, args, workload.wrt_indices, workload.wrt)


def gradient_error(workload: Workload, system: System | str, size: str = QUICK) -> str | None:
    """Run ``system``'s gradient of ``workload`` once and compare it with the
    hand-written adjoint: ``None`` if it matches, else what is wrong.
    Exceptions from the system propagate."""
    if isinstance(system, str):
        system = SYSTEMS[system]
    args = workload.inputs(size)
    want = workload.adjoint(*args)
    prep = system.prepare(workload, args)
    return check.compare(prep.to_numpy(prep.grad()), want, workload.wrt)


def _fail_reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def _stack_stats(prep: Prepared) -> Any:
    if prep.stack_stats is None:
        return None
    stats = prep.stack_stats()
    if isinstance(stats, (int, float, str)) or stats is None:
        return stats
    return dict(stats)


def run(
    workloads: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    size: str = FULL,
    budget: float = 1.0,
    skip_slow_jit: bool = True,
    memory: bool = True,
    log: Callable[[str], None] = print,
) -> list[Result]:
    """Verify, and for ``size == "full"`` time, each system on each workload."""
    wl = [WORKLOADS[n] for n in (workloads or WORKLOADS)]
    sy = [SYSTEMS[n] for n in (systems or SYSTEMS)]
    timed = size == FULL
    results: list[Result] = []
    for w in wl:
        log(f"== {w.name}: {w.description}")
        err = reference_error(w)
        if err:
            log(f"   the hand-written adjoint disagrees with finite differences: {err}")
        args = w.inputs(size)
        want = w.adjoint(*args)
        numpy_primal: timing.Timing | None = None
        for s in sy:
            if not s.applies(w):
                continue
            r = Result(w.name, s.key, s.label)
            results.append(r)
            if s.key == "hand" and err:
                r.status, r.reason = FAILED, f"disagrees with finite differences: {err}"
                continue
            reason = s.unavailable()
            if reason:
                r.status, r.reason = NA, reason
                log(f"   {s.label:<26} n/a: {reason}")
                continue
            reason = s.skip(w, size, skip_slow_jit)
            if reason:
                r.status, r.reason = SKIPPED, reason
                log(f"   {s.label:<26} skipped: {reason}")
                continue
            try:
                prep = s.prepare(w, args)
                t0 = time.perf_counter()
                out = prep.grad()
                r.first_call_s = prep.build_s + time.perf_counter() - t0
                r.build_s = prep.build_s
                bad = check.compare(prep.to_numpy(out), want, w.wrt)
                del out
                if bad:
                    r.status, r.reason = FAILED, f"wrong gradient: {bad}"
                    log(f"   {s.label:<26} FAILED: {r.reason}")
                    continue
                if not timed:
                    log(f"   {s.label:<26} ok")
                    continue
                r.grad = timing.measure(prep.grad, budget=budget)
                if prep.numpy_primal:
                    if numpy_primal is None:
                        numpy_primal = timing.measure(prep.primal, budget=budget / 2)
                    r.primal = numpy_primal
                else:
                    prep.primal()  # compile (jit) before timing
                    r.primal = timing.measure(prep.primal, budget=budget / 2)
                r.grad_over_primal = r.grad.median / r.primal.median
                if memory and prep.traced_memory:
                    r.peak_alloc_bytes = timing.peak_alloc(prep.grad)
                r.stack = _stack_stats(prep)
                log(
                    f"   {s.label:<26} grad {fmt_time(r.grad.median)}  primal {fmt_time(r.primal.median)}"
                    f"  first call {fmt_time(r.first_call_s)}"
                )
            except Exception as exc:  # a failing system is reported, not fatal
                r.status, r.reason = FAILED, _fail_reason(exc)
                log(f"   {s.label:<26} FAILED: {r.reason}")
                log("".join(traceback.format_exception(exc)).rstrip())
        hand = next((r for r in results if r.workload == w.name and r.system == "hand"), None)
        if hand is not None and hand.grad is not None:
            for r in results:
                if r.workload == w.name and r.grad is not None:
                    r.vs_hand = r.grad.median / hand.grad.median
    return results


def fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def _fmt_ratio(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}×" if x < 100 else f"{x:.0f}×"


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def _fmt_stack(stack: Any, loop: bool) -> str:
    if not loop:
        return ""
    if stack is None:
        return "n/a"
    if isinstance(stack, dict) and "peak" in stack:
        text = f"{stack['peak']}"
        if "stacks" in stack:
            text += f" ({stack['stacks']} stack{'s' if stack['stacks'] != 1 else ''})"
        if stack.get("left"):
            text += f", {stack['left']} left over!"
        return text
    if isinstance(stack, dict):
        return ", ".join(f"{k} {v}" for k, v in stack.items())
    return str(stack)


def _status(r: Result) -> str:
    return r.status if not r.reason else f"{r.status}: {r.reason}"


def markdown_tables(results: Sequence[Result], timed: bool) -> str:
    """The results as Markdown: a summary matrix, then one table per workload."""
    names = list(dict.fromkeys(r.workload for r in results))
    present = {r.system for r in results}
    systems = [k for k in SYSTEMS if k in present]
    labels = {r.system: r.label for r in results}
    by = {(r.workload, r.system): r for r in results}
    out: list[str] = []
    if not timed:
        out.append("| workload | " + " | ".join(labels[s] for s in systems) + " |")
        out.append("|---|" + "---|" * len(systems))
        for n in names:
            cells = [by[n, s].status if (n, s) in by else "" for s in systems]
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        problems: dict[tuple[str, str], list[str]] = {}
        for r in results:
            if r.status in (FAILED, NA, SKIPPED):
                problems.setdefault((r.label, _status(r)), []).append(r.workload)
        if problems:
            out.append("")
            for (label, status), wls in problems.items():
                out.append(f"- {label} on {', '.join(wls)}: {status}")
        return "\n".join(out) + "\n"

    out.append("Median gradient time, and in brackets its ratio to the hand-written adjoint:")
    out.append("")
    out.append("| workload | " + " | ".join(labels[s] for s in systems) + " |")
    out.append("|---|" + "---:|" * len(systems))
    for n in names:
        cells = []
        for s in systems:
            r = by.get((n, s))
            if r is None:
                cells.append("")
            elif r.grad is None:
                cells.append(r.status)
            else:
                cells.append(f"{fmt_time(r.grad.median)} ({_fmt_ratio(r.vs_hand)})")
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    for n in names:
        w = WORKLOADS[n]
        rows = [r for r in results if r.workload == n]
        out += ["", f"### {n}: {w.description}", ""]
        head = "| system | grad (median) | primal | grad/primal | vs hand | first call (incl. compile) | peak alloc |"
        rule = "|---|---:|---:|---:|---:|---:|---:|"
        if w.loop:
            head += " peak stack |"
            rule += "---:|"
        out += [head + " notes |", rule + "---|"]
        for r in rows:
            cells = [
                r.label,
                fmt_time(r.grad.median) if r.grad else r.status,
                fmt_time(r.primal.median) if r.primal else "-",
                _fmt_ratio(r.grad_over_primal),
                _fmt_ratio(r.vs_hand),
                fmt_time(r.first_call_s) if r.grad else "-",
                _fmt_bytes(r.peak_alloc_bytes),
            ]
            if w.loop:
                cells.append(_fmt_stack(r.stack, True) if r.system == "srcdiff" else "-")
            cells.append(r.reason.replace("|", "\\|"))
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
