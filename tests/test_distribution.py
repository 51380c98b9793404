"""Distribution strategies (issue 10): what each replica differentiates, and what is reported.

Reference (harness/reference/distributed.py), worked out by hand on a case whose per-row losses
are known: x = [1, 2, 3, 4, 5] -> Dense(1, kernel 1, bias 0) -> prediction x, target 0, so the
squared error of row i is x_i^2 = [1, 4, 9, 16, 25] (sum 55). Two replicas: 5 rows split 3 + 2
(rows 1-3: sum 14, mean 14/3; rows 4-5: sum 41, mean 41/2).

Implementations (harness/impls/distributed.py): each installed distributed implementation runs
in its worker on hand-written cases and the corpus case that every Keras accepts, and its
split, replica losses and reported losses are checked against the reference.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import compare, reference, spec, tolerances
from harness.impls import IMPLEMENTATIONS, unmet_requirements
from harness.reference import distributed
from harness.reference import rules
from harness.reference.rules import PROFILES, expected
from harness.results import ImplResult
from harness.spec import Case, Input, Layer, Output, Regularizer

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTED = [name for name, impl in IMPLEMENTATIONS.items() if impl.family == "distributed"]

TFK = PROFILES["tf_keras-2.21-mirrored"]
K3TF = PROFILES["keras-3.15-mirrored"]
JAX = PROFILES["keras-3.15-jax-dataparallel"]


def close(got: float, want: float) -> None:
    assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), f"got {got!r}, want {want!r}"


def rows_case(n: int = 5, *, reduction: str = "sum_over_batch_size", kernel_l2: float = 0.0,
              activity_l1: float = 0.0, add_loss: float = 0.0, evaluate_batch_size: int = 3,
              dtype: str = "float64") -> Case:
    """x = [1..n] -> Dense "out" (1 unit, kernel 1, bias 0, linear) -> MSE against 0: row i's loss is x_i^2.
    kernel_l2 > 0 adds kernel_l2 * 1^2; activity_l1 > 0 adds activity_l1 * sum|x| / rows; add_loss > 0
    puts an AddLossL2 layer before "out": add_loss * sum(x^2) over the rows (not divided by them)."""
    x = np.arange(1.0, n + 1.0).reshape(n, 1)
    regs = {}
    if kernel_l2:
        regs["kernel"] = Regularizer("l2", 0.0, kernel_l2)
    if activity_l1:
        regs["activity"] = Regularizer("l1", activity_l1, 0.0)
    layers = [Layer("sq", "AddLossL2", ("x",), {"factor": add_loss})] if add_loss else []
    layers.append(Layer("out", "Dense", ("sq" if add_loss else "x",), {"units": 1, "activation": "linear",
                                                                          "use_bias": True},
                        {"kernel": np.ones((1, 1)), "bias": np.zeros(1)}, regs))
    out = Output("out", np.zeros((n, 1)), "mean_squared_error", {"reduction": reduction})
    case = Case(dtype, (Input("x", "float", x),), tuple(layers), (out,), "single", "omitted", "omitted",
                evaluate_batch_size)
    spec.validate(case)
    return case


# ---------------------------------------------------------------------------------------
# The reference, by hand
# ---------------------------------------------------------------------------------------


def test_tf_distribute_splits_a_batch_larger_part_first():
    assert distributed.balanced_split(5, 2) == [3, 2]
    assert distributed.balanced_split(4, 2) == [2, 2]
    assert distributed.balanced_split(1, 2) == [1, 0]


def test_mean_loss_uneven_split_each_replica_divides_its_mean_by_the_replicas():
    d = distributed.differentiated(rows_case(), TFK)
    assert d.split == [3, 2]
    close(d.replica_losses[0], 14 / 3 / 2)
    close(d.replica_losses[1], 41 / 2 / 2)
    close(d.total, (14 / 3 + 41 / 2) / 2)  # the mean of the replicas' means: 12.58..., not 55/5 = 11
    assert d.total != pytest.approx(11.0)
    assert d.notes == []


def test_mean_loss_reported_is_the_row_weighted_mean_which_is_the_single_device_loss():
    for path in ("test_on_batch", "train_on_batch"):
        close(reference.compute(rows_case(), TFK, path).total, 55 / 5)
    # evaluate/fit: batches of 3 rows (2 + 1) and 2 rows (1 + 1), every piece weighted by its rows.
    close(reference.compute(rows_case(), TFK, "evaluate").total, 55 / 5)


def test_sum_loss_is_not_divided_and_its_reported_value_counts_each_replica_r_times():
    case = rows_case(reduction="sum")
    d = distributed.differentiated(case, TFK)
    assert d.replica_losses == [14.0, 41.0]
    close(d.total, 55.0)
    # Mean metric: each replica reports 2 x its sum, weighted by its rows: 2 (3 x 14 + 2 x 41) / 5.
    close(reference.compute(case, TFK, "train_on_batch").total, 2 * (3 * 14 + 2 * 41) / 5)


def test_regularization_is_divided_per_replica_and_activity_is_averaged_over_each_replicas_rows():
    case = rows_case(kernel_l2=0.5, activity_l1=0.1)
    d = distributed.differentiated(case, TFK)
    # replica 0: (14/3 + 0.5 + 0.1 x (1+2+3)/3) / 2; replica 1: (41/2 + 0.5 + 0.1 x (4+5)/2) / 2
    close(d.replica_losses[0], (14 / 3 + 0.5 + 0.1 * 6 / 3) / 2)
    close(d.replica_losses[1], (41 / 2 + 0.5 + 0.1 * 9 / 2) / 2)
    # Reported: row-weighted, unscaled: the single-device loss 11 + 0.5 + 0.1 x 15/5.
    close(reference.compute(case, TFK, "train_on_batch").total, 11 + 0.5 + 0.1 * 15 / 5)


def test_add_loss_summed_over_rows_counts_half_under_two_replicas():
    # add_loss(0.5 * sum(x^2)) is 0.5 x 30 = 15 on the whole batch [1, 2, 3, 4]; each replica adds
    # its own rows' sum divided by 2: (0.5 x 5 + 0.5 x 25) / 2 = 7.5, and the Mean metric reports
    # the row-weighted mean of the replicas' 0.5 x 5 and 0.5 x 25: 7.5 as well.
    case = rows_case(4, add_loss=0.5, evaluate_batch_size=4)
    single = reference.compute(case, "tf_keras-2.21", "train_on_batch").total
    close(single, 30 / 4 + 15)
    close(distributed.differentiated(case, TFK).total, 30 / 4 + 7.5)
    close(reference.compute(case, TFK, "train_on_batch").total, 30 / 4 + 7.5)
    close(distributed.differentiated(case, JAX).total, single)  # one global program


def test_a_replica_without_rows_still_counts_its_share_of_the_weight_regularizers():
    d = distributed.differentiated(rows_case(1, kernel_l2=0.5, evaluate_batch_size=1), TFK)
    assert d.split == [1, 0]
    close(d.replica_losses[0], (1 + 0.5) / 2)
    close(d.replica_losses[1], 0.5 / 2)
    close(d.total, 0.5 + 0.5)


def test_keras3_train_on_batch_gives_every_replica_the_whole_batch():
    d = distributed.differentiated(rows_case(kernel_l2=0.5), K3TF)
    assert d.split == [5, 5]
    assert d.replica_losses == [pytest.approx((11 + 0.5) / 2, rel=1e-12)] * 2
    close(d.total, 11.5)  # = the single-device loss
    # With sum reduction each replica's sum is not divided: the summed gradient is twice the sum's.
    s = distributed.differentiated(rows_case(reduction="sum"), K3TF)
    assert s.replica_losses == [55.0, 55.0] and s.total == 110.0
    close(reference.compute(rows_case(reduction="sum"), K3TF, "train_on_batch").total, 110.0)


def test_keras3_evaluate_refuses_a_first_batch_that_splits_unevenly():
    bd = reference.compute(rows_case(evaluate_batch_size=3), K3TF, "evaluate")
    assert math.isnan(bd.total) and "keras/src/backend/tensorflow/trainer.py" in " ".join(bd.notes)
    # An even first batch (2 = 1 + 1) is accepted, even though the last (1 row) splits 1 + 0.
    close(reference.compute(rows_case(evaluate_batch_size=2), K3TF, "evaluate").total, 11.0)


def test_jax_data_parallel_is_one_global_program_that_refuses_an_odd_batch():
    d = distributed.differentiated(rows_case(4, kernel_l2=0.5), JAX)
    assert d.split == [2, 2] and len(d.replica_losses) == 1
    close(d.total, (1 + 4 + 9 + 16) / 4 + 0.5)
    odd = distributed.differentiated(rows_case(5), JAX)
    assert odd.split == [] and math.isnan(odd.total)
    assert "keras/src/backend/jax/distribution_lib.py" in " ".join(odd.notes)
    assert math.isnan(reference.compute(rows_case(5), JAX, "train_on_batch").total)


def test_single_device_profiles_are_unaffected():
    distributed_profiles = [rules.profile(expected(name, {})) for name in DISTRIBUTED]
    for name, profile in PROFILES.items():
        if profile in distributed_profiles:
            continue
        assert profile["replica_split"] == "single_device", name
        assert profile["replica_loss_scaling"] == "none" and profile["replica_regularization_scaling"] == "none"


def test_an_even_split_of_a_mean_loss_differentiates_the_single_device_loss():
    case = rows_case(4, kernel_l2=0.5, activity_l1=0.1)
    single = reference.compute(case, "tf_keras-2.21", "train_on_batch").total
    close(distributed.differentiated(case, TFK).total, single)
    close(reference.compute(case, TFK, "train_on_batch").total, single)


# ---------------------------------------------------------------------------------------
# The implementations, in their workers
# ---------------------------------------------------------------------------------------

CORPUS_CASE = ROOT / "cases" / "motivating_list_forms_temporal_weights.json"  # 4 rows, masks, float32
WORKER_CASES = {
    "five rows, mean, regularizers": rows_case(5, kernel_l2=0.5, activity_l1=0.1, evaluate_batch_size=3),
    "four rows, sum": rows_case(4, reduction="sum", evaluate_batch_size=2),
    "five rows, sum": rows_case(5, reduction="sum", evaluate_batch_size=5),
    "four rows, add_loss": rows_case(4, add_loss=0.5, evaluate_batch_size=2),
    "corpus: motivating list forms": spec.load(CORPUS_CASE),
}


def _installed(name: str) -> Any:
    unmet = unmet_requirements(IMPLEMENTATIONS[name])
    return pytest.param(name, marks=pytest.mark.skipif(bool(unmet), reason="; ".join(unmet)), id=name)


@pytest.fixture(scope="module")
def worker_results() -> dict[str, dict[str, ImplResult]]:
    """impl -> case label -> result; each implementation's worker started once (lazily)."""
    return {}


