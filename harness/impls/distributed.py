"""Adapter: one Case under a distribution strategy over 2 replicas (issue 10).

Serves (harness.impls, family "distributed"; HARNESS_IMPL chooses, set before this import):
- "tf_keras-mirrored": tf_keras under tf.distribute.MirroredStrategy over 2 logical CPUs;
- "keras3-tensorflow-mirrored": Keras 3 (tensorflow backend) under MirroredStrategy, same CPUs;
- "keras3-jax-dataparallel": Keras 3 (jax backend) under keras.distribution.DataParallel over 2
  host devices (XLA_FLAGS=--xla_force_host_platform_device_count=2, set by the registry).

For TensorFlow the one CPU is split into 2 logical devices at import, before any op
(tf.config.set_logical_device_configuration refuses once the runtime is initialised).

What it reports for a Case (the rest of the running is harness.impls.paths):
- `paths`: the REPORTED loss of test_on_batch, train_on_batch (SGD, learning rate 0), evaluate
  and fit in the default non-eager mode only ("function" for tf_keras, "compiled" for Keras 3),
  run by paths.run_case with the model built and compiled inside strategy.scope() (TF) or after
  keras.distribution.set_distribution (jax); compute_loss is "unsupported" (a direct call under
  the strategy's scope runs in cross-replica context: it is no replica's loss; the replicas'
  losses are in `distribution`).
- `distribution`: how the batch of one train_on_batch was split (rows each replica saw, observed)
  and the loss each replica differentiates (`_tf_replica_step` / `_jax_global_step`). The batch
  is fed as train_on_batch feeds it: tf_keras splits it (5 rows -> 3 + 2); Keras 3 on
  TensorFlow hands every replica the WHOLE batch (`_tf_feed`); jax
  shards it and refuses a batch that does not divide by the devices.
- `gradients`: the gradients the optimizer receives (the replicas' tape gradients summed, as the
  optimizer's all-reduce does; jax: one global value_and_grad) and the update of one
  train_on_batch with SGD(learning_rate=LEARNING_RATE).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import numpy as np

from harness.impls import build, class_weighting, paths
from harness.results import DistributionResult, GradientResult, ImplResult
from harness.spec import Case

IMPL = os.environ.get("HARNESS_IMPL") or ""
REPLICAS = 2

if IMPL in ("tf_keras-mirrored", "keras3-tensorflow-mirrored"):
    import tensorflow as tf

    # Two logical CPUs from the one physical CPU, before any op initialises the runtime.
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * REPLICAS)
    if IMPL == "tf_keras-mirrored":
        import tf_keras as keras

        MODE = paths.Mode("function", {"run_eagerly": False, "jit_compile": False})
        BACKEND = "tensorflow"
    else:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ImportError(f"{IMPL} needs KERAS_BACKEND=tensorflow, Keras runs on {keras.backend.backend()!r}")
        MODE = paths.Mode("compiled", {"run_eagerly": False, "jit_compile": False})
        BACKEND = "tensorflow"
    STRATEGY_NAME = "tf.distribute.MirroredStrategy"
    STRATEGY: Any = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")][:REPLICAS])
    if STRATEGY.num_replicas_in_sync != REPLICAS:
        raise ImportError(f"MirroredStrategy has {STRATEGY.num_replicas_in_sync} replicas, {REPLICAS} wanted")
elif IMPL == "keras3-jax-dataparallel":
    import jax
    import keras

    if keras.backend.backend() != "jax":
        raise ImportError(f"{IMPL} needs KERAS_BACKEND=jax, Keras runs on {keras.backend.backend()!r}")
    if len(jax.devices()) < REPLICAS:
        raise ImportError(f"jax sees {len(jax.devices())} device(s); XLA_FLAGS="
                          f"--xla_force_host_platform_device_count={REPLICAS} must be set before jax is imported")
    # jax/trainer.py make_train_function: a non-eager step is jitted when jit_compile (auto -> True).
    MODE = paths.Mode("compiled", {"run_eagerly": False, "jit_compile": True})
    BACKEND = "jax"
    STRATEGY_NAME = "keras.distribution.DataParallel"
    STRATEGY = keras.distribution.DataParallel(devices=jax.devices()[:REPLICAS])
    keras.distribution.set_distribution(STRATEGY)
else:
    raise ImportError(f"harness.impls.distributed serves tf_keras-mirrored, keras3-tensorflow-mirrored and "
                      f"keras3-jax-dataparallel, not {IMPL!r}")

COMPUTE_LOSS_UNSUPPORTED = (
    "not run under a strategy: a direct model.compute_loss call in the strategy's scope runs in "
    "cross-replica context, which is no replica's loss; see distribution.replica_losses")


def versions() -> dict[str, str]:
    return paths.installed_versions(BACKEND)


def keras_seconds() -> float:
    return paths.CLOCK.seconds


# --------------------------------------------------------------------------------------
# The flavour: paths.run_case does the running, with a new model per Case (`begin` clears the
# session, outside the strategy's scope), every call in `_scope`, `_distributed_step` in place
# of the gradient hook and the SGD step on a new model (reuse "case": paths.sgd_update)
# --------------------------------------------------------------------------------------


def run(case: Case) -> ImplResult:
    return paths.run_case(FLAVOR, case)


@contextlib.contextmanager
def _scope() -> Iterator[None]:
    """TF: the model is built and compiled, and every path runs, inside strategy.scope(). jax:
    clear_session replaces Keras's global state, the distribution with it
    (keras/src/backend/common/global_state.py clear_session; distribution_lib.set_distribution),
    so it is set again for every Case."""
    if BACKEND == "jax":
        keras.distribution.set_distribution(STRATEGY)
        yield
    else:
        with STRATEGY.scope():
            yield


def _distributed_step(case: Case, x: Any, y: Any, sw: Any) -> tuple[DistributionResult, GradientResult]:
    """Two stages, each failing on its own: placing the batch on the replicas (the split; a
    refusal, e.g. DataParallel and an odd batch, is split [] as the reference writes it), then
    the replicas' loss and gradients (an error there keeps the observed split)."""
    try:
        placed, split = (_tf_place if BACKEND == "tensorflow" else _jax_place)(x, y, sw)
    except Exception as exc:
        err = paths.error_result("distribution", MODE.name, exc)
        message = f"{err.error_type}: {err.error_message}"
        return (DistributionResult(STRATEGY_NAME, REPLICAS, split=[], notes=f"the batch was refused: {message}"),
                GradientResult("error", how=_HOW[BACKEND], error_type=err.error_type, error_message=err.error_message))
    try:
        model = _fresh_model(case, learning_rate=0.0)
        step = _tf_replica_step if BACKEND == "tensorflow" else _jax_global_step
        return step(model, placed, split)
    except Exception as exc:
        err = paths.error_result("distribution", MODE.name, exc)
        return (DistributionResult(STRATEGY_NAME, REPLICAS, split=split,
                                   notes=f"the step raised: {err.error_type}: {err.error_message}"),
                GradientResult("error", how=_HOW[BACKEND], error_type=err.error_type, error_message=err.error_message))


