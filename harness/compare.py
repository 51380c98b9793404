"""Verdicts: does an implementation's number match the reference, and if not, which rules explain it.

For each (implementation, path) the engine asks, in order:

1. Do the predictions match the reference forward pass? If not, the verdict is `unexplained`
   at stage "predictions": a loss difference is never a forward-pass difference in disguise.
2. Does the total, and every term the implementation exposes, match the reference under the
   profile its version is expected to follow? -> `agree`.
3. Is there a smallest set of rules which, switched to another alternative, makes every value
   match? -> `explained`, naming those rules (sets of size 1, then 2, then 3).
4. Otherwise -> `unexplained` at stage "loss": a finding.

Tolerances live here and nowhere else (TOLERANCES below, each justified). They scale with the
*magnitude* of what was summed (the sum of absolute values of the summands, reported by the
reference), not with the total, because terms can cancel.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from harness import reference
from harness.reference import gradients as gradients_mod
from harness.reference import rules as rules_mod
from harness.results import KERAS_FILE, ImplResult, PathResult
from harness.spec import Case

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

VERDICTS = ("agree", "explained", "unexplained", "error", "unsupported", "crashed", "timeout", "import-error")
# The verdict kinds that are failures (run exits 4; the report's headline counts them) rather than findings.
FAILURE_VERDICTS = ("error", "crashed", "timeout", "import-error")

MAX_RULES_IN_EXPLANATION = 3


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


def values_agree(value: float, expected: float, magnitude: float, tol: Tolerance, noise: float = 0.0) -> bool:
    """NaN agrees with NaN; an infinity agrees with the same infinity; finite values within
    tol.rtol * magnitude + tol.atol + noise (noise: a measured float32 rounding estimate)."""
    if math.isnan(value) or math.isnan(expected):
        return math.isnan(value) and math.isnan(expected)
    if math.isinf(value) or math.isinf(expected):
        return value == expected
    return abs(value - expected) <= tol.rtol * abs(magnitude) + tol.atol + noise


@dataclass
class Verdict:
    verdict: str
    profile: str = ""  # the expected profile
    rules: dict[str, str] = field(default_factory=dict)  # rule -> alternative that explains it
    stage: str | None = None  # "predictions" | "loss" for unexplained
    value: float | None = None
    expected: float | None = None  # the reference total under the expected profile
    explained_value: float | None = None  # the reference total under the explaining profile
    differing_terms: list[str] = field(default_factory=list)
    rel_diff: float | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        from harness.results import encode_float

        out: dict[str, Any] = {"verdict": self.verdict, "profile": self.profile}
        if self.rules:
            out["rules"] = dict(self.rules)
        for key in ("stage", "reason"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("value", "expected", "explained_value", "rel_diff"):
            v = getattr(self, key)
            if v is not None:
                out[key] = encode_float(v)
        if self.differing_terms:
            out["differing_terms"] = list(self.differing_terms)
        return out


def _relative(value: float, expected: float, magnitude: float) -> float:
    if math.isnan(value) or math.isnan(expected) or math.isinf(value) or math.isinf(expected):
        return 0.0 if values_agree(value, expected, magnitude, TOLERANCES["float64"]) else math.inf
    scale = max(abs(magnitude), abs(expected), 1e-300)
    return abs(value - expected) / scale


class ReferenceCache:
    """Reference breakdowns for one case, memoised by (profile items, path)."""

    def __init__(self, case: Case):
        self.case = case
        self._cache: dict[tuple, Any] = {}
        self._predictions: dict[tuple, dict[str, np.ndarray]] = {}
        self._gradients: dict[tuple, Any] = {}
        self._distributed: dict[tuple, Any] = {}

    def gradient(self, profile: Mapping[str, str], replicas: int = 1) -> Any:
        """The reference gradient (harness.reference.gradients) under a profile."""
        key = (tuple(sorted(profile.items())), replicas)
        if key not in self._gradients:
            self._gradients[key] = gradients_mod.compute(self.case, dict(profile), replicas)
        return self._gradients[key]

    def distributed(self, profile: Mapping[str, str], replicas: int) -> Any:
        """The reference split and replica losses (harness.reference.distributed) under a profile."""
        key = (tuple(sorted(profile.items())), replicas)
        if key not in self._distributed:
            from harness.reference import distributed

            self._distributed[key] = distributed.differentiated(self.case, dict(profile), replicas)
        return self._distributed[key]

    def compute(self, profile: Mapping[str, str], path: str) -> Any:
        key = (tuple(sorted(profile.items())), path)
        if key not in self._cache:
            self._cache[key] = reference.compute(self.case, dict(profile), path)
        return self._cache[key]

    def predictions(self, profile: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The reference forward pass under a profile (a rule such as merge_mask changes it)."""
        key = tuple(sorted(profile.items()))
        if key not in self._predictions:
            self._predictions[key] = reference.predictions(self.case, dict(profile))
        return self._predictions[key]


