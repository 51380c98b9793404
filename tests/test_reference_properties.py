"""Properties of the reference on drawn Cases (harness.strategies.cases).

Each property is one the documented semantics promise; where an implementation's own rule
breaks it (Keras 3 broadcasting a per-sample weight against the time axis breaks permutation
invariance), the property is stated for the profiles that keep it, and the test says so.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import reference, vocabulary
from harness.reference import forward
from harness.reference.rules import PROFILES
from harness.spec import Regularizer
from harness.strategies import cases

# Small and fast: the whole reference suite stays under 30 s. Drawing a Case is slower than
# Hypothesis expects of a strategy, hence too_slow is suppressed; no deadline (first-call imports).
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# float64 reference against itself after an exact rearrangement: only summation order changes.
REL = 1e-9


def same(a: float, b: float, magnitude: float, what: str) -> None:
    if math.isnan(a) or math.isnan(b):
        assert math.isnan(a) and math.isnan(b), f"{what}: {a!r} vs {b!r}"
        return
    if math.isinf(a) or math.isinf(b):
        assert a == b, f"{what}: {a!r} vs {b!r}"
        return
    assert abs(a - b) <= REL * max(1.0, magnitude), f"{what}: {a!r} vs {b!r} (magnitude {magnitude!r})"


def permute_samples(case, perm):
    inputs = tuple(replace(i, data=i.data[perm]) for i in case.inputs)
    outputs = tuple(
        replace(o, target=o.target[perm], sample_weight=None if o.sample_weight is None else o.sample_weight[perm])
        for o in case.outputs
    )
    return replace(case, inputs=inputs, outputs=outputs)


@FAST
@given(cases(), st.randoms(use_true_random=False))
def test_permuting_samples_leaves_whole_batch_totals_unchanged(case, rnd):
    perm = list(range(case.batch_size))
    rnd.shuffle(perm)
    permuted = permute_samples(case, np.array(perm))
    for profile in ("tf_keras-2.21", "keras2-graph", "keras-2.3.1"):
        a = reference.compute(case, profile)
        b = reference.compute(permuted, profile)
        same(a.total, b.total, a.magnitude, f"{profile} perm={perm}")


@FAST
@given(cases(sample_weight_forms=("omitted",)), st.randoms(use_true_random=False))
def test_permuting_samples_keras3_without_per_sample_weights(case, rnd):
    # With (batch,) weights on a temporal output Keras 3 weights time steps (rule
    # sample_weight_broadcast=trailing_axis), which is not permutation invariant.
    perm = list(range(case.batch_size))
    rnd.shuffle(perm)
    permuted = permute_samples(case, np.array(perm))
    for profile in ("keras-3.15", "keras-3.15-jax", "keras-3.15-numpy"):
        a = reference.compute(case, profile)
        b = reference.compute(permuted, profile)
        same(a.total, b.total, a.magnitude, f"{profile} perm={perm}")


def _changed_targets(target: np.ndarray, masked: np.ndarray, kind: str, classes: int) -> np.ndarray:
    """Other valid target values at the masked (batch, time) positions."""
    new = target.copy()
    if kind == "sparse":
        new[masked] = (new[masked] + 1) % classes
    elif kind == "real":
        new[masked] = -new[masked] + 0.25
    elif kind in ("nonzero_real", "plus_minus_one"):
        new[masked] = -new[masked]
    elif kind == "nonnegative":
        new[masked] = new[masked] + 1.0
    elif kind == "probability":
        new[masked] = 1.0 - new[masked]
    elif kind == "distribution":
        new[masked] = new[masked][..., ::-1]
    return new


@FAST
@given(cases(temporal=True, masks=True))
def test_targets_at_masked_positions_do_not_change_the_loss(case):
    # Masks depend on the profile (merge_mask: Keras 2 ANDs, Keras 3 ORs), so only positions
    # masked under every profile are changed.
    per_profile = [reference.output_masks(case, profile) for profile in PROFILES]
    preds = reference.predictions(case)
    outputs = []
    for o in case.outputs:
        ms = [masks[o.name] for masks in per_profile]
        if any(m is None for m in ms):
            outputs.append(o)
            continue
        masked_everywhere = ~np.logical_or.reduce(ms)
        entry = vocabulary.LOSSES[o.loss]
        new = _changed_targets(o.target, masked_everywhere, entry.target_kind, preds[o.name].shape[-1])
        outputs.append(replace(o, target=new))
    changed = replace(case, outputs=tuple(outputs))
    for profile in PROFILES:
        for path in ("test_on_batch", "evaluate"):
            a = reference.compute(case, profile, path)
            b = reference.compute(changed, profile, path)
            same(a.total, b.total, a.magnitude, f"{profile} {path}")


@FAST
@given(cases(loss_forms=("list", "dict")), st.data())
def test_total_is_linear_in_each_loss_weight(case, data):
    k = data.draw(st.integers(0, len(case.outputs) - 1), label="output")
    base = [1.0 if o.loss_weight is None else o.loss_weight for o in case.outputs]

    def total_with(w: float) -> float:
        weights = list(base)
        weights[k] = w
        outs = tuple(replace(o, loss_weight=lw) for o, lw in zip(case.outputs, weights))
        form = "list" if case.loss_weights_form == "omitted" else case.loss_weights_form
        return reference.compute(replace(case, outputs=outs, loss_weights_form=form), "tf_keras-2.21").total

    t0, t1, t25 = total_with(0.0), total_with(1.0), total_with(2.5)  # float32-exact weights
    if not all(map(math.isfinite, (t0, t1, t25))):
        return  # NaN/inf totals (fully masked batches, saturated losses) carry no linearity
    mag = reference.compute(case, "tf_keras-2.21").magnitude
    same(t25, t0 + 2.5 * (t1 - t0), 2.5 * mag + abs(t0), "total(2.5) vs total(0) + 2.5 (total(1) - total(0))")


@FAST
@given(cases(regularizers=()))
def test_regularization_terms_add(case):
    dense = [layer for layer in case.layers if layer.type == "Dense"]
    if not dense:
        return
    layer = dense[0]
    with_reg = replace(layer, regularizers={**layer.regularizers, "kernel": Regularizer("l2", 0.0, 0.5)})
    case2 = replace(case, layers=tuple(with_reg if l is layer else l for l in case.layers))
    kernel = forward.rounder(case.dtype)(layer.weights["kernel"])
    penalty = 0.5 * float(np.sum(np.square(kernel)))
    for profile in ("tf_keras-2.21", "keras-3.15-jax", "keras-2.3.1"):
        for path in ("test_on_batch", "evaluate"):
            a = reference.compute(case, profile, path)
            b = reference.compute(case2, profile, path)
            same(b.total, a.total + penalty, a.magnitude + penalty, f"{profile} {path}")
            same(b.terms["regularization"], a.terms["regularization"] + penalty, a.magnitude + penalty, "term")


@FAST
@given(cases())
def test_breakdown_sums_to_the_total_and_one_batch_evaluate_is_test_on_batch(case):
    one_batch = replace(case, evaluate_batch_size=case.batch_size)
    for profile in PROFILES:
        bd = reference.compute(case, profile)
        parts = sum(o.weighted for o in bd.outputs) + sum(r.value for r in bd.regularization)
        same(bd.total, parts, bd.magnitude, f"{profile}: total vs sum of its parts")
        assert bd.magnitude >= abs(bd.total) or math.isnan(bd.total), profile
        if PROFILES[profile]["replica_split"] != "single_device":
            continue  # under a strategy evaluate splits its batch where test_on_batch may not (reference/distributed.py)
        ev = reference.compute(one_batch, profile, "evaluate")
        if any("data_adapters" in note for note in ev.notes):
            # Keras 3's evaluate/fit refuse some sample_weight structures in the data adapter, which
            # test_on_batch never uses (rules dict_sample_weight, single_sample_weight_not_per_sample).
            assert math.isnan(ev.total), profile
            continue
        same(ev.total, bd.total, bd.magnitude, f"{profile}: evaluate with one batch")
