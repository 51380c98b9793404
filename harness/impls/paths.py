"""The loss paths of one Case on one eager-capable Keras (Keras 3, tf-keras, tf.keras 2.12-2.15).

`run_case(flavor, case)` reports, each as its own PathResult (harness.results): the direct
compute-loss call(s), and for every mode `test_on_batch`, `train_on_batch` (SGD, learning rate
0), `evaluate` and `fit` (one epoch, shuffle=False, both with batch_size=case.evaluate_batch_size,
so the last batch is uneven when the batch does not divide), plus the predictions. It never
raises for a problem with the case.

A `Flavor` holds what differs between implementations: the keras module, the modes (each the
`compile` keyword arguments, or the reason it is unsupported), the compute-loss variants,
whether training is possible, the model reuse policy (`REUSE`: per structure for the adapters,
per Case under a distribution strategy, per call for the naive yardstick harness.bench_naive,
so that the benchmark compares the same calls by construction) and, for a distributed run,
the scope every call runs in and the distributed step that replaces the gradient hook
(harness.impls.distributed). Nothing else about an implementation lives here.

Terms (results.py): "output/<name>" is the `<name>_loss` entry of the logs the path returns
(Keras 3 CompileLoss and tf-keras LossesContainer both log the *unweighted* per-output loss
under that key when there are >= 2 outputs); "regularization" is `sum(model.losses)` after one
forward pass `model(x)` on the whole batch, attached to the whole-batch paths (compute_loss,
test_on_batch, train_on_batch), not to evaluate/fit (whose logs average over batches).

Models (`_Models`, harness.impls.build): one uncompiled model (predictions, the forward pass) and
one model per mode, each built and compiled once and kept while Cases of the same structure
(spec.structure_key) follow each other, so a value variant (harness.strategies.value_variant)
runs the step functions Keras already traced and compiled. Weights are re-assigned from the
Case, and the optimizer's and metrics' variables reset, before every path, so a path that moved
them (a finding: learning rate 0 must not) cannot leak into the next path or Case; a model on
which a call raised is dropped and the next path builds a new one (`_Models.discard`): a
verdict depends on the Case, the implementation and the versions, never on what ran before.

Gradients (results.GradientResult), after the paths: the flavor's `gradient` hook returns the
loss its train step differentiates and one gradient per `model.trainable_weights` entry,
obtained as that train step obtains it (the hook lives in the adapter and cites the source);
they are keyed "<layer name>/<weight short name>" by walking `model.layers` (`trainable_keys`).
Then one `train_on_batch` of the flavor's `update_mode` model with its SGD learning rate set to
LEARNING_RATE (`sgd_step`): `updates` = weights after - weights before.
"""

from __future__ import annotations

import contextlib
import platform
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager

import numpy as np

from harness import spec
from harness.impls import VERSION_KEYS, build, installed_version
from harness.results import KERAS_FILE, TRAIN_PATHS, DistributionResult, GradientResult, ImplResult, PathResult
from harness.spec import Case


# The learning rate of the one SGD step whose update is reported (GradientResult.updates). A
# power of two: `lr * g` is exact in binary floating point, so the update is -LEARNING_RATE * g
# up to the one rounding of `w - lr * g`.
LEARNING_RATE = 0.25
MODE_PATHS = ("test_on_batch", "train_on_batch", "evaluate", "fit", "test_on_batch_loop")


@dataclass(frozen=True)
class Mode:
    name: str  # "eager" | "function" | "compiled" | "jit"
    compile_kwargs: dict[str, Any] = field(default_factory=dict)  # run_eagerly / jit_compile
    unsupported: str | None = None  # reason, when this implementation has no such mode


# A compute-loss variant, called through the flavor's `Calls.compute_loss` (eager: (model, x, y,
# y_pred, sample_weight) -> scalar tensor); or a string: the reason the implementation reports no
# such call.
ComputeLoss = Callable[..., Any] | str

# The train step's gradient: (model, x, y, sample_weight) -> (the loss it differentiates, one
# gradient per entry of `model.trainable_weights`, in that order; None where it has none).
Gradient = Callable[[Any, Any, Any, Any], tuple[Any, list[Any]]]

# A distributed train step on its own model: (case, x, y, sample_weight) -> (how the batch was
# split and each replica's loss, the gradients the optimizer receives); never raises.
Distribute = Callable[[Case, Any, Any, Any], tuple[DistributionResult, GradientResult]]

# (keras, model or None, x, y, sample_weight, class_weight) -> the sample weight the train step
# receives for `class_weight`, through the lineage's own conversion (harness.impls.class_weighting).
ClassWeighting = Callable[[Any, Any, Any, Any, Any, dict], Any]