def matches(result: PathResult, breakdown: Any, case: Case) -> tuple[bool, list[str]]:
    """Does a path's total and every term it reports match a reference breakdown?

    The tolerance is that of the dtype the implementation really computes in under the
    breakdown's profile (a float64 case on Keras 3 jax/torch/numpy carries float32 rounding:
    rule float64_compute)."""
    tol = TOLERANCES[reference.effective_dtype(case, breakdown.profile)]
    differing = []
    if result.total is None or not values_agree(result.total, breakdown.total, breakdown.magnitude, tol):
        differing.append("total")
    for name, value in result.terms.items():
        if name not in breakdown.terms:
            continue  # a term the reference does not model is shown, not judged
        mag = breakdown.term_magnitudes.get(name, abs(breakdown.terms[name]))
        if not values_agree(value, breakdown.terms[name], mag, tol):
            differing.append(name)
    return (not differing), differing


def predictions_match(case: Case, predictions: Mapping[str, Any] | None, cache: ReferenceCache,
                      profile: Mapping[str, str]) -> tuple[bool, str]:
    if predictions is None:
        return True, "no predictions reported"
    tol = TOLERANCES[reference.effective_dtype(case, profile)]
    expected = cache.predictions(profile)
    for name, exp in expected.items():
        if name not in predictions:
            return False, f"output {name!r} missing from predictions"
        got = np.asarray(predictions[name], dtype=np.float64)
        if got.shape != exp.shape:
            return False, f"output {name!r}: shape {got.shape}, reference {exp.shape}"
        both_nan = np.isnan(got) & np.isnan(exp)
        close = np.abs(got - exp) <= tol.pred_rtol * np.abs(exp) + tol.pred_atol
        bad = ~(both_nan | close | (got == exp))
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return False, f"output {name!r}{list(idx)}: {got[idx]!r}, reference {exp[idx]!r}"
    return True, ""


def relevant_flips(cache: ReferenceCache, profile: Mapping[str, str], path: str) -> list[tuple[str, str]]:
    """(rule, alternative) pairs that change this case's reference numbers on this path."""
    base = cache.compute(profile, path)
    flips = []
    single_device = rules_mod.chooses(profile, "replica_split", "single_device")
    for name, rule in rules_mod.RULES.items():
        if single_device and name.startswith("replica_"):
            continue  # a rule of distribution strategies (reference/distributed.py) cannot explain one device
        for alt in rule.alternatives:
            if alt == rules_mod.choice(profile, name):
                continue
            flipped = {**profile, name: alt}
            other = cache.compute(flipped, path)
            if not _same_breakdown(base, other) or not _same_predictions(cache.predictions(profile),
                                                                         cache.predictions(flipped)):
                flips.append((name, alt))
    return flips


def _same_breakdown(a: Any, b: Any) -> bool:
    if not _same_float(a.total, b.total):
        return False
    keys = set(a.terms) | set(b.terms)
    return all(_same_float(a.terms.get(k, math.nan), b.terms.get(k, math.nan)) for k in keys)


def _same_predictions(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)


