"""Per-step sample weights given as (batch, time, 1) instead of (batch, time) (issue 19), and the rule
timestep_weight_trailing_axis: tf-keras eager and Keras 3 squeeze the last axis; the Keras 2 graph
loop (keras 2.x, training_v1), told sample_weight_mode="temporal", refuses anything but 2D.

Hand-computed on seq_case(X): per-step MSE [[1, 4], [9, 0]], the last step masked (3 valid entries);
weights [[2, 1], [0.5, 3]] give (2 * 1 + 1 * 4 + 0.5 * 9) / 3 = 3.5, and so do [[[2], [1]], [[0.5], [3]]].
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from harness import compare, features, reference, spec, strategies, vocabulary
from harness.impls import keras2_graph
from harness.reference import rules, semantics
from test_reference_builders import close, seq_case
from test_reference_version_rules import X

PER_STEP = [[2.0, 1.0], [0.5, 3.0]]
TRAILING = [[[2.0], [1.0]], [[0.5], [3.0]]]
PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")
GRAPH = (rules.expected("tf_keras-graph", {"tf_keras": "2.21.0"}), "keras-2.3.1")


def seq(sample_weight) -> spec.Case:
    """seq_case(X) with the weights passed as one array (a list of one is rule
    single_output_sample_weight_list)."""
    return replace(seq_case(X, sample_weight=sample_weight), sample_weight_form="single")


def test_a_trailing_axis_of_one_is_its_own_kind_and_survives_json():
    case = seq(TRAILING)
    assert spec.sample_weight_kind(case, case.outputs[0]) == "timestep_trailing_axis"
    assert spec.loads(spec.dumps(case)).outputs[0].sample_weight.shape == (2, 2, 1)
    assert "sample_weight_trailing_axis" in features.features(case)
    # graph mode is told the user weighs steps, as for (batch, time)
    assert keras2_graph.sample_weight_mode(case) == keras2_graph.sample_weight_mode(seq(PER_STEP)) == "temporal"


def test_a_trailing_axis_longer_than_one_is_refused_naming_the_shapes_allowed():
    case = seq(TRAILING)
    wrong = replace(case, outputs=(replace(case.outputs[0], sample_weight=np.ones((2, 2, 2))),))
    with pytest.raises(spec.CaseError, match=r"outputs\[0\]\.sample_weight.*\(2, 2\) or \(2, 2, 1\)"):
        spec.validate(wrong)


def test_drawn_from_vocabulary_version_16_on_and_never_before():
    since = vocabulary.FORMS_SINCE["timestep_trailing_axis"]
    assert any("sample_weight_trailing_axis" in features.features(c)
               for c in strategies.corpus(0, 120, vocabulary_version=since))
    assert not any("sample_weight_trailing_axis" in features.features(c)
                   for c in strategies.corpus(0, 120, vocabulary_version=since - 1))


@pytest.mark.parametrize("profile", ("tf_keras-2.21", "keras-3.15", "keras-3.15-jax", "keras-3.15-torch",
                                     "keras-3.15-numpy"))
@pytest.mark.parametrize("path", PATHS)
def test_squeezed_it_weighs_each_step_like_batch_by_time(profile, path):
    close(reference.compute(seq(TRAILING), profile, path).total, reference.compute(seq(PER_STEP), profile, path).total)
    if path == "test_on_batch":
        close(reference.compute(seq(TRAILING), profile, path).total, 3.5)


@pytest.mark.parametrize("profile", GRAPH)
@pytest.mark.parametrize("path", PATHS)
def test_keras_2_graph_mode_refuses_it_on_every_path(profile, path):
    bd = reference.compute(seq(TRAILING), profile, path)
    assert math.isnan(bd.total)
    message = ("ValueError: Found a sample_weight array with shape (2, 2, 1). In order to use timestep-wise "
               "sample weighting, you should pass a 2D sample_weight array.")
    assert compare.predicts_error(bd, message + " [at tf_keras/src/engine/training_utils_v1.py:1127 in "
                                  "standardize_weights]")
    assert compare.predicts_error(bd, message + " [at keras/engine/training_utils.py:462 in standardize_weights]")
    # (batch, time) is taken (keras 2.3.1 then divides by every entry, masked or not: rule mask_normalisation)
    assert math.isfinite(reference.compute(seq(PER_STEP), profile, path).total)


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("keras3", "3.0.5", {"backend": "jax"}, "squeezed"),
    ("keras3", "3.15.1", {"backend": "numpy"}, "squeezed"),
    ("tf_keras", "2.21.0", {}, "squeezed"),
    ("tf_keras", "2.14.1", {"mode": "graph"}, "error_not_2d"),
    ("tf.keras", "2.12.0", {}, "squeezed"),
    ("tf.keras", "2.15.0", {"mode": "graph"}, "error_not_2d"),
    ("keras", "2.3.1", {}, "error_not_2d"),
    ("keras", "2.2.4", {}, "error_not_2d"),
])
def test_each_release_reads_it_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["timestep_weight_trailing_axis"] == want
