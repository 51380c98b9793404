"""Version rules found by running the implementations (round 2), each worked out by hand.

huber_last_axis and log_cosh_float64 (keras 2.3.1), sample_weight_normalisation (keras 2.2.4),
dict_sample_weight (Keras 3), additional_losses_sum (Keras 3 numpy), float64_compute (Keras 3
on JAX / torch / NumPy), the keras-2.2.4 profile, and the rule every error note obeys: it cites
the Keras file whose code raises (harness.compare.predicts_error matches it).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from harness import compare, reference, spec
from harness.reference import rules
from harness.reference.rules import PROFILES, RULES
from harness.spec import Case, Input, Layer, Output, Regularizer
from test_reference_builders import close, seq_case

TFK = PROFILES["tf_keras-2.21"]
KERAS_FILE = re.compile(r"\b((?:tf_keras|keras)/[\w/]+\.py)")  # what compare.predicts_error reads

# seq_case x: sample 0 steps [1, 2]; sample 1 steps [3, masked]. Per-step MSE: [[1, 4], [9, 0]].
X = [[[1.0], [2.0]], [[3.0], [0.0]]]


def wide_case(x, *, loss="huber", options=None, sample_weight=None, dtype="float64", outputs=1,
              sample_weight_form=None) -> Case:
    """x (batch, 2) -> Dense "out" (2 units, identity kernel, linear); more outputs copy it ("out1", ...).

    Predictions equal x; targets are 0, so huber's error is x itself."""
    xa = np.asarray(x, dtype=np.float64)
    layers, outs = [], []
    for k in range(outputs):
        name = "out" if k == 0 else f"out{k}"
        layers.append(Layer(name, "Dense", ("x",), {"units": 2, "activation": "linear", "use_bias": False},
                            {"kernel": np.eye(2)}))
        outs.append(Output(name, np.zeros_like(xa), loss, dict(options or {}), None,
                           None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)))
    form = sample_weight_form or ("omitted" if sample_weight is None else "list")
    case = Case(dtype, (Input("x", "float", xa),), tuple(layers), tuple(outs), "list", "omitted", form, 1)
    spec.validate(case)
    return case


# Huber (delta 1) of the errors [[0.5, 2], [1, -3]]: 0.5 * 0.5^2 = 0.125; 2 - 0.5 = 1.5; 0.5; 3 - 0.5 = 2.5.
HX = [[0.5, 2.0], [1.0, -3.0]]
H_MEAN = [(0.125 + 1.5) / 2, (0.5 + 2.5) / 2]  # per sample, mean over the last axis


# --- huber_last_axis -----------------------------------------------------------------------


@pytest.mark.parametrize("alt, want", [
    ("mean", H_MEAN[0] + H_MEAN[1]),
    ("none", 0.125 + 1.5 + 0.5 + 2.5),  # every element summed: 2 (= d) times the mean
])
def test_huber_sum_keeps_the_last_axis_in_keras_231(alt, want):
    case = wide_case(HX, options={"reduction": "sum"})
    close(reference.compute(case, {**TFK, "huber_last_axis": alt}).total, want)


@pytest.mark.parametrize("alt", ["mean", "none"])
def test_huber_sum_over_batch_size_is_the_same_either_way(alt):
    case = wide_case(HX, options={"reduction": "sum_over_batch_size"})
    close(reference.compute(case, {**TFK, "huber_last_axis": alt}).total, (0.125 + 1.5 + 0.5 + 2.5) / 4)


def test_huber_elementwise_weights_expand_over_the_last_axis():
    # Weights [2, 0]: only sample 0 counts, with each of its 2 elements weighted 2.
    case = wide_case(HX, options={"reduction": "sum"}, sample_weight=[2.0, 0.0])
    close(reference.compute(case, {**TFK, "huber_last_axis": "none"}).total, 2 * (0.125 + 1.5))
    close(reference.compute(case, {**TFK, "huber_last_axis": "mean"}).total, 2 * H_MEAN[0])


def test_keras_231_profile_takes_the_elementwise_huber():
    case = wide_case(HX, options={"reduction": "sum"})
    close(reference.compute(case, "keras-2.3.1").total, 0.125 + 1.5 + 0.5 + 2.5)


# --- log_cosh_float64 ----------------------------------------------------------------------


