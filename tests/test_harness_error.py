"""An exception the harness's own code raised is a `harness-error`, never something Keras did.

- An exception whose innermost frame is in harness/ (e.g. an adapter calling a hook or a Keras
  function with a signature it does not have: the TypeError's innermost frame is the caller's
  line) is a `harness-error` verdict, on a loss path and on the gradients alike, even where the
  expected profile predicts an error on that path: no profile explains a bug of ours.
- An exception raised inside Keras that no profile predicts stays an `error`.
- Both are failures: `run` exits 4; the report's headline counts `harness-error` in its own column.
- A failure of the reference or the engine itself is a `harness-error` too.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness import judging, spec, strategies
from harness.commands.run import EXIT_FAILURES, exit_status, summarize
from harness.compare import FAILURE_VERDICTS, HARNESS_ERROR, VERDICTS, raised_by_harness
from harness.impls import paths
from harness.report import loading, render
from harness.results import GradientResult, ImplResult, PathResult

KERAS_FRAME = " [at keras/src/trainers/compile_utils.py:790 in resolve_path]"


def a_case() -> spec.Case:
    """A case whose expected Keras 3 profile predicts an error on test_on_batch (one loss for
    several weighted outputs: rule single_loss_with_loss_weights, tests/test_compare.py)."""
    return next(c for c in strategies.corpus(seed=0, n=200)
                if c.loss_form == "single" and c.loss_weights_form != "omitted" and len(c.outputs) > 1)


def planted_harness_exception() -> BaseException:
    """A real TypeError raised in harness code: paths.differentiate calls the flavor's gradient
    hook with (model, x, y, sample_weight); this hook takes three arguments, as a Keras function
    of another release would, so the innermost frame is harness/impls/paths.py."""
    def hook_of_another_signature(model: Any, x: Any, y: Any) -> tuple[Any, list[Any]]:
        raise AssertionError("never called: the call itself fails")

    flavor = paths.Flavor(impl="keras3-jax", keras=None, modes=(), compute_loss=(),
                          gradient=hook_of_another_signature)
    with pytest.raises(TypeError) as info:
        paths.differentiate(flavor, None, None, None, None)
    return info.value


def harness_error_result(case: spec.Case) -> ImplResult:
    exc = planted_harness_exception()
    path = paths.error_result("test_on_batch", "eager", exc)
    grad = GradientResult("error", error_type=type(exc).__name__, error_message=paths.error_message(exc))
    return ImplResult(case.id, "keras3-jax", paths=[path], gradients=grad)


def keras_error_result(case: spec.Case) -> ImplResult:
    path = PathResult("test_on_batch", "eager", "error", error_type="KeyError", error_message="0" + KERAS_FRAME)
    grad = GradientResult("error", error_type="KeyError", error_message="0" + KERAS_FRAME)
    return ImplResult(case.id, "keras3-jax", paths=[path], gradients=grad)


def write_results(tmp_path: Path, case: spec.Case, result: ImplResult) -> Path:
    """A results file as `run` writes it: header, case, the result with its verdicts."""
    verdicts = judging.verdicts_json(judging.judge_safely(case, result, {"backend": "jax"}, None))
    records = [{"kind": "header", "schema": 1, "impl": result.impl, "versions": {"backend": "jax"}},
               {"kind": "case", "schema": 1, "case_id": case.id, "case": case.to_json()},
               {**result.to_json(), "verdicts": verdicts}]
    path = tmp_path / "env.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_harness_error_is_a_verdict_kind_and_a_failure() -> None:
    assert HARNESS_ERROR == "harness-error"
    assert HARNESS_ERROR in VERDICTS and HARNESS_ERROR in FAILURE_VERDICTS
    assert HARNESS_ERROR in loading.HEADLINE_ORDER


def test_the_planted_exception_is_raised_in_harness_code() -> None:
    message = paths.error_message(planted_harness_exception())
    assert "harness/impls/paths.py:" in message and message.endswith(" in differentiate]"), message
    assert raised_by_harness(message)


@pytest.mark.parametrize("message, by_harness", [
    ("x [at /work/main/harness/impls/keras3.py:70 in _compute_loss]", True),  # installed editable
    ("x [at harness/impls/keras3.py:70 in _compute_loss]", True),  # installed in site-packages
    ("x" + KERAS_FRAME, False),
    ("x [at tensorflow/python/framework/ops.py:5983 in raise_from_not_ok_status]", False),
    ("x [at tf_keras/src/engine/compile_utils.py:12 in f]", False),
    ("harness/impls/keras3.py is named, but no frame is appended", False),
    (None, False),
])
def test_raised_by_harness_reads_the_innermost_frame(message: str | None, by_harness: bool) -> None:
    assert raised_by_harness(message) is by_harness


def test_an_exception_from_harness_code_is_a_harness_error_on_paths_and_gradients() -> None:
    case = a_case()
    verdicts = judging.judge(case, harness_error_result(case), {"backend": "jax"})
    assert verdicts["test_on_batch/eager"].verdict == HARNESS_ERROR, verdicts["test_on_batch/eager"].to_json()
    assert verdicts["gradient/*"].verdict == HARNESS_ERROR, verdicts["gradient/*"].to_json()
    assert "TypeError" in (verdicts["test_on_batch/eager"].reason or "")


def test_a_keras_internal_exception_no_profile_predicts_stays_an_error() -> None:
    case = a_case()
    verdicts = judging.judge(case, keras_error_result(case), {"backend": "jax"})
    assert verdicts["test_on_batch/eager"].verdict == "error", verdicts["test_on_batch/eager"].to_json()
    assert verdicts["gradient/*"].verdict == "error", verdicts["gradient/*"].to_json()


def test_an_sgd_update_that_the_harness_failed_is_a_harness_error() -> None:
    case = a_case()
    exc = planted_harness_exception()
    weights = {f"{layer.name}/{w}": value for layer in case.layers for w, value in layer.weights.items()}
    grad = GradientResult("ok", loss=1.0, gradients=weights, learning_rate=0.25,
                          update_error=f"{type(exc).__name__}: {paths.error_message(exc)}")
    verdicts = judging.judge(case, ImplResult(case.id, "keras3-jax", paths=[], gradients=grad), {"backend": "jax"})
    updates = {k: v.verdict for k, v in verdicts.items() if k.endswith("/sgd_update")}
    assert updates and set(updates.values()) == {HARNESS_ERROR}, updates


def test_a_failure_of_the_engine_is_a_harness_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def engine_bug(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug of the engine")

    monkeypatch.setattr(judging, "judge", engine_bug)
    case = a_case()
    verdicts = judging.judge_safely(case, keras_error_result(case), {"backend": "jax"}, None)
    assert verdicts["*"].verdict == HARNESS_ERROR and verdicts["*"].stage == "reference"


@pytest.mark.parametrize("make_result, kind", [(harness_error_result, HARNESS_ERROR), (keras_error_result, "error")])
def test_run_exits_4_on_either_and_prints_each_as_an_error_row(tmp_path: Path, capsys, make_result, kind) -> None:
    case = a_case()
    summary = summarize(write_results(tmp_path, case, make_result(case)))
    out = capsys.readouterr().out
    assert summary.failures == 2 and exit_status(summary) == EXIT_FAILURES
    rows = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert len(rows) == 2 and all(f": {kind}: " in row for row in rows), rows


def test_the_report_headline_counts_harness_errors_as_failures() -> None:
    sections = {"loss": Counter({HARNESS_ERROR: 2, "agree": 3}), "gradient": Counter({"error": 1})}
    h = render.headline(sections)
    assert h["counts"][HARNESS_ERROR] == 2 and h["failures"] == 3
    assert "harness-error 2" in h["text"]
    assert HARNESS_ERROR in h["order"]
