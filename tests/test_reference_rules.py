"""Rules and profiles: complete, consistent, and every cited source exists and defines what it names."""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest

from harness.reference import rules
from harness.reference.rules import IMPLEMENTATIONS, PROFILES, RULES, expected_profile

SITE = Path(sysconfig.get_paths()["purelib"])  # /work/venvs/core/.../site-packages
# keras 2.3.1 / 2.2.4 sources: their venvs, or `pip download keras==2.3.1 --no-deps` unzipped in /tmp/k231.
KERAS_231 = next((p for p in (Path("/work/venvs/keras231/lib/python3.11/site-packages"), Path("/tmp/k231"))
                  if (p / "keras" / "losses.py").exists()), Path("/tmp/k231"))
KERAS_224 = Path("/work/venvs/keras224/lib/python3.11/site-packages")
TF_215 = Path("/work/venvs/tf215/lib/python3.11/site-packages/keras/src")


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
    for rule in RULES.values():
        for alt_name, alt in rule.alternatives.items():
            for src in alt.sources:
                yield pytest.param(src, id=f"{rule.name}={alt_name}:{src}")


@pytest.mark.parametrize("source", list(_source_params()))
def test_cited_source_defines_the_named_function(source):
    """'path/in/site-packages.py:Class.function' exists and the file defines that function."""
    path, _, qualname = source.rpartition(":")
    if path.startswith("keras 2.3.1: "):
        root, path = KERAS_231, path.removeprefix("keras 2.3.1: ")
        if not root.exists():
            pytest.skip("keras 2.3.1 wheel not unpacked in /tmp/k231")
    elif path.startswith("keras 2.2.4: "):
        root, path = KERAS_224, path.removeprefix("keras 2.2.4: ")
        if not root.exists():
            pytest.skip("no keras 2.2.4 venv")
    elif path.startswith("tf 2.15: keras/src/"):
        root, path = TF_215, path.removeprefix("tf 2.15: keras/src/")
        if not root.exists():
            pytest.skip("no TF 2.15 venv")
    else:
        root = SITE
    file = root / path
    assert file.is_file(), f"{source}: no file {file}"
    text = file.read_text(encoding="utf-8")
    parts = qualname.split(".")
    assert re.search(rf"^\s*def {re.escape(parts[-1])}\(", text, re.M), f"{source}: no def {parts[-1]}"
    if len(parts) == 2:
        assert re.search(rf"^class {re.escape(parts[0])}\b", text, re.M), f"{source}: no class {parts[0]}"


@pytest.mark.parametrize("impl, versions, want", [
    ("keras3-tensorflow", {"keras": "3.15.1", "backend": "tensorflow"}, "keras-3.15"),
    ("keras3-jax", {"keras": "3.15.1", "backend": "jax"}, "keras-3.15-jax"),
    ("keras3-torch", {"keras": "3.15.1", "backend": "torch"}, "keras-3.15-torch"),
    ("keras3-numpy", {"keras": "3.15.1", "backend": "numpy"}, "keras-3.15-numpy"),
    ("tf_keras", {"tf_keras": "2.21.0", "tensorflow": "2.21.0"}, "tf_keras-2.21"),
    ("tf_keras-graph", {"tf_keras": "2.21.0"}, "keras2-graph"),
    ("tf.keras", {"tensorflow": "2.15.1"}, "tf.keras-2.15"),
    ("tf.keras-graph", {"tensorflow": "2.15.1"}, "tf.keras-2.15-graph"),
    ("keras2.3.1", {"keras": "2.3.1", "tensorflow": "2.21.0"}, "keras-2.3.1"),
    ("keras2.2.4", {"keras": "2.2.4", "tensorflow": "2.21.0"}, "keras-2.2.4"),
])
def test_expected_profile(impl, versions, want):
    assert expected_profile(impl, versions) == want


def test_every_implementation_has_a_profile():
    for impl in IMPLEMENTATIONS:
        assert expected_profile(impl, {}) in PROFILES
    with pytest.raises(KeyError):
        expected_profile("keras4", {})


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
