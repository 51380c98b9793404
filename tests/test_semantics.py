"""The semantics table: versioned rows, the most specific wins, ties refused at load, and
verdicts judged against the semantics of the release that ran."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import compare, judging, reference, spec
from harness.reference import rules, semantics
from harness.reference.semantics import Rows
from harness.results import ImplResult, PathResult

ROOT = Path(__file__).resolve().parents[1]
# Hand-written: two outputs, an activity (l1) regularizer on the hidden Dense layer.
CASE = spec.load(ROOT / "cases" / "motivating_two_outputs.json")
BASE = dict(rules.PROFILES["tf_keras-2.21"])


def _observed(profile: dict[str, str], impl: str = "keras3-jax", mode: str = "compiled") -> ImplResult:
    """What an implementation that follows `profile` exactly returns on test_on_batch (the
    reference's own numbers: a unit test of the judging, not of Keras)."""
    b = reference.compute(CASE, profile, "test_on_batch")
    path = PathResult("test_on_batch", mode, "ok", total=b.total, terms=dict(b.terms))
    return ImplResult(case_id=CASE.id, impl=impl, status="ok", paths=[path])


# ---- resolving -------------------------------------------------------------------------------


@pytest.mark.parametrize("impl, versions, want", [
    ("keras3-tensorflow", {"keras": "3.15.1", "backend": "tensorflow"}, "keras-3.15"),
    ("keras3-jax", {"keras": "3.15.1", "backend": "jax"}, "keras-3.15-jax"),
    ("keras3-torch", {"keras": "3.15.1", "backend": "torch"}, "keras-3.15-torch"),
    ("keras3-numpy", {"keras": "3.15.1", "backend": "numpy"}, "keras-3.15-numpy"),
    ("tf_keras", {"tf_keras": "2.21.0", "tensorflow": "2.21.0"}, "tf_keras-2.21"),
    ("tf_keras-graph", {"tf_keras": "2.21.0"}, "keras2-graph"),
    ("tf.keras", {"keras": "2.15.0", "tensorflow": "2.15.1"}, "tf.keras-2.15"),
    ("tf.keras-graph", {"keras": "2.15.0", "tensorflow": "2.15.1"}, "tf.keras-2.15-graph"),
    ("keras2.3.1", {"keras": "2.3.1", "tensorflow": "2.21.0"}, "keras-2.3.1"),
    ("keras2.2.4", {"keras": "2.2.4", "tensorflow": "2.21.0"}, "keras-2.2.4"),
    ("tf_keras-mirrored", {"tf_keras": "2.21.0"}, "tf_keras-2.21-mirrored"),
    ("keras3-tensorflow-mirrored", {"keras": "3.15.1"}, "keras-3.15-mirrored"),
    ("keras3-jax-dataparallel", {"keras": "3.15.1"}, "keras-3.15-jax-dataparallel"),
])
def test_each_implementation_at_the_release_read_follows_its_named_profile(impl, versions, want):
    assert rules.profile(rules.expected(impl, versions)) == rules.PROFILES[want]


def test_every_implementation_has_a_query_and_an_unknown_one_is_refused():
    for impl in rules.IMPLEMENTATIONS:
        assert rules.profile(rules.expected(impl, {})) in rules.PROFILES.values()
    with pytest.raises(semantics.SemanticsError, match="keras4"):
        rules.expected("keras4", {})


def test_a_name_says_the_release_and_the_scope_that_mattered():
    assert rules.expected("keras3-jax", {"keras": "3.13.2"}) == "keras3 3.13.2 backend=jax"
    # no row of Keras 3 on JAX is scoped to a mode: the mode is not part of the name
    assert rules.expected("keras3-jax", {"keras": "3.13.2"}, "evaluate", "eager") == "keras3 3.13.2 backend=jax"
    assert rules.expected("keras3-tensorflow", {"keras": "3.15.1"}, "evaluate", "eager") == \
        "keras3 3.15.1 backend=tensorflow mode=eager"
    name = rules.expected("tf_keras", {"tf_keras": "2.21.0"}, "evaluate", "jit")
    assert name == "tf_keras 2.21.0 mode=jit"  # no row is scoped to evaluate: the path is not in the name
    assert rules.profile(name) == semantics.at("tf_keras", "2.21.0", mode="jit").choices
    # a row scoped to fit (class_weight beside a sample weight: the map function's reshape) names it
    fit = rules.expected("tf_keras", {"tf_keras": "2.21.0"}, "fit", "jit")
    assert fit == "tf_keras 2.21.0 mode=jit path=fit"
    assert rules.profile(fit)["class_weight_with_sample_weight"] == "reshape_error"


def test_versions_sort_as_releases_with_nightlies_before_their_release():
    key = semantics.version_key
    assert key("3.14") == key("3.14.0") < key("3.14.1") < key("3.15.0")
    assert key("3.13.2") < key("3.14.0.dev2026012300") < key("3.14.0rc1") < key("3.14.0")
    with pytest.raises(semantics.SemanticsError, match="expected a release"):
        key("three")


# ---- a row for one version range ---------------------------------------------------------------


def test_keras_3_before_3_14_sums_the_activity_penalty_and_3_14_divides_it():
    """keras==3.13.2 keras/src/layers/layer.py Layer.__call__: add_loss(activity_regularizer(output));
    3.14.0 divides by the batch size (keras-team/keras#22021)."""
    at_3_13 = semantics.at("keras3", "3.13.2", backend="jax").choices
    at_3_14 = semantics.at("keras3", "3.14.0", backend="jax").choices
    assert at_3_13["activity_regularizer_scaling"] == "sum"
    assert at_3_14["activity_regularizer_scaling"] == "batch_mean"
    assert {r for r in at_3_13 if at_3_13[r] != at_3_14[r]} == {"activity_regularizer_scaling"}


def test_a_rule_changed_for_a_range_agrees_inside_it_and_is_explained_outside():
    as_3_13 = semantics.at("keras3", "3.13.2", backend="jax").choices
    observed = _observed(as_3_13)
    inside = judging.judge(CASE, observed, {"keras": "3.13.2", "backend": "jax"})
    assert inside["test_on_batch/compiled"].verdict == "agree"
    outside = judging.judge(CASE, observed, {"keras": "3.15.1", "backend": "jax"})["test_on_batch/compiled"]
    assert outside.verdict == "explained"
    assert outside.rules == {"activity_regularizer_scaling": "sum"}
    assert outside.precedents == {"activity_regularizer_scaling": "keras3 <3.14 (read in keras==3.13.2, keras-team/keras#22021)"}


def test_a_row_scoped_to_a_mode_applies_in_that_mode_only():
    eager = semantics.at("keras3", "3.15.1", backend="tensorflow", mode="eager").choices
    compiled = semantics.at("keras3", "3.15.1", backend="tensorflow", mode="compiled").choices
    assert (eager["evaluate_output_log"], compiled["evaluate_output_log"]) == ("batch_size_weighted", "batch_mean")
    jit = semantics.at("tf_keras", "2.21.0", mode="jit").choices
    function = semantics.at("tf_keras", "2.21.0", mode="function").choices
    assert (jit["mask_normalisation"], function["mask_normalisation"]) == ("valid_entries_no_nan", "valid_entries")


def test_a_row_scoped_to_a_path_wins_over_its_mode_row():
    table = _table(Rows("tf_keras", {"mask_normalisation": "valid_entries_no_nan"}, mode="jit"),
                   Rows("tf_keras", {"mask_normalisation": "all_entries"}, mode="jit", path="fit"))
    semantics.check_table(table)
    pick = [semantics.at("tf_keras", "2.21.0", mode="jit", path=p, table=table).choices["mask_normalisation"]
            for p in ("evaluate", "fit")]
    assert pick == ["valid_entries_no_nan", "all_entries"]
    assert semantics.at("tf_keras", "2.21.0", mode="jit", path="fit", table=table).name == \
        "tf_keras 2.21.0 mode=jit path=fit"


# ---- the table is checked at load ------------------------------------------------------------


def _table(*extra: Rows) -> list[Rows]:
    return [Rows(lineage, BASE) for lineage in semantics.LINEAGES] + list(extra)


def test_two_rows_that_tie_are_refused_at_load():
    jax = Rows("keras3", {"mask_normalisation": "all_entries"}, backend="jax")
    old = Rows("keras3", {"mask_normalisation": "valid_entries_no_nan"}, before="3.5")
    with pytest.raises(semantics.SemanticsError, match="tie"):
        semantics.check_table(_table(jax, old))
    # a row for exactly their intersection decides
    semantics.check_table(_table(jax, old, Rows("keras3", {"mask_normalisation": "all_entries"},
                                                backend="jax", before="3.5")))
    with pytest.raises(semantics.SemanticsError, match="tie"):
        semantics.check_table(_table(Rows("keras3", {"mask_normalisation": "all_entries"}, since="3.2"),
                                     Rows("keras3", {"mask_normalisation": "valid_entries"}, before="3.4")))


def test_a_narrower_range_or_scope_wins_without_a_tie():
    table = _table(Rows("keras3", {"mask_normalisation": "all_entries"}, before="3.5"),
                   Rows("keras3", {"mask_normalisation": "valid_entries_no_nan"}, since="3.2", before="3.3"))
    semantics.check_table(table)
    pick = [semantics.at("keras3", v, table=table).choices["mask_normalisation"] for v in ("3.1.0", "3.2.1", "3.4.0", "3.5.0")]
    assert pick == ["all_entries", "valid_entries_no_nan", "all_entries", "valid_entries"]


def test_a_misspelt_rule_or_alternative_or_lineage_is_refused_at_load():
    with pytest.raises(rules.RuleError, match="mask_normalization"):
        semantics.check_table(_table(Rows("keras3", {"mask_normalization": "all_entries"})))
    with pytest.raises(rules.RuleError, match="all_entry"):
        semantics.check_table(_table(Rows("keras3", {"mask_normalisation": "all_entry"})))
    with pytest.raises(semantics.SemanticsError, match="keras4"):
        semantics.check_table(_table(Rows("keras4", {"mask_normalisation": "all_entries"})))


def test_a_lineage_without_a_base_row_for_some_rule_is_refused():
    partial = [Rows(lineage, BASE) for lineage in semantics.LINEAGES if lineage != "keras3"]
    partial.append(Rows("keras3", {r: a for r, a in BASE.items() if r != "merge_mask"}))
    with pytest.raises(semantics.SemanticsError, match="merge_mask"):
        semantics.check_table(partial)


def test_the_semantics_hash_changes_with_any_row():
    assert semantics.semantics_hash(_table()) != semantics.semantics_hash(
        _table(Rows("keras3", {"mask_normalisation": "all_entries"}, before="3.1")))
    assert rules.semantics_hash() == semantics.semantics_hash()


# ---- the command -----------------------------------------------------------------------------


def _rules(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "rules", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_rules_at_prints_a_releases_resolved_semantics_and_where_each_comes_from():
    out = _rules("--at", "keras==3.13.2", "--backend", "jax")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("semantics of keras3 3.13.2 backend=jax")
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("activity_regularizer_scaling"))
    assert "sum" in line and "<3.14" in line and "keras-team/keras#22021" in line
    assert [ln.split()[0] for ln in out.stdout.splitlines()[2:2 + len(rules.RULES)]] == list(rules.RULES)


@pytest.mark.parametrize("args, message", [
    (["--at", "keras"], "expected DIST==VERSION"),
    (["--at", "tensorflow==2.16.2"], "2.12-2.15"),
    (["--at", "keras==x.y"], "expected a release"),
    (["--at", "pytorch==2.1"], "expected keras, tf-keras or tensorflow"),
    (["--at", "tf-keras==2.17.0", "--backend", "jax"], "only Keras 3 has backends"),
    (["--backend", "jax"], "need --at"),
])
def test_rules_at_refuses_what_it_cannot_answer(args, message):
    out = _rules(*args)
    assert out.returncode == 2 and message in out.stderr, (out.returncode, out.stderr)
