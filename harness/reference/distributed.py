"""The loss under a distribution strategy: what each replica differentiates, and what is reported.

Rules (rules.py; each alternative cites the Keras source):
  replica_split                   which rows of a batch each replica computes on (per path)
  replica_loss_scaling            is an output's loss divided by the number of replicas
                                  (scale_loss_for_distribution), and for which reductions
  replica_regularization_scaling  is sum(model.losses) divided by the number of replicas
  replica_loss_metric             how the reported loss (the Mean metric) combines the replicas

Each replica computes its local loss with aggregate's one-batch machinery on its own rows (masks
normalised by the replica's valid entries, activity regularizers divided by the replica's
rows, add_loss summed over its rows), then applies the scaling rules:

    D_r = sum_o lw_o * L_o,r * s_o  +  sum(model.losses)_r * s_reg
          s_o   = 1/R when the output's reduction is sum_over_batch_size (replica_loss_scaling
                  "mean_reductions_divided"), else 1;  s_reg = 1/R under "divided", else 1.

The optimizer receives the sum of the replicas' gradients (an all-reduce SUM), i.e. the
gradient of `total` = sum_r D_r (DistributedBreakdown.total). The reported loss of a path is a
Mean metric updated by every replica with its unscaled loss and its rows as weight:

    reported = sum_{b,r} n_rb * V_rb / sum_{b,r} n_rb,
    V_rb     = sum_o lw_o * L_o,rb * (R if reduction == "sum" else 1) + sum(model.losses)_rb

(replica_loss_metric "row_weighted_sum_times_replicas"). A replica with no rows (a batch of
one row over two replicas) computes 0 for every output and activity term (divide_no_nan) and
still counts its weight regularizers in D_r; it adds nothing to the reported mean (weight 0).

All distributed implementations run R = REPLICAS = 2 (harness/impls/distributed.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from harness.results import TRAINING_MODE_PATHS
from harness.reference import aggregate, class_weights, forward
from harness.reference import rules as rules_mod
from harness.reference.errors import ErrorSite, Note, prefixed
from harness.spec import Case

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

REPLICAS = 2

_SHARDING_SITE = ErrorSite(("IndivisibleError", "ValueError"), ("keras/src/backend/jax/distribution_lib.py",
                                                              "keras/src/backend/jax/trainer.py"), "distribute_data_input")
_SYMBOLIC_BUILD_SITE = ErrorSite(("InvalidArgumentError", "ValueError"), ("keras/src/backend/tensorflow/trainer.py",),
                                 "TensorFlowTrainer._maybe_symbolic_build")
_SHARDING_ERROR = ("batch of {rows} rows on {replicas} devices: DataParallel lays the batch out sharded along "
                   "its first axis, which must divide evenly: IndivisibleError (keras/src/backend/jax/"
                   "distribution_lib.py:distribute_data_input via keras/src/backend/jax/trainer.py:_distribute_data)")
_SYMBOLIC_BUILD_ERROR = ("the first batch of {rows} rows splits {split} among the replicas; "
                         "TensorFlowTrainer._maybe_symbolic_build reduces that distributed batch with "
                         "strategy.reduce('MEAN', ...), which needs equal shapes: InvalidArgumentError 'Inputs to "
                         "operation AddN ... must have the same size and shape' "
                         "(keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer._maybe_symbolic_build)")


_EMPTY_REPLICA = (" [a replica without rows; under fit TensorFlow may raise it from the gradient of the step "
                  "(keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer.train_step), observed]")


@dataclass
class DistributedBreakdown:
    """One train step under a strategy: the rows each replica computed on, the loss each
    differentiates, their sum (what the summed gradient is the gradient of), its magnitude (sum
    of absolute values of everything summed, as aggregate.Breakdown.magnitude) and the errors the
    implementation raises (citing the Keras file)."""

    split: list[int]
    replica_losses: list[float]
    total: float
    magnitude: float
    notes: list[str] = field(default_factory=list)
    replica_magnitudes: list[float] = field(default_factory=list)  # of each replica loss, for its tolerance

    def to_json(self) -> dict[str, Any]:
        from harness.results import encode_float

        return {"split": list(self.split), "replica_losses": [encode_float(v) for v in self.replica_losses],
                "total": encode_float(self.total), "magnitude": encode_float(self.magnitude), "notes": list(self.notes),
                "replica_magnitudes": [encode_float(v) for v in self.replica_magnitudes]}


# ---------------------------------------------------------------------------------------
# Splitting a batch
# ---------------------------------------------------------------------------------------


def balanced_split(rows: int, replicas: int) -> list[int]:
    """tf.distribute's rebatch of one batch: the first rows % replicas replicas get one row more
    (observed with MirroredStrategy over 2 CPUs: 5 -> 3+2, 3 -> 2+1, 2 -> 1+1, 1 -> 1+0)."""
    base, extra = divmod(rows, replicas)
    return [base + (1 if r < extra else 0) for r in range(replicas)]


def replica_rows(batch: np.ndarray, rules: Mapping[str, str], replicas: int,
                 path: str) -> tuple[list[np.ndarray], str | None]:
    """The row indices of `batch` that each replica computes on, under rule replica_split on
    `path`, or ([], why) when the implementation refuses the batch."""
    n = len(batch)
    if rules_mod.chooses(rules, "replica_split", "single_device"):
        return [batch], None
    if path in aggregate.WHOLE_BATCH_PATHS and rules_mod.chooses(rules, "replica_split", "whole_batch_on_batch"):
        return [batch] * replicas, None
    if rules_mod.chooses(rules, "replica_split", "sharded_even"):
        if n % replicas:
            return [], Note(_SHARDING_ERROR.format(rows=n, replicas=replicas), _SHARDING_SITE)
        return list(np.split(batch, replicas)), None
    # "rebatch", and "whole_batch_on_batch" on evaluate/fit
    sizes = balanced_split(n, replicas)
    return list(np.split(batch, np.cumsum(sizes)[:-1])), None


# ---------------------------------------------------------------------------------------
# One replica's local loss
# ---------------------------------------------------------------------------------------


def _local(case: Case, rows: np.ndarray, rules: Mapping[str, str], batched: bool, training: bool) -> Any:
    """aggregate's one-batch result on the replica's `rows`. With no rows every output and
    activity term is 0 (Keras divides with divide_no_nan; sums of nothing are 0), the weight
    regularizers count as they are, and the broadcast checks still apply (Keras 3: a (0,)
    sample weight against (0, time) losses is a broadcast error, observed in replica 1)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return aggregate._one_batch(case, rows, rules, batched=batched, training=training)


