"""`python -m harness fingerprint RESULTS.jsonl [--impl NAME] [--json] [--diff A.json B.json]`.

Infers, from what `run` recorded, which alternative of each rule an implementation took
(harness/fingerprint.py): per rule "takes A" with the first deciding case, "ambiguous",
"none fits" (no single alternative reproduces the observations: a new rule, or several rules at
once) or "undetermined" (no case decides it), and sets each against the semantics table: a rule
where they disagree is marked, a finding (the reading or the release is wrong). No framework.

  python -m harness run --impl keras3-jax --out r.jsonl && python -m harness fingerprint r.jsonl
  python -m harness fingerprint r.jsonl --json > a.json; python -m harness fingerprint --diff a.json b.json

Exit status: 0; 1 some rule disagrees with the table (or, with --diff, some status changed);
2 bad input (a damaged results file: its line and field).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", type=Path, help="a results file written by `run`")
    p.add_argument("--impl", help="only this implementation of the file")
    p.add_argument("--json", action="store_true", help="print the fingerprint as JSON")
    p.add_argument("--diff", nargs=2, type=Path, metavar=("A.json", "B.json"),
                   help="what changed between two fingerprints (JSON written by --json)")


def run(args: argparse.Namespace) -> int:
    from harness import fingerprint, resultsfile

    if args.diff:
        try:
            a, b = (json.loads(p.read_text()) for p in args.diff)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"harness fingerprint: error: {exc}", file=sys.stderr)
            return 2
        lines = fingerprint.diff(a, b)
        print("\n".join(lines) if lines else "no rule changed status")
        return 1 if lines else 0
    if args.results is None:
        print("harness fingerprint: error: expected a results file (or --diff A.json B.json)", file=sys.stderr)
        return 2
    try:
        found = fingerprint.fingerprint(args.results, args.impl)
    except (OSError, resultsfile.ResultsError, KeyError) as exc:
        print(f"harness fingerprint: error: {args.results}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(fingerprint.to_json(found), indent=1) if args.json else fingerprint.text(found), end="")
    return 1 if any(True for _ in fingerprint.disagreements(found)) else 0
