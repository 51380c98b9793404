"""Adapter: Keras 2 in TF1 graph mode, where `Model.compile` assembles the total loss once, as a
tensor, in `_prepare_total_loss` (DESIGN.md, "Keras 2 graph-mode training loop").

Serves (harness.impls, chosen by HARNESS_IMPL, read at import time):
- "tf_keras-graph": the tf-keras package (TF_USE_LEGACY_KERAS=1);
  tf_keras/src/engine/training_v1.py Model._prepare_total_loss.
- "tf.keras-graph": tf.keras bundled with TensorFlow 2.12-2.15;
  keras/src/engine/training_v1.py Model._prepare_total_loss.
and lends `GraphCalls` and `graph_flavor` to harness.impls.keras231 (standalone keras 2.3.1:
keras/engine/training.py Model._prepare_total_loss) and harness.impls.keras224 (keras 2.2.4:
inline in keras/engine/training.py Model.compile), which pass their own.

The paths are run by the runner every adapter shares, harness.impls.paths.run_case; what is
graph mode's own is `GraphCalls` (the runner's `Calls` protocol: targets, compile, the feeds of
`model.total_loss`, the logs read from `metrics_names`, predictions) and the gradient hook.

Graph mode: `tf.compat.v1.disable_eager_execution()` runs at import, before any layer exists,
so that `keras.Model(...)` is a training_v1.Model (tf_keras/src/utils/version_utils.py
ModelVersionSelector swaps the base class when not executing eagerly outside functions) and
layers are base_layer_v1.Layer. Every run checks this: the class that defines
`_prepare_total_loss` for the built model must come from the flavor's expected module, or every
path is an error saying so. The message of each result records that module.

Paths (all mode "graph"), each on a model whose weights are re-assigned from the Case and whose
stateful loss metrics are reset first:
- compute_loss: `model.total_loss` (the tensor `_prepare_total_loss` built) and `sum(model.losses)`
  evaluated by one backend function fed the whole batch (the same feeds as the test function:
  inputs + targets + sample weights).
- test_on_batch, train_on_batch (SGD, learning rate 0; `weights_moved`), evaluate and fit (one
  epoch, shuffle False, both with batch_size = case.evaluate_batch_size).
Terms: "output/<name>" from the per-output losses the path returns (the `<name>_loss` entries of
metrics_names / history when there are >= 2 outputs); "regularization" on compute_loss only.

Gradients (results.GradientResult), after the paths: the train function of every Keras 2 graph
implementation (training_v1 / keras 2.x engine/training.py Model._make_train_function) gets its
gradients from `optimizer.get_updates(params=model._collected_trainable_weights,
loss=model.total_loss)` -> `optimizer.get_gradients(loss, params)` -> `K.gradients` (tf_keras
optimizer_v2.py: tf.compat.v1.gradients). The adapter calls that same `get_gradients` and
evaluates the gradients with `model.total_loss` in one backend function fed as the train
function is (the whole batch, learning phase = training). Then a new model is built from the
Case and compiled with SGD(paths.LEARNING_RATE), and one train_on_batch applied: the update is
weights after - before (paths.sgd_update).

Temporal (rank-2) sample weights need `compile(sample_weight_mode="temporal")` in every Keras 2
graph implementation (keras 2.3.1 engine/training_utils.py get_output_sample_weight_and_mode
makes a rank-1 placeholder otherwise; training_v1 ditto via training_utils_v1). The adapter
passes "temporal" for the outputs whose Case sample weight is rank 2, None for the others
(a dict keyed by output name), and None when no output has one; see `sample_weight_mode`.

One process runs cases one after another: `backend.clear_session()` (which resets the default
graph and the session) before each case keeps memory flat. Graph-mode while loops (SimpleRNN)
need `enable_while_loop_gradients` (set at import).
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from harness.impls import build, paths
from harness.impls.paths import installed_versions, to_array, to_float
from harness.results import ImplResult
from harness.spec import Case, sample_weight_kind
from harness.vocabulary import LOSSES

# Feeds of the whole batch for `model.total_loss`: (keras, model, x, y, sample_weight, training)
# -> (placeholders, values), in the order the implementation's own test function (training
# False) or train function (training True: the learning phase fed as train_on_batch feeds it) uses.
Feeds = Callable[..., tuple[list[Any], list[Any]]]


@dataclass(frozen=True)
class GraphCalls(paths.Calls):
    """How the shared runner (harness.impls.paths.run_case) talks to a TF1 graph-mode Keras 2:
    what differs from the eager Model API, and nothing else."""

    keras: Any  # the keras module the model is built with
    tf: Any  # tensorflow (for add_n of model.losses in the model's graph)
    engine_module: str  # the module whose Model.<total_loss_method> must be the one used
    make_optimizer: Callable[[float], Any]  # SGD with this learning rate (0 for the paths)
    feeds: Feeds
    # compile(loss=...) for the Case (default: harness.impls.build.loss_argument, loss classes).
    loss_argument: Callable[[Any, Case], Any] = build.loss_argument
    # Why this implementation cannot run the Case at all, or None (default: a loss class of the
    # Case is missing from keras.losses).
    unsupported_reason: Callable[[Any, Case], str | None] = build.missing_classes
    # The method that assembles the total loss (keras 2.2.4 does it inline in `compile`).
    total_loss_method: str = "_prepare_total_loss"

    # A failed call can leave the graph's functions broken for every later call (see
    # enable_while_loop_gradients): the next path gets a model built anew in a new session, so its
    # verdict does not depend on this one.
    error_breaks_session = True

    def unsupported(self, keras: Any, case: Case) -> str | None:
        reason = self.unsupported_reason(keras, case)
        if reason is None and case.sample_weight_form == "single" and len(case.outputs) > 1:
            # Keras 2 takes one sample-weight array only for a one-output model: keras 2.3.1
            # engine/training_utils.py standardize_sample_or_class_weights, tf_keras
            # engine/training_utils_v1.py standardize_sample_or_class_weights raise TypeError
            # ("The model has multiple outputs, so `sample_weight` should be either a list or a dict").
            return ("Keras 2 accepts a single sample_weight array only for a one-output model "
                    "(training_utils standardize_sample_or_class_weights: list or dict required)")
        return reason

    def targets(self, case: Case) -> Any:
        return keras2_targets(case)

    def check(self, model: Any, case: Case) -> str:
        engine = defining_module(model, self.total_loss_method)
        if engine != self.engine_module:
            raise AssertionError(
                f"model class {type(model).__module__}.{type(model).__name__} takes {self.total_loss_method} "
                f"from {engine}, not {self.engine_module}: graph mode is not in force")
        return (f"model {type(model).__module__}.{type(model).__name__}; total loss from {engine}."
                f"{self.total_loss_method}; sample_weight_mode={sample_weight_mode(case)!r}")

    def compile(self, keras: Any, model: Any, case: Case, mode: paths.Mode, learning_rate: float) -> None:
        model.compile(
            optimizer=self.make_optimizer(learning_rate),
            loss=self.loss_argument(keras, case),
            loss_weights=build.loss_weights_argument(case),
            sample_weight_mode=sample_weight_mode(case),
        )

    def reset(self, model: Any) -> None:
        """The stateful loss metrics emptied: the per-output losses are Mean metrics that
        accumulate until reset_metrics (keras 2.3.1 training.py _prepare_total_loss
        `_output_loss_metrics[i]`, training_v1 `endpoint.output_loss_metric`). The optimizer is
        the legacy SGD without momentum: no slots, and its `iterations` does not enter the update."""
        if hasattr(model, "reset_metrics"):  # keras 2.2.4 has no stateful metrics (nor this method)
            model.reset_metrics()

    def predictions(self, model: Any, x: Any, case: Case) -> dict[str, Any]:
        preds = model.predict(x, batch_size=case.batch_size, verbose=0)
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        return {o.name: to_array(p).tolist() for o, p in zip(case.outputs, preds)}

    def regularization(self, model: Any, x: Any) -> None:
        return None  # reported with compute_loss, from the same backend function (`total_loss`)

    def compute_loss(self, call: Callable[..., Any], model: Any, x: Any, y: Any, sw: Any) -> tuple[float, dict[str, float]]:
        return call(model, x, y, sw)

    def total_loss(self, model: Any, x: Any, y: Any, sw: Any) -> tuple[float, dict[str, float]]:
        """`model.total_loss` and `sum(model.losses)` in one backend function on the whole batch,
        fed as the train function is (learning phase 1: the compute_loss path is the loss a train
        step computes, and BatchNormalization reads the phase)."""
        placeholders, values = self.feeds(self.keras, model, x, y, sw, training=True)
        with model.total_loss.graph.as_default():
            losses = list(model.losses)
            regularization = self.tf.add_n([self.tf.cast(v, model.total_loss.dtype) for v in losses]) if losses else None
        fetches = [model.total_loss] + ([regularization] if regularization is not None else [])
        out = self.keras.backend.function(placeholders, fetches)(values)
        return to_float(out[0]), {"regularization": to_float(out[1]) if regularization is not None else 0.0}

    def logs(self, path: str, model: Any, x: Any, y: Any, sw: Any, batch_size: int,
             class_weight: dict[int, float] | None = None) -> dict[str, Any]:
        """As the eager logs, from the returned list named by metrics_names (`<name>_loss` per
        output when there are >= 2), or the History's lists for fit."""
        cw = paths.class_weight_kwargs(class_weight)
        if path == "test_on_batch":
            values = model.test_on_batch(x, y, sample_weight=sw)
        elif path == "evaluate":
            values = model.evaluate(x, y, sample_weight=sw, batch_size=batch_size, verbose=0)
        elif path == "train_on_batch":
            values = model.train_on_batch(x, y, sample_weight=sw, **cw)
        elif path == "fit":
            return model.fit(x, y, sample_weight=sw, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                             **cw).history
        else:
            raise ValueError(f"unknown path {path!r}")
        return dict(zip(model.metrics_names, np.atleast_1d(values).tolist()))

    def class_weighting(self, keras_module: Any, model: Any, x: Any, y: Any, sw: Any, class_weight: dict) -> Any:
        """The one output's sample weight the train function is fed for `class_weight`: train_on_batch's
        own `_standardize_user_data(x, y, sample_weight, class_weight)` -> standardize_weights (keras
        2.x keras/engine/training_utils.py, training_v1 tf_keras/src/engine/training_utils_v1.py)."""
        _, _, sws = model._standardize_user_data(x, y, sample_weight=sw, class_weight=class_weight)
        return sws[0]

    def gradient(self, model: Any, x: Any, y: Any, sw: Any) -> tuple[float, list[Any]]:
        """The train function's gradients: optimizer.get_gradients of model.total_loss w.r.t.
        model._collected_trainable_weights, evaluated with the loss in one backend function fed as
        the train function is; one per entry of `model.trainable_weights` (paths.Gradient)."""
        placeholders, values = self.feeds(self.keras, model, x, y, sw, training=True)
        weights = list(model._collected_trainable_weights)
        with model.total_loss.graph.as_default():
            grads = model.optimizer.get_gradients(model.total_loss, weights)
            # An Embedding's gradient is an IndexedSlices (applied sparsely): dense here.
            grads = [self.tf.convert_to_tensor(g) for g in grads]
        out = self.keras.backend.function(placeholders, [model.total_loss] + grads)(values)
        by_id = {id(w): g for w, g in zip(weights, out[1:])}
        trainable = list(model.trainable_weights)
        if {id(w) for w in trainable} != set(by_id):
            raise ValueError(f"the train function differentiates {len(by_id)} weights, the model's trainable "
                             f"weights are {len(trainable)} others")
        return out[0], [by_id[id(w)] for w in trainable]


