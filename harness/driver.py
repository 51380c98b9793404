"""The driver: streams Cases through one worker process per implementation and survives them.

A worker (`python -m harness.worker --impl NAME`) answers Case JSON lines with Result JSON
lines. The driver gives each case a timeout; a worker that dies (segfault, SIGKILL, an
exception at import) or hangs is recorded for that case as `crashed`, `import-error` or
`timeout` with the last lines of its stderr, and is restarted for the next case. Three
failures of one implementation in a row stop that implementation only. Every result is
judged (harness.compare) and appended to the results file as soon as it arrives, with the hash
of the semantics it was judged with and the --strict profile if any (`python -m harness judge`
re-derives the verdicts from the record alone).

Ctrl-C: workers run in their own process group, so a terminal's SIGINT reaches the driver
only (a worker dying of it would be recorded as a `crashed` case that --resume then skips).
`run_all` catches it, stops every thread from writing another record, kills the live
workers and re-raises KeyboardInterrupt: the file ends with complete records of finished
cases only, and `--resume` runs the rest.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from harness import compare, judging, spec
from harness.results import RUN_STATUSES, ImplResult
from harness.resultsfile import ResultsWriter

DEFAULT_CASE_TIMEOUT = 120.0  # seconds for one case, all paths (first compiled call can take a few s)
DEFAULT_START_TIMEOUT = 180.0  # seconds to import a framework and write the header
MAX_CONSECUTIVE_FAILURES = 3
# A worker is replaced by a fresh one (run_implementation) after this many cases, or as soon as
# its RSS exceeds DEFAULT_MAX_RSS_GROWTH x its RSS after its RSS_BASELINE_CASES-th case (after
# warm-up: keras3-jax grows 649 MiB -> 3662 MiB in its first 25 cases, then ~17 MiB a case):
# frameworks keep memory that clear_session does not give back. Measured with `python -m harness bench --long N
# --restart-every 0` (one worker, 2-core machine): tf_keras ~1.2 GiB after 10 cases, ~6 GiB after
# ~130 (~38 MiB a case, linear from the first case), and then segfaulted (libgcc_s); tf_keras-graph 998 MiB after 100
# cases, 1213 MiB after 200 (~2.2 MiB a case); keras3-torch flat (469 MiB from 100 to 1000).
# A restart costs one framework import (1.5-8 s).
DEFAULT_MAX_CASES_PER_WORKER = 200
DEFAULT_MAX_RSS_GROWTH = 1.25
RSS_BASELINE_CASES = 25


def process_rss(pid: int) -> int:
    """VmRSS of a live process in bytes (Linux /proc; 0 when unreadable: then only the case
    count replaces workers)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
STDERR_TAIL_LINES = 20


class WorkerFailed(Exception):
    def __init__(self, status: str, message: str, stderr_tail: str):
        super().__init__(message)
        self.status = status  # "crashed" | "timeout" | "import-error"
        self.message = message
        self.stderr_tail = stderr_tail


