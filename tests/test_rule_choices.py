"""Rule choices: the reference reads a profile only through rules.choice / rules.chooses, which
refuse a rule or an alternative that RULES does not have, and every alternative of every rule is
reached by some code path of the reference. Reference only (no Keras); a few seconds."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from harness import features, reference, spec, strategies
from harness.reference import aggregate, distributed, rules
from harness.reference.rules import PROFILES, RULES, RuleError, choice, chooses

ROOT = Path(__file__).resolve().parents[1]
HARNESS = sorted((ROOT / "harness").rglob("*.py"))
REFERENCE = sorted((ROOT / "harness" / "reference").glob("*.py"))

# (rule, alternative) -> why no case the vocabulary can express reaches it. Empty: every
# alternative is reached (an entry here that is reached fails the test, so the list stays true).
UNREACHABLE: dict[tuple[str, str], str] = {}


def test_choice_answers_the_profiles_alternative_and_refuses_what_rules_does_not_know():
    profile = PROFILES["keras-2.3.1"]
    assert choice(profile, "mask_normalisation") == "all_entries"
    assert chooses(profile, "mask_normalisation", "all_entries")
    assert not chooses(profile, "mask_normalisation", "valid_entries")
    with pytest.raises(RuleError, match="unknown rule 'mask_normalization'"):
        choice(profile, "mask_normalization")
    with pytest.raises(RuleError, match="rule 'mask_normalisation' has no alternative 'all_entry'"):
        chooses(profile, "mask_normalisation", "all_entry")  # an error, not False
    with pytest.raises(RuleError, match="no choice for rule 'merge_mask'"):
        choice({"mask_normalisation": "all_entries"}, "merge_mask")  # no default
    with pytest.raises(RuleError, match="rule 'merge_mask' has no alternative 'xor'"):
        choice({**profile, "merge_mask": "xor"}, "merge_mask")


def _import(path: Path, body: str) -> None:
    path.write_text("from harness.reference import rules as rules_mod\n\n"
                    "rules_mod.check_reads(__file__)\n\n\n"
                    f"def never_called(profile):\n    {body}\n")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module_spec.loader.exec_module(importlib.util.module_from_spec(module_spec))


@pytest.mark.parametrize("body, error", [
    ('return rules_mod.chooses(profile, "mask_normalization", "valid_entries")', "unknown rule 'mask_normalization'"),
    ('return rules_mod.chooses(profile, "mask_normalisation", "valid_entry")', "has no alternative 'valid_entry'"),
    ('return rules_mod.choice(profile, "merge_mask") == "or"', "choice\\(\\) compared with a string"),
])
def test_a_misspelt_rule_or_alternative_fails_the_import_of_the_module_that_names_it(tmp_path, body, error):
    _import(tmp_path / "spelt_right.py", 'return rules_mod.chooses(profile, "mask_normalisation", "valid_entries")')
    with pytest.raises(RuleError, match=f"misspelt.py:7: .*{error}"):
        _import(tmp_path / "misspelt.py", body)


def _checks_itself_at_import(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
               and getattr(node.value.func, "attr", None) == "check_reads"
               and [getattr(a, "id", None) for a in node.value.args] == ["__file__"] for node in tree.body)


def test_every_module_that_reads_a_choice_checks_its_names_at_import():
    readers = set()
    for path in HARNESS:
        if rules.check_reads(str(path)):  # checks the names of every module, imported or not
            readers.add(path.relative_to(ROOT).as_posix())
            assert _checks_itself_at_import(ast.parse(path.read_text(encoding="utf-8"))), (
                f"{path}: reads rule choices but does not call rules_mod.check_reads(__file__) at import")
    assert {"harness/reference/aggregate.py", "harness/reference/forward.py", "harness/reference/losses.py",
            "harness/reference/distributed.py", "harness/compare.py"} <= readers


def test_the_reference_names_every_alternative_of_a_rule_but_the_one_its_else_branches_take():
    # So an alternative added to RULES without code of its own fails here: it and the alternative
    # the `else` branches took so far would both be unnamed.
    named = {read for path in REFERENCE for read in rules.check_reads(str(path))}
    unnamed = {name: [alt for alt in rule.alternatives if (name, alt) not in named] for name, rule in RULES.items()}
    several = {name: alts for name, alts in unnamed.items() if len(alts) > 1}
    assert not several, f"alternatives no chooses() of the reference names (at most one per rule): {several}"


def test_no_module_reads_a_choice_but_through_the_accessor():
    def raw_read(node: ast.AST) -> str | None:
        if isinstance(node, ast.Subscript) and getattr(node.value, "id", getattr(node.value, "attr", None)) != "RULES":
            key = node.slice
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args:
            key = node.args[0]
        else:
            return None
        return key.value if isinstance(key, ast.Constant) and key.value in RULES else None

    found = [f"{path.relative_to(ROOT)}:{node.lineno}: {raw_read(node)}" for path in HARNESS
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if raw_read(node)]
    assert not found, "rule choices read as raw mapping entries (use rules.chooses):\n" + "\n".join(found)


# --- every alternative reached ----------------------------------------------------------------

# A dict y (vocabulary version 5): the first for one output, the first beside dict sample weights.
_V5 = [c for c in strategies.corpus(0, 200, vocabulary_version=5) if c.y_form == "dict"]
_DICT_Y = [next(c for c in _V5 if len(c.outputs) == 1), next(c for c in _V5 if c.sample_weight_form == "dict")]

# A (batch, 1) sample-weight column (vocabulary version 7): the first.
_COLUMN = next(c for c in strategies.corpus(0, 40, vocabulary_version=7)
               if any(spec.sample_weight_kind(c, o) == "column" for o in c.outputs))

# A reduction some lineage refuses (vocabulary version 8): the first.
_REDUCTION = next(c for c in strategies.corpus(0, 40, vocabulary_version=8)
                  if any(o.loss_options.get("reduction") in ("mean", "mean_with_sample_weight", "auto") for o in c.outputs))

# A TimeDistributed(Dense) with an activity regularizer (vocabulary version 11): the first.
_TIME_DISTRIBUTED = next(c for c in strategies.corpus(0, 100, vocabulary_version=11)
                         if any(layer.type == "TimeDistributedDense" and "activity" in layer.regularizers
                                for layer in c.layers))

# class_weight beside a sample weight (vocabulary version 12): the first.
_CLASS_WEIGHT = next(c for c in strategies.corpus(0, 200, vocabulary_version=12)
                     if c.class_weight is not None and c.sample_weight_form != "omitted")

# A BatchNormalization on a masked tensor (vocabulary version 14; rule batch_norm_mask): the first.
_BATCH_NORM_ON_MASK = next(c for c in strategies.corpus(0, 200, vocabulary_version=14)
                           if "batch_norm_on_mask" in features.features(c))

# A Bidirectional(LSTM) on a masked sequence (vocabulary version 15; rule bidirectional_masked_steps).
_BIDIRECTIONAL_ON_MASK = next(c for c in strategies.corpus(0, 300, vocabulary_version=15)
                              if "bidirectional_on_mask" in features.features(c))

# A dict y beside a dict sample weight that leaves an output out (vocabulary version 16; rule
# partial_dict_sample_weight): the first.
_PARTIAL_DICT = next(c for c in strategies.corpus(0, 300, vocabulary_version=16)
                     if c.y_form == "dict" and "sample_weight_partial" in features.features(c))

# A list sample weight with None (rule none_in_sample_weight_list) and a (batch, time, 1) one (rule
# timestep_weight_trailing_axis), vocabulary version 16: the first of each.
_NONE_IN_LIST = next(c for c in strategies.corpus(0, 300, vocabulary_version=16)
                     if c.sample_weight_form == "list" and "sample_weight_partial" in features.features(c))
_TRAILING_AXIS = next(c for c in strategies.corpus(0, 300, vocabulary_version=16)
                      if "sample_weight_trailing_axis" in features.features(c))

CASES = ([spec.load(p) for p in sorted((ROOT / "cases").rglob("*.json"))]
         + strategies.corpus(0, 40, vocabulary_version=1)  # corpus case 35 is the first with a SimpleRNN activity regularizer
         + _DICT_Y + [_COLUMN, _REDUCTION, _TIME_DISTRIBUTED, _CLASS_WEIGHT, _BATCH_NORM_ON_MASK,
                                       _BIDIRECTIONAL_ON_MASK, _PARTIAL_DICT, _NONE_IN_LIST,
                                       _TRAILING_AXIS])


def _run(case: spec.Case, profile: dict[str, str]) -> None:
    """Every entry point of the reference, on every path compute supports."""
    for path in aggregate.WHOLE_BATCH_PATHS + aggregate.BATCHED_PATHS + aggregate.LOOP_PATHS:
        reference.compute(case, profile, path).log_entries  # the entries its logs hold, read per profile
    reference.effective_dtype(case, profile)
    reference.predictions(case, profile)
    distributed.differentiated(case, profile)


def test_every_alternative_of_every_rule_is_reached_by_some_code_path_of_the_reference(monkeypatch):
    """Recorded: every (rule, alternative) choice() answers while the reference computes a case
    under a profile with one rule set to the alternative sought, over every case and profile.
    Each search stops at the first (case, profile) that reaches what it seeks; they are tried
    case i under profile i + shift, so the first pass meets every case (a SimpleRNN activity
    regularizer is rare) and every profile (the replica_* rules are read under a distribution
    strategy only)."""
    reached: set[tuple[str, str]] = set()
    answer = rules.choice

    def recording(profile: dict[str, str], rule: str) -> str:
        alt = answer(profile, rule)
        reached.add((rule, alt))
        return alt

    monkeypatch.setattr(rules, "choice", recording)
    wanted = [(name, alt) for name, rule in RULES.items() for alt in rule.alternatives]
    profiles = list(PROFILES.values())
    order = [(case, profiles[(i + shift) % len(profiles)]) for shift in range(len(profiles))
             for i, case in enumerate(CASES)]
    for rule, alt in wanted:
        for case, profile in order:
            if (rule, alt) in reached or (rule, alt) in UNREACHABLE:
                break
            _run(case, {**profile, rule: alt})
    covered = reached | set(UNREACHABLE)
    missing = [f"{rule}={alt}" for rule, alt in wanted if (rule, alt) not in covered]
    assert not missing, f"alternatives no code path of the reference reaches: {', '.join(missing)}"
    stale = sorted(set(UNREACHABLE) & reached)
    assert not stale, f"on UNREACHABLE but reached: {stale}"