class NoTrainStep(Exception):
    """The lineage refuses the call before any train step runs (its message: why, and the source)."""


class Calls:
    """The small protocol through which the runner talks to one kind of Keras: what it cannot
    run, the targets it takes, compile for a mode, reset a kept model, the predictions and the
    regularization term, a compute-loss variant, and the call of one path (its logs). This class
    is the eager Model API of Keras 3, tf-keras and tf.keras 2.12-2.15; TF1 graph mode (keras
    2.x, training_v1) is harness.impls.keras2_graph.GraphCalls. The runner (`run_case`), its
    model reuse, the gradient and the SGD step are the same for both."""

    # After a call raised, is every model of the Case lost with it? (TF1 graph mode: a failed
    # call can leave the graph's functions broken for every later call in that graph.)
    error_breaks_session = False

    def unsupported(self, keras: Any, case: Case) -> str | None:
        """Why nothing of `case` can run here (a loss class this release lacks), or None."""
        return build.missing_classes(keras, case)

    def targets(self, case: Case) -> Any:
        return build.y_argument(case)

    def check(self, model: Any, case: Case) -> str | None:
        """A note on the built model, or raises when it is not the model this flavor must run."""
        return None

    def compile(self, keras: Any, model: Any, case: Case, mode: Mode, learning_rate: float) -> None:
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
            loss=build.loss_argument(keras, case),
            loss_weights=build.loss_weights_argument(case),
            **mode.compile_kwargs,
        )

    def reset(self, model: Any) -> None:
        """A kept model's optimizer and metrics back to a fresh compile's (its weights are set apart)."""
        reset_optimizer(model)
        # a path starts from fresh metrics: Keras 3 before 3.15 (and on NumPy) never resets them itself
        # (rule on_batch_metrics), and test_on_batch_loop measures what its calls do from there
        model.reset_metrics()

    def predictions(self, model: Any, x: Any, case: Case) -> dict[str, Any]:
        return predictions(model, x, case)

    def regularization(self, model: Any, x: Any) -> float | None:
        """`sum(model.losses)` after one forward pass `model(x, training=True)` on the whole batch
        (None: this Keras reports it with compute_loss only)."""
        model(x, training=True)
        return float(sum(to_float(v) for v in model.losses))

    def compute_loss(self, call: Callable[..., Any], model: Any, x: Any, y: Any, sw: Any) -> tuple[float, dict[str, float]]:
        """(the total, terms beside the whole-batch ones) of one compute-loss variant. y_pred comes
        from model(x, training=True), as in train_step, which also refills model.losses."""
        return to_float(call(model, x, y, model(x, training=True), sw)), {}

    def logs(self, path: str, model: Any, x: Any, y: Any, sw: Any, batch_size: int,
             class_weight: dict[int, float] | None = None) -> dict[str, Any]:
        """The logs of one path: {"loss": ..., "<output>_loss": ...}; for fit, the History's lists.
        `class_weight` goes to the calls that take it (train_on_batch, fit), when the case has one."""
        cw = class_weight_kwargs(class_weight)
        if path == "test_on_batch":
            return model.test_on_batch(x, y, sample_weight=sw, return_dict=True)
        if path == "evaluate":
            return model.evaluate(x, y, sample_weight=sw, batch_size=batch_size, verbose=0, return_dict=True)
        if path == "train_on_batch":
            return model.train_on_batch(x, y, sample_weight=sw, return_dict=True, **cw)
        if path == "fit":
            return model.fit(x, y, sample_weight=sw, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                             **cw).history
        raise ValueError(f"unknown path {path!r}")


EAGER = Calls()


# Model reuse: "structure" keeps one model per mode while Cases of the same structure follow each
# other; "case" builds them anew for every Case; "path" builds a new model for every call (the
# naive yardstick of harness.bench). Where models are not kept across Cases, the SGD step is taken
# on a new model compiled at LEARNING_RATE (`sgd_update`), as a user would.
REUSE = ("structure", "case", "path")


