"""Fingerprints: which alternative of each rule an implementation took, inferred from its results.

For every result of a results file (an implementation's observations of cases) and every loss
path it computed (`<path>/<mode>`: a finite total, or an exception, which admits the alternatives
that predict it there, compare.predicts_error), the semantics its release is expected to follow
there (rules.expected, the semantics table) is the starting point. For each rule, each
alternative in turn replaces the expected one; a case *decides* the rule on that path when the
alternatives give totals the engine tells apart (compare.values_agree, the engine's tolerance),
and the alternatives whose total the observation matches are the ones it admits. Per rule, over
every deciding (case, path):

- "takes A": every deciding observation admits A, and only A is admitted by all of them (the
  first deciding case is named);
- "ambiguous": more than one alternative is admitted by every deciding observation;
- "none fits": no alternative is admitted by all of them: the release does something no
  alternative describes alone (a new rule, or two rules at once: single changes only);
- "undetermined": no case decides the rule.

Then each rule's finding is set against the table's alternative: `agrees` when the inferred one
is the table's, a *disagreement* otherwise (the reading or the release is wrong: a finding).
Reference only, no framework: it reads what `run` recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness import compare, coverage, judging, resultsfile
from harness.reference import rules as rules_mod
from harness.results import ImplResult, PathResult


@dataclass
class RuleFinding:
    rule: str
    table: set[str] = field(default_factory=set)  # the table's alternative(s) on the observed paths
    admitted: set[str] | None = None  # intersection over deciding observations (None: none decided)
    deciding: list[str] = field(default_factory=list)  # "case id path/mode", first ones

    @property
    def status(self) -> str:
        if self.admitted is None:
            return "undetermined"
        if not self.admitted:
            return "none fits"
        if len(self.admitted) > 1:
            return "ambiguous"
        return "takes " + next(iter(self.admitted))

    @property
    def agrees(self) -> bool | None:
        """Whether the inferred alternative is the table's (None when nothing was inferred)."""
        if self.admitted is None or len(self.admitted) != 1:
            return None
        return self.admitted <= self.table


def _mag(*breakdowns: Any) -> float:
    return max((abs(b.magnitude) for b in breakdowns if math.isfinite(b.magnitude)), default=0.0)


def _observe(finding: dict[str, RuleFinding], cache: compare.ReferenceCache, observed: PathResult,
             expected: Mapping[str, str], where: str) -> None:
    """One observed path (a number, or an exception) against every rule's alternatives."""
    path = observed.path
    for rule, spec in rules_mod.RULES.items():
        f = finding.setdefault(rule, RuleFinding(rule))
        f.table.add(expected[rule])
        totals = {alt: cache.compute({**expected, rule: alt}, path) for alt in spec.alternatives}
        tol = coverage.tolerance(cache.case, expected, expected)
        if observed.status == "error":  # admitted: the alternatives that predict this exception here
            admitted = {alt for alt, b in totals.items()
                        if compare.predicts_error(b, observed.error_message, observed.error_type)}
        else:  # an alternative that raises here cannot be what returned a number
            admitted = {alt for alt, b in totals.items()
                        if not b.notes and compare.values_agree(observed.total, b.total, _mag(b), tol)}
        numbers = [b for b in totals.values() if not b.notes]
        # decides: some alternatives raise here and others do not, or (a number observed) their
        # numbers differ; an exception no alternative predicts tells nothing of this rule
        splits = 0 < len(numbers) < len(totals)
        decides = splits or observed.status != "error" and any(
            not compare.values_agree(b.total, numbers[0].total, _mag(b, numbers[0]), tol) for b in numbers[1:])
        if not decides or observed.status == "error" and not admitted:
            continue  # the same total under every alternative, or an exception none of them predicts
        f.admitted = admitted if f.admitted is None else f.admitted & admitted
        if len(f.deciding) < 3:
            f.deciding.append(where)


def fingerprint(path: Path, impl: str | None = None) -> dict[str, dict[str, RuleFinding]]:
    """implementation -> rule -> finding, from one results file (`impl`: only that one)."""
    out: dict[str, dict[str, RuleFinding]] = {}
    ctx = judging.Context(Path(path))
    for n, record in resultsfile.iter_records(Path(path)):
        if record["kind"] != "result":
            ctx.see(n, record)
            continue
        if impl is not None and record["impl"] != impl:
            continue
        result = ImplResult.from_json(record)
        case = ctx.cases[record["case_id"]]
        if result.status != "ok" or result.distribution is not None:
            continue
        versions = dict(ctx.headers.get(record["impl"], {}).get("versions") or {})
        cache = compare.ReferenceCache(case)
        finding = out.setdefault(record["impl"], {})
        for p in result.paths:
            if not (p.status == "error" or p.status == "ok" and p.total is not None and math.isfinite(p.total)):
                continue
            expected = rules_mod.profile(rules_mod.expected(result.impl, versions, p.path, p.mode))
            _observe(finding, cache, p, expected, f"{case.id} {p.path}/{p.mode}")
    return out


def text(found: Mapping[str, Mapping[str, RuleFinding]]) -> str:
    lines = []
    for impl, rules in found.items():
        decided = [f for f in rules.values() if f.admitted is not None]
        disagree = [f for f in rules.values() if f.agrees is False]
        lines.append(f"{impl}: {len(decided)} of {len(rules)} rules decided by these cases; "
                     f"{len(disagree)} disagree with the semantics table")
        for f in rules.values():
            mark = {True: "", False: "   <- the table says " + "/".join(sorted(f.table)), None: ""}[f.agrees]
            by = f" (by {f.deciding[0]})" if f.deciding else ""
            lines.append(f"  {f.rule:36s} {f.status:36s}{by}{mark}")
    return "\n".join(lines) + "\n"


def to_json(found: Mapping[str, Mapping[str, RuleFinding]]) -> dict[str, Any]:
    return {impl: {f.rule: {"status": f.status, "table": sorted(f.table),
                            "admitted": None if f.admitted is None else sorted(f.admitted),
                            "agrees": f.agrees, "deciding": f.deciding} for f in rules.values()}
            for impl, rules in found.items()}


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What changed between two fingerprints (to_json forms): one line per rule whose status differs."""
    lines = []
    for impl in sorted(set(a) | set(b)):
        for rule in sorted(set(a.get(impl, {})) | set(b.get(impl, {}))):
            x = a.get(impl, {}).get(rule, {}).get("status", "-")
            y = b.get(impl, {}).get(rule, {}).get("status", "-")
            if x != y:
                lines.append(f"{impl} {rule}: {x} -> {y}")
    return lines


def disagreements(found: Mapping[str, Mapping[str, RuleFinding]]) -> Iterable[tuple[str, RuleFinding]]:
    return ((impl, f) for impl, rules in found.items() for f in rules.values() if f.agrees is False)