def _output_scale(reduction: str, rules: Mapping[str, str], replicas: int) -> float:
    """The factor scale_loss_for_distribution applies to an output's loss in a replica: every
    reduction but "sum" is a mean ("mean", "mean_with_sample_weight" and tf-keras's "auto" too:
    keras/src/losses/loss.py:reduce_values scales inside the same branch)."""
    if reduction != "sum" and rules_mod.chooses(rules, "replica_loss_scaling", "mean_reductions_divided"):
        return 1.0 / replicas
    return 1.0


def _regularization_scale(rules: Mapping[str, str], replicas: int) -> float:
    return 1.0 / replicas if rules_mod.chooses(rules, "replica_regularization_scaling", "divided") else 1.0


def _differentiated_one(b: Any, rules: Mapping[str, str], replicas: int) -> tuple[float, float]:
    """(D_r, its magnitude) for one replica's local result `b`."""
    if b.notes:
        return math.nan, math.nan
    reg = _regularization_scale(rules, replicas)
    value = sum(o.weighted * _output_scale(o.reduction, rules, replicas) for o in b.outputs)
    magnitude = sum(o.weighted_magnitude * _output_scale(o.reduction, rules, replicas) for o in b.outputs)
    value += reg * sum(p.value for p in b.penalties)
    magnitude += reg * sum(p.magnitude for p in b.penalties)
    return float(value), float(magnitude)


