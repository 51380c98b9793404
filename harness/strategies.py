"""Strategies that draw valid Cases: for Hypothesis (`cases`) and as a fixed-seed corpus (`corpus`).

One generator, two drivers. `draw_case(source, constraints)` is written against a tiny
interface, `Source`, that has one primitive: `integer(lo, hi)` (inclusive; shrinks towards
`lo`). Everything else (booleans, choices, values, names, permutations) is built on it here.

- `HypothesisSource` forwards `integer` to `draw(st.integers(lo, hi))`, so Hypothesis
  generates and shrinks every choice; `group` wraps a sub-draw in its own composite so the
  shrinker can delete or simplify one output, one layer or one array as a block.
- `RandomSource` drives the same generator from `random.Random(str_seed).random()`, the
  one method whose sequence Python documents as stable across versions for a given seed.
  This is what `corpus(seed, n)` uses, so the corpus (and every case id) is the same in
  every environment: it does not depend on numpy (whose `Generator` methods may change
  their streams between versions; our venvs run numpy 1.26 and 2.4) nor on Hypothesis'
  internals (whose choice-to-value mapping changes between releases). Case i of seed s is
  drawn from its own seed "harness-corpus:s:i", so `corpus(s, 10)` starts with `corpus(s, 5)`.
  `corpus(s, n, values_per_structure=k)` repeats each structure k times with new values
  (`value_variant`: weights, inputs, targets and sample weights from the seed
  "harness-corpus:s:i:values:v"; same spec.structure_key), which one compiled model serves.

Shrink order. A Case is drawn shape first, then data: number of outputs, batch, time, dtype,
forms, each output's rank/loss/options/units, the mask source and mask pattern, the layer
graph (types, inbound, configs, regularizers), names and output order; then weights, inputs,
targets, sample weights and loss weights. Every "feature switch" is `boolean(p)`, false at
the shrink target, and every choice list is ordered simplest first, so a failing Case shrinks
toward fewer outputs, fewer layers, shorter sequences, fewer features switched on and
smaller values.

Values are float32-exact: every real is an integer times a power of two (e.g. k/1024), so
float32 and float64 implementations see the same numbers and Hypothesis draws cheap
integers (a float draw costs Hypothesis 9 bytes of its 8 KiB budget; a small int 2-3).
Regimes: the comfortable middle, large values (edge regime: saturated sigmoid/softmax heads,
large logits), tiny and zero sample/loss weights.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

from harness import spec, vocabulary
from harness.spec import Case, Input, Layer, Output, Regularizer

T = TypeVar("T")

# --------------------------------------------------------------------------------------
# The draw interface and its two drivers
# --------------------------------------------------------------------------------------


class Source(Protocol):
    def integer(self, lo: int, hi: int) -> int:
        """A uniform-ish integer in [lo, hi]; shrinks towards lo."""

    def group(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(source, *args)` as one block (a Hypothesis span; a no-op elsewhere)."""


class RandomSource:
    """Drives the generator from `random.Random(seed).random()` only (stable across Pythons)."""

    def __init__(self, seed: str | int):
        self._random = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        return lo + min(int(self._random.random() * (hi - lo + 1)), hi - lo)

    def group(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self, *args)


# One strategy object serves every group: building a fresh composite per group made
# Hypothesis re-validate a new strategy each time (most of a draw's cost). The block to run is
# handed over through a per-thread stack, popped as soon as Hypothesis starts the draw.
_pending = threading.local()


@st.composite
def _run_pending(draw: Any) -> Any:
    fn, args = _pending.stack.pop()
    return fn(HypothesisSource(draw), *args)


_GROUP = _run_pending()
_INTEGERS: dict[tuple[int, int], st.SearchStrategy[int]] = {}