def _fresh_model(case: Case, learning_rate: float) -> Any:
    """The case's model built and compiled (SGD at `learning_rate`) in the current scope."""
    build.set_float_dtype(keras, case.dtype)
    model = build.build_model(keras, case)
    paths.EAGER.compile(keras, model, case, MODE, learning_rate)  # as the runner compiles for MODE
    return model


_HOW = {
    "tensorflow": "strategy.run of train_step's forward pass and loss (y_pred = model(x, training=True); "
                  "loss = compute_loss(...), then optimizer.scale_loss for Keras 3) under tf.GradientTape per "
                  "replica; the replicas' gradients summed, as the optimizer's all-reduce SUM does",
    "jax": "jax.value_and_grad(model.compute_loss_and_updates) on the batch sharded by "
           "keras.distribution.DataParallel (jax/trainer.py _distribute_data): one global program",
}


FLAVOR = paths.Flavor(impl=IMPL, keras=keras, modes=(MODE,), compute_loss=((MODE.name, COMPUTE_LOSS_UNSUPPORTED),),
                      gradient_how=_HOW[BACKEND], update_mode=MODE.name, reuse="case", scope=_scope,
                      distribute=_distributed_step,
                      class_weighting=class_weighting.tf_keras if IMPL == "tf_keras-mirrored" else class_weighting.keras3)


