"""The engine's verdicts, tested by planting known differences into reference-made results.

An "implementation" here is the reference itself under a changed profile (one rule flipped)
or with one term perturbed by a factor of 1.01: we know the truth, so we can check that the
engine names exactly the flipped rule, and that a perturbation no rule explains is a finding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from harness import compare, judging, reference, strategies, tolerances
from harness.reference import rules
from harness.results import ImplResult, PathResult

PROFILE = "tf_keras-2.21"


def planted_result(case, profile, path="test_on_batch", scale_term=None, factor=1.0) -> PathResult:
    """A PathResult as an implementation following `profile` would report it."""
    b = reference.compute(case, profile, path)
    terms = dict(b.terms)
    total = b.total
    if scale_term is not None:
        delta = terms[scale_term] * (factor - 1.0)
        terms[scale_term] += delta
        if scale_term.startswith("output/"):
            weight = next(o.loss_weight for o in b.outputs if f"output/{o.name}" == scale_term)
            total += weight * delta
        else:
            total += delta
    return PathResult(path=path, mode="eager", status="ok", total=total, terms=terms)


def judged(case, path_result, profile_used):
    preds = {k: v.tolist() for k, v in reference.predictions(case, profile_used).items()}
    result = ImplResult(case.id, "tf_keras", paths=[path_result], predictions=preds)
    return judging.judge(case, result, {}, PROFILE)[path_result.key]


@settings(max_examples=40)
@given(case=strategies.cases(), data=st.data())
def test_a_flipped_rule_is_explained_by_exactly_that_rule(case, data):
    cache = compare.ReferenceCache(case)
    relevant = compare.relevant_flips(cache, rules.PROFILES[PROFILE], "test_on_batch")
    assume(relevant)  # a flip that changes nothing on this case cannot be seen, nor needs to be
    rule, alt = data.draw(st.sampled_from(relevant), label="flip")
    flipped = {**rules.PROFILES[PROFILE], rule: alt}
    planted = planted_result(case, flipped)
    assume(not reference.compute(case, flipped, "test_on_batch").notes)  # an error, judged elsewhere
    # Visible: the flip moves a number by more than the tolerance (else it is float noise).
    assume(not compare.matches(planted, reference.compute(case, PROFILE, "test_on_batch"), case)[0])
    verdict = judged(case, planted, flipped)
    note(f"verdict {verdict.to_json()}")
    # Another single rule may give the very same numbers on this case (both are then a
    # smallest explanation); the flipped one must be among the equally small explanations.
    assert verdict.verdict == "explained", verdict.to_json()
    if verdict.rules != {rule: alt}:
        assert len(verdict.rules) == 1, verdict.to_json()
        same = {**rules.PROFILES[PROFILE], **verdict.rules}
        assert compare.matches(planted, reference.compute(case, same, "test_on_batch"), case)[0]


@settings(max_examples=40)
@given(case=strategies.cases(), data=st.data())
def test_one_term_times_1_01_is_unexplained(case, data):
    b = reference.compute(case, PROFILE, "test_on_batch")
    candidates = [k for k, v in b.terms.items() if math.isfinite(v)]
    assume(candidates and math.isfinite(b.total))
    term = data.draw(st.sampled_from(sorted(candidates)), label="term")
    # Visible: the change exceeds the tolerance of the term by a margin, under float32's tolerance
    # even for a float64 case: the rule float64_compute (Keras 3 on JAX/torch/NumPy computes in
    # float32) judges a float64 case with float32's tolerance, so a change inside that tolerance is
    # rightly explained by it (case fc410c3ec6b9cfd1: a total of 1.6e-7 times 1.01).
    tol = tolerances.TOLERANCES["float32"]
    assume(abs(0.01 * b.terms[term]) > 10 * (tol.rtol * b.term_magnitudes.get(term, 0.0) + tol.atol))
    verdict = judged(case, planted_result(case, PROFILE, scale_term=term, factor=1.01), PROFILE)
    assert verdict.verdict == "unexplained", verdict.to_json()
    assert verdict.stage == "loss"
    assert term in verdict.differing_terms


def test_the_reference_itself_agrees():
    case = strategies.corpus_case(seed=0, index=0)
    verdict = judged(case, planted_result(case, PROFILE), PROFILE)
    assert verdict.verdict == "agree", verdict.to_json()


@pytest.mark.parametrize("value, expected, ok", [
    (math.nan, math.nan, True),
    (math.nan, 1.0, False),
    (1.0, math.nan, False),
    (math.inf, math.inf, True),
    (math.inf, -math.inf, False),
    (1.0, 1.0 + 1e-6, True),  # float32 noise on a magnitude-1 sum
    (1.0, 1.01, False),  # a factor of 1.01 is never noise
])
def test_values_agree_rules_for_nan_inf_and_noise(value, expected, ok):
    assert compare.values_agree(value, expected, 1.0, tolerances.TOLERANCES["float32"]) is ok


def test_an_error_predicted_by_the_expected_profile_agrees():
    # One loss for several weighted outputs: Keras 3 raises (rule single_loss_with_loss_weights).
    case = next(c for c in strategies.corpus(seed=0, n=200)
                if c.loss_form == "single" and c.loss_weights_form != "omitted" and len(c.outputs) > 1)
    err = PathResult("test_on_batch", "eager", "error", error_type="ValueError", error_message="`loss_weights` must match")
    result = ImplResult(case.id, "keras3-jax", paths=[err])
    assert judging.judge(case, result, {"backend": "jax"})[err.key].verdict == "agree"
    assert judging.judge(case, ImplResult(case.id, "tf_keras", paths=[err]), {})[err.key].verdict == "explained"


def test_an_error_other_than_the_predicted_one_stays_an_error():
    # The predicted error comes from CompileLoss.build; a KeyError raised elsewhere in Keras is
    # another error, not the predicted one.
    case = next(c for c in strategies.corpus(seed=0, n=200)
                if c.loss_form == "single" and c.loss_weights_form != "omitted" and len(c.outputs) > 1)
    err = PathResult("test_on_batch", "eager", "error", error_type="KeyError",
                     error_message="0 [at keras/src/trainers/data_adapters/array_data_adapter.py:42 in __init__]")
    verdict = judging.judge(case, ImplResult(case.id, "keras3-jax", paths=[err]), {"backend": "jax"})[err.key]
    assert verdict.verdict == "error", verdict.to_json()


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=30)
@given(case=strategies.cases(), data=st.data())
def test_the_reference_cache_returns_what_a_fresh_computation_gives(case, data):
    """ReferenceCache memoises by the rules a computation read: after a first computation under
    one profile, a look-up under a profile with flipped rules (read or not) equals a computation
    from scratch, numbers, notes, predictions and the profile it carries."""
    base = rules.profile(data.draw(st.sampled_from(sorted(rules.PROFILES)), label="profile"))
    path = data.draw(st.sampled_from(["test_on_batch", "evaluate", "train_on_batch"]), label="path")
    flips = data.draw(st.lists(st.sampled_from([(r, a) for r, rule in rules.RULES.items()
                                                for a in rule.alternatives]), max_size=3), label="flips")
    cache = compare.ReferenceCache(case)
    cache.compute(base, path), cache.predictions(base)
    flipped = {**base, **dict(flips)}
    got, want = cache.compute(flipped, path), reference.compute(case, flipped, path)
    assert _same(got.total, want.total) and got.profile == want.profile == flipped
    assert set(got.terms) == set(want.terms) and all(_same(got.terms[k], want.terms[k]) for k in want.terms)
    assert list(got.notes) == list(want.notes)
    preds, fresh = cache.predictions(flipped), reference.predictions(case, flipped)
    assert all(np.array_equal(preds[k], fresh[k], equal_nan=True) for k in fresh)


def test_reads_are_traced_per_thread():
    """Two threads judging at once (tests/test_order_independence.py does) each see their own reads."""
    import threading

    profile = rules.profile("tf_keras-2.21")
    inside, release = threading.Barrier(2), threading.Barrier(2)
    seen: dict[str, set[str]] = {}

    def trace(name: str, rule: str) -> None:
        with rules.tracing_reads() as reads:
            inside.wait()  # both blocks open at once
            rules.choice(profile, rule)
            release.wait()
        seen[name] = set(reads)

    threads = [threading.Thread(target=trace, args=(n, r)) for n, r in (("a", "merge_mask"), ("b", "output_log"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert seen == {"a": {"merge_mask"}, "b": {"output_log"}}
