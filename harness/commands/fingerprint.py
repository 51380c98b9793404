"""`python -m harness fingerprint (RESULTS.jsonl | --impl NAME) [--json] [--out F.json] [--diff A.json B.json]`.

Infers, from what `run` recorded, which alternative of each rule an implementation took
(harness/fingerprint.py): per rule "takes A" with the first deciding case, "ambiguous",
"none fits" (no single alternative reproduces the observations: a new rule, or several rules at
once) or "undetermined" (no case decides it), and sets each against the semantics table: a rule
where they disagree is marked, a finding (the reading or the release is wrong). No framework.

  python -m harness fingerprint --impl keras3-jax --out a.json   # runs the ci corpus first
  python -m harness fingerprint r.jsonl [--impl keras3-jax]       # from a results file of `run`
  python -m harness fingerprint --diff a.json b.json

--impl NAME without a results file runs `run --impl NAME` over the main job's ci corpus (the cases
chosen to test every rule, harness/selection.py) and the stored cases into
reports/fingerprints/NAME.jsonl (started over), then fingerprints that file. --out F.json writes
the fingerprint as JSON (what --diff compares).

Exit status: 0; 1 some rule disagrees with the table (or, with --diff, some status changed);
2 bad input (a damaged results file: its line and field; an unknown implementation); with --impl
and no results file, `run`'s own status when it could not finish (3 stopped, 130 interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

HELP = __doc__
RUNS = Path("reports/fingerprints")  # where --impl alone records its run (not reports/results: not a report input)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", type=Path, help="a results file written by `run`")
    p.add_argument("--impl", help="only this implementation of the file; without a file: run the ci corpus on it first")
    p.add_argument("--json", action="store_true", help="print the fingerprint as JSON")
    p.add_argument("--out", type=Path, metavar="F.json", help="also write the fingerprint as JSON to this file")
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
    if args.results is None and args.impl is None:
        print("harness fingerprint: error: expected a results file, --impl NAME (or --diff A.json B.json)",
              file=sys.stderr)
        return 2
    if args.results is None:
        from harness import cli

        args.results = RUNS / f"{args.impl}.jsonl"
        print(f"harness fingerprint: running the ci corpus on {args.impl} into {args.results}", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the fingerprint alone (--json)
            status = cli.main(["run", "--impl", args.impl, "--out", str(args.results), "--overwrite", "--exit-zero"])
        if status != 0:
            return status
    try:
        found = fingerprint.fingerprint(args.results, args.impl)
    except (OSError, resultsfile.ResultsError, KeyError) as exc:
        print(f"harness fingerprint: error: {args.results}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(fingerprint.to_json(found), indent=1) if args.json else fingerprint.text(found), end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(fingerprint.to_json(found), indent=1) + "\n", encoding="utf-8")
    return 1 if any(True for _ in fingerprint.disagreements(found)) else 0