def test_log_cosh_float64_is_an_error_in_keras_231_and_a_number_in_float32():
    bd = reference.compute(seq_case(X, loss="log_cosh"), "keras-2.3.1")
    assert math.isnan(bd.total)
    assert any("keras/losses.py" in n for n in bd.notes), bd.notes
    # float32: K.log(2.) matches the tensor's dtype; log cosh(x) per step, mean over the 3 valid steps.
    f32 = reference.compute(seq_case(X, loss="log_cosh", dtype="float32"), "keras-2.3.1")
    assert not f32.notes
    # keras 2.3.1 divides a masked sum by all 4 entries (mask_normalisation all_entries).
    close(f32.total, sum(math.log(math.cosh(v)) for v in (1.0, 2.0, 3.0)) / 4, tol=1e-6)


def test_log_cosh_float64_computed_elsewhere():
    bd = reference.compute(seq_case(X, loss="log_cosh"), "tf_keras-2.21")
    # tol 1e-8: the implementations subtract a float32 log(2), 1.9e-9 off (test_reference_losses).
    close(bd.total, sum(math.log(math.cosh(v)) for v in (1.0, 2.0, 3.0)) / 3, tol=1e-8)
    assert not bd.notes


def hinge_case() -> Case:
    """wide_case's model with categorical_hinge on one-hot targets."""
    base = wide_case(HX, loss="mean_squared_error")
    case = replace(base, outputs=(replace(base.outputs[0], loss="categorical_hinge", target=np.eye(2)),))
    spec.validate(case)
    return case


def test_categorical_hinge_float64_is_an_error_in_keras_231_only():
    case = hinge_case()
    bd = reference.compute(case, "keras-2.3.1")
    assert math.isnan(bd.total) and any("keras/losses.py:categorical_hinge" in n for n in bd.notes), bd.notes
    assert not reference.compute(replace(case, dtype="float32"), "keras-2.3.1").notes
    assert math.isfinite(reference.compute(case, "tf_keras-2.21").total)


# --- sample_weight_normalisation (keras 2.2.4) ---------------------------------------------


@pytest.mark.parametrize("weights, fraction", [
    ([2.0, 0.0], 0.5),  # (batch,) weights: one of two non-zero
    ([[1.0, 0.5], [2.0, 0.0]], 0.75),  # (batch, time) weights: three of four non-zero
])
def test_nonzero_fraction_divides_by_the_share_of_nonzero_weights(weights, fraction):
    case = seq_case(X, sample_weight=weights)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64).reshape(2, -1), (2, 2))
    plain = (w[0, 0] * 1 + w[0, 1] * 4 + w[1, 0] * 9) / 3  # valid entries: 3
    close(reference.compute(case, {**TFK, "sample_weight_normalisation": "none"}).total, plain)
    close(reference.compute(case, {**TFK, "sample_weight_normalisation": "nonzero_fraction"}).total, plain / fraction)


def test_nonzero_fraction_all_zero_weights_is_nan_and_no_weights_is_factor_one():
    zero = seq_case(X, sample_weight=[0.0, 0.0])
    assert math.isnan(reference.compute(zero, {**TFK, "sample_weight_normalisation": "nonzero_fraction"}).total)
    close(reference.compute(seq_case(X), {**TFK, "sample_weight_normalisation": "nonzero_fraction"}).total,
          (1 + 4 + 9) / 3)


def test_keras_224_profile_by_hand():
    # Weights [2, 0] (fraction 0.5), mask divides by valid entries, activity l1 0.5 summed (not / batch).
    case = seq_case(X, sample_weight=[2.0, 0.0], activity_reg=Regularizer("l1", 0.5, 0.0))
    want = (2 * 1 + 2 * 4 + 0 * 9) / 3 / 0.5 + 0.5 * (1 + 2 + 3 + 0)
    close(reference.compute(case, "keras-2.2.4").total, want)


def test_keras_224_evaluate_weights_outputs_by_batch_size():
    # Batches of 2 then 1 (batch 3, evaluate_batch_size 2), no mask: MSE per sample x^2 = 1, 4, 9.
    case = replace(seq_case([[[1.0]], [[2.0]], [[3.0]]], masking=False), evaluate_batch_size=2)
    bd = reference.compute(case, "keras-2.2.4", "evaluate")
    close(bd.total, (2 * (1 + 4) / 2 + 1 * 9) / 3)
    close(bd.terms["output/out"], (2 * (1 + 4) / 2 + 1 * 9) / 3)


# --- dict_sample_weight (Keras 3) ----------------------------------------------------------


