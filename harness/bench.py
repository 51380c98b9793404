"""Throughput of the harness against the naive way, on the same fixed-seed cases (issue 9).

For one implementation, `bench_impl` runs the corpus cases (harness.strategies.corpus) twice,
each through real worker processes (harness.driver.Worker):
  (a) the harness: `python -m harness.worker` (harness.impls.paths: one model per case);
  (b) the yardstick: `python -m harness.bench_naive` (a fresh model for every path).
With one harness worker the two alternate case by case (`run_interleaved`: a shared machine's
changing load slows both alike) and each is timed by the sum of its cases' send -> answer
times; with several harness workers (`--workers`, dealt as `harness run --jobs` deals cases)
the harness is timed from the first case sent to the last answer, then the naive way alike.
Framework imports are excluded: both pay them once per process. It then checks that both produced the same values (`compare`),
and reports the harness's time outside Keras (the worker reports `keras_seconds` per case:
harness.impls.paths.CLOCK) and the worker's RSS (VmRSS and peak VmHWM, from /proc).

Figures are printed, never asserted: wall time depends on the machine (DESIGN.md, Conventions).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import spec
from harness.compare import values_agree
from harness.results import ImplResult, PathResult
from harness.tolerances import GRADIENT_TOLERANCES, TOLERANCES

HARNESS_WORKER = "harness.worker"
NAIVE_WORKER = "harness.bench_naive"
START_TIMEOUT = 300.0
CASE_TIMEOUT = 600.0  # the naive way on a slow case: ~13 fresh models, each compiled and traced


@dataclass
class Stream:
    """One implementation's answers to a list of cases, from one or more worker processes."""

    impl: str
    module: str
    results: dict[str, ImplResult] = field(default_factory=dict)  # case id -> result
    seconds: float = 0.0  # wall time, first case sent to last answer
    case_seconds: float = 0.0  # sum over cases of send -> answer
    keras_seconds: float = 0.0  # sum over cases of the worker's time inside Keras calls
    failures: list[str] = field(default_factory=list)  # "case <id>: <status>: <message>"
    rss: dict[int, tuple[int, int]] = field(default_factory=dict)  # cases done -> (VmRSS, VmHWM) bytes
    restarts: int = 0  # workers replaced (driver policy) or restarted after a failure, in run_interleaved
    versions: dict[str, str] = field(default_factory=dict)  # the first worker's header: what ran

    @property
    def cases_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else math.nan


