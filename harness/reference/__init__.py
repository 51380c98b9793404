"""The NumPy float64 reference: forward pass, per-element losses, aggregation under named rules.

Public API:
    predictions(case, profile=rules.DEFAULT_PROFILE) -> {output name: float64 array}
    compute(case, profile, path="test_on_batch") -> Breakdown
    effective_dtype(case, profile) -> "float32" | "float64" (the dtype the implementation computes in;
        compare should pick its tolerance by it)
    rules.RULES, rules.PROFILES, rules.expected(impl, versions, path, mode) (harness.reference.semantics:
        the semantics table)
    rules.chooses(profile, rule, alternative), rules.choice(profile, rule): the one way to read a
        choice (an unknown rule or alternative, or a rule the profile omits, is a rules.RuleError)

A profile is a name (rules.PROFILES, or a resolved one such as "keras3 3.13.2 backend=jax") or a complete rule -> alternative mapping, e.g.
`compute(case, {**rules.PROFILES["tf_keras-2.21"], "mask_normalisation": "all_entries"})`.
NaN and inf come out as values (a fully masked batch under "valid_entries" gives NaN).
"""

from harness.reference import rules
from harness.reference.aggregate import Breakdown, OutputRecord, effective_dtype, output_masks, predictions
from harness.reference.forward import Penalty
from harness.reference.total import compute

__all__ = ["Breakdown", "OutputRecord", "Penalty", "compute", "effective_dtype", "output_masks", "predictions",
           "rules"]
