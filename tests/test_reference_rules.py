"""Rules and profiles: complete, consistent, and every cited source exists and defines what it names."""

from __future__ import annotations

import pytest

from harness.reference import rules, sources
from harness.reference.rules import IMPLEMENTATIONS, PROFILES, RULES


def test_every_profile_chooses_an_existing_alternative_for_every_rule():
    for name, profile in PROFILES.items():
        assert set(profile) == set(RULES), name
        for rule, alt in profile.items():
            assert alt in RULES[rule].alternatives, (name, rule, alt)


def test_every_rule_has_two_alternatives_and_every_used_alternative_cites_a_source():
    used = {(rule, alt) for p in PROFILES.values() for rule, alt in p.items()}
    for rule in RULES.values():
        assert len(rule.alternatives) >= 2, rule.name
        for alt_name, alt in rule.alternatives.items():
            assert alt.description, (rule.name, alt_name)
            if (rule.name, alt_name) in used:
                assert alt.sources, f"{rule.name}={alt_name} is used by a profile but cites no source"


def _source_params():
    """Every source cited by RULES and, when it exists, by harness.reference.semantics' table."""
    for label, src in sources.cited():
        yield pytest.param(src, id=f"{label}:{src}")


@pytest.mark.parametrize("source", list(_source_params()))
def test_cited_source_defines_the_named_function(source):
    """The cited distribution's own wheel (downloaded once into sources.cache_dir(), a few MB for
    keras and tf-keras) has the cited file, and the file defines the cited function. TensorFlow's
    wheels are hundreds of MB: its sources are read from the installed copy where that is the exact
    version, else they are checked in the sweep (`python -m harness.reference.sources --installed`)."""
    src = source if isinstance(source, sources.Source) else sources.parse(source)  # malformed: fails, naming it
    if src.distribution in sources.LARGE_WHEELS:
        have = sources.installed_version(src.distribution)
        if have != src.version:
            pytest.skip(f"{src.distribution}=={src.version}'s wheel is hundreds of MB (installed here: {have}); "
                        "checked by `python -m harness.reference.sources --installed` in the tox environment "
                        "that installs it (tox -m sweep: tf212-tf215)")
        problem = sources.defines_installed(src)
    else:
        problem = sources.defines(src)
    assert problem is None, problem


def test_resolve_accepts_names_and_complete_overrides_only():
    assert rules.resolve("keras-2.3.1")["mask_normalisation"] == "all_entries"
    over = rules.resolve({**PROFILES["tf_keras-2.21"], "mask_normalisation": "all_entries"})
    assert over["mask_normalisation"] == "all_entries"
    with pytest.raises(KeyError):
        rules.resolve({**PROFILES["tf_keras-2.21"], "mask_normalisation": "bogus"})
    with pytest.raises(KeyError):
        rules.resolve("no-such-profile")


def test_every_registered_implementation_has_an_expected_profile():
    from harness.impls import IMPLEMENTATIONS as REGISTERED

    for impl in REGISTERED:
        assert impl in IMPLEMENTATIONS, f"{impl} is registered in harness.impls but has no expected profile"
