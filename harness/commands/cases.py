"""`python -m harness cases`: draw, write, show and count Cases."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from harness import spec

HELP = """Draw Cases and look at them.

  --stats -n 1000 [--seed N] [--hypothesis]
      How often each feature (harness.features.FEATURES) appears in n drawn cases, as a
      count and a percentage; features below 10% (one layer type: 5%) are flagged LOW and
      the exit status is 1.
      Cases come from the fixed-seed corpus (harness.strategies.corpus) unless --hypothesis,
      which draws them through Hypothesis (seeded by --seed) as the property tests do.
      A loss option (huber delta, focal gamma/alpha/class balancing) is reported as a share
      of the cases that use its loss. Losses are reported as one group line: with 16 losses
      drawn uniformly per output, one loss cannot be in 10% of cases by design; the line
      gives the spread (least and most frequent), and a loss under 5% or missing is flagged.
  --write DIR -n N --seed S
      Write the fixed-seed corpus as DIR/<id>.json (the same files in every environment).
  --show FILE
      Pretty-print one case file with its id and features, after validating it
      (exit 2 with the CaseError message if it is malformed).
  --coverage [--profile NAME ...] [--seed S -n N | --corpus ci|dev|deep] [--cases DIR ...] [--json]
      Rule coverage (harness.coverage), with the reference alone: for each profile, which
      single rule changes and dependent pairs of changes alter some value (total, per-term /
      per-output log, predicted error, predictions, gradient) on some loss path beyond the
      engine's tolerance on some case, naming the first such case, path and value; the others
      are "not tested by any case here". Cases: the main job's corpus by default (run's `ci`
      settings profile: its drawn cases plus the stored cases/), --corpus NAME for another
      settings profile of `run`, -n N drawn cases of seed S (plus --cases DIR if given), or
      --cases DIR alone for stored cases only. Profiles: the core matrix's by default
      (tf_keras-2.21, keras-3.15[-jax|-torch|-numpy], keras-2.3.1, tf.keras-2.15); any name
      rules.profile resolves. --no-pairs skips dependent pairs,
      --no-gradients the gradient comparison. Progress and wall times go to stderr.
  --select [--candidates N] [--jobs J] [--save [FILE]]
      Choose the main job's `ci` cases (harness.selection): of the first N cases of the corpus
      of seed 0 (default 300), the fewest a greedy set cover needs so that, beside the stored
      cases/, every single rule change that some candidate distinguishes is distinguished for
      every core profile. Prints the picks and, per profile, each change
      no candidate distinguishes with the reason. Reference only; J worker processes (default
      1); progress on stderr. --save writes the result to harness/ci_selection.json (or FILE),
      the derived file `run --profile ci` reads (never edit it by hand).
