"""The loss-semantics changelog: read off the semantics table, with the smallest case that shows
each change (no framework)."""

from __future__ import annotations

from pathlib import Path

from harness import changelog, cli
from harness.commands.changelog import evidence_cases

ROOT = Path(__file__).resolve().parent.parent


def _by_rule(changes):
    return {(c.lineage, c.release, c.rule): c for c in changes}


def test_keras3_3_14_changes_are_listed_with_their_upstream_and_scope():
    got = _by_rule(changelog.entries("keras3"))
    activity = got[("keras3", "3.14.0", "activity_regularizer_scaling")]
    assert (activity.old, activity.new, activity.where) == ("sum", "batch_mean", "every scope")
    assert activity.row.upstream == "keras-team/keras#22021"
    bare_float = got[("keras3", "3.3.0", "one_output_loss_weights")]
    assert (bare_float.old, bare_float.new) == ("none", "bare_float_only")
    assert got[("keras3", "3.5.0", "one_output_loss_weights")].new == "no_bare_int"
    l1 = got[("keras3", "3.14.0", "l1_regularizer_float64")]
    assert (l1.old, l1.new, l1.where) == ("error", "computed", "backend=tensorflow")


def test_a_change_a_narrower_row_does_not_follow_names_that_scope():
    # Keras 3.15.0 resets the metrics in test_on_batch (keras-team/keras#22617), but not on NumPy.
    reset = _by_rule(changelog.entries("keras3"))[("keras3", "3.15.0", "on_batch_metrics")]
    assert (reset.old, reset.new, reset.where) == ("accumulates", "reset_each_call", "every scope but backend=numpy")
    assert reset.row.upstream == "keras-team/keras#22617"


def test_from_and_to_select_releases():
    assert {c.rule for c in changelog.entries("keras3", since="3.15")} == {"on_batch_metrics"}
    assert {c.release for c in changelog.entries("keras3", since="3.0", until="3.14")} == {"3.0.2", "3.2.0", "3.3.0",
                                                                                              "3.5.0", "3.7.0", "3.14.0"}
    assert {c.release for c in changelog.entries("keras3", since="3.8", until="3.14")} == {"3.14.0"}
    assert all(c.lineage == "keras" for c in changelog.entries("keras"))


def test_the_smallest_case_that_shows_a_change_is_named_with_its_numbers():
    cases, _ = evidence_cases(None, None)
    got = _by_rule(changelog.entries("keras3", cases=cases))
    evidence = got[("keras3", "3.14.0", "activity_regularizer_scaling")].evidence
    assert evidence is not None and evidence.expected != evidence.changed
    assert evidence.case_id in {c.id for c in cases}
    # no case: no evidence, said so
    assert "no case of these shows it" in changelog.text(changelog.entries("keras3"))


def test_docs_changelog_is_current():
    # drawn cases only (version 1): a case the search writes to cases/found changes nothing here
    cases, where = evidence_cases(60, [])
    want = changelog.markdown(changelog.entries(cases=cases), where)
    assert (ROOT / "docs" / "loss-semantics-changelog.md").read_text() == want, (
        "docs/loss-semantics-changelog.md is stale: python -m harness changelog --markdown -n 60 --no-stored > "
        "docs/loss-semantics-changelog.md")


def test_a_bad_lineage_or_version_exits_2(capsys):
    assert cli.main(["changelog", "--lineage", "keras4"]) == 2
    assert "lineage 'keras4'" in capsys.readouterr().err
    assert cli.main(["changelog", "--from", "three"]) == 2
    assert "version 'three'" in capsys.readouterr().err
