"""Rule coverage (harness.coverage, `python -m harness cases --coverage`): which rule changes a set
of cases can tell apart, with the reference alone."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import coverage, spec
from harness.cli import main
from harness.reference import rules

ROOT = Path(__file__).resolve().parent.parent
MOTIVATING = ROOT / "cases" / "motivating_two_outputs.json"  # a Masking layer, an activity regularizer
PROFILE = "tf_keras-2.21"


@pytest.fixture(scope="module")
def motivating() -> spec.Case:
    return spec.load(MOTIVATING)


@pytest.fixture(scope="module")
def motivating_coverage(motivating: spec.Case) -> coverage.Coverage:
    return coverage.coverage([motivating], PROFILE)


def _without_activity_regularizers(case: spec.Case) -> spec.Case:
    layers = tuple(dataclasses.replace(layer, regularizers={k: r for k, r in layer.regularizers.items()
                                                            if k != "activity"})
                   for layer in case.layers)
    return dataclasses.replace(case, layers=layers)


def _distinguished_rules(cov: coverage.Coverage) -> set[str]:
    return {change[0][0] for change in cov.distinguished if len(change) == 1}


def test_every_single_change_is_listed_once_and_replica_rules_only_when_distributed() -> None:
    single = rules.profile(PROFILE)
    flips = coverage.single_flips(single)
    assert len(flips) == len(set(flips))
    assert all(alt != single[rule] for rule, alt in flips)
    assert not any(rule.startswith("replica_") for rule, _ in flips)
    distributed = rules.profile("tf_keras-2.21-mirrored")
    assert any(rule.startswith("replica_") for rule, _ in coverage.single_flips(distributed))


def test_a_masked_case_distinguishes_mask_normalisation(motivating_coverage: coverage.Coverage) -> None:
    assert "mask_normalisation" in _distinguished_rules(motivating_coverage)
    decision = next(d for c, d in motivating_coverage.distinguished.items() if c[0][0] == "mask_normalisation")
    assert decision.case_id == spec.load(MOTIVATING).id
    assert decision.path in coverage.LOSS_PATHS


def test_activity_regularizer_scaling_needs_an_activity_regularizer(motivating: spec.Case,
                                                                   motivating_coverage: coverage.Coverage) -> None:
    assert "activity_regularizer_scaling" in _distinguished_rules(motivating_coverage)
    bare = _without_activity_regularizers(motivating)
    cov = coverage.coverage([bare], PROFILE)
    assert "activity_regularizer_scaling" not in _distinguished_rules(cov)
    assert ("activity_regularizer_scaling", "sum") in {c[0] for c in cov.undistinguished}


def test_undistinguished_changes_are_listed_and_counts_add_up(motivating_coverage: coverage.Coverage) -> None:
    cov = motivating_coverage
    s, m = cov.count("single")
    assert m == len(cov.singles) and 0 < s < m
    undistinguished = [c for c in cov.undistinguished if len(c) == 1]
    assert len(undistinguished) == m - s
    # focal loss's logits rule cannot matter on a case without a focal loss
    assert any(c[0][0] == "focal_from_logits" for c in undistinguished)
    assert cov.seconds > 0


def test_more_cases_never_distinguish_less(motivating: spec.Case, motivating_coverage: coverage.Coverage) -> None:
    from harness.strategies import corpus_case

    more = coverage.coverage([motivating, corpus_case(0, 0, vocabulary_version=1), corpus_case(0, 1, vocabulary_version=1)], PROFILE, pairs=False)
    singles = {c for c in motivating_coverage.distinguished if len(c) == 1}
    assert singles <= set(more.distinguished)


def test_a_profile_is_not_distinguished_from_itself(motivating: spec.Case) -> None:
    from harness.compare import ReferenceCache

    cache = ReferenceCache(motivating)
    p = rules.profile(PROFILE)
    assert all(coverage.value_differs(cache, p, dict(p), path) is None for path in coverage.LOSS_PATHS)
    assert coverage._gradient_differs(cache, p, dict(p), 1) is None


@pytest.fixture
def one_case_dir(tmp_path: Path) -> Path:
    shutil.copy(MOTIVATING, tmp_path / MOTIVATING.name)
    return tmp_path


def test_command_prints_each_change_and_exits_0(one_case_dir: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["cases", "--coverage", "--profile", PROFILE, "--cases", str(one_case_dir)])
    out = capsys.readouterr()
    assert status == 0, out.err
    assert f"{PROFILE}: " in out.out and " rule changes distinguished by 1 cases" in out.out
    assert "not tested by any case here" in out.out
    assert "mask_normalisation=" in out.out and "distinguished by case " in out.out
    assert "1 cases" in out.err  # progress and wall time on stderr


def test_command_json_parses(one_case_dir: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["cases", "--coverage", "--profile", PROFILE, "--profile", "keras-3.15",
                   "--cases", str(one_case_dir), "--json", "--no-pairs"])
    out = capsys.readouterr()
    assert status == 0, out.err
    data = json.loads(out.out)
    assert data["cases"] == 1 and [p["profile"] for p in data["profiles"]] == [PROFILE, "keras-3.15"]
    first = data["profiles"][0]
    assert first["singles"]["total"] == len(first["changes"])
    assert first["singles"]["distinguished"] == sum(c["distinguished"] for c in first["changes"])
    by = next(c["by"] for c in first["changes"] if c["distinguished"])
    assert set(by) >= {"case", "path", "value"}


def test_unknown_profile_exits_2_naming_it(one_case_dir: Path, capsys: pytest.CaptureFixture) -> None:
    status = main(["cases", "--coverage", "--profile", "no-such-keras-9", "--cases", str(one_case_dir)])
    assert status == 2
    assert "no-such-keras-9" in capsys.readouterr().err


def test_n_and_corpus_together_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["cases", "--coverage", "-n", "3", "--corpus", "ci"]) == 2
    assert "--corpus" in capsys.readouterr().err


def test_default_cases_are_the_main_jobs_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from harness import selection
    from harness.commands import cases as cases_cmd
    from harness.commands.run import load_stored

    monkeypatch.chdir(ROOT)
    got, what = cases_cmd.coverage_cases(argparse.Namespace(n=None, corpus=None, cases=None, seed=0))
    expected = list(dict.fromkeys(c.id for c in load_stored([Path("cases")]) + selection.load().cases()))
    assert [c.id for c in got] == expected
    assert "corpus ci" in what


def test_coverage_command_imports_no_framework(one_case_dir: Path) -> None:
    code = ("import sys; from harness.cli import main; "
            f"main(['cases', '--coverage', '--profile', {PROFILE!r}, '--cases', {str(one_case_dir)!r}, '--json']); "
            "print([m for m in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch') if m in sys.modules], "
            "file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_under_a_strategy_the_differentiated_loss_distinguishes_replica_loss_scaling(motivating: spec.Case) -> None:
    """replica_loss_scaling changes only the loss the replicas differentiate, which no path reports."""
    cov = coverage.coverage([motivating], "tf_keras-2.21-mirrored", pairs=False)
    decision = next(d for c, d in cov.distinguished.items() if c[0][0] == "replica_loss_scaling")
    assert decision.value.startswith("gradient/")
