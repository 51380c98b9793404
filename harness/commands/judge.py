"""`python -m harness judge RESULTS...`: judge stored results again, without any framework.

Each result record of each results file (*.jsonl, or folders of them) is judged again from what
it observed, with the call `run` makes (harness.judging): its case, the versions of the
worker's header, the --strict profile `run` was given. Prints per file the verdict counts now
and every verdict that differs from the recorded one (`same_report.same_verdict`: times and
places left out, a reason compared by its first line, the reference's numbers within
REFERENCE_RTOL), with the semantics hash the file was judged with when it is not the current
one; then a total line and the seconds it took.

It writes nothing it read. `--out DIR` writes a re-judged copy of each file to DIR (same
records, the verdicts of now, the current semantics hash); a copy that would overwrite an input
is refused.

Exit status: 0 every verdict equals the recorded one; 1 some differ; 2 bad input (a file that
cannot be read, a record of another schema or with a malformed field: the message names the
file, the line and the field).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HELP = __doc__
EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar="RESULTS",
                   help="results files (*.jsonl) or folders of them")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write a re-judged copy of each file to DIR (same file names)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="files judged in N processes at once (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def judge_one(path: Path, out_dir: Path | None) -> dict[str, Any]:
    """Judge one file; returns a plain summary (picklable: --jobs runs this in other processes)."""
    from harness import judging
    from harness.resultsfile import ResultsError
    from harness.same_report import same_verdict

    started = time.monotonic()
    now_hash = judging.semantics_hash()
    counts: Counter = Counter()
    differences: list[str] = []
    hashes: Counter = Counter()
    copy: list[str] = []
    n_results = 0
    try:
        for n, record, judged in judging.judge_file(path):
            if judged is None:
                if out_dir is not None:
                    copy.append(_dump(judging.rejudged_record(record, None, now_hash)))
                continue
            n_results += 1
            hashes[judged.semantics or "(not recorded)"] += 1
            recorded = judged.recorded
            for key in sorted(set(recorded) | set(judged.verdicts)):
                now = judged.verdicts.get(key)
                if now is not None:
                    counts[now["verdict"]] += 1
                before = recorded.get(key)
                if not same_verdict(before, now):
                    differences.append(f"line {n}: {record['impl']} case {record['case_id']} {key}: "
                                       f"{_label(before)} -> {_label(now)}")
            if out_dir is not None:
                copy.append(_dump(judging.rejudged_record(record, judged.verdicts, now_hash)))
    except (ResultsError, OSError) as exc:
        return {"path": str(path), "error": _message(exc)}
    if out_dir is not None:
        target = out_dir / path.name
        partial = target.with_name(target.name + ".tmp")
        partial.write_text("".join(copy), encoding="utf-8")
        os.replace(partial, target)
    return {"path": str(path), "results": n_results, "counts": dict(counts), "differences": differences,
            "hashes": dict(hashes), "now_hash": now_hash, "seconds": time.monotonic() - started}


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=False) + "\n"


def _label(verdict: dict[str, Any] | None) -> str:
    """'agree', 'explained (rule=alt)', 'unexplained (stage)', '(none)'; with a note when only
    the details (numbers, reason) differ the verdict kind reads the same on both sides."""
    if verdict is None:
        return "(none)"
    text = verdict["verdict"]
    if verdict.get("rules"):
        text += " (" + ", ".join(f"{r}={a}" for r, a in sorted(verdict["rules"].items())) + ")"
    elif verdict.get("stage"):
        text += f" ({verdict['stage']})"
    details = {k: v for k, v in verdict.items() if k not in ("verdict", "rules", "stage", "reason") and v not in (None, "", [])}
    if details:
        text += " " + json.dumps(details, sort_keys=True)
    return text


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return f"{exc.filename or ''}: expected a readable results file: {exc.strerror or exc}"
    return str(exc)


def run(args: argparse.Namespace) -> int:
    from harness.compare import VERDICTS
    from harness.report import loading

    started = time.monotonic()
    try:
        paths = loading.results_paths(args.inputs)  # ReportInputError is a ValueError
    except ValueError as exc:
        print(f"harness judge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.jobs < 1:
        print(f"harness judge: error: --jobs: expected a number of processes >= 1, got {args.jobs}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out_dir = args.out
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            print(f"harness judge: error: --out {out_dir}: expected a folder, got a file", file=sys.stderr)
            return EXIT_BAD_INPUT
        clash = [p for p in paths if (out_dir / p.name).resolve() == p.resolve()]
        if clash:
            print(f"harness judge: error: --out {out_dir}: would overwrite the input {clash[0]}; "
                  "judge writes nothing it read: name another folder", file=sys.stderr)
            return EXIT_BAD_INPUT
        names = [p.name for p in paths]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            print(f"harness judge: error: --out {out_dir}: two inputs are named {twice[0]}", file=sys.stderr)
            return EXIT_BAD_INPUT
        out_dir.mkdir(parents=True, exist_ok=True)
    summaries = list(_judge_all(paths, out_dir, args.jobs, quiet=args.quiet))
    errors = [s for s in summaries if "error" in s]
    if errors:
        for s in errors:
            print(f"harness judge: error: {s['error']}", file=sys.stderr)
        return EXIT_BAD_INPUT
    total: Counter = Counter()
    n_diff = n_results = 0
    for s in summaries:
        counts = Counter(s["counts"])
        total += counts
        n_results += s["results"]
        n_diff += len(s["differences"])
        text = ", ".join(f"{v} {counts[v]}" for v in VERDICTS if counts[v]) or "no verdicts"
        print(f"{s['path']}: {s['results']} results, {sum(counts.values())} verdicts ({text}); "
              f"{len(s['differences'])} differ from the recorded ones")
        other = {h: n for h, n in s["hashes"].items() if h != s["now_hash"]}
        if other:
            print("  judged with other semantics than now (" + s["now_hash"] + "): "
                  + ", ".join(f"{h} ({n} results)" for h, n in sorted(other.items())))
        for line in s["differences"]:
            print(f"  {line}")
    seconds = time.monotonic() - started
    text = ", ".join(f"{v} {total[v]}" for v in VERDICTS if total[v]) or "no verdicts"
    print(f"harness judge: {len(paths)} file(s), {n_results} results, {sum(total.values())} verdicts ({text}); "
          f"{n_diff} differ from the recorded ones; {seconds:.2f} s"
          + (f"; re-judged copies in {out_dir}" if out_dir is not None else ""))
    return EXIT_DIFFERENT if n_diff else 0


def _judge_all(paths: list[Path], out_dir: Path | None, jobs: int, *, quiet: bool):
    def progress(i: int, s: dict[str, Any]) -> None:
        if not quiet and len(paths) > 1:
            print(f"  [judge] {i}/{len(paths)} {s['path']}", file=sys.stderr, flush=True)

    if jobs == 1 or len(paths) == 1:
        for i, p in enumerate(paths, start=1):
            s = judge_one(p, out_dir)
            progress(i, s)
            yield s
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        futures = [pool.submit(judge_one, p, out_dir) for p in paths]
        for i, f in enumerate(futures, start=1):
            s = f.result()
            progress(i, s)
            yield s
