"""Faults, bad input and long runs: nothing lost, everything explained (issue 8).

Every fault here is provoked for real, in real processes:
- workers: a segfault, SIGKILL by pid from the test, an exit mid-case, an exception in the
  adapter, an exception at import, a hang at import, a hang past the per-case timeout, an
  answer for another case id, a malformed answer, NaN and inf totals;
- the driver (`python -m harness run`): SIGKILL, Ctrl-C (SIGINT to its process group),
  SIGTERM and SIGHUP, each followed by `--resume`; a results file that cannot be written
  (RLIMIT_FSIZE: a full disk); two runs on one results file;
- input (exit 2, a message naming the file, the field or option and what was expected, and
  nothing changed: see "Bad input" below, one test per case): malformed, inconsistent,
  wrongly typed and non-UTF-8 case files, a pickle payload and Python code in case files,
  unknown names, bad option values (negative -n, --jobs 0, --timeout inf, --cases naming a
  file or a missing folder, --out naming a folder or a path under a file, --env with a '/'),
  damaged, truncated and incompatible results files (for `run --resume` and for `report`),
  and the other commands' bad input (cases, replay, rules);
- exit status of `run`: 1 on unexplained findings, 4 on crashed / timeout / import-error
  verdicts (4 wins over 1), 0 with --exit-zero; every FINDING and ERROR row has its replay
  line, whose case file is written beside the results file.

The implementations are the test-only ones of harness/impls/faulty.py (`test-faulty`, which
obeys `fault=...` words in a Case's note; `test-steady`, which ignores them;
`test-import-error` and `test-import-hang`), listed in the registry only when
HARNESS_TEST_IMPLS=1. They import no framework and answer the reference's own totals under
PROFILE, so every run here is judged with `--strict PROFILE` and a healthy answer is `agree`.

Comparing two results files ("the same final set of records"): see `canonical` below.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import driver, reference, resultsfile, spec
from harness.resultsfile import ResultsWriter

PROFILE = "tf_keras-2.21"  # harness.impls.faulty.PROFILE: the totals the test implementations answer
PYTHON = sys.executable
ENV = {**os.environ, "HARNESS_TEST_IMPLS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
SHORT_TIMEOUT = 2.0  # per-case timeout where a hang is provoked; healthy test cases answer in ~10 ms
TIMING_FIELDS = ("seconds", "started")  # differ between two runs of the same cases by design


@pytest.fixture(autouse=True)
def _test_impls(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process driver calls start workers with this process's environment.
    monkeypatch.setenv("HARNESS_TEST_IMPLS", "1")


# --------------------------------------------------------------------------------------
# Cases and helpers
# --------------------------------------------------------------------------------------


def tiny_case(note: str = "", x: list[list[float]] | None = None, kernel: list[list[float]] | None = None,
              target: list[list[float]] | None = None, dtype: str = "float64") -> spec.Case:
    """One Dense unit under mean squared error: the smallest Case the harness accepts.
    Distinct notes give distinct case ids; the note also carries the fault directives."""
    x = x if x is not None else [[0.5], [-1.0]]
    kernel = kernel if kernel is not None else [[2.0]] * len(x[0])
    return spec.Case(
        dtype=dtype,
        inputs=(spec.Input("x", "float", np.array(x, dtype=np.float64)),),
        layers=(spec.Layer("out", "Dense", ("x",), {"units": 1, "activation": "linear", "use_bias": True},
                           {"kernel": np.array(kernel, dtype=np.float64), "bias": np.array([0.25])}),),
        outputs=(spec.Output("out", np.array(target or [[1.0], [0.0]], dtype=np.float64), "mean_squared_error",
                             {"reduction": "sum_over_batch_size"}),),
        loss_form="single", evaluate_batch_size=1, note=note,
    )


def case_json(**changes: Any) -> dict[str, Any]:
    """A valid case as parsed JSON, to be broken field by field."""
    return tiny_case(**changes).to_json()


def write_cases(folder: Path, cases: list[spec.Case]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, case in enumerate(cases):
        spec.dump(case, folder / f"{n:03d}-{case.id}.json")
    return folder


def harness_cmd(*args: str | Path) -> list[str]:
    return [PYTHON, "-m", "harness", *map(str, args)]


def run_cli(cwd: Path, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(harness_cmd(*args), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def run_args(cases: Path, out: Path, *impls: str, extra: tuple[str, ...] = ()) -> list[str | Path]:
    args: list[str | Path] = ["run", "-n", "0", "--cases", cases, "--out", out, "--strict", PROFILE, "--exit-zero"]
    for impl in impls:
        args += ["--impl", impl]
    return args + list(extra)


def records(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    return [r for _, r in resultsfile.iter_records(path) if kind is None or r["kind"] == kind]


def results_by_case(path: Path, impl: str) -> dict[str, dict[str, Any]]:
    return {r["case_id"]: r for r in records(path, "result") if r["impl"] == impl}


def canonical(path: Path) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """What must be equal between an interrupted-then-resumed run and an uninterrupted one.

    - results: one per (case id, implementation), compared whole except TIMING_FIELDS; the
      list must have no duplicate (case, implementation), and order does not matter (a resumed
      run appends the missing ones at the end).
    - cases: the set of case records (each case id once per file).
    - headers: the set of distinct headers without `started`. A header is written each time a
      worker starts, so an interrupted run has more of them (one more per resume, one more per
      restart after a crash); what must match is *which* implementations ran with *which*
      exact versions, not how many times a worker started.
    """
    def strip(r: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in r.items() if k not in TIMING_FIELDS}, sort_keys=True)

    recs = records(path)
    results = sorted(strip(r) for r in recs if r["kind"] == "result")
    keys = [(r["case_id"], r["impl"]) for r in recs if r["kind"] == "result"]
    assert len(keys) == len(set(keys)), f"{path}: a (case, implementation) recorded twice: {keys}"
    case_lines = [strip(r) for r in recs if r["kind"] == "case"]
    assert len(case_lines) == len(set(case_lines)), f"{path}: a case record written twice"
    headers = frozenset(strip(r) for r in recs if r["kind"] == "header")
    return headers, frozenset(case_lines), tuple(results)


def run_driver(impls: list[str], cases: list[spec.Case], out: Path, **kwargs: Any) -> list[driver.ImplProgress]:
    kwargs.setdefault("case_timeout", 30.0)
    kwargs.setdefault("start_timeout", 60.0)
    with ResultsWriter(out, resume=False, overwrite=True) as writer:
        return driver.run_all(impls, cases, writer, strict_profile=PROFILE, **kwargs)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


def result_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_bytes().split(b"\n") if b'"kind": "result"' in line)


# --------------------------------------------------------------------------------------
# Worker faults: recorded with the stderr tail, worker restarted, run goes on
# --------------------------------------------------------------------------------------


def test_a_segfault_is_recorded_as_crashed_with_the_stderr_tail_and_the_next_case_runs(tmp_path: Path) -> None:
    before, crash, after = tiny_case("before"), tiny_case("fault=segv"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    [progress] = run_driver(["test-faulty"], [before, crash, after], out)

    got = results_by_case(out, "test-faulty")
    assert progress.stopped is None and progress.done == 3
    assert got[before.id]["status"] == "ok" and got[after.id]["status"] == "ok"
    rec = got[crash.id]
    assert rec["status"] == "crashed", rec
    assert f"killed by signal {int(signal.SIGSEGV)}" in rec["message"], rec["message"]
    assert f"case {crash.id}: segfaulting on purpose" in rec["stderr_tail"], rec["stderr_tail"]
    assert rec["verdicts"] == {"*": {"verdict": "crashed", "profile": PROFILE, "reason": rec["message"]}}
    # The worker was restarted for the case after the crash: a second header.
    assert [h["impl"] for h in records(out, "header")] == ["test-faulty", "test-faulty"]
    assert {v["verdict"] for v in got[after.id]["verdicts"].values()} == {"agree"}


def test_the_stderr_tail_of_a_crash_is_what_that_case_wrote(tmp_path: Path) -> None:
    # A worker that answered cases before crashing: the tail must not present the earlier
    # cases' lines as this case's, and must not depend on where in the worker's life the case
    # came (else an interrupted-and-resumed run records a different tail for the same crash).
    earlier = [tiny_case(f"earlier-{n}") for n in range(3)]
    crash = tiny_case("fault=segv")
    out = tmp_path / "r.jsonl"
    run_driver(["test-faulty"], [*earlier, crash], out)
    tail = results_by_case(out, "test-faulty")[crash.id]["stderr_tail"]
    assert f"case {crash.id}: segfaulting on purpose" in tail
    assert not any(c.id in tail for c in earlier), tail

    alone = tmp_path / "alone.jsonl"
    run_driver(["test-faulty"], [crash], alone)
    assert results_by_case(alone, "test-faulty")[crash.id]["stderr_tail"] == tail


def test_a_hang_past_the_case_timeout_is_recorded_as_timeout_and_the_worker_restarted(tmp_path: Path) -> None:
    hang, after = tiny_case("fault=hang"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    started = time.monotonic()
    [progress] = run_driver(["test-faulty"], [hang, after], out, case_timeout=SHORT_TIMEOUT)
    elapsed = time.monotonic() - started

    got = results_by_case(out, "test-faulty")
    assert got[hang.id]["status"] == "timeout", got[hang.id]
    assert f"no answer within {SHORT_TIMEOUT:.0f} s" in got[hang.id]["message"]
    assert f"case {hang.id}: hanging on purpose" in got[hang.id]["stderr_tail"]
    assert got[after.id]["status"] == "ok"
    assert progress.done == 2 and progress.stopped is None
    assert elapsed < 30, f"the hang was not cut at the timeout ({elapsed:.1f} s)"


def test_a_worker_killed_with_sigkill_mid_case_is_recorded_as_crashed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "worker.pid"
    monkeypatch.setenv("HARNESS_FAULTY_PIDFILE", str(pidfile))
    victim, after = tiny_case("fault=pid"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    done: list[list[driver.ImplProgress]] = []
    thread = threading.Thread(target=lambda: done.append(run_driver(["test-faulty"], [victim, after], out)))
    thread.start()
    wait_for(pidfile.exists, 60, "the worker to write its pid")
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    thread.join(60)
    assert not thread.is_alive() and done, "the driver did not finish after its worker was killed"

    got = results_by_case(out, "test-faulty")
    assert got[victim.id]["status"] == "crashed"
    assert f"killed by signal {int(signal.SIGKILL)}" in got[victim.id]["message"]
    assert "waiting to be killed" in got[victim.id]["stderr_tail"]
    assert got[after.id]["status"] == "ok"


def test_a_worker_that_exits_mid_case_is_recorded_as_crashed_with_its_exit_code(tmp_path: Path) -> None:
    gone, after = tiny_case("fault=exit"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    run_driver(["test-faulty"], [gone, after], out)
    got = results_by_case(out, "test-faulty")
    assert got[gone.id]["status"] == "crashed" and "exited with code 7" in got[gone.id]["message"]
    assert got[after.id]["status"] == "ok"


@pytest.mark.parametrize("fault, message", [
    ("wrong-id", "worker answered for case 0000000000000000 of test-faulty, not for case {id} of test-faulty"),
    ("malformed", "worker answered a malformed result (ValueError: expected a number or 'nan'/'inf'/'-inf', "
                  "got 'banana')"),
])
def test_a_wrong_or_malformed_answer_is_recorded_as_crashed_never_under_another_id(
        tmp_path: Path, fault: str, message: str) -> None:
    bad, after = tiny_case(f"fault={fault}"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    [progress] = run_driver(["test-faulty"], [bad, after], out)
    got = results_by_case(out, "test-faulty")
    assert set(got) == {bad.id, after.id}, "a record under another case's id"
    assert got[bad.id]["status"] == "crashed"
    assert got[bad.id]["message"] == message.format(id=bad.id)
    assert f"answering {'for case 0000000000000000' if fault == 'wrong-id' else 'a malformed result'} on purpose" \
        in got[bad.id]["stderr_tail"]
    assert got[after.id]["status"] == "ok" and progress.done == 2


def test_an_adapter_that_raises_is_recorded_as_crashed_by_the_worker_which_lives_on(tmp_path: Path) -> None:
    bad, after = tiny_case("fault=raise"), tiny_case("after")
    out = tmp_path / "r.jsonl"
    run_driver(["test-faulty"], [bad, after], out)
    got = results_by_case(out, "test-faulty")
    assert got[bad.id]["status"] == "crashed"
    assert got[bad.id]["message"] == f"adapter raised RuntimeError: test-faulty raises on case {bad.id} on purpose"
    assert got[after.id]["status"] == "ok"
    assert len(records(out, "header")) == 1, "the worker survived its adapter's exception: no restart"


def test_an_import_error_is_recorded_and_stops_only_that_implementation_after_three(tmp_path: Path) -> None:
    cases = [tiny_case(f"case-{n}") for n in range(5)]
    out = tmp_path / "r.jsonl"
    broken, steady = run_driver(["test-import-error", "test-steady"], cases, out, jobs=2)

    got = results_by_case(out, "test-import-error")
    assert set(got) == {c.id for c in cases[:3]}, "exactly three attempts, then stop"
    for rec in got.values():
        assert rec["status"] == "import-error"
        assert "RuntimeError: test-import-error raises at import on purpose" in rec["message"]
        assert "about to fail at import, on purpose" in rec["stderr_tail"]
    assert broken.stopped is not None
    assert "test-import-error: stopped after 3 failures in a row" in broken.stopped
    assert "other implementations go on" in broken.stopped
    # The other implementation in the same run completes every case.
    assert steady.stopped is None
    assert set(results_by_case(out, "test-steady")) == {c.id for c in cases}


def test_a_worker_hanging_at_import_is_an_import_error_after_the_start_timeout(tmp_path: Path) -> None:
    cases = [tiny_case(f"case-{n}") for n in range(4)]
    out = tmp_path / "r.jsonl"
    [progress] = run_driver(["test-import-hang"], cases, out, start_timeout=SHORT_TIMEOUT)
    got = results_by_case(out, "test-import-hang")
    assert set(got) == {c.id for c in cases[:3]}
    for rec in got.values():
        assert rec["status"] == "import-error"
        assert rec["message"] == f"no answer within {SHORT_TIMEOUT:.0f} s (start)"
        assert "hanging at import, on purpose" in rec["stderr_tail"]
    assert progress.stopped and "stopped after 3 failures in a row" in progress.stopped


def test_three_different_failures_in_a_row_stop_only_that_implementation(tmp_path: Path) -> None:
    cases = [tiny_case("fault=segv"), tiny_case("fault=hang"), tiny_case("fault=exit"), tiny_case("fine")]
    out = tmp_path / "r.jsonl"
    faulty, steady = run_driver(["test-faulty", "test-steady"], cases, out, case_timeout=SHORT_TIMEOUT)

    got = results_by_case(out, "test-faulty")
    assert [got[c.id]["status"] for c in cases[:3]] == ["crashed", "timeout", "crashed"]
    assert cases[3].id not in got
    assert faulty.stopped and "stopped after 3 failures in a row (last: crashed: worker exited with code 7" in faulty.stopped
    assert steady.stopped is None
    assert {r["status"] for r in results_by_case(out, "test-steady").values()} == {"ok"}
    assert len(results_by_case(out, "test-steady")) == 4


def test_failures_that_are_not_in_a_row_do_not_stop_the_implementation(tmp_path: Path) -> None:
    cases = [tiny_case("fault=segv"), tiny_case("fault=exit"), tiny_case("ok-1"),
             tiny_case("fault=segv again"), tiny_case("fault=exit again"), tiny_case("ok-2")]
    out = tmp_path / "r.jsonl"
    [progress] = run_driver(["test-faulty"], cases, out)
    assert progress.stopped is None
    assert [results_by_case(out, "test-faulty")[c.id]["status"] for c in cases] == \
        ["crashed", "crashed", "ok", "crashed", "crashed", "ok"]


def test_the_run_command_prints_why_an_implementation_stopped(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases", [tiny_case(f"case-{n}") for n in range(4)])
    proc = run_cli(tmp_path, *run_args(cases, tmp_path / "r.jsonl", "test-import-error", "test-steady"))
    assert proc.returncode == 0, proc.stderr
    assert "test-import-error: stopped after 3 failures in a row (last: import-error:" in proc.stderr
    assert len(results_by_case(tmp_path / "r.jsonl", "test-steady")) == 4


# --------------------------------------------------------------------------------------
# NaN and inf are values, judged by the explicit rules (harness.compare.values_agree)
# --------------------------------------------------------------------------------------

# Reference totals that are themselves non-finite, from finite float64 inputs:
# "inf": 1e300 * 1e10 overflows to inf, and (inf - 1)^2 = inf.
# "nan": a hidden layer makes two infinite units, the output adds them with weights +1 and -1:
#        inf - inf = NaN in any order of summation (a single dot of 1e300*1e10 - 1e300*1e10 is
#        not reliably NaN: a fused multiply-add gives -inf).
def reference_case(kind: str, note: str) -> spec.Case:
    if kind == "finite":
        return tiny_case(note)
    if kind == "inf":
        return tiny_case(note, x=[[1e300], [1.0]], kernel=[[1e10]])
    base = tiny_case(note, x=[[1e300], [1.0]])
    hidden = spec.Layer("hidden", "Dense", ("x",), {"units": 2, "activation": "linear", "use_bias": False},
                        {"kernel": np.array([[1e10, 1e10]])})
    out = spec.Layer("out", "Dense", ("hidden",), {"units": 1, "activation": "linear", "use_bias": False},
                     {"kernel": np.array([[1.0], [-1.0]])})
    return dataclasses.replace(base, layers=(hidden, out))


@pytest.mark.parametrize("note, reference_total, expected_verdict", [
    ("fault=nan", "finite", "unexplained"),  # NaN vs finite: a finding
    ("fault=inf", "finite", "unexplained"),  # inf vs finite: a finding
    ("fault=nan", "nan", "agree"),  # NaN vs NaN agrees
    ("", "nan", "agree"),  # (the test implementation's own total is the reference's NaN)
    ("fault=inf", "nan", "unexplained"),  # inf vs NaN
    ("fault=inf", "inf", "agree"),  # inf vs the same inf
    ("fault=-inf", "inf", "unexplained"),  # -inf vs inf
    ("fault=nan", "inf", "unexplained"),  # NaN vs inf
])
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",  # the reference's own inf and NaN
                            "ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_totals_are_recorded_as_values_and_judged_by_the_explicit_rules(
        tmp_path: Path, note: str, reference_total: str, expected_verdict: str) -> None:
    case = reference_case(reference_total, note)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = reference.compute(case, PROFILE, "test_on_batch").total
    assert {"finite": np.isfinite, "nan": np.isnan, "inf": np.isposinf}[reference_total](expected), expected
    out = tmp_path / "r.jsonl"
    run_driver(["test-faulty"], [case], out)
    rec = results_by_case(out, "test-faulty")[case.id]
    assert rec["status"] == "ok", rec
    fault = note.partition("=")[2]
    for path in rec["paths"]:
        assert path["status"] == "ok"
        if fault:
            assert path["total"] == fault, "a non-finite total travels as the string 'nan'/'inf'/'-inf'"
    # the loss verdicts (weights_moved and log_entries are judged on their own: test_observations.py)
    verdicts = {k: v for k, v in rec["verdicts"].items() if not k.endswith(("/weights_moved", "/log_entries"))}
    assert {v["verdict"] for v in verdicts.values()} == {expected_verdict}, verdicts
    if expected_verdict == "unexplained":
        assert {v["stage"] for v in verdicts.values()} == {"loss"}


def test_a_run_with_nan_totals_reports_findings_and_exits_1_not_a_crash(tmp_path: Path) -> None:
    cases = write_cases(tmp_path / "cases", [tiny_case("fault=nan"), tiny_case("fine")])
    out = tmp_path / "r.jsonl"
    args = [a for a in run_args(cases, out, "test-faulty") if a != "--exit-zero"]
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "FINDING test-faulty" in proc.stdout and "value nan" in proc.stdout
    assert len(records(out, "result")) == 2


# --------------------------------------------------------------------------------------
# Exit status of `run`: 1 findings, 4 failures (4 wins), --exit-zero 0; replay lines for both
# --------------------------------------------------------------------------------------


def replay_files(stdout: str) -> list[Path]:
    """The case file of every replay line `run` printed, in order."""
    return [Path(line.split("replay ", 1)[1].split(" --impl", 1)[0])
            for line in stdout.splitlines() if line.strip().startswith("replay: python -m harness replay ")]


@pytest.mark.parametrize("notes, impls, status", [
    (["fine"], ["test-faulty"], 0),
    (["fault=nan", "fine"], ["test-faulty"], 1),  # unexplained only
    (["fault=segv", "fine"], ["test-faulty"], 4),  # crashed only
    (["fault=hang", "fine"], ["test-faulty"], 4),  # timeout only
    (["fine"], ["test-import-error"], 4),  # import-error: the CI job with the wrong interpreter
    (["fault=nan", "fault=segv"], ["test-faulty"], 4),  # both: failures win over findings
])
def test_run_exits_1_on_findings_and_4_on_failures_which_win(
        tmp_path: Path, notes: list[str], impls: list[str], status: int) -> None:
    cases = write_cases(tmp_path / "cases", [tiny_case(n) for n in notes])
    out = tmp_path / "results" / "r.jsonl"
    args = [a for a in run_args(cases, out, *impls) if a != "--exit-zero"] + ["--timeout", str(SHORT_TIMEOUT)]
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    again = run_cli(tmp_path, *args, "--resume", "--exit-zero")  # nothing left to run: the same verdicts
    assert again.returncode == 0, again.stdout + again.stderr


def test_every_finding_and_error_row_has_a_replay_line_whose_case_file_is_beside_the_results(
        tmp_path: Path) -> None:
    nan, segv = tiny_case("fault=nan"), tiny_case("fault=segv")
    cases = write_cases(tmp_path / "cases", [nan, segv, tiny_case("fine")])
    out = tmp_path / "results" / "r.jsonl"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    proc = run_cli(elsewhere, *run_args(cases, out, "test-faulty"))
    assert proc.returncode == 0, proc.stderr  # --exit-zero
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("FINDING ", "ERROR "))]
    assert [r.split()[0] for r in rows] == ["FINDING", "FINDING", "ERROR"], proc.stdout
    assert f"ERROR test-faulty * case {segv.id}: crashed: worker killed by signal 11" in proc.stdout
    files = replay_files(proc.stdout)
    assert len(files) == len(rows), "one replay line per row"
    assert files == [out.parent / "r-cases" / f"{c.id}.json" for c in (nan, nan, segv)]
    for f in files:
        assert spec.load(f).id == f.stem, "the file a replay line names exists and holds that case"
    assert list(elsewhere.iterdir()) == [], "nothing is written in the current directory"


# --------------------------------------------------------------------------------------
# The driver killed (SIGKILL) or interrupted (Ctrl-C), then resumed
# --------------------------------------------------------------------------------------

PACE = 0.3  # seconds per case, so that the test can stop the driver midway


def resumable_corpus(folder: Path) -> Path:
    cases = [tiny_case(f"pace={PACE} n={n}") for n in range(6)]
    cases[2] = tiny_case(f"pace={PACE} fault=nan")  # a finding survives the resume
    cases[4] = tiny_case(f"pace={PACE} fault=segv")  # and so does a crash, with its stderr tail
    return write_cases(folder, cases)


def interrupted_then_resumed(tmp_path: Path, stop: Any) -> Path:
    """Run, stop the driver with `stop(proc)` once 3 results are in the file, then --resume."""
    cases = resumable_corpus(tmp_path / "cases")
    out = tmp_path / "interrupted.jsonl"
    proc = subprocess.Popen(harness_cmd(*run_args(cases, out, "test-steady", "test-faulty")), cwd=tmp_path,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: result_lines(out) >= 3, 60, "three results")
        stop(proc)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    n_before = result_lines(out)
    assert 3 <= n_before < 12, f"the driver was not stopped midway ({n_before} of 12 results)"
    resumed = run_cli(tmp_path, *run_args(cases, out, "test-steady", "test-faulty", extra=("--resume",)))
    assert resumed.returncode == 0, resumed.stderr
    return out


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The resumable corpus run once, start to end (shared: the runs compared with it take
    the same cases, whose ids do not depend on the folder)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    cases = resumable_corpus(folder / "cases")
    out = folder / "uninterrupted.jsonl"
    proc = subprocess.run(harness_cmd(*run_args(cases, out, "test-steady", "test-faulty")), cwd=folder, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_a_driver_killed_with_sigkill_then_resumed_gives_the_same_records(tmp_path: Path,
                                                                         uninterrupted_run: Path) -> None:
    def sigkill_driver_only(proc: subprocess.Popen[str]) -> None:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only; its worker sees stdin close and ends

    resumed = interrupted_then_resumed(tmp_path, sigkill_driver_only)
    assert canonical(resumed) == canonical(uninterrupted_run)


def test_ctrl_c_of_the_driver_stops_it_cleanly_and_resume_gives_the_same_records(tmp_path: Path,
                                                                                uninterrupted_run: Path) -> None:
    outcome: dict[str, Any] = {}

    def ctrl_c(proc: subprocess.Popen[str]) -> None:
        # A terminal's Ctrl-C: SIGINT to the whole foreground process group (driver and workers).
        os.killpg(proc.pid, signal.SIGINT)
        started = time.monotonic()
        _, outcome["stderr"] = proc.communicate(timeout=30)
        outcome["seconds"], outcome["status"] = time.monotonic() - started, proc.returncode

    resumed = interrupted_then_resumed(tmp_path, ctrl_c)
    assert outcome["seconds"] < 10, "Ctrl-C did not stop the driver promptly"
    assert outcome["status"] == 130, (outcome["status"], outcome["stderr"])
    assert "Traceback" not in outcome["stderr"], outcome["stderr"]
    assert "interrupted" in outcome["stderr"] and "--resume" in outcome["stderr"], outcome["stderr"]
    # The interrupt is not recorded as a crash of the case that was running.
    assert canonical(resumed) == canonical(uninterrupted_run)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (dead, not yet reaped by its parent) is gone too.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _ignore_sigint() -> None:
    """As a shell starts a background job (`cmd &`): SIGINT ignored, inherited by the driver."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("how, impl", [("ctrl-c", "test-faulty"), ("sigterm", "test-faulty"),
                                       ("sighup", "test-faulty"), ("ctrl-c", "test-import-hang"),
                                       ("ctrl-c-started-ignoring-it", "test-faulty")])