def _same_float(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or x == y


def judge_path(case: Case, result: PathResult, profile_name: str, cache: ReferenceCache,
               predictions: Mapping[str, Any] | None = None) -> Verdict:
    """The verdict for one path: predictions first, then the total and every reported term,
    under the expected profile, then under the smallest set of rule flips that makes both match."""
    if result.status == "unsupported":
        return Verdict("unsupported", profile_name, reason=result.reason)
    profile = rules_mod.PROFILES[profile_name]
    expected = cache.compute(profile, result.path)
    if result.status == "error":
        return _judge_error(result, profile_name, profile, expected, cache)
    base = Verdict("agree", profile_name, value=result.total, expected=expected.total)
    if result.total is not None:
        base.rel_diff = _relative(result.total, expected.total, expected.magnitude)

    def fits(candidate: Mapping[str, str]) -> tuple[bool, list[str], str]:
        preds_ok, why = predictions_match(case, predictions, cache, candidate)
        ok, differing = matches(result, cache.compute(candidate, result.path), case)
        return preds_ok and ok, differing, ("" if preds_ok else why)

    ok, differing, preds_problem = fits(profile)
    if ok:
        return base
    base.differing_terms = differing
    flips = relevant_flips(cache, profile, result.path)
    for size in range(1, MAX_RULES_IN_EXPLANATION + 1):
        for combo in itertools.combinations(flips, size):
            if len({rule for rule, _ in combo}) < size:
                continue  # two alternatives of one rule
            candidate = {**profile, **dict(combo)}
            if fits(candidate)[0]:
                base.verdict = "explained"
                base.rules = dict(combo)
                base.explained_value = cache.compute(candidate, result.path).total
                return base
    base.verdict = "unexplained"
    base.stage, base.reason = ("predictions", preds_problem) if preds_problem else ("loss", None)
    return base


def predicts_error(breakdown: Any, error_message: str | None = None) -> bool:
    """The reference says the implementation raises here (a note such as a broadcast error).

    With `error_message`, the error must also be the one predicted, as far as its location
    tells: each note cites the Keras source that raises (e.g. keras/src/losses/loss.py), and
    adapters end a message with the innermost frame ("[at keras/src/...py:LINE in fn]"). When
    both name Keras files and none is shared, it is another error (e.g. a KeyError in
    compile_utils where a broadcast error in loss.py was predicted). A frame outside Keras (an
    op inside TensorFlow or JAX) cannot tell, and is accepted.

    Nor can a TensorFlow graph error detected at a node of the gradient tape
    ("Detected at node gradient_tape/compile_loss/.../BroadcastGradientArgs"): the gradient of
    a failing forward op fails on the same shapes, TensorFlow reports whichever of the two its
    executor reaches first (observed to vary from process to process, with one inter-op thread
    too), and the gradient op's traceback names only train_step's tape. Matching its files
    made the same fit/compiled error `agree` in one worker and `error` in another."""
    notes = getattr(breakdown, "notes", None)
    if not notes:
        return False
    if error_message is None:
        return True
    cited = set(KERAS_FILE.findall(" ".join(notes)))
    seen = set() if GRADIENT_NODE in error_message else set(KERAS_FILE.findall(error_message))
    return not cited or not seen or bool(cited & seen)


GRADIENT_NODE = "Detected at node gradient_tape/"


def _judge_error(result: PathResult, profile_name: str, profile: Mapping[str, str], expected: Any,
                 cache: ReferenceCache) -> Verdict:
    """An exception is `agree` when the expected profile predicts it, `explained` when a set of
    rule flips does, and stays `error` (shown as a finding) when nothing does."""
    reason = f"{result.error_type}: {result.error_message}"
    if predicts_error(expected, result.error_message):
        return Verdict("agree", profile_name, reason=f"expected error: {reason}")
    flips = relevant_flips(cache, profile, result.path)
    for size in range(1, MAX_RULES_IN_EXPLANATION + 1):
        for combo in itertools.combinations(flips, size):
            if len({rule for rule, _ in combo}) < size:
                continue
            if predicts_error(cache.compute({**profile, **dict(combo)}, result.path), result.error_message):
                return Verdict("explained", profile_name, rules=dict(combo), reason=reason)
    return Verdict("error", profile_name, reason=reason)


def judge(case: Case, result: ImplResult, versions: Mapping[str, str], profile_name: str | None = None,
          cache: ReferenceCache | None = None) -> dict[str, Verdict]:
    """Verdict for every path of one implementation's result on one case, keyed by path/mode.

    `profile_name` overrides the expected profile (strict mode: judge everything against one
    fixed profile, e.g. "tf_keras-2.21", so a migrating user sees every difference)."""
    cache = cache or ReferenceCache(case)
    if result.status != "ok":
        return {"*": Verdict(result.status, profile_name or "", reason=result.message)}
    profile_name = profile_name or rules_mod.expected_profile(result.impl, dict(versions))
    from harness import compare_gradients  # it builds on this module

    if result.distribution is not None:  # a distributed run: every verdict in its own section
        verdicts = compare_gradients.judge_distributed_paths(case, result, profile_name, cache)
    else:
        verdicts = {p.key: judge_path(case, p, profile_name, cache, result.predictions) for p in result.paths}
    verdicts.update(compare_gradients.judge_extra(case, result, profile_name, cache, verdicts))
    return verdicts


def separating_rules(case: Case, profile_a: Mapping[str, str], profile_b: Mapping[str, str],
                     path: str = "test_on_batch", cache: ReferenceCache | None = None) -> list[str]:
    """Rules on which two profiles differ and which change this case's numbers."""
    cache = cache or ReferenceCache(case)
    a = cache.compute(profile_a, path)
    out = []
    for name in rules_mod.RULES:
        if rules_mod.choice(profile_a, name) == rules_mod.choice(profile_b, name):
            continue
        b = cache.compute({**profile_a, name: profile_b[name]}, path)
        if not _same_breakdown(a, b):
            out.append(name)
    return out