class Worker:
    """One live worker process for one implementation."""

    def __init__(self, impl: str, *, start_timeout: float, python: str = sys.executable,
                 extra_env: dict[str, str] | None = None, stop: "Stop | None" = None,
                 module: str = "harness.worker"):
        self.impl = impl
        self._stderr = tempfile.TemporaryFile(mode="w+b")
        self._stderr_mark = 0  # where the current case's stderr starts (0 while starting up)
        env = {**os.environ, **(extra_env or {})}
        self.proc = subprocess.Popen(
            [python, "-m", module, "--impl", impl],  # module: another speaker of the worker protocol (bench)
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            process_group=0,  # not in the terminal's foreground group: Ctrl-C is the driver's (see Stop)
        )
        if stop is not None:
            stop.track(self)  # before the header: Ctrl-C while it starts (or hangs at import) kills it
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            header = self._read(start_timeout, "start")
            if header.get("kind") != "header":
                raise self._fail("import-error", f"worker wrote {header!r} instead of a header")
            if header.get("import_error"):
                raise self._fail("import-error", str(header["import_error"]))
        except WorkerFailed:
            self.kill()  # whatever state it is in, this worker is done
            if stop is not None:
                stop.untrack(self)
            raise
        self.header = header

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr_tail(self) -> str:
        """The last lines the worker wrote to stderr since the current case was sent (since it
        started, for a failure at start): earlier cases' warnings are not this case's, and a
        crash records the same tail wherever in the worker's life its case came (--resume)."""
        self._stderr.flush()
        self._stderr.seek(self._stderr_mark)
        lines = self._stderr.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-STDERR_TAIL_LINES:])

    def _fail(self, status: str, message: str) -> WorkerFailed:
        return WorkerFailed(status, message, self.stderr_tail())

    def _read(self, timeout: float, what: str) -> dict[str, Any]:
        import json

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                self.kill()
                status = "timeout" if what == "case" else "import-error"
                raise self._fail(status, f"no answer within {timeout:.0f} s ({what})") from None
            if line is None:
                code = self.proc.wait()
                how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
                status = "crashed" if what == "case" else "import-error"
                raise self._fail(status, f"worker {how} ({what})")
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # stray output on stdout: not ours, never fatal
            if isinstance(record, dict) and record.get("kind") != "error":
                return record
            if isinstance(record, dict):  # a protocol-level complaint about our line
                raise self._fail("crashed", f"worker refused the case: {record.get('message')}")

    def run(self, case_json_line: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self._stderr_mark = os.fstat(self._stderr.fileno()).st_size
        try:
            self.proc.stdin.write(case_json_line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the read below reports how it died
        return self._read(timeout, "case")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            self.kill()


class Stop:
    """Shared by the threads of one run: once set (Ctrl-C, or an exception in any thread), no
    thread writes another record and every live worker is killed, so each thread returns at once.
    Workers are tracked from spawn to kill or close."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._workers: set[Worker] = set()
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def track(self, worker: Worker) -> None:
        with self._lock:
            self._workers.add(worker)
        if self.is_set():
            worker.kill()

    def untrack(self, worker: Worker) -> None:
        with self._lock:
            self._workers.discard(worker)

    def set(self) -> None:
        self._event.set()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.kill()


@dataclass
class ImplProgress:
    impl: str
    done: int = 0
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    stopped: str | None = None


def run_implementation(
    impl: str,
    cases: list[spec.Case],
    writer: ResultsWriter,
    *,
    case_timeout: float = DEFAULT_CASE_TIMEOUT,
    start_timeout: float = DEFAULT_START_TIMEOUT,
    strict_profile: str | None = None,
    lock: threading.Lock | None = None,
    on_progress: Callable[[ImplProgress], None] | None = None,
    python: str = sys.executable,
    stop: Stop | None = None,
    progress: ImplProgress | None = None,
    max_cases_per_worker: int | None = DEFAULT_MAX_CASES_PER_WORKER,
    max_rss_growth: float | None = DEFAULT_MAX_RSS_GROWTH,
) -> ImplProgress:
    """Run every case through `impl`, appending judged results to `writer`.

    Once `stop` is set, nothing more is written (checked under `lock`; run_all sets it under
    the same lock on Ctrl-C) and the function returns: the case that was running is not recorded.
    `progress`: shared by the threads that run shares of one implementation's cases (run_all),
    updated under `lock`. `max_cases_per_worker`, `max_rss_growth`: the worker is closed and a
    fresh one started after that many answers, or once its RSS exceeds max_rss_growth x its RSS
    after RSS_BASELINE_CASES answers (bounds memory that a framework never gives back)."""
    lock = lock or threading.Lock()
    stop = stop or Stop()
    if progress is None:
        progress = ImplProgress(impl, total=len(cases))
    worker: Worker | None = None
    served = 0  # answers of the current worker
    first_rss = 0  # its RSS after its RSS_BASELINE_CASES-th answer
    failures_in_a_row = 0
    versions: dict[str, str] = {}
    # What the verdicts were judged with, in the header and in every result record (`judge`
    # re-derives them from the record: the strict profile is one of their inputs).
    semantics: dict[str, str] = {"semantics": judging.semantics_hash()}
    if strict_profile is not None:
        semantics["strict"] = strict_profile
    for case in cases:
        if stop.is_set():
            break
        cid = case.id
        if (cid, impl) in writer.done:
            with lock:
                progress.done += 1
            continue
        started = time.monotonic()
        try:
            if worker is not None and must_replace(worker, served, first_rss, max_cases_per_worker, max_rss_growth):
                worker.close()
                stop.untrack(worker)
                worker = None
            if worker is None:
                worker = Worker(impl, start_timeout=start_timeout, python=python, stop=stop)
                served, first_rss = 0, 0
                versions = worker.header.get("versions", {})
                with lock:
                    if stop.is_set():
                        break
                    writer.write({**worker.header, "kind": "header", "impl": impl,
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **semantics})
            raw = worker.run(spec.dumps(case), case_timeout)
            served += 1
            if served == RSS_BASELINE_CASES and max_rss_growth:
                first_rss = process_rss(worker.proc.pid)
            result = answer_for(raw, cid, impl, worker)
            failures_in_a_row = 0
        except WorkerFailed as exc:
            if worker is not None:
                worker.kill()
                stop.untrack(worker)
            worker = None
            if stop.is_set():
                break  # killed because of Ctrl-C: not a failure of the case
            failures_in_a_row += 1
            result = ImplResult(case_id=cid, impl=impl, status=exc.status, message=exc.message,
                                stderr_tail=exc.stderr_tail)
        result.seconds = round(time.monotonic() - started, 3)
        verdicts = judge_safely(case, result, versions, strict_profile)
        record = {**result.to_json(), "verdicts": judging.verdicts_json(verdicts), **semantics}
        with lock:
            if stop.is_set():
                break
            writer.write_case(cid, case.to_json())
            writer.write(record)
            progress.done += 1
            for v in verdicts.values():
                progress.counts[v.verdict] = progress.counts.get(v.verdict, 0) + 1
        if on_progress:
            on_progress(progress)
        if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
            progress.stopped = (
                f"{impl}: stopped after {failures_in_a_row} failures in a row "
                f"(last: {result.status}: {result.message}); other implementations go on"
            )
            break
    if worker is not None:
        if stop.is_set():
            worker.kill()
        else:
            worker.close()
        stop.untrack(worker)
    return progress


def must_replace(worker: Worker, served: int, first_rss: int, max_cases: int | None,
                 max_rss_growth: float | None) -> bool:
    """Whether a worker that answered `served` cases is to be replaced before the next one."""
    if max_cases and served >= max_cases:
        return True
    return bool(max_rss_growth and first_rss and process_rss(worker.proc.pid) > max_rss_growth * first_rss)


def answer_for(raw: dict[str, Any], case_id: str, impl: str, worker: Worker) -> ImplResult:
    """The worker's answer as an ImplResult for this case, or WorkerFailed("crashed"): a
    malformed answer (an adapter bug) must not kill the driver's thread, and an answer for
    another case must not be recorded under that case's id (the stream is out of step: the
    worker is restarted like any failed one)."""
    try:
        result = ImplResult.from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WorkerFailed("crashed", f"worker answered a malformed result ({type(exc).__name__}: {exc})",
                           worker.stderr_tail()) from None
    if (result.case_id, result.impl) != (case_id, impl):
        raise WorkerFailed("crashed", f"worker answered for case {result.case_id} of {result.impl}, "
                                      f"not for case {case_id} of {impl}", worker.stderr_tail())
    if result.status not in RUN_STATUSES:
        raise WorkerFailed("crashed", f"worker answered status {result.status!r}, expected one of "
                                      f"{', '.join(RUN_STATUSES)}", worker.stderr_tail())
    return result


def judge_safely(case: spec.Case, result: ImplResult, versions: dict[str, str],
                 strict_profile: str | None) -> dict[str, compare.Verdict]:
    """The engine's verdicts (harness.judging.judge_safely: `judge` makes the same call on stored
    results); a failure of the reference itself is recorded, never fatal."""
    return judging.judge_safely(case, result, versions, strict_profile)


def deal(cases: list[spec.Case], shares: int) -> list[list[spec.Case]]:
    """`cases` in `shares` lists, round-robin by runs of consecutive Cases of the same structure
    (spec.structure_key): a structure's value variants stay together, in order, in one worker,
    which builds and compiles its models once for all of them (harness.impls.paths._Models).
    Cases of distinct structures are dealt one by one, as `cases[k::shares]`."""
    runs: list[list[spec.Case]] = []
    last = None
    for case in cases:
        key = spec.structure_key(case)
        if runs and key == last:
            runs[-1].append(case)
        else:
            runs.append([case])
        last = key
    return [[c for run in runs[k::shares] for c in run] for k in range(shares)]


def run_all(
    impls: Iterable[str],
    cases: list[spec.Case],
    writer: ResultsWriter,
    *,
    jobs: int = 1,
    **kwargs: Any,
) -> list[ImplProgress]:
    """Run implementations, `jobs` worker processes at a time.

    With fewer implementations than jobs, each implementation's cases are dealt (`deal`)
    to jobs // len(impls) workers of it (a worker runs on one core: a framework's Python and
    tracing are single-threaded, and small models' ops gain nothing from more threads).

    KeyboardInterrupt (Ctrl-C) stops every thread before it writes another record, kills the
    workers, and is re-raised. An exception in a thread (the results file cannot be written:
    disk full; or a bug of ours) stops the whole run the same way and is re-raised here: a
    run that lost an implementation's results must not end as if it had succeeded."""
    impls = list(impls)
    lock = threading.Lock()
    stop = Stop()
    shards = max(1, jobs // max(1, len(impls)))
    results = {impl: ImplProgress(impl, total=len(cases)) for impl in impls}
    pending = [(impl, share) for impl in impls for share in deal(cases, shards)]
    pending_lock = threading.Lock()
    started: set[str] = set()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            take_and_run()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, re-raised there
            errors.append(exc)
            stop.set()

    def take_and_run() -> None:
        while True:
            with pending_lock:
                if not pending:
                    return
                impl, share = pending.pop(0)
            if stop.is_set():
                return
            started.add(impl)
            run_implementation(impl, share, writer, lock=lock, stop=stop, progress=results[impl], **kwargs)

    # Daemon threads: a thread still starting a worker when Ctrl-C comes must not hold the
    # interpreter open (it writes nothing more once `stop` is set).
    threads = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, min(jobs, len(pending))))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        with lock:  # no record is half-written, and none is written after this
            stop.set()
        for t in threads:
            t.join(timeout=10)
        raise
    if errors:
        raise errors[0]
    return [results[i] for i in impls if i in started]
