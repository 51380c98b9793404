"""Bisection: the first release, then the first nightly build, whose observation changed.

`bisect(...)` takes a case, an implementation (a Keras 3 one: its builds are `keras` releases and
`keras-nightly` daily builds, `3.N.0.devYYYYMMDDHH`), the last release known good and the first
known bad, and a predicate on the observation of one path (its total):

- `--rule RULE`: "good" while the observation fits the rule's alternative the good release takes
  (the reference under the table's semantics of that build, with that rule set to each
  alternative in turn), "bad" once it fits the bad release's alternative;
- otherwise: "good" while the observation equals the good release's (the engine's tolerance).

It first searches the releases between the two (PyPI's list of `keras`), then the nightly builds
whose versions lie between the last good and the first bad release (version order is build
order: after 3.13.0 the daily builds are 3.14.0.devYYYYMMDDHH), by binary search. Each step installs one
build (`pip install --no-deps --target`, cached under $HARNESS_BISECT_CACHE, default
~/.cache/keras-loss-harness/builds) and runs the case through `python -m harness run` in a fresh
process with that build first on PYTHONPATH, in the given Python (whose own packages supply
the backend: JAX, TensorFlow or torch). A build that fails to install, import or run is reported
and skipped, not fatal.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from harness import compare, coverage, spec
from harness.reference import rules as rules_mod
from harness.reference import semantics
from harness.spec import Case
from harness.tolerances import TOLERANCES

CACHE = Path(os.environ.get("HARNESS_BISECT_CACHE", Path.home() / ".cache" / "keras-loss-harness" / "builds"))
PYPI = "https://pypi.org/pypi/{dist}/json"


@dataclass
class Build:
    dist: str  # "keras" or "keras-nightly"
    version: str
    uploaded: str  # ISO date of its first file on PyPI

    @property
    def key(self) -> tuple[int, ...]:
        return semantics.version_key(self.version)


@dataclass
class Step:
    build: Build
    total: float | None  # the observed total (None: no observation)
    verdict: str  # "good" | "bad" | "skipped: <why>"
    seconds: float


def builds(dist: str) -> list[Build]:
    """Every version of `dist` on PyPI with its upload date, in version order."""
    with urllib.request.urlopen(PYPI.format(dist=dist), timeout=60) as response:
        data = json.load(response)
    out = []
    for version, files in data["releases"].items():
        if files:
            try:
                semantics.version_key(version)
            except semantics.SemanticsError:
                continue  # a version the table cannot place (e.g. 2.0.0b1 forms): not a candidate
            out.append(Build(dist, version, min(f["upload_time"] for f in files)))
    return sorted(out, key=lambda b: b.key)


def install(build: Build, cache: Path = CACHE) -> Path:
    """The folder holding `build` alone (installed once, without dependencies)."""
    target = cache / f"{build.dist}-{build.version}"
    if not (target / ".complete").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        f"{build.dist}=={build.version}"], check=True, capture_output=True, text=True, timeout=900)
        (target / ".complete").write_text("")
    return target


def _env(build_dir: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(build_dir), str(Path(__file__).resolve().parent.parent)])}


def imported_version(build_dir: Path, python: str) -> str:
    """`keras.__version__` as the run imports it (the distribution metadata would name the
    installed keras, not a keras-nightly build on PYTHONPATH)."""
    proc = subprocess.run([python, "-c", "import keras; print(keras.__version__)"], env=_env(build_dir),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"import keras failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout.strip().splitlines()[-1]


def observe(build_dir: Path, case_file: Path, impl: str, key: str, python: str) -> tuple[float | None, str, dict]:
    """(the total of path/mode `key`, the keras version imported, the result record)."""
    version = imported_version(build_dir, python)
    with tempfile.TemporaryDirectory() as tmp:
        cases = Path(tmp) / "cases"
        cases.mkdir()
        (cases / case_file.name).write_text(case_file.read_text())
        out = Path(tmp) / "results.jsonl"
        proc = subprocess.run([python, "-m", "harness", "run", "-n", "0", "--cases", str(cases), "--out", str(out),
                               "--impl", impl, "--exit-zero"], env=_env(build_dir), capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"harness run exited {proc.returncode}: {proc.stderr.strip()[-400:]}")
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    result = next((r for r in records if r.get("kind") == "result"), None)
    if result is None:
        raise RuntimeError("no result record")
    path, _, mode = key.partition("/")
    found = next((p for p in result["paths"] if p["path"] == path and p["mode"] == mode), None)
    total = found.get("total") if found and found.get("status") == "ok" else None
    return total, version, result


def rule_predicate(case: Case, impl: str, key: str, rule: str, good: str, bad: str) -> Callable[[Build, float], bool]:
    """True ("good") when the observed total fits the good release's alternative of `rule`."""
    path, _, mode = key.partition("/")
    old = rules_mod.profile(semantics.expected(impl, {"keras": good}, path, mode))[rule]
    new = rules_mod.profile(semantics.expected(impl, {"keras": bad}, path, mode))[rule]
    if old == new:
        raise ValueError(f"--rule {rule}: {good} and {bad} both take {old!r} (nothing to bisect)")

    def fits(build: Build, total: float) -> bool:
        base = rules_mod.profile(semantics.expected(impl, {"keras": build.version}, path, mode))
        cache = compare.ReferenceCache(case)
        totals = {alt: cache.compute({**base, rule: alt}, path) for alt in (old, new)}
        tol = coverage.tolerance(case, {**base, rule: old}, {**base, rule: new})
        agree = {alt: compare.values_agree(total, b.total, abs(b.magnitude) if math.isfinite(b.magnitude) else 0.0, tol)
                 for alt, b in totals.items()}
        if agree[old] == agree[new]:
            raise RuntimeError(f"the observation {total!r} fits {'both' if agree[old] else 'neither'} of "
                               f"{rule}={old} ({totals[old].total!r}) and {rule}={new} ({totals[new].total!r})")
        return agree[old]

    return fits


def equal_predicate(case: Case, reference_total: float) -> Callable[[Build, float], bool]:
    tol = TOLERANCES[case.dtype]

    def same(build: Build, total: float) -> bool:
        return compare.values_agree(total, reference_total, abs(reference_total), tol)

    return same


def search(candidates: Sequence[Build], is_good: Callable[[Build], bool | None],
           report: Callable[[str], None]) -> tuple[int, int]:
    """Binary search over `candidates` (index 0 known good, the last known bad): (last good, first
    bad). `is_good` returns None for a build that could not be observed; it is dropped."""
    items = list(candidates)
    lo, hi = 0, len(items) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        verdict = is_good(items[mid])
        if verdict is None:
            del items[mid]
            hi -= 1
            continue
        lo, hi = (mid, hi) if verdict else (lo, mid)
    report(f"  between {items[lo].version} (good) and {items[hi].version} (bad)")
    return candidates.index(items[lo]), candidates.index(items[hi])


def between(all_builds: Sequence[Build], lo: Build, hi: Build) -> list[Build]:
    return [b for b in all_builds if lo.key < b.key < hi.key]


def case_file_of(case: Case, folder: Path) -> Path:
    path = folder / f"{case.id}.json"
    path.write_text(spec.dumps(case, indent=1))
    return path
