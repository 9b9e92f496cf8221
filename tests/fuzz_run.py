"""Run the program generators outside pytest, in several processes.

    python tests/fuzz_run.py --programs 20000 --seed 1
    python tests/fuzz_run.py --programs 2000 --generators mixed --minimize

Program ``i`` of generator ``g`` is drawn from ``random.Random(f"{seed}-{g}-{i}")``,
so a run is reproducible and a single program can be redrawn with
``--only g:i``.  Prints, per generator, how many programs were checked,
skipped (finite differences unreliable: only the value and autograd were
compared), invalid (the program itself fails: not a test), refused (a
located SrcdiffError), and the failures: value, gradient and autograd
mismatches and internal errors.  Each failure is written to ``--out`` as a
standalone script with its arguments (and, with ``--minimize``, the first
few of each class are reduced by deleting lines).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import signal
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fuzz_programs as fp  # noqa: E402

KINDS = ["ok", "skipped", "invalid", "refusal", "value", "gradient", "autograd", "internal"]


def _stem(key, gen, i):
    return f"{key.split(':')[0]}_{zlib.crc32(key.encode()) % 10**6:06d}_{gen}_{i}"


class Timeout(BaseException):
    """Not an Exception, so that check_case does not take it for srcdiff's."""


def _alarm(signum, frame):
    raise Timeout()


def run_one(job):
    gen, seed, i, timeout = job
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    case = None
    try:
        case = fp.random_case(gen, f"{seed}-{gen}-{i}")
        outcome = fp.check_case(case)
    except Timeout:
        if case is None:
            return gen, i, fp.Outcome("invalid", "timeout while drawing"), None
        outcome = fp.Outcome("internal", "timeout", error=f"Timeout: the check took longer than {timeout} s")
    except Exception as exc:  # a bug of the harness itself: report it, keep going
        outcome = fp.Outcome("internal", repr(exc), error=f"harness {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    keep = outcome.failed or outcome.kind == "refusal"
    return gen, i, outcome, case if keep else None


def minimize_one(job):
    case, outcome, note, timeout = job
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    best = []
    try:
        fp.minimize(case, outcome, best=best)
    except Timeout:
        pass  # keep the smallest found so far
    finally:
        signal.alarm(0)
    return fp.reproducer(*best[0], note) if best else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=1000, help="programs per generator")
    ap.add_argument("--seed", default="1")
    ap.add_argument("--generators", default=",".join(fp.GENERATORS), help="comma-separated: "
                    + ", ".join(fp.GENERATORS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="/tmp/fuzz_findings")
    ap.add_argument("--timeout", type=int, default=30, help="seconds per program")
    ap.add_argument("--minimize", action="store_true", help="minimize the first failure of each class")
    ap.add_argument("--minimize-seconds", type=int, default=60, help="time allowed to minimize one failure")
    ap.add_argument("--per-class", type=int, default=5, help="reproducers written per failure class")
    ap.add_argument("--only", help="gen:i: check one program and print it")
    args = ap.parse_args(argv)

    if args.only:
        gen, i = args.only.split(":")
        case = fp.random_case(gen, f"{args.seed}-{gen}-{i}")
        outcome = fp.check_case(case)
        print(fp.reproducer(case, outcome))
        print("# outcome:", outcome.kind, outcome.detail)
        return 0

    gens = args.generators.split(",")
    firsts = []
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "fuzz_other.py"), "w") as fh:
        fh.write(fp.OTHER_MODULE)
    jobs = [(g, args.seed, i, args.timeout) for i in range(args.programs) for g in gens]
    counts = {g: collections.Counter() for g in gens}
    classes: dict[str, list] = collections.defaultdict(list)
    start = time.time()
    with multiprocessing.Pool(args.workers, maxtasksperchild=200) as pool:
        for n, (gen, i, outcome, case) in enumerate(pool.imap_unordered(run_one, jobs, chunksize=4), 1):
            counts[gen][outcome.kind] += 1
            counts[gen]["inexact value"] += outcome.inexact_value
            counts[gen]["autograd compared"] += outcome.autograd_checked
            if case is not None:
                key = fp.error_class(outcome)
                classes[key].append((gen, i))
                if len(classes[key]) <= args.per_class:
                    with open(os.path.join(args.out, _stem(key, gen, i) + ".py"), "w") as fh:
                        fh.write(fp.reproducer(case, outcome, f"seed {args.seed}-{gen}-{i}"))
                    if len(classes[key]) == 1 and args.minimize and outcome.failed:
                        firsts.append((case, outcome, f"minimized from seed {args.seed}-{gen}-{i}",
                                       args.minimize_seconds, _stem(key, gen, i)))
            if n % 500 == 0:
                print(f"... {n}/{len(jobs)} in {time.time() - start:.0f} s", file=sys.stderr, flush=True)
        if firsts:
            print(f"... minimizing {len(firsts)} failures", file=sys.stderr, flush=True)
            for (*_, stem), text in zip(firsts, pool.map(minimize_one, [f[:4] for f in firsts], chunksize=1)):
                if text:
                    with open(os.path.join(args.out, stem + "_min.py"), "w") as fh:
                        fh.write(text)
    elapsed = time.time() - start

    cols = ["checked", "skipped", "invalid", "refusal", "value", "gradient", "autograd", "internal",
            "autograd compared", "inexact value"]
    print(f"seed {args.seed}, {args.programs} programs per generator, {elapsed:.0f} s, {args.workers} workers")
    print(f"{'generator':10}" + "".join(f"{c:>18}" for c in cols))
    for g in gens:
        c = counts[g]
        row = {"checked": c["ok"] + sum(c[k] for k in ("value", "gradient", "autograd")), **c}
        print(f"{g:10}" + "".join(f"{row.get(k, 0):>18}" for k in cols))
    print("\nclasses (failures first, then refusals):")
    for key, hits in sorted(classes.items(), key=lambda kv: (kv[0].startswith("refusal"), -len(kv[1]))):
        sample = ", ".join(f"{g}:{i}" for g, i in hits[:4])
        print(f"{len(hits):6}  {key}   e.g. {sample}")
    print(f"\nreproducers in {args.out}")
    return 1 if any(k in fp.FAILURES for c in counts.values() for k in c if c[k]) else 0


if __name__ == "__main__":
    sys.exit(main())