@dataclass(frozen=True)
class Flavor:
    impl: str
    keras: Any
    modes: tuple[Mode, ...]
    compute_loss: tuple[tuple[str, ComputeLoss], ...]  # (mode name, call)
    train_unsupported: str | None = None  # reason, when the implementation cannot train
    clear_session: bool = True
    gradient: Gradient | None = None  # None: no GradientResult (unless gradient_unsupported)
    gradient_how: str = ""  # one sentence: the mechanism and the source it mirrors
    gradient_unsupported: str | None = None  # reason, when the implementation cannot differentiate
    update_mode: str = ""  # the mode (a name in `modes`) whose train_on_batch applies the SGD step
    reuse: str = "structure"  # one of REUSE
    scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext  # entered around every call but begin
    distribute: Distribute | None = None  # in place of `gradient`: a distributed step (harness.impls.distributed)
    calls: Calls = field(default_factory=lambda: EAGER)  # how the runner talks to this Keras
    # the sample weight a train step receives for class_weight (it raises where the lineage refuses;
    # NoTrainStep: no step runs at all); None: the gradient of a class-weighted case is unsupported
    class_weighting: ClassWeighting | None = None


# --------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------


def installed_versions(backend: str) -> dict[str, str]:
    """Exact installed distribution versions (VERSION_KEYS of harness.impls); "" when absent."""
    versions = {k: installed_version(k) for k in VERSION_KEYS if k not in ("python", "backend")}
    return {"python": platform.python_version(), **versions, "backend": backend}


# --------------------------------------------------------------------------------------
# The Keras clock (harness.bench: the harness's overhead is a case's time outside Keras)
# --------------------------------------------------------------------------------------


class KerasClock:
    """Seconds spent inside Keras calls (build, compile, the path calls, predict, get/set
    weights) since `reset()`; `with CLOCK:` around each such call. Costs ~1 us a call."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def reset(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        self.seconds += time.perf_counter() - self._started


CLOCK = KerasClock()


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def to_float(value: Any) -> float:
    """A scalar tensor of any backend (or a Python/NumPy number) as a Python float."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):
        value = value.numpy()
    return float(np.asarray(value, dtype=np.float64).reshape(()))


def to_array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value, dtype=np.float64)


def error_result(path: str, mode: str, exc: BaseException) -> PathResult:
    """A path that raised: the exception's type, its message (cut to ~1000 characters) and the
    innermost frame, which compare.predicts_error matches against the reference's note."""
    return PathResult(path=path, mode=mode, status="error", error_type=type(exc).__name__,
                      error_message=error_message(exc))


def error_message(exc: BaseException) -> str:
    """The message of `error_result`: at most ~1000 characters, the innermost frame appended.

    A long message keeps its first 600 and last 400 characters (TensorFlow's "Graph execution
    error" lists the Python frames that defined the failing op, innermost last), followed by
    every Keras file the whole message names, which compare.predicts_error matches: where the
    cut falls depends on the lengths of paths and of TensorFlow's per-process op counters, so
    without that list the same error was predicted in one worker and not in another."""
    message = f"{exc}".strip() or repr(exc)
    if len(message) > 1000:
        named = sorted(set(KERAS_FILE.findall(message)))
        message = message[:600] + " ... " + message[-400:]
        if named:
            message += f" [Keras files in the whole message: {', '.join(named)}]"
    # The innermost frame helps attribute the error to a Keras source line.
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        message += f" [at {last.filename.split('site-packages/')[-1]}:{last.lineno} in {last.name}]"
    return message


def predictions(model: Any, x: Any, case: Case) -> dict[str, Any]:
    """Output name -> the model's output on the whole batch (nested float64 lists), from one
    call `model(x, training=False)`: the forward pass `model.predict` runs on one batch, without
    the predict function it traces and the data pipeline it builds on every call (no layer of
    harness.vocabulary behaves differently under predict: no dropout, no batch statistics)."""
    preds = model(x, training=False)
    preds = preds if isinstance(preds, (list, tuple)) else [preds]
    return {o.name: to_array(p).tolist() for o, p in zip(case.outputs, preds)}


def _output_terms(logs: dict[str, Any], case: Case) -> dict[str, float]:
    if len(case.outputs) < 2:
        return {}
    terms = {}
    for out in case.outputs:
        key = f"{out.name}_loss"
        if key in logs:
            value = logs[key]
            terms[f"output/{out.name}"] = to_float(value[-1] if isinstance(value, list) else value)
    return terms


def _logs_total(logs: Any) -> float:
    if isinstance(logs, dict):
        return to_float(logs["loss"])
    if isinstance(logs, (list, tuple)):
        return to_float(logs[0])
    return to_float(logs)


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


class _NotApplicable(Exception):
    """The implementation silently replaced the requested mode: the path is unsupported."""


