"""`python -m harness migrate --from DIST==V --to DIST==V [--backend B]`: what separates the two.

The rules on which the semantics of the two releases differ (any lineages: keras==2.3.1,
tensorflow==2.15 (its tf.keras), tf-keras==2.21, keras==3.15; the semantics table), and for each
rule the share of the cases whose total loss it alone changes on train_on_batch (the step the
optimizer takes) and on evaluate (the logged number), the typical size of the change and the
smallest case that shows it with both numbers; then all the rules at once. Reference only, no
framework: `python -m harness replay CASE --impl A --impl B` shows the same case on real Keras
(`python -m harness cases --write DIR` writes the drawn cases under their ids).

  python -m harness migrate --from tf-keras==2.21 --to keras==3.15
  python -m harness migrate --from keras==3.13.2 --to keras==3.15.1 --backend jax -n 200

Cases: -n drawn cases of the fixed corpus (default 60, seed 0) plus the stored cases/ (--cases DIR
for others, --no-stored for none). Exit status: 0; 2 for a bad option or case file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, metavar="DIST==VERSION",
                   help="the release migrated from, e.g. tf-keras==2.21 or keras==2.3.1")
    p.add_argument("--to", dest="target", required=True, metavar="DIST==VERSION",
                   help="the release migrated to, e.g. keras==3.15")
    p.add_argument("--backend", help="Keras 3's backend on a Keras 3 side (default tensorflow)")
    p.add_argument("-n", type=int, default=60, help="drawn cases (default 60)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    p.add_argument("--cases", action="append", type=Path, metavar="DIR", help="stored cases (default: cases/)")
    p.add_argument("--no-stored", action="store_true", help="drawn cases only")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from harness import migrate, spec, strategies
    from harness.commands.rules import AtError, query
    from harness.commands.run import load_stored
    from harness.reference import semantics

    try:
        if args.n < 0:
            raise AtError(f"-n: expected a number of drawn cases >= 0, got {args.n}")
        a, b = query(args.source, args.backend), query(args.target, args.backend)
        stored = [] if args.no_stored else load_stored(args.cases or [Path("cases")])
        cases = list({c.id: c for c in stored + strategies.corpus(seed=args.seed, n=args.n)}.values())
        result = migrate.compare_releases(a, b, cases)
    except (AtError, semantics.SemanticsError, spec.CaseError) as exc:
        print(f"harness migrate: error: {str(exc).replace('--at', '--from/--to')}", file=sys.stderr)
        return 2
    print(json.dumps(migrate.to_json(result), indent=1) if args.json else migrate.text(result), end="")
    return 0
