"""Verdicts for what the optimizer sees: gradients, SGD updates, and runs under a distribution strategy.

Keys (the report shows each kind in its own section, harness/report/loading.py EXTRA_KINDS):

    gradient/loss                          the value the implementation differentiated, against
                                           the loss reference's number for it (differentiated_loss)
    gradient/<layer>/<weight>              d loss / d weight, against reference.gradients
    gradient/<layer>/<weight>/sgd_update   new - old weights after one SGD step at the
                                           implementation's learning rate, against
                                           -learning_rate x the reference gradient
    distribution/...                       the same for a distributed run (prefix "distribution/"),
                                           plus distribution/split, distribution/replica_losses
                                           and the reported losses distribution/<path>/<mode>

Each is judged under the expected profile, then under the sets of rules that explained this
run's train_on_batch loss (if any: those that fit, in the loss verdict's order), then by the
search of harness.compare.explanations (every smallest set of flips that fits, of the flips that
change the train_on_batch loss and those that change it once one of them is made); nothing fits
-> `unexplained` at stage "gradient" (or "distribution").
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from harness import reference
from harness.compare import (ReferenceCache, Verdict, _relative, explanations,
                             predicts_error, values_agree)
from harness.reference import gradients as gradients_ref
from harness.reference import rules as rules_mod
from harness.results import DistributionResult, GradientResult, ImplResult
from harness.spec import Case
from harness.tolerances import GRADIENT_TOLERANCES, TOLERANCES, gradient_floor


Check = Callable[[Any], tuple[bool, str, float | None, float | None, float | None]]


def _entry_ok(got: np.ndarray, ref: np.ndarray, low: np.ndarray, high: np.ndarray, tol: np.ndarray) -> np.ndarray:
    """Elementwise agreement: NaN with NaN, an infinity with the same one, finite values within
    tol of the reference or, at a kink, of the subgradient interval [low, high]."""
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(got) & np.isnan(ref)
        same = got == ref
        near = np.abs(got - ref) <= tol
        inside = (got >= low - tol) & (got <= high + tol)
    return both_nan | same | near | inside


def tensor_check(got: Any, ref: Any, key: str, rtol: float, scale: float, factor: float = 1.0,
                 extra: np.ndarray | float = 0.0) -> tuple[bool, str, float | None, float | None, float | None]:
    """Compare one tensor with factor x the reference gradient of `key`, within
    rtol x |factor| x scale + extra. Returns (ok, reason, value, expected, relative difference),
    the last three of the worst entry."""
    expected = factor * ref.gradients[key]
    low = np.minimum(factor * ref.low[key], factor * ref.high[key])
    high = np.maximum(factor * ref.low[key], factor * ref.high[key])
    if got is None:
        return False, f"{key}: no value reported", None, None, None
    got = np.asarray(got, dtype=np.float64)
    if got.shape != expected.shape:
        return False, f"{key}: shape {got.shape}, reference {expected.shape}", None, None, None
    tol = np.broadcast_to(rtol * abs(factor) * scale + extra, got.shape)
    ok = _entry_ok(got, expected, low, high, tol)
    if not got.size:
        return True, "", None, None, None
    with np.errstate(invalid="ignore"):
        err = np.where(ok, 0.0, np.abs(np.nan_to_num(got - expected, nan=np.inf)))
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
    value, exp = float(got[idx]), float(expected[idx])
    rel = _relative(value, exp, abs(factor) * scale)
    if bool(np.all(ok)):
        return True, "", value, exp, rel
    kinks = ref.kinks(key)
    return False, (f"{key}{list(idx)}: {value!r}, reference {exp!r} (scale {abs(factor) * scale:.3g}; "
                   f"{int(np.sum(~ok))} of {ok.size} entries differ"
                   + (f"; {kinks} at a kink" if kinks else "") + ")"), value, exp, rel


def term_attribution(ref: Any, key: str) -> list[str]:
    """The terms whose reference gradient on this tensor is not zero, largest first: which
    term's gradient a differing weight carries."""
    sizes = {t: float(np.max(np.abs(g[key]), initial=0.0)) for t, g in ref.term_gradients.items() if key in g}
    return [t for t, v in sorted(sizes.items(), key=lambda kv: -kv[1]) if v > 0]


