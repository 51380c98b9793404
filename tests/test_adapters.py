"""The adapters and the worker, run for real on the motivating case.

Each implementation importable in this Python runs in its own worker process
(`python -m harness.worker --impl NAME`: Keras 3 backends and Keras 2 cannot share a process),
fed the motivating case and one malformed line. The tests check the protocol (header with the
exact installed versions, one record per line), that every path reports a status with its
reason, that predictions are finite and agree across implementations, that a zero learning
rate left the weights where they were, and, through harness.compare, that every number an
implementation reports agrees with the NumPy reference under its expected profile or is
explained by named rules.

Run in each environment: /work/venvs/core (Keras 3 x 4 backends, tf_keras, tf_keras-graph) and
/work/venvs/tf215 (tf.keras, tf.keras-graph). Workers run two at a time (two cores).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import spec
from harness.impls import IMPLEMENTATIONS, VERSION_KEYS, installed_version, unmet_requirements
from harness.results import PATH_STATUSES, PATHS, ImplResult

ROOT = Path(__file__).resolve().parents[1]
MOTIVATING = ROOT / "cases" / "motivating_two_outputs.json"
WORKER_TIMEOUT = 600  # seconds for one worker to import its framework and run one case (jax eager is slow cold)

# The Keras implementations (test-only ones of harness/impls/faulty.py, family "test", are
# listed when HARNESS_TEST_IMPLS=1 and belong to tests/test_faults.py).
KERAS = {name: impl for name, impl in IMPLEMENTATIONS.items() if impl.family != "test"}
HERE = [name for name, impl in KERAS.items() if not unmet_requirements(impl)]


# --------------------------------------------------------------------------------------
# The registry (pure data; no framework)
# --------------------------------------------------------------------------------------


def test_registry_names_are_the_fixed_set():
    assert set(KERAS) == {
        "keras3-tensorflow", "keras3-jax", "keras3-torch", "keras3-numpy",
        "tf_keras", "tf.keras", "tf_keras-graph", "tf.keras-graph", "keras2.3.1", "keras2.2.4",
        "tf_keras-mirrored", "keras3-tensorflow-mirrored", "keras3-jax-dataparallel",
    }


def test_keras3_entries_choose_their_backend_before_import():
    for backend in ("tensorflow", "jax", "torch", "numpy"):
        env = IMPLEMENTATIONS[f"keras3-{backend}"].environment()
        assert env["KERAS_BACKEND"] == backend
        assert env["HARNESS_IMPL"] == f"keras3-{backend}"


def test_importing_the_registry_imports_no_framework():
    code = ("import sys, harness.impls, harness.worker, harness.commands.impls; "
            "print([m for m in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout


def test_unknown_implementation_is_an_import_error_header_and_exit_3():
    proc = subprocess.run([sys.executable, "-m", "harness.worker", "--impl", "no-such-keras"], input="",
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    header = json.loads(proc.stdout.splitlines()[0])
    assert proc.returncode == 3
    assert header["kind"] == "header" and header["impl"] == "no-such-keras"
    assert "no-such-keras" in header["import_error"]


# --------------------------------------------------------------------------------------
# Every implementation importable here, on the motivating case
# --------------------------------------------------------------------------------------


def _run_worker(impl: str, lines: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "harness.worker", "--impl", impl],
                          input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, cwd=ROOT, timeout=WORKER_TIMEOUT)
    records = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is JSON
    return {"returncode": proc.returncode, "records": records, "stderr": proc.stderr[-3000:]}


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    if not HERE:
        pytest.skip("no implementation is installed in this Python")
    case_line = spec.dumps(spec.load(MOTIVATING))
    lines = [case_line, "this line is not a case"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {impl: pool.submit(_run_worker, impl, lines) for impl in HERE}
        return {impl: f.result() for impl, f in futures.items()}


def _result(run: dict[str, Any]) -> ImplResult:
    records = run["records"]
    assert run["returncode"] == 0, run["stderr"]
    assert [r["kind"] for r in records] == ["header", "result", "error"], (records, run["stderr"])
    return ImplResult.from_json(records[1])


def _expected_backend(impl: str) -> str:
    # keras3-<backend>, keras3-<backend>-<strategy> (keras3-tensorflow-mirrored, keras3-jax-dataparallel)
    return impl.split("-")[1] if impl.startswith("keras3-") else "tensorflow"


@pytest.mark.differential
def test_header_carries_the_exact_installed_versions(runs):
    for impl, run in runs.items():
        header = run["records"][0]
        assert header["kind"] == "header" and header["schema"] == 1 and header["impl"] == impl
        assert "import_error" not in header, f"{impl}: {header.get('import_error')}\n{run['stderr']}"
        versions = header["versions"]
        assert set(versions) == set(VERSION_KEYS), impl
        for key in VERSION_KEYS:
            if key == "python":
                assert versions[key] == ".".join(map(str, sys.version_info[:3])), impl
            elif key == "backend":
                assert versions[key] == _expected_backend(impl), impl
            else:
                assert versions[key] == installed_version(key), f"{impl}: {key}"


@pytest.mark.differential
def test_a_malformed_line_gets_an_error_record_and_the_worker_goes_on(runs):
    for impl, run in runs.items():
        last = run["records"][-1]
        assert last["kind"] == "error" and "valid JSON" in last["message"], (impl, last)


@pytest.mark.differential
def test_every_path_has_a_status_and_a_reason(runs):
    case = spec.load(MOTIVATING)
    for impl, run in runs.items():
        result = _result(run)
        assert result.case_id == case.id and result.impl == impl and result.status == "ok"
        assert {p.path for p in result.paths} == set(PATHS), impl
        keys = [p.key for p in result.paths]
        assert len(keys) == len(set(keys)), f"{impl}: a path/mode reported twice: {keys}"
        for p in result.paths:
            where = f"{impl} {p.key}"
            assert p.status in PATH_STATUSES, where
            if p.status == "ok":
                assert p.total is not None and math.isfinite(p.total), where
                assert all(math.isfinite(v) for v in p.terms.values()), where
            elif p.status == "unsupported":
                assert p.reason, where
            else:
                assert p.error_type and p.error_message, where


@pytest.mark.differential
def test_zero_learning_rate_leaves_the_weights(runs):
    for impl, run in runs.items():
        for p in _result(run).paths:
            if p.path in ("train_on_batch", "fit") and p.status == "ok":
                assert p.weights_moved is False, f"{impl} {p.key}: weights moved at learning rate 0"


# float32 case: each prediction is at most ~10 float32 operations from the inputs (two Dense
# layers, tanh, a masked mean, softmax) on values of order 1, so implementations that order the
# sums differently differ by a few ulps (eps = 1.19e-7) per operation: 1e-5 relative with an
# absolute floor of 1e-6 (for values that cancel to ~0) covers that with a margin of ~10, and
# still catches a masked step counted in the pooling mean (a change of order 0.1).
PRED_RTOL, PRED_ATOL = 1e-5, 1e-6


@pytest.mark.differential
def test_predictions_are_finite_and_agree_across_implementations(runs):
    case = spec.load(MOTIVATING)
    preds = {impl: _result(run).predictions for impl, run in runs.items()}
    for impl, p in preds.items():
        assert p is not None and set(p) == set(case.output_names()), impl
        for out in case.outputs:
            arr = np.asarray(p[out.name], dtype=np.float64)
            assert arr.shape == out.target.shape, (impl, out.name, arr.shape)
            assert np.all(np.isfinite(arr)), (impl, out.name)
    first = next(iter(preds))
    for impl, p in preds.items():
        for name in case.output_names():
            np.testing.assert_allclose(
                np.asarray(p[name]), np.asarray(preds[first][name]), rtol=PRED_RTOL, atol=PRED_ATOL,
                err_msg=f"case {case.id} output {name}: {impl} vs {first}",
            )


@pytest.mark.differential
def test_every_number_agrees_with_the_reference_or_is_explained(runs):
    compare = pytest.importorskip("harness.compare")
    judging = pytest.importorskip("harness.judging")
    case = spec.load(MOTIVATING)
    cache = compare.ReferenceCache(case)
    problems = []
    for impl, run in runs.items():
        versions = run["records"][0]["versions"]
        result = _result(run)
        for key, verdict in judging.judge(case, result, versions, cache=cache).items():
            if verdict.verdict not in ("agree", "explained", "unsupported", "error"):
                path = next(p for p in result.paths if p.key == key)
                problems.append(f"{impl} {key}: {verdict.to_json()} terms={path.terms}")
    assert not problems, (
        f"case {case.id}: paths neither agreeing with the reference nor explained by named rules "
        f"(replay: python -m harness.worker --impl IMPL < <(python -c \"from harness import spec; "
        f"print(spec.dumps(spec.load('{MOTIVATING.relative_to(ROOT)}')))\")):\n  " + "\n  ".join(problems)
    )