def test_an_interrupted_driver_kills_its_worker_and_records_nothing_for_the_running_case(
        tmp_path: Path, how: str, impl: str) -> None:
    # test-faulty is interrupted mid-case (the second), test-import-hang while it starts.
    cases = write_cases(tmp_path / "cases", [tiny_case("first"), tiny_case("fault=pid")])
    out, pidfile = tmp_path / "r.jsonl", tmp_path / "worker.pid"
    proc = subprocess.Popen(harness_cmd(*run_args(cases, out, impl)), cwd=tmp_path,
                            env={**ENV, "HARNESS_FAULTY_PIDFILE": str(pidfile)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_ignore_sigint if how.endswith("ignoring-it") else None)
    try:
        wait_for(pidfile.exists, 60, "the worker to start the second case")
        worker_pid = int(pidfile.read_text())
        if how.startswith("ctrl-c"):
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole foreground group
        else:
            # SIGTERM: a CI runner's timeout or `kill`; SIGHUP: the terminal closed. The driver only.
            os.kill(proc.pid, {"sigterm": signal.SIGTERM, "sighup": signal.SIGHUP}[how])
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:
        wait_for(lambda: process_gone(worker_pid), 10, f"worker {worker_pid} to be gone")
    finally:
        if not process_gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    expected = [tiny_case("first").id] if impl == "test-faulty" else []
    assert [r["case_id"] for r in records(out, "result")] == expected


def test_resume_cuts_a_partial_last_line_and_completes_the_run(tmp_path: Path, uninterrupted_run: Path) -> None:
    whole = uninterrupted_run
    resumable_corpus(tmp_path / "cases")
    data = whole.read_bytes()
    lines = data.split(b"\n")
    keep = b"\n".join(lines[:5]) + b"\n" + lines[5][: len(lines[5]) // 2]  # a write cut mid-record
    out = tmp_path / "cut.jsonl"
    out.write_bytes(keep)
    proc = run_cli(tmp_path, *run_args(tmp_path / "cases", out, "test-steady", "test-faulty", extra=("--resume",)))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(b"\n".join(lines[:5]) + b"\n"), "complete lines before the cut are kept"
    assert canonical(out) == canonical(whole)


def test_resume_reruns_a_last_record_that_lacks_its_newline_rather_than_losing_it(tmp_path: Path,
                                                                                  uninterrupted_run: Path) -> None:
    # A kill between the record's bytes and its newline: the line may parse, but resume cuts
    # it; counting it as done as well would drop that (case, implementation) for good.
    whole = uninterrupted_run
    resumable_corpus(tmp_path / "cases")
    out = tmp_path / "no-newline.jsonl"
    out.write_bytes(whole.read_bytes().rstrip(b"\n"))
    proc = run_cli(tmp_path, *run_args(tmp_path / "cases", out, "test-steady", "test-faulty", extra=("--resume",)))
    assert proc.returncode == 0, proc.stderr
    assert canonical(out) == canonical(whole)


def test_a_results_file_that_cannot_be_written_stops_the_run_loudly_and_resume_completes_it(
        tmp_path: Path, uninterrupted_run: Path) -> None:
    # A full disk, for real: the driver may write at most 6000 bytes (RLIMIT_FSIZE; SIGXFSZ
    # ignored, so the write fails with EFBIG instead of killing the process).
    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    cases = resumable_corpus(tmp_path / "cases")
    out = tmp_path / "full.jsonl"
    proc = subprocess.run(harness_cmd(*run_args(cases, out, "test-steady", "test-faulty")), cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=120, preexec_fn=small_disk)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "File too large" in proc.stderr and "--resume" in proc.stderr
    assert 1 <= result_lines(out) < 12
    resumed = run_cli(tmp_path, *run_args(cases, out, "test-steady", "test-faulty", extra=("--resume",)))
    assert resumed.returncode == 0, resumed.stderr
    assert canonical(out) == canonical(uninterrupted_run)


# --------------------------------------------------------------------------------------
# Bad input: exit 2, a message naming the file, the field and what was expected, results untouched
# --------------------------------------------------------------------------------------


def _bad_json_text() -> str:
    return '{"schema": 1, "dtype": "float64", "inputs": [ '


def _with(mutate: Any) -> str:
    raw = case_json()
    mutate(raw)
    return json.dumps(raw)


BAD_CASE_FILES = {
    "malformed-json": (_bad_json_text(), ["(line 1, column", "expected valid JSON"]),
    "inconsistent-shapes": (_with(lambda r: r["outputs"][0].update(target=[[1.0], [0.0], [2.0]])),
                            ["$.outputs[0].target", "expected shape (2, 1)"]),
    "kernel-shape": (_with(lambda r: r["layers"][0]["weights"].update(kernel=[[1.0, 2.0]])),
                     ["$.layers[0].weights.kernel", "expected shape"]),
    "unknown-loss": (_with(lambda r: r["outputs"][0].update(loss="mean_squared_eror")),
                     ["$.outputs[0].loss", "expected one of", "mean_squared_error", "mean_squared_eror"]),
    "unknown-layer": (_with(lambda r: r["layers"][0].update(type="Dense2")),
                      ["$.layers[0].type", "expected one of", "Dense", "Dense2"]),
    "target-outside-domain": (
        _with(lambda r: r["outputs"][0].update(loss="binary_crossentropy", target=[[1.0], [2.0]],
                                               loss_options={"from_logits": True})),
        ["$.outputs[0].target", "values in [0, 1]"]),
    "nan-constant": (json.dumps(case_json()).replace('"target": [[1.0], [0.0]]', '"target": [[NaN], [0.0]]'),
                     ["finite"]),
    "wrong-case-schema": (_with(lambda r: r.update(schema=2)), ["$.schema", "expected schema version 1"]),
    "field-of-the-wrong-type": (_with(lambda r: r.update(evaluate_batch_size="1")),
                                ["$.evaluate_batch_size", "expected an integer", "'1'"]),
    "not-an-object": ("[1, 2]", ["field $", "expected an object"]),
    "not-utf-8": (b'{"note": "caf\xe9"}', ["field (file)", "expected UTF-8 text", "byte 0xe9"]),
}


@pytest.fixture(scope="module")
def good_results_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("good")
    out = folder / "results.jsonl"
    good = write_cases(folder / "good", [tiny_case("good")])
    proc = subprocess.run(harness_cmd(*run_args(good, out, "test-steady")), cwd=folder, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


@pytest.fixture()
def existing_results(tmp_path: Path, good_results_bytes: bytes) -> Path:
    """A results file from a good run (and its cases in tmp_path/good): what bad input must never touch."""
    write_cases(tmp_path / "good", [tiny_case("good")])
    out = tmp_path / "results.jsonl"
    out.write_bytes(good_results_bytes)
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, lock files aside (a run that takes the results
    file's lock leaves its empty lock file; `fcntl` locks cannot be removed safely)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix != ".lock"}


def assert_refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, f"{needle!r} not in the message:\n{proc.stderr}"


@pytest.mark.parametrize("name", sorted(BAD_CASE_FILES))
def test_a_bad_case_file_is_refused_naming_file_and_field_and_results_are_untouched(
        tmp_path: Path, existing_results: Path, name: str) -> None:
    text, needles = BAD_CASE_FILES[name]
    folder = tmp_path / "bad"
    folder.mkdir()
    bad = folder / f"{name}.json"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = snapshot(tmp_path)
    for mode in ("--resume", "--overwrite"):
        proc = run_cli(tmp_path, *run_args(folder, existing_results, "test-steady", extra=(mode,)))
        assert_refused(proc, str(bad), *needles)
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("args, needles", [
    (("--impl", "nope"), ["--impl: unknown implementation nope", "expected one of", "test-steady"]),
    (("--impl", "test-steady", "--strict", "nope"), ["--strict", "nope", "tf_keras-2.21"]),
    (("--impl", "test-steady", "--timeout", "0"), ["--timeout", "a number of seconds > 0"]),
    (("--impl", "test-steady", "--values-per-structure", "0"), ["--values-per-structure", "an integer >= 1"]),
    (("--impl", "test-steady", "--timeout", "inf"), ["--timeout", "at most 86400", "inf"]),
    (("--impl", "test-steady", "--timeout", "nan"), ["--timeout", "a number of seconds > 0", "nan"]),
    (("--impl", "test-steady", "--cases", "no-such-folder"), ["no-such-folder", "an existing folder"]),
    (("--impl", "test-steady", "--cases", "results.jsonl"), ["results.jsonl", "a folder of case files, not a file"]),
    (("--impl", "test-steady", "-n", "-1"), ["-n: expected a number of drawn cases >= 0, got -1"]),
    (("--impl", "test-steady", "-n", "many"), ["-n", "invalid int value", "many"]),
    (("--impl", "test-steady", "--jobs", "0"), ["--jobs: expected a number of worker processes >= 1, got 0"]),
    (("--impl", "test-steady", "--profile", "huge"), ["--profile", "invalid choice", "huge"]),
    (("--impl", "test-steady", "--no-stored"), ["--cases and --no-stored"]),
])
def test_bad_arguments_are_refused_and_results_are_untouched(
        tmp_path: Path, existing_results: Path, args: tuple[str, ...], needles: list[str]) -> None:
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "run", "-n", "0", "--cases", tmp_path / "good", "--out", existing_results,
                   "--resume", *args)
    assert_refused(proc, *needles)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("mode", ["(none)", "--resume", "--overwrite"])
def test_out_naming_a_folder_is_refused_and_the_folder_is_untouched(tmp_path: Path, mode: str) -> None:
    good = write_cases(tmp_path / "good", [tiny_case("good")])
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "envA.jsonl").write_text("kept\n")
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, *run_args(good, folder, "test-steady", extra=() if mode == "(none)" else (mode,)))
    assert_refused(proc, f"{folder}: expected a results file (*.jsonl), got a folder")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in folder.iterdir()) == ["envA.jsonl"], "not even a lock file inside"


