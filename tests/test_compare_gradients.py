"""Gradient verdicts (harness.compare_gradients), tested by planting known differences.

An "implementation" is the reference gradient itself, under a changed profile, or with one
tensor scaled by 1.01, or at a kink: we know the truth, so the engine must name it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from harness import compare, judging, reference, spec, strategies, tolerances
from harness.compare_gradients import judge_gradients
from harness.reference import gradients, rules
from harness.results import GradientResult, ImplResult, PathResult
from harness.spec import Case, Input, Layer, Output, Regularizer
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
    # The loss it reports is the loss reference's (rounded as it computes), not g.loss (exact values).
    loss = reference.compute(case, profile, "train_on_batch").total
    return GradientResult("ok", how="planted", loss=loss, gradients={k: v.tolist() for k, v in grads.items()},
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


def saturated_bce_case() -> Case:
    """x (2, 1) -> Dense(1, sigmoid) "out", binary crossentropy on its probabilities (float32),
    each target against its saturation: logits 13.75 (target 0) and -13.5 (target 1), so the loss
    is -log(1 - p) ~ 13.75 for the first sample with 1 - p ~ 1.1e-6, which float32 keeps only to
    its spacing below 1 (6e-8, ~3% of it). Every value is exact in float32."""
    layer = Layer("out", "Dense", ("x",), {"units": 1, "activation": "sigmoid", "use_bias": True},
                  {"kernel": np.array([[13.625]]), "bias": np.array([0.125])})
    out = Output("out", np.array([[0.0], [1.0]]), "binary_crossentropy",
                 {"from_logits": False, "label_smoothing": 0.0, "reduction": "sum_over_batch_size"}, None)
    case = Case("float32", (Input("x", "float", np.array([[1.0], [-1.0]])),), (layer,), (out,), "single")
    spec.validate(case)
    return case


def keras3_jax_bce(case: Case) -> float:
    """The saturated case's loss as Keras 3 on JAX computes it (keras/src/backend/jax/nn.py:
    binary_crossentropy on probabilities): the sigmoid output stored in float32 (rounded once, as
    the loss reference models it), clipped to [eps, 1 - eps], then log, 1 - p and the mean in
    float32."""
    layer, out = case.layers[0], case.outputs[0]
    z = case.inputs[0].data @ layer.weights["kernel"] + layer.weights["bias"]
    p = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    eps = np.float32(1e-7)
    p = np.clip(p, eps, np.float32(1) - eps)
    t = out.target.astype(np.float32)
    elements = -(t * np.log(p) + (np.float32(1) - t) * np.log(np.float32(1) - p))
    return float(np.mean(elements, dtype=np.float32))


@pytest.mark.parametrize("profile, replicas", [("keras-3.15-jax", 1), ("keras-3.15-jax-dataparallel", 2)])
def test_a_saturated_bce_loss_gets_one_verdict_in_the_loss_and_the_gradient_section(profile, replicas):
    # Issue 20 item 4: the loss reference models the float32 1 - p of a saturated sigmoid, the
    # gradient reference differentiates exact values. The number Keras 3 on JAX reports on the
    # train_on_batch path is the number it differentiates: both sections must judge it alike.
    case = saturated_bce_case()
    observed = keras3_jax_bce(case)
    cache = compare.ReferenceCache(case)
    exact = cache.gradient(rules.PROFILES[profile], replicas)
    # The case exercises the difference: exact values are off by more than the float32 tolerance.
    assert not compare.values_agree(observed, exact.loss, exact.magnitude, tolerances.TOLERANCES["float32"])

    path = compare.judge_path(case, PathResult("train_on_batch", "compiled", "ok", total=observed), profile, cache)
    grad = GradientResult("ok", how="constructed", loss=observed,
                          gradients={k: v.tolist() for k, v in exact.gradients.items()})
    v = judge_gradients(case, grad, profile, cache, replicas)["gradient/loss"]
    assert path.verdict == "agree", path.to_json()
    assert v.verdict == "agree", v.to_json()
    assert v.expected == path.expected  # one reference number for both sections


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
    v = judging.judge(case, result, {}, PROFILE)
    assert v["gradient/a/kernel"].verdict == "agree"


DATA = Path(__file__).parent / "data" / "cases"


def test_an_sgd_update_is_explained_by_the_flip_that_explains_its_gradient_when_the_loss_is_not_finite():
    # Found by the property test below: output "acz" sits behind a Masking layer that masks its
    # whole batch, so its term (and the total) is NaN, and its per-term central differences are
    # NaN on every weight. Summed into each tensor's scale, that NaN made every scale 0, hence
    # every tolerance 0: the planted gradient still fit the flip bit for bit, but its float32
    # update (w - lr * g rounded once) differed from -lr * g by more than 2 eps |w| and was
    # unexplained. ab5zd does not feed acz: its gradient is determined and has a scale.
    case = spec.load(DATA / "sgd_update_non_finite.json")
    flip = {"activity_regularizer_scaling": "sum"}
    flipped = {**rules.PROFILES[PROFILE], **flip}
    ref = gradients.compute(case, flipped)
    assert not np.isfinite(ref.loss) and not ref.notes
    v = verdicts(case, planted(case, flipped))
    assert v["gradient/loss"].verdict == "agree"  # NaN against NaN
    for key in ("ab5zd/bias", "ab5zd/kernel"):
        assert not ref.undetermined(key)
        assert v[f"gradient/{key}"].verdict == "explained" and v[f"gradient/{key}"].rules == flip
        update = v[f"gradient/{key}/sgd_update"]
        assert (update.verdict, update.rules) == ("explained", flip), update.to_json()
        # The cause: |the sum of the finite terms' gradients| <= the sum of their absolute values.
        assert ref.scale[key] >= np.max(np.abs(ref.gradients[key])) > 0, (key, ref.scale[key])
    assert all(x.verdict in ("agree", "explained") for x in v.values()), {k: x.to_json() for k, x in v.items()}


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
