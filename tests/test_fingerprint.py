"""Fingerprints from recorded results: a planted implementation (the reference with one rule
changed) is fingerprinted with exactly that change; a rule no case decides is undetermined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli, fingerprint, reference, spec
from harness.commands.run import load_stored
from harness.reference import rules
from harness.results import encode_float

ROOT = Path(__file__).resolve().parent.parent
CASES = load_stored([ROOT / "cases"])
VERSIONS = {"keras": "3.15.1", "backend": "jax"}
PATHS = ("compute_loss/eager", "test_on_batch/eager", "evaluate/eager")


def _planted(tmp_path: Path, flips: dict[str, str], versions: dict[str, str] = VERSIONS) -> Path:
    """A results file whose 'observations' are the reference under keras3-jax 3.15.1's semantics
    with `flips` made: an implementation that differs from the table in exactly those rules."""
    lines = [{"kind": "header", "schema": 1, "impl": "keras3-jax", "versions": versions}]
    for case in CASES:
        lines.append({"kind": "case", "schema": 1, "case_id": case.id, "case": json.loads(spec.dumps(case))})
        paths = []
        for key in PATHS:
            path, _, mode = key.partition("/")
            profile = {**rules.profile(rules.expected("keras3-jax", versions, path, mode)), **flips}
            b = reference.compute(case, profile, path)
            if b.notes:
                paths.append({"path": path, "mode": mode, "status": "error", "error_type": "ValueError",
                              "error_message": "planted"})
            else:
                paths.append({"path": path, "mode": mode, "status": "ok", "total": encode_float(b.total)})
        lines.append({"kind": "result", "schema": 1, "case_id": case.id, "impl": "keras3-jax", "status": "ok",
                      "paths": paths, "verdicts": {}})
    out = tmp_path / ("planted-" + "-".join(f"{k}={v}" for k, v in flips.items()) + ".jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return out


def test_the_table_itself_is_fingerprinted_as_the_table(tmp_path):
    found = fingerprint.fingerprint(_planted(tmp_path, {}))["keras3-jax"]
    assert not [f.rule for f in found.values() if f.agrees is False]
    assert found["activity_regularizer_scaling"].status == "takes batch_mean"


def test_one_planted_change_is_found_as_exactly_that_change(tmp_path):
    found = fingerprint.fingerprint(_planted(tmp_path, {"activity_regularizer_scaling": "sum"}))["keras3-jax"]
    disagree = {f.rule: f.status for f in found.values() if f.agrees is False}
    assert disagree == {"activity_regularizer_scaling": "takes sum"}
    assert found["activity_regularizer_scaling"].deciding  # the deciding case is named


def test_a_rule_no_case_decides_is_undetermined(tmp_path):
    found = fingerprint.fingerprint(_planted(tmp_path, {}))["keras3-jax"]
    assert found["replica_loss_scaling"].status == "undetermined"  # one device: no case tells
    assert found["replica_loss_scaling"].agrees is None


def test_the_command_exits_1_on_a_disagreement_and_diffs_two_fingerprints(tmp_path, capsys):
    planted = _planted(tmp_path, {"activity_regularizer_scaling": "sum"})
    assert cli.main(["fingerprint", str(planted)]) == 1
    assert "<- the table says batch_mean" in capsys.readouterr().out
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(fingerprint.to_json(fingerprint.fingerprint(_planted(tmp_path, {})))))
    b.write_text(json.dumps(fingerprint.to_json(fingerprint.fingerprint(planted))))
    assert cli.main(["fingerprint", "--diff", str(a), str(b)]) == 1
    assert "activity_regularizer_scaling: takes batch_mean -> takes sum" in capsys.readouterr().out
    assert cli.main(["fingerprint", str(tmp_path / "missing.jsonl")]) == 2


def test_the_report_shows_each_runs_rules_and_lists_a_disagreement_first(tmp_path):
    from harness.report import render

    planted = _planted(tmp_path, {"activity_regularizer_scaling": "sum"})
    out = tmp_path / "report" / "index.html"
    render.write([planted], out)
    html = out.read_text()
    section = html[html.index('id="fingerprints"'):html.index('id="coverage"')]
    assert "1 rule where a run and the semantics table disagree" in section
    assert "<code>activity_regularizer_scaling</code> in keras3-jax" in section
    assert "takes sum, the table says batch_mean" in section
    assert 'class="fp-disagrees"' in section and 'class="fp-untested"' in section  # replica_* rules: one device


def test_the_report_of_a_run_as_the_table_says_lists_no_disagreement(tmp_path):
    from harness.report import render

    out = tmp_path / "report" / "index.html"
    render.write([_planted(tmp_path, {})], out)
    html = out.read_text()
    section = html[html.index('id="fingerprints"'):html.index('id="coverage"')]
    assert "No rule where a run and the semantics table disagree" in section
    assert 'class="fp-agrees"' in section


def test_a_nightly_run_that_takes_a_rule_otherwise_heads_the_report(tmp_path):
    from harness.report import render

    nightly = {"keras": "3.16.0.dev2026102704", "backend": "jax"}
    out = tmp_path / "report" / "index.html"
    render.write([_planted(tmp_path, {"activity_regularizer_scaling": "sum"}, nightly)], out)
    html = out.read_text()
    head = html[html.index('id="next-keras"'):html.index('aria-label="Contents"')]
    assert "Changed in the next Keras" in head and "keras==3.16.0.dev2026102704" in head
    assert "<code>activity_regularizer_scaling</code> takes sum (the table: batch_mean)" in head


def test_a_report_without_a_nightly_run_has_no_next_keras_headline(tmp_path):
    from harness.report import render

    out = tmp_path / "report" / "index.html"
    render.write([_planted(tmp_path, {"activity_regularizer_scaling": "sum"})], out)
    assert 'id="next-keras"' not in out.read_text()


@pytest.mark.differential
def test_fingerprint_impl_runs_the_ci_corpus_on_a_real_keras_and_writes_json(tmp_path, monkeypatch, capsys):
    """keras3-numpy (the quickest Keras) over the main job's ci corpus, then its fingerprint."""
    from harness.commands import fingerprint as fingerprint_cmd

    monkeypatch.setattr(fingerprint_cmd, "RUNS", tmp_path / "runs")
    out = tmp_path / "fp.json"
    status = cli.main(["fingerprint", "--impl", "keras3-numpy", "--json", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status in (0, 1)  # 1: a rule disagrees with the table (a finding, shown in the output)
    assert json.loads(printed) == json.loads(out.read_text())  # stdout holds the fingerprint alone
    found = json.loads(out.read_text())["keras3-numpy"]
    assert set(found) == set(rules.RULES)
    assert sum(f["status"] != "undetermined" for f in found.values()) >= 10  # the ci corpus decides rules
    assert (tmp_path / "runs" / "keras3-numpy.jsonl").exists()