class HypothesisSource:
    """Drives the generator from a Hypothesis `draw`."""

    def __init__(self, draw: Callable[..., Any]):
        self._draw = draw

    def integer(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        strategy = _INTEGERS.get((lo, hi))
        if strategy is None:
            strategy = _INTEGERS[(lo, hi)] = st.integers(lo, hi)
        return self._draw(strategy)

    def group(self, fn: Callable[..., T], *args: Any) -> T:
        if not hasattr(_pending, "stack"):
            _pending.stack = []
        _pending.stack.append((fn, args))
        return self._draw(_GROUP)


# ---- derived draws (shared by both drivers) ---------------------------------------------


def boolean(src: Source, p: float) -> bool:
    """True with probability ~p; shrinks to False (the feature switched off)."""
    if p <= 0:
        return False
    if p >= 1:
        return True
    return src.integer(0, 99) >= round(100 * (1 - p))


def choice(src: Source, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
    """One of `options` (weighted); shrinks towards options[0]."""
    if len(options) == 1:
        return options[0]
    if weights is None:
        return options[src.integer(0, len(options) - 1)]
    cumulative = np.cumsum([round(100 * w) for w in weights])
    k = src.integer(0, int(cumulative[-1]) - 1)
    return options[int(np.searchsorted(cumulative, k, side="right"))]


def permutation(src: Source, n: int) -> list[int]:
    """A permutation of range(n) (Fisher-Yates from the front); shrinks to the identity."""
    order = list(range(n))
    for i in range(n - 1):
        j = i + src.integer(0, n - 1 - i)
        order[i], order[j] = order[j], order[i]
    return order


# Real values: integer * 2**-e, all float32-exact (|k| < 2**24).
def _middle(src: Source) -> float:  # [-2, 2], step 1/1024
    return src.integer(-2048, 2048) / 1024


def _unit(src: Source) -> float:  # [-1, 1], step 1/1024
    return src.integer(-1024, 1024) / 1024


def _large(src: Source) -> float:
    """+-[16, 48], step 1/64: a bias alone saturates a float32 sigmoid (1 - sigmoid(16) < 1.2e-7,
    about Keras' crossentropy epsilon 1e-7) and makes a large logit."""
    k = src.integer(-2048, 2048)
    return (16 + abs(k) / 64) * (1 if k >= 0 else -1)


def _variance(src: Source) -> float:  # (0, 4], step 1/16
    return src.integer(1, 64) / 16


# Weights whose values have a domain of their own (vocabulary BatchNormalization: a variance).
_WEIGHT_DRAWS: dict[str, Callable[[Source], float]] = {"moving_variance": _variance}


def _values(src: Source, shape: tuple[int, ...], draw_one: Callable[[Source], float]) -> np.ndarray:
    def fill(s: Source) -> np.ndarray:
        flat = [draw_one(s) for _ in range(int(np.prod(shape, dtype=np.int64)))]
        return np.array(flat, dtype=np.float64).reshape(shape)

    return src.group(fill)


def _weight_value(src: Source, zero: float = 0.15) -> float:
    """A sample or loss weight: (0, 4] mostly, sometimes exactly zero, sometimes tiny."""
    kind = choice(src, ("middle", "zero", "tiny"), (0.9 - zero, zero, 0.10))
    if kind == "zero":
        return 0.0
    if kind == "tiny":
        return src.integer(1, 64) * 2.0**-16  # <= 2**-10
    return src.integer(1, 64) / 16


def _not_all_equal(a: np.ndarray, step: float = 0.5) -> np.ndarray:
    """Weights are drawn so that they matter: an array of 2+ equal weights gets one changed."""
    if a.size >= 2 and np.all(a == a.flat[0]):
        a = a.copy()
        a.flat[-1] = a.flat[0] + step
    return a


# --------------------------------------------------------------------------------------
# Constraints
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constraints:
    """What `cases(**constraints)` / `corpus(..., **constraints)` may draw. Defaults: everything."""

    min_outputs: int = 1
    max_outputs: int = 4
    max_batch: int = 6
    max_time: int = 5
    max_features: int = 4
    dtypes: tuple[str, ...] = spec.DTYPES
    # The vocabulary version drawn from (harness.vocabulary.VERSION: the latest); a version's
    # cases, and their ids, stay the same when entries are appended.
    vocabulary_version: int = vocabulary.VERSION
    losses: tuple[str, ...] | None = None  # None: every loss of the version
    loss_forms: tuple[str, ...] = spec.LOSS_FORMS
    loss_weights_forms: tuple[str, ...] = spec.LOSS_WEIGHTS_FORMS
    sample_weight_forms: tuple[str, ...] = spec.SAMPLE_WEIGHT_FORMS
    # y as handed to Keras (drawn from vocabulary version FORMS_SINCE["y_form"] on; "list" only
    # for one output, where it differs from "auto"; "dict" only beside an omitted or a dict
    # sample_weight: a list or single sample_weight beside a dict y is not drawn until the rules
    # for it are written, docs/y-structures.md)
    y_forms: tuple[str, ...] = spec.Y_FORMS
    temporal: bool = True  # rank-3 outputs
    masks: bool = True  # Masking / Embedding(mask_zero=True)
    fully_masked: bool = True  # fully masked samples and batches
    regularizers: tuple[str, ...] = spec.REGULARIZER_KINDS  # () for none
    add_loss: bool = True
    # Body layers (harness.vocabulary.LayerEntry.draw) drawn; None: every one of the version.
    layers: tuple[str, ...] | None = None
    edge_values: bool = True  # saturated heads, large logits

    def __post_init__(self) -> None:
        if not 1 <= self.min_outputs <= self.max_outputs:
            raise ValueError("need 1 <= min_outputs <= max_outputs")
        if not 1 <= self.vocabulary_version <= vocabulary.VERSION:
            raise ValueError(f"constraint vocabulary_version: expected 1..{vocabulary.VERSION}, "
                             f"got {self.vocabulary_version!r}")
        losses = tuple(vocabulary.losses_of(self.vocabulary_version))
        body = tuple(t for t, e in vocabulary.layers_of(self.vocabulary_version).items() if e.draw is not None)
        object.__setattr__(self, "losses", losses if self.losses is None else self.losses)
        object.__setattr__(self, "layers", body if self.layers is None else self.layers)
        for name, allowed in (("dtypes", spec.DTYPES), ("losses", losses), ("layers", body),
                              ("loss_forms", spec.LOSS_FORMS), ("loss_weights_forms", spec.LOSS_WEIGHTS_FORMS),
                              ("sample_weight_forms", spec.SAMPLE_WEIGHT_FORMS), ("y_forms", spec.Y_FORMS),
                              ("regularizers", spec.REGULARIZER_KINDS)):
            value = getattr(self, name)
            bad = [v for v in value if v not in allowed]
            if bad or (not value and name != "regularizers"):
                raise ValueError(f"constraint {name}: expected a non-empty subset of {allowed}, got {value!r}")
        if self.loss_weights_forms == ("scalar",) and (
                self.max_outputs != 1 or self.vocabulary_version < vocabulary.FORMS_SINCE["scalar_loss_weights"]):
            raise ValueError("constraint loss_weights_forms: ('scalar',) alone needs max_outputs=1 (a bare number is "
                             "the loss weight of a one-output model) and vocabulary_version >= "
                             f"{vocabulary.FORMS_SINCE['scalar_loss_weights']} (the form's first)")


def _constraints(**kwargs: Any) -> Constraints:
    known = {f.name for f in fields(Constraints)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"unknown constraint(s) {unknown}; known: {sorted(known)}")
    return Constraints(**{k: tuple(v) if isinstance(v, (list, set)) else v for k, v in kwargs.items()})


# --------------------------------------------------------------------------------------
# The plan (shape): everything but the numbers
# --------------------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]  # without the batch axis
    mask: np.ndarray | None  # (batch, time) bool, True = valid; None = no Keras mask


@dataclass
class _LayerPlan:
    type: str
    inbound: list[str]
    config: dict[str, Any]
    weight_shapes: dict[str, tuple[int, ...]]
    regularizers: dict[str, Regularizer]
    name: str = ""
    large: bool = False  # weights in the large regime (edge heads)


@dataclass
class _OutputPlan:
    temporal: bool
    loss: str
    options: dict[str, Any]
    units: int
    activation: str = "linear"
    layer: str = ""  # name of the producing layer
    mask: np.ndarray | None = None
    loss_by: str = "object"  # spec.LOSS_BY


@dataclass
class _Plan:
    dtype: str
    batch: int
    time: int
    evaluate_batch_size: int
    loss_form: str
    loss_weights_form: str
    sample_weight_form: str
    sample_weight_temporal: bool  # single form: one (batch, time) array for all outputs
    edge: bool
    outputs: list[_OutputPlan]
    y_form: str = "auto"
    int_loss_weights: bool = False  # loss weights drawn as Python ints
    weight_columns: bool = False  # per-sample weights drawn as (batch, 1) columns half the time
    class_weight: bool = False  # fit / train_on_batch get class_weight= (one output, spec.validate's forms)
    partial_sample_weights: bool = False  # list / dict form: some outputs without weights (None, no key)
    trailing_axis_weights: bool = False  # per-step weights drawn as (batch, time, 1) 45% of the time
    inputs: list[dict[str, Any]] = field(default_factory=list)  # name, kind, shape, mask, mask_value
    layers: list[_LayerPlan] = field(default_factory=list)
    pool: list[_Tensor] = field(default_factory=list)


_RESERVED = {"loss", "input", "output", "dense", "model", "sequential"}
_ALPHA = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _ALPHA + "0123456789"


def _identifier(src: Source, used: set[str]) -> str:
    """A random lower-case identifier (3-6 chars), unused so far: no accidental 'dense_1' order."""
    for attempt in range(3):
        length = src.integer(3, 6)
        k = src.integer(0, 26 * 36 ** (length - 1) - 1)  # one draw per name: cheap for Hypothesis
        rest = []
        for _ in range(length - 1):
            k, digit = divmod(k, 36)
            rest.append(_ALNUM[digit])
        name = _ALPHA[k] + "".join(reversed(rest))
        if name not in used and name not in _RESERVED:
            used.add(name)
            return name
    n = 0
    while f"{name}{n}" in used:
        n += 1
    used.add(f"{name}{n}")
    return f"{name}{n}"


class _Draws:
    """vocabulary.Draws over a Source: what the entries' `draw`s call."""

    def __init__(self, src: Source, c: Constraints):
        self.src, self.max_features, self.vocabulary_version = src, c.max_features, c.vocabulary_version

    def boolean(self, p: float) -> bool:
        return boolean(self.src, p)

    def integer(self, lo: int, hi: int) -> int:
        return self.src.integer(lo, hi)

    def choice(self, options: Sequence[Any], weights: Sequence[float] | None = None) -> Any:
        return choice(self.src, options, weights)


def _loss_options(src: Source, entry: vocabulary.LossEntry, c: Constraints) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["more_reductions"]:
        # the refused-somewhere ones less often: a case whose loss a lineage refuses tests nothing
        # else there
        reduction = choice(src, ("default",) + vocabulary.REDUCTIONS, (4, 4, 4, 1, 1, 1))
    else:
        reduction = choice(src, ("default", "sum_over_batch_size", "sum"))
    if reduction != "default":
        opts["reduction"] = reduction
    draws = _Draws(src, c)
    for key, option in entry.options.items():  # the entry's order: stable
        value = option.draw(draws)
        if value is not None:
            opts[key] = value
    return opts


def _head_activation(src: Source, entry: vocabulary.LossEntry, options: dict[str, Any], units: int) -> str:
    """An output activation that fits the loss: what users write."""
    if options.get("from_logits"):
        return "linear"
    if entry.pred_kind == "probability":
        return "sigmoid"
    if entry.pred_kind == "distribution":
        return "softmax"
    if entry.pred_kind == "positive":
        return choice(src, ("softplus", "relu"), (0.8, 0.2))
    return choice(src, vocabulary.ACTIVATIONS if units > 1 else vocabulary.BRANCH_ACTIVATIONS)


def _output_plan(src: Source, c: Constraints, loss: str, options: dict[str, Any]) -> _OutputPlan:
    temporal = c.temporal and boolean(src, 0.5)
    entry = vocabulary.LOSSES[loss]
    needs_classes = entry.target_kind in ("distribution", "sparse") or entry.pred_kind == "distribution"
    units = src.integer(2, 4) if needs_classes else src.integer(1, 4)
    return _OutputPlan(temporal=temporal, loss=loss, options=options, units=units)


def _mask_pattern(src: Source, batch: int, time: int, c: Constraints) -> np.ndarray:
    """Valid (True) / masked (False) per (sample, timestep)."""
    if c.fully_masked and boolean(src, 0.25):
        return np.zeros((batch, time), dtype=bool)  # a fully masked batch
    style = choice(src, ("trailing", "leading", "scattered"))
    mask = np.ones((batch, time), dtype=bool)
    for b in range(batch):
        state = choice(src, ("valid", "partial", "full"), (0.35, 0.45, 0.2 if c.fully_masked else 0.0))
        if state == "full":
            mask[b] = False
        elif state == "partial" and time > 1:
            n_masked = src.integer(1, time - 1)
            if style == "trailing":
                mask[b, time - n_masked:] = False
            elif style == "leading":
                mask[b, :n_masked] = False
            else:
                for t in range(time):
                    mask[b, t] = not boolean(src, 0.5)
    return mask


def _can_pool(t: _Tensor) -> bool:
    """GlobalAveragePooling1D over a fully masked sample divides 0 by 0 in every Keras
    (keras/src/layers/pooling/global_average_pooling1d.py `call`: sum(x*mask)/sum(mask)):
    the NaN would hide every other feature of the case, so we never pool such a tensor."""
    return len(t.shape) == 2 and (t.mask is None or bool(np.all(t.mask.any(axis=1))))


def _regularizer(src: Source, c: Constraints) -> Regularizer:
    kind = choice(src, c.regularizers)
    factor = lambda: src.integer(1, 256) / 512  # noqa: E731  [1/512, 1/2]: non-negligible
    if kind == "l1":
        return Regularizer("l1", l1=factor())
    if kind == "l2":
        return Regularizer("l2", l2=factor())
    return Regularizer("l1_l2", l1=factor(), l2=factor())


def _regularizers(src: Source, c: Constraints, weights: Sequence[str], activity: bool = True,
                  activity_p: float = 0.1) -> dict[str, Regularizer]:
    regs: dict[str, Regularizer] = {}
    if not c.regularizers:
        return regs
    for w in weights:
        p = {"bias": 0.12, "kernel": 0.15, "gamma": 0.3, "beta": 0.3}.get(w, 0.2)
        if boolean(src, p):
            regs[w] = _regularizer(src, c)
    if activity and boolean(src, activity_p):
        regs["activity"] = _regularizer(src, c)
    return regs


class _Builder(_Draws):
    """Appends layers to a plan, tracking each tensor's shape and Keras mask; the
    vocabulary.LayerDraws of the entries' `draw`s."""

    def __init__(self, plan: _Plan, src: Source, c: Constraints):
        super().__init__(src, c)
        self.plan, self.c = plan, c
        self.consumed: set[str] = set()  # tensors already used by a layer or as an output

    def group(self, method: Callable[..., Any], *args: Any) -> Any:
        """Run `method(self, *args)` as one block of draws (so it shrinks as a unit)."""

        def block(s: Source) -> Any:
            outer, self.src = self.src, s
            try:
                return method(self, *args)
            finally:
                self.src = outer

        return self.src.group(block)

    def add(self, layer: _LayerPlan, shape: tuple[int, ...], mask: np.ndarray | None) -> _Tensor:
        layer.name = f"#{len(self.plan.layers)}"  # placeholder; real names are drawn later
        self.plan.layers.append(layer)
        self.consumed.update(layer.inbound)
        t = _Tensor(layer.name, shape, mask)
        self.plan.pool.append(t)
        return t

    def dense(self, base: _Tensor, units: int, activation: str, *, use_bias: bool | None = None,
              large: bool = False) -> _Tensor:
        src = self.src
        if use_bias is None:
            use_bias = boolean(src, 0.8)
        shapes = {"kernel": (base.shape[-1], units)}
        if use_bias:
            shapes["bias"] = (units,)
        regs = _regularizers(src, self.c, tuple(shapes))
        layer = _LayerPlan("Dense", [base.name], {"units": units, "activation": activation, "use_bias": use_bias},
                           shapes, regs, large=large)
        return self.add(layer, base.shape[:-1] + (units,), base.mask)

    def pick(self, rank: int | None = None, pred: Callable[[_Tensor], bool] | None = None) -> _Tensor | None:
        options = [t for t in self.plan.pool if (rank is None or len(t.shape) == rank) and (pred is None or pred(t))]
        if not options:
            return None
        return options[self.src.integer(0, len(options) - 1)]

    def body_op(self) -> None:
        """One body layer: drawn by its vocabulary entry (`LayerEntry.draw`), weighted by its
        `draw_weight` (0 for a layer the constraints leave out, which keeps the other draws)."""
        entries = [e for e in vocabulary.layers_of(self.c.vocabulary_version).values() if e.draw is not None]
        weights = [e.draw_weight if e.type in self.c.layers else 0.0 for e in entries]
        entry = choice(self.src, entries, weights)
        if entry.draw(self) is None:
            vocabulary.LAYERS[vocabulary.FALLBACK_BODY_LAYER].draw(self)

    def pool(self) -> list[_Tensor]:
        return self.plan.pool

    def poolable(self, tensor: _Tensor) -> bool:
        return _can_pool(tensor)

    def regularizers(self, weights: Sequence[str], activity_p: float = 0.1) -> dict[str, Regularizer]:
        return _regularizers(self.src, self.c, tuple(weights), activity_p=activity_p)

    def append(self, type: str, inbound: Sequence[_Tensor], config: dict[str, Any],
               weight_shapes: dict[str, tuple[int, ...]], regularizers: dict[str, Regularizer],
               shape: tuple[int, ...], mask: np.ndarray | None) -> _Tensor:
        return self.add(_LayerPlan(type, [t.name for t in inbound], config, weight_shapes, regularizers), shape, mask)

    def head(self, out: _OutputPlan) -> None:
        src, c = self.src, self.c
        rank = 2 if out.temporal else 1
        # Prefer a tensor nothing uses yet: Keras drops layers that feed no output.
        base = None
        if boolean(src, 0.85):
            base = self.pick(rank=rank, pred=lambda t: t.name not in self.consumed)
            if base is None and rank == 1 and boolean(src, 0.8):
                seq = self.pick(pred=lambda t: t.name not in self.consumed and _can_pool(t))
                if seq is not None:
                    base = self.add(_LayerPlan("GlobalAveragePooling1D", [seq.name], {}, {}, {}), seq.shape[1:], None)
        base = base or self.pick(rank=rank)
        if base is None:  # a vector output and no vector tensor: pool a sequence
            seq = self.pick(pred=_can_pool)
            assert seq is not None, "the input plan guarantees a poolable sequence or a vector input"
            base = self.add(_LayerPlan("GlobalAveragePooling1D", [seq.name], {}, {}, {}), seq.shape[1:], None)
        entry = vocabulary.LOSSES[out.loss]
        out.activation = _head_activation(src, entry, out.options, out.units)
        # Edge regime: large head weights saturate sigmoid/softmax; logits heads get them more often.
        large = self.c.edge_values and boolean(src, 0.7 if self.plan.edge else 0.0 if not out.options.get("from_logits") else 0.3)
        if out.activation != "linear" and boolean(src, 0.2):
            # Dense(linear) then Activation: the output op is the activation itself.
            logits = self.dense(base, out.units, "linear", large=large)
            t = self.add(_LayerPlan("Activation", [logits.name], {"activation": out.activation}, {}, {}),
                         logits.shape, logits.mask)
        else:
            t = self.dense(base, out.units, out.activation, large=large)
        out.layer, out.mask = t.name, t.mask
        self.consumed.add(t.name)

    def prune(self) -> None:
        """Drop layers and inputs that feed no output: a functional Keras model leaves them out
        (with their weights, regularizers and add_loss), so the Case must not have them."""
        needed = {o.layer for o in self.plan.outputs}
        for layer in reversed(self.plan.layers):
            if layer.name in needed:
                needed.update(layer.inbound)
        self.plan.layers = [lp for lp in self.plan.layers if lp.name in needed]
        self.plan.inputs = [inp for inp in self.plan.inputs if inp["name"] in needed]


def _plan(src: Source, c: Constraints) -> _Plan:
    n_out = src.integer(c.min_outputs, c.max_outputs)
    batch = src.integer(1, c.max_batch)
    time = src.integer(1, c.max_time)
    dtype = choice(src, c.dtypes)
    # evaluate batch size: often one that leaves an uneven last batch
    uneven = [e for e in range(2, batch) if batch % e]
    if uneven and boolean(src, 0.7):
        ebs = choice(src, uneven)
    else:
        ebs = src.integer(1, batch)
    loss_form = choice(src, c.loss_forms)
    # "scalar" is not among the first choice, so that earlier versions draw as they did; from
    # version FORMS_SINCE["scalar_loss_weights"] on a one-output model's weights are then a bare
    # number half the time (below).
    lw_forms = [f for f in c.loss_weights_forms if f != "scalar"] or ["omitted"]
    lw_form = choice(src, lw_forms)
    sw_form = choice(src, c.sample_weight_forms)

    if loss_form == "single":
        loss = choice(src, c.losses)
        options = _loss_options(src, vocabulary.LOSSES[loss], c)
        outs = [src.group(_output_plan, c, loss, options) for _ in range(n_out)]
    else:
        outs = []
        for _ in range(n_out):
            loss = choice(src, c.losses)
            outs.append(src.group(_output_plan, c, loss, _loss_options(src, vocabulary.LOSSES[loss], c)))
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["loss_names"]:
        # loss="name": no options (a name carries none); one choice for all outputs of the single form
        by_name = [boolean(src, 0.2)] * n_out if loss_form == "single" else [boolean(src, 0.2) for _ in outs]
        for o, name in zip(outs, by_name):
            required = any(opt.required for opt in vocabulary.LOSSES[o.loss].options.values())  # Dice(axis=)
            if name and not required:
                o.loss_by, o.options = "name", {}
    edge = c.edge_values and boolean(src, 0.35)
    sw_temporal = sw_form == "single" and all(o.temporal for o in outs) and boolean(src, 0.5)
    plan = _Plan(dtype, batch, time, ebs, loss_form, lw_form, sw_form, sw_temporal, edge, outs)
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["scalar_loss_weights"]:
        only_scalar = c.loss_weights_forms == ("scalar",)
        if n_out == 1 and (only_scalar or "scalar" in c.loss_weights_forms and lw_form != "omitted"
                           and boolean(src, 0.5)):
            plan.loss_weights_form = "scalar"
        # Python ints as loss weights (the JSON keeps the type, Keras gets an int)
        plan.int_loss_weights = plan.loss_weights_form != "omitted" and boolean(src, 0.3)
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["weight_columns"]:
        plan.weight_columns = sw_form != "omitted" and boolean(src, 0.35)
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["class_weight"]:
        # the forms spec.validate accepts beside class_weight (y one array, (batch,) weights);
        # drawn only from that version on, so that earlier versions draw as they did
        # a list or dict sample weight becomes none, where the constraints allow it
        allowed = sw_form in ("omitted", "single") or "omitted" in c.sample_weight_forms
        plan.class_weight = (n_out == 1 and not outs[0].temporal and "auto" in c.y_forms and allowed
                             and boolean(src, 0.9))
        if plan.class_weight:
            plan.weight_columns = False
            if sw_form in ("list", "dict"):  # one output: as often without weights as with
                plan.sample_weight_form = "omitted"
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["partial_sample_weights"]:
        plan.partial_sample_weights = plan.sample_weight_form in ("list", "dict") and n_out > 1 and boolean(src, 0.35)
    plan.trailing_axis_weights = c.vocabulary_version >= vocabulary.FORMS_SINCE["timestep_trailing_axis"]
    if c.vocabulary_version >= vocabulary.FORMS_SINCE["y_form"] and not plan.class_weight:
        y_forms = [f for f in c.y_forms if not (f == "list" and n_out > 1)
                   and not (f == "dict" and sw_form in ("single", "list"))]
        plan.y_form = choice(src, y_forms) if y_forms else "auto"
    b = _Builder(plan, src, c)
    b.group(_plan_inputs)
    v = c.vocabulary_version
    n_body = src.integer(0, 5 if v >= vocabulary.FORMS_SINCE["five_body_layers"]
                         else 4 if v >= vocabulary.FORMS_SINCE["four_body_layers"] else 3)
    for _ in range(n_body):
        b.group(_Builder.body_op)
    if c.add_loss and boolean(b.src, 0.28):
        base = b.pick()
        assert base is not None
        b.add(_LayerPlan("AddLossL2", [base.name], {"factor": src.integer(1, 128) / 64}, {}, {}), base.shape, base.mask)
    for out in outs:
        b.group(_Builder.head, out)
    b.prune()
    return plan


def _plan_inputs(b: _Builder) -> None:
    """Inputs and mask sources: a sequence (float, Masking or Embedding) and/or a vector input."""
    plan, c, src = b.plan, b.c, b.src
    any_temporal = any(o.temporal for o in plan.outputs)
    any_vector = any(not o.temporal for o in plan.outputs)
    n_seq = 0
    if any_temporal or boolean(src, 0.5):
        n_seq = 2 if boolean(src, 0.15) else 1
    for _ in range(n_seq):
        source = choice(src, ("float", "masking", "embedding_mask", "embedding"),
                        (0.25, 0.4, 0.25, 0.1) if c.masks else (0.7, 0.0, 0.0, 0.3))
        mask = _mask_pattern(src, plan.batch, plan.time, c) if source in ("masking", "embedding_mask") else None
        if source.startswith("embedding"):
            vocab = src.integer(2, 6)
            dim = src.integer(1, c.max_features)
            inp = {"kind": "int", "shape": (plan.time,), "mask": mask, "vocab": vocab, "mask_zero": mask is not None}
            plan.inputs.append(inp)
            inp["name"] = f"#in{len(plan.inputs) - 1}"
            regs = _regularizers(src, c, ("embeddings",))
            cfg = {"input_dim": vocab, "output_dim": dim, "mask_zero": mask is not None}
            b.add(_LayerPlan("Embedding", [inp["name"]], cfg, {"embeddings": (vocab, dim)}, regs), (plan.time, dim), mask)
        else:
            features = src.integer(1, c.max_features)
            mask_value = 0.0
            if source == "masking" and boolean(src, 0.3):
                mask_value = src.integer(-8, 8) / 4
            inp = {"kind": "float", "shape": (plan.time, features), "mask": mask, "mask_value": mask_value}
            plan.inputs.append(inp)
            inp["name"] = f"#in{len(plan.inputs) - 1}"
            if source == "masking":
                b.add(_LayerPlan("Masking", [inp["name"]], {"mask_value": mask_value}, {}, {}), (plan.time, features), mask)
            else:
                plan.pool.append(_Tensor(inp["name"], (plan.time, features), None))
    poolable = any(_can_pool(t) for t in plan.pool)
    if any_vector and (not poolable or n_seq == 0 or boolean(src, 0.25)):
        features = src.integer(1, c.max_features)
        plan.inputs.append({"kind": "float", "shape": (features,), "mask": None, "name": f"#in{len(plan.inputs)}"})
        plan.pool.append(_Tensor(plan.inputs[-1]["name"], (features,), None))
    if not plan.inputs:  # only possible with no outputs at all; keep the invariant explicit
        raise AssertionError("no inputs planned")


# --------------------------------------------------------------------------------------
# The data: weights, inputs, targets, sample weights, loss weights
# --------------------------------------------------------------------------------------


def _float_sequence(src: Source, batch: int, shape: tuple[int, ...], mask: np.ndarray | None, mask_value: float) -> np.ndarray:
    x = _values(src, (batch,) + shape, _middle)
    if mask is not None:
        for b_ in range(batch):
            for t in range(shape[0]):
                if not mask[b_, t]:
                    x[b_, t, :] = mask_value
                elif np.all(x[b_, t, :] == mask_value):  # a valid step must differ somewhere
                    x[b_, t, 0] = mask_value + 0.5
    return x


def _tokens(src: Source, batch: int, time: int, mask: np.ndarray | None, vocab: int) -> np.ndarray:
    def fill(s: Source) -> np.ndarray:
        ids = np.zeros((batch, time), dtype=np.int64)
        for b_ in range(batch):
            for t in range(time):
                if mask is None:
                    ids[b_, t] = s.integer(0, vocab - 1)
                elif mask[b_, t]:
                    ids[b_, t] = s.integer(1, vocab - 1)
        return ids

    return src.group(fill)


def _target(src: Source, out: _OutputPlan, batch: int, time: int) -> np.ndarray:
    entry = vocabulary.LOSSES[out.loss]
    shape = (batch, time, out.units) if out.temporal else (batch, out.units)
    kind = entry.target_kind
    if kind == "sparse":
        return np.array([src.integer(0, out.units - 1) for _ in range(int(np.prod(shape[:-1])))],
                        dtype=np.int64).reshape(shape[:-1])
    if kind == "real":
        y = _values(src, shape, _middle)
        if out.mask is not None:  # masked positions carry non-zero targets, so their loss is non-zero
            y[~out.mask] = np.where(y[~out.mask] == 0, 0.75, y[~out.mask])
        return y
    if kind == "nonzero_real":
        return _values(src, shape, lambda s: (lambda k: (abs(k) + 8) / 64 * (1 if k >= 0 else -1))(s.integer(-248, 248)))
    if kind == "nonnegative":
        return _values(src, shape, lambda s: s.integer(0, 1024) / 256)
    if kind == "probability":
        if boolean(src, 0.5):  # soft labels
            return _values(src, shape, lambda s: s.integer(0, 64) / 64)
        return _values(src, shape, lambda s: float(s.integer(0, 1)))
    if kind == "plus_minus_one":
        return _values(src, shape, lambda s: float(2 * s.integer(0, 1) - 1))
    if kind == "distribution":
        soft = boolean(src, 0.5)
        rows = int(np.prod(shape[:-1]))
        y = np.zeros((rows, out.units))
        for r in range(rows):
            if soft:
                counts = np.array([src.integer(0, 8) for _ in range(out.units)], dtype=np.float64)
                if counts.sum() == 0:
                    counts[0] = 1
                y[r] = (counts / counts.sum()).astype(np.float32)  # float32-exact; sums to 1 within 1e-7
            else:
                y[r, src.integer(0, out.units - 1)] = 1.0
        return y.reshape(shape)
    raise AssertionError(f"no target drawer for target_kind {kind!r}")


def _sample_weight(src: Source, shape: tuple[int, ...]) -> np.ndarray:
    return _not_all_equal(_values(src, shape, _weight_value))


def _fill(src: Source, plan: _Plan, names: dict[str, str], order: list[int], note: str,
          like: Case | None = None) -> Case:
    """The data of the Case. With `like` (a Case of the same plan), its loss weights and its
    sample weights' shapes are kept and only values are drawn: the result has `like`'s
    structure (spec.structure_key)."""
    batch, time = plan.batch, plan.time
    layers = []
    for lp in plan.layers:
        weights = {}
        for w, shape in lp.weight_shapes.items():
            draw_one = _WEIGHT_DRAWS.get(w) or (_large if lp.large else (_middle if w == "bias" else _unit))
            weights[w] = _values(src, shape, draw_one)
        layers.append(Layer(names[lp.name], lp.type, tuple(names[n] for n in lp.inbound), dict(lp.config),
                            weights, dict(lp.regularizers)))
    inputs = []
    for inp in plan.inputs:
        if inp["kind"] == "int":
            data = _tokens(src, batch, time, inp["mask"], inp["vocab"])
        elif len(inp["shape"]) == 2:
            data = _float_sequence(src, batch, inp["shape"], inp["mask"], inp["mask_value"])
        else:
            data = _values(src, (batch,) + inp["shape"], _middle)
        inputs.append(Input(names[inp["name"]], inp["kind"], data))

    outs = [plan.outputs[i] for i in order]
    targets = [src.group(_target, o, batch, time) for o in outs]

    def per_sample() -> tuple[int, ...]:  # (batch,), or from FORMS_SINCE["weight_columns"] on a column
        return (batch, 1) if plan.weight_columns and boolean(src, 0.5) else (batch,)

    def per_step() -> tuple[int, ...]:  # (batch, time); from FORMS_SINCE["timestep_trailing_axis"] on, (batch, time, 1)
        return (batch, time, 1) if plan.trailing_axis_weights and boolean(src, 0.45) else (batch, time)

    sws: list[np.ndarray | None] = [None] * len(outs)
    if plan.sample_weight_form == "single":
        if like is not None:
            shape = like.outputs[0].sample_weight.shape  # type: ignore[union-attr]
        else:
            shape = per_step() if plan.sample_weight_temporal else per_sample()
        shared = _sample_weight(src, shape)
        sws = [shared] * len(outs)
    elif plan.sample_weight_form in ("list", "dict") and like is not None:
        sws = [None if o.sample_weight is None else _sample_weight(src, o.sample_weight.shape) for o in like.outputs]
    elif plan.sample_weight_form in ("list", "dict"):
        sws = [_sample_weight(src, per_step() if o.temporal and boolean(src, 0.5) else per_sample()) for o in outs]
        if plan.partial_sample_weights:  # at least one output with weights and one without
            without = [boolean(src, 0.5) for _ in outs]
            if all(without) or not any(without):
                without[src.integer(0, len(outs) - 1)] = not without[0]
            sws = [None if w else sw for sw, w in zip(sws, without)]

    lws: list[float | int | None] = [None] * len(outs)
    if like is not None:
        lws = [o.loss_weight for o in like.outputs]
    elif plan.loss_weights_form != "omitted" and plan.int_loss_weights:
        lws = [int(w) for w in _not_all_equal(np.array([src.integer(0, 4) for _ in outs]), step=1)]
    elif plan.loss_weights_form != "omitted":
        lws = list(_not_all_equal(np.array([_weight_value(src, zero=0.2) for _ in outs])).tolist())

    outputs = tuple(
        Output(names[o.layer], y, o.loss, dict(o.options), lw, sw, o.loss_by)
        for o, y, lw, sw in zip(outs, targets, lws, sws)
    )
    class_weight = None
    if plan.class_weight:
        class_weight = _class_weight(src, outs[0], like)
    return Case(
        dtype=plan.dtype,
        inputs=tuple(inputs),
        layers=tuple(layers),
        outputs=outputs,
        loss_form=plan.loss_form,
        loss_weights_form=plan.loss_weights_form,
        sample_weight_form=plan.sample_weight_form,
        evaluate_batch_size=plan.evaluate_batch_size,
        note=note,
        y_form=plan.y_form,
        class_weight=class_weight,
    )


def _class_weight(src: Source, out: _OutputPlan, like: Case | None) -> dict[int, float]:
    """One weight per class id 0 .. C-1 (C: the output's units, or 2 for one unit, the ids a
    rounded 0/1 target gives), or `like`'s ids; a third of the time one id other than 0 left out
    (Keras 3 weighs a missing class 1.0, tf-keras wants the ids 0 .. n-1, keras 2.x every class of
    the data: rules class_weight_lookup)."""
    if like is not None and like.class_weight is not None:
        ids = sorted(like.class_weight)
    else:
        ids = list(range(max(out.units, 2)))
        if len(ids) > 1 and boolean(src, 0.33):
            ids.remove(src.integer(1, len(ids) - 1))
    return {i: w for i, w in zip(ids, _not_all_equal(np.array([_weight_value(src, zero=0.1) for _ in ids])).tolist())}


def _draw_structure(src: Source, c: Constraints) -> tuple[_Plan, dict[str, str], list[int]]:
    """The plan, the names of its inputs and layers, and the order of its outputs."""
    plan = src.group(_plan, c)
    used: set[str] = set()
    names = {inp["name"]: _identifier(src, used) for inp in plan.inputs}
    names.update({lp.name: _identifier(src, used) for lp in plan.layers})
    order = permutation(src, len(plan.outputs))
    return plan, names, order


def draw_case(src: Source, constraints: Constraints | None = None, note: str = "") -> Case:
    """Draw one valid Case from `src` (shape first, then data). Validates before returning."""
    c = constraints or Constraints()
    plan, names, order = _draw_structure(src, c)
    case = _fill(src, plan, names, order, note)
    spec.validate(case, "<drawn case>")
    return case


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------


def cases(**constraints: Any) -> st.SearchStrategy[Case]:
    """A Hypothesis strategy of valid Cases; keyword arguments are `Constraints` fields."""
    c = _constraints(**constraints)

    @st.composite
    def _cases(draw: Any) -> Case:
        case = draw_case(HypothesisSource(draw), c)
        # Printed with a failing example: the id and the JSON to save under cases/ and replay.
        note(f"case {case.id} (JSON below; save it as cases/found/{case.id}.json to replay)\n{spec.pretty(case)}")
        return case

    return _cases()


def corpus_case(seed: int, index: int, **constraints: Any) -> Case:
    """Case `index` of the fixed-seed corpus `seed` (independent of the other indices)."""
    c = _constraints(**constraints)
    return draw_case(RandomSource(f"harness-corpus:{seed}:{index}"), c, note=f"corpus seed={seed} index={index}"
                     + _version_note(c))


def _version_note(c: Constraints) -> str:
    """The vocabulary version in a corpus case's note, so that the case says how to draw it
    again; version 1's notes (and ids) predate versions and stay as they were."""
    return "" if c.vocabulary_version == 1 else f" vocabulary={c.vocabulary_version}"


def value_variant(case: Case, seed: int, structure: int, variant: int, **constraints: Any) -> Case:
    """`case` (corpus case `structure` of seed `seed`) with new values: weights, inputs,
    targets and sample weights drawn from their own seed, everything else kept, so the
    variant has the same spec.structure_key (one compiled model serves both)."""
    c = _constraints(**constraints)
    # the same plan, names and order as `case` (same seed, same draws)
    plan, names, order = _draw_structure(RandomSource(f"harness-corpus:{seed}:{structure}"), c)
    values = RandomSource(f"harness-corpus:{seed}:{structure}:values:{variant}")
    out = _fill(values, plan, names, order, f"corpus seed={seed} structure={structure} variant={variant}" + _version_note(c), like=case)
    spec.validate(out, "<drawn case>")
    if spec.structure_key(out) != spec.structure_key(case):
        raise AssertionError(f"value variant {variant} of corpus case {structure} changed the structure")
    return out


def corpus(seed: int, n: int, values_per_structure: int = 1, **constraints: Any) -> list[Case]:
    """The fixed-seed corpus: the same n Cases with the same ids in every environment.

    values_per_structure k > 1: structure s = i // k of the corpus (case s of the k = 1
    corpus) comes k times in a row: first itself, then k - 1 `value_variant`s, new values on
    the same model. One compiled model serves all k (harness.impls.paths reuses it), so a
    run explores values k times as cheaply as structures; k = 1 (the default) is n
    structures."""
    if values_per_structure < 1:
        raise ValueError(f"values_per_structure must be >= 1, got {values_per_structure}")
    k = values_per_structure
    out: list[Case] = []
    for i in range(n):
        structure, variant = divmod(i, k)
        if variant == 0:
            base = corpus_case(seed, structure, **constraints)
            out.append(base)
        else:
            out.append(value_variant(base, seed, structure, variant, **constraints))
    return out


__all__ = ["Constraints", "Source", "RandomSource", "HypothesisSource", "boolean", "choice", "permutation",
           "draw_case", "cases", "corpus", "corpus_case", "value_variant"]
