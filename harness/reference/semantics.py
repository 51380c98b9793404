"""The semantics table: which alternative of each rule (harness.reference.rules.RULES) a release
takes, by lineage, version range and scope. The one place that says what each Keras does.

A `Rows` block is a set of rows `(rule, lineage, version range, scope) -> alternative` that share
a lineage, a range, a scope and their sources:

    Rows("keras3", {"activity_regularizer_scaling": "sum"}, before="3.14", read="keras==3.13.2",
         sources=["keras==3.13.2: keras/src/layers/layer.py:Layer.__call__"],
         upstream="keras-team/keras#22021", note="...")

- lineage: "keras" (standalone keras 2.x), "tf.keras" (bundled with TensorFlow 2.12-2.15),
  "tf_keras" (the tf-keras package), "keras3" (multi-backend Keras 3).
- version range: `since` (inclusive) and `before` (exclusive), release versions of that lineage
  ("3.14" is 3.14.0; a nightly 3.14.0.devN sorts before 3.14.0). None: unbounded.
- scope: backend ("tensorflow", "jax", "torch", "numpy"), mode (an adapter's mode name: "eager",
  "compiled", "jit", "function", "graph"), path ("evaluate", "test_on_batch", ...), strategy
  ("mirrored", "dataparallel"). None: any.

Resolution (`at`): for each rule, among the rows of the lineage whose range holds the version and
whose scope fields all equal the query's, the most specific wins: a row is more specific than
another when its scope sets every field the other sets (to the same value), and its range lies
inside the other's, and they differ. Two matching rows of which neither is more specific are a
tie: `check_table` refuses the table at import unless a third row, exactly their intersection,
decides; so does a rule of a lineage with no unbounded, unscoped row (every lineage answers every
rule). The base rows of each lineage were read in one release (`read` below); a range narrows
them where another release was read.

A resolved profile has a name that says where it was read, e.g. "keras3 3.13.2 backend=jax" or
"tf_keras 2.21.0 mode=graph"; `profile(name)` resolves such a name (and the fixed names of
rules.PROFILES, which are points of this table) to the rule -> alternative mapping. A name
carries mode and path only when a row scoped on them matched, so one release has few names.

To add a release's semantics, see README.md, "Adding the semantics of a release".
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Mapping

from harness.impls import IMPLEMENTATIONS
from harness.reference.rulebook import RULES, RuleError

LINEAGES = ("keras", "tf.keras", "tf_keras", "keras3")
SCOPE_FIELDS = ("backend", "mode", "path", "strategy")


@dataclass(frozen=True)
class Rows:
    lineage: str
    choices: dict[str, str]  # rule -> alternative
    since: str | None = None  # inclusive
    before: str | None = None  # exclusive
    backend: str | None = None
    mode: str | None = None
    path: str | None = None
    strategy: str | None = None
    read: str = ""  # "dist==version": the release whose own source these rows were read in
    sources: list[str] = field(default_factory=list)  # "dist==version: file.py:qualname" or the rules' forms
    upstream: str = ""  # "owner/repo#PR" or "owner/repo@commit" where the change was made
    note: str = ""

    def scope(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in SCOPE_FIELDS if getattr(self, f) is not None}


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

# The base rows of every lineage: every rule, as read in one release (RULES' sources cite the
# files; rules.py's module docstring says which installs were read).
_TF_KERAS_2_21 = {
    "mask_normalisation": "valid_entries",
    "sample_weight_broadcast": "per_sample",
    "single_output_sample_weight_list": "unwrapped",
    "activity_regularizer_scaling": "batch_mean",
    "probability_crossentropy": "recover_logits",
    "bce_probability_log": "log_plus_epsilon",
    "bce_from_logits": "exact",
    "sparse_ce_probability": "log_softmax_of_clipped",
    "focal_from_logits": "bce_on_given_logits",
    "cosine_norm_floor": "sumsq_1e-12",
    "label_smoothing_classes": "last_axis",
    "merge_mask": "and",
    "loss_weights_dict_with_list_loss": "by_name",
    "single_loss_with_loss_weights": "broadcast",
    "rnn_activity_regularizer": "applied",
    # tf_keras/src/layers/rnn/time_distributed.py:TimeDistributed.call calls self.layer on the
    # (batch * time, ...) reshape (the functional model's batch size is not static); the same
    # since tf-keras v2.15.0 (git log of the file: no change to the call) and in keras 2.15.0.
    "time_distributed_activity_regularizer": "once_flattened",
    "zero_loss_weight": "nan_propagates",
    "huber_last_axis": "mean",
    "log_cosh_float64": "computed",
    "categorical_hinge_float64": "computed",
    "sample_weight_normalisation": "none",
    "dict_sample_weight": "by_name",
    "single_sample_weight_not_per_sample": "shared",
    # tf_keras/src/engine/compile_utils.py map_to_output_names `struct.pop(name, None)`;
    # training_utils_v1.py standardize_sample_or_class_weights `x_weight.get(name)` (graph mode, and
    # keras 2.2.4 / 2.3.1 keras/engine/training_utils.py likewise)
    "partial_dict_sample_weight": "unweighted",
    # tf_keras/src/engine/data_adapter.py _check_data_cardinality skips None (`if i is not None`,
    # tf-keras 924b2d0ed, 2025-11-05, first in v2.21.0)
    "none_in_sample_weight_list": "unweighted",
    "additional_losses_sum": "ops_sum",
    "float64_compute": "float64",
    "output_log": "unweighted",
    "per_output_log_entries": "from_two_outputs",
    "evaluate_total": "batch_size_weighted",
    "evaluate_output_log": "batch_size_weighted",
    "on_batch_metrics": "reset_each_call",
    "class_weight_lookup": "contiguous_gather",
    "class_weight_with_sample_weight": "multiplied",
    # tf_keras/src/engine/base_layer.py Layer._set_mask_metadata returns before compute_mask (whose
    # TypeError never runs) when the layer does not support masking: the mask is dropped, silently
    # (run: tf_keras, tf_keras-graph and tf.keras 2.15 on 10 drawn cases, 2026-12-04)
    "mask_into_unmasking_layer": "dropped",
    # tf_keras/src/layers/normalization/batch_normalization.py BatchNormalizationBase.call passes the
    # mask to _moments -> tf.nn.weighted_moments (keras-team/tf-keras@3e6b24597, Nov 2022: in the
    # keras 2.12.0 wheel, so in every tf.keras of the matrix, TF 2.12-2.15, too)
    "batch_norm_mask": "masked_moments",
    "batch_norm_single_masked_feature": "normalised",
    "batch_norm_float64": "computed",
    "bidirectional_masked_steps": "zero",  # tf_keras/src/layers/rnn/bidirectional.py force_zero_output_for_mask
    "replica_split": "single_device",  # no distribution strategy
    "replica_loss_scaling": "none",
    "replica_regularization_scaling": "none",
    "replica_loss_metric": "single_device",
    "l1_regularizer_float64": "computed",
    "dict_targets_one_output": "as_array",
    "dict_sample_weight_with_dict_targets": "by_name",
    "one_output_loss_weights": "any_form",
    "sample_weight_column": "per_sample",
    # tf_keras/src/utils/losses_utils.py squeeze_or_expand_dimensions (and keras/src/losses/loss.py
    # squeeze_or_expand_to_same_rank in Keras 3) drop a last axis of 1 that the losses lack
    "timestep_weight_trailing_axis": "squeezed",
    "reduction_values": "tf_keras",
}

_KERAS3_3_15_TENSORFLOW = {
    **_TF_KERAS_2_21,
    "mask_normalisation": "valid_entries_no_nan",
    "sample_weight_broadcast": "trailing_axis",
    "single_output_sample_weight_list": "leading_axis",
    "bce_probability_log": "log",
    "focal_from_logits": "bce_on_sigmoid",
    "cosine_norm_floor": "norm_1e-7",
    "merge_mask": "or",
    "loss_weights_dict_with_list_loss": "sorted_names",
    "single_loss_with_loss_weights": "error",
    "rnn_activity_regularizer": "ignored",
    # keras/src/layers/rnn/time_distributed.py:TimeDistributed.call: self.layer.call(inputs[i]) in
    # every tag v3.0.0 ... v3.15.1 (keras-core's first version, a6f7799d77, already did)
    "time_distributed_activity_regularizer": "ignored",
    "dict_sample_weight": "error",
    "dict_targets_one_output": "error",
    "dict_sample_weight_with_dict_targets": "error",
    "single_sample_weight_not_per_sample": "error_in_data_adapter",
    "partial_dict_sample_weight": "structure_error",  # ArrayDataAdapter.__init__ (the same since v3.0.0)
    "one_output_loss_weights": "no_bare_int",
    "reduction_values": "keras3",
    "mask_into_unmasking_layer": "dropped",  # keras/src/layers/layer.py Layer.__call__ warns, since v3.0.0
    # keras/src/layers/normalization/batch_normalization.py BatchNormalization._moments (3.15.1:
    # ops.where on the mask; 3.0.5: mask-weighted sums, the same numbers on (batch, time, features))
    "batch_norm_mask": "masked_moments_epsilon",
    "class_weight_lookup": "get_or_one",  # keras/src/trainers/data_adapters/data_adapter_utils.py
    "class_weight_with_sample_weight": "error",  # ArrayDataAdapter.__init__, Trainer.train_on_batch
    # compiled (run_eagerly=False): the static batch size is None in tf.function; see the
    # eager row below.
    "evaluate_output_log": "batch_mean",
}

# The standalone keras 2.3.1 (TF1-style graph on TensorFlow 2.21 through the adapter's shims).
_KERAS_2_3_1 = {
    **_TF_KERAS_2_21,
    "mask_normalisation": "all_entries",
    "activity_regularizer_scaling": "sum",
    "label_smoothing_classes": "axis_1",
    "evaluate_output_log": "batch_mean",
    "huber_last_axis": "none",
    "log_cosh_float64": "error",
    # keras/losses.py:categorical_hinge, K.maximum(0., ...) (2.2.4 too; drawn case 05e6524d2a682b7c,
    # which the error alternatives of other rules had explained before this row)
    "categorical_hinge_float64": "error",
    # keras 2.3.1's backend delegates to TF's legacy tensorflow/python/keras/backend.py, which
    # recovers logits from a Sigmoid/Softmax op only `if not hasattr(output, '_keras_history')`,
    # and every keras 2.3.1 layer output has _keras_history (cases bd67015682ecf111, f8cb97e9ffdb2972).
    "probability_crossentropy": "clip_epsilon",
    # tf_keras's expression, run as a TF1 graph on every path: grappler folds 1 + eps (case
    # 3754fe3322dd577f, docs/probes/bce_constant_folding.py)
    "bce_probability_log": "log_plus_epsilon_folded",
    "one_output_loss_weights": "no_bare_number",  # keras/engine/training_utils.py:prepare_loss_weights
    "sample_weight_column": "error_not_1d",  # keras/engine/training_utils.py:standardize_weights (2.2.4 too)
    # keras/engine/training_utils.py:standardize_weights under sample_weight_mode="temporal" (2.2.4 too)
    "timestep_weight_trailing_axis": "error_not_2d",
    "reduction_values": "keras2",  # keras/utils/losses_utils.py:Reduction (no AUTO)
    # keras/engine/base_layer.py:Layer.__call__ adds it; TimeDistributed.call's add_loss is keyed
    # by the reshaped input, which keras/engine/network.py:Network.losses never collects (2.2.4
    # too; drawn cases c35ec2bb3fdc1220, d4987170551189df)
    "time_distributed_activity_regularizer": "once_on_output",
    # keras/engine/base_layer.py Layer.__call__ calls compute_mask, which raises TypeError (2.2.4 too)
    "mask_into_unmasking_layer": "error",
    # keras/layers/normalization.py BatchNormalization.call(inputs, training=None): no mask (2.2.4 too)
    "batch_norm_mask": "ignored",
    # keras/layers/normalization.py BatchNormalization.call: `sample_size = K.cast(sample_size, dtype='float32')`
    # on TensorFlow, then the float64 variance times it (not in 2.2.4; run: docs/probes/keras231_bn_float64.py)
    "batch_norm_float64": "type_error",
    # keras/layers/wrappers.py Bidirectional.__init__ copies the layer and sets only go_backwards (2.2.4 too)
    "bidirectional_masked_steps": "repeat_previous",
    # keras/engine/training_utils.py:standardize_weights (2.2.4 ignores class_weight beside a sample weight)
    "class_weight_lookup": "exact_keys",
}

_MIRRORED = {"replica_loss_scaling": "mean_reductions_divided", "replica_regularization_scaling": "divided",
             "replica_loss_metric": "row_weighted_sum_times_replicas"}

TABLE: list[Rows] = [
    # ---- tf-keras ------------------------------------------------------------------------
    Rows("tf_keras", _TF_KERAS_2_21, read="tf-keras==2.21.0", note="RULES' tf_keras/src sources"),
    Rows("tf_keras", {"evaluate_output_log": "batch_mean", "one_output_loss_weights": "no_bare_number",
                      "sample_weight_column": "error_not_1d", "timestep_weight_trailing_axis": "error_not_2d",
                      "class_weight_lookup": "exact_keys", "none_in_sample_weight_list": "unweighted"},
         mode="graph", read="tf-keras==2.21.0",
         sources=["tf_keras/src/engine/training_v1.py:Model._prepare_total_loss",
                  "tf_keras/src/engine/training_utils_v1.py:prepare_loss_weights",
                  "tf_keras/src/engine/training_utils_v1.py:standardize_weights"],
         note="training_v1 (graph mode) logs each output's batch mean, averaged over batches; its "
              "prepare_loss_weights takes None, a dict or a list and raises TypeError for anything else; "
              "its standardize_weights (every path, through _standardize_user_data) refuses a weight that "
              "is not 1D unless sample_weight_mode is 'temporal', and then one that is not (batch, time)"),
    Rows("tf_keras", {**_MIRRORED, "replica_split": "rebatch"}, strategy="mirrored",
         read="tf-keras==2.21.0", sources=["tf_keras/src/engine/compile_utils.py:LossesContainer.__call__"],
         note="MirroredStrategy (issue 10)"),
    # XLA (jit_compile=True) gives 0 for a fully masked output where tf.function gives NaN: the
    # same apply_valid_mask graph, compiled by XLA. Observed, not read in a source:
    # cases/fully_masked_temporal_output.json (9790c1fe5ab2baab) on tf-keras 2.21.0 / TF 2.21.0
    # (output/seq_out = 0 on test_on_batch, train_on_batch and evaluate in mode jit) and case
    # 378563e15ecbf403 in tests/data/results/core.jsonl (fit and evaluate in mode jit). Not
    # understood: fit in mode jit logs NaN on 9790c1fe5ab2baab (every input masked, the other
    # output NaN too) but 0 on 378563e15ecbf403; that fit/jit verdict stays `explained`, a finding.
    Rows("tf_keras", {"none_in_sample_weight_list": "on_batch_attribute_error"}, before="2.21", read="tf-keras==2.20.1",
         sources=["tf-keras==2.20.1: tf_keras/src/engine/data_adapter.py:_check_data_cardinality"],
         upstream="keras-team/tf-keras@924b2d0ed",
         note="`set(int(i.shape[0]) for i in tf.nest.flatten(data))` in every tag v2.15.0 ... v2.20.1 and in "
              "keras 2.15.0 (TF 2.15's tf.keras); 924b2d0ed ('Allow Input to be optional to take None inputs') "
              "skips None, first in v2.21.0. Run: tf.keras 2.15 raises on train_on_batch and test_on_batch "
              "with [w, None] (14 drawn cases, 2026-12-07); tf-keras 2.14-2.20 not run"),
    Rows("tf_keras", {"none_in_sample_weight_list": "unweighted"}, before="2.21", mode="graph", read="tf-keras==2.20.1",
         sources=["tf-keras==2.20.1: tf_keras/src/engine/training_utils_v1.py:standardize_weights"],
         note="graph mode's train_on_batch feeds standardize_weights' ones for None (no data adapter)"),
    Rows("tf_keras", {"mask_normalisation": "valid_entries_no_nan"}, mode="jit", read="tf-keras==2.21.0",
         sources=["tf_keras/src/utils/losses_utils.py:apply_valid_mask"],
         note="XLA: a fully masked output gives 0 (observed, cases 9790c1fe5ab2baab, 378563e15ecbf403)"),
    # class_weight beside a sample weight in fit (harness/reference/class_weights.py): the map function's
    # `tf.reshape(sw, sw.shape + [1] * rank_delta)` of a batched dataset, whose batch size is None.
    Rows("tf_keras", {"class_weight_with_sample_weight": "reshape_error"}, path="fit", read="tf-keras==2.21.0",
         sources=["tf_keras/src/engine/data_adapter.py:_make_class_weight_map_fn"],
         upstream="keras-team/keras@c1dc1d0af7",
         note="commit c1dc1d0af7 ('Support `class_weight` for 3+ dimensional data in `model.fit`', first in "
              "keras v2.13.1; in every tf-keras tag from v2.15.0) reshapes the sample weight to a shape with the "
              "unknown batch size; train_on_batch's from_tensors batch is static and multiplies (observed on "
              "tf-keras 2.21.0, drawn case eb60036432c6eb69)"),
    Rows("tf_keras", {"class_weight_with_sample_weight": "multiplied"}, mode="graph", path="fit", read="tf-keras==2.21.0",
         sources=["tf_keras/src/engine/training_utils_v1.py:standardize_weights"],
         note="training_v1's fit multiplies in standardize_weights (no dataset map)"),
    # ---- tf.keras bundled with TensorFlow ------------------------------------------------
    # TF 2.15's bundled keras/src has the same text as tf-keras 2.21 for every function RULES
    # cite; TF 2.15 itself folds x * 0.0 in graphs (tf.function; assumed for the v1 session graph too).
    Rows("tf.keras", {**_TF_KERAS_2_21, "zero_loss_weight": "folded_to_zero",
                      "none_in_sample_weight_list": "on_batch_attribute_error"}, read="keras==2.15.0",
         note="the keras 2.15.0 that TF 2.15.1 installs as tf.keras"),
    # The same XLA quirk, observed on tf.keras 2.15.0 / TF 2.15.1: case 378563e15ecbf403 in
    # tests/data/results/tf215.jsonl (evaluate and fit in mode jit).
    Rows("tf.keras", {"mask_normalisation": "valid_entries_no_nan"}, mode="jit", read="keras==2.15.0",
         sources=["tf 2.15: keras/src/utils/losses_utils.py:apply_valid_mask"],
         note="XLA: a fully masked output gives 0 (observed, case 378563e15ecbf403)"),
    # The folding of x * 0.0 is TensorFlow's graph optimizer's: eager runs multiply NaN by 0 (the
    # rule's own text; observed on TF 2.15.1, cases 5b50327f41340645 and c90cc0362a84e5ed, every eager
    # path NaN where a batch's loss is NaN, function and jit 0).
    Rows("tf.keras", {"zero_loss_weight": "nan_propagates"}, mode="eager", read="keras==2.15.0",
         sources=["tf 2.15: keras/src/engine/compile_utils.py:LossesContainer.__call__"],
         note="run_eagerly=True: no graph, nothing folds (observed, cases 5b50327f41340645, c90cc0362a84e5ed)"),
    Rows("tf.keras", {"evaluate_output_log": "batch_mean", "one_output_loss_weights": "no_bare_number",
                      "sample_weight_column": "error_not_1d", "timestep_weight_trailing_axis": "error_not_2d",
                      "class_weight_lookup": "exact_keys", "none_in_sample_weight_list": "unweighted"},
         mode="graph", read="keras==2.15.0",
         sources=["tf 2.15: keras/src/engine/training_v1.py:Model._prepare_total_loss",
                  "tf 2.15: keras/src/engine/training_utils_v1.py:prepare_loss_weights",
                  "tf 2.15: keras/src/engine/training_utils_v1.py:standardize_weights"],
         note="training_v1 (graph mode), as in tf-keras"),
    Rows("tf.keras", {"class_weight_with_sample_weight": "reshape_error"}, since="2.13", path="fit", read="keras==2.15.0",
         sources=["tf 2.15: keras/src/engine/data_adapter.py:_make_class_weight_map_fn"],
         upstream="keras-team/keras@c1dc1d0af7",
         note="as in tf-keras, from keras 2.13 (commit c1dc1d0af7, first in v2.13.1); TF 2.12's keras 2.12 multiplies"),
    Rows("tf.keras", {"class_weight_with_sample_weight": "multiplied"}, since="2.13", mode="graph", path="fit",
         read="keras==2.15.0", sources=["tf 2.15: keras/src/engine/training_utils_v1.py:standardize_weights"],
         note="training_v1's fit multiplies in standardize_weights"),
    # ---- standalone keras 2.x ------------------------------------------------------------
    Rows("keras", _KERAS_2_3_1, read="keras==2.3.1", note="RULES' keras 2.3.1 sources"),
    # keras 2.2.4 (TF1 graph): loss functions only (no reduction/from_logits/label_smoothing
    # options, no huber or focal: the adapter reports those unsupported). A mask divides by
    # mean(mask) (= valid entries, 0/0 = NaN when all masked); the weights by mean(weights != 0);
    # the backend clips probabilities without recovering logits; test_loop averages every output
    # by batch size (stateless metrics).
    Rows("keras", {"batch_norm_float64": "computed"}, before="2.3", read="keras==2.2.4",
         sources=["keras 2.2.4: keras/layers/normalization.py:BatchNormalization.call"],
         note="2.2.4 casts the sample size to the inputs' dtype only; 2.3.1 adds `if K.backend() == 'tensorflow' and "
              "sample_size.dtype != 'float32': sample_size = K.cast(sample_size, dtype='float32')`, which a float64 "
              "variance cannot be multiplied by (both wheels read)"),
    Rows("keras", {"mask_normalisation": "valid_entries", "sample_weight_normalisation": "nonzero_fraction",
                   "label_smoothing_classes": "last_axis", "huber_last_axis": "mean",
                   "bce_probability_log": "log", "evaluate_output_log": "batch_size_weighted",
                   "class_weight_with_sample_weight": "ignored"},
         before="2.3", sources=["keras 2.2.4: keras/engine/training_utils.py:weighted_masked_objective",
                                "keras 2.2.4: keras/engine/training_utils.py:standardize_weights",
                                "keras 2.2.4: keras/engine/training_arrays.py:test_loop"],
         read="keras==2.2.4"),
    # ---- Keras 3 ---------------------------------------------------------------------------
    Rows("keras3", _KERAS3_3_15_TENSORFLOW, read="keras==3.15.1", note="on TensorFlow; RULES' keras/src sources"),
    # CompileLoss.call updates each output's Mean metric with `sample_weight=tree.flatten(y_p)[0].shape[0]`:
    # the static batch size, which is known in eager mode and None inside tf.function (compiled, jit).
    Rows("keras3", {"evaluate_output_log": "batch_size_weighted"}, backend="tensorflow", mode="eager",
         read="keras==3.15.1", sources=["keras/src/trainers/compile_utils.py:CompileLoss.call"],
         note="eager: the static batch size weights each batch's per-output log"),
    Rows("keras3", {"float64_compute": "float32_reduction", "evaluate_output_log": "batch_size_weighted",
                    "probability_crossentropy": "clip_epsilon", "sparse_ce_probability": "renormalise_clip_log"},
         backend="jax", read="keras==3.15.1", sources=["keras/src/backend/jax/nn.py:binary_crossentropy"],
         note="static shapes: evaluate logs weighted by batch size"),
    Rows("keras3", {"float64_compute": "float32_reduction", "evaluate_output_log": "batch_size_weighted",
                    "probability_crossentropy": "clip_epsilon", "sparse_ce_probability": "renormalise_clip_log",
                    "sample_weight_broadcast": "trailing_axis_inplace_mask"},
         backend="torch", read="keras==3.15.1", sources=["keras/src/backend/torch/core.py:convert_to_tensor"]),
    Rows("keras3", {"float64_compute": "float32", "evaluate_output_log": "batch_size_weighted",
                    "probability_crossentropy": "clip_epsilon", "sparse_ce_probability": "renormalise_clip_log",
                    "sample_weight_broadcast": "trailing_axis_inplace_mask", "bce_from_logits": "sigmoid_then_clip",
                    "additional_losses_sum": "list_error"},
         backend="numpy", read="keras==3.15.1",
         sources=["keras/src/backend/numpy/core.py:convert_to_tensor", "keras/src/backend/numpy/nn.py:binary_crossentropy"]),
    Rows("keras3", {**_MIRRORED, "replica_split": "whole_batch_on_batch"}, backend="tensorflow",
         strategy="mirrored", read="keras==3.15.1",
         sources=["keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer.train_step"], note="MirroredStrategy (issue 10)"),
    Rows("keras3", {"replica_split": "sharded_even"}, backend="jax", strategy="dataparallel",
         read="keras==3.15.1",
         sources=["keras/src/backend/jax/trainer.py:_distribute_data"], note="keras.distribution.DataParallel (issue 10)"),
    # y and sample_weight as dicts (docs/y-structures.md, docs/probes/y_structures.py): observed
    # with plain Keras on the jax backend in 3.0.5-3.4.1, 3.7.0, 3.8.0 ... 3.15.1, and through the
    # harness on 3.4.1 and 3.7.0 (which show more, listed there, not yet encoded). Keras 3.5.0-3.6.0
    # pair a dict y with the outputs in sorted-key order (CompileLoss.call `tree.flatten(y_true)`,
    # keras-team/keras#20015): no alternative computes that yet, so those releases' dict-y cases
    # are findings.
    Rows("keras3", {"dict_targets_one_output": "as_array"}, before="3.7", read="keras==3.6.0",
         sources=["keras==3.6.0: keras/src/trainers/compile_utils.py:CompileLoss.call"],
         note="observed, not read: 3.0.5-3.6.0 take a one-output dict y as its array (the probe's bare "
              "loss object); 3.7.0 raises a structure ValueError (keras/src/tree/optree_impl.py) for the "
              "harness's list and dict losses, 3.8.0 and later a conversion error"),
    Rows("keras3", {"dict_sample_weight_with_dict_targets": "by_name"}, before="3.7", read="keras==3.4.1",
         sources=["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss._flatten_y"],
         upstream="keras-team/keras#20015",
         note="3.0.5-3.4.1 map y and sample_weight dicts by output name (_flatten_y, read in 3.4.1; "
              "removed by #20015 in 3.5.0); 3.7.0 and later raise KeyError: 0 (resolve_path; observed, "
              "the commit not yet read); 3.5-3.6 sort (a finding)"),
    Rows("keras3", {"partial_dict_sample_weight": "first_for_all"}, before="3.5", read="keras==3.4.1",
         sources=["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.call"],
         upstream="keras-team/keras#20015",
         note="CompileLoss._flatten_y keeps only the given keys and call() replicates sample_weight[0] for "
              "every output when fewer are given (read in 3.4.1; 3.0.5 keras/trainers/compile_utils.py the "
              "same). #20015 (8f5ad1e75b, in 3.5.0) flattens the dict with tree.flatten instead, in sorted-key "
              "order, and still replicates its first: 3.5.0-3.6.0 give every output the weights of the "
              "smallest given key, not encoded (their dict-y cases are findings already, "
              "dict_sample_weight_with_dict_targets); 3.7.0 and later look each output up (resolve_path). "
              "Run: a partial dict on 3.15.1 only"),
    Rows("keras3", {"l1_regularizer_float64": "error"}, before="3.14", backend="tensorflow", read="keras==3.13.2",
         sources=["keras==3.13.2: keras/src/regularizers/regularizers.py:L1.__call__"],
         upstream="keras-team/keras#22438",
         note="L1 keeps its factor as a float32 tensor since 3.0 (3.0.5: keras/regularizers/regularizers.py "
              "L1.__init__ `self.l1 = ops.convert_to_tensor(l1)`); commit 5973ad4705 ('Fix Inconsistent "
              "tensor conversion') casts it to the input's dtype from 3.14.0 on. Run: Keras 3.0.5 and 3.7.0 "
              "on TF raise for L1 and not for L2 or L1L2 (their factors are Python floats); 3.15.1 computes"),
    Rows("keras3", {"reduction_values": "keras3_before_3_7"}, before="3.7", read="keras==3.6.0",
         sources=["keras==3.6.0: keras/src/losses/loss.py:standardize_reduction",
                  "keras==3.0.5: keras/src/losses/loss.py:standardize_reduction"],
         upstream="keras-team/keras#20410",
         note="standardize_reduction allows {'sum_over_batch_size', 'sum', None, 'none'} in the v3.0.5 to v3.6.0 "
              "tags; commit 813fbc548f (keras-team/keras#20352) adds 'mean', a synonym of sum_over_batch_size, "
              "and 093b055aa0 (#20410) 'mean_with_sample_weight' (reduce_values divides by ops.sum(sample_weight)), "
              "both first in v3.7.0 (`git tag --contains`)"),
    Rows("keras3", {"single_loss_with_loss_weights": "broadcast_as_list"}, before="3.7", read="keras==3.6.0",
         sources=["keras==3.6.0: keras/src/trainers/compile_utils.py:CompileLoss.build",
                  "keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.build"],
         upstream="keras-team/keras#20358",
         note="`if is_function_like(loss) and tree.is_nested(y_pred)`: one loss is made a list, one per "
              "output, before the weights are packed (read in the v3.0.5, v3.4.1 and v3.6.0 tags); commit "
              "4ff65a53d8 ('Enable Structured Losses') drops the broadcast and raises '`loss_weights` must "
              "match the number of losses', first in v3.7.0. Run: Keras 3.5.0 on JAX, 30 verdicts of the ci "
              "cases explained by broadcast"),
    Rows("keras3", {"output_log": "weighted"}, since="3.5", before="3.7", read="keras==3.6.0",
         sources=["keras==3.5.0: keras/src/trainers/compile_utils.py:CompileLoss.call",
                  "keras==3.6.0: keras/src/trainers/compile_utils.py:CompileLoss.call"],
         upstream="keras-team/keras#20476",
         note="the per-output Mean metrics that 3.5.0 brought back (#20023) are updated after "
              "`value = ops.multiply(value, loss_weight)`; commit 270029bf82 ('Update CompileLoss to report "
              "unweighted metric values (breaking change)') records them before the weight, first in v3.7.0. "
              "Run: Keras 3.5.0 on JAX, 14 verdicts of the ci cases explained by output_log=weighted"),
    Rows("keras3", {"loss_weights_dict_with_list_loss": "error"}, before="3.5", read="keras==3.4.1",
         sources=["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build",
                  "keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.build"],
         upstream="keras-team/keras#20015",
         note="a list loss (or one loss made a list) with loss_weights not a list/tuple raises ValueError "
              "(read in the v3.0.5 and v3.4.1 tags); commit 8f5ad1e75b ('Simplify and improve CompileLoss') "
              "flattens the weights instead (sorted keys), first in v3.5.0. Run: Keras 3.0.5 on JAX raises it "
              "for a single loss with dict loss_weights (case 3755f37f353be80c)"),
    Rows("keras3", {"per_output_log_entries": "none"}, before="3.5", read="keras==3.4.1",
         sources=["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build",
                  "keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.build"],
         upstream="keras-team/keras#20023",
         note="no Mean '<name>_loss' metric per output in 3.0.0-3.4.1 (read in the v3.0.5 and v3.4.1 tags); "
              "commit f6a81cc2f5 ('Bring back loss information for multiple outputs') adds one per loss in "
              "CompileLoss.build, first in v3.5.0 (`git tag --contains`). Run: Keras 3.0.5 on JAX logs 'loss' "
              "alone for every multi-output case of the ci corpus"),
    # loss_weights for one output (Keras 3.15.1 base row: a bare int refused, CompileLoss.__init__).
    Rows("keras3", {"one_output_loss_weights": "bare_float_only"}, before="3.5", read="keras==3.4.1",
         sources=["keras==3.4.1: keras/src/trainers/compile_utils.py:CompileLoss.build"],
         upstream="keras-team/keras#20015",
         note="CompileLoss.build's one-output branch (`if is_function_like(loss)`) takes `loss_weights` only "
              "as a Python float (`if loss_weights: if not isinstance(loss_weights, float): raise`), else 1.0; "
              "read in the v3.0.5 and v3.4.1 tags. Commit 8f5ad1e75b ('Simplify and improve CompileLoss') "
              "flattens every form instead (`tree.flatten(loss_weights)`), first in v3.5.0. Run: Keras 3.0.5 on "
              "JAX raises it for a one-output list (case b98e76eaa7818922)"),
    Rows("keras3", {"one_output_loss_weights": "none"}, before="3.3", read="keras==3.0.5",
         sources=["keras==3.0.5: keras/src/trainers/compile_utils.py:CompileLoss.__init__"],
         upstream="keras-team/keras@4919ea1702",
         note="CompileLoss.__init__ refuses a truthy loss_weights that is not a list, tuple or dict, so no "
              "form passes both checks; commit 4919ea1702 ('Fix loss_weights handling in single output case') "
              "admits a float, first in v3.3.0 (`git tag --contains`)"),
    Rows("keras3", {"evaluate_total": "batch_mean"}, before="3.2", read="keras==3.1.1",
         sources=["keras==3.1.1: keras/src/backend/jax/trainer.py:JAXTrainer.test_step",
                  "keras==3.1.1: keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer.test_step"],
         upstream="keras-team/keras#19363",
         note="the trainers update the loss tracker with `self._loss_tracker.update_state(loss)`, no weight: "
              "evaluate and fit average their batches' totals plainly (read in the v3.1.1 tag); commit a9f67cf7e1 "
              "('fix bug for numerical difference in losses') passes sample_weight = the batch's row count, "
              "first in v3.2.0 (`git tag --contains`)"),
    # One row per backend whose batch_normalization reads mean.shape[0] (TensorFlow's does not).
    *[Rows("keras3", {"batch_norm_single_masked_feature": "index_error"}, since="3.0.2", backend=backend,
           read="keras==3.15.1", sources=["keras/src/layers/normalization/batch_normalization.py:BatchNormalization._moments",
                                          f"keras/src/backend/{backend}/nn.py:batch_normalization"],
           upstream="keras-team/keras#18921",
           note="_moments (masked branch, added by eaa6e687da, first in v3.0.2) squeezes a one-feature mean to shape "
                f"(); the {backend} backend's batch_normalization reads mean.shape[0]: IndexError (read in the 3.15.1 "
                f"wheel; run: docs/probes/bn_one_masked_feature.py, keras 3.15.1 on {backend}, 2026-12-06)")
      for backend in ("jax", "torch", "numpy")],
    Rows("keras3", {"batch_norm_mask": "ignored"}, before="3.0.2", read="keras==3.0.1",
         sources=["keras==3.0.1: keras/src/layers/normalization/batch_normalization.py:BatchNormalization.call"],
         upstream="keras-team/keras#18921",
         note="keras-core's BatchNormalization computed its moments over every step ('no masking support in stats "
              "computation', 05812f0e2d); commit eaa6e687da ('Add masking to BatchNormalization') weights them by the "
              "mask, first in v3.0.2 (`git tag --contains`; read in the v3.0.1 and v3.0.5 tags)"),
    # Several test_on_batch calls in a row (path test_on_batch_loop).
    Rows("keras3", {"on_batch_metrics": "accumulates"}, before="3.15", read="keras==3.14.0",
         sources=["keras==3.14.0: keras/src/backend/tensorflow/trainer.py:TensorFlowTrainer.test_on_batch",
                  "keras==3.14.0: keras/src/backend/jax/trainer.py:JAXTrainer.test_on_batch",
                  "keras==3.14.0: keras/src/backend/torch/trainer.py:TorchTrainer.test_on_batch"],
         upstream="keras-team/keras#22617",
         note="test_on_batch and train_on_batch never reset the metrics in the v3.0.0 to v3.14.0 trainers (read in "
              "the keras 3.14.0 wheel): the loss tracker's Mean runs on across calls. Commit bfe3412265 ('Fix "
              "train_on_batch/test_on_batch returning cumulative metric instead of per-batch loss') calls "
              "self.reset_metrics() after make_test_function in the TensorFlow, JAX and torch trainers, first in "
              "v3.15.0 (`git tag --contains`)"),
    Rows("keras3", {"on_batch_metrics": "accumulates"}, since="3.15", backend="numpy", read="keras==3.15.1",
         sources=["keras/src/backend/numpy/trainer.py:NumpyTrainer.test_on_batch"],
         upstream="keras-team/keras#22617",
         note="#22617 left the NumPy trainer out: its test_on_batch still runs on from the metrics' last state "
              "(read in the 3.15.1 wheel)"),
    Rows("keras3", {"activity_regularizer_scaling": "sum"}, before="3.14", read="keras==3.13.2",
         sources=["keras==3.13.2: keras/src/layers/layer.py:Layer.__call__"],
         upstream="keras-team/keras#22021",
         note="`self.add_loss(self.activity_regularizer(output))`, not divided by the batch size; "
              "commit b9be2128fd ('Fix: activity regularizer not normalized by batch size') divides "
              "from 3.14.0 on"),
]

# Which query each implementation of harness.impls answers: lineage, scope, and the version key
# of its header (the release whose rows apply), with the release read when a header has none.
# Each implementation's query (lineage, scope, version key, release read): from its record.
IMPLEMENTATION_QUERIES: dict[str, dict[str, str]] = {
    name: impl.semantics_query() for name, impl in IMPLEMENTATIONS.items() if impl.lineage
}

# The fixed profile names (strict mode, hand-worked tests): points of the table.
NAMED_POINTS: dict[str, dict[str, str]] = {
    "tf_keras-2.21": {"lineage": "tf_keras", "version": "2.21.0"},
    "keras2-graph": {"lineage": "tf_keras", "version": "2.21.0", "mode": "graph"},
    "tf.keras-2.15": {"lineage": "tf.keras", "version": "2.15.0"},
    "tf.keras-2.15-graph": {"lineage": "tf.keras", "version": "2.15.0", "mode": "graph"},
    "keras-2.3.1": {"lineage": "keras", "version": "2.3.1"},
    "keras-2.2.4": {"lineage": "keras", "version": "2.2.4"},
    "keras-3.15": {"lineage": "keras3", "version": "3.15.1", "backend": "tensorflow"},
    "keras-3.15-jax": {"lineage": "keras3", "version": "3.15.1", "backend": "jax"},
    "keras-3.15-torch": {"lineage": "keras3", "version": "3.15.1", "backend": "torch"},
    "keras-3.15-numpy": {"lineage": "keras3", "version": "3.15.1", "backend": "numpy"},
    "tf_keras-2.21-mirrored": {"lineage": "tf_keras", "version": "2.21.0", "strategy": "mirrored"},
    "keras-3.15-mirrored": {"lineage": "keras3", "version": "3.15.1", "backend": "tensorflow", "strategy": "mirrored"},
    "keras-3.15-jax-dataparallel": {"lineage": "keras3", "version": "3.15.1", "backend": "jax",
                                    "strategy": "dataparallel"},
}


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------

_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.?(dev|rc)(\d*))?(?:[+.].*)?$")


class SemanticsError(ValueError):
    """A bad row, a tie in the table, or a query it cannot answer (names what was expected)."""


def version_key(version: str) -> tuple[int, ...]:
    """A sortable key: "3.14" == "3.14.0"; "3.14.0.dev2026012300" and "3.14.0rc1" sort before "3.14.0"."""
    m = _VERSION.match(version.strip())
    if not m:
        raise SemanticsError(f"version {version!r}: expected a release such as 3.13.2, 2.21.0 or 3.14.0.dev2026010100")
    major, minor, micro, pre, num = m.groups()
    stage = {"dev": 0, "rc": 1, None: 2}[pre]
    return (int(major), int(minor or 0), int(micro or 0), stage, int(num or 0))


def _in_range(key: tuple[int, ...], rows: Rows) -> bool:
    return ((rows.since is None or key >= version_key(rows.since))
            and (rows.before is None or key < version_key(rows.before)))


def _range(rows: Rows) -> tuple[tuple[int, ...], tuple[int, ...]]:
    lo = version_key(rows.since) if rows.since else (-1,)
    hi = version_key(rows.before) if rows.before else (10**9,)
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Checking the table
# ---------------------------------------------------------------------------------------------


def _more_specific(a: Rows, b: Rows) -> bool:
    """a's scope sets every field b sets, to b's value, a's range lies in b's, and they differ."""
    sa, sb = a.scope(), b.scope()
    (alo, ahi), (blo, bhi) = _range(a), _range(b)
    inside = blo <= alo and ahi <= bhi
    return all(sa.get(k) == v for k, v in sb.items()) and inside and (sa != sb or (alo, ahi) != (blo, bhi))


def check_table(table: list[Rows]) -> None:
    """Refuse a row naming an unknown lineage, rule, alternative, scope value or version; a lineage
    without a base (unbounded, unscoped) row for every rule; and two rows that can match the same
    query without one being more specific, unless a row that is exactly their intersection decides."""
    for n, rows in enumerate(table):
        where = f"semantics.TABLE[{n}] ({rows.lineage}, {rows.note or rows.scope()})"
        if rows.lineage not in LINEAGES:
            raise SemanticsError(f"{where}: lineage {rows.lineage!r}: expected one of {', '.join(LINEAGES)}")
        for bound in (rows.since, rows.before):
            if bound is not None:
                version_key(bound)
        for rule, alt in rows.choices.items():
            if rule not in RULES:
                raise RuleError(f"{where}: unknown rule {rule!r}; rules: {', '.join(RULES)}")
            if alt not in RULES[rule].alternatives:
                raise RuleError(f"{where}: rule {rule!r} has no alternative {alt!r}; "
                                f"its alternatives: {', '.join(RULES[rule].alternatives)}")
    for lineage in LINEAGES:
        base = set()
        for rows in table:
            if rows.lineage == lineage and not rows.scope() and rows.since is None and rows.before is None:
                base |= set(rows.choices)
        missing = [r for r in RULES if r not in base]
        if missing:
            raise SemanticsError(f"semantics.TABLE: lineage {lineage!r} has no base row for rule(s) "
                                 f"{', '.join(missing)} (every lineage answers every rule)")
    for rule in RULES:
        rows_of = [r for r in table if rule in r.choices]
        for i, a in enumerate(rows_of):
            for b in rows_of[i + 1:]:
                if a.lineage != b.lineage or not _overlap(a, b):
                    continue
                if _more_specific(a, b) or _more_specific(b, a):
                    continue
                if not any(_is_intersection(c, a, b) for c in rows_of):
                    raise SemanticsError(
                        f"semantics.TABLE: rule {rule!r}, lineage {a.lineage!r}: rows "
                        f"{_describe(a)} and {_describe(b)} tie (both match some release and neither "
                        "is more specific); narrow one, or add a row for exactly their intersection")


def _overlap(a: Rows, b: Rows) -> bool:
    sa, sb = a.scope(), b.scope()
    if any(k in sb and sb[k] != v for k, v in sa.items()):
        return False
    (alo, ahi), (blo, bhi) = _range(a), _range(b)
    return max(alo, blo) < min(ahi, bhi)


def _is_intersection(c: Rows, a: Rows, b: Rows) -> bool:
    (alo, ahi), (blo, bhi) = _range(a), _range(b)
    return (c.lineage == a.lineage and c.scope() == {**a.scope(), **b.scope()}
            and _range(c) == (max(alo, blo), min(ahi, bhi)))


def describe(rows: Rows) -> str:
    """Where a row applies and what it rests on: "keras3 <3.14, read in keras==3.13.2, keras-team/keras#22021"."""
    bits = [rows.lineage] + [f"{k}={v}" for k, v in rows.scope().items()]
    if rows.since or rows.before:
        bits.append(" ".join(b for b in (f">={rows.since}" if rows.since else "",
                                          f"<{rows.before}" if rows.before else "") if b))
    text = " ".join(bits)
    extra = [f"read in {rows.read}" if rows.read else "", rows.upstream]
    extra = [e for e in extra if e]
    return text + (f" ({', '.join(extra)})" if extra else "")


def _describe(rows: Rows) -> str:
    bits = [f"{k}={v}" for k, v in rows.scope().items()]
    if rows.since:
        bits.append(f">={rows.since}")
    if rows.before:
        bits.append(f"<{rows.before}")
    return "(" + (" ".join(bits) or "base") + (f": {rows.note}" if rows.note else "") + ")"


check_table(TABLE)


# ---------------------------------------------------------------------------------------------
# Resolving
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    name: str
    choices: dict[str, str]
    rows: dict[str, Rows]  # rule -> the row that decided it


def at(lineage: str, version: str, backend: str | None = None, mode: str | None = None,
       path: str | None = None, strategy: str | None = None, table: list[Rows] | None = None) -> Resolved:
    """The semantics of one release of a lineage, in one scope."""
    table = TABLE if table is None else table
    if lineage not in LINEAGES:
        raise SemanticsError(f"lineage {lineage!r}: expected one of {', '.join(LINEAGES)}")
    query = {"backend": backend, "mode": mode, "path": path, "strategy": strategy}
    key = version_key(version)
    matching = [r for r in table if r.lineage == lineage and _in_range(key, r)
                and all(query[k] == v for k, v in r.scope().items())]
    choices: dict[str, str] = {}
    decided: dict[str, Rows] = {}
    for rule in RULES:
        candidates = [r for r in matching if rule in r.choices]
        best = [r for r in candidates if not any(_more_specific(o, r) for o in candidates)]
        if len(best) != 1:  # check_table makes this unreachable for TABLE
            raise SemanticsError(f"rule {rule!r} at {lineage} {version}: "
                                 + (f"rows {', '.join(map(_describe, best))} tie" if best else "no row"))
        choices[rule], decided[rule] = best[0].choices[rule], best[0]
    used = {k for r in matching for k in r.scope()}
    parts = [lineage, version] + [f"{k}={v}" for k, v in query.items()
                                  if v is not None and (k in ("backend", "strategy") or k in used)]
    return Resolved(" ".join(parts), choices, decided)


def query_of(impl: str, versions: Mapping[str, str]) -> dict[str, str]:
    """(lineage, version, backend, strategy, mode) of an implementation given its versions."""
    if impl not in IMPLEMENTATION_QUERIES:
        raise SemanticsError(f"unknown implementation {impl!r}; known: {', '.join(IMPLEMENTATION_QUERIES)}")
    q = dict(IMPLEMENTATION_QUERIES[impl])
    read = q.pop("read")
    version = versions.get(q.pop("version_key")) or read
    if q["lineage"] == "keras3" and versions.get("backend"):
        q["backend"] = versions["backend"]
    return {**q, "version": version}


def expected(impl: str, versions: Mapping[str, str], path: str | None = None, mode: str | None = None) -> str:
    """The name of the semantics `impl` at `versions` should follow on `path` in `mode` (a name
    `profile` resolves). Mode-scoped rows apply only where a mode is given; an implementation
    that runs in one mode (graph) has it in its query."""
    q = query_of(impl, versions)
    mode = q.pop("mode", None) or mode
    return at(q.pop("lineage"), q.pop("version"), mode=mode, path=path, **q).name


def parse_name(name: str) -> dict[str, str]:
    """"keras3 3.13.2 backend=jax" -> {"lineage": "keras3", "version": "3.13.2", "backend": "jax"}."""
    parts = name.split()
    if len(parts) < 2 or parts[0] not in LINEAGES:
        raise SemanticsError(f"profile {name!r}: expected a named profile ({', '.join(NAMED_POINTS)}) or "
                             "'LINEAGE VERSION [backend=..] [mode=..] [path=..] [strategy=..]' with LINEAGE one of "
                             + ", ".join(LINEAGES))
    out = {"lineage": parts[0], "version": parts[1]}
    for part in parts[2:]:
        k, eq, v = part.partition("=")
        if not eq or k not in SCOPE_FIELDS:
            raise SemanticsError(f"profile {name!r}: {part!r}: expected FIELD=VALUE with FIELD one of "
                                 + ", ".join(SCOPE_FIELDS))
        out[k] = v
    return out


_RESOLVED: dict[str, dict[str, str]] = {}


def profile(name: str) -> dict[str, str]:
    """The rule -> alternative mapping of a profile name (a copy)."""
    if name not in _RESOLVED:
        point = NAMED_POINTS.get(name) or parse_name(name)
        _RESOLVED[name] = at(**point).choices
    return dict(_RESOLVED[name])


PROFILES: dict[str, dict[str, str]] = {name: profile(name) for name in NAMED_POINTS}


def lineage_of(name: str) -> tuple[str, str]:
    """(lineage, version) of a profile name."""
    point = NAMED_POINTS.get(name) or parse_name(name)
    return point["lineage"], point["version"]


# ---------------------------------------------------------------------------------------------
# Precedents: which release takes an alternative (explanations name it; the prior ranks by it)
# ---------------------------------------------------------------------------------------------


def precedent(name: str, rule: str, alternative: str) -> str:
    """The release nearest to profile `name`'s that takes `alternative` for `rule`, described by
    its row: in its own lineage first ("keras3 <3.14 (read in keras==3.13.2, keras-team/keras#22021)"),
    else another lineage ("keras (read in keras==2.3.1)"); "" when no row does."""
    lineage, version = lineage_of(name)
    key = version_key(version)
    own, other = [], []
    for rows in TABLE:
        if rows.choices.get(rule) != alternative:
            continue
        lo, hi = _range(rows)
        distance = 0 if lo <= key < hi else min(abs(_flat(lo) - _flat(key)), abs(_flat(hi) - _flat(key)))
        (own if rows.lineage == lineage else other).append((distance, rows))
    for found in (own, other):
        if found:
            return describe(min(found, key=lambda t: t[0])[1])
    return ""


def _flat(key: tuple[int, ...]) -> float:
    if key == (-1,) or key == (10**9,):
        return float(key[0])
    return key[0] * 1e6 + key[1] * 1e3 + key[2]


def explanation_key(name: str, combo: Mapping[str, str]) -> tuple:
    """Sort key of an explanation (rule -> alternative) of a verdict judged under `name`:
    alternatives that some release of the same lineage takes first, then those of another
    lineage, then the rest (e.g. alternatives kept only for the record); then fewer rules."""
    lineage, _ = lineage_of(name)
    own = other = none = 0
    for rule, alt in combo.items():
        takers = {rows.lineage for rows in TABLE if rows.choices.get(rule) == alt}
        if lineage in takers:
            own += 1
        elif takers:
            other += 1
        else:
            none += 1
    return (none, other, len(combo), sorted(combo.items()))


def semantics_hash(table: list[Rows] | None = None) -> str:
    """A short hash of the rules' alternatives and every row of the table."""
    table = TABLE if table is None else table
    data = {"rules": {name: sorted(rule.alternatives) for name, rule in RULES.items()},
            "table": [[r.lineage, r.since, r.before, r.scope(), r.choices] for r in table]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
