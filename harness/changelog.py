"""The loss-semantics changelog: release by release, each rule whose alternative changes.

Read off the semantics table alone (harness/reference/semantics.py): the releases at which some
row of a lineage starts (`since`) or stops (`before`) are the boundaries; at each boundary B the
semantics just before it (B.0.dev0, which every `before=B` range holds) and at it (B.0) are
compared in every scope the lineage's rows name (no scope, each backend, each backend and mode,
...). A change is listed once per (release, rule, from, to) with the scopes it holds in ("every
scope" when it holds without one), the row that decides the side bounded at B (its sources, its
upstream PR or commit, its note), and the smallest case of the given cases whose reference
numbers tell the two alternatives apart on some loss path (harness.coverage's test, the engine's
tolerances), with the two numbers.

`entries()` is the data; `text()` and `markdown()` print it (docs/loss-semantics-changelog.md is
`markdown()` of 60 cases of the version-1 corpus, no stored case; tests/test_changelog.py keeps it
current).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from harness import compare, coverage, spec
from harness.reference import semantics
from harness.spec import Case


@dataclass
class Change:
    lineage: str
    release: str  # the first release with the new alternative ("3.14.0")
    rule: str
    old: str
    new: str
    scopes: list[dict[str, str]] = field(default_factory=list)  # where it holds; [{}] = every scope
    exceptions: list[dict[str, str]] = field(default_factory=list)  # with [{}]: the scopes where it does not
    row: semantics.Rows | None = None  # the row bounded at `release` (its sources and upstream)
    evidence: coverage.Decision | None = None  # the smallest case that tells old from new

    @property
    def where(self) -> str:
        if {} in self.scopes:
            but = "; ".join(" ".join(f"{k}={v}" for k, v in sorted(s.items())) for s in self.exceptions)
            return "every scope" + (f" but {but}" if but else "")
        return "; ".join(" ".join(f"{k}={v}" for k, v in sorted(s.items())) for s in self.scopes)


def boundaries(lineage: str) -> list[str]:
    """The releases at which some row of `lineage` starts or stops, in release order."""
    found = {v for r in semantics.TABLE if r.lineage == lineage for v in (r.since, r.before) if v}
    return sorted(found, key=semantics.version_key)


def _release(version: str) -> str:
    key = semantics.version_key(version)
    return f"{key[0]}.{key[1]}.{key[2]}"


def _scopes(lineage: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = [{}]
    for r in semantics.TABLE:
        if r.lineage == lineage and r.scope() not in out:
            out.append(r.scope())
    return out


def entries(lineage: str | None = None, since: str | None = None, until: str | None = None,
            cases: Sequence[Case] = ()) -> list[Change]:
    """Every change of `lineage` (None: every lineage) at releases in [since, until], with the
    smallest of `cases` that shows it (none given: no evidence)."""
    lo = semantics.version_key(since) if since else None
    hi = semantics.version_key(until) if until else None
    changes: dict[tuple[str, str, str, str, str], Change] = {}
    for lin in [lineage] if lineage else list(semantics.LINEAGES):
        if lin not in semantics.LINEAGES:
            raise semantics.SemanticsError(f"lineage {lin!r}: expected one of {', '.join(semantics.LINEAGES)}")
        for boundary in boundaries(lin):
            release = _release(boundary)
            key = semantics.version_key(release)
            if (lo is not None and key < lo) or (hi is not None and key > hi):
                continue
            for scope in _scopes(lin):
                before = semantics.at(lin, release + ".dev0", **scope)
                after = semantics.at(lin, release, **scope)
                for rule, new in after.choices.items():
                    old = before.choices[rule]
                    if old == new:
                        continue
                    change = changes.setdefault((lin, release, rule, old, new), Change(lin, release, rule, old, new))
                    change.scopes.append(scope)
                    if change.row is None:  # the row that starts at the release, else the one that stops there
                        a, b = after.rows[rule], before.rows[rule]
                        change.row = a if a.since and _release(a.since) == release else b
    found = list(changes.values())
    caches = [compare.ReferenceCache(c) for c in sorted(cases, key=lambda c: (len(spec.dumps(c)), c.id))]
    for change in found:
        # the least specific scopes: one where it holds implies every narrower one
        change.scopes = [s for s in change.scopes
                         if not any(t != s and t.items() <= s.items() for t in change.scopes)]
        if {} in change.scopes:  # a narrower row may keep the old alternative (Keras 3.15 on NumPy)
            change.exceptions = [s for s in _scopes(change.lineage) if s and not _changes_in(change, s)]
        change.evidence = smallest_evidence(change, caches)
    return found


def _changes_in(change: Change, scope: dict[str, str]) -> bool:
    before = semantics.at(change.lineage, change.release + ".dev0", **scope).choices[change.rule]
    return (before, semantics.at(change.lineage, change.release, **scope).choices[change.rule]) == (change.old, change.new)


def _profile_at(change: Change, release: str) -> dict[str, str]:
    scope = change.scopes[0]
    return semantics.at(change.lineage, release, **scope).choices


def smallest_evidence(change: Change, caches: Iterable[compare.ReferenceCache]) -> coverage.Decision | None:
    """The first loss-path value on which the first case (`caches`: one per case, smallest JSON
    first, shared by every change) tells the semantics just before the release from the
    semantics at it, or None."""
    old = _profile_at(change, change.release + ".dev0")
    new = {**old, change.rule: change.new}
    for cache in caches:
        for path in coverage.LOSS_PATHS:
            decision = coverage.value_differs(cache, old, new, path)
            if decision is not None:
                return decision
    return None


def _source(change: Change) -> str:
    row = change.row
    if row is None:
        return ""
    parts = []
    if row.sources:
        parts.append("; ".join(row.sources))
    if row.upstream:
        parts.append(row.upstream)
    if row.read:
        parts.append(f"read in {row.read}")
    return " | ".join(parts)


def _evidence(change: Change) -> str:
    return change.evidence.describe() if change.evidence else "no case of these shows it"


def text(changes: Sequence[Change]) -> str:
    lines = []
    for lin in dict.fromkeys(c.lineage for c in changes):
        lines.append(f"{lin}")
        for release in dict.fromkeys(c.release for c in changes if c.lineage == lin):
            lines.append(f"  {release}")
            for c in (c for c in changes if c.lineage == lin and c.release == release):
                lines.append(f"    {c.rule}: {c.old} -> {c.new}  ({c.where})")
                lines.append(f"      source: {_source(c) or 'the table'}")
                if c.row is not None and c.row.note:
                    lines.append(f"      note: {c.row.note}")
                lines.append(f"      shown by: {_evidence(c)}")
    return "\n".join(lines) + ("\n" if lines else "no change in the semantics table for this selection\n")


def markdown(changes: Sequence[Change], cases_description: str) -> str:
    out = ["# The loss-semantics changelog",
           "",
           "Generated by `python -m harness changelog --markdown` from `harness/reference/semantics.py`; "
           "tests/test_changelog.py keeps it current. Each entry: the rule (harness/reference/rulebook.py), "
           "its alternative before and from the release, where it holds, the row's sources and upstream "
           f"change, and the smallest case of {cases_description} that tells the two apart (reference "
           "numbers, the engine's tolerances).",
           ""]
    for lin in dict.fromkeys(c.lineage for c in changes):
        out.append(f"## {lin}")
        out.append("")
        for release in dict.fromkeys(c.release for c in changes if c.lineage == lin):
            out.append(f"### {release}")
            out.append("")
            for c in (c for c in changes if c.lineage == lin and c.release == release):
                out.append(f"- **{c.rule}**: `{c.old}` -> `{c.new}` ({c.where}). Source: {_source(c) or 'the table'}.")
                if c.row is not None and c.row.note:
                    out.append(f"  {c.row.note}.")
                out.append(f"  Shown by: {_evidence(c)}.")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
