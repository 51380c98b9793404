"""The reference gradient (harness.reference.gradients): central differences of the reference,
checked against gradients worked out by hand, with kinks marked as subgradient intervals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness import spec, strategies
from harness.reference import gradients
from harness.reference.rules import PROFILES
from harness.spec import Case, Input, Layer, Output, Regularizer
from test_reference_builders import two_output_case

TFK = PROFILES["tf_keras-2.21"]
# Central differences on float64 err by ~1e-10 of the loss scale (module docstring); 1e-8 is
# far above that and far below any difference of a semantic rule (a factor on a term).
TOL = 1e-8


def dense_case(kernel, bias, x, y, *, activation="linear", reg: Regularizer | None = None,
               reduction: str = "sum_over_batch_size", dtype: str = "float64") -> Case:
    """x (batch, 2) -> Dense(1, activation) "out" with MSE against y."""
    layer = Layer("out", "Dense", ("x",), {"units": 1, "activation": activation, "use_bias": True},
                  {"kernel": np.array(kernel, dtype=float), "bias": np.array(bias, dtype=float)},
                  {} if reg is None else {"kernel": reg})
    out = Output("out", np.array(y, dtype=float), "mean_squared_error", {"reduction": reduction}, None)
    case = Case(dtype, (Input("x", "float", np.array(x, dtype=float)),), (layer,), (out,), "single")
    spec.validate(case)
    return case


X = [[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]]
Y = [[1.0], [0.0], [2.0]]
W, B = [[0.5], [-0.25]], [0.125]


def test_mse_gradient_is_2_residual_x_over_n():
    case = dense_case(W, B, X, Y)
    x, y = np.array(X), np.array(Y)
    residual = x @ np.array(W) + np.array(B) - y
    g = gradients.compute(case, TFK)
    np.testing.assert_allclose(g.gradients["out/kernel"], 2 * x.T @ residual / 3, atol=TOL)
    np.testing.assert_allclose(g.gradients["out/bias"], 2 * residual.sum(0) / 3, atol=TOL)
    assert g.loss == pytest.approx(float(np.mean(residual ** 2)))
    assert g.kinks("out/kernel") == 0 and g.kinks("out/bias") == 0


def test_sum_reduction_is_n_times_the_mean_gradient():
    mean = gradients.compute(dense_case(W, B, X, Y), TFK).gradients["out/kernel"]
    total = gradients.compute(dense_case(W, B, X, Y, reduction="sum"), TFK).gradients["out/kernel"]
    np.testing.assert_allclose(total, 3 * mean, atol=TOL)


def test_l2_regularizer_adds_2_l2_w_and_is_its_own_term():
    plain = gradients.compute(dense_case(W, B, X, Y), TFK)
    reg = gradients.compute(dense_case(W, B, X, Y, reg=Regularizer("l2", l2=0.5)), TFK)
    np.testing.assert_allclose(reg.gradients["out/kernel"] - plain.gradients["out/kernel"],
                               2 * 0.5 * np.array(W), atol=TOL)
    np.testing.assert_allclose(reg.term_gradients["regularization"]["out/kernel"], 2 * 0.5 * np.array(W), atol=TOL)
    np.testing.assert_allclose(reg.gradients["out/bias"], plain.gradients["out/bias"], atol=TOL)


def test_l1_at_a_zero_weight_is_a_kink_with_the_subgradient_interval():
    case = dense_case([[0.0], [-0.25]], B, X, Y, reg=Regularizer("l1", l1=0.5))
    g = gradients.compute(case, TFK)
    smooth = gradients.compute(dense_case([[0.0], [-0.25]], B, X, Y), TFK).gradients["out/kernel"]
    assert g.kinks("out/kernel") == 1
    assert g.low["out/kernel"][0, 0] == pytest.approx(smooth[0, 0] - 0.5, abs=1e-6)
    assert g.high["out/kernel"][0, 0] == pytest.approx(smooth[0, 0] + 0.5, abs=1e-6)
    # The other entry is smooth: sign(-0.25) * l1 added.
    assert g.low["out/kernel"][1, 0] == g.high["out/kernel"][1, 0]
    assert g.gradients["out/kernel"][1, 0] == pytest.approx(smooth[1, 0] - 0.5, abs=1e-6)


def test_relu_at_zero_preactivation_is_a_kink():
    # Sample 0 has pre-activation 1*0.5 + 2*(-0.25) + 0 = 0 exactly.
    case = dense_case(W, [0.0], X, Y, activation="relu")
    g = gradients.compute(case, TFK)
    assert g.kinks("out/bias") == 1
    assert g.low["out/bias"][0] < g.high["out/bias"][0]


def test_terms_add_up_to_the_total_gradient():
    case = two_output_case(2.0, 0.5)
    g = gradients.compute(case, TFK)
    for key in g.gradients:
        summed = sum(t[key] for t in g.term_gradients.values())
        np.testing.assert_allclose(summed, g.gradients[key], atol=TOL)
    # Output "a" depends only on layer "a": its term has no gradient on "b/kernel".
    np.testing.assert_array_equal(g.term_gradients["output/a"]["b/kernel"], 0.0)


def test_loss_weight_scales_the_gradient_of_its_output():
    one = gradients.compute(two_output_case(1.0, 1.0), TFK).gradients["a/kernel"]
    three = gradients.compute(two_output_case(3.0, 1.0), TFK).gradients["a/kernel"]
    np.testing.assert_allclose(three, 3 * one, atol=TOL)


def test_float32_case_is_differentiated_without_rounding_the_step_away():
    case = dense_case(W, B, X, Y, dtype="float32")
    x, y = np.array(X), np.array(Y)
    residual = x @ np.array(W) + np.array(B) - y
    np.testing.assert_allclose(gradients.compute(case, TFK).gradients["out/kernel"], 2 * x.T @ residual / 3, atol=TOL)


def test_keys_are_every_trainable_weight_of_the_case():
    # BatchNormalization's moving statistics are weights of the case that no optimizer moves
    cases = strategies.corpus(3, 5) + [c for c in strategies.corpus(3, 60)
                                       if any(layer.type == "BatchNormalization" for layer in c.layers)][:2]
    assert any(layer.type == "BatchNormalization" for c in cases for layer in c.layers)
    for case in cases:
        g = gradients.compute(case, TFK)
        assert sorted(g.gradients) == sorted(f"{layer.name}/{w}" for layer in case.layers for w in layer.weights
                                             if w not in ("moving_mean", "moving_variance"))
        for key, value in g.gradients.items():
            layer, weight = key.split("/")
            assert value.shape == np.asarray(case.layer(layer).weights[weight]).shape


def test_with_weight_changes_one_tensor_only():
    case = dense_case(W, B, X, Y)
    moved = gradients.with_weight(case, "out/bias", np.array([1.0]))
    assert moved.layer("out").weights["bias"][0] == 1.0
    assert case.layer("out").weights["bias"][0] == 0.125
    assert dataclasses.replace(moved, layers=case.layers) == case


def test_a_nan_term_leaves_the_other_outputs_gradient_and_undetermines_its_own_weights():
    # Output "a" gets a NaN target: its loss is NaN, so the total is; "b" does not depend on "a".
    case = two_output_case(None, None)
    a, b = case.outputs
    case = dataclasses.replace(case, outputs=(dataclasses.replace(a, target=np.full((3, 1), np.nan)), b))
    g = gradients.compute(case, TFK)
    clean = gradients.compute(two_output_case(None, None), TFK)
    assert np.isnan(g.loss)
    np.testing.assert_allclose(g.gradients["b/kernel"], clean.gradients["b/kernel"], atol=TOL)
    assert g.undetermined("b/kernel") == 0
    assert g.undetermined("a/kernel") == 2 and g.kinks("a/kernel") == 0



def test_a_nan_total_keeps_the_magnitude_of_its_finite_terms_for_the_gradient_floor():
    # cases/fully_masked_temporal_output.json under tf_keras: both outputs are 0/0 = NaN, the
    # regularization term is finite, and the floor under which gradients are not compared scales
    # with it (compare_gradients; case 0dbcb4dc138879d5, a saturated sigmoid whose gradient is 0.0
    # in central differences and -2.4e-15 in tf_keras, had a floor of 0 under its NaN total).
    from pathlib import Path

    from harness.reference import total

    case = spec.load(Path(__file__).resolve().parents[1] / "cases" / "fully_masked_temporal_output.json")
    b = total.compute(case, "tf_keras-2.21", "train_on_batch")
    g = gradients.compute(case, "tf_keras-2.21")
    assert np.isnan(g.loss) and np.isnan(g.magnitude) and all(np.isnan(o.weighted) for o in b.outputs)
    regularization = abs(sum(p.value for p in b.regularization))
    assert regularization > 0 and g.finite_magnitude == pytest.approx(regularization)
    finite_case = gradients.compute(spec.load(Path(__file__).resolve().parents[1] / "cases" / "motivating_two_outputs.json"),
                                    "tf_keras-2.21")
    assert finite_case.finite_magnitude == finite_case.magnitude