def test_out_under_a_file_is_refused_naming_that_file(tmp_path: Path) -> None:
    good = write_cases(tmp_path / "good", [tiny_case("good")])
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, *run_args(good, tmp_path / "notes.txt" / "r.jsonl", "test-steady"))
    assert_refused(proc, "r.jsonl", f"expected {tmp_path / 'notes.txt'} to be a folder, got a file")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("env", ["", "../elsewhere", "a/b"])
def test_an_env_name_that_is_a_path_is_refused_and_nothing_is_written(tmp_path: Path, env: str) -> None:
    good = write_cases(tmp_path / "good", [tiny_case("good")])
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, "run", "-n", "0", "--cases", good, "--impl", "test-steady", "--env", env)
    assert_refused(proc, "--env: expected a name", repr(env), "use --out")
    assert snapshot(tmp_path) == before and not (tmp_path / "reports").exists()


def test_an_existing_results_file_is_not_overwritten_without_resume_or_overwrite(
        tmp_path: Path, existing_results: Path) -> None:
    before = existing_results.read_bytes()
    proc = run_cli(tmp_path, "run", "-n", "0", "--cases", tmp_path / "good", "--out", existing_results,
                   "--impl", "test-steady")
    assert_refused(proc, str(existing_results), "--resume", "--overwrite")
    assert existing_results.read_bytes() == before