def _results(impl: str, store: dict[str, dict[str, ImplResult]]) -> dict[str, ImplResult]:
    if impl not in store:
        lines = "".join(spec.dumps(c) + "\n" for c in WORKER_CASES.values())
        proc = subprocess.run([sys.executable, "-m", "harness.worker", "--impl", impl], input=lines,
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        assert proc.returncode == 0 and [r["kind"] for r in records] == ["header"] + ["result"] * len(WORKER_CASES), \
            (records[:1], proc.stderr[-3000:])
        store[impl] = {label: ImplResult.from_json(r) for label, r in zip(WORKER_CASES, records[1:])}
    return store[impl]


def _agree(got: float | None, want: float, magnitude: float, case: Case, profile: str) -> bool:
    # The engine's own tolerance for the dtype the implementation computes in (harness/compare.py
    # TOLERANCES: float32 2e-5 of the magnitude of what was summed, float64 1e-9).
    tol = tolerances.TOLERANCES[reference.effective_dtype(case, profile)]
    return got is not None and compare.values_agree(got, want, magnitude, tol)


@pytest.mark.differential
@pytest.mark.parametrize("impl", [_installed(name) for name in DISTRIBUTED])
@pytest.mark.parametrize("label", list(WORKER_CASES))
def test_split_and_replica_losses_are_the_references(impl, label, worker_results):
    case, result = WORKER_CASES[label], _results(impl, worker_results)[label]
    profile = expected(impl, {})
    want = distributed.differentiated(case, profile)
    dist = result.distribution
    where = f"{impl} on {label} (case {case.id})"
    assert dist is not None and dist.replicas == 2, where
    assert list(dist.split or []) == want.split, f"{where}: split {dist.split}, reference {want.split}"
    if want.notes:  # the implementation refuses the batch
        assert result.gradients is not None and result.gradients.status == "error", (where, want.notes)
        return
    assert dist.replica_losses is not None and len(dist.replica_losses) == len(want.replica_losses), where
    for r, (got, ref, mag) in enumerate(zip(dist.replica_losses, want.replica_losses, want.replica_magnitudes)):
        assert _agree(got, ref, mag, case, profile), f"{where}: replica {r} loss {got!r}, reference {ref!r}"
    assert _agree(result.gradients.loss, want.total, want.magnitude, case, profile), \
        f"{where}: differentiated {result.gradients.loss!r}, reference {want.total!r}"


@pytest.mark.differential
@pytest.mark.parametrize("impl", [_installed(name) for name in DISTRIBUTED])
@pytest.mark.parametrize("label", list(WORKER_CASES))
def test_reported_losses_are_the_references(impl, label, worker_results):
    case, result = WORKER_CASES[label], _results(impl, worker_results)[label]
    profile = expected(impl, {})
    for p in result.paths:
        if p.path == "compute_loss":
            assert p.status == "unsupported" and p.reason, (impl, p)
            continue
        want = reference.compute(case, profile, p.path)
        where = f"{impl} {p.key} on {label} (case {case.id}): reported {p.total!r}, reference {want.total!r}"
        if want.notes:
            assert p.status == "error" and compare.predicts_error(want, p.error_message), (where, want.notes,
                                                                                          p.error_message)
            continue
        assert p.status == "ok", (where, p.error_type, p.error_message)
        assert _agree(p.total, want.total, want.magnitude, case, profile), where
        if p.path in ("train_on_batch", "fit"):
            assert p.weights_moved is False, where


@pytest.mark.differential
@pytest.mark.parametrize("impl", [_installed(name) for name in DISTRIBUTED])
def test_one_sgd_step_applies_minus_the_learning_rate_times_the_summed_gradients(impl, worker_results):
    for label, result in _results(impl, worker_results).items():
        g = result.gradients
        if g is None or g.status != "ok":
            continue
        assert g.learning_rate == 0.25 and set(g.updates) == set(g.gradients), (impl, label)
        for key, grad in g.gradients.items():
            # float32 case: the update w_new - w_old carries the rounding of w (|w| <= 2, eps 1.2e-7)
            # besides lr x the gradient's own: 1e-6 absolute covers both with a margin of ~4.
            np.testing.assert_allclose(np.asarray(g.updates[key]), -0.25 * np.asarray(grad), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{impl} on {label}: {key}")
