"""class_weight: the sample weights fit and train_on_batch make of it, per lineage (reference only).

The case: x (3, 2) -> Dense "out" (2 units, identity kernel, no bias), so the prediction is x;
MSE against the target t averages the two columns: L = [(1-1)^2 + (2-0)^2, (3-0)^2 + (-1-1)^2,
(0.5-1)^2 + (4-0)^2] / 2 = [2, 6.5, 8.125]. One-hot targets give the classes [0, 1, 0].
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness import reference, spec
from harness.reference.rules import PROFILES
from harness.spec import Case, CaseError, Input, Layer, Output
from test_reference_builders import close

TFK = PROFILES["tf_keras-2.21"]
L = np.array([2.0, 6.5, 8.125])
ONE_HOT = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])


X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])


def case(class_weight, target=ONE_HOT, sample_weight=None) -> Case:
    t = np.asarray(target, dtype=np.float64)
    kernel = np.eye(2)[:, :t.shape[1]]  # one unit: the prediction is x's first column
    layer = Layer("out", "Dense", ("x",), {"units": t.shape[1], "activation": "linear", "use_bias": False},
                  {"kernel": kernel})
    x = X
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    c = Case("float64", (Input("x", "float", x),), (layer,),
             (Output("out", t, "mean_squared_error", {}, None, sw),), "list", "omitted",
             "omitted" if sw is None else "single", 2, class_weight=class_weight)
    spec.validate(c)
    return c


def total(c: Case, path: str = "train_on_batch", **rules) -> float:
    return reference.compute(c, {**TFK, **rules}, path).total


def test_the_base_case_is_what_the_docstring_says():
    close(total(case(None)), float(np.mean(L)))


@pytest.mark.parametrize("lookup", ["get_or_one", "contiguous_gather", "exact_keys"])
def test_every_lineage_weighs_each_sample_by_its_class_on_train_on_batch_and_fit(lookup):
    c = case({0: 2.0, 1: 0.5})
    want = (2.0 * 2 + 0.5 * 6.5 + 2.0 * 8.125) / 3
    close(total(c, class_weight_lookup=lookup), want)
    # fit over batches of 2 and 1, averaged by batch size: the same weighted sum here
    close(total(c, "fit", class_weight_lookup=lookup), ((2.0 * 2 + 0.5 * 6.5) / 2 * 2 + 2.0 * 8.125) / 3)


@pytest.mark.parametrize("path", ["test_on_batch", "evaluate", "compute_loss", "test_on_batch_loop"])
def test_the_calls_that_take_no_class_weight_are_not_weighted(path):
    close(total(case({0: 2.0, 1: 0.5}), path), total(case(None), path))


def test_a_class_missing_from_the_dict():
    c = case({0: 2.0})  # class 1 (sample 1) has no weight
    close(total(c, class_weight_lookup="get_or_one"), (2.0 * 2 + 1.0 * 6.5 + 2.0 * 8.125) / 3)  # Keras 3: 1.0
    gathered = reference.compute(c, {**TFK, "class_weight_lookup": "contiguous_gather"}, "train_on_batch")
    assert math.isnan(gathered.total) and "InvalidArgumentError" in gathered.notes[0].site.types
    exact = reference.compute(c, {**TFK, "class_weight_lookup": "exact_keys"}, "train_on_batch")
    assert math.isnan(exact.total) and "must contain all classes" in exact.notes[0]


def test_ids_that_are_not_zero_to_n_minus_one():
    c = case({0: 2.0, 1: 0.5, 3: 7.0})  # every class of the data has a weight; id 2 is skipped
    want = (2.0 * 2 + 0.5 * 6.5 + 2.0 * 8.125) / 3
    close(total(c, class_weight_lookup="get_or_one"), want)
    close(total(c, class_weight_lookup="exact_keys"), want)
    tf_keras = reference.compute(c, {**TFK, "class_weight_lookup": "contiguous_gather"}, "train_on_batch")
    assert math.isnan(tf_keras.total) and "keys from 0 to one less" in tf_keras.notes[0]


def test_soft_labels_of_one_column_are_rounded_or_refused():
    # A (batch, 1) target: the class is the value, rounded (Keras 3, tf-keras) or looked up as is.
    c = case({0: 2.0, 1: 3.0}, target=[[0.3], [0.7], [1.0]])
    per = np.array([0.7**2, 2.3**2, 0.5**2])  # x's first column against t
    close(total(c, class_weight_lookup="get_or_one"), float(np.dot([2.0, 3.0, 3.0], per) / 3))
    close(total(c, class_weight_lookup="contiguous_gather"), float(np.dot([2.0, 3.0, 3.0], per) / 3))
    assert math.isnan(total(c, class_weight_lookup="exact_keys"))  # 0.3 and 0.7 are no keys


@pytest.mark.parametrize("alt, want", [
    ("multiplied", (4.0 * 2.0 * 2 + 1.0 * 0.5 * 6.5 + 0.5 * 2.0 * 8.125) / 3),
    ("ignored", (4.0 * 2 + 1.0 * 6.5 + 0.5 * 8.125) / 3),  # keras 2.2.4
    ("error", math.nan),  # Keras 3
    ("reshape_error", math.nan),  # tf-keras fit
])
def test_class_weight_beside_a_sample_weight(alt, want):
    c = case({0: 2.0, 1: 0.5}, sample_weight=[4.0, 1.0, 0.5])
    got = total(c, class_weight_with_sample_weight=alt)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        close(got, want)


def test_the_table_gives_each_lineage_its_own_reading():
    c = case({0: 2.0, 1: 0.5}, sample_weight=[4.0, 1.0, 0.5])
    multiplied = (4.0 * 2.0 * 2 + 1.0 * 0.5 * 6.5 + 0.5 * 2.0 * 8.125) / 3
    close(reference.compute(c, "tf_keras-2.21", "train_on_batch").total, multiplied)
    assert reference.compute(c, "tf_keras 2.21.0 path=fit", "fit").notes  # the map function's reshape
    assert reference.compute(c, "keras-3.15", "train_on_batch").notes  # refused beside a sample weight
    close(reference.compute(c, "keras-2.2.4", "train_on_batch").total, (4.0 * 2 + 1.0 * 6.5 + 0.5 * 8.125) / 3)
    close(reference.compute(c, "keras-2.3.1", "train_on_batch").total, multiplied)


def test_the_gradient_is_that_of_the_class_weighted_loss():
    from harness.reference import gradients

    # d/dW of sum_i w_i mean_j (x_i W - t_i)_j^2 / 3 at W = I: (1/3) sum_i w_i x_i^T (x_i - t_i)
    w = np.array([2.0, 0.5, 2.0])
    want = sum(wi * np.outer(xi, xi - ti) for wi, xi, ti in zip(w, X, ONE_HOT)) / 3
    got = gradients.compute(case({0: 2.0, 1: 0.5}), "tf_keras-2.21")
    # the reference differentiates by central differences (harness/reference/gradients.py): ~1e-11 here
    np.testing.assert_allclose(got.gradients["out/kernel"], want, rtol=1e-9)
    close(got.loss, total(case({0: 2.0, 1: 0.5})))


# --- the case file -------------------------------------------------------------------------


def _raw(**changes):
    raw = json.loads(spec.dumps(case({0: 2.0, 1: 0.5})))
    raw.update(changes)
    return raw


def test_class_weight_round_trips_with_string_ids_and_is_omitted_when_absent():
    c = case({0: 2.0, 1: 0.5})
    raw = json.loads(spec.dumps(c))
    assert raw["class_weight"] == {"0": 2.0, "1": 0.5}
    assert spec.loads(spec.dumps(c)) == c
    assert "class_weight" not in json.loads(spec.dumps(case(None)))


@pytest.mark.parametrize("value, field", [
    ({"a": 1.0}, "$.class_weight.a"),
    ({"-1": 1.0}, "$.class_weight.-1"),
    ({"01": 1.0}, "$.class_weight.01"),
    ({"0": -1.0}, "$.class_weight.0"),
    ({"0": "heavy"}, "$.class_weight.0"),
    ({}, "$.class_weight"),
    ([1.0, 2.0], "$.class_weight"),
])
def test_a_bad_class_weight_is_refused_naming_the_field(value, field):
    with pytest.raises(CaseError) as err:
        spec.from_json(_raw(class_weight=value), "bad.json")
    assert err.value.args[0].startswith("bad.json") and field in str(err.value)


def test_class_weight_needs_one_output():
    raw = json.loads(spec.dumps(case({0: 2.0})))
    second = dict(raw["outputs"][0], layer="out2")
    raw["layers"].append(dict(raw["layers"][0], name="out2"))
    raw["outputs"].append(second)
    with pytest.raises(CaseError, match="one-output"):
        spec.from_json(raw, "two.json")
