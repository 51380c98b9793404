"""Adapter: standalone multi-backend keras==2.2.4 on TensorFlow 2.21, in TF1 graph mode.

Serves "keras2.2.4" (needs its row in harness.impls.IMPLEMENTATIONS; see the notes). keras 2.2.4
assembles the total loss in keras/engine/training.py Model.compile: per output
`loss_weight * weighted_masked_objective(fn)(y_true, y_pred, sample_weight, mask)`
(keras/engine/training_utils.py), then `+= each of self.losses`; no K.mean at the end.
`weighted_masked_objective` differs from 2.3.1 and from tf-keras: the per-element loss is
multiplied by the mask and divided by `K.mean(mask)`, reduced to the sample-weight rank by a
mean, multiplied by the weights and divided by the fraction of *non-zero* weights, then averaged.

keras 2.2.4 has no loss classes (those came in 2.3.0): it is compiled with the loss *functions*
by name, which take no options, so a Case with any non-default loss option (reduction other than
sum_over_batch_size, from_logits, label_smoothing, delta, ...) or a loss that 2.2.4 lacks (huber,
binary focal crossentropy) is "unsupported" on every path.

Environment: as keras 2.3.1 (requirements/keras231.txt), then
`pip install --no-deps -r requirements/keras224-nodeps.txt`. Shims: keras231_shims.apply(),
then `import keras` inside keras231_shims.tensorflow_is_compat_v1().
"""

from __future__ import annotations

import os
from typing import Any

from harness.impls import keras231_shims

keras231_shims.apply()

with keras231_shims.tensorflow_is_compat_v1():
    import keras  # noqa: E402  (after the shims, by design)
import tensorflow as tf  # noqa: E402

from harness.impls import build, keras2_graph, paths  # noqa: E402
from harness.impls.paths import installed_versions  # noqa: E402
from harness.results import ImplResult  # noqa: E402
from harness.spec import Case  # noqa: E402
from harness.vocabulary import LOSSES  # noqa: E402

keras2_graph.enable_while_loop_gradients(tf)

IMPL = os.environ.get("HARNESS_IMPL") or "keras2.2.4"
if keras.__version__ != "2.2.4":
    raise ImportError(f"harness.impls.keras224 needs keras==2.2.4; `import keras` gave {keras.__version__}")

def _unsupported(keras_module: Any, case: Case) -> str | None:
    layers = build.missing_layer_classes(keras_module, case)
    if layers:
        return layers
    for out in case.outputs:
        if out.loss_by == "name":
            try:
                keras_module.losses.get(out.loss)
            except ValueError:
                return f"keras 2.2.4 keras.losses.get does not know the name {out.loss!r}"
            continue
        if LOSSES[out.loss].keras224_function is None:
            return f"keras 2.2.4 keras/losses.py has no {out.loss} loss"
        defaults = {"reduction": "sum_over_batch_size", **LOSSES[out.loss].defaults}
        changed = sorted(k for k, v in out.loss_options.items() if defaults.get(k) != v)
        if changed:
            return (f"keras 2.2.4 loss functions take no options; output {out.name!r} sets "
                    + ", ".join(f"{k}={out.loss_options[k]!r}" for k in changed))
    return None


def _loss_argument(keras_module: Any, case: Case) -> Any:
    # a loss given by name: the string, which compile resolves (keras 2.2.4 losses.get)
    fns = [o.loss if o.loss_by == "name" else getattr(keras_module.losses, LOSSES[o.loss].keras224_function)
           for o in case.outputs]
    if case.loss_form == "single":
        return fns[0]
    if case.loss_form == "list":
        return fns
    return {o.name: fn for o, fn in zip(case.outputs, fns)}


def _sgd(learning_rate: float) -> Any:
    return keras.optimizers.SGD(lr=learning_rate)  # keras 2.2.4 optimizers.py SGD(lr=...)


FLAVOR = keras2_graph.graph_flavor(keras2_graph.GraphCalls(
    keras=keras, tf=tf, engine_module="keras.engine.training", make_optimizer=_sgd, feeds=keras2_graph.standalone_feeds,
    loss_argument=_loss_argument, unsupported_reason=_unsupported, total_loss_method="compile",
), IMPL)


def versions() -> dict[str, str]:
    return installed_versions("tensorflow")


def run(case: Case) -> ImplResult:
    return paths.run_case(FLAVOR, case)
