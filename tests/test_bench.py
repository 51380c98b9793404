"""The benchmark (`python -m harness bench`, harness/bench.py): it prints its figures, and its
value check between the harness and the naive yardstick reports a difference when there is one.

Behaviour only: no wall time is asserted (DESIGN.md section 4: speed targets are figures the
benchmark prints). The end-to-end run uses keras3-torch, whose paths are all eager (no tracing,
no XLA), so three cases take seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import bench
from harness.results import ImplResult, PathResult
from harness.strategies import corpus

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def _result(case_id: str, total: float, prediction: float = 0.5, status: str = "ok") -> ImplResult:
    paths = [PathResult("test_on_batch", "eager", status, total=total if status == "ok" else None,
                        terms={"regularization": 0.25} if status == "ok" else {},
                        error_type=None if status == "ok" else "ValueError")]
    return ImplResult(case_id=case_id, impl="x", paths=paths, predictions={"out": [[prediction]]})


CASE = corpus(0, 1, vocabulary_version=1)[0]  # float64: rtol 1e-9 (harness.tolerances.TOLERANCES)


def test_compare_finds_no_difference_between_equal_runs() -> None:
    assert bench.compare([CASE], {CASE.id: _result(CASE.id, 1.5)}, {CASE.id: _result(CASE.id, 1.5)}) == []


def test_compare_reports_a_total_beyond_tolerance_and_ignores_rounding() -> None:
    rounding = 1.5 * (1 + 1e-12)  # far inside float64's 1e-9
    assert bench.compare([CASE], {CASE.id: _result(CASE.id, 1.5)}, {CASE.id: _result(CASE.id, rounding)}) == []
    lines = bench.compare([CASE], {CASE.id: _result(CASE.id, 1.5)}, {CASE.id: _result(CASE.id, 1.5 * 1.01)})
    assert len(lines) == 1 and lines[0].startswith(f"{CASE.id} test_on_batch/eager: total 1.5 !=")


def test_compare_reports_statuses_predictions_and_missing_answers() -> None:
    ok, err = _result(CASE.id, 1.5), _result(CASE.id, 1.5, status="error")
    assert "status ok != error" in bench.compare([CASE], {CASE.id: ok}, {CASE.id: err})[0]
    lines = bench.compare([CASE], {CASE.id: ok}, {CASE.id: _result(CASE.id, 1.5, prediction=0.6)})
    assert lines == [f"{CASE.id} predictions/out: differ (max |diff| {abs(0.6 - 0.5)})"]
    assert bench.compare([CASE], {CASE.id: ok}, {}) == [f"{CASE.id} *: answered by harness only"]


@pytest.mark.differential
def test_bench_prints_its_figures_and_reports_a_planted_difference() -> None:
    pytest.importorskip("torch")
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "bench", "--impl", "keras3-torch", "-n", "3", "--workers", "1",
         "--plant-difference"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr[-3000:]  # 1: a value differs (the planted one)
    assert re.search(r"harness: +\d+\.\d+ cases/s", out), out
    assert re.search(r"naive: +\d+\.\d+ cases/s", out), out
    assert re.search(r"ratio harness/naive: \d+\.\d+x", out), out
    assert re.search(r"harness overhead outside Keras: \d+\.\d+% of case time", out), out
    assert re.search(r"harness worker memory after 3 cases \(its own\): RSS \d+ MiB, peak \d+ MiB", out), out
    planted = re.search(r"planted a difference \(total x 1.01\) in the naive run at (\S+ \S+)", proc.stderr)
    assert planted, proc.stderr[-3000:]
    differences = re.findall(r"^    (\S+ \S+): (.*)$", out, flags=re.M)
    # Exactly the planted (case, path) differs: the harness and the naive way agree elsewhere.
    assert [where for where, _ in differences] == [planted.group(1)], out
    assert differences[0][1].startswith("total "), out


def test_rule_yield_prints_rule_changes_per_minute_of_each_corpus_and_their_ratio() -> None:
    pytest.importorskip("keras")
    proc = subprocess.run([sys.executable, "-m", "harness", "bench", "--impl", "keras3-numpy", "--rule-yield"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    rows = re.findall(r"^  (.+): (\d+) cases, [\d.]+ s of worker time, (\d+) of (\d+) rule changes distinguished "
                      r"\(keras3 3\.15\.1 backend=numpy\): ([\d.]+) per minute$", out, flags=re.M)
    assert [r[0] for r in rows] == ["ci (chosen)", "first 12"], out
    chosen, first = rows
    assert int(chosen[2]) > int(first[2])  # the chosen cases test more rules (harness/ci_selection.json)
    assert re.search(r"^  ci \(chosen\) / first 12: \d+\.\d+x per minute$", out, flags=re.M), out


# --------------------------------------------------------------------------------------
# The driver options that serve throughput and memory (harness/driver.py run_all,
# run_implementation), on the framework-free test implementation (harness/impls/faulty.py)
# --------------------------------------------------------------------------------------


def _driver_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, **kwargs) -> tuple[list, list]:
    from harness import driver, resultsfile
    from harness.resultsfile import ResultsWriter

    monkeypatch.setenv("HARNESS_TEST_IMPLS", "1")  # workers inherit it: test-steady is listed
    out = tmp_path / "results.jsonl"
    with ResultsWriter(out, resume=False, overwrite=True) as writer:
        progresses = driver.run_all(["test-steady"], corpus(0, n), writer, strict_profile="tf_keras-2.21",
                                    case_timeout=30.0, start_timeout=60.0, **kwargs)
    records = [r for _, r in resultsfile.iter_records(out)]
    return progresses, records


def test_jobs_beyond_the_implementations_share_one_implementations_cases(tmp_path, monkeypatch) -> None:
    progresses, records = _driver_run(tmp_path, monkeypatch, 5, jobs=2)
    ids = sorted(r["case_id"] for r in records if r["kind"] == "result")
    assert ids == sorted(c.id for c in corpus(0, 5))  # every case once
    assert len([r for r in records if r["kind"] == "header"]) == 2  # two workers of test-steady
    assert [(p.impl, p.done, p.total) for p in progresses] == [("test-steady", 5, 5)]


def test_a_worker_is_replaced_after_max_cases_per_worker(tmp_path, monkeypatch) -> None:
    _, records = _driver_run(tmp_path, monkeypatch, 5, max_cases_per_worker=2)
    kinds = [r["kind"] for r in records if r["kind"] in ("header", "result")]
    assert kinds == ["header", "result", "result", "header", "result", "result", "header", "result"]


def test_deal_keeps_a_structures_value_variants_together_in_order() -> None:
    from harness import driver

    grouped = corpus(0, 9, values_per_structure=3, vocabulary_version=1)  # structures A A A B B B C C C
    shares = driver.deal(grouped, 2)
    assert [c.id for c in shares[0]] == [c.id for c in grouped[0:3] + grouped[6:9]]  # A, C
    assert [c.id for c in shares[1]] == [c.id for c in grouped[3:6]]  # B
    plain = corpus(0, 5, vocabulary_version=1)  # distinct structures: one by one, as cases[k::shares]
    assert [[c.id for c in s] for s in driver.deal(plain, 2)] == [[c.id for c in plain[k::2]] for k in range(2)]