"""

THRESHOLD = 10.0  # percent of cases each feature must reach
# Percent of cases each individual loss and layer must reach (issue 19's bar): 20 losses and 11
# body layers, 6 of them only on a sequence, cannot each reach 10% (tests/test_strategies.py).
ENTRY_THRESHOLD = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--stats", action="store_true", help="feature frequencies over n drawn cases")
    what.add_argument("--write", metavar="DIR", help="write the fixed-seed corpus to DIR/<id>.json")
    what.add_argument("--show", metavar="FILE", help="validate and pretty-print one case file")
    what.add_argument("--coverage", action="store_true",
                      help="which rule changes the cases distinguish (reference only)")
    what.add_argument("--select", action="store_true",
                      help="choose the ci corpus: the fewest cases that test every rule (reference only)")
    p.add_argument("-n", type=int, default=None,
                   help="number of cases (default 1000; --coverage: drawn cases instead of --corpus)")
    p.add_argument("--seed", type=int, default=0, help="corpus / Hypothesis seed (default 0)")
    p.add_argument("--hypothesis", action="store_true", help="--stats: draw through Hypothesis, not the corpus")
    p.add_argument("--verbose", action="store_true", help="--stats: also list every loss")
    p.add_argument("--profile", action="append", metavar="NAME",
                   help="--coverage: semantics profile (repeatable; default: the core matrix)")
    p.add_argument("--corpus", metavar="SETTINGS",
                   help="--coverage: the cases of `run --profile SETTINGS` (ci, dev, deep): drawn plus stored")
    p.add_argument("--cases", type=Path, action="append", metavar="DIR",
                   help="--coverage: stored cases (repeatable); alone: only these")
    p.add_argument("--json", action="store_true", help="--coverage: machine-readable output on stdout")
    p.add_argument("--no-pairs", action="store_true", help="--coverage: single rule changes only")
    p.add_argument("--no-gradients", action="store_true", help="--coverage: do not compare gradients")
    p.add_argument("--candidates", type=int, default=None, metavar="N",
                   help="--select: corpus cases to choose from (default 300)")
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="--select: worker processes (default 1)")
    p.add_argument("--save", nargs="?", const="", default=None, metavar="FILE",
                   help="--select: write the selection (default file: harness/ci_selection.json)")


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 done, 1 --stats flagged a LOW feature, 2 bad input (a malformed case
    file, a bad -n, a --write target that is not a folder)."""
    if args.show:
        return _show(args.show)
    if args.coverage:
        return _coverage(args)
    if args.select:
        return _select(args)
    args.n = 1000 if args.n is None else args.n
    if args.write:
        if args.n < 0:
            return _bad_input(f"-n: expected a number of cases >= 0, got {args.n}")
        if Path(args.write).exists() and not Path(args.write).is_dir():
            return _bad_input(f"--write {args.write}: expected a folder (or a path to create one), got a file")
        return _write(Path(args.write), args.n, args.seed)
    if args.n < 1:
        return _bad_input(f"-n: expected a number of cases >= 1 to count features over, got {args.n}")
    return _stats(args.n, args.seed, args.hypothesis, args.verbose)


def coverage_cases(args: argparse.Namespace) -> tuple[list[spec.Case], str]:
    """The cases --coverage measures and a description of them (a spec.CaseError or ValueError on bad input)."""
    from harness import strategies
    from harness.commands.run import PROFILES, drawn_cases, load_stored

    if args.n is not None and args.corpus is not None:
        raise ValueError("-n and --corpus: expected one of them (--corpus SETTINGS draws run's number of cases)")
    if args.corpus is not None and args.corpus not in PROFILES:
        raise ValueError(f"--corpus: unknown settings profile {args.corpus!r}; expected one of {', '.join(PROFILES)}")
    if args.n is not None and args.n < 0:
        raise ValueError(f"-n: expected a number of drawn cases >= 0, got {args.n}")
    if args.n is not None:
        n, dirs = args.n, list(args.cases or [])
        drawn = strategies.corpus(seed=args.seed, n=n) if n else []
    elif args.corpus is None and args.cases:
        n, dirs, drawn = 0, list(args.cases), []
    else:
        dirs = list(args.cases or [Path("cases")])
        drawn = drawn_cases(args.corpus or "ci", None, args.seed)
        n = len(drawn)
    stored = load_stored(dirs) if dirs else []
    seen, cases = set(), []
    for case in stored + drawn:  # as `run` orders and deduplicates them
        if case.id not in seen:
            seen.add(case.id)
            cases.append(case)
    parts = ([f"{len(stored)} stored ({', '.join(map(str, dirs))})"] if dirs else []) + (
        [f"{len(drawn)} drawn (seed {args.seed})"] if n else [])
    what = f"corpus {args.corpus or 'ci'}: " if args.n is None and (args.corpus or not args.cases) else ""
    return cases, what + " + ".join(parts)


