"""The forward pass of the vocabulary's layers in NumPy float64, with Keras masks.

Every value of a Case (inputs, weights, targets, sample weights, scalars) is first rounded to
the case dtype, since the implementations see float32 values in a float32 case; arithmetic is
then float64, and each layer's output (and each SimpleRNN step) is rounded to the case dtype
again, as the implementations store it.

Masks (what each layer does with a Keras mask; sources tf_keras/src/layers/... and
keras/src/layers/... for each class):
- Embedding(mask_zero=True) creates `ids != 0`; Masking creates `any(x != mask_value, -1)` and
  multiplies its output by it (masked steps become 0).
- Dense, Activation, AddLossL2 (supports_masking=True), SimpleRNN(return_sequences=True) pass
  the mask on unchanged.
- Concatenate and Add combine masks (rule merge_mask): Keras 2 ANDs the masks present (an
  input without a mask counts as all-true); Keras 3 ORs them (Add: no mask as soon as one input
  has none; Concatenate: an input without a mask counts as all-true). No mask on any input
  gives no mask.
- GlobalAveragePooling1D consumes it: sum(x * mask) / sum(mask) over time (a fully masked
  sample gives 0/0 = NaN in both tf_keras and Keras 3), and outputs no mask.
- SimpleRNN at a masked step keeps its state and repeats its previous output (zeros before the
  first unmasked step): zero_output_for_mask defaults to False in tf_keras/src/layers/rnn/
  base_rnn.py:RNN and keras/src/layers/rnn/rnn.py:RNN, and backend rnn keeps prev_output.

Activity regularizers and AddLossL2's add_loss are computed on the layer's output / input of
the batch being run (penalty divided by batch size or not: rule activity_regularizer_scaling).
`keras_logits` records, for outputs produced by a sigmoid or softmax activation, the
pre-activation values (tf_keras backend.sigmoid/softmax and Keras 3 activations attach them as
`_keras_logits`); AddLossL2 returns its input object unchanged, so it passes them on.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from harness import vocabulary
from harness.reference import rules as rules_mod
from harness.spec import Case, Layer, Regularizer

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

BACKEND_EPSILON = 1e-7  # keras.backend.epsilon() (keras.config.epsilon()) in every implementation


_EXACT = contextvars.ContextVar("harness_reference_exact_values", default=False)


@contextlib.contextmanager
def exact_values():
    """Within this block tensors (inputs, weights, layer outputs) are not rounded to the case
    dtype: the reference is then the smooth float64 function of the weights that
    harness.reference.gradients differentiates (a perturbation of 1e-5 would vanish in float32
    rounding). Constants (epsilon, regularizer factors) keep their rounding, and clip decisions
    are still taken on the rounded value (losses.LossContext.clip), as the implementation takes them."""
    token = _EXACT.set(True)
    try:
        yield
    finally:
        _EXACT.reset(token)


def exact() -> bool:
    return _EXACT.get()


def rounder(dtype: str):
    """Round an array or scalar to the case dtype, returned as float64 (not under exact_values())."""
    if dtype == "float32" and not _EXACT.get():
        return lambda x: np.asarray(x, dtype=np.float32).astype(np.float64)
    return lambda x: np.asarray(x, dtype=np.float64)


def round_scalar(dtype: str, x: float) -> float:
    return float(np.float32(x)) if dtype == "float32" else float(x)


@dataclass
class Tensor:
    value: np.ndarray
    mask: np.ndarray | None = None  # bool, shape value.shape[:2] for temporal tensors
    keras_logits: tuple[str, np.ndarray] | None = None


@dataclass
class Penalty:
    """One entry of model.losses: a weight or activity regularizer, or an add_loss."""

    layer: str
    weight: str  # "kernel" | "bias" | "embeddings" | "recurrent_kernel" | "activity" | "add_loss"
    kind: str  # "l1" | "l2" | "l1_l2" | "add_loss"
    value: float
    magnitude: float

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "weight": self.weight, "kind": self.kind,
                "value": _enc(self.value), "magnitude": _enc(self.magnitude)}


def _enc(x: float) -> float | str:
    from harness.results import encode_float

    return encode_float(x)


@dataclass
class ForwardResult:
    tensors: dict[str, Tensor]
    penalties: list[Penalty] = field(default_factory=list)  # activity and add_loss, in layer order


# ---------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def activation(name: str, x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "linear":
            return x
        if name == "relu":
            return np.maximum(x, 0.0)
        if name == "tanh":
            return np.tanh(x)
        if name == "sigmoid":
            return sigmoid(x)
        if name == "softmax":
            m = np.max(x, axis=-1, keepdims=True)
            e = np.exp(x - m)
            return e / np.sum(e, axis=-1, keepdims=True)
        if name == "elu":
            return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
        if name == "softplus":
            return np.logaddexp(0.0, x)
    raise ValueError(f"unknown activation {name!r}")


def _with_logits(name: str, pre: np.ndarray, out: np.ndarray) -> tuple[str, np.ndarray] | None:
    return (name, pre) if name in ("sigmoid", "softmax") else None


def penalty_value(reg: Regularizer, x: np.ndarray, dtype: str) -> float:
    """l1 * sum(|x|) + l2 * sum(x^2) with the factors rounded to the dtype (cast_to_floatx)."""
    total = 0.0
    if reg.l1:
        total += round_scalar(dtype, reg.l1) * float(np.sum(np.abs(x)))
    if reg.l2:
        total += round_scalar(dtype, reg.l2) * float(np.sum(np.square(x)))
    return total


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


@dataclass
class Step:
    """What a layer's forward function may use besides its layer, inputs and (rounded) weights."""

    dtype: str
    rules: Mapping[str, str]
    round: Callable[[Any], np.ndarray]  # to the case dtype (not under exact_values())
    penalties: list[Penalty]  # an add_loss appends its value here
    training: bool = False  # model(x, training=...): BatchNormalization's batch or moving statistics


