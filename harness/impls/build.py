"""Build a Keras model, and the arguments `compile`/`fit` take, from a Case.

Shared by Keras 3, tf-keras, the tf.keras bundled with TensorFlow 2.12-2.15 and standalone
keras 2.3.1: every function takes the keras module (`keras`, `tf_keras`, `tf.keras`) as its
first argument and uses only API common to all of them. The few version quirks sit behind one
small hook each (`_ops`, `_regularizer`, `set_float_dtype`, `_weight_short_name`).

The model is functional, with named Inputs and named layers; its outputs are the outputs'
layers in Case order, so an output's name is its layer's name (as in the Case). Every weight
is assigned from the Case (`assign_weights`); the initializers never matter.

Argument forms (the Case says which):
- `loss_argument`: "single" one loss object, "list" one per output, "dict" keyed by output name.
- `loss_weights_argument`: None ("omitted"), a list, a dict keyed by output name, or one number
  ("scalar"); each weight an int or a float as the Case has it.
- `sample_weight_argument`: None, one array ("single"), a list (also for one output: the form is
  the Case's, not ours to simplify), or a dict keyed by output name; an output without weights is
  None in the list and has no key in the dict.
- `x_argument` / `y_argument`: one array when there is one input / output, else a list in Case
  order (the structure of `model.inputs` / `model.outputs`). y is a list even when loss or
  sample weights come as a dict: a user with a list-output functional model writes exactly that.
Floats are cast to the Case's dtype, integer inputs and sparse targets to int32.
Each takes an optional `rows` slice so that a path can hand over part of the batch.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from harness.spec import Case, Layer, Regularizer
from harness.vocabulary import LAYERS, LOSSES, REGULARIZER_KEYWORDS

# --------------------------------------------------------------------------------------
# Version hooks (one small function each)
# --------------------------------------------------------------------------------------


def _ops(keras: Any) -> Any:
    """Tensor ops with `sum` and `square`: `keras.ops` in Keras 3, `keras.backend` in Keras 2."""
    return getattr(keras, "ops", None) or keras.backend


def set_float_dtype(keras: Any, dtype: str) -> None:
    """Set floatx (Keras 3: keras.config.set_floatx; Keras 2: keras.backend.set_floatx).

    Layers also get `dtype=` explicitly (`build_model`), so the policy of every layer is the
    Case's dtype whatever the global default.
    """
    config = getattr(keras, "config", None)
    setter = getattr(config, "set_floatx", None) or keras.backend.set_floatx
    setter(dtype)


def _regularizer(keras: Any, reg: Regularizer | None) -> Any:
    """`L1(l1)`, `L2(l2)`, `L1L2(l1, l2)` by kind. keras 2.3.1 has only the L1L2 class (and the
    l1/l2 functions that return one), so L1/L2 fall back to L1L2 with the other factor 0."""
    if reg is None:
        return None
    regs = keras.regularizers
    if reg.kind == "l1" and hasattr(regs, "L1"):
        return regs.L1(l1=reg.l1)
    if reg.kind == "l2" and hasattr(regs, "L2"):
        return regs.L2(l2=reg.l2)
    return regs.L1L2(l1=reg.l1, l2=reg.l2)


def _weight_short_name(variable: Any) -> str:
    """'kernel' from 'hidden/kernel:0' (Keras 2), 'kernel' (Keras 3 `name`), or
    'rnn/simple_rnn_cell/kernel:0'."""
    return str(variable.name).split("/")[-1].split(":")[0]


def case_weight_names(layer: Any) -> list[str]:
    """The Case's name of each of `layer.weights`, in that order: the variable's short name, and for
    a Bidirectional its copy's prefix too ('forward_kernel', 'backward_kernel': both copies hold a
    'kernel'; Keras 3, tf-keras and keras 2.x all keep them as `forward_layer` / `backward_layer`)."""
    if type(layer).__name__ != "Bidirectional":
        return [_weight_short_name(v) for v in layer.weights]
    forward = {id(v) for v in layer.forward_layer.weights}
    return [("forward_" if id(v) in forward else "backward_") + _weight_short_name(v) for v in layer.weights]


# --------------------------------------------------------------------------------------
# The custom layer
# --------------------------------------------------------------------------------------

_ADD_LOSS_CLASSES: dict[int, type] = {}


def add_loss_layer_class(keras: Any) -> type:
    """AddLossL2 for this keras module: identity that calls add_loss(factor * sum(square(x))).

    supports_masking=True, so the default compute_mask passes the mask on unchanged.
    One class per keras module (cached), defined against that module's Layer base.
    """
    key = id(keras)
    if key in _ADD_LOSS_CLASSES:
        return _ADD_LOSS_CLASSES[key]
    ops = _ops(keras)

    class AddLossL2(keras.layers.Layer):
        def __init__(self, factor: float = 0.0, **kwargs: Any):
            super().__init__(**kwargs)
            self.factor = float(factor)
            self.supports_masking = True

        def call(self, inputs: Any) -> Any:
            self.add_loss(self.factor * ops.sum(ops.square(inputs)))
            return inputs

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "factor": self.factor}

    _ADD_LOSS_CLASSES[key] = AddLossL2
    return AddLossL2


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


# The harness's own layer classes (vocabulary entries with custom=True), per keras module.
CUSTOM_LAYERS: dict[str, Callable[[Any], type]] = {"AddLossL2": add_loss_layer_class}


def _make_layer(keras: Any, layer: Layer, dtype: str) -> Any:
    """`keras.layers.<keras_class>(*args, **kwargs)` with the entry's arguments for the config,
    the layer's regularizers, its name and the case dtype."""
    entry = LAYERS[layer.type]
    args, kwargs = entry.keras_args(layer.config)
    for weight, reg in layer.regularizers.items():
        keyword = "activity_regularizer" if weight == "activity" else REGULARIZER_KEYWORDS[weight]
        kwargs[keyword] = _regularizer(keras, reg)
    if entry.wraps:  # TimeDistributed(Dense(...)): the arguments and regularizers are the Dense's
        inner = getattr(keras.layers, entry.wraps)(*args, name=f"{layer.name}_inner", dtype=dtype, **kwargs)
        return getattr(keras.layers, entry.keras_class)(inner, name=layer.name, dtype=dtype)
    cls = CUSTOM_LAYERS[layer.type](keras) if entry.custom else getattr(keras.layers, entry.keras_class)
    return cls(*args, name=layer.name, dtype=dtype, **kwargs)


