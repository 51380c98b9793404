"""Per-element losses in NumPy float64, as the implementations define them.

Each function takes `(y_true, y_pred, options, ctx)` and returns the loss per element, shaped
like the prediction without its last axis (Keras's unreduced "losses" tensor, before sample
weights, masks and reduction). `options` are the case's loss options (already rounded to the
case dtype); `ctx` carries the semantic rule choices that matter for losses, the epsilon
rounded to the case dtype, and the activation logits when the output came straight from a
sigmoid/softmax activation (what tf_keras's and Keras 3's TensorFlow backend can recover).

Sources (site-packages): tf_keras/src/losses.py and tf_keras/src/backend.py (tf-keras 2.21);
keras/src/losses/losses.py and keras/src/backend/{tensorflow,jax,torch,numpy}/nn.py (Keras 3.15.1);
keras 2.3.1 keras/losses.py. Where they differ, the difference is a rule (rules.py).

This module imports nothing from the harness but the reference's forward and rules; every loss
of harness.vocabulary.LOSSES has its function in PER_ELEMENT (tests/test_reference_losses.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from harness.reference import forward
from harness.reference import rules as rules_mod

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

EPSILON = forward.BACKEND_EPSILON


@dataclass(frozen=True)
class LossContext:
    rules: Mapping[str, str] = field(default_factory=lambda: rules_mod.resolve(rules_mod.DEFAULT_PROFILE))
    dtype: str = "float64"
    # ("sigmoid" | "softmax", pre-activation values) when the output tensor was produced by that
    # activation; None otherwise.
    keras_logits: tuple[str, np.ndarray] | None = None

    def round(self, x: float) -> float:
        """A Python constant as the implementation sees it after conversion to the case dtype."""
        return float(np.float32(x)) if self.dtype == "float32" else float(x)

    def round_array(self, x: np.ndarray) -> np.ndarray:
        """An intermediate tensor as the implementation stores it (float32 in a float32 case;
        not rounded under forward.exact_values())."""
        if self.dtype == "float32" and not forward.exact():
            return np.asarray(x, dtype=np.float32).astype(np.float64)
        return x

    def clip(self, x: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """np.clip(x, lo, hi), with the decision which entries are clipped taken on x as the
        implementation stores it (float32 in a float32 case), also under forward.exact_values():
        a sigmoid output that rounds to 1.0 in float32 is clipped there (its gradient is 0)."""
        x = np.asarray(x, dtype=np.float64)
        stored = np.asarray(x, dtype=np.float32).astype(np.float64) if self.dtype == "float32" else x
        return np.where(stored <= lo, lo, np.where(stored >= hi, hi, x))

    @property
    def eps(self) -> float:
        return self.round(EPSILON)

    @property
    def one_minus_eps(self) -> float:
        return self.round(1.0 - EPSILON)


# ---------------------------------------------------------------------------------------
# Numerically careful helpers (float64)
# ---------------------------------------------------------------------------------------


sigmoid = forward.sigmoid  # the forward pass's sigmoid (defined there: forward comes first)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(z, axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, np.asarray(x, dtype=np.float64))


def _bce_with_logits(t: np.ndarray, z: np.ndarray) -> np.ndarray:
    # max(z, 0) - z t + log(1 + exp(-|z|)): tf.nn.sigmoid_cross_entropy_with_logits.
    with np.errstate(invalid="ignore"):
        return np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))


def _recovered(ctx: LossContext, kind: str) -> np.ndarray | None:
    if ctx.keras_logits is None or ctx.keras_logits[0] != kind:
        return None
    if not rules_mod.chooses(ctx.rules, "probability_crossentropy", "recover_logits"):
        return None
    return np.asarray(ctx.keras_logits[1], dtype=np.float64)


def binary_crossentropy_elements(t: np.ndarray, output: np.ndarray, from_logits: bool, ctx: LossContext) -> np.ndarray:
    """Backend binary crossentropy, element-wise (no mean over the last axis)."""
    z = _recovered(ctx, "sigmoid")
    if z is not None:
        return _bce_with_logits(t, z)
    eps, hi = ctx.eps, ctx.one_minus_eps
    with np.errstate(divide="ignore", invalid="ignore"):
        if from_logits:
            if rules_mod.chooses(ctx.rules, "bce_from_logits", "exact"):
                return _bce_with_logits(t, output)
            p = ctx.clip(ctx.round_array(sigmoid(output)), eps, hi)  # keras/src/backend/numpy/nn.py
            return -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
        p = ctx.clip(output, eps, hi)
        if rules_mod.chooses(ctx.rules, "bce_probability_log", "log_plus_epsilon"):
            return -(t * np.log(p + eps) + (1.0 - t) * np.log(1.0 - p + eps))
        if rules_mod.chooses(ctx.rules, "bce_probability_log", "log_plus_epsilon_folded"):
            return -(t * np.log(p + eps) + (1.0 - t) * np.log(ctx.round(1.0 + EPSILON) - p))
        return -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))


def _smooth_binary(t: np.ndarray, options: Mapping[str, Any]) -> np.ndarray:
    ls = float(options.get("label_smoothing", 0.0))
    return t * (1.0 - ls) + 0.5 * ls if ls else t


# ---------------------------------------------------------------------------------------
# The losses (names = harness.vocabulary.LOSSES keys)
# ---------------------------------------------------------------------------------------


def mean_squared_error(y, p, options, ctx):
    return np.mean(np.square(p - y), axis=-1)


def mean_absolute_error(y, p, options, ctx):
    return np.mean(np.abs(p - y), axis=-1)


def mean_absolute_percentage_error(y, p, options, ctx):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.mean(np.abs((y - p) / np.maximum(np.abs(y), ctx.eps)), axis=-1)


def mean_squared_logarithmic_error(y, p, options, ctx):
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.log(np.maximum(p, ctx.eps) + 1.0)
        second = np.log(np.maximum(y, ctx.eps) + 1.0)
    return np.mean(np.square(first - second), axis=-1)


def huber(y, p, options, ctx):
    """Mean over the last axis; under huber_last_axis="none" (keras 2.3.1 keras/losses.py:huber_loss)
    the element-wise loss, shaped like the prediction (the aggregation expands weights over it)."""
    delta = float(options.get("delta", 1.0))
    err = p - y
    abs_err = np.abs(err)
    elements = np.where(abs_err <= delta, 0.5 * np.square(err), delta * abs_err - 0.5 * delta**2)
    if rules_mod.chooses(ctx.rules, "huber_last_axis", "none"):
        return elements
    return np.mean(elements, axis=-1)


# log(2) as every implementation computes it: in float32, then cast to the tensor's dtype
# (tf_keras/src/losses.py:log_cosh `tf.cast(tf.math.log(2.0), x.dtype)`, the same in TF 2.15's
# keras/src/losses.py; keras/src/losses/losses.py:log_cosh `ops.convert_to_tensor(ops.log(2.0), ...)`).
# In a float64 case this is 1.9e-9 above float64 log(2) (found on case 78b0731e0626956c).
LOG2_FLOAT32 = float(np.log(np.float32(2.0)))


def log_cosh(y, p, options, ctx):
    x = p - y
    return np.mean(x + softplus(-2.0 * x) - LOG2_FLOAT32, axis=-1)


def binary_crossentropy(y, p, options, ctx):
    t = _smooth_binary(y, options)
    return np.mean(binary_crossentropy_elements(t, p, bool(options.get("from_logits", False)), ctx), axis=-1)


def categorical_crossentropy(y, p, options, ctx):
    ls = float(options.get("label_smoothing", 0.0))
    t = y
    if ls:
        axis = -1 if rules_mod.chooses(ctx.rules, "label_smoothing_classes", "last_axis") else 1
        t = y * (1.0 - ls) + ls / y.shape[axis]
    z = _recovered(ctx, "softmax")
    if z is None and options.get("from_logits", False):
        z = p
    if z is not None:
        return -np.sum(t * log_softmax(z), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p / np.sum(p, axis=-1, keepdims=True)
        q = ctx.clip(q, ctx.eps, ctx.one_minus_eps)
        return -np.sum(t * np.log(q), axis=-1)


def sparse_categorical_crossentropy(y, p, options, ctx):
    labels = np.asarray(y).astype(np.int64)
    z = _recovered(ctx, "softmax")
    if z is None and options.get("from_logits", False):
        z = p
    with np.errstate(divide="ignore", invalid="ignore"):
        if z is not None:
            logp = log_softmax(z)
        elif rules_mod.chooses(ctx.rules, "sparse_ce_probability", "log_softmax_of_clipped"):
            logp = log_softmax(np.log(ctx.clip(p, ctx.eps, ctx.one_minus_eps)))
        else:
            q = ctx.clip(p / np.sum(p, axis=-1, keepdims=True), ctx.eps, ctx.one_minus_eps)
            logp = np.log(q)
    return -np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]


def binary_focal_crossentropy(y, p, options, ctx):
    t = _smooth_binary(y, options)
    gamma = float(options.get("gamma", 2.0))
    alpha = float(options.get("alpha", 0.25))
    from_logits = bool(options.get("from_logits", False))
    if from_logits and rules_mod.chooses(ctx.rules, "focal_from_logits", "bce_on_sigmoid"):
        # keras/src/losses/losses.py: y_pred = ops.sigmoid(y_pred), then bce on probabilities;
        # on TensorFlow ops.sigmoid attaches _keras_logits = the given tensor.
        probs = ctx.round_array(sigmoid(p))
        bce = binary_crossentropy_elements(t, probs, False, LossContext(ctx.rules, ctx.dtype, ("sigmoid", p)))
    else:
        probs = ctx.round_array(sigmoid(p)) if from_logits else p
        bce = binary_crossentropy_elements(t, p, from_logits, ctx)
    p_t = t * probs + (1.0 - t) * (1.0 - probs)
    with np.errstate(invalid="ignore", divide="ignore"):
        focal = np.power(1.0 - p_t, gamma) * bce
    if options.get("apply_class_balancing", False):
        focal = (t * alpha + (1.0 - t) * (1.0 - alpha)) * focal
    return np.mean(focal, axis=-1)


def kl_divergence(y, p, options, ctx):
    t = ctx.clip(y, ctx.eps, 1.0)
    q = ctx.clip(p, ctx.eps, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(t * np.log(t / q), axis=-1)


def poisson(y, p, options, ctx):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.mean(p - y * np.log(p + ctx.eps), axis=-1)


def _l2_normalize(x: np.ndarray, ctx: LossContext) -> np.ndarray:
    sumsq = np.sum(np.square(x), axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        if rules_mod.chooses(ctx.rules, "cosine_norm_floor", "sumsq_1e-12"):
            return x / np.sqrt(np.maximum(sumsq, 1e-12))
        return x * np.minimum(1.0 / np.sqrt(sumsq), 1.0 / ctx.eps)


def cosine_similarity(y, p, options, ctx):
    return -np.sum(_l2_normalize(y, ctx) * _l2_normalize(p, ctx), axis=-1)


def _hinge_labels(y: np.ndarray, ctx: LossContext) -> np.ndarray:
    # {0, 1} labels (checked over the whole batch tensor) become {-1, 1}. (keras 2.2.4 keras/losses.py:hinge
    # uses them as given; harness.spec only admits {-1, 1} hinge targets, where both agree.)
    return 2.0 * y - 1.0 if np.all((y == 0) | (y == 1)) else y


def hinge(y, p, options, ctx):
    return np.mean(np.maximum(1.0 - _hinge_labels(y, ctx) * p, 0.0), axis=-1)


def squared_hinge(y, p, options, ctx):
    return np.mean(np.square(np.maximum(1.0 - _hinge_labels(y, ctx) * p, 0.0)), axis=-1)


def categorical_hinge(y, p, options, ctx):
    pos = np.sum(y * p, axis=-1)
    neg = np.max((1.0 - y) * p, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def categorical_focal_crossentropy(y, p, options, ctx):
    """sum over the last axis of alpha * (1 - q)**gamma * -t * log(q), q = the prediction (its
    softmax from logits) divided by its sum and clipped to [eps, 1 - eps]; label smoothing over
    the last axis. keras/src/losses/losses.py:categorical_focal_crossentropy (Keras 3.15);
    tf_keras/src/losses.py:categorical_focal_crossentropy -> tf_keras/src/backend.py:
    categorical_focal_crossentropy (tf-keras 2.21; a softmax output's logits are recovered and
    softmax-ed again, the same values)."""
    ls = float(options.get("label_smoothing", 0.0))
    t = y * (1.0 - ls) + ls / y.shape[-1] if ls else y
    q = ctx.round_array(forward.activation("softmax", p)) if options.get("from_logits", False) else p
    gamma, alpha = float(options.get("gamma", 2.0)), float(options.get("alpha", 0.25))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = ctx.clip(q / np.sum(q, axis=-1, keepdims=True), ctx.eps, ctx.one_minus_eps)
        return np.sum(alpha * np.power(1.0 - q, gamma) * (-t * np.log(q)), axis=-1)


def dice(y, p, options, ctx):
    """1 - 2 sum(y p) / (sum(y) + sum(p) + eps), the sums over the last axis (the case passes
    axis=-1: vocabulary.LAST_AXIS). keras/src/losses/losses.py:dice (Keras 3.15; axis since 3.4)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - 2.0 * np.sum(y * p, axis=-1) / (np.sum(y, axis=-1) + np.sum(p, axis=-1) + ctx.eps)


