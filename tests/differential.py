"""Helpers for the differential tests: live workers, one call that judges, messages people read.

`check_case(case, impl)` runs a Case in the implementation's worker (one live worker per
implementation per test session: Keras 3 backends and TF1 graph mode cannot share a process),
judges every path against the reference (harness.compare) and returns the unexplained ones
together with a message that gives the case id, each path's value, the reference and its
breakdown, and the one command that replays the case.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import compare, driver, impls, judging, spec
from harness.reference import rules
from harness.results import ImplResult

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "cases"
FOUND_DIR = CASES_DIR / "found"
KNOWN_FINDINGS = CASES_DIR / "known_findings.txt"


def installed_impls() -> list[str]:
    """Implementations whose distributions are installed in this Python (HARNESS_TEST_IMPLS narrows)."""
    wanted = os.environ.get("HARNESS_TEST_IMPLS")
    names = wanted.split(",") if wanted else list(impls.IMPLEMENTATIONS)
    return [n for n in names if n in impls.IMPLEMENTATIONS and not impls.unmet_requirements(impls.IMPLEMENTATIONS[n])]


def all_impls() -> list[str]:
    return [n for n in impls.IMPLEMENTATIONS if not n.startswith("test-")]


def why_not_installed(impl: str) -> str:
    return "; ".join(impls.unmet_requirements(impls.IMPLEMENTATIONS[impl]))


def stored_case_files() -> list[Path]:
    return sorted(CASES_DIR.rglob("*.json"))


def known_findings() -> dict[tuple[str, str], str]:
    """(case id, impl) -> reason, from cases/known_findings.txt (`<case id> <impl>  # reason`)."""
    out: dict[tuple[str, str], str] = {}
    if not KNOWN_FINDINGS.exists():
        return out
    for n, line in enumerate(KNOWN_FINDINGS.read_text().splitlines(), start=1):
        body, _, reason = line.partition("#")
        if not body.strip():
            continue
        parts = body.split()
        if len(parts) != 2 or not reason.strip():
            raise ValueError(f"{KNOWN_FINDINGS}:{n}: expected '<case id> <impl>  # reason', got {line!r}")
        out[(parts[0], parts[1])] = reason.strip()
    return out


class Workers:
    """One live worker per implementation, restarted after a crash."""

    def __init__(self) -> None:
        self._workers: dict[str, driver.Worker] = {}

    def run(self, impl: str, case: spec.Case, timeout: float = 300.0) -> tuple[ImplResult, dict[str, str]]:
        worker = self._workers.get(impl)
        if worker is None or worker.proc.poll() is not None:
            worker = self._workers[impl] = driver.Worker(impl, start_timeout=300.0)
        try:
            raw = worker.run(spec.dumps(case), timeout)
        except driver.WorkerFailed as exc:
            self._workers.pop(impl, None)
            return (ImplResult(case.id, impl, status=exc.status, message=exc.message,
                               stderr_tail=exc.stderr_tail), worker.header.get("versions", {}))
        return ImplResult.from_json(raw), worker.header.get("versions", {})

    def close(self) -> None:
        for w in self._workers.values():
            w.close()
        self._workers.clear()


@dataclass
class Checked:
    result: ImplResult
    verdicts: dict[str, compare.Verdict]
    profile: str
    failures: list[str]  # path keys whose verdict fails the test
    message: str


def check_case(workers: Workers, case: spec.Case, impl: str, *, strict_profile: str | None = None,
               case_file: Path | None = None) -> Checked:
    """Run and judge. A path fails on `unexplained` (or, in strict mode, on anything but agree),
    and a whole run fails on crashed / timeout / import-error."""
    result, versions = workers.run(impl, case)
    profile = strict_profile or rules.expected(impl, versions)  # each path: its own (judging.judge)
    verdicts = judging.judge(case, result, versions, strict_profile)
    bad_verdicts = {"unexplained", "harness-error", "crashed", "timeout", "import-error"}
    if strict_profile:
        bad_verdicts |= {"explained", "error"}
    failures = [k for k, v in verdicts.items() if v.verdict in bad_verdicts]
    return Checked(result, verdicts, profile, failures, explain(case, impl, result, verdicts, profile, case_file))


def explain(case: spec.Case, impl: str, result: ImplResult, verdicts: dict[str, compare.Verdict],
            profile: str, case_file: Path | None) -> str:
    from harness import reference

    lines = [f"case {case.id}, implementation {impl}, expected profile {profile}"]
    if result.status != "ok":
        lines.append(f"  run {result.status}: {result.message}\n  stderr:\n{result.stderr_tail}")
    for p in result.paths:
        v = verdicts.get(p.key)
        if v is None:
            continue
        shown = "" if p.total is None else f"{p.total:.9g}"
        extra = ""
        if v.rules:
            extra = " by " + ", ".join(f"{r}={a}" for r, a in v.rules.items())
        if v.reason:
            extra += f" ({v.reason})"
        terms = " ".join(f"{k}={t:.7g}" for k, t in sorted(p.terms.items()))
        lines.append(f"  {p.key:26s} {shown:>16s}  {v.verdict}{extra}  {terms}")
    path_keys = {p.key for p in result.paths}
    for key, v in sorted(verdicts.items()):  # gradient and distribution verdicts that do not agree
        if key in path_keys or v.verdict == "agree":
            continue
        extra = (" by " + ", ".join(f"{r}={a}" for r, a in v.rules.items())) if v.rules else ""
        lines.append(f"  {key:26s} {v.verdict}{extra}" + (f" ({v.reason})" if v.reason else ""))
    try:
        whole = reference.compute(case, profile, "test_on_batch")
        batches = reference.compute(case, profile, "evaluate")
        lines.append(f"  reference ({profile}): whole batch {whole.total:.9g}, evaluate {batches.total:.9g}")
        lines.append("  reference breakdown: " + json.dumps(whole.to_json(), default=str)[:1500])
    except Exception as exc:  # noqa: BLE001 - the message must still be written
        lines.append(f"  reference failed: {type(exc).__name__}: {exc}")
    where = case_file or FOUND_DIR / f"{case.id}.json"
    lines.append(f"  replay: {sys.executable} -m harness replay {where} --impl {impl}")
    return "\n".join(lines)


def write_found(case: spec.Case, impl: str, checked: Checked) -> Path:
    """Write a (shrunk) failing case to cases/found/<id>.json with the verdicts and versions in its note."""
    FOUND_DIR.mkdir(parents=True, exist_ok=True)
    summary = {k: v.verdict for k, v in checked.verdicts.items() if k in checked.failures}
    note = (f"Found by the property test on {impl} (profile {checked.profile}): {json.dumps(summary, sort_keys=True)}. "
            + (case.note or ""))
    found = spec.from_json({**case.to_json(), "note": note}, "<found case>")
    path = FOUND_DIR / f"{found.id}.json"
    spec.dump(found, path)
    return path