def build_model(keras: Any, case: Case) -> Any:
    """The functional model of the Case, weights assigned from the Case. Call `set_float_dtype`
    first (the adapters do, once per case)."""
    tensors: dict[str, Any] = {}
    inputs = []
    for inp in case.inputs:
        dtype = "int32" if inp.kind == "int" else case.dtype
        tensors[inp.name] = keras.Input(shape=tuple(inp.data.shape[1:]), name=inp.name, dtype=dtype)
        inputs.append(tensors[inp.name])
    for layer in case.layers:
        args = [tensors[name] for name in layer.inbound]
        tensors[layer.name] = _make_layer(keras, layer, case.dtype)(args if len(args) > 1 else args[0])
    outputs = [tensors[o.layer] for o in case.outputs]
    model = keras.Model(
        inputs=inputs if len(inputs) > 1 else inputs[0],
        outputs=outputs if len(outputs) > 1 else outputs[0],
    )
    assign_weights(model, case)
    return model


def assign_weights(model: Any, case: Case) -> None:
    """Set every weight of every layer from the Case, matching by the variable's short name.

    A layer of the Case that no output depends on is not part of a functional model (Keras
    builds the model from the outputs back), so it has nothing to assign: see `absent_layers`.

    Raises ValueError when the model's weights and the Case's differ in names or shapes.
    """
    in_model = {layer.name for layer in model.layers}
    for spec in case.layers:
        if spec.name not in in_model:
            continue  # not reachable from the outputs: Keras leaves it out of the model
        layer = model.get_layer(spec.name)
        names = case_weight_names(layer)
        if sorted(names) != sorted(spec.weights):
            raise ValueError(f"layer {spec.name!r}: model has weights {names}, the case {sorted(spec.weights)}")
        dtype = case.dtype
        layer.set_weights([np.asarray(spec.weights[n], dtype=dtype) for n in names])


