"""Hypothesis settings profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- "ci":   fast and reproducible. 30 examples per property, derandomized (the same examples on
          every run, so a red CI is never a dice roll; new examples come from "dev"/"deep"),
          no example database (CI machines are fresh anyway).
- "dev":  the default. 100 examples, random, with the local example database so a failure
          found once is replayed first next time.
- "deep": nightly. 2000 examples per property.
Tests marked `slow` are skipped under "ci" (see pytest_collection_modifyitems); so is
`search`, the Hypothesis search for new findings on real Keras (tests/test_differential.py):
the gate replays the fixed-seed corpus instead, and searching is the main job's and
`run --profile deep`'s work.

Same examples in every test order: Hypothesis biases its draws towards constants it reads
from the source of every local module in sys.modules (hypothesis/internal/conjecture/
providers.py `_get_local_constants`, refreshed whenever sys.modules grows), so with a module
that one test imports lazily, the examples of every later test depended on which tests ran
before it. `import_every_harness_module` loads all of the harness's own modules before the
first test (the adapters excepted: they import a framework and run in worker processes only,
never in this one), so the pool is the same whatever the order.

In every profile:
- deadline=None: an example's time is dominated by things that are not what we test (the
  first call into a framework builds and compiles; a loaded 2-core runner stalls). Speed
  targets are checked by the benchmark script (DESIGN.md section 4), not by timed tests.
- HealthCheck.too_slow suppressed: a Case draws a few hundred values by design (every weight
  explicit), which Hypothesis' generation-time check can flag on a slow runner. The other
  health checks stay on: data_too_large or filter_too_much would mean the generator is wrong.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import pytest
from hypothesis import HealthCheck, settings

import harness

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)

settings.register_profile("ci", max_examples=30, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("deep", max_examples=2000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)


# harness.impls modules that need no framework; every other module there is an adapter.
FRAMEWORK_FREE_IMPLS = {"harness.impls", "harness.impls.build", "harness.impls.paths"}
FRAMEWORKS = ("tensorflow", "tf_keras", "keras", "jax", "torch")


def import_every_harness_module() -> list[str]:
    """Import every module of the harness but the adapters; returns their names, sorted."""
    names = sorted(m.name for m in pkgutil.walk_packages(harness.__path__, "harness."))
    names = [n for n in names if n != "harness.__main__"
             and (not n.startswith("harness.impls.") or n in FRAMEWORK_FREE_IMPLS)]
    for name in names:
        importlib.import_module(name)
    loaded = [f for f in FRAMEWORKS if f in sys.modules]
    assert not loaded, f"a harness module outside the adapters imported {loaded}: the test process must stay framework-free"
    return names


HARNESS_MODULES = import_every_harness_module()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the "ci" profile, tests marked `slow` (e.g. a full Hypothesis shrink, ~1 min) or
    `search` are skipped to keep CI fast and deterministic; "dev" and "deep" run them."""
    if PROFILE != "ci":
        return
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="slow: runs under HYPOTHESIS_PROFILE=dev or deep"))
        elif "search" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="search for new findings: runs under HYPOTHESIS_PROFILE=dev "
                                                    "or deep (the gate replays the fixed-seed corpus)"))
