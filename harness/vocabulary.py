"""The vocabulary the harness speaks: layers, activations, losses, regularizers.

One declarative entry per thing under test (after PyTorch's OpInfo): an entry carries its
name in the implementations, the options it takes, the shapes and domains it accepts (its
`check`, used by `harness.spec.validate`), how to draw valid targets for it (`target_kind`,
read by the strategies). Its NumPy float64 reference is `harness.reference.losses.per_element(name,
...)`. Adding a loss is adding one entry here and one function there.

Nothing here imports a framework, nor the reference: data comes before the reference
(tests/test_layering.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np


class SpecProblem(Exception):
    """Raised by an entry's `check`; `field` is relative to the layer or output being checked."""

    def __init__(self, field: str, expected: str, got: Any = None):
        super().__init__(f"{field}: expected {expected}")
        self.field = field
        self.expected = expected
        self.got = got


ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "elu", "softplus")
REDUCTIONS = ("sum_over_batch_size", "sum")


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerEntry:
    type: str
    keras_class: str  # class name in keras / tf_keras / keras 2.3.1 (custom layers are built by adapters)
    config_keys: tuple[str, ...]
    regularizable: tuple[str, ...]  # weight names that can carry a regularizer
    # What the layer does to a Keras mask: "create" | "pass" | "consume" | "combine" | "none".
    mask: str
    check: Callable[[Any, Sequence[tuple[int, ...]], Sequence[str]], tuple[int, ...]]
    doc: str = ""