def test_dict_sample_weight_by_name_in_keras2():
    case = wide_case(HX, loss="mean_squared_error", sample_weight=[1.0, 0.0], outputs=2, sample_weight_form="dict")
    mse0 = (0.25 + 4.0) / 2
    close(reference.compute(case, "tf_keras-2.21").total, 2 * mse0 / 2)


@pytest.mark.parametrize("path, cited", [
    ("compute_loss", "keras/src/trainers/compile_utils.py"),
    ("test_on_batch", "keras/src/trainers/compile_utils.py"),
    ("evaluate", "keras/src/trainers/data_adapters/array_data_adapter.py"),
    ("fit", "keras/src/trainers/data_adapters/array_data_adapter.py"),
])
def test_dict_sample_weight_with_list_outputs_is_an_error_in_keras3(path, cited):
    case = wide_case(HX, loss="mean_squared_error", sample_weight=[1.0, 0.0], outputs=2, sample_weight_form="dict")
    for profile in ("keras-3.15", "keras-3.15-jax", "keras-3.15-torch", "keras-3.15-numpy"):
        bd = reference.compute(case, profile, path)
        assert math.isnan(bd.total), (profile, path)
        assert all(math.isnan(v) for k, v in bd.terms.items() if k.startswith("output/")), bd.terms
        assert cited in set(KERAS_FILE.findall(" ".join(bd.notes))), (profile, path, bd.notes)


def test_dict_sample_weight_one_output_cites_the_backend_conversion():
    case = wide_case(HX, loss="mean_squared_error", sample_weight=[1.0, 0.0], sample_weight_form="dict")
    bd = reference.compute(case, "keras-3.15-numpy")
    assert math.isnan(bd.total) and "keras/src/backend/numpy/core.py" in KERAS_FILE.findall(" ".join(bd.notes))


# --- single_sample_weight_not_per_sample (Keras 3 evaluate/fit) -----------------------------


def two_temporal_outputs(sample_weight) -> Case:
    """x (2, 2, 1) = X without mask -> Dense "a" and Dense "b" (1 unit, kernel [[1]]): both predict x."""
    xa = np.asarray(X, dtype=np.float64)
    dense = {"units": 1, "activation": "linear", "use_bias": False}
    layers = (Layer("a", "Dense", ("x",), dense, {"kernel": np.array([[1.0]])}),
              Layer("b", "Dense", ("x",), dense, {"kernel": np.array([[1.0]])}))
    sw = np.asarray(sample_weight, dtype=np.float64)
    outs = tuple(Output(n, np.zeros_like(xa), "mean_squared_error", {}, None, sw) for n in ("a", "b"))
    case = Case("float64", (Input("x", "float", xa),), layers, outs, "list", "omitted", "single", 2)
    spec.validate(case)
    return case


def test_one_per_timestep_weight_array_for_two_outputs():
    # Per-step MSE [[1, 4], [9, 0]] weighted [[1, 0.5], [2, 0]]: (1 + 2 + 18 + 0) / 4 per output.
    case = two_temporal_outputs([[1.0, 0.5], [2.0, 0.0]])
    for path in ("test_on_batch", "evaluate"):
        close(reference.compute(case, "tf_keras-2.21", path).total, 2 * 21 / 4)
    close(reference.compute(case, "keras-3.15", "test_on_batch").total, 2 * 21 / 4)  # no data adapter
    bd = reference.compute(case, "keras-3.15", "evaluate")
    assert math.isnan(bd.total)
    assert "keras/src/trainers/data_adapters/array_data_adapter.py" in KERAS_FILE.findall(" ".join(bd.notes))
    # One score per sample is accepted (and meets the time axis: sample_weight_broadcast trailing_axis).
    per_sample = reference.compute(two_temporal_outputs([2.0, 0.0]), "keras-3.15", "evaluate")
    assert not per_sample.notes
    close(per_sample.total, 2 * (2 * 1 + 0 * 4 + 2 * 9 + 0 * 0) / 4)


# --- additional_losses_sum (Keras 3 numpy) -------------------------------------------------


def test_numpy_backend_fails_once_model_losses_is_not_empty():
    with_penalty = seq_case(X, kernel_reg=Regularizer("l2", 0.0, 0.5))
    bd = reference.compute(with_penalty, {**TFK, "additional_losses_sum": "list_error"})
    assert math.isnan(bd.total) and "keras/src/backend/numpy/numpy.py" in KERAS_FILE.findall(" ".join(bd.notes))
    close(reference.compute(with_penalty, {**TFK, "additional_losses_sum": "ops_sum"}).total, (1 + 4 + 9) / 3 + 0.5)
    # No penalty: one loss term, no list sum.
    close(reference.compute(seq_case(X), {**TFK, "additional_losses_sum": "list_error"}).total, (1 + 4 + 9) / 3)


