"""The migration view: what separates the loss of one release from another's, measured on cases.

`compare_releases(a, b, cases)` reads the semantics of two releases (any lineages; the semantics
table, harness/reference/semantics.py), lists the rules on which they differ, and for each rule
measures with the reference alone, on every case and on the path the optimizer's number comes
from (`train_on_batch`, one step) and the logged one (`evaluate`):

- the share of cases whose total that rule alone changes (release a's semantics with that one
  rule as release b takes it), beyond the engine's tolerance, or that raise under one and not
  the other;
- the typical size of the change: the median and the largest |relative change| of the finite
  totals it changes;
- the smallest case (by its JSON) it changes, with the two numbers.

And the same for all the rules at once (a's semantics against b's). Where a rule's effect
depends on another one made first, the single flip can say 0% and the combined line more: that
is the combined line's job. No framework is imported.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from harness import compare, coverage, spec
from harness.reference import semantics
from harness.spec import Case

PATHS = ("train_on_batch", "evaluate", "test_on_batch_loop")


def _number(breakdown) -> str:
    """A path's total as text: "raises" when the reference predicts an error there."""
    return "raises" if breakdown.notes else f"{breakdown.total:.6g}"


@dataclass
class Effect:
    """What one change of semantics (one rule, or all of them) does to the cases' totals on a path."""

    path: str
    changed: int = 0  # cases whose total (or error) changes
    of: int = 0  # cases measured
    relative: list[float] = field(default_factory=list)  # |b - a| / max(|a|, |b|) of changed finite totals
    smallest: tuple[str, str, str] | None = None  # (case id, a's total, b's total) as text ("raises")

    @property
    def share(self) -> float:
        return self.changed / self.of if self.of else 0.0

    def typical(self) -> str:
        if not self.relative:
            return "-"
        return f"median {statistics.median(self.relative):.2%}, max {max(self.relative):.2%}"


@dataclass
class RuleDifference:
    rule: str
    a: str  # release a's alternative
    b: str  # release b's alternative
    effects: dict[str, Effect]


@dataclass
class Migration:
    a: semantics.Resolved
    b: semantics.Resolved
    rules: list[RuleDifference]
    combined: dict[str, Effect]
    cases: int


def _measure(caches: Sequence[compare.ReferenceCache], p: Mapping[str, str], q: Mapping[str, str],
             path: str) -> Effect:
    """`caches`: one per case, smallest case first, shared by every rule measured (release a's
    numbers are computed once)."""
    effect = Effect(path)
    for cache in caches:
        case = cache.case
        x, y = cache.compute(p, path), cache.compute(q, path)
        effect.of += 1
        raises = (bool(x.notes), bool(y.notes))
        if raises == (True, True):
            continue
        tol = coverage.tolerance(case, p, q)
        magnitude = max(abs(x.magnitude) if math.isfinite(x.magnitude) else 0.0,
                        abs(y.magnitude) if math.isfinite(y.magnitude) else 0.0)
        if raises == (False, False) and compare.values_agree(y.total, x.total, magnitude, tol):
            continue
        effect.changed += 1
        if not x.notes and not y.notes and math.isfinite(x.total) and math.isfinite(y.total):
            effect.relative.append(abs(y.total - x.total) / max(abs(x.total), abs(y.total)))
        if effect.smallest is None:
            effect.smallest = (case.id, _number(x), _number(y))
    return effect


def compare_releases(a: Mapping[str, str], b: Mapping[str, str], cases: Sequence[Case],
                     paths: Sequence[str] = PATHS) -> Migration:
    """`a`, `b`: semantics queries (lineage, version, backend, ...: semantics.at's arguments)."""
    ra, rb = semantics.at(**a), semantics.at(**b)
    caches = [compare.ReferenceCache(c) for c in sorted(cases, key=lambda c: (len(spec.dumps(c)), c.id))]
    differences = []
    for rule, alt in ra.choices.items():
        if rb.choices[rule] == alt:
            continue
        flipped = {**ra.choices, rule: rb.choices[rule]}
        differences.append(RuleDifference(rule, alt, rb.choices[rule],
                                          {path: _measure(caches, ra.choices, flipped, path) for path in paths}))
    differences.sort(key=lambda d: -max(e.share for e in d.effects.values()))
    combined = {path: _measure(caches, ra.choices, rb.choices, path) for path in paths}
    return Migration(ra, rb, differences, combined, len(cases))


def _smallest(effect: Effect) -> str:
    if effect.smallest is None:
        return "-"
    case_id, x, y = effect.smallest
    return f"{case_id}: {x} -> {y}"


def text(m: Migration) -> str:
    lines = [f"from {m.a.name} to {m.b.name}: {len(m.rules)} rule(s) differ; measured on {m.cases} cases "
             "(reference only; each rule alone, then all at once)", ""]
    for d in m.rules:
        lines.append(f"{d.rule}: {d.a} -> {d.b}")
        lines.extend(f"  {e.path:15s} changes {e.changed}/{e.of} ({e.share:.0%}); {e.typical()}; smallest "
                     f"{_smallest(e)}" for e in d.effects.values())
    lines.append("all rules at once:")
    lines.extend(f"  {e.path:15s} changes {e.changed}/{e.of} ({e.share:.0%}); {e.typical()}; smallest {_smallest(e)}"
                 for e in m.combined.values())
    return "\n".join(lines) + "\n"


def to_json(m: Migration) -> dict:
    def effect(e: Effect) -> dict:
        out = {"path": e.path, "changed": e.changed, "of": e.of, "share": e.share}
        if e.relative:
            out.update(median_relative=statistics.median(e.relative), max_relative=max(e.relative))
        if e.smallest:
            out["smallest"] = {"case": e.smallest[0], "from": e.smallest[1], "to": e.smallest[2]}
        return out

    return {"from": m.a.name, "to": m.b.name, "cases": m.cases,
            "rules": [{"rule": d.rule, "from": d.a, "to": d.b, "effects": [effect(e) for e in d.effects.values()]}
                      for d in m.rules],
            "combined": [effect(e) for e in m.combined.values()]}
