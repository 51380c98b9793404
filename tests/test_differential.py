"""Every installed implementation against the reference: stored cases and drawn cases.

- Every case in cases/ (hand-written and found) is replayed on every implementation installed
  in this environment, as a parametrized test whose id holds the implementation and case id.
- The fixed-seed corpus (harness.strategies.corpus, seed 0: the main job's first cases, the
  same ids on every machine) is replayed on every implementation: the gate's drawn cases,
  deterministic in every test order.
- The search (marked `search`; under HYPOTHESIS_PROFILE=dev or deep, skipped by the ci gate):
  a property test per implementation draws Cases with Hypothesis; an `unexplained` verdict
  fails, Hypothesis shrinks it, and the minimal Case is written to cases/found/ with the verdict
  and versions in its note before the failure is reported (also when Hypothesis reports the
  failure as flaky), so the replay line names a file that exists and the tests replay it ever
  after.
- Strict mode: HARNESS_STRICT_PROFILE=tf_keras-2.21 judges every implementation against that one
  profile, so a user migrating from it sees every difference (explained or not) as a failure.

An implementation not installed here is skipped with the reason (see `pytest -rs`); tox's
`tests` environment installs tf-keras 2.21 and Keras 3.15 with the tensorflow, jax, torch and
numpy backends. A (case, implementation) pair listed in cases/known_findings.txt is an expected
failure with its reason, strict: it fails loudly once the difference goes away.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings

from differential import (FOUND_DIR, Workers, all_impls, check_case, installed_impls, known_findings, stored_case_files,
                          why_not_installed, write_found)
from harness import spec, strategies

pytestmark = pytest.mark.differential

STRICT = os.environ.get("HARNESS_STRICT_PROFILE") or None

# Examples per implementation for the drawn-case property: each example runs every path of a
# real Keras model (a few seconds), so fewer than the pure-NumPy properties get.
EXAMPLES = {"ci": 6, "dev": 25, "deep": 400}[os.environ.get("HYPOTHESIS_PROFILE", "dev")]
# Cases of the fixed-seed corpus every run replays on every implementation (seed 0: the first
# cases of the main job's corpus, so the gate judges what the report shows).
CORPUS_SEED, CORPUS_CASES = 0, 6


@pytest.fixture(scope="session")
def workers():
    w = Workers()
    yield w
    w.close()


def _require(impl: str) -> None:
    if impl not in installed_impls():
        pytest.skip(f"{impl} is not installed in this environment: {why_not_installed(impl) or 'excluded by HARNESS_TEST_IMPLS'}")


def _stored_params():
    known = known_findings()
    params = []
    for path in stored_case_files():
        case = spec.load(path)
        for impl in all_impls():
            marks = []
            if (case.id, impl) in known:
                marks.append(pytest.mark.xfail(reason=known[(case.id, impl)], strict=True))
            params.append(pytest.param(path, impl, id=f"{impl}-{case.id}", marks=marks))
    return params


@pytest.mark.parametrize("case_file, impl", _stored_params())
def test_stored_case(case_file, impl, workers):
    _require(impl)
    case = spec.load(case_file)
    checked = check_case(workers, case, impl, strict_profile=STRICT, case_file=case_file)
    assert checked.result.status == "ok", checked.message
    assert checked.result.paths, "the implementation reported no path at all\n" + checked.message
    assert not checked.failures, checked.message


@pytest.mark.parametrize("impl", all_impls())
@pytest.mark.parametrize("index", range(CORPUS_CASES))
def test_corpus_case(index, impl, workers):
    _require(impl)
    case = strategies.corpus_case(CORPUS_SEED, index)
    checked = check_case(workers, case, impl, strict_profile=STRICT)
    # the message (evaluated only on failure) names the case file it has written
    assert checked.result.status == "ok" and not checked.failures, _with_found_case(case, impl, checked)


@pytest.mark.search
@pytest.mark.parametrize("impl", all_impls())
def test_drawn_cases(impl, workers):
    _require(impl)
    last_failure = {}

    @settings(settings.default, max_examples=EXAMPLES)
    @given(case=strategies.cases())
    def agrees_with_reference(case):
        checked = check_case(workers, case, impl, strict_profile=STRICT)
        if checked.failures:
            last_failure["it"] = (case, checked)  # the last one is Hypothesis' minimal example
            raise AssertionError(checked.message)

    try:
        agrees_with_reference()
    except Exception as exc:  # AssertionError, or Hypothesis' FlakyFailure (an ExceptionGroup)
        if "it" not in last_failure:
            raise
        case, checked = last_failure["it"]
        raise AssertionError(f"{type(exc).__name__}: {_with_found_case(case, impl, checked)}") from exc


def _with_found_case(case, impl, checked) -> str:
    """Write the failing case to cases/found/ first, then return the message naming that file."""
    path = write_found(case, impl, checked)
    return f"case written to {path}\n" + checked.message.replace(str(FOUND_DIR / f"{case.id}.json"), str(path))
