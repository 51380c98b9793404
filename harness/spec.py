"""The Case: pure data that reproduces one total-loss computation exactly.

A Case holds everything an implementation needs to compute a model's total loss: the input
arrays, the layer graph with every weight value (never a framework RNG), the outputs with
their targets, losses, loss weights and sample weights, the *form* in which `loss`,
`loss_weights` and `sample_weight` are handed to Keras, the dtype and the batch size that
`evaluate`/`fit` use.

JSON in and out. `dumps` is canonical (sorted keys, no whitespace, shortest float repr), and
`case_id` is a hash of it, so a Case has the same id in every environment. `load`/`loads`
validate and fail with `CaseError` naming the file, the field (a JSON path) and what was
expected. Case files are parsed as data only: no pickle, no eval, no imports.

Layout of the JSON (``schema`` 1)::

    {"schema": 1, "dtype": "float32", "evaluate_batch_size": 3, "note": "...",
     "loss_form": "single" | "list" | "dict",
     "loss_weights_form": "omitted" | "list" | "dict" | "scalar",   (scalar: one output, a bare number)
     "sample_weight_form": "omitted" | "single" | "list" | "dict",
     "y_form": "list" | "dict",      (optional; absent: one array for one output, else a list)
     "inputs":  [{"name": "x0", "kind": "float" | "int", "data": [[...], ...]}],
     "layers":  [{"name": "d0", "type": "Dense", "inbound": ["x0"],
                  "config": {"units": 2, "activation": "relu", "use_bias": true},
                  "weights": {"kernel": [[...]], "bias": [...]},
                  "regularizers": {"kernel": {"l1": 0.01, "l2": 0.0}, "activity": ...}}],
     "outputs": [{"layer": "d0", "target": [...], "loss": "mean_squared_error",
                  "loss_options": {"reduction": "sum_over_batch_size"},
                  "loss_by": "name",   (optional; absent: a loss object. "name": loss="mean_squared_error")
                  "loss_weight": 0.5 | 2 | null, "sample_weight": [...] | null}]}

In the "list" and "dict" forms an output's sample weight may be null (at least one is not): Keras
gets None at that position of the list, and a dict without that output's key.

A sample weight is (batch,), a column (batch, 1), or (batch, time) or (batch, time, 1) on a temporal
output (`sample_weight_kind`; Keras 2's graph loop refuses a column, rule sample_weight_column, and
a trailing axis of 1 on per-step weights, rule timestep_weight_trailing_axis).

A loss weight keeps its JSON type: `2` is handed to Keras as the int 2 and `2.0` as the float
(Keras 3's CompileLoss refuses a bare int, rule one_output_loss_weights).

An output's name is the name of the layer that produces it (Keras names outputs after their
layer), and dict forms are keyed by it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from harness import vocabulary

SCHEMA_VERSION = 1

DTYPES = ("float32", "float64")
LOSS_FORMS = ("single", "list", "dict")
# "scalar": `loss_weights=0.5`, a bare number, for a one-output model (drawn from vocabulary
# version FORMS_SINCE["scalar_loss_weights"] on; the releases disagree on it, rule
# one_output_loss_weights).
LOSS_WEIGHTS_FORMS = ("omitted", "list", "dict", "scalar")
SAMPLE_WEIGHT_FORMS = ("omitted", "single", "list", "dict")
# An output's loss as a loss object or by its name (Output.loss_by; drawn from vocabulary version
# FORMS_SINCE["loss_names"] on).
LOSS_BY = ("object", "name")
# How `y` is handed to Keras: "auto" one array for one output and a list for several (a case file
# omits the field, so every case written before it keeps its id), "list" a list also for one
# output, "dict" keyed by output name (docs/y-structures.md: the releases disagree on it).
Y_FORMS = ("auto", "list", "dict")
INPUT_KINDS = ("float", "int")
REGULARIZER_KINDS = ("l1", "l2", "l1_l2")


class CaseError(ValueError):
    """A Case (or a file holding one) is malformed. Names the source, the field, what was expected."""

    def __init__(self, source: str, field_path: str, expected: str, got: Any = None):
        self.source = source
        self.field_path = field_path
        self.expected = expected
        got_text = "" if got is None else f"; got {short(got)}"
        super().__init__(f"{source}: field {field_path}: expected {expected}{got_text}")


def short(value: Any, limit: int = 80) -> str:
    """repr(value), cut to `limit` characters with "..." (for error messages)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regularizer:
    """`keras.regularizers.L1L2(l1, l2)`; `kind` says which constructor the Case asks for."""

    kind: str  # "l1" | "l2" | "l1_l2"
    l1: float = 0.0
    l2: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "l1": self.l1, "l2": self.l2}