def _need(cfg: Mapping[str, Any], key: str, kind: type | tuple[type, ...], choices: Sequence[Any] | None = None) -> Any:
    if key not in cfg:
        raise SpecProblem(f"config.{key}", "a value (missing)")
    value = cfg[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise SpecProblem(f"config.{key}", f"a {getattr(kind, '__name__', kind)}", value)
    if not isinstance(value, kind):
        raise SpecProblem(f"config.{key}", f"a {getattr(kind, '__name__', kind)}", value)
    if choices is not None and value not in choices:
        raise SpecProblem(f"config.{key}", "one of " + ", ".join(map(repr, choices)), value)
    return value


def _weights(layer: Any, expected: Mapping[str, tuple[int, ...]]) -> None:
    names = set(layer.weights)
    if names != set(expected):
        raise SpecProblem("weights", "exactly the weights " + ", ".join(sorted(expected)), sorted(names))
    for name, shape in expected.items():
        got = tuple(layer.weights[name].shape)
        if got != tuple(shape):
            raise SpecProblem(f"weights.{name}", f"shape {tuple(shape)}", got)


def _one_float_input(shapes: Sequence[tuple[int, ...]], kinds: Sequence[str], min_rank: int = 1, max_rank: int = 2) -> tuple[int, ...]:
    if len(shapes) != 1:
        raise SpecProblem("inbound", "exactly one inbound tensor", len(shapes))
    if kinds[0] != "float":
        raise SpecProblem("inbound[0]", "a float tensor (token ids go to Embedding)")
    if not min_rank <= len(shapes[0]) <= max_rank:
        raise SpecProblem("inbound[0]", f"a tensor of rank {min_rank + 1}..{max_rank + 1} with the batch axis", shapes[0])
    return shapes[0]


def _check_dense(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds)
    units = _need(layer.config, "units", int)
    if units < 1:
        raise SpecProblem("config.units", "an integer >= 1", units)
    _need(layer.config, "activation", str, ACTIVATIONS)
    use_bias = _need(layer.config, "use_bias", bool)
    expected = {"kernel": (shape[-1], units)}
    if use_bias:
        expected["bias"] = (units,)
    _weights(layer, expected)
    return shape[:-1] + (units,)


def _check_embedding(layer, shapes, kinds):
    if len(shapes) != 1 or kinds[0] != "int" or len(shapes[0]) != 1:
        raise SpecProblem("inbound", "one integer token input of shape (batch, time)", shapes)
    input_dim = _need(layer.config, "input_dim", int)
    output_dim = _need(layer.config, "output_dim", int)
    _need(layer.config, "mask_zero", bool)
    _weights(layer, {"embeddings": (input_dim, output_dim)})
    return shapes[0] + (output_dim,)


def _check_masking(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds, min_rank=2, max_rank=2)
    _need(layer.config, "mask_value", (int, float))
    _weights(layer, {})
    return shape


def _check_activation(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds)
    _need(layer.config, "activation", str, ACTIVATIONS)
    _weights(layer, {})
    return shape


def _check_merge(layer, shapes, kinds, *, concat: bool):
    if len(shapes) < 2:
        raise SpecProblem("inbound", "at least two inbound tensors", len(shapes))
    if any(k != "float" for k in kinds):
        raise SpecProblem("inbound", "float tensors")
    first = shapes[0]
    for j, s in enumerate(shapes[1:], start=1):
        same = s[:-1] == first[:-1] if concat else s == first
        if len(s) != len(first) or not same:
            what = "the same shape but for the last axis" if concat else "the same shape"
            raise SpecProblem(f"inbound[{j}]", f"{what} as inbound[0] {first}", s)
    _weights(layer, {})
    return first[:-1] + (sum(s[-1] for s in shapes),) if concat else first


def _check_gap1d(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds, min_rank=2, max_rank=2)
    _weights(layer, {})
    return shape[1:]


def _check_add_loss(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds)
    factor = _need(layer.config, "factor", (int, float))
    if factor < 0:
        raise SpecProblem("config.factor", "a number >= 0", factor)
    _weights(layer, {})
    return shape


def _check_simple_rnn(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds, min_rank=2, max_rank=2)
    units = _need(layer.config, "units", int)
    _need(layer.config, "activation", str, ("tanh", "relu", "linear"))
    if _need(layer.config, "return_sequences", bool) is not True:
        raise SpecProblem("config.return_sequences", "true (the harness only uses sequence outputs)", False)
    _weights(layer, {"kernel": (shape[-1], units), "recurrent_kernel": (units, units), "bias": (units,)})
    return shape[:-1] + (units,)


LAYERS: dict[str, LayerEntry] = {
    e.type: e
    for e in [
        LayerEntry("Dense", "Dense", ("units", "activation", "use_bias"), ("kernel", "bias"), "pass", _check_dense,
                   "Dense on rank-2 or rank-3 (temporal) inputs; passes a mask on."),
        LayerEntry("Embedding", "Embedding", ("input_dim", "output_dim", "mask_zero"), ("embeddings",), "create",
                   _check_embedding, "Token ids -> vectors; mask_zero=True makes a mask of ids != 0."),
        LayerEntry("Masking", "Masking", ("mask_value",), (), "create", _check_masking,
                   "Masks timesteps whose features all equal mask_value and zeroes them."),
        LayerEntry("Activation", "Activation", ("activation",), (), "pass", _check_activation),
        LayerEntry("Concatenate", "Concatenate", (), (), "combine",
                   lambda l, s, k: _check_merge(l, s, k, concat=True), "Along the last axis; masks AND-ed."),
        LayerEntry("Add", "Add", (), (), "combine", lambda l, s, k: _check_merge(l, s, k, concat=False),
                   "Element-wise sum; masks AND-ed."),
        LayerEntry("GlobalAveragePooling1D", "GlobalAveragePooling1D", (), (), "consume", _check_gap1d,
                   "Mean over time of the unmasked steps; drops the mask."),
        LayerEntry("AddLossL2", "(custom)", ("factor",), (), "pass", _check_add_loss,
                   "Identity that calls add_loss(factor * sum(square(inputs)))."),
        LayerEntry("SimpleRNN", "SimpleRNN", ("units", "activation", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_simple_rnn,
                   "return_sequences=True; a masked step keeps the previous state and output."),
    ]
}


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------

# How targets are drawn and checked. The strategies read these names.
TARGET_KINDS = (
    "real",  # any finite real
    "nonzero_real",  # |y| bounded away from 0 (MAPE divides by it)
    "nonnegative",  # y >= 0 (poisson, msle)
    "probability",  # 0 <= y <= 1 element-wise (binary crossentropy and focal)
    "distribution",  # rows on the simplex along the last axis (categorical, kl)
    "sparse",  # integer class ids in [0, classes), shape = prediction shape without the last axis
    "plus_minus_one",  # y in {-1, 1} (hinge, squared hinge; Keras also maps {0, 1} to it)
)

# What the prediction should be for the loss to be used as users use it. Strategies pick an
# output activation from this; the spec does not check it (it depends on weights).
PRED_KINDS = ("any", "probability", "distribution", "positive")


@dataclass(frozen=True)
class LossEntry:
    name: str  # canonical name (the Keras function name)
    keras_class: str  # class name in keras 3, tf_keras / tf.keras and keras 2.3.1
    target_kind: str
    pred_kind: str  # for from_logits=False; with from_logits=True the prediction is any real
    options: Mapping[str, Any] = field(default_factory=dict)  # option -> default value
    doc: str = ""

    def check(self, target: np.ndarray, pred_shape: tuple[int, ...], options: dict[str, Any]) -> None:
        for key, value in options.items():
            if key == "reduction":
                if value not in REDUCTIONS:
                    raise SpecProblem("loss_options.reduction", "one of " + ", ".join(REDUCTIONS), value)
            elif key not in self.options:
                allowed = ", ".join(("reduction",) + tuple(self.options)) or "reduction"
                raise SpecProblem(f"loss_options.{key}", f"an option of {self.name}: {allowed}", key)
            elif isinstance(self.options[key], bool):
                if not isinstance(value, bool):
                    raise SpecProblem(f"loss_options.{key}", "true or false", value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecProblem(f"loss_options.{key}", "a number", value)
        _check_option_ranges(self.name, options)
        if self.target_kind == "sparse":
            if tuple(target.shape) != tuple(pred_shape[:-1]):
                raise SpecProblem("target", f"integer class ids of shape {tuple(pred_shape[:-1])}", target.shape)
            if target.dtype.kind not in "iu" or target.min() < 0 or target.max() >= pred_shape[-1]:
                raise SpecProblem("target", f"integer class ids in [0, {pred_shape[-1]})", target.tolist())
            return
        if tuple(target.shape) != tuple(pred_shape):
            raise SpecProblem("target", f"shape {tuple(pred_shape)} (the output's shape)", target.shape)
        _check_target_domain(self.target_kind, target, pred_shape)


def _check_option_ranges(name: str, options: Mapping[str, Any]) -> None:
    if "label_smoothing" in options and not 0.0 <= options["label_smoothing"] <= 1.0:
        raise SpecProblem("loss_options.label_smoothing", "a number in [0, 1]", options["label_smoothing"])
    if "delta" in options and not options["delta"] > 0:
        raise SpecProblem("loss_options.delta", "a number > 0", options["delta"])
    if "gamma" in options and not options["gamma"] >= 0:
        raise SpecProblem("loss_options.gamma", "a number >= 0", options["gamma"])
    if "alpha" in options and not 0.0 <= options["alpha"] <= 1.0:
        raise SpecProblem("loss_options.alpha", "a number in [0, 1]", options["alpha"])


def _check_target_domain(kind: str, y: np.ndarray, pred_shape: tuple[int, ...]) -> None:
    y = np.asarray(y, dtype=np.float64)
    if kind == "nonzero_real" and np.any(y == 0):
        raise SpecProblem("target", "non-zero values (the loss divides by the target)", y.tolist())
    if kind == "nonnegative" and np.any(y < 0):
        raise SpecProblem("target", "values >= 0", y.tolist())
    if kind == "probability" and (np.any(y < 0) or np.any(y > 1)):
        raise SpecProblem("target", "values in [0, 1]", y.tolist())
    if kind == "distribution":
        if np.any(y < 0) or not np.allclose(y.sum(axis=-1), 1.0, atol=1e-6):
            raise SpecProblem("target", "non-negative rows summing to 1 along the last axis", y.tolist())
        if pred_shape[-1] < 2:
            raise SpecProblem("target", "at least two classes on the last axis", pred_shape)
    if kind == "plus_minus_one" and not np.all(np.isin(y, (-1.0, 1.0))):
        raise SpecProblem("target", "values in {-1, 1}", y.tolist())


_CE = {"from_logits": False, "label_smoothing": 0.0}

LOSSES: dict[str, LossEntry] = {
    e.name: e
    for e in [
        LossEntry("mean_squared_error", "MeanSquaredError", "real", "any"),
        LossEntry("mean_absolute_error", "MeanAbsoluteError", "real", "any"),
        LossEntry("mean_absolute_percentage_error", "MeanAbsolutePercentageError", "nonzero_real", "any"),
        LossEntry("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", "nonnegative", "positive"),
        LossEntry("huber", "Huber", "real", "any", {"delta": 1.0}),
        LossEntry("log_cosh", "LogCosh", "real", "any"),
        LossEntry("binary_crossentropy", "BinaryCrossentropy", "probability", "probability", dict(_CE)),
        LossEntry("categorical_crossentropy", "CategoricalCrossentropy", "distribution", "distribution", dict(_CE)),
        LossEntry("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", "sparse", "distribution",
                  {"from_logits": False}),
        LossEntry("binary_focal_crossentropy", "BinaryFocalCrossentropy", "probability", "probability",
                  {"from_logits": False, "label_smoothing": 0.0, "gamma": 2.0, "alpha": 0.25,
                   "apply_class_balancing": False}),
        LossEntry("kl_divergence", "KLDivergence", "distribution", "distribution"),
        LossEntry("poisson", "Poisson", "nonnegative", "positive"),
        LossEntry("cosine_similarity", "CosineSimilarity", "real", "any"),
        LossEntry("hinge", "Hinge", "plus_minus_one", "any"),
        LossEntry("squared_hinge", "SquaredHinge", "plus_minus_one", "any"),
        LossEntry("categorical_hinge", "CategoricalHinge", "distribution", "any"),
    ]
}

REGULARIZERS = ("l1", "l2", "l1_l2")