# The other commands: (argv, needles); the files they name are made by `other_command_files`.
OTHER_COMMANDS = {
    "cases-stats-of-no-cases": (["cases", "--stats", "-n", "0"], ["-n", "expected a number of cases >= 1", "got 0"]),
    "cases-write-negative-n": (["cases", "--write", "out", "-n", "-2"], ["-n", "expected a number of cases >= 0"]),
    "cases-write-onto-a-file": (["cases", "--write", "notes.txt", "-n", "1"],
                                ["--write notes.txt", "expected a folder", "got a file"]),
    "cases-show-missing-file": (["cases", "--show", "absent.json"], ["absent.json", "expected a readable file"]),
    "cases-show-not-utf-8": (["cases", "--show", "latin1.json"], ["latin1.json", "expected UTF-8 text"]),
    "replay-missing-file": (["replay", "absent.json", "--impl", "test-steady"],
                            ["absent.json", "expected a readable file"]),
    "replay-bad-case-file": (["replay", "bad.json", "--impl", "test-steady"], ["bad.json", "$.outputs[0].loss"]),
    "replay-zero-timeout": (["replay", "good.json", "--impl", "test-steady", "--timeout", "0"],
                            ["--timeout", "a number of seconds > 0"]),
    "replay-unknown-impl": (["replay", "good.json", "--impl", "nope"], ["--impl: unknown implementation nope"]),
    "rules-update-missing-file": (["rules", "--update", "ABSENT.md"], ["ABSENT.md", "expected a readable UTF-8 text file"]),
    "rules-update-without-markers": (["rules", "--update", "notes.txt"],
                                     ["notes.txt", "expected a generated rules section", "found none"]),
    "unknown-command": (["rnu"], ["invalid choice", "rnu"]),
}


