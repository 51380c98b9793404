"""Adapter: Keras 2 in eager / tf.function mode, as the tf-keras package or as bundled tf.keras.

Serves "tf_keras" (the `tf_keras` package, 2.14-2.21) and "tf.keras" (the `tf.keras` bundled
with TensorFlow 2.12-2.15, i.e. the `keras` 2.12-2.15 package); HARNESS_IMPL, set by the worker
before this import, chooses the module. The total loss is assembled by
`Model.train_step`/`test_step` -> `compile_utils.LossesContainer.__call__(y, y_pred,
sample_weight, regularization_losses=self.losses)` (tf_keras/src/engine/compile_utils.py and
keras/src/engine/compile_utils.py in TF 2.15).

Paths and modes (harness.impls.paths does the running):
- compute_loss/eager: `model.compute_loss(x, y, y_pred, sample_weight)`. The brief also asked
  for `model.compiled_loss(y, y_pred, sample_weight, regularization_losses=model.losses)` if it
  differs: it does not, in either version: `Model.compute_loss` is exactly that call
  (tf_keras/src/engine/training.py and keras/src/engine/training.py of TF 2.15, Model.compute_loss:
  `return self.compiled_loss(y, y_pred, sample_weight, regularization_losses=self.losses)`),
  so it is not reported twice.
- test_on_batch, train_on_batch, evaluate, fit in modes "eager" (run_eagerly=True),
  "function" (run_eagerly=False, jit_compile=False: tf.function) and "jit"
  (run_eagerly=False, jit_compile=True: XLA).
"""

from __future__ import annotations

import os
from typing import Any

from harness.impls import build, class_weighting, paths
from harness.results import ImplResult
from harness.spec import Case

IMPL = os.environ.get("HARNESS_IMPL") or "tf_keras"

if IMPL == "tf.keras":
    import tensorflow as tf

    if not tf.__version__.startswith(("2.12.", "2.13.", "2.14.", "2.15.")):
        raise ImportError(f"tf.keras of TensorFlow {tf.__version__} is not Keras 2 (Keras 2 was bundled "
                          "with TensorFlow 2.12-2.15); use the tf_keras implementation")
    keras: Any = tf.keras
elif IMPL == "tf_keras":
    import tf_keras as keras
else:
    raise ImportError(f"harness.impls.tf_keras serves tf_keras and tf.keras, not {IMPL!r}")

MODES = (
    paths.Mode("eager", {"run_eagerly": True}),
    paths.Mode("function", {"run_eagerly": False, "jit_compile": False}),
    paths.Mode("jit", {"run_eagerly": False, "jit_compile": True}),
)


def _as_tensors(structure: Any) -> Any:
    # train_step receives tensors from the data adapter; LossesContainer needs them
    # (compile_utils.match_dtype_and_rank reads `.shape.rank`), so convert as the adapter does.
    import tensorflow as tf

    return build.map_arrays(tf.convert_to_tensor, structure)


def _compute_loss(model: Any, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
    return model.compute_loss(x=_as_tensors(x), y=_as_tensors(y), y_pred=y_pred, sample_weight=_as_tensors(sample_weight))


def _gradient(model: Any, x: Any, y: Any, sample_weight: Any) -> tuple[Any, list[Any]]:
    """tf_keras/src/engine/training.py (keras/src/engine/training.py in TF 2.15) Model.train_step:
    `with tf.GradientTape() as tape: y_pred = self(x, training=True); loss = self.compute_loss(...)`,
    then `optimizer.minimize(loss, self.trainable_variables, tape=tape)`, whose
    compute_gradients is `tape.gradient(loss, var_list)` (optimizers/optimizer.py; no loss
    scaling without a LossScaleOptimizer)."""
    import tensorflow as tf

    x, y, sample_weight = _as_tensors(x), _as_tensors(y), _as_tensors(sample_weight)
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    grads = tape.gradient(loss, model.trainable_variables)
    # An Embedding's gradient is a tf.IndexedSlices (the optimizer applies it sparsely): dense here.
    return loss, [None if g is None else tf.convert_to_tensor(g) for g in grads]


FLAVOR = paths.Flavor(
    impl=IMPL, keras=keras, modes=MODES, compute_loss=(("eager", _compute_loss),),
    gradient=_gradient,
    gradient_how=(f"tf.GradientTape around model(x, training=True) + compute_loss, tape.gradient w.r.t. "
                  f"model.trainable_variables, as {'tf_keras/src' if IMPL == 'tf_keras' else 'keras/src'}"
                  f"/engine/training.py Model.train_step"),
    update_mode="function",
    class_weighting=class_weighting.tf_keras,
)


def versions() -> dict[str, str]:
    return paths.installed_versions("tensorflow")


def run(case: Case) -> ImplResult:
    return paths.run_case(FLAVOR, case)


def keras_seconds() -> float:
    """Seconds inside Keras calls during the last `run` (harness.bench's overhead figure)."""
    return paths.CLOCK.seconds
