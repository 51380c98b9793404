"""What a path observed besides its numbers is judged (harness.compare_observations):

- `weights_moved` of train_on_batch and fit at learning rate 0: False agrees; True on a finite
  loss is a finding (stage "weights_moved"); True on a non-finite loss agrees (0 x a non-finite
  gradient is NaN); no observation, no verdict;
- the per-output log entries a path returns ("output/<name>"): exactly those of the reference
  breakdown for two outputs or more, none for one; a missing or an extra one is a finding
  (stage "log_entries"), not a gap;
- both are verdicts of judging.judge, and the report counts them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness import compare, compare_observations, judging, reference, spec
from harness.reference import rules
from harness.report import loading
from harness.results import ImplResult, PathResult

ROOT = Path(__file__).resolve().parent.parent
CASE = spec.load(ROOT / "cases" / "motivating_two_outputs.json")
RECORDED = ROOT / "tests" / "data" / "results"
PROFILE = "tf_keras-2.21"


def breakdown(path: str, case: spec.Case = CASE):
    return reference.compute(case, dict(rules.PROFILES[PROFILE]), path)


def reported(path: str, *, total: float | None = None, moved: bool | None = None,
             drop: tuple[str, ...] = (), add: tuple[str, ...] = (), case: spec.Case = CASE) -> PathResult:
    """A PathResult as an adapter would report the reference's numbers, with its log entries
    changed (`drop`, `add`) and `weights_moved` as given (per-output entries for two outputs or
    more, as Keras logs them)."""
    b = breakdown(path, case)
    terms = {k: v for k, v in b.terms.items() if k.startswith("output/") and k not in drop and len(case.outputs) > 1}
    terms.update({k: 1.0 for k in add})
    return PathResult(path, "eager", "ok", total=b.total if total is None else total, terms=terms, weights_moved=moved)


def judged(*paths: PathResult, case: spec.Case = CASE) -> dict[str, compare.Verdict]:
    return compare_observations.judge(case, ImplResult(case.id, "tf_keras", paths=list(paths)), PROFILE,
                                      compare.ReferenceCache(case))


def test_a_zero_rate_step_that_leaves_the_weights_agrees() -> None:
    v = judged(reported("train_on_batch", moved=False))["train_on_batch/eager/weights_moved"]
    assert v.verdict == "agree"


def test_a_zero_rate_step_that_moves_the_weights_on_a_finite_loss_is_a_finding() -> None:
    v = judged(reported("fit", moved=True))["fit/eager/weights_moved"]
    assert (v.verdict, v.stage) == ("unexplained", "weights_moved")
    assert "learning rate 0" in v.reason and math.isfinite(v.expected)


def test_weights_moved_on_a_non_finite_loss_agrees_naming_why() -> None:
    v = judged(reported("train_on_batch", total=math.nan, moved=True))["train_on_batch/eager/weights_moved"]
    assert v.verdict == "agree" and "non-finite" in v.reason


def test_no_weights_moved_verdict_without_the_observation_or_on_a_path_that_raised() -> None:
    out = judged(reported("train_on_batch", moved=None),
                 PathResult("fit", "eager", "error", error_type="ValueError", error_message="x"))
    assert not any(k.endswith("/weights_moved") for k in out)
    assert "fit/eager/log_entries" not in out


def test_every_per_output_log_entry_present_agrees() -> None:
    out = judged(*(reported(p) for p in compare_observations.LOG_PATHS))
    assert {k: v.verdict for k, v in out.items() if k.endswith("/log_entries")} == {
        f"{p}/eager/log_entries": "agree" for p in compare_observations.LOG_PATHS}


def test_a_missing_log_entry_is_a_difference_not_a_gap() -> None:
    name = next(k for k in breakdown("test_on_batch").terms if k.startswith("output/"))
    v = judged(reported("test_on_batch", drop=(name,)))["test_on_batch/eager/log_entries"]
    assert (v.verdict, v.stage, v.differing_terms) == ("unexplained", "log_entries", [name])
    assert f"missing {name}" in v.reason


def test_an_extra_log_entry_is_a_difference() -> None:
    v = judged(reported("evaluate", add=("output/ghost",)))["evaluate/eager/log_entries"]
    assert (v.verdict, v.differing_terms) == ("unexplained", ["output/ghost"])


def test_a_single_output_model_returns_no_per_output_entry() -> None:
    one = spec.load(next(p for p in sorted((ROOT / "cases").rglob("*.json")) if len(spec.load(p).outputs) == 1))
    assert judged(reported("test_on_batch", case=one), case=one)["test_on_batch/eager/log_entries"].verdict == "agree"
    v = judged(reported("test_on_batch", add=(f"output/{one.outputs[0].name}",), case=one), case=one)
    assert v["test_on_batch/eager/log_entries"].verdict == "unexplained"


def test_compute_loss_returns_a_number_not_logs_so_it_has_no_log_entries_verdict() -> None:
    assert judged(PathResult("compute_loss", "eager", "ok", total=1.0)) == {}


def test_compare_judge_returns_the_observation_verdicts_too() -> None:
    result = ImplResult(CASE.id, "tf_keras", paths=[reported("train_on_batch", moved=False)])
    out = judging.judge(CASE, result, {"tf_keras": "2.21.0", "tensorflow": "2.21.0"})
    assert {"train_on_batch/eager", "train_on_batch/eager/weights_moved", "train_on_batch/eager/log_entries"} <= set(out)


@pytest.mark.skipif(not RECORDED.is_dir(), reason="no recorded results")
def test_no_recorded_keras_run_is_flagged_by_the_observation_verdicts() -> None:
    """The expected log entries are those every recorded implementation returns (Keras 3 on
    jax and torch, tf_keras eager and graph, tf.keras 2.15, keras 2.3.1)."""
    flagged = []
    for path in sorted(RECORDED.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for key, v in (record.get("verdicts") or {}).items():
                if key.endswith(("/weights_moved", "/log_entries")) and v["verdict"] != "agree":
                    flagged.append((path.name, record["impl"], key, v))
    assert flagged == []


@pytest.mark.skipif(not RECORDED.is_dir(), reason="no recorded results")
def test_the_report_counts_the_observation_verdicts_in_the_loss_section() -> None:
    report = loading.load(sorted(RECORDED.glob("*.jsonl")))
    keys = [m.key for m in report.all_members() if m.key.endswith(("/weights_moved", "/log_entries"))]
    assert keys, "no observation verdict loaded"
    counted = sum(sum(c.values()) for c in report.section_counts().values())
    assert counted == len(report.all_members())
    assert {loading.section_of(k) for k in keys} <= {"loss", "distribution"}