@dataclass(frozen=True, eq=False)
class Input:
    name: str
    kind: str  # "float" | "int" (token ids for Embedding)
    data: np.ndarray  # shape (batch, ...)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Input) and _json_eq(self.to_json(), other.to_json())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "data": _array_to_json(self.data)}


@dataclass(frozen=True, eq=False)
class Layer:
    name: str
    type: str  # a key of harness.vocabulary.LAYERS
    inbound: tuple[str, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Keys: a weight name of the layer ("kernel", "bias", "embeddings") or "activity".
    regularizers: Mapping[str, Regularizer] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and _json_eq(self.to_json(), other.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "inbound": list(self.inbound),
            "config": dict(self.config),
            "weights": {k: _array_to_json(v) for k, v in self.weights.items()},
            "regularizers": {k: r.to_json() for k, r in self.regularizers.items()},
        }


@dataclass(frozen=True, eq=False)
class Output:
    layer: str  # the layer whose output this is; also the output's name
    target: np.ndarray
    loss: str  # a key of harness.vocabulary.LOSSES
    loss_options: Mapping[str, Any] = field(default_factory=dict)
    # None exactly when loss_weights_form == "omitted"; an int stays an int (JSON `2`, not `2.0`)
    loss_weight: float | int | None = None
    # (batch,), (batch, 1) (a column) or, on a temporal output, (batch, time) or (batch, time, 1);
    # None when omitted, or (list and dict forms) for an output left out.
    # Which of them an array is: `sample_weight_kind` (it needs the output's shape).
    sample_weight: np.ndarray | None = None
    # How the loss is handed to compile: "object" keras.losses.<Class>(**loss_options), or "name"
    # the string (loss="mean_squared_error"), which takes no options. A case file omits the field
    # for "object", so every case written before it keeps its id.
    loss_by: str = "object"

    @property
    def name(self) -> str:
        return self.layer

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Output) and _json_eq(self.to_json(), other.to_json())

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "target": _array_to_json(self.target),
            "loss": self.loss,
            "loss_options": dict(self.loss_options),
            "loss_weight": self.loss_weight,
            "sample_weight": None if self.sample_weight is None else _array_to_json(self.sample_weight),
            **({} if self.loss_by == "object" else {"loss_by": self.loss_by}),
        }


@dataclass(frozen=True, eq=False)
class Case:
    dtype: str
    inputs: tuple[Input, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[Output, ...]
    loss_form: str = "list"
    loss_weights_form: str = "omitted"
    sample_weight_form: str = "omitted"
    evaluate_batch_size: int = 1
    y_form: str = "auto"
    note: str = ""
    # `class_weight=` of fit and train_on_batch (and of nothing else): class id -> weight, for a
    # one-output model whose targets name one class per sample (rank <= 2); None: not passed. A
    # case file omits the field when None, so every case written before it keeps its id.
    class_weight: Mapping[int, float] | None = None

    # ---- derived views -------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return int(self.inputs[0].data.shape[0])

    @property
    def id(self) -> str:
        return case_id(self)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Case) and dumps(self) == dumps(other)

    def __hash__(self) -> int:
        return hash(case_id(self))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "dtype": self.dtype,
            "inputs": [i.to_json() for i in self.inputs],
            "layers": [layer.to_json() for layer in self.layers],
            "outputs": [o.to_json() for o in self.outputs],
            "loss_form": self.loss_form,
            "loss_weights_form": self.loss_weights_form,
            "sample_weight_form": self.sample_weight_form,
            **({} if self.y_form == "auto" else {"y_form": self.y_form}),
            **({} if self.class_weight is None
               else {"class_weight": {str(k): v for k, v in sorted(self.class_weight.items())}}),
            "evaluate_batch_size": self.evaluate_batch_size,
            "note": self.note,
        }


