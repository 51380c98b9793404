"""The forward pass: each layer's values and what it does with a Keras mask, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import reference, spec
from harness.reference import forward
from harness.reference.rules import PROFILES
from harness.spec import Case, Input, Layer, Output, Regularizer
from test_reference_builders import close


def run(inputs, layers, outputs=None, dtype="float64"):
    """Forward pass of the given layers; returns name -> Tensor."""
    ins = tuple(Input(name, "int" if np.asarray(d).dtype.kind in "iu" else "float", np.asarray(d)) for name, d in inputs)
    case = Case(dtype, ins, tuple(layers), outputs or (), "list", "omitted", "omitted", 1)
    return forward.run(case, np.arange(ins[0].data.shape[0])).tensors


def dense(name, inbound, kernel, bias=None, activation="linear"):
    kernel = np.asarray(kernel, dtype=np.float64)
    w = {"kernel": kernel} if bias is None else {"kernel": kernel, "bias": np.asarray(bias, dtype=np.float64)}
    return Layer(name, "Dense", (inbound,), {"units": kernel.shape[1], "activation": activation, "use_bias": bias is not None}, w)


@pytest.mark.parametrize("act, x, want", [
    ("linear", -2.0, -2.0),
    ("relu", -2.0, 0.0),
    ("relu", 3.0, 3.0),
    ("tanh", 0.5, math.tanh(0.5)),
    ("sigmoid", 0.5, 1 / (1 + math.exp(-0.5))),
    ("elu", -1.0, math.exp(-1) - 1),
    ("elu", 2.0, 2.0),
    ("softplus", 0.5, math.log(1 + math.exp(0.5))),
    ("softplus", 800.0, 800.0),
])
def test_dense_activations(act, x, want):
    t = run([("x", [[x]])], [dense("d", "x", [[1.0]], activation=act)])["d"]
    close(float(t.value[0, 0]), want)


def test_dense_kernel_bias_and_softmax_keeps_logits():
    t = run([("x", [[1.0, 2.0]])], [dense("d", "x", [[1.0, 0.0], [0.0, 1.0]], [0.0, math.log(3) - 2], "softmax")])["d"]
    # logits [1, log 3]: softmax [e/(e+3), 3/(e+3)]
    e = math.e
    np.testing.assert_allclose(t.value, [[e / (e + 3), 3 / (e + 3)]], rtol=1e-12)
    assert t.keras_logits[0] == "softmax"
    np.testing.assert_allclose(t.keras_logits[1], [[1.0, math.log(3)]], rtol=1e-12)
    assert run([("x", [[1.0]])], [dense("d", "x", [[1.0]], activation="relu")])["d"].keras_logits is None


def test_dense_on_a_sequence_applies_per_step_and_passes_the_mask():
    x = [[[1.0, 2.0], [0.0, 0.0]]]
    ts = run([("x", x)], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), dense("d", "m", [[1.0], [10.0]], [0.5])])
    np.testing.assert_allclose(ts["d"].value, [[[21.5], [0.5]]])
    np.testing.assert_array_equal(ts["d"].mask, [[True, False]])


def test_masking_creates_a_mask_and_zeroes_masked_steps():
    x = [[[1.0, 2.0], [2.0, 2.0], [2.0, 0.5]]]
    t = run([("x", x)], [Layer("m", "Masking", ("x",), {"mask_value": 2.0})])["m"]
    np.testing.assert_array_equal(t.mask, [[True, False, True]])
    np.testing.assert_array_equal(t.value, [[[1.0, 2.0], [0.0, 0.0], [2.0, 0.5]]])


def test_embedding_mask_zero():
    emb = np.array([[9.0, 9.0], [1.0, 2.0], [3.0, 4.0]])
    t = run([("ids", np.array([[1, 0, 2]]))], [Layer("e", "Embedding", ("ids",), {"input_dim": 3, "output_dim": 2, "mask_zero": True}, {"embeddings": emb})])["e"]
    np.testing.assert_array_equal(t.value, [[[1.0, 2.0], [9.0, 9.0], [3.0, 4.0]]])  # id 0 still looked up
    np.testing.assert_array_equal(t.mask, [[True, False, True]])
    t = run([("ids", np.array([[1, 0]]))], [Layer("e", "Embedding", ("ids",), {"input_dim": 3, "output_dim": 2, "mask_zero": False}, {"embeddings": emb})])["e"]
    assert t.mask is None


def test_merge_layers_and_their_masks():
    x = [[[1.0], [2.0], [3.0]]]
    y = [[[5.0], [0.0], [4.0]]]
    z = [[[7.0], [8.0], [0.0]]]
    layers = [
        Layer("my", "Masking", ("y",), {"mask_value": 0.0}),
        Layer("mz", "Masking", ("z",), {"mask_value": 0.0}),
        Layer("cat", "Concatenate", ("x", "my")),  # x has no mask: counts as all true
        Layer("add", "Add", ("my", "mz")),
        Layer("cat_plain", "Concatenate", ("x", "x")),
    ]
    ts = run([("x", x), ("y", y), ("z", z)], layers)
    np.testing.assert_array_equal(ts["cat"].value, [[[1.0, 5.0], [2.0, 0.0], [3.0, 4.0]]])
    np.testing.assert_array_equal(ts["cat"].mask, [[True, False, True]])
    np.testing.assert_array_equal(ts["add"].value, [[[12.0], [8.0], [4.0]]])
    np.testing.assert_array_equal(ts["add"].mask, [[True, False, False]])
    assert ts["cat_plain"].mask is None


def test_global_average_pooling_uses_and_drops_the_mask():
    x = [[[1.0], [0.0], [3.0]], [[0.0], [0.0], [0.0]], [[2.0], [4.0], [6.0]]]
    ts = run([("x", x)], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), Layer("g", "GlobalAveragePooling1D", ("m",))])
    g = ts["g"]
    assert g.mask is None
    close(float(g.value[0, 0]), (1 + 3) / 2)
    assert math.isnan(g.value[1, 0])  # fully masked sample: 0 / 0
    close(float(g.value[2, 0]), 4.0)
    plain = run([("x", x)], [Layer("g", "GlobalAveragePooling1D", ("x",))])["g"]
    close(float(plain.value[0, 0]), 4 / 3)


def test_simple_rnn_masked_step_carries_state_and_repeats_output():
    # h_t = x_t * 1 + h_{t-1} * 0.5 (linear). Steps: x = [1, masked, 2].
    x = [[[1.0], [0.0], [2.0]]]
    rnn = Layer("r", "SimpleRNN", ("m",), {"units": 1, "activation": "linear", "return_sequences": True},
                {"kernel": np.array([[1.0]]), "recurrent_kernel": np.array([[0.5]]), "bias": np.array([0.0])})
    t = run([("x", x)], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), rnn])["r"]
    np.testing.assert_allclose(t.value[0, :, 0], [1.0, 1.0, 2.0 + 0.5 * 1.0])
    np.testing.assert_array_equal(t.mask, [[True, False, True]])
    # A leading masked step outputs zeros.
    t = run([("x", [[[0.0], [2.0]]])], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), rnn])["r"]
    np.testing.assert_allclose(t.value[0, :, 0], [0.0, 2.0])


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_by_hand_and_a_masked_step_carries_state(reset_after):
    # one unit, one feature; kernel [W_z, W_r, W_h] = [1, 2, 3], recurrent [U_z, U_r, U_h] = [0.5, -1, 2],
    # bias 0.25 on the input side only. Steps: x = [1, masked, -1]; linear candidate activation.
    bias = np.array([[0.25, 0.25, 0.25], [0.0, 0.0, 0.0]]) if reset_after else np.array([0.25, 0.25, 0.25])
    gru = Layer("g", "GRU", ("m",), {"units": 1, "activation": "linear", "reset_after": reset_after,
                                     "return_sequences": True},
                {"kernel": np.array([[1.0, 2.0, 3.0]]), "recurrent_kernel": np.array([[0.5, -1.0, 2.0]]), "bias": bias})
    t = run([("x", [[[1.0], [0.0], [-1.0]]])], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), gru])["g"]
    # step 1 from h = 0: z = sig(1.25), candidate 3.25 (the recurrent part is 0 either way)
    h1 = (1 - _sig(1.25)) * 3.25
    # step 3 from h1: z = sig(-0.75 + 0.5 h1), r = sig(-1.75 - h1), candidate -2.75 + r * 2 h1 (both
    # variants: with no recurrent bias, r * (h U_h) = (r * h) U_h for one unit)
    z, r = _sig(-0.75 + 0.5 * h1), _sig(-1.75 - h1)
    h3 = z * h1 + (1 - z) * (-2.75 + r * 2.0 * h1)
    np.testing.assert_allclose(t.value[0, :, 0], [h1, h1, h3], rtol=1e-12)
    np.testing.assert_array_equal(t.mask, [[True, False, True]])


def test_gru_resets_after_the_recurrent_bias_only_under_reset_after():
    # A recurrent bias of 1 on the candidate: reset_after=True gives candidate x W_h + r * (h U_h + 1).
    bias = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    gru = Layer("g", "GRU", ("x",), {"units": 1, "activation": "linear", "reset_after": True, "return_sequences": True},
                {"kernel": np.array([[0.0, 0.0, 1.0]]), "recurrent_kernel": np.array([[0.0, 0.0, 0.0]]), "bias": bias})
    t = run([("x", [[[2.0]]])], [gru])["g"]
    # h = 0: z = r = sig(0) = 0.5; candidate 2 + 0.5 * 1; h = 0.5 * 2.5
    close(float(t.value[0, 0, 0]), 1.25)


def test_lstm_gates_by_hand_and_a_masked_step_keeps_state_and_carry():
    # one unit, one feature; kernel [W_i, W_f, W_c, W_o] = [1, 0, 2, -1], recurrent [0.5, 1, -1, 0], no bias;
    # linear activation. Steps: x = [1, masked, -1].
    lstm = Layer("l", "LSTM", ("m",), {"units": 1, "activation": "linear", "return_sequences": True},
                 {"kernel": np.array([[1.0, 0.0, 2.0, -1.0]]), "recurrent_kernel": np.array([[0.5, 1.0, -1.0, 0.0]]),
                  "bias": np.zeros(4)})
    t = run([("x", [[[1.0], [0.0], [-1.0]]])], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), lstm])["l"]
    # step 1 from h = c = 0: i = sig(1), f = sig(0), c1 = sig(1) * 2, h1 = sig(-1) * c1
    c1 = _sig(1.0) * 2.0
    h1 = _sig(-1.0) * c1
    # step 3 from (h1, c1): i = sig(-1 + 0.5 h1), f = sig(h1), c3 = f c1 + i (-2 - h1), o = sig(1)
    c3 = _sig(h1) * c1 + _sig(-1.0 + 0.5 * h1) * (-2.0 - h1)
    np.testing.assert_allclose(t.value[0, :, 0], [h1, h1, _sig(1.0) * c3], rtol=1e-12)
    np.testing.assert_array_equal(t.mask, [[True, False, True]])


def test_lstm_bias_and_tanh():
    # bias [b_i, b_f, b_c, b_o] = [0, 0, 1, 0] and zero weights, tanh: c = 0.5 tanh(1), h = 0.5 tanh(c)
    lstm = Layer("l", "LSTM", ("x",), {"units": 1, "activation": "tanh", "return_sequences": True},
                 {"kernel": np.zeros((1, 4)), "recurrent_kernel": np.zeros((1, 4)), "bias": np.array([0.0, 0.0, 1.0, 0.0])})
    t = run([("x", [[[3.0]]])], [lstm])["l"]
    close(float(t.value[0, 0, 0]), 0.5 * math.tanh(0.5 * math.tanh(1.0)))


def test_layer_normalization_by_hand_over_the_last_axis_passes_the_mask():
    # step 0: x = [1, 3]: mean 2, biased variance 1, so (x - 2) / sqrt(1 + 0.25) = [-1, 1] / sqrt(1.25);
    # gamma [2, 1], beta [0, 10]. Step 1 is masked and still normalised (the mask only passes on).
    ln = Layer("n", "LayerNormalization", ("m",), {"epsilon": 0.25},
               {"gamma": np.array([2.0, 1.0]), "beta": np.array([0.0, 10.0])})
    t = run([("x", [[[1.0, 3.0], [0.0, 0.0]]])], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), ln])["n"]
    r = 1 / math.sqrt(1.25)
    np.testing.assert_allclose(t.value[0, 0], [-2 * r, 10 + r], rtol=1e-12)
    np.testing.assert_allclose(t.value[0, 1], [0.0, 10.0], atol=1e-12)  # all-equal features: beta alone
    np.testing.assert_array_equal(t.mask, [[True, False]])


def test_layer_normalization_of_vectors_is_per_sample():
    ln = Layer("n", "LayerNormalization", ("x",), {"epsilon": 1e-3},
               {"gamma": np.ones(3), "beta": np.zeros(3)})
    t = run([("x", [[0.0, 0.0, 3.0], [1.0, 2.0, 3.0]])], [ln])["n"]
    # sample 0: mean 1, var 2; sample 1: mean 2, var 2/3
    np.testing.assert_allclose(t.value[0], np.array([-1.0, -1.0, 2.0]) / math.sqrt(2 + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(t.value[1], np.array([-1.0, 0.0, 1.0]) / math.sqrt(2 / 3 + 1e-3), rtol=1e-12)


def conv1d(kernel, bias=None, padding="same", activation="linear"):
    kernel = np.asarray(kernel, dtype=np.float64)
    w = {"kernel": kernel} if bias is None else {"kernel": kernel, "bias": np.asarray(bias, dtype=np.float64)}
    cfg = {"filters": kernel.shape[2], "kernel_size": kernel.shape[0], "padding": padding,
           "activation": activation, "use_bias": bias is not None}
    return Layer("c", "Conv1D", ("x",), cfg, w)


def test_conv1d_is_a_cross_correlation_and_valid_drops_steps():
    # one feature, one filter, kernel [1, 10, 100] over x = [1, 2, 3, 4]: out[t] = x[t] + 10 x[t+1] + 100 x[t+2]
    x = [[[1.0], [2.0], [3.0], [4.0]]]
    t = run([("x", x)], [conv1d([[[1.0]], [[10.0]], [[100.0]]], [0.5], padding="valid")])["c"]
    np.testing.assert_allclose(t.value[0, :, 0], [321.5, 432.5])
    assert t.mask is None


def test_conv1d_same_pads_an_odd_kernel_evenly_and_an_even_one_after():
    x = [[[1.0], [2.0], [3.0]]]
    # k = 3: one zero step before and after
    t3 = run([("x", x)], [conv1d([[[1.0]], [[10.0]], [[100.0]]])])["c"]
    np.testing.assert_allclose(t3.value[0, :, 0], [0 + 10 + 200, 1 + 20 + 300, 2 + 30 + 0])
    # k = 2: (2 - 1) // 2 = 0 before, 1 after (TensorFlow's SAME): out[t] = x[t] + 10 x[t+1]
    t2 = run([("x", x)], [conv1d([[[1.0]], [[10.0]]])])["c"]
    np.testing.assert_allclose(t2.value[0, :, 0], [21.0, 32.0, 3.0])


def test_conv1d_mixes_features_into_filters_and_keeps_sigmoid_logits():
    # kernel_size 1, two features -> two filters: a Dense per step
    kernel = [[[1.0, 0.0], [1.0, -1.0]]]
    t = run([("x", [[[1.0, 2.0]]])], [conv1d(kernel, [0.0, 1.0], activation="sigmoid")])["c"]
    np.testing.assert_allclose(t.keras_logits[1][0, 0], [3.0, -1.0])
    np.testing.assert_allclose(t.value[0, 0], [_sig(3.0), _sig(-1.0)], rtol=1e-12)


def test_time_distributed_dense_is_the_dense_on_each_step_and_passes_the_mask():
    td = Layer("t", "TimeDistributedDense", ("m",), {"units": 2, "activation": "relu", "use_bias": True},
               {"kernel": np.array([[1.0, -1.0]]), "bias": np.array([0.5, 0.5])})
    t = run([("x", [[[1.0], [0.0], [-2.0]]])], [Layer("m", "Masking", ("x",), {"mask_value": 0.0}), td])["t"]
    np.testing.assert_allclose(t.value[0], [[1.5, 0.0], [0.5, 0.5], [0.0, 2.5]])
    np.testing.assert_array_equal(t.mask, [[True, False, True]])
    assert t.keras_logits is None


def test_add_loss_layer_is_identity_and_records_its_penalty():
    case = Case("float64", (Input("x", "float", np.array([[1.0, -2.0]])),),
                (Layer("a", "AddLossL2", ("x",), {"factor": 0.5}), dense("d", "a", [[1.0], [1.0]], None, "sigmoid")),
                (Output("d", np.array([[1.0]]), "binary_crossentropy", {}),))
    spec.validate(case)
    fwd = forward.run(case, np.arange(1))
    np.testing.assert_array_equal(fwd.tensors["a"].value, [[1.0, -2.0]])
    (pen,) = fwd.penalties
    close(pen.value, 0.5 * (1 + 4))


def test_activity_regularizer_sees_the_post_activation_output():
    layer = Layer("d", "Dense", ("x",), {"units": 1, "activation": "relu", "use_bias": False},
                  {"kernel": np.array([[1.0]])}, {"activity": Regularizer("l1", 1.0, 0.0)})
    case = Case("float64", (Input("x", "float", np.array([[-3.0], [2.0]])),), (layer,),
                (Output("d", np.zeros((2, 1)), "mean_squared_error", {}),))
    (pen,) = forward.run(case, np.arange(2), {**PROFILES["tf_keras-2.21"], "activity_regularizer_scaling": "sum"}).penalties
    close(pen.value, 0 + 2)  # relu(-3) = 0


def test_predictions_round_layer_outputs_in_a_float32_case():
    case = Case("float32", (Input("x", "float", np.array([[1.0]])),), (dense("d", "x", [[1.0]], [0.0], "tanh"),),
                (Output("d", np.zeros((1, 1)), "mean_squared_error", {}),))
    got = reference.predictions(case)["d"][0, 0]
    assert got == float(np.float32(math.tanh(1.0)))


@pytest.mark.parametrize("mode, cat_mask, add_mask, add_plain", [
    # Keras 2: AND of the masks present.
    ("and", [[True, False, True]], [[True, False, False]], [[True, False, True]]),
    # Keras 3: OR; an unmasked input makes Concatenate all-true and Add unmasked.
    ("or", [[True, True, True]], [[True, False, True]], None),
])
def test_merge_mask_rule(mode, cat_mask, add_mask, add_plain):
    x = [[[1.0], [2.0], [3.0]]]
    y = [[[5.0], [0.0], [4.0]]]
    z = [[[7.0], [0.0], [0.0]]]
    layers = [
        Layer("my", "Masking", ("y",), {"mask_value": 0.0}),
        Layer("mz", "Masking", ("z",), {"mask_value": 0.0}),
        Layer("cat", "Concatenate", ("x", "my")),
        Layer("add", "Add", ("my", "mz")),
        Layer("add_plain", "Add", ("x", "my")),
    ]
    ins = tuple(Input(n, "float", np.asarray(d)) for n, d in [("x", x), ("y", y), ("z", z)])
    case = Case("float64", ins, tuple(layers), (), "list", "omitted", "omitted", 1)
    ts = forward.run(case, np.arange(1), {**PROFILES["tf_keras-2.21"], "merge_mask": mode}).tensors
    np.testing.assert_array_equal(ts["cat"].mask, cat_mask)
    np.testing.assert_array_equal(ts["add"].mask, add_mask)
    if add_plain is None:
        assert ts["add_plain"].mask is None
    else:
        np.testing.assert_array_equal(ts["add_plain"].mask, add_plain)


def test_predictions_depend_on_the_merge_mask_rule_through_pooling():
    x = [[[1.0], [2.0]]]
    y = [[[5.0], [0.0]]]
    layers = (
        Layer("my", "Masking", ("y",), {"mask_value": 0.0}),
        Layer("cat", "Concatenate", ("x", "my")),
        Layer("g", "GlobalAveragePooling1D", ("cat",)),
    )
    ins = (Input("x", "float", np.asarray(x)), Input("y", "float", np.asarray(y)))
    case = Case("float64", ins, layers, (Output("g", np.zeros((1, 2)), "mean_squared_error", {}),))
    spec.validate(case)
    np.testing.assert_array_equal(reference.predictions(case, "tf_keras-2.21")["g"], [[1.0, 5.0]])  # step 0 only
    np.testing.assert_array_equal(reference.predictions(case, "keras-3.15")["g"], [[1.5, 2.5]])  # both steps


def test_every_layer_of_the_vocabulary_has_a_forward_pass() -> None:
    from harness import vocabulary
    from harness.reference import forward as forward_mod

    assert set(forward_mod.FORWARD) == set(vocabulary.LAYERS)