# --- float64_compute -----------------------------------------------------------------------


def test_float64_case_computed_in_float32_rounds_like_a_float32_case():
    case = seq_case([[[0.1]]], masking=False)  # 0.1 is not float32-exact
    close(reference.compute(case, {**TFK, "float64_compute": "float64"}).total, 0.1**2)
    close(reference.compute(case, {**TFK, "float64_compute": "float32"}).total, float(np.float32(0.1)) ** 2)
    assert reference.predictions(case, {**TFK, "float64_compute": "float32"})["out"][0, 0, 0] == float(np.float32(0.1))
    # Mixed (JAX, torch): the reference stays float64, only the tolerance is float32's.
    close(reference.compute(case, {**TFK, "float64_compute": "float32_reduction"}).total, 0.1**2)
    assert reference.predictions(case, {**TFK, "float64_compute": "float32_reduction"})["out"][0, 0, 0] == 0.1


@pytest.mark.parametrize("profile, want", [
    ("keras-3.15", "float64"), ("tf_keras-2.21", "float64"), ("keras-2.3.1", "float64"),
    ("keras-3.15-jax", "float32"), ("keras-3.15-torch", "float32"), ("keras-3.15-numpy", "float32"),
])
def test_effective_dtype(profile, want):
    assert reference.effective_dtype(seq_case(X), profile) == want
    assert reference.effective_dtype(seq_case(X, dtype="float32"), profile) == "float32"


# --- l1_regularizer_float64 -----------------------------------------------------------------


def test_an_l1_regularizer_in_float64_raises_on_keras3_tensorflow_before_3_14_only():
    l1 = seq_case(X, kernel_reg=Regularizer("l1", 0.5, 0.0))
    before = rules.expected("keras3-tensorflow", {"keras": "3.13.2"})
    assert reference.compute(l1, before, "test_on_batch").notes  # a predicted error, NaN total
    for profile in (rules.expected("keras3-tensorflow", {"keras": "3.14.1"}),
                    rules.expected("keras3-jax", {"keras": "3.13.2"}), "tf_keras-2.21"):
        assert not reference.compute(l1, profile, "test_on_batch").notes, profile
    # L2 and L1L2 keep Python-float factors: no error; nor in a float32 case
    for other in (seq_case(X, kernel_reg=Regularizer("l2", 0.0, 0.5)), seq_case(X, kernel_reg=Regularizer("l1", 0.5, 0.0),
                                                                          dtype="float32")):
        assert not reference.compute(other, before, "test_on_batch").notes


# --- every error note cites the Keras file that raises -------------------------------------


