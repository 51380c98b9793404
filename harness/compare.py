"""Verdicts: does an implementation's number match the reference, and if not, which rules explain it.

For each (implementation, path) the engine asks, in order:

1. Do the predictions match the reference forward pass? If not, the verdict is `unexplained`
   at stage "predictions": a loss difference is never a forward-pass difference in disguise.
2. Does the total, and every term the implementation exposes, match the reference under the
   profile its version is expected to follow? -> `agree`.
3. Is there a smallest set of rules which, switched to another alternative, makes every value
   match? -> `explained`, naming those rules (sets of size 1, then 2, then 3). Every set of that
   size that fits is kept (`Verdict.equivalent`), ranked by a prior (`explanations`); `rules`
   is the first.
4. Otherwise -> `unexplained` at stage "loss": a finding.

The search (`explanations`) is the one for loss values, errors (`_judge_error`), gradients, SGD
updates and distributed runs (harness.compare_gradients._Judge): its candidates are the single
flips that change this case's reference numbers (`relevant_flips`) and the flips that change them
only once one of those is made (`dependent_flips`), e.g. bce_probability_log once
probability_crossentropy no longer recovers logits. An error is explained only by a set whose
predicted error site (harness.reference.errors.ErrorSite) has the exception's type and its
innermost Keras frame (`predicts_error`). An exception whose innermost frame is the harness's own
code is a `harness-error` (`raised_by_harness`), never explained and never an `error` of Keras.

Tolerances live in harness/tolerances.py and nowhere else (each justified there). They scale with the
*magnitude* of what was summed (the sum of absolute values of the summands, reported by the
reference), not with the total, because terms can cancel.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from harness import reference
from harness.reference import gradients as gradients_mod
from harness.reference import rules as rules_mod
from harness.reference import semantics
from harness.results import KERAS_FILE, ImplResult, PathResult
from harness.spec import Case
from harness.tolerances import TOLERANCES, Tolerance

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

# An exception the harness's own code raised (an adapter calling Keras with a signature the
# release does not have, a bug of the engine): a failure of ours, not something Keras did.
HARNESS_ERROR = "harness-error"
VERDICTS = ("agree", "explained", "unexplained", "error", HARNESS_ERROR, "unsupported", "crashed", "timeout",
            "import-error")
# The verdict kinds that are failures (run exits 4; the report's headline counts them) rather than findings.
FAILURE_VERDICTS = ("error", HARNESS_ERROR, "crashed", "timeout", "import-error")

MAX_RULES_IN_EXPLANATION = 3
# Dependent flips are searched one level deep: B is a candidate when it changes the numbers under
# {**profile, A} for a relevant single flip A (and then only in a set that contains A). A flip
# that needs two others first is not searched: each level multiplies the reference computations
# by the number of relevant flips (one level costs |relevant| x |alternatives| computations per
# path, ~3 x 35 today), and no rule of the table needs two. The pool of candidate flips is capped
# (singles first, then dependents in declaration order) so that the size-3 search, which is
# cubic in the pool, stays affordable as versions add alternatives.
MAX_DEPENDENT_DEPTH = 1
MAX_CANDIDATE_FLIPS = 40


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
    # Every smallest set of flips that explains it, best first (equivalent[0] == rules); written
    # to results only when there are two or more, so a results file of one explanation is unchanged.
    equivalent: list[dict[str, str]] = field(default_factory=list)
    # rule -> the release nearest to the expected one that takes the explaining alternative
    # ("keras3 <3.14 (read in keras==3.13.2, keras-team/keras#22021)"), from the semantics table.
    precedents: dict[str, str] = field(default_factory=dict)

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
        if len(self.equivalent) >= 2:
            out["equivalent"] = [dict(e) for e in self.equivalent]
        if self.precedents:
            out["precedents"] = dict(self.precedents)
        return out

    def explain(self, found: list[dict[str, str]]) -> None:
        """Mark explained by the ranked sets `found` (explanations())."""
        self.verdict, self.rules, self.equivalent = "explained", dict(found[0]), [dict(e) for e in found]


def _relative(value: float, expected: float, magnitude: float) -> float:
    if math.isnan(value) or math.isnan(expected) or math.isinf(value) or math.isinf(expected):
        return 0.0 if values_agree(value, expected, magnitude, TOLERANCES["float64"]) else math.inf
    scale = max(abs(magnitude), abs(expected), 1e-300)
    return abs(value - expected) / scale


class ReferenceCache:
    """Reference results for one case, memoised by the choices they read.

    Every choice the reference reads goes through rules.choice (check_reads enforces it), so a
    result computed under profile P is the result under every profile that agrees with P on
    the rules that computation read (rules.tracing_reads records them; the branches taken, and
    so the reads, are the same). A look-up under a flipped profile that changes only rules the
    case never reads (a focal-loss rule on a case without focal loss) is a hit, not a new
    forward pass: the explanation search stays affordable as rules add alternatives. A result
    that carries its profile (Breakdown.profile: matches() picks the tolerance by it) is
    returned with the profile asked for."""

    def __init__(self, case: Case):
        self.case = case
        self._memo: dict[tuple, list[tuple[dict[str, str], Any]]] = {}  # (kind, arg) -> [(reads, result)]
        self._exact: dict[tuple, Any] = {}
        self._relevant: dict[tuple, list[tuple[str, str]]] = {}

    def _memoised(self, kind: str, arg: Any, profile: Mapping[str, str], compute: Any) -> Any:
        exact = (kind, arg, tuple(sorted(profile.items())))
        if exact in self._exact:
            return self._exact[exact]
        entries = self._memo.setdefault((kind, arg), [])
        for reads, result in entries:
            if all(profile.get(rule) == alt for rule, alt in reads.items()):
                break
        else:
            with rules_mod.tracing_reads() as read:
                result = compute(dict(profile))
            entries.append(({rule: profile[rule] for rule in read}, result))
        if hasattr(result, "profile") and result.profile != dict(profile):
            result = dataclasses.replace(result, profile=dict(profile))
        self._exact[exact] = result
        return result

    def gradient(self, profile: Mapping[str, str], replicas: int = 1) -> Any:
        """The reference gradient (harness.reference.gradients) under a profile."""
        return self._memoised("gradient", replicas, profile, lambda p: gradients_mod.compute(self.case, p, replicas))

    def distributed(self, profile: Mapping[str, str], replicas: int) -> Any:
        """The reference split and replica losses (harness.reference.distributed) under a profile."""
        from harness.reference import distributed

        return self._memoised("distributed", replicas, profile,
                              lambda p: distributed.differentiated(self.case, p, replicas))

    def compute(self, profile: Mapping[str, str], path: str) -> Any:
        return self._memoised("compute", path, profile, lambda p: reference.compute(self.case, p, path))

    def predictions(self, profile: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The reference forward pass under a profile (a rule such as merge_mask changes it)."""
        return self._memoised("predictions", None, profile, lambda p: reference.predictions(self.case, p))


