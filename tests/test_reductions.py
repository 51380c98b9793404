"""Reductions beyond sum_over_batch_size and sum (issue 19): "mean" and "mean_with_sample_weight"
(Keras 3.7+) and "auto" (tf-keras), and the rule reduction_values that says which release takes
which and what it computes.

Two cases, hand-computed:
- wide_case(HX): MSE against zero targets, per sample (0.25 + 4) / 2 = 2.125 and (1 + 9) / 2 = 5.
- seq_case(X): per-step MSE [[1, 4], [9, 0]]; with Masking the last step is masked (3 valid).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from harness import compare, features, reference, spec, strategies
from harness.reference import rules, semantics
from test_reference_builders import close, seq_case
from test_reference_version_rules import HX, X, wide_case

KERAS_3_6 = rules.expected("keras3-jax", {"keras": "3.6.0"})
KERAS3 = ("keras-3.15", "keras-3.15-jax", "keras-3.15-torch", "keras-3.15-numpy")
PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")


def wide(reduction: str, sample_weight=None) -> spec.Case:
    """One output, weights (if any) passed as one array."""
    return wide_case(HX, loss="mean_squared_error", options={"reduction": reduction}, sample_weight=sample_weight,
                     sample_weight_form=None if sample_weight is None else "single")


def seq(reduction: str, sample_weight, masking: bool = True) -> spec.Case:
    case = seq_case(X, sample_weight=sample_weight, masking=masking)
    out = replace(case.outputs[0], loss_options={"reduction": reduction})
    return replace(case, outputs=(out,), sample_weight_form="single")


def raises(profile: str, case: spec.Case, cited: str) -> None:
    bd = reference.compute(case, profile, "test_on_batch")
    assert math.isnan(bd.total), (profile, bd.total)
    assert compare.predicts_error(bd, f"ValueError: Invalid Reduction Key [at {cited}:88 in validate]"), bd.notes
    assert not compare.predicts_error(bd, "ValueError: boom [at keras/src/trainers/trainer.py:1 in fit]")


# --- which names each release takes --------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("profile", KERAS3)
def test_keras3_mean_is_sum_over_batch_size(profile, path):
    close(reference.compute(wide("mean"), profile, path).total, reference.compute(wide("sum_over_batch_size"),
                                                                                   profile, path).total)
    close(reference.compute(wide("mean"), profile, "test_on_batch").total, (2.125 + 5) / 2)


@pytest.mark.parametrize("path", PATHS)
def test_tf_keras_auto_is_sum_over_batch_size(path):
    close(reference.compute(wide("auto"), "tf_keras-2.21", path).total, (2.125 + 5) / 2)


def test_each_release_refuses_the_names_it_does_not_know():
    for reduction in ("mean", "mean_with_sample_weight"):
        raises("tf_keras-2.21", wide(reduction), "tf_keras/src/utils/losses_utils.py")
        raises(KERAS_3_6, wide(reduction), "keras/src/losses/loss.py")
    for reduction in ("mean", "mean_with_sample_weight", "auto"):
        raises("keras-2.3.1", wide(reduction), "keras/utils/losses_utils.py")
    for profile in KERAS3 + (KERAS_3_6,):
        raises(profile, wide("auto"), "keras/src/losses/loss.py")


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("keras3", "3.0.5", {"backend": "jax"}, "keras3_before_3_7"),
    ("keras3", "3.6.0", {"backend": "tensorflow"}, "keras3_before_3_7"),
    ("keras3", "3.7.0", {"backend": "jax"}, "keras3"),  # keras-team/keras#20352, #20410
    ("keras3", "3.15.1", {"backend": "torch"}, "keras3"),
    ("tf_keras", "2.21.0", {"mode": "graph"}, "tf_keras"),
    ("tf.keras", "2.12.0", {}, "tf_keras"),
    ("keras", "2.3.1", {}, "keras2"),
])
def test_each_release_reads_the_reduction_names_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["reduction_values"] == want


# --- mean_with_sample_weight (Keras 3.7+): divided by the weights as Keras holds them -----------------


@pytest.mark.parametrize("profile", KERAS3)
def test_mean_with_sample_weight_is_a_weighted_mean_of_per_sample_losses(profile):
    close(reference.compute(wide("mean_with_sample_weight"), profile).total, (2.125 + 5) / 2)  # no weights
    close(reference.compute(wide("mean_with_sample_weight", [1.0, 3.0]), profile).total, (2.125 + 3 * 5) / 4)
    close(reference.compute(wide("mean_with_sample_weight", [[1.0], [3.0]]), profile).total, (2.125 + 3 * 5) / 4)
    close(reference.compute(wide("mean_with_sample_weight", [0.0, 0.0]), profile).total, 0.0)  # divide_no_nan


def test_with_a_mask_the_divisor_is_the_weights_times_the_mask():
    # weights [[2, 2], [0.5, 0]] after the mask: (2 * 1 + 2 * 4 + 0.5 * 9) / 4.5
    close(reference.compute(seq("mean_with_sample_weight", [[2.0], [0.5]]), "keras-3.15").total, 14.5 / 4.5)


def test_without_a_mask_a_per_sample_weight_counts_once_per_sample_while_the_sum_runs_over_steps():
    # Numerator over every step: 2 * 1 + 2 * 4 + 0.5 * 9 + 0.5 * 0 = 14.5; divisor ops.sum of the
    # (batch, 1) weights = 2.5, not the 5 of a weighted mean over steps (14.5 / 5 = 2.9).
    close(reference.compute(seq("mean_with_sample_weight", [[2.0], [0.5]], masking=False), "keras-3.15").total,
          14.5 / 2.5)
    # A (batch,) vector meets the time axis in Keras 3 (time == batch): weight[t] scales step t.
    close(reference.compute(seq("mean_with_sample_weight", [2.0, 0.5], masking=False), "keras-3.15").total,
          (2 * 1 + 0.5 * 4 + 2 * 9 + 0.5 * 0) / 2.5)


# --- drawn cases ---------------------------------------------------------------------------------


def test_version_8_draws_the_new_reductions_and_earlier_versions_none():
    new = ("mean", "mean_with_sample_weight", "auto")
    drawn = strategies.corpus(0, 300)
    for reduction in new:
        share = sum(f"reduction:{reduction}" in features.features(c) for c in drawn) / len(drawn)
        assert share >= 0.05, (reduction, share)
    old = strategies.corpus(0, 200, vocabulary_version=7)
    assert not any(o.loss_options.get("reduction") in new for c in old for o in c.outputs)