class _Models:
    """The models of one structure (spec.structure_key), one per mode, kept across Cases
    (the flavor's `reuse` "structure"; "case": dropped at every Case; "path": a new one per `get`).

    `get(mode)` returns the model compiled for `mode` (None: an uncompiled one, for the
    predictions and the forward pass) with every weight re-assigned from the current Case; it
    builds and compiles the model the first time only. A Case with the same structure as the
    last one (harness.strategies.value_variant) is served by the same models and so by the step
    functions Keras traced and compiled for them: the saving `bench` measures. `begin(case)` drops every model (and clears the Keras session) when the
    structure changes. A model is only stored once built and compiled without error.

    A path that raised loses its model (`discard`): the next path of that mode, in this Case
    or the next one, gets a model built and compiled anew. Keras 3 leaves a trainer unusable
    after a failed call (JAX: `TypeError: 'NoneType' object is not callable` in
    keras/src/backend/common/variables.py on the next call; TensorFlow: "Attr 'Toutput_types'
    of 'OptionalFromValue' Op passed list of length 0" from the next evaluate after a failed
    test_on_batch), so a reused model would blame the next path's error on Keras and make a
    verdict depend on what ran before. A path that returned can change the weights, the
    optimizer's variables and the metrics' variables, and `get` sets all three back (weights
    from the Case, `reset_optimizer`, `reset_metrics`) before every path. bench compares every
    value with fresh models; tests/test_model_reuse.py compares reused with fresh models, and
    tests/test_order_independence.py runs one corpus in two orders and with a fresh worker per
    case and compares every verdict.
    """

    def __init__(self, flavor: Flavor):
        self.flavor = flavor
        self.case: Case | None = None
        self._key: str | None = None
        self._models: dict[str | None, Any] = {}

    def begin(self, case: Case) -> None:
        """Serve `case`; clears the session first unless it has the last Case's structure."""
        key = spec.structure_key(case)
        if key != self._key or not self._models or self.flavor.reuse != "structure":
            self._models.clear()
            self._key = key
            with CLOCK:
                if self.flavor.clear_session:
                    self.flavor.keras.backend.clear_session()
        self.case = case
        with CLOCK:
            build.set_float_dtype(self.flavor.keras, case.dtype)

    def get(self, mode: Mode | None = None) -> Any:
        name = None if mode is None else mode.name
        assert self.case is not None
        with CLOCK:
            model = None if self.flavor.reuse == "path" else self._models.get(name)
            if model is None:
                model = build.build_model(self.flavor.keras, self.case)
                if mode is not None:
                    _compile(self.flavor, model, self.case, mode)
                self._models[name] = model
            else:
                build.assign_weights(model, self.case)
                if mode is not None:
                    self.flavor.calls.reset(model)
        if mode is not None and mode.compile_kwargs.get("jit_compile") and not getattr(model, "jit_compile", True):
            # Keras 3 Trainer.jit_compile setter: model_supports_jit False -> warns, runs without.
            raise _NotApplicable(f"jit_compile=True asked, but the model runs with jit_compile="
                                 f"{model.jit_compile} (model_supports_jit is False)")
        return model

    def discard(self, mode: Mode | None = None) -> None:
        """Forget the model of `mode` (None: the uncompiled one) after a call on it raised; every
        model, and the session, where an error breaks the session (Calls.error_breaks_session)."""
        if self.flavor.calls.error_breaks_session:
            self._models.clear()
            with CLOCK:
                self.flavor.keras.backend.clear_session()
        else:
            self._models.pop(None if mode is None else mode.name, None)


def reset_optimizer(model: Any) -> None:
    """Every variable of the model's optimizer back to zero, as a freshly compiled SGD(0.0)
    starts: iterations 0, slots created as zeros, and the learning rate, which is 0.0 between
    steps anyway (`sgd_step` sets it for one step only).

    Needed, not cosmetic: tf_keras's SGD creates a momentum slot per weight even with
    momentum=0 and updates it as `m = -lr * g + momentum * m` (tf_keras/src/optimizers/sgd.py
    SGD.build / update_step); one non-finite gradient (the 0 x inf of a fully masked batch)
    makes `m` NaN, `0 * NaN` keeps it NaN, and every later step of that optimizer writes NaN
    into the weights, even at learning rate 0. Found by `bench` on value variants."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    for variable in optimizer.variables:
        dtype = getattr(variable.dtype, "as_numpy_dtype", variable.dtype)  # tf.DType or a dtype name
        variable.assign(np.zeros(tuple(int(d) for d in variable.shape), dtype=dtype))


# One per worker process and flavor: the models of the last structure it ran.
_MODELS: dict[str, _Models] = {}


def _compile(flavor: Flavor, model: Any, case: Case, mode: Mode, learning_rate: float = 0.0) -> None:
    flavor.calls.compile(flavor.keras, model, case, mode, learning_rate)


def _unsupported(flavor: Flavor, mode: Mode, path: str) -> str | None:
    """Why this implementation has no such (path, mode), or None when it has."""
    if mode.unsupported is not None:
        return mode.unsupported
    if path in TRAIN_PATHS:
        return flavor.train_unsupported
    return None


def _holder(flavor: Flavor) -> _Models:
    """The worker's models for `flavor.impl`; new ones when the flavor (its reuse policy) changed."""
    holder = _MODELS.get(flavor.impl)
    if holder is None or holder.flavor is not flavor:
        holder = _MODELS[flavor.impl] = _Models(flavor)
    return holder


