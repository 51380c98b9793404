"""Every compatibility shim that standalone keras==2.3.1 needs on Python 3.11 + TensorFlow 2.21.

Imported only by harness.impls.keras231: `apply()` before `import keras`, `apply_after_import(keras)`
right after. Both are idempotent and change nothing about how a loss is computed: they restore
names that newer Python and TensorFlow removed, and put TensorFlow in the TF1 graph mode that
keras 2.3.1 runs in on TensorFlow 1.x. Each shim says which keras 2.3.1 line needs it.

Why graph mode and not keras 2.3.1's own TF 2.0 path (eager on, a global "Keras graph"): on TF
2.21 that path fails at the first layer call, because keras 2.3.1's K.placeholder delegates to
tensorflow.python.keras.backend.placeholder, which in TF 2.21 returns a KerasTensor that keras
2.3.1's Layer.__call__ cannot read (`self._keras_history.layer` on a tuple).

keras 2.2.4 (harness.impls.keras224) uses `apply()` too, and imports keras inside
`tensorflow_is_compat_v1()`. Nothing else in the harness may import this module (it patches the
standard library and TensorFlow process-wide).
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import os
import types
from typing import Any

# Python 3.10 removed the ABC aliases from `collections`. keras 2.3.1 uses
# collections.Iterable (callbacks/callbacks.py), collections.Mapping and collections.Sequence
# (engine/training_utils.py prepare_loss_functions, get_loss_function) and
# collections.OrderedDict (still present).
_COLLECTIONS_ABC_ALIASES = ("Iterable", "Mapping", "Sequence", "MutableMapping", "Callable")


def apply() -> None:
    """Install the shims. Call before the first `import keras`."""
    for name in _COLLECTIONS_ABC_ALIASES:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))

    # keras 2.3.1 metrics.py reads `tf.keras.metrics.MeanIoU` at import. With keras 2.3.1
    # installed as the `keras` distribution, TF 2.21's `tf.keras` would resolve to keras 2.3.1
    # itself (a circular, half-initialised import); TF_USE_LEGACY_KERAS=1 routes `tf.keras` to
    # the tf-keras package instead. Must be set before tensorflow is imported.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    import tensorflow as tf

    # keras 2.3.1 backend/tensorflow_backend.py builds TF1 graphs (placeholders, K.function over a
    # session). Eager execution must be off before any layer is built.
    tf.compat.v1.disable_eager_execution()

    from tensorflow.python.framework import ops
    from tensorflow.python.types import core

    # keras 2.3.1 backend/tensorflow_backend.py is_tensor:
    #   `isinstance(x, tf_ops._TensorLike) or tf_ops.is_dense_tensor_like(x)`.
    # TF 2.21 removed `_TensorLike`; its successor is the abstract tensorflow.python.types.core
    # .Tensor (which TF 2.21's own ops.is_dense_tensor_like checks).
    if not hasattr(ops, "_TensorLike"):
        ops._TensorLike = core.Tensor
    if not hasattr(ops, "is_dense_tensor_like"):
        ops.is_dense_tensor_like = lambda t: isinstance(t, core.Tensor)

    # keras 2.2.4 backend/tensorflow_backend.py rnn: `control_flow_ops.while_loop(...)` (every
    # recurrent layer); TF 2.21 moved the function to tensorflow.python.ops.while_loop (keras
    # 2.3.1's rnn calls tf.while_loop and needs nothing).
    from tensorflow.python.ops import control_flow_ops, while_loop

    if not hasattr(control_flow_ops, "while_loop"):
        control_flow_ops.while_loop = while_loop.while_loop


class _EagerModeIsGraphMode(types.ModuleType):
    """tensorflow.python.eager.context, except that `eager_mode()` does nothing."""

    def __init__(self, real: types.ModuleType):
        super().__init__(real.__name__)
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def eager_mode(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()


def apply_after_import(keras: Any) -> None:
    """Install the shims that need keras 2.3.1's modules. Call right after `import keras`.

    keras 2.3.1 backend/tensorflow_backend.py `eager(func)` wraps Layer.set_weights and
    Layer.get_weights (engine/base_layer.py) in `with context.eager_mode():` ("exit the Keras
    graph", TF 2.0 only), and returns `func` unchanged on TF 1.x (`_is_tf_1()`). With eager
    execution disabled, eager_mode() would run the assignment outside the graph that holds the
    variables ("... is out of scope and cannot be used here"). The decorator was applied at
    import; the wrapper looks `context` up in the backend module at call time, so giving that
    module a `context` whose eager_mode() is a no-op makes set_weights/get_weights behave as on
    TF 1.x (they run K.batch_set_value / K.batch_get_value in the session).
    """
    backend_module = keras.backend.tensorflow_backend
    if not hasattr(backend_module, "context"):  # keras 2.2.4 has no K.eager: nothing to do
        return
    if not isinstance(backend_module.context, _EagerModeIsGraphMode):
        backend_module.context = _EagerModeIsGraphMode(backend_module.context)


@contextlib.contextmanager
def tensorflow_is_compat_v1() -> Any:
    """keras 2.2.4 only: while `import keras` runs, `import tensorflow` gives tf.compat.v1.

    keras 2.2.4 backend/tensorflow_backend.py calls the TF1 top-level API (`tf.placeholder`,
    `tf.get_default_graph`, `tf.Session`, `tf.variable_scope`, ...), which TF 2 keeps only under
    tf.compat.v1. Its modules bind `tf` at import (backend/tensorflow_backend.py and
    optimizers.py, at module level), so the alias is needed only while keras is imported; the
    real module is restored afterwards for everyone else. Call `apply()` first.
    """
    import sys

    import tensorflow as tf

    real = sys.modules["tensorflow"]
    sys.modules["tensorflow"] = tf.compat.v1
    try:
        yield
    finally:
        sys.modules["tensorflow"] = real
