"""Do two runs give the same report? (e.g. `tox -p auto` against a serial `tox`)

    python -m harness.same_report RUN_A/reports RUN_B/reports

Compares the two `findings.json` (groups, verdict counts, gradient and distribution sections,
environments) and every verdict of every results file, leaving out only what must differ
between two runs: when they were built and started, how long they took, and where the files
lay. Prints each difference and exits 1 if there is any, 0 if the reports are the same.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from harness.tolerances import REFERENCE_RTOL

# Fields that say when, how long or where, not what: removed at any depth before comparing.
VOLATILE = {"built", "seconds", "span_seconds", "started_span", "started", "file", "keras_seconds"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def comparable_verdict(verdict: dict[str, Any]) -> dict[str, Any]:
    """A verdict's JSON without times and places, its `reason` cut to the first line (see
    `verdicts`): what must be equal when the same case is judged twice."""
    out = _strip(verdict)
    if "reason" in out:
        out["reason"] = str(out["reason"]).split("\n", 1)[0]
    return out


# The reference's numbers in a verdict are the same up to REFERENCE_RTOL: the reference is float64
# and deterministic on one machine, but numpy's SIMD kernels sum in another order on another CPU
# (seen 2026-12-03: AVX-512 against the machine tests/data/results was recorded on, the last bits
# of a gradient's scale). rel_diff is itself relative, so a last-bit change of the reference moves
# it by about REFERENCE_RTOL absolute. Every other field, `value` (what Keras returned) among
# them, must be equal.
REFERENCE_NUMBERS = ("expected", "explained_value")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def same_verdict(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two verdicts (JSON) say the same: comparable_verdict's fields equal, the reference's
    numbers within REFERENCE_RTOL."""
    if a is None or b is None:
        return a is b
    a, b = comparable_verdict(a), comparable_verdict(b)
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if key in REFERENCE_NUMBERS + ("rel_diff",) and _is_number(x) and _is_number(y):
            if not math.isclose(x, y, rel_tol=REFERENCE_RTOL, abs_tol=REFERENCE_RTOL if key == "rel_diff" else 0.0):
                return False
        elif x != y:
            return False
    return True


def verdicts(folder: Path) -> dict[tuple[str, str, str, str], Any]:
    """(environment, implementation, case id, key) -> verdict, from results/*.jsonl.

    A verdict's `reason` is compared by its first line only: an exception's message goes on
    with tracebacks that name the run's own folder and TensorFlow's graph node ids
    ("div_no_nan_3/_114"), which differ from run to run (seen between two runs of one commit)."""
    out = {}
    for path in sorted((folder / "results").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("kind") == "result":
                for key, v in record.get("verdicts", {}).items():
                    out[(path.stem, record["impl"], record["case_id"], key)] = comparable_verdict(v)
    return out


def differences(a: Path, b: Path) -> list[str]:
    out = []
    fa = _strip(json.loads((a / "findings.json").read_text(encoding="utf-8")))
    fb = _strip(json.loads((b / "findings.json").read_text(encoding="utf-8")))
    for key in sorted(set(fa) | set(fb)):
        if fa.get(key) != fb.get(key):
            out.append(f"findings.json: {key} differs")
    va, vb = verdicts(a), verdicts(b)
    for key in sorted(set(va) | set(vb)):
        if not same_verdict(va.get(key), vb.get(key)):
            out.append(f"verdict {'/'.join(key)}: {va.get(key)} != {vb.get(key)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.same_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="a reports/ folder (findings.json and results/)")
    parser.add_argument("b", type=Path, help="another reports/ folder")
    args = parser.parse_args(argv)
    for folder in (args.a, args.b):
        if not (folder / "findings.json").is_file():
            parser.error(f"{folder}: expected a reports folder with findings.json (run `tox` or `tox -e report`)")
    diffs = differences(args.a, args.b)
    for d in diffs:
        print(d)
    n = len(verdicts(args.a))
    print(f"{len(diffs)} differences; {n} verdicts compared" if diffs else f"same report: {n} verdicts compared")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
