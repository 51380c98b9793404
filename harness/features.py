"""Which features a Case exercises: `features(case) -> set[str]`.

Used by the generator's statistics (`python -m harness cases --stats`) and by the report to
group cases. The names are stable; `FEATURES` lists the fixed ones with what they mean, and
`loss:<name>`, `layer:<type>`, `activation:<name>` are added for every entry of
`harness.vocabulary`, with the labels each entry declares (`LayerEntry.features`,
`LossEntry.option_features`). A feature whose meaning is conditional on another (a loss option
is only possible with its loss) names that condition in `CONDITIONS`; statistics report it as a
share of the cases that meet the condition.

Mask and saturation features need the tensors' values: `forward` is the reference's forward
pass (harness.reference.forward), in float64 without rounding to the case dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import vocabulary
from harness.reference import forward as reference_forward
from harness.spec import Case, sample_weight_kind

# Masks merged by AND (Keras 2's merge_mask); any profile would do for the values.
LABELLING_PROFILE = "tf_keras-2.21"

# A probability within this of 0 or 1 is clipped by Keras' epsilon (1e-7) in crossentropies:
# keras/src/backend/config.py `epsilon()`; tf_keras/src/backend_config.py `epsilon()`.
SATURATION_EPS = 1e-7
LARGE_LOGIT = 16.0  # |logit| beyond which float32 sigmoid(logit) rounds to 0 or 1

FEATURES: dict[str, str] = {
    "one_output": "a one-output model",
    "outputs>=2": "two or more outputs",
    "outputs>=3": "three or more outputs",
    "temporal_output": "an output of rank 3 (batch, time, units)",
    "vector_output": "an output of rank 2 (batch, units)",
    "mixed_rank_outputs": "both temporal and vector outputs",
    "output_order_not_sorted": "the outputs' order differs from their names sorted (dict flattening order)",
    "masked_output": "an output whose Keras mask masks at least one position",
    "fully_masked_sample": "an output whose mask masks every timestep of some sample",
    "fully_masked_batch": "an output whose mask masks every position of the batch",
    "sample_weight:omitted": "sample_weight not passed",
    "sample_weight:single": "one sample_weight array for all outputs",
    "sample_weight:list": "sample_weight as a list",
    "sample_weight:dict": "sample_weight as a dict keyed by output name",
    "temporal_sample_weight": "a (batch, time) or (batch, time, 1) sample weight on a temporal output",
    "rank1_sample_weight_on_temporal": "a (batch,) sample weight on a temporal output",
    "sample_weight_partial": "a list or dict sample weight that leaves some outputs out (None in the list, no key in the dict)",
    "sample_weight_trailing_axis": "a (batch, time, 1) sample weight on a temporal output",
    "sample_weight_column": "a (batch, 1) sample weight, a column (on a temporal output: with time != 1)",
    "zero_sample_weight": "a sample weight of exactly 0",
    "tiny_weight": "a sample or loss weight in (0, 2**-8)",
    "y:list": "y as a list of one array, for a one-output model",
    "y:dict": "y as a dict keyed by output name",
    "class_weight": "class_weight passed to fit and train_on_batch",
    "class_weight_with_sample_weight": "class_weight beside a sample weight",
    "class_weight_partial": "class_weight leaving out a class id below its largest",
    "loss_weights:omitted": "loss_weights not passed",
    "loss_weights:list": "loss_weights as a list",
    "loss_weights:dict": "loss_weights as a dict",
    "loss_weights:scalar": "loss_weights as a bare number (one output)",
    "int_loss_weight": "a loss weight given as a Python int",
    "zero_loss_weight": "a loss weight of exactly 0",
    "loss_by_name": "a loss given by its name (loss='mean_squared_error'), not as a loss object",
    "loss_form:single": "one loss for all outputs",
    "loss_form:list": "losses as a list",
    "loss_form:dict": "losses as a dict",
    "activity_regularizer": "an activity regularizer",
    "l1": "a regularizer of kind l1",
    "l2": "a regularizer of kind l2",
    "l1_l2": "a regularizer of kind l1_l2",
    "from_logits": "a loss with from_logits=True",
    "label_smoothing": "a loss with label_smoothing > 0",
    "reduction:default": "a loss whose reduction is not given (the default)",
    "reduction:sum_over_batch_size": "a loss with reduction 'sum_over_batch_size' given",
    "reduction:sum": "a loss with reduction 'sum'",
    "reduction:mean": "a loss with reduction 'mean' (Keras 3.7+; a synonym of sum_over_batch_size)",
    "reduction:mean_with_sample_weight": "a loss with reduction 'mean_with_sample_weight' (Keras 3.7+)",
    "reduction:auto": "a loss with reduction 'auto' (tf-keras)",
    "float64": "dtype float64",
    "uneven_evaluate": "evaluate_batch_size does not divide the batch (uneven last batch)",
    "batch_of_one": "a batch of one sample",
    "time_equals_batch": "a temporal output with as many timesteps as samples (a (batch,) weight "
                         "broadcast along time instead of batch goes unnoticed by shape)",
    "saturated": "a sigmoid/softmax output (not from logits) within 1e-7 of 0 or 1",
    "large_logits": "a from_logits output with |logit| > 16",
}


def _weight_regularizer_features() -> tuple[dict[str, str], dict[str, str]]:
    """`<keyword>` (kernel_regularizer, recurrent_regularizer, ...) for each regularizable weight
    of the vocabulary's layers, conditional on the layer that has that weight, or, when several
    layer types have it, on `weight:<name>` (a layer with that weight)."""
    docs, conditions = {}, {}
    for weight, keyword in vocabulary.REGULARIZER_KEYWORDS.items():
        layers = _layers_with(weight)
        docs[keyword] = f"a {weight} regularizer ({', '.join(layers)})"
        if len(layers) == 1:
            conditions[keyword] = f"layer:{layers[0]}"
        else:
            docs[f"weight:{weight}"] = f"a layer with a {weight} weight ({', '.join(layers)})"
            conditions[keyword] = f"weight:{weight}"
    return docs, conditions


def _layers_with(weight: str) -> list[str]:
    return [t for t, e in vocabulary.LAYERS.items() if weight in e.regularizable]


def _entry_features() -> tuple[dict[str, str], dict[str, str]]:
    """The labels the vocabulary's entries declare: a layer's, and a loss's options' (each only
    possible with its loss)."""
    docs, conditions = _weight_regularizer_features()
    for entry in vocabulary.LAYERS.values():
        docs.update(entry.feature_docs)
    for loss in vocabulary.LOSSES.values():
        for option, label in loss.option_features.items():
            docs[label] = f"{loss.name} with {option} given"
            conditions[label] = f"loss:{loss.name}"
    return docs, conditions


_ENTRY_DOCS, _ENTRY_CONDITIONS = _entry_features()
FEATURES.update(_ENTRY_DOCS)

# Features that only make sense given another one: reported as a share of those cases.
CONDITIONS: dict[str, str] = {
    **_ENTRY_CONDITIONS,
    "large_logits": "from_logits",
    "time_equals_batch": "temporal_output",
    "y:list": "one_output",  # a list y differs from one array only for one output
    "loss_weights:scalar": "one_output",  # a bare number only for one output
    "layer_norm_on_temporal": "layer:LayerNormalization",
    "batch_norm_on_mask": "layer:BatchNormalization",
    "batch_norm_on_temporal": "layer:BatchNormalization",
    "bidirectional_on_mask": "layer:BidirectionalLSTM",
    "bidirectional_gru_on_mask": "layer:BidirectionalGRU",
    "conv1d_even_kernel": "layer:Conv1D",
    "conv1d_on_mask": "layer:Conv1D",
    "time_distributed_activity": "layer:TimeDistributedDense",
    "class_weight_with_sample_weight": "class_weight",
    "class_weight_partial": "class_weight",
}

GROUPS = ("loss:", "layer:", "activation:")


def all_features() -> list[str]:
    """Every feature name `features` can return, in a stable order."""
    names = list(FEATURES)
    names += [f"loss:{n}" for n in vocabulary.LOSSES]
    names += [f"layer:{t}" for t in vocabulary.LAYERS]
    names += [f"activation:{a}" for a in vocabulary.ACTIVATIONS]
    return names


def forward(case: Case) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """name -> (value, Keras mask (batch, time) or None) for every tensor: the reference's forward
    pass in float64 without rounding to the case dtype, with masks merged as Keras 2 merges them
    (AND; a labelling choice: "masked" means masked in some lineage's reading)."""
    with reference_forward.exact_values():
        result = reference_forward.run(case, np.arange(case.batch_size), LABELLING_PROFILE)
    tensors = {inp.name: (np.asarray(inp.data), None) for inp in case.inputs}
    tensors.update({name: (t.value, t.mask) for name, t in result.tensors.items()})
    return tensors


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------


def features(case: Case) -> set[str]:
    """The names (see FEATURES and all_features) of the features `case` exercises."""
    f: set[str] = set()
    batch = case.batch_size
    tensors = forward(case)
    ranks = {o.name: tensors[o.layer][0].ndim for o in case.outputs}

    if len(case.outputs) == 1:
        f.add("one_output")
    if len(case.outputs) >= 2:
        f.add("outputs>=2")
    if len(case.outputs) >= 3:
        f.add("outputs>=3")
    if any(r == 3 for r in ranks.values()):
        f.add("temporal_output")
    if any(r == 2 for r in ranks.values()):
        f.add("vector_output")
    if {"temporal_output", "vector_output"} <= f:
        f.add("mixed_rank_outputs")
    if case.output_names() != sorted(case.output_names()):
        f.add("output_order_not_sorted")

    regs_kinds = {**vocabulary.REGULARIZER_KEYWORDS, "activity": "activity_regularizer"}
    output_layers = {o.layer for o in case.outputs}
    for layer in case.layers:
        f.add(f"layer:{layer.type}")
        if "activation" in layer.config:
            f.add(f"activation:{layer.config['activation']}")
        inbound = [tensors[n] for n in layer.inbound]
        f |= vocabulary.LAYERS[layer.type].features(layer, inbound, layer.name in output_layers)
        f |= {f"weight:{w}" for w in layer.weights if f"weight:{w}" in FEATURES}
        for key, reg in layer.regularizers.items():
            f.add(regs_kinds.get(key, f"{key}_regularizer"))
            f.add(reg.kind)

    f.add(f"sample_weight:{case.sample_weight_form}")
    if case.sample_weight_form in ("list", "dict") and any(o.sample_weight is None for o in case.outputs):
        f.add("sample_weight_partial")
    f.add(f"loss_weights:{case.loss_weights_form}")
    if any(type(o.loss_weight) is int for o in case.outputs):
        f.add("int_loss_weight")
    if case.y_form != "auto":
        f.add(f"y:{case.y_form}")
    if case.class_weight is not None:
        f.add("class_weight")
        if case.sample_weight_form != "omitted":
            f.add("class_weight_with_sample_weight")
        if sorted(case.class_weight) != list(range(len(case.class_weight))):
            f.add("class_weight_partial")
    f.add(f"loss_form:{case.loss_form}")
    tiny = lambda a: bool(np.any((a > 0) & (a < 2.0**-8)))  # noqa: E731
    for out in case.outputs:
        value, mask = tensors[out.layer]
        f.add(f"loss:{out.loss}")
        if out.loss_by == "name":
            f.add("loss_by_name")
        opts = dict(out.loss_options)
        if opts.get("from_logits"):
            f.add("from_logits")
        if opts.get("label_smoothing", 0.0) > 0:
            f.add("label_smoothing")
        f.add(f"reduction:{opts.get('reduction', 'default')}")
        for option, label in vocabulary.LOSSES[out.loss].option_features.items():
            if option in opts and opts[option] is not False:
                f.add(label)
        if value.ndim == 3 and value.shape[1] == batch:
            f.add("time_equals_batch")
        if mask is not None and value.ndim == 3:
            if not mask.all():
                f.add("masked_output")
            if (~mask).all(axis=1).any():
                f.add("fully_masked_sample")
            if (~mask).all():
                f.add("fully_masked_batch")
        sw = out.sample_weight
        if sw is not None:
            kind = sample_weight_kind(case, out)
            if kind == "column":
                f.add("sample_weight_column")
            elif value.ndim == 3:
                f.add("temporal_sample_weight" if kind.startswith("timestep") else "rank1_sample_weight_on_temporal")
                if kind == "timestep_trailing_axis":
                    f.add("sample_weight_trailing_axis")
            if np.any(sw == 0):
                f.add("zero_sample_weight")
            if tiny(sw):
                f.add("tiny_weight")
        if out.loss_weight is not None:
            if out.loss_weight == 0:
                f.add("zero_loss_weight")
            if tiny(np.array([out.loss_weight])):
                f.add("tiny_weight")
        act = case.layer(out.layer).config.get("activation", "linear")
        if opts.get("from_logits"):
            if np.any(np.abs(value) > LARGE_LOGIT):
                f.add("large_logits")
        elif act in ("sigmoid", "softmax"):
            if np.any(value < SATURATION_EPS) or np.any(value > 1 - SATURATION_EPS):
                f.add("saturated")

    if case.dtype == "float64":
        f.add("float64")
    if batch % case.evaluate_batch_size:
        f.add("uneven_evaluate")
    if batch == 1:
        f.add("batch_of_one")
    return f


def stats(cases: list[Case]) -> dict[str, Any]:
    """Counts per feature over `cases` (and per condition), for the CLI and the tests."""
    counts = {name: 0 for name in all_features()}
    for case in cases:
        for name in features(case):
            counts[name] = counts.get(name, 0) + 1
    return {"n": len(cases), "counts": counts}
