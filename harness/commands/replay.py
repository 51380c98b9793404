"""`python -m harness replay CASE.json`: rerun one case everywhere, breakdown side by side.

Runs the case in every chosen implementation (each in its own worker), judges each path, and
prints each path's total and terms next to the reference breakdown under every profile.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness import spec
from harness.commands.run import _available_impls, _usage_error, check_timeout

HELP = __doc__


def add_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("case", type=Path, help="a case JSON file")
    r.add_argument("--impl", action="append", metavar="NAME", help="implementation (repeatable); default: all installed")
    r.add_argument("--timeout", type=float, default=120.0, help="seconds per implementation")


def run(args: argparse.Namespace) -> int:
    from harness import compare, driver, judging, reference
    from harness.reference import rules

    check_timeout(args.timeout)
    try:
        case = spec.load(args.case)
        impls = _available_impls(args.impl)
    except spec.CaseError as exc:
        return _usage_error(str(exc))
    cache = compare.ReferenceCache(case)
    print(f"case {case.id}  ({args.case})")
    rows: list[tuple[str, str, Any, str]] = []
    for impl in impls:
        try:
            worker = driver.Worker(impl, start_timeout=180.0)
        except driver.WorkerFailed as exc:
            rows.append((impl, "*", None, f"{exc.status}: {exc.message}"))
            continue
        try:
            raw = worker.run(spec.dumps(case), args.timeout)
        except driver.WorkerFailed as exc:
            rows.append((impl, "*", None, f"{exc.status}: {exc.message}"))
            continue
        finally:
            worker.close()
        from harness.results import ImplResult

        result = ImplResult.from_json(raw)
        verdicts = judging.judge(case, result, worker.header.get("versions", {}), cache=cache)
        path_keys = set()
        for p in result.paths:
            key = p.key if p.key in verdicts else f"distribution/{p.key}"  # a distributed run's keys
            path_keys.add(key)
            v = verdicts[key]
            note = v.verdict + (" by " + ", ".join(f"{r}={a}" for r, a in v.rules.items()) if v.rules else "")
            if p.status != "ok":
                note += f": {p.reason or p.error_type or ''} {p.error_message or ''}".rstrip()
            terms = "  ".join(f"{k}={t:.7g}" for k, t in sorted(p.terms.items()))
            rows.append((impl, p.key, p.total, note + ("   " + terms if terms else "")))
        # Gradient and distribution verdicts: the ones that do not agree, then a count of those that do.
        others = {k: v for k, v in verdicts.items() if k not in path_keys}
        for key, v in sorted(others.items()):
            if v.verdict != "agree":
                rules_text = " by " + ", ".join(f"{r}={a}" for r, a in v.rules.items()) if v.rules else ""
                rows.append((impl, key, v.value, f"{v.verdict}{rules_text}" + (f" ({v.reason})" if v.reason else "")))
        agreeing = sum(v.verdict == "agree" for v in others.values())
        if agreeing:
            rows.append((impl, "gradient/distribution", None, f"{agreeing} more verdicts agree"))
    print(f"\n{'implementation':22s} {'path/mode':28s} {'total':>16s}  verdict")
    for impl, key, total, note in rows:
        shown = "" if total is None else f"{total:.9g}"
        print(f"{impl:22s} {key:28s} {shown:>16s}  {note}")
    print("\nreference breakdown (float64), per profile:")
    for name, profile in rules.PROFILES.items():
        b = reference.compute(case, profile, "test_on_batch")
        e = reference.compute(case, profile, "evaluate")
        terms = "  ".join(f"{k}={t:.9g}" for k, t in sorted(b.terms.items()))
        print(f"  {name:22s} whole batch {b.total:.9g}   evaluate {e.total:.9g}   {terms}")
    return 0