def other_command_files(folder: Path) -> None:
    (folder / "notes.txt").write_text("a file, not a folder, and no rules markers\n")
    (folder / "latin1.json").write_bytes(b'{"note": "caf\xe9"}')
    spec.dump(tiny_case("good"), folder / "good.json")
    (folder / "bad.json").write_text(_with(lambda r: r["outputs"][0].update(loss="nope")))


@pytest.mark.parametrize("name", sorted(OTHER_COMMANDS))
def test_other_commands_refuse_bad_input_naming_it_and_change_nothing(tmp_path: Path, name: str) -> None:
    argv, needles = OTHER_COMMANDS[name]
    other_command_files(tmp_path)
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, *argv)
    assert_refused(proc, *needles)
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()


def _schema_99(data: bytes) -> bytes:
    return data.replace(b'"schema": 1', b'"schema": 99')


def _corrupt_middle(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[1] = b"\x00\xff garbage \x13" + lines[1][10:]
    return b"\n".join(lines)


def _cut_middle(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[1] = lines[1][: len(lines[1]) // 2]  # a line cut short, followed by complete lines
    return b"\n".join(lines)


def _not_an_object(data: bytes) -> bytes:
    return b"[1, 2, 3]\n" + data


def _missing_field(data: bytes) -> bytes:
    lines = data.split(b"\n")
    rec = json.loads(lines[2])
    del rec["impl"]
    lines[2] = json.dumps(rec).encode()
    return b"\n".join(lines)


def _edit_line(number: int, edit: Any) -> Any:
    """A damage that parses line `number` (1: the header, 2: the case, 3: the result of the
    good run), applies `edit` to the record and writes it back."""
    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        rec = json.loads(lines[number - 1])
        edit(rec)
        lines[number - 1] = json.dumps(rec).encode()
        return b"\n".join(lines)
    return damage


def _first_verdict(edit: Any) -> Any:
    return _edit_line(3, lambda rec: edit(rec["verdicts"]["compute_loss/eager"]))


def _cut_header(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[0] = lines[0][: len(lines[0]) // 2]  # a header cut short, followed by complete lines
    return b"\n".join(lines)


def _text_in_the_middle(data: bytes) -> bytes:
    lines = data.split(b"\n")
    return b"\n".join(lines[:1] + [b"harness run: 1 cases x 1 implementations"] + lines[1:])


def _without_line(number: int) -> Any:
    return lambda data: b"\n".join(line for n, line in enumerate(data.split(b"\n"), start=1) if n != number)


VERDICT_KINDS = "expected one of agree, explained, unexplained, error, harness-error, unsupported, crashed, timeout, import-error"

# Refused by every reader (resultsfile.check_record): `run --resume` and `report`.
BAD_RESULTS = {
    "incompatible-schema": (_schema_99, ["line 1", "field schema", "expected results schema version 1", "99"]),
    "corrupted-line": (_corrupt_middle, ["line 2", "expected a JSON record"]),
    "truncated-line-in-the-middle": (_cut_middle, ["line 2", "expected a JSON record"]),
    "truncated-header": (_cut_header, ["line 1", "expected a JSON record"]),
    "text-line-in-the-middle": (_text_in_the_middle, ["line 2", "expected a JSON record"]),
    "not-an-object": (_not_an_object, ["line 1", "expected a JSON object"]),
    "missing-field": (_missing_field, ["line 3", "field impl", "missing"]),
    "header-versions-not-an-object": (_edit_line(1, lambda r: r.update(versions="2.21")),
                                      ["line 1", "field versions", "expected an object", "'2.21'"]),
    "case-record-not-an-object": (_edit_line(2, lambda r: r.update(case=5)),
                                  ["line 2", "field case", "expected an object", "got 5"]),
    "impl-not-a-string": (_edit_line(3, lambda r: r.update(impl=7)),
                          ["line 3", "field impl", "expected a non-empty string", "got 7"]),
    "case-id-null": (_edit_line(3, lambda r: r.update(case_id=None)),
                     ["line 3", "field case_id", "expected a non-empty string", "got None"]),
    "status-unknown": (_edit_line(3, lambda r: r.update(status="fine")),
                       ["line 3", "field status", "expected one of ok, crashed, timeout, import-error", "'fine'"]),
    "paths-not-a-list": (_edit_line(3, lambda r: r.update(paths={})),
                         ["line 3", "field paths", "expected a list of path results"]),
    "verdicts-not-an-object": (_edit_line(3, lambda r: r.update(verdicts="agree")),
                               ["line 3", "field verdicts", "expected an object", "'agree'"]),
    "verdict-of-the-wrong-type": (_first_verdict(lambda v: v.update(verdict=3)),
                                  ["line 3", "field verdicts.compute_loss/eager.verdict", VERDICT_KINDS, "got 3"]),
    "verdict-without-its-kind": (_first_verdict(lambda v: v.pop("verdict")),
                                 ["line 3", "field verdicts.compute_loss/eager.verdict", VERDICT_KINDS, "got None"]),
    "verdict-rules-not-an-object": (_first_verdict(lambda v: v.update(verdict="explained", rules=3)),
                                    ["line 3", "field verdicts.compute_loss/eager.rules", "expected an object"]),
    "verdict-value-not-a-number": (_first_verdict(lambda v: v.update(value="1.5")),
                                   ["line 3", "field verdicts.compute_loss/eager.value",
                                    "expected a number or 'nan', 'inf', '-inf'", "'1.5'"]),
}

# Refused by `run --resume`, which rebuilds the cases of its findings and failures to write the
# case files that replay lines name (the report checks these its own way).
BAD_RESULTS_FOR_RESUME = {
    **BAD_RESULTS,
    "case-record-with-a-wrong-field": (_edit_line(2, lambda r: r["case"]["outputs"][0].update(loss="nope")),
                                       ["line 2", "field case.outputs[0].loss", "expected one of", "'nope'"]),
    "result-without-its-case-record": (_without_line(2), ["line 2", "field case_id",
                                                          "expected the id of a case recorded in this file"]),
}


@pytest.fixture()
def more_cases(tmp_path: Path) -> Path:
    """The good case and one the results file does not have yet: a resume that accepted the
    file would append a record for it, so "untouched" proves something."""
    return write_cases(tmp_path / "more", [tiny_case("good"), tiny_case("not run yet")])


@pytest.mark.parametrize("name", sorted(BAD_RESULTS_FOR_RESUME))
def test_resume_refuses_a_bad_results_file_naming_file_line_and_field_and_leaves_it_untouched(
        tmp_path: Path, existing_results: Path, more_cases: Path, name: str) -> None:
    damage, needles = BAD_RESULTS_FOR_RESUME[name]
    existing_results.write_bytes(damage(existing_results.read_bytes()))
    before = snapshot(tmp_path)
    proc = run_cli(tmp_path, *run_args(more_cases, existing_results, "test-steady", extra=("--resume",)))
    assert_refused(proc, str(existing_results), *needles)
    assert snapshot(tmp_path) == before


def test_resume_of_an_undamaged_file_runs_the_missing_case(tmp_path: Path, existing_results: Path,
                                                          more_cases: Path) -> None:
    # The control of the test above: the same resume on the file as the good run wrote it.
    proc = run_cli(tmp_path, *run_args(more_cases, existing_results, "test-steady", extra=("--resume",)))
    assert proc.returncode == 0, proc.stderr
    assert set(results_by_case(existing_results, "test-steady")) == {tiny_case("good").id,
                                                                     tiny_case("not run yet").id}


def test_a_bad_results_file_with_a_partial_last_line_is_refused_before_anything_is_cut(
        tmp_path: Path, existing_results: Path) -> None:
    # Damage in the middle *and* a partial last line: refusing must not have cut the last line.
    data = _schema_99(existing_results.read_bytes()) + b'{"kind": "res'
    existing_results.write_bytes(data)
    proc = run_cli(tmp_path, *run_args(tmp_path / "good", existing_results, "test-steady", extra=("--resume",)))
    assert_refused(proc, str(existing_results), "field schema")
    assert existing_results.read_bytes() == data


def report_cmd() -> list[str]:
    """`python -m harness report`, or its module itself while the command is not registered."""
    from harness import cli

    return ["report"] if "report" in cli.COMMANDS else []


@pytest.mark.parametrize("name", sorted(BAD_RESULTS))
def test_report_refuses_a_bad_results_file_and_keeps_the_previous_report(
        tmp_path: Path, existing_results: Path, name: str) -> None:
    damage, needles = BAD_RESULTS[name]
    existing_results.write_bytes(damage(existing_results.read_bytes()))
    before = existing_results.read_bytes()
    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text("the previous report")
    cmd = report_cmd()
    argv = harness_cmd(*cmd, existing_results, "--out", page) if cmd else \
        [PYTHON, "-m", "harness.commands.report", str(existing_results), "--out", str(page)]
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert_refused(proc, str(existing_results), *needles)
    assert existing_results.read_bytes() == before
    assert page.read_text() == "the previous report"


# --------------------------------------------------------------------------------------
# Case files are data: no pickle, no eval, no import of user code
# --------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this would run `touch MARK`."""

    def __init__(self, mark: Path):
        self.mark = mark

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.mark}",))


CODE = "__import__('os').system('touch {mark}')"


def test_a_pickle_payload_named_json_is_refused_as_not_json_and_never_unpickled(tmp_path: Path) -> None:
    mark = tmp_path / "MARK"
    folder = tmp_path / "cases"
    folder.mkdir()
    bad = folder / "payload.json"
    bad.write_bytes(pickle.dumps(_Payload(mark), protocol=0))
    with pytest.raises(spec.CaseError, match="expected valid JSON"):
        spec.load(bad)
    proc = run_cli(tmp_path, *run_args(folder, tmp_path / "r.jsonl", "test-steady"))
    assert_refused(proc, str(bad), "valid JSON")
    assert not mark.exists()
    assert not (tmp_path / "r.jsonl").exists()


def test_code_in_a_free_text_field_stays_data(tmp_path: Path) -> None:
    mark = tmp_path / "MARK"
    raw = case_json()
    raw["note"] = CODE.format(mark=mark)
    folder = tmp_path / "cases"
    folder.mkdir()
    # an unknown key is refused by name (not dropped), and nothing in it runs
    (folder / "code.json").write_text(json.dumps({**raw, "__reduce__": ["os.system", [f"touch {mark}"]]}))
    with pytest.raises(spec.CaseError, match=r"field \$\.__reduce__: expected a known field"):
        spec.load(folder / "code.json")
    assert not mark.exists()
    (folder / "code.json").write_text(json.dumps(raw))

    case = spec.load(folder / "code.json")
    assert case.note == CODE.format(mark=mark)
    out = tmp_path / "r.jsonl"
    proc = run_cli(tmp_path, *run_args(folder, out, "test-steady"))
    assert proc.returncode == 0, proc.stderr
    assert not mark.exists()
    [rec] = records(out, "case")
    assert rec["case"]["note"] == CODE.format(mark=mark)


@pytest.mark.parametrize("where, mutate", [
    ("$.outputs[0].loss", lambda r, code: r["outputs"][0].update(loss=code)),
    ("$.layers[0].type", lambda r, code: r["layers"][0].update(type=code)),
    ("$.layers[0].config.activation", lambda r, code: r["layers"][0]["config"].update(activation=code)),
    ("$.outputs[0].loss_options", lambda r, code: r["outputs"][0]["loss_options"].update({code: 1})),
    ("$.dtype", lambda r, code: r.update(dtype=code)),
])
def test_code_in_a_name_field_is_rejected_cleanly_and_never_run(tmp_path: Path, where: str, mutate: Any) -> None:
    mark = tmp_path / "MARK"
    raw = case_json()
    mutate(raw, CODE.format(mark=mark))
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "code.json").write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError) as caught:
        spec.load(folder / "code.json")
    assert where in str(caught.value)
    proc = run_cli(tmp_path, *run_args(folder, tmp_path / "r.jsonl", "test-steady"))
    assert_refused(proc, where)
    assert not mark.exists()


# --------------------------------------------------------------------------------------
# Two runs on one results file: the second is refused, never interleaved
# --------------------------------------------------------------------------------------


def test_a_second_run_on_the_same_results_file_is_refused_and_never_interleaves(tmp_path: Path) -> None:
    # 6 s in all: time for the two refused runs to start and be refused on a loaded machine.
    slow = write_cases(tmp_path / "slow", [tiny_case(f"pace=1.0 n={n}") for n in range(6)])
    out = tmp_path / "r.jsonl"
    first = subprocess.Popen(harness_cmd(*run_args(slow, out, "test-steady")), cwd=tmp_path, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: result_lines(out) >= 1, 60, "the first run's first result")
        for mode in ("--resume", "--overwrite"):
            second = run_cli(tmp_path, *run_args(slow, out, "test-faulty", extra=(mode,)))
            assert_refused(second, str(out), "another run is writing this results file")
        assert first.poll() is None, "the first run ended before the second was tried: the test proved nothing"
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert {r["impl"] for r in records(out) if r["kind"] != "case"} == {"test-steady"}
    assert len(records(out, "result")) == 6 and len(records(out, "header")) == 1
