"""The Result: what one implementation computed for one Case. Plain data, JSON lines.

A results file (`reports/results/<environment>.jsonl`) is append-only JSON lines:

    {"kind": "header", "schema": 1, "impl": NAME, "versions": {...}, "started": ISO-8601,
     "semantics": HASH, "strict": PROFILE (only under run --strict)}
    {"kind": "case", "schema": 1, "case_id": ID, "case": {...Case JSON...}}
    {"kind": "result", "schema": 1, ...ImplResult.to_json()..., "verdicts": {...},
     "semantics": HASH, "strict": PROFILE (only under run --strict)}

A header is written each time a worker for an implementation starts; a case record once per
case id per file; a result record per (case id, implementation). Readers join by case id.

Observations apart from judgements: ImplResult is what the implementation returned; the
verdicts are a function of it, of its case, of its header's versions and of `strict`, under
the semantics whose hash (`rules.semantics_hash()`) the record carries. `python -m harness
judge` and the report derive them again (harness/judging.py). "semantics" and "strict" are
optional fields added to schema 1 (a reader that does not know them ignores them; a record
without "semantics" was judged with semantics nobody recorded), so the schema stays 1.

Paths (DESIGN.md, "Paths"): each PathResult is one way an implementation yields the total
loss, named `path` (see PATHS) and `mode` (how the step runs: "eager", "function" (tf-keras
tf.function), "compiled" (Keras 3 run_eagerly=False), "jit", "graph" (TF1 session)).
`terms` is the per-term breakdown that the implementation itself exposes, with shared keys:

    "output/<name>"   that output's loss as the implementation logs it
    "regularization"  sum of model.losses (regularizers and add_loss), as it computes it

Gradients (issue 10): `ImplResult.gradients` is a GradientResult: the gradient of the total loss
with respect to every trainable weight, obtained the way the implementation's own train step
obtains it, and the update one SGD step at a known learning rate applies (new weights minus
old). Weights are keyed "<layer name>/<weight short name>" ("hidden/kernel"), the names of
`Case.layers[*].weights`. Distributed implementations (MirroredStrategy, DataParallel) add a
DistributionResult: how the global batch was split and the loss each replica differentiates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# A Keras source file named in an error message or a reference note ("keras/src/losses/loss.py",
# "tf_keras/src/engine/compile_utils.py"): where an error was raised, as compare.predicts_error
# matches it and paths.error_message keeps it.
KERAS_FILE = re.compile(r"\b((?:tf_keras|keras)/[\w/]+\.py)")

RESULTS_SCHEMA_VERSION = 1

PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit", "test_on_batch_loop")
# The paths that train (at learning rate 0): the ones that take class_weight= and may move the weights.
TRAIN_PATHS = ("train_on_batch", "fit")
# The paths whose forward pass runs in training mode, model(x, training=True): the training paths and
# compute_loss, whose y_pred the adapters compute as train_step does (harness/impls/paths.py). The
# others run in inference mode (BatchNormalization: batch or moving statistics).
TRAINING_MODE_PATHS = ("compute_loss",) + TRAIN_PATHS
PATH_STATUSES = ("ok", "unsupported", "error")
# Status of a whole (case, implementation) run. "ok" means the worker answered; each path has
# its own status inside.
RUN_STATUSES = ("ok", "crashed", "timeout", "import-error")


@dataclass
class PathResult:
    path: str
    mode: str
    status: str  # "ok" | "unsupported" | "error"
    total: float | None = None  # NaN and inf are values (written as strings "nan", "inf", "-inf")
    terms: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # why unsupported
    error_type: str | None = None
    error_message: str | None = None
    weights_moved: bool | None = None  # train_on_batch / fit at learning rate 0: did any weight change?

    @property
    def key(self) -> str:
        return f"{self.path}/{self.mode}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "mode": self.mode, "status": self.status}
        if self.total is not None:
            out["total"] = encode_float(self.total)
        if self.terms:
            out["terms"] = {k: encode_float(v) for k, v in self.terms.items()}
        for name in ("reason", "error_type", "error_message", "weights_moved"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "PathResult":
        return cls(
            path=raw["path"],
            mode=raw["mode"],
            status=raw["status"],
            total=None if raw.get("total") is None else decode_float(raw["total"]),
            terms={k: decode_float(v) for k, v in raw.get("terms", {}).items()},
            reason=raw.get("reason"),
            error_type=raw.get("error_type"),
            error_message=raw.get("error_message"),
            weights_moved=raw.get("weights_moved"),
        )


@dataclass
class GradientResult:
    """d(total loss)/d(weight) for every trainable weight, and one SGD step's update."""

    status: str  # "ok" | "unsupported" | "error"
    how: str = ""  # the mechanism, e.g. "tf.GradientTape around train_step's loss"
    loss: float | None = None  # the value that was differentiated (summed over replicas when distributed)
    gradients: dict[str, Any] = field(default_factory=dict)  # "<layer>/<weight>" -> nested list
    learning_rate: float | None = None  # of the SGD step whose update is in `updates`
    update_mode: str | None = None  # the mode of the train_on_batch that applied it
    updates: dict[str, Any] = field(default_factory=dict)  # "<layer>/<weight>" -> new - old (nested list)
    update_error: str | None = None  # the update step failed ("<Type>: <message>"); gradients may be there
    reason: str | None = None  # why unsupported
    error_type: str | None = None
    error_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "how": self.how}
        if self.loss is not None:
            out["loss"] = encode_float(self.loss)
        if self.gradients:
            out["gradients"] = {k: encode_nested(v) for k, v in self.gradients.items()}
        if self.updates:
            out["updates"] = {k: encode_nested(v) for k, v in self.updates.items()}
        for name in ("learning_rate", "update_mode", "update_error", "reason", "error_type", "error_message"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "GradientResult":
        return cls(
            status=raw["status"],
            how=raw.get("how", ""),
            loss=None if raw.get("loss") is None else decode_float(raw["loss"]),
            gradients={k: decode_nested(v) for k, v in raw.get("gradients", {}).items()},
            learning_rate=raw.get("learning_rate"),
            update_mode=raw.get("update_mode"),
            updates={k: decode_nested(v) for k, v in raw.get("updates", {}).items()},
            update_error=raw.get("update_error"),
            reason=raw.get("reason"),
            error_type=raw.get("error_type"),
            error_message=raw.get("error_message"),
        )


@dataclass
class DistributionResult:
    """A run under a distribution strategy: how the global batch was split among replicas and
    the loss each replica differentiates (its gradients are summed into what the optimizer gets)."""

    strategy: str  # e.g. "tf.distribute.MirroredStrategy", "keras.distribution.DataParallel"
    replicas: int
    split: list[int] | None = None  # rows of the global batch each replica computed on
    replica_losses: list[float] | None = None  # the loss each replica differentiates, as it scales it
    notes: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy, "replicas": self.replicas}
        if self.split is not None:
            out["split"] = list(self.split)
        if self.replica_losses is not None:
            out["replica_losses"] = [encode_float(v) for v in self.replica_losses]
        if self.notes is not None:
            out["notes"] = self.notes
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "DistributionResult":
        losses = raw.get("replica_losses")
        return cls(strategy=raw["strategy"], replicas=int(raw["replicas"]), split=raw.get("split"),
                   replica_losses=None if losses is None else [decode_float(v) for v in losses],
                   notes=raw.get("notes"))