class _Judge:
    """Judges checks under the expected profile, then the loss's explanations, then the search."""

    def __init__(self, profile_name: str, cache: ReferenceCache, reference_of: Callable[[Mapping[str, str]], Any],
                 first_try: list[Mapping[str, str]] | None, stage: str):
        self.profile_name, self.cache, self.reference_of, self.stage = profile_name, cache, reference_of, stage
        self.profile = rules_mod.profile(profile_name)
        self.expected = reference_of(self.profile)
        self.first_try = [dict(r) for r in first_try or [] if r]

    def __call__(self, check: Check) -> Verdict:
        ok, reason, value, exp, rel = check(self.expected)
        v = Verdict("agree", self.profile_name, value=value, expected=exp, rel_diff=rel)
        if ok:
            return v
        v.reason = reason

        def fits(candidate: Mapping[str, str]) -> bool:
            return check(self.reference_of(candidate))[0]

        found = [r for r in self.first_try if fits({**self.profile, **r})]
        if not found:
            found = explanations(self.cache, self.profile_name, self.profile, "train_on_batch", fits)
        if found:
            v.explain(found)
            v.explained_value = check(self.reference_of({**self.profile, **found[0]}))[3]
            return v
        v.verdict, v.stage = "unexplained", self.stage
        return v


def differentiated_loss(cache: ReferenceCache, profile: Mapping[str, str], replicas: int = 1) -> tuple[float, float]:
    """(value, magnitude) of the loss a train step differentiates under `profile`, as the loss
    reference computes it: on one device the train_on_batch breakdown that judges the
    train_on_batch path, under a strategy the sum of the replicas' losses that judges
    distribution/replica_losses (the same cache entries, so one number for both sections).

    Not GradientBreakdown.loss: that one is computed under forward.exact_values() (no rounding to
    the case dtype, for the central differences), so it misses float32 effects the loss reference
    models, e.g. a saturated sigmoid's 1 - p stored in float32."""
    b = (cache.compute(gradients_ref.train_step_profile(profile), "train_on_batch") if replicas == 1
         else cache.distributed(profile, replicas))
    return b.total, b.magnitude


def judge_gradients(case: Case, grad: GradientResult, profile_name: str, cache: ReferenceCache,
                    replicas: int = 1, prefix: str = "gradient",
                    first_try: list[Mapping[str, str]] | None = None) -> dict[str, Verdict]:
    """Verdicts for one GradientResult (keys in the module docstring)."""
    if grad.status == "unsupported":
        return {f"{prefix}/*": Verdict("unsupported", profile_name, reason=grad.reason)}
    judge = _Judge(profile_name, cache, lambda p: cache.gradient(p, replicas), first_try, "gradient")
    expected = judge.expected
    if grad.status == "error":
        reason = f"{grad.error_type}: {grad.error_message}"
        if predicts_error(expected, grad.error_message, grad.error_type):
            return {f"{prefix}/*": Verdict("agree", profile_name, reason=f"expected error: {reason}")}
        return {f"{prefix}/*": Verdict("error", profile_name, reason=reason)}

    # The finite terms' magnitude: a NaN total (a fully masked output) must not zero the floor of
    # the weights the finite terms move (case 0dbcb4dc138879d5: a saturated sigmoid's gradient,
    # 0.0 in the reference's central differences, -2.4e-15 in tf_keras, under a NaN total).
    floor = gradient_floor(max(expected.scale.values(), default=0.0), expected.finite_magnitude)

    def dtype_of(ref: Any) -> str:  # the candidate profile's: float64_compute may be flipped
        return reference.effective_dtype(case, ref.profile)

    def rtol(ref: Any) -> float:
        return GRADIENT_TOLERANCES[dtype_of(ref)].rtol

    def loss_check(ref: Any):
        loss, magnitude = differentiated_loss(cache, ref.profile, replicas)
        if grad.loss is None:
            return False, "no differentiated loss reported", None, loss, None
        return (values_agree(grad.loss, loss, magnitude, TOLERANCES[dtype_of(ref)]),
                f"differentiated loss {grad.loss!r}, reference {loss!r}", grad.loss, loss,
                _relative(grad.loss, loss, magnitude))

    out = {f"{prefix}/loss": judge(loss_check)}
    for key in expected.gradients:
        def grad_check(ref: Any, key: str = key):
            return tensor_check(grad.gradients.get(key), ref, key, rtol(ref), max(ref.scale[key], floor))

        v = judge(grad_check)
        if expected.undetermined(key):
            v.reason = ((v.reason + "; ") if v.reason else "") + (
                f"{expected.undetermined(key)} entries feed a non-finite loss term: not compared")
        if v.verdict != "agree":
            v.differing_terms = term_attribution(expected, key)
            if v.differing_terms:
                v.reason = f"{v.reason}; terms with a gradient on {key}: {', '.join(v.differing_terms)}"
        out[f"{prefix}/{key}"] = v

        if grad.update_error is not None:
            # the update step is train_on_batch (paths.sgd_step): its error may be one the reference predicts there
            error_type, _, error_message = grad.update_error.partition(": ")
            predicted = replicas == 1 and predicts_error(cache.compute(judge.profile, "train_on_batch"),
                                                          error_message, error_type)
            out[f"{prefix}/{key}/sgd_update"] = Verdict("agree" if predicted else "error", profile_name,
                                                        reason=("expected error: " if predicted else "")
                                                        + f"update step: {grad.update_error}")
        elif grad.learning_rate is not None and key in grad.updates:
            layer, weight = key.split("/", 1)
            w = np.abs(np.asarray(case.layer(layer).weights[weight], dtype=np.float64))

            def update_check(ref: Any, key: str = key, w: np.ndarray = w):
                # w - lr * g is rounded once in the dtype: besides lr x the gradient's own
                # error, the update carries up to 2 eps |w|.
                eps = float(np.finfo(dtype_of(ref)).eps)
                return tensor_check(grad.updates[key], ref, key, rtol(ref), max(ref.scale[key], floor),
                                    factor=-float(grad.learning_rate), extra=2 * eps * w)

            out[f"{prefix}/{key}/sgd_update"] = judge(update_check)
    extra = sorted(set(grad.gradients) - set(expected.gradients))
    if extra:
        out[f"{prefix}/*"] = Verdict("unexplained", profile_name, stage="gradient",
                                     reason=f"gradients for weights the case does not have: {extra}")
    return out


