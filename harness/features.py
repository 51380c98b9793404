"""Which features a Case exercises: `features(case) -> set[str]`.

Used by the generator's statistics (`python -m harness cases --stats`) and by the report to
group cases. The names are stable; `FEATURES` lists the fixed ones with what they mean, and
`loss:<name>`, `layer:<type>`, `activation:<name>` are added for every entry of
`harness.vocabulary`. A feature whose meaning is conditional on another (a loss option is only
possible with its loss) names that condition in `CONDITIONS`; statistics report it as a share
of the cases that meet the condition.

Mask and saturation features need the tensors' values, so this module runs a small float64
forward pass of the vocabulary's layers (`forward`). It is a *labelling* aid, not the
reference: it ignores dtype and only has to be right about where masks are and which
outputs saturate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import vocabulary
from harness.spec import Case

# A probability within this of 0 or 1 is clipped by Keras' epsilon (1e-7) in crossentropies:
# keras/src/backend/config.py `epsilon()`; tf_keras/src/backend_config.py `epsilon()`.
SATURATION_EPS = 1e-7
LARGE_LOGIT = 16.0  # |logit| beyond which float32 sigmoid(logit) rounds to 0 or 1

FEATURES: dict[str, str] = {
    "outputs>=2": "two or more outputs",
    "outputs>=3": "three or more outputs",
    "temporal_output": "an output of rank 3 (batch, time, units)",
    "vector_output": "an output of rank 2 (batch, units)",
    "mixed_rank_outputs": "both temporal and vector outputs",
    "output_order_not_sorted": "the outputs' order differs from their names sorted (dict flattening order)",
    "masking": "a Masking layer",
    "embedding_mask": "an Embedding with mask_zero=True",
    "masked_output": "an output whose Keras mask masks at least one position",
    "fully_masked_sample": "an output whose mask masks every timestep of some sample",
    "fully_masked_batch": "an output whose mask masks every position of the batch",
    "masked_pooling": "GlobalAveragePooling1D over a masked tensor",
    "mask_merge": "Concatenate or Add with at least one masked inbound tensor",
    "dense_on_temporal": "a Dense layer on a rank-3 tensor",
    "activation_output": "an output produced by an Activation layer (Dense(linear) -> Activation)",
    "sample_weight:omitted": "sample_weight not passed",
    "sample_weight:single": "one sample_weight array for all outputs",
    "sample_weight:list": "sample_weight as a list",
    "sample_weight:dict": "sample_weight as a dict keyed by output name",
    "temporal_sample_weight": "a (batch, time) sample weight on a temporal output",
    "rank1_sample_weight_on_temporal": "a (batch,) sample weight on a temporal output",
    "zero_sample_weight": "a sample weight of exactly 0",
    "tiny_weight": "a sample or loss weight in (0, 2**-8)",
    "loss_weights:omitted": "loss_weights not passed",
    "loss_weights:list": "loss_weights as a list",
    "loss_weights:dict": "loss_weights as a dict",
    "zero_loss_weight": "a loss weight of exactly 0",
    "loss_form:single": "one loss for all outputs",
    "loss_form:list": "losses as a list",
    "loss_form:dict": "losses as a dict",
    "kernel_regularizer": "a kernel regularizer (Dense, SimpleRNN)",
    "bias_regularizer": "a bias regularizer",
    "activity_regularizer": "an activity regularizer",
    "embeddings_regularizer": "an Embedding embeddings regularizer",
    "recurrent_regularizer": "a SimpleRNN recurrent_kernel regularizer",
    "l1": "a regularizer of kind l1",
    "l2": "a regularizer of kind l2",
    "l1_l2": "a regularizer of kind l1_l2",
    "add_loss": "a layer that calls add_loss (AddLossL2)",
    "from_logits": "a loss with from_logits=True",
    "label_smoothing": "a loss with label_smoothing > 0",
    "reduction:default": "a loss whose reduction is not given (the default)",
    "reduction:sum_over_batch_size": "a loss with reduction 'sum_over_batch_size' given",
    "reduction:sum": "a loss with reduction 'sum'",
    "huber_delta": "huber with delta given",
    "focal_gamma": "binary_focal_crossentropy with gamma given",
    "focal_alpha": "binary_focal_crossentropy with alpha given",
    "focal_class_balancing": "binary_focal_crossentropy with apply_class_balancing=True",
    "float64": "dtype float64",
    "uneven_evaluate": "evaluate_batch_size does not divide the batch (uneven last batch)",
    "batch_of_one": "a batch of one sample",
    "time_equals_batch": "a temporal output with as many timesteps as samples (a (batch,) weight "
                         "broadcast along time instead of batch goes unnoticed by shape)",
    "saturated": "a sigmoid/softmax output (not from logits) within 1e-7 of 0 or 1",
    "large_logits": "a from_logits output with |logit| > 16",
}

# Features that only make sense given another one: reported as a share of those cases.
CONDITIONS: dict[str, str] = {
    "huber_delta": "loss:huber",
    "focal_gamma": "loss:binary_focal_crossentropy",
    "focal_alpha": "loss:binary_focal_crossentropy",
    "focal_class_balancing": "loss:binary_focal_crossentropy",
    "embeddings_regularizer": "layer:Embedding",
    "recurrent_regularizer": "layer:SimpleRNN",
    "large_logits": "from_logits",
    "time_equals_batch": "temporal_output",
}

GROUPS = ("loss:", "layer:", "activation:")


def all_features() -> list[str]:
    """Every feature name `features` can return, in a stable order."""
    names = list(FEATURES)
    names += [f"loss:{n}" for n in vocabulary.LOSSES]
    names += [f"layer:{t}" for t in vocabulary.LAYERS]
    names += [f"activation:{a}" for a in vocabulary.ACTIVATIONS]
    return names


# --------------------------------------------------------------------------------------
# A small forward pass (values and Keras masks), float64
# --------------------------------------------------------------------------------------


def _activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if name == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError(f"unknown activation {name!r}")


def forward(case: Case) -> dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """name -> (value, keras mask (batch, time) or None, pre-activation or None) for every tensor."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
    for inp in case.inputs:
        out[inp.name] = (np.asarray(inp.data), None, None)
    for layer in case.layers:
        args = [out[n] for n in layer.inbound]
        x, mask, _ = args[0]
        cfg, w = layer.config, layer.weights
        pre = None
        with np.errstate(all="ignore"):
            if layer.type == "Dense":
                pre = np.asarray(x, dtype=np.float64) @ w["kernel"] + (w["bias"] if cfg["use_bias"] else 0.0)
                y = _activate(cfg["activation"], pre)
            elif layer.type == "Activation":
                pre = x
                y = _activate(cfg["activation"], x)
            elif layer.type == "Embedding":
                y = w["embeddings"][np.asarray(x, dtype=np.int64)]
                mask = (np.asarray(x) != 0) if cfg["mask_zero"] else None
            elif layer.type == "Masking":
                mask = np.any(x != cfg["mask_value"], axis=-1)
                y = x * mask[..., None]
            elif layer.type in ("Concatenate", "Add"):
                values = [a[0] for a in args]
                y = np.concatenate(values, axis=-1) if layer.type == "Concatenate" else np.sum(values, axis=0)
                masks = [a[1] for a in args if a[1] is not None]
                mask = np.logical_and.reduce(masks) if masks else None
            elif layer.type == "GlobalAveragePooling1D":
                m = np.ones(x.shape[:2]) if mask is None else mask.astype(np.float64)
                y = (x * m[..., None]).sum(axis=1) / m.sum(axis=1)[..., None]
                mask = None
            elif layer.type == "AddLossL2":
                y = x
            elif layer.type == "SimpleRNN":
                h = np.zeros((x.shape[0], cfg["units"]))
                steps = []
                for t in range(x.shape[1]):
                    new = _activate(cfg["activation"], x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])
                    if mask is not None:
                        new = np.where(mask[:, t, None], new, h)
                    h = new
                    steps.append(h)
                y = np.stack(steps, axis=1)
            else:
                raise ValueError(f"layer type {layer.type!r} not known to harness.features.forward")
        out[layer.name] = (y, mask, pre)
    return out


