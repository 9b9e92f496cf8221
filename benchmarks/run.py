"""Command line: ``python -m benchmarks.run [--quick] [--out benchmarks/RESULTS.md]``.

Thread counts are pinned *before* NumPy, JAX or PyTorch is imported, the same
for every system (``--threads``, default 1): the process is confined to that
many CPUs (``sched_setaffinity``; XLA ignores its thread flags), and the
OpenMP/BLAS environment variables, XLA's flags and ``torch.set_num_threads``
are set; when threadpoolctl is installed it also caps (and reports) the BLAS
pools of the running process.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
# set on some machines to work around old OpenBLAS builds; they change which
# kernels a current OpenBLAS runs, so they are reported with the results
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def pin_threads(n: int) -> list[str]:
    """Pin every library's thread pool to ``n`` threads; returns warnings."""
    warnings = []
    late = [m for m in ("numpy", "jax", "torch") if m in sys.modules]
    if late:
        warnings.append(f"{', '.join(late)} already imported: thread environment variables may not apply to them")
    for var in THREAD_VARS:
        os.environ[var] = str(n)
    if n == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        extra = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if extra not in flags:
            os.environ["XLA_FLAGS"] = (flags + " " + extra).strip()
    # XLA (jax 0.10) ignores those flags and runs a dot on every core, so the
    # process is also confined to n CPUs: whatever a library's pools think,
    # nobody gets more than n cores.  Threads created later inherit this.
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if n < len(cpus):
            os.sched_setaffinity(0, set(cpus[:n]))
    return warnings


def cpu_affinity() -> list[int] | None:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=here,
            timeout=10,
        )
        commit = out.stdout.strip()
        if not commit:
            return None
        # srcdiff's own uncommitted changes make the numbers unreproducible from the commit
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "srcdiff"],
            capture_output=True,
            text=True,
            cwd=here,
            timeout=10,
        ).stdout.strip()
        return commit + (" + uncommitted changes in srcdiff/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(threads: int, warnings: list[str]) -> dict[str, Any]:
    import numpy as np

    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            "numpy": np.__version__,
            "srcdiff": _version("srcdiff") or _srcdiff_version(),
            "autograd": _version("autograd"),
            "jax": _version("jax"),
            "jaxlib": _version("jaxlib"),
            "torch": _version("torch"),
        },
        "git_commit": _git_commit(),
        "threads": threads,
        "cpu_affinity": cpu_affinity(),
        "thread_env": {v: os.environ.get(v) for v in THREAD_VARS + ("XLA_FLAGS",)},
        "blas_overrides": {v: os.environ.get(v) for v in BLAS_OVERRIDES},
        "warnings": warnings,
        "dtype": "float64",
    }
    try:
        import threadpoolctl

        info["threadpools"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture")}
            for p in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def _srcdiff_version() -> str | None:
    try:
        import srcdiff

        return getattr(srcdiff, "__version__", None)
    except ImportError:
        return None


def _limit_pools(threads: int) -> Any:
    """Cap the already-loaded BLAS/OpenMP pools (threadpoolctl), if available."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(threads)


def _markdown(results: list[Any], env: dict[str, Any], args: argparse.Namespace) -> str:
    from .harness import markdown_tables
    from .suite import WORKLOADS

    v = env["versions"]
    lines = [
        "# srcdiff benchmarks" + (" (quick correctness check, small sizes)" if args.quick else ""),
        "",
        f"- date: {env['date']}; git commit: {env['git_commit'] or 'uncommitted'}",
        f"- CPU: {env['cpu']} ({env['cores']} cores); {env['platform']}",
        f"- Python {env['python']}; " + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v),
        f"- threads: {env['threads']} for every system: the process is confined to CPU(s) "
        f"{env['cpu_affinity']} (sched_setaffinity), OMP/OPENBLAS/MKL_NUM_THREADS={env['threads']}, "
        f"torch.set_num_threads({env['threads']}), XLA_FLAGS `{env['thread_env'].get('XLA_FLAGS') or ''}`",
        "- BLAS: "
        + (
            "; ".join(
                " ".join(str(p[k]) for k in ("internal_api", "version") if p.get(k))
                + (f" ({p['architecture']})" if p.get("architecture") else "")
                + f", {p['num_threads']} thread(s)"
                for p in env["threadpools"]
            )
            if isinstance(env["threadpools"], list)
            else env["threadpools"]
        ),
        "- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: "
        + ", ".join(f"{k}={val if val is not None else 'unset'}" for k, val in env["blas_overrides"].items()),
        "- everything in float64; each system's gradient is checked against the hand-written adjoint "
        "(itself checked against finite differences) before it is timed",
    ]
    if not args.quick:
        lines += [
            f"- timing: `time.perf_counter`, warm-up, then the median of adaptive repeats "
            f"(~{args.budget:g} s per gradient measurement, at least 3 samples; fast calls are "
            "batched so a sample lasts >= 2 ms); GC enabled",
            "- primal: the system's own forward pass (NumPy for srcdiff/hand-written/autograd, "
            "the jitted function for jit rows, `torch.no_grad()` for PyTorch)",
            "- first call: building the gradient function plus its first call "
            "(srcdiff's source-to-source compile, JAX's trace + XLA compile)",
            "- peak alloc: tracemalloc's peak during one gradient call (NumPy-backed systems only)",
            "- peak stack: the most values srcdiff's adjoint keeps on its stack (`srcdiff.stack_stats`), "
            "with the number of stacks",
        ]
    for w in env["warnings"]:
        lines.append(f"- warning: {w}")
    lines += ["", "Workloads:", ""]
    lines += [f"- `{n}`: {WORKLOADS[n].description}" for n in dict.fromkeys(r.workload for r in results)]
    lines += ["", markdown_tables(results, timed=not args.quick)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="correctness only, small sizes (<1 min)")
    parser.add_argument("--out", type=Path, help="write the Markdown report here (default: stdout only)")
    parser.add_argument("--json", type=Path, help="write the JSON results here (default: results.json next to --out)")
    parser.add_argument("--workloads", nargs="+", metavar="NAME", help="a subset of the workloads")
    parser.add_argument("--systems", nargs="+", metavar="NAME", help="a subset of the systems")
    parser.add_argument("--threads", type=int, default=1, help="threads for every system (default 1)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per gradient measurement")
    parser.add_argument(
        "--skip-slow-jit",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip jax.jit of the 2000-step unrolled scalar_loop (compiles for minutes); default on",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc peak measurement")
    args = parser.parse_args(argv)

    warnings = pin_threads(args.threads)

    from .harness import FAILED, run
    from .suite import FULL, QUICK, WORKLOADS
    from .systems import SYSTEMS

    for name in args.workloads or []:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    for name in args.systems or []:
        if name not in SYSTEMS:
            parser.error(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    limits = _limit_pools(args.threads)
    try:
        results = run(
            args.workloads,
            args.systems,
            size=QUICK if args.quick else FULL,
            budget=args.budget,
            skip_slow_jit=args.skip_slow_jit,
            memory=not args.no_memory,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
        env = environment(args.threads, warnings)
    finally:
        if limits is not None:
            limits.restore_original_limits()

    report = _markdown(results, env, args)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    json_path = args.json or (args.out.parent / "results.json" if args.out else None)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"environment": env, "quick": args.quick, "results": [r.as_dict() for r in results]}
        json_path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    failed = [r for r in results if r.status == FAILED]
    for r in failed:
        print(f"FAILED: {r.workload} / {r.label}: {r.reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
