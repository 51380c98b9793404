"""`python -m harness report [RESULTS_DIR_OR_FILES...] [--out reports/index.html]`.

Reads results files (default: every reports/results/*.jsonl; the environment's name is the
file stem), joins them by case id, and writes one self-contained HTML page, the machine-readable
`findings.json` beside it and one reproducer script per finding group under `repro/`.
The summary line counts every verdict of every section (loss paths, whole runs, gradient, SGD
update, distribution), as the page's headline and findings.json do.

Judged on read: every result that carries a semantics hash (every one `run` writes) is judged
again from its observation under the current semantics (harness.judging, as `python -m
harness judge` does), so editing the semantics and rebuilding re-judges the sweep;
--as-recorded shows the recorded verdicts instead.

Bad input stops with a message and exit 2, and the previous report stays as it was: a malformed
results file (the message names the file, line and field), a results path that does not exist,
an `--out` that is a folder (or ends in "/"), findings.json itself, one of the inputs, or lies
under a file. Everything is built in memory and written through temp files.
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
    p.add_argument("--as-recorded", action="store_true",
                   help="show the verdicts as the results files recorded them (default: judge every result "
                        "again on read, under the current semantics; see `python -m harness judge`)")
    p.add_argument("--out", default=str(DEFAULT_OUT),
                   help=f"the HTML file to write (default: {DEFAULT_OUT}); findings.json and repro/ go beside it")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `report` on an argparse subparsers object (handler in `func`)."""
    p = sub.add_parser("report", help=HELP, description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness import judging, report
    from harness.report import loading
    from harness.resultsfile import ResultsError
    from harness.spec import CaseError

    out = Path(args.out)
    try:
        if args.out.endswith("/"):
            raise report.ReportInputError(f"{args.out}: names a folder; expected the HTML file to write "
                                          f"(e.g. {out / 'index.html'})")
        paths = report.results_paths(args.inputs or [DEFAULT_INPUT])
        loading.REJUDGE_ON_READ = not getattr(args, "as_recorded", False)
        view = report.write(paths, out)
    except (report.ReportInputError, ResultsError, CaseError) as exc:
        print(f"harness report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # an unreadable results file, a folder the report cannot be written to
        print(f"harness report: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    groups = ", ".join(f"{k} {n}" for k, n in view["group_counts"].items())
    print(f"harness report: {len(paths)} results file(s), {view['n_cases']} cases -> {out}: "
          f"{view['headline']['text']} (loss finding groups: {groups}); findings.json and repro/ beside it; "
          + ("verdicts as recorded" if getattr(args, "as_recorded", False)
             else f"judged on read with semantics {judging.semantics_hash()}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
