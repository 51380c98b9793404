"""The main job's corpus, chosen to test every rule (issue 17, item 2).

An `agree` tests a rule only on a case where the rule's alternatives give different numbers
(harness.coverage). So the `ci` corpus of `run` is not the first n cases of the fixed-seed
corpus but a cover: out of CANDIDATES cases of the corpus of seed SEED (the same ids in every
environment), the cases a greedy set cover picks so that, for every profile of the core matrix
(PROFILES), every rule change that some candidate distinguishes is distinguished by a picked
case or by a stored case of cases/ (the stored cases always run, so what they distinguish
counts as covered before the first pick).

The elements covered are (profile, single rule change) of harness.coverage, each measured on one
candidate at a time with the reference alone. Not the dependent pairs: covering those as well
took 45 picks out of 300 candidates (measured 2026-12-03, against the single changes' count in
harness/ci_selection.json), which would more than double the main job's time on 2 cores;
`python -m harness cases --coverage` measures which pairs the picked cases distinguish. Greedy:
pick the candidate that distinguishes the most elements not yet covered (the lower corpus index
on a tie, so the choice is a function of the candidates alone), until no candidate adds one.
Each change of a profile that no candidate distinguishes is listed with the reason: it changes
no number of any candidate, or it changes some but within the engine's tolerance each time.

The choice is written to harness/ci_selection.json by `python -m harness cases --select
--save`. That file is derived, never edited by hand: it records `key()`, a digest of what the
choice depends on (the profiles' alternatives, the rules, the vocabulary version, the
tolerances, the seed and the number of candidates). `run` warns when the key is stale and runs
the recorded cases all the same; tests/test_selection.py fails on a stale key and re-measures
that the recorded cases distinguish what the file says they do.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from harness import coverage, strategies, vocabulary
from harness.reference import rules
from harness.spec import Case, CaseError
from harness.tolerances import GRADIENT_TOLERANCES, TOLERANCES

FILE = Path(__file__).with_name("ci_selection.json")
SEED = 0
CANDIDATES = 300
# The core matrix's profiles (README "Implementations"): what the main job runs.
PROFILES = ("tf_keras-2.21", "keras-3.15", "keras-3.15-jax", "keras-3.15-torch", "keras-3.15-numpy",
            "keras-2.3.1", "tf.keras-2.15")
REGENERATE = "python -m harness cases --select --jobs 2 --save"


def key(profiles: Sequence[str] = PROFILES, seed: int = SEED, candidates: int = CANDIDATES,
        vocabulary_version: int = vocabulary.VERSION) -> str:
    """A digest of everything the choice depends on, besides the reference's code."""
    parts = {
        "profiles": {name: rules.profile(name) for name in profiles},
        "rules": {name: list(rule.alternatives) for name, rule in rules.RULES.items()},
        "vocabulary_version": vocabulary_version, "seed": seed, "candidates": candidates,
        "tolerances": repr(sorted(TOLERANCES.items())) + repr(sorted(GRADIENT_TOLERANCES.items())),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CaseChanges:
    """What one case tells apart, per profile: single changes labelled "<rule>=<alt>" (coverage.label)."""
    distinguished: dict[str, frozenset[str]]
    changed: dict[str, frozenset[str]]  # the changes that alter some number bit-exactly


def case_changes(case: Case, profiles: Sequence[str] = PROFILES) -> CaseChanges:
    distinguished, changed = {}, {}
    for name in profiles:
        cov = coverage.coverage([case], name, pairs=False)
        distinguished[name] = frozenset(coverage.label(c) for c in cov.distinguished)
        changed[name] = frozenset(coverage.label(c) for c in cov.changed)
    return CaseChanges(distinguished, changed)


def _candidate(job: tuple[int, int, int, tuple[str, ...]]) -> CaseChanges:
    seed, index, version, profiles = job
    return case_changes(strategies.corpus_case(seed, index, vocabulary_version=version), profiles)


@dataclass
class Selection:
    seed: int
    candidates: int
    vocabulary_version: int
    profiles: list[str]
    key: str
    stored: list[str]  # ids of the stored cases counted as covered before the first pick
    chosen: list[dict[str, Any]]  # {"index", "case", "adds": ["<profile>: <change>", ...]}, in pick order
    distinguished: dict[str, list[str]]  # profile -> the changes stored + chosen cases distinguish
    undistinguished: dict[str, list[dict[str, str]]]  # profile -> [{"change", "reason"}]
    seconds: float = 0.0

    @property
    def indices(self) -> list[int]:
        return [c["index"] for c in self.chosen]

    def to_json(self) -> dict[str, Any]:
        return {"generated_by": f"{REGENERATE} (derived: do not edit by hand; tests/test_selection.py checks it)",
                "key": self.key, "seed": self.seed, "candidates": self.candidates,
                "vocabulary_version": self.vocabulary_version, "profiles": self.profiles,
                "seconds": round(self.seconds, 1), "stored": self.stored, "chosen": self.chosen,
                "distinguished": self.distinguished, "undistinguished": self.undistinguished}

    def cases(self, values_per_structure: int = 1) -> list[Case]:
        """The chosen cases, in pick order; k > 1 adds k - 1 value variants after each (as corpus)."""
        out: list[Case] = []
        for index in self.indices:
            base = strategies.corpus_case(self.seed, index, vocabulary_version=self.vocabulary_version)
            out.append(base)
            out.extend(strategies.value_variant(base, self.seed, index, variant,
                                                vocabulary_version=self.vocabulary_version)
                       for variant in range(1, values_per_structure))
        return out

    def stale(self) -> bool:
        return self.key != key(self.profiles, self.seed, self.candidates, self.vocabulary_version)


def choose(stored: Sequence[Case], profiles: Sequence[str] = PROFILES, seed: int = SEED,
           candidates: int = CANDIDATES, jobs: int = 1,
           progress: Callable[[int, int, float], None] | None = None) -> Selection:
    """The greedy cover (module docstring). `progress(done, total, seconds)` after each case measured."""
    start = time.perf_counter()
    profiles = tuple(profiles)
    version = vocabulary.VERSION
    total = len(stored) + candidates
    measured: list[CaseChanges] = []

    def tick() -> None:
        if progress is not None:
            progress(len(measured), total, time.perf_counter() - start)

    for case in stored:
        measured.append(case_changes(case, profiles))
        tick()
    jobs_list = [(seed, i, version, profiles) for i in range(candidates)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for result in pool.map(_candidate, jobs_list, chunksize=4):
                measured.append(result)
                tick()
    else:
        for job in jobs_list:
            measured.append(_candidate(job))
            tick()
    stored_part, pool_part = measured[:len(stored)], measured[len(stored):]

    def elements(m: CaseChanges) -> set[tuple[str, str]]:  # (profile, change)
        return {(p, c) for p in profiles for c in m.distinguished[p]}

    covered: set[tuple[str, str]] = set().union(*(elements(m) for m in stored_part))
    remaining = {i: elements(m) - covered for i, m in enumerate(pool_part)}
    chosen = []
    while True:
        best = max(remaining, key=lambda i: (len(remaining[i]), -i), default=None)
        if best is None or not remaining[best]:
            break
        gained = remaining.pop(best)
        covered |= gained
        for i in remaining:
            remaining[i] -= gained
        chosen.append({"index": best, "case": strategies.corpus_case(seed, best, vocabulary_version=version).id,
                       "adds": sorted(f"{p}: {c}" for p, c in gained)})

    distinguished, undistinguished = {}, {}
    for p in profiles:
        mine = {c for q, c in covered if q == p}
        distinguished[p] = sorted(mine)
        singles = [coverage.label([f]) for f in coverage.single_flips(rules.profile(p))]
        undistinguished[p] = [{"change": c, "reason": _reason(c, p, measured)} for c in singles if c not in mine]
    return Selection(seed, candidates, version, list(profiles), key(profiles, seed, candidates, version),
                     [c.id for c in stored], chosen,
                     distinguished, undistinguished, time.perf_counter() - start)


def _reason(change: str, profile: str, measured: Sequence[CaseChanges]) -> str:
    n = len(measured)
    k = sum(change in m.changed[profile] for m in measured)
    if k == 0:
        return f"changes no number of any of the {n} cases (stored and candidates)"
    return f"changes numbers on {k} of {n} cases, within the engine's tolerance each time"


def load(path: Path = FILE) -> Selection:
    """The recorded selection; a missing or malformed file raises CaseError naming the file and field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CaseError(str(path), "(file)", f"the derived selection of the ci corpus (write it: {REGENERATE})")
    except json.JSONDecodeError as exc:
        raise CaseError(str(path), "(file)", f"JSON ({exc}); regenerate it: {REGENERATE}")
    fields = {"seed": int, "candidates": int, "vocabulary_version": int, "profiles": list, "key": str,
              "stored": list, "chosen": list, "distinguished": dict, "undistinguished": dict}
    for name, kind in fields.items():
        if not isinstance(raw.get(name), kind):
            raise CaseError(str(path), name, f"a {kind.__name__}; regenerate the file: {REGENERATE}")
    for i, entry in enumerate(raw["chosen"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
            raise CaseError(str(path), f"chosen[{i}].index", f"a corpus index (int); regenerate the file: {REGENERATE}")
    return Selection(raw["seed"], raw["candidates"], raw["vocabulary_version"], raw["profiles"], raw["key"],
                     raw["stored"], raw["chosen"], raw["distinguished"], raw["undistinguished"],
                     float(raw.get("seconds", 0.0)))


def text(sel: Selection) -> str:
    """The selection as a reader wants it: the picks, then per profile what stays untested and why."""
    lines = [f"ci corpus: {len(sel.chosen)} of {sel.candidates} candidates (seed {sel.seed}, vocabulary "
             f"version {sel.vocabulary_version}) plus {len(sel.stored)} stored cases; key {sel.key}"]
    for entry in sel.chosen:
        lines.append(f"  corpus index {entry['index']:>4} ({entry['case']}): adds {len(entry['adds'])}")
    for p in sel.profiles:
        lines.append(f"{p}: {len(sel.distinguished[p])} changes distinguished, "
                     f"{len(sel.undistinguished[p])} not distinguished by any case")
        for u in sel.undistinguished[p]:
            lines.append(f"  {u['change']}: {u['reason']}")
    return "\n".join(lines)


def write(sel: Selection, path: Path = FILE) -> None:
    path.write_text(json.dumps(sel.to_json(), indent=1) + "\n", encoding="utf-8")
