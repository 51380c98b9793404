"""Adapter: Keras 3 on one backend (KERAS_BACKEND, set by the worker before this import).

Serves "keras3-tensorflow", "keras3-jax", "keras3-torch" and "keras3-numpy" (harness.impls).
The total loss is assembled by keras/src/trainers/trainer.py `Trainer.compute_loss`:
`CompileLoss(y, y_pred, sample_weight)` (keras/src/trainers/compile_utils.py, CompileLoss.call)
plus `_aggregate_additional_loss(loss)` for each of `self.losses`.

Paths and modes (harness.impls.paths does the running):
- compute_loss/eager: `model.compute_loss(x, y, y_pred, sample_weight, training=True)`, the
  3.15 signature (`training` is ignored by the default implementation: "del training"); without
  `training` before 3.4 (API_SINCE).
- test_on_batch, train_on_batch, evaluate, fit in modes
  "eager" (run_eagerly=True), "compiled" (run_eagerly=False, jit_compile=False) and
  "jit" (run_eagerly=False, jit_compile=True) where the backend has it:
  tensorflow: eager, compiled (tf.function), jit (XLA);
  jax: eager, compiled (run_eagerly=False, jit_compile=True: the default "auto" resolves to
       True on jax, and a jitted step is all a non-eager jax step can be: "jit" is that same
       program, so it is not listed twice);
  torch: eager, compiled; jit (torch.compile via jit_compile=True) is reported unsupported:
       dynamo compiles every model anew: measured (2 cores, busy machine) 163 s for the first
       test_on_batch of the motivating case, 65 s train_on_batch, 42 s evaluate; the numbers
       it gave equalled the compiled mode's (3.5099547 / 3.5881283 on a list-weights variant);
  numpy: eager only, evaluation paths only: keras/src/backend/numpy/trainer.py
       NumpyTrainer.fit/train_on_batch raise NotImplementedError ("fit not implemented for
       NumPy backend."), and its make_test_function runs test_step in Python whatever
       run_eagerly says, so "compiled" is the same program as "eager".
"""

from __future__ import annotations

import os
from typing import Any

import keras

from harness.impls import build, class_weighting, paths
from harness.results import ImplResult
from harness.spec import Case

BACKEND = keras.backend.backend()
IMPL = os.environ.get("HARNESS_IMPL") or f"keras3-{BACKEND}"
if IMPL != f"keras3-{BACKEND}":
    raise ImportError(f"implementation {IMPL!r} asked for, but Keras 3 runs on backend {BACKEND!r} "
                      f"(set KERAS_BACKEND before the first import of keras)")

EAGER = paths.Mode("eager", {"run_eagerly": True, "jit_compile": False})
COMPILED = paths.Mode("compiled", {"run_eagerly": False, "jit_compile": False})
JIT = paths.Mode("jit", {"run_eagerly": False, "jit_compile": True})

MODES: dict[str, tuple[paths.Mode, ...]] = {
    "tensorflow": (EAGER, COMPILED, JIT),
    # jax: a non-eager step is jax.jit-ed exactly when jit_compile is true (jax/trainer.py
    # make_train_function: `if not self.run_eagerly and self.jit_compile`); "auto" resolves to
    # True on jax (Trainer._resolve_auto_jit_compile), so "compiled" is what users get.
    "jax": (EAGER, paths.Mode("compiled", {"run_eagerly": False, "jit_compile": True})),
    "torch": (EAGER, COMPILED, paths.Mode("jit", unsupported=(
        "not run: jit_compile=True means torch.compile (dynamo), which compiles every new model "
        "anew: measured 40-160 s per path for the motivating case on this 2-core CPU"))),
    "numpy": (EAGER, paths.Mode("compiled", unsupported=(
        "the numpy backend has no compiled step: NumpyTrainer.make_test_function runs test_step "
        "in Python whatever run_eagerly says (same program as eager)"))),
}

TRAIN_UNSUPPORTED = {
    "numpy": "the numpy backend cannot train: NumpyTrainer.fit / train_on_batch raise "
    "NotImplementedError (keras/src/backend/numpy/trainer.py)",
}


# --------------------------------------------------------------------------------------
# The API this adapter calls, where it changed between Keras 3 releases: the first release with
# the form of 3.15 (the adapter's default), read in the released wheels (keras-3.X.Y-py3-none-
# any.whl: the latest patch of every minor 3.0-3.15, and 3.2.0 and 3.4.0 where a change fell).
# --------------------------------------------------------------------------------------

API_SINCE: dict[str, tuple[tuple[int, int], str]] = {
    "compute_loss_training": ((3, 4), (
        "keras/src/trainers/trainer.py Trainer.compute_loss: `training=True` from 3.4.0 (3.0.5, 3.1.1: "
        "`(x, y, y_pred, sample_weight, allow_empty=False)`; 3.2.1, 3.3.3: `(x, y, y_pred, sample_weight)`); "
        "from 3.4.0 every train_step calls it through `Trainer._compute_loss(..., training=True)`, before "
        "as `self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)` "
        "(keras/src/backend/tensorflow/trainer.py TensorFlowTrainer.train_step)")),
    "jax_metrics_variables": ((3, 2), (
        "keras/src/backend/jax/trainer.py JAXTrainer.compute_loss_and_updates: the positional "
        "`metrics_variables` after `non_trainable_variables` from 3.2.0 (3.0.5, 3.1.1: `(trainable_variables, "
        "non_trainable_variables, x, y, sample_weight, training=False, optimizer_variables=None)`)")),
}