def absent_layers(model: Any, case: Case) -> list[str]:
    """Layers of the Case that the built model does not contain (no output depends on them):
    their regularizers and add_loss calls are not part of the model's losses."""
    in_model = {layer.name for layer in model.layers}
    return [spec.name for spec in case.layers if spec.name not in in_model]


def weights_equal(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> bool:
    """Exact equality of two snapshots of the same keys, NaN equal to NaN (a NaN weight that stayed
    NaN did not move)."""
    return before.keys() == after.keys() and all(
        before[k].shape == after[k].shape and np.array_equal(before[k], after[k], equal_nan=True) for k in before
    )


def output_names(model: Any) -> list[str]:
    """model.output_names as a list (a property in Keras 3 and Keras 2)."""
    return list(model.output_names)


# --------------------------------------------------------------------------------------
# Losses and data in the Case's forms
# --------------------------------------------------------------------------------------


def make_loss(keras: Any, loss_name: str, options: dict[str, Any]) -> Any:
    """The loss object `keras.losses.<keras_class>(**options)`; options as in the Case
    (reduction given as its string value, which every version accepts)."""
    entry = LOSSES[loss_name]
    cls = getattr(keras.losses, entry.keras_class, None)
    if cls is None:
        raise NotImplementedError(f"{keras.__name__}.losses has no class {entry.keras_class}")
    return cls(**options)


def missing_classes(keras: Any, case: Case) -> str | None:
    """Why this release cannot run any path of `case` (`missing_layer_classes`, then
    `missing_loss_classes`), or None."""
    return missing_layer_classes(keras, case) or missing_loss_classes(keras, case)


def missing_layer_classes(keras: Any, case: Case) -> str | None:
    """The Case's layer classes that `keras.layers` lacks (keras 2.3.1 has no LayerNormalization),
    as a reason, or None."""
    classes = {cls for layer in case.layers if not LAYERS[layer.type].custom
               for cls in (LAYERS[layer.type].keras_class, LAYERS[layer.type].wraps) if cls}
    missing = sorted(cls for cls in classes if getattr(keras.layers, cls, None) is None)
    return f"{keras.__name__}.layers has no class " + ", ".join(missing) if missing else None


def missing_loss_classes(keras: Any, case: Case) -> str | None:
    """The Case's loss classes that `keras.losses` lacks, loss names `keras.losses.get` does not
    know (what compile resolves a string with: keras/src/trainers/compile_utils.py get_loss,
    tf_keras/src/engine/compile_utils.py get_loss_function, keras 2.3.1 training_utils
    get_loss_function), or options a class's `__init__` does not take (Dice(axis=...) before
    Keras 3.4), as a reason (every path of the case is then unsupported: that release has no
    such loss), or None."""
    unknown = sorted({o.loss for o in case.outputs if o.loss_by == "name" and not _known_name(keras, o.loss)})
    if unknown:
        return f"{keras.__name__}.losses.get does not know the name " + ", ".join(map(repr, unknown))
    missing = sorted({LOSSES[o.loss].keras_class for o in case.outputs
                      if o.loss_by == "object" and getattr(keras.losses, LOSSES[o.loss].keras_class, None) is None})
    if missing:
        return f"{keras.__name__}.losses has no class " + ", ".join(missing)
    refused = sorted({f"{LOSSES[o.loss].keras_class}({key}=...)" for o in case.outputs for key in o.loss_options
                      if not _takes(getattr(keras.losses, LOSSES[o.loss].keras_class), key)})
    return f"{keras.__name__}.losses takes no " + ", ".join(refused) if refused else None


def _known_name(keras: Any, name: str) -> bool:
    try:
        keras.losses.get(name)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


def _takes(cls: Any, keyword: str) -> bool:
    """Whether `cls(keyword=...)` is accepted, read from its signature (True when it cannot tell)."""
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return True
    return keyword in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def loss_argument(keras: Any, case: Case) -> Any:
    """compile(loss=...) in the Case's loss_form: each output's loss object, or its name (a
    string) where the output's loss_by is "name"."""
    outs = case.outputs

    def one(o: Any) -> Any:
        return o.loss if o.loss_by == "name" else make_loss(keras, o.loss, dict(o.loss_options))

    if case.loss_form == "single":
        return one(outs[0])
    losses = [one(o) for o in outs]
    if case.loss_form == "list":
        return losses
    return {o.name: loss for o, loss in zip(outs, losses)}


def loss_weights_argument(case: Case) -> Any:
    if case.loss_weights_form == "omitted":
        return None
    if case.loss_weights_form == "scalar":  # one output: the bare number, int or float as the Case has it
        return case.outputs[0].loss_weight
    if case.loss_weights_form == "list":
        return [o.loss_weight for o in case.outputs]
    return {o.name: o.loss_weight for o in case.outputs}


def _cast_float(a: np.ndarray, dtype: str) -> np.ndarray:
    return np.asarray(a, dtype=dtype)


def x_argument(case: Case, rows: slice = slice(None)) -> Any:
    xs = [
        np.asarray(i.data[rows], dtype=np.int32) if i.kind == "int" else _cast_float(i.data[rows], case.dtype)
        for i in case.inputs
    ]
    return xs if len(xs) > 1 else xs[0]


def _target(case: Case, out: Any, rows: slice) -> np.ndarray:
    t = out.target[rows]
    return np.asarray(t, dtype=np.int32) if t.dtype.kind in "iu" else _cast_float(t, case.dtype)


def y_argument(case: Case, rows: slice = slice(None)) -> Any:
    return y_structure(case, targets(case, rows))


def targets(case: Case, rows: slice = slice(None)) -> list[Any]:
    """One target array per output, in model order."""
    return [_target(case, o, rows) for o in case.outputs]


def y_structure(case: Case, ys: list[Any]) -> Any:
    """The targets (one per output, in model order) as the Case hands them to Keras (spec.Y_FORMS):
    one array for one output and a list for several ("auto"), a list ("list"), or a dict keyed
    by output name ("dict")."""
    if case.y_form == "dict":
        return {o.name: y for o, y in zip(case.outputs, ys)}
    if case.y_form == "list" or len(ys) > 1:
        return ys
    return ys[0]


def sample_weight_argument(case: Case, rows: slice = slice(None)) -> Any:
    form = case.sample_weight_form
    if form == "omitted":
        return None
    sws = [None if o.sample_weight is None else _cast_float(o.sample_weight[rows], case.dtype) for o in case.outputs]
    if form == "single":
        return sws[0]
    if form == "list":
        return sws  # None where an output has no weights
    return {o.name: sw for o, sw in zip(case.outputs, sws) if sw is not None}  # its key left out


def map_arrays(convert: Callable[[Any], Any], structure: Any) -> Any:
    """`convert` applied to every array of an argument (one array, or lists, tuples and dicts of
    them), None kept as None: an output without sample weights reaches train_step as None (a
    tf.data element holds None as it is; tf.convert_to_tensor(None) would raise)."""
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {k: map_arrays(convert, v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_arrays(convert, v) for v in structure)
    return convert(structure)


def nested_list(value: Any) -> Any:
    """A numpy array (or tensor with .numpy()) as nested lists of Python floats."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64).tolist()
