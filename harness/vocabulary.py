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
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np


class SpecProblem(Exception):
    """Raised by an entry's `check`; `field` is relative to the layer or output being checked."""

    def __init__(self, field: str, expected: str, got: Any = None):
        super().__init__(f"{field}: expected {expected}")
        self.field = field
        self.expected = expected
        self.got = got


class Draws(Protocol):
    """What an entry's `draw` may ask of the case generator (harness.strategies gives it one
    block of Hypothesis or fixed-seed draws; each call is one draw, in the order made)."""

    max_features: int
    vocabulary_version: int  # the version being drawn (an entry may draw more from a later one)

    def boolean(self, p: float) -> bool: ...
    def integer(self, lo: int, hi: int) -> int: ...
    def choice(self, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any: ...


ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "elu", "softplus")
# Reductions a Case can name. The first two every lineage accepts; "mean", "mean_with_sample_weight"
# (Keras 3.7+) and "auto" (tf-keras) some refuse (rule reduction_values); drawn from version
# FORMS_SINCE["more_reductions"] on.
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "auto")


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerEntry:
    """Everything of one layer type but its NumPy forward pass, which is
    `harness.reference.forward.FORWARD[type]` (the reference comes after the data)."""

    type: str
    keras_class: str  # class name in keras.layers of keras 3, tf_keras and keras 2.x; custom: the adapters' class
    config_keys: tuple[str, ...]
    regularizable: tuple[str, ...]  # weight names that can carry a regularizer
    # What the layer does to a Keras mask: "create" | "pass" | "consume" | "combine" | "none".
    mask: str
    check: Callable[[Any, Sequence[tuple[int, ...]], Sequence[str]], tuple[int, ...]]
    # The positional and keyword arguments of `keras.layers.<keras_class>` for a config: the
    # adapters build with them (harness.impls.build) and the reproducers print them
    # (harness.report.repro); regularizers, name and dtype are added to them.
    keras_args: Callable[[Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
    # Feature labels (harness.features) of one layer of this type: (layer, its inbound tensors as
    # (value, Keras mask) pairs, whether an output is this layer) -> labels, and what each means.
    features: Callable[[Any, Sequence[tuple[np.ndarray, np.ndarray | None]], bool], set[str]] = \
        lambda layer, inbound, is_output: set()
    feature_docs: Mapping[str, str] = field(default_factory=dict)
    # A body layer: how the case generator appends one (None when no tensor of the model fits it;
    # the generator then appends a Dense), and its share among the body layers.
    draw: Callable[[Any], Any] | None = None
    draw_weight: float = 0.0
    custom: bool = False  # a class of the harness (harness.impls.build, the reproducer's preamble)
    # A wrapper (keras_class "TimeDistributed"): the class in keras.layers of the layer it wraps.
    # keras_args and the regularizers are the wrapped layer's; name and dtype go to both.
    wraps: str | None = None
    since: int = 1  # the vocabulary version that added it (harness.strategies draws by version)
    doc: str = ""
    # Weights the layer holds but no optimizer moves (BatchNormalization's moving statistics): the
    # Case sets them like the others; they have no gradient (harness.reference.gradients.weight_keys).
    non_trainable: tuple[str, ...] = ()
    # A wrapper of several copies of the wrapped layer (Bidirectional: "forward_", "backward_"):
    # its weights are the wrapped layer's names with each prefix, and a regularizer named by a
    # wrapped weight (kernel, ...) is every copy's, as Keras copies the wrapped layer's config.
    weight_prefixes: tuple[str, ...] = ()


# The keyword that gives a weight its regularizer, in the order the reproducers write them.
REGULARIZER_KEYWORDS: dict[str, str] = {"kernel": "kernel_regularizer", "bias": "bias_regularizer",
                                        "embeddings": "embeddings_regularizer",
                                        "recurrent_kernel": "recurrent_regularizer",
                                        "gamma": "gamma_regularizer", "beta": "beta_regularizer"}


class LayerDraws(Draws, Protocol):
    """What a body layer's `draw` may ask of the case generator: tensors of the model being
    drawn (`name`, `shape` without the batch axis, `mask` (batch, time) or None)."""

    def pick(self, rank: int | None = None, pred: Callable[[Any], bool] | None = None) -> Any: ...
    def pool(self) -> list[Any]: ...
    def poolable(self, tensor: Any) -> bool: ...
    def regularizers(self, weights: Sequence[str], activity_p: float = 0.1) -> dict[str, Any]: ...
    def dense(self, base: Any, units: int, activation: str) -> Any: ...
    def append(self, type: str, inbound: Sequence[Any], config: dict[str, Any],
            weight_shapes: dict[str, tuple[int, ...]], regularizers: dict[str, Any],
            shape: tuple[int, ...], mask: np.ndarray | None) -> Any: ...


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
    return _check_units(layer, _one_float_input(shapes, kinds), ACTIVATIONS)


def _check_units(layer, shape, activations):
    """A Dense's config and weights on an input of `shape`; its output shape."""
    units = _need(layer.config, "units", int)
    if units < 1:
        raise SpecProblem("config.units", "an integer >= 1", units)
    _need(layer.config, "activation", str, activations)
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


def _check_recurrent(layer, shapes, kinds, gates: int, bias: Callable[[int, Mapping[str, Any]], tuple[int, ...]],
                     flags: tuple[str, ...] = ()):
    """A recurrent layer's config (units, activation, its boolean `flags`, return_sequences=True)
    and weights: kernels of `gates` blocks of units, a bias of shape `bias(units, config)`."""
    shape = _one_float_input(shapes, kinds, min_rank=2, max_rank=2)
    units = _need(layer.config, "units", int)
    _need(layer.config, "activation", str, ("tanh", "relu", "linear"))
    for flag in flags:
        _need(layer.config, flag, bool)
    if _need(layer.config, "return_sequences", bool) is not True:
        raise SpecProblem("config.return_sequences", "true (the harness only uses sequence outputs)", False)
    expected = {"kernel": (shape[-1], gates * units), "recurrent_kernel": (units, gates * units),
                "bias": bias(units, layer.config)}
    prefixes = LAYERS[layer.type].weight_prefixes  # Bidirectional: forward_*, backward_*
    _weights(layer, {p + w: s for p in prefixes for w, s in expected.items()} if prefixes else expected)
    return shape[:-1] + (units * max(1, len(prefixes)),)


def _check_simple_rnn(layer, shapes, kinds):
    return _check_recurrent(layer, shapes, kinds, 1, lambda units, cfg: (units,))


def _gru_bias(units: int, cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """A GRU's bias: input and recurrent rows (2, 3 units) under reset_after, else (3 units,)."""
    return (2, 3 * units) if cfg["reset_after"] else (3 * units,)


def _lstm_bias(units: int, cfg: Mapping[str, Any]) -> tuple[int, ...]:
    return (4 * units,)


def _check_gru(layer, shapes, kinds):
    return _check_recurrent(layer, shapes, kinds, 3, _gru_bias, ("reset_after",))


def _check_lstm(layer, shapes, kinds):
    return _check_recurrent(layer, shapes, kinds, 4, _lstm_bias)


# recurrent_activation is passed as "sigmoid", the default everywhere but keras 2.2.4 (hard_sigmoid);
# the same arguments for the layer and for the copy a Bidirectional wraps.
def _gru_args(c: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (c["units"],), {"activation": c["activation"], "recurrent_activation": "sigmoid",
                           "reset_after": c["reset_after"], "return_sequences": c["return_sequences"]}


def _lstm_args(c: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (c["units"],), {"activation": c["activation"], "recurrent_activation": "sigmoid",
                           "return_sequences": c["return_sequences"]}


def _check_layer_normalization(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds)
    epsilon = _need(layer.config, "epsilon", (int, float))
    if not epsilon > 0:
        raise SpecProblem("config.epsilon", "a float > 0", epsilon)
    _weights(layer, {"gamma": (shape[-1],), "beta": (shape[-1],)})
    return shape


BATCH_NORM_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")
BIDIRECTIONAL_PREFIXES = ("forward_", "backward_")  # Keras's names of the two copies (Bidirectional.__init__)


def _check_batch_normalization(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds)
    epsilon = _need(layer.config, "epsilon", (int, float))
    if not epsilon > 0:
        raise SpecProblem("config.epsilon", "a float > 0", epsilon)
    _weights(layer, {w: (shape[-1],) for w in BATCH_NORM_WEIGHTS})
    if not np.all(np.asarray(layer.weights["moving_variance"]) >= 0):
        raise SpecProblem("weights.moving_variance", "values >= 0 (a variance)")
    return shape


# Activations of a TimeDistributed(Dense): not sigmoid or softmax, whose output's logits each
# lineage may or may not recover through the wrapper's reshape (tf_keras) or stack (Keras 3);
# not read yet, so not expressible (rule probability_crossentropy covers plain layers only).
TIME_DISTRIBUTED_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a not in ("sigmoid", "softmax"))


def _check_time_distributed_dense(layer, shapes, kinds):
    return _check_units(layer, _one_float_input(shapes, kinds, min_rank=2, max_rank=2), TIME_DISTRIBUTED_ACTIVATIONS)


CONV_PADDINGS = ("valid", "same")


def _conv1d_steps(steps: int, kernel_size: int, padding: str) -> int:
    """Output steps of a stride-1 Conv1D: `same` keeps them, `valid` has steps - kernel_size + 1."""
    return steps if padding == "same" else steps - kernel_size + 1


def _check_conv1d(layer, shapes, kinds):
    shape = _one_float_input(shapes, kinds, min_rank=2, max_rank=2)
    filters = _need(layer.config, "filters", int)
    kernel_size = _need(layer.config, "kernel_size", int)
    padding = _need(layer.config, "padding", str, CONV_PADDINGS)
    _need(layer.config, "activation", str, ACTIVATIONS)
    use_bias = _need(layer.config, "use_bias", bool)
    if filters < 1:
        raise SpecProblem("config.filters", "an integer >= 1", filters)
    if kernel_size < 1 or (padding == "valid" and kernel_size > shape[0]):
        raise SpecProblem("config.kernel_size", f"an integer >= 1, at most the input's {shape[0]} steps under "
                          "padding 'valid'", kernel_size)
    expected = {"kernel": (kernel_size, shape[-1], filters)}
    if use_bias:
        expected["bias"] = (filters,)
    _weights(layer, expected)
    return (_conv1d_steps(shape[0], kernel_size, padding), filters)


BRANCH_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "softmax")  # units may be 1


def _and_masks(tensors: Sequence[Any]) -> np.ndarray | None:
    masks = [t.mask for t in tensors if t.mask is not None]
    return np.logical_and.reduce(masks) if masks else None


def _draw_dense(d: LayerDraws) -> Any:
    base = d.pick()
    act = d.choice(ACTIVATIONS)
    units = d.integer(2 if act == "softmax" else 1, d.max_features)  # softmax over one unit is constant
    return d.dense(base, units, act)


def _draw_activation(d: LayerDraws) -> Any:
    base = d.pick()
    act = d.choice(ACTIVATIONS)
    if act == "softmax" and base.shape[-1] == 1:
        act = "sigmoid"
    return d.append("Activation", [base], {"activation": act}, {}, {}, base.shape, base.mask)


def _draw_merge(d: LayerDraws, kind: str) -> Any:
    """Concatenate (a tensor of the same rank) or Add (one of the same shape), with a new Dense
    branch when none exists or by chance."""
    base = d.pick()
    if kind == "Concatenate":
        fits = [t for t in d.pool() if len(t.shape) == len(base.shape) and t is not base]
        if not fits or d.boolean(0.3):
            other = d.dense(d.pick(rank=len(base.shape)) or base, d.integer(1, d.max_features),
                            d.choice(BRANCH_ACTIVATIONS))
        else:
            other = fits[d.integer(0, len(fits) - 1)]
    else:
        fits = [t for t in d.pool() if t.shape == base.shape and t is not base]
        if not fits or d.boolean(0.5):
            other = d.dense(d.pick(rank=len(base.shape)) or base, base.shape[-1], d.choice(BRANCH_ACTIVATIONS))
        else:
            other = fits[d.integer(0, len(fits) - 1)]
    parts = [base, other] if d.boolean(0.5) else [other, base]
    shape = base.shape[:-1] + (sum(t.shape[-1] for t in parts),) if kind == "Concatenate" else base.shape
    return d.append(kind, parts, {}, {}, {}, shape, _and_masks(parts))


def _draw_pooling(d: LayerDraws) -> Any:
    base = d.pick(pred=d.poolable)
    if base is None:
        return None
    return d.append("GlobalAveragePooling1D", [base], {}, {}, {}, base.shape[1:], None)


def _draw_recurrent(d: LayerDraws, kind: str, gates: int, options: Callable[[LayerDraws], dict[str, Any]],
                    bias: Callable[[int, dict[str, Any]], tuple[int, ...]]) -> Any:
    """A recurrent layer on a sequence: `gates` blocks of `units` in its kernels, its own options
    (drawn after the units), return_sequences=True; the mask passes on."""
    base = d.pick(rank=2)
    if base is None:
        return None
    units = d.integer(1, d.max_features)
    extra = options(d)
    shapes = {"kernel": (base.shape[-1], gates * units), "recurrent_kernel": (units, gates * units),
              "bias": bias(units, extra)}
    regs = d.regularizers(tuple(shapes))
    cfg = {"units": units, "activation": d.choice(("tanh", "relu", "linear")), **extra, "return_sequences": True}
    return d.append(kind, [base], cfg, shapes, regs, base.shape[:-1] + (units,), base.mask)


def _draw_simple_rnn(d: LayerDraws) -> Any:
    return _draw_recurrent(d, "SimpleRNN", 1, lambda d: {}, lambda units, extra: (units,))


def _gru_options(d: LayerDraws) -> dict[str, Any]:
    # reset_after True: the default of Keras 3 and tf_keras (keras 2.3.1's is False)
    return {"reset_after": d.boolean(0.7)}


def _draw_gru(d: LayerDraws) -> Any:
    return _draw_recurrent(d, "GRU", 3, _gru_options, _gru_bias)


def _draw_lstm(d: LayerDraws) -> Any:
    return _draw_recurrent(d, "LSTM", 4, lambda d: {}, _lstm_bias)


def _draw_bidirectional(d: LayerDraws, kind: str, gates: int, options: Callable[[LayerDraws], dict[str, Any]],
                        bias: Callable[[int, dict[str, Any]], tuple[int, ...]]) -> Any:
    """Bidirectional(<recurrent layer>), merge_mode "concat", on a masked sequence when the model has
    one (rule bidirectional_masked_steps), else on any sequence: both directions' kernels (as
    _draw_recurrent's, its options drawn after the units), their regularizers shared; no activity
    regularizer (each copy would apply it to its own output)."""
    base = d.pick(rank=2, pred=lambda t: t.mask is not None) or d.pick(rank=2)
    if base is None:
        return None
    units = d.integer(1, d.max_features)
    extra = options(d)
    inner = {"kernel": (base.shape[-1], gates * units), "recurrent_kernel": (units, gates * units),
             "bias": bias(units, extra)}
    regs = d.regularizers(tuple(inner), activity_p=0.0)
    shapes = {p + w: s for p in BIDIRECTIONAL_PREFIXES for w, s in inner.items()}
    cfg = {"units": units, "activation": d.choice(("tanh", "relu", "linear")), **extra, "return_sequences": True}
    return d.append(kind, [base], cfg, shapes, regs, base.shape[:-1] + (2 * units,), base.mask)


def _draw_bidirectional_lstm(d: LayerDraws) -> Any:
    return _draw_bidirectional(d, "BidirectionalLSTM", 4, lambda d: {}, _lstm_bias)


def _draw_bidirectional_gru(d: LayerDraws) -> Any:
    return _draw_bidirectional(d, "BidirectionalGRU", 3, _gru_options, _gru_bias)


def _draw_layer_normalization(d: LayerDraws) -> Any:
    """Over the last axis (of a vector or of each step), of a tensor with at least 2 features (one
    feature normalises to beta alone); the mask passes on."""
    base = d.pick(pred=lambda t: t.shape[-1] >= 2)
    if base is None:
        return None
    shapes = {"gamma": (base.shape[-1],), "beta": (base.shape[-1],)}
    regs = d.regularizers(tuple(shapes))
    return d.append("LayerNormalization", [base], {"epsilon": d.choice((1e-3, 1e-2))}, shapes, regs,
                    base.shape, base.mask)


def _draw_batch_normalization(d: LayerDraws) -> Any:
    """Per feature over the batch (and time) axes; on a masked tensor half the time when the model
    has one (rule batch_norm_mask). The moving statistics are drawn too (the inference paths use
    them): a mean in [-1, 1], a variance in (0, 4] (harness.strategies)."""
    base = d.pick(pred=lambda t: t.mask is not None) if d.boolean(0.5) else None
    base = base or d.pick()
    if base is None:
        return None
    shapes = {w: (base.shape[-1],) for w in BATCH_NORM_WEIGHTS}
    # No activity regularizer: keras 2.x's BatchNormalization refuses the keyword (TypeError 'Keyword
    # argument not understood' from keras/engine/base_layer.py Layer.__init__), so such a case would
    # test what keras 2.x accepts, not how a loss is assembled; the other layers draw them.
    regs = d.regularizers(("gamma", "beta"), activity_p=0.0)
    return d.append("BatchNormalization", [base], {"epsilon": d.choice((1e-3, 1e-2))}, shapes, regs,
                    base.shape, base.mask)


def _draw_conv1d(d: LayerDraws) -> Any:
    """A stride-1 Conv1D with padding 'same'; on a masked sequence from version
    FORMS_SINCE["conv1d_on_mask"] on, a third of the time (rule mask_into_unmasking_layer: Keras 3
    drops the mask with a warning, tf-keras silently, keras 2.x refuses to build the model)."""
    on_mask = d.vocabulary_version >= FORMS_SINCE["conv1d_on_mask"] and d.boolean(0.33)
    base = d.pick(rank=2, pred=None if on_mask else (lambda t: t.mask is None))
    if base is None:
        return None
    steps = base.shape[0]
    padding = "same"  # a case has one number of steps (its targets', masks' and weights'): 'valid' is not drawn
    kernel_size = d.integer(1, 3)  # 2: 'same' pads unevenly (0 before, 1 after)
    act = d.choice(BRANCH_ACTIVATIONS)
    filters = d.integer(1, d.max_features)
    use_bias = d.boolean(0.8)
    shapes = {"kernel": (kernel_size, base.shape[-1], filters)}
    if use_bias:
        shapes["bias"] = (filters,)
    regs = d.regularizers(tuple(shapes))
    cfg = {"filters": filters, "kernel_size": kernel_size, "padding": padding, "activation": act, "use_bias": use_bias}
    return d.append("Conv1D", [base], cfg, shapes, regs, (_conv1d_steps(steps, kernel_size, padding), filters), None)


def _draw_time_distributed_dense(d: LayerDraws) -> Any:
    """TimeDistributed(Dense) on a sequence, masked or not (the mask passes on in every lineage);
    an activity regularizer on the wrapped Dense half the time, what the wrapper changes (rule
    time_distributed_activity_regularizer)."""
    base = d.pick(rank=2)
    if base is None:
        return None
    act = d.choice(TIME_DISTRIBUTED_ACTIVATIONS)
    units = d.integer(1, d.max_features)
    use_bias = d.boolean(0.8)
    shapes = {"kernel": (base.shape[-1], units)}
    if use_bias:
        shapes["bias"] = (units,)
    regs = d.regularizers(tuple(shapes), activity_p=0.5)
    return d.append("TimeDistributedDense", [base], {"units": units, "activation": act, "use_bias": use_bias},
                    shapes, regs, base.shape[:-1] + (units,), base.mask)


def _on_temporal(label: str) -> Callable[[Any, Sequence[tuple[np.ndarray, Any]], bool], set[str]]:
    return lambda layer, inbound, is_output: {label} if inbound[0][0].ndim == 3 else set()


def _on_mask(label: str) -> Callable[[Any, Sequence[tuple[np.ndarray, Any]], bool], set[str]]:
    return lambda layer, inbound, is_output: {label} if any(m is not None for _, m in inbound) else set()


LAYERS: dict[str, LayerEntry] = {
    e.type: e
    for e in [
        LayerEntry("Dense", "Dense", ("units", "activation", "use_bias"), ("kernel", "bias"), "pass", _check_dense,
                   lambda c: ((c["units"],), {"activation": c["activation"], "use_bias": c["use_bias"]}),
                   _on_temporal("dense_on_temporal"), {"dense_on_temporal": "a Dense layer on a rank-3 tensor"},
                   _draw_dense, 0.18, doc="Dense on rank-2 or rank-3 (temporal) inputs; passes a mask on."),
        LayerEntry("Embedding", "Embedding", ("input_dim", "output_dim", "mask_zero"), ("embeddings",), "create",
                   _check_embedding,
                   lambda c: ((c["input_dim"], c["output_dim"]), {"mask_zero": c["mask_zero"]}),
                   lambda layer, inbound, is_output: {"embedding_mask"} if layer.config.get("mask_zero") else set(),
                   {"embedding_mask": "an Embedding with mask_zero=True"},
                   doc="Token ids -> vectors; mask_zero=True makes a mask of ids != 0."),
        LayerEntry("Masking", "Masking", ("mask_value",), (), "create", _check_masking,
                   lambda c: ((), {"mask_value": float(c["mask_value"])}),
                   lambda layer, inbound, is_output: {"masking"}, {"masking": "a Masking layer"},
                   doc="Masks timesteps whose features all equal mask_value and zeroes them."),
        LayerEntry("Activation", "Activation", ("activation",), (), "pass", _check_activation,
                   lambda c: ((c["activation"],), {}),
                   lambda layer, inbound, is_output: {"activation_output"} if is_output else set(),
                   {"activation_output": "an output produced by an Activation layer (Dense(linear) -> Activation)"},
                   _draw_activation, 0.1),
        LayerEntry("Concatenate", "Concatenate", (), (), "combine",
                   lambda l, s, k: _check_merge(l, s, k, concat=True), lambda c: ((), {"axis": -1}),
                   _on_mask("mask_merge"), {"mask_merge": "Concatenate or Add with at least one masked inbound tensor"},
                   lambda d: _draw_merge(d, "Concatenate"), 0.22, doc="Along the last axis; masks AND-ed."),
        LayerEntry("Add", "Add", (), (), "combine", lambda l, s, k: _check_merge(l, s, k, concat=False),
                   lambda c: ((), {}), _on_mask("mask_merge"), {}, lambda d: _draw_merge(d, "Add"), 0.2,
                   doc="Element-wise sum; masks AND-ed."),
        LayerEntry("GlobalAveragePooling1D", "GlobalAveragePooling1D", (), (), "consume", _check_gap1d,
                   lambda c: ((), {}), _on_mask("masked_pooling"),
                   {"masked_pooling": "GlobalAveragePooling1D over a masked tensor"}, _draw_pooling, 0.14,
                   doc="Mean over time of the unmasked steps; drops the mask."),
        LayerEntry("AddLossL2", "AddLossL2", ("factor",), (), "pass", _check_add_loss,
                   lambda c: ((), {"factor": float(c["factor"])}),
                   lambda layer, inbound, is_output: {"add_loss"},
                   {"add_loss": "a layer that calls add_loss (AddLossL2)"}, custom=True,
                   doc="Identity that calls add_loss(factor * sum(square(inputs)))."),
        LayerEntry("SimpleRNN", "SimpleRNN", ("units", "activation", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_simple_rnn,
                   lambda c: ((c["units"],), {"activation": c["activation"], "return_sequences": c["return_sequences"]}),
                   draw=_draw_simple_rnn, draw_weight=0.2,
                   doc="return_sequences=True; a masked step keeps the previous state and output."),
        LayerEntry("GRU", "GRU", ("units", "activation", "reset_after", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_gru,
                   _gru_args,
                   draw=_draw_gru, draw_weight=0.2, since=3,
                   doc="Gates z, r and candidate h in kernel order; return_sequences=True; a masked step "
                       "keeps the previous state and output."),
        # keras 3.15.1 keras/src/layers/rnn/lstm.py:LSTMCell.call and tf-keras 2.21 tf_keras/src/layers/rnn/
        # lstm.py:LSTMCell.call / standard_lstm (the same gates; a masked step keeps h and c in both: RNN's
        # zero_output_for_mask defaults to False). recurrent_activation passed as "sigmoid" (keras 2.2.4's
        # default is hard_sigmoid); use_bias stays True (unit_forget_bias only initialises the bias).
        LayerEntry("LSTM", "LSTM", ("units", "activation", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_lstm,
                   _lstm_args,
                   draw=_draw_lstm, draw_weight=0.2, since=4,
                   doc="Gates i, f, candidate c, o in kernel order; return_sequences=True; a masked step "
                       "keeps the previous state, carry and output."),
        # keras 3.15.1 keras/src/layers/normalization/layer_normalization.py:LayerNormalization.call ->
        # keras/src/ops/nn.py:_layer_normalization (moments, rsqrt(var + epsilon) * gamma; torch:
        # F.layer_norm), tf-keras 2.21 tf_keras/src/layers/normalization/layer_normalization.py:
        # LayerNormalization.call (batch_normalization of the moments); supports_masking in both.
        # keras 2.3.1 has no LayerNormalization (unsupported there).
        LayerEntry("LayerNormalization", "LayerNormalization", ("epsilon",), ("gamma", "beta"), "pass",
                   _check_layer_normalization, lambda c: ((), {"axis": -1, "epsilon": float(c["epsilon"])}),
                   _on_temporal("layer_norm_on_temporal"),
                   {"layer_norm_on_temporal": "a LayerNormalization of each step of a rank-3 tensor"},
                   _draw_layer_normalization, 0.3, since=10,
                   doc="(x - mean) / sqrt(var + epsilon) * gamma + beta over the last axis (biased variance); "
                       "passes a mask on."),
        # keras 3.15.1 keras/src/layers/normalization/batch_normalization.py:BatchNormalization.call,
        # tf-keras 2.21 tf_keras/src/layers/normalization/batch_normalization.py:BatchNormalizationBase.call,
        # keras 2.3.1 keras/layers/normalization.py:BatchNormalization.call. Training mode (the paths
        # compute_loss, train_on_batch, fit: model(x, training=True) and the train step) normalises with the
        # batch's moments, inference (test_on_batch, evaluate, predictions) with the moving statistics, which
        # the Case sets; which steps the moments see under a mask is rule batch_norm_mask. Not fused on
        # rank 2-3 tensors (tf-keras: fused only for rank 4-5), not synchronized across replicas (each
        # MirroredStrategy replica normalises its own rows; a JAX DataParallel program the global batch).
        LayerEntry("BatchNormalization", "BatchNormalization", ("epsilon",), ("gamma", "beta"), "pass",
                   _check_batch_normalization, lambda c: ((), {"axis": -1, "epsilon": float(c["epsilon"])}),
                   lambda layer, inbound, is_output: ({"batch_norm_on_mask"} if inbound[0][1] is not None else set())
                   | ({"batch_norm_on_temporal"} if inbound[0][0].ndim == 3 else set()),
                   {"batch_norm_on_mask": "a BatchNormalization on a masked tensor (rule batch_norm_mask)",
                    "batch_norm_on_temporal": "a BatchNormalization of a rank-3 tensor (moments over batch and time)"},
                   _draw_batch_normalization, 0.2, since=14, non_trainable=("moving_mean", "moving_variance"),
                   doc="(x - mean) / sqrt(var + epsilon) * gamma + beta per feature: the batch's moments on the "
                       "training paths, moving_mean and moving_variance (set by the Case) on the others; passes "
                       "a mask on."),
        # keras 3.15.1 keras/src/layers/rnn/bidirectional.py:Bidirectional (a forward_ copy of the LSTM and
        # a backward_ one with go_backwards=True, whose output sequence is flipped back; concat), tf-keras 2.21
        # tf_keras/src/layers/rnn/bidirectional.py:Bidirectional, keras 2.3.1 keras/layers/wrappers.py:
        # Bidirectional. Masked steps: rule bidirectional_masked_steps.
        LayerEntry("BidirectionalLSTM", "Bidirectional", ("units", "activation", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_lstm,
                   _lstm_args,
                   _on_mask("bidirectional_on_mask"),
                   {"bidirectional_on_mask": "a Bidirectional(LSTM) on a masked sequence (rule bidirectional_masked_steps)"},
                   _draw_bidirectional_lstm, 0.15, since=15, wraps="LSTM", weight_prefixes=BIDIRECTIONAL_PREFIXES,
                   doc="Bidirectional(LSTM(units, activation, return_sequences=True)), merge_mode 'concat': the "
                       "forward LSTM's sequence, then the backward one's (run on the reversed steps, flipped back); "
                       "weights forward_* and backward_*; passes a mask on."),
        # The same wrapper around a GRU (whose entry above cites its cell); reset_after as drawn there.
        LayerEntry("BidirectionalGRU", "Bidirectional", ("units", "activation", "reset_after", "return_sequences"),
                   ("kernel", "recurrent_kernel", "bias"), "pass", _check_gru,
                   _gru_args,
                   _on_mask("bidirectional_gru_on_mask"),
                   {"bidirectional_gru_on_mask": "a Bidirectional(GRU) on a masked sequence (rule "
                                                 "bidirectional_masked_steps)"},
                   _draw_bidirectional_gru, 0.15, since=17, wraps="GRU", weight_prefixes=BIDIRECTIONAL_PREFIXES,
                   doc="Bidirectional(GRU(units, activation, reset_after, return_sequences=True)), merge_mode "
                       "'concat', as BidirectionalLSTM; weights forward_* and backward_*; passes a mask on."),
        # keras 3.15.1 keras/src/layers/convolutional/base_conv.py:BaseConv.call (ops.conv, then bias and
        # activation), tf-keras 2.21 tf_keras/src/layers/convolutional/base_conv.py:Conv.call, keras 2.3.1
        # keras/layers/convolutional.py:_Conv.call. Cross-correlation; 'same' pads (k - 1) // 2 before.
        LayerEntry("Conv1D", "Conv1D", ("filters", "kernel_size", "padding", "activation", "use_bias"),
                   ("kernel", "bias"), "none", _check_conv1d,
                   lambda c: ((c["filters"], c["kernel_size"]), {"padding": c["padding"], "activation": c["activation"],
                                                                "use_bias": c["use_bias"]}),
                   lambda layer, inbound, is_output: ({"conv1d_even_kernel"} if layer.config["kernel_size"] % 2 == 0
                                                      else set()) | ({"conv1d_on_mask"} if inbound[0][1] is not None
                                                                     else set()),
                   {"conv1d_even_kernel": "a Conv1D of even kernel_size (padding 'same' pads unevenly)",
                    "conv1d_on_mask": "a Conv1D on a masked tensor (rule mask_into_unmasking_layer)"},
                   _draw_conv1d, 0.5, since=10,
                   doc="Stride 1 over time, padding 'valid' or 'same' (drawn: 'same'); its output has no mask "
                       "(on a masked tensor Keras 3 and tf-keras drop the mask, keras 2.x refuses: rule "
                       "mask_into_unmasking_layer; drawn there from version 13)."),
        # keras 3.15.1 keras/src/layers/rnn/time_distributed.py:TimeDistributed.call (self.layer.call per
        # step, stacked), tf-keras 2.21 tf_keras/src/layers/rnn/time_distributed.py:TimeDistributed.call
        # (self.layer on the (batch * time, features) reshape when the batch size is not static), keras
        # 2.3.1 keras/layers/wrappers.py:TimeDistributed.call. The values are a Dense's on each step; the
        # lineages differ in the wrapped layer's activity regularizer.
        LayerEntry("TimeDistributedDense", "TimeDistributed", ("units", "activation", "use_bias"), ("kernel", "bias"),
                   "pass", _check_time_distributed_dense,
                   lambda c: ((), {"units": c["units"], "activation": c["activation"], "use_bias": c["use_bias"]}),
                   lambda layer, inbound, is_output: {"time_distributed_activity"} if "activity" in layer.regularizers
                   else set(),
                   {"time_distributed_activity": "a TimeDistributed(Dense) whose Dense has an activity regularizer"},
                   _draw_time_distributed_dense, 0.2, since=11, wraps="Dense",
                   doc="TimeDistributed(Dense(units, activation, use_bias)) on a sequence: the Dense on each step; "
                       "passes a mask on; regularizers are the Dense's; not sigmoid or softmax."),
    ]
}

# The body layer the generator appends when the one it drew fits no tensor of the model.
FALLBACK_BODY_LAYER = "Dense"

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
class Option:
    """One keyword argument of a loss: its Keras default, how cases draw it, what it admits."""

    default: Any
    # A value to pass, or None to leave the option out (Keras's default applies).
    draw: Callable[[Draws], Any]
    # What a value must be, as text, or "" when `valid` accepts every number.
    expected: str = ""
    valid: Callable[[Any], bool] = lambda value: True
    required: bool = False  # a case must give it (its Keras default is outside what the harness admits)


def _given(p: float, value: Callable[[Draws], Any]) -> Callable[[Draws], Any]:
    return lambda d: value(d) if d.boolean(p) else None


def _from_logits(d: Draws) -> bool | None:
    if d.boolean(0.4):
        return True
    return False if d.boolean(0.25) else None  # False: the default, spelled out


FROM_LOGITS = Option(False, _from_logits)
LABEL_SMOOTHING = Option(0.0, _given(0.45, lambda d: d.integer(1, 32) / 64),  # (0, 0.5]
                         "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)
DELTA = Option(1.0, _given(0.7, lambda d: d.integer(1, 48) / 16), "a number > 0", lambda v: v > 0)  # (0, 3]
GAMMA = Option(2.0, _given(0.6, lambda d: d.integer(0, 20) / 4), "a number >= 0", lambda v: v >= 0)  # [0, 5]
ALPHA = Option(0.25, _given(0.6, lambda d: d.integer(0, 16) / 16), "a number in [0, 1]",  # [0, 1]
               lambda v: 0.0 <= v <= 1.0)
APPLY_CLASS_BALANCING = Option(False, _given(0.6, lambda d: True))
# Dice and Tversky sum over `axis`; Keras's default None sums over every axis, batch included (one
# loss for the whole batch, which per-element losses, sample weights and masks cannot express), so
# a case always passes axis=-1: the loss per sample (and timestep), shaped like the prediction
# without its last axis.
LAST_AXIS = Option(None, lambda d: -1, "-1 (the loss over the last axis; None sums the whole batch)",
                   lambda v: type(v) is int and v == -1, required=True)
TVERSKY_COEFFICIENT = Option(0.5, _given(0.6, lambda d: d.integer(0, 16) / 16), "a number in [0, 1]",  # [0, 1]
                             lambda v: 0.0 <= v <= 1.0)
GCE_Q = Option(0.5, _given(0.6, lambda d: d.integer(1, 15) / 16), "a number in (0, 1)",  # (0, 1)
               lambda v: 0.0 < v < 1.0)


@dataclass(frozen=True)
class LossEntry:
    """Everything of one loss but its NumPy reference, which is
    `harness.reference.losses.PER_ELEMENT[name]` (the reference comes after the data)."""

    name: str  # canonical name (the Keras function name)
    keras_class: str  # class name in keras 3, tf_keras / tf.keras and keras 2.3.1 (a lineage without it: unsupported)
    target_kind: str
    pred_kind: str  # for from_logits=False; with from_logits=True the prediction is any real
    options: Mapping[str, Option] = field(default_factory=dict)  # keyword -> Option, in drawing order
    # Option -> the feature label (harness.features) of a case that gives it (and not as False).
    option_features: Mapping[str, str] = field(default_factory=dict)
    # The function in keras 2.2.4's keras/losses.py (no loss classes there); None: 2.2.4 has none.
    keras224_function: str | None = None
    since: int = 1  # the vocabulary version that added it (harness.strategies draws by version)
    doc: str = ""

    @property
    def defaults(self) -> dict[str, Any]:
        return {key: option.default for key, option in self.options.items()}

    def check(self, target: np.ndarray, pred_shape: tuple[int, ...], options: dict[str, Any]) -> None:
        for key, option in self.options.items():
            if option.required and key not in options:
                raise SpecProblem(f"loss_options.{key}", f"{option.expected} (required for {self.name})")
        for key, value in options.items():
            if key == "reduction":
                if value not in REDUCTIONS:
                    raise SpecProblem("loss_options.reduction", "one of " + ", ".join(REDUCTIONS), value)
                continue
            option = self.options.get(key)
            if option is None:
                allowed = ", ".join(("reduction",) + tuple(self.options))
                raise SpecProblem(f"loss_options.{key}", f"an option of {self.name}: {allowed}", key)
            if isinstance(option.default, bool):
                if not isinstance(value, bool):
                    raise SpecProblem(f"loss_options.{key}", "true or false", value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecProblem(f"loss_options.{key}", "a number", value)
            elif not option.valid(value):
                raise SpecProblem(f"loss_options.{key}", option.expected, value)
        if self.target_kind == "sparse":
            if tuple(target.shape) != tuple(pred_shape[:-1]):
                raise SpecProblem("target", f"integer class ids of shape {tuple(pred_shape[:-1])}", target.shape)
            if target.dtype.kind not in "iu" or target.min() < 0 or target.max() >= pred_shape[-1]:
                raise SpecProblem("target", f"integer class ids in [0, {pred_shape[-1]})", target.tolist())
            return
        if tuple(target.shape) != tuple(pred_shape):
            raise SpecProblem("target", f"shape {tuple(pred_shape)} (the output's shape)", target.shape)
        _check_target_domain(self.target_kind, target, pred_shape)


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


def _ce() -> dict[str, Option]:
    return {"from_logits": FROM_LOGITS, "label_smoothing": LABEL_SMOOTHING}


LOSSES: dict[str, LossEntry] = {
    e.name: e
    for e in [
        LossEntry("mean_squared_error", "MeanSquaredError", "real", "any", keras224_function="mean_squared_error"),
        LossEntry("mean_absolute_error", "MeanAbsoluteError", "real", "any", keras224_function="mean_absolute_error"),
        LossEntry("mean_absolute_percentage_error", "MeanAbsolutePercentageError", "nonzero_real", "any",
                  keras224_function="mean_absolute_percentage_error"),
        LossEntry("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", "nonnegative", "positive",
                  keras224_function="mean_squared_logarithmic_error"),
        LossEntry("huber", "Huber", "real", "any", {"delta": DELTA}, {"delta": "huber_delta"}),
        LossEntry("log_cosh", "LogCosh", "real", "any", keras224_function="logcosh"),
        LossEntry("binary_crossentropy", "BinaryCrossentropy", "probability", "probability", _ce(),
                  keras224_function="binary_crossentropy"),
        LossEntry("categorical_crossentropy", "CategoricalCrossentropy", "distribution", "distribution", _ce(),
                  keras224_function="categorical_crossentropy"),
        LossEntry("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", "sparse", "distribution",
                  {"from_logits": FROM_LOGITS}, keras224_function="sparse_categorical_crossentropy"),
        LossEntry("binary_focal_crossentropy", "BinaryFocalCrossentropy", "probability", "probability",
                  {**_ce(), "gamma": GAMMA, "alpha": ALPHA, "apply_class_balancing": APPLY_CLASS_BALANCING},
                  {"gamma": "focal_gamma", "alpha": "focal_alpha", "apply_class_balancing": "focal_class_balancing"}),
        LossEntry("kl_divergence", "KLDivergence", "distribution", "distribution",
                  keras224_function="kullback_leibler_divergence"),
        LossEntry("poisson", "Poisson", "nonnegative", "positive", keras224_function="poisson"),
        # keras 2.2.4 cosine_proximity: -sum(l2_normalize(y) * l2_normalize(p)), as the class
        LossEntry("cosine_similarity", "CosineSimilarity", "real", "any", keras224_function="cosine_proximity"),
        LossEntry("hinge", "Hinge", "plus_minus_one", "any", keras224_function="hinge"),
        LossEntry("squared_hinge", "SquaredHinge", "plus_minus_one", "any", keras224_function="squared_hinge"),
        LossEntry("categorical_hinge", "CategoricalHinge", "distribution", "any", keras224_function="categorical_hinge"),
        # Keras 3.0+, tf_keras, tf.keras 2.13+ (keras 2.12 and 2.3.1 have no class: unsupported there)
        LossEntry("categorical_focal_crossentropy", "CategoricalFocalCrossentropy", "distribution", "distribution",
                  {**_ce(), "gamma": GAMMA, "alpha": ALPHA},
                  {"gamma": "categorical_focal_gamma", "alpha": "categorical_focal_alpha"}, since=2),
        # Keras 3.2+ (class Dice first in keras-3.2.0's keras/src/losses/losses.py, absent from 3.1.1);
        # its `axis` argument only since 3.4.0 (3.2-3.3 flatten both tensors: one loss per batch, and
        # Dice(axis=-1) is a TypeError there). tf_keras, tf.keras and keras 2.x have no class: unsupported.
        LossEntry("dice", "Dice", "probability", "probability", {"axis": LAST_AXIS}, since=4),
        # Keras 3.3+ (class Tversky first in keras-3.3.3 as read; 3.2.1 lacks it); `axis` only since
        # 3.8.0 (3.3-3.7 flatten: Tversky(axis=-1) is a TypeError there). No class in tf_keras / keras 2.x.
        LossEntry("tversky", "Tversky", "probability", "probability",
                  {"alpha": TVERSKY_COEFFICIENT, "beta": TVERSKY_COEFFICIENT, "axis": LAST_AXIS},
                  {"alpha": "tversky_alpha", "beta": "tversky_beta"}, since=4),
        # Keras 3.10+ (class first in keras-3.10.0, absent from 3.9.2); no class in tf_keras / keras 2.x.
        # Integer class ids like sparse_categorical_crossentropy; no from_logits, no clipping.
        LossEntry("categorical_generalized_cross_entropy", "CategoricalGeneralizedCrossEntropy", "sparse",
                  "distribution", {"q": GCE_Q}, {"q": "generalized_ce_q"}, since=4),
    ]
}

REGULARIZERS = ("l1", "l2", "l1_l2")

# The latest vocabulary version: the highest `since` of any entry. The case generator draws from
# the entries of one version, so appending an entry (a new version) leaves the cases, and the
# ids, of every earlier version as they were (tests/test_strategies.py pins them).
# A form of the Case that the generator draws from a version on (spec.Y_FORMS: y as a list for one
# output, or a dict keyed by output name), like an entry's `since`.
# Version 6: loss_weights as a bare number for one output (spec.LOSS_WEIGHTS_FORMS "scalar"), and
# loss weights as Python ints.
# Version 7: sample weights as (batch, 1) columns (spec.sample_weight_kind "column").
# Version 8: the reductions "mean", "mean_with_sample_weight" and "auto" (REDUCTIONS).
# Version 9: a loss given by its name (spec.Output.loss_by "name").
# Version 10 added the layers LayerNormalization and Conv1D (their entries' `since`) and a fourth
# body layer slot, so that its 10 drawn body layers keep the earlier ones' shares (mask_merge >= 10%).
# Version 11 added TimeDistributedDense (TimeDistributed(Dense)); its commit (d3a3bd1) also raised
# LayerNormalization's draw weight to 0.3, which redrew some version-10 cases before version 10 had
# landed (the ids cited in cases/found and docs/sweep-run.md still draw the same).
# Version 14 added BatchNormalization (its entry's `since`) and a fifth body layer slot, for the same
# reason as version 10's (mask_merge fell to 9.3% of 1000 cases with four).
# Version 15 added BidirectionalLSTM (its entry's `since`).
# Version 16: list and dict sample weights that leave some outputs out (None in the list, no key in
# the dict), a third of such cases with several outputs; and per-step sample weights as
# (batch, time, 1) 45% of the time (spec.sample_weight_kind "timestep_trailing_axis").
# Version 17 added BidirectionalGRU (its entry's `since`).
FORMS_SINCE = {"y_form": 5, "scalar_loss_weights": 6, "weight_columns": 7, "more_reductions": 8, "loss_names": 9,
               "four_body_layers": 10, "class_weight": 12, "conv1d_on_mask": 13, "five_body_layers": 14,
               "partial_sample_weights": 16, "timestep_trailing_axis": 16}
VERSION = max([e.since for e in [*LAYERS.values(), *LOSSES.values()]] + list(FORMS_SINCE.values()))


def layers_of(version: int) -> dict[str, LayerEntry]:
    return {k: e for k, e in LAYERS.items() if e.since <= version}


def losses_of(version: int) -> dict[str, LossEntry]:
    return {k: e for k, e in LOSSES.items() if e.since <= version}
