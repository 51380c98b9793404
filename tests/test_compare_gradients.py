"""Gradient verdicts (harness.compare_gradients), tested by planting known differences.

An "implementation" is the reference gradient itself, under a changed profile, or with one
tensor scaled by 1.01, or at a kink: we know the truth, so the engine must name it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from harness import compare, reference, strategies
from harness.compare_gradients import judge_gradients
from harness.reference import gradients, rules
from harness.results import GradientResult, ImplResult
from harness.spec import Regularizer
from test_reference_builders import two_output_case
from test_reference_gradients import B, X, Y, dense_case

PROFILE = "tf_keras-2.21"
LR = 0.25


def planted(case, profile, *, scale_key=None, factor=1.0, nudge=None) -> GradientResult:
    """A GradientResult as an implementation following `profile` would report it: the update
    rounded in the dtype that implementation computes in."""
    g = gradients.compute(case, profile)
    grads = {k: v.copy() for k, v in g.gradients.items()}
    if scale_key is not None:
        grads[scale_key] = grads[scale_key] * factor
    if nudge is not None:
        key, value = nudge
        grads[key] = np.full_like(grads[key], value)
    dtype = np.dtype(reference.effective_dtype(case, profile))
    updates = {}
    for key, v in grads.items():
        layer, weight = key.split("/")
        w = np.asarray(case.layer(layer).weights[weight], dtype=dtype)
        updates[key] = (w - dtype.type(LR) * v.astype(dtype)).astype(np.float64) - w
    return GradientResult("ok", how="planted", loss=g.loss, gradients={k: v.tolist() for k, v in grads.items()},
                          learning_rate=LR, update_mode="planted", updates={k: v.tolist() for k, v in updates.items()})


def verdicts(case, grad):
    return judge_gradients(case, grad, PROFILE, compare.ReferenceCache(case))


def test_the_reference_gradient_agrees_with_itself_on_every_key():
    case = two_output_case(2.0, 0.5)
    v = verdicts(case, planted(case, PROFILE))
    assert set(v) == {"gradient/loss", "gradient/a/kernel", "gradient/b/kernel",
                      "gradient/a/kernel/sgd_update", "gradient/b/kernel/sgd_update"}
    assert {x.verdict for x in v.values()} == {"agree"}, {k: x.to_json() for k, x in v.items()}


def test_one_tensor_off_by_one_percent_is_unexplained_and_names_its_term():
    case = two_output_case(2.0, 0.5)
    v = verdicts(case, planted(case, PROFILE, scale_key="b/kernel", factor=1.01))
    assert v["gradient/b/kernel"].verdict == "unexplained"
    assert v["gradient/b/kernel"].stage == "gradient"
    assert v["gradient/b/kernel"].differing_terms == ["output/b"]
    assert v["gradient/a/kernel"].verdict == "agree"
    # The planted update was computed from the wrong gradient: it differs too.
    assert v["gradient/b/kernel/sgd_update"].verdict == "unexplained"


def test_a_float32_rounding_of_the_gradient_is_not_a_difference():
    case = dense_case([[0.5], [-0.25]], B, X, Y, dtype="float32")
    g = planted(case, PROFILE)
    g.gradients = {k: np.asarray(v, dtype=np.float32).astype(np.float64).tolist() for k, v in g.gradients.items()}
    assert {x.verdict for x in verdicts(case, g).values()} == {"agree"}


def test_a_subgradient_at_a_kink_agrees():
    # l1 on a kernel entry that is exactly 0: TensorFlow's sign(0) = 0 adds nothing there.
    case = dense_case([[0.0], [-0.25]], B, X, Y, reg=Regularizer("l1", l1=0.5))
    smooth = gradients.compute(dense_case([[0.0], [-0.25]], B, X, Y), PROFILE).gradients["out/kernel"]
    g = planted(case, PROFILE)
    tf_like = np.array(g.gradients["out/kernel"])
    tf_like[0, 0] = smooth[0, 0]  # the data term only: the l1 term's subgradient 0
    g.gradients["out/kernel"] = tf_like.tolist()
    assert verdicts(case, g)["gradient/out/kernel"].verdict == "agree"
    tf_like[0, 0] = smooth[0, 0] + 0.75  # outside [-0.5, 0.5] around the data term
    g.gradients["out/kernel"] = tf_like.tolist()
    assert verdicts(case, g)["gradient/out/kernel"].verdict == "unexplained"


def test_an_update_with_another_learning_rate_is_a_difference():
    case = two_output_case(2.0, 0.5)
    g = planted(case, PROFILE)
    g.learning_rate = 0.5  # the update was made at 0.25
    v = verdicts(case, g)
    assert v["gradient/a/kernel/sgd_update"].verdict == "unexplained"
    assert v["gradient/a/kernel"].verdict == "agree"


def test_unsupported_and_missing_weights():
    case = two_output_case(2.0, 0.5)
    v = verdicts(case, GradientResult("unsupported", reason="cannot train"))
    assert v == {"gradient/*": compare.Verdict("unsupported", PROFILE, reason="cannot train")}
    g = planted(case, PROFILE)
    del g.gradients["a/kernel"]
    assert verdicts(case, g)["gradient/a/kernel"].verdict == "unexplained"


def test_judge_adds_gradient_verdicts_to_the_path_verdicts():
    case = two_output_case(2.0, 0.5)
    result = ImplResult(case.id, "tf_keras", paths=[], gradients=planted(case, PROFILE))
    v = compare.judge(case, result, {}, PROFILE)
    assert v["gradient/a/kernel"].verdict == "agree"


@settings(max_examples=25, deadline=None)
@given(case=strategies.cases(), data=st.data())
def test_a_flipped_rule_in_the_gradient_is_explained_by_a_rule(case, data):
    cache = compare.ReferenceCache(case)
    relevant = compare.relevant_flips(cache, rules.PROFILES[PROFILE], "train_on_batch")
    assume(relevant)
    rule, alt = data.draw(st.sampled_from(relevant), label="flip")
    flipped = {**rules.PROFILES[PROFILE], rule: alt}
    assume(not gradients.compute(case, flipped).notes)
    v = verdicts(case, planted(case, flipped))
    note({k: x.to_json() for k, x in v.items()})
    # Every verdict either agrees (the flip does not move that tensor beyond tolerance) or is
    # explained by a rule: never unexplained, since the planted numbers follow a profile.
    assert all(x.verdict in ("agree", "explained") for x in v.values())
