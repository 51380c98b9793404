"""From per-element losses to the total loss, with its per-term breakdown, for each path.

One batch (sources in rules.py; the rule names in brackets):
  output loss = reduce(sum(losses * sample_weight * mask_weight))       [mask_normalisation,
                                                                          sample_weight_broadcast,
                                                                          sample_weight_column]
      sum_over_batch_size: divided by the number of entries of `losses`; sum: not divided.
  weighted    = loss_weight * output loss (no factor when loss_weights are omitted)
  total       = sum of weighted output losses + sum(model.losses)
  model.losses: weight regularizers, activity regularizers [activity_regularizer_scaling], add_loss.

Paths: "compute_loss", "test_on_batch", "train_on_batch" run the whole batch once (at learning
rate 0 train_on_batch reports the loss of the weights it starts from). "evaluate" and "fit" run
consecutive batches of case.evaluate_batch_size (the last one may be shorter) and average them
[evaluate_total, evaluate_output_log]. "test_on_batch_loop" calls test_on_batch on each of those
batches in turn, nothing reset in between, and reports what the last call returns: that batch's
loss, or all of them averaged as evaluate averages them [on_batch_metrics].

Errors: where a profile says the implementation raises (a broadcast error, a dtype error, a
refused sample_weight structure, ...), the batch's total and every output are NaN and
Breakdown.notes says why, citing the Keras file whose code raises (harness.compare.predicts_error
matches that file against the implementation's innermost Keras frame). Some errors are path
specific: Keras 3's data adapter runs only under evaluate/fit.

Distribution strategies: a profile whose replica_split is not "single_device" is computed by
harness.reference.distributed.reported (per replica, then combined as the strategy reports it);
harness.reference.total.compute (`reference.compute`) chooses between the two.

Dtype: a float64 case is computed as a float32 case under float64_compute="float32" (Keras 3
NumPy backend); effective_dtype(case, profile) names the dtype whose rounding the implementation's
numbers carry, for the tolerance.

Magnitudes: for each figure, the sum of absolute values of everything summed into it (the
engine scales tolerances by it, since terms can cancel).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from harness import vocabulary
from harness.results import TRAINING_MODE_PATHS
from harness.reference import class_weights, forward
from harness.reference.errors import BROADCAST, CONVERSION, DTYPE, ErrorSite, Note, prefixed
from harness.reference import losses as loss_fns
from harness.reference import rules as rules_mod
from harness.spec import Case, sample_weight_kind

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

WHOLE_BATCH_PATHS = ("compute_loss", "test_on_batch", "train_on_batch")
BATCHED_PATHS = ("evaluate", "fit")
LOOP_PATHS = ("test_on_batch_loop",)  # test_on_batch over evaluate's batches, the last call's logs


def reported_batches(path: str, rules: Mapping[str, str], count: int) -> range:
    """Which of a multi-batch path's `count` batches its reported loss averages: all of them
    (evaluate, fit; test_on_batch_loop when the metrics accumulate), or the last alone
    (test_on_batch_loop under on_batch_metrics="reset_each_call")."""
    if path in LOOP_PATHS and rules_mod.chooses(rules, "on_batch_metrics", "reset_each_call"):
        return range(count - 1, count)
    return range(count)


def _enc(x: float) -> float | str:
    from harness.results import encode_float

    return encode_float(x)


@dataclass
class OutputRecord:
    name: str
    loss: str
    reduction: str
    unweighted: float  # the output's loss (for evaluate/fit: averaged as its log averages it)
    loss_weight: float  # 1.0 when loss weights are omitted
    weighted: float  # its contribution to the total
    magnitude: float  # of `unweighted`
    weighted_magnitude: float  # of `weighted`
    valid_entries: int | None = None  # unmasked entries when the output has a mask (whole batch)

    def to_json(self) -> dict[str, Any]:
        out = {k: (_enc(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        return out


@dataclass
class Breakdown:
    path: str
    profile: dict[str, str]
    total: float
    magnitude: float
    terms: dict[str, float]
    term_magnitudes: dict[str, float]
    outputs: list[OutputRecord]
    regularization: list[forward.Penalty]
    batches: list[dict[str, Any]] = field(default_factory=list)  # evaluate/fit: size, total, magnitude
    notes: list[str] = field(default_factory=list)  # e.g. a broadcast error an implementation would raise

    @property
    def log_entries(self) -> list[str]:
        """The "output/<name>" entries of the path's logs (Keras's '<name>_loss') under the profile
        (rule per_output_log_entries); judged by harness/compare_observations.py."""
        return logged_outputs(self.terms, self.profile)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "profile": dict(self.profile),
            "total": _enc(self.total),
            "magnitude": _enc(self.magnitude),
            "terms": {k: _enc(v) for k, v in self.terms.items()},
            "term_magnitudes": {k: _enc(v) for k, v in self.term_magnitudes.items()},
            "outputs": [o.to_json() for o in self.outputs],
            "regularization": [p.to_json() for p in self.regularization],
            "batches": [{k: (_enc(v) if isinstance(v, float) else v) for k, v in b.items()} for b in self.batches],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------
# One batch
# ---------------------------------------------------------------------------------------


def _sample_weight_for(per: np.ndarray, sw: np.ndarray, rules: Mapping[str, str],
                       has_mask: bool) -> tuple[np.ndarray | None, str | None]:
    """The sample weight broadcast to the per-element losses (rule sample_weight_broadcast), or
    (None, why) on a broadcast error. Weights of one rank more than the losses with a last axis of
    1 ((batch, 1) against (batch,)) lose that axis first, as in every lineage
    (keras/src/losses/loss.py:squeeze_or_expand_to_same_rank, tf_keras/src/utils/losses_utils.py:
    squeeze_or_expand_dimensions)."""
    if sw.ndim == per.ndim + 1 and sw.shape[-1] == 1:
        sw = sw[..., 0]
    if sw.shape == per.shape:
        return sw, None
    in_place = has_mask and rules_mod.chooses(rules, "sample_weight_broadcast", "trailing_axis_inplace_mask")
    if in_place and sw.ndim == 2 and sw.shape[1] == 1:  # a (batch, 1) column cannot grow in place either
        return None, _in_place_mask_error(sw.shape, per.shape)
    if sw.ndim == 1 and per.ndim == 2:
        if per.shape[1] == 1 or rules_mod.chooses(rules, "sample_weight_broadcast", "per_sample"):
            return np.broadcast_to(sw[:, None], per.shape), None
        if in_place:
            return None, _in_place_mask_error(sw.shape, per.shape)
        if sw.shape[0] in (per.shape[1], 1):  # NumPy broadcasting against the trailing (time) axis
            return np.broadcast_to(sw[None, :], per.shape), None
        return None, Note(f"sample weight of shape {sw.shape} does not broadcast against losses of shape "
                          f"{per.shape} (keras/src/losses/loss.py:squeeze_or_expand_to_same_rank)",
                          ErrorSite(BROADCAST, ("keras/src/losses/loss.py",), "reduce_weighted_values"))
    if _broadcast_shape(sw.shape, per.shape) != per.shape:
        # Weights of more steps than the losses (only another output's weights can be: rule
        # partial_dict_sample_weight="first_for_all", Keras 3.0-3.4, not run): an error where
        # they do not broadcast; where they would grow the losses, the reference does not follow.
        return None, Note(f"sample weight of shape {sw.shape} for losses of shape {per.shape}: they do not "
                          "broadcast to the losses' shape (keras/src/losses/loss.py:reduce_weighted_values)",
                          ErrorSite(BROADCAST, ("keras/src/losses/loss.py",), "reduce_weighted_values"))
    return np.broadcast_to(sw, per.shape), None


def _broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _in_place_mask_error(sw_shape: tuple[int, ...], loss_shape: tuple[int, ...]) -> Note:
    return Note(f"sample weight of shape {sw_shape} multiplied in place by a mask of shape "
                f"{loss_shape} (keras/src/losses/loss.py:apply_mask `sample_weight *= float_mask`)",
                ErrorSite(BROADCAST, ("keras/src/losses/loss.py",), "apply_mask"))


_STANDARDIZE_WEIGHTS = ("tf_keras/src/engine/training_utils_v1.py", "keras/src/engine/training_utils_v1.py",
                        "keras/engine/training_utils_v1.py", "keras/engine/training_utils.py")


def _column_error(out, shape: tuple[int, ...], what: str = "a column") -> Note:
    """Keras 2's graph loop refuses a (batch, 1) sample weight (rule sample_weight_column="error_not_1d")
    and a (batch, time, 1) one (rule timestep_weight_trailing_axis="error_not_2d"): standardize_weights."""
    return Note(f"output {out.name!r}: a sample weight of shape {shape}, {what}: ValueError 'Found a "
                "sample_weight array with shape ...' (tf_keras/src/engine/training_utils_v1.py:"
                "standardize_weights; keras 2.x: keras/engine/training_utils.py)",
                ErrorSite(("ValueError",), _STANDARDIZE_WEIGHTS, "standardize_weights", own_check=True))


def _output_loss(case: Case, out, t: forward.Tensor, rows: np.ndarray, rules: Mapping[str, str],
                 notes: list[str], batched: bool = False) -> tuple[float, float, int | None]:
    r = forward.rounder(case.dtype)
    options = {k: (forward.round_scalar(case.dtype, v) if isinstance(v, float) and not isinstance(v, bool) else v)
               for k, v in out.loss_options.items() if k != "reduction"}
    y = out.target[rows]
    if out.target.dtype.kind not in "iu":
        y = r(y)
    if out.loss == "log_cosh" and case.dtype == "float64" and rules_mod.chooses(rules, "log_cosh_float64", "error"):
        notes.append(Note(f"output {out.name!r}: log_cosh under floatx float64 subtracts the float32 constant "
                          "K.log(2.) from a float64 tensor: a dtype error (keras/losses.py:logcosh)",
                          ErrorSite(DTYPE, ("keras/losses.py",), "logcosh")))
        return math.nan, math.nan, None
    if (out.loss == "categorical_hinge" and case.dtype == "float64"
            and rules_mod.chooses(rules, "categorical_hinge_float64", "error")):
        notes.append(Note(f"output {out.name!r}: categorical_hinge under floatx float64 takes K.maximum(0., x): "
                          "the Python 0. becomes a float32 tensor, a dtype error (keras/losses.py:categorical_hinge)",
                          ErrorSite(DTYPE, ("keras/losses.py",), "categorical_hinge")))
        return math.nan, math.nan, None
    # After log_cosh's error: keras 2.x validates the reduction in compute_weighted_loss, once the
    # loss function has run; tf-keras and Keras 3 when the loss is constructed (log_cosh_float64
    # is keras 2.3.1's alone, so the order is theirs too).
    reduction, err = _reduction(out.loss_options.get("reduction", "sum_over_batch_size"), rules)
    if err is not None:
        notes.append(prefixed(f"output {out.name!r}: ", err))
        return math.nan, math.nan, None
    ctx = loss_fns.LossContext(rules=rules, dtype=case.dtype, keras_logits=t.keras_logits)
    per = loss_fns.per_element(out.loss, y, t.value, options, ctx)
    entries_per_loss = 1
    if per.shape == t.value.shape:
        # An element-wise loss (huber under huber_last_axis="none"): weights and masks are expanded
        # over the last axis (keras 2.3.1 losses_utils.broadcast_weights), so summing that axis first
        # is exact; `sum_over_batch_size` still divides by every entry.
        entries_per_loss = per.shape[-1]
        per = np.sum(per, axis=-1)
    weights = np.ones(per.shape)
    nonzero_fraction = 1.0
    loss_shape = per.shape  # the shape of the losses the mask applies to
    has_mask = t.mask is not None and t.mask.shape == per.shape
    given = _sample_weight_given(case, out, rules)
    if given is not None:
        raw = r(given[rows])
        if (sample_weight_kind(case, out) == "column"
                and rules_mod.chooses(rules, "sample_weight_column", "error_not_1d")):
            notes.append(_column_error(out, raw.shape))
            return math.nan, math.nan, None
        if (sample_weight_kind(case, out) == "timestep_trailing_axis"
                and rules_mod.chooses(rules, "timestep_weight_trailing_axis", "error_not_2d")):
            notes.append(_column_error(out, raw.shape, "per step with a trailing axis of 1"))
            return math.nan, math.nan, None
        if (len(case.outputs) == 1 and _sample_weight_is_list(case, batched)
                and rules_mod.chooses(rules, "single_output_sample_weight_list", "leading_axis")):
            in_place = has_mask and rules_mod.chooses(rules, "sample_weight_broadcast", "trailing_axis_inplace_mask")
            per, sw, err = _list_as_leading_axis(per, raw, in_place)
            weights = np.ones(per.shape)
        else:
            sw, err = _sample_weight_for(per, raw, rules, has_mask)
        if sw is None:
            notes.append(prefixed(f"output {out.name!r}: ", err))
            return math.nan, math.nan, None
        weights = weights * sw
        if rules_mod.chooses(rules, "sample_weight_normalisation", "nonzero_fraction"):
            nonzero_fraction = float(np.mean(raw != 0)) if raw.size else math.nan
    valid = None
    if t.mask is not None and t.mask.shape == loss_shape:
        m = t.mask.astype(np.float64)
        valid = int(m.sum())
        if reduction == "sum_over_batch_size":
            if rules_mod.chooses(rules, "mask_normalisation", "valid_entries"):
                with np.errstate(divide="ignore", invalid="ignore"):
                    m = m * (np.float64(m.size) / np.float64(valid))  # 0 * inf = NaN when all masked
            elif rules_mod.chooses(rules, "mask_normalisation", "valid_entries_no_nan"):
                m = m * (m.size / valid if valid else 0.0)
            # all_entries: the mask as it is, divided by every entry below
        weights = weights * np.broadcast_to(m, per.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        weighted = per * weights
        total = float(np.sum(weighted))
        magnitude = float(np.sum(np.abs(weighted)))
    if reduction == "mean_with_sample_weight" and (given is not None or valid is not None):
        # keras/src/losses/loss.py:reduce_values divides by ops.sum(sample_weight) as Keras holds it:
        # with a mask, the weights times the mask (apply_mask), else the weights in their own shape
        # (a (batch,) or (batch, 1) weight on (batch, time) losses counts once per sample, not per
        # step); divide_no_nan: 0 for a zero sum.
        held = float(np.sum(weights)) if valid is not None else float(np.sum(raw))
        total, magnitude = (total / held, magnitude / held) if held else (0.0, 0.0)
    elif reduction in ("sum_over_batch_size", "mean_with_sample_weight"):
        # divide_no_nan / _safe_mean: a replica without rows (reference/distributed.py) computes 0.
        count = per.size * entries_per_loss
        total, magnitude = (total / count, magnitude / count) if count else (0.0, 0.0)
    if nonzero_fraction != 1.0:
        # keras 2.2.4 weighted_masked_objective: score /= mean(weights != 0); all-zero weights: 0/0.
        total = total / nonzero_fraction if nonzero_fraction else math.nan
        magnitude = magnitude / nonzero_fraction if nonzero_fraction else math.nan
    return total, magnitude, valid


def _reduction(given: str, rules: Mapping[str, str]) -> tuple[str, Note | None]:
    """The reduction an output's loss computes under rule reduction_values ("mean" and tf-keras's
    "auto" are sum_over_batch_size), or an error note where the release refuses the name."""
    if given in ("sum_over_batch_size", "sum"):
        return given, None
    if rules_mod.chooses(rules, "reduction_values", "keras3"):
        if given != "auto":
            return ("sum_over_batch_size" if given == "mean" else given), None
        where = ("keras/src/losses/loss.py",), "keras/src/losses/loss.py:standardize_reduction"
    elif rules_mod.chooses(rules, "reduction_values", "tf_keras"):
        if given == "auto":
            return "sum_over_batch_size", None
        where = (("tf_keras/src/utils/losses_utils.py", "keras/src/utils/losses_utils.py", "keras/utils/losses_utils.py"),
                 "tf_keras/src/utils/losses_utils.py:ReductionV2.validate, from Loss.__init__")
    elif rules_mod.chooses(rules, "reduction_values", "keras2"):
        where = ("keras/utils/losses_utils.py",), "keras/utils/losses_utils.py:Reduction.validate, from compile"
    else:  # keras3_before_3_7
        where = ("keras/src/losses/loss.py",), "keras/src/losses/loss.py:standardize_reduction"
    files, text = where
    return given, Note(f"reduction={given!r}: ValueError, a reduction this release does not take ({text})",
                       ErrorSite(("ValueError",), files, "reduction", own_check=True))


def _partial_dict(case: Case) -> bool:
    """A dict sample_weight without the key of some output (spec: that output's weight is null)."""
    return case.sample_weight_form == "dict" and any(o.sample_weight is None for o in case.outputs)


def _sample_weight_given(case: Case, out: Any, rules: Mapping[str, str]) -> np.ndarray | None:
    """The weights `out`'s loss receives: its own, or under partial_dict_sample_weight="first_for_all"
    (a dict that leaves some outputs out, Keras 3.0-3.4) the first given one, in output order."""
    if _partial_dict(case) and rules_mod.chooses(rules, "partial_dict_sample_weight", "first_for_all"):
        return next(o.sample_weight for o in case.outputs if o.sample_weight is not None)
    return out.sample_weight


def _sample_weight_is_list(case: Case, batched: bool) -> bool:
    """sample_weight reaches a one-output Keras 3 model as a list: given as one, or (evaluate, fit:
    `batched`) one array beside a list y, which the data adapter replicates into y's structure
    (keras/src/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__
    `tree.map_structure(lambda _: sample_weight, y)`, read in 3.15.1)."""
    return case.sample_weight_form == "list" or (batched and case.sample_weight_form == "single" and case.y_form == "list")


def _list_as_leading_axis(per: np.ndarray, raw: np.ndarray,
                          in_place: bool = False) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Keras 3, one output, sample_weight=[w] (rule single_output_sample_weight_list="leading_axis"):
    the whole list reaches the loss as a tensor of shape (1, *w.shape); squeeze_or_expand_to_same_rank
    drops its last axis only when that is 1 and it has one rank more than the losses; then the
    losses and the weights broadcast against each other. Returns (losses, weights) in the broadcast
    shape (per-sample for (batch,) losses; an outer product batch x batch for (batch, 1) losses;
    weights along time for (batch, time) losses when time == batch), or (losses, None, why).
    `in_place`: the output has a mask of the losses' shape and the backend multiplies it into the
    weights in place (sample_weight_broadcast="trailing_axis_inplace_mask", torch and NumPy):
    weights of another shape than the mask cannot take the broadcast shape, an error (found case
    6be2706e1661e5be)."""
    sw = raw[None, ...]
    if sw.ndim == per.ndim + 1 and sw.shape[-1] == 1:
        sw = sw[..., 0]
    if in_place and _broadcast_shape(sw.shape, per.shape) != sw.shape:
        return per, None, _in_place_mask_error(sw.shape, per.shape)
    try:
        shape = np.broadcast_shapes(per.shape, sw.shape)
    except ValueError:
        return per, None, Note(f"sample_weight=[array of shape {raw.shape}] reaches the loss as shape {sw.shape}, "
                               f"which does not broadcast against losses of shape {per.shape} "
                               "(keras/src/trainers/compile_utils.py:CompileLoss.call, "
                               "keras/src/losses/loss.py:reduce_weighted_values)",
                               ErrorSite(BROADCAST, ("keras/src/trainers/compile_utils.py", "keras/src/losses/loss.py"),
                                         "reduce_weighted_values"))
    return np.broadcast_to(per, shape), np.broadcast_to(sw, shape), None


def _weighted(lw: float, value: float, rules: Mapping[str, str]) -> float:
    if lw == 0.0 and rules_mod.chooses(rules, "zero_loss_weight", "folded_to_zero"):
        return 0.0
    return lw * value


def _loss_weights(case: Case, rules: Mapping[str, str], notes: list[str]) -> list[float]:
    """Each output's loss weight as applied (1.0 when omitted), rounded to the case dtype."""
    given = [1.0 if o.loss_weight is None else forward.round_scalar(case.dtype, o.loss_weight) for o in case.outputs]
    if case.loss_weights_form != "omitted" and len(case.outputs) == 1:
        return _one_output_loss_weight(case, rules, notes, given)
    if case.loss_weights_form == "omitted":
        return given
    if case.loss_form == "single" and rules_mod.chooses(rules, "single_loss_with_loss_weights", "error"):
        notes.append(Note("one loss with per-output loss_weights: ValueError `loss_weights` must match the number "
                          "of losses (keras/src/trainers/compile_utils.py:CompileLoss.build)",
                          ErrorSite(("ValueError",), ("keras/src/trainers/compile_utils.py",), "CompileLoss.build")))
        return [math.nan] * len(given)
    as_list = case.loss_form == "list" or (
        case.loss_form == "single" and rules_mod.chooses(rules, "single_loss_with_loss_weights", "broadcast_as_list"))
    if as_list and case.loss_weights_form == "dict":
        if rules_mod.chooses(rules, "loss_weights_dict_with_list_loss", "error"):
            notes.append(Note("a list of losses with a dict of loss_weights: ValueError the `loss_weight` argument "
                              "should also be provided as a list/tuple (keras/src/trainers/compile_utils.py:"
                              "CompileLoss.build)",
                              ErrorSite(("ValueError",), ("keras/src/trainers/compile_utils.py",), "CompileLoss.build",
                                        own_check=True)))
            return [math.nan] * len(given)
        if rules_mod.chooses(rules, "loss_weights_dict_with_list_loss", "sorted_names"):
            by_name = dict(zip((o.name for o in case.outputs), given))
            return [by_name[name] for name in sorted(by_name)]
    return given


_COMPILE_LOSS = "keras/src/trainers/compile_utils.py"
_PREPARE_LOSS_WEIGHTS = ("tf_keras/src/engine/training_utils_v1.py", "keras/src/engine/training_utils_v1.py",
                         "keras/engine/training_utils.py", "keras/engine/training.py")


def _one_output_loss_weight(case: Case, rules: Mapping[str, str], notes: list[str], given: list[float]) -> list[float]:
    """The loss weight of a one-output model as the rule one_output_loss_weights applies it: the
    weight, 1.0 (a falsy bare zero in Keras 3 before 3.5), or NaN and a note (a refused form)."""
    weight = case.outputs[0].loss_weight
    bare = case.loss_weights_form == "scalar"
    if rules_mod.chooses(rules, "one_output_loss_weights", "any_form"):
        return given
    if rules_mod.chooses(rules, "one_output_loss_weights", "no_bare_number"):
        if not bare:
            return given
        notes.append(Note(f"loss_weights={weight!r}, a bare number: TypeError Could not interpret loss_weights "
                          "argument (tf_keras/src/engine/training_utils_v1.py:prepare_loss_weights; keras 2.x: "
                          "keras/engine/training_utils.py)",
                          ErrorSite(("TypeError",), _PREPARE_LOSS_WEIGHTS, "prepare_loss_weights", own_check=True)))
        return [math.nan]
    # Keras 3: CompileLoss.__init__ refuses a truthy bare number that is not a float (an int, or
    # any number before 3.3); CompileLoss.build before 3.5 refuses a list or dict for one output
    # and counts a falsy bare zero as 1.0.
    floats_pass = not rules_mod.chooses(rules, "one_output_loss_weights", "none")
    if bare and weight and not (floats_pass and type(weight) is float):
        notes.append(Note(f"loss_weights={weight!r}, a bare {type(weight).__name__}: ValueError Expected "
                          "`loss_weights` argument to be a float (single output case) or a list, tuple, or dict "
                          f"({_COMPILE_LOSS}:CompileLoss.__init__)",
                          ErrorSite(("ValueError",), (_COMPILE_LOSS,), "CompileLoss.__init__", own_check=True)))
        return [math.nan]
    if rules_mod.chooses(rules, "one_output_loss_weights", "no_bare_int"):
        return given
    if not bare:
        notes.append(Note(f"loss_weights as a {case.loss_weights_form} for one output: ValueError the `loss_weights` "
                          f"argument must be a Python float ({_COMPILE_LOSS}:CompileLoss.build)",
                          ErrorSite(("ValueError",), (_COMPILE_LOSS,), "CompileLoss.build", own_check=True)))
        return [math.nan]
    return given if weight else [1.0]


@dataclass
class _Batch:
    size: int
    total: float
    magnitude: float
    outputs: list[OutputRecord]
    penalties: list[forward.Penalty]
    notes: list[str]


_STRUCTURE_SITE = ErrorSite(("ValueError",), ("keras/src/trainers/data_adapters/array_data_adapter.py",),
                            "ArrayDataAdapter.__init__")


def _dict_sample_weight_error(case: Case, batched: bool) -> str:
    """The error Keras 3 raises for a dict sample_weight (rule dict_sample_weight="error"), per path.

    The adapters pass y as a list (one array for one output) and the weights as {name: array}."""
    if (len(case.outputs) > 1 or case.y_form == "list") and batched:
        return Note("sample_weight is a dict and y a list: ValueError 'You should provide one `sample_weight` "
                    "array per output in `y`' (keras/src/trainers/data_adapters/array_data_adapter.py:"
                    "ArrayDataAdapter.__init__)", _STRUCTURE_SITE)
    if len(case.outputs) > 1:
        return Note("sample_weight is a dict and y_pred a list: CompileLoss.call looks the weights up by the "
                    "output's list index, KeyError: 0 (keras/src/trainers/compile_utils.py:CompileLoss.call "
                    "resolve_path)",
                    ErrorSite(("KeyError",), ("keras/src/trainers/compile_utils.py",), "resolve_path"))
    return Note("one output and a dict sample_weight: the whole dict reaches the loss as its sample weight and "
                "cannot be converted to a tensor (keras/src/backend/numpy/core.py, "
                "keras/src/backend/tensorflow/core.py, keras/src/backend/jax/core.py, "
                "keras/src/backend/torch/core.py: convert_to_tensor; torch raises in "
                "keras/src/backend/common/variables.py:standardize_dtype 'Invalid dtype: object')",
                ErrorSite(CONVERSION, tuple(f"keras/src/backend/{b}/core.py" for b in ("numpy", "tensorflow", "jax", "torch"))
                          + ("keras/src/backend/common/variables.py",), "convert_to_tensor"))


def _dict_targets_errors(case: Case, rules: Mapping[str, str]) -> list[str]:
    """The errors Keras 3 raises on every path for a dict y (spec y_form "dict"): rules
    dict_targets_one_output and dict_sample_weight_with_dict_targets, "error"."""
    if case.y_form != "dict":
        return []
    notes: list[str] = []
    if len(case.outputs) == 1 and rules_mod.chooses(rules, "dict_targets_one_output", "error"):
        notes.append(Note("a one-output model and a dict y: CompileLoss.call packs the dict against the single "
                          "y_pred and passes its key to the loss, which cannot convert it (jax ValueError 'could "
                          "not convert string to float', tensorflow TypeError, torch ValueError 'Invalid dtype'; "
                          "keras/src/trainers/compile_utils.py:"
                          "CompileLoss.call)",
                          ErrorSite(CONVERSION, ("keras/src/trainers/compile_utils.py", "keras/src/losses/loss.py",
                                                 "keras/src/backend/common/variables.py",  # torch: 'Invalid dtype: str96'
                                                 "keras/src/tree/optree_impl.py")  # 3.7.0: not the same structure
                                    + tuple(f"keras/src/backend/{b}/core.py" for b in ("numpy", "tensorflow", "jax", "torch")),
                                    "CompileLoss.call")))
    if case.sample_weight_form == "dict" and rules_mod.chooses(rules, "dict_sample_weight_with_dict_targets", "error"):
        notes.append(Note("y and sample_weight both dicts: CompileLoss.call maps y by output name but looks the "
                          "weights up by the output's list index, KeyError: 0 (keras/src/trainers/compile_utils.py:"
                          "CompileLoss.call resolve_path)",
                          ErrorSite(("KeyError",), ("keras/src/trainers/compile_utils.py",), "resolve_path")))
    return notes


_COMPUTE_MASK = ("keras/engine/base_layer.py",)


def _unmasking_layer_errors(case: Case, fwd: Any, rules: Mapping[str, str]) -> list[str]:
    """The model cannot be built where a layer without mask support meets a mask (rule
    mask_into_unmasking_layer="error": Layer.compute_mask raises TypeError as the layer is called)."""
    if not rules_mod.chooses(rules, "mask_into_unmasking_layer", "error"):
        return []
    return [Note(f"layer {layer.name!r} ({layer.type}) does not support masking and is called on a masked tensor: "
                 "TypeError 'does not support masking, but was passed an input_mask' as the model is built "
                 "(keras 2.x keras/engine/base_layer.py:Layer.compute_mask)",
                 ErrorSite(("TypeError",), _COMPUTE_MASK, "Layer.compute_mask", own_check=True))
            for layer in case.layers
            if vocabulary.LAYERS[layer.type].mask == "none" and any(fwd.tensors[n].mask is not None for n in layer.inbound)]


_BATCH_NORM_ONE_FEATURE_SITE = ErrorSite(("IndexError",), ("keras/src/backend/jax/nn.py", "keras/src/backend/torch/nn.py",
                                                           "keras/src/backend/numpy/nn.py"), "batch_normalization")
_BATCH_NORM_FLOAT64_SITE = ErrorSite(("TypeError",), ("keras/layers/normalization.py",), "BatchNormalization.call")


def _batch_norm_errors(case: Case, fwd: Any, rules: Mapping[str, str], training: bool) -> list[str]:
    """A BatchNormalization in a float64 model cannot be built (rule batch_norm_float64="type_error");
    one of one feature on a masked tensor raises in training mode (rule
    batch_norm_single_masked_feature="index_error")."""
    norms = [layer for layer in case.layers if layer.type == "BatchNormalization"]
    if norms and case.dtype == "float64" and rules_mod.chooses(rules, "batch_norm_float64", "type_error"):
        return [Note(f"layer {norms[0].name!r} (BatchNormalization, float64): TypeError \"Input 'y' of 'Mul' Op has "
                     "type float32 that does not match type float64\" as the model is built (keras/layers/"
                     "normalization.py:BatchNormalization.call casts the sample size to float32)",
                     _BATCH_NORM_FLOAT64_SITE)]
    if not training or not rules_mod.chooses(rules, "batch_norm_single_masked_feature", "index_error"):
        return []
    return [Note(f"layer {layer.name!r} (BatchNormalization of one feature on a masked tensor, training=True): "
                 "IndexError 'tuple index out of range' (keras/src/layers/normalization/batch_normalization.py:"
                 "BatchNormalization._moments squeezes the mean to shape (); the backend's batch_normalization "
                 "reads mean.shape[0])", _BATCH_NORM_ONE_FEATURE_SITE)
            for layer in case.layers
            if layer.type == "BatchNormalization" and fwd.tensors[layer.inbound[0]].mask is not None
            and fwd.tensors[layer.inbound[0]].value.shape[-1] == 1]


def _one_batch(case: Case, rows: np.ndarray, rules: Mapping[str, str], batched: bool = False,
               training: bool = False) -> _Batch:
    fwd = forward.run(case, rows, rules, training)
    notes: list[str] = _unmasking_layer_errors(case, fwd, rules) + _batch_norm_errors(case, fwd, rules, training)
    if (case.sample_weight_form == "dict" and case.y_form != "dict"
            and rules_mod.chooses(rules, "dict_sample_weight", "error")):
        notes.append(_dict_sample_weight_error(case, batched))
    notes.extend(_dict_targets_errors(case, rules))
    if (batched and case.y_form == "dict" and _partial_dict(case)
            and not rules_mod.chooses(rules, "partial_dict_sample_weight", "unweighted")):
        notes.append(Note("y a dict and sample_weight a dict without the key of some outputs: ValueError 'You should "
                          "provide one `sample_weight` array per output in `y`' (keras/src/trainers/data_adapters/"
                          "array_data_adapter.py:ArrayDataAdapter.__init__ tree.assert_same_structure)",
                          _STRUCTURE_SITE))
    if (batched and case.sample_weight_form == "single" and (len(case.outputs) > 1 or case.y_form != "auto")
            and rules_mod.chooses(rules, "single_sample_weight_not_per_sample", "error_in_data_adapter")):
        sw = case.outputs[0].sample_weight
        if sw is not None and not (sw.ndim == 1 or (sw.ndim == 2 and sw.shape[1] == 1)):
            notes.append(Note(f"one sample_weight array of shape {sw.shape} for {len(case.outputs)} outputs: ValueError "
                              "'it should only have one scalar score per sample' (keras/src/trainers/data_adapters/"
                              "array_data_adapter.py:ArrayDataAdapter.__init__)",
                              ErrorSite(("ValueError",), ("keras/src/trainers/data_adapters/array_data_adapter.py",),
                                        "ArrayDataAdapter.__init__")))
    records = []
    weights = _loss_weights(case, rules, notes)
    for out, lw in zip(case.outputs, weights):
        value, mag, valid = _output_loss(case, out, fwd.tensors[out.layer], rows, rules, notes, batched)
        records.append(OutputRecord(
            name=out.name, loss=out.loss, reduction=out.loss_options.get("reduction", "sum_over_batch_size"),
            unweighted=value, loss_weight=lw, weighted=_weighted(lw, value, rules), magnitude=mag,
            weighted_magnitude=_weighted(abs(lw), mag, rules), valid_entries=valid,
        ))
    penalties = forward.weight_penalties(case) + fwd.penalties
    total = sum(o.weighted for o in records) + sum(p.value for p in penalties)
    magnitude = sum(o.weighted_magnitude for o in records) + sum(p.magnitude for p in penalties)
    if (case.dtype == "float64" and any(p.kind == "l1" for p in penalties)
            and rules_mod.chooses(rules, "l1_regularizer_float64", "error")):
        notes.append(Note("an L1 regularizer in a float64 case: L1 multiplies its float32 factor tensor with the "
                          "float64 sum, which TensorFlow refuses (keras/src/regularizers/regularizers.py:L1.__call__)",
                          ErrorSite(DTYPE, ("keras/src/regularizers/regularizers.py",
                                            "keras/regularizers/regularizers.py"), "L1.__call__")))
    if penalties and rules_mod.chooses(rules, "additional_losses_sum", "list_error"):
        notes.append(Note(f"{len(penalties)} entries in model.losses besides the compiled loss: ops.sum(losses) on "
                          "a Python list, AttributeError 'list' object has no attribute 'dtype' "
                          "(keras/src/backend/numpy/numpy.py:sum, from keras/src/trainers/trainer.py:compute_loss)",
                          ErrorSite(("AttributeError",), ("keras/src/backend/numpy/numpy.py",
                                                          "keras/src/trainers/trainer.py"), "sum")))
    b = _Batch(len(rows), total, magnitude, records, penalties, notes)
    if notes:  # the implementation raises: no number at all (NaN for the total and every output)
        _raises(b)
    return b


def _raises(b: "_Batch") -> None:
    """No number at all: NaN for the batch's total and every output (a predicted error)."""
    b.total = b.magnitude = math.nan
    for o in b.outputs:
        o.unweighted = o.weighted = o.magnitude = o.weighted_magnitude = math.nan


PER_OUTPUT_LOG_ENTRIES_FROM = 2  # per_output_log_entries=from_two_outputs (its sources in the rulebook)


def logged_outputs(terms: Mapping[str, float], rules: Mapping[str, str]) -> list[str]:
    """The per-output log entries of a path: one per output from two outputs on, or none at all."""
    if rules_mod.chooses(rules, "per_output_log_entries", "none"):
        return []
    outputs = [k for k in terms if k.startswith("output/")]
    return outputs if len(outputs) >= PER_OUTPUT_LOG_ENTRIES_FROM else []


def observed_regularization(case: Case, rules: Mapping[str, str]) -> tuple[float, float]:
    """The whole-batch paths' "regularization" term as the adapters observe it, (value, magnitude):
    sum(model.losses) after one forward pass model(x, training=True) of the whole batch
    (harness/impls/paths.py Calls.regularization), whatever the path's own mode; on a
    test_on_batch it differs from the penalties in its total only through a BatchNormalization
    before an activity regularizer."""
    whole = forward.weight_penalties(case) + forward.run(case, np.arange(case.batch_size), rules, training=True).penalties
    return float(sum(p.value for p in whole)), float(sum(p.magnitude for p in whole))


def _terms(outputs: list[OutputRecord], penalties: list[forward.Penalty], rules: Mapping[str, str]):
    terms, mags = {}, {}
    for o in outputs:
        key = f"output/{o.name}"
        if rules_mod.chooses(rules, "output_log", "unweighted"):
            terms[key], mags[key] = o.unweighted, o.magnitude
        else:
            terms[key], mags[key] = o.weighted, o.weighted_magnitude
    terms["regularization"] = float(sum(p.value for p in penalties))
    mags["regularization"] = float(sum(p.magnitude for p in penalties))
    return terms, mags


# ---------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------


ON_BATCH_PATHS = ("test_on_batch", "train_on_batch", "test_on_batch_loop")  # single_batch_iterator's paths


def _none_in_list_errors(case: Case, path: str, rules: Mapping[str, str]) -> list[Note]:
    """tf.keras and tf-keras before 2.21 refuse a None in a list sample_weight in train_on_batch and
    test_on_batch (rule none_in_sample_weight_list="on_batch_attribute_error")."""
    if (path in ON_BATCH_PATHS and case.sample_weight_form == "list"
            and any(o.sample_weight is None for o in case.outputs)
            and rules_mod.chooses(rules, "none_in_sample_weight_list", "on_batch_attribute_error")):
        return [Note("sample_weight a list with None: AttributeError \"'NoneType' object has no attribute 'shape'\" "
                     "(keras/src/engine/data_adapter.py:_check_data_cardinality, from single_batch_iterator)",
                     ErrorSite(("AttributeError",), ("keras/src/engine/data_adapter.py", "tf_keras/src/engine/data_adapter.py"),
                               "_check_data_cardinality"))]
    return []


def single_device(case: Case, rules: Mapping[str, str], path: str = "test_on_batch") -> "Breakdown":
    """The reference total and breakdown of `case` on `path` on one device, under `rules` (a
    resolved profile whose replica_split is "single_device"; harness.reference.total.compute
    takes any profile)."""
    case, refused = class_weights.weighted(_as_computed(case, rules), path, rules)
    refused = refused + _none_in_list_errors(case, path, rules)
    n = case.batch_size
    training = path in TRAINING_MODE_PATHS
    if path in WHOLE_BATCH_PATHS:
        b = _one_batch(case, np.arange(n), rules, training=training)
        if refused:
            _raises(b)
        terms, mags = _terms(b.outputs, b.penalties, rules)
        terms["regularization"], mags["regularization"] = observed_regularization(case, rules)
        return Breakdown(path, rules, b.total, b.magnitude, terms, mags, b.outputs, b.penalties,
                         notes=list(refused) + b.notes)
    if path not in BATCHED_PATHS + LOOP_PATHS:
        raise ValueError(f"unknown path {path!r}; known: {', '.join(WHOLE_BATCH_PATHS + BATCHED_PATHS + LOOP_PATHS)}")

    size = case.evaluate_batch_size
    # test_on_batch_loop's calls are test_on_batch calls: no data adapter (batched=False). A call
    # that raises ends the loop, so every batch's errors count whichever batches are reported.
    every = [_one_batch(case, np.arange(s, min(s + size, n)), rules, batched=path in BATCHED_PATHS, training=training)
             for s in range(0, n, size)]
    notes = list(refused) + [prefixed(f"batch {k}: ", note) for k, b in enumerate(every) for note in b.notes]
    batches = [every[k] for k in reported_batches(path, rules, len(every))]
    sizes = np.array([b.size for b in batches], dtype=np.float64)

    def avg(values: list[float], by_size: bool) -> float:
        v = np.array(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            if by_size:
                return float(np.sum(v * sizes) / np.sum(sizes))
            return float(np.mean(v))

    total_by_size = rules_mod.chooses(rules, "evaluate_total", "batch_size_weighted")  # else batch_mean
    outputs_by_size = rules_mod.chooses(rules, "evaluate_output_log", "batch_size_weighted")
    outputs = []
    for i, first in enumerate(batches[0].outputs):
        per = [b.outputs[i] for b in batches]
        outputs.append(OutputRecord(
            name=first.name, loss=first.loss, reduction=first.reduction,
            unweighted=avg([o.unweighted for o in per], outputs_by_size), loss_weight=first.loss_weight,
            weighted=avg([o.weighted for o in per], total_by_size),
            magnitude=avg([o.magnitude for o in per], outputs_by_size),
            weighted_magnitude=avg([o.weighted_magnitude for o in per], total_by_size),
        ))
    # Penalties averaged like the total, one record per (layer, weight).
    penalties = []
    for j, first in enumerate(batches[0].penalties):
        penalties.append(forward.Penalty(
            first.layer, first.weight, first.kind,
            avg([b.penalties[j].value for b in batches], total_by_size),
            avg([b.penalties[j].magnitude for b in batches], total_by_size),
        ))
    total, magnitude = avg([b.total for b in batches], total_by_size), avg([b.magnitude for b in batches], total_by_size)
    if notes:  # an unreported batch's error too: the implementation raises, no number at all
        total = magnitude = math.nan
        for o in outputs:
            o.unweighted = o.weighted = o.magnitude = o.weighted_magnitude = math.nan
    terms, mags = _terms(outputs, penalties, rules)
    return Breakdown(
        path, rules, total, magnitude,
        terms, mags, outputs, penalties,
        batches=[{"size": b.size, "total": b.total, "magnitude": b.magnitude} for b in batches], notes=notes,
    )


def effective_dtype(case: Case, profile: str | Mapping[str, str]) -> str:
    """The dtype whose rounding the implementation's numbers carry, for choosing a tolerance: the
    case dtype, except float64 under float64_compute "float32" or "float32_reduction" (rules.py)."""
    rules = rules_mod.resolve(profile)
    if case.dtype == "float64" and not rules_mod.chooses(rules, "float64_compute", "float64"):
        return "float32"
    return case.dtype


def _as_computed(case: Case, rules: Mapping[str, str]) -> Case:
    """The case as the implementation computes it: a float64 case under float64_compute="float32"
    becomes a float32 case (inputs, weights and every layer output rounded to float32)."""
    if case.dtype == "float64" and rules_mod.chooses(rules, "float64_compute", "float32"):
        return dataclasses.replace(case, dtype="float32")
    return case


def predictions(case: Case, profile: str | Mapping[str, str] = rules_mod.DEFAULT_PROFILE) -> dict[str, np.ndarray]:
    """Output name -> float64 prediction of the whole batch.

    Predictions depend on a rule through masks consumed by GlobalAveragePooling1D after a merge
    (merge_mask) and through float64_compute.
    """
    rules = rules_mod.resolve(profile)
    case = _as_computed(case, rules)
    fwd = forward.run(case, np.arange(case.batch_size), rules)
    return {out.name: np.array(fwd.tensors[out.layer].value, dtype=np.float64) for out in case.outputs}


def output_masks(case: Case, profile: str | Mapping[str, str] = rules_mod.DEFAULT_PROFILE) -> dict[str, np.ndarray | None]:
    """Output name -> the Keras mask its tensor carries (whole batch), or None."""
    fwd = forward.run(case, np.arange(case.batch_size), profile)
    return {out.name: fwd.tensors[out.layer].mask for out in case.outputs}
