"""What `python -m harness run` prints and how it exits, from the verdicts of its results file.

- One row per implementation and verdict key: gradient verdicts of every weight share a row,
  so a model with 30 weights does not print 60 rows.
- Every verdict kind of every section counts: loss paths, `gradient/...`, `.../sgd_update`,
  `distribution/...`. An unexplained verdict is a FINDING, an error / crashed / timeout /
  import-error verdict an ERROR; each row is followed by the command that replays it, whose case
  file is written beside the results file (`<stem>-cases/<case id>.json`), never in the
  current directory. An error that the expected profile predicts is judged `agree` or
  `explained` by harness.compare, and is neither.
- Exit status: 1 findings, 4 failures, 4 when both (the run is incomplete), else 0.
"""

import json
from pathlib import Path

import pytest

from harness import spec
from harness.commands.run import Summary, cases_dir, exit_status, summarize, summary_key
from harness.compare import FAILURE_VERDICTS

MOTIVATING = Path(__file__).resolve().parent.parent / "cases" / "motivating_two_outputs.json"


@pytest.mark.parametrize("key, row", [
    ("test_on_batch/eager", "test_on_batch/eager"),
    ("gradient/loss", "gradient/loss"),
    ("gradient/*", "gradient/*"),
    ("gradient/hidden/kernel", "gradient/<weight>"),
    ("gradient/rnn/recurrent_kernel/sgd_update", "gradient/<weight>/sgd_update"),
    ("distribution/gradient/hidden/bias", "distribution/gradient/<weight>"),
    ("distribution/gradient/loss", "distribution/gradient/loss"),
    ("distribution/split", "distribution/split"),
    ("distribution/train_on_batch/compiled", "distribution/train_on_batch/compiled"),
])
def test_summary_rows(key, row):
    assert summary_key(key) == row


def test_every_verdict_kind_is_a_pass_a_finding_or_a_failure() -> None:
    from harness.compare import VERDICTS

    assert set(VERDICTS) - set(FAILURE_VERDICTS) == {"agree", "explained", "unsupported", "unexplained"}
    assert set(FAILURE_VERDICTS) <= set(VERDICTS)


@pytest.mark.parametrize("unexplained, failures, status", [
    (0, 0, 0),
    (3, 0, 1),
    (0, 1, 4),
    (3, 1, 4),  # failures win over findings
])
def test_exit_status(unexplained: int, failures: int, status: int) -> None:
    assert exit_status(Summary(unexplained=unexplained, failures=failures)) == status


def v(kind: str, **fields: object) -> dict[str, object]:
    return {"verdict": kind, "profile": "tf_keras-2.21", **fields}


# impl -> (run status, verdicts). FINDING: 4 (one per section); ERROR: 6 (every failure kind).
RUNS: dict[str, tuple[str, dict[str, dict[str, object]]]] = {
    "tf_keras": ("ok", {
        "compute_loss/eager": v("unsupported", reason="no compute_loss in this version"),
        "test_on_batch/eager": v("unexplained", stage="loss", value=1.5, expected=1.0),  # FINDING
        "evaluate/eager": v("explained", rules={"evaluate_total": "batch_mean"}, value=1.0, expected=1.1),
        "fit/eager": v("agree", reason="expected error: ValueError: shapes differ"),  # predicted: no ERROR
        "train_on_batch/eager": v("error", reason="ValueError: boom\n  at line 2 of the message"),  # ERROR
        "gradient/hidden/kernel": v("unexplained", stage="gradient", value=0.5, expected=0.25),  # FINDING
        "gradient/hidden/kernel/sgd_update": v("unexplained", stage="gradient"),  # FINDING
        "gradient/loss": v("error", reason="update step: RuntimeError: no gradient"),  # ERROR
    }),
    "keras3-jax-dataparallel": ("ok", {
        "distribution/split": v("unexplained", stage="split"),  # FINDING
        "distribution/gradient/hidden/bias": v("error", reason="TypeError: replica"),  # ERROR
    }),
    "keras3-torch": ("crashed", {"*": v("crashed", reason="worker killed by signal 11 (case)")}),  # ERROR
    "keras3-jax": ("timeout", {"*": v("timeout", reason="no answer within 120 s (case)")}),  # ERROR
    "keras3-numpy": ("import-error", {"*": v("import-error", reason="ModuleNotFoundError: keras")}),  # ERROR
}