def graph_flavor(calls: GraphCalls, impl: str, gradient_source: str = "keras/engine/training.py Model._make_train_function") -> paths.Flavor:
    """The runner's flavor of a graph-mode implementation: one mode, "graph"; a new model per
    Case (`backend.clear_session()` before each, which resets the default graph and the session,
    keeps memory flat); the SGD step on a new model compiled with SGD(paths.LEARNING_RATE)."""
    mode = paths.Mode("graph")
    how = (f"optimizer.get_gradients(model.total_loss, model._collected_trainable_weights) (K.gradients) in the "
           f"session, fed as the train function (learning phase: training), as {gradient_source} "
           f"-> optimizer.get_updates -> get_gradients")
    return paths.Flavor(impl=impl, keras=calls.keras, modes=(mode,), compute_loss=((mode.name, calls.total_loss),),
                        gradient=calls.gradient, gradient_how=how, update_mode=mode.name, reuse="case", calls=calls,
                        class_weighting=calls.class_weighting)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def sample_weight_mode(case: Case) -> Any:
    """`compile(sample_weight_mode=...)` for the Case: None unless some output has (batch, time)
    or (batch, time, 1) sample weights (spec.sample_weight_kind "timestep", "timestep_trailing_axis":
    a user who weighs steps says so; standardize_weights then refuses the second, rule
    timestep_weight_trailing_axis); then "temporal" for those outputs and
    None for the others, keyed by output name (keras 2.3.1 training_utils.prepare_sample_weights
    and training_v1 accept a dict naming every output). A (batch, 1) column gets None: it is a
    weight per sample, which standardize_weights then refuses (rule sample_weight_column)."""
    temporal = {o.name: sample_weight_kind(case, o) in ("timestep", "timestep_trailing_axis") for o in case.outputs}
    if not any(temporal.values()):
        return None
    if len(case.outputs) == 1:
        return "temporal"
    return {name: ("temporal" if t else None) for name, t in temporal.items()}


