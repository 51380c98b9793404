"""Sample weights as a (batch, 1) column instead of a (batch,) vector (issue 19), and the rule
sample_weight_column: Keras 3 and tf.keras/tf-keras eager read a column as one weight per sample;
the Keras 2 graph loop (keras 2.x, training_v1) refuses it in standardize_weights.

Two cases, hand-computed:
- wide_case(HX): MSE against zero targets, per sample (0.25 + 4) / 2 = 2.125 and (1 + 9) / 2 = 5;
  weights [[2], [0]] give (2 * 2.125 + 0 * 5) / 2 = 2.125.
- seq_case(X): per-step MSE [[1, 4], [9, 0]], the last step masked (3 valid entries); weights
  [[2], [0.5]] give (2 * 1 + 2 * 4 + 0.5 * 9) / 3 = 14.5 / 3.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness import compare, features, reference, spec, strategies
from harness.impls import keras2_graph
from harness.reference import rules, semantics
from harness.reference.rules import PROFILES
from test_reference_builders import close, seq_case
from test_reference_version_rules import HX, X, wide_case

ROOT = Path(__file__).resolve().parents[1]
COLUMN = [[2.0], [0.0]]
VECTOR = [2.0, 0.0]
KERAS3 = ("keras-3.15", "keras-3.15-jax", "keras-3.15-torch", "keras-3.15-numpy")
GRAPH = (rules.expected("tf_keras-graph", {"tf_keras": "2.21.0"}), "keras-2.3.1")
PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")


def wide(sample_weight, form: str = "single") -> spec.Case:
    """One output, the weights passed as one array (form "single"; a list of one is another rule,
    single_output_sample_weight_list)."""
    return wide_case(HX, loss="mean_squared_error", sample_weight=sample_weight, sample_weight_form=form)


def seq(sample_weight, **kwargs) -> spec.Case:
    """seq_case(X) with the weights passed as one array."""
    return replace(seq_case(X, sample_weight=sample_weight, **kwargs), sample_weight_form="single")


# --- the Case ------------------------------------------------------------------------------------


def test_a_column_is_its_own_kind_of_sample_weight_and_keeps_its_shape_through_json():
    column, vector = wide(COLUMN), wide(VECTOR)
    assert spec.sample_weight_kind(column, column.outputs[0]) == "column"
    assert spec.sample_weight_kind(vector, vector.outputs[0]) == "per_sample"
    assert spec.loads(spec.dumps(column)).outputs[0].sample_weight.shape == (2, 1)
    assert column.id != vector.id


def test_on_a_temporal_output_a_batch_by_time_array_is_per_step_even_when_time_is_one():
    per_step = seq_case([[[1.0], [2.0]], [[3.0], [4.0]]], sample_weight=[[1.0, 2.0], [3.0, 4.0]], masking=False)
    assert spec.sample_weight_kind(per_step, per_step.outputs[0]) == "timestep"
    one_step = seq_case([[[1.0]], [[3.0]]], sample_weight=[[2.0], [0.5]], masking=False)
    assert spec.sample_weight_kind(one_step, one_step.outputs[0]) == "timestep"
    assert keras2_graph.sample_weight_mode(one_step) == "temporal"
    # time 2: (batch, 1) is a column, and graph mode is not told "temporal"
    column = seq([[2.0], [0.5]])
    assert spec.sample_weight_kind(column, column.outputs[0]) == "column"
    assert keras2_graph.sample_weight_mode(column) is None


def test_other_shapes_are_refused_naming_the_field_and_the_shapes_allowed():
    case = wide(VECTOR)
    wrong = spec.Output("out", case.outputs[0].target, "mean_squared_error", {}, None, np.ones((2, 2)))
    with pytest.raises(spec.CaseError) as err:
        spec.validate(spec.Case(case.dtype, case.inputs, case.layers, (wrong,), "list", "omitted", "list", 1))
    assert "$.outputs[0].sample_weight" in str(err.value) and "(2,) or (2, 1)" in str(err.value)


# --- the reference -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ("tf_keras-2.21",) + KERAS3)
@pytest.mark.parametrize("path", PATHS)
def test_a_column_weighs_each_sample_like_a_vector_where_keras_accepts_it(profile, path):
    close(reference.compute(wide(COLUMN), profile, path).total, 2.125)
    close(reference.compute(wide(VECTOR), profile, path).total, 2.125)


@pytest.mark.parametrize("profile", GRAPH)
@pytest.mark.parametrize("path", PATHS)
def test_keras_2_graph_mode_refuses_a_column_on_every_path(profile, path):
    bd = reference.compute(wide(COLUMN), profile, path)
    assert math.isnan(bd.total)
    message = ("ValueError: Found a sample_weight array with shape (2, 1). In order to use timestep-wise "
               "sample weights, you should specify sample_weight_mode=\"temporal\" in compile()")
    assert compare.predicts_error(bd, message + " [at tf_keras/src/engine/training_utils_v1.py:1136 in "
                                  "standardize_weights]")
    assert compare.predicts_error(bd, message + " [at keras/engine/training_utils.py:467 in standardize_weights]")
    assert not compare.predicts_error(bd, message + " [at keras/engine/training.py:1 in fit]")
    # the vector is accepted
    close(reference.compute(wide(VECTOR), profile, path).total, 2.125)


def test_on_a_masked_temporal_output_a_column_weighs_samples_where_a_vector_weighs_steps_in_keras3():
    column = seq([[2.0], [0.5]])
    for profile in ("tf_keras-2.21", "keras-3.15", "keras-3.15-jax"):
        close(reference.compute(column, profile, "test_on_batch").total, 14.5 / 3)
    # Keras 3 meets a (batch,) vector with the time axis (time == batch here): weight[t] scales step t.
    vector = seq([2.0, 0.5])
    close(reference.compute(vector, "keras-3.15", "test_on_batch").total, (2 * 1 + 0.5 * 4 + 2 * 9) / 3)
    close(reference.compute(vector, "tf_keras-2.21", "test_on_batch").total, 14.5 / 3)


@pytest.mark.parametrize("profile", ("keras-3.15-torch", "keras-3.15-numpy"))
def test_torch_and_numpy_cannot_grow_a_column_in_place_by_the_mask(profile):
    bd = reference.compute(seq([[2.0], [0.5]]), profile, "test_on_batch")
    assert math.isnan(bd.total)
    assert compare.predicts_error(bd, "ValueError: non-broadcastable output operand with shape (2,1) doesn't match "
                                  "the broadcast shape (2,2) [at keras/src/losses/loss.py:223 in apply_mask]")
    # without a mask there is nothing to multiply in place: per sample, as everywhere
    close(reference.compute(seq([[2.0], [0.5]], masking=False), profile,
                            "test_on_batch").total, (2 * 1 + 2 * 4 + 0.5 * 9 + 0.5 * 0) / 4)


# --- which release takes which alternative ----------------------------------------------------------


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("keras3", "3.0.5", {"backend": "jax"}, "per_sample"),
    ("keras3", "3.15.1", {"backend": "numpy"}, "per_sample"),
    ("tf_keras", "2.21.0", {}, "per_sample"),
    ("tf_keras", "2.14.1", {"mode": "graph"}, "error_not_1d"),
    ("tf.keras", "2.12.0", {}, "per_sample"),
    ("tf.keras", "2.15.0", {"mode": "graph"}, "error_not_1d"),
    ("keras", "2.3.1", {}, "error_not_1d"),
    ("keras", "2.2.4", {}, "error_not_1d"),
])
def test_each_release_reads_a_column_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["sample_weight_column"] == want


# --- drawn cases ---------------------------------------------------------------------------------


def test_drawn_cases_from_version_7_give_columns_and_earlier_versions_none():
    def columns(case: spec.Case) -> list[spec.Output]:
        return [o for o in case.outputs if spec.sample_weight_kind(case, o) == "column"]

    drawn = strategies.corpus(0, 200)
    with_columns = [c for c in drawn if columns(c)]
    assert len(with_columns) >= 10
    assert {c.sample_weight_form for c in with_columns} == {"single", "list", "dict"}
    assert all("sample_weight_column" in features.features(c) for c in with_columns)
    assert not any(columns(c) for c in strategies.corpus(0, 200, vocabulary_version=6))


def test_the_profiles_differ_on_a_column_only_in_graph_mode():
    differs = [name for name, p in PROFILES.items() if p["sample_weight_column"] != "per_sample"]
    assert differs and all(name.startswith(("keras-2", "tf_keras-2.21-graph", "tf.keras")) or "graph" in name
                           for name in differs), differs


# --- one output, sample_weight=[w]: the (1, batch) weights and an in-place mask --------------------


def test_a_list_of_one_weight_array_cannot_take_the_mask_in_place_on_torch_and_numpy():
    # seq_case passes one output's weights as a list: Keras 3 gives the loss the whole list,
    # shape (1, 2) (rule single_output_sample_weight_list="leading_axis"), which meets the (2, 2)
    # mask along time: on TensorFlow and JAX weight[t] scales step t; torch and NumPy multiply the
    # mask in place (keras/src/losses/loss.py:apply_mask) and raise (found case 6be2706e1661e5be).
    listed = seq_case(X, sample_weight=[2.0, 0.5])
    assert listed.sample_weight_form == "list"
    for profile in ("keras-3.15", "keras-3.15-jax"):
        close(reference.compute(listed, profile, "test_on_batch").total, (2 * 1 + 0.5 * 4 + 2 * 9) / 3)
    for profile in ("keras-3.15-torch", "keras-3.15-numpy"):
        bd = reference.compute(listed, profile, "test_on_batch")
        assert math.isnan(bd.total)
        assert compare.predicts_error(bd, "RuntimeError: output with shape [1, 2] doesn't match the broadcast "
                                      "shape [2, 2] [at keras/src/losses/loss.py:223 in apply_mask]")
    found = spec.load(ROOT / "cases" / "found" / "6be2706e1661e5be.json")
    assert math.isnan(reference.compute(found, "keras-3.15-torch", "test_on_batch").total)
    assert not math.isnan(reference.compute(found, "keras-3.15-jax", "test_on_batch").total)