# --------------------------------------------------------------------------------------
# TensorFlow: the replicas' losses and gradients
# --------------------------------------------------------------------------------------


def _tf_loss(model: Any, x: Any, y: Any, y_pred: Any, sw: Any) -> Any:
    """The loss train_step differentiates.

    tf_keras/src/engine/training.py Model.train_step: `loss = self.compute_loss(x, y, y_pred,
    sample_weight)`; the optimizer's minimize differentiates it as is.
    keras/src/backend/tensorflow/trainer.py TensorFlowTrainer.train_step:
    `loss = self._compute_loss(..., training=True)`, then `loss = self.optimizer.scale_loss(loss)`.
    """
    if IMPL == "tf_keras-mirrored":
        return model.compute_loss(x, y, y_pred, sw)
    loss = model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=True)
    return model.optimizer.scale_loss(loss)


def _unpack(data: tuple) -> tuple[Any, Any, Any]:
    return (data[0], data[1], data[2] if len(data) > 2 else None)


def _relist(structure: Any) -> Any:
    """A tuple (tf.data's form of a list) back to the Case's list form."""
    return list(structure) if isinstance(structure, tuple) else structure


def _first_rows(x: Any) -> Any:
    return tf.shape(tf.nest.flatten(x)[0])[0]


def _tf_feed(data: tuple) -> Callable[[], Any]:
    """What train_on_batch hands its step function, fresh at each call.

    tf_keras: an iterator over the batch split among replicas. tf_keras/src/engine/training.py
    Model.train_on_batch -> tf_keras/src/engine/data_adapter.py single_batch_iterator (called here
    as is): a dataset of the one batch (from_tensors) through
    strategy.experimental_distribute_dataset, which splits it (observed: 5 rows -> 3 + 2).
    Keras 3: the arrays, NOT split. keras/src/backend/tensorflow/trainer.py
    TensorFlowTrainer.train_on_batch yields them as they are (`def data(): yield (x, y,
    sample_weight)`), and TensorFlowTrainer._make_function's one_step_on_data calls
    `strategy.run(step_function, args=(data,))` on them: every replica receives, and computes on,
    the whole batch (fit and evaluate go through TFEpochIterator, which distributes the dataset)."""
    if IMPL == "keras3-tensorflow-mirrored":
        tensors = build.map_arrays(tf.convert_to_tensor, data)
        return lambda: tensors
    from tf_keras.src.engine import data_adapter

    return lambda: data_adapter.single_batch_iterator(STRATEGY, *data)


def _tf_run(replica_fn: Callable[[Any], Any], feed: Callable[[], Any]) -> Any:
    """strategy.run(replica_fn) on the one batch of `feed()`, inside a tf.function, as the train
    function runs it. tf_keras advances the iterator inside the function (tf_keras/src/engine/
    training.py Model.make_train_function: step_function's `data = next(iterator)`), so the
    replicas' batch dimension is dynamic: a replica without rows then runs the model on a
    (0, ...) tensor at run time, where a static 0 would fail at trace time (e.g. in
    GlobalAveragePooling1D's mask handling)."""
    def on_batch(batch: Any) -> Any:
        return STRATEGY.run(replica_fn, args=(batch,))

    def on_iterator(iterator: Any) -> Any:
        return STRATEGY.run(replica_fn, args=(next(iterator),))

    # Named functions, not lambdas: autograph's conversion of a lambda closing over another lambda
    # failed with "NameError: name 'replica_fn' is not defined" in long-running workers.
    step = on_batch if IMPL == "keras3-tensorflow-mirrored" else on_iterator
    return tf.function(step)(feed())


def _tf_place(x: Any, y: Any, sw: Any) -> tuple[Callable[[], Any], list[int]]:
    """The feed of train_on_batch's batch (`_tf_feed`), and the rows each replica receives
    (observed: a strategy.run that returns the first input's row count)."""
    feed = _tf_feed((x, y) if sw is None else (x, y, sw))
    def rows_of(data: tuple) -> Any:
        return _first_rows(data[0])

    rows = _tf_run(rows_of, feed)
    return feed, [int(paths.to_float(v)) for v in STRATEGY.experimental_local_results(rows)]


