"""Per-element losses against numbers worked out by hand (plain arithmetic in the test).

Each loss at least once; each loss-level rule under each of its alternatives. The context is
float64 unless a test is about float32 rounding, so epsilon is exactly 1e-7.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import vocabulary
from harness.reference.losses import PER_ELEMENT, LossContext, per_element
from harness.reference.rules import PROFILES
from test_reference_builders import close

EPS = 1e-7


def one(name, y, p, options=None, **ctx) -> float:
    out = per_element(name, np.asarray(y), np.asarray(p, dtype=np.float64), options or {}, LossContext(**ctx))
    assert out.shape == np.asarray(p).shape[:-1], f"{name}: per-element shape {out.shape}"
    return float(out.reshape(-1)[0])


def rules(**overrides):
    return {**PROFILES["tf_keras-2.21"], **overrides}


# --- regression losses -------------------------------------------------------------------


def test_mean_squared_error():
    close(one("mean_squared_error", [[1.0, 2.0]], [[2.0, 4.0]]), (1 + 4) / 2)


def test_mean_absolute_error():
    close(one("mean_absolute_error", [[1.0, 2.0]], [[2.0, 4.0]]), (1 + 2) / 2)


def test_mean_absolute_percentage_error():
    close(one("mean_absolute_percentage_error", [[2.0, -4.0]], [[1.0, -2.0]]), 100 * (0.5 + 0.5) / 2)
    # A zero target divides by epsilon.
    close(one("mean_absolute_percentage_error", [[0.0]], [[1.0]]), 100 * 1 / EPS)


def test_mean_squared_logarithmic_error_clips_at_epsilon():
    e = math.e
    close(one("mean_squared_logarithmic_error", [[0.0]], [[e - 1]]), (1 - math.log(1 + EPS)) ** 2)
    close(one("mean_squared_logarithmic_error", [[-5.0]], [[-5.0]]), 0.0)


def test_huber_quadratic_then_linear():
    close(one("huber", [[0.0, 0.0]], [[0.5, 3.0]]), (0.5 * 0.25 + (3 - 0.5)) / 2)
    close(one("huber", [[0.0]], [[3.0]], {"delta": 2.0}), 2 * 3 - 0.5 * 4)


# Every implementation subtracts log(2) computed in float32 (then cast): 0.6931471824645996,
# 1.9e-9 above float64 log 2 (tf_keras losses.log_cosh, keras/src/losses/losses.py log_cosh).
LOG2_SHIFT = float(np.float32(0.6931471824645996)) - math.log(2)


def test_log_cosh():
    close(one("log_cosh", [[0.0, 1.0]], [[1.0, -1.0]]),
          (math.log(math.cosh(1)) + math.log(math.cosh(2))) / 2 - LOG2_SHIFT)
    # Large differences do not overflow: log(cosh(x)) ~ |x| - log 2.
    close(one("log_cosh", [[0.0]], [[1000.0]]), 1000 - math.log(2) - LOG2_SHIFT)


def test_log_cosh_subtracts_the_float32_log_2():
    assert 1.8e-9 < LOG2_SHIFT < 2.0e-9
    # log cosh(0) = 0 exactly in float64; the implementations give -LOG2_SHIFT.
    assert one("log_cosh", [[0.0]], [[0.0]]) == -LOG2_SHIFT


def test_poisson():
    close(one("poisson", [[2.0]], [[1.0]]), 1 - 2 * math.log(1 + EPS))


def test_kl_divergence_clips_targets_and_predictions():
    close(one("kl_divergence", [[0.5, 0.5]], [[0.25, 0.75]]), 0.5 * math.log(2) + 0.5 * math.log(0.5 / 0.75))
    close(one("kl_divergence", [[0.0, 1.0]], [[0.5, 0.5]]), EPS * math.log(EPS / 0.5) + math.log(2))


def test_hinge_and_squared_hinge():
    close(one("hinge", [[1.0, -1.0]], [[0.5, 0.5]]), (0.5 + 1.5) / 2)
    close(one("squared_hinge", [[1.0, -1.0]], [[0.5, 0.5]]), (0.25 + 2.25) / 2)


def test_hinge_maps_binary_labels_to_plus_minus_one():
    # {0, 1} over the whole tensor -> {-1, 1}: the same as passing [1, -1].
    close(one("hinge", [[1.0, 0.0]], [[0.5, 0.5]]), 1.0)
    # Not all in {0, 1}: labels unchanged; 0 stays 0 (loss max(1 - 0, 0) = 1).
    close(one("hinge", [[-1.0, 0.0]], [[0.5, 0.5]]), (1.5 + 1.0) / 2)


def test_categorical_hinge():
    close(one("categorical_hinge", [[0.0, 1.0]], [[0.5, 0.25]]), 0.5 - 0.25 + 1)
    close(one("categorical_hinge", [[0.0, 1.0]], [[-3.0, 5.0]]), 0.0)


# --- cosine similarity -------------------------------------------------------------------


def test_cosine_similarity():
    close(one("cosine_similarity", [[3.0, 4.0]], [[4.0, 3.0]]), -24 / 25)
    close(one("cosine_similarity", [[0.0, 0.0]], [[1.0, 0.0]]), 0.0)


@pytest.mark.parametrize("floor, want", [("sumsq_1e-12", -1e-8 / 1e-6), ("norm_1e-7", -1e-8 / 1e-7)])
def test_cosine_norm_floor(floor, want):
    close(one("cosine_similarity", [[1e-8, 0.0]], [[1.0, 0.0]], rules=rules(cosine_norm_floor=floor)), want)


# --- binary crossentropy -----------------------------------------------------------------


def test_bce_on_probabilities():
    want_log = -math.log(0.25)
    close(one("binary_crossentropy", [[1.0]], [[0.25]], rules=rules(bce_probability_log="log")), want_log)
    close(one("binary_crossentropy", [[1.0]], [[0.25]], rules=rules(bce_probability_log="log_plus_epsilon")),
          -math.log(0.25 + EPS))


def test_bce_clips_saturated_probabilities():
    hi = 1 - EPS
    close(one("binary_crossentropy", [[0.0]], [[1.0]], rules=rules(bce_probability_log="log")), -math.log(1 - hi))
    close(one("binary_crossentropy", [[0.0]], [[1.0]], rules=rules(bce_probability_log="log_plus_epsilon")),
          -math.log(1 - hi + EPS))


def test_bce_clip_bounds_are_float32_in_a_float32_case():
    hi32 = float(np.float32(1 - EPS))  # 0.99999988...: 1 - hi32 = 2**-23
    got = one("binary_crossentropy", [[0.0]], [[1.0]], rules=rules(bce_probability_log="log"), dtype="float32")
    close(got, -math.log(1 - hi32))
    assert 1 - hi32 == 2.0**-23


def test_bce_label_smoothing():
    t = 1 * (1 - 0.2) + 0.5 * 0.2
    close(one("binary_crossentropy", [[1.0]], [[0.25]], {"label_smoothing": 0.2}, rules=rules(bce_probability_log="log")),
          -(t * math.log(0.25) + (1 - t) * math.log(0.75)))


@pytest.mark.parametrize("alt", ["recover_logits", "clip_epsilon"])
def test_probability_crossentropy_rule_binary(alt):
    z = 40.0
    p = 1 / (1 + math.exp(-z))  # == 1.0 in float64
    got = one("binary_crossentropy", [[0.0]], [[p]], rules=rules(probability_crossentropy=alt, bce_probability_log="log"),
              keras_logits=("sigmoid", np.array([[z]])))
    want = z + math.log1p(math.exp(-z)) if alt == "recover_logits" else -math.log(1 - (1 - EPS))
    close(got, want, tol=1e-9)


def test_recovered_logits_only_from_the_matching_activation():
    # Softmax logits do not serve a binary crossentropy: the probability path is used.
    got = one("binary_crossentropy", [[1.0]], [[0.25]], rules=rules(bce_probability_log="log"),
              keras_logits=("softmax", np.array([[7.0]])))
    close(got, -math.log(0.25))


def test_recovered_logits_win_over_from_logits():
    # from_logits=True on a sigmoid output: TF uses the sigmoid's input, not the probabilities.
    got = one("binary_crossentropy", [[1.0]], [[0.5]], {"from_logits": True}, rules=rules(),
              keras_logits=("sigmoid", np.array([[0.0]])))
    close(got, math.log(2))


@pytest.mark.parametrize("alt", ["exact", "sigmoid_then_clip"])
def test_bce_from_logits_rule(alt):
    close(one("binary_crossentropy", [[1.0]], [[2.0]], {"from_logits": True}, rules=rules(bce_from_logits=alt)),
          math.log(1 + math.exp(-2.0)), tol=1e-12)
    got = one("binary_crossentropy", [[1.0]], [[-40.0]], {"from_logits": True}, rules=rules(bce_from_logits=alt))
    close(got, 40 + math.log1p(math.exp(-40)) if alt == "exact" else -math.log(EPS), tol=1e-9)


# --- categorical crossentropy ------------------------------------------------------------


def test_cce_on_probabilities_renormalises_rows():
    close(one("categorical_crossentropy", [[0.0, 1.0]], [[0.25, 0.75]]), -math.log(0.75))
    close(one("categorical_crossentropy", [[0.0, 1.0]], [[0.5, 1.5]]), -math.log(0.75))


def test_cce_from_logits():
    close(one("categorical_crossentropy", [[0.0, 1.0]], [[0.0, math.log(3)]], {"from_logits": True}), -math.log(0.75))


@pytest.mark.parametrize("alt", ["recover_logits", "clip_epsilon"])
def test_probability_crossentropy_rule_categorical(alt):
    logits = np.array([[0.0, 40.0]])
    probs = np.exp(logits - 40) / np.exp(logits - 40).sum()
    got = one("categorical_crossentropy", [[1.0, 0.0]], probs, rules=rules(probability_crossentropy=alt),
              keras_logits=("softmax", logits))
    close(got, 40 + math.log1p(math.exp(-40)) if alt == "recover_logits" else -math.log(EPS), tol=1e-9)


def test_cce_label_smoothing_last_axis():
    t0, t1 = 0 * 0.8 + 0.2 / 2, 1 * 0.8 + 0.2 / 2
    close(one("categorical_crossentropy", [[0.0, 1.0]], [[0.25, 0.75]], {"label_smoothing": 0.2}),
          -(t0 * math.log(0.25) + t1 * math.log(0.75)))


@pytest.mark.parametrize("alt, classes", [("last_axis", 2), ("axis_1", 4)])
def test_label_smoothing_classes_rule_on_a_temporal_output(alt, classes):
    # (batch 1, time 4, classes 2): axis 1 is time, so keras 2.3.1 divides by 4.
    y = np.tile([0.0, 1.0], (1, 4, 1))
    p = np.tile([0.25, 0.75], (1, 4, 1))
    t0, t1 = 0.2 / classes, 0.8 + 0.2 / classes
    got = one("categorical_crossentropy", y, p, {"label_smoothing": 0.2}, rules=rules(label_smoothing_classes=alt))
    close(got, -(t0 * math.log(0.25) + t1 * math.log(0.75)))


# --- sparse categorical crossentropy ----------------------------------------------------


def test_sparse_cce():
    close(one("sparse_categorical_crossentropy", np.array([1]), [[0.25, 0.75]]), -math.log(0.75))
    close(one("sparse_categorical_crossentropy", np.array([0]), [[0.0, math.log(3)]], {"from_logits": True}),
          -math.log(0.25))


@pytest.mark.parametrize("alt", ["log_softmax_of_clipped", "renormalise_clip_log"])
def test_sparse_ce_probability_rule(alt):
    # p = [0, 0.5], label 0. TF: log(clip(p)) then log-softmax -> log(1e-7 / (1e-7 + 0.5)).
    # JAX/torch/numpy: p / sum = [0, 1], clipped -> log(1e-7).
    got = one("sparse_categorical_crossentropy", np.array([0]), [[0.0, 0.5]], rules=rules(sparse_ce_probability=alt))
    want = -math.log(EPS / (EPS + 0.5)) if alt == "log_softmax_of_clipped" else -math.log(EPS)
    close(got, want, tol=1e-9)


def test_sparse_cce_temporal_shape():
    y = np.array([[0, 1, 1]])
    p = np.tile([0.25, 0.75], (1, 3, 1))
    out = per_element("sparse_categorical_crossentropy", y, p)
    np.testing.assert_allclose(out, [[-math.log(0.25), -math.log(0.75), -math.log(0.75)]], rtol=1e-12)


# --- binary focal crossentropy ------------------------------------------------------------


def test_focal():
    got = one("binary_focal_crossentropy", [[1.0]], [[0.25]], {"gamma": 2.0}, rules=rules(bce_probability_log="log"))
    close(got, (1 - 0.25) ** 2 * -math.log(0.25))


def test_focal_class_balancing():
    opts = {"gamma": 1.0, "alpha": 0.25, "apply_class_balancing": True}
    r = rules(bce_probability_log="log")
    close(one("binary_focal_crossentropy", [[1.0]], [[0.25]], opts, rules=r), 0.25 * 0.75 * -math.log(0.25))
    close(one("binary_focal_crossentropy", [[0.0]], [[0.25]], opts, rules=r), 0.75 * 0.25 * -math.log(0.75))


@pytest.mark.parametrize("focal, prob", [
    ("bce_on_given_logits", "recover_logits"), ("bce_on_given_logits", "clip_epsilon"),
    ("bce_on_sigmoid", "recover_logits"), ("bce_on_sigmoid", "clip_epsilon"),
])
def test_focal_from_logits_rule(focal, prob):
    # Logit -40 for a positive label: p_t ~ 4e-18, focal factor ~ 1. Only Keras 3 on a backend
    # that does not recover logits (bce_on_sigmoid + clip_epsilon) clips sigmoid(-40) to 1e-7.
    got = one("binary_focal_crossentropy", [[1.0]], [[-40.0]], {"from_logits": True, "gamma": 2.0},
              rules=rules(focal_from_logits=focal, probability_crossentropy=prob, bce_probability_log="log"))
    exact = 40 + math.log1p(math.exp(-40))
    close(got, -math.log(EPS) if (focal, prob) == ("bce_on_sigmoid", "clip_epsilon") else exact, tol=1e-9)


def test_categorical_focal_weights_each_class_by_alpha_and_its_focal_factor():
    # one-hot on class 1, q = 0.75: 0.25 * (1 - 0.75)**2 * -log(0.75); class 0 has t = 0
    close(one("categorical_focal_crossentropy", [[0.0, 1.0]], [[0.25, 0.75]]), 0.25 * 0.0625 * -math.log(0.75))
    # label smoothing 0.5 over 2 classes: t = [0.25, 0.75]; gamma 0 and alpha 1: plain crossentropy
    got = one("categorical_focal_crossentropy", [[0.0, 1.0]], [[0.25, 0.75]],
              {"label_smoothing": 0.5, "gamma": 0.0, "alpha": 1.0})
    close(got, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    # from logits: the softmax of [0, log 3] is [0.25, 0.75]
    close(one("categorical_focal_crossentropy", [[0.0, 1.0]], [[0.0, math.log(3.0)]], {"from_logits": True}),
          0.25 * 0.0625 * -math.log(0.75))


def test_dice_over_the_last_axis():
    # y = [1, 0], p = [0.5, 0.25]: 1 - 2 * 0.5 / (1 + 0.75 + eps)
    close(one("dice", [[1.0, 0.0]], [[0.5, 0.25]], {"axis": -1}), 1.0 - 1.0 / (1.75 + EPS))
    # one value per (sample, timestep) on a temporal output
    got = per_element("dice", np.array([[[1.0, 1.0], [0.0, 1.0]]]), np.array([[[1.0, 1.0], [1.0, 0.0]]]),
                      {"axis": -1}, LossContext())
    np.testing.assert_allclose(got, [[1.0 - 4.0 / (4.0 + EPS), 1.0]], rtol=1e-12)


def test_tversky_weighs_keras_fp_by_alpha_and_fn_by_beta():
    # y = [1, 0], p = [0.5, 0.25]: I = 0.5, Keras's fp = (1 - p) y summed = 0.5, fn = p (1 - y) = 0.25
    y, p = [[1.0, 0.0]], [[0.5, 0.25]]
    close(one("tversky", y, p, {"axis": -1}), 1.0 - 0.5 / (0.5 + 0.25 + 0.125 + EPS))
    close(one("tversky", y, p, {"axis": -1, "alpha": 1.0, "beta": 0.0}), 1.0 - 0.5 / (1.0 + EPS))
    close(one("tversky", y, p, {"axis": -1, "alpha": 0.0, "beta": 1.0}), 1.0 - 0.5 / (0.75 + EPS))
    # alpha = beta = 0.5 is dice but for where epsilon is added (to 0.875 here, to 2 * 0.875 there)
    close(one("tversky", y, p, {"axis": -1}), one("dice", y, p, {"axis": -1}), tol=1e-6)


def test_dice_and_tversky_need_axis_minus_one():
    entry = vocabulary.LOSSES["dice"]
    with pytest.raises(vocabulary.SpecProblem, match="required"):
        entry.check(np.array([[1.0, 0.0]]), (1, 2), {})
    with pytest.raises(vocabulary.SpecProblem):
        entry.check(np.array([[1.0, 0.0]]), (1, 2), {"axis": 1})
    entry.check(np.array([[1.0, 0.0]]), (1, 2), {"axis": -1})


def test_categorical_generalized_cross_entropy_of_the_target_class():
    # class 1 has p = 0.25: (1 - 0.25**0.5) / 0.5 = 1; q = 0.25 on class 0 (p = 0.0625): (1 - 0.5) / 0.25 = 2
    close(one("categorical_generalized_cross_entropy", [1], [[0.75, 0.25]]), 1.0)
    close(one("categorical_generalized_cross_entropy", [0], [[0.0625, 0.9375]], {"q": 0.25}), 2.0)
    got = per_element("categorical_generalized_cross_entropy", np.array([[0, 1]]),
                      np.array([[[0.25, 0.75], [0.25, 0.75]]]), {"q": 0.5}, LossContext())
    np.testing.assert_allclose(got, [[1.0, 2.0 * (1.0 - math.sqrt(0.75))]], rtol=1e-12)


def test_every_vocabulary_loss_has_its_reference():
    for name, entry in vocabulary.LOSSES.items():
        assert name in PER_ELEMENT, name
        y = np.array([0, 1]) if entry.target_kind == "sparse" else np.array([[0.0, 1.0], [1.0, 0.0]])
        out = per_element(name, y, np.array([[0.25, 0.75], [0.5, 0.5]]))
        assert out.shape == (2,) and out.dtype == np.float64, name