def matches(result: PathResult, breakdown: Any, case: Case) -> tuple[bool, list[str]]:
    """Does a path's total and every term it reports match a reference breakdown?

    The tolerance is that of the dtype the implementation really computes in under the
    breakdown's profile (a float64 case on Keras 3 jax/torch/numpy carries float32 rounding:
    rule float64_compute)."""
    tol = TOLERANCES[reference.effective_dtype(case, breakdown.profile)]
    differing = []
    if result.total is None or not values_agree(result.total, breakdown.total, breakdown.magnitude, tol):
        differing.append("total")
    # In the reference's order of terms (the case's outputs, then regularization), not the order
    # the result lists them in: a results file stores them sorted, the worker sends them as Keras
    # logs them, and a verdict must read the same when judged again (harness judge).
    for name in breakdown.terms:
        if name not in result.terms:
            continue  # a term the reference does not model is shown, not judged
        mag = breakdown.term_magnitudes.get(name, abs(breakdown.terms[name]))
        if not values_agree(result.terms[name], breakdown.terms[name], mag, tol):
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
    """(rule, alternative) pairs that change this case's reference numbers (the total, a term,
    the predictions, or the predicted error) on this path, in declaration order."""
    key = (tuple(sorted(profile.items())), path)
    if key not in cache._relevant:
        cache._relevant[key] = _relevant_flips(cache, profile, path)
    return list(cache._relevant[key])