# --------------------------------------------------------------------------------------
# JSON: canonical dump, id, load with validation
# --------------------------------------------------------------------------------------


def _array_to_json(a: np.ndarray) -> Any:
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return a.astype(np.int64).tolist()
    return a.astype(np.float64).tolist()


def _json_eq(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def dumps(case: Case, *, indent: int | None = None) -> str:
    """Canonical JSON: sorted keys; compact unless `indent` is given (ids always use compact)."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(case.to_json(), sort_keys=True, separators=separators, indent=indent, allow_nan=False)


def case_id(case: Case) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON; stable across environments."""
    return hashlib.sha256(dumps(case).encode("utf-8")).hexdigest()[:16]


def structure_key(case: Case) -> str:
    """The Case without its values: what Keras is given to build and compile a model.

    Two Cases with the same key differ only in the values of their weights, inputs, targets
    and sample weights (same shapes, same integer-or-float kinds), so one built and compiled
    model, with its traced and compiled step functions, serves both once the weights are
    assigned (harness.impls.paths keeps the models of the last key). Everything passed to
    `keras.Model`, a layer, a regularizer or `compile` is part of the key: dtype, names,
    layer types, configs, weight shapes, regularizer factors, losses and their options,
    loss weights (compile arguments, baked into the traced step), the forms, the evaluate
    batch size. The note is not."""

    def shape(a: np.ndarray | None) -> Any:
        if a is None:
            return None
        a = np.asarray(a)
        return [list(a.shape), "int" if a.dtype.kind in "iub" else "float"]

    key = {
        "dtype": case.dtype,
        "inputs": [[i.name, i.kind, shape(i.data)] for i in case.inputs],
        "layers": [[layer.name, layer.type, list(layer.inbound), dict(layer.config),
                    {w: shape(v) for w, v in layer.weights.items()},
                    {k: r.to_json() for k, r in layer.regularizers.items()}] for layer in case.layers],
        "outputs": [[o.layer, shape(o.target), o.loss, dict(o.loss_options), o.loss_weight, shape(o.sample_weight)]
                    + ([] if o.loss_by == "object" else [o.loss_by])
                    for o in case.outputs],
        "forms": [case.loss_form, case.loss_weights_form, case.sample_weight_form, case.y_form],
        "evaluate_batch_size": case.evaluate_batch_size,
        # class_weight makes the train step receive sample weights where it may have had none
        **({} if case.class_weight is None else {"class_weight": sorted(case.class_weight)}),
    }
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def pretty(case: Case) -> str:
    """Indented JSON for files people read: objects one key a line, arrays on one line each."""
    return _pretty(case.to_json(), "")


def _pretty(value: Any, pad: str) -> str:
    inner = pad + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_pretty(value[k], inner)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and value and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + _pretty(v, inner) for v in value) + "\n" + pad + "]"
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), allow_nan=False)


def dump(case: Case, path: str | Path) -> None:
    Path(path).write_text(pretty(case) + "\n", encoding="utf-8")


def loads(text: str, source: str = "<string>") -> Case:
    try:
        raw = json.loads(text)  # NaN / Infinity parse as floats here, and are refused by path below
    except json.JSONDecodeError as exc:
        raise CaseError(source, f"(line {exc.lineno}, column {exc.colno})", "valid JSON", exc.msg) from None
    bad = _first_nonfinite(raw, "$")
    if bad is not None:
        raise CaseError(source, bad[0], "a finite number", bad[1])
    return from_json(raw, source)


