"""The yardstick of `python -m harness bench`: every path of a Case on a fresh model, plain Keras.

What a person would write without the harness: for each (path, mode) that the harness runs
(harness.impls.paths, same Flavor: same modes, same compute-loss variants, same unsupported
reasons), build a new model from the Case, compile it for that mode, make the one call, read the
number. The predictions come from one more fresh model (`model(x)`, as paths.predictions).
Values must equal the harness's (harness.bench checks it), so the numbers are read exactly as
paths.py reads them: the total, the per-output terms of the logs, the regularization term
(`sum(model.losses)` after `model(x, training=True)`, on the whole-batch paths), whether a
zero-learning-rate step moved a weight; the gradient (the flavor's own mechanism) on one more
fresh model and the SGD(0.25) step's update on another, compiled with that learning rate
(paths.sgd_update; the harness sets the rate on a model it compiled already: paths.sgd_step).
Nothing is shared between paths except the process (imports stay warm, as in the harness's
worker) and `clear_session()` once per case.

    python -m harness.bench_naive --impl NAME

speaks the worker protocol of harness.worker (header, then one result line per Case line), so
the benchmark drives both through the same driver.Worker pipes. Only the Keras 3 and tf-keras
adapters (a `FLAVOR`) have a naive twin.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from harness.impls import build, paths
from harness.results import GradientResult, ImplResult, PathResult
from harness.spec import Case


def _fresh(flavor: paths.Flavor, case: Case, mode: paths.Mode | None) -> Any:
    """A new model of the Case (weights from the Case), compiled for `mode` when given."""
    keras = flavor.keras
    model = build.build_model(keras, case)
    if mode is not None:
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=build.loss_argument(keras, case),
                      loss_weights=build.loss_weights_argument(case), **mode.compile_kwargs)
        if mode.compile_kwargs.get("jit_compile") and not getattr(model, "jit_compile", True):
            raise paths._NotApplicable(f"jit_compile=True asked, but the model runs with jit_compile="
                                       f"{model.jit_compile} (model_supports_jit is False)")
    return model


def _regularization(model: Any, x: Any) -> dict[str, float]:
    model(x, training=True)
    return {"regularization": float(sum(paths.to_float(v) for v in model.losses))}


def _one_path(flavor: paths.Flavor, case: Case, path: str, mode: paths.Mode, x: Any, y: Any, sw: Any) -> PathResult:
    model = _fresh(flavor, case, mode)
    ebs = case.evaluate_batch_size
    if path == "test_on_batch":
        reg = _regularization(model, x)
        logs = model.test_on_batch(x, y, sample_weight=sw, return_dict=True)
        return PathResult(path, mode.name, "ok", total=paths._logs_total(logs),
                          terms={**paths._output_terms(logs, case), **reg})
    if path == "evaluate":
        logs = model.evaluate(x, y, sample_weight=sw, batch_size=ebs, verbose=0, return_dict=True)
        return PathResult(path, mode.name, "ok", total=paths._logs_total(logs), terms=paths._output_terms(logs, case))
    before = model.get_weights()
    if path == "train_on_batch":
        reg = _regularization(model, x)
        logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
        terms, total = {**paths._output_terms(logs, case), **reg}, paths._logs_total(logs)
    else:  # fit
        logs = model.fit(x, y, sample_weight=sw, batch_size=ebs, epochs=1, shuffle=False, verbose=0).history
        terms, total = paths._output_terms(logs, case), paths.to_float(logs["loss"][-1])
    moved = not build.weights_equal(before, model.get_weights())
    return PathResult(path, mode.name, "ok", total=total, terms=terms, weights_moved=moved)


def run_case(flavor: paths.Flavor, case: Case) -> ImplResult:
    """The same paths as paths.run_case, each on its own fresh model."""
    started = time.perf_counter()
    keras = flavor.keras
    result = ImplResult(case_id=case.id, impl=flavor.impl)
    if flavor.clear_session:
        keras.backend.clear_session()
    build.set_float_dtype(keras, case.dtype)
    x, y, sw = build.x_argument(case), build.y_argument(case), build.sample_weight_argument(case)
    notes = []
    try:
        result.predictions = paths.predictions(_fresh(flavor, case, None), x, case)
    except Exception as exc:
        notes.append(f"predict failed: {type(exc).__name__}: {exc}")
    first_mode = next((m for m in flavor.modes if m.unsupported is None), None)
    for variant, call in flavor.compute_loss:
        try:
            model = _fresh(flavor, case, first_mode)
            y_pred = model(x, training=True)
            reg = {"regularization": float(sum(paths.to_float(v) for v in model.losses))}
            total = paths.to_float(call(model, x, y, y_pred, sw))
            result.paths.append(PathResult("compute_loss", variant, "ok", total=total, terms=reg))
        except Exception as exc:
            result.paths.append(paths.error_result("compute_loss", variant, exc))
    for mode in flavor.modes:
        for path in paths.MODE_PATHS:
            reason = paths._unsupported(flavor, mode, path)
            if reason is not None:
                result.paths.append(PathResult(path, mode.name, "unsupported", reason=reason))
                continue
            try:
                result.paths.append(_one_path(flavor, case, path, mode, x, y, sw))
            except paths._NotApplicable as exc:
                result.paths.append(PathResult(path, mode.name, "unsupported", reason=str(exc)))
            except Exception as exc:
                result.paths.append(paths.error_result(path, mode.name, exc))
    result.gradients = _gradients(flavor, case, first_mode, x, y, sw)
    result.message = "; ".join(notes) or None
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _gradients(flavor: paths.Flavor, case: Case, first_mode: paths.Mode | None, x: Any, y: Any,
               sw: Any) -> GradientResult | None:
    """The gradient on a fresh model, and the SGD step's update on another fresh model."""
    unavailable, reported = paths.gradient_unavailable(flavor)
    if unavailable:
        return reported
    how = flavor.gradient_how
    try:
        loss, gradients, _ = paths.differentiate(flavor, _fresh(flavor, case, first_mode), x, y, sw)
    except Exception as exc:
        return GradientResult("error", how=how, error_type=type(exc).__name__, error_message=paths.error_message(exc))
    result = GradientResult("ok", how=how, loss=loss, gradients=gradients, learning_rate=paths.LEARNING_RATE,
                            update_mode=flavor.update_mode)
    try:
        result.updates = paths.sgd_update(flavor, build.build_model(flavor.keras, case), case, x, y, sw)
    except Exception as exc:
        result.update_error = f"{type(exc).__name__}: {paths.error_message(exc)}"
    return result


def main(argv: list[str] | None = None) -> int:
    """The worker protocol (harness.worker) with `run_case` in place of the adapter's `run`."""
    from harness import spec, worker

    parser = argparse.ArgumentParser(prog="python -m harness.bench_naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", required=True)
    args = parser.parse_args(argv)
    out = worker._claim_stdout()
    try:
        adapter = worker.load_adapter(args.impl)
        flavor = adapter.FLAVOR
        header = worker._header(args.impl, adapter.versions())
    except Exception as exc:  # noqa: BLE001 - reported like the worker's import errors
        worker._write(out, worker._header(args.impl, {}, f"{type(exc).__name__}: {exc}"))
        return worker.IMPORT_ERROR_EXIT
    worker._write(out, header)
    for number, line in enumerate(sys.stdin, start=1):
        if line.strip():
            case = spec.loads(line, source=f"<stdin line {number}>")
            record = run_case(flavor, case).to_json()
            json.dumps(record, allow_nan=False)
            worker._write(out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
