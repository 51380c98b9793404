"""Keras 3.15.1 on JAX with jax_enable_x64: ops.tanh of a float64 tensor is float32, so a float64
SimpleRNN(activation="tanh") cannot run (jax.lax.scan: "The input carry component states[0] has type
float64[2,3] but the corresponding output carry component has type float32[2,3]").

keras/src/backend/jax/numpy.py:tanh casts to `dtypes.result_type(x.dtype, float)`, which this
prints as float32 for a float64 x. GRU and LSTM with tanh run (their states stay float64). Found by
the main job on ci case 087e76ac42d49570 (vocabulary 17: Embedding -> Bidirectional(GRU) -> SimpleRNN,
float64), 2026-12-07. Cause read as far as result_type; why it gives float32 not read.

Run: KERAS_BACKEND=jax JAX_ENABLE_X64=1 python docs/probes/jax_float64_tanh.py
"""
import numpy as np

import keras
from keras.src.backend.common import dtypes

keras.config.set_floatx("float64")
x = keras.ops.convert_to_tensor(np.ones(3), dtype="float64")
print("ops.tanh(float64) ->", keras.ops.tanh(x).dtype, "; result_type(float64, float) ->", dtypes.result_type("float64", float))
inp = keras.Input((2, 4), dtype="float64")
for act in ("linear", "tanh"):
    model = keras.Model(inp, keras.layers.SimpleRNN(3, activation=act, return_sequences=True, dtype="float64")(inp))
    try:
        print(f"SimpleRNN(activation={act!r}) float64:", model(np.random.rand(2, 2, 4)).dtype)
    except TypeError as exc:
        print(f"SimpleRNN(activation={act!r}) float64: TypeError:", str(exc).splitlines()[2][:100])
