"""Semantic rules: every choice on which Keras implementations differ, with named alternatives
(the table RULES lives in rulebook.py, data only; this module re-exports it), the profiles, and
the one accessor of a profile's choices.

A Rule is one question ("how is a masked loss normalised?"); each Alternative is one answer,
with the file and function of each implementation that gives it, as paths inside the cited
distribution's wheel (harness/reference/sources.py parses every form): `tf_keras/...` is
tf-keras 2.21.0, `keras/src/...` Keras 3.15.1, "tf 2.15: keras/src/..." the keras 2.15.0 wheel
that TensorFlow 2.15.1 installs as its tf.keras (same text as tf_keras 2.21 for every function
cited here), "keras 2.3.1: keras/..." and "keras 2.2.4: keras/..." the standalone wheels, and
"DIST==VERSION: file.py:Qualified.name" any other release. tests/test_reference_rules.py checks,
in each distribution's own wheel, that each cited file defines the cited function.

Rules found by running the implementations on drawn cases (each then confirmed in the source,
or, for zero_loss_weight, by eager vs tf.function runs): merge_mask,
loss_weights_dict_with_list_loss, single_loss_with_loss_weights, rnn_activity_regularizer,
sample_weight_broadcast (trailing_axis*), evaluate_output_log (Keras 3 compiled on TF),
zero_loss_weight, huber_last_axis and log_cosh_float64 (keras 2.3.1), dict_sample_weight (Keras 3),
additional_losses_sum (Keras 3 numpy), float64_compute (Keras 3 on JAX, torch, NumPy).

Error alternatives (the implementation raises): the reference returns NaN and a Breakdown note
that cites the Keras file whose code raises (harness.compare.predicts_error matches it against
the innermost Keras frame of the implementation's message).

A profile is a choice for every rule. Which release takes which alternative is the semantics
table (harness/reference/semantics.py: rows by lineage, version range and scope); `PROFILES`
are named points of it and `expected(impl, versions, path, mode)` the profile a run is judged
against. Version quirks are rows of that table, not code.

The reference reads a profile only through `chooses(profile, rule, alternative)` (and
`choice(profile, rule)` where it needs the name): both refuse an unknown rule, a profile without
a choice for the rule (there are no defaults) and an alternative the rule does not have. Every
module that reads choices calls `check_reads(__file__)` when it is imported, so a misspelt rule
or alternative written in it fails at import (see check_reads); tests/test_rule_choices.py
checks that every alternative is reached by some code path of the reference.

Rules that were suggested but refuted by the sources (kept here so nobody re-adds them):
- "activity regularizer summed, not divided by batch size" in Keras 3 >= 3.14: Keras 3.15.1
  `keras/src/layers/layer.py:Layer.__call__` divides by the batch size (divide_no_nan). Keras
  3.0-3.13 do sum it (keras-team/keras#22021 added the division in 3.14.0): a row of the
  semantics table, not a refutation of the earlier releases.
- "training_v1 folds the mask into sample weights and divides by all entries": tf_keras 2.21
  `tf_keras/src/engine/training_v1.py:Model._prepare_total_loss` calls
  `losses_utils.apply_valid_mask` (valid entries); only keras 2.3.1 divides by all entries.
- "Keras 3 divides by valid + epsilon": Keras 3.15.1 `keras/src/losses/loss.py:apply_mask` uses
  `divide_no_nan(total, valid)`, so a fully masked batch gives 0, not NaN and not total/eps.
- "per-output logs are weighted by loss_weight": every implementation logs the unweighted
  loss (the rule `output_log` is kept with its one used answer, for the record).
"""

from __future__ import annotations

import ast
import contextlib
import threading
from pathlib import Path
from typing import Iterator, Mapping

from harness.reference import semantics
from harness.reference.rulebook import RULES, Alternative, Rule, RuleError  # noqa: F401  (this module's API)


# Which implementation takes which alternative, by lineage, release and scope, is the semantics
# table (harness/reference/semantics.py); PROFILES are its named points, `expected` its query.
IMPLEMENTATIONS = tuple(semantics.IMPLEMENTATION_QUERIES)  # every implementation with semantics (harness.impls)


PROFILES = semantics.PROFILES  # the named points of the semantics table


def profile(name: str) -> dict[str, str]:
    """The rule -> alternative mapping of a profile name: a fixed name of PROFILES or a resolved
    one such as "keras3 3.13.2 backend=jax" (see harness.reference.semantics)."""
    return semantics.profile(name)


def expected(impl: str, versions: Mapping[str, str], path: str | None = None, mode: str | None = None) -> str:
    """The profile name `impl` at `versions` should follow on `path` in `mode` (semantics.expected)."""
    return semantics.expected(impl, versions, path, mode)


def resolve(profile: str | Mapping[str, str]) -> dict[str, str]:
    """A complete rule -> alternative mapping from a profile name or a (complete) mapping."""
    if isinstance(profile, str):
        try:
            return semantics.profile(profile)
        except semantics.SemanticsError as exc:
            raise KeyError(str(exc)) from None
    chosen = dict(profile)
    missing = [r for r in RULES if r not in chosen]
    unknown = [r for r in chosen if r not in RULES]
    if missing or unknown:
        raise KeyError(f"profile mapping: missing rules {missing}, unknown rules {unknown} "
                       "(start from PROFILES[name] and override)")
    for rule, alt in chosen.items():
        if alt not in RULES[rule].alternatives:
            raise KeyError(f"rule {rule!r} has no alternative {alt!r}; "
                           f"choose one of {', '.join(RULES[rule].alternatives)}")
    return chosen