def differentiated(case: Case, profile: str | Mapping[str, str], replicas: int = REPLICAS) -> DistributedBreakdown:
    """What one train_on_batch under the strategy differentiates: per replica (rows as
    replica_split deals them for train_on_batch) its loss D_r; `total` = sum_r D_r.

    Under replica_split "single_device" or "sharded_even" there is one global program: one loss,
    the single-device total (split: the rows per device for sharded_even)."""
    rules = rules_mod.resolve(profile)
    case, refused = class_weights.weighted(aggregate._as_computed(case, rules), "train_on_batch", rules)
    batch = np.arange(case.batch_size)
    if refused:  # refused before the batch is placed (Keras 3's and tf-keras's own checks, the dataset's map)
        return DistributedBreakdown([], [math.nan], math.nan, math.nan, list(refused), [math.nan])
    groups, error = replica_rows(batch, rules, replicas, "train_on_batch")
    if error is not None:
        # The batch is refused as it is placed; the loss's own errors are noted too (which one the
        # implementation raises first depends on its order: either note predicts it).
        notes = [error] + aggregate._one_batch(case, batch, rules, training=True).notes
        return DistributedBreakdown([], [math.nan], math.nan, math.nan, notes, [math.nan])
    if (rules_mod.chooses(rules, "replica_split", "single_device")
            or rules_mod.chooses(rules, "replica_split", "sharded_even")):
        b = aggregate._one_batch(case, batch, rules, training=True)
        value, magnitude = (math.nan, math.nan) if b.notes else (b.total, b.magnitude)
        return DistributedBreakdown([len(g) for g in groups], [value], value, magnitude, list(b.notes), [magnitude])
    locals_ = [_local(case, rows, rules, batched=False, training=True) for rows in groups]
    values = [_differentiated_one(b, rules, replicas) for b in locals_]
    notes = [prefixed(f"replica {r}: ", note) for r, b in enumerate(locals_) for note in b.notes]
    total = float(sum(v for v, _ in values)) if not notes else math.nan
    magnitude = float(sum(m for _, m in values)) if not notes else math.nan
    return DistributedBreakdown([len(g) for g in groups], [v for v, _ in values], total, magnitude, notes,
                                [m for _, m in values])


# ---------------------------------------------------------------------------------------
# The reported loss of a path (total.compute calls this for distributed profiles)
# ---------------------------------------------------------------------------------------