def _relevant_flips(cache: ReferenceCache, profile: Mapping[str, str], path: str) -> list[tuple[str, str]]:
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
            if not same_breakdown(base, other) or not _same_predictions(cache.predictions(profile),
                                                                         cache.predictions(flipped)):
                flips.append((name, alt))
    return flips


def dependent_flips(cache: ReferenceCache, profile: Mapping[str, str], path: str,
                    singles: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """Flips that change the numbers only once a single flip is made: B -> the singles A under
    which B is relevant (relevant_flips under {**profile, A}) while B alone is not. One level
    deep (MAX_DEPENDENT_DEPTH)."""
    single_set = set(singles)
    out: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for a in singles:
        for b in relevant_flips(cache, {**profile, a[0]: a[1]}, path):
            if b in single_set or b[0] == a[0] or b[1] == rules_mod.choice(profile, b[0]):
                continue
            out[b] = out.get(b, ()) + (a,)
    return dict(sorted(out.items(), key=lambda kv: _declaration_index(kv[0])))


def _declaration_index(flip: tuple[str, str]) -> tuple[int, int]:
    names = list(rules_mod.RULES)
    rule = rules_mod.RULES[flip[0]]
    return names.index(flip[0]), list(rule.alternatives).index(flip[1])


def _used_alternatives() -> set[tuple[str, str]]:
    return {(rule, alt) for p in rules_mod.PROFILES.values() for rule, alt in p.items()}


def fallback_explanation_key(profile_name: str, combo: Mapping[str, str]) -> tuple:
    """The prior until harness.reference.semantics.explanation_key exists: alternatives some
    profile of rules.PROFILES takes before those none takes (the refuted ones, e.g.
    output_log=weighted), then declaration order of RULES and their alternatives."""
    used = _used_alternatives()
    return (sum((r, a) not in used for r, a in combo.items()),
            tuple(sorted(_declaration_index((r, a)) for r, a in combo.items())))


def explanation_key(profile_name: str, combo: Mapping[str, str]) -> tuple:
    """The ranking of equivalent explanations: harness.reference.semantics.explanation_key when
    that module defines it (alternatives that neighbouring releases of the same lineage take
    first), else fallback_explanation_key."""
    key = getattr(semantics, "explanation_key", None)
    if key is None:
        return fallback_explanation_key(profile_name, combo)
    return tuple(key(profile_name, dict(combo)))


def explanations(cache: ReferenceCache, profile_name: str, profile: Mapping[str, str], path: str,
                 fits: Any, singles: list[tuple[str, str]] | None = None,
                 max_size: int = MAX_RULES_IN_EXPLANATION) -> list[dict[str, str]]:
    """Every smallest set of rule flips under which `fits(candidate profile)` holds, best first
    (explanation_key); [] when none of at most `max_size` flips fits.

    Candidates (`path`: the path whose reference numbers decide which flips matter): the single
    flips of relevant_flips, and, from size 2 on, the dependent flips of dependent_flips, each
    only in a set that contains a flip it depends on; two alternatives of one rule never go
    together. The pool is capped at MAX_CANDIDATE_FLIPS (singles first)."""
    singles = relevant_flips(cache, profile, path) if singles is None else list(singles)
    dependents: dict[tuple[str, str], tuple[tuple[str, str], ...]] | None = None
    for size in range(1, max_size + 1):
        if size == 2 and dependents is None:
            dependents = dependent_flips(cache, profile, path, singles)
        deps = dependents or {}
        pool = (singles + [b for b in deps if b not in singles])[:MAX_CANDIDATE_FLIPS]
        found = []
        for combo in itertools.combinations(pool, size):
            if len({rule for rule, _ in combo}) < size:
                continue  # two alternatives of one rule
            if any(f in deps and not set(deps[f]) & set(combo) for f in combo):
                continue  # a dependent flip without a flip it depends on
            if fits({**profile, **dict(combo)}):
                found.append(dict(combo))
        if found:
            return sorted(found, key=lambda c: explanation_key(profile_name, c))
    return []


def same_breakdown(a: Any, b: Any) -> bool:
    """The same numbers and the same predicted errors, bit for bit."""
    if not _same_float(a.total, b.total):
        return False
    if list(getattr(a, "notes", [])) != list(getattr(b, "notes", [])):
        return False  # another predicted error (or none): an error case's numbers are NaN either way
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
    profile = rules_mod.profile(profile_name)
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
    found = explanations(cache, profile_name, profile, result.path, lambda candidate: fits(candidate)[0])
    if found:
        base.explain(found)
        base.explained_value = cache.compute({**profile, **found[0]}, result.path).total
        return base
    base.verdict = "unexplained"
    base.stage, base.reason = ("predictions", preds_problem) if preds_problem else ("loss", None)
    return base


def predicts_error(breakdown: Any, error_message: str | None = None, error_type: str | None = None) -> bool:
    """The reference says the implementation raises here, and (given the exception) this error.

    Each predicted error is a note with an error site (harness.reference.errors.ErrorSite: the
    exception types over the backends, the Keras files whose code raises). Adapters end a
    message with the innermost frame ("[at keras/src/...py:LINE in fn]",
    harness/impls/paths.py error_message). The exception is a predicted one when, for some site:

    - `error_type` is one of the site's types (a KeyError in loss.py is not the broadcast
      ValueError predicted in loss.py);
    - the innermost frame is Keras code (keras/, tf_keras/) in one of the site's files, or code
      Keras calls (TensorFlow, JAX, torch, NumPy: FRAMEWORK_ROOTS) or Keras's traceback filter
      (FILTERED_FRAMES), which cannot tell the Keras line: then the Keras files the message names (a TensorFlow graph error lists the frames
      that defined the op) must meet the site's files, and a message naming none is accepted.

    An exception whose innermost frame is anywhere else (the harness itself, the standard
    library, another package) is never a predicted one. A message without a frame is judged by
    the files it names. A note without a site (none is written today) is matched by the Keras
    files its text cites, without a type.

    Nor can a TensorFlow graph error detected at a node of the gradient tape
    ("Detected at node gradient_tape/compile_loss/.../BroadcastGradientArgs") tell its file: the
    gradient of a failing forward op fails on the same shapes, TensorFlow reports whichever of
    the two its executor reaches first (observed to vary from process to process, with one
    inter-op thread too), and the gradient op's traceback names only train_step's tape. Matching
    its files made the same fit/compiled error `agree` in one worker and `error` in another; its
    type is still checked."""
    notes = getattr(breakdown, "notes", None)
    if not notes:
        return False
    if error_message is None:
        return True
    error_type = raised_type(error_type, error_message)
    frame = innermost_frame(error_message)
    if frame is not None and not frame.startswith(FRAMEWORK_ROOTS):
        return False  # raised by the harness or by code Keras does not call
    keras_frame = frame is not None and frame.startswith(KERAS_ROOTS) and not frame.startswith(FILTERED_FRAMES)
    if GRADIENT_NODE in error_message:
        seen: set[str] = set()
    elif keras_frame:
        seen = {frame}
    else:
        seen = set(KERAS_FILE.findall(error_message)) - set(FILTERED_FRAMES)
    for note in notes:
        site = getattr(note, "site", None)
        if site is None:
            cited = set(KERAS_FILE.findall(note))
        else:
            if error_type is not None and error_type not in site.types:
                continue
            if site.own_check and not keras_frame:
                continue  # Keras's own check raises in Keras: an exception from deeper down is another one
            cited = set(site.files)
        if not cited or not seen or cited & seen:
            return True
    return False


GRADIENT_NODE = "Detected at node gradient_tape/"
# TensorFlow's autograph re-raises an exception from traced code as a StagingError whose message
# ends with the original "\n\n    KeyError: 0" (observed: keras 3.15.1 under MirroredStrategy,
# a dict sample weight's KeyError in compile_utils.resolve_path, inside STRATEGY.run).
WRAPPING_TYPES = ("StagingError",)
_WRAPPED = re.compile(r"\n\s*([A-Za-z_][A-Za-z0-9_]*(?:Error|Exception)): ")


def raised_type(error_type: str | None, error_message: str) -> str | None:
    """The type of the exception Keras raised: `error_type`, or for a wrapper (WRAPPING_TYPES)
    the type its message ends with."""
    if error_type in WRAPPING_TYPES:
        found = _WRAPPED.findall(error_message)
        if found:
            return found[-1]
    return error_type
KERAS_ROOTS = ("keras/", "tf_keras/")
# Keras and the code it calls, as harness/impls/paths.py writes a frame's file (relative to
# site-packages): an exception raised anywhere else is not the implementation's.
FRAMEWORK_ROOTS = KERAS_ROOTS + ("tensorflow/", "tensorflow_core/", "jax/", "jaxlib/", "torch/", "numpy/",
                                 "optree/", "tree/", "ml_dtypes/", "h5py/", "scipy/")
# Keras 3's traceback filter re-raises with Keras's own frames removed
# (keras/src/utils/traceback_utils.py:filter_traceback `raise e.with_traceback(filtered_tb)`), so an
# innermost frame there cannot tell the Keras line either: the files the message names decide, as
# for a framework frame (observed: the float32 L1 factor's TypeError in compiled Keras 3.7 on TF).
FILTERED_FRAMES = ("keras/src/utils/traceback_utils.py",)
_FRAME = re.compile(r" \[at (\S+):\d+ in [^\]]*\]$")


def innermost_frame(error_message: str) -> str | None:
    """The file of the innermost frame an adapter appended ("[at FILE:LINE in fn]"), or None."""
    m = _FRAME.search(error_message.rstrip())
    return m.group(1) if m else None


# The harness's own files as harness/impls/paths.py error_message writes a frame: relative to
# site-packages ("harness/impls/keras3.py") or, installed editable, absolute
# ("/work/main/harness/impls/keras3.py").
_HARNESS_FILE = re.compile(r"(?:^|/)harness/(?:[\w.-]+/)*[\w.-]+\.py$")


def raised_by_harness(error_message: str | None) -> bool:
    """The innermost frame of the exception is the harness's own code (harness/...): e.g. the
    TypeError of an adapter calling a Keras function with arguments the release does not take
    (the callee never ran, so the caller's line is the innermost frame). The one test of whether
    an exception is a `harness-error`; predicts_error refuses such frames as well."""
    frame = innermost_frame(error_message or "")
    return frame is not None and _HARNESS_FILE.search(frame) is not None


def blame_harness(verdicts: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """The verdicts with every `error` whose exception the harness raised (`raised_by_harness` on
    its reason, which ends with the error message and so with its innermost frame) made a
    `harness-error`: the verdicts built outside `_judge_error` (gradients, SGD updates,
    distribution: harness.compare_gradients) are judged by the same test as the loss paths."""
    out = {}
    for key, v in verdicts.items():
        if v.verdict == "error" and raised_by_harness(v.reason):
            v = dataclasses.replace(v, verdict=HARNESS_ERROR)
        out[key] = v
    return out


def _judge_error(result: PathResult, profile_name: str, profile: Mapping[str, str], expected: Any,
                 cache: ReferenceCache) -> Verdict:
    """An exception the harness raised is a `harness-error` (no profile can explain it). Else it
    is `agree` when the expected profile predicts it, `explained` when a set of rule flips does,
    and stays `error` (shown as a finding) when nothing does."""
    reason = f"{result.error_type}: {result.error_message}"
    if raised_by_harness(result.error_message):
        return Verdict(HARNESS_ERROR, profile_name, reason=reason)
    if predicts_error(expected, result.error_message, result.error_type):
        return Verdict("agree", profile_name, reason=f"expected error: {reason}")
    found = explanations(cache, profile_name, profile, result.path,
                         lambda candidate: predicts_error(cache.compute(candidate, result.path),
                                                          result.error_message, result.error_type))
    if found:
        v = Verdict("explained", profile_name, reason=reason)
        v.explain(found)
        return v
    return Verdict("error", profile_name, reason=reason)


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
        if not same_breakdown(a, b):
            out.append(name)
    return out
