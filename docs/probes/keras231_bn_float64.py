"""keras 2.3.1 BatchNormalization in a float64 model (rule batch_norm_float64).

keras/layers/normalization.py BatchNormalization.call casts the batch's sample size to float32 on
TensorFlow and multiplies the float64 variance by it: TypeError "Input 'y' of 'Mul' Op has type
float32 that does not match type float64" as the layer is called. Run with the keras231 tox
environment (2026-12-06): PYTHONPATH=. .tox/keras231/bin/python docs/probes/keras231_bn_float64.py
"""
import numpy as np, traceback
import harness.impls.keras231  # the adapter's shims for keras 2.3.1 on TF 2.21
import keras
keras.backend.set_floatx("float64")
x = keras.Input((3, 2), dtype="float64")
y = keras.layers.BatchNormalization(dtype="float64")(x)
m = keras.Model(x, y)
m.compile(loss="mse", optimizer=keras.optimizers.SGD(0.0))
try:
    print(m.train_on_batch(np.ones((2, 3, 2)), np.zeros((2, 3, 2))))
except Exception:
    traceback.print_exc()
