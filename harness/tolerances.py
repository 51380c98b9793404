"""Every tolerance the harness judges with, each justified where it is defined: totals, terms and
predictions (`TOLERANCES`, used by harness.compare), gradients and SGD updates
(`GRADIENT_TOLERANCES`, `gradient_floor`, used by harness.compare_gradients), and the equality
of two reference numbers (`REFERENCE_RTOL`, the report's "same number"). harness.coverage,
harness.bench, harness.bisect, harness.migrate and harness.fingerprint tell values apart with
these same tolerances, so "distinguished" and "agrees" mean the same everywhere.

Plain data, importing nothing of the harness (the data layer: tests/test_layering.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # relative to the magnitude of the summed terms
    atol: float  # absolute floor, for totals whose summands are all (near) zero
    pred_rtol: float  # predictions, relative to the element's magnitude
    pred_atol: float  # predictions, absolute floor


TOLERANCES: dict[str, Tolerance] = {
    # float32 (eps = 1.19e-7). A total is a sum of at most a few hundred per-element losses,
    # each the end of a chain of <= ~15 float32 operations (a few layers, an activation, a
    # log/exp, the reduction); the forward error bound is then about (15 + log2(300)) * eps
    # ~= 3e-6 of the magnitude of the summands. 2e-5 leaves a margin of ~7x and still catches
    # a factor of 1.01 on any term that carries more than 0.2% of the magnitude; smaller terms
    # are compared on their own ("terms") with their own magnitude.
    # Predictions: <= ~10 float32 ops per element after the inputs -> 1e-5 relative; the
    # absolute floor 1e-6 covers values that cancel to ~0 (e.g. a Dense sum of +/- terms of
    # size ~1, whose rounding error is ~1e-7 each).
    "float32": Tolerance(rtol=2e-5, atol=1e-7, pred_rtol=1e-5, pred_atol=1e-6),
    # float64 (eps = 2.2e-16): the same reasoning gives ~6e-15; 1e-9 leaves room for
    # implementations that route a float64 model through a float32 constant (epsilon = 1e-7
    # as a Python float is exact in float64, so such routes still agree to ~1e-12), while a
    # semantic difference of 1e-7 relative (epsilon added to a divisor) still shows.
    "float64": Tolerance(rtol=1e-9, atol=1e-12, pred_rtol=1e-9, pred_atol=1e-12),
}


@dataclass(frozen=True)
class GradientTolerance:
    rtol: float  # relative to the tensor's scale (reference.gradients: max over its entries of
    # the sum over terms of |d term / d weight|), the scale floored at SCALE_FLOOR x the case's largest


GRADIENT_TOLERANCES: dict[str, GradientTolerance] = {
    # float32: an entry of a backpropagated gradient is a sum over samples (and time steps) of
    # products along a chain of <= ~20 float32 operations, so it errs by about
    # (20 + log2(300)) * 1.2e-7 ~= 3.4e-6 of the magnitudes summed into it; evaluating at
    # float32-rounded activations adds about as much. 1e-4 leaves a ~15x margin and still
    # catches a 1% difference on any entry above 1% of its tensor's scale.
    "float32": GradientTolerance(rtol=1e-4),
    # float64: the implementation errs by ~1e-14; the reference's central differences by
    # ~4e-11 |f'''| + 1.5e-11 |f| (reference.gradients): with curvature up to ~1e4 times the
    # slope (large logits) that is ~1e-7 of the scale; 1e-6 covers it.
    "float64": GradientTolerance(rtol=1e-6),
}
# A tensor whose own gradient is ~0 (it feeds an output whose loss weight is 0, or a saturated
# unit) still carries rounding noise from the magnitudes that flow through the case: its scale
# is floored at this fraction of the case's largest tensor scale.
SCALE_FLOOR = 1e-3
# A case whose gradients are all ~0 (a loss that hardly depends on the weights) still carries
# rounding of the loss's own size: the floor never drops below this fraction of its magnitude.
LOSS_FLOOR = 1e-3


def gradient_floor(largest_scale: float, loss_magnitude: float) -> float:
    """The scale under which no tensor's gradient is compared: SCALE_FLOOR x the case's largest
    tensor scale, or x LOSS_FLOOR x the loss's magnitude (finite) when that is larger."""
    return SCALE_FLOOR * max(largest_scale, LOSS_FLOOR * abs(loss_magnitude) if math.isfinite(loss_magnitude) else 0.0)


# Two numbers of the reference are the same number (the report's timelines and migrate's
# "changes the total"): the reference is deterministic float64; 1e-12 relative allows a different
# summation order between versions of the reference.
REFERENCE_RTOL = 1e-12
