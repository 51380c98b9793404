"""Bidirectional(LSTM) in the reference: the forward copy on the steps, the backward copy on the
reversed steps flipped back, concatenated; what a masked step outputs (rule
bidirectional_masked_steps); its regularizers are both copies'."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from harness import spec
from harness.reference import forward, gradients
from harness.reference import rules as rules_mod
from harness.spec import Case, Input, Layer, Output, Regularizer

UNITS = 1


def lstm_weights(rng: np.random.Generator, features: int) -> dict[str, np.ndarray]:
    return {"kernel": rng.uniform(-1, 1, (features, 4 * UNITS)),
            "recurrent_kernel": rng.uniform(-1, 1, (UNITS, 4 * UNITS)), "bias": rng.uniform(-1, 1, 4 * UNITS)}


CFG = {"units": UNITS, "activation": "tanh", "return_sequences": True}


def case_of(x: np.ndarray, fw: dict, bw: dict, regularizers=None) -> Case:
    """x (batch, time, features), its all-zero steps masked, then Bidirectional(LSTM) and, for
    comparison, the two directions as plain LSTMs (the backward one on the reversed input)."""
    weights = {**{"forward_" + k: v for k, v in fw.items()}, **{"backward_" + k: v for k, v in bw.items()}}
    layers = (Layer("m", "Masking", ("x",), {"mask_value": 0.0}),
              Layer("bi", "BidirectionalLSTM", ("m",), dict(CFG), weights, regularizers or {}))
    out = Output("bi", np.zeros(x.shape[:2] + (2 * UNITS,)), "mean_squared_error")
    return Case("float64", (Input("x", "float", x),), layers, (out,))


def plain_lstm(x: np.ndarray, w: dict) -> np.ndarray:
    layers = (Layer("m", "Masking", ("x",), {"mask_value": 0.0}), Layer("l", "LSTM", ("m",), dict(CFG), w))
    case = Case("float64", (Input("x", "float", x),), layers, ())
    return forward.run(case, np.arange(len(x))).tensors["l"].value


X = np.array([[[0.5, -1.0], [1.5, 0.25], [0.0, 0.0]],   # step 2 masked
              [[-0.75, 2.0], [0.0, 0.0], [0.0, 0.0]]])  # steps 1, 2 masked


def test_the_output_is_the_forward_sequence_then_the_backward_one_flipped_back() -> None:
    rng = np.random.default_rng(3)
    fw, bw = lstm_weights(rng, 2), lstm_weights(rng, 2)
    x = np.array([[[0.5, -1.0], [1.5, 0.25], [1.0, 1.0]]])  # no masked step
    out = forward.run(case_of(x, fw, bw), np.arange(1)).tensors["bi"]
    np.testing.assert_allclose(out.value[..., :UNITS], plain_lstm(x, fw), rtol=1e-13)
    np.testing.assert_allclose(out.value[..., UNITS:], plain_lstm(x[:, ::-1], bw)[:, ::-1], rtol=1e-13)


@pytest.mark.parametrize("alternative", ["zero", "repeat_previous"])
def test_a_masked_step_outputs_zero_or_the_previous_output(alternative: str) -> None:
    rng = np.random.default_rng(4)
    fw, bw = lstm_weights(rng, 2), lstm_weights(rng, 2)
    rules = {**rules_mod.resolve("tf_keras-2.21"), "bidirectional_masked_steps": alternative}
    out = forward.run(case_of(X, fw, bw), np.arange(2), rules).tensors["bi"]
    plain_forward = plain_lstm(X, fw)  # a plain LSTM repeats its previous output at a masked step
    plain_backward = plain_lstm(X[:, ::-1], bw)[:, ::-1]
    mask = X.any(axis=-1)
    np.testing.assert_array_equal(out.mask, mask)
    if alternative == "zero":
        np.testing.assert_array_equal(out.value[~mask], 0.0)
    else:
        np.testing.assert_allclose(out.value[..., :UNITS], plain_forward, rtol=1e-13)
        np.testing.assert_allclose(out.value[..., UNITS:], plain_backward, rtol=1e-13)
        # the backward pass meets the masked (trailing) steps first: nothing before them, so 0
        np.testing.assert_array_equal(out.value[1, 1:, UNITS:], 0.0)
        assert np.all(out.value[1, 1:, :UNITS] == out.value[1, 0, :UNITS])  # forward: repeats step 0
    # the unmasked steps are the same under both alternatives: the states carry over masked steps
    np.testing.assert_allclose(out.value[mask][:, :UNITS], plain_forward[mask], rtol=1e-13)
    np.testing.assert_allclose(out.value[mask][:, UNITS:], plain_backward[mask], rtol=1e-13)


def test_a_regularizer_of_the_wrapped_kernel_is_both_copies_penalty() -> None:
    rng = np.random.default_rng(5)
    fw, bw = lstm_weights(rng, 2), lstm_weights(rng, 2)
    case = case_of(X, fw, bw, {"kernel": Regularizer("l2", l2=0.5)})
    penalties = forward.weight_penalties(case)
    assert [p.weight for p in penalties] == ["forward_kernel", "backward_kernel"]
    np.testing.assert_allclose([p.value for p in penalties],
                               [0.5 * np.sum(fw["kernel"] ** 2), 0.5 * np.sum(bw["kernel"] ** 2)], rtol=1e-13)


def test_both_copies_weights_are_differentiated() -> None:
    rng = np.random.default_rng(6)
    case = case_of(X, lstm_weights(rng, 2), lstm_weights(rng, 2))
    assert [k for k in gradients.weight_keys(case) if k.startswith("bi/")] == [
        f"bi/{p}{w}" for p in ("backward_", "forward_") for w in ("bias", "kernel", "recurrent_kernel")]


def test_the_case_names_the_weights_of_each_copy() -> None:
    rng = np.random.default_rng(7)
    fw, bw = lstm_weights(rng, 2), lstm_weights(rng, 2)
    good = case_of(X, fw, bw)
    spec.validate(good)
    layers = (good.layers[0], Layer("bi", "BidirectionalLSTM", ("m",), dict(CFG), fw))  # unprefixed names
    with pytest.raises(spec.CaseError, match="forward_kernel"):
        spec.validate(Case("float64", good.inputs, layers, good.outputs))


# --- Bidirectional(GRU) (vocabulary version 17): the same wrapper around a GRU -----------------------

GRU_CFG = {"units": UNITS, "activation": "tanh", "reset_after": True, "return_sequences": True}


def gru_weights(rng: np.random.Generator, features: int, reset_after: bool) -> dict[str, np.ndarray]:
    return {"kernel": rng.uniform(-1, 1, (features, 3 * UNITS)),
            "recurrent_kernel": rng.uniform(-1, 1, (UNITS, 3 * UNITS)),
            "bias": rng.uniform(-1, 1, (2, 3 * UNITS) if reset_after else (3 * UNITS,))}


@pytest.mark.parametrize("reset_after", [True, False])
def test_a_bidirectional_gru_is_the_forward_gru_then_the_backward_one_flipped_back(reset_after: bool) -> None:
    rng = np.random.default_rng(5)
    fw, bw = gru_weights(rng, 2, reset_after), gru_weights(rng, 2, reset_after)
    cfg = {**GRU_CFG, "reset_after": reset_after}
    x = np.array([[[0.5, -1.0], [1.5, 0.25], [1.0, 1.0]]])  # no masked step
    weights = {**{"forward_" + k: v for k, v in fw.items()}, **{"backward_" + k: v for k, v in bw.items()}}
    bi = Case("float64", (Input("x", "float", x),), (Layer("bi", "BidirectionalGRU", ("x",), cfg, weights),), ())
    out = forward.run(bi, np.arange(1)).tensors["bi"].value

    def plain(seq: np.ndarray, w: dict) -> np.ndarray:
        case = Case("float64", (Input("x", "float", seq),), (Layer("g", "GRU", ("x",), cfg, w),), ())
        return forward.run(case, np.arange(1)).tensors["g"].value

    np.testing.assert_allclose(out[..., :UNITS], plain(x, fw), rtol=1e-13)
    np.testing.assert_allclose(out[..., UNITS:], plain(x[:, ::-1], bw)[:, ::-1], rtol=1e-13)
    spec.validate(replace(bi, outputs=(Output("bi", np.zeros((1, 3, 2 * UNITS)), "mean_squared_error"),)))


def test_bidirectional_gru_is_drawn_from_version_17_on_masked_sequences_too() -> None:
    from harness import features, strategies

    drawn = strategies.corpus(0, 300, vocabulary_version=17)
    assert any("bidirectional_gru_on_mask" in features.features(c) for c in drawn)
    assert not any(layer.type == "BidirectionalGRU" for c in strategies.corpus(0, 300, vocabulary_version=16)
                   for layer in c.layers)