def defining_module(model: Any, method: str = "_prepare_total_loss") -> str:
    """The module defining the `method` the model uses (e.g. 'tf_keras.src.engine.training_v1'
    for `_prepare_total_loss`)."""
    for klass in type(model).__mro__:
        if method in vars(klass):
            return inspect.getmodule(klass).__name__  # type: ignore[union-attr]
    return "(none)"


def keras2_targets(case: Case) -> Any:
    """build.y_argument, with a trailing axis of 1 on sparse class-id targets of rank >= 2.

    Keras 2 expects a sparse target of shape `output_shape[:-1] + (1,)` (for
    SparseCategoricalCrossentropy and the wrapped sparse_categorical_crossentropy: keras 2.3.1
    engine/training.py _standardize_user_data; tf_keras engine/training_v1.py
    _TrainingEndpoint.feed_output_shape), and adds that axis itself only to rank-1 arrays; with
    a (batch, time) target, temporal sample weights are refused ("restricted to outputs that are
    at least 3D", training_utils(_v1).standardize_weights, which looks at the target's rank).
    Users passed (batch, time, 1). The loss flattens the target either way.
    """
    adapted = [np.expand_dims(y, -1) if LOSSES[o.loss].target_kind == "sparse" and y.ndim >= 2 else y
               for o, y in zip(case.outputs, build.targets(case))]
    return build.y_structure(case, adapted)