def _every_path(flavor: Flavor, outcome: Callable[[str, str], PathResult]) -> list[PathResult]:
    """One PathResult per compute-loss variant and per (mode, path): a variant or (path, mode)
    this implementation lacks is "unsupported" with its reason, every other one `outcome(path, mode)`."""
    results = [PathResult("compute_loss", variant, "unsupported", reason=call) if isinstance(call, str)
               else outcome("compute_loss", variant) for variant, call in flavor.compute_loss]
    for mode in flavor.modes:
        for path in MODE_PATHS:
            reason = _unsupported(flavor, mode, path)
            results.append(outcome(path, mode.name) if reason is None
                           else PathResult(path, mode.name, "unsupported", reason=reason))
    return results


def run_case(flavor: Flavor, case: Case) -> ImplResult:
    """Every path of `case` on this implementation. Never raises for a problem with the case."""
    started = time.perf_counter()
    CLOCK.reset()
    result = ImplResult(case_id=case.id, impl=flavor.impl)
    missing = flavor.calls.unsupported(flavor.keras, case)
    if missing is not None:  # e.g. a loss this release lacks: nothing of the case can run
        result.paths = [PathResult("compute_loss", variant, "unsupported", reason=call if isinstance(call, str) else missing)
                        for variant, call in flavor.compute_loss]
        result.paths += [PathResult(path, mode.name, "unsupported", reason=missing)
                         for mode in flavor.modes for path in MODE_PATHS]
        result.gradients = GradientResult("unsupported", how=flavor.gradient_how, reason=missing)
        # nor the distributed step: its model needs the same loss (it raised NotImplementedError
        # from build.make_loss, the harness's own frame: a harness-error)
    else:
        holder = _holder(flavor)
        try:
            holder.begin(case)
        except Exception as exc:
            _build_failed(flavor, case, result, exc)
        else:
            with flavor.scope():
                _run_paths(flavor, holder, case, result)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _distribute_anyway(flavor: Flavor, case: Case, result: ImplResult) -> None:
    """A distributed step builds its own model: it runs, and reports the split and its own
    error, also when no path could run."""
    if flavor.distribute is not None:
        with flavor.scope():
            result.distribution, result.gradients = flavor.distribute(
                case, build.x_argument(case), build.y_argument(case), build.sample_weight_argument(case))


def _build_failed(flavor: Flavor, case: Case, result: ImplResult, exc: Exception) -> None:
    """The model cannot be built: every path shares the error."""
    result.paths = _every_path(flavor, lambda path, mode: error_result(path, mode, exc))
    unavailable, result.gradients = gradient_unavailable(flavor)
    if not unavailable:
        result.gradients = GradientResult("error", how=flavor.gradient_how, error_type=type(exc).__name__,
                                          error_message=error_message(exc))
    result.message = f"model build failed: {type(exc).__name__}: {exc}"
    _distribute_anyway(flavor, case, result)


