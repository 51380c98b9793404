"""The Case as data: JSON round trip, stable ids, and a CaseError naming file and field for
every kind of malformed input."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest
import numpy as np
from hypothesis import given

from harness import spec
from harness.strategies import cases

MOTIVATING = Path(__file__).resolve().parent.parent / "cases" / "motivating_two_outputs.json"


# --------------------------------------------------------------------------------------
# Round trip and ids
# --------------------------------------------------------------------------------------


@given(cases())
def test_case_survives_a_json_round_trip_with_the_same_id(case: spec.Case) -> None:
    text = spec.dumps(case)
    loaded = spec.loads(text, "<round trip>")
    assert loaded == case
    assert loaded.id == case.id
    # A second dump is byte-identical: the id does not drift with each save.
    assert spec.dumps(loaded) == text
    assert spec.loads(spec.dumps(loaded)).id == case.id


@given(cases())
def test_case_survives_the_file_round_trip(case: spec.Case) -> None:
    # tempfile, not tmp_path: a function-scoped fixture would be shared by all examples.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.json"
        spec.dump(case, path)
        loaded = spec.load(path)
        assert loaded == case and loaded.id == case.id
        spec.dump(loaded, path)
        assert spec.load(path).id == case.id


def test_id_ignores_formatting_but_not_content() -> None:
    case = spec.load(MOTIVATING)
    raw = json.loads(MOTIVATING.read_text())
    # Same content, different layout and key order: same id.
    reordered = json.dumps(dict(reversed(list(raw.items()))), indent=7)
    assert spec.loads(reordered).id == case.id
    # One number changed: a different id.
    raw["outputs"][0]["loss_weight"] = 0.75
    assert spec.from_json(raw).id != case.id


def test_structure_key_ignores_values_and_nothing_else() -> None:
    """spec.structure_key decides which Cases share compiled models (harness.impls.paths):
    values may differ under one key; whatever Keras is given to build or compile may not."""
    case = spec.load(MOTIVATING)
    key = spec.structure_key(case)
    out0, layer0, inp0 = case.outputs[0], case.layers[0], case.inputs[0]
    new_values = dataclasses.replace(
        case,
        inputs=(dataclasses.replace(inp0, data=inp0.data + 0.5),) + case.inputs[1:],
        layers=(dataclasses.replace(layer0, weights={k: v * 2 for k, v in layer0.weights.items()}),) + case.layers[1:],
        outputs=(dataclasses.replace(out0, target=out0.target + 1.0),) + case.outputs[1:],
        note="another note",
    )
    assert new_values.id != case.id
    assert spec.structure_key(new_values) == key
    changed = {
        "a loss weight": dataclasses.replace(case, outputs=(dataclasses.replace(out0, loss_weight=(out0.loss_weight or 0) + 1),) + case.outputs[1:]),
        "a loss": dataclasses.replace(case, outputs=(dataclasses.replace(out0, loss="mean_absolute_error"),) + case.outputs[1:]),
        "a layer config": dataclasses.replace(case, layers=(dataclasses.replace(layer0, config={**layer0.config, "x": 1}),) + case.layers[1:]),
        "the batch": dataclasses.replace(case, inputs=tuple(dataclasses.replace(i, data=i.data[:1]) for i in case.inputs)),
        "the evaluate batch size": dataclasses.replace(case, evaluate_batch_size=case.evaluate_batch_size + 1),
        "the dtype": dataclasses.replace(case, dtype="float64" if case.dtype == "float32" else "float32"),
        "an int target": dataclasses.replace(case, outputs=(dataclasses.replace(out0, target=np.zeros(out0.target.shape, dtype=np.int64)),) + case.outputs[1:]),
    }
    for what, other in changed.items():
        assert spec.structure_key(other) != key, what


def test_motivating_case_is_valid() -> None:
    case = spec.load(MOTIVATING)
    assert case.output_names() == ["seq_out", "vec_out"]


# --------------------------------------------------------------------------------------
# Malformed inputs: each names the file and the field
# --------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        for m in mutations:
            m(raw)

    return mutate


# (what is wrong, how to break the motivating case, the field the error must name)
MALFORMED: list[tuple[str, Mutation, str]] = [
    ("missing top-level field", _delete(["dtype"]), "$.dtype"),
    ("missing output field", _delete(["outputs", 1, "loss"]), "$.outputs[1].loss"),
    ("wrong schema version", _set(["schema"], 2), "$.schema"),
    ("unknown dtype", _set(["dtype"], "float16"), "$.dtype"),
    ("wrong type: string for an integer", _set(["evaluate_batch_size"], "3"), "$.evaluate_batch_size"),
    ("wrong type: boolean for a number", _set(["outputs", 0, "loss_weight"], True), "$.outputs[0].loss_weight"),
    ("wrong type: object for a list", _set(["layers"], {}), "$.layers"),
    ("evaluate batch larger than the batch", _set(["evaluate_batch_size"], 5), "$.evaluate_batch_size"),
    ("ragged array", _set(["layers", 1, "weights", "kernel"], [[0.5, -0.25], [0.75]]), "$.layers[1].weights.kernel"),
    ("kernel shape does not fit the input", _set(["layers", 1, "weights", "kernel"], [[0.5, -0.25]]),
     "$.layers[1].weights.kernel"),
    ("missing weight", _delete(["layers", 1, "weights", "bias"]), "$.layers[1].weights"),
    ("target shape does not fit the output", _set(["outputs", 1, "target"], [[1.0, 0.0]] * 3), "$.outputs[1].target"),
    ("unknown loss", _set(["outputs", 0, "loss"], "mean_cubed_error"), "$.outputs[0].loss"),
    ("unknown loss option", _set(["outputs", 0, "loss_options", "gamma"], 2.0), "$.outputs[0].loss_options.gamma"),
    ("unknown reduction", _set(["outputs", 0, "loss_options", "reduction"], "average"),
     "$.outputs[0].loss_options.reduction"),
    ("label smoothing out of range", _set(["outputs", 1, "loss_options", "label_smoothing"], 1.5),
     "$.outputs[1].loss_options.label_smoothing"),
    ("unknown layer type", _set(["layers", 3, "type"], "GlobalMaxPooling1D"), "$.layers[3].type"),
    ("inbound names a later layer", _set(["layers", 1, "inbound"], ["seq_out"]), "$.layers[1].inbound[0]"),
    ("duplicate layer name", _set(["layers", 2, "name"], "hidden"), "$.layers[2].name"),
    ("unknown activation", _set(["layers", 1, "config", "activation"], "swish"), "$.layers[1].config.activation"),
    ("regularizer on a weight the layer lacks", _set(["layers", 3, "regularizers"], {"kernel": {"kind": "l2", "l2": 0.1}}),
     "$.layers[3].regularizers.kernel"),
    ("negative regularizer factor", _set(["layers", 1, "regularizers", "kernel", "l2"], -0.01),
     "$.layers[1].regularizers.kernel.l2"),
    ("target out of domain: a row not on the simplex", _set(["outputs", 1, "target", 0], [0.5, 0.25]),
     "$.outputs[1].target"),
    ("target out of domain: a negative probability",
     _both(_set(["outputs", 0, "loss"], "binary_crossentropy"), _set(["outputs", 0, "target", 0, 0], [-1.0])),
     "$.outputs[0].target"),
    ("sample weight shape wrong", _set(["outputs", 0, "sample_weight"], [1.0, 2.0, 0.5]), "$.outputs[0].sample_weight"),
    ("negative sample weight", _set(["outputs", 1, "sample_weight", 2], -3.0), "$.outputs[1].sample_weight"),
    # one output may go without (None in the list, no key in the dict); every one may not
    ("every sample weight missing while the form is dict", _both(
        _set(["outputs", 0, "sample_weight"], None), _set(["outputs", 1, "sample_weight"], None)),
     "$.outputs[0].sample_weight"),
    ("a sample weight set while the form is omitted", _both(
        _set(["sample_weight_form"], "omitted"), _set(["outputs", 1, "sample_weight"], None)),
     "$.outputs[0].sample_weight"),
    ("loss_weight set while loss_weights_form is omitted", _both(
        _set(["loss_weights_form"], "omitted"), _set(["outputs", 0, "loss_weight"], None)), "$.outputs[1].loss_weight"),
    ("single loss form with two different losses", _set(["loss_form"], "single"), "$.outputs[1].loss"),
    ("output names a missing layer", _set(["outputs", 0, "layer"], "nowhere"), "$.outputs[0].layer"),
    ("the same layer used twice as an output", _set(["outputs", 1, "layer"], "seq_out"), "$.outputs[1].layer"),
    ("input batch sizes differ", lambda raw: raw["inputs"].append({"name": "z", "kind": "float", "data": [[0.5]]}),
     "$.inputs[1].data"),
    ("a layer that feeds no output", lambda raw: raw["layers"].append(
        {"name": "spare", "type": "Activation", "inbound": ["hidden"], "config": {"activation": "relu"}}),
     "$.layers[5].name"),
    ("float token ids for Embedding", _set(["inputs", 0, "kind"], "int"), "$.inputs[0].data"),
    # A misspelt field is refused, never dropped (dropped, `sampel_weight` would run unweighted).
    ("misspelt output field", _set(["outputs", 0, "sampel_weight"], [1.0, 2.0, 0.5, 1.0]),
     "$.outputs[0].sampel_weight"),
    ("unknown top-level field", _set(["class_weight"], {"0": 1.0}), "$.class_weight"),
    ("unknown input field", _set(["inputs", 0, "dtype"], "float32"), "$.inputs[0].dtype"),
    ("unknown layer field", _set(["layers", 1, "kernel_regularizer"], "l2"), "$.layers[1].kernel_regularizer"),
    ("unknown config key", _set(["layers", 1, "config", "unit"], 3), "$.layers[1].config.unit"),
    ("unknown regularizer field", _set(["layers", 1, "regularizers", "kernel", "l3"], 0.1),
     "$.layers[1].regularizers.kernel.l3"),
]


def test_an_unknown_field_names_the_known_ones(tmp_path: Path) -> None:
    raw = json.loads(MOTIVATING.read_text())
    raw["outputs"][0]["sampel_weight"] = raw["outputs"][0]["sample_weight"]
    path = tmp_path / "misspelt.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError, match="expected a known field: layer, target, loss, loss_options, "
                                             "loss_weight, sample_weight, loss_by; got 'sampel_weight'"):
        spec.load(path)


@pytest.mark.parametrize("what,mutate,field", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_case_names_file_and_field(tmp_path: Path, what: str, mutate: Mutation, field: str) -> None:
    raw = json.loads(MOTIVATING.read_text())
    mutate(raw)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError) as info:
        spec.load(path)
    assert info.value.source == str(path)
    assert info.value.field_path == field, f"{what}: {info.value}"
    assert str(path) in str(info.value) and field in str(info.value)


TEXTUAL: list[tuple[str, Callable[[str], str], str]] = [
    ("bad JSON: truncated", lambda t: t[: len(t) // 2], "(line"),
    ("bad JSON: trailing comma", lambda t: t.replace('"note"', '"x": 1,, "note"', 1), "(line"),
    ("NaN in input data", lambda t: t.replace("[[0.5, -1.0]", "[[NaN, -1.0]", 1), "$.inputs[0].data[0][0][0]"),
    ("Infinity in a weight", lambda t: t.replace("[0.125, -0.5]", "[0.125, Infinity]", 1),
     "$.layers[1].weights.bias[1]"),
    ("NaN in a config", lambda t: t.replace('"mask_value": 0.0', '"mask_value": NaN', 1), "$.layers[0].config.mask_value"),
    ("not an object", lambda t: "[1, 2, 3]", "$"),
]


@pytest.mark.parametrize("what,mutate,field", TEXTUAL, ids=[m[0] for m in TEXTUAL])
def test_malformed_text_names_file_and_field(tmp_path: Path, what: str, mutate: Callable[[str], str], field: str) -> None:
    path = tmp_path / "broken.json"
    text = mutate(MOTIVATING.read_text())
    assert text != MOTIVATING.read_text(), f"{what}: the mutation did not apply"
    path.write_text(text)
    with pytest.raises(spec.CaseError) as info:
        spec.load(path)
    assert info.value.source == str(path)
    assert info.value.field_path.startswith(field), f"{what}: {info.value}"


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(spec.CaseError) as info:
        spec.load(path)
    assert str(path) in str(info.value)


def test_a_file_that_is_not_utf8_text_names_the_file_and_the_offending_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(MOTIVATING.read_text().replace('"note": "', '"note": "caf\xe9 ', 1).encode("latin-1"))
    with pytest.raises(spec.CaseError) as info:
        spec.load(path)
    assert info.value.source == str(path) and info.value.field_path == "(file)"
    assert "expected UTF-8 text" in str(info.value) and "byte 0xe9" in str(info.value)


def test_a_folder_named_as_a_case_file_names_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "folder.json"
    path.mkdir()
    with pytest.raises(spec.CaseError) as info:
        spec.load(path)
    assert info.value.source == str(path) and "expected a readable file" in str(info.value)


WRONG_TYPES: list[tuple[str, Mutation, str]] = [
    ("batch size given as a string", _set(["evaluate_batch_size"], "3"), "$.evaluate_batch_size"),
    ("inputs as an object", _set(["inputs"], {"x": 1}), "$.inputs"),
    ("units as a float", _set(["layers", 1, "config", "units"], 2.5), "$.layers[1].config.units"),
    ("a loss weight as a string", _set(["outputs", 0, "loss_weight"], "half"), "$.outputs[0].loss_weight"),
    ("a layer as a number", _set(["layers", 0], 7), "$.layers[0]"),
]


@pytest.mark.parametrize("what,mutate,field", WRONG_TYPES, ids=[m[0] for m in WRONG_TYPES])
def test_a_field_of_the_wrong_type_names_the_field_and_never_raises_anything_else(
        tmp_path: Path, what: str, mutate: Mutation, field: str) -> None:
    raw = json.loads(MOTIVATING.read_text())
    mutate(raw)
    path = tmp_path / "wrong-type.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(spec.CaseError) as info:  # not a KeyError, TypeError or AttributeError
        spec.load(path)
    assert info.value.field_path == field, f"{what}: {info.value}"
    assert str(path) in str(info.value) and "expected" in str(info.value)


def _conv_case(kernel_size: int, padding: str, steps: int = 2) -> spec.Case:
    x = np.zeros((1, steps, 1))
    conv = spec.Layer("c", "Conv1D", ("x",), {"filters": 1, "kernel_size": kernel_size, "padding": padding,
                                             "activation": "linear", "use_bias": False},
                      {"kernel": np.ones((kernel_size, 1, 1))})
    out_steps = steps if padding == "same" else steps - kernel_size + 1
    return spec.Case("float64", (spec.Input("x", "float", x),), (conv,),
                     (spec.Output("c", np.zeros((1, out_steps, 1)), "mean_squared_error", {}),))


def test_a_conv1d_kernel_longer_than_the_valid_input_names_the_config_field() -> None:
    spec.validate(_conv_case(3, "same"))  # 'same' pads: any kernel_size
    spec.validate(_conv_case(2, "valid"))  # one step out
    with pytest.raises(spec.CaseError, match=r"\$\.layers\[0\]\.config\.kernel_size: expected an integer >= 1, "
                                             r"at most the input's 2 steps under padding 'valid'; got 3"):
        spec.validate(_conv_case(3, "valid"))


def test_a_layer_normalization_needs_a_positive_epsilon() -> None:
    ln = spec.Layer("n", "LayerNormalization", ("x",), {"epsilon": 0.0}, {"gamma": np.ones(2), "beta": np.zeros(2)})
    case = spec.Case("float64", (spec.Input("x", "float", np.zeros((1, 2))),), (ln,),
                     (spec.Output("n", np.zeros((1, 2)), "mean_squared_error", {}),))
    with pytest.raises(spec.CaseError, match=r"\$\.layers\[0\]\.config\.epsilon: expected a float > 0"):
        spec.validate(case)
