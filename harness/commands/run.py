"""`python -m harness run`: the differential engine over drawn and stored cases.

Draws a fixed-seed corpus (the same case ids in every environment) and reads the stored cases
(cases/), runs every chosen implementation in its own worker process, judges each path against
the reference (harness.compare), appends to reports/results/<env>.jsonl, prints counts per
implementation x verdict key, and lists each unexplained finding (FINDING) and each failure
(ERROR) with the one command that replays it. The case files those commands name are written
beside the results file, in <results stem>-cases/ (reports/results/<env>-cases/<case id>.json).

Exit status, over every verdict of the results file for the implementations run (loss paths,
gradient/..., .../sgd_update, distribution/...):
  0    every verdict agrees, is explained or unsupported (or --exit-zero)
  1    unexplained findings, and no failure
  2    bad input, refused before anything ran: a malformed case file, an unknown implementation
       or profile, a bad option value, a results file that cannot be resumed (the message names
       the file, the line and the field; the results file is left byte for byte as it was)
  3    stopped by an error while running (the results file cannot be written: the complete
       records before it are kept; fix the cause, then --resume)
  4    failures: an error (an exception raised in Keras that no profile predicts), harness-error
       (an exception of the harness's own code: an adapter, the engine), crashed, timeout or
       import-error verdict (harness.compare.FAILURE_VERDICTS). 4 wins over 1 when both occur: a run with
       failures is incomplete (its unexplained count is a lower bound), fix the run first;
       the findings are listed all the same
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP: the finished cases are in the results file, the
       workers are killed, --resume runs the rest)
--exit-zero turns 1 and 4 into 0 (tox: findings and failures go to the report).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import spec

# Drawn cases per settings profile; ci (None): the cover of harness/ci_selection.json, the corpus
# cases chosen to test every rule of the core matrix (harness.selection).
PROFILES: dict[str, int | None] = {"ci": None, "dev": 60, "deep": 2000}
DEFAULT_RESULTS_DIR = Path("reports/results")
MAX_TIMEOUT = 86400.0  # seconds per case: a day (the OS's wait limit is ~292 years, `inf` is refused)

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3
EXIT_FAILURES = 4
EXIT_INTERRUPTED = 130


HELP = __doc__


def _impl_names(text: str) -> list[str]:
    """--impl a,b: one or more names (tox passes an environment's HARNESS_IMPLS as one argument)."""
    names = text.split(",")
    if not all(names):
        raise argparse.ArgumentTypeError(f"an empty implementation name in {text!r}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--impl", action="extend", type=_impl_names, metavar="NAME[,NAME...]",
                   help="implementations to run (repeatable, or comma-separated); default: every one "
                        "importable here (see `python -m harness impls`)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="ci",
                   help="which cases to draw: ci = the corpus cases chosen to test every rule "
                        "(harness/ci_selection.json), " + ", ".join(f"{k} = the first {v}" for k, v in PROFILES.items() if v))
    p.add_argument("-n", type=int, help="number of drawn cases: the first N of the corpus (overrides --profile)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed corpus (same ids everywhere; "
                                                        "ci's cases are chosen from seed 0's)")
    p.add_argument("--values-per-structure", type=int, default=1, metavar="K",
                   help="draw each structure K times in a row with new values (weights, inputs, targets, "
                        "sample weights): one compiled model serves all K, so K > 1 explores values "
                        "several times faster than structures (default 1)")
    p.add_argument("--cases", type=Path, action="append", metavar="DIR",
                   help="stored cases to run as well (repeatable; default: cases/)")
    p.add_argument("--no-stored", action="store_true", help="run drawn cases only")
    p.add_argument("--env", default=os.environ.get("TOX_ENV_NAME", "local"),
                   help="environment name: results go to reports/results/<env>.jsonl (default: $TOX_ENV_NAME or 'local')")
    p.add_argument("--out", type=Path, help="results file (overrides --env); the case files that replay lines "
                                            "name go beside it, in <stem>-cases/")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an existing results file, skipping done cases")
    g.add_argument("--overwrite", action="store_true", help="start the results file over")
    p.add_argument("--strict", metavar="PROFILE",
                   help="judge every implementation against this one profile (e.g. tf_keras-2.21)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes at once (default 1): implementations run side by side, and jobs beyond their number split one implementation's cases")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case before a worker is killed")
    p.add_argument("--exit-zero", action="store_true",
                   help="exit 0 even with unexplained findings (1) or failures (4) "
                        "(tox: they go to the report)")


def _available_impls(requested: list[str] | None) -> list[str]:
    from harness import impls

    if requested:
        unknown = [n for n in requested if n not in impls.IMPLEMENTATIONS]
        if unknown:
            raise SystemExit(_usage_error(f"--impl: unknown implementation {', '.join(unknown)}; "
                                          f"expected one of {', '.join(impls.IMPLEMENTATIONS)}"))
        return requested
    # Cheap: which implementations' distributions are installed here (no framework import).
    # One that then fails to import is recorded by the driver as import-error, not skipped.
    return [name for name, impl in impls.IMPLEMENTATIONS.items() if not impls.unmet_requirements(impl)]


def _usage_error(message: str) -> int:
    print(f"harness: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def load_stored(dirs: list[Path]) -> list[spec.Case]:
    """Every *.json under the given folders, sorted by path; a malformed file stops the run (exit 2)."""
    cases = []
    for d in dirs:
        if not d.exists():
            raise spec.CaseError(str(d), "(folder)", "an existing folder of case files")
        if not d.is_dir():
            raise spec.CaseError(str(d), "(folder)", "a folder of case files, not a file (--cases DIR)")
        for path in sorted(d.rglob("*.json")):
            cases.append(spec.load(path))
    return cases


def drawn_cases(profile: str, n: int | None, seed: int, values_per_structure: int = 1) -> list[spec.Case]:
    """The drawn cases of a settings profile: the recorded rule cover for ci, else the first n of
    the corpus. A ci run whose selection is stale (other semantics or vocabulary) says so on
    stderr and runs the recorded cases all the same."""
    from harness import selection, strategies

    if n is None and PROFILES[profile] is None:
        chosen = selection.load()
        if seed != chosen.seed:
            raise SystemExit(_usage_error(f"--seed {seed}: the ci cases are chosen from the corpus of seed "
                                          f"{chosen.seed} ({selection.FILE.name}); for another seed give -n N"))
        if chosen.stale():
            print(f"harness: warning: {selection.FILE} was chosen for other semantics, vocabulary or tolerances "
                  f"(key {chosen.key}); its cases run, but may leave rules untested: {selection.REGENERATE}",
                  file=sys.stderr)
        return chosen.cases(values_per_structure)
    n = PROFILES[profile] if n is None else n
    return strategies.corpus(seed=seed, n=n, values_per_structure=values_per_structure) if n > 0 else []


def collect_cases(args: argparse.Namespace) -> list[spec.Case]:
    drawn = drawn_cases(args.profile, args.n, args.seed, args.values_per_structure)
    stored = [] if args.no_stored else load_stored(args.cases or [Path("cases")])
    seen, cases = set(), []
    for case in stored + drawn:
        if case.id not in seen:
            seen.add(case.id)
            cases.append(case)
    return cases


def _check_options(args: argparse.Namespace) -> None:
    """Options whose bad values would otherwise be recorded as results (every case a timeout,
    every verdict an error of the engine): refuse them before anything is written."""
    from harness.reference import rules

    if args.strict is not None and args.strict not in rules.PROFILES:
        raise SystemExit(_usage_error(f"--strict: unknown profile {args.strict!r}; "
                                      f"expected one of {', '.join(rules.PROFILES)}"))
    check_timeout(args.timeout)
    if args.values_per_structure < 1:
        raise SystemExit(_usage_error(f"--values-per-structure: expected an integer >= 1, got {args.values_per_structure}"))
    if args.n is not None and args.n < 0:
        raise SystemExit(_usage_error(f"-n: expected a number of drawn cases >= 0, got {args.n}"))
    if args.jobs < 1:
        raise SystemExit(_usage_error(f"--jobs: expected a number of worker processes >= 1, got {args.jobs}"))
    if args.out is None and (not args.env or "/" in args.env or args.env in (".", "..")):
        raise SystemExit(_usage_error(f"--env: expected a name for reports/results/<env>.jsonl (no '/'), "
                                      f"got {args.env!r}; use --out for a path"))
    if args.no_stored and args.cases:
        raise SystemExit(_usage_error("--cases and --no-stored: expected one of them (--no-stored runs no "
                                      "stored case, so --cases would be ignored)"))


def check_timeout(seconds: float) -> None:
    """--timeout: a finite number of seconds > 0 and at most MAX_TIMEOUT (else exit 2)."""
    if not 0 < seconds <= MAX_TIMEOUT:  # also refuses nan
        raise SystemExit(_usage_error(f"--timeout: expected a number of seconds > 0 and at most "
                                      f"{MAX_TIMEOUT:.0f}, got {seconds}"))


def run(args: argparse.Namespace) -> int:
    # SIGTERM (a CI runner's timeout, `kill`) and SIGHUP (the terminal closed) stop like Ctrl-C:
    # workers live in their own process group (harness.driver), so only the driver stops them.
    # SIGINT too, explicitly: a shell starts background jobs (`cmd &`) with SIGINT ignored, and
    # Python then installs no handler of its own (seen: a CI script run that way ignored it).
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.default_int_handler)
    try:
        return _run(args)
    except KeyboardInterrupt:
        out = args.out or DEFAULT_RESULTS_DIR / f"{args.env}.jsonl"
        print(f"harness run: interrupted; the finished cases are in {out}; "
              "run the same command with --resume to do the rest", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from harness import driver
    from harness.resultsfile import ResultsError, ResultsLocked, ResultsWriter

    try:
        _check_options(args)
        impls = _available_impls(args.impl)
        cases = collect_cases(args)
    except spec.CaseError as exc:
        return _usage_error(str(exc))
    if not impls:
        return _usage_error("no implementation is importable here (see `python -m harness impls`)")
    out = args.out or DEFAULT_RESULTS_DIR / f"{args.env}.jsonl"
    try:
        writer = ResultsWriter(out, resume=args.resume, overwrite=args.overwrite)
    except (ResultsLocked, FileExistsError, ResultsError) as exc:
        return _usage_error(str(exc))
    print(f"harness run: {len(cases)} cases x {len(impls)} implementations -> {out}", file=sys.stderr)
    started = time.monotonic()

    def progress(p: "driver.ImplProgress") -> None:
        counts = " ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
        print(f"  [{p.impl}] {p.done}/{p.total} cases  ({counts})", file=sys.stderr, flush=True)

    try:
        with writer:
            progresses = driver.run_all(impls, cases, writer, jobs=args.jobs, case_timeout=args.timeout,
                                        strict_profile=args.strict, on_progress=progress)
    except OSError as exc:
        print(f"harness run: stopped: {type(exc).__name__}: {exc}; the complete records written before "
              f"it are in {out}; fix the cause and run the same command with --resume", file=sys.stderr)
        return EXIT_STOPPED
    for p in progresses:
        if p.stopped:
            print(f"harness run: {p.stopped}", file=sys.stderr)
    summary = summarize(out, impls)
    print(f"harness run: {time.monotonic() - started:.1f} s; results in {out}; "
          f"unexplained {summary.unexplained}, failures {summary.failures}")
    return 0 if args.exit_zero else exit_status(summary)


@dataclass(frozen=True)
class Summary:
    unexplained: int  # unexplained verdicts (case, implementation, verdict key)
    failures: int  # verdicts of a FAILURE_VERDICTS kind


def exit_status(summary: Summary) -> int:
    """4 on failures (they win over findings: the run is incomplete), else 1 on findings, else 0."""
    if summary.failures:
        return EXIT_FAILURES
    if summary.unexplained:
        return EXIT_FINDINGS
    return 0


def cases_dir(results_path: Path) -> Path:
    """Where a run writes the case files its replay lines name: beside its results file, one
    folder per results file (environments share no writable state)."""
    return results_path.with_name(results_path.stem + "-cases")


def summary_key(key: str) -> str:
    """The row a verdict is counted in: path/mode as it is; gradient verdicts of every weight in
    one row per kind ("gradient/<weight>", "gradient/<weight>/sgd_update"), the same for a
    distributed run's gradients ("distribution/gradient/...")."""
    head, _, rest = key.rpartition("gradient/")
    if not _ or rest in ("loss", "*"):
        return key
    return f"{head}gradient/<weight>" + ("/sgd_update" if rest.endswith("/sgd_update") else "")


def summarize(path: Path, impls: list[str] | None = None) -> Summary:
    """Print implementation x verdict-key counts from a results file; list each unexplained
    verdict (FINDING) and each failure (ERROR) with a replay command, writing the case file it
    names (cases_dir(path)/<case id>.json) if it is not there yet."""
    from harness import resultsfile
    from harness.compare import FAILURE_VERDICTS

    data = resultsfile.read(path)
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    findings, failures = [], []
    for rec in data.results:
        if impls and rec["impl"] not in impls:
            continue
        for key, v in rec.get("verdicts", {}).items():
            label = v["verdict"]
            if label == "explained":
                label = "explained:" + "+".join(sorted(v.get("rules", {})))
            table[(rec["impl"], summary_key(key))][label] += 1
            if v["verdict"] == "unexplained":
                findings.append((rec, key, v))
            elif v["verdict"] in FAILURE_VERDICTS:
                failures.append((rec, key, v))
    for (impl, key), counts in sorted(table.items()):
        text = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        print(f"{impl:22s} {key:28s} {text}")
    for rec, key, v in findings:
        print(f"FINDING {rec['impl']} {key} case {rec['case_id']}: {v.get('stage')} "
              f"value {v.get('value')} reference {v.get('expected')} ({v.get('reason') or ''})\n"
              f"  {_replay_line(path, data, rec)}")
    for rec, key, v in failures:
        print(f"ERROR {rec['impl']} {key} case {rec['case_id']}: {v['verdict']}: {_first_line(v.get('reason'))}\n"
              f"  {_replay_line(path, data, rec)}")
    return Summary(unexplained=len(findings), failures=len(failures))


def _replay_line(path: Path, data: Any, rec: dict[str, Any]) -> str:
    case_id = rec["case_id"]
    if case_id not in data.cases:
        return f"replay: (no case record for {case_id} in {path})"
    case_file = cases_dir(path) / f"{case_id}.json"
    if not case_file.exists():
        case_file.parent.mkdir(parents=True, exist_ok=True)
        partial = case_file.with_name(case_file.name + ".tmp")
        spec.dump(spec.from_json(data.cases[case_id], str(path)), partial)
        os.replace(partial, case_file)  # a case file that exists is complete
    return f"replay: python -m harness replay {case_file} --impl {rec['impl']}"


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
