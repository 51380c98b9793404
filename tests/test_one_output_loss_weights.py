"""loss_weights for a one-output model: a bare number (`loss_weights=0.5`), a list of one or a dict
of one, as a float or a Python int (issue 19), and the rule one_output_loss_weights that says
which forms each release accepts.

The case: wide_case(HX), MSE against zero targets; per sample the mean of the squared errors,
(0.25 + 4) / 2 = 2.125 and (1 + 9) / 2 = 5, so the unweighted loss is (2.125 + 5) / 2 = 3.5625.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from harness import compare, reference, spec, strategies
from harness.impls import build
from harness.reference import semantics
from harness.reference.rules import PROFILES
from harness.report.repro import reproducer
from test_reference_builders import close
from test_reference_version_rules import one_weight

TFK = PROFILES["tf_keras-2.21"]
LOSS = 3.5625


# --- the Case keeps the type of a loss weight ---------------------------------------------------


def test_an_int_loss_weight_stays_an_int_through_json_and_has_its_own_id():
    as_int, as_float = one_weight(2, "scalar"), one_weight(2.0, "scalar")
    assert type(spec.loads(spec.dumps(as_int)).outputs[0].loss_weight) is int
    assert type(spec.loads(spec.dumps(as_float)).outputs[0].loss_weight) is float
    assert '"loss_weight":2,' in spec.dumps(as_int) and '"loss_weight":2.0,' in spec.dumps(as_float)
    assert as_int.id != as_float.id


def test_keras_is_handed_the_loss_weight_in_the_form_and_type_of_the_case():
    assert build.loss_weights_argument(one_weight(2, "scalar")) == 2
    assert type(build.loss_weights_argument(one_weight(2, "scalar"))) is int
    assert build.loss_weights_argument(one_weight(0.5, "scalar")) == 0.5
    assert build.loss_weights_argument(one_weight(3, "list")) == [3]
    assert build.loss_weights_argument(one_weight(3, "dict")) == {"out": 3}


def test_a_bare_loss_weight_needs_one_output_and_a_number():
    raw = json.loads(spec.dumps(one_weight(2.0, "scalar")))
    two = dict(raw, outputs=[raw["outputs"][0], dict(raw["outputs"][0], layer="out1")],
               layers=[raw["layers"][0], dict(raw["layers"][0], name="out1")])
    with pytest.raises(spec.CaseError, match=r"\$\.loss_weights_form.*only for a model with one output"):
        spec.from_json(two, "two.json")
    for bad in (True, "2", None):
        broken = dict(raw, outputs=[dict(raw["outputs"][0], loss_weight=bad)])
        with pytest.raises(spec.CaseError, match=r"loss_weight"):
            spec.from_json(broken, "bad.json")


def test_the_reproducer_writes_the_weight_as_the_case_has_it():
    script = reproducer(json.loads(spec.dumps(one_weight(2, "scalar"))), "id", "keras3-jax", "test_on_batch/eager",
                        recorded=None, reference=None)
    assert "loss_weights = 2  # form: scalar" in script


# --- the reference, by hand ---------------------------------------------------------------------


@pytest.mark.parametrize("alternative, weight, form, want", [
    # tf_keras / tf.keras eager: every form, every type
    ("any_form", 2, "scalar", 2 * LOSS), ("any_form", 0.5, "scalar", 0.5 * LOSS), ("any_form", 3, "list", 3 * LOSS),
    # graph mode (training_v1, keras 2.x): a bare number is a TypeError
    ("no_bare_number", 0.5, "scalar", math.nan), ("no_bare_number", 0, "scalar", math.nan),
    ("no_bare_number", 0.5, "dict", 0.5 * LOSS),
    # Keras 3.5+: a bare non-zero int is refused; a bare zero int is falsy and weights the loss
    ("no_bare_int", 2, "scalar", math.nan), ("no_bare_int", 0, "scalar", 0.0), ("no_bare_int", 0.5, "scalar", 0.5 * LOSS),
    ("no_bare_int", 2, "list", 2 * LOSS),
    # Keras 3.3-3.4: a bare float only; a falsy zero counts as 1.0; a list or dict is refused
    ("bare_float_only", 0.5, "scalar", 0.5 * LOSS), ("bare_float_only", 0.0, "scalar", LOSS),
    ("bare_float_only", 0, "scalar", LOSS), ("bare_float_only", 2, "scalar", math.nan),
    ("bare_float_only", 0.5, "list", math.nan), ("bare_float_only", 0.0, "dict", math.nan),
    # Keras 3.0-3.2: nothing but a falsy bare zero (which counts as 1.0)
    ("none", 0.5, "scalar", math.nan), ("none", 2, "scalar", math.nan), ("none", 0.0, "scalar", LOSS),
    ("none", 0.5, "list", math.nan),
])
def test_one_output_loss_weights(alternative, weight, form, want):
    case = one_weight(weight, form)
    for path in ("test_on_batch", "evaluate"):
        bd = reference.compute(case, {**TFK, "one_output_loss_weights": alternative}, path)
        close(bd.total, want, what=f"{alternative} {weight!r} {form} {path}")
        assert bool(bd.notes) == math.isnan(want), bd.notes


def test_the_refusals_are_matched_to_the_check_that_raises_them():
    graph = reference.compute(one_weight(0.5, "scalar"), {**TFK, "one_output_loss_weights": "no_bare_number"})
    assert compare.predicts_error(graph, "TypeError: Could not interpret loss_weights argument: 0.5 "
                                         "[at tf_keras/src/engine/training_utils_v1.py:1749 in prepare_loss_weights]")
    assert compare.predicts_error(graph, "TypeError: Could not interpret loss_weights argument: 0.5 "
                                         "[at keras/engine/training_utils.py:870 in prepare_loss_weights]")
    bare_int = reference.compute(one_weight(2, "scalar"), {**TFK, "one_output_loss_weights": "no_bare_int"})
    assert compare.predicts_error(bare_int, "ValueError: Expected `loss_weights` argument to be a float "
                                            "[at keras/src/trainers/compile_utils.py:442 in __init__]")
    # an error of some other Keras code is not this rule's
    assert not compare.predicts_error(bare_int, "ValueError: x [at keras/src/losses/loss.py:1 in f]")


# --- which release takes which alternative (read in each release's CompileLoss) -------------------


@pytest.mark.parametrize("lineage, version, scope, want", [
    ("keras3", "3.0.5", {"backend": "jax"}, "none"),
    ("keras3", "3.2.1", {"backend": "tensorflow"}, "none"),
    ("keras3", "3.3.3", {"backend": "jax"}, "bare_float_only"),  # 4919ea1702, first in v3.3.0
    ("keras3", "3.4.1", {"backend": "tensorflow"}, "bare_float_only"),
    ("keras3", "3.5.0", {"backend": "jax"}, "no_bare_int"),  # keras-team/keras#20015
    ("keras3", "3.15.1", {"backend": "torch"}, "no_bare_int"),
    ("tf_keras", "2.21.0", {}, "any_form"),
    ("tf_keras", "2.21.0", {"mode": "graph"}, "no_bare_number"),
    ("tf.keras", "2.15.0", {"mode": "graph"}, "no_bare_number"),
    ("keras", "2.3.1", {}, "no_bare_number"),
    ("keras", "2.2.4", {}, "no_bare_number"),
])
def test_each_release_reads_loss_weights_of_one_output_as_its_source_says(lineage, version, scope, want):
    assert semantics.at(lineage, version, **scope).choices["one_output_loss_weights"] == want


# --- drawn cases ----------------------------------------------------------------------------------


def test_drawn_cases_give_a_bare_weight_only_to_one_output_and_draw_int_weights():
    drawn = [strategies.corpus_case(3, i) for i in range(300)]
    bare = [c for c in drawn if c.loss_weights_form == "scalar"]
    assert bare and all(len(c.outputs) == 1 for c in bare)
    assert any(type(c.outputs[0].loss_weight) is int for c in bare)
    assert any(type(c.outputs[0].loss_weight) is float for c in bare)
    ints = [c for c in drawn if any(type(o.loss_weight) is int for o in c.outputs)]
    assert ints and all(all(type(o.loss_weight) is int for o in c.outputs) for c in ints)


def test_earlier_vocabulary_versions_draw_neither():
    for i in range(200):
        case = strategies.corpus_case(3, i, vocabulary_version=5)
        assert case.loss_weights_form != "scalar"
        assert all(type(o.loss_weight) is not int for o in case.outputs)


def test_only_bare_weights_needs_one_output():
    with pytest.raises(ValueError, match="max_outputs=1"):
        strategies.corpus_case(0, 0, loss_weights_forms=("scalar",))
    with pytest.raises(ValueError, match="vocabulary_version >= 6"):
        strategies.corpus_case(0, 0, loss_weights_forms=("scalar",), max_outputs=1, vocabulary_version=5)
    case = strategies.corpus_case(0, 0, loss_weights_forms=("scalar",), max_outputs=1)
    assert case.loss_weights_form == "scalar"
    assert replace(case).id == case.id
