"""`python -m harness impls`: which implementations this Python can run, and their versions.

Each implementation is probed in its own subprocess (`python -m harness.worker --impl NAME`
with an empty stdin): the worker checks the registry's `requires`, sets the environment,
imports the adapter and writes its header, whose `versions` or `import_error` is shown. The
probes run one at a time (each imports a framework: seconds, and memory) with a timeout each.
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.impls import IMPLEMENTATIONS, unmet_requirements

HELP = """List the implementations (harness.impls) and whether each is importable here.

  python -m harness impls [--python PATH] [--timeout S] [--json] [NAME ...]
  python -m harness impls --github-matrix

Each is probed in a subprocess worker with a timeout; the table shows its exact versions or
why it cannot run. --json writes one JSON object per implementation instead. --github-matrix
prints the matrix of .github/workflows/matrix.yml as one line of JSON, {"toxenv": [...]}: every
environment of tox.ini's labels core, sweep and nightly. The workflow's `plan` job runs it, so
the matrix is tox's (tests/test_implementation_record.py checks the workflow reads it).
"""

DEFAULT_TIMEOUT = 180.0  # seconds: importing TensorFlow + Keras cold can take a while
TOX_INI = Path(__file__).resolve().parents[2] / "tox.ini"
# The labels of tox.ini whose environments .github/workflows/matrix.yml runs, one job each (its
# `plan` job prints them with `impls --github-matrix`): the core matrix, the sweep, the next Keras.
GITHUB_LABELS = ("core", "sweep", "nightly")


def expand(text: str) -> list[str]:
    """tox's environment lists: "a{1,2}-{x,y}, b" -> a1-x, a1-y, a2-x, a2-y, b (commas inside braces
    are choices, commas outside separate names)."""
    names: list[str] = []
    for item in re.split(r",(?![^{]*\})", text):
        parts = re.split(r"\{([^}]*)\}", item.strip())  # literal, choices, literal, choices, ...
        combos = [""]
        for i, part in enumerate(parts):
            choices = part.split(",") if i % 2 else [part]
            combos = [combo + choice.strip() for combo in combos for choice in choices]
        names += [combo for combo in combos if combo]
    return names


def read_tox_ini(path: Path = TOX_INI) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(path, encoding="utf-8")
    return config


def tox_label(label: str, path: Path = TOX_INI) -> list[str]:
    """The environments of one of tox.ini's labels, in its order (as `tox -l -m LABEL` lists them)."""
    for line in read_tox_ini(path)["tox"]["labels"].splitlines():
        name, _, envs = line.partition("=")
        if name.strip() == label:
            return expand(envs)
    raise KeyError(f"tox.ini has no label {label!r}")


def github_matrix(path: Path = TOX_INI) -> dict[str, list[str]]:
    """The matrix of .github/workflows/matrix.yml: {"toxenv": every environment of GITHUB_LABELS}."""
    envs = [env for label in GITHUB_LABELS for env in tox_label(label, path)]
    return {"toxenv": list(dict.fromkeys(envs))}


def probe(name: str, python: str = sys.executable, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """{"impl", "importable", "versions", "reason", "seconds"} for one implementation."""
    started = time.perf_counter()
    record: dict[str, Any] = {"impl": name, "importable": False, "versions": {}, "reason": ""}
    if python == sys.executable:  # cheap pre-check without a subprocess, same answer as the worker's
        unmet = unmet_requirements(IMPLEMENTATIONS[name])
        if unmet:
            record["reason"] = "; ".join(unmet)
            record["seconds"] = round(time.perf_counter() - started, 2)
            return record
    try:
        proc = subprocess.run([python, "-m", "harness.worker", "--impl", name], input="",
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        record["reason"] = f"no header within {timeout:.0f} s"
    except OSError as exc:
        record["reason"] = f"cannot start {python}: {exc}"
    else:
        header = _first_json(proc.stdout)
        if header is None:
            tail = proc.stderr.strip().splitlines()[-1:] or [""]
            record["reason"] = f"worker exited {proc.returncode} without a header: {tail[0]}"
        else:
            record["versions"] = header.get("versions", {})
            record["importable"] = "import_error" not in header
            record["reason"] = header.get("import_error", "")
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def _first_json(text: str) -> dict[str, Any] | None:
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and value.get("kind") == "header":
            return value
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="implementations to probe (default: all)")
    p.add_argument("--python", default=sys.executable, help="the interpreter to probe (default: this one)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per probe")
    p.add_argument("--json", action="store_true", help="one JSON object per implementation")
    p.add_argument("--github-matrix", action="store_true",
                   help="print the matrix of .github/workflows/matrix.yml as JSON: tox.ini's labels "
                        + ", ".join(GITHUB_LABELS))


def run(args: argparse.Namespace) -> int:
    if args.github_matrix:
        print(json.dumps(github_matrix()))
        return 0
    names = args.names or list(IMPLEMENTATIONS)
    unknown = [n for n in names if n not in IMPLEMENTATIONS]
    if unknown:
        print(f"unknown implementation(s): {', '.join(unknown)}; known: {', '.join(IMPLEMENTATIONS)}",
              file=sys.stderr)
        return 2
    shown = ("tensorflow", "keras", "tf_keras", "jax", "torch", "backend")
    if not args.json:
        print(f"{'implementation':<18} {'here':<4} " + " ".join(f"{k:<11}" for k in shown) + " note")
    for name in names:
        record = probe(name, args.python, args.timeout)
        if args.json:
            print(json.dumps(record), flush=True)
            continue
        v = record["versions"]
        cells = " ".join(f"{(v.get(k) or '-'):<11}" for k in shown) if record["importable"] else " ".join(
            f"{'':<11}" for _ in shown)
        note = record["reason"] or IMPLEMENTATIONS[name].family
        print(f"{name:<18} {'yes' if record['importable'] else 'no':<4} {cells} {note}", flush=True)
    return 0
