"""The Result: what one implementation computed for one Case. Plain data, JSON lines.

A results file (`reports/results/<environment>.jsonl`) is append-only JSON lines:

    {"kind": "header", "schema": 1, "impl": NAME, "versions": {...}, "started": ISO-8601}
    {"kind": "case", "schema": 1, "case_id": ID, "case": {...Case JSON...}}
    {"kind": "result", "schema": 1, ...ImplResult.to_json()...}

A header is written each time a worker for an implementation starts; a case record once per
case id per file; a result record per (case id, implementation). Readers join by case id.

Paths (DESIGN.md, "Paths"): each PathResult is one way an implementation yields the total
loss, named `path` (see PATHS) and `mode` (how the step runs: "eager", "function" (tf-keras
tf.function), "compiled" (Keras 3 run_eagerly=False), "jit", "graph" (TF1 session)).
`terms` is the per-term breakdown that the implementation itself exposes, with shared keys:

    "output/<name>"   that output's loss as the implementation logs it
    "regularization"  sum of model.losses (regularizers and add_loss), as it computes it
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RESULTS_SCHEMA_VERSION = 1

PATHS = ("compute_loss", "test_on_batch", "train_on_batch", "evaluate", "fit")
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
class ImplResult:
    case_id: str
    impl: str
    status: str = "ok"  # see RUN_STATUSES
    paths: list[PathResult] = field(default_factory=list)
    predictions: dict[str, Any] | None = None  # output name -> nested list (NaN as "nan")
    stderr_tail: str | None = None  # crashed / timeout / import-error: last lines of stderr
    message: str | None = None
    seconds: float | None = None

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
