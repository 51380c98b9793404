"""The worker: one implementation, one process, a stream of Cases in and Results out.

    python -m harness.worker --impl NAME

Protocol (JSON lines, UTF-8, one object per line, each line flushed as written):

1. The worker sets the implementation's environment (harness.impls: `COMMON_ENV`, the entry's
   `env`, and HARNESS_IMPL=NAME) before importing anything of a framework, imports the adapter
   module, and writes a header on stdout:
       {"kind": "header", "schema": 1, "impl": NAME, "versions": {...VERSION_KEYS...}}
   If the adapter cannot be imported (framework missing, wrong version, crash in import), the
   header carries `"import_error": "<Type>: <message>"` (versions as far as known) and the
   worker exits with status 3. An unknown NAME, or an unmet `requires` of the registry entry
   (checked from distribution metadata before any import), is an import error too.
2. Then it reads stdin line by line. Each non-blank line is one Case in the canonical JSON of
   harness.spec.dumps. For each, it writes exactly one line:
       {"kind": "result", ...ImplResult.to_json()...}      the case ran (paths inside say how)
       {"kind": "error", "message": "..."}                  the line is not a valid Case
   and goes on with the next line. End of input ends the worker (exit status 0).

Only these lines go to stdout. Frameworks print to fd 1 from Python and from C++ (TensorFlow,
XLA, absl); so the worker keeps a duplicate of the original stdout for its own lines and points
fd 1 (and sys.stdout) at stderr for everything else, before any framework is imported.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from typing import IO, Any

from harness.impls import IMPLEMENTATIONS, VERSION_KEYS, unmet_requirements
from harness.results import RESULTS_SCHEMA_VERSION, ImplResult

IMPORT_ERROR_EXIT = 3


def _claim_stdout() -> IO[str]:
    """Return a text stream on the original stdout; send fd 1 and sys.stdout to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(saved, "w", encoding="utf-8", buffering=1)


def _write(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
    out.flush()


def _header(impl: str, versions: dict[str, str], import_error: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": "header", "schema": RESULTS_SCHEMA_VERSION, "impl": impl, "versions": versions}
    if import_error is not None:
        record["import_error"] = import_error
    return record


def _known_versions() -> dict[str, str]:
    """Versions from distribution metadata, for a header whose adapter did not import."""
    import platform

    from harness.impls import installed_version

    versions = {k: installed_version(k) for k in VERSION_KEYS if k not in ("python", "backend")}
    return {"python": platform.python_version(), **versions, "backend": ""}


def load_adapter(impl: str) -> Any:
    """Set the implementation's environment and import its adapter (raises on failure)."""
    entry = IMPLEMENTATIONS.get(impl)
    if entry is None:
        raise LookupError(f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATIONS)}")
    unmet = unmet_requirements(entry)
    if unmet:
        raise ImportError(f"{impl} cannot run in this Python: " + "; ".join(unmet))
    os.environ.update(entry.environment())
    return importlib.import_module(entry.module)


def serve(impl: str, lines: IO[str], out: IO[str]) -> int:
    """Import the adapter, write the header, answer every case line. Returns the exit status."""
    try:
        adapter = load_adapter(impl)
        versions = adapter.versions()
    except BaseException as exc:  # noqa: BLE001 - any import failure is reported, not raised
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc(file=sys.stderr)
        _write(out, _header(impl, _known_versions(), f"{type(exc).__name__}: {exc}"))
        return IMPORT_ERROR_EXIT
    _write(out, _header(impl, versions))

    from harness import spec  # after the adapter: spec imports only numpy

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = spec.loads(line, source=f"<stdin line {number}>")
        except spec.CaseError as exc:
            _write(out, {"kind": "error", "message": str(exc)})
            continue
        try:
            result = adapter.run(case)
        except Exception as exc:  # an adapter bug: report it for this case and go on
            traceback.print_exc(file=sys.stderr)
            result = ImplResult(case_id=case.id, impl=impl, status="crashed",
                                message=f"adapter raised {type(exc).__name__}: {exc}")
        try:
            record = result.to_json()
            if hasattr(adapter, "keras_seconds"):  # harness.bench: the case's time inside Keras calls
                record["keras_seconds"] = round(float(adapter.keras_seconds()), 6)
            json.dumps(record, allow_nan=False)
        except (TypeError, ValueError) as exc:  # not JSON-able: an adapter bug, reported as such
            record = ImplResult(case_id=case.id, impl=impl, status="crashed",
                                message=f"result not serialisable: {type(exc).__name__}: {exc}").to_json()
        _write(out, record)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", required=True, help="one of: " + ", ".join(IMPLEMENTATIONS))
    args = parser.parse_args(argv)
    out = _claim_stdout()
    stdin = sys.stdin
    return serve(args.impl, stdin, out)


if __name__ == "__main__":
    sys.exit(main())
