"""The reference gradient: d(total loss)/d(weight) in float64, by central differences.

What is differentiated is the loss the train step differentiates: the whole-batch total of
`total.compute(case, profile, "train_on_batch")` (every output's weighted loss plus
model.losses), or, for a distributed run (`replicas` > 1), the sum of the losses the replicas
differentiate (`reference.distributed.differentiated`): the optimizer receives the sum of the
replicas' gradients, which is the gradient of that sum.

Why central differences: the reference is NumPy code whose rules (masks, clipping, scaling) are
the product; differentiating that very code keeps the gradient in step with every rule, at the
cost of 2 evaluations per weight entry (~0.3 ms each: 0.05 s for a case of 100 weights).

The step (float64, eps = 2.2e-16): h = 2**-16 * max(1, |w|) (~1.5e-5, a power of two so w +/- h is
exact). Central differences err by h**2/6 * |f'''| (truncation, ~4e-11 |f'''|) plus
~eps * |f| / h (~1.5e-11 |f|, rounding): about 1e-10 of the scale of the losses, far below the
float32 tolerance (harness.tolerances.GRADIENT_TOLERANCES) and ~1e3 below the float64 one.
Values are not rounded to the case dtype while differentiating (forward.exact_values); clip
decisions still are (a float32 sigmoid that rounds to 1.0 is clipped, its gradient is 0).
So `loss` here is that smooth function's value, not the number a float32 implementation
computes (a saturated sigmoid's 1 - p carries float32 rounding); the differentiated loss an
implementation reports is judged against the loss reference itself
(compare_gradients.differentiated_loss).

Points where the loss is not differentiable (relu at 0, l1 of a weight that is exactly 0, |x| in
mae/huber at 0, a hinge at its corner): the one-sided differences are compared; when they differ
by more than smooth curvature explains (the difference does not shrink with the step), the entry
is a *kink*: the implementation may return any value between the two one-sided derivatives (a
subgradient; TensorFlow's relu'(0) = 0 and sign(0) = 0 are such values), and `low`/`high` hold
that interval.

A total that is not finite (a fully masked batch divided by 0 valid entries) has the finite
terms' gradient on the weights that do not feed the non-finite term, and an undetermined one
(any value agrees) on those that do (`_through_nonfinite_terms`).

Per-term gradients ("output/<name>": the output's weighted loss, "regularization": model.losses)
are differentiated too, for attribution: which term's gradient a differing weight carries.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from harness import vocabulary
from harness.reference import distributed, forward, total
from harness.reference import rules as rules_mod
from harness.spec import Case

STEP = 2.0 ** -16  # relative step (see the module docstring)
SHRINK = 16.0  # a kink's one-sided gap stays when the step shrinks by this; curvature's shrinks 16x


@dataclass
class GradientBreakdown:
    profile: dict[str, str]
    replicas: int
    loss: float  # the value differentiated, under exact_values (not what an implementation reports:
    # compare_gradients.differentiated_loss judges that against the rounded loss reference)
    magnitude: float  # of `loss`: the sum of absolute values of what was summed into it
    gradients: dict[str, np.ndarray]  # "<layer>/<weight>" -> d loss / d weight
    low: dict[str, np.ndarray]  # the subgradient interval: low == high == gradient but at kinks
    high: dict[str, np.ndarray]
    scale: dict[str, float]  # per tensor: max over entries of sum over terms of |d term / d weight|
    # (the terms whose derivative is finite at that entry)
    term_gradients: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # term -> key -> array
    notes: list[str] = field(default_factory=list)  # the implementation raises (see aggregate)
    # The sum of the absolute values of the finite terms (= `magnitude` when the loss is finite):
    # what the gradient floor scales with when a fully masked output makes the total NaN.
    finite_magnitude: float = 0.0

    def kinks(self, key: str) -> int:
        """Entries of `key` at a point where the loss is not differentiable (a finite kink)."""
        return int(np.sum((self.low[key] < self.high[key]) & np.isfinite(self.low[key] - self.high[key])))

    def undetermined(self, key: str) -> int:
        """Entries of `key` that feed a non-finite term: any value agrees."""
        return int(np.sum(np.isinf(self.low[key]) & np.isinf(self.high[key])))


def weight_keys(case: Case) -> list[str]:
    """"<layer>/<weight>" for every trainable weight of the case (not a vocabulary entry's
    `non_trainable` ones, which no optimizer moves and no implementation differentiates), in layer
    order then weight-name order."""
    return [f"{layer.name}/{name}" for layer in case.layers for name in sorted(layer.weights)
            if name not in vocabulary.LAYERS[layer.type].non_trainable]


def with_weight(case: Case, key: str, value: np.ndarray) -> Case:
    """The case with one weight tensor replaced."""
    layer_name, weight = key.split("/", 1)
    layers = tuple(dataclasses.replace(layer, weights={**layer.weights, weight: value})
                   if layer.name == layer_name else layer for layer in case.layers)
    return dataclasses.replace(case, layers=layers)


def _weight(case: Case, key: str) -> np.ndarray:
    layer_name, weight = key.split("/", 1)
    return np.asarray(case.layer(layer_name).weights[weight], dtype=np.float64)


# An evaluation: (loss, magnitude, per-term values, notes) of a case under a profile.
Evaluation = tuple[float, float, dict[str, float], list[str]]


def train_step_profile(profile: Mapping[str, str]) -> dict[str, str]:
    """The profile of the loss a train step's tape differentiates: train_on_batch's, but the tape
    calls compute_loss on tensors and meets no single_batch_iterator, whose refusal of a None
    sample weight (rule none_in_sample_weight_list) is the update step's, not the gradient's."""
    return {**profile, "none_in_sample_weight_list": "unweighted"}


def _terms_single(case: Case, profile: Mapping[str, str]) -> Evaluation:
    b = total.compute(case, train_step_profile(profile), "train_on_batch")
    terms = {f"output/{o.name}": o.weighted for o in b.outputs}
    terms["regularization"] = float(sum(p.value for p in b.regularization))
    return b.total, b.magnitude, terms, list(b.notes)


def _terms_distributed(replicas: int) -> Callable[[Case, Mapping[str, str]], Evaluation]:
    def terms(case: Case, profile: Mapping[str, str]) -> Evaluation:
        d = distributed.differentiated(case, profile, replicas)
        return d.total, d.magnitude, {}, list(d.notes)
    return terms


def compute(case: Case, profile: str | Mapping[str, str], replicas: int = 1) -> GradientBreakdown:
    """The reference gradient of `case` under `profile` (see the module docstring)."""
    rules = rules_mod.resolve(profile)
    evaluate = _terms_single if replicas == 1 else _terms_distributed(replicas)
    with forward.exact_values():
        loss, magnitude, base_terms, notes = evaluate(case, rules)
        grads, low, high, scale, term_grads = {}, {}, {}, {}, {t: {} for t in base_terms}
        for key in weight_keys(case):
            w = _weight(case, key)
            g, lo, hi = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
            tg = {t: np.zeros_like(w) for t in base_terms}
            for idx in np.ndindex(w.shape):
                h = STEP * max(1.0, abs(float(w[idx])))

                def at(delta: float) -> tuple[float, dict[str, float]]:
                    moved = w.copy()
                    moved[idx] += delta
                    total, _, terms, _ = evaluate(with_weight(case, key, moved), rules)
                    return total, terms

                g[idx], lo[idx], hi[idx], per_term = _derivative(at, loss, base_terms, h)
                for t, v in per_term.items():
                    tg[t][idx] = v
            if not math.isfinite(loss) and not notes:  # (with notes the implementation raises: no gradient)
                g, lo, hi = _through_nonfinite_terms(case, key, base_terms, tg)
            grads[key], low[key], high[key] = g, lo, hi
            for t in base_terms:
                term_grads[t][key] = tg[t]
            # Summed per entry over the terms with a finite derivative there: a non-finite term
            # (a fully masked output's 0/0) has a NaN difference on every weight, which must not
            # zero the scale, and with it the tolerance, of the weights the other terms move.
            parts = [tg[t] for t in base_terms] if base_terms else [g]
            spread = sum((np.where(np.isfinite(d), np.abs(d), 0.0) for d in parts), np.zeros_like(w))
            scale[key] = float(np.max(spread, initial=0.0))
    finite = magnitude if math.isfinite(magnitude) else float(sum(abs(v) for v in base_terms.values() if math.isfinite(v)))
    return GradientBreakdown(dict(rules), replicas, loss, magnitude, grads, low, high, scale, term_grads, notes, finite)


def _upstream_layers(case: Case, layer_name: str) -> set[str]:
    """The layer and every layer it depends on (its weights can move its output)."""
    by_name = {layer.name: layer for layer in case.layers}
    seen: set[str] = set()
    todo = [layer_name]
    while todo:
        name = todo.pop()
        if name in seen or name not in by_name:
            continue  # an Input
        seen.add(name)
        todo.extend(by_name[name].inbound)
    return seen


def _through_nonfinite_terms(case: Case, key: str, base_terms: dict[str, float],
                             term_grads: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradient of a total that is not finite (NaN or inf: e.g. a fully masked batch divided
    by its 0 valid entries): differences of a NaN are NaN, but backpropagation only reaches the
    weights a term depends on. So the total's gradient is the sum of the finite terms' gradients;
    where a weight feeds a non-finite term, what autodiff returns through 0/0 (NaN, or 0 where an
    op masks it) is not a semantic of the loss: those entries are *undetermined* (gradient NaN,
    interval [-inf, inf], any value agrees). Without per-term values (a distributed total),
    every entry is undetermined."""
    layer_name = key.split("/", 1)[0]
    shape = term_grads[next(iter(term_grads))].shape if term_grads else _weight(case, key).shape
    g = np.zeros(shape)
    undetermined = not base_terms
    outputs = {o.name: o.layer for o in case.outputs}
    for t, value in base_terms.items():
        if math.isfinite(value):
            g = g + term_grads[t]
            continue
        if t.startswith("output/"):
            feeds = layer_name in _upstream_layers(case, outputs[t.split("/", 1)[1]])
        else:
            feeds = True  # a non-finite regularization sum: any weight may feed it
        undetermined = undetermined or feeds
    if undetermined:
        return np.full(shape, np.nan), np.full(shape, -np.inf), np.full(shape, np.inf)
    return g, g.copy(), g.copy()


