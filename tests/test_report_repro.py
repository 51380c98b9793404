"""A generated reproducer, run in the environment it was written for, prints the value that
implementation recorded.

For every group of the recorded results whose representative ran in an implementation this
interpreter can run (keras3-* and tf_keras in /work/venvs/core; tf.keras in a TF 2.15 env;
keras2.3.1 in an env with keras==2.3.1), the
group's script is run with `sys.executable` in a fresh process and its printed loss compared
with the recorded total of that path.

Tolerance: the script runs the same Keras code on the same float32 (or float64) data as the
adapter did, so the numbers agree to the last bits in practice; we allow 1e-6 relative (about 8
float32 ulps) for a different order of summation between a fresh process and the worker (XLA
and oneDNN may pick other kernels), far below any semantic difference the report is about.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import loading, render
from harness.results import decode_float

from test_report import RECORDED

RTOL = 1e-6


def _importable(impl: str) -> bool:
    import importlib.util

    if impl.startswith("keras3-"):
        backend = impl.split("-", 1)[1]
        if importlib.util.find_spec("keras") is None:
            return False
        import importlib.metadata as md

        if not md.version("keras").startswith("3."):
            return False
        return backend == "numpy" or importlib.util.find_spec(backend if backend != "tensorflow" else "tensorflow") is not None
    if impl in ("tf_keras", "tf_keras-graph"):
        return importlib.util.find_spec("tf_keras") is not None
    if impl in ("tf.keras", "tf.keras-graph"):
        import importlib.metadata as md

        try:
            return md.version("keras").startswith("2.1")
        except md.PackageNotFoundError:
            return False
    if impl == "keras2.3.1":
        import importlib.metadata as md

        try:
            return md.version("keras") == "2.3.1"
        except md.PackageNotFoundError:
            return False
    return False


def runnable_groups(tmp: Path) -> list[tuple[str, str, float, Path]]:
    files = sorted(RECORDED.glob("*.jsonl"))
    if not files:
        return []
    out = tmp / "index.html"
    view = render.write(files, out)
    report = loading.load(files)
    found = []
    by_slug = {g.slug: g for g in report.groups}
    for gv in view["groups"]:
        g = by_slug[gv["slug"]]
        rep = g.representative
        pr = rep.path_result or {}
        if pr.get("status") != "ok" or pr.get("total") is None or not gv["reproducer"]["text"]:
            continue
        if not _importable(rep.impl):
            continue
        found.append((rep.impl, rep.key, decode_float(pr["total"]), out.parent / "repro" / gv["reproducer"]["filename"]))
    return found


@pytest.mark.differential
def test_a_generated_reproducer_prints_the_recorded_value(tmp_path):
    groups = runnable_groups(tmp_path)
    if not groups:
        pytest.skip("no recorded group whose implementation runs in this interpreter")
    # One script per implementation family present (each start costs seconds); a non-zero
    # recorded total first (a zero, e.g. from a zero loss weight, would prove little).
    groups.sort(key=lambda g: g[2] == 0.0)
    seen, chosen = set(), []
    for impl, key, total, script in groups:
        family = loading.impl_family(impl)
        if family not in seen:
            seen.add(family)
            chosen.append((impl, key, total, script))
    for impl, key, total, script in chosen[:2]:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, f"{script} ({impl} {key}) failed:\n{proc.stderr[-3000:]}"
        match = re.search(r"^loss (\S+)$", proc.stdout, re.MULTILINE)
        assert match, proc.stdout
        printed = float(match.group(1))
        assert abs(printed - total) <= RTOL * max(abs(total), 1e-30), (
            f"{script.name}: {impl} {key} printed {printed!r}, the run recorded {total!r}")
