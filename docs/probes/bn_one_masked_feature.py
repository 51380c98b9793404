"""Keras 3 BatchNormalization of one feature on a masked input, in training mode.

Rule batch_norm_single_masked_feature. BatchNormalization._moments (masked branch, since 3.0.2)
returns ops.squeeze(mean): a one-feature mean becomes shape (), and the JAX, torch and NumPy
backends' batch_normalization read mean.shape[0]: IndexError 'tuple index out of range'.
TensorFlow's broadcasts and normalises. Run (2026-12-06, keras 3.15.1):

    KERAS_BACKEND=jax|torch|numpy python docs/probes/bn_one_masked_feature.py  -> training=True raises IndexError
    KERAS_BACKEND=tensorflow python docs/probes/bn_one_masked_feature.py       -> numbers for both
"""
import numpy as np
import keras

x = keras.Input((4,), dtype="int32")
h = keras.layers.Embedding(3, 1, mask_zero=True)(x)  # one feature, mask from the zeros
y = keras.layers.BatchNormalization()(h)
model = keras.Model(x, y)
ids = np.array([[1, 2, 0, 0], [2, 0, 0, 0]])
try:
    print("training=True:", keras.ops.convert_to_numpy(model(ids, training=True)).ravel())
except IndexError as e:
    print("training=True raises", type(e).__name__, str(e).splitlines()[0][:200])
print("training=False:", keras.ops.convert_to_numpy(model(ids, training=False)).ravel()[:3])
