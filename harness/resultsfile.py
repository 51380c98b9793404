"""The results file: append-only JSON lines, flushed per record, locked against a second writer.

Records (see harness/results.py): "header" (one per worker start, with exact versions), "case"
(once per case id), "result" (one per case id x implementation, with the engine's verdicts and the hash of the
semantics they were judged with: `python -m harness judge` derives them again).

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

from harness.compare import VERDICTS
from harness.results import RESULTS_SCHEMA_VERSION, RUN_STATUSES
from harness import spec


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
        check_record(path, n, record)
        yield n, record


def check_record(path: Path, n: int, record: Any) -> None:
    """Refuse a record whose fields the readers (run's summary, --resume, the report) could not
    use: a ResultsError naming the file, the line, the field and what was expected."""

    def fail(field_name: str, expected: str, got: Any) -> ResultsError:
        return ResultsError(f"{path}: line {n}: field {field_name}: expected {expected}, got {spec.short(got)}")

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
    for key in ("impl", "case_id"):
        if key in record and not (isinstance(record[key], str) and record[key]):
            raise fail(key, "a non-empty string", record[key])
    for key in ("semantics", "strict"):  # what the verdicts were judged with (harness/judging.py)
        if record.get(key) is not None and not (isinstance(record[key], str) and record[key]):
            raise fail(key, "a non-empty string", record[key])
    if kind == "header" and not isinstance(record.get("versions", {}), dict):
        raise fail("versions", "an object (package -> version)", record["versions"])
    if kind == "case" and not isinstance(record["case"], dict):
        raise fail("case", "an object (a Case as JSON)", record["case"])
    if kind == "result":
        if record["status"] not in RUN_STATUSES:
            raise fail("status", "one of " + ", ".join(RUN_STATUSES), record["status"])
        paths = record.get("paths", [])
        if not isinstance(paths, list):
            raise fail("paths", "a list of path results", paths)
        for i, path_result in enumerate(paths):
            if not isinstance(path_result, dict):
                raise fail(f"paths[{i}]", "an object (a path result)", path_result)
        verdicts = record.get("verdicts", {})
        if not isinstance(verdicts, dict):
            raise fail("verdicts", "an object (verdict key -> verdict)", verdicts)
        for key, verdict in verdicts.items():
            _check_verdict(f"verdicts.{key}", verdict, fail)


def _check_verdict(where: str, verdict: Any, fail: Any) -> None:
    if not isinstance(verdict, dict):
        raise fail(where, "an object with a 'verdict'", verdict)
    if verdict.get("verdict") not in VERDICTS:
        raise fail(f"{where}.verdict", "one of " + ", ".join(VERDICTS), verdict.get("verdict"))
    rules = verdict.get("rules", {})
    if not isinstance(rules, dict) or not all(isinstance(v, str) for v in rules.values()):
        raise fail(f"{where}.rules", "an object (rule -> alternative)", rules)
    for key in ("profile", "stage", "reason"):
        if verdict.get(key) is not None and not isinstance(verdict[key], str):
            raise fail(f"{where}.{key}", "a string", verdict[key])
    for key in ("value", "expected", "explained_value", "rel_diff"):
        value = verdict.get(key)
        if value is not None and not _is_number(value):
            raise fail(f"{where}.{key}", "a number or 'nan', 'inf', '-inf'", value)
    terms = verdict.get("differing_terms", [])
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise fail(f"{where}.differing_terms", "a list of term names", terms)


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return value in ("nan", "inf", "-inf")
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        if self.path.is_dir():
            raise ResultsError(f"{self.path}: expected a results file (*.jsonl), got a folder; "
                               f"name a file in it, e.g. {self.path / 'results.jsonl'}")
        blocking = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ResultsError(f"{self.path}: expected {blocking} to be a folder, got a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")
        except OSError as exc:
            raise ResultsError(f"{self.path}: expected a results file in a writable folder; "
                               f"cannot create {exc.filename or self.path.parent}: {exc.strerror}") from None
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
        try:
            self._f = open(self.path, "a" if exists and resume else "w", encoding="utf-8")
        except OSError as exc:
            self.close()
            raise ResultsError(f"{self.path}: expected a writable results file: {exc.strerror}") from None

    def _prepare_resume(self) -> None:
        # Check every complete line and remember what is done, *then* cut a partial last line
        # (a run killed mid-write). A last line without its newline is cut even when it parses:
        # counting it done and then cutting it would lose that result for good. A file that
        # fails the check is refused (ResultsError) before a byte of it is changed.
        # Case records are validated as Cases too: run's summary rebuilds them to write the
        # case files its replay lines name, and must not fail after the run appended to the file.
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ResultsError(f"{self.path}: expected a readable results file: {exc.strerror}") from None
        keep = data.rfind(b"\n") + 1
        first_result: dict[str, int] = {}  # case id -> line of its first result
        for n, record in _records(self.path, data[:keep], allow_partial_last_line=False):
            if record["kind"] == "result":
                self.done.add((record["case_id"], record["impl"]))
                first_result.setdefault(record["case_id"], n)
            elif record["kind"] == "case":
                try:
                    spec.from_json(record["case"], str(self.path))
                except spec.CaseError as exc:
                    what = str(exc).split(f"field {exc.field_path}: ", 1)[-1]  # "expected ...; got ..."
                    raise ResultsError(f"{self.path}: line {n}: field case{exc.field_path.removeprefix('$')}: "
                                       f"{what}") from None
                self.cases_written.add(record["case_id"])
        orphans = sorted((line, cid) for cid, line in first_result.items() if cid not in self.cases_written)
        if orphans:
            line, cid = orphans[0]
            raise ResultsError(f"{self.path}: line {line}: field case_id: expected the id of a case recorded "
                               f"in this file (a 'case' record), got {cid!r}, which has none")
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
