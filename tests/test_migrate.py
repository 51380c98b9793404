"""The migration view: the rules that separate two releases, measured on cases (reference only)."""

from __future__ import annotations

from pathlib import Path

from harness import cli, migrate
from harness.commands.run import load_stored

ROOT = Path(__file__).resolve().parent.parent
STORED = load_stored([ROOT / "cases"])


def _rules(m: migrate.Migration) -> dict[str, migrate.RuleDifference]:
    return {d.rule: d for d in m.rules}


def test_keras_3_13_to_3_15_is_the_activity_scaling_and_the_metrics_reset_on_jax_and_the_l1_error_too_on_tensorflow():
    jax = migrate.compare_releases({"lineage": "keras3", "version": "3.13.2", "backend": "jax"},
                                   {"lineage": "keras3", "version": "3.15.1", "backend": "jax"}, STORED)
    # and test_on_batch's reset of the metrics in 3.15.0 (keras-team/keras#22617)
    assert set(_rules(jax)) == {"activity_regularizer_scaling", "on_batch_metrics"}
    loop = _rules(jax)["on_batch_metrics"].effects
    assert loop["test_on_batch_loop"].changed >= 1 and loop["train_on_batch"].changed == 0
    tf = migrate.compare_releases({"lineage": "keras3", "version": "3.13.2", "backend": "tensorflow"},
                                  {"lineage": "keras3", "version": "3.15.1", "backend": "tensorflow"}, STORED)
    assert set(_rules(tf)) == {"activity_regularizer_scaling", "l1_regularizer_float64", "on_batch_metrics"}
    # the stored activity-regularizer case (08da4e4d6678ad1c, float64, an L1 activity penalty) shows both
    activity = _rules(tf)["activity_regularizer_scaling"].effects["train_on_batch"]
    assert activity.changed >= 1 and activity.smallest is not None and activity.relative
    l1 = _rules(tf)["l1_regularizer_float64"].effects["train_on_batch"]
    assert l1.changed >= 1 and l1.smallest[1] == "raises" and l1.smallest[2] != "raises"


def test_a_release_against_itself_differs_in_nothing():
    same = {"lineage": "tf_keras", "version": "2.21.0"}
    m = migrate.compare_releases(same, same, STORED)
    assert m.rules == [] and all(e.changed == 0 and e.of == len(STORED) for e in m.combined.values())


def test_tf_keras_to_keras3_lists_the_sample_weight_broadcast_first_among_what_changes_totals(capsys):
    assert cli.main(["migrate", "--from", "tf-keras==2.21", "--to", "keras==3.15", "-n", "12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("from tf_keras 2.21 to keras3 3.15 backend=tensorflow:")
    assert "sample_weight_broadcast: per_sample -> trailing_axis" in out and "all rules at once:" in out


def test_bad_releases_exit_2(capsys):
    assert cli.main(["migrate", "--from", "tensorflow==2.11", "--to", "keras==3.15"]) == 2
    assert "expected TensorFlow 2.12-2.15" in capsys.readouterr().err
    assert cli.main(["migrate", "--from", "keras==3.15", "--to", "tf-keras==2.21", "--backend", "jax"]) == 2