def _run_paths(flavor: Flavor, holder: _Models, case: Case, result: ImplResult) -> None:
    notes: list[str] = []
    first_mode = next((m for m in flavor.modes if m.unsupported is None), None)
    try:
        model = holder.get()
        checked = flavor.calls.check(model, case)
    except Exception as exc:
        _build_failed(flavor, case, result, exc)
        return
    if checked:
        notes.append(checked)

    absent = build.absent_layers(model, case)
    if absent:
        notes.append(f"layers not in the model (no output depends on them): {absent}")
    names = build.output_names(model)
    if names != case.output_names():
        notes.append(f"model.output_names {names} != case output names {case.output_names()}")

    x, y, sw = build.x_argument(case), flavor.calls.targets(case), build.sample_weight_argument(case)

    # Predictions, and the regularization term from one forward pass on the whole batch.
    try:
        with CLOCK:
            result.predictions = flavor.calls.predictions(model, x, case)
    except Exception as exc:
        holder.discard()
        notes.append(f"predict failed: {type(exc).__name__}: {exc}")
    regularization: float | None = None
    try:
        model = holder.get()
        with CLOCK:
            regularization = flavor.calls.regularization(model, x)
    except Exception as exc:
        holder.discard()
        notes.append(f"forward pass for model.losses failed: {type(exc).__name__}: {exc}")
    whole_batch_terms = {} if regularization is None else {"regularization": regularization}
    calls = dict(flavor.compute_loss)
    modes = {m.name: m for m in flavor.modes}

    def outcome(path: str, mode_name: str) -> PathResult:
        # compute_loss needs a compiled model (the loss container comes from compile); the mode
        # does not matter for a direct call, so the first supported mode's model is used.
        mode = first_mode if path == "compute_loss" else modes[mode_name]
        try:
            model = holder.get(mode)
            if path != "compute_loss":
                return _run_path(flavor.calls, path, mode_name, model, case, x, y, sw, whole_batch_terms)
            with CLOCK:
                total, terms = flavor.calls.compute_loss(calls[mode_name], model, x, y, sw)  # type: ignore[arg-type]
            return PathResult("compute_loss", mode_name, "ok", total=total, terms={**whole_batch_terms, **terms})
        except _NotApplicable as exc:
            if path != "compute_loss":  # the mode was replaced; a direct call has no mode to lose
                return PathResult(path, mode_name, "unsupported", reason=str(exc))
            holder.discard(mode)
            return error_result(path, mode_name, exc)
        except Exception as exc:
            holder.discard(mode)
            return error_result(path, mode_name, exc)

    result.paths = _every_path(flavor, outcome)
    result.distribution, result.gradients = _gradients(flavor, holder, case, x, y, sw, first_mode, notes)
    result.message = "; ".join(notes) or None


def _run_path(calls: Calls, path: str, mode: str, model: Any, case: Case, x: Any, y: Any, sw: Any,
              whole_batch_terms: dict[str, float]) -> PathResult:
    """One of MODE_PATHS: the total and per-output terms from its logs (the whole-batch terms on
    test_on_batch and train_on_batch), and for the train paths whether the weights moved."""
    train = path in TRAIN_PATHS
    with CLOCK:
        # the trainable weights only: a training step moves a layer's own state (BatchNormalization's
        # moving statistics) whatever the learning rate
        before = weights_by_key(model) if train else None
        if path == "test_on_batch_loop":
            logs = on_batch_loop(calls, model, case, x, y, sw)
        else:
            logs = calls.logs(path, model, x, y, sw, case.evaluate_batch_size,
                              class_weight=class_weight_argument(case) if train else None)
    total = to_float(logs["loss"][-1]) if path == "fit" else _logs_total(logs)
    terms = {**_output_terms(logs, case), **(whole_batch_terms if path in ("test_on_batch", "train_on_batch") else {})}
    if not train:
        return PathResult(path, mode, "ok", total=total, terms=terms)
    with CLOCK:
        moved = not build.weights_equal(before, weights_by_key(model))  # type: ignore[arg-type]
    return PathResult(path, mode, "ok", total=total, terms=terms, weights_moved=moved)


def class_weight_argument(case: Case) -> dict[int, float] | None:
    """`class_weight=` of fit and train_on_batch: the case's dict (int class id -> float), or None."""
    return None if case.class_weight is None else {int(k): float(v) for k, v in case.class_weight.items()}


def on_batch_loop(calls: Calls, model: Any, case: Case, x: Any, y: Any, sw: Any) -> dict[str, Any]:
    """Path test_on_batch_loop: test_on_batch on each batch of case.evaluate_batch_size rows in
    turn (evaluate's batches), as a hand-written loop calls it, nothing reset in between; the
    logs of the last call (rule on_batch_metrics: its batch's loss, or every call's averaged)."""
    logs: dict[str, Any] = {}
    for start in range(0, case.batch_size, case.evaluate_batch_size):
        rows = slice(start, start + case.evaluate_batch_size)
        logs = calls.logs("test_on_batch", model, rows_of(x, rows), rows_of(y, rows), rows_of(sw, rows),
                          case.evaluate_batch_size)
    return logs


def rows_of(value: Any, rows: slice) -> Any:
    """The `rows` of every array in an argument structure (x, y or sample_weight: an array, a
    list or dict of arrays, or None), along the leading (batch) axis."""
    return build.map_arrays(lambda array: array[rows], value)


# --------------------------------------------------------------------------------------
# Gradients and the SGD update (results.GradientResult)
# --------------------------------------------------------------------------------------


