"""Sample weights for some outputs only (issue 19): `sample_weight=[w, None]`, or a dict without the
key of an output (`sample_weight={"a": w}`), and the rule partial_dict_sample_weight.

Hand-computed on two_output_case: predictions a = x[:, 0] = [1, 3, 0.5] and b = x[:, 1] = [2, -1, 4],
targets 0, MSE per sample a^2 = [1, 9, 0.25] and b^2 = [4, 1, 16], weights W = [2, 0, 1]:
- W on a, none on b: (2 + 0 + 0.25) / 3 + (4 + 1 + 16) / 3 = 0.75 + 7 = 7.75;
- W on b, none on a: (1 + 9 + 0.25) / 3 + (8 + 0 + 16) / 3 = 10.25 / 3 + 8;
- W on b, and Keras 3.0-3.4 giving the first given weights to every output ("first_for_all"):
  0.75 + 8 = 8.75.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from harness import compare, features, reference, spec, strategies, vocabulary
from harness.impls import build
from harness.reference import semantics
from harness.report import repro
from test_reference_builders import close, two_output_case

W = np.array([2.0, 0.0, 1.0])
PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")
ADAPTER_ERROR = ("ValueError: You should provide one `sample_weight` array per output in `y`. The two structures "
                 "did not match: [at keras/src/trainers/data_adapters/array_data_adapter.py:43 in __init__]")


def weighted(on: str, form: str, y_form: str = "auto") -> spec.Case:
    """two_output_case with W on output `on` only, handed to Keras in `form` ("list" or "dict")."""
    case = two_output_case(None, None)
    outs = tuple(replace(o, sample_weight=W if o.name == on else None) for o in case.outputs)
    case = replace(case, outputs=outs, sample_weight_form=form, y_form=y_form)
    spec.validate(case)
    return case


# --- the Case ------------------------------------------------------------------------------------


def test_keras_gets_none_in_a_list_and_no_key_in_a_dict():
    listed = build.sample_weight_argument(weighted("a", "list"))
    assert len(listed) == 2 and listed[1] is None
    np.testing.assert_array_equal(listed[0], W)
    keyed = build.sample_weight_argument(weighted("b", "dict"))
    assert list(keyed) == ["b"]
    np.testing.assert_array_equal(keyed["b"], W)
    # the rows of evaluate's batches keep the gap
    assert build.sample_weight_argument(weighted("a", "list"), slice(0, 2))[1] is None


def test_the_reproducer_writes_what_the_adapter_hands_over():
    listed = json.loads(spec.dumps(weighted("a", "list")))
    code = repro.reproducer(listed, "x", "keras3-jax", "test_on_batch/eager", recorded=None, reference=None)
    assert "sample_weight = [np.array([2.0, 0.0, 1.0], dtype='float64'), None]  # form: list" in code
    keyed = json.loads(spec.dumps(weighted("b", "dict")))
    code = repro.reproducer(keyed, "x", "keras3-jax", "test_on_batch/eager", recorded=None, reference=None)
    assert "sample_weight = {'b': np.array([2.0, 0.0, 1.0], dtype='float64')}  # form: dict" in code


def test_a_case_without_any_weights_says_omitted_and_single_is_one_array_for_all():
    case = weighted("a", "list")
    none = replace(case, outputs=tuple(replace(o, sample_weight=None) for o in case.outputs))
    with pytest.raises(spec.CaseError, match=r"outputs\[0\]\.sample_weight.*at least one output"):
        spec.validate(none)
    with pytest.raises(spec.CaseError, match=r"outputs\[1\]\.sample_weight.*'single'"):
        spec.validate(replace(case, sample_weight_form="single"))
    assert "sample_weight_partial" in features.features(case)
    assert spec.loads(spec.dumps(case)) == case


def test_drawn_from_vocabulary_version_16_on_and_never_before():
    since = vocabulary.FORMS_SINCE["partial_sample_weights"]
    drawn = strategies.corpus(0, 120, vocabulary_version=since)
    partial = [c for c in drawn if "sample_weight_partial" in features.features(c)]
    assert partial, "no drawn case leaves an output without weights"
    for case in partial:
        given = [o.sample_weight is not None for o in case.outputs]
        assert any(given) and not all(given) and case.sample_weight_form in ("list", "dict")
    earlier = strategies.corpus(0, 120, vocabulary_version=since - 1)
    assert not any("sample_weight_partial" in features.features(c) for c in earlier)


# --- the reference -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ("tf_keras-2.21", "keras-3.15", "keras-3.15-jax", "keras-3.15-torch",
                                     "keras-2.3.1"))
@pytest.mark.parametrize("path", PATHS)
def test_an_output_given_none_in_a_list_is_unweighted_everywhere(profile, path):
    close(reference.compute(weighted("a", "list"), profile, path).total, 7.75)


@pytest.mark.parametrize("profile", ("tf_keras-2.21", "keras-2.3.1"))
@pytest.mark.parametrize("path", PATHS)
def test_tf_keras_and_keras_2_leave_an_output_without_a_key_unweighted(profile, path):
    close(reference.compute(weighted("b", "dict"), profile, path).total, 10.25 / 3 + 8)
    close(reference.compute(weighted("b", "dict", "dict"), profile, path).total, 10.25 / 3 + 8)


@pytest.mark.parametrize("path", ("evaluate", "fit"))
def test_keras_3_data_adapter_refuses_a_dict_y_with_fewer_weight_keys(path):
    bd = reference.compute(weighted("b", "dict", "dict"), "keras-3.15-jax", path)
    assert math.isnan(bd.total)
    assert compare.predicts_error(bd, ADAPTER_ERROR)
    # every key given: the data adapter lets it through (and CompileLoss's KeyError: 0 is another rule's)
    full = replace(weighted("b", "dict", "dict"),
                   outputs=tuple(replace(o, sample_weight=W) for o in two_output_case(None, None).outputs))
    assert not compare.predicts_error(reference.compute(full, "keras-3.15-jax", path), ADAPTER_ERROR)


@pytest.mark.parametrize("path", ("compute_loss", "test_on_batch", "train_on_batch"))
def test_keras_3_4_gives_the_first_given_weights_to_every_output(path):
    profile = semantics.at("keras3", "3.4.1", backend="jax").choices
    assert profile["partial_dict_sample_weight"] == "first_for_all"
    close(reference.compute(weighted("b", "dict", "dict"), profile, path).total, 8.75)
    bd = reference.compute(weighted("b", "dict", "dict"), profile, "evaluate")
    assert math.isnan(bd.total) and compare.predicts_error(bd, ADAPTER_ERROR)


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("keras3", "3.0.5", {"backend": "tensorflow"}, "first_for_all"),
    ("keras3", "3.4.1", {"backend": "jax"}, "first_for_all"),
    ("keras3", "3.5.0", {"backend": "jax"}, "structure_error"),
    ("keras3", "3.15.1", {"backend": "torch"}, "structure_error"),
    ("tf_keras", "2.21.0", {}, "unweighted"),
    ("tf_keras", "2.14.1", {"mode": "graph"}, "unweighted"),
    ("tf.keras", "2.15.0", {}, "unweighted"),
    ("keras", "2.2.4", {}, "unweighted"),
])
def test_each_release_reads_a_partial_dict_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["partial_dict_sample_weight"] == want


ON_BATCH_ERROR = ("'NoneType' object has no attribute 'shape' [at keras/src/engine/data_adapter.py:1949 in "
                  "<genexpr>]")


@pytest.mark.parametrize("path", ("test_on_batch", "train_on_batch", "test_on_batch_loop"))
def test_tf_keras_before_2_21_refuses_a_none_in_train_and_test_on_batch(path):
    bd = reference.compute(weighted("a", "list"), "tf.keras-2.15", path)
    assert math.isnan(bd.total)
    assert compare.predicts_error(bd, ON_BATCH_ERROR, "AttributeError")
    assert not compare.predicts_error(bd, ON_BATCH_ERROR, "KeyError")
    # 2.21 skips None: finite (the loop reports its last call's logs, not 7.75: rule on_batch_metrics)
    assert math.isfinite(reference.compute(weighted("a", "list"), "tf_keras-2.21", path).total)


@pytest.mark.parametrize("path", ("compute_loss", "evaluate", "fit"))
def test_there_evaluate_fit_and_compute_loss_weigh_the_output_one(path):
    close(reference.compute(weighted("a", "list"), "tf.keras-2.15", path).total, 7.75)


def test_the_train_steps_gradient_meets_no_data_adapter():
    from harness.reference import gradients

    g = gradients.compute(weighted("a", "list"), "tf.keras-2.15")
    assert not g.notes and math.isfinite(g.loss)
    # d/dk of the mean of (x0 k)^2 w / 3 over output a, kernel [[1], [0]]: 2 sum(w x0^2) / 3 = 2 * 2.25 / 3
    close(float(np.asarray(g.gradients["a/kernel"])[0, 0]), 1.5, tol=1e-6)


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("tf_keras", "2.21.0", {}, "unweighted"),
    ("tf_keras", "2.20.1", {}, "on_batch_attribute_error"),
    ("tf_keras", "2.14.1", {"mode": "graph"}, "unweighted"),
    ("tf.keras", "2.12.0", {}, "on_batch_attribute_error"),
    ("tf.keras", "2.15.0", {"mode": "graph"}, "unweighted"),
    ("keras3", "3.0.5", {"backend": "jax"}, "unweighted"),
    ("keras", "2.3.1", {}, "unweighted"),
])
def test_each_release_reads_a_none_in_a_list_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["none_in_sample_weight_list"] == want
