"""Verdicts on what a path observed besides its numbers: did a learning-rate-0 step move the
weights, and which per-output log entries did the path return.

Keys (a distributed run's carry its prefix, "distribution/<path>/<mode>/..."):

    <path>/<mode>/weights_moved   train_on_batch and fit run SGD at learning rate 0
                                  (harness/impls/paths.py `_run_path`): the runner
                                  snapshots every weight before and after the call and records
                                  `weights_moved` (exact comparison, NaN equal to NaN).
    <path>/<mode>/log_entries     the "output/<name>" terms of test_on_batch, train_on_batch,
                                  evaluate and fit: the `<name>_loss` entries of the logs.

weights_moved, decided from how it is recorded: at learning rate 0 plain SGD computes
w - 0 x g, which is w exactly for every finite g, and NaN where g is infinite or NaN. So
- False -> `agree`;
- True while the loss of that path is non-finite (the reference total under the expected
  profile, or the total or a term the implementation reported) -> `agree`, reason naming it:
  0 x a non-finite gradient is NaN, arithmetic rather than a Keras semantics (recorded runs:
  tf_keras and tf.keras fit on a fully masked batch, case 378563e15ecbf403);
- True on a finite loss -> `unexplained` at stage "weights_moved": a zero-rate step changed the
  model (a NaN written into a weight, an optimizer that ignores the rate, a metric variable
  counted as a weight), which no rule models;
- None (the path raised, is unsupported, or does not train) -> no verdict.

log_entries: the expected set is the reference breakdown's "output/<name>" terms when the
model has two or more outputs, else none, under the rule `per_output_log_entries`
(from_two_outputs; Keras 3 before 3.5 logs none, keras-team/keras#20023). A missing or an extra entry is `unexplained` at stage
"log_entries" with the entries in `differing_terms`: a difference, not a silent gap
(compare.matches judges only the values of the entries the reference models).
compute_loss returns a number, not logs: no log_entries verdict.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from harness.compare import ReferenceCache, Verdict
from harness.reference import rules as rules_mod
from harness.results import PATHS, TRAIN_PATHS, ImplResult, PathResult
from harness.spec import Case

LOG_PATHS = tuple(p for p in PATHS if p != "compute_loss")  # every path that returns logs

# The rules of what a path logs, which change no reference number (harness.coverage tests them on
# the log entries: reference.aggregate.logged_outputs).
RULES = ("per_output_log_entries",)


def judge(case: Case, result: ImplResult, profile_name: str, cache: ReferenceCache,
          path_verdicts: Mapping[str, Verdict] | None = None) -> dict[str, Verdict]:
    """The weights_moved and log_entries verdicts of one result (see the module docstring).
    Each path's are judged under the profile its loss verdict in `path_verdicts` was judged
    under (the semantics table may scope a row to a path or mode), else under `profile_name`."""
    if result.status != "ok":
        return {}
    prefix = "distribution/" if result.distribution is not None else ""
    out: dict[str, Verdict] = {}
    for p in result.paths:
        if p.status != "ok":
            continue
        name = getattr((path_verdicts or {}).get(prefix + p.key), "profile", "") or profile_name
        expected = cache.compute(rules_mod.profile(name), p.path)
        if p.weights_moved is not None and p.path in TRAIN_PATHS:
            out[f"{prefix}{p.key}/weights_moved"] = judge_weights_moved(p, name, expected)
        if p.path in LOG_PATHS:
            out[f"{prefix}{p.key}/log_entries"] = judge_log_entries(p, name, expected)
    return out


def _finite(x: float | None) -> bool:
    return x is None or math.isfinite(x)


def judge_weights_moved(p: PathResult, profile_name: str, expected: Any) -> Verdict:
    if not p.weights_moved:
        return Verdict("agree", profile_name)
    if not _finite(expected.total):
        return Verdict("agree", profile_name, reason=f"expected: the reference loss is {expected.total} "
                                                     "(0 x a non-finite gradient is NaN)")
    if not (_finite(p.total) and all(_finite(v) for v in p.terms.values())):
        return Verdict("agree", profile_name, reason="expected: the loss the implementation reported is "
                                                     "non-finite (0 x a non-finite gradient is NaN)")
    return Verdict("unexplained", profile_name, stage="weights_moved", value=p.total, expected=expected.total,
                   reason=f"{p.path} at learning rate 0 changed the weights on a finite loss")


def judge_log_entries(p: PathResult, profile_name: str, expected: Any) -> Verdict:
    want = set(expected.log_entries)
    got = {k for k in p.terms if k.startswith("output/")}
    if got == want:
        return Verdict("agree", profile_name)
    missing, extra = sorted(want - got), sorted(got - want)
    reason = "; ".join(part for part in (
        f"missing {', '.join(missing)}" if missing else "",
        f"not expected {', '.join(extra)}" if extra else "") if part)
    return Verdict("unexplained", profile_name, stage="log_entries", differing_terms=missing + extra,
                   reason=f"the per-output log entries differ: {reason}")


def entries_of(verdicts: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """The observation verdicts among a result's verdicts."""
    return {k: v for k, v in verdicts.items() if k.endswith(("/weights_moved", "/log_entries"))}
