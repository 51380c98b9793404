"""Adapter: standalone multi-backend keras==2.3.1 on TensorFlow 2.21, in TF1 graph mode.

Serves "keras2.3.1" (harness.impls). This is the code the project's question starts from:
keras/engine/training.py Model.compile builds `self.total_loss = self._prepare_total_loss(masks)`
once, as a graph tensor: per output `loss_weight * loss_fn(y_true, y_pred, sample_weight=
sample_weight * mask)`, then `+= each of self.losses`, then `K.mean(total_loss)`.

Environment (requirements/keras231.txt; the recipe is in its header): tensorflow-cpu 2.21 and
tf-keras 2.21 with their dependencies, keras 2.3.1 + keras-applications + keras-preprocessing
installed with --no-deps (keras 2.3.1's own pins predate TF 2), plus scipy, pyyaml, six.
harness.impls.keras231_shims is applied before `import keras`: it sets TF_USE_LEGACY_KERAS=1,
disables eager execution and restores a few names newer Python/TF removed (see that module).

The paths are run by harness.impls.paths.run_case through keras2_graph.GraphCalls, as for
tf_keras-graph and tf.keras-graph; what is specific to keras 2.3.1 is the calls below:
- the expected engine module `keras.engine.training` (checked for every case),
- SGD is `keras.optimizers.SGD(learning_rate=...)` (keras 2.3.1 optimizers.py SGD; 0 for the paths),
- the whole-batch feeds of `model.total_loss` are those of keras/engine/training.py
  _make_test_function: `_feed_inputs + _feed_targets + _feed_sample_weights`, valued by
  `_standardize_user_data` (which supplies all-ones sample weights when none are given).
Losses keras 2.3.1 lacks (no CosineSimilarity, no BinaryFocalCrossentropy class in
keras/losses.py) make every path "unsupported" with that reason.
"""

from __future__ import annotations

import os
from typing import Any

from harness.impls import keras231_shims

keras231_shims.apply()

import keras  # noqa: E402  (after the shims, by design)
import tensorflow as tf  # noqa: E402

keras231_shims.apply_after_import(keras)

from harness.impls import keras2_graph, paths  # noqa: E402
from harness.impls.keras2_graph import GraphCalls, enable_while_loop_gradients, graph_flavor  # noqa: E402
from harness.impls.paths import installed_versions  # noqa: E402
from harness.results import ImplResult  # noqa: E402
from harness.spec import Case  # noqa: E402

enable_while_loop_gradients(tf)

IMPL = os.environ.get("HARNESS_IMPL") or "keras2.3.1"
if keras.__version__ != "2.3.1":
    raise ImportError(f"harness.impls.keras231 needs keras==2.3.1; `import keras` gave {keras.__version__}")
if keras.backend.backend() != "tensorflow":
    raise ImportError(f"keras 2.3.1 must run on its tensorflow backend, not {keras.backend.backend()!r} "
                      "(KERAS_BACKEND / ~/.keras/keras.json)")


def _sgd(learning_rate: float) -> Any:
    return keras.optimizers.SGD(learning_rate=learning_rate)


FLAVOR = graph_flavor(GraphCalls(keras=keras, tf=tf, engine_module="keras.engine.training", make_optimizer=_sgd,
                                 feeds=keras2_graph.standalone_feeds), IMPL)


def versions() -> dict[str, str]:
    return installed_versions("tensorflow")


def run(case: Case) -> ImplResult:
    return paths.run_case(FLAVOR, case)
