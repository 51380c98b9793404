"""`python -m harness judge RESULTS...` judges stored results again from their observations:

- on tests/data/results it reproduces the verdicts recorded there (exit 0), as `run` on the
  same code records them (a small run, then judge on its file);
- it writes nothing it read; --out writes re-judged copies carrying the current semantics hash;
- a verdict that differs from the recorded one is printed (key, recorded -> now), exit 1;
- a record of another schema stops it with exit 2 and a message naming file, line and field;
- it imports no framework (TensorFlow, tf_keras, Keras, JAX, torch);
- a result recorded under `run --strict` is judged under that profile."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import judging
from harness.reference import rules

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "results"
FRAMEWORKS = ("tensorflow", "tf_keras", "keras", "jax", "torch")

# Runs `python -m harness judge ARGS` in this process and reports the frameworks it imported.
PROBE = """
import contextlib, io, json, sys
from harness import cli
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = cli.main(["judge", *sys.argv[1:]])
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(FRAMEWORKS))
print(json.dumps({"status": status, "stdout": out.getvalue(), "stderr": err.getvalue(), "frameworks": loaded}))
"""


def judge(*argv: str | Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", f"FRAMEWORKS = {FRAMEWORKS!r}\n{PROBE}", *map(str, argv)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs), encoding="utf-8")
    return path


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(RECORDED, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def test_judge_reproduces_the_recorded_verdicts_and_imports_no_framework() -> None:
    got = judge(RECORDED)
    assert got["frameworks"] == [], f"harness judge imported {got['frameworks']}"
    assert got["status"] == 0, got["stdout"]
    assert "0 differ from the recorded ones" in got["stdout"].splitlines()[-1]
    for path in sorted(RECORDED.glob("*.jsonl")):
        assert f"{path}: " in got["stdout"] or f"{path.relative_to(ROOT)}: " in got["stdout"]


def test_the_recorded_files_carry_the_hash_of_the_semantics_they_were_judged_with() -> None:
    for path in sorted(RECORDED.glob("*.jsonl")):
        for r in records(path):
            if r["kind"] in ("header", "result"):
                assert isinstance(r.get("semantics"), str) and r["semantics"], f"{path.name}: {r['kind']} without a hash"


def test_judge_writes_nothing_it_read(copy: Path) -> None:
    before = digests(copy)
    judge(copy)
    assert digests(copy) == before


def test_out_writes_rejudged_copies_that_judge_then_reproduces(copy: Path, tmp_path: Path) -> None:
    recs = records(copy / "core.jsonl")
    result = next(r for r in recs if r["kind"] == "result")
    result["verdicts"] = {k: {**v, "verdict": "unexplained"} for k, v in result["verdicts"].items()}
    result["semantics"] = "0" * 16
    write(copy / "core.jsonl", recs)
    before = digests(copy)
    out = tmp_path / "rejudged"
    got = judge(copy, "--out", out)
    assert got["status"] == 1 and "judged with other semantics" in got["stdout"]
    assert digests(copy) == before
    assert sorted(p.name for p in out.glob("*.jsonl")) == sorted(p.name for p in copy.glob("*.jsonl"))
    assert {r.get("semantics") for r in records(out / "core.jsonl") if r["kind"] != "case"} == {rules.semantics_hash()}
    again = judge(out)
    assert again["status"] == 0, again["stdout"]


def test_out_refuses_to_overwrite_an_input(copy: Path) -> None:
    before = digests(copy)
    got = judge(copy, "--out", copy)
    assert got["status"] == 2 and "would overwrite the input" in got["stderr"]
    assert digests(copy) == before


def test_a_changed_verdict_is_printed_with_recorded_and_now_and_exits_1(copy: Path) -> None:
    recs = records(copy / "core.jsonl")
    line, result = next((n, r) for n, r in enumerate(recs, start=1)
                        if r["kind"] == "result" and r["verdicts"].get("test_on_batch/eager", {}).get("verdict") == "agree")
    result["verdicts"]["test_on_batch/eager"]["verdict"] = "unexplained"
    write(copy / "core.jsonl", recs)
    got = judge(copy / "core.jsonl")
    assert got["status"] == 1
    assert (f"line {line}: {result['impl']} case {result['case_id']} test_on_batch/eager: unexplained"
            in got["stdout"]), got["stdout"]
    assert "-> agree" in got["stdout"] and "1 differ from the recorded ones" in got["stdout"]


def test_a_foreign_schema_exits_2_naming_file_line_and_field(copy: Path) -> None:
    recs = records(copy / "tf215.jsonl")
    recs[2]["schema"] = 99
    path = write(copy / "tf215.jsonl", recs)
    got = judge(path)
    assert got["status"] == 2 and got["stdout"] == ""
    assert f"{path}: line 3: field schema: expected results schema version 1, got 99" in got["stderr"]


def test_a_missing_input_exits_2(tmp_path: Path) -> None:
    got = judge(tmp_path / "nothing.jsonl")
    assert got["status"] == 2 and "no such file or folder" in got["stderr"]


def test_jobs_gives_the_same_verdicts_as_one_process(copy: Path) -> None:
    one, two = judge(copy, "--jobs", "1"), judge(copy, "--jobs", "2")
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("harness judge:")]  # noqa: E731
    assert two["status"] == one["status"] == 0 and strip(two["stdout"]) == strip(one["stdout"])


def test_a_result_recorded_under_strict_is_judged_under_that_profile(copy: Path) -> None:
    recs = records(copy / "core.jsonl")
    result = next(r for r in recs if r["kind"] == "result" and r["impl"] == "keras3-jax" and r["status"] == "ok")
    result["strict"] = "tf_keras-2.21"
    write(copy / "core.jsonl", recs)
    out = {}
    for _, record, judged in judging.judge_file(copy / "core.jsonl"):
        if record is result or (judged and record == result):
            out = judged.verdicts
    assert out and {v["profile"] for v in out.values()} == {"tf_keras-2.21"}


@pytest.mark.differential
def test_run_then_judge_gives_the_verdicts_run_recorded(tmp_path: Path) -> None:
    pytest.importorskip("keras")
    cases = tmp_path / "cases"
    cases.mkdir()
    shutil.copy(ROOT / "cases" / "motivating_two_outputs.json", cases)
    out = tmp_path / "run.jsonl"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "-n", "0", "--cases", str(cases),
                           "--impl", "keras3-numpy", "--out", str(out), "--exit-zero"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "KERAS_BACKEND": "numpy"})
    assert proc.returncode == 0, proc.stderr
    header = next(r for r in records(out) if r["kind"] == "header")
    assert header["semantics"] == rules.semantics_hash()
    got = judge(out)
    assert got["status"] == 0, got["stdout"]
    assert "0 differ from the recorded ones" in got["stdout"]


def test_the_reference_numbers_of_a_verdict_are_the_same_up_to_the_last_bits() -> None:
    """Another CPU's SIMD sums the reference in another order (AVX-512 against the machine the
    recorded results come from): the last bits of `expected` and `rel_diff` may differ, nothing else."""
    from harness.same_report import same_verdict

    v = {"verdict": "agree", "profile": "keras3 3.15.1 backend=jax", "value": 1.565763235092163,
         "expected": 1.5657631591893733, "rel_diff": 3.910910148614563e-08}
    assert same_verdict(v, {**v, "rel_diff": 3.910910148673211e-08, "expected": 1.5657631591893735})
    assert not same_verdict(v, {**v, "expected": 1.5657631591893733 * (1 + 1e-9)})
    assert not same_verdict(v, {**v, "rel_diff": 3.9e-08 + 1e-9})
    assert not same_verdict(v, {**v, "value": math.nextafter(v["value"], 2.0)})  # what Keras returned: exactly
    assert not same_verdict(v, {**v, "verdict": "unexplained"})
    assert not same_verdict(v, None) and same_verdict(None, None)
