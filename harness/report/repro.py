"""Standalone reproducer scripts: plain Keras + NumPy, nothing of the harness.

`reproducer(case_json, impl, key, ...)` returns the text of a Python script that, for the
implementation family of `impl`, builds the Case's model with the functional API, sets every
weight from the Case, compiles with the Case's loss / loss_weights forms (SGD at learning rate
0), runs the path of the finding (`test_on_batch`, `train_on_batch`, `evaluate`, `fit`,
`compute_loss`) with the Case's sample weights, and prints the loss. A comment states the value
the reference computes and the value the implementation recorded.

Every string from the Case enters the script through `repr()`, so a layer called `"); x("` is
a string literal, never code. Numbers are written with `repr(float)` (exact round trip).
"""

from __future__ import annotations

import textwrap
from typing import Any

from harness import spec
from harness.impls import IMPLEMENTATIONS, keras2_graph
from harness.vocabulary import LAYERS, LOSSES, REGULARIZER_KEYWORDS

def keras231_shims_source() -> str:
    """The compatibility shims keras 2.3.1 needs on Python 3.11 + TensorFlow >= 2.16, copied
    verbatim from harness/impls/keras231_shims.py (minus its docstring and __future__ import), so
    that the reproducer needs nothing of the harness. They restore removed names only."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("harness.impls.keras231_shims")
    if spec is None or spec.origin is None:
        return "# (harness/impls/keras231_shims.py not found: on TF < 2.16 no shims are needed)\n" \
               "def apply():\n    import tensorflow as tf\n    tf.compat.v1.disable_eager_execution()\n" \
               "def apply_after_import(keras):\n    pass"
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source)
    lines = source.splitlines()
    kept: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.FunctionDef) and node.name not in ("apply", "apply_after_import"):
            continue  # helpers for other keras versions (keras 2.2.4)
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        # keep the comment lines right above a statement (they say which keras line needs it)
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        kept.extend(lines[first:node.end_lineno])
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            kept.append("")
    return ("# ---- compatibility shims for keras 2.3.1 on Python 3.11 + TensorFlow >= 2.16, copied from\n"
            "# ---- harness/impls/keras231_shims.py; they restore removed names, no loss computation changes\n"
            + "\n".join(kept).strip() + "\n# ---- end of shims")

# compile() keyword arguments that select a mode (harness/impls/paths.py Mode.compile_kwargs).
MODE_KWARGS: dict[str, str] = {
    "eager": "run_eagerly=True",
    "function": "run_eagerly=False",
    "compiled": "run_eagerly=False",
    "jit": "jit_compile=True",
}

LOSS_CLASSES = None  # filled lazily from harness.vocabulary (report-time only)


def flavor_of(impl: str) -> str:
    """The flavor of the script for an implementation of harness.impls that has a reproducer:
    "keras3" for Keras 3 on any backend, else the implementation's name."""
    entry = IMPLEMENTATIONS.get(impl)
    if entry is None or not entry.repro_preamble:
        raise KeyError(f"no reproducer template for implementation {impl!r} (replay the case with "
                       f"`python -m harness replay <case> --impl {impl}`)")
    return "keras3" if entry.lineage == "keras3" else impl


def _lit(value: Any) -> str:
    """A Python literal for JSON data (lists, numbers, strings, bools, None)."""
    return repr(value)


def _array(value: Any, dtype: str) -> str:
    return f"np.array({_lit(value)}, dtype={dtype!r})"


def _regularizer(reg: dict[str, Any] | None, keras2_3: bool) -> str | None:
    if not reg:
        return None
    kind, l1, l2 = reg["kind"], float(reg.get("l1", 0.0)), float(reg.get("l2", 0.0))
    if kind == "l1" and not keras2_3:
        return f"keras.regularizers.L1(l1={l1!r})"
    if kind == "l2" and not keras2_3:
        return f"keras.regularizers.L2(l2={l2!r})"
    return f"keras.regularizers.L1L2(l1={l1!r}, l2={l2!r})"


ADD_LOSS_CLASS = '''\
class AddLossL2(keras.layers.Layer):
    """Identity that calls add_loss(factor * sum(square(inputs)))."""

    def __init__(self, factor=0.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.supports_masking = True

    def call(self, inputs):
        ops = getattr(keras, "ops", None) or keras.backend
        self.add_loss(self.factor * ops.sum(ops.square(inputs)))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

'''

