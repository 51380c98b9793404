"""`python -m harness bench`: cases/s of the harness against the naive way, same values (issue 9).

Runs the fixed-seed corpus (harness.strategies.corpus(seed, n, values_per_structure=K)) through
one implementation twice, each through real worker processes: the harness (`python -m
harness.worker`) and the naive yardstick (`python -m harness.bench_naive`: a fresh model for
every path). Prints cases/s of each and their ratio, checks that both produced the same values
(harness.tolerances; every difference is listed), the harness's time outside Keras
calls, and the worker's memory. --long N then runs N cases through harness workers (replaced as
the driver replaces them, or --one-worker) and prints the serving worker's RSS every 100 cases
(every 25 up to 200).

--rule-yield runs two corpora through harness workers instead: the main job's (the stored cases
and the ci cases chosen to test every rule, harness/selection.py) and the one before it (the
stored cases and the first 12 of the corpus), and prints for each the rule changes it
distinguishes per minute of worker time, and their ratio (harness.bench.rule_yield).

Exit status: 0 values identical, 1 some value differs or a case failed, 2 bad options.
"""

from __future__ import annotations

import argparse
import sys
import time

from harness.impls import IMPLEMENTATIONS

HELP = __doc__

BENCH_IMPLS = [name for name, impl in IMPLEMENTATIONS.items() if impl.bench]  # --impl all


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--impl", default="keras3-tensorflow",
                   help=f"implementation, or 'all' for {', '.join(BENCH_IMPLS)} (default keras3-tensorflow)")
    p.add_argument("-n", type=int, default=100, help="number of corpus cases (default 100)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--values-per-structure", type=int, default=1, metavar="K",
                   help="corpus with each structure K times in a row, new values each time "
                        "(harness.strategies.corpus; default 1: n distinct structures)")
    p.add_argument("--workers", type=int, default=1,
                   help="harness worker processes per implementation, cases dealt as `harness run --jobs` deals them: "
                        "a structure's value variants to one worker (default 1)")
    p.add_argument("--no-naive", action="store_true", help="run the harness only (no ratio, no value check)")
    p.add_argument("--long", type=int, default=0, metavar="N",
                   help="then run N cases through harness workers: RSS every 100 cases (25 up to 200) and after N")
    p.add_argument("--one-worker", action="store_true",
                   help="--long: one worker for all N cases (to measure growth), not replaced as the driver "
                        "replaces workers (DEFAULT_MAX_CASES_PER_WORKER, DEFAULT_MAX_RSS_GROWTH)")
    p.add_argument("--rule-yield", action="store_true",
                   help="rule changes distinguished per minute of worker time: the ci corpus against the first 12 cases")
    p.add_argument("--plant-difference", action="store_true",
                   help="(for tests) multiply one naive total by 1.01 to show that the value check reports it")


def run(args: argparse.Namespace) -> int:
    from harness import bench, strategies
    from harness.commands.run import _available_impls, _usage_error

    if args.n < 1 or args.workers < 1 or args.long < 0 or args.values_per_structure < 1:
        return _usage_error("-n, --workers and --values-per-structure must be >= 1, --long >= 0")
    impls = BENCH_IMPLS if args.impl == "all" else _available_impls([args.impl])

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.rule_yield:
        return _rule_yield(impls, log)
    k = args.values_per_structure
    cases = strategies.corpus(args.seed, args.n, values_per_structure=k)
    shape = "distinct structures" if k == 1 else f"{-(-args.n // k)} structures x {k} value sets"
    print(f"harness bench: {args.n} corpus cases (seed {args.seed}; {shape}); harness with {args.workers} worker(s); "
          f"started {time.strftime('%H:%M:%S')}", flush=True)
    status = 0
    for impl in impls:
        result = bench.bench_impl(impl, cases, workers=args.workers, naive=not args.no_naive,
                                  plant=args.plant_difference, log=log)
        if args.long:
            step = 25 if args.long <= 200 else 100
            checkpoints = tuple(sorted({*range(step, args.long + 1, step), min(100, args.long), args.long}))
            log(f"[{impl}] memory run: " + ("one worker" if args.one_worker else "workers replaced as the driver does"))
            result.long = bench.memory_run(impl, args.seed, args.long, checkpoints, not args.one_worker, k, log=log)
        for line in bench.report(result):
            print(line, flush=True)
        if result.differences or result.harness.failures or (result.naive and result.naive.failures):
            status = 1
    return status


PREVIOUS_CI = 12  # the main job's drawn cases before the ci corpus was chosen (harness/selection.py)


def _rule_yield(impls: list[str], log) -> int:
    from pathlib import Path

    from harness import bench, selection, strategies
    from harness.commands.run import load_stored

    stored = load_stored([Path("cases")])
    corpora = {"ci (chosen)": stored + selection.load().cases(),
               f"first {PREVIOUS_CI}": stored + strategies.corpus(0, PREVIOUS_CI)}
    print(f"harness bench --rule-yield: {', '.join(f'{k} {len(v)} cases' for k, v in corpora.items())}; "
          f"started {time.strftime('%H:%M:%S')}", flush=True)
    for impl in impls:
        for line in bench.rule_yield(impl, corpora, log=log):
            print(line, flush=True)
    return 0
