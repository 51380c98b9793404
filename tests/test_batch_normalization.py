"""BatchNormalization in the reference, by hand: the batch's moments on the training paths, the
moving statistics on the others, and what each lineage does with a mask (rules batch_norm_mask and
batch_norm_single_masked_feature)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import spec
from harness.reference import aggregate, forward, gradients, total
from harness.reference import rules as rules_mod
from harness.spec import Case, Input, Layer, Output, Regularizer

EPS = 0.25


def bn(name: str, inbound: str, features: int, *, gamma=None, beta=None, mean=None, var=None) -> Layer:
    w = {"gamma": np.asarray(gamma if gamma is not None else np.ones(features), dtype=np.float64),
         "beta": np.asarray(beta if beta is not None else np.zeros(features), dtype=np.float64),
         "moving_mean": np.asarray(mean if mean is not None else np.zeros(features), dtype=np.float64),
         "moving_variance": np.asarray(var if var is not None else np.ones(features), dtype=np.float64)}
    return Layer(name, "BatchNormalization", (inbound,), {"epsilon": EPS}, w)


def masked_sequence_case(x, target) -> Case:
    """x (batch, time, features) with the zero steps masked (Masking), then a BatchNormalization,
    the output; mse against `target`."""
    x = np.asarray(x, dtype=np.float64)
    layers = (Layer("m", "Masking", ("x",), {"mask_value": 0.0}), bn("n", "m", x.shape[-1]))
    return Case("float64", (Input("x", "float", x),), layers,
                (Output("n", np.asarray(target, dtype=np.float64), "mean_squared_error"),))


def with_rule(profile: str, rule: str, alternative: str) -> dict[str, str]:
    return {**rules_mod.resolve(profile), rule: alternative}


def test_training_mode_normalises_with_the_batch_moments_per_feature() -> None:
    # feature 0: [1, 3] -> mean 2, biased variance 1; feature 1: [0, 4] -> mean 2, variance 4
    x = np.array([[1.0, 0.0], [3.0, 4.0]])
    layer = bn("n", "x", 2, gamma=[1.0, 2.0], beta=[0.0, 1.0], mean=[5.0, 5.0], var=[9.0, 9.0])
    case = Case("float64", (Input("x", "float", x),), (layer,), ())
    out = forward.run(case, np.arange(2), training=True).tensors["n"].value
    np.testing.assert_allclose(out[:, 0], [-1 / math.sqrt(1 + EPS), 1 / math.sqrt(1 + EPS)], rtol=1e-12)
    np.testing.assert_allclose(out[:, 1], [2 * -2 / math.sqrt(4 + EPS) + 1, 2 * 2 / math.sqrt(4 + EPS) + 1], rtol=1e-12)


def test_inference_mode_uses_the_moving_statistics_of_the_case() -> None:
    x = np.array([[1.0, 0.0], [3.0, 4.0]])
    layer = bn("n", "x", 2, gamma=[1.0, 2.0], beta=[0.0, 1.0], mean=[1.0, -1.0], var=[3.75, 0.75])
    case = Case("float64", (Input("x", "float", x),), (layer,), ())
    out = forward.run(case, np.arange(2), training=False).tensors["n"].value
    # (x - mean) / sqrt(var + 0.25): feature 0 divides by 2, feature 1 by 1
    np.testing.assert_allclose(out, [[0.0, 2 * 1.0 + 1], [1.0, 2 * 5.0 + 1]], rtol=1e-12)


# Two sequences of 3 steps of 2 features; the all-zero steps are masked. Feature 0 on the unmasked
# steps: 2, 4, 6 (mean 4, biased variance 8/3); on all six steps: mean 2, variance 56/6 - 4.
X = [[[2.0, 1.0], [4.0, 1.0], [0.0, 0.0]],
     [[6.0, 4.0], [0.0, 0.0], [0.0, 0.0]]]


@pytest.mark.parametrize("alternative, mean, var", [
    ("masked_moments", 4.0, 8 / 3),
    ("masked_moments_epsilon", 12 / (3 + 1e-7), None),  # variance checked below
    ("ignored", 2.0, (4 + 16 + 36) / 6 - 4.0),
])
def test_which_steps_the_moments_see_under_a_mask(alternative: str, mean: float, var: float | None) -> None:
    case = masked_sequence_case(X, np.zeros((2, 3, 2)))
    rules = with_rule("tf_keras-2.21", "batch_norm_mask", alternative)
    out = forward.run(case, np.arange(2), rules, training=True).tensors["n"]
    if var is None:  # Keras 3: both sums divided by count + 1e-7
        var = sum((v - mean) ** 2 for v in (2.0, 4.0, 6.0)) / (3 + 1e-7)
    np.testing.assert_allclose(out.value[0, 0, 0], (2.0 - mean) / math.sqrt(var + EPS), rtol=1e-13)
    # masked steps are normalised too (their values are what they are), and the mask passes on
    np.testing.assert_allclose(out.value[1, 2, 0], (0.0 - mean) / math.sqrt(var + EPS), rtol=1e-13)
    np.testing.assert_array_equal(out.mask, [[True, True, False], [True, False, False]])


@pytest.mark.parametrize("alternative", ["masked_moments", "masked_moments_epsilon"])
def test_a_fully_masked_batch_normalises_with_mean_zero_and_variance_zero(alternative: str) -> None:
    case = masked_sequence_case(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    layers = (case.layers[0], bn("n", "m", 2, gamma=[2.0, 2.0], beta=[0.5, 0.5]))
    case = Case("float64", case.inputs, layers, case.outputs)
    rules = with_rule("tf_keras-2.21", "batch_norm_mask", alternative)
    out = forward.run(case, np.arange(1), rules, training=True).tensors["n"].value
    np.testing.assert_array_equal(out, np.full((1, 2, 2), 0.5))  # (0 - 0) / sqrt(0 + eps) * 2 + 0.5


def bn_then_dense_case() -> Case:
    """x -> BatchNormalization (moving statistics 0 and 1) -> Dense(1) with an activity regularizer, mse."""
    x = np.array([[1.0], [3.0], [8.0]])
    dense = Layer("d", "Dense", ("n",), {"units": 1, "activation": "linear", "use_bias": False},
                  {"kernel": np.array([[1.0]])}, {"activity": Regularizer("l2", l2=0.5)})
    return Case("float64", (Input("x", "float", x),), (bn("n", "x", 1), dense),
                (Output("d", np.zeros((3, 1)), "mean_squared_error"),))


def test_the_training_paths_see_the_batch_statistics_and_the_others_the_moving_ones() -> None:
    case = bn_then_dense_case()
    x = case.inputs[0].data[:, 0]
    trained = (x - x.mean()) / np.sqrt(x.var() + EPS)
    inferred = x / np.sqrt(1 + EPS)
    for path in ("compute_loss", "train_on_batch"):
        got = total.compute(case, "tf_keras-2.21", path).outputs[0].unweighted
        np.testing.assert_allclose(got, np.mean(trained ** 2), rtol=1e-12, err_msg=path)
    tested = total.compute(case, "tf_keras-2.21", "test_on_batch").outputs[0].unweighted
    np.testing.assert_allclose(tested, np.mean(inferred ** 2), rtol=1e-12)
    np.testing.assert_allclose(aggregate.predictions(case, "tf_keras-2.21")["d"][:, 0], inferred, rtol=1e-12)


def test_the_regularization_term_of_every_whole_batch_path_is_the_training_forward_pass() -> None:
    # the adapters observe sum(model.losses) after model(x, training=True) (harness/impls/paths.py)
    case = bn_then_dense_case()
    x = case.inputs[0].data[:, 0]
    trained = (x - x.mean()) / np.sqrt(x.var() + EPS)
    want = 0.5 * np.sum(trained ** 2) / 3  # l2 activity penalty, divided by the batch (batch_mean)
    for path in ("test_on_batch", "train_on_batch", "compute_loss"):
        got = total.compute(case, "tf_keras-2.21", path).terms["regularization"]
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=path)


def test_the_moving_statistics_have_no_gradient_to_compare() -> None:
    keys = gradients.weight_keys(bn_then_dense_case())
    assert keys == ["n/beta", "n/gamma", "d/kernel"]


def test_the_gradient_of_the_training_loss_goes_through_the_batch_moments() -> None:
    # BatchNormalization of one feature then mse against 0: the normalised values' mean square is
    # var / (var + eps) whatever gamma's sign: d/dgamma = 2 gamma var / (var + eps) at gamma = 1.
    g = gradients.compute(bn_then_dense_case(), "tf_keras-2.21")
    x = bn_then_dense_case().inputs[0].data[:, 0]
    v = x.var()
    # loss = gamma^2 v/(v+eps) + 0.5 gamma^2 v/(v+eps) (the activity term on the same values)
    np.testing.assert_allclose(g.gradients["n/gamma"], [2 * 1.5 * v / (v + EPS)], rtol=1e-7)


def one_masked_feature_case() -> Case:
    case = masked_sequence_case([[[2.0], [0.0]], [[3.0], [5.0]]], np.zeros((2, 2, 1)))
    return Case("float32", case.inputs, case.layers, case.outputs)  # keras 2.3.1 builds no float64 one


@pytest.mark.parametrize("profile, raises", [
    ("keras-3.15-jax", True), ("keras-3.15-torch", True), ("keras-3.15-numpy", True),
    ("keras-3.15", False), ("tf_keras-2.21", False), ("keras-2.3.1", False),
])
def test_one_masked_feature_raises_in_training_mode_on_keras3_jax_torch_numpy(profile: str, raises: bool) -> None:
    case = one_masked_feature_case()
    train = total.compute(case, profile, "train_on_batch")
    assert bool(train.notes) == raises and math.isnan(train.total) == raises
    if raises:
        assert "IndexError" in train.notes[0] and train.notes[0].site.types == ("IndexError",)
    assert not total.compute(case, profile, "test_on_batch").notes  # inference: the moving statistics


def test_the_case_refuses_a_negative_moving_variance() -> None:
    case = bn_then_dense_case()
    bad = bn("n", "x", 1, var=[-1.0])
    case = Case(case.dtype, case.inputs, (bad, case.layers[1]), case.outputs)
    with pytest.raises(spec.CaseError, match="moving_variance"):
        spec.validate(case)


@pytest.mark.parametrize("dtype, profile, raises", [
    ("float64", "keras-2.3.1", True), ("float32", "keras-2.3.1", False),
    ("float64", "keras-2.2.4", False), ("float64", "tf_keras-2.21", False),
])
def test_keras_2_3_1_cannot_build_a_float64_batch_normalization(dtype: str, profile: str, raises: bool) -> None:
    case = bn_then_dense_case()
    case = Case(dtype, case.inputs, case.layers, case.outputs)
    for path in ("test_on_batch", "train_on_batch"):  # the layer is called as the model is built: every path
        notes = total.compute(case, profile, path).notes
        assert bool(notes) == raises and (not raises or notes[0].site.types == ("TypeError",))
