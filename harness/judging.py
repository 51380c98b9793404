"""Verdicts as a pure function of an observation and the semantics: judging a stored result.

A result record holds what an implementation returned (values, terms, errors, gradients,
weights_moved) and the verdicts `run` derived from it. `judge_record` derives them again from
the record, its case and the versions of the worker that produced it, with the very call
`run` makes (`judge_safely`, used by harness.driver): the same inputs give the same verdicts.
`judge` is every verdict of one result (loss paths, gradients, distribution, observations).

Inputs of a verdict, as `run` has them:
- the Case: the file's "case" record of that case id;
- the versions: those of the last "header" record of the same implementation before the result
  in the same file (the worker that answered writes its header before its first result);
- the strict profile (`run --strict`): the result record's "strict" field, else its header's.

Nothing here imports a framework (TensorFlow, Keras, JAX, torch): numpy and the reference only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness import compare, compare_gradients, compare_observations, resultsfile, spec
from harness.reference import rules as rules_mod
from harness.reference import semantics
from harness.results import ImplResult, PathResult


# Reference breakdowns by case id, shared by every file one process judges (see Context);
# a pure function of the case and the profile, so sharing them changes no verdict.
SHARED_CACHES: dict[str, tuple[str, compare.ReferenceCache]] = {}
MAX_SHARED_CASES = 500


def semantics_hash() -> str:
    """The hash of the semantics verdicts are judged with now (rules.semantics_hash)."""
    return rules_mod.semantics_hash()


def judge(case: spec.Case, result: ImplResult, versions: Mapping[str, str], profile_name: str | None = None,
          cache: compare.ReferenceCache | None = None) -> dict[str, compare.Verdict]:
    """Verdict for every path of one implementation's result on one case, keyed by path/mode:
    the loss paths (harness.compare), gradients, SGD updates and distribution
    (harness.compare_gradients), observations (harness.compare_observations).

    Each path is judged under the semantics its release has on that path in that mode
    (rules.expected: the semantics table's most specific row); the gradient, SGD update and
    distribution checks under the release's unscoped semantics. `profile_name` overrides the
    expected profile (strict mode: judge everything against one fixed profile, e.g. "tf_keras-2.21", so a migrating user sees every difference)."""
    cache = cache or compare.ReferenceCache(case)
    if result.status != "ok":
        return {"*": compare.Verdict(result.status, profile_name or "", reason=result.message)}
    strict = profile_name
    profile_name = strict or rules_mod.expected(result.impl, dict(versions))

    def expected_on(p: PathResult) -> str:  # a row of the table may be scoped to a path or mode
        return strict or rules_mod.expected(result.impl, dict(versions), p.path, p.mode)

    if result.distribution is not None:  # a distributed run: every verdict in its own section
        verdicts = {f"distribution/{p.key}": compare.judge_path(case, p, expected_on(p), cache, result.predictions)
                    for p in result.paths}
    else:
        verdicts = {p.key: compare.judge_path(case, p, expected_on(p), cache, result.predictions) for p in result.paths}
    verdicts.update(compare_gradients.judge_extra(case, result, profile_name, cache, verdicts))
    verdicts.update(compare_observations.judge(case, result, profile_name, cache, verdicts))
    verdicts = compare.blame_harness(verdicts)  # an exception of the harness's own code: harness-error
    for v in verdicts.values():
        if v.rules and v.profile:
            v.precedents = {rule: found for rule, alt in v.rules.items()
                            if (found := semantics.precedent(v.profile, rule, alt))}
    return verdicts


def judge_safely(case: spec.Case, result: ImplResult, versions: Mapping[str, str],
                 strict_profile: str | None, cache: compare.ReferenceCache | None = None) -> dict[str, compare.Verdict]:
    """The engine's verdicts; a failure of the reference itself is recorded (a harness-error: a
    bug of ours, not something Keras did), never fatal."""
    try:
        return judge(case, result, versions, strict_profile, cache=cache)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not lose the implementation's result
        return {"*": compare.Verdict(compare.HARNESS_ERROR, strict_profile or "", stage="reference",
                                     reason=f"the reference or the engine failed: {type(exc).__name__}: {exc}")}


def verdicts_json(verdicts: Mapping[str, compare.Verdict]) -> dict[str, Any]:
    return {k: v.to_json() for k, v in verdicts.items()}


@dataclass
class Judged:
    """One result record judged again."""

    line: int
    record: dict[str, Any]  # as read (its "verdicts" are the recorded ones)
    verdicts: dict[str, Any]  # key -> verdict JSON, now
    semantics: str | None  # the hash the record was judged with (None: not recorded)

    @property
    def recorded(self) -> dict[str, Any]:
        return self.record.get("verdicts") or {}


@dataclass
class Context:
    """What a reader of one results file knows before a result record: the cases and the
    latest header per implementation. Reference breakdowns are shared by every result of a case."""

    path: Path
    cases: dict[str, spec.Case] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # case id -> (the case's JSON text, its breakdowns); SHARED_CACHES by default: the files of a
    # sweep hold the same case ids, judged under overlapping profiles.
    caches: dict[str, tuple[str, compare.ReferenceCache]] | None = None
    _texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.caches is None:
            self.caches = SHARED_CACHES
            if len(SHARED_CACHES) > MAX_SHARED_CASES:
                SHARED_CACHES.clear()

    def see(self, n: int, record: dict[str, Any]) -> None:
        """Take in a header or a case record (a damaged case: ResultsError naming file, line, field)."""
        if record["kind"] == "header":
            self.headers[record["impl"]] = record
        elif record["kind"] == "case" and record["case_id"] not in self.cases:
            try:
                self.cases[record["case_id"]] = spec.from_json(record["case"], str(self.path))
                self._texts[record["case_id"]] = json.dumps(record["case"], sort_keys=True)
            except spec.CaseError as exc:
                what = str(exc).split(f"field {exc.field_path}: ", 1)[-1]
                raise resultsfile.ResultsError(f"{self.path}: line {n}: field case{exc.field_path.removeprefix('$')}: {what}") from None

    def judge(self, n: int, record: dict[str, Any]) -> Judged:
        """A result record's verdicts, now. ResultsError when its case is not known (yet) or the
        record cannot be read as a result."""
        cid = record["case_id"]
        case = self.cases.get(cid)
        if case is None:
            raise resultsfile.ResultsError(f"{self.path}: line {n}: field case_id: expected the id of a case recorded "
                               f"before it in this file (a 'case' record), got {cid!r}")
        try:
            result = ImplResult.from_json(record)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise resultsfile.ResultsError(f"{self.path}: line {n}: expected a result record, got one that cannot be "
                               f"read ({type(exc).__name__}: {exc})") from None
        header = self.headers.get(record["impl"], {})
        versions = dict(header.get("versions") or {})
        strict = record.get("strict", header.get("strict"))
        text = self._texts.get(cid, "")
        cached = self.caches.get(cid)
        if cached is None or cached[0] != text:  # another case under the same id: not its breakdowns
            cached = self.caches[cid] = (text, compare.ReferenceCache(case))
        cache = cached[1]
        verdicts = verdicts_json(judge_safely(case, result, versions, strict, cache))
        return Judged(n, record, verdicts, record.get("semantics", header.get("semantics")))


def judge_file(path: Path) -> Iterator[tuple[int, dict[str, Any], Judged | None]]:
    """(line, record, Judged for a result record else None) for every record of a results file.
    A malformed file raises resultsfile.ResultsError naming file, line and field."""
    ctx = Context(Path(path))
    for n, record in resultsfile.iter_records(Path(path)):
        if record["kind"] == "result":
            yield n, record, ctx.judge(n, record)
        else:
            ctx.see(n, record)
            yield n, record, None


def rejudged_record(record: dict[str, Any], verdicts: dict[str, Any] | None, semantics: str) -> dict[str, Any]:
    """The record as `run` would write it now: the same observation, verdicts of now and the
    hash of the semantics they were judged with (headers carry the hash too)."""
    out = dict(record)
    if record["kind"] in ("header", "result"):
        out["semantics"] = semantics
    if verdicts is not None:
        out["verdicts"] = verdicts
    return out