# --------------------------------------------------------------------------------------
# tf_keras-graph and tf.keras-graph
# --------------------------------------------------------------------------------------


def enable_while_loop_gradients(tf: Any) -> None:
    """In TF1 graph mode on TF 2.x, the gradient of a while_v2 loop (SimpleRNN) needs the loop's
    intermediates as outputs; without this, the first train step fails with "Connecting to
    invalid output N of source node .../while" and the broken nodes then poison every later
    session run in the graph. Only what the graph exports changes, not a value."""
    tf.compat.v1.experimental.output_all_intermediates(True)


def standalone_feeds(keras_module: Any, model: Any, x: Any, y: Any, sw: Any,
                     training: bool = False) -> tuple[list[Any], list[Any]]:
    """Placeholders and values of standalone keras 2.2.4 / 2.3.1, as their
    keras/engine/training.py test_on_batch + _make_test_function build them (training: as
    train_on_batch + _make_train_function, learning phase 1)."""
    xs, ys, sws = model._standardize_user_data(x, y, sample_weight=sw)
    placeholders = list(model._feed_inputs) + list(model._feed_targets) + list(model._feed_sample_weights)
    values = list(xs) + list(ys) + list(sws)
    if model._uses_dynamic_learning_phase():
        placeholders.append(keras_module.backend.learning_phase())
        values.append(1 if training else 0)
    return placeholders, values


