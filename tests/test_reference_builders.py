"""Small hand-built Cases for the reference's tests (imported by the other test_reference_* files).

Every case is built so that its numbers can be worked out by hand: identity kernels, no
biases, targets of zero, float32-exact values.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from harness import spec
from harness.spec import Case, Input, Layer, Output, Regularizer

TOL = 1e-12  # float64 reference against float64 hand arithmetic on float32-exact inputs


def close(got: float, want: float, tol: float = TOL, what: str = "") -> None:
    """Assert got ~= want (relative to max(1, |want|)); NaN equals NaN. Message shows both."""
    if math.isnan(want):
        assert math.isnan(got), f"{what}: got {got!r}, want NaN"
        return
    assert abs(got - want) <= tol * max(1.0, abs(want)), f"{what}: got {got!r}, want {want!r} (diff {got - want:.3e})"


def seq_case(
    x: Sequence[Any],
    *,
    target: Sequence[Any] | None = None,
    sample_weight: Sequence[Any] | None = None,
    loss: str = "mean_squared_error",
    reduction: str = "sum_over_batch_size",
    masking: bool = True,
    kernel_reg: Regularizer | None = None,
    activity_reg: Regularizer | None = None,
    add_loss_factor: float | None = None,
    evaluate_batch_size: int = 1,
    loss_weight: float | None = None,
    dtype: str = "float64",
) -> Case:
    """x (batch, time, 1) -> [Masking(0)] -> Dense(1, linear, kernel [[1]], no bias) -> output "out".

    The prediction equals x (masked steps are 0 already); with target 0 the MSE per step is x^2.
    """
    xa = np.asarray(x, dtype=np.float64)
    layers = []
    prev = "x"
    if masking:
        layers.append(Layer("mask", "Masking", ("x",), {"mask_value": 0.0}))
        prev = "mask"
    if add_loss_factor is not None:
        layers.append(Layer("extra", "AddLossL2", (prev,), {"factor": add_loss_factor}))
        prev = "extra"
    regs = {}
    if kernel_reg is not None:
        regs["kernel"] = kernel_reg
    if activity_reg is not None:
        regs["activity"] = activity_reg
    layers.append(Layer("out", "Dense", (prev,), {"units": 1, "activation": "linear", "use_bias": False},
                        {"kernel": np.array([[1.0]])}, regs))
    tgt = np.zeros_like(xa) if target is None else np.asarray(target, dtype=np.float64)
    out = Output("out", tgt, loss, {"reduction": reduction}, loss_weight,
                 None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64))
    case = Case(
        dtype=dtype, inputs=(Input("x", "float", xa),), layers=tuple(layers), outputs=(out,),
        loss_form="list", loss_weights_form="omitted" if loss_weight is None else "list",
        sample_weight_form="omitted" if sample_weight is None else "list",
        evaluate_batch_size=evaluate_batch_size,
    )
    spec.validate(case)
    return case


def two_output_case(w_a: float | None, w_b: float | None, *, evaluate_batch_size: int = 1) -> Case:
    """x (batch, 2) -> Dense "a" (1 unit, kernel [[1],[0]]) and Dense "b" (1 unit, kernel [[0],[1]]).

    Predictions a = x[:, 0], b = x[:, 1]; targets 0; MSE per sample a^2 and b^2.
    """
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 4.0]])
    dense = {"units": 1, "activation": "linear", "use_bias": False}
    layers = (
        Layer("a", "Dense", ("x",), dense, {"kernel": np.array([[1.0], [0.0]])}),
        Layer("b", "Dense", ("x",), dense, {"kernel": np.array([[0.0], [1.0]])}),
    )
    outs = (
        Output("a", np.zeros((3, 1)), "mean_squared_error", {}, w_a),
        Output("b", np.zeros((3, 1)), "mean_squared_error", {}, w_b),
    )
    case = Case("float64", (Input("x", "float", x),), layers, outs, "list",
                "omitted" if w_a is None else "list", "omitted", evaluate_batch_size)
    spec.validate(case)
    return case


def test_seq_case_prediction_is_the_masked_input():
    from harness import reference

    case = seq_case([[[1.0], [2.0]], [[3.0], [0.0]]])
    np.testing.assert_array_equal(reference.predictions(case)["out"], [[[1.0], [2.0]], [[3.0], [0.0]]])
    np.testing.assert_array_equal(reference.output_masks(case)["out"], [[True, True], [True, False]])


def test_two_output_case_predictions_are_the_columns():
    from harness import reference

    preds = reference.predictions(two_output_case(None, None))
    np.testing.assert_array_equal(preds["a"][:, 0], [1.0, 3.0, 0.5])
    np.testing.assert_array_equal(preds["b"][:, 0], [2.0, -1.0, 4.0])