def process_memory(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in bytes (Linux /proc; (0, 0) when unreadable)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return values["VmRSS"], values["VmHWM"]


def run_stream(impl: str, cases: list[spec.Case], module: str, *, workers: int = 1,
               rss_at: tuple[int, ...] = (), case_timeout: float = CASE_TIMEOUT,
               max_cases_per_worker: int | None = None, max_rss_growth: float | None = None,
               on_case: Callable[[int], None] | None = None) -> Stream:
    """Every case through `workers` processes of `module` (cases dealt by driver.deal, as
    driver.run_all deals them), each replaced as the driver replaces them (driver.must_replace).

    rss_at: after worker 0 (which serves the first share of driver.deal) has answered that many
    cases, record the memory of the process serving them. A failed worker (crash, timeout) is recorded in
    `failures` and restarted."""
    from harness import driver

    stream = Stream(impl, module)
    lock = threading.Lock()
    shares = driver.deal(cases, workers)
    errors: list[BaseException] = []
    ready = threading.Barrier(workers + 1)

    def serve(index: int, share: list[spec.Case]) -> None:
        worker = None
        try:
            worker = driver.Worker(impl, start_timeout=START_TIMEOUT, module=module)
            if index == 0:
                stream.versions = dict(worker.header.get("versions") or {})
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
        ready.wait()
        try:
            served, first_rss = 0, 0
            for done, case in enumerate(share, start=1):
                if worker is not None and driver.must_replace(worker, served, first_rss, max_cases_per_worker,
                                                              max_rss_growth):
                    worker.close()
                    worker = None
                if worker is None:
                    worker = driver.Worker(impl, start_timeout=START_TIMEOUT, module=module)
                    served, first_rss = 0, 0
                started = time.perf_counter()
                try:
                    raw = worker.run(spec.dumps(case), case_timeout)
                except driver.WorkerFailed as exc:
                    with lock:
                        stream.failures.append(f"case {case.id}: {exc.status}: {exc.message}")
                    worker = None
                    continue
                elapsed = time.perf_counter() - started
                served += 1
                if served == driver.RSS_BASELINE_CASES:
                    first_rss = driver.process_rss(worker.proc.pid)
                with lock:
                    stream.results[case.id] = ImplResult.from_json(raw)
                    stream.case_seconds += elapsed
                    stream.keras_seconds += float(raw.get("keras_seconds", 0.0))
                    if index == 0 and done in rss_at:
                        stream.rss[done] = process_memory(worker.proc.pid)
                if on_case is not None:
                    on_case(len(stream.results))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            if worker is not None:
                worker.close()

    threads = [threading.Thread(target=serve, args=(i, s), daemon=True) for i, s in enumerate(shares)]
    for t in threads:
        t.start()
    ready.wait()  # every worker has imported its framework: the clock starts now
    started = time.perf_counter()
    for t in threads:
        t.join()
    stream.seconds = time.perf_counter() - started
    if errors and not stream.results:
        raise errors[0]
    stream.failures += [f"worker: {type(e).__name__}: {e}" for e in errors]
    return stream


def run_interleaved(impl: str, cases: list[spec.Case], *, case_timeout: float = CASE_TIMEOUT,
                    max_cases_per_worker: int | None = None, max_rss_growth: float | None = None,
                    on_case: Callable[[int], None] | None = None) -> tuple[Stream, Stream]:
    """Each case through a harness worker, then through a naive one: both processes stay alive
    and only one works at a time, so a machine whose load changes during the run (other jobs
    on a shared runner) slows both alike. A stream's `seconds` is the sum of its cases' times."""
    from harness import driver

    streams = Stream(impl, HARNESS_WORKER), Stream(impl, NAIVE_WORKER)
    workers: list[driver.Worker | None] = [None, None]
    served, first_rss = 0, 0  # answers of the current harness worker, its RSS baseline
    try:
        for done, case in enumerate(cases, start=1):
            line = spec.dumps(case)
            for k, stream in enumerate(streams):
                if k == 0 and workers[0] is not None and driver.must_replace(
                        workers[0], served, first_rss, max_cases_per_worker, max_rss_growth):
                    workers[0].close()
                    workers[0] = None
                if workers[k] is None:
                    replacing = done > 1  # a replacement's import is the harness's (or naive's) own cost
                    begun = time.perf_counter()
                    workers[k] = driver.Worker(impl, start_timeout=START_TIMEOUT, module=stream.module)
                    if replacing:
                        stream.seconds += time.perf_counter() - begun
                        stream.restarts += 1
                    if k == 0:
                        served, first_rss = 0, 0
                worker = workers[k]
                assert worker is not None
                started = time.perf_counter()
                try:
                    raw = worker.run(line, case_timeout)
                except driver.WorkerFailed as exc:
                    stream.failures.append(f"case {case.id}: {exc.status}: {exc.message}")
                    workers[k] = None
                    continue
                elapsed = time.perf_counter() - started
                stream.results[case.id] = ImplResult.from_json(raw)
                stream.seconds += elapsed
                stream.case_seconds += elapsed
                stream.keras_seconds += float(raw.get("keras_seconds", 0.0))
                if k == 0:
                    served += 1
                    if served == driver.RSS_BASELINE_CASES:
                        first_rss = driver.process_rss(worker.proc.pid)
                    if done == len(cases):
                        stream.rss[served] = process_memory(worker.proc.pid)
            if on_case is not None:
                on_case(done)
    finally:
        for w in workers:
            if w is not None:
                w.close()
    return streams


# --------------------------------------------------------------------------------------
# The value check
# --------------------------------------------------------------------------------------


def _agree(a: float | None, b: float | None, dtype: str) -> bool:
    if a is None or b is None:
        return a is b
    tol = TOLERANCES[dtype]
    return values_agree(a, b, max(abs(a), abs(b)) if math.isfinite(a) and math.isfinite(b) else 0.0, tol)


def _path_differences(p: PathResult, q: PathResult, dtype: str) -> list[str]:
    out = []
    if p.status != q.status:
        return [f"status {p.status} != {q.status} ({p.reason or p.error_type or ''} / {q.reason or q.error_type or ''})"]
    if p.status == "unsupported" and p.reason != q.reason:
        out.append(f"reason {p.reason!r} != {q.reason!r}")
    if p.status == "error" and p.error_type != q.error_type:
        out.append(f"error {p.error_type} != {q.error_type}")
    if not _agree(p.total, q.total, dtype):
        out.append(f"total {p.total!r} != {q.total!r}")
    for term in sorted(set(p.terms) | set(q.terms)):
        if not _agree(p.terms.get(term), q.terms.get(term), dtype):
            out.append(f"term {term} {p.terms.get(term)!r} != {q.terms.get(term)!r}")
    if p.weights_moved != q.weights_moved:
        out.append(f"weights_moved {p.weights_moved} != {q.weights_moved}")
    return out


def _gradient_differences(a: Any, b: Any, dtype: str) -> list[str]:
    """Gradients and updates of the two runs: statuses exactly, values within the gradient
    tolerance of compare_gradients relative to each tensor's largest entry."""
    import numpy as np


    if a is None or b is None:
        return [] if a is b else [f"gradient: reported by {'harness' if a else 'naive'} only"]
    if a.status != b.status:
        return [f"gradient: status {a.status} != {b.status}"]
    out = []
    rtol = GRADIENT_TOLERANCES[dtype].rtol
    for what, x, y in (("gradient", a.gradients, b.gradients), ("update", a.updates, b.updates)):
        for key in sorted(set(x) | set(y)):
            if key not in x or key not in y:
                out.append(f"{what}/{key}: only in {'harness' if key in x else 'naive'}")
                continue
            p, q = np.asarray(x[key], dtype=np.float64), np.asarray(y[key], dtype=np.float64)
            scale = float(np.nanmax(np.abs(np.concatenate([p.ravel(), q.ravel(), [0.0]]))))
            if p.shape != q.shape or not np.allclose(p, q, rtol=0.0, atol=rtol * scale, equal_nan=True):
                out.append(f"{what}/{key}: differ")
    return out


def compare(cases: list[spec.Case], harness: dict[str, ImplResult], naive: dict[str, ImplResult]) -> list[str]:
    """Every difference between the two runs' values, one line each ("<case id> <path/mode>: ...").

    Totals and terms: equal within TOLERANCES[case.dtype] (harness/tolerances.py) relative to the larger
    of the two values; predictions elementwise within its pred_rtol / pred_atol; statuses,
    unsupported reasons, error types and weights_moved exactly."""
    import numpy as np

    lines = []
    for case in cases:
        a, b = harness.get(case.id), naive.get(case.id)
        if a is None or b is None:
            lines.append(f"{case.id} *: answered by {'harness' if a else 'naive' if b else 'neither'} only")
            continue
        pa, pb = {p.key: p for p in a.paths}, {p.key: p for p in b.paths}
        for key in sorted(set(pa) | set(pb)):
            if key not in pa or key not in pb:
                lines.append(f"{case.id} {key}: only in {'harness' if key in pa else 'naive'}")
                continue
            lines += [f"{case.id} {key}: {d}" for d in _path_differences(pa[key], pb[key], case.dtype)]
        lines += [f"{case.id} {d}" for d in _gradient_differences(a.gradients, b.gradients, case.dtype)]
        tol = TOLERANCES[case.dtype]
        preds_a, preds_b = a.predictions or {}, b.predictions or {}
        for name in sorted(set(preds_a) | set(preds_b)):
            x, y = preds_a.get(name), preds_b.get(name)
            if x is None or y is None:
                lines.append(f"{case.id} predictions/{name}: only in {'harness' if x is not None else 'naive'}")
                continue
            x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            if x.shape != y.shape or not np.allclose(x, y, rtol=tol.pred_rtol, atol=tol.pred_atol, equal_nan=True):
                lines.append(f"{case.id} predictions/{name}: differ (max |diff| "
                             f"{np.nanmax(np.abs(x - y)) if x.shape == y.shape else 'shape'})")
    return lines


def plant_difference(results: dict[str, ImplResult]) -> str | None:
    """Multiply the first finite nonzero total by 1.01 (for the test that the check reports it)."""
    for cid, result in results.items():
        for p in result.paths:
            if p.status == "ok" and p.total is not None and math.isfinite(p.total) and p.total != 0.0:
                p.total *= 1.01
                return f"{cid} {p.key}"
    return None


# --------------------------------------------------------------------------------------
# One implementation, side by side
# --------------------------------------------------------------------------------------


@dataclass
class ImplBench:
    impl: str
    n: int
    harness: Stream
    naive: Stream | None
    differences: list[str]
    long: Stream | None = None  # the memory run (--long)

    @property
    def ratio(self) -> float:
        if self.naive is None:
            return math.nan
        return self.harness.cases_per_second / self.naive.cases_per_second

    @property
    def overhead(self) -> float:
        """Share of the harness's case time (send -> answer) spent outside Keras calls."""
        s = self.harness
        return 1.0 - s.keras_seconds / s.case_seconds if s.case_seconds > 0 else math.nan


def bench_impl(impl: str, cases: list[spec.Case], *, workers: int = 1, naive: bool = True,
               plant: bool = False, log: Callable[[str], None] = print) -> ImplBench:
    def progress(label: str) -> Callable[[int], None]:
        def on_case(done: int) -> None:
            if done % 25 == 0 or done == len(cases):
                log(f"  [{impl} {label}] {done}/{len(cases)} cases")
        return on_case

    from harness.driver import DEFAULT_MAX_CASES_PER_WORKER, DEFAULT_MAX_RSS_GROWTH, deal

    policy = {"max_cases_per_worker": DEFAULT_MAX_CASES_PER_WORKER, "max_rss_growth": DEFAULT_MAX_RSS_GROWTH}
    if naive and workers == 1:
        log(f"[{impl}] harness and naive, case by case: {len(cases)} cases ...")
        h, b = run_interleaved(impl, cases, **policy, on_case=progress("harness+naive"))
        if plant:
            where = plant_difference(b.results)
            log(f"[{impl}] planted a difference (total x 1.01) in the naive run at {where}")
        return ImplBench(impl, len(cases), h, b, compare(cases, h.results, b.results))
    log(f"[{impl}] harness: {len(cases)} cases, {workers} worker(s) ...")
    h = run_stream(impl, cases, HARNESS_WORKER, workers=workers, rss_at=(len(deal(cases, workers)[0]),),
                   **policy, on_case=progress("harness"))
    b = None
    differences: list[str] = []
    if naive:
        log(f"[{impl}] naive: {len(cases)} cases, 1 process ...")
        b = run_stream(impl, cases, NAIVE_WORKER, on_case=progress("naive"))
        if plant:
            where = plant_difference(b.results)
            log(f"[{impl}] planted a difference (total x 1.01) in the naive run at {where}")
        differences = compare(cases, h.results, b.results)
    return ImplBench(impl, len(cases), h, b, differences)


def memory_run(impl: str, seed: int, n: int, checkpoints: tuple[int, ...], replace: bool,
               values_per_structure: int = 1, log: Callable[[str], None] = print) -> Stream:
    """n corpus cases through harness workers, replaced as the driver replaces them (or, with
    replace False, one worker for all); (VmRSS, VmHWM) of the serving worker at each checkpoint."""
    from harness.driver import DEFAULT_MAX_CASES_PER_WORKER, DEFAULT_MAX_RSS_GROWTH

    from harness import strategies

    log(f"[{impl}] memory: {n} cases through one harness worker ...")
    cases = strategies.corpus(seed, n, values_per_structure=values_per_structure)

    def on_case(done: int) -> None:
        if done % 100 == 0:
            log(f"  [{impl} memory] {done}/{n} cases")

    return run_stream(impl, cases, HARNESS_WORKER, rss_at=checkpoints,
                      max_cases_per_worker=DEFAULT_MAX_CASES_PER_WORKER if replace else None,
                      max_rss_growth=DEFAULT_MAX_RSS_GROWTH if replace else None, on_case=on_case)


def rule_yield(impl: str, corpora: dict[str, list[spec.Case]], log: Callable[[str], None] = print) -> list[str]:
    """Rule changes distinguished per minute of worker time, for each corpus (issue 17): each runs
    through one harness worker; its worker time is the sum over cases of send -> answer (the
    framework's import left out), and its rule changes are the single changes of the profile the
    implementation is expected to follow (rules.expected on test_on_batch/eager, for the
    versions the worker reports) that the corpus distinguishes (harness.coverage, reference only)."""
    from harness import coverage
    from harness.reference import rules

    lines, rates = [f"[{impl}] rule changes distinguished per minute of worker time"], {}
    for name, cases in corpora.items():
        stream = run_stream(impl, cases, "harness.worker",
                            on_case=lambda done, name=name: log(f"[{impl}] {name}: {done}/{len(cases)} cases"))
        profile = rules.expected(impl, stream.versions, "test_on_batch", "eager")
        told, total = coverage.coverage(cases, profile, pairs=False).count("single")
        minutes = stream.case_seconds / 60
        rates[name] = told / minutes if minutes > 0 else math.nan
        lines.append(f"  {name}: {len(cases)} cases, {stream.case_seconds:.1f} s of worker time, {told} of {total} "
                     f"rule changes distinguished ({profile}): {rates[name]:.1f} per minute"
                     + (f"; {len(stream.failures)} failed" if stream.failures else ""))
    names = list(rates)
    if len(names) == 2:
        lines.append(f"  {names[0]} / {names[1]}: {rates[names[0]] / rates[names[1]]:.2f}x per minute")
    return lines


def mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MiB"


def report(bench: ImplBench) -> list[str]:
    """The printed figures of one implementation."""
    h, b = bench.harness, bench.naive
    lines = [f"== {bench.impl}: {bench.n} cases"]
    lines.append(f"  harness: {h.cases_per_second:7.3f} cases/s  ({h.seconds:.1f} s, "
                 f"{len(h.results)} answered, {len(h.failures)} failed, {h.restarts} worker replacements)")
    if b is not None:
        lines.append(f"  naive:   {b.cases_per_second:7.3f} cases/s  ({b.seconds:.1f} s, "
                     f"{len(b.results)} answered, {len(b.failures)} failed)")
        lines.append(f"  ratio harness/naive: {bench.ratio:.2f}x")
    if h.keras_seconds > 0:
        lines.append(f"  harness overhead outside Keras: {100 * bench.overhead:.1f}% of case time "
                     f"({h.case_seconds - h.keras_seconds:.2f} s of {h.case_seconds:.2f} s)")
    else:
        lines.append("  harness overhead outside Keras: not measured (the adapter reports no keras_seconds)")
    for done, (rss, hwm) in sorted(h.rss.items()):
        lines.append(f"  harness worker memory after {done} cases (its own): RSS {mib(rss)}, peak {mib(hwm)}")
    if bench.long is not None:
        for done, (rss, hwm) in sorted(bench.long.rss.items()):
            lines.append(f"  memory run: after {done} cases: RSS {mib(rss)}, peak {mib(hwm)}")
        points = dict(sorted(bench.long.rss.items()))
        first, last = (100 if 100 in points else min(points, default=0)), max(points, default=0)
        if last > first and points[first][0]:
            lines.append(f"  RSS growth {first} -> {last} cases: {points[last][0] / points[first][0]:.2f}x "
                         f"(peak {points[last][1] / points[first][1]:.2f}x)")
    for failure in h.failures + (b.failures if b else []):
        lines.append(f"  FAILED {failure}")
    if b is not None:
        if bench.differences:
            lines.append(f"  VALUES DIFFER: {len(bench.differences)} (case, path) differences:")
            lines += [f"    {d}" for d in bench.differences[:50]]
        else:
            lines.append("  values: identical within TOLERANCES (every case, path, mode, term, prediction)")
    return lines
