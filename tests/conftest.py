"""Hypothesis settings profiles, chosen by the HYPOTHESIS_PROFILE environment variable.

- "ci":   fast and reproducible. 30 examples per property, derandomized (the same examples on
          every run, so a red CI is never a dice roll; new examples come from "dev"/"deep"),
          no example database (CI machines are fresh anyway).
- "dev":  the default. 100 examples, random, with the local example database so a failure
          found once is replayed first next time.
- "deep": nightly. 2000 examples per property.
Tests marked `slow` are skipped under "ci" (see pytest_collection_modifyitems).

In every profile:
- deadline=None: an example's time is dominated by things that are not what we test (the
  first call into a framework builds and compiles; a loaded 2-core runner stalls). Speed
  targets are checked by the benchmark script (DESIGN.md section 4), not by timed tests.
- HealthCheck.too_slow suppressed: a Case draws a few hundred values by design (every weight
  explicit), which Hypothesis' generation-time check can flag on a slow runner. The other
  health checks stay on: data_too_large or filter_too_much would mean the generator is wrong.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)

settings.register_profile("ci", max_examples=30, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("deep", max_examples=2000, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the "ci" profile, tests marked `slow` (e.g. a full Hypothesis shrink, ~1 min) are
    skipped to keep CI fast; "dev" and "deep" run them."""
    if PROFILE != "ci":
        return
    skip = pytest.mark.skip(reason="slow: runs under HYPOTHESIS_PROFILE=dev or deep")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