def _tf_replica_step(model: Any, feed: Callable[[], Any], split: list[int]) -> tuple[DistributionResult, GradientResult]:
    """strategy.run of train_step's loss under a tape on train_on_batch's batch (`_tf_run`). Per
    replica: its loss and its gradients (read with experimental_local_results), so that `updates`
    (one train_on_batch) is -learning_rate times the summed `gradients`.

    Gradients reach the optimizer summed over replicas: tf_keras/src/optimizers/optimizer.py
    Optimizer.apply_gradients -> aggregate_gradients -> tf_keras/src/optimizers/utils.py
    all_reduce_sum_gradients; keras/src/backend/tensorflow/optimizer.py
    TFOptimizer._backend_update_step -> _all_reduce_sum_gradients (ReduceOp.SUM).
    """
    named = paths.trainable_keys(model)
    variables = [v for _, v in named]

    def replica_fn(batch: tuple) -> tuple:
        bx, by, bsw = _unpack(batch)
        bx, by, bsw = _relist(bx), _relist(by), _relist(bsw)
        with tf.GradientTape() as tape:
            y_pred = model(bx, training=True)
            loss = _tf_loss(model, bx, by, y_pred, bsw)
        grads = tape.gradient(loss, variables)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(grads, variables)]
        return loss, grads

    loss, grads = _tf_run(replica_fn, feed)
    losses = [paths.to_float(v) for v in STRATEGY.experimental_local_results(loss)]
    summed = {k: sum(paths.to_array(r) for r in STRATEGY.experimental_local_results(g)).tolist()
              for (k, _), g in zip(named, grads)}
    dist = DistributionResult(STRATEGY_NAME, REPLICAS, split=split, replica_losses=losses)
    grad = GradientResult("ok", how=_HOW["tensorflow"], loss=float(sum(losses)), gradients=summed)
    return dist, grad


# --------------------------------------------------------------------------------------
# JAX: one global program over sharded data
# --------------------------------------------------------------------------------------


def _jax_place(x: Any, y: Any, sw: Any) -> tuple[Any, list[int]]:
    """The batch placed as JAXTrainer places it (keras/src/backend/jax/trainer.py _distribute_data:
    jax/distribution_lib.py distribute_data_input, jax.make_array_from_process_local_data with the
    DataParallel batch layout), and the rows of each device's shard (observed)."""
    from keras.src.backend.jax.trainer import _distribute_data

    placed = _distribute_data((x, y, sw))
    first = jax.tree_util.tree_leaves(placed[0])[0]
    shards = sorted(first.addressable_shards, key=lambda s: s.index[0].start or 0)
    return placed, [int(s.data.shape[0]) for s in shards]


def _jax_global_step(model: Any, placed: Any, split: list[int]) -> tuple[DistributionResult, GradientResult]:
    """keras/src/backend/jax/trainer.py JAXTrainer.train_step: `jax.value_and_grad(
    self.compute_loss_and_updates, has_aux=True)` on the placed batch (`_jax_place`). The loss is
    one global program over the sharded batch: there is no per-replica loss, and XLA's
    partitioner inserts the gradient all-reduce itself."""
    from harness.impls import jax_step

    named = paths.trainable_keys(model)
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    loss, grads = jax_step.value_and_grad(model, placed)  # the adapter's step too (harness.impls.keras3)
    gradients = {k: np.asarray(grads[position[id(v)]], dtype=np.float64).tolist() for k, v in named}
    value = paths.to_float(loss)
    dist = DistributionResult(STRATEGY_NAME, REPLICAS, split=split, replica_losses=[value],
                              notes="one global loss: DataParallel jits one program over the sharded batch "
                                    "(no per-replica loss, no scale_loss_for_distribution: it acts on "
                                    "tf.distribute only, keras/src/losses/loss.py)")
    return dist, GradientResult("ok", how=_HOW["jax"], loss=value, gradients=gradients)
