"""`python -m harness --help` lists every command with a real one-line description, and neither
it nor a command's own --help (nor `cases`) imports an ML framework: the commands are imported
only when they run, and the lines come from harness.cli.COMMANDS."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import COMMANDS

FRAMEWORKS = ("tensorflow", "tf_keras", "keras", "jax", "torch")
MOTIVATING = Path(__file__).resolve().parent.parent / "cases" / "motivating_two_outputs.json"

# Runs harness.cli.main(argv) and reports its stdout and the frameworks then in sys.modules.
PROBE = """
import contextlib, io, json, sys
from harness import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = cli.main(sys.argv[1:])
    except SystemExit as exc:
        status = exc.code
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(FRAMEWORKS))
print(json.dumps({"status": status, "stdout": out.getvalue(), "frameworks": loaded}))
"""


def probe(*argv: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", f"FRAMEWORKS = {FRAMEWORKS!r}\n{PROBE}", *argv],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80"})  # an 80-column terminal
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_help_lists_every_command_with_its_line_on_one_80_column_line() -> None:
    got = probe("--help")
    assert got["status"] == 0
    for name, (_, summary) in COMMANDS.items():
        assert summary and not summary.startswith("(see"), f"{name}: no real description"
        assert re.search(rf"^    {re.escape(name)} +{re.escape(summary)}$", got["stdout"], re.M), \
            f"{name}: {summary!r} is not one line of\n{got['stdout']}"


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS),
                                  ["cases", "--show", str(MOTIVATING)]], ids=" ".join)
def test_help_and_cases_import_no_framework(argv: list[str]) -> None:
    got = probe(*argv)
    assert got["status"] == 0, got
    assert got["frameworks"] == [], f"python -m harness {' '.join(argv)} imported {got['frameworks']}"
