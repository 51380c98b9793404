"""The reference total and breakdown of a path under any profile (`harness.reference.compute`).

On one device the total is harness.reference.aggregate's; under a distribution strategy (a
profile whose replica_split is not "single_device") it is harness.reference.distributed's, which
builds on aggregate's batches. This module sits above both, so that neither imports the other
back.
"""

from __future__ import annotations

from typing import Mapping

from harness.reference import aggregate, distributed
from harness.reference import rules as rules_mod
from harness.spec import Case

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists


def compute(case: Case, profile: str | Mapping[str, str], path: str = "test_on_batch") -> aggregate.Breakdown:
    """The reference total and breakdown of `case` on `path` under `profile` (a name or a mapping)."""
    rules = rules_mod.resolve(profile)
    if not rules_mod.chooses(rules, "replica_split", "single_device"):  # a strategy (reference/distributed.py)
        return distributed.reported(case, rules, path)
    return aggregate.single_device(case, rules, path)
