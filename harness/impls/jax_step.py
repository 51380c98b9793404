"""The JAX train step's gradient, shared by the Keras 3 adapter (harness.impls.keras3) and the
DataParallel run (harness.impls.distributed), so the two differentiate the same function with
the same state.

keras/src/backend/jax/trainer.py JAXTrainer.train_step (stateless): `jax.value_and_grad(
self.compute_loss_and_updates, has_aux=True)` of (trainable, non-trainable[, metrics]
variables, x, y, sample_weight, training=True, optimizer_variables=...), with the state as
JAXTrainer.train_on_batch gathers it after `_symbolic_build` (which builds the loss container
and the optimizer: before it, `model.optimizer.variables` is empty).
"""

from __future__ import annotations

from typing import Any


def value_and_grad(model: Any, data: tuple[Any, Any, Any], metrics_variables: bool = True) -> tuple[Any, list[Any]]:
    """(the loss, one gradient per `model.trainable_variables` entry) on `data` as placed
    (device_put, or sharded by a distribution). `metrics_variables`: whether the installed
    release's compute_loss_and_updates takes them positionally (harness.impls.keras3 API_SINCE;
    every release since 3.0.5 takes `optimizer_variables` as a keyword, for scale_loss)."""
    import jax

    model._symbolic_build(data_batch=data)
    state = [[v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables]]
    if metrics_variables:
        state.append([v.value for v in model.metrics_variables])
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)
    (loss, _aux), grads = grad_fn(*state, *data, training=True,
                                  optimizer_variables=[v.value for v in model.optimizer.variables])
    return loss, list(grads)
