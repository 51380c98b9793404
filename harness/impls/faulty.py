"""Test-only implementations: no framework, the reference's numbers, and faults on request.

Listed in the registry only when HARNESS_TEST_IMPLS=1 (harness.impls), for tests/test_faults.py,
which needs a real worker process (`python -m harness.worker --impl test-faulty`) that
segfaults, hangs, dies or answers NaN exactly when told to, and imports in a fraction of a
second. Four registry entries share this module (HARNESS_IMPL says which one is running):

    test-faulty       obeys the fault directives written in a Case's `note`
    test-steady       ignores them (the "other implementation" that must complete)
    test-import-error raises at import (its entry sets HARNESS_FAULTY_IMPORT=raise)
    test-import-hang  hangs at import (HARNESS_FAULTY_IMPORT=hang), past any start timeout,
                      after writing its pid to $HARNESS_FAULTY_PIDFILE if that is set

Directives are whitespace-separated words of the note (the Case stays pure data; a directive
is a word, never code):

    fault=segv     SIGSEGV to itself while answering the case
    fault=hang     sleep far past any per-case timeout
    fault=pid      write its pid to $HARNESS_FAULTY_PIDFILE, then sleep (the test kills it)
    fault=exit     exit with status 7 mid-case
    fault=raise    raise from run() (the worker reports it: an adapter bug, the worker lives on)
    fault=wrong-id answer a well-formed result for another case id
    fault=malformed answer a result line whose total is the string "banana"
    fault=nan | fault=inf | fault=-inf    answer this value as every path's total
    pace=SECONDS   (every test implementation) sleep that long before answering

Otherwise the answer is the NumPy reference's own total under PROFILE for the paths in PATHS,
so a run judged with `--strict tf_keras-2.21` agrees. Every case writes one line to stderr
("test-faulty: case <id> ...") as real frameworks write warnings, so stderr tails are realistic.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time

import numpy as np

from harness import reference
from harness.results import ImplResult, PathResult
from harness.spec import Case

if os.environ.get("HARNESS_FAULTY_IMPORT") == "raise":
    print("test-import-error: about to fail at import, on purpose", file=sys.stderr, flush=True)
    raise RuntimeError("test-import-error raises at import on purpose")
if os.environ.get("HARNESS_FAULTY_IMPORT") == "hang":
    print("test-import-hang: hanging at import, on purpose", file=sys.stderr, flush=True)
    if os.environ.get("HARNESS_FAULTY_PIDFILE"):
        _pidfile = os.environ["HARNESS_FAULTY_PIDFILE"]
        with open(_pidfile + ".tmp", "w") as _f:
            _f.write(str(os.getpid()))
        os.replace(_pidfile + ".tmp", _pidfile)
    time.sleep(3600)

PROFILE = "tf_keras-2.21"  # the reference profile whose totals these implementations answer
PATHS = (("compute_loss", "eager"), ("test_on_batch", "eager"))
IMPL = os.environ.get("HARNESS_IMPL", "test-faulty")
OBEYS_FAULTS = IMPL == "test-faulty"
HANG_SECONDS = 3600.0


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "numpy": np.__version__, "tensorflow": "", "keras": "",
            "tf_keras": "", "jax": "", "torch": "", "backend": ""}


def directives(case: Case) -> dict[str, str]:
    """{"fault": ..., "pace": ...} from the words of the case's note that look like key=value."""
    out = {}
    for word in case.note.split():
        key, sep, value = word.partition("=")
        if sep and key in ("fault", "pace"):
            out[key] = value
    return out


def _say(case: Case, what: str) -> None:
    print(f"{IMPL}: case {case.id}: {what}", file=sys.stderr, flush=True)


def run(case: Case) -> ImplResult:
    todo = directives(case)
    fault = todo.get("fault", "") if OBEYS_FAULTS else ""
    _say(case, f"answering (fault={fault or 'none'})")
    if "pace" in todo:
        time.sleep(float(todo["pace"]))
    if fault == "segv":
        _say(case, "segfaulting on purpose")
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(HANG_SECONDS)  # the signal is delivered before this returns
    elif fault == "hang":
        _say(case, "hanging on purpose")
        time.sleep(HANG_SECONDS)
    elif fault == "pid":
        path = os.environ["HARNESS_FAULTY_PIDFILE"]
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)  # the test sees the whole pid or nothing
        _say(case, f"waiting to be killed (pid {os.getpid()})")
        time.sleep(HANG_SECONDS)
    elif fault == "exit":
        _say(case, "exiting with status 7 on purpose")
        os._exit(7)
    elif fault == "raise":
        raise RuntimeError(f"test-faulty raises on case {case.id} on purpose")
    elif fault == "wrong-id":
        _say(case, "answering for case 0000000000000000 on purpose")
        return ImplResult(case_id="0000000000000000", impl=IMPL, status="ok")
    elif fault == "malformed":
        _say(case, "answering a malformed result on purpose")
        return _Malformed(case.id)  # type: ignore[return-value]
    paths = []
    for path, mode in PATHS:
        if fault in ("nan", "inf", "-inf"):
            total = float(fault)
        else:
            total = reference.compute(case, PROFILE, path).total
        paths.append(PathResult(path=path, mode=mode, status="ok", total=total))
    return ImplResult(case_id=case.id, impl=IMPL, status="ok", paths=paths)


class _Malformed:
    """Quacks like an ImplResult for the worker (to_json), but its JSON breaks the schema."""

    def __init__(self, case_id: str):
        self.case_id = case_id

    def to_json(self) -> dict[str, object]:
        path = {"path": "test_on_batch", "mode": "eager", "status": "ok", "total": "banana"}
        return {"kind": "result", "schema": 1, "case_id": self.case_id, "impl": IMPL, "status": "ok", "paths": [path]}