# The profile of the low-level functions when none is given (forward.run, losses.LossContext,
# aggregate.predictions / output_masks, used so by hand-worked tests): a named profile, complete.
DEFAULT_PROFILE = "tf_keras-2.21"


# ---------------------------------------------------------------------------------------
# Reading a profile's choice
# ---------------------------------------------------------------------------------------


def _rule(rule: str) -> Rule:
    if rule not in RULES:
        raise RuleError(f"unknown rule {rule!r}; rules: {', '.join(RULES)}")
    return RULES[rule]


def _alternative(rule: str, alternative: str) -> None:
    if alternative not in _rule(rule).alternatives:
        raise RuleError(f"rule {rule!r} has no alternative {alternative!r}; "
                        f"its alternatives: {', '.join(RULES[rule].alternatives)}")


def choice(profile: Mapping[str, str], rule: str) -> str:
    """The alternative `profile` chooses for `rule`.

    RuleError when `rule` is not in RULES, when the profile has no choice for it (no default:
    a profile is complete, see resolve) or when its choice is not one of the rule's alternatives."""
    _rule(rule)
    if rule not in profile:
        raise RuleError(f"the profile has no choice for rule {rule!r} "
                        "(a profile is complete: start from PROFILES[name] and override)")
    _alternative(rule, profile[rule])
    for reads in _open_traces():
        reads.add(rule)
    return profile[rule]


_THREAD = threading.local()  # each thread's stack of open tracing_reads() sets


def _open_traces() -> list[set[str]]:
    return _THREAD.__dict__.setdefault("traces", [])


@contextlib.contextmanager
def tracing_reads() -> Iterator[set[str]]:
    """The rules whose choice is read (choice / chooses) in this thread while the block runs:
    what a reference result depends on (compare.ReferenceCache memoises by it). Per thread:
    judging in two threads at once (tests/test_order_independence.py) keeps the reads apart."""
    reads: set[str] = set()
    stack = _open_traces()
    stack.append(reads)
    try:
        yield reads
    finally:
        stack.pop()  # blocks nest within a thread: the last opened is this one


def chooses(profile: Mapping[str, str], rule: str, alternative: str) -> bool:
    """Whether `profile` chooses `alternative` for `rule`. A misspelt `alternative` is a
    RuleError, not False; otherwise as choice()."""
    _alternative(rule, alternative)
    return choice(profile, rule) == alternative


def _reads(tree: ast.Module) -> tuple[list[tuple[ast.Call, str]], list[ast.Compare]]:
    """(call, "choice" | "chooses") for each call of this module's accessors in `tree`
    (`alias.choice(...)` where alias is this module as imported there, or `choice(...)` imported
    by name), and every comparison in `tree`."""
    aliases: set[str] = set()
    names: dict[str, str] = {}  # local name -> accessor
    calls: list[ast.Call] = []
    compares: list[ast.Compare] = []
    for node in ast.walk(tree):  # one walk: this runs at every import of a module that reads choices
        if isinstance(node, ast.Call):
            calls.append(node)
        elif isinstance(node, ast.Compare):
            compares.append(node)
        elif isinstance(node, ast.ImportFrom) and node.module == "harness.reference":
            aliases |= {a.asname or a.name for a in node.names if a.name == "rules"}
        elif isinstance(node, ast.ImportFrom) and node.module == __name__:
            names |= {a.asname or a.name: a.name for a in node.names if a.name in ("choice", "chooses")}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == __name__ and a.asname}
    reads = []
    for call in calls:
        f = call.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in aliases:
            if f.attr in ("choice", "chooses"):
                reads.append((call, f.attr))
        elif isinstance(f, ast.Name) and f.id in names:
            reads.append((call, names[f.id]))
    return reads, compares


def check_reads(source_file: str) -> list[tuple[str | None, str | None]]:
    """Checks the choice()/chooses() calls written in `source_file` (a module calls it on its own
    `__file__` when imported); returns (rule, alternative) as each call writes them (None where
    not a string literal; alternative None for choice()).

    Each string literal given as the rule must name a rule of RULES and each one given as the
    alternative (chooses) must be one of that rule's; comparing a choice() with a string is
    refused (write chooses(profile, rule, "x"), which checks "x"). A name that is not a literal is
    checked when the call runs. RuleError names the file and line.

    Why the source, at import: a misspelt name in a branch that few cases reach would otherwise
    fail only once a case reaches it (before these accessors, it silently took the other branch).
    Module-level constants for every rule and alternative would catch the same at import, at the
    cost of a name per alternative; parsing and checking a module takes ~15 ms."""
    reads, compares = _reads(ast.parse(Path(source_file).read_text(encoding="utf-8"), source_file))
    choice_calls = {id(call) for call, accessor in reads if accessor == "choice"}
    for node in compares:
        sides = [node.left, *node.comparators]
        if (any(id(s) in choice_calls for s in sides)
                and any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides)):
            raise RuleError(f"{source_file}:{node.lineno}: choice() compared with a string; "
                            "write chooses(profile, rule, alternative), which checks the alternative")
    written = []
    for call, _ in reads:
        given = dict(zip(("profile", "rule", "alternative"), call.args)) | {k.arg: k.value for k in call.keywords}
        rule, alternative = (node.value if isinstance(node, ast.Constant) else None
                             for node in (given.get("rule"), given.get("alternative")))
        try:
            if rule is not None:
                _rule(rule)
                if alternative is not None:
                    _alternative(rule, alternative)
        except RuleError as exc:
            raise RuleError(f"{source_file}:{call.lineno}: {exc}") from None
        written.append((rule, alternative))
    return written


def semantics_hash() -> str:
    """A short hash of the semantics verdicts are judged with (semantics.semantics_hash)."""
    return semantics.semantics_hash()