@dataclass
class ImplResult:
    case_id: str
    impl: str
    status: str = "ok"  # see RUN_STATUSES
    paths: list[PathResult] = field(default_factory=list)
    predictions: dict[str, Any] | None = None  # output name -> nested list (NaN as "nan")
    stderr_tail: str | None = None  # crashed / timeout / import-error: last lines of stderr
    message: str | None = None
    seconds: float | None = None
    gradients: GradientResult | None = None
    distribution: DistributionResult | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "result",
            "schema": RESULTS_SCHEMA_VERSION,
            "case_id": self.case_id,
            "impl": self.impl,
            "status": self.status,
            "paths": [p.to_json() for p in self.paths],
        }
        if self.predictions is not None:
            out["predictions"] = {k: encode_nested(v) for k, v in self.predictions.items()}
        for name in ("stderr_tail", "message", "seconds"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in ("gradients", "distribution"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_json()
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "ImplResult":
        preds = raw.get("predictions")
        return cls(
            case_id=raw["case_id"],
            impl=raw["impl"],
            status=raw["status"],
            paths=[PathResult.from_json(p) for p in raw.get("paths", [])],
            predictions=None if preds is None else {k: decode_nested(v) for k, v in preds.items()},
            stderr_tail=raw.get("stderr_tail"),
            message=raw.get("message"),
            seconds=raw.get("seconds"),
            gradients=None if raw.get("gradients") is None else GradientResult.from_json(raw["gradients"]),
            distribution=None if raw.get("distribution") is None else DistributionResult.from_json(raw["distribution"]),
        )


# JSON has no NaN or infinity; a loss can be either. They travel as strings.
def encode_float(x: float) -> float | str:
    x = float(x)
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return x


def decode_float(x: float | str | int) -> float:
    if isinstance(x, str):
        if x not in ("nan", "inf", "-inf"):
            raise ValueError(f"expected a number or 'nan'/'inf'/'-inf', got {x!r}")
        return float(x)
    return float(x)


def encode_nested(v: Any) -> Any:
    if isinstance(v, list):
        return [encode_nested(x) for x in v]
    return encode_float(v)


def decode_nested(v: Any) -> Any:
    if isinstance(v, list):
        return [decode_nested(x) for x in v]
    return decode_float(v)