def reported(case: Case, rules: Mapping[str, str], path: str, replicas: int = REPLICAS) -> aggregate.Breakdown:
    """The loss a path reports under the strategy, as an aggregate.Breakdown (same fields as the
    single-device one; `batches` lists every (batch, replica) piece)."""
    case, refused = class_weights.weighted(aggregate._as_computed(case, rules), path, rules)
    n = case.batch_size
    batched = path in aggregate.BATCHED_PATHS
    loop = path in aggregate.LOOP_PATHS  # test_on_batch calls, each placed as test_on_batch places its batch
    if not batched and not loop and path not in aggregate.WHOLE_BATCH_PATHS:
        raise ValueError(f"unknown path {path!r}")
    size = case.evaluate_batch_size if batched or loop else n
    training = path in TRAINING_MODE_PATHS
    starts = range(0, n, size)
    reported_ks = set(aggregate.reported_batches(path, rules, len(starts)))
    notes: list[str] = list(refused)
    pieces = []  # (batch index, replica index, local result)
    for k, start in enumerate(starts):
        batch = np.arange(start, min(start + size, n))
        groups, error = replica_rows(batch, rules, replicas, "test_on_batch" if loop else path)
        if error is not None:
            notes.append(prefixed(f"batch {k}: ", error))
            # The loss's own errors too: Keras 3's data adapter checks the arrays before any batch
            # is placed (e.g. a dict sample_weight against a list y), so either may come first.
            notes.extend(prefixed(f"batch {k}: ", note)
                         for note in aggregate._one_batch(case, batch, rules, batched, training).notes)
            continue
        if (batched and k == 0 and len({len(g) for g in groups}) > 1
                and rules_mod.chooses(rules, "replica_split", "whole_batch_on_batch")):
            notes.append(Note(_SYMBOLIC_BUILD_ERROR.format(rows=len(batch), split="+".join(str(len(g)) for g in groups)),
                              _SYMBOLIC_BUILD_SITE))
        if rules_mod.chooses(rules, "replica_split", "sharded_even"):
            groups = [batch]  # one global program over the sharded batch
        for r, rows in enumerate(groups):
            b = _local(case, rows, rules, batched=batched, training=training)
            # A replica without rows: TensorFlow may raise from the step's gradient (its file, its type).
            extra = ((), ()) if len(rows) else (("keras/src/backend/tensorflow/trainer.py",), ("InvalidArgumentError",))
            notes.extend(prefixed(f"batch {k} replica {r}: ", note, "" if len(rows) else _EMPTY_REPLICA, *extra)
                         for note in b.notes)
            if k in reported_ks:
                pieces.append((k, r, b))

    def factor(reduction: str) -> float:
        if reduction == "sum" and rules_mod.chooses(rules, "replica_loss_metric", "row_weighted_sum_times_replicas"):
            return float(replicas)
        return 1.0

    sizes = np.array([b.size for _, _, b in pieces], dtype=np.float64)
    ones = np.ones(len(pieces))
    total_w = sizes if rules_mod.chooses(rules, "evaluate_total", "batch_size_weighted") else ones
    out_w = sizes if rules_mod.chooses(rules, "evaluate_output_log", "batch_size_weighted") else ones

    def avg(values: list[float], w: np.ndarray) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.sum(np.array(values, dtype=np.float64) * w) / np.sum(w)) if len(w) else math.nan

    outputs = []
    if pieces:
        for i, first in enumerate(pieces[0][2].outputs):
            per = [b.outputs[i] for _, _, b in pieces]
            f = factor(first.reduction)
            outputs.append(aggregate.OutputRecord(
                name=first.name, loss=first.loss, reduction=first.reduction,
                unweighted=avg([f * o.unweighted for o in per], out_w), loss_weight=first.loss_weight,
                weighted=avg([f * o.weighted for o in per], total_w),
                magnitude=avg([f * o.magnitude for o in per], out_w),
                weighted_magnitude=avg([f * o.weighted_magnitude for o in per], total_w),
                valid_entries=first.valid_entries if len(pieces) == 1 else None))
        penalties = [forward.Penalty(first.layer, first.weight, first.kind,
                                     avg([b.penalties[j].value for _, _, b in pieces], total_w),
                                     avg([b.penalties[j].magnitude for _, _, b in pieces], total_w))
                     for j, first in enumerate(pieces[0][2].penalties)]
    else:  # every batch refused: the outputs' records from the first batch, all NaN below
        template = aggregate._one_batch(case, np.arange(min(size, n)), rules, batched=batched, training=training)
        outputs, penalties = template.outputs, template.penalties
    terms, mags = aggregate._terms(outputs, penalties, rules)
    if path in aggregate.WHOLE_BATCH_PATHS:
        # The adapters' "regularization" term is sum(model.losses) of one forward pass of the whole
        # batch outside the replicas (harness/impls/paths.py), i.e. the single-device value; the
        # penalties in the total (and in Breakdown.regularization) are the replicas', row-weighted.
        terms["regularization"], mags["regularization"] = aggregate.observed_regularization(case, rules)
    totals = [sum(o.weighted * factor(o.reduction) for o in b.outputs) + sum(p.value for p in b.penalties)
              for _, _, b in pieces]
    magnitudes = [sum(o.weighted_magnitude * factor(o.reduction) for o in b.outputs)
                  + sum(p.magnitude for p in b.penalties) for _, _, b in pieces]
    total, magnitude = avg(totals, total_w), avg(magnitudes, total_w)
    if notes:
        total = magnitude = math.nan
        for o in outputs:
            o.unweighted = o.weighted = o.magnitude = o.weighted_magnitude = math.nan
        terms = {k: (v if k == "regularization" else math.nan) for k, v in terms.items()}
    return aggregate.Breakdown(
        path, dict(rules), total, magnitude, terms, mags, outputs, penalties,
        batches=[{"batch": k, "replica": r, "size": b.size, "total": t, "magnitude": m}
                 for (k, r, b), t, m in zip(pieces, totals, magnitudes)],
        notes=notes)