# The source of each custom layer class (vocabulary entries with custom=True; harness.impls.build).
CUSTOM_LAYER_SOURCES = {"AddLossL2": ADD_LOSS_CLASS}


def _layer_call(layer: dict[str, Any], dtype: str, keras2_3: bool) -> str:
    """`keras.layers.<class>(...)` with the arguments harness.impls.build passes (the entry's)."""
    entry = LAYERS.get(layer["type"])
    if entry is None:
        raise ValueError(f"layer {layer['name']!r}: no reproducer for layer type {layer['type']!r}")
    args, kwargs = entry.keras_args(layer.get("config", {}))
    regs = layer.get("regularizers", {})
    kw = [f"name={layer['name']!r}", f"dtype={dtype!r}"]
    for weight, arg in (("activity", "activity_regularizer"), *REGULARIZER_KEYWORDS.items()):
        r = _regularizer(regs.get(weight), keras2_3)
        if r:
            kw.append(f"{arg}={r}")
    cls = entry.keras_class if entry.custom else f"keras.layers.{entry.keras_class}"
    given = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    if entry.wraps:  # as harness.impls.build: keras.layers.TimeDistributed(keras.layers.Dense(...))
        inner_kw = [f"name={layer['name'] + '_inner'!r}", f"dtype={dtype!r}"] + kw[2:]
        inner = f"keras.layers.{entry.wraps}(" + ", ".join(given + inner_kw) + ")"
        return f"{cls}({inner}, " + ", ".join(kw[:2]) + ")"
    return f"{cls}(" + ", ".join(given + kw) + ")"


def _loss_expr(out: dict[str, Any]) -> str:
    if out.get("loss_by") == "name":  # loss="mean_squared_error": the string, as the Case hands it
        return repr(out["loss"])
    cls = LOSSES[out["loss"]].keras_class
    opts = ", ".join(f"{k}={v!r}" for k, v in sorted(out.get("loss_options", {}).items()))
    return f"keras.losses.{cls}({opts})"


def _structure(case: dict[str, Any], items: list[str], names: list[str], form: str) -> str:
    """A list / dict / single value in the Case's form ('single' uses the first item)."""
    if form == "single":
        return items[0]
    if form == "dict":
        return "{" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, items)) + "}"
    return "[" + ", ".join(items) + "]"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.9g}"


