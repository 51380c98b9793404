"""Plain-Keras probe: reduction="mean_with_sample_weight" (Keras 3.7+) on a temporal output without
a mask. keras/src/losses/loss.py reduce_values divides the weighted sum over every step by
ops.sum(sample_weight) in the weights' own shape, so a weight per sample ((batch, 1) or (batch,))
counts once per sample while the sum runs over every step: the "mean" is `time` times the weighted
mean that the same weights written per step ((batch, time)) give. The harness's rule
reduction_values="keras3" says so.

Per-step squared errors [[1, 4], [9, 0]] (x itself, target 0):
  (batch, 1)    [[2], [0.5]]           (2*1 + 2*4 + 0.5*9 + 0.5*0) / 2.5 = 5.8
  (batch,)      [2, 0.5]  (meets the time axis, time == batch): (2*1 + 0.5*4 + 2*9 + 0.5*0) / 2.5 = 8.8
  (batch, time) [[2, 2], [0.5, 0.5]]   14.5 / 5 = 2.9
Run: KERAS_BACKEND=jax .tox/keras315-jax/bin/python docs/probes/mean_with_sample_weight.py
(seen 2026-12-04 on Keras 3.15.1, JAX: 5.8, 8.8, 2.9; sum_over_batch_size: 3.625, 5.5, 3.625).
No harness code is used."""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402
import numpy as np  # noqa: E402

x = np.array([[[1.0], [2.0]], [[3.0], [0.0]]], dtype="float32")
inp = keras.Input((2, 1))
model = keras.Model(inp, keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")(inp))
print("keras", keras.__version__, keras.backend.backend())
for reduction in ("mean_with_sample_weight", "sum_over_batch_size"):
    model.compile(loss=keras.losses.MeanSquaredError(reduction=reduction), optimizer="sgd")
    for sw in (np.array([[2.0], [0.5]]), np.array([2.0, 0.5]), np.array([[2.0, 2.0], [0.5, 0.5]])):
        print(reduction, sw.shape, float(model.test_on_batch(x, np.zeros_like(x), sample_weight=sw)))
