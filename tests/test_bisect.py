"""Bisection's parts that need no network: the search, the candidates, the rule predicate, the
refusals. (The whole command installs builds from PyPI: its run is in the closing note.)"""

from __future__ import annotations

from harness import bisect, cli
from harness.commands.changelog import evidence_cases
from harness.reference import rules, semantics


def _b(version: str, day: str = "2026-01-01") -> bisect.Build:
    return bisect.Build("keras-nightly", version, day)


def test_search_finds_the_first_bad_build_and_skips_what_cannot_be_observed():
    builds = [_b(f"3.14.0.dev20260101{h:02d}") for h in range(10)]
    first_bad = 6
    asked = []

    def is_good(b):
        asked.append(b.version)
        i = builds.index(b)
        return None if i == 5 else i < first_bad  # build 5 fails to install

    lo, hi = bisect.search(builds, is_good, lambda text: None)
    assert (lo, hi) == (4, 6)  # 5 skipped: the last good one seen is 4
    assert len(asked) <= 5


def test_between_keeps_the_versions_strictly_inside():
    releases = [_b(v) for v in ("3.13.2", "3.14.0.dev2026012304", "3.14.0", "3.14.1")]
    assert [b.version for b in bisect.between(releases, releases[0], releases[2])] == ["3.14.0.dev2026012304"]


def test_the_rule_predicate_tells_the_two_alternatives_apart_on_the_reference_numbers():
    cases, _ = evidence_cases(None, None)
    case = next(c for c in cases if c.id == "08da4e4d6678ad1c")  # an L1 activity penalty, float64
    fits = bisect.rule_predicate(case, "keras3-jax", "test_on_batch/eager", "activity_regularizer_scaling",
                                 "3.13.2", "3.14.0")
    from harness import reference
    profile = rules.profile(semantics.expected("keras3-jax", {"keras": "3.13.2"}, "test_on_batch", "eager"))
    old = reference.compute(case, profile, "test_on_batch").total
    new = reference.compute(case, {**profile, "activity_regularizer_scaling": "batch_mean"}, "test_on_batch").total
    build = _b("3.14.0.dev2026012004")
    assert fits(build, old) is True and fits(build, new) is False


def test_refusals_name_what_is_wrong(capsys):
    assert cli.main(["bisect", "--rule", "merge_mask", "--impl", "tf_keras", "--good", "3.13.2", "--bad", "3.14.0"]) == 2
    assert "expected a Keras 3 implementation" in capsys.readouterr().err
    assert cli.main(["bisect", "--impl", "keras3-jax", "--good", "3.13.2", "--bad", "3.14.0"]) == 2
    assert "expected --case CASE.json, --rule RULE or both" in capsys.readouterr().err
    assert cli.main(["bisect", "--rule", "merge_mask", "--impl", "keras3-jax", "--good", "3.13.2", "--bad", "3.14.0"]) == 2
    assert "no change of it between 3.13.2 and 3.14.0" in capsys.readouterr().err
    assert cli.main(["bisect", "--rule", "merge_mask", "--impl", "keras3-jax", "--good", "3.14", "--bad", "3.13"]) == 2
    assert "must come before" in capsys.readouterr().err
