"""A structure's value variants run on the models, and the step functions, Keras built for it.

harness.impls.paths keeps one model per mode for the last structure (spec.structure_key) and
only re-assigns the weights for the next Case of that structure (a value variant,
harness.strategies.value_variant). That is where the benchmark's speed comes from, and it is
only allowed if nothing of one Case leaks into the next. Checked for every installed
implementation served by paths.run_case (Keras 3 on each backend, tf_keras), each in its own
process (`REUSE_SCRIPT`, run as the worker would run it):

- after a Case, its value variant is served by the same model objects, with the same traced
  test and train functions (Keras did not trace again); a Case of another structure gets new
  models;
- a variant's result (every path, term, prediction, gradient and update) is exactly the one it
  gets when every path runs on a model of its own (the reuse policy "path" of the naive
  yardstick, harness.bench_naive: the session cleared before the case, a new model for every
  call, the SGD step compiled at its learning rate), also after paths that raised
  half-way (paths._Models.discard) and after non-finite gradients left NaN in tf_keras's SGD
  (paths.reset_optimizer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import spec
from harness.impls import IMPLEMENTATIONS, unmet_requirements
from harness.strategies import corpus

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600  # seconds: import a framework, run four cases (one XLA compile per mode and path)

SERVED_BY_PATHS = ("keras3", "keras2-eager")  # families whose adapters call paths.run_case
HERE = [name for name, impl in IMPLEMENTATIONS.items()
        if impl.family in SERVED_BY_PATHS and not unmet_requirements(impl)]

REUSE_SCRIPT = r"""
import dataclasses, json, re, sys
from harness import spec, worker
from harness.impls import paths

impl = sys.argv[1]
adapter = worker.load_adapter(impl)
a, a2, b, b2 = (spec.loads(line) for line in sys.stdin.read().splitlines())

def steps(models):
    return {str(name): (id(m), id(getattr(m, "test_function", None)), id(getattr(m, "train_function", None)))
            for name, m in models.items()}

def comparable(result):
    # An error message is compared by its first line and its innermost frame ("[at file:line in
    # function]", appended by paths.error_message): TensorFlow quotes process-wide counters in
    # the rest (__inference_one_step_on_data_11453), which also move where the message is cut.
    out = result.to_json()
    out.pop("seconds", None)
    for path in out["paths"]:
        message = path.get("error_message")
        if message:
            path["error_message"] = [message.splitlines()[0], re.findall(r"\[at [^\]]*\]$", message)]
    return out

pool = lambda: paths._MODELS[impl]._models
adapter.run(a)
after_a = steps(pool())
kept = list(pool().values())  # alive, so no new object can take their ids
reused = [comparable(adapter.run(a2))]
after_a2 = steps(pool())
adapter.run(b)
after_b = steps(pool())
reused.append(comparable(adapter.run(b2)))
# The yardstick (harness.bench_naive): a new model for every path (and every compute-loss,
# gradient and SGD call), the SGD step compiled at its learning rate (paths.sgd_update).
naive = dataclasses.replace(adapter.FLAVOR, reuse="path")
fresh = [comparable(paths.run_case(naive, case)) for case in (a2, b2)]
print(json.dumps({"after_a": after_a, "after_a2": after_a2, "after_b": after_b, "reused": reused, "fresh": fresh}))
"""


def _run(impl: str) -> dict:
    # Structures 1 and 3 of corpus seed 0, each with one value variant. On tf_keras structure 1's
    # fit steps meet non-finite gradients (paths.reset_optimizer); Keras 3 refuses its loss
    # weights (every path raises); on Keras 3 structure 3's evaluate and fit raise half-way
    # (incompatible shapes in hinge on the uneven last batch) while its other paths run.
    grouped = corpus(0, 8, values_per_structure=2, vocabulary_version=1)
    a, a2, b, b2 = grouped[2:4] + grouped[6:8]
    assert spec.structure_key(a) == spec.structure_key(a2) != spec.structure_key(b) == spec.structure_key(b2)
    lines = "\n".join(spec.dumps(c) for c in (a, a2, b, b2))
    proc = subprocess.run([sys.executable, "-c", REUSE_SCRIPT, impl], input=lines, capture_output=True, text=True,
                          cwd=ROOT, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # two cores
        return dict(zip(HERE, pool.map(_run, HERE)))


@pytest.mark.parametrize("impl", HERE)
def test_a_value_variant_runs_on_its_structures_models_and_step_functions(runs: dict[str, dict], impl: str) -> None:
    run = runs[impl]
    assert run["after_a"], "the first case built no model"
    # every model of the first case (one uncompiled, one per supported mode) served the variant,
    # with the test and train functions Keras made for the first case
    assert run["after_a2"] == run["after_a"]
    if impl == "keras3-numpy":
        pytest.skip("keras3-numpy runs no path of either structure (Keras 3 refuses structure 1's loss "
                    "weights; structure 3 has two loss terms, whose ops.sum of a list fails: rule "
                    "additional_losses_sum), so no step function is exercised; the other two tests hold for it")
    assert any(p["status"] == "ok" for r in run["reused"] for p in r["paths"]), f"{impl}: no path ran"


@pytest.mark.parametrize("impl", HERE)
def test_a_case_of_another_structure_gets_new_models(runs: dict[str, dict], impl: str) -> None:
    run = runs[impl]
    old = {model_id for model_id, _, _ in run["after_a"].values()}
    assert run["after_b"]
    assert not old & {model_id for model_id, _, _ in run["after_b"].values()}


@pytest.mark.parametrize("impl", HERE)
def test_a_reused_model_gives_exactly_what_a_fresh_model_gives(runs: dict[str, dict], impl: str) -> None:
    run = runs[impl]
    assert run["reused"][0] == run["fresh"][0]
    assert run["reused"][1] == run["fresh"][1]
