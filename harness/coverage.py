"""Rule coverage: which rule changes a set of cases can tell apart, measured with the reference alone.

An `agree` proves something about a rule only if the rule's alternatives give different numbers
on that case. `coverage(cases, profile_name)` asks, for every *rule change* of a profile:

- single flips: (rule, alternative) for every alternative other than the profile's (the replica_*
  rules only under a distributed profile, as compare.relevant_flips skips them on one device);
- dependent pairs: {A, B} where B changes a case's reference numbers only once A is made
  (compare.dependent_flips on some case and path of the set; one level deep, as the search).

A change is *distinguished* by a case when, on some loss path (compute_loss, test_on_batch,
train_on_batch, evaluate, fit), the reference under the changed profile differs from the
profile's beyond the engine's tolerance on some value the engine judges:

    total                  the path's total loss
    output/<name>, regularization   a per-term value (the per-output log as the profile logs it)
    log_entries            which per-output entries the logs hold (compare_observations)
    error                  the predicted error (Breakdown.notes: an error vs none, or another site)
    predictions/<name>     the forward pass (rule merge_mask, float64_compute)
    gradient/<layer>/<w>   d total / d weight (reference.gradients; train_on_batch)
    gradient/loss          under a distribution strategy: the loss the replicas differentiate
                           (reference.distributed.differentiated), which no path reports

Tolerances are the engine's (harness.tolerances), for the
looser of the two profiles' effective dtypes, scaled by the larger of the two magnitudes, so a
difference counted here is one the engine would see whichever of the two profiles is expected.
NaN against a number counts as a difference. A pair is distinguished when the changed profile
differs so from the profile, from the profile with A alone and from the profile with B alone
(the case tells the combination from each of its parts).

Cost: every reference number is memoised per case (compare.ReferenceCache); a change is tested
only until a case distinguishes it, only where it changes the numbers at all
(compare.relevant_flips, bit-exact, is the pre-filter), and gradients only for changes that
alter the train_on_batch numbers bit-exactly yet stay within tolerance on every value (a rule
that leaves the loss at a point bit-identical is taken to leave its gradient alone too).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from harness import compare, compare_observations, reference
from harness.reference import rules as rules_mod
from harness.results import PATHS
from harness.spec import Case
from harness.tolerances import GRADIENT_TOLERANCES, TOLERANCES, Tolerance, gradient_floor

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

LOSS_PATHS = PATHS  # every path the adapters run (harness.results)
GRADIENT_PATH = "train_on_batch"

Flip = tuple[str, str]  # (rule, alternative)


@dataclass(frozen=True)
class Decision:
    """Where a change was first seen: the case, the path, the value, and the two numbers."""
    case_id: str
    path: str
    value: str  # "total", "output/<name>", "regularization", "error", "predictions/<name>", "gradient/<key>"
    expected: float | None = None  # the profile's number (None for an error or a tensor)
    changed: float | None = None  # the changed profile's number

    def to_json(self) -> dict[str, Any]:
        from harness.results import encode_float

        out: dict[str, Any] = {"case": self.case_id, "path": self.path, "value": self.value}
        if self.expected is not None:
            out["expected"] = encode_float(self.expected)
        if self.changed is not None:
            out["changed"] = encode_float(self.changed)
        return out

    def describe(self) -> str:
        nums = ""
        if self.expected is not None and self.changed is not None:
            nums = f" ({self.expected:.6g} -> {self.changed:.6g})"
        return f"case {self.case_id} on {self.path}/{self.value}{nums}"


@dataclass
class Coverage:
    profile: str
    cases: int
    singles: list[Flip]  # every single change, declaration order
    pairs: list[tuple[Flip, Flip]]  # every dependent pair found on these cases, (enabler, dependent)
    distinguished: dict[tuple[Flip, ...], Decision] = field(default_factory=dict)
    seconds: float = 0.0
    # The single changes that alter some reference number of some case bit-exactly (those the
    # cases put to the test at all; the others leave every number of these cases as it was).
    changed: set[tuple[Flip, ...]] = field(default_factory=set)

    def decision(self, change: tuple[Flip, ...]) -> Decision | None:
        return self.distinguished.get(change)

    @property
    def undistinguished(self) -> list[tuple[Flip, ...]]:
        return [c for c in self.changes() if c not in self.distinguished]

    def changes(self) -> list[tuple[Flip, ...]]:
        return [(f,) for f in self.singles] + [tuple(p) for p in self.pairs]

    def count(self, kind: str = "single") -> tuple[int, int]:
        """(distinguished, total) of the single changes ("single") or the dependent pairs ("pair")."""
        changes = [(f,) for f in self.singles] if kind == "single" else [tuple(p) for p in self.pairs]
        return sum(c in self.distinguished for c in changes), len(changes)

    def to_json(self) -> dict[str, Any]:
        def entry(change: tuple[Flip, ...]) -> dict[str, Any]:
            d = self.distinguished.get(change)
            return {"change": {r: a for r, a in change}, "label": label(change),
                    "distinguished": d is not None, **({"by": d.to_json()} if d else {})}

        s, n = self.count("single")
        ps, pn = self.count("pair")
        return {"profile": self.profile, "cases": self.cases, "seconds": round(self.seconds, 3),
                "singles": {"distinguished": s, "total": n}, "pairs": {"distinguished": ps, "total": pn},
                "changes": [entry(c) for c in self.changes()]}


def label(change: Sequence[Flip]) -> str:
    return " + ".join(f"{r}={a}" for r, a in change)


def single_flips(profile: Mapping[str, str]) -> list[Flip]:
    """Every (rule, alternative) other than the profile's, declaration order; replica_* rules only
    when the profile is distributed (compare.relevant_flips skips them on one device)."""
    single_device = rules_mod.chooses(profile, "replica_split", "single_device")
    return [(name, alt) for name, rule in rules_mod.RULES.items()
            if not (single_device and name.startswith("replica_"))
            for alt in rule.alternatives if alt != rules_mod.choice(profile, name)]


# ---------------------------------------------------------------------------------------
# Comparing two references of one case
# ---------------------------------------------------------------------------------------


def tolerance(case: Case, p: Mapping[str, str], q: Mapping[str, str]) -> Tolerance:
    dtypes = {reference.effective_dtype(case, p), reference.effective_dtype(case, q)}
    return TOLERANCES["float32" if "float32" in dtypes else "float64"]


def _sites(notes: Iterable[str]) -> list[Any]:
    out = []
    for note in notes:
        site = getattr(note, "site", None)
        out.append((site.types, site.files) if site is not None else str(note))
    return sorted(set(out), key=repr)


def value_differs(cache: compare.ReferenceCache, p: Mapping[str, str], q: Mapping[str, str],
                   path: str) -> Decision | None:
    """The first value on `path` where q's reference differs from p's beyond tolerance, or None."""
    case = cache.case
    a, b = cache.compute(p, path), cache.compute(q, path)
    tol = tolerance(case, p, q)
    if bool(a.notes) != bool(b.notes) or (a.notes and _sites(a.notes) != _sites(b.notes)):
        return Decision(case.id, path, "error")
    if not compare.values_agree(b.total, a.total, max(_mag(a.magnitude), _mag(b.magnitude)), tol):
        return Decision(case.id, path, "total", a.total, b.total)
    for name in list(a.terms) + [t for t in b.terms if t not in a.terms]:
        x, y = a.terms.get(name, math.nan), b.terms.get(name, math.nan)
        mag = max(_mag(a.term_magnitudes.get(name, abs(x))), _mag(b.term_magnitudes.get(name, abs(y))))
        if not compare.values_agree(y, x, mag, tol):
            return Decision(case.id, path, name, x, y)
    if path in compare_observations.LOG_PATHS and a.log_entries != b.log_entries:
        return Decision(case.id, path, "log_entries")
    pa, pb = cache.predictions(p), cache.predictions(q)
    for name, x in pa.items():
        y = pb.get(name)
        if y is None or y.shape != x.shape:
            return Decision(case.id, path, f"predictions/{name}")
        with np.errstate(invalid="ignore"):
            close = np.abs(y - x) <= tol.pred_rtol * np.maximum(np.abs(x), np.abs(y)) + tol.pred_atol
        if not np.all(close | (np.isnan(x) & np.isnan(y)) | (x == y)):
            return Decision(case.id, path, f"predictions/{name}")
    return None


def _mag(m: float) -> float:
    return abs(m) if math.isfinite(m) else 0.0


def _replicas(profile: Mapping[str, str]) -> int:
    if rules_mod.chooses(profile, "replica_split", "single_device"):
        return 1
    from harness.reference import distributed

    return distributed.REPLICAS


def _differentiated_differs(cache: compare.ReferenceCache, p: Mapping[str, str], q: Mapping[str, str],
                            replicas: int) -> Decision | None:
    """The loss the replicas differentiate (reference.distributed.differentiated), beyond tolerance."""
    a, b = cache.distributed(p, replicas), cache.distributed(q, replicas)
    if bool(a.notes) != bool(b.notes):
        return Decision(cache.case.id, GRADIENT_PATH, "gradient/error")
    if a.notes:
        return None
    tol = tolerance(cache.case, p, q)
    if not compare.values_agree(b.total, a.total, max(_mag(a.magnitude), _mag(b.magnitude)), tol):
        return Decision(cache.case.id, GRADIENT_PATH, "gradient/loss", a.total, b.total)
    return None


def _same_differentiated(cache: compare.ReferenceCache, p: Mapping[str, str], q: Mapping[str, str],
                         replicas: int) -> bool:
    a, b = cache.distributed(p, replicas), cache.distributed(q, replicas)
    return (a.total == b.total or (math.isnan(a.total) and math.isnan(b.total))) and list(a.notes) == list(b.notes)


def _gradient_differs(cache: compare.ReferenceCache, p: Mapping[str, str], q: Mapping[str, str],
                      replicas: int) -> Decision | None:
    from harness.compare_gradients import tensor_check

    case = cache.case
    a, b = cache.gradient(p, replicas), cache.gradient(q, replicas)
    if a.notes or b.notes:
        return None  # the implementation raises: no gradient (the error is judged on the loss)
    dtypes = {reference.effective_dtype(case, p), reference.effective_dtype(case, q)}
    rtol = GRADIENT_TOLERANCES["float32" if "float32" in dtypes else "float64"].rtol
    floor = gradient_floor(max(max(a.scale.values(), default=0.0), max(b.scale.values(), default=0.0)), a.finite_magnitude)
    for key in a.gradients:
        scale = max(a.scale[key], b.scale.get(key, 0.0), floor)
        ok, *_ = tensor_check(b.gradients.get(key), a, key, rtol, scale)
        if not ok:
            return Decision(case.id, GRADIENT_PATH, f"gradient/{key}")
    return None


# ---------------------------------------------------------------------------------------
# Coverage
# ---------------------------------------------------------------------------------------


def coverage(cases: Sequence[Case], profile_name: str, paths: Sequence[str] = LOSS_PATHS, gradients: bool = True,
             pairs: bool = True, progress: Callable[[int, int, float], None] | None = None) -> Coverage:
    """Which rule changes of `profile_name` the cases distinguish (module docstring).

    `progress(i, n, seconds)` is called after each case. A change distinguished by an earlier
    case is not tested again: the decision names the first case (in the order given)."""
    start = time.perf_counter()
    profile = rules_mod.profile(profile_name)
    replicas = _replicas(profile)
    singles = single_flips(profile)
    single_set = set(singles)
    result = Coverage(profile_name, len(cases), singles, [])
    pair_keys: dict[tuple[Flip, Flip], None] = {}  # insertion-ordered set
    done = result.distinguished

    for i, case in enumerate(cases):
        cache = compare.ReferenceCache(case)
        grad_candidates: dict[tuple[Flip, ...], dict[str, str]] = {}
        # single changes
        for path in paths:
            relevant = compare.relevant_flips(cache, profile, path)
            if path in compare_observations.LOG_PATHS:  # rules of what a path logs, not of its numbers
                relevant += [f for f in singles if f[0] in compare_observations.RULES and f not in relevant
                             and value_differs(cache, profile, {**profile, f[0]: f[1]}, path)]
            result.changed.update((flip,) for flip in relevant)
            for flip in relevant:
                change = (flip,)
                if change in done or flip not in single_set:
                    continue
                flipped = {**profile, flip[0]: flip[1]}
                d = value_differs(cache, profile, flipped, path)
                if d is not None:
                    done[change] = d
                    grad_candidates.pop(change, None)
                elif path == GRADIENT_PATH:
                    grad_candidates[change] = flipped
            # dependent pairs found on this path
            if pairs:
                for b, enablers in compare.dependent_flips(cache, profile, path, relevant).items():
                    for a in enablers:
                        if a not in single_set or b not in single_set:
                            continue
                        key = (a, b)
                        if key not in pair_keys and (b, a) not in pair_keys:
                            pair_keys[key] = None
        if pairs:
            for a, b in pair_keys:
                change = (a, b)
                if change in done:
                    continue
                both = {**profile, a[0]: a[1], b[0]: b[1]}
                parts = [profile, {**profile, a[0]: a[1]}, {**profile, b[0]: b[1]}]
                for path in paths:
                    d = value_differs(cache, parts[1], both, path)
                    if d is not None and all(value_differs(cache, q, both, path) for q in (parts[0], parts[2])):
                        done[change] = d
                        grad_candidates.pop(change, None)
                        break
                else:
                    if GRADIENT_PATH in paths and not compare.same_breakdown(
                            cache.compute(parts[1], GRADIENT_PATH), cache.compute(both, GRADIENT_PATH)):
                        grad_candidates[change] = both
        if replicas > 1 and GRADIENT_PATH in paths:
            # Under a strategy the replicas differentiate a loss no path reports (replica_loss_scaling,
            # replica_regularization_scaling): compare it, and let its changes reach the gradients.
            for flip in singles:
                change = (flip,)
                if change in done or change in grad_candidates:
                    continue
                flipped = {**profile, flip[0]: flip[1]}
                d = _differentiated_differs(cache, profile, flipped, replicas)
                if d is not None:
                    done[change] = d
                    result.changed.add(change)
                elif not _same_differentiated(cache, profile, flipped, replicas):
                    grad_candidates[change] = flipped
                    result.changed.add(change)
        if gradients:
            for change, changed in grad_candidates.items():
                if change in done:
                    continue
                bases = [profile] if len(change) == 1 else [
                    {**profile, change[0][0]: change[0][1]}, profile, {**profile, change[1][0]: change[1][1]}]
                d = _gradient_differs(cache, bases[0], changed, replicas)
                if d is not None and all(_gradient_differs(cache, q, changed, replicas) for q in bases[1:]):
                    done[change] = d
        if progress is not None:
            progress(i, len(cases), time.perf_counter() - start)
    result.pairs = list(pair_keys)
    result.seconds = time.perf_counter() - start
    return result
