"""Gradients and the SGD update (results.GradientResult), from every implementation installed here.

Each implementation runs in its own worker process (`python -m harness.worker --impl NAME`, as
tests/test_adapters.py does), fed two hand-written one-layer cases: a Dense layer (3 -> 2,
linear, with bias) under mean squared error, without and with an l2 kernel regularizer. Their
gradient is computed here by hand with NumPy:

    P = X W + b,   L = sum((P - Y)^2) / (N U)  [+ l2 * sum(W^2)]
    dL/dP = 2 (P - Y) / (N U),   dL/dW = X^T dL/dP  [+ 2 l2 W],   dL/db = sum over rows of dL/dP

(MeanSquaredError: mean over the U units, then "sum_over_batch_size": mean over the N rows).
Checked: the keys are the Case's weight names, the gradient and the differentiated loss equal
the analytic ones, the regularizer adds exactly 2*l2*W to the kernel's gradient, and one SGD
step at paths.LEARNING_RATE moves each weight by -LEARNING_RATE * gradient. Keras 3 on numpy
cannot train: unsupported, with a reason.

Run in each environment (/work/venvs/core, /work/venvs/tf215, /work/venvs/keras231,
/work/venvs/keras224): the implementations importable in that Python are the ones tested.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import spec
from harness.impls import IMPLEMENTATIONS, unmet_requirements
from harness.impls.paths import LEARNING_RATE
from harness.results import GradientResult, ImplResult

ROOT = Path(__file__).resolve().parents[1]
WORKER_TIMEOUT = 600  # seconds for one worker to import its framework and run two cases

# The Keras implementations installed here. Not the test-only ones (family "test", faulty.py),
# nor the distributed ones (family "distributed"), which report their gradients their own way.
TESTED_FAMILIES = ("keras3", "keras2-eager", "keras2-graph", "keras2.3.1", "keras2.2.4")
HERE = [name for name, impl in IMPLEMENTATIONS.items()
        if impl.family in TESTED_FAMILIES and not unmet_requirements(impl)]
NO_TRAINING = {"keras3-numpy"}  # keras/src/backend/numpy/trainer.py: NumpyTrainer has no train_step

# The data: dyadic numbers with few significant bits, so that every product and sum below is
# exact in float32, and N*U = 8 is a power of two (the mean's division is exact too).
X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-0.75, 2.0, 1.0], [1.0, 0.5, -1.5]])
W = np.array([[0.5, -0.25], [0.75, 1.0], [-1.0, 0.5]])
B = np.array([0.125, -0.5])
Y = np.array([[1.5, -0.5], [0.25, 1.0], [-1.0, 0.75], [0.5, -1.25]])
L2 = 0.125

# Float32 tolerance of a gradient entry. Every intermediate above is exactly representable in
# float32, so an implementation that differentiates correctly is exact; 1e-6 (two float32 ulps
# at magnitude 4, ulp 4.8e-7) absorbs an implementation rounding a reciprocal or reordering
# sums, and is far below any semantic change (a missing 1/U or 1/N halves or quarters a value
# of order 0.1-1; a missing regularizer term changes the kernel's by 2*l2*|W| >= 0.06).
GRAD_ATOL = 1e-6


def _case(l2: float) -> spec.Case:
    regularizers = {"kernel": {"kind": "l2", "l1": 0.0, "l2": l2}} if l2 else {}
    return spec.from_json({
        "schema": 1,
        "dtype": "float32",
        "evaluate_batch_size": 4,
        "inputs": [{"name": "x", "kind": "float", "data": X.tolist()}],
        "layers": [{
            "name": "out", "type": "Dense", "inbound": ["x"],
            "config": {"units": 2, "activation": "linear", "use_bias": True},
            "regularizers": regularizers,
            "weights": {"kernel": W.tolist(), "bias": B.tolist()},
        }],
        "outputs": [{"layer": "out", "loss": "mean_squared_error",
                     "loss_options": {"reduction": "sum_over_batch_size"}, "target": Y.tolist()}],
        "loss_form": "single",
        "loss_weights_form": "omitted",
        "sample_weight_form": "omitted",
        "note": f"tests/test_adapter_gradients.py: one Dense layer, mse, l2={l2}",
    })


def _analytic(l2: float) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its gradient by hand (module docstring), float64."""
    n, u = Y.shape
    residual = X @ W + B - Y
    loss = float(np.sum(residual**2) / (n * u) + l2 * np.sum(W**2))
    d_pred = 2.0 * residual / (n * u)
    return loss, {"out/kernel": X.T @ d_pred + 2.0 * l2 * W, "out/bias": d_pred.sum(axis=0)}


CASES = {"plain": 0.0, "l2": L2}


def _run_worker(impl: str, lines: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "harness.worker", "--impl", impl],
                          input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, cwd=ROOT, timeout=WORKER_TIMEOUT)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return {"returncode": proc.returncode, "records": records, "stderr": proc.stderr[-3000:]}


@pytest.fixture(scope="module")
def gradients() -> dict[str, dict[str, GradientResult]]:
    """impl -> case label ("plain", "l2") -> its GradientResult."""
    if not HERE:
        pytest.skip("no implementation is installed in this Python")
    cases = {label: _case(l2) for label, l2 in CASES.items()}
    lines = [spec.dumps(c) for c in cases.values()]
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores
        runs = {impl: pool.submit(_run_worker, impl, lines) for impl in HERE}
        runs = {impl: f.result() for impl, f in runs.items()}
    out: dict[str, dict[str, GradientResult]] = {}
    for impl, run in runs.items():
        assert run["returncode"] == 0, f"{impl}: {run['stderr']}"
        results = [ImplResult.from_json(r) for r in run["records"] if r["kind"] == "result"]
        by_id = {r.case_id: r for r in results}
        out[impl] = {}
        for label, case in cases.items():
            result = by_id.get(case.id)
            assert result is not None, f"{impl}: no result for case {label}: {run['records']}\n{run['stderr']}"
            assert result.gradients is not None, f"{impl}: case {label} has no gradients field"
            out[impl][label] = result.gradients
    return out


