"""The sample weight a train step receives for `class_weight=`, through each lineage's own code.

`train_on_batch(x, y, class_weight=...)` converts the class weights into the sample weight of the
one output before its step runs; the gradient hooks (harness.impls.paths, `Flavor.class_weighting`)
differentiate that step, so they take the same sample weight, made by the same Keras function.
What the conversion refuses, it raises as the lineage raises it. Graph mode's own is
harness.impls.keras2_graph.GraphCalls.class_weighting (train_on_batch's _standardize_user_data).
Frameworks are imported inside the functions: this module is imported by adapters of every lineage.
"""

from __future__ import annotations

from typing import Any

from harness.impls import paths


def keras3(keras_module: Any, model: Any, x: Any, y: Any, sample_weight: Any, class_weight: dict) -> Any:
    """Keras 3 Trainer.train_on_batch (keras/src/backend/{tensorflow,jax,torch}/trainer.py, the same
    since v3.0.5): a sample weight beside class_weight is refused before any step; else
    keras/src/trainers/data_adapters/data_adapter_utils.py class_weight_to_sample_weights(y, class_weight)."""
    if sample_weight is not None:
        raise paths.NoTrainStep("Keras 3 refuses sample_weight beside class_weight before any train step "
                                "(keras/src/backend/*/trainer.py Trainer.train_on_batch; the train_on_batch "
                                "path records its error)")
    from keras.src.trainers.data_adapters import data_adapter_utils

    return data_adapter_utils.class_weight_to_sample_weights(y, class_weight)


def tf_keras(keras_module: Any, model: Any, x: Any, y: Any, sample_weight: Any, class_weight: dict) -> Any:
    """tf-keras and tf.keras 2.12-2.15 Model.train_on_batch: engine/data_adapter.py single_batch_iterator
    maps the one batch through `_make_class_weight_map_fn(class_weight)` (ids 0 .. n-1, else ValueError;
    tf.gather of the rounded class id; times the sample weight), before the strategy splits it."""
    import tensorflow as tf

    if keras_module.__name__.split(".")[0] == "tf_keras":
        from tf_keras.src.engine import data_adapter
    else:
        try:  # TF 2.13-2.15's keras 2.13-2.15
            from keras.src.engine import data_adapter
        except ImportError:  # TF 2.12's keras 2.12.0
            from keras.engine import data_adapter  # type: ignore[no-redef]
    data = tf.nest.map_structure(tf.convert_to_tensor, (x, y) if sample_weight is None else (x, y, sample_weight))
    return data_adapter._make_class_weight_map_fn(class_weight)(*data)[2]
