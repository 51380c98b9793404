"""The rule table: every semantic rule (RULES) with its named alternatives and their sources.

Data only: harness.reference.rules documents the rules and reads a profile's choices;
harness.reference.semantics builds the semantics table on RULES. Both import this module, which
imports nothing of the harness (so the two need not import each other both ways).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class RuleError(KeyError):
    """An unknown rule, a profile without a choice for a rule, or an alternative a rule does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Alternative:
    description: str
    sources: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    name: str
    question: str
    alternatives: dict[str, Alternative]


_TFK = "tf_keras/src"
_K3 = "keras/src"
_K231 = "keras 2.3.1: keras"
_K224 = "keras 2.2.4: keras"
_TF215 = "tf 2.15: keras/src"  # TF 2.15's bundled Keras, in /work/venvs/tf215

RULES: dict[str, Rule] = {
    r.name: r
    for r in [
        Rule(
            "mask_normalisation",
            "With reduction sum_over_batch_size, what divides the sum of a masked output's weighted losses?",
            {
                "valid_entries": Alternative(
                    "mask * total/valid (plain division): the sum is divided by the number of unmasked "
                    "entries; a fully masked batch gives 0 * inf = NaN.",
                    [f"{_TFK}/utils/losses_utils.py:apply_valid_mask",
                     f"{_TFK}/losses.py:Loss.__call__",
                     f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/training_v1.py:Model._prepare_total_loss",
                     f"{_K224}/engine/training_utils.py:weighted_masked_objective"],
                ),
                "valid_entries_no_nan": Alternative(
                    "mask * divide_no_nan(total, valid): divided by the unmasked entries; a fully masked "
                    "batch gives 0.",
                    [f"{_K3}/losses/loss.py:apply_mask", f"{_K3}/losses/loss.py:reduce_weighted_values",
                     f"{_K3}/losses/loss.py:Loss.__call__"],
                ),
                "all_entries": Alternative(
                    "the mask is folded into the sample weights and the sum divided by all entries.",
                    [f"{_K231}/engine/training.py:Model._prepare_total_loss",
                     f"{_K231}/utils/losses_utils.py:compute_weighted_loss"],
                ),
            },
        ),
        Rule(
            "sample_weight_broadcast",
            "How does a per-sample weight (batch,) meet a temporal output's per-step losses (batch, time)?",
            {
                "per_sample": Alternative(
                    "the weight is expanded to (batch, 1) and applies to every step of its sample.",
                    [f"{_TFK}/utils/losses_utils.py:squeeze_or_expand_dimensions",
                     f"{_TFK}/utils/losses_utils.py:compute_weighted_loss",
                     f"{_K231}/utils/losses_utils.py:compute_weighted_loss"],
                ),
                "trailing_axis": Alternative(
                    "ranks are only reconciled when the last axis is 1; otherwise (batch,) broadcasts "
                    "against the trailing time axis: weight[t] scales step t when time == batch, and "
                    "time != batch is a broadcast error (the reference gives NaN and notes the error).",
                    [f"{_K3}/losses/loss.py:squeeze_or_expand_to_same_rank",
                     f"{_K3}/losses/loss.py:reduce_weighted_values", f"{_K3}/losses/loss.py:apply_mask"],
                ),
                "trailing_axis_inplace_mask": Alternative(
                    "as trailing_axis, but when the output has a mask, apply_mask's in-place "
                    "`sample_weight *= float_mask` cannot grow (batch,) to (batch, time): an error "
                    "(NumPy arrays and torch tensors are mutated in place; TF and JAX are not).",
                    [f"{_K3}/losses/loss.py:apply_mask", f"{_K3}/backend/numpy/core.py:convert_to_tensor",
                     f"{_K3}/backend/torch/core.py:convert_to_tensor"],
                ),
            },
        ),
        Rule(
            "sample_weight_column",
            "A sample weight given as a (batch, 1) column instead of a (batch,) vector:",
            {
                "per_sample": Alternative(
                    "the column is one weight per sample, as a (batch,) vector: its last axis is squeezed "
                    "against per-sample losses, and it broadcasts over the steps of per-step losses.",
                    [f"{_TFK}/engine/compile_utils.py:match_dtype_and_rank",
                     f"{_TFK}/utils/losses_utils.py:squeeze_or_expand_dimensions",
                     f"{_K3}/losses/loss.py:squeeze_or_expand_to_same_rank",
                     f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__"],
                ),
                "error_not_1d": Alternative(
                    "every path raises ValueError 'Found a sample_weight array with shape (batch, 1)' (without "
                    "sample_weight_mode='temporal' a weight must be 1D; with it, (batch, 1) does not match "
                    "(batch, time) unless time is 1); the reference gives NaN and notes it.",
                    [f"{_TFK}/engine/training_utils_v1.py:standardize_weights",
                     f"{_K231}/engine/training_utils.py:standardize_weights",
                     f"{_K224}/engine/training_utils.py:standardize_weights"],
                ),
            },
        ),
        Rule(
            "timestep_weight_trailing_axis",
            "A per-step sample weight given as (batch, time, 1) on a temporal output (compile says "
            "sample_weight_mode='temporal' where a lineage takes it):",
            {
                "squeezed": Alternative(
                    "its last axis is squeezed against the (batch, time) losses: the same as (batch, time).",
                    [f"{_TFK}/utils/losses_utils.py:squeeze_or_expand_dimensions",
                     f"{_K3}/losses/loss.py:squeeze_or_expand_to_same_rank"],
                ),
                "error_not_2d": Alternative(
                    "every path raises ValueError 'Found a sample_weight array with shape (batch, time, 1). In "
                    "order to use timestep-wise sample weighting, you should pass a 2D sample_weight array.'; "
                    "the reference gives NaN and notes it.",
                    [f"{_TFK}/engine/training_utils_v1.py:standardize_weights",
                     f"{_K231}/engine/training_utils.py:standardize_weights",
                     f"{_K224}/engine/training_utils.py:standardize_weights"],
                ),
            },
        ),
        Rule(
            "reduction_values",
            "A loss constructed with reduction 'mean', 'mean_with_sample_weight' or 'auto' (every lineage "
            "takes 'sum_over_batch_size' and 'sum'): which does the release accept, and what does it compute?",
            {
                "tf_keras": Alternative(
                    "'auto' is 'sum_over_batch_size' (in compile and fit); 'mean' and 'mean_with_sample_weight' "
                    "raise ValueError 'Invalid Reduction Key' when the loss is constructed; the reference "
                    "gives NaN and notes it.",
                    [f"{_TFK}/utils/losses_utils.py:ReductionV2.validate", f"{_TFK}/losses.py:Loss.__init__",
                     f"{_TFK}/losses.py:Loss._get_reduction"],
                ),
                "keras2": Alternative(
                    "only 'none', 'sum' and 'sum_over_batch_size': the other three raise ValueError 'Invalid "
                    "Reduction Key' when compile builds the loss; the reference gives NaN and notes it.",
                    [f"{_K231}/utils/losses_utils.py:Reduction.validate",
                     f"{_K231}/utils/losses_utils.py:compute_weighted_loss"],
                ),
                "keras3_before_3_7": Alternative(
                    "only 'sum_over_batch_size', 'sum', 'none' and None: the other three raise ValueError "
                    "'Invalid value for argument `reduction`' when the loss is constructed; the reference "
                    "gives NaN and notes it.",
                    ["keras==3.6.0: keras/src/losses/loss.py:standardize_reduction"],
                ),
                "keras3": Alternative(
                    "'mean' is 'sum_over_batch_size' (a mask is normalised the same way); "
                    "'mean_with_sample_weight' divides the weighted sum by ops.sum(sample_weight) as Keras "
                    "holds it: with a mask, the weights times the (unnormalised) mask; without one, the "
                    "weights in their own shape, so a (batch,) or (batch, 1) weight on (batch, time) losses "
                    "counts once per sample while the sum runs over every step; neither weights nor mask: "
                    "divided by the number of entries. 'auto' raises ValueError (the reference gives NaN "
                    "and notes it).",
                    [f"{_K3}/losses/loss.py:standardize_reduction", f"{_K3}/losses/loss.py:reduce_values",
                     f"{_K3}/losses/loss.py:apply_mask", f"{_K3}/losses/loss.py:reduce_weighted_values"],
                ),
            },
        ),
        Rule(
            "single_output_sample_weight_list",
            "A one-output model given sample_weight=[w] (a list of one array): what reaches the loss?",
            {
                "unwrapped": Alternative(
                    "the array w itself: the list is matched to the outputs, one array per output.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/compile_utils.py:match_dtype_and_rank"],
                ),
                "leading_axis": Alternative(
                    "the whole list: CompileLoss.call's one-output fast path resolves the weights with "
                    "the output's empty path, so [w] becomes a tensor of shape (1, batch) that "
                    "broadcasts against the losses: per-sample for (batch,) losses, an outer product "
                    "batch x batch (divided by batch**2 under sum_over_batch_size) for (batch, 1) "
                    "losses, weights along time for (batch, time) losses when time == batch, else a "
                    "broadcast error. Found by the property test (case 3994c1529a586951: 2.529 "
                    "instead of 2.664 on Keras 3.15 tensorflow and jax).",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.call",
                     f"{_K3}/losses/loss.py:squeeze_or_expand_to_same_rank",
                     f"{_K3}/losses/loss.py:reduce_weighted_values"],
                ),
            },
        ),
        Rule(
            "activity_regularizer_scaling",
            "Is an activity regularizer's penalty divided by the batch size?",
            {
                "batch_mean": Alternative(
                    "penalty(output) / batch size (divide_no_nan, or plain division in v1 layers).",
                    [f"{_TFK}/engine/base_layer.py:Layer._handle_activity_regularization",
                     f"{_TFK}/engine/base_layer_v1.py:Layer._handle_activity_regularization",
                     f"{_K3}/layers/layer.py:Layer.__call__"],
                ),
                "sum": Alternative(
                    "penalty(output), summed over the batch, not divided.",
                    [f"{_K231}/engine/base_layer.py:Layer.__call__", f"{_K224}/engine/base_layer.py:Layer.__call__"],
                ),
            },
        ),
        Rule(
            "probability_crossentropy",
            "Crossentropy on an output produced by a sigmoid/softmax activation: use its logits?",
            {
                "recover_logits": Alternative(
                    "the loss uses the activation's input (the tensor's _keras_logits, or the Sigmoid/"
                    "Softmax op's input in a graph), exactly and without clipping, even when "
                    "from_logits=True was passed.",
                    [f"{_TFK}/backend.py:_get_logits", f"{_TFK}/backend.py:sigmoid",
                     f"{_TFK}/backend.py:softmax",
                     f"{_K3}/backend/tensorflow/nn.py:_get_logits",
                     f"{_K3}/backend/tensorflow/nn.py:sigmoid", f"{_K3}/activations/activations.py:sigmoid"],
                ),
                "clip_epsilon": Alternative(
                    "the probabilities are clipped to [epsilon, 1 - epsilon] and logged.",
                    [f"{_K3}/backend/jax/nn.py:binary_crossentropy", f"{_K3}/backend/jax/nn.py:categorical_crossentropy",
                     f"{_K3}/backend/torch/nn.py:binary_crossentropy", f"{_K3}/backend/numpy/nn.py:binary_crossentropy",
                     f"{_K224}/backend/tensorflow_backend.py:binary_crossentropy",
                     f"{_K231}/backend/tensorflow_backend.py:binary_crossentropy",
                     f"{_K231}/backend/tensorflow_backend.py:categorical_crossentropy"],
                ),
            },
        ),
        Rule(
            "bce_probability_log",
            "Binary crossentropy on (clipped) probabilities: log(p) or log(p + epsilon)?",
            {
                "log_plus_epsilon": Alternative(
                    "clip to [eps, 1 - eps], then -(t log(p + eps) + (1 - t) log(1 - p + eps)).",
                    [f"{_TFK}/backend.py:binary_crossentropy"],
                ),
                "log_plus_epsilon_folded": Alternative(
                    "tf_keras's expression as a TensorFlow graph runs it: grappler's constant folding "
                    "rewrites log(1 - p + eps) as log((1 + eps) - p), 1 + eps rounded to the dtype "
                    "(float32: 1 + 2**-23, so a p clipped to 1 - eps gives log 2**-22); eager runs the "
                    "literal expression (docs/probes/bce_constant_folding.py).",
                    [f"{_K231}/backend/tensorflow_backend.py:binary_crossentropy", f"{_TFK}/backend.py:binary_crossentropy"],
                ),
                "log": Alternative(
                    "clip to [eps, 1 - eps], then -(t log p + (1 - t) log(1 - p)).",
                    [f"{_K3}/backend/tensorflow/nn.py:binary_crossentropy",
                     f"{_K3}/backend/jax/nn.py:binary_crossentropy",
                     f"{_K3}/backend/torch/nn.py:binary_crossentropy",
                     f"{_K3}/backend/numpy/nn.py:binary_crossentropy",
                     f"{_K224}/backend/tensorflow_backend.py:binary_crossentropy"],
                ),
            },
        ),
        Rule(
            "bce_from_logits",
            "Binary crossentropy with from_logits=True (logits not recovered from an activation):",
            {
                "exact": Alternative(
                    "the numerically exact sigmoid crossentropy with logits.",
                    [f"{_TFK}/backend.py:binary_crossentropy",
                     f"{_K3}/backend/tensorflow/nn.py:binary_crossentropy",
                     f"{_K3}/backend/jax/nn.py:binary_crossentropy",
                     f"{_K3}/backend/torch/nn.py:binary_crossentropy"],
                ),
                "sigmoid_then_clip": Alternative(
                    "sigmoid(logits), then clipped to [eps, 1 - eps] and logged: bounded for large logits.",
                    [f"{_K3}/backend/numpy/nn.py:binary_crossentropy"],
                ),
            },
        ),
        Rule(
            "sparse_ce_probability",
            "Sparse categorical crossentropy on probabilities (logits not recovered):",
            {
                "log_softmax_of_clipped": Alternative(
                    "logits = log(clip(p, eps, 1 - eps)), then sparse softmax crossentropy with logits "
                    "(so the clipped row is renormalised after clipping).",
                    [f"{_TFK}/backend.py:sparse_categorical_crossentropy",
                     f"{_K3}/backend/tensorflow/nn.py:sparse_categorical_crossentropy"],
                ),
                "renormalise_clip_log": Alternative(
                    "p / sum(p), clipped to [eps, 1 - eps], -log of the target's entry.",
                    [f"{_K3}/backend/jax/nn.py:sparse_categorical_crossentropy",
                     f"{_K3}/backend/torch/nn.py:sparse_categorical_crossentropy",
                     f"{_K3}/backend/numpy/nn.py:sparse_categorical_crossentropy"],
                ),
            },
        ),
        Rule(
            "focal_from_logits",
            "Binary focal crossentropy with from_logits=True: what is its crossentropy factor computed on?",
            {
                "bce_on_given_logits": Alternative(
                    "backend.binary_crossentropy(target, output, from_logits=True): the given tensor "
                    "(or its recovered _keras_logits) as logits; the focal factor uses sigmoid(output).",
                    [f"{_TFK}/backend.py:binary_focal_crossentropy"],
                ),
                "bce_on_sigmoid": Alternative(
                    "y_pred = sigmoid(output) first, then crossentropy on probabilities (whose logits the "
                    "TensorFlow backend recovers from ops.sigmoid's _keras_logits; other backends clip).",
                    [f"{_K3}/losses/losses.py:binary_focal_crossentropy"],
                ),
            },
        ),
        Rule(
            "cosine_norm_floor",
            "cosine_similarity: how is a zero or tiny vector normalised?",
            {
                "sumsq_1e-12": Alternative(
                    "x * rsqrt(max(sum(x^2), 1e-12)) (tf.linalg.l2_normalize): norm floored at 1e-6.",
                    [f"{_TFK}/losses.py:cosine_similarity", f"{_K231}/losses.py:cosine_proximity"],
                ),
                "norm_1e-7": Alternative(
                    "x * min(rsqrt(sum(x^2)), 1/epsilon): norm floored at epsilon = 1e-7.",
                    [f"{_K3}/losses/losses.py:cosine_similarity", f"{_K3}/ops/nn.py:normalize"],
                ),
            },
        ),
        Rule(
            "label_smoothing_classes",
            "categorical_crossentropy label smoothing: the number of classes is read from which axis?",
            {
                "last_axis": Alternative(
                    "y * (1 - ls) + ls / shape[-1].",
                    [f"{_TFK}/losses.py:categorical_crossentropy", f"{_K3}/losses/losses.py:categorical_crossentropy"],
                ),
                "axis_1": Alternative(
                    "y * (1 - ls) + ls / shape[1] (the time axis for temporal outputs).",
                    [f"{_K231}/losses.py:categorical_crossentropy"],
                ),
            },
        ),
        Rule(
            "merge_mask",
            "How do Add and Concatenate combine their inputs' masks?",
            {
                "and": Alternative(
                    "AND of the masks present (Add ignores unmasked inputs; Concatenate counts them as "
                    "all-true); no mask on any input gives no mask.",
                    [f"{_TFK}/layers/merging/base_merge.py:_Merge.compute_mask",
                     f"{_TFK}/layers/merging/concatenate.py:Concatenate.compute_mask",
                     f"{_K231}/layers/merge.py:_Merge.compute_mask",
                     f"{_K231}/layers/merge.py:Concatenate.compute_mask"],
                ),
                "or": Alternative(
                    "OR: Add gives no mask as soon as one input is unmasked, else the OR of the masks; "
                    "Concatenate counts an unmasked input as all-true, so the result is all-true.",
                    [f"{_K3}/layers/merging/base_merge.py:Merge.compute_mask",
                     f"{_K3}/layers/merging/concatenate.py:Concatenate.compute_mask"],
                ),
            },
        ),
        Rule(
            "loss_weights_dict_with_list_loss",
            "loss given as a list and loss_weights as a dict: which weight goes to which output?",
            {
                "by_name": Alternative(
                    "each output gets the weight under its name.",
                    [f"{_TFK}/engine/compile_utils.py:Container._maybe_broadcast_to_outputs",
                     f"{_TFK}/engine/compile_utils.py:map_to_output_names"],
                ),
                "sorted_names": Alternative(
                    "the dict is flattened in sorted-key order and paired with the losses by position: "
                    "output i (model order) gets the weight of the i-th name in sorted order.",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.build"],
                ),
                "error": Alternative(
                    "ValueError 'If the `loss` argument is provided as a list/tuple, the `loss_weight` argument "
                    "should also be provided as a list/tuple, of equal length' (the reference gives NaN and a note).",
                    ["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build"],
                ),
            },
        ),
        Rule(
            "single_loss_with_loss_weights",
            "One loss for several outputs, with loss_weights given per output:",
            {
                "broadcast": Alternative(
                    "the loss is used for every output, each with its weight.",
                    [f"{_TFK}/engine/compile_utils.py:Container._maybe_broadcast_to_outputs"],
                ),
                "error": Alternative(
                    "weights are packed against the single (unbroadcast) loss: ValueError '`loss_weights` "
                    "must match the number of losses' (the reference gives NaN and a note).",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.build"],
                ),
                "broadcast_as_list": Alternative(
                    "the loss is first made a list with one entry per output (`loss = tree.map_structure(lambda x: "
                    "loss, y_pred)`), so the weights then meet a list of losses: a dict of weights is paired as "
                    "the rule loss_weights_dict_with_list_loss says.",
                    ["keras==3.6.0: keras/src/trainers/compile_utils.py:CompileLoss.build"],
                ),
            },
        ),
        Rule(
            "rnn_activity_regularizer",
            "SimpleRNN(activity_regularizer=...): is the penalty added?",
            {
                "applied": Alternative(
                    "yes, on the (sequence) output, as for any layer.",
                    [f"{_TFK}/layers/rnn/simple_rnn.py:SimpleRNN.__init__",
                     f"{_TFK}/engine/base_layer.py:Layer._handle_activity_regularization",
                     f"{_K231}/layers/recurrent.py:SimpleRNN.__init__"],
                ),
                "ignored": Alternative(
                    "no: the argument is accepted and never passed to the base layer, so "
                    "layer.activity_regularizer stays None.",
                    [f"{_K3}/layers/rnn/simple_rnn.py:SimpleRNN.__init__"],
                ),
            },
        ),
        Rule(
            "time_distributed_activity_regularizer",
            "TimeDistributed(Dense(activity_regularizer=...)): is the Dense's penalty added, and how often?",
            {
                "once_flattened": Alternative(
                    "once: the wrapper calls the Dense (its __call__) on the (batch * time, features) reshape, "
                    "so the penalty of the whole output is divided by batch * time where activity penalties "
                    "are divided by the batch size (activity_regularizer_scaling=batch_mean).",
                    [f"{_TFK}/layers/rnn/time_distributed.py:TimeDistributed.call",
                     f"{_TFK}/engine/base_layer.py:Layer._handle_activity_regularization",
                     f"{_TF215}/layers/rnn/time_distributed.py:TimeDistributed.call"],
                ),
                "ignored": Alternative(
                    "no: the wrapper runs the Dense's call() on each step, which applies no activity "
                    "regularizer, and the wrapper has none of its own.",
                    [f"{_K3}/layers/rnn/time_distributed.py:TimeDistributed.call",
                     f"{_K3}/layers/core/wrapper.py:Wrapper.__init__"],
                ),
                "once_on_output": Alternative(
                    "once, on the wrapper's (batch, time, units) output: Layer.__call__ applies the "
                    "wrapper's activity_regularizer, which the Wrapper's property returns as the Dense's "
                    "(divided by the batch size under activity_regularizer_scaling=batch_mean). "
                    "TimeDistributed.call adds the same penalty again, but keyed by the reshaped input "
                    "(it reassigns `inputs`), and Network.losses asks only for the losses of each node's "
                    "input tensors, so that one never counts (functional models, batch size not static).",
                    [f"{_K231}/layers/wrappers.py:TimeDistributed.call",
                     f"{_K231}/layers/wrappers.py:Wrapper.activity_regularizer",
                     f"{_K231}/engine/base_layer.py:Layer.__call__",
                     f"{_K231}/engine/network.py:Network.losses",
                     f"{_K224}/layers/wrappers.py:TimeDistributed.call",
                     f"{_K224}/engine/network.py:Network.losses"],
                ),
            },
        ),
        Rule(
            "zero_loss_weight",
            "An output's loss is NaN (e.g. a fully masked batch) and its loss weight is 0.0:",
            {
                "nan_propagates": Alternative(
                    "NaN * 0 = NaN: the total is NaN (IEEE arithmetic; eager, TF 2.21 tf.function, Keras 3).",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_K3}/trainers/compile_utils.py:CompileLoss.call"],
                ),
                "folded_to_zero": Alternative(
                    "the product with the constant 0.0 is folded to 0 by TensorFlow 2.15's graph "
                    "optimizer inside tf.function (observed: TF 2.15.1 run_eagerly=False gives 0, "
                    "run_eagerly=True gives NaN), so the output contributes 0.",
                    [f"{_TF215}/engine/compile_utils.py:LossesContainer.__call__"],
                ),
            },
        ),
        Rule(
            "huber_last_axis",
            "Huber: is the per-element loss averaged over the last axis before weighting and reduction?",
            {
                "mean": Alternative(
                    "yes: one loss per sample (per step), mean over the last axis.",
                    [f"{_TFK}/losses.py:huber", f"{_K3}/losses/losses.py:huber"],
                ),
                "none": Alternative(
                    "no: the element-wise loss keeps the last axis (d entries); sample weights and masks "
                    "are expanded over it, `sum` adds all d entries (d times the mean), "
                    "`sum_over_batch_size` divides by every entry (the same as the mean).",
                    [f"{_K231}/losses.py:huber_loss", f"{_K231}/utils/losses_utils.py:compute_weighted_loss",
                     f"{_K231}/utils/losses_utils.py:broadcast_weights"],
                ),
            },
        ),
        Rule(
            "log_cosh_float64",
            "log_cosh with floatx float64:",
            {
                "computed": Alternative(
                    "computed in float64 (log(2) converted to the input dtype).",
                    [f"{_TFK}/losses.py:log_cosh", f"{_K3}/losses/losses.py:log_cosh"],
                ),
                "error": Alternative(
                    "`x + K.softplus(-2. * x) - K.log(2.)`: K.log(2.) is a float32 constant, and "
                    "float64 - float32 raises a TypeError/ValueError when the model is compiled "
                    "(the reference gives NaN and notes the error).",
                    [f"{_K231}/losses.py:logcosh", f"{_K224}/losses.py:logcosh"],
                ),
            },
        ),
        Rule(
            "categorical_hinge_float64",
            "categorical_hinge with floatx float64:",
            {
                "computed": Alternative(
                    "computed in float64 (the constant 0 converted to the input dtype).",
                    [f"{_TFK}/losses.py:categorical_hinge", f"{_K3}/losses/losses.py:categorical_hinge"],
                ),
                "error": Alternative(
                    "`K.maximum(0., neg - pos + 1.)`: tf.maximum converts the Python 0. to a float32 tensor "
                    "first, and float32 vs float64 raises a TypeError when the model is compiled (the "
                    "reference gives NaN and notes the error).",
                    [f"{_K231}/losses.py:categorical_hinge", f"{_K224}/losses.py:categorical_hinge"],
                ),
            },
        ),
        Rule(
            "sample_weight_normalisation",
            "Is an output's weighted loss divided by the fraction of non-zero sample weights?",
            {
                "none": Alternative(
                    "no: sum(losses * weights) / entries (sum_over_batch_size).",
                    [f"{_TFK}/utils/losses_utils.py:compute_weighted_loss",
                     f"{_K3}/losses/loss.py:reduce_weighted_values",
                     f"{_K231}/utils/losses_utils.py:compute_weighted_loss"],
                ),
                "nonzero_fraction": Alternative(
                    "yes: score *= weights; score /= mean(weights != 0) (over the weight array as given, "
                    "(batch,) or (batch, time)); all-zero weights give 0/0 = NaN. Without user weights the "
                    "weights are ones (a placeholder fed with ones), so the factor is 1.",
                    [f"{_K224}/engine/training_utils.py:weighted_masked_objective",
                     f"{_K224}/engine/training_utils.py:standardize_weights"],
                ),
            },
        ),
        Rule(
            "dict_sample_weight",
            "sample_weight given as a dict keyed by output name (y given as a list, or one array):",
            {
                "by_name": Alternative(
                    "each output gets the weights under its name.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/data_adapter.py:unpack_x_y_sample_weight",
                     f"{_K231}/engine/training_utils.py:standardize_sample_weights"],
                ),
                "error": Alternative(
                    "an error (the reference gives NaN and notes it, per path). Several outputs: "
                    "compute_loss/test_on_batch look the weights up by the list index of the output "
                    "(`KeyError: 0` in CompileLoss.call's resolve_path); evaluate/fit refuse a dict "
                    "against a list y ('You should provide one `sample_weight` array per output in `y`', "
                    "ArrayDataAdapter.__init__). One output: the whole dict reaches the loss as its "
                    "sample weight and the backend cannot convert it (convert_to_tensor).",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.call",
                     f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__",
                     f"{_K3}/backend/numpy/core.py:convert_to_tensor",
                     f"{_K3}/backend/common/variables.py:standardize_dtype"],
                ),
            },
        ),
        Rule(
            "dict_targets_one_output",
            "y given as a dict keyed by output name, for a one-output model:",
            {
                "as_array": Alternative(
                    "the dict's one array is the target.",
                    [f"{_TFK}/engine/compile_utils.py:Container._conform_to_outputs",
                     f"{_TFK}/engine/compile_utils.py:map_to_output_names"],
                ),
                "error": Alternative(
                    "an error on every path (the reference gives NaN and notes it): the one-output fast "
                    "path does not apply to a nested y, and `tree.pack_sequence_as(y_pred, y_true)` of a "
                    "single tensor with a dict yields its key, which the loss cannot convert (jax "
                    "ValueError 'could not convert string to float', tensorflow TypeError).",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.call"],
                ),
            },
        ),
        Rule(
            "dict_sample_weight_with_dict_targets",
            "sample_weight and y both given as dicts keyed by output name:",
            {
                "by_name": Alternative(
                    "each output gets the target and the weights under its name.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/compile_utils.py:Container._conform_to_outputs"],
                ),
                "error": Alternative(
                    "KeyError: 0 on every path (the reference gives NaN and notes it): y is mapped to the "
                    "outputs by name, but CompileLoss.call's resolve_path looks the dict sample weight up "
                    "by the output's list index.",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.call"],
                ),
            },
        ),
        Rule(
            "one_output_loss_weights",
            "loss_weights for a one-output model, as a bare number, a list of one or a dict of one:",
            {
                "any_form": Alternative(
                    "every form weights the one loss, an int as well as a float.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.build",
                     f"{_TFK}/engine/compile_utils.py:Container._conform_to_outputs"],
                ),
                "no_bare_number": Alternative(
                    "a list or a dict weights the loss; a bare number (zero too) raises TypeError 'Could not "
                    "interpret loss_weights argument' (the reference gives NaN and notes it).",
                    [f"{_TFK}/engine/training_utils_v1.py:prepare_loss_weights",
                     f"{_K231}/engine/training_utils.py:prepare_loss_weights",
                     f"{_K224}/engine/training.py:Model.compile"],
                ),
                "no_bare_int": Alternative(
                    "a list, a dict and a bare float weight the loss; a bare non-zero int raises ValueError "
                    "'Expected `loss_weights` argument to be a float (single output case) or a list, tuple, "
                    "or dict' (the check is `if loss_weights and not isinstance(..., (list, tuple, dict, "
                    "float))`: a zero int is falsy, passes and weights the loss); the reference gives NaN and notes it.",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.__init__",
                     f"{_K3}/trainers/compile_utils.py:CompileLoss.build"],
                ),
                "bare_float_only": Alternative(
                    "only a bare float weights the loss: a list or a dict raises ValueError 'When there is only "
                    "a single output, the `loss_weights` argument must be a Python float' (CompileLoss.build), "
                    "a bare non-zero int raises ValueError in CompileLoss.__init__, and a bare zero (falsy) "
                    "counts as 1.0 (`if loss_weights: ... else: flat_loss_weights.append(1.0)`); the reference gives NaN "
                    "and notes each error.",
                    ["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build",
                     "keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.__init__"],
                ),
                "none": Alternative(
                    "no form weights the loss: a list or a dict raises ValueError 'the `loss_weights` argument "
                    "must be a Python float' (CompileLoss.build), a bare non-zero number ValueError 'Expected "
                    "`loss_weights` argument to be a list, tuple, or dict' (CompileLoss.__init__); a bare zero "
                    "(falsy) passes both and counts as 1.0; the reference gives NaN and notes each error.",
                    ["keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.build",
                     "keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.__init__"],
                ),
            },
        ),
        Rule(
            "single_sample_weight_not_per_sample",
            "One sample_weight array for several outputs that is not one score per sample (e.g. "
            "(batch, time)), in evaluate/fit:",
            {
                "shared": Alternative(
                    "the array is used for every output.",
                    [f"{_TFK}/engine/compile_utils.py:Container._conform_to_outputs"],
                ),
                "error_in_data_adapter": Alternative(
                    "evaluate/fit raise ValueError 'For a model with multiple outputs, when providing a "
                    "single `sample_weight` array, it should only have one scalar score per sample' (the "
                    "reference gives NaN and notes it); compute_loss/test_on_batch/train_on_batch use no "
                    "data adapter and share the array like 'shared'.",
                    [f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__"],
                ),
            },
        ),
        Rule(
            "none_in_sample_weight_list",
            "A list sample_weight with None for some outputs (sample_weight=[w, None]), in train_on_batch and "
            "test_on_batch:",
            {
                "unweighted": Alternative(
                    "that output gets no weights (its losses weigh 1), on every path.",
                    [f"{_TFK}/engine/data_adapter.py:_check_data_cardinality",
                     f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__",
                     f"{_TFK}/engine/training_utils_v1.py:standardize_weights",
                     f"{_K231}/engine/training_utils.py:standardize_weights"],
                ),
                "on_batch_attribute_error": Alternative(
                    "train_on_batch and test_on_batch raise AttributeError \"'NoneType' object has no attribute "
                    "'shape'\" (single_batch_iterator's _check_data_cardinality reads every element's shape[0]); "
                    "evaluate and fit take another data adapter, and the train step's gradient none, so they "
                    "weigh that output 1; the reference gives NaN on the two and notes it.",
                    ["keras==2.15.0: keras/src/engine/data_adapter.py:_check_data_cardinality"],
                ),
            },
        ),
        Rule(
            "partial_dict_sample_weight",
            "A dict sample_weight without the key of some outputs (sample_weight={'a': w} for outputs a and b):",
            {
                "unweighted": Alternative(
                    "an output without a key gets no weights (its losses weigh 1), on every path.",
                    [f"{_TFK}/engine/compile_utils.py:map_to_output_names",
                     f"{_TFK}/engine/training_utils_v1.py:standardize_sample_or_class_weights",
                     f"{_K231}/engine/training_utils.py:standardize_sample_or_class_weights",
                     f"{_K224}/engine/training_utils.py:standardize_sample_or_class_weights"],
                ),
                "first_for_all": Alternative(
                    "compute_loss/test_on_batch/train_on_batch: CompileLoss._flatten_y keeps the weights that "
                    "are given, in output order, and `if len(sample_weight) < len(y_true)` gives the first of "
                    "them to every output (also to the outputs that have their own); evaluate/fit with a dict y "
                    "raise ValueError 'You should provide one `sample_weight` array per output in `y`' "
                    "(ArrayDataAdapter.__init__ tree.assert_same_structure(y, sample_weight)).",
                    ["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.call",
                     f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__"],
                ),
                "structure_error": Alternative(
                    "evaluate/fit with a dict y raise that ValueError of ArrayDataAdapter.__init__; the other "
                    "paths are as rules dict_sample_weight and dict_sample_weight_with_dict_targets say.",
                    [f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__"],
                ),
            },
        ),
        Rule(
            "additional_losses_sum",
            "Trainer.compute_loss with the compiled loss and >= 1 entry of model.losses: how is the list summed?",
            {
                "ops_sum": Alternative(
                    "ops.sum(losses) stacks the list of scalars (TensorFlow, JAX, torch backends; Keras 2 "
                    "adds the tensors).",
                    [f"{_K3}/trainers/trainer.py:Trainer.compute_loss", f"{_K3}/backend/jax/numpy.py:sum",
                     f"{_K3}/backend/tensorflow/numpy.py:sum"],
                ),
                "list_error": Alternative(
                    "the numpy backend's sum reads `x.dtype` of the Python list first: AttributeError "
                    "\"'list' object has no attribute 'dtype'\" (the reference gives NaN and notes it).",
                    [f"{_K3}/trainers/trainer.py:Trainer.compute_loss", f"{_K3}/backend/numpy/numpy.py:sum"],
                ),
            },
        ),
        Rule(
            "l1_regularizer_float64",
            "An L1 regularizer (weight or activity) in a float64 case: is the penalty computed?",
            {
                "computed": Alternative(
                    "yes: the factor takes the input's dtype (Keras 3.14+ `ops.cast(self.l1, dtype=x.dtype)`; "
                    "Keras 2 multiplies by a Python float; JAX, torch and NumPy promote a float32 factor).",
                    [f"{_K3}/regularizers/regularizers.py:L1.__call__", f"{_TFK}/regularizers.py:L1.__call__"],
                ),
                "error": Alternative(
                    "no: L1.__init__ keeps `ops.convert_to_tensor(l1)`, a float32 tensor, and `__call__` "
                    "multiplies it with the float64 sum; TensorFlow refuses float32 * float64 "
                    "(InvalidArgumentError eager, TypeError traced; the reference gives NaN and notes it).",
                    ["keras==3.13.2: keras/src/regularizers/regularizers.py:L1.__init__",
                     "keras==3.13.2: keras/src/regularizers/regularizers.py:L1.__call__"],
                ),
            },
        ),
        Rule(
            "float64_compute",
            "A float64 case (floatx float64, float64 arrays, layers with dtype float64): in which dtype "
            "does the implementation compute?",
            {
                "float64": Alternative(
                    "float64 throughout (Keras 2; Keras 3 on TensorFlow, where result_type keeps float64).",
                    [f"{_TFK}/backend_config.py:floatx", f"{_K3}/backend/tensorflow/core.py:convert_to_tensor"],
                ),
                "float32_reduction": Alternative(
                    "mixed: arrays, variables and most ops are float64, but ops that promote with Keras's "
                    "result_type, which maps float64 to float32 off TensorFlow (BIT64_TO_BIT32_DTYPE), "
                    "pass through float32: the reduction's divide_no_nan (torch: MeanSquaredError()(y, p) "
                    "is torch.float32 under floatx float64) and, on JAX with JAX_ENABLE_X64=1 (as "
                    "harness.impls runs it), matmul and others (predictions carry float32 rounding). The "
                    "reference computes float64 (a saturated sigmoid is not rounded to 1.0 as a float32 "
                    "forward pass would: case 6ddeda77757a354f tells them apart); the tolerance is "
                    "float32's (harness.reference.effective_dtype).",
                    [f"{_K3}/backend/torch/numpy.py:divide_no_nan", f"{_K3}/backend/jax/numpy.py:divide_no_nan",
                     f"{_K3}/backend/jax/numpy.py:matmul", f"{_K3}/backend/common/dtypes.py:_lattice_result_type",
                     f"{_K3}/losses/loss.py:reduce_values"],
                ),
                "float32": Alternative(
                    "float32 throughout: the NumPy backend's convert_to_tensor and variables take Keras's "
                    "result_type, which maps float64 to float32 off TensorFlow (observed: Dense(dtype="
                    "'float64') has kernel.value.dtype float32). The reference computes the case as a "
                    "float32 case.",
                    [f"{_K3}/backend/common/dtypes.py:_lattice_result_type", f"{_K3}/backend/common/dtypes.py:result_type",
                     f"{_K3}/backend/numpy/core.py:convert_to_tensor"],
                ),
            },
        ),
        Rule(
            "output_log",
            "What does the per-output loss in the logs show?",
            {
                "unweighted": Alternative(
                    "the output's loss before its loss weight.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/training_v1.py:Model._prepare_total_loss",
                     f"{_K3}/trainers/compile_utils.py:CompileLoss.call",
                     f"{_K231}/engine/training.py:Model._prepare_total_loss"],
                ),
                "weighted": Alternative("the output's loss times its loss weight.", []),
            },
        ),
        Rule(
            "per_output_log_entries",
            "Which per-output loss entries ('<name>_loss') do the logs of test_on_batch, train_on_batch, "
            "evaluate and fit hold? (judged as <path>/<mode>/log_entries, harness/compare_observations.py)",
            {
                "from_two_outputs": Alternative(
                    "one per output when the model has two or more outputs, none for one output: Keras 3's "
                    "CompileLoss.build adds a Mean '<name>_loss' metric per loss only `if len(flat_losses) > 1`; "
                    "tf-keras's LossesContainer._create_metrics keeps `[None]` for one output (the same in TF "
                    "2.15's keras 2.15.0); training_v1 and keras 2.3.1 / 2.2.4 add '<name>_loss' to "
                    "metrics_names only when len(self.outputs) > 1.",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.build",
                     f"{_TFK}/engine/compile_utils.py:LossesContainer._create_metrics",
                     f"{_TFK}/engine/training_v1.py:Model._prepare_total_loss",
                     f"{_K231}/engine/training.py:Model._prepare_total_loss"],
                ),
                "none": Alternative(
                    "none at all: CompileLoss keeps no metric per output, the logs hold 'loss' alone.",
                    ["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build",
                     "keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.build"],
                ),
            },
        ),
        Rule(
            "evaluate_total",
            "evaluate/fit over several batches: how are the per-batch totals averaged?",
            {
                "batch_size_weighted": Alternative(
                    "mean of the batch totals weighted by batch size (a Mean metric with "
                    "sample_weight=batch size, or the v1 aggregator's sum of value * batch size / samples).",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/engine/training_utils_v1.py:MetricsAggregator.aggregate",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.test_step",
                     f"{_K3}/backend/jax/trainer.py:JAXTrainer._update_metrics_variables",
                     f"{_K224}/engine/training_arrays.py:test_loop"],
                ),
                "batch_mean": Alternative("plain mean of the batch totals.", []),
            },
        ),
        Rule(
            "evaluate_output_log",
            "evaluate/fit over several batches: how are the per-output logged losses averaged?",
            {
                "batch_size_weighted": Alternative(
                    "Mean metric updated with sample_weight = batch size.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_K3}/trainers/compile_utils.py:CompileLoss.call",
                     f"{_K224}/engine/training_arrays.py:test_loop"],
                ),
                "batch_mean": Alternative(
                    "Mean metric updated once per batch without weights (a stateful metric the v1 "
                    "loop reads as is; in Keras 3 on TensorFlow, compiled, `sample_weight="
                    "y_p.shape[0]` is the static batch size, None inside tf.function).",
                    [f"{_K3}/trainers/compile_utils.py:CompileLoss.call",
                     f"{_TFK}/engine/training_v1.py:Model._prepare_total_loss",
                     f"{_TFK}/engine/training_utils_v1.py:MetricsAggregator.aggregate",
                     f"{_K231}/engine/training.py:Model._prepare_total_loss"],
                ),
            },
        ),
        Rule(
            "on_batch_metrics",
            "Several test_on_batch calls in a row on one model, nothing reset in between (path "
            "test_on_batch_loop): what does each call return?",
            {
                "reset_each_call": Alternative(
                    "the loss of its own batch: the metrics (the loss tracker, each output's Mean) are reset "
                    "before the step (Keras 3.15: `self.reset_metrics()` after make_test_function; tf-keras: "
                    "`reset_metrics=True`, the default) or after it (training_v1, keras 2.3.1); keras 2.2.4's "
                    "losses are not stateful metrics at all.",
                    [f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.test_on_batch",
                     f"{_K3}/backend/jax/trainer.py:JAXTrainer.test_on_batch",
                     f"{_K3}/backend/torch/trainer.py:TorchTrainer.test_on_batch",
                     f"{_TFK}/engine/training.py:Model.test_on_batch",
                     f"{_TFK}/engine/training_v1.py:Model.test_on_batch",
                     f"{_K231}/engine/training.py:Model.test_on_batch"],
                ),
                "accumulates": Alternative(
                    "the mean over every call since compile (or reset_metrics): the loss tracker and each "
                    "output's Mean keep their state across calls, so the k-th call returns the k batches "
                    "combined as evaluate combines them (rules evaluate_total, evaluate_output_log).",
                    ["keras==3.14.0: keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer.test_on_batch",
                     f"{_K3}/backend/numpy/trainer.py:NumpyTrainer.test_on_batch"],
                ),
            },
        ),
        Rule(
            "mask_into_unmasking_layer",
            "A layer that does not support masking (Conv1D) is called on a tensor with a Keras mask:",
            {
                "dropped": Alternative(
                    "its output carries no mask: the masked steps count in every loss after it. Keras 3 warns "
                    "('does not support masking and will therefore destroy the mask information'); tf-keras "
                    "says nothing (_set_mask_metadata returns before compute_mask, whose TypeError never runs).",
                    [f"{_K3}/layers/layer.py:Layer.__call__",
                     f"{_TFK}/engine/base_layer.py:Layer._set_mask_metadata",
                     f"{_TF215}/engine/base_layer.py:Layer._set_mask_metadata"],
                ),
                "error": Alternative(
                    "TypeError ('Layer ... does not support masking, but was passed an input_mask'): Layer.__call__ "
                    "calls compute_mask on the masked tensor, so the model cannot be built.",
                    [f"{_K231}/engine/base_layer.py:Layer.compute_mask",
                     f"{_K224}/engine/base_layer.py:Layer.compute_mask"],
                ),
            },
        ),
        Rule(
            "batch_norm_mask",
            "A BatchNormalization in training mode (the training paths) on a tensor with a Keras mask: "
            "over which steps are the batch mean and variance taken?",
            {
                "masked_moments_epsilon": Alternative(
                    "the unmasked steps only, each sum divided by (unmasked count + 1e-7): mean = sum(m x) / "
                    "(sum m + 1e-7), variance = sum(m (x - mean)^2) / (sum m + 1e-7) (backend.epsilon(); a fully "
                    "masked batch normalises with mean 0 and variance 0).",
                    [f"{_K3}/layers/normalization/batch_normalization.py:BatchNormalization._moments"],
                ),
                "masked_moments": Alternative(
                    "the unmasked steps only: tf.nn.weighted_moments with the mask as frequency weights "
                    "(div_no_nan by the unmasked count: a fully masked batch gives mean 0 and variance 0).",
                    [f"{_TFK}/layers/normalization/batch_normalization.py:BatchNormalizationBase."
                     "_no_sync_calculate_mean_and_var",
                     f"{_TF215}/layers/normalization/batch_normalization.py:BatchNormalizationBase."
                     "_no_sync_calculate_mean_and_var",
                     "tensorflow/python/ops/nn_impl.py:weighted_moments"],
                ),
                "ignored": Alternative(
                    "every step, masked or not: the layer's call takes no mask (it passes the mask on, "
                    "supports_masking = True, but tf.nn.moments sees the padded steps too).",
                    [f"{_K231}/layers/normalization.py:BatchNormalization.call",
                     f"{_K224}/layers/normalization.py:BatchNormalization.call"],
                ),
            },
        ),
        Rule(
            "batch_norm_single_masked_feature",
            "A BatchNormalization of ONE feature, in training mode, on a tensor with a Keras mask:",
            {
                "normalised": Alternative(
                    "normalised like any other (rule batch_norm_mask): TensorFlow's tf.nn.batch_normalization "
                    "broadcasts the moments whatever their shape.",
                    [f"{_K3}/backend/tensorflow/nn.py:batch_normalization",
                     f"{_TFK}/layers/normalization/batch_normalization.py:BatchNormalizationBase.call"],
                ),
                "index_error": Alternative(
                    "IndexError 'tuple index out of range': BatchNormalization._moments returns "
                    "ops.squeeze(mean), ops.squeeze(variance), which squeezes the feature axis of size 1 too "
                    "(shape ()), and the backend's batch_normalization reads mean.shape[0] (JAX, torch, NumPy; "
                    "TensorFlow's does only for axis != -1).",
                    [f"{_K3}/layers/normalization/batch_normalization.py:BatchNormalization._moments",
                     f"{_K3}/backend/jax/nn.py:batch_normalization",
                     f"{_K3}/backend/torch/nn.py:batch_normalization",
                     f"{_K3}/backend/numpy/nn.py:batch_normalization"],
                ),
            },
        ),
        Rule(
            "batch_norm_float64",
            "A BatchNormalization in a float64 model:",
            {
                "computed": Alternative(
                    "normalised in float64 like any layer.",
                    [f"{_K3}/layers/normalization/batch_normalization.py:BatchNormalization.call",
                     f"{_TFK}/layers/normalization/batch_normalization.py:BatchNormalizationBase.call",
                     f"{_K224}/layers/normalization.py:BatchNormalization.call"],
                ),
                "type_error": Alternative(
                    "TypeError as the layer is called (the model cannot be built): on TensorFlow the training "
                    "branch casts the batch's sample size to float32 and multiplies the float64 variance by it "
                    "(`variance *= sample_size / (sample_size - (1.0 + self.epsilon))`).",
                    [f"{_K231}/layers/normalization.py:BatchNormalization.call"],
                ),
            },
        ),
        Rule(
            "bidirectional_masked_steps",
            "What a Bidirectional(LSTM) outputs at a masked step (each direction; the states carry over it):",
            {
                "zero": Alternative(
                    "zeros: Bidirectional sets each copy's zero_output_for_mask to return_sequences "
                    "(force_zero_output_for_mask), so a masked step outputs 0 in both directions.",
                    [f"{_K3}/layers/rnn/bidirectional.py:Bidirectional.__init__",
                     f"{_TFK}/layers/rnn/bidirectional.py:Bidirectional.__init__"],
                ),
                "repeat_previous": Alternative(
                    "that direction's previous output (0 before its first unmasked step): the copies keep "
                    "the LSTM's zero_output_for_mask=False.",
                    [f"{_K231}/layers/wrappers.py:Bidirectional.__init__",
                     f"{_K224}/layers/wrappers.py:Bidirectional.__init__"],
                ),
            },
        ),
        Rule(
            "class_weight_lookup",
            "fit / train_on_batch(class_weight={id: w}): which weight does a sample's class get, and which "
            "dicts are refused? (harness/reference/class_weights.py)",
            {
                "get_or_one": Alternative(
                    "the rounded class id's weight, 1.0 for an id the dict lacks; any ids.",
                    [f"{_K3}/trainers/data_adapters/data_adapter_utils.py:class_weight_to_sample_weights",
                     "keras==3.0.5: keras/src/trainers/data_adapters/data_adapter_utils.py:"
                     "class_weight_to_sample_weights"],
                ),
                "contiguous_gather": Alternative(
                    "the dict's ids must be exactly 0 .. n-1 (else ValueError before any step); the rounded "
                    "class id indexes the weight vector (tf.gather: an id outside 0 .. n-1 raises).",
                    [f"{_TFK}/engine/data_adapter.py:_make_class_weight_map_fn",
                     f"{_TF215}/engine/data_adapter.py:_make_class_weight_map_fn"],
                ),
                "exact_keys": Alternative(
                    "the class value itself must be a key (no rounding: 1.0 finds the key 1, 0.7 none); a class "
                    "of the data missing from the dict raises ValueError; the dict may hold any ids.",
                    [f"{_K231}/engine/training_utils.py:standardize_weights",
                     f"{_K224}/engine/training_utils.py:standardize_weights",
                     f"{_TFK}/engine/training_utils_v1.py:standardize_weights"],
                ),
            },
        ),
        Rule(
            "class_weight_with_sample_weight",
            "fit / train_on_batch with both sample_weight and class_weight:",
            {
                "multiplied": Alternative(
                    "the train step's weight is sample_weight * the class weight.",
                    [f"{_TFK}/engine/data_adapter.py:_make_class_weight_map_fn",
                     f"{_TFK}/engine/training_utils_v1.py:standardize_weights",
                     f"{_K231}/engine/training_utils.py:standardize_weights"],
                ),
                "error": Alternative(
                    "ValueError: the two cannot be given together (fit: the array data adapter; train_on_batch: "
                    "its own check).",
                    [f"{_K3}/trainers/data_adapters/array_data_adapter.py:ArrayDataAdapter.__init__",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.train_on_batch",
                     f"{_K3}/backend/jax/trainer.py:JAXTrainer.train_on_batch",
                     f"{_K3}/backend/torch/trainer.py:TorchTrainer.train_on_batch"],
                ),
                "reshape_error": Alternative(
                    "ValueError from TensorFlow: the dataset's map function reshapes the sample weight to "
                    "`sw.shape + [1] * rank_delta`, and in fit the batch dimension is unknown ('Cannot convert a "
                    "partially known TensorShape (None,) to a Tensor'); train_on_batch's one batch has a static "
                    "shape and multiplies.",
                    [f"{_TFK}/engine/data_adapter.py:_make_class_weight_map_fn",
                     f"{_TF215}/engine/data_adapter.py:_make_class_weight_map_fn"],
                ),
                "ignored": Alternative(
                    "the sample weight alone: class_weight is dropped with a warning ('Found both `sample_weight` "
                    "and `class_weight`: `class_weight` argument will be ignored').",
                    [f"{_K224}/engine/training_utils.py:standardize_weights"],
                ),
            },
        ),
        # ---- Distribution strategies (issue 10; harness/reference/distributed.py) ----
        Rule(
            "replica_split",
            "Under a distribution strategy, which rows of a batch does each replica compute on?",
            {
                "single_device": Alternative(
                    "no strategy: one replica computes every batch whole.",
                    [f"{_TFK}/engine/training.py:Model.train_step", f"{_K3}/trainers/trainer.py:Trainer.compute_loss"],
                ),
                "rebatch": Alternative(
                    "every batch (train_on_batch's one batch, each evaluate/fit batch) goes through "
                    "strategy.experimental_distribute_dataset, which splits its m rows among the R replicas, "
                    "sizes differing by at most one, the larger first (observed, 2 replicas: 5 -> 3+2, "
                    "3 -> 2+1, 1 -> 1+0: a replica may get no rows).",
                    [f"{_TFK}/engine/data_adapter.py:single_batch_iterator",
                     f"{_TFK}/engine/data_adapter.py:DataHandler._configure_dataset_and_inferred_steps",
                     "tensorflow/python/data/experimental/ops/distribute.py:batch_sizes_for_worker"],
                ),
                "whole_batch_on_batch": Alternative(
                    "train_on_batch/test_on_batch hand the arrays to strategy.run as they are: EVERY replica "
                    "computes on the WHOLE batch (R copies; with sum reduction the summed gradient is R times "
                    "the single-device one). evaluate/fit distribute the dataset (split as 'rebatch') and "
                    "raise when the first batch splits unevenly: _maybe_symbolic_build reduces it with "
                    "strategy.reduce('MEAN'), which needs equal shapes (the reference gives NaN and notes it).",
                    [f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.train_on_batch",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.test_on_batch",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer._make_function",
                     f"{_K3}/backend/tensorflow/trainer.py:TFEpochIterator.__init__",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer._maybe_symbolic_build"],
                ),
                "sharded_even": Alternative(
                    "one global program: the batch is laid out sharded along its first axis over the R "
                    "devices (equal shards); a batch whose rows do not divide by R raises IndivisibleError "
                    "(the reference gives NaN and notes it).",
                    [f"{_K3}/backend/jax/trainer.py:_distribute_data",
                     f"{_K3}/backend/jax/distribution_lib.py:distribute_data_input",
                     f"{_K3}/distribution/distribution_lib.py:DataParallel.get_data_layout"],
                ),
            },
        ),
        Rule(
            "replica_loss_scaling",
            "Under a distribution strategy, is each replica's output loss divided by the number of replicas?",
            {
                "none": Alternative(
                    "no: the loss is what one device computes (scale_loss_for_distribution acts on the "
                    "tensorflow backend only; JAX differentiates one global loss).",
                    [f"{_K3}/losses/loss.py:scale_loss_for_distribution",
                     f"{_K3}/backend/jax/trainer.py:JAXTrainer.compute_loss_and_updates"],
                ),
                "mean_reductions_divided": Alternative(
                    "an output with reduction sum_over_batch_size (tf_keras: also AUTO; Keras 3: also mean, "
                    "mean_with_sample_weight) is multiplied by 1/num_replicas_in_sync in each replica "
                    "(scale_loss_for_distribution); reduction sum is not: the summed gradient of a mean loss "
                    "is the mean over replicas of the replicas' means (not the global mean when the split is "
                    "uneven), that of a sum loss is the sum over replicas.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_TFK}/utils/losses_utils.py:scale_loss_for_distribution",
                     f"{_K3}/losses/loss.py:reduce_values", f"{_K3}/losses/loss.py:scale_loss_for_distribution"],
                ),
            },
        ),
        Rule(
            "replica_regularization_scaling",
            "Under a distribution strategy, is sum(model.losses) (regularizers, add_loss) divided by the "
            "number of replicas in each replica?",
            {
                "none": Alternative(
                    "no (one global program, or no strategy).",
                    [f"{_K3}/trainers/trainer.py:Trainer._aggregate_additional_loss"],
                ),
                "divided": Alternative(
                    "yes: each replica adds sum(model.losses)/R, computed on its own rows (activity "
                    "regularizers divided by the replica's rows, add_loss summed over them); weight "
                    "regularizers add up to one copy.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer._aggregate_additional_loss"],
                ),
            },
        ),
        Rule(
            "replica_loss_metric",
            "Under a distribution strategy, how does the reported loss (the loss Mean metric) combine the replicas?",
            {
                "single_device": Alternative(
                    "one program reports the loss of the whole batch.",
                    [f"{_K3}/backend/jax/trainer.py:JAXTrainer._update_metrics_variables"],
                ),
                "row_weighted_sum_times_replicas": Alternative(
                    "each replica updates the Mean metric (on-read variables summed across replicas) with "
                    "its unscaled loss, weighted by its rows; an output with reduction sum enters R times "
                    "(tf_keras: 'Correct for the Mean loss metrics counting each replica as a batch'; Keras 3: "
                    "unscale_loss_for_distribution multiplies every loss by R, and a sum loss was never "
                    "scaled). reported = sum_r n_r V_r / sum_r n_r.",
                    [f"{_TFK}/engine/compile_utils.py:LossesContainer.__call__",
                     f"{_K3}/losses/loss.py:unscale_loss_for_distribution",
                     f"{_K3}/backend/tensorflow/trainer.py:TensorFlowTrainer.train_step",
                     f"{_K3}/metrics/metric.py:Metric.add_variable"],
                ),
            },
        ),
    ]
}
