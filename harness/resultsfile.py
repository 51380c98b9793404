"""The results file: append-only JSON lines, flushed per record, locked against a second writer.

Records (see harness/results.py): "header" (one per worker start, with exact versions), "case"
(once per case id), "result" (one per case id x implementation, with the engine's verdicts).

- A second process that opens the same file for writing is refused (`ResultsLocked`), so two
  tox invocations never interleave their lines.
- A run killed mid-write leaves at most one partial last line; `open_for_append(resume=True)`
  cuts it off and reports which (case, implementation) pairs are already done.
- Reading checks the schema version of every record and names file, line and field on error.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from harness.results import RESULTS_SCHEMA_VERSION


class ResultsError(ValueError):
    """A results file that cannot be read as one: names the file, the line and the field."""


class ResultsLocked(RuntimeError):
    pass


@dataclass
class ResultsData:
    headers: list[dict[str, Any]] = field(default_factory=list)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # case id -> case JSON
    results: list[dict[str, Any]] = field(default_factory=list)


def iter_records(path: Path, *, allow_partial_last_line: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, record). A truncated last line (no newline) is skipped when allowed."""
    with open(path, "rb") as f:
        data = f.read()
    return _records(Path(path), data, allow_partial_last_line)


def _records(path: Path, data: bytes, allow_partial_last_line: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        last = n == len(lines)  # no newline after it: written partially
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if last and allow_partial_last_line:
                return
            raise ResultsError(f"{path}: line {n}: expected a JSON record, got corrupt data ({exc})") from None
        if not isinstance(record, dict):
            raise ResultsError(f"{path}: line {n}: expected a JSON object, got {type(record).__name__}")
        if record.get("schema") != RESULTS_SCHEMA_VERSION:
            raise ResultsError(
                f"{path}: line {n}: field schema: expected results schema version {RESULTS_SCHEMA_VERSION}, "
                f"got {record.get('schema')!r} (a file from an incompatible harness version)"
            )
        kind = record.get("kind")
        if kind not in ("header", "case", "result"):
            raise ResultsError(f"{path}: line {n}: field kind: expected 'header', 'case' or 'result', got {kind!r}")
        for key in {"header": ("impl",), "case": ("case_id", "case"), "result": ("case_id", "impl", "status")}[kind]:
            if key not in record:
                raise ResultsError(f"{path}: line {n}: field {key}: missing from a {kind!r} record")
        yield n, record


def read(path: Path) -> ResultsData:
    data = ResultsData()
    for _, record in iter_records(Path(path)):
        kind = record["kind"]
        if kind == "header":
            data.headers.append(record)
        elif kind == "case":
            data.cases.setdefault(record["case_id"], record["case"])
        else:
            data.results.append(record)
    return data


def read_many(paths: list[Path]) -> dict[Path, ResultsData]:
    return {Path(p): read(Path(p)) for p in paths}


class ResultsWriter:
    """Appends records to one results file under an exclusive lock. Flushes (and fsyncs) each one."""

    def __init__(self, path: Path, *, resume: bool, overwrite: bool):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ResultsLocked(
                f"{self.path}: another run is writing this results file (lock {self._lock_file.name} is held); "
                "wait for it to finish or write to another file (--env NAME)"
            ) from None
        self.done: set[tuple[str, str]] = set()  # (case id, impl)
        self.cases_written: set[str] = set()
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists and not (resume or overwrite):
            self.close()
            raise FileExistsError(
                f"{self.path}: results file exists; pass --resume to continue it or --overwrite to start over"
            )
        if exists and resume:
            try:
                self._prepare_resume()
            except ResultsError:
                self.close()  # release the lock: the file was not touched
                raise
            self._f = open(self.path, "a", encoding="utf-8")
        else:
            self._f = open(self.path, "w", encoding="utf-8")

    def _prepare_resume(self) -> None:
        # Check every complete line and remember what is done, *then* cut a partial last line
        # (a run killed mid-write). A last line without its newline is cut even when it parses:
        # counting it done and then cutting it would lose that result for good. A file that
        # fails the check is refused (ResultsError) before a byte of it is changed.
        with open(self.path, "rb") as f:
            data = f.read()
        keep = data.rfind(b"\n") + 1
        for _, record in _records(self.path, data[:keep], allow_partial_last_line=False):
            if record["kind"] == "result":
                self.done.add((record["case_id"], record["impl"]))
            elif record["kind"] == "case":
                self.cases_written.add(record["case_id"])
        if keep != len(data):
            with open(self.path, "rb+") as f:
                f.truncate(keep)

    def write(self, record: dict[str, Any]) -> None:
        record = {"schema": RESULTS_SCHEMA_VERSION, **record}
        self._f.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        if record["kind"] == "result":
            self.done.add((record["case_id"], record["impl"]))

    def write_case(self, case_id: str, case_json: dict[str, Any]) -> None:
        if case_id not in self.cases_written:
            self.write({"kind": "case", "case_id": case_id, "case": case_json})
            self.cases_written.add(case_id)

    def close(self) -> None:
        if getattr(self, "_f", None) is not None:
            try:
                self._f.close()
            except OSError:
                # Every write was flushed; only a write that failed (and raised already: disk
                # full) leaves bytes behind, as a partial last line that --resume cuts.
                pass
            self._f = None
        if self._lock_file is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            finally:
                self._lock_file.close()
                self._lock_file = None

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