def _derivative(at: Callable[[float], tuple[float, dict[str, float]]], f0: float, terms0: dict[str, float],
                h: float) -> tuple[float, float, float, dict[str, float]]:
    """(central derivative, low, high, per-term central derivatives) of one entry.

    low == high but at a kink, where they are the two one-sided derivatives."""
    fp, tp = at(h)
    fm, tm = at(-h)
    central = (fp - fm) / (2 * h)
    per_term = {t: (tp[t] - tm[t]) / (2 * h) for t in terms0}
    if not all(math.isfinite(v) for v in (f0, fp, fm)):
        return central, central, central, per_term
    forward_d, backward_d = (fp - f0) / h, (f0 - fm) / h
    gap = abs(forward_d - backward_d)
    # Rounding noise of a one-sided difference: a few eps of what was summed (|f| and its
    # terms), divided by the step.
    size = max(abs(f0), abs(fp), abs(fm), sum(abs(v) for v in terms0.values() if math.isfinite(v)))
    noise = 16 * np.finfo(np.float64).eps * size
    # Smooth: the gap is h * |f''|, tiny next to the derivatives: 1e-7 relative is below any
    # gradient tolerance (harness.tolerances.GRADIENT_TOLERANCES: 1e-6 and up).
    if gap <= 1e-7 * max(abs(forward_d), abs(backward_d), 1e-3) + noise / h:
        return central, central, central, per_term
    # Curvature or a kink? Shrink the step: curvature's gap shrinks SHRINK-fold, a kink's stays.
    small = h / SHRINK
    fps, _ = at(small)
    fms, _ = at(-small)
    forward_s, backward_s = (fps - f0) / small, (f0 - fms) / small
    gap_small = abs(forward_s - backward_s)
    if gap_small > 0.5 * gap and gap_small > 10 * noise / small:  # did not shrink: a kink here
        # Each one-sided difference errs by step * f''/2 on its smooth side: extrapolate the two
        # steps to step 0 (Richardson), leaving O(step**2).
        right = (h * forward_s - small * forward_d) / (h - small)
        left = (h * backward_s - small * backward_d) / (h - small)
        return (right + left) / 2, min(right, left), max(right, left), per_term
    if gap_small * SHRINK < 0.5 * gap:
        # A kink between small and h away from the point: the smaller step sees the smooth side.
        central = (fps - fms) / (2 * small)
    return central, central, central, per_term