def reproducer(case: dict[str, Any], case_id: str, impl: str, key: str, *,
               recorded: float | None, reference: float | None, reference_profile: str = "",
               explained: float | None = None, explaining_rules: dict[str, str] | None = None,
               versions: dict[str, str] | None = None) -> str:
    """The script text for one finding (case JSON, implementation, "<path>/<mode>")."""
    flavor = flavor_of(impl)
    keras2_3 = flavor == "keras2.3.1"
    path, _, mode = key.partition("/")
    dtype = case["dtype"]
    outputs = case["outputs"]
    names = [o["layer"] for o in outputs]
    lines: list[str] = []
    w = lines.append

    version_text = ", ".join(f"{k} {v}" for k, v in sorted((versions or {}).items()) if v)
    w(f'"""Reproducer for case {case_id}: {impl}, path {key}.')
    w("")
    w(f"Needs only: {IMPLEMENTATIONS[impl].repro_install} and numpy.")
    if version_text:
        w(f"Recorded with: {version_text}.")
    w(f"Generated by `python -m harness report`; the model, weights and data are the case's, verbatim.")
    w('"""')
    preamble = IMPLEMENTATIONS[impl].repro_preamble
    if "{shims}" in preamble:
        preamble = preamble.replace("{shims}", keras231_shims_source())
    w(preamble.rstrip("\n"))
    w("")
    w(f"# The implementation recorded:            {_fmt(recorded)}")
    w(f"# The reference (float64) computes:       {_fmt(reference)}"
      + (f"   (profile {reference_profile}, what this version documents)" if reference_profile else ""))
    if explaining_rules:
        w(f"# ... and with {', '.join(f'{r}={a}' for r, a in sorted(explaining_rules.items()))}: {_fmt(explained)}")
    w(f"RECORDED = {recorded!r}" if recorded is None or recorded == recorded and abs(recorded) != float("inf")
      else f"RECORDED = float({str(recorded)!r})")
    w(f"REFERENCE = {reference!r}" if reference is None or reference == reference and abs(reference) != float("inf")
      else f"REFERENCE = float({str(reference)!r})")
    w("")
    w(f"DTYPE = {dtype!r}")
    w("keras.backend.set_floatx(DTYPE)")
    w("")
    for custom in sorted({layer["type"] for layer in case["layers"] if LAYERS[layer["type"]].custom}):
        w(CUSTOM_LAYER_SOURCES[custom])
    w("# ---- the model (functional API; tensors by layer name) ----")
    w("t = {}")
    for inp in case["inputs"]:
        shape = nested_shape(inp["data"])[1:]
        in_dtype = "int32" if inp["kind"] == "int" else dtype
        w(f"t[{inp['name']!r}] = keras.Input(shape={tuple(shape)!r}, name={inp['name']!r}, dtype={in_dtype!r})")
    for layer in case["layers"]:
        args = [f"t[{n!r}]" for n in layer["inbound"]]
        arg = args[0] if len(args) == 1 else "[" + ", ".join(args) + "]"
        w(f"t[{layer['name']!r}] = {_layer_call(layer, dtype, keras2_3)}({arg})")
    ins = [f"t[{i['name']!r}]" for i in case["inputs"]]
    outs = [f"t[{n!r}]" for n in names]
    w("model = keras.Model(inputs=" + (ins[0] if len(ins) == 1 else "[" + ", ".join(ins) + "]")
      + ", outputs=" + (outs[0] if len(outs) == 1 else "[" + ", ".join(outs) + "]") + ")")
    w("")
    w("# ---- every weight from the case, matched by the variable's short name ----")
    w("WEIGHTS = {")
    for layer in case["layers"]:
        if layer.get("weights"):
            w(f"    {layer['name']!r}: {{")
            for wname, value in sorted(layer["weights"].items()):
                w(f"        {wname!r}: {_lit(value)},")
            w("    },")
    w("}")
    w("for layer_name, values in WEIGHTS.items():")
    w("    layer = model.get_layer(layer_name)")
    w('    short = [str(v.name).split("/")[-1].split(":")[0] for v in layer.weights]')
    if any(LAYERS[layer["type"]].weight_prefixes for layer in case["layers"]):
        w("    if type(layer).__name__ == 'Bidirectional':  # two copies of the LSTM: forward_*, backward_*")
        w("        forward = {id(v) for v in layer.forward_layer.weights}")
        w("        short = [('forward_' if id(v) in forward else 'backward_') + s for v, s in zip(layer.weights, short)]")
    w("    layer.set_weights([np.asarray(values[s], dtype=DTYPE) for s in short])")
    w("")
    w("# ---- compile in the case's forms ----")
    loss_items = [_loss_expr(o) for o in outputs]
    w(f"loss = {_structure(case, loss_items, names, case['loss_form'])}  # form: {case['loss_form']}")
    if case["loss_weights_form"] == "omitted":
        w("loss_weights = None  # form: omitted")
    else:
        lw = [repr(o["loss_weight"]) for o in outputs]  # an int stays an int (Keras 3 refuses a bare int)
        lw_form = case["loss_weights_form"]
        w(f"loss_weights = {_structure(case, lw, names, 'single' if lw_form == 'scalar' else lw_form)}"
          f"  # form: {lw_form}")
    mode_kw = MODE_KWARGS.get(mode, "")
    if keras2_3 or flavor.endswith("-graph"):
        mode_kw = ""  # graph mode: the session runs the graph; no eager / function switch
    graph = keras2_3 or flavor.endswith("-graph")
    swm = _sample_weight_mode(case) if graph else None
    if swm is not None:
        w(f"sample_weight_mode = {swm!r}  # Keras 2 graph mode needs it for (batch, time) sample weights")
    w("model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), "
      "loss=loss, loss_weights=loss_weights" + (", " + mode_kw if mode_kw else "")
      + (", sample_weight_mode=sample_weight_mode" if swm is not None else "") + ")"
      + (f"  # mode: {mode}" if mode else ""))
    w("")
    w("# ---- data ----")
    xs = [_array(i["data"], "int32" if i["kind"] == "int" else dtype) for i in case["inputs"]]
    w("x = " + (xs[0] if len(xs) == 1 else "[" + ", ".join(xs) + "]"))
    ys = []
    for o in outputs:
        arr = _array(o["target"], "int32" if _all_ints(o["target"]) else dtype)
        if keras2_3 and _is_sparse(o["loss"]) and len(nested_shape(o["target"])) >= 2:
            # keras 2.3.1 engine/training.py _standardize_user_data wants sparse ids of shape
            # output_shape[:-1] + (1,): a (batch, time) target gets a trailing axis, as its users did.
            arr = f"np.expand_dims({arr}, -1)"
        ys.append(arr)
    y_form = case.get("y_form", "auto")  # harness.spec.Y_FORMS; absent: one array, or a list
    w("y = " + (ys[0] if y_form == "auto" and len(ys) == 1 else
                _structure(case, ys, names, "dict" if y_form == "dict" else "list"))
      + (f"  # form: {y_form}" if y_form != "auto" else ""))
    if case["sample_weight_form"] == "omitted":
        w("sample_weight = None  # form: omitted")
    else:
        form = case["sample_weight_form"]
        given = [(n, o.get("sample_weight")) for n, o in zip(names, outputs)]
        if form == "dict":  # an output without weights has no key (harness.impls.build)
            given = [(n, sw) for n, sw in given if sw is not None]
        sws = ["None" if sw is None else _array(sw, dtype) for _, sw in given]
        sw_names = [n for n, _ in given]
        w(f"sample_weight = {_structure(case, sws, sw_names, form)}  # form: {form}")
    if case.get("class_weight") is not None:
        cw = {int(k): v for k, v in case["class_weight"].items()}
        w(f"class_weight = {cw!r}  # fit and train_on_batch only")
    w("")
    w(f"# ---- the path: {path} ----")
    w(_path_code(path, case, flavor))
    w("")
    w('print("loss", repr(float(loss_value)))')
    w('print("recorded", RECORDED, "reference", REFERENCE)')
    return "\n".join(lines) + "\n"