def _dense(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    x = ins[0]
    pre = np.tensordot(x.value, w["kernel"], axes=([-1], [0]))
    if layer.config["use_bias"]:
        pre = pre + w["bias"]
    act = layer.config["activation"]
    out = activation(act, pre)
    return Tensor(out, x.mask, _with_logits(act, pre, out))


def _embedding(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    ids = ins[0].value.astype(np.int64)
    mask = ids != 0 if layer.config["mask_zero"] else None
    return Tensor(w["embeddings"][ids], mask)


def _masking(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    x = ins[0].value
    keep = np.any(x != round_scalar(step.dtype, layer.config["mask_value"]), axis=-1)
    return Tensor(x * keep[..., None], keep)


def _activation(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    act = layer.config["activation"]
    value = activation(act, ins[0].value)
    return Tensor(value, ins[0].mask, _with_logits(act, ins[0].value, value))


def _combine_masks(ins: list[Tensor], layer_type: str, rules: Mapping[str, str]) -> np.ndarray | None:
    """The mask of Add / Concatenate under rule merge_mask ("and" | "or")."""
    masks = [t.mask for t in ins]
    if all(m is None for m in masks):
        return None
    if rules_mod.chooses(rules, "merge_mask", "and"):
        return np.logical_and.reduce([m for m in masks if m is not None])
    if layer_type == "Add":  # keras/src/layers/merging/base_merge.py: any unmasked input -> None
        return None if any(m is None for m in masks) else np.logical_or.reduce(masks)
    shape = next(m for m in masks if m is not None).shape
    return np.logical_or.reduce([np.ones(shape, bool) if m is None else m for m in masks])


def _concatenate(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    return Tensor(np.concatenate([t.value for t in ins], axis=-1), _combine_masks(ins, "Concatenate", step.rules))


def _add(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    return Tensor(np.sum([t.value for t in ins], axis=0), _combine_masks(ins, "Add", step.rules))


def _gap1d(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    x = ins[0]
    if x.mask is None:
        return Tensor(np.mean(x.value, axis=1))
    m = x.mask.astype(np.float64)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return Tensor(np.sum(np.where(m > 0, x.value, 0.0), axis=1) / np.sum(m, axis=1))


def _add_loss_l2(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    x = ins[0]
    value = round_scalar(step.dtype, layer.config["factor"]) * float(np.sum(np.square(x.value)))
    step.penalties.append(Penalty(layer.name, "add_loss", "add_loss", value, abs(value)))
    return Tensor(x.value, x.mask, x.keras_logits)


def _recurrent(x: Tensor, units: int, cell: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Tensor:
    """return_sequences=True over the time axis; `cell(x_t, state) -> new state` (= output). A
    masked step keeps the state and repeats the previous output (zeros before the first unmasked
    step): zero_output_for_mask defaults to False (tf_keras/src/layers/rnn/base_rnn.py:RNN,
    keras/src/layers/rnn/rnn.py:RNN), and the backends' rnn keep prev_output."""
    batch, steps = x.value.shape[:2]
    state = np.zeros((batch, units))
    prev_out = np.zeros((batch, units))
    outs = []
    for t in range(steps):
        h = cell(x.value[:, t], state)
        if x.mask is not None:
            keep = x.mask[:, t][:, None]
            h_out = np.where(keep, h, prev_out)
            state = np.where(keep, h, state)
        else:
            h_out = h
            state = h
        prev_out = h_out
        outs.append(h_out)
    return Tensor(np.stack(outs, axis=1), x.mask)


def _simple_rnn(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    act = layer.config["activation"]
    return _recurrent(ins[0], w["recurrent_kernel"].shape[0], lambda x_t, h: step.round(
        activation(act, x_t @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])))


def _gru(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """keras/src/layers/rnn/gru.py:GRUCell.call (Keras 3.15), tf_keras/src/layers/rnn/gru.py:
    GRUCell.call: z, r = sigmoid(x W_z,r + b + h U_z,r (+ recurrent bias)); reset_after=True
    resets after the recurrent product (r * (h U_h + b_rec)), False before it ((r * h) U_h);
    h' = z * h + (1 - z) * activation(x W_h + b_h + that). Bias: (2, 3 units) input and recurrent
    rows under reset_after, else (3 units,)."""
    u = w["recurrent_kernel"].shape[0]
    act, reset_after = layer.config["activation"], layer.config["reset_after"]
    kernel, recurrent = w["kernel"], w["recurrent_kernel"]
    bias_in, bias_rec = (w["bias"][0], w["bias"][1]) if reset_after else (w["bias"], None)

    def cell(x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        x = x_t @ kernel + bias_in
        inner = h @ recurrent + bias_rec if reset_after else h @ recurrent[:, :2 * u]
        z = sigmoid(x[:, :u] + inner[:, :u])
        r = sigmoid(x[:, u:2 * u] + inner[:, u:2 * u])
        recurrent_h = r * inner[:, 2 * u:] if reset_after else (r * h) @ recurrent[:, 2 * u:]
        return step.round(z * h + (1.0 - z) * activation(act, x[:, 2 * u:] + recurrent_h))

    return _recurrent(ins[0], u, cell)


def _lstm(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """keras/src/layers/rnn/lstm.py:LSTMCell.call (Keras 3.15; the fused implementation 2 and
    implementation 1 compute the same), tf_keras/src/layers/rnn/lstm.py:LSTMCell.call and
    standard_lstm: z = x W + h U + b split into i, f, c~, o; i, f, o = sigmoid; c' = f c +
    i activation(c~); h' = o activation(c'). The state is (h, c): a masked step keeps both and
    repeats the previous output (as _recurrent does for h)."""
    u = w["recurrent_kernel"].shape[0]
    act = layer.config["activation"]
    x, batch = ins[0], ins[0].value.shape[0]
    carry = np.zeros((batch, u))  # c, advanced only where the step is unmasked
    t_index = [0]

    def cell(x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        nonlocal carry
        z = x_t @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
        i, f, o = sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), sigmoid(z[:, 3 * u:])
        c = step.round(f * carry + i * activation(act, z[:, 2 * u:3 * u]))
        if x.mask is not None:
            c = np.where(x.mask[:, t_index[0]][:, None], c, carry)
        h_new = step.round(o * activation(act, c))
        carry = c
        t_index[0] += 1
        return h_new

    return _recurrent(x, u, cell)


# A layer type's forward pass: (layer, its inbound tensors, its weights, the step) -> its output.
Forward = Callable[[Layer, list[Tensor], Mapping[str, np.ndarray], Step], Tensor]


def _bidirectional(inner: Forward) -> Forward:
    """keras/src/layers/rnn/bidirectional.py:Bidirectional.call (Keras 3.15), tf_keras/src/layers/rnn/
    bidirectional.py, keras 2.3.1 keras/layers/wrappers.py:Bidirectional.call, around the recurrent
    layer `inner` computes: the forward_ copy on the steps, the backward_ one (go_backwards=True) on
    the steps and the mask reversed, its sequence flipped back, the two concatenated on the last
    axis. A masked step's output is 0 in each direction or repeats that direction's previous output
    (rule bidirectional_masked_steps); the states carry over it either way."""
    def forward(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
        x = ins[0]
        zero = x.mask is not None and rules_mod.chooses(step.rules, "bidirectional_masked_steps", "zero")

        def direction(prefix: str, seq: Tensor) -> np.ndarray:
            out = inner(layer, [seq], {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}, step).value
            return np.where(seq.mask[..., None], out, 0.0) if zero else out

        forward_out = direction("forward_", x)
        reversed_x = Tensor(x.value[:, ::-1], None if x.mask is None else x.mask[:, ::-1])
        backward_out = direction("backward_", reversed_x)[:, ::-1]
        return Tensor(np.concatenate([forward_out, backward_out], axis=-1), x.mask)
    return forward


def _layer_normalization(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """keras/src/ops/nn.py:_layer_normalization (Keras 3.15), tf_keras/src/layers/normalization/
    layer_normalization.py:LayerNormalization.call: over the last axis, mean and biased variance,
    (x - mean) * rsqrt(var + epsilon) * gamma + beta; the mask passes on."""
    x = ins[0]
    mean = np.mean(x.value, axis=-1, keepdims=True)
    var = np.mean(np.square(x.value - mean), axis=-1, keepdims=True)
    eps = round_scalar(step.dtype, layer.config["epsilon"])
    return Tensor((x.value - mean) / np.sqrt(var + eps) * w["gamma"] + w["beta"], x.mask)


def _batch_moments(x: Tensor, rules: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, over every axis but the last: the mean and the biased variance, over the
    unmasked steps only unless batch_norm_mask is "ignored". A fully masked batch: 0 and 0 (Keras 3
    divides by count + 1e-7, tf-keras's tf.nn.weighted_moments with div_no_nan); a batch of no rows
    (an empty replica): NaN, as tf.nn.moments' mean of nothing."""
    v = x.value
    axes = tuple(range(v.ndim - 1))
    if v.shape[0] == 0:
        return np.full(v.shape[-1], np.nan), np.full(v.shape[-1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if x.mask is None or rules_mod.chooses(rules, "batch_norm_mask", "ignored"):
            mean = np.mean(v, axis=axes)
            return mean, np.mean(np.square(v - mean), axis=axes)
        m = np.broadcast_to(x.mask[..., None], v.shape).astype(np.float64)
        count = np.sum(m, axis=axes)
        if rules_mod.chooses(rules, "batch_norm_mask", "masked_moments_epsilon"):
            divisor = count + BACKEND_EPSILON
        else:  # "masked_moments": div_no_nan
            divisor = np.where(count > 0, count, np.inf)
        mean = np.sum(m * v, axis=axes) / divisor
        return mean, np.sum(m * np.square(v - mean), axis=axes) / divisor


def _batch_normalization(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """keras/src/layers/normalization/batch_normalization.py:BatchNormalization.call (Keras 3.15),
    tf_keras/src/layers/normalization/batch_normalization.py:BatchNormalizationBase.call, keras 2.3.1
    keras/layers/normalization.py:BatchNormalization.call: (x - mean) / sqrt(var + epsilon) * gamma
    + beta per feature, with the batch's moments in training mode (`_batch_moments`) and the moving
    statistics otherwise; the mask passes on. The moving statistics' update (momentum) changes no
    loss of any path: the adapters set every weight from the Case before each path, and a training
    step never reads them."""
    x = ins[0]
    mean, var = _batch_moments(x, step.rules) if step.training else (w["moving_mean"], w["moving_variance"])
    eps = round_scalar(step.dtype, layer.config["epsilon"])
    with np.errstate(invalid="ignore", divide="ignore"):
        return Tensor((x.value - mean) / np.sqrt(var + eps) * w["gamma"] + w["beta"], x.mask)


def _conv1d(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """keras/src/layers/convolutional/base_conv.py:BaseConv.call (Keras 3.15), tf_keras/src/layers/
    convolutional/base_conv.py:Conv.call: stride 1, out[t] = sum_j x[t + j] @ kernel[j] (a
    cross-correlation); padding 'same' adds (k - 1) // 2 zero steps before and the rest after,
    as TensorFlow's SAME does. The output has no mask (a masked input: rule mask_into_unmasking_layer, aggregate.py)."""
    x, kernel = ins[0].value, w["kernel"]
    k = kernel.shape[0]
    if layer.config["padding"] == "same":
        x = np.pad(x, ((0, 0), ((k - 1) // 2, k - 1 - (k - 1) // 2), (0, 0)))
    steps = x.shape[1] - k + 1
    pre = sum(np.tensordot(x[:, j:j + steps], kernel[j], axes=([-1], [0])) for j in range(k))
    if layer.config["use_bias"]:
        pre = pre + w["bias"]
    act = layer.config["activation"]
    out = activation(act, pre)
    return Tensor(out, None, _with_logits(act, pre, out))


def _time_distributed_dense(layer: Layer, ins: list[Tensor], w: Mapping[str, np.ndarray], step: Step) -> Tensor:
    """The Dense on each step (what TimeDistributed(Dense) computes in every lineage); the mask
    passes on; its activation is never sigmoid or softmax (vocabulary), so no logits are kept."""
    out = _dense(layer, ins, w, step)
    return Tensor(out.value, out.mask)


# Layer type -> its forward pass (every type of harness.vocabulary.LAYERS: tests/test_reference_forward.py).
FORWARD: dict[str, Forward] = {
    "Dense": _dense,
    "Embedding": _embedding,
    "Masking": _masking,
    "Activation": _activation,
    "Concatenate": _concatenate,
    "Add": _add,
    "GlobalAveragePooling1D": _gap1d,
    "AddLossL2": _add_loss_l2,
    "SimpleRNN": _simple_rnn,
    "GRU": _gru,
    "LSTM": _lstm,
    "LayerNormalization": _layer_normalization,
    "Conv1D": _conv1d,
    "BatchNormalization": _batch_normalization,
    "BidirectionalLSTM": _bidirectional(_lstm),
    "BidirectionalGRU": _bidirectional(_gru),
    "TimeDistributedDense": _time_distributed_dense,
}

def _activity_applications(layer: Layer, out: Tensor, n: int, rules: Mapping[str, str]) -> tuple[int, int]:
    """How many times the layer's activity penalty enters model.losses, and the rows it is divided
    by under activity_regularizer_scaling=batch_mean. Keras 3's SimpleRNN accepts
    activity_regularizer and never applies it (rule rnn_activity_regularizer; its GRU passes it
    on); a TimeDistributed(Dense) adds it once on batch * time rows, never, or once on batch rows
    (rule time_distributed_activity_regularizer)."""
    if layer.type == "SimpleRNN" and rules_mod.chooses(rules, "rnn_activity_regularizer", "ignored"):
        return 0, n
    if layer.type == "TimeDistributedDense":
        if rules_mod.chooses(rules, "time_distributed_activity_regularizer", "ignored"):
            return 0, n
        if rules_mod.chooses(rules, "time_distributed_activity_regularizer", "once_on_output"):
            return 1, n
        return 1, n * out.value.shape[1]
    return 1, n


def run(case: Case, rows: np.ndarray, profile: str | Mapping[str, str] = rules_mod.DEFAULT_PROFILE,
        training: bool = False) -> ForwardResult:
    """Run the case's layers on the samples `rows` (indices into the batch), in training mode or
    not (`model(x, training=...)`: only BatchNormalization depends on it).

    `profile` (a name or a complete mapping, see rules.resolve) decides merge_mask,
    activity_regularizer_scaling, rnn_activity_regularizer, time_distributed_activity_regularizer,
    batch_norm_mask and bidirectional_masked_steps.
    """
    rules = rules_mod.resolve(profile)
    r = rounder(case.dtype)
    tensors: dict[str, Tensor] = {}
    for inp in case.inputs:
        data = inp.data[rows]
        tensors[inp.name] = Tensor(data.astype(np.int64) if inp.kind == "int" else r(data))
    penalties: list[Penalty] = []
    step = Step(case.dtype, rules, r, penalties, training)
    n = len(rows)
    for layer in case.layers:
        forward = FORWARD.get(layer.type)
        if forward is None:
            raise ValueError(f"layer {layer.name!r}: the reference has no forward pass for type {layer.type!r}")
        out = forward(layer, [tensors[name] for name in layer.inbound], {k: r(v) for k, v in layer.weights.items()},
                      step)
        # Each layer's output (and the logits it keeps) is stored in the case dtype, as in the
        # implementations: near-saturated sigmoids then lose the same digits (1 - p in float32).
        out = Tensor(r(out.value), out.mask,
                     None if out.keras_logits is None else (out.keras_logits[0], r(out.keras_logits[1])))
        activity = layer.regularizers.get("activity")
        if activity is not None:
            value = penalty_value(activity, out.value, case.dtype)
            times, rows = _activity_applications(layer, out, n, rules)
            if rules_mod.chooses(rules, "activity_regularizer_scaling", "batch_mean"):
                value = value / rows if rows else 0.0
            penalties.extend([Penalty(layer.name, "activity", activity.kind, value, abs(value))] * times)
        tensors[layer.name] = out
    return ForwardResult(tensors, penalties)


def weight_penalties(case: Case) -> list[Penalty]:
    """Weight regularizers (independent of the batch), in layer order then weight-name order."""
    out = []
    for layer in case.layers:
        prefixes = vocabulary.LAYERS[layer.type].weight_prefixes or ("",)  # Bidirectional: each copy's
        for name in sorted(layer.regularizers):
            if name == "activity":
                continue
            reg = layer.regularizers[name]
            for weight in (prefix + name for prefix in prefixes):
                value = penalty_value(reg, rounder(case.dtype)(layer.weights[weight]), case.dtype)
                out.append(Penalty(layer.name, weight, reg.kind, value, abs(value)))
    return out