@pytest.fixture()
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    case = spec.load(MOTIVATING)
    lines = [{"kind": "case", "schema": 1, "case_id": case.id, "case": case.to_json()}]
    for impl, (status, verdicts) in RUNS.items():
        lines.insert(0, {"kind": "header", "schema": 1, "impl": impl, "versions": {}})
        lines.append({"kind": "result", "schema": 1, "case_id": case.id, "impl": impl, "status": status,
                      "paths": [], "verdicts": verdicts})
    path = tmp_path / "results" / "env.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    monkeypatch.chdir(tmp_path / "results")  # "the current directory": must stay as it is
    return path


def test_every_section_counts_and_every_failure_kind_is_an_error(results: Path, capsys) -> None:
    summary = summarize(results)
    out = capsys.readouterr().out
    assert summary == Summary(unexplained=4, failures=6)
    findings = [line.split()[1:3] for line in out.splitlines() if line.startswith("FINDING ")]
    errors = [line.split()[1:3] for line in out.splitlines() if line.startswith("ERROR ")]
    assert sorted(findings) == sorted([
        ["tf_keras", "test_on_batch/eager"], ["tf_keras", "gradient/hidden/kernel"],
        ["tf_keras", "gradient/hidden/kernel/sgd_update"], ["keras3-jax-dataparallel", "distribution/split"]])
    assert sorted(errors) == sorted([
        ["tf_keras", "train_on_batch/eager"], ["tf_keras", "gradient/loss"],
        ["keras3-jax-dataparallel", "distribution/gradient/hidden/bias"],
        ["keras3-torch", "*"], ["keras3-jax", "*"], ["keras3-numpy", "*"]])
    assert "ERROR keras3-numpy * case " in out and ": import-error: ModuleNotFoundError: keras" in out
    assert "at line 2 of the message" not in out, "an ERROR row shows the first line of the reason"


def test_only_the_implementations_run_are_counted(results: Path, capsys) -> None:
    assert summarize(results, ["tf_keras"]) == Summary(unexplained=3, failures=2)


def test_each_finding_and_error_row_is_followed_by_a_replay_line_naming_a_case_file_beside_the_results(
        results: Path, capsys) -> None:
    summarize(results)
    lines = capsys.readouterr().out.splitlines()
    case_id = spec.load(MOTIVATING).id
    expected_file = results.parent / "env-cases" / f"{case_id}.json"
    assert cases_dir(results) == expected_file.parent
    rows = [n for n, line in enumerate(lines) if line.startswith(("FINDING ", "ERROR "))]
    assert len(rows) == 10
    for n in rows:
        impl = lines[n].split()[1]
        assert lines[n + 1] == f"  replay: python -m harness replay {expected_file} --impl {impl}"
    assert spec.load(expected_file).id == case_id
    assert sorted(p.name for p in results.parent.iterdir()) == ["env-cases", "env.jsonl"], \
        "nothing else is written, in the current directory or beside the results"


def test_a_run_without_findings_or_failures_writes_no_case_file(tmp_path: Path, capsys) -> None:
    case = spec.load(MOTIVATING)
    path = tmp_path / "clean.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"kind": "header", "schema": 1, "impl": "tf_keras", "versions": {}},
        {"kind": "case", "schema": 1, "case_id": case.id, "case": case.to_json()},
        {"kind": "result", "schema": 1, "case_id": case.id, "impl": "tf_keras", "status": "ok", "paths": [],
         "verdicts": {"test_on_batch/eager": v("agree"), "gradient/loss": v("explained", rules={"a": "b"})}},
    ]))
    assert summarize(path) == Summary(unexplained=0, failures=0)
    assert not cases_dir(path).exists()
