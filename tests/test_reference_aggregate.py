"""Aggregation: masks, sample weights, reductions, loss weights, regularization, paths, rules.

Every expected number is worked out by hand in the test. The base case (test_reference_builders
.seq_case) predicts its masked input, so with target 0 each step's MSE is x^2.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness import reference
from harness.reference.rules import PROFILES, RULES
from harness.spec import Regularizer
from test_reference_builders import close, seq_case, two_output_case

TFK = PROFILES["tf_keras-2.21"]

# x: sample 0 steps [1, 2]; sample 1 steps [3, masked]. Per-step MSE: [[1, 4], [9, 0]].
X = [[[1.0], [2.0]], [[3.0], [0.0]]]


def total(case, path="test_on_batch", **rules):
    return reference.compute(case, {**TFK, **rules}, path).total


# --- mask normalisation -------------------------------------------------------------------


@pytest.mark.parametrize("alt, want", [
    ("valid_entries", (1 + 4 + 9) / 3),
    ("valid_entries_no_nan", (1 + 4 + 9) / 3),
    ("all_entries", (1 + 4 + 9) / 4),
])
def test_mask_normalisation(alt, want):
    close(total(seq_case(X), mask_normalisation=alt), want)


@pytest.mark.parametrize("alt, want", [
    ("valid_entries", (1 + 4) / 2),
    ("valid_entries_no_nan", (1 + 4) / 2),
    ("all_entries", (1 + 4) / 4),
])
def test_fully_masked_sample(alt, want):
    close(total(seq_case([[[1.0], [2.0]], [[0.0], [0.0]]]), mask_normalisation=alt), want)


@pytest.mark.parametrize("alt, want", [("valid_entries", math.nan), ("valid_entries_no_nan", 0.0), ("all_entries", 0.0)])
def test_fully_masked_batch_is_a_value_not_an_exception(alt, want):
    case = seq_case([[[0.0], [0.0]], [[0.0], [0.0]]], target=[[[1.0], [1.0]], [[1.0], [1.0]]])
    close(total(case, mask_normalisation=alt), want)


@pytest.mark.parametrize("alt", list(RULES["mask_normalisation"].alternatives))
def test_sum_reduction_is_never_normalised(alt):
    close(total(seq_case(X, reduction="sum"), mask_normalisation=alt), 1 + 4 + 9)


def test_masked_targets_do_not_count():
    # Changing the target of the masked step (sample 1, step 1) changes nothing.
    a = seq_case(X, target=[[[0.0], [0.0]], [[0.0], [0.0]]])
    b = seq_case(X, target=[[[0.0], [0.0]], [[0.0], [5.0]]])
    for profile in PROFILES:
        close(reference.compute(a, profile).total, reference.compute(b, profile).total, what=profile)


# --- sample weights ------------------------------------------------------------------------


@pytest.mark.parametrize("alt, want", [
    # per sample: sample 0 weight 2 on both steps, sample 1 weight 0.
    ("per_sample", (2 * 1 + 2 * 4 + 0 * 9) / 3),
    # trailing axis (time == batch == 2): step 0 weight 2, step 1 weight 0.
    ("trailing_axis", (2 * 1 + 0 * 4 + 2 * 9) / 3),
])
def test_sample_weight_broadcast(alt, want):
    close(total(seq_case(X, sample_weight=[2.0, 0.0], masking=True), sample_weight_broadcast=alt), want)


def test_sample_weight_broadcast_error_gives_nan_and_a_note():
    x3 = [[[1.0], [2.0], [3.0]], [[3.0], [1.0], [0.0]]]  # time 3 != batch 2
    case = seq_case(x3, sample_weight=[2.0, 0.0])
    bd = reference.compute(case, {**TFK, "sample_weight_broadcast": "trailing_axis"})
    assert math.isnan(bd.total) and any("broadcast" in n for n in bd.notes)
    # With a mask, NumPy/torch fail even when time == batch (in-place multiply).
    bd = reference.compute(seq_case(X, sample_weight=[2.0, 0.0]), {**TFK, "sample_weight_broadcast": "trailing_axis_inplace_mask"})
    assert math.isnan(bd.total) and any("in place" in n for n in bd.notes)
    # Without a mask the in-place variant broadcasts like trailing_axis.
    got = total(seq_case(X, sample_weight=[2.0, 0.0], masking=False), sample_weight_broadcast="trailing_axis_inplace_mask")
    close(got, (2 * 1 + 0 * 4 + 2 * 9 + 0 * 0) / 4)


def test_per_timestep_sample_weights():
    close(total(seq_case(X, sample_weight=[[1.0, 0.5], [2.0, 7.0]])), (1 * 1 + 0.5 * 4 + 2 * 9) / 3)


def test_zero_sample_weights():
    # keras 2.2.4 divides by the fraction of non-zero weights: 0/0 (test_reference_version_rules.py).
    for profile in (p for p in PROFILES if PROFILES[p]["sample_weight_normalisation"] == "none"):
        close(reference.compute(seq_case(X, sample_weight=[0.0, 0.0], masking=False), profile).total, 0.0, what=profile)
    # Masked as well: 0 under every profile that can combine a per-sample weight with a mask.
    for profile in ("tf_keras-2.21", "keras2-graph", "keras-2.3.1", "keras-3.15", "keras-3.15-jax"):
        close(reference.compute(seq_case(X, sample_weight=[0.0, 0.0]), profile).total, 0.0, what=profile)


def test_sample_weight_and_fully_masked_sample():
    # Sample 1 fully masked: its weight does not matter; valid entries = 2.
    case = seq_case([[[1.0], [2.0]], [[0.0], [0.0]]], sample_weight=[3.0, 100.0])
    close(total(case), 3 * (1 + 4) / 2)


# --- loss weights, forms -------------------------------------------------------------------

# two_output_case: a = [1, 3, 0.5], b = [2, -1, 4]; MSE a: (1 + 9 + 0.25)/3, b: (4 + 1 + 16)/3.
A, B = (1 + 9 + 0.25) / 3, (4 + 1 + 16) / 3


def test_loss_weights_and_breakdown():
    bd = reference.compute(two_output_case(0.5, 2.0), "tf_keras-2.21")
    close(bd.total, 0.5 * A + 2.0 * B)
    (oa, ob) = bd.outputs
    close(oa.unweighted, A)
    close(oa.weighted, 0.5 * A)
    assert oa.loss_weight == 0.5 and ob.loss_weight == 2.0
    close(bd.terms["output/a"], A)  # logs show the unweighted loss
    close(bd.terms["output/b"], B)
    close(bd.terms["regularization"], 0.0)


def test_omitted_loss_weights_are_one():
    bd = reference.compute(two_output_case(None, None), "tf_keras-2.21")
    close(bd.total, A + B)
    assert [o.loss_weight for o in bd.outputs] == [1.0, 1.0]


@pytest.mark.parametrize("alt", ["unweighted", "weighted"])
def test_output_log_rule(alt):
    bd = reference.compute(two_output_case(0.5, 2.0), {**TFK, "output_log": alt})
    close(bd.terms["output/b"], B if alt == "unweighted" else 2.0 * B)


def test_loss_weights_dict_with_list_loss_rule():
    # Outputs named "b" then "a" in model order; sorted names are a, b.
    from dataclasses import replace

    case = two_output_case(0.5, 2.0)
    case = replace(case, outputs=(case.outputs[1], case.outputs[0]), loss_weights_form="dict")
    # Case order: b (weight 2.0), a (weight 0.5).
    close(total(case, loss_weights_dict_with_list_loss="by_name"), 2.0 * B + 0.5 * A)
    # Keras 3: b gets the first sorted name's weight (a's 0.5), a gets b's 2.0.
    close(total(case, loss_weights_dict_with_list_loss="sorted_names"), 0.5 * B + 2.0 * A)


def test_single_loss_with_loss_weights_rule():
    from dataclasses import replace

    case = replace(two_output_case(0.5, 2.0), loss_form="single")
    close(total(case, single_loss_with_loss_weights="broadcast"), 0.5 * A + 2.0 * B)
    bd = reference.compute(case, {**TFK, "single_loss_with_loss_weights": "error"})
    assert math.isnan(bd.total) and bd.notes


# --- regularization ------------------------------------------------------------------------


def test_weight_regularizer():
    bd = reference.compute(seq_case(X, kernel_reg=Regularizer("l1_l2", 0.25, 0.5)), "tf_keras-2.21")
    # kernel [[1]]: 0.25 * 1 + 0.5 * 1
    (reg,) = bd.regularization
    assert (reg.layer, reg.weight, reg.kind) == ("out", "kernel", "l1_l2")
    close(reg.value, 0.75)
    close(bd.total, 14 / 3 + 0.75)
    close(bd.terms["regularization"], 0.75)


@pytest.mark.parametrize("alt, want", [("batch_mean", 0.5 * (1 + 2 + 3) / 2), ("sum", 0.5 * (1 + 2 + 3))])
def test_activity_regularizer_scaling(alt, want):
    bd = reference.compute(seq_case(X, activity_reg=Regularizer("l1", 0.5, 0.0)), {**TFK, "activity_regularizer_scaling": alt})
    (reg,) = bd.regularization
    assert (reg.layer, reg.weight) == ("out", "activity")
    close(reg.value, want)
    close(bd.total, 14 / 3 + want)


def test_add_loss_term():
    # AddLossL2 on the masked input: 0.5 * (1 + 4 + 9 + 0).
    bd = reference.compute(seq_case(X, add_loss_factor=0.5), "keras-3.15")
    (reg,) = bd.regularization
    assert (reg.layer, reg.weight, reg.kind) == ("extra", "add_loss", "add_loss")
    close(reg.value, 7.0)
    close(bd.total, 14 / 3 + 7.0)


def test_regularization_terms_add_and_magnitude_counts_absolute_values():
    case = seq_case(X, kernel_reg=Regularizer("l2", 0.0, 0.5), activity_reg=Regularizer("l2", 0.0, 1.0), add_loss_factor=2.0)
    bd = reference.compute(case, "tf_keras-2.21")
    values = {(r.layer, r.weight): r.value for r in bd.regularization}
    close(values[("out", "kernel")], 0.5)
    close(values[("out", "activity")], (1 + 4 + 9) / 2)
    close(values[("extra", "add_loss")], 2 * 14)
    close(bd.total, 14 / 3 + 0.5 + 7 + 28)
    close(bd.magnitude, bd.total)  # all terms non-negative
    # Terms that cancel: the magnitude keeps them apart. Targets above predictions give
    # negative cosine losses; the total can be near 0 while the magnitude is not.
    cos = seq_case([[[1.0], [2.0]], [[3.0], [1.0]]], target=[[[1.0], [1.0]], [[-1.0], [-1.0]]],
                   loss="cosine_similarity", masking=False)
    bd = reference.compute(cos, "tf_keras-2.21")
    close(bd.total, 0.0)  # (-1 - 1 + 1 + 1) / 4
    close(bd.magnitude, 1.0)  # (1 + 1 + 1 + 1) / 4


# --- evaluate / fit ----------------------------------------------------------------------


def test_evaluate_uneven_last_batch_weighted_by_batch_size():
    # Batches of 2 and 1: samples {0, 1} then {2}. Per-batch MSE of a: (1 + 9)/2, 0.25.
    case = two_output_case(0.5, 2.0, evaluate_batch_size=2)
    bd = reference.compute(case, "tf_keras-2.21", "evaluate")
    a1, a2 = (1 + 9) / 2, 0.25
    b1, b2 = (4 + 1) / 2, 16.0
    t1, t2 = 0.5 * a1 + 2.0 * b1, 0.5 * a2 + 2.0 * b2
    close(bd.total, (2 * t1 + 1 * t2) / 3)
    close(bd.terms["output/a"], (2 * a1 + a2) / 3)
    assert [b["size"] for b in bd.batches] == [2, 1]
    # Per-output log averaged per batch (training_v1 / keras 2.3.1 / Keras 3 compiled on TF):
    bd = reference.compute(case, {**TFK, "evaluate_output_log": "batch_mean"}, "evaluate")
    close(bd.terms["output/a"], (a1 + a2) / 2)
    close(bd.total, (2 * t1 + 1 * t2) / 3)
    bd = reference.compute(case, {**TFK, "evaluate_total": "batch_mean"}, "evaluate")
    close(bd.total, (t1 + t2) / 2)


def test_fit_averages_like_evaluate_and_whole_batch_paths_agree():
    case = two_output_case(0.5, 2.0, evaluate_batch_size=2)
    for profile in PROFILES:
        close(reference.compute(case, profile, "fit").total, reference.compute(case, profile, "evaluate").total)
        tob = reference.compute(case, profile, "test_on_batch").total
        for path in ("compute_loss", "train_on_batch"):
            close(reference.compute(case, profile, path).total, tob)


# --- a layer without mask support on a masked tensor (rule mask_into_unmasking_layer) ---------


def _conv_after_mask() -> "spec.Case":
    from harness import spec
    from harness.spec import Case, Input, Layer, Output

    layers = (Layer("mask", "Masking", ("x",), {"mask_value": 0.0}),
              Layer("out", "Conv1D", ("mask",), {"filters": 1, "kernel_size": 1, "padding": "same",
                                                 "activation": "linear", "use_bias": False},
                    {"kernel": np.ones((1, 1, 1))}))
    case = Case("float64", (Input("x", "float", np.asarray(X)),), layers,
                (Output("out", np.zeros((2, 2, 1)), "mean_squared_error"),), "list", "omitted", "omitted", 1)
    spec.validate(case)
    return case


def test_a_mask_into_conv1d_is_dropped_or_refused():
    # Conv1D(kernel 1, weight 1) passes x on; per-step MSE [[1, 4], [9, 0]].
    case = _conv_after_mask()
    close(total(case, mask_into_unmasking_layer="dropped"), (1 + 4 + 9 + 0) / 4)  # Keras 3: every step counts
    refused = reference.compute(case, {**TFK, "mask_into_unmasking_layer": "error"})
    assert math.isnan(refused.total) and refused.notes[0].site.types == ("TypeError",)
    assert "Conv1D" in refused.notes[0]
    close(total(seq_case(X)), (1 + 4 + 9) / 3)  # the same values masked, without the Conv1D


# --- several test_on_batch calls in a row (path test_on_batch_loop) ----------------------


def test_test_on_batch_loop_returns_the_last_batch_when_each_call_resets():
    # Calls on samples {0, 1} then {2}: the second returns batch {2}'s loss alone.
    case = two_output_case(0.5, 2.0, evaluate_batch_size=2)
    bd = reference.compute(case, {**TFK, "on_batch_metrics": "reset_each_call"}, "test_on_batch_loop")
    a2, b2 = 0.25, 16.0
    close(bd.total, 0.5 * a2 + 2.0 * b2)
    close(bd.terms["output/a"], a2)
    assert [b["size"] for b in bd.batches] == [1]


def test_test_on_batch_loop_averages_every_call_when_the_metrics_accumulate():
    # The same two calls averaged as evaluate averages its batches (Keras 3.0-3.14).
    case = two_output_case(0.5, 2.0, evaluate_batch_size=2)
    a1, a2 = (1 + 9) / 2, 0.25
    b1, b2 = (4 + 1) / 2, 16.0
    t1, t2 = 0.5 * a1 + 2.0 * b1, 0.5 * a2 + 2.0 * b2
    accumulates = {**TFK, "on_batch_metrics": "accumulates"}
    bd = reference.compute(case, accumulates, "test_on_batch_loop")
    close(bd.total, (2 * t1 + 1 * t2) / 3)
    close(bd.terms["output/a"], (2 * a1 + a2) / 3)
    bd = reference.compute(case, {**accumulates, "evaluate_total": "batch_mean"}, "test_on_batch_loop")
    close(bd.total, (t1 + t2) / 2)  # Keras 3.0-3.1: the loss tracker's Mean without weights


def test_test_on_batch_loop_is_one_call_when_one_batch_holds_every_sample():
    case = two_output_case(0.5, 2.0, evaluate_batch_size=3)
    for alt in RULES["on_batch_metrics"].alternatives:
        close(total(case, "test_on_batch_loop", on_batch_metrics=alt), total(case))


def test_test_on_batch_loop_a_nan_call_poisons_the_accumulated_mean_only():
    # Calls on sample 0 (fully masked: 0 * inf = NaN under valid_entries), then sample 1 (9, 16).
    case = seq_case([[[0.0], [0.0]], [[3.0], [4.0]]], evaluate_batch_size=1)
    assert math.isnan(total(case, "test_on_batch_loop", mask_normalisation="valid_entries",
                            on_batch_metrics="accumulates"))
    close(total(case, "test_on_batch_loop", mask_normalisation="valid_entries",
                on_batch_metrics="reset_each_call"), (9 + 16) / 2)


def test_evaluate_activity_regularizer_per_batch():
    # Batches of 1: activity l1 0.5 / batch size 1 on each sample's outputs: [1+2, 3].
    case = seq_case(X, activity_reg=Regularizer("l1", 0.5, 0.0), evaluate_batch_size=1)
    bd = reference.compute(case, "tf_keras-2.21", "evaluate")
    # Batch 0: MSE (1+4)/2 + 0.5*3 ; batch 1: 9/1 + 0.5*3.
    close(bd.total, ((5 / 2 + 1.5) + (9 + 1.5)) / 2)


def test_evaluate_fully_masked_batch_poisons_the_mean_under_valid_entries():
    case = seq_case([[[1.0], [2.0]], [[0.0], [0.0]]], evaluate_batch_size=1)
    assert math.isnan(total(case, "evaluate", mask_normalisation="valid_entries"))
    close(total(case, "evaluate", mask_normalisation="valid_entries_no_nan"), (5 / 2 + 0) / 2)


def test_unknown_path_and_incomplete_profile_raise():
    with pytest.raises(ValueError):
        reference.compute(seq_case(X), "tf_keras-2.21", "predict")
    with pytest.raises(KeyError):
        reference.compute(seq_case(X), {"mask_normalisation": "all_entries"})


def test_to_json_is_strict_json_with_nan_as_string():
    case = seq_case([[[0.0], [0.0]], [[0.0], [0.0]]])
    bd = reference.compute(case, "tf_keras-2.21", "evaluate")
    text = json.dumps(bd.to_json(), allow_nan=False)
    assert json.loads(text)["total"] == "nan"


# --- float32 rounding ----------------------------------------------------------------------


def test_float32_case_rounds_values_first():
    # 0.1 is not float32-exact: the implementation sees float32(0.1).
    case = seq_case([[[0.1]]], masking=False, dtype="float32")
    want = float(np.float32(0.1)) ** 2
    close(total(case), want)
    assert want != 0.1**2


@pytest.mark.parametrize("alt", ["applied", "ignored"])
def test_rnn_activity_regularizer_rule(alt):
    # SimpleRNN(1 unit, linear, kernel 1, recurrent 0): outputs equal the inputs [1, 2] / [3, 3].
    from harness import spec
    from harness.spec import Case, Input, Layer, Output

    rnn = Layer("r", "SimpleRNN", ("x",), {"units": 1, "activation": "linear", "return_sequences": True},
                {"kernel": np.array([[1.0]]), "recurrent_kernel": np.array([[0.0]]), "bias": np.array([0.0])},
                {"activity": Regularizer("l1", 0.5, 0.0)})
    case = Case("float64", (Input("x", "float", np.array([[[1.0], [2.0]], [[3.0], [3.0]]])),), (rnn,),
                (Output("r", np.zeros((2, 2, 1)), "mean_squared_error", {}),))
    spec.validate(case)
    want = (1 + 4 + 9 + 9) / 4 + (0.5 * (1 + 2 + 3 + 3) / 2 if alt == "applied" else 0.0)
    close(total(case, rnn_activity_regularizer=alt), want)


@pytest.mark.parametrize("alt", ["once_flattened", "ignored", "once_on_output"])
@pytest.mark.parametrize("scaling", ["batch_mean", "sum"])
def test_time_distributed_activity_regularizer_rule(alt, scaling):
    # TimeDistributed(Dense(1 unit, linear, kernel 2, no bias)) on 2 samples x 3 steps: outputs 2x,
    # sum of |y| = 2 * (1 + 2 + 3 + 1 + 1 + 1) = 18; l1 factor 0.5 -> penalty 9.
    from harness import spec
    from harness.spec import Case, Input, Layer, Output

    td = Layer("t", "TimeDistributedDense", ("x",), {"units": 1, "activation": "linear", "use_bias": False},
               {"kernel": np.array([[2.0]])}, {"activity": Regularizer("l1", 0.5, 0.0)})
    x = np.array([[[1.0], [2.0], [3.0]], [[1.0], [1.0], [1.0]]])
    case = Case("float64", (Input("x", "float", x),), (td,), (Output("t", np.zeros((2, 3, 1)), "mean_absolute_error", {}),))
    spec.validate(case)
    loss = 18 / 6  # mean |y - 0| over the 6 entries
    rows = {"once_flattened": 2 * 3, "once_on_output": 2, "ignored": 1}[alt] if scaling == "batch_mean" else 1
    times = {"once_flattened": 1, "once_on_output": 1, "ignored": 0}[alt]
    close(total(case, time_distributed_activity_regularizer=alt, activity_regularizer_scaling=scaling),
          loss + times * 9 / rows)


@pytest.mark.parametrize("alt", ["nan_propagates", "folded_to_zero"])
def test_zero_loss_weight_rule(alt):
    # Fully masked batch (NaN under valid_entries) with loss weight 0.0, plus a kernel penalty 0.5.
    case = seq_case([[[0.0], [0.0]], [[0.0], [0.0]]], loss_weight=0.0, kernel_reg=Regularizer("l2", 0.0, 0.5))
    close(total(case, zero_loss_weight=alt), math.nan if alt == "nan_propagates" else 0.5)


# --- one output, sample_weight=[w] (single_output_sample_weight_list) -------------------------


@pytest.mark.parametrize("alt, want", [
    # per-step MSE [[1], [4], [9]] (time 1), weights [0, 1, 2]
    ("unwrapped", (0 * 1 + 1 * 4 + 2 * 9) / 3),
    # Keras 3: [w] arrives as (1, 3) and broadcasts against (3, 1) losses: every loss times every weight
    ("leading_axis", (1 + 4 + 9) * (0 + 1 + 2) / 9),
])
def test_a_list_of_one_sample_weight_on_time_1_losses(alt, want):
    case = seq_case([[[1.0]], [[2.0]], [[3.0]]], sample_weight=[0.0, 1.0, 2.0], masking=False)
    close(total(case, single_output_sample_weight_list=alt), want)


def test_a_list_of_one_sample_weight_on_time_equal_batch_weights_the_steps():
    # losses (2, 2): [[1, 4], [9, 16]]; weights [1, 3] reach the steps, not the samples, under leading_axis
    case = seq_case([[[1.0], [2.0]], [[3.0], [4.0]]], sample_weight=[1.0, 3.0], masking=False)
    close(total(case, single_output_sample_weight_list="leading_axis"), (1 * 1 + 3 * 4 + 1 * 9 + 3 * 16) / 4)
    close(total(case, single_output_sample_weight_list="unwrapped"), (1 * 1 + 1 * 4 + 3 * 9 + 3 * 16) / 4)


def test_a_list_of_one_sample_weight_that_cannot_broadcast_is_an_error():
    case = seq_case([[[1.0], [2.0], [3.0]], [[3.0], [4.0], [5.0]]], sample_weight=[1.0, 3.0], masking=False)
    b = reference.compute(case, {**TFK, "single_output_sample_weight_list": "leading_axis"}, "test_on_batch")
    assert math.isnan(b.total) and "compile_utils.py:CompileLoss.call" in b.notes[0]