def tversky(y, p, options, ctx):
    """1 - I / (I + alpha fp + beta fn + eps) over the last axis (axis=-1), I = sum(y p), with
    Keras's names: fp = sum((1 - p) y), fn = sum(p (1 - y)) (so alpha weighs the missed
    positives). keras/src/losses/losses.py:tversky (Keras 3.15; axis since 3.8)."""
    alpha, beta = float(options.get("alpha", 0.5)), float(options.get("beta", 0.5))
    inter = np.sum(y * p, axis=-1)
    fp = np.sum((1.0 - p) * y, axis=-1)
    fn = np.sum(p * (1.0 - y), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - inter / (inter + fp * alpha + fn * beta + ctx.eps)


def categorical_generalized_cross_entropy(y, p, options, ctx):
    """(1 - p_t**q) / q, p_t = the prediction of the target class (one_hot(ids) * p summed over
    the last axis: no clipping, no from_logits). keras/src/losses/losses.py:
    categorical_generalized_cross_entropy (Keras 3.10+)."""
    q = float(options.get("q", 0.5))
    labels = np.asarray(y).astype(np.int64)
    p_t = np.take_along_axis(p, labels[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - np.power(p_t, q)) / q


PER_ELEMENT: dict[str, Callable[[np.ndarray, np.ndarray, Mapping[str, Any], LossContext], np.ndarray]] = {
    f.__name__: f
    for f in [
        mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
        mean_squared_logarithmic_error, huber, log_cosh, binary_crossentropy,
        categorical_crossentropy, sparse_categorical_crossentropy, binary_focal_crossentropy,
        kl_divergence, poisson, cosine_similarity, hinge, squared_hinge, categorical_hinge,
        categorical_focal_crossentropy, dice, tversky, categorical_generalized_cross_entropy,
    ]
}


def per_element(name: str, y_true: np.ndarray, y_pred: np.ndarray, options: Mapping[str, Any] | None = None,
                ctx: LossContext | None = None) -> np.ndarray:
    """The loss `name` per element (prediction shape without its last axis; huber under
    huber_last_axis="none" keeps it), float64."""
    fn = PER_ELEMENT[name]
    y = np.asarray(y_true)
    if name != "sparse_categorical_crossentropy":
        y = y.astype(np.float64)
    return fn(y, np.asarray(y_pred, dtype=np.float64), dict(options or {}), ctx or LossContext())
