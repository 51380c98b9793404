"""The Keras 2 graph-mode adapters on the motivating case: tf_keras-graph, tf.keras-graph, keras2.3.1.

Each implementation runs in its own worker process (`python -m harness.worker`, through
harness.driver.Worker): graph mode is process-global (`tf.compat.v1.disable_eager_execution()`)
and keras 2.3.1 patches the process (harness.impls.keras231_shims), so neither may touch the
pytest process. An implementation whose distributions are not installed in the running Python
(harness.impls.unmet_requirements) is skipped, with that reason; once they are installed, a
failure to import is a failure of this test.

What is checked, per implementation:
- every path reports ok, or unsupported/error with a reason or message;
- predictions equal a plain NumPy forward pass of the case;
- SGD at learning rate 0 leaves every weight where it was (train_on_batch, fit);
- compute_loss (`model.total_loss` evaluated directly) equals test_on_batch's total: both
  evaluate the one tensor `_prepare_total_loss` built;
- test_on_batch's total is the loss-weighted sum of the per-output losses it returns plus
  sum(model.losses): keras 2.3.1 keras/engine/training.py Model._prepare_total_loss
  (`total_loss += loss_weight * output_loss`, `+= loss_tensor` for self.losses, K.mean of a
  scalar) and tf_keras/src/engine/training_v1.py Model._prepare_total_loss (`add_n` of
  `loss_weight * output_loss` and of the custom losses; scale_loss_for_distribution is 1
  without a strategy).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from harness import spec
from harness.driver import Worker
from harness.impls import get, unmet_requirements
from harness.results import PATHS, ImplResult, PathResult

pytestmark = pytest.mark.differential

CASE_PATH = Path(__file__).resolve().parent.parent / "cases" / "motivating_two_outputs.json"
GRAPH_IMPLS = ("tf_keras-graph", "tf.keras-graph", "keras2.3.1")
# Worker start imports TensorFlow (and builds nothing); a case builds and runs five paths.
START_TIMEOUT_S = 180.0
CASE_TIMEOUT_S = 180.0

# Float32 tolerances. The forward pass is a handful of float32 ops on values of magnitude <= 3
# (2-term dot products, tanh, a mean over <= 3 steps, a 2-way softmax): a few float32 ulps,
# i.e. relative error ~1e-6; 1e-5 relative (1e-6 absolute near 0) leaves a margin without
# hiding a real difference, which would be >= 1e-3 for any semantic change in this case.
PRED_RTOL, PRED_ATOL = 1e-5, 1e-6
# The total is a sum of five float32 terms of magnitude <= 3 computed in different orders
# (the graph's add_n vs our float64 sum of the rounded terms): 1e-5 relative.
SUM_RTOL = 1e-5


@pytest.fixture(scope="module")
def case() -> spec.Case:
    return spec.load(CASE_PATH)


_RESULTS: dict[str, ImplResult] = {}


def run_in_worker(impl_name: str, case: spec.Case) -> ImplResult:
    """The implementation's result for the case, from its own worker process (cached per module)."""
    if impl_name not in _RESULTS:
        problems = unmet_requirements(get(impl_name))
        if problems:
            pytest.skip(f"{impl_name} is not importable in this Python ({sys.executable}): " + "; ".join(problems))
        worker = Worker(impl_name, start_timeout=START_TIMEOUT_S)
        try:
            record = worker.run(spec.dumps(case), timeout=CASE_TIMEOUT_S)
        finally:
            worker.close()
        assert record.get("kind") == "result", f"{impl_name}: worker answered {record!r}"
        _RESULTS[impl_name] = ImplResult.from_json(record)
    return _RESULTS[impl_name]


def path_of(result: ImplResult, name: str) -> PathResult:
    found = [p for p in result.paths if p.path == name]
    assert len(found) == 1, f"{result.impl}: expected one {name!r} path, got {[p.key for p in result.paths]}"
    return found[0]


def describe(result: ImplResult) -> str:
    lines = [f"impl {result.impl}, case {result.case_id} ({CASE_PATH.name}); message: {result.message}"]
    for p in result.paths:
        lines.append(f"  {p.key}: {p.status} total={p.total} terms={p.terms} "
                     f"moved={p.weights_moved} {p.reason or ''}{p.error_type or ''} {p.error_message or ''}")
    lines.append(f"  replay: HARNESS_IMPL={result.impl} {sys.executable} -m harness.worker --impl {result.impl} "
                 f"< <(python -c 'from harness import spec; print(spec.dumps(spec.load(\"{CASE_PATH}\")))')")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# The plain NumPy forward pass of the motivating case (float64)