def trainable_keys(model: Any) -> list[tuple[str, Any]]:
    """("<layer name>/<weight short name>", variable) for every trainable weight, walking
    `model.layers` and each layer's `trainable_weights`: the names of Case.layers[*].weights."""
    out = []
    for layer in model.layers:
        names = {id(v): name for v, name in zip(layer.weights, build.case_weight_names(layer))}
        out.extend((f"{layer.name}/{names[id(v)]}", v) for v in layer.trainable_weights)
    return out


def keyed_values(model: Any, variables: list[Any], values: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """`values` (one per entry of `variables`, the weights a train step differentiates) as
    nested float64 lists keyed by `trainable_keys`. A None value (no gradient: the optimizer
    skips that weight) becomes zeros; such keys are returned second. Raises ValueError when the
    differentiated weights and the layers' trainable weights are not the same set."""
    by_id = {id(v): value for v, value in zip(variables, values)}
    keyed: dict[str, Any] = {}
    missing: list[str] = []
    for key, variable in trainable_keys(model):
        if key in keyed:
            raise ValueError(f"two trainable weights are both named {key!r}")
        if id(variable) not in by_id:
            raise ValueError(f"{key} is a trainable weight of its layer but not among the weights the train step differentiates")
        value = by_id[id(variable)]
        if value is None:
            missing.append(key)
            value = np.zeros(tuple(int(d) for d in variable.shape))
        keyed[key] = to_array(value).tolist()
    if len(keyed) != len(by_id):
        raise ValueError(f"the train step differentiates {len(by_id)} weights, the layers hold {len(keyed)}")
    return keyed, missing


def weights_by_key(model: Any) -> dict[str, np.ndarray]:
    """Every trainable weight's value (float64 copy) keyed as `trainable_keys`; through
    `layer.get_weights()`, which every version (graph mode too) answers in `layer.weights` order."""
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        trainable = {id(v) for v in layer.trainable_weights}
        for variable, name, value in zip(layer.weights, build.case_weight_names(layer), layer.get_weights()):
            if id(variable) in trainable:
                out[f"{layer.name}/{name}"] = np.array(value, dtype=np.float64)
    return out


def weight_updates(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> dict[str, Any]:
    """after - before per key (float64, exact for float32 weights of like magnitude), nested lists."""
    if set(before) != set(after):
        raise ValueError(f"weights before {sorted(before)} and after {sorted(after)} the step differ")
    return {k: (after[k] - before[k]).tolist() for k in before}


def gradient_unavailable(flavor: Flavor) -> tuple[bool, GradientResult | None]:
    """(True, what to report) when the flavor computes no gradient: an "unsupported" result
    with its reason, or None for a flavor without a gradient hook; (False, None) otherwise."""
    if flavor.gradient_unsupported is not None:
        return True, GradientResult("unsupported", how=flavor.gradient_how, reason=flavor.gradient_unsupported)
    return flavor.gradient is None and flavor.distribute is None, None


def differentiate(flavor: Flavor, model: Any, x: Any, y: Any, sw: Any) -> tuple[float, dict[str, Any], list[str]]:
    """(the loss the train step differentiates, its gradients keyed as `trainable_keys`, the
    keys it had no gradient for) through the flavor's gradient hook, on a compiled model."""
    loss, grads = flavor.gradient(model, x, y, sw)  # type: ignore[misc]
    gradients, missing = keyed_values(model, list(model.trainable_weights), list(grads))
    return to_float(loss), gradients, missing


def sgd_update(flavor: Flavor, model: Any, case: Case, x: Any, y: Any, sw: Any) -> dict[str, Any]:
    """Compile `model` (weights as the caller set them) with SGD(LEARNING_RATE) in the flavor's
    update_mode, apply one train_on_batch, and return new - old weights keyed as `trainable_keys`."""
    mode = next(m for m in flavor.modes if m.name == flavor.update_mode)
    if mode.unsupported is not None:
        raise RuntimeError(f"mode {mode.name!r} is unsupported: {mode.unsupported}")
    _compile(flavor, model, case, mode, learning_rate=LEARNING_RATE)
    before = weights_by_key(model)
    model.train_on_batch(x, y, sample_weight=sw, **class_weight_kwargs(class_weight_argument(case)))
    return weight_updates(before, weights_by_key(model))


def class_weight_kwargs(class_weight: dict[int, float] | None) -> dict[str, Any]:
    """The keyword of train_on_batch and fit: nothing without class weights (what every release takes)."""
    return {} if class_weight is None else {"class_weight": class_weight}


def _gradients(flavor: Flavor, holder: _Models, case: Case, x: Any, y: Any, sw: Any, first_mode: Mode | None,
               notes: list[str]) -> tuple[DistributionResult | None, GradientResult | None]:
    """The flavor's gradients (on the first mode's model, or its distributed step), then one
    SGD(LEARNING_RATE) train_on_batch of the update_mode: `sgd_step` on the kept model, or
    `sgd_update` on a new one when models are not kept across Cases. Never raises."""
    unavailable, reported = gradient_unavailable(flavor)
    if unavailable:
        return None, reported
    distribution = None
    if flavor.distribute is not None:
        step_sw, refused = _train_step_weights(flavor, None, case, x, y, sw)
        if refused is not None:
            return None, refused
        distribution, result = flavor.distribute(case, x, y, step_sw)
        if result.status != "ok":
            return distribution, result
        result.learning_rate, result.update_mode = LEARNING_RATE, flavor.update_mode
    else:
        try:
            model = holder.get(first_mode)  # compiled (compute_loss needs the loss container), weights from the Case
            step_sw, refused = _train_step_weights(flavor, model, case, x, y, sw)
            if refused is not None:
                return None, refused
            with CLOCK:
                total, gradients, missing = differentiate(flavor, model, x, y, step_sw)
        except Exception as exc:
            holder.discard(first_mode)
            return None, GradientResult("error", how=flavor.gradient_how, error_type=type(exc).__name__,
                                        error_message=error_message(exc))
        if missing:
            notes.append(f"no gradient (None; reported as zeros) for {missing}")
        result = GradientResult("ok", how=flavor.gradient_how, loss=total, gradients=gradients,
                                learning_rate=LEARNING_RATE, update_mode=flavor.update_mode)
    mode = next(m for m in flavor.modes if m.name == flavor.update_mode)
    try:
        if flavor.reuse != "structure":
            result.updates = sgd_update(flavor, build.build_model(flavor.keras, case), case, x, y, sw)
        else:
            if mode.unsupported is not None:
                raise RuntimeError(f"mode {mode.name!r} is unsupported: {mode.unsupported}")
            model = holder.get(mode)  # weights from the Case
            with CLOCK:
                result.updates = sgd_step(model, x, y, sw, class_weight_argument(case))
    except Exception as exc:
        holder.discard(mode)
        result.update_error = f"{type(exc).__name__}: {error_message(exc)}"
    return distribution, result


def _train_step_weights(flavor: Flavor, model: Any, case: Case, x: Any, y: Any,
                        sw: Any) -> tuple[Any, GradientResult | None]:
    """(the sample weight the train step receives, None), or (None, what to report instead):
    without class_weight the case's own; with it, the lineage's conversion (flavor.class_weighting)."""
    if case.class_weight is None:
        return sw, None
    if flavor.class_weighting is None:
        return None, GradientResult("unsupported", how=flavor.gradient_how,
                                    reason=f"{flavor.impl} has no hook for the sample weight its train step makes of class_weight")
    try:
        with CLOCK:
            return flavor.class_weighting(flavor.keras, model, x, y, sw, class_weight_argument(case)), None
    except NoTrainStep as exc:
        return None, GradientResult("unsupported", how=flavor.gradient_how, reason=str(exc))
    except Exception as exc:  # the lineage's own conversion refused the class weights
        return None, GradientResult("error", how=flavor.gradient_how, error_type=type(exc).__name__,
                                    error_message=error_message(exc))


def sgd_step(model: Any, x: Any, y: Any, sw: Any, class_weight: dict[int, float] | None = None) -> dict[str, Any]:
    """One train_on_batch at LEARNING_RATE on a model compiled with SGD(0.0) (`_compile`),
    then the learning rate back to 0; new - old weights keyed as `trainable_keys`.

    The learning rate is set through the optimizer's `learning_rate` setter, which assigns the
    optimizer's learning-rate variable (keras/src/optimizers/base_optimizer.py and
    tf_keras/src/optimizers/optimizer.py, `learning_rate.setter`: `self._learning_rate.assign`):
    the train step Keras traced for the zero-rate paths reads that variable, so this step runs
    the same compiled program, not a new one. SGD without momentum keeps no other state
    (its `iterations` count does not enter the update), so the update equals a freshly
    compiled SGD(LEARNING_RATE) step: bench checks it against `sgd_update`, which does that."""
    before = weights_by_key(model)
    model.optimizer.learning_rate = LEARNING_RATE
    try:
        model.train_on_batch(x, y, sample_weight=sw, **class_weight_kwargs(class_weight))
    finally:
        model.optimizer.learning_rate = 0.0
    return weight_updates(before, weights_by_key(model))
