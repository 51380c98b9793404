"""How `y` is handed to Keras (spec.Y_FORMS): one array or a list ("auto"), a list for one output
("list"), a dict keyed by output name ("dict"); and what each release does with it
(docs/y-structures.md: observed with plain Keras, the rules dict_targets_one_output and
dict_sample_weight_with_dict_targets)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness import reference, spec, strategies, vocabulary
from harness.impls import build
from harness.reference import rules

ROOT = Path(__file__).resolve().parents[1]
_MOTIVATING = spec.load(ROOT / "cases" / "motivating_two_outputs.json")
# Two outputs (a temporal one), an activity regularizer; without its sample weights.
TWO = dataclasses.replace(_MOTIVATING, sample_weight_form="omitted",
                          outputs=tuple(dataclasses.replace(o, sample_weight=None) for o in _MOTIVATING.outputs))


def _one_output(case: spec.Case) -> spec.Case:
    """Its vector output alone (categorical_crossentropy on (4, 2))."""
    return dataclasses.replace(case, outputs=case.outputs[1:], loss_form="list", loss_weights_form="omitted")


ONE = _one_output(TWO)
KERAS_3_15 = rules.expected("keras3-jax", {"keras": "3.15.1", "backend": "jax"})
KERAS_3_7 = rules.expected("keras3-jax", {"keras": "3.7.0", "backend": "jax"})
KERAS_3_6 = rules.expected("keras3-jax", {"keras": "3.6.0", "backend": "jax"})
KERAS_3_4 = rules.expected("keras3-jax", {"keras": "3.4.1", "backend": "jax"})
TF_KERAS = rules.expected("tf_keras", {"tf_keras": "2.21.0", "tensorflow": "2.21.0"})
PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")


# ---- the Case ---------------------------------------------------------------------------------


def test_a_case_file_without_y_form_is_auto_and_keeps_its_id():
    raw = json.loads((ROOT / "cases" / "motivating_two_outputs.json").read_text())
    assert "y_form" not in raw
    case = spec.from_json(raw)
    assert case.y_form == "auto" and "y_form" not in case.to_json() and case.id == _MOTIVATING.id
    assert spec.from_json({**raw, "y_form": "auto"}).id == case.id


def test_a_dict_y_round_trips_and_changes_the_id():
    case = dataclasses.replace(TWO, y_form="dict")
    assert spec.loads(spec.dumps(case)).y_form == "dict"
    assert case.id != TWO.id


def test_an_unknown_y_form_names_the_field_and_the_choices():
    raw = {**TWO.to_json(), "y_form": "dcit"}
    with pytest.raises(spec.CaseError, match=r"\$\.y_form.*auto.*list.*dict"):
        spec.from_json(raw, "bad.json")


def test_keras_gets_y_in_the_form_the_case_says():
    a, b = (o.name for o in TWO.outputs)
    assert isinstance(build.y_argument(ONE), np.ndarray)
    assert [type(y) for y in build.y_argument(dataclasses.replace(ONE, y_form="list"))] == [np.ndarray]
    assert list(build.y_argument(dataclasses.replace(TWO, y_form="dict"))) == [a, b]
    assert isinstance(build.y_argument(TWO), list) and len(build.y_argument(TWO)) == 2


# ---- the reference ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_a_dict_y_changes_no_number_where_it_is_mapped_by_name(path):
    for profile in (TF_KERAS, KERAS_3_15, KERAS_3_4):
        want = reference.compute(TWO, rules.profile(profile), path)
        got = reference.compute(dataclasses.replace(TWO, y_form="dict"), rules.profile(profile), path)
        assert got.total == want.total and not got.notes, (profile, path)


@pytest.mark.parametrize("path", PATHS)
def test_keras_3_7_and_later_refuse_a_dict_y_for_one_output(path):
    case = dataclasses.replace(ONE, y_form="dict")
    for profile in (KERAS_3_15, KERAS_3_7):
        raised = reference.compute(case, rules.profile(profile), path)
        assert math.isnan(raised.total) and any("one-output model and a dict y" in n for n in raised.notes)
    for profile in (KERAS_3_6, TF_KERAS):  # 3.0.5-3.6.0 and tf-keras take the dict's one array
        b = reference.compute(case, rules.profile(profile), path)
        assert b.total == reference.compute(ONE, rules.profile(profile), path).total and not b.notes


def _with_dict_sample_weights(case: spec.Case) -> spec.Case:
    def weights(target: np.ndarray) -> np.ndarray:  # per sample, or per time step of a temporal output
        shape = target.shape[:2] if target.ndim >= 3 else target.shape[:1]
        return np.linspace(0.0, 2.0, int(np.prod(shape))).reshape(shape)
    outputs = tuple(dataclasses.replace(o, sample_weight=weights(o.target)) for o in case.outputs)
    return dataclasses.replace(case, outputs=outputs, sample_weight_form="dict", y_form="dict")


@pytest.mark.parametrize("path", PATHS)
def test_dict_y_and_dict_sample_weight_raise_key_error_from_keras_3_7(path):
    case = _with_dict_sample_weights(TWO)
    for profile in (KERAS_3_15, KERAS_3_7):
        b = reference.compute(case, rules.profile(profile), path)
        assert math.isnan(b.total) and any("KeyError: 0" in n for n in b.notes), profile
    for profile in (KERAS_3_4, TF_KERAS):  # mapped by name: the weights of the list form
        by_name = reference.compute(case, rules.profile(profile), path)
        as_list = reference.compute(dataclasses.replace(case, sample_weight_form="list", y_form="auto"),
                                    rules.profile(profile), path)
        assert by_name.total == as_list.total and not by_name.notes, profile


def test_keras_3_evaluate_replicates_one_sample_weight_into_a_list_y():
    """ArrayDataAdapter.__init__ maps a single sample_weight array onto y's structure: beside
    y=[y0] it reaches the one-output model as [w], so evaluate and fit take it as
    sample_weight=[w] (rule single_output_sample_weight_list); the batch paths do not."""
    weights = np.linspace(0.5, 1.5, ONE.batch_size)[:, None]  # (batch, 1): as [w], an outer product
    single = dataclasses.replace(ONE, outputs=(dataclasses.replace(ONE.outputs[0], sample_weight=weights),),
                                 sample_weight_form="single", y_form="list")
    as_list = dataclasses.replace(single, sample_weight_form="list")
    profile = rules.profile(KERAS_3_15)
    auto = dataclasses.replace(single, y_form="auto")
    for path in ("evaluate", "fit"):
        got, want = reference.compute(single, profile, path), reference.compute(as_list, profile, path)
        assert math.isfinite(got.total) and got.total == want.total
        assert got.total != reference.compute(auto, profile, path).total  # [w] is not w for (batch, 1)
    got, want = reference.compute(single, profile, "test_on_batch"), reference.compute(auto, profile, "test_on_batch")
    assert math.isfinite(got.total) and got.total == want.total


# ---- the generator ----------------------------------------------------------------------------


def test_y_forms_are_drawn_from_their_vocabulary_version_on():
    since = vocabulary.FORMS_SINCE["y_form"]
    before = strategies.corpus(0, 60, vocabulary_version=since - 1)
    assert {c.y_form for c in before} == {"auto"}
    drawn = strategies.corpus(0, 200, vocabulary_version=since)
    assert {"list", "dict"} <= {c.y_form for c in drawn}
    assert all(len(c.outputs) == 1 for c in drawn if c.y_form == "list")
    # a list or single sample_weight beside a dict y has no rule yet (docs/y-structures.md)
    assert all(c.sample_weight_form in ("omitted", "dict") for c in drawn if c.y_form == "dict")