# --------------------------------------------------------------------------------------


def forward_motivating(case: spec.Case) -> dict[str, np.ndarray]:
    """Masking(0) -> Dense(2, tanh) -> {Dense(1) per step; GlobalAveragePooling1D over the
    unmasked steps -> Dense(2, softmax, no bias)}. Keras Masking zeroes the masked steps'
    features; Dense runs on every step (masked ones too); the pooled mean counts unmasked steps
    only."""
    x = case.inputs[0].data
    w = {layer.name: layer.weights for layer in case.layers}
    mask = np.any(x != case.layer("mask").config["mask_value"], axis=-1)  # (batch, time)
    masked = x * mask[..., None]
    hidden = np.tanh(masked @ w["hidden"]["kernel"] + w["hidden"]["bias"])
    seq_out = hidden @ w["seq_out"]["kernel"] + w["seq_out"]["bias"]
    pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    logits = pooled @ w["vec_out"]["kernel"]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return {"seq_out": seq_out, "vec_out": e / e.sum(axis=-1, keepdims=True)}


def test_forward_pass_sees_the_masked_step(case: spec.Case) -> None:
    """Guards the helper above: sample 2 has two masked steps, so the pooled mean differs from
    the mean over all steps (if it did not, the prediction check could not see a mask bug)."""
    x = case.inputs[0].data
    assert np.all(x[2, 0] == 0) and np.all(x[2, 2] == 0)
    preds = forward_motivating(case)
    assert preds["vec_out"].shape == (4, 2) and preds["seq_out"].shape == (4, 3, 1)


# --------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl_name", GRAPH_IMPLS)
def test_every_path_reports(impl_name: str, case: spec.Case) -> None:
    result = run_in_worker(impl_name, case)
    assert result.status == "ok", describe(result)
    assert [p.path for p in result.paths] == list(PATHS), describe(result)  # test_on_batch_loop too
    for p in result.paths:
        assert p.mode == "graph", describe(result)
        if p.status == "ok":
            assert p.total is not None and np.isfinite(p.total), describe(result)
        elif p.status == "unsupported":
            assert p.reason, describe(result)
        else:
            assert p.status == "error" and p.error_type and p.error_message, describe(result)
    # The motivating case uses only what every Keras 2 graph implementation has: all paths run.
    assert all(p.status == "ok" for p in result.paths), describe(result)


@pytest.mark.parametrize("impl_name", GRAPH_IMPLS)
def test_predictions_match_numpy_forward_pass(impl_name: str, case: spec.Case) -> None:
    result = run_in_worker(impl_name, case)
    assert result.predictions is not None, describe(result)
    expected = forward_motivating(case)
    for name, want in expected.items():
        got = np.asarray(result.predictions[name], dtype=np.float64)
        np.testing.assert_allclose(
            got, want, rtol=PRED_RTOL, atol=PRED_ATOL,
            err_msg=f"{impl_name}: predictions of output {name!r} differ from the NumPy forward pass\n"
                    + describe(result))


@pytest.mark.parametrize("impl_name", GRAPH_IMPLS)
def test_learning_rate_zero_moves_no_weight(impl_name: str, case: spec.Case) -> None:
    result = run_in_worker(impl_name, case)
    for name in ("train_on_batch", "fit"):
        p = path_of(result, name)
        assert p.status == "ok" and p.weights_moved is False, f"{name}: weights moved at lr 0\n" + describe(result)


@pytest.mark.parametrize("impl_name", GRAPH_IMPLS)
def test_total_loss_tensor_is_what_test_on_batch_reports(impl_name: str, case: spec.Case) -> None:
    result = run_in_worker(impl_name, case)
    direct, tob = path_of(result, "compute_loss"), path_of(result, "test_on_batch")
    assert direct.total == pytest.approx(tob.total, rel=1e-6), describe(result)


@pytest.mark.parametrize("impl_name", GRAPH_IMPLS)
def test_total_is_weighted_sum_of_outputs_plus_layer_losses(impl_name: str, case: spec.Case) -> None:
    result = run_in_worker(impl_name, case)
    tob, direct = path_of(result, "test_on_batch"), path_of(result, "compute_loss")
    weights = {o.name: o.loss_weight for o in case.outputs}
    assert set(tob.terms) == {f"output/{n}" for n in weights}, describe(result)
    assembled = sum(weights[n] * tob.terms[f"output/{n}"] for n in weights) + direct.terms["regularization"]
    assert tob.total == pytest.approx(assembled, rel=SUM_RTOL), (
        f"total {tob.total} != sum(loss_weight * output loss) + regularization = {assembled}\n" + describe(result))
