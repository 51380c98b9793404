"""The explanation engine (issue 15 item 4): every smallest set of flips, ranked; dependent
flips; typed error sites; equivalent explanations as one report group."""

from __future__ import annotations

import json
from pathlib import Path

from harness import compare, spec, strategies
from harness.reference import errors, rules
from harness.report import loading, render
from harness.results import PathResult

ROOT = Path(__file__).resolve().parents[1]
FOUND = ROOT / "cases" / "found" / "08da4e4d6678ad1c.json"
DEPENDENT = ROOT / "tests" / "data" / "cases" / "bce_dependent_pair.json"


def _result_under(case, cache, profile, path="evaluate", mode="compiled") -> PathResult:
    b = cache.compute(profile, path)
    return PathResult(path, mode, "ok", total=b.total, terms=dict(b.terms))


def test_two_equivalent_flips_are_both_listed_the_refuted_one_last():
    # cases/found/08da4e4d6678ad1c.json on Keras 3 / TF: the batch-size weighted per-output logs
    # fit, and so does output_log=weighted, which rules.py calls refuted (no profile takes it).
    case = spec.load(FOUND)
    cache = compare.ReferenceCache(case)
    profile = rules.PROFILES["keras-3.15"]
    result = _result_under(case, cache, {**profile, "evaluate_output_log": "batch_size_weighted"})
    v = compare.judge_path(case, result, "keras-3.15", cache)
    assert v.verdict == "explained"
    assert v.equivalent == [{"evaluate_output_log": "batch_size_weighted"}, {"output_log": "weighted"}]
    assert v.rules == v.equivalent[0]
    assert v.to_json()["equivalent"] == v.equivalent


def test_one_explanation_keeps_the_json_of_before():
    case = spec.load(FOUND)
    cache = compare.ReferenceCache(case)
    profile = rules.PROFILES["keras-3.15"]
    result = _result_under(case, cache, {**profile, "evaluate_total": "batch_mean"})
    v = compare.judge_path(case, result, "keras-3.15", cache)
    assert v.verdict == "explained" and v.rules == {"evaluate_total": "batch_mean"}
    assert "equivalent" not in v.to_json()


def test_fallback_prior_puts_alternatives_no_profile_takes_last():
    used = compare.fallback_explanation_key("keras-3.15", {"evaluate_output_log": "batch_size_weighted"})
    refuted = compare.fallback_explanation_key("keras-3.15", {"output_log": "weighted"})
    assert used < refuted


def test_a_flip_that_matters_only_once_another_is_made_is_searched():
    # bce_probability_log changes nothing while probability_crossentropy recovers the logits.
    case = spec.load(DEPENDENT)
    cache = compare.ReferenceCache(case)
    profile = rules.PROFILES["tf_keras-2.21"]
    singles = compare.relevant_flips(cache, profile, "test_on_batch")
    assert ("probability_crossentropy", "clip_epsilon") in singles
    assert ("bce_probability_log", "log") not in singles
    deps = compare.dependent_flips(cache, profile, "test_on_batch", singles)
    assert ("probability_crossentropy", "clip_epsilon") in deps[("bce_probability_log", "log")]
    pair = {"probability_crossentropy": "clip_epsilon", "bce_probability_log": "log"}
    result = _result_under(case, cache, {**profile, **pair}, "test_on_batch", "eager")
    v = compare.judge_path(case, result, "tf_keras-2.21", cache)
    assert v.verdict == "explained" and v.rules == pair, v.to_json()


# --------------------------------------------------------------------------------------
# Typed error sites
# --------------------------------------------------------------------------------------


def _weighted_single_loss_case():
    # One loss for several weighted outputs: Keras 3 raises ValueError in CompileLoss.build.
    return next(c for c in strategies.corpus(seed=0, n=200)
                if c.loss_form == "single" and c.loss_weights_form != "omitted" and len(c.outputs) > 1)


def _breakdown():
    case = _weighted_single_loss_case()
    b = compare.ReferenceCache(case).compute(rules.PROFILES["keras-3.15-jax"], "test_on_batch")
    assert b.notes and errors.site_of(b.notes[0]).types == ("ValueError",)
    return case, b


AT_BUILD = " [at keras/src/trainers/compile_utils.py:300 in build]"


def test_the_predicted_error_matches_type_and_innermost_keras_frame():
    _, b = _breakdown()
    assert compare.predicts_error(b, "`loss_weights` must match" + AT_BUILD, "ValueError")


def test_a_same_file_exception_of_another_type_is_refused():
    _, b = _breakdown()
    assert not compare.predicts_error(b, "0" + AT_BUILD, "KeyError")