def _path_code(path: str, case: dict[str, Any], flavor: str) -> str:
    ebs = int(case["evaluate_batch_size"])
    first = "out[0] if isinstance(out, (list, tuple)) else out"
    if path == "test_on_batch":
        return f"out = model.test_on_batch(x, y, sample_weight=sample_weight)\nprint(out)\nloss_value = {first}"
    cw = ", class_weight=class_weight" if case.get("class_weight") is not None else ""
    if path == "train_on_batch":
        return (f"out = model.train_on_batch(x, y, sample_weight=sample_weight{cw})  # learning rate 0: weights stay\n"
                f"print(out)\nloss_value = {first}")
    if path == "evaluate":
        return (f"out = model.evaluate(x, y, sample_weight=sample_weight, batch_size={ebs}, verbose=0)\n"
                f"print(out)\nloss_value = {first}")
    if path == "test_on_batch_loop":
        n = len(case["inputs"][0]["data"])
        return textwrap.dedent(f"""\
            # test_on_batch on each of evaluate's batches in turn, nothing reset in between: the last call's return
            def rows_of(value, rows):
                if value is None:
                    return None
                if isinstance(value, dict):
                    return {{k: rows_of(v, rows) for k, v in value.items()}}
                if isinstance(value, (list, tuple)):
                    return [rows_of(v, rows) for v in value]
                return value[rows]
            for start in range(0, {n}, {ebs}):
                rows = slice(start, start + {ebs})
                out = model.test_on_batch(rows_of(x, rows), rows_of(y, rows), sample_weight=rows_of(sample_weight, rows))
                print(out)
            loss_value = {first}""")
    if path == "fit":
        return (f"history = model.fit(x, y, sample_weight=sample_weight, batch_size={ebs}, epochs=1, "
                f"shuffle=False, verbose=0{cw})\nprint(history.history)\nloss_value = history.history['loss'][-1]")
    if path == "compute_loss" and flavor in ("keras3", "tf_keras", "tf.keras"):
        if flavor == "keras3":
            call = "model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)"
        else:
            call = "model.compute_loss(x, y, y_pred, sample_weight)"
        return ("y_pred = model(x, training=True)\n"
                f"out = {call}\n"
                "loss_value = out.detach().cpu().numpy() if hasattr(out, 'detach') else np.asarray(out)")
    return textwrap.dedent(f"""\
        # (no direct way to run path {path!r} here; test_on_batch shows the same total loss)
        out = model.test_on_batch(x, y, sample_weight=sample_weight)
        loss_value = {first}""")


def _is_sparse(loss: str) -> bool:
    return LOSSES[loss].target_kind == "sparse"


def _sample_weight_mode(case: dict[str, Any]) -> Any:
    """harness/impls/keras2_graph.py sample_weight_mode of the case's JSON."""
    return keras2_graph.sample_weight_mode(spec.from_json(case))


def nested_shape(value: Any) -> list[int]:
    """The shape of a rectangular nested list (as a case's JSON holds arrays)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _all_ints(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_all_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)
