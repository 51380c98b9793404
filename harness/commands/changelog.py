"""`python -m harness changelog`: how the assembled loss changed, release by release.

Reads the semantics table (harness/reference/semantics.py) alone, without a framework: for each
lineage, each release at which some rule's alternative changes, the change (from -> to), where
it holds (every scope, or a backend / mode / strategy), the source and upstream change of the
row that says so, and the smallest case that shows it with the reference's two numbers (cases:
the stored cases/ and the 12 cases of the fixed corpus, seed 0, at vocabulary version 1, so that
a new loss or layer leaves the changelog as it is; --cases DIR for others, -n N for another
number of drawn cases).

  python -m harness changelog                          every lineage
  python -m harness changelog --lineage keras3 --from 3.10 --to 3.15
  python -m harness changelog --markdown -n 60 --no-stored > docs/loss-semantics-changelog.md

Exit status: 0; 2 for a bad option (an unknown lineage, a version that is not a release).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = __doc__
# Drawn cases searched for evidence (vocabulary version 1, so appending a loss or a layer leaves the
# docs as they are; the main job's ci cover would change them with every new semantics).
EVIDENCE_DRAWN = 12


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lineage", help="keras (2.x), tf.keras, tf_keras or keras3 (default: every one)")
    p.add_argument("--from", dest="since", metavar="V", help="first release to list (e.g. 3.10)")
    p.add_argument("--to", dest="until", metavar="V", help="last release to list (e.g. 3.15)")
    p.add_argument("-n", type=int, default=None, help=f"drawn cases searched for evidence (default: the first {EVIDENCE_DRAWN} of the corpus)")
    p.add_argument("--cases", action="append", type=Path, metavar="DIR",
                   help="stored cases searched for evidence (repeatable; default: cases/)")
    p.add_argument("--no-stored", action="store_true", help="drawn cases only (the docs: a found case changes nothing)")
    p.add_argument("--markdown", action="store_true", help="print docs/loss-semantics-changelog.md")


def evidence_cases(n: int | None, dirs: list[Path] | None) -> tuple[list, str]:
    """The cases searched for evidence and their description (the main job's corpus by default)."""
    from harness import strategies
    from harness.commands.run import load_stored

    n = EVIDENCE_DRAWN if n is None else n
    dirs = [Path("cases")] if dirs is None else dirs
    stored = load_stored(dirs) if dirs else []
    # vocabulary version 1: appending a loss or a layer leaves the evidence, and the docs, as they are
    drawn = strategies.corpus(seed=0, n=n, vocabulary_version=1) if n else []
    seen: dict[str, object] = {}
    for case in stored + drawn:
        seen.setdefault(case.id, case)
    where = " + ".join([f"{len(stored)} stored ({', '.join(map(str, dirs))})"] * bool(dirs)
                       + [f"{len(drawn)} drawn (corpus seed 0, vocabulary version 1)"]
                       * bool(n))
    return list(seen.values()), where or "no cases"


def run(args: argparse.Namespace) -> int:
    from harness import changelog, spec
    from harness.reference import semantics

    if args.n is not None and args.n < 0:
        print(f"harness changelog: error: -n: expected a number of drawn cases >= 0, got {args.n}", file=sys.stderr)
        return 2
    try:
        cases, where = evidence_cases(args.n, [] if args.no_stored else args.cases)
        changes = changelog.entries(args.lineage, args.since, args.until, cases)
    except (semantics.SemanticsError, spec.CaseError) as exc:
        print(f"harness changelog: error: {exc}", file=sys.stderr)
        return 2
    print(changelog.markdown(changes, where) if args.markdown else changelog.text(changes), end="")
    return 0