def release(version: str) -> tuple[int, int]:
    """(major, minor) of a version string: "3.0.5" -> (3, 0), "3.16.0.dev2026" -> (3, 16)."""
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def api(installed: str) -> dict[str, bool]:
    """Which API_SINCE entries the installed Keras has."""
    return {name: release(installed) >= since for name, (since, _source) in API_SINCE.items()}


API = api(keras.__version__)


def _compute_loss(model: Any, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
    """`model.compute_loss`, as the installed release's train_step calls it (API_SINCE)."""
    training = {"training": True} if API["compute_loss_training"] else {}
    return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, **training)


# --------------------------------------------------------------------------------------
# Gradients: each backend's Trainer.train_step, up to the gradients it hands the optimizer.
# `model.compute_loss(..., training=True)` is what `Trainer._compute_loss` (the wrapper every
# train_step calls, keras/src/trainers/trainer.py) calls when compute_loss takes `training`;
# `_compute_loss` above calls it as the installed release does (API_SINCE).
# --------------------------------------------------------------------------------------


def _scale_loss(model: Any, loss: Any) -> Any:
    # Every train_step: `if self.optimizer is not None: loss = self.optimizer.scale_loss(loss)`
    # (keras/src/optimizers/base_optimizer.py scale_loss: loss * loss_scale_factor, if set).
    return model.optimizer.scale_loss(loss) if model.optimizer is not None else loss


def _gradient_tensorflow(model: Any, x: Any, y: Any, sample_weight: Any) -> tuple[Any, list[Any]]:
    """keras/src/backend/tensorflow/trainer.py TensorFlowTrainer.train_step."""
    import tensorflow as tf

    # The data adapter hands train_step tensors.
    x, y, sample_weight = build.map_arrays(tf.convert_to_tensor, (x, y, sample_weight))
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = _compute_loss(model, x, y, y_pred, sample_weight)
        loss = _scale_loss(model, loss)
    grads = tape.gradient(loss, model.trainable_weights)
    # An Embedding's gradient is a tf.IndexedSlices (the optimizer applies it sparsely): dense here.
    return loss, [None if g is None else tf.convert_to_tensor(g) for g in grads]


def _gradient_jax(model: Any, x: Any, y: Any, sample_weight: Any) -> tuple[Any, list[Any]]:
    """keras/src/backend/jax/trainer.py JAXTrainer.train_step, through harness.impls.jax_step (the
    DataParallel run's too); its positional arguments as the installed release takes them (API_SINCE)."""
    import jax

    from harness.impls import jax_step

    data = jax.tree_util.tree_map(jax.device_put, (x, y, sample_weight))  # _distribute_data, no distribution
    return jax_step.value_and_grad(model, data, metrics_variables=API["jax_metrics_variables"])


def _gradient_torch(model: Any, x: Any, y: Any, sample_weight: Any) -> tuple[Any, list[Any]]:
    """keras/src/backend/torch/trainer.py TorchTrainer.train_step."""
    y_pred = model(x, training=True)
    model.zero_grad()  # torch.nn.Module.zero_grad: no leftover .grad from an earlier step
    loss = _compute_loss(model, x, y, y_pred, sample_weight)
    loss = _scale_loss(model, loss)
    loss.backward()
    grads = [v.value.grad for v in model.trainable_weights]
    return loss, [None if g is None else g.detach().clone() for g in grads]


GRADIENTS: dict[str, tuple[paths.Gradient, str]] = {
    "tensorflow": (_gradient_tensorflow, "tf.GradientTape around model(x, training=True) + compute_loss "
                   "(+ optimizer.scale_loss), tape.gradient w.r.t. model.trainable_weights, as "
                   "keras/src/backend/tensorflow/trainer.py TensorFlowTrainer.train_step"),
    "jax": (_gradient_jax, "jax.value_and_grad(model.compute_loss_and_updates, has_aux=True) on the "
            "trainable/non-trainable/metrics variables (not jitted), as keras/src/backend/jax/trainer.py "
            "JAXTrainer.train_step"),
    "torch": (_gradient_torch, "model(x, training=True), zero_grad, compute_loss (+ optimizer.scale_loss), "
              "loss.backward(), .grad of each trainable variable, as keras/src/backend/torch/trainer.py "
              "TorchTrainer.train_step"),
}
GRADIENT_UNSUPPORTED = {
    "numpy": "the numpy backend cannot train: NumpyTrainer (keras/src/backend/numpy/trainer.py) defines "
    "no train_step (only test_step, predict_step) and its fit / train_on_batch raise NotImplementedError",
}


FLAVOR = paths.Flavor(
    impl=IMPL,
    keras=keras,
    modes=MODES[BACKEND],
    compute_loss=(("eager", _compute_loss),),
    train_unsupported=TRAIN_UNSUPPORTED.get(BACKEND),
    gradient=GRADIENTS.get(BACKEND, (None, ""))[0],
    gradient_how=GRADIENTS.get(BACKEND, (None, "no gradient: see reason"))[1],
    gradient_unsupported=GRADIENT_UNSUPPORTED.get(BACKEND),
    update_mode="compiled",
    class_weighting=class_weighting.keras3,
)


def versions() -> dict[str, str]:
    return paths.installed_versions(BACKEND)


def run(case: Case) -> ImplResult:
    return paths.run_case(FLAVOR, case)


def keras_seconds() -> float:
    """Seconds inside Keras calls during the last `run` (harness.bench's overhead figure)."""
    return paths.CLOCK.seconds