def _trained(gradients: dict[str, dict[str, GradientResult]]) -> dict[str, dict[str, GradientResult]]:
    """The implementations that can train, each of whose gradient computation must have succeeded."""
    trained = {impl: g for impl, g in gradients.items() if impl not in NO_TRAINING}
    if not trained:
        pytest.skip("no implementation that trains is installed in this Python")
    for impl, by_case in trained.items():
        for label, g in by_case.items():
            assert g.status == "ok", f"{impl} {label}: {g.status} {g.error_type}: {g.error_message}"
            assert g.how, f"{impl} {label}: no mechanism named"
    return trained


def _assert_close(actual: Any, expected: np.ndarray, atol: float, what: str) -> None:
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol,
                               err_msg=f"{what}: got\n{actual}\nexpected (by hand)\n{expected}")


# --------------------------------------------------------------------------------------
# No framework
# --------------------------------------------------------------------------------------


def test_learning_rate_is_a_power_of_two():
    # lr * g is then exact in binary floating point: the update is -lr*g up to one rounding.
    assert LEARNING_RATE > 0 and math.log2(LEARNING_RATE).is_integer()


# --------------------------------------------------------------------------------------
# Every implementation installed here
# --------------------------------------------------------------------------------------


@pytest.mark.differential
def test_gradient_keys_are_the_case_weight_names(gradients):
    expected = {f"{layer.name}/{w}" for layer in _case(0.0).layers for w in layer.weights}
    for impl, by_case in _trained(gradients).items():
        for label, g in by_case.items():
            assert set(g.gradients) == expected, f"{impl} {label}: gradients keyed {sorted(g.gradients)}"
            assert set(g.updates) == expected, f"{impl} {label}: updates keyed {sorted(g.updates)} ({g.update_error})"


@pytest.mark.differential
def test_gradient_and_loss_equal_the_analytic_values(gradients):
    for impl, by_case in _trained(gradients).items():
        for label, g in by_case.items():
            loss, expected = _analytic(CASES[label])
            # The loss: a float32 sum of 8 squares of magnitude <= 9 (plus the l2 term): exact
            # in float32 for this data, 1e-6 relative covers a reordered sum.
            assert g.loss is not None and math.isclose(g.loss, loss, rel_tol=1e-6), (impl, label, g.loss, loss)
            for key, value in expected.items():
                _assert_close(g.gradients[key], value, GRAD_ATOL, f"{impl} {label} d loss / d {key}")


@pytest.mark.differential
def test_l2_kernel_regularizer_adds_2_l2_w_to_the_kernel_gradient_only(gradients):
    for impl, by_case in _trained(gradients).items():
        plain, regularized = by_case["plain"].gradients, by_case["l2"].gradients
        # A difference of two values each within GRAD_ATOL of the exact ones.
        _assert_close(np.subtract(regularized["out/kernel"], plain["out/kernel"]), 2 * L2 * W, 2 * GRAD_ATOL,
                      f"{impl}: kernel gradient with l2={L2} minus without")
        _assert_close(np.subtract(regularized["out/bias"], plain["out/bias"]), np.zeros_like(B), 2 * GRAD_ATOL,
                      f"{impl}: bias gradient with l2={L2} minus without")


@pytest.mark.differential
def test_one_sgd_step_moves_each_weight_by_minus_lr_times_the_gradient(gradients):
    weights = {"out/kernel": W, "out/bias": B}
    for impl, by_case in _trained(gradients).items():
        for label, g in by_case.items():
            assert g.update_error is None, f"{impl} {label}: {g.update_error}"
            assert g.learning_rate == LEARNING_RATE and g.update_mode, (impl, label, g.learning_rate, g.update_mode)
            _, expected = _analytic(CASES[label])
            for key, grad in expected.items():
                # The new float32 weight is w - lr*g rounded once: off by at most half a float32
                # ulp of |w| + lr*|g|; the step's own gradient (computed in update_mode, maybe
                # another program than the reported one) is within GRAD_ATOL, times lr.
                w = weights[key]
                bound = np.spacing(np.float32(np.abs(w) + LEARNING_RATE * np.abs(grad))).astype(np.float64)
                actual = np.asarray(g.updates[key], dtype=np.float64)
                assert actual.shape == w.shape, (impl, label, key, actual.shape)
                excess = np.abs(actual + LEARNING_RATE * grad) - (bound + LEARNING_RATE * GRAD_ATOL)
                assert np.all(excess <= 0), (
                    f"{impl} {label} {key} ({g.update_mode}): update\n{actual}\nexpected -{LEARNING_RATE} * "
                    f"gradient =\n{-LEARNING_RATE * grad}")
                # And the same against the gradient the implementation itself reported.
                reported = np.asarray(g.gradients[key], dtype=np.float64)
                assert np.all(np.abs(actual + LEARNING_RATE * reported) <= bound + 2 * LEARNING_RATE * GRAD_ATOL), (
                    impl, label, key, actual, reported)


@pytest.mark.differential
def test_numpy_backend_reports_unsupported_with_a_reason(gradients):
    if "keras3-numpy" not in gradients:
        pytest.skip("keras3-numpy is not installed in this Python")
    for label, g in gradients["keras3-numpy"].items():
        assert g.status == "unsupported", (label, g)
        assert g.reason and "numpy" in g.reason and "train" in g.reason, (label, g.reason)
        assert not g.gradients and not g.updates, label