def judge_distribution(case: Case, dist: DistributionResult, profile_name: str, cache: ReferenceCache,
                       first_try: list[Mapping[str, str]] | None = None) -> dict[str, Verdict]:
    """distribution/split and distribution/replica_losses against reference.distributed."""
    judge = _Judge(profile_name, cache, lambda p: cache.distributed(p, dist.replicas), first_try, "distribution")
    dtype = reference.effective_dtype(case, judge.profile)

    def split_check(ref: Any):
        ok = dist.split is not None and list(dist.split) == list(ref.split)
        return ok, f"split {dist.split}, reference {ref.split}", None, None, None

    def losses_check(ref: Any):
        got = dist.replica_losses
        if got is None:
            return True, "", None, None, None  # not observable (one global program): nothing to judge
        if len(got) != len(ref.replica_losses):
            return False, f"{len(got)} replica losses, reference {len(ref.replica_losses)}", None, None, None
        mags = getattr(ref, "replica_magnitudes", None) or [abs(v) for v in ref.replica_losses]
        for i, (g, r, m) in enumerate(zip(got, ref.replica_losses, mags)):
            if not values_agree(g, r, m, TOLERANCES[dtype]):
                return False, f"replica {i}: {g!r}, reference {r!r}", g, r, _relative(g, r, m)
        return True, "", None, None, None

    out = {"distribution/split": judge(split_check)}
    if dist.replica_losses is not None:
        out["distribution/replica_losses"] = judge(losses_check)
    return out


def judge_extra(case: Case, result: ImplResult, profile_name: str, cache: ReferenceCache,
                path_verdicts: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """The gradient and distribution verdicts of one result (empty when it has neither)."""
    tob = [v for k, v in path_verdicts.items() if k.split("/", 1)[0] in ("train_on_batch", "distribution")
           and v.verdict == "explained" and v.rules]
    first_try = (tob[0].equivalent or [tob[0].rules]) if tob else None
    out: dict[str, Verdict] = {}
    if result.distribution is not None:
        replicas = result.distribution.replicas
        out.update(judge_distribution(case, result.distribution, profile_name, cache, first_try))
        if result.gradients is not None:
            out.update(judge_gradients(case, result.gradients, profile_name, cache, replicas,
                                       "distribution/gradient", first_try))
    elif result.gradients is not None:
        out.update(judge_gradients(case, result.gradients, profile_name, cache, 1, "gradient", first_try))
    return out

