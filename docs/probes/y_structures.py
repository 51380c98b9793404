"""Plain-Keras probe: the same two-output model (outputs named "b", "a": not in sorted order) and
one-output model, every loss path, with y and sample_weight given as an array, a list or a dict
keyed by output name. Every form should give the number of the list form; docs/y-structures.md
says which releases do not. Run: KERAS_BACKEND=jax python docs/probes/y_structures.py keras3
in the tox environment of a release (e.g. .tox/keras35-jax/bin/python). No harness code is used."""
import os, sys, traceback, numpy as np
impl = sys.argv[1]  # "keras3" (KERAS_BACKEND chooses the backend) or "tf_keras"
if impl == "tf_keras":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"; import tf_keras as keras
else:
    import keras
print(impl, keras.__version__, keras.backend.backend())
rng = np.random.default_rng(0)
x = rng.normal(size=(4, 3)).astype("float32")
yb = rng.normal(size=(4, 1)).astype("float32"); ya = rng.normal(size=(4, 2)).astype("float32")
swb = np.array([1, 0, 1, 2], "float32"); swa = np.array([0, 1, 1, 1], "float32")
def model(n):
    inp = keras.Input((3,), name="x")
    b = keras.layers.Dense(1, name="b", kernel_initializer="ones")(inp)
    a = keras.layers.Dense(2, name="a", kernel_initializer="ones")(inp)
    return keras.Model(inp, [b, a] if n == 2 else b)
def paths(m, y, sw):
    out = {}
    for p in ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit"):
        try:
            m.compile(optimizer=keras.optimizers.SGD(0.0), loss=[keras.losses.MeanSquaredError(), keras.losses.MeanAbsoluteError()][: len(m.outputs)] if len(m.outputs) > 1 else keras.losses.MeanSquaredError())
            if p == "compute_loss":
                v = m.compute_loss(x=x, y=y, y_pred=m(x, training=True), sample_weight=sw)
            elif p == "test_on_batch": v = m.test_on_batch(x, y, sample_weight=sw, return_dict=True)["loss"]
            elif p == "train_on_batch": v = m.train_on_batch(x, y, sample_weight=sw, return_dict=True)["loss"]
            elif p == "evaluate": v = m.evaluate(x, y, sample_weight=sw, batch_size=3, verbose=0, return_dict=True)["loss"]
            else: v = m.fit(x, y, sample_weight=sw, batch_size=3, verbose=0, shuffle=False).history["loss"][-1]
            out[p] = round(float(np.asarray(v)), 5)
        except Exception as ex:
            tb = traceback.extract_tb(ex.__traceback__)[-1]
            out[p] = f"{type(ex).__name__} at {tb.filename.split('site-packages/')[-1]}:{tb.name}: {str(ex)[:60]!r}"
    return out
for label, n, y, sw in [
    ("2out y list", 2, [yb, ya], None),
    ("2out y dict", 2, {"b": yb, "a": ya}, None),
    ("2out y dict sw list", 2, {"b": yb, "a": ya}, [swb, swa]),
    ("2out y list sw list", 2, [yb, ya], [swb, swa]),
    ("2out y dict sw dict", 2, {"b": yb, "a": ya}, {"b": swb, "a": swa}),
    ("2out y list sw dict", 2, [yb, ya], {"b": swb, "a": swa}),
    ("2out y dict sw single", 2, {"b": yb, "a": ya}, swb),
    ("1out y array", 1, yb, None),
    ("1out y list", 1, [yb], None),
    ("1out y dict", 1, {"b": yb}, None),
    ("1out y list sw list", 1, [yb], [swb]),
    ("1out y list sw array", 1, [yb], swb),
    ("1out y dict sw array", 1, {"b": yb}, swb),
]:
    print(label)
    for k, v in paths(model(n), y, sw).items():
        print("   ", k, v)