def _feeds_training_v1(keras: Any, model: Any, x: Any, y: Any, sw: Any,
                       training: bool = False) -> tuple[list[Any], list[Any]]:
    """As training_v1.Model.test_on_batch: standardize, update the sample-weight modes (this
    recompiles the loss sub-graph when they change: _recompile_weights_loss_and_weighted_metrics),
    then feed `_feed_inputs + _feed_targets + _feed_sample_weights`. The learning phase is
    not fed: it is a placeholder_with_default(False) (tf_keras/src/backend.py
    symbolic_learning_phase), i.e. test mode (BatchNormalization reads it: moving statistics).
    training: as train_on_batch, which feeds `True` to the symbolic learning phase."""
    xs, ys, sws = model._standardize_user_data(x, y, sample_weight=sw)
    values = list(xs) + list(ys or []) + [s for s in (sws or []) if s is not None]
    model._update_sample_weight_modes(sample_weights=sws)
    model._recompile_weights_loss_and_weighted_metrics()
    placeholders = list(model._feed_inputs) + list(model._feed_targets) + list(model._feed_sample_weights)
    # training_v1's own `backend` module (the public keras.backend lacks symbolic_learning_phase).
    backend = sys.modules[defining_module(model)].backend
    if training and not isinstance(backend.symbolic_learning_phase(), int):
        placeholders.append(backend.symbolic_learning_phase())
        values.append(True)
    return placeholders, values


def _load_default_flavor() -> paths.Flavor:
    impl = os.environ.get("HARNESS_IMPL", "")
    if impl not in ("tf_keras-graph", "tf.keras-graph"):
        raise ImportError(
            f"harness.impls.keras2_graph serves 'tf_keras-graph' and 'tf.keras-graph'; HARNESS_IMPL={impl!r}"
        )
    import tensorflow as tf

    # Before any layer is built (and before keras is imported): Model becomes training_v1.Model.
    tf.compat.v1.disable_eager_execution()
    enable_while_loop_gradients(tf)
    if impl == "tf_keras-graph":
        import tf_keras as keras

        engine = "tf_keras.src.engine.training_v1"
    else:
        keras_version = installed_versions("tensorflow")["keras"]
        if not keras_version.startswith("2."):
            raise ImportError(f"tf.keras-graph needs the Keras 2 bundled with TF 2.12-2.15; keras is {keras_version!r}")
        keras = tf.keras
        engine = "keras.src.engine.training_v1"

    def sgd(learning_rate: float) -> Any:
        # The legacy (OptimizerV2) SGD: the only kind training_v1 drives in graph mode.
        return keras.optimizers.legacy.SGD(learning_rate=learning_rate)

    source = engine.replace(".", "/").replace("training_v1", "training_v1.py")
    calls = GraphCalls(keras=keras, tf=tf, engine_module=engine, make_optimizer=sgd, feeds=_feeds_training_v1)
    return graph_flavor(calls, impl, gradient_source=f"{source} Model._make_train_function")


if os.environ.get("HARNESS_IMPL", "") in ("tf_keras-graph", "tf.keras-graph"):
    FLAVOR: paths.Flavor | None = _load_default_flavor()
else:  # imported by harness.impls.keras231 for its runner: no framework is loaded here
    FLAVOR = None


def versions() -> dict[str, str]:
    return installed_versions("tensorflow")


def run(case: Case) -> ImplResult:
    if FLAVOR is None:
        raise RuntimeError("set HARNESS_IMPL to 'tf_keras-graph' or 'tf.keras-graph' before importing this module")
    return paths.run_case(FLAVOR, case)