def _error_cases() -> list[tuple[str, Case, dict]]:
    x3 = [[[1.0], [2.0], [3.0]], [[3.0], [1.0], [0.0]]]  # time 3 != batch 2
    two = wide_case(HX, loss="mean_squared_error", sample_weight=[1.0, 0.0], outputs=2, sample_weight_form="dict")
    single_loss = replace(wide_case(HX, loss="mean_squared_error", outputs=2), loss_form="single",
                          loss_weights_form="list",
                          outputs=tuple(replace(o, loss_weight=2.0) for o in wide_case(HX, outputs=2,
                                                                                     loss="mean_squared_error").outputs))
    return [
        ("broadcast", seq_case(x3, sample_weight=[2.0, 0.0], evaluate_batch_size=2),
         {"sample_weight_broadcast": "trailing_axis"}),
        ("in-place mask", seq_case(X, sample_weight=[2.0, 0.0]), {"sample_weight_broadcast": "trailing_axis_inplace_mask"}),
        ("single loss", single_loss, {"single_loss_with_loss_weights": "error"}),
        ("list loss, dict weights", replace(single_loss, loss_form="list", loss_weights_form="dict"),
         {"loss_weights_dict_with_list_loss": "error"}),
        ("single loss as a list, dict weights", replace(single_loss, loss_weights_form="dict"),
         {"single_loss_with_loss_weights": "broadcast_as_list", "loss_weights_dict_with_list_loss": "error"}),
        ("log_cosh", seq_case(X, loss="log_cosh"), {"log_cosh_float64": "error"}),
        ("categorical_hinge", hinge_case(), {"categorical_hinge_float64": "error"}),
        ("dict", two, {"dict_sample_weight": "error"}),
        ("dict y, one output", replace(wide_case(HX, loss="mean_squared_error"), y_form="dict"),
         {"dict_targets_one_output": "error"}),
        ("dict y and weights", replace(two, y_form="dict"), {"dict_sample_weight_with_dict_targets": "error"}),
        ("list sum", seq_case(X, kernel_reg=Regularizer("l2", 0.0, 0.5)), {"additional_losses_sum": "list_error"}),
        ("l1 in float64", seq_case(X, kernel_reg=Regularizer("l1", 0.5, 0.0)), {"l1_regularizer_float64": "error"}),
        ("single weight", two_temporal_outputs([[1.0, 0.5], [2.0, 0.0]]),
         {"single_sample_weight_not_per_sample": "error_in_data_adapter"}),
        ("odd batch on 2 devices", wide_case(HX + [[2.0, 1.0]]), {"replica_split": "sharded_even"}),
        ("bare loss weight, graph mode", one_weight(2.0, "scalar"), {"one_output_loss_weights": "no_bare_number"}),
        ("bare int loss weight", one_weight(2, "scalar"), {"one_output_loss_weights": "no_bare_int"}),
        ("list loss weight, one output", one_weight(2.0, "list"), {"one_output_loss_weights": "bare_float_only"}),
        ("bare float loss weight, Keras 3.0", one_weight(2.0, "scalar"), {"one_output_loss_weights": "none"}),
        ("sample weight column, graph mode", wide_case(HX, loss="mean_squared_error", sample_weight=[[1.0], [0.0]]),
         {"sample_weight_column": "error_not_1d"}),
        ("reduction mean, tf-keras", wide_case(HX, options={"reduction": "mean"}), {"reduction_values": "tf_keras"}),
        ("reduction auto, Keras 3", wide_case(HX, options={"reduction": "auto"}), {"reduction_values": "keras3"}),
        ("reduction auto, keras 2", wide_case(HX, options={"reduction": "auto"}), {"reduction_values": "keras2"}),
        ("reduction mean, Keras 3.6", wide_case(HX, options={"reduction": "mean"}),
         {"reduction_values": "keras3_before_3_7"}),
        ("sample weight column, in-place mask", seq_case(X, sample_weight=[[2.0], [0.0]]),
         {"sample_weight_broadcast": "trailing_axis_inplace_mask"}),
        ("None in a list", replace(replace(two, sample_weight_form="list"),
                                   outputs=(two.outputs[0], replace(two.outputs[1], sample_weight=None))),
         {"none_in_sample_weight_list": "on_batch_attribute_error"}),
        ("(batch, time, 1) weights, graph mode", seq_case(X, sample_weight=[[[2.0], [1.0]], [[0.5], [3.0]]]),
         {"timestep_weight_trailing_axis": "error_not_2d"}),
    ]


# The paths on which each error case raises (the others: test_on_batch and evaluate).
_ERROR_PATHS = {"single weight": ("evaluate",), "None in a list": ("test_on_batch",)}


def one_weight(weight: float | int, form: str) -> Case:
    """wide_case(HX) with loss_weights `weight` in `form` (one output)."""
    case = wide_case(HX, loss="mean_squared_error")
    return replace(case, loss_weights_form=form, outputs=(replace(case.outputs[0], loss_weight=weight),))


@pytest.mark.parametrize("what, case, flip", _error_cases(), ids=[c[0] for c in _error_cases()])
def test_every_error_note_cites_a_keras_file(what, case, flip):
    for path in _ERROR_PATHS.get(what, ("test_on_batch", "evaluate")):
        bd = reference.compute(case, {**TFK, **flip}, path)
        assert bd.notes, (what, path)
        for note in bd.notes:
            assert KERAS_FILE.search(note), f"{what} {path}: note cites no Keras file: {note}"
        # And compare accepts an error raised in a cited file, refuses one raised elsewhere.
        cited = KERAS_FILE.findall(" ".join(bd.notes))[0]
        assert compare.predicts_error(bd, f"Boom [at {cited}:1 in f]")
        assert not compare.predicts_error(bd, "Boom [at keras/src/unrelated/nowhere.py:1 in f]")


def test_every_error_alternative_is_covered_above():
    # An alternative whose description promises an error/NaN note must have a case in _error_cases.
    covered = {rule for _, _, flip in _error_cases() for rule in flip}
    promising = {name for name, rule in RULES.items()
                 for alt in rule.alternatives.values() if "notes" in alt.description or "a note" in alt.description}
    assert promising <= covered, promising - covered
