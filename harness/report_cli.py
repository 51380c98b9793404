"""`python -m harness report [RESULTS_DIR_OR_FILES...] [--out reports/index.html]`.

Reads results files (default: every reports/results/*.jsonl; the environment's name is the
file stem), joins them by case id, and writes one self-contained HTML page, the machine-readable
`findings.json` beside it and one reproducer script per finding group under `repro/`.
A malformed results file stops with a message naming the file, line and field (exit 2), and the
previous report stays as it was: everything is built in memory and written through temp files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write the HTML discrepancy report (and findings.json) from results files"
DEFAULT_INPUT = Path("reports/results")
DEFAULT_OUT = Path("reports/index.html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", type=Path, metavar="RESULTS_DIR_OR_FILES",
                   help=f"results files (*.jsonl) or folders of them (default: {DEFAULT_INPUT})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"the HTML file to write (default: {DEFAULT_OUT}); findings.json and repro/ go beside it")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `report` on an argparse subparsers object (handler in `func`)."""
    p = sub.add_parser("report", help=HELP, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import report
    from harness.resultsfile import ResultsError
    from harness.spec import CaseError

    try:
        paths = report.results_paths(args.inputs or [DEFAULT_INPUT])
        view = report.write(paths, args.out)
    except (report.ReportInputError, ResultsError, CaseError) as exc:
        print(f"harness report: error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{k} {n}" for k, n in view["group_counts"].items())
    print(f"harness report: {len(paths)} results file(s), {view['n_cases']} cases -> {args.out} "
          f"(groups: {counts}); findings.json and repro/ beside it")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