def _final_activation(case: Case, layer_name: str) -> str:
    layer = case.layer(layer_name)
    return layer.config.get("activation", "linear") if layer.type in ("Dense", "Activation") else "linear"


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------


def features(case: Case) -> set[str]:
    """The names (see FEATURES and all_features) of the features `case` exercises."""
    f: set[str] = set()
    batch = case.batch_size
    tensors = forward(case)
    ranks = {o.name: tensors[o.layer][0].ndim for o in case.outputs}

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

    regs_kinds = {"kernel": "kernel_regularizer", "bias": "bias_regularizer", "activity": "activity_regularizer",
                  "embeddings": "embeddings_regularizer", "recurrent_kernel": "recurrent_regularizer"}
    output_layers = {o.layer for o in case.outputs}
    for layer in case.layers:
        f.add(f"layer:{layer.type}")
        if "activation" in layer.config:
            f.add(f"activation:{layer.config['activation']}")
        if layer.type == "Masking":
            f.add("masking")
        if layer.type == "Embedding" and layer.config.get("mask_zero"):
            f.add("embedding_mask")
        if layer.type == "AddLossL2":
            f.add("add_loss")
        inbound = [tensors[n] for n in layer.inbound]
        if layer.type == "Dense" and inbound[0][0].ndim == 3:
            f.add("dense_on_temporal")
        if layer.type == "GlobalAveragePooling1D" and inbound[0][1] is not None:
            f.add("masked_pooling")
        if layer.type in ("Concatenate", "Add") and any(t[1] is not None for t in inbound):
            f.add("mask_merge")
        if layer.type == "Activation" and layer.name in output_layers:
            f.add("activation_output")
        for key, reg in layer.regularizers.items():
            f.add(regs_kinds.get(key, f"{key}_regularizer"))
            f.add(reg.kind)

    f.add(f"sample_weight:{case.sample_weight_form}")
    f.add(f"loss_weights:{case.loss_weights_form}")
    f.add(f"loss_form:{case.loss_form}")
    tiny = lambda a: bool(np.any((a > 0) & (a < 2.0**-8)))  # noqa: E731
    for out in case.outputs:
        value, mask, _ = tensors[out.layer]
        f.add(f"loss:{out.loss}")
        opts = dict(out.loss_options)
        if opts.get("from_logits"):
            f.add("from_logits")
        if opts.get("label_smoothing", 0.0) > 0:
            f.add("label_smoothing")
        f.add(f"reduction:{opts.get('reduction', 'default')}")
        if out.loss == "huber" and "delta" in opts:
            f.add("huber_delta")
        if out.loss == "binary_focal_crossentropy":
            if "gamma" in opts:
                f.add("focal_gamma")
            if "alpha" in opts:
                f.add("focal_alpha")
            if opts.get("apply_class_balancing"):
                f.add("focal_class_balancing")
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
            if value.ndim == 3:
                f.add("temporal_sample_weight" if sw.ndim == 2 else "rank1_sample_weight_on_temporal")
            if np.any(sw == 0):
                f.add("zero_sample_weight")
            if tiny(sw):
                f.add("tiny_weight")
        if out.loss_weight is not None:
            if out.loss_weight == 0:
                f.add("zero_loss_weight")
            if tiny(np.array([out.loss_weight])):
                f.add("tiny_weight")
        act = _final_activation(case, out.layer)
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