def _coverage(args: argparse.Namespace) -> int:
    import json

    from harness import coverage as coverage_mod
    from harness import selection
    from harness.reference import rules

    names = args.profile or list(selection.PROFILES)
    for name in names:
        try:
            rules.profile(name)
        except Exception as exc:  # semantics.SemanticsError, KeyError: an unknown or malformed name
            return _bad_input(f"--profile: unknown profile {name!r} ({exc}); known: {', '.join(rules.PROFILES)}")
    try:
        cases, what = coverage_cases(args)
    except (spec.CaseError, ValueError) as exc:
        return _bad_input(str(exc))
    print(f"rule coverage of {len(cases)} cases ({what}) for {len(names)} profiles", file=sys.stderr, flush=True)
    results = []
    start = time.perf_counter()
    for name in names:
        def progress(i: int, n: int, seconds: float, name: str = name) -> None:
            if (i + 1) % 50 == 0 and i + 1 < n:
                print(f"  {name}: {i + 1}/{n} cases, {seconds:.1f} s", file=sys.stderr, flush=True)

        cov = coverage_mod.coverage(cases, name, gradients=not args.no_gradients, pairs=not args.no_pairs,
                                    progress=progress)
        s, m = cov.count("single")
        ps, pm = cov.count("pair")
        print(f"  {name}: {s}/{m} single, {ps}/{pm} pairs, {cov.seconds:.1f} s", file=sys.stderr, flush=True)
        results.append(cov)
    total = time.perf_counter() - start
    if args.json:
        print(json.dumps({"cases": len(cases), "case_ids": [c.id for c in cases], "source": what,
                          "seconds": round(total, 3), "profiles": [c.to_json() for c in results]}, indent=1))
    else:
        for cov in results:
            _print_coverage(cov, pairs=not args.no_pairs)
    print(f"rule coverage: {len(names)} profiles x {len(cases)} cases in {total:.1f} s", file=sys.stderr)
    return 0


def _select(args: argparse.Namespace) -> int:
    from harness import selection
    from harness.commands.run import load_stored

    candidates = selection.CANDIDATES if args.candidates is None else args.candidates
    if candidates < 1:
        return _bad_input(f"--candidates: expected a number of corpus cases >= 1, got {candidates}")
    if args.jobs < 1:
        return _bad_input(f"--jobs: expected a number of worker processes >= 1, got {args.jobs}")
    try:
        stored = load_stored(list(args.cases or [Path("cases")]))
    except spec.CaseError as exc:
        return _bad_input(str(exc))
    target = Path(args.save) if args.save else selection.FILE
    print(f"choosing the ci corpus from {candidates} candidates beside {len(stored)} stored cases, "
          f"{len(selection.PROFILES)} profiles, {args.jobs} job(s)", file=sys.stderr, flush=True)

    def progress(done: int, total: int, seconds: float) -> None:
        if done % 25 == 0 or done == total:
            print(f"  {done}/{total} cases measured, {seconds:.0f} s", file=sys.stderr, flush=True)

    chosen = selection.choose(stored, candidates=candidates, jobs=args.jobs, progress=progress)
    print(selection.text(chosen))
    if args.save is not None:
        selection.write(chosen, target)
        print(f"wrote {target}", file=sys.stderr)
    return 0


def _print_coverage(cov: Any, pairs: bool) -> None:
    from harness.coverage import label

    s, m = cov.count("single")
    print(f"{cov.profile}: {s} of {m} rule changes distinguished by {cov.cases} cases ({cov.seconds:.1f} s)")
    groups = [("single", [(f,) for f in cov.singles])]
    if pairs:
        ps, pm = cov.count("pair")
        print(f"  and {ps} of {pm} dependent pairs (B matters once A is made) found on these cases")
        groups.append(("pair", [tuple(p) for p in cov.pairs]))
    for kind, changes in groups:
        width = max((len(label(c)) for c in changes), default=0)
        for change in changes:
            d = cov.decision(change)
            verdict = f"distinguished by {d.describe()}" if d else "not tested by any case here"
            print(f"  {label(change):<{width}}  {verdict}")


def _bad_input(message: str) -> int:
    print(f"harness cases: error: {message}", file=sys.stderr)
    return 2