def _first_nonfinite(value: Any, path: str) -> tuple[str, float] | None:
    """The JSON path and value of the first NaN or infinity in a parsed document, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if isinstance(value, dict):
        items = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub_path, sub in items:
        found = _first_nonfinite(sub, sub_path)
        if found is not None:
            return found
    return None


def load(path: str | Path) -> Case:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseError(str(path), "(file)", "a readable file", exc.strerror) from None
    except UnicodeDecodeError as exc:
        raise CaseError(str(path), "(file)", "UTF-8 text (a JSON case file)",
                        f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start}") from None
    return loads(text, source=str(path))


class _Reader:
    """Reads one JSON object field by field; every complaint names the source and JSON path."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, expected: str, got: Any = None) -> CaseError:
        return CaseError(self.source, path, expected, got)

    def obj(self, value: Any, path: str, known: tuple[str, ...] | None = None) -> dict[str, Any]:
        """An object; with `known`, one whose every field is a known name (a misspelt field is
        refused, not dropped: `sampel_weight` would otherwise run the case unweighted)."""
        if not isinstance(value, dict):
            raise self.fail(path, "an object", value)
        for key in value:
            if known is not None and key not in known:
                raise self.fail(f"{path}.{key}", "a known field: " + ", ".join(known), key)
        return value

    def items(self, obj: dict[str, Any], key: str, known: tuple[str, ...], what: str,
              nonempty: bool = True) -> list[tuple[str, dict[str, Any]]]:
        """(path, object) for each entry of the list `obj[key]` (a top-level field), each an
        object whose fields are among `known`."""
        raw = self.get(obj, key, "$")
        if not isinstance(raw, list) or (nonempty and not raw):
            raise self.fail(f"$.{key}", f"a {'non-empty ' if nonempty else ''}list of {what}", raw)
        return [(f"$.{key}[{i}]", self.obj(item, f"$.{key}[{i}]", known)) for i, item in enumerate(raw)]

    def get(self, obj: dict[str, Any], key: str, path: str, default: Any = ..., ) -> Any:
        if key not in obj:
            if default is ...:
                raise self.fail(f"{path}.{key}", "a value (field is missing)")
            return default
        return obj[key]

    def string(self, value: Any, path: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or (choices is not None and value not in choices):
            expected = "a string" if choices is None else "one of " + ", ".join(repr(c) for c in choices)
            raise self.fail(path, expected, value)
        return value

    def number(self, value: Any, path: str, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(path, "a finite number", value)
        if minimum is not None and value < minimum:
            raise self.fail(path, f"a number >= {minimum}", value)
        return float(value)

    def int_or_float(self, value: Any, path: str) -> int | float:
        """A finite number that keeps its JSON type: `2` an int, `2.0` a float."""
        return value if type(value) is int else self.number(value, path)

    def integer(self, value: Any, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, "an integer", value)
        if minimum is not None and value < minimum:
            raise self.fail(path, f"an integer >= {minimum}", value)
        return value

    def array(self, value: Any, path: str, kind: str = "float") -> np.ndarray:
        """A rectangular nested list of numbers (rank >= 1)."""
        if not isinstance(value, list):
            raise self.fail(path, "an array (nested list of numbers)", value)
        try:
            a = np.array(value, dtype=np.float64 if kind == "float" else object)
        except (ValueError, TypeError):
            raise self.fail(path, "a rectangular array of numbers", value) from None
        if a.dtype == object and kind == "float":
            raise self.fail(path, "a rectangular array of numbers", value)
        if kind == "int":
            flat = a.reshape(-1).tolist()
            if a.dtype == object and any(isinstance(v, list) for v in flat):
                raise self.fail(path, "a rectangular array of integers", value)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
                raise self.fail(path, "an array of integers", value)
            a = np.array(value, dtype=np.int64)
        elif not np.all(np.isfinite(a)):
            raise self.fail(path, "finite numbers", value)
        if a.ndim == 0:
            raise self.fail(path, "an array of rank >= 1", value)
        return a


def from_json(raw: Any, source: str = "<json>") -> Case:
    """Build and validate a Case from parsed JSON. Raises CaseError naming source and field."""
    r = _Reader(source)
    top = r.obj(raw, "$", ("schema", "dtype", "evaluate_batch_size", "note", "inputs", "layers", "outputs",
                           "loss_form", "loss_weights_form", "sample_weight_form", "y_form", "class_weight"))
    schema = r.get(top, "schema", "$")
    if schema != SCHEMA_VERSION:
        raise r.fail("$.schema", f"schema version {SCHEMA_VERSION}", schema)
    dtype = r.string(r.get(top, "dtype", "$"), "$.dtype", DTYPES)

    inputs = []
    for p, item in r.items(top, "inputs", ("name", "kind", "data"), "inputs"):
        kind = r.string(r.get(item, "kind", p), f"{p}.kind", INPUT_KINDS)
        inputs.append(
            Input(
                name=r.string(r.get(item, "name", p), f"{p}.name"),
                kind=kind,
                data=r.array(r.get(item, "data", p), f"{p}.data", kind),
            )
        )

    layers = []
    for p, item in r.items(top, "layers", ("name", "type", "inbound", "config", "weights", "regularizers"), "layers",
                           nonempty=False):
        inbound = r.get(item, "inbound", p)
        if not isinstance(inbound, list) or not inbound or not all(isinstance(s, str) for s in inbound):
            raise r.fail(f"{p}.inbound", "a non-empty list of input or layer names", inbound)
        config = r.obj(r.get(item, "config", p, {}), f"{p}.config")
        weights_raw = r.obj(r.get(item, "weights", p, {}), f"{p}.weights")
        weights = {k: r.array(v, f"{p}.weights.{k}") for k, v in weights_raw.items()}
        regs_raw = r.obj(r.get(item, "regularizers", p, {}), f"{p}.regularizers")
        regs = {}
        for key, reg in regs_raw.items():
            rp = f"{p}.regularizers.{key}"
            reg = r.obj(reg, rp, ("kind", "l1", "l2"))
            regs[key] = Regularizer(
                kind=r.string(r.get(reg, "kind", rp), f"{rp}.kind", REGULARIZER_KINDS),
                l1=r.number(r.get(reg, "l1", rp, 0.0), f"{rp}.l1", minimum=0.0),
                l2=r.number(r.get(reg, "l2", rp, 0.0), f"{rp}.l2", minimum=0.0),
            )
        layers.append(
            Layer(
                name=r.string(r.get(item, "name", p), f"{p}.name"),
                type=r.string(r.get(item, "type", p), f"{p}.type"),
                inbound=tuple(inbound),
                config=config,
                weights=weights,
                regularizers=regs,
            )
        )

    outputs = []
    for p, item in r.items(top, "outputs", ("layer", "target", "loss", "loss_options", "loss_weight", "sample_weight",
                                            "loss_by"), "outputs"):
        lw = r.get(item, "loss_weight", p, None)
        sw = r.get(item, "sample_weight", p, None)
        target_raw = r.get(item, "target", p)
        # Integer targets (sparse labels) stay integers; everything else is float.
        target_kind = "int" if _all_ints(target_raw) else "float"
        outputs.append(
            Output(
                layer=r.string(r.get(item, "layer", p), f"{p}.layer"),
                target=r.array(target_raw, f"{p}.target", target_kind),
                loss=r.string(r.get(item, "loss", p), f"{p}.loss"),
                loss_options=r.obj(r.get(item, "loss_options", p, {}), f"{p}.loss_options"),
                loss_weight=None if lw is None else r.int_or_float(lw, f"{p}.loss_weight"),
                sample_weight=None if sw is None else r.array(sw, f"{p}.sample_weight"),
                loss_by=r.string(r.get(item, "loss_by", p, "object"), f"{p}.loss_by", LOSS_BY),
            )
        )

    case = Case(
        dtype=dtype,
        inputs=tuple(inputs),
        layers=tuple(layers),
        outputs=tuple(outputs),
        loss_form=r.string(r.get(top, "loss_form", "$"), "$.loss_form", LOSS_FORMS),
        loss_weights_form=r.string(r.get(top, "loss_weights_form", "$"), "$.loss_weights_form", LOSS_WEIGHTS_FORMS),
        sample_weight_form=r.string(
            r.get(top, "sample_weight_form", "$"), "$.sample_weight_form", SAMPLE_WEIGHT_FORMS
        ),
        evaluate_batch_size=r.integer(r.get(top, "evaluate_batch_size", "$"), "$.evaluate_batch_size", 1),
        note=r.string(r.get(top, "note", "$", ""), "$.note"),
        y_form=r.string(r.get(top, "y_form", "$", "auto"), "$.y_form", Y_FORMS),
        class_weight=_class_weight(r, r.get(top, "class_weight", "$", None)),
    )
    validate(case, source)
    return case


def _class_weight(r: _Reader, raw: Any) -> dict[int, float] | None:
    """`class_weight`: an object whose keys are class ids written as JSON strings ("0", "2") and
    whose values are finite weights >= 0; null or absent: not passed."""
    if raw is None:
        return None
    r.obj(raw, "$.class_weight")
    out: dict[int, float] = {}
    for key, value in raw.items():
        if not (isinstance(key, str) and key.isdigit() and str(int(key)) == key):
            raise r.fail(f"$.class_weight.{key}", "a class id: a non-negative integer written as a string (\"0\", \"1\")", key)
        out[int(key)] = r.number(value, f"$.class_weight.{key}", minimum=0.0)
    if not out:
        raise r.fail("$.class_weight", "at least one class id (or null: no class_weight)", raw)
    return out


def _all_ints(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_all_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------
# Semantic validation (shapes, names, forms, vocabulary, domains)
# --------------------------------------------------------------------------------------


def validate(case: Case, source: str = "<case>") -> None:
    """Check a Case for consistency; raise CaseError naming the field on the first problem.

    Structure and forms are checked here; each layer type, loss and regularizer checks its
    own config, weight shapes and domains through its vocabulary entry (harness.vocabulary).
    """
    def fail(path: str, expected: str, got: Any = None) -> CaseError:
        return CaseError(source, path, expected, got)

    batch = case.batch_size
    if batch < 1:
        raise fail("$.inputs[0].data", "at least one sample", case.inputs[0].data.shape)
    if case.evaluate_batch_size > batch:
        raise fail("$.evaluate_batch_size", f"at most the batch size {batch}", case.evaluate_batch_size)

    shapes: dict[str, tuple[int, ...]] = {}
    kinds: dict[str, str] = {}
    for i, inp in enumerate(case.inputs):
        if inp.name in shapes:
            raise fail(f"$.inputs[{i}].name", "a name not used before", inp.name)
        if inp.data.shape[0] != batch:
            raise fail(f"$.inputs[{i}].data", f"batch dimension {batch} (as inputs[0])", inp.data.shape)
        if inp.data.ndim < 2:
            raise fail(f"$.inputs[{i}].data", "rank >= 2 (batch, features...)", inp.data.shape)
        shapes[inp.name] = tuple(inp.data.shape[1:])
        kinds[inp.name] = inp.kind

    for i, layer in enumerate(case.layers):
        p = f"$.layers[{i}]"
        if layer.name in shapes:
            raise fail(f"{p}.name", "a name not used by an earlier input or layer", layer.name)
        entry = vocabulary.LAYERS.get(layer.type)
        if entry is None:
            raise fail(f"{p}.type", "one of " + ", ".join(sorted(vocabulary.LAYERS)), layer.type)
        for j, name in enumerate(layer.inbound):
            if name not in shapes:
                raise fail(f"{p}.inbound[{j}]", "the name of an earlier input or layer", name)
        for key in layer.config:
            if key not in entry.config_keys:
                raise fail(f"{p}.config.{key}", f"a config key of {layer.type}: " + (", ".join(entry.config_keys)
                                                                               or "none"), key)
        in_shapes = [shapes[n] for n in layer.inbound]
        in_kinds = [kinds[n] for n in layer.inbound]
        try:
            out_shape = entry.check(layer, in_shapes, in_kinds)
        except vocabulary.SpecProblem as exc:
            raise fail(f"{p}.{exc.field}", exc.expected, exc.got) from None
        for key, reg in layer.regularizers.items():
            allowed = entry.regularizable + ("activity",)
            if key not in allowed:
                raise fail(f"{p}.regularizers.{key}", "one of " + ", ".join(allowed), key)
            if reg.kind == "l1" and reg.l2 != 0.0 or reg.kind == "l2" and reg.l1 != 0.0:
                raise fail(f"{p}.regularizers.{key}", f"only the {reg.kind} factor set for kind {reg.kind!r}")
        shapes[layer.name] = out_shape
        kinds[layer.name] = "float"

    seen: set[str] = set()
    layer_names = {layer.name for layer in case.layers}
    for i, out in enumerate(case.outputs):
        p = f"$.outputs[{i}]"
        if out.layer not in layer_names:
            raise fail(f"{p}.layer", "the name of a layer", out.layer)
        if out.layer in seen:
            raise fail(f"{p}.layer", "a layer not already used as an output", out.layer)
        seen.add(out.layer)
        loss = vocabulary.LOSSES.get(out.loss)
        if loss is None:
            raise fail(f"{p}.loss", "one of " + ", ".join(sorted(vocabulary.LOSSES)), out.loss)
        pred_shape = (batch,) + shapes[out.layer]
        if out.loss_by == "name" and out.loss_options:
            raise fail(f"{p}.loss_options", "{} (a loss given by name, loss_by 'name', takes no options)",
                       dict(out.loss_options))
        try:
            loss.check(out.target, pred_shape, dict(out.loss_options))
        except vocabulary.SpecProblem as exc:
            raise fail(f"{p}.{exc.field}", exc.expected, exc.got) from None
        if (out.loss_weight is None) != (case.loss_weights_form == "omitted"):
            raise fail(
                f"{p}.loss_weight",
                "null, as loss_weights_form is 'omitted'"
                if case.loss_weights_form == "omitted"
                else f"a number, as loss_weights_form is {case.loss_weights_form!r}",
                out.loss_weight,
            )
        if case.loss_weights_form == "scalar" and len(case.outputs) != 1:
            raise fail("$.loss_weights_form", "'scalar' only for a model with one output "
                       f"(this one has {len(case.outputs)})", case.loss_weights_form)
        # "list" and "dict" may leave an output out (null): Keras gets None at its list position,
        # and a dict without its key (users write `sample_weight={"a": w}`); "single" is one array.
        if out.sample_weight is not None and case.sample_weight_form == "omitted":
            raise fail(f"{p}.sample_weight", "null, as sample_weight_form is 'omitted'")
        if out.sample_weight is None and case.sample_weight_form == "single":
            raise fail(f"{p}.sample_weight", "an array, as sample_weight_form is 'single'")
        if out.sample_weight is not None:
            sw = out.sample_weight
            # Per sample (batch,) or (batch, 1), or per timestep (batch, time) or (batch, time, 1) of a
            # temporal output.
            allowed = [(batch,), (batch, 1)]
            if len(pred_shape) == 3:
                allowed += [s for s in (pred_shape[:2], pred_shape[:2] + (1,)) if s not in allowed]
            if tuple(sw.shape) not in allowed:
                raise fail(f"{p}.sample_weight", "shape " + " or ".join(map(str, allowed)), sw.shape)
            if np.any(sw < 0):
                raise fail(f"{p}.sample_weight", "non-negative weights", sw.tolist())

    # A functional Keras model keeps only the layers between its inputs and outputs
    # (keras/src/models/functional.py and tf_keras/src/engine/functional.py build the graph by
    # walking back from the outputs): a layer that feeds no output would lose its weights,
    # regularizers and add_loss there, but not in the reference.
    needed = {out.layer for out in case.outputs}
    for layer in reversed(case.layers):
        if layer.name in needed:
            needed.update(layer.inbound)
    for i, layer in enumerate(case.layers):
        if layer.name not in needed:
            raise fail(f"$.layers[{i}].name", "a layer that feeds an output (Keras drops the others)", layer.name)

    if case.loss_form == "single":
        first = case.outputs[0]
        for i, out in enumerate(case.outputs[1:], start=1):
            if (out.loss != first.loss or dict(out.loss_options) != dict(first.loss_options)
                    or out.loss_by != first.loss_by):
                raise fail(f"$.outputs[{i}].loss", "the same loss, options and loss_by as outputs[0] (loss_form 'single')")
    if case.class_weight is not None:
        # What the case can say so far: class_weight beside one output, y as one array, and
        # sample weights (batch,) or none. Keras 3 and tf-keras refuse class_weight for several
        # outputs; the other forms (a temporal target, a (batch, 1) weight that tf-keras's map
        # function multiplies into a (batch, batch) outer product) are not drawn yet.
        out = case.outputs[0]
        if len(case.outputs) != 1:
            raise fail("$.class_weight", f"a one-output case (this one has {len(case.outputs)} outputs)")
        if case.y_form != "auto":
            raise fail("$.y_form", "'auto' (y one array) beside class_weight", case.y_form)
        if out.target.ndim > 2:
            raise fail("$.outputs[0].target", "rank <= 2 (one class per sample) beside class_weight", out.target.shape)
        if out.sample_weight is not None and (case.sample_weight_form != "single" or out.sample_weight.ndim != 1):
            raise fail("$.outputs[0].sample_weight", "shape (batch,) given as one array (sample_weight_form 'single') "
                       "beside class_weight", out.sample_weight.shape)
    if case.sample_weight_form in ("list", "dict") and all(o.sample_weight is None for o in case.outputs):
        raise fail("$.outputs[0].sample_weight", f"an array for at least one output (sample_weight_form "
                   f"{case.sample_weight_form!r}; a case without weights says 'omitted')")
    if case.sample_weight_form == "single":
        first_sw = case.outputs[0].sample_weight
        for i, out in enumerate(case.outputs[1:], start=1):
            assert out.sample_weight is not None and first_sw is not None
            if out.sample_weight.shape != first_sw.shape or not np.array_equal(out.sample_weight, first_sw):
                raise fail(f"$.outputs[{i}].sample_weight", "the same array as outputs[0] (sample_weight_form 'single')")


# --------------------------------------------------------------------------------------
# Derived shapes of a valid Case
# --------------------------------------------------------------------------------------


def output_shapes(case: Case) -> dict[str, tuple[int, ...]]:
    """Output name -> the shape of its predictions, batch first, of a Case that `validate` passed
    (each layer's vocabulary entry computes its output shape, as in `validate`)."""
    shapes = {inp.name: tuple(inp.data.shape[1:]) for inp in case.inputs}
    kinds = {inp.name: inp.kind for inp in case.inputs}
    for layer in case.layers:
        entry = vocabulary.LAYERS[layer.type]
        shapes[layer.name] = entry.check(layer, [shapes[n] for n in layer.inbound], [kinds[n] for n in layer.inbound])
        kinds[layer.name] = "float"
    return {o.name: (case.batch_size,) + shapes[o.layer] for o in case.outputs}


SAMPLE_WEIGHT_KINDS = ("per_sample", "column", "timestep", "timestep_trailing_axis")


def sample_weight_kind(case: Case, out: Output) -> str | None:
    """What an output's sample weight is: "per_sample" (batch,), "timestep" (batch, time) on a
    temporal output (time == 1 included: then it is also a column, and every lineage reads it per
    step), "timestep_trailing_axis" (batch, time, 1) on a temporal output, "column" (batch, 1)
    otherwise; None when it has none."""
    sw = out.sample_weight
    if sw is None:
        return None
    if sw.ndim == 1:
        return "per_sample"
    pred = output_shapes(case)[out.name]
    if len(pred) == 3 and tuple(sw.shape) == pred[:2] + (1,):
        return "timestep_trailing_axis"
    return "timestep" if len(pred) == 3 and tuple(sw.shape) == pred[:2] else "column"
