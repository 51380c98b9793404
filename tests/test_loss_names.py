"""A loss given by its name, as users write it (`loss="mean_squared_error"`), beside loss objects
(issue 19): spec.Output.loss_by "name", drawn from vocabulary version 9. Compile resolves a string
with keras.losses.get and wraps the function in a LossFunctionWrapper with the default reduction
(keras/src/trainers/compile_utils.py get_loss, tf_keras/src/engine/compile_utils.py
get_loss_function, keras 2.3.1 training_utils.get_loss_function): the reference computes what the
loss object with default options computes, and the differential runs check that it is so.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import features, spec, strategies
from harness.impls import build
from harness.report.repro import reproducer
from test_reference_version_rules import HX, wide_case

ROOT = Path(__file__).resolve().parents[1]


def named(case: spec.Case) -> spec.Case:
    return replace(case, outputs=tuple(replace(o, loss_by="name", loss_options={}) for o in case.outputs))


def test_a_name_is_kept_through_json_and_an_object_writes_no_field():
    obj = wide_case(HX, loss="mean_squared_error", outputs=2)
    by_name = named(obj)
    assert '"loss_by"' not in spec.dumps(obj)  # every case written before the field keeps its id
    assert spec.loads(spec.dumps(by_name)).outputs[1].loss_by == "name"
    assert by_name.id != obj.id
    assert spec.structure_key(by_name) != spec.structure_key(obj)  # compile is handed another thing


def test_a_name_takes_no_options_and_loss_by_has_two_values(tmp_path):
    raw = json.loads(spec.dumps(named(wide_case(HX, loss="mean_squared_error"))))
    raw["outputs"][0]["loss_options"] = {"reduction": "sum"}
    (tmp_path / "a.json").write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError, match=r"\$\.outputs\[0\]\.loss_options.*takes no options"):
        spec.load(tmp_path / "a.json")
    raw["outputs"][0]["loss_options"], raw["outputs"][0]["loss_by"] = {}, "string"
    (tmp_path / "b.json").write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError, match=r"\$\.outputs\[0\]\.loss_by: expected one of 'object', 'name'"):
        spec.load(tmp_path / "b.json")


def test_the_single_form_needs_the_same_loss_by_for_every_output():
    case = replace(wide_case(HX, loss="mean_squared_error", outputs=2), loss_form="single")
    mixed = replace(case, outputs=(replace(case.outputs[0], loss_by="name"), case.outputs[1]))
    with pytest.raises(spec.CaseError, match=r"\$\.outputs\[1\]\.loss.*loss_by"):
        spec.validate(mixed)


def test_compile_is_handed_the_string_for_a_name_and_the_object_otherwise():
    class MeanSquaredError:
        def __init__(self, **options):
            self.options = options

    keras = SimpleNamespace(__name__="keras", losses=SimpleNamespace(MeanSquaredError=MeanSquaredError))
    case = wide_case(HX, loss="mean_squared_error", outputs=2)
    mixed = replace(case, outputs=(replace(case.outputs[0], loss_by="name"), case.outputs[1]))
    first, second = build.loss_argument(keras, mixed)
    assert first == "mean_squared_error" and isinstance(second, MeanSquaredError)
    assert build.loss_argument(keras, replace(named(case), loss_form="dict")) == {
        "out": "mean_squared_error", "out1": "mean_squared_error"}


def test_a_name_keras_does_not_know_is_unsupported_with_the_reason():
    def get(name):
        raise ValueError(f"Could not interpret loss identifier: {name}")

    keras = SimpleNamespace(__name__="keras", losses=SimpleNamespace(get=get))
    reason = build.missing_loss_classes(keras, named(wide_case(HX, loss="mean_squared_error")))
    assert reason == "keras.losses.get does not know the name 'mean_squared_error'"


def test_the_reproducer_writes_the_name():
    case = named(wide_case(HX, loss="mean_squared_error"))
    script = reproducer(json.loads(spec.dumps(case)), case.id, "keras3-jax", "test_on_batch/eager",
                        recorded=None, reference=None)
    assert "loss = ['mean_squared_error']  # form: list" in script and "keras.losses.MeanSquaredError(" not in script


def test_version_9_draws_names_without_options_and_earlier_versions_none():
    drawn = strategies.corpus(0, 300)
    with_names = [c for c in drawn if "loss_by_name" in features.features(c)]
    assert len(with_names) / len(drawn) >= 0.05
    assert all(not o.loss_options for c in with_names for o in c.outputs if o.loss_by == "name")
    assert not any(o.loss_by == "name" for c in strategies.corpus(0, 200, vocabulary_version=8) for o in c.outputs)
