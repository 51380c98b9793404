"""`python -m harness bisect (--case CASE.json | --rule RULE) --impl keras3-jax --good V --bad V`.

Finds the first Keras release, then the first `keras-nightly` daily build, whose observation of
one case changed (harness/bisect.py): each step installs one build into a cache (without its
dependencies: the Python given by --python, default this one, supplies the backend) and runs
the case through `python -m harness run` in a fresh process. Progress is printed per step; a
build that cannot be installed, imported or run is reported and skipped.

  python -m harness bisect --rule activity_regularizer_scaling --impl keras3-jax --good 3.13.2 --bad 3.14.0

--rule RULE: the case is the smallest one (stored cases, version-1 corpus; `changelog`) that shows
the rule's change between the two releases, unless --case is given, and a build is good while
its number fits the good release's alternative of the rule. --case alone: good while the number
equals the good release's. --path PATH/MODE: the number observed (default test_on_batch/eager).

Exit status: 0 found; 1 the endpoints do not differ as said (the good release is not good or the
bad one not bad); 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", type=Path, help="the case file to observe")
    p.add_argument("--rule", help="a rule whose alternative changes between --good and --bad (semantics table)")
    p.add_argument("--impl", required=True, help="a Keras 3 implementation, e.g. keras3-jax")
    p.add_argument("--good", required=True, metavar="V", help="a keras release that behaves as before")
    p.add_argument("--bad", required=True, metavar="V", help="a later keras release that behaves differently")
    p.add_argument("--path", default="test_on_batch/eager", metavar="PATH/MODE", help="the observed number")
    p.add_argument("--python", default=sys.executable, help="the Python that runs each build (its backend)")


def run(args: argparse.Namespace) -> int:
    from harness import bisect, changelog, spec
    from harness.commands.changelog import evidence_cases
    from harness.impls import IMPLEMENTATIONS
    from harness.reference import semantics

    def say(text: str) -> None:
        print(text, flush=True)

    def fail(text: str) -> int:
        print(f"harness bisect: error: {text}", file=sys.stderr)
        return 2

    impl = IMPLEMENTATIONS.get(args.impl)
    if impl is None or impl.lineage != "keras3":
        return fail(f"--impl {args.impl!r}: expected a Keras 3 implementation "
                    f"({', '.join(n for n, i in IMPLEMENTATIONS.items() if i.lineage == 'keras3')})")
    if args.case is None and args.rule is None:
        return fail("expected --case CASE.json, --rule RULE or both")
    try:
        for v in (args.good, args.bad):
            semantics.version_key(v)
        if semantics.version_key(args.good) >= semantics.version_key(args.bad):
            return fail(f"--good {args.good} must come before --bad {args.bad}")
        if args.case is not None:
            case = spec.load(args.case)
        else:
            cases, _ = evidence_cases(None, None)
            change = next((c for c in changelog.entries("keras3", args.good, args.bad, cases) if c.rule == args.rule),
                          None)
            if change is None or change.evidence is None:
                return fail(f"--rule {args.rule}: no change of it between {args.good} and {args.bad} that a case shows "
                            "(python -m harness changelog --lineage keras3)")
            case = next(c for c in cases if c.id == change.evidence.case_id)
        predicate = (bisect.rule_predicate(case, args.impl, args.path, args.rule, args.good, args.bad)
                     if args.rule else None)
    except (semantics.SemanticsError, spec.CaseError, ValueError) as exc:
        return fail(str(exc))

    started = time.perf_counter()
    say(f"bisect {args.impl} on case {case.id} ({args.path}"
        + (f", rule {args.rule}" if args.rule else "") + f"), good {args.good}, bad {args.bad}")
    releases, nightly = bisect.builds("keras"), bisect.builds("keras-nightly")
    by_version = {b.version: b for b in releases}
    missing = [v for v in (args.good, args.bad) if v not in by_version]
    if missing:
        return fail(f"no keras release {', '.join(missing)} on PyPI")
    seen: dict[str, bool | None] = {}
    folder = Path(tempfile.mkdtemp(prefix="harness-bisect-"))
    case_file = bisect.case_file_of(case, folder)
    good_number: list[float] = []

    def is_good(build: "bisect.Build") -> bool | None:
        if build.version in seen:
            return seen[build.version]
        t0 = time.perf_counter()
        try:
            total, version, _ = bisect.observe(bisect.install(build), case_file, args.impl, args.path, args.python)
            if version != build.version:
                raise RuntimeError(f"imported keras {version}, not {build.version}")
            if total is None:
                raise RuntimeError(f"no number on {args.path}")
            verdict = predicate(build, total) if predicate else \
                (good_number.append(total) or True) if not good_number else \
                bisect.equal_predicate(case, good_number[0])(build, total)
            say(f"  {build.dist}=={build.version} ({build.uploaded[:10]}): {total!r} -> "
                f"{'good' if verdict else 'bad'} ({time.perf_counter() - t0:.0f} s)")
        except Exception as exc:  # a build that cannot be observed is skipped
            verdict = None
            say(f"  {build.dist}=={build.version}: skipped: {type(exc).__name__}: {str(exc)[:300]}")
        seen[build.version] = verdict
        return verdict

    good, bad = by_version[args.good], by_version[args.bad]
    if is_good(good) is not True or is_good(bad) is not False:
        print(f"harness bisect: the endpoints do not differ as said: {args.good} "
              f"{seen.get(args.good)}, {args.bad} {seen.get(args.bad)} (True = good)", file=sys.stderr)
        return 1
    say("releases:")
    candidates = [good] + bisect.between(releases, good, bad) + [bad]
    lo, hi = bisect.search(candidates, is_good, say)
    last_good, first_bad = candidates[lo], candidates[hi]
    say("nightly builds:")
    nightly_candidates = [last_good] + bisect.between(nightly, last_good, first_bad) + [first_bad]
    lo, hi = bisect.search(nightly_candidates, is_good, say)
    say(f"first release with the change: keras {first_bad.version} ({first_bad.uploaded[:10]}); "
        f"first nightly build: {nightly_candidates[hi].dist}=={nightly_candidates[hi].version} "
        f"({nightly_candidates[hi].uploaded[:16]}), the last good one {nightly_candidates[lo].version} "
        f"({nightly_candidates[lo].uploaded[:16]}); {len(seen)} builds run in {time.perf_counter() - started:.0f} s")
    return 0