def test_an_autograph_staging_error_is_judged_by_the_exception_it_wraps():
    """TensorFlow re-raises an exception of traced code as StagingError, its message ending with
    the original ("KeyError: 0" under MirroredStrategy, keras 3.15.1 on case 08cfdb2b63a38a3f)."""
    _, b = _breakdown()
    frame = " [at tensorflow/python/eager/polymorphic_function/autograph_util.py:52 in autograph_handler]"
    traced = "in user code:\n\n    File \"compile_utils.py\", line 300, in build\n\n    {}: `loss_weights` must match"
    assert compare.predicts_error(b, traced.format("ValueError") + frame, "StagingError")
    assert not compare.predicts_error(b, traced.format("KeyError") + frame, "StagingError")


def test_another_keras_file_is_refused_a_framework_frame_is_not_told():
    _, b = _breakdown()
    other = " [at keras/src/trainers/data_adapters/array_data_adapter.py:42 in __init__]"
    assert not compare.predicts_error(b, "`loss_weights` must match" + other, "ValueError")
    inside_jax = " [at jax/_src/numpy/util.py:400 in _broadcast_shapes]"
    assert compare.predicts_error(b, "`loss_weights` must match" + inside_jax, "ValueError")


def test_keras_traceback_filter_frame_cannot_tell_the_file_the_message_decides():
    # keras/src/utils/traceback_utils.py re-raises with Keras's frames removed: its frame is the
    # innermost one left, like a framework frame it cannot tell which Keras file raised.
    _, b = _breakdown()
    filtered = " [at keras/src/utils/traceback_utils.py:124 in error_handler]"
    assert compare.predicts_error(b, "`loss_weights` must match" + filtered, "ValueError")
    assert not compare.predicts_error(b, "`loss_weights` must match" + filtered, "KeyError")
    named = " File keras/src/trainers/data_adapters/array_data_adapter.py, line 42"
    assert not compare.predicts_error(b, "`loss_weights` must match" + named + filtered, "ValueError")


def test_an_exception_the_harness_raised_is_never_explained():
    case, _ = _breakdown()
    harness_frame = f" [at {ROOT}/harness/impls/paths.py:120 in to_array]"
    # the harness's own frame: its own kind, a harness failure; a frame outside Keras: an error
    for frame, kind in ((harness_frame, "harness-error"),
                        (" [at /usr/lib/python3.11/json/decoder.py:355 in raw_decode]", "error")):
        err = PathResult("test_on_batch", "eager", "error", error_type="ValueError",
                         error_message="`loss_weights` must match" + frame)
        cache = compare.ReferenceCache(case)
        assert compare.judge_path(case, err, "keras-3.15-jax", cache).verdict == kind
        assert compare.judge_path(case, err, "tf_keras-2.21", cache).verdict == kind


def test_notes_keep_their_site_through_prefixes_and_pickling():
    import pickle

    _, b = _breakdown()
    note = errors.prefixed("batch 0: ", b.notes[0])
    assert note.startswith("batch 0: ") and errors.site_of(note) == errors.site_of(b.notes[0])
    again = pickle.loads(pickle.dumps(note))
    assert again == note and errors.site_of(again) == errors.site_of(note)


# --------------------------------------------------------------------------------------
# The report: equivalent explanations are one group
# --------------------------------------------------------------------------------------


def test_equivalent_explanations_form_one_group_that_lists_both(tmp_path):
    case = spec.load(FOUND)
    a, b = {"evaluate_output_log": "batch_size_weighted"}, {"output_log": "weighted"}

    def verdict(order):
        return {"verdict": "explained", "profile": "keras-3.15", "rules": order[0], "equivalent": order,
                "value": 1.0, "expected": 2.0, "explained_value": 1.0}

    records = [
        {"kind": "header", "schema": 1, "impl": "keras3-tensorflow", "versions": {"keras": "3.15.1"}},
        {"kind": "case", "schema": 1, "case_id": case.id, "case": case.to_json()},
        {"kind": "result", "schema": 1, "case_id": case.id, "impl": "keras3-tensorflow", "status": "ok",
         "paths": [{"path": "evaluate", "mode": "compiled", "total": 1.0},
                   {"path": "fit", "mode": "compiled", "total": 1.0},
                   {"path": "test_on_batch", "mode": "compiled", "total": 1.0}],
         # the same two explanations (in either order) are one group; one of them alone is another
         "verdicts": {"evaluate/compiled": verdict([a, b]), "fit/compiled": verdict([b, a]),
                      "test_on_batch/compiled": {"verdict": "explained", "profile": "keras-3.15", "rules": a}}},
    ]
    results = tmp_path / "eq.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = loading.load([results])
    explained = [g for g in report.groups if g.kind == "explained"]
    assert len(explained) == 2
    both = next(g for g in explained if len(g.explanations) == 2)
    assert sorted(m.key for m in both.members) == ["evaluate/compiled", "fit/compiled"]
    assert both.explanations[0] == a and both.rules == a  # the representative's (ranked) order
    assert "evaluate_output_log = batch_size_weighted or output_log = weighted" in both.title
    out = tmp_path / "out" / "index.html"
    render.write([results], out)
    html = out.read_text(encoding="utf-8")
    assert "Equivalent explanations" in html and "output_log = weighted" in html