def _show(path: str) -> int:
    from harness.features import features

    try:
        case = spec.load(path)
    except spec.CaseError as exc:
        return _bad_input(str(exc))
    print(spec.pretty(case))
    print(f"# id {case.id}; valid", file=sys.stderr)
    print("# features: " + " ".join(sorted(features(case))), file=sys.stderr)
    return 0


def _progress(i: int, n: int, start: float) -> None:
    if n >= 200 and (i + 1) % 200 == 0:
        print(f"  {i + 1}/{n} cases, {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def _write(directory: Path, n: int, seed: int) -> int:
    from harness.strategies import corpus_case

    directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for i in range(n):
        case = corpus_case(seed, i)
        spec.dump(case, directory / f"{case.id}.json")
        _progress(i, n, start)
    print(f"wrote {n} cases (seed {seed}) to {directory}", file=sys.stderr)
    return 0


def draw_with_hypothesis(n: int, seed: int, **constraints: Any) -> list[spec.Case]:
    """n Cases as Hypothesis generates them for a property test (generate phase only, seeded)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from harness.strategies import cases

    drawn: list[spec.Case] = []

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(cases(**constraints))
    def collect(case: spec.Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def _stats(n: int, seed: int, use_hypothesis: bool, verbose: bool) -> int:
    from harness import vocabulary
    from harness.features import CONDITIONS, FEATURES, all_features, features
    from harness.strategies import corpus_case

    start = time.perf_counter()
    if use_hypothesis:
        print(f"drawing {n} cases through Hypothesis (seed {seed}) ...", file=sys.stderr, flush=True)
        drawn = draw_with_hypothesis(n, seed)
    else:
        drawn = []
        for i in range(n):
            drawn.append(corpus_case(seed, i))
            _progress(i, n, start)
    counts = {name: 0 for name in all_features()}
    for case in drawn:
        for name in features(case):
            counts[name] = counts.get(name, 0) + 1
    total = len(drawn)
    source = "Hypothesis" if use_hypothesis else "corpus"
    print(f"features of {total} cases ({source}, seed {seed}); LOW = below {THRESHOLD:.0f}% "
          f"(one layer or loss: below {ENTRY_THRESHOLD:.0f}%)")
    low: list[str] = []
    width = max(map(len, counts)) + 2
    for name in all_features():
        if name.startswith("loss:"):
            continue
        count = counts[name]
        cond = CONDITIONS.get(name)
        base = counts[cond] if cond else total
        pct = 100.0 * count / base if base else 0.0
        flag = "  LOW" if pct < (ENTRY_THRESHOLD if name.startswith("layer:") else THRESHOLD) else ""
        if flag:
            low.append(name)
        where = f"  of {base} cases with {cond}" if cond else ""
        print(f"  {name:<{width}}{count:>6}  {pct:5.1f}%{where}{flag}")
    loss_pct = {name: 100.0 * counts[f"loss:{name}"] / total for name in vocabulary.LOSSES}
    lo = min(loss_pct, key=loss_pct.get)
    hi = max(loss_pct, key=loss_pct.get)
    low_losses = [name for name, p in loss_pct.items() if p < ENTRY_THRESHOLD]
    flag = "  LOW: " + ", ".join(low_losses) if low_losses else ""
    print(f"  {'loss:* (' + str(len(loss_pct)) + ' losses)':<{width}}"
          f"  min {loss_pct[lo]:.1f}% ({lo}), max {loss_pct[hi]:.1f}% ({hi}){flag}")
    if verbose:
        for name, p in sorted(loss_pct.items(), key=lambda kv: kv[1]):
            print(f"    loss:{name:<{width - 5}}{counts['loss:' + name]:>6}  {p:5.1f}%")
    low += [f"loss:{n}" for n in low_losses]
    print(f"{len(FEATURES)} named features + {len(all_features()) - len(FEATURES)} vocabulary features; "
          f"{len(low)} LOW{': ' + ', '.join(low) if low else ''}; {time.perf_counter() - start:.1f} s")
    return 1 if low else 0
