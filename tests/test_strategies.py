"""The strategies draw valid, well-spread Cases; the fixed-seed corpus is the same everywhere."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

from harness import spec, vocabulary
from harness.features import CONDITIONS, FEATURES, all_features, features, forward
from harness.strategies import Constraints, cases, corpus, corpus_case

# --------------------------------------------------------------------------------------
# Every drawn case is valid, and has the properties the spec cannot check
# --------------------------------------------------------------------------------------


def _float32_exact(a: np.ndarray) -> bool:
    return a.dtype.kind in "iu" or bool(np.all(a.astype(np.float32).astype(np.float64) == a))


def check_drawn_case(case: spec.Case) -> None:
    """What every generated case promises (beyond harness.spec.validate)."""
    spec.validate(case, f"case {case.id}")
    assert spec.loads(spec.dumps(case)) == case  # also runs the JSON reader's checks
    # float32-exact numbers, so float32 and float64 implementations see the same values
    arrays = [i.data for i in case.inputs] + [w for layer in case.layers for w in layer.weights.values()]
    arrays += [o.target for o in case.outputs] + [o.sample_weight for o in case.outputs if o.sample_weight is not None]
    assert all(_float32_exact(a) for a in arrays)
    # every layer feeds an output (a functional Keras model silently drops the others)
    needed = {o.layer for o in case.outputs}
    for layer in reversed(case.layers):
        if layer.name in needed:
            needed.update(layer.inbound)
    assert {layer.name for layer in case.layers} | {i.name for i in case.inputs} <= needed
    # token ids are valid rows of the Embedding they feed
    for layer in case.layers:
        if layer.type == "Embedding":
            ids = next(i.data for i in case.inputs if i.name == layer.inbound[0])
            assert ids.min() >= 0 and ids.max() < layer.config["input_dim"]
    # weights are drawn so that they matter: an array of 2+ sample weights is not constant
    for out in case.outputs:
        if out.sample_weight is not None and out.sample_weight.size >= 2:
            assert not np.all(out.sample_weight == out.sample_weight.flat[0])
    lws = [o.loss_weight for o in case.outputs if o.loss_weight is not None]
    assert len(lws) < 2 or len(set(lws)) > 1
    # masked positions carry non-zero real targets (so the loss there is not trivially zero)
    tensors = forward(case)
    for out in case.outputs:
        mask = tensors[out.layer][1]
        if mask is not None and vocabulary.LOSSES[out.loss].target_kind == "real":
            assert np.all(out.target[~mask] != 0)
    # and the features are named from the documented list
    assert features(case) <= set(all_features())


@given(cases())
def test_every_drawn_case_is_valid(case: spec.Case) -> None:
    check_drawn_case(case)


def test_every_corpus_case_is_valid() -> None:
    for case in corpus(3, 100):
        check_drawn_case(case)


@given(cases(max_outputs=1, dtypes=("float64",), losses=("huber", "poisson"), sample_weight_forms=("dict",),
             masks=False, regularizers=(), add_loss=False, layers=("Dense", "Activation", "Concatenate", "Add", "GlobalAveragePooling1D")))
def test_constraints_are_respected(case: spec.Case) -> None:
    assert len(case.outputs) == 1 and case.dtype == "float64"
    assert case.outputs[0].loss in ("huber", "poisson")
    assert case.sample_weight_form == "dict"
    assert not any(layer.regularizers for layer in case.layers)
    types = {layer.type for layer in case.layers}
    assert not types & {"Masking", "AddLossL2", "SimpleRNN"}
    assert not any(layer.type == "Embedding" and layer.config["mask_zero"] for layer in case.layers)


def test_unknown_or_empty_constraints_are_refused() -> None:
    with pytest.raises(TypeError, match="max_layers"):
        cases(max_layers=3)
    with pytest.raises(ValueError, match="losses"):
        Constraints(losses=("mean_cubed_error",))
    with pytest.raises(ValueError, match="dtypes"):
        Constraints(dtypes=())


# --------------------------------------------------------------------------------------
# The fixed-seed corpus
# --------------------------------------------------------------------------------------

# Pinned: if the generator changes, these change, and whoever changed it must say so (and
# regenerate any corpus written with the old generator). Checked equal under numpy 1.26
# (venvs/tf215) and numpy 2.4 (venvs/core).
PINNED_IDS = {(0, 0): "ad07a3a9699522e7", (0, 1): "fd20da01fdfeb694", (7, 3): "d75f1e17b74ff789"}
PINNED_DIGEST_0_50 = "e4516bb0a3c6c4e4"


def test_corpus_is_reproducible() -> None:
    first = [c.id for c in corpus(0, 30)]
    second = [c.id for c in corpus(0, 30)]
    assert first == second
    assert len(set(first)) == 30
    # case i does not depend on how many were asked for
    assert [c.id for c in corpus(0, 10)] == first[:10]
    assert corpus_case(0, 29).id == first[29]


# Pinned for vocabulary version 1 (the 16 losses and 9 layers before any was appended): an
# entry appended with `since=2` or later must leave version 1's corpus, and its ids, as they are.
@pytest.mark.parametrize("seed,index", sorted(PINNED_IDS))
def test_corpus_ids_are_pinned(seed: int, index: int) -> None:
    assert corpus_case(seed, index, vocabulary_version=1).id == PINNED_IDS[(seed, index)]


def test_corpus_digest_is_pinned() -> None:
    digest = hashlib.sha256(" ".join(c.id for c in corpus(0, 50, vocabulary_version=1)).encode()).hexdigest()[:16]
    assert digest == PINNED_DIGEST_0_50


def test_each_vocabulary_version_draws_only_its_entries() -> None:
    for version in range(1, vocabulary.VERSION + 1):
        drawn = corpus(0, 200, vocabulary_version=version)
        losses = {o.loss for c in drawn for o in c.outputs}
        layers = {layer.type for c in drawn for layer in c.layers}
        assert losses <= set(vocabulary.losses_of(version)) and layers <= set(vocabulary.layers_of(version))
        newest = {n for n, e in {**vocabulary.LOSSES, **vocabulary.LAYERS}.items() if e.since == version
                  and (n in vocabulary.LOSSES or vocabulary.LAYERS[n].draw is not None)}
        assert newest <= losses | layers, f"version {version} never draws {sorted(newest - losses - layers)}"


def test_corpus_differs_between_seeds() -> None:
    assert {c.id for c in corpus(0, 10)}.isdisjoint({c.id for c in corpus(1, 10)})


def test_value_variants_keep_the_structure_and_change_every_value() -> None:
    k = 4
    grouped = corpus(0, 12, values_per_structure=k)
    # structure s comes k times in a row; its first appearance is case s of the plain corpus
    assert [c.id for c in grouped[::k]] == [c.id for c in corpus(0, 3)]
    for s in range(3):
        run = grouped[s * k:(s + 1) * k]
        assert len({spec.structure_key(c) for c in run}) == 1
        assert len({c.id for c in run}) == k
        base, variant = run[0], run[1]
        assert any(not np.array_equal(a.data, b.data) for a, b in zip(base.inputs, variant.inputs))
        assert any(not np.array_equal(a.target, b.target) for a, b in zip(base.outputs, variant.outputs))
        assert [o.loss_weight for o in base.outputs] == [o.loss_weight for o in variant.outputs]
        for case in run:
            spec.validate(case)
            for a in [i.data for i in case.inputs] + [o.target for o in case.outputs]:
                assert _float32_exact(np.asarray(a))
    assert len({spec.structure_key(c) for c in grouped}) == 3
    # reproducible, and the same in every environment (pinned like the plain corpus)
    assert [c.id for c in corpus(0, 12, values_per_structure=k)] == [c.id for c in grouped]
    assert corpus(0, 2, values_per_structure=k, vocabulary_version=1)[1].id == PINNED_VARIANT_0_0_1


PINNED_VARIANT_0_0_1 = "42ff91d3cef9388b"  # same under numpy 1.26 (venvs/tf215) and 2.4


def test_values_per_structure_must_be_positive() -> None:
    with pytest.raises(ValueError, match="values_per_structure"):
        corpus(0, 3, values_per_structure=0)


# --------------------------------------------------------------------------------------
# Spread: every feature is exercised
# --------------------------------------------------------------------------------------


def _rates(drawn: list[spec.Case]) -> dict[str, float]:
    counts = {name: 0 for name in all_features()}
    for case in drawn:
        for name in features(case):
            counts[name] += 1
    rates = {}
    for name, count in counts.items():
        base = counts[CONDITIONS[name]] if name in CONDITIONS else len(drawn)
        rates[name] = count / base if base else float("nan")
    return rates


def test_corpus_features_each_reach_ten_percent() -> None:
    # 1000 cases, not 400: a feature drawn at about 12% (mask_merge: 11.5% of 2000) has a standard
    # error of 1.6 points at 400 and fell to 8% there by chance when version 7 changed the draws;
    # at 1000 it is 1 point. The bar stays 10%.
    rates = _rates(corpus(0, 1000))
    each = ("loss:", "layer:")
    low = {n: round(r, 3) for n, r in rates.items() if not n.startswith(each) and not r >= 0.10}
    assert not low, f"features below 10% of 1000 corpus cases: {low}"
    # 20 losses drawn per output and 11 body layers (6 of them only on a sequence): each cannot reach
    # 10% by design; each must be well present: 5%, issue 19's bar for every new loss and layer.
    low_entries = {n: r for n, r in rates.items() if n.startswith(each) and r < 0.05}
    assert not low_entries, f"losses or layers below 5% of 1000 corpus cases: {low_entries}"


_DRAW_FEATURES = """
import json
from harness.commands.cases import draw_with_hypothesis
from harness.features import features
drawn = draw_with_hypothesis(800, seed=0)
print(json.dumps(sorted(set().union(*(features(c) for c in drawn)))))
"""


def test_hypothesis_draws_every_named_feature() -> None:
    # Hypothesis favours simple examples, so its spread is narrower than the corpus'; every
    # named feature must still come up in a few hundred (seeded) examples. Drawn in a fresh
    # process: Hypothesis biases its choices with constants from the modules already imported,
    # so inside a test session the draws depend on which tests ran before (seen: no focal loss
    # at all in 300 examples after the full suite, 12 in a fresh process). 400, not 300, since
    # vocabulary version 2 (17 losses): its 300 seeded examples drew binary_focal_crossentropy 8
    # times, none with apply_class_balancing; 400 draw it 28 times. 800 since vocabulary version 12
    # (class_weight's draws move Hypothesis's path): 400 drew categorical_focal_crossentropy 7 times,
    # never with alpha, 500-700 still without alpha; 800 draw every feature (about 8 s).
    proc = subprocess.run([sys.executable, "-c", _DRAW_FEATURES], capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k != "HYPOTHESIS_PROFILE"})
    assert proc.returncode == 0, proc.stderr
    seen = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    missing = sorted(set(FEATURES) - seen)
    assert not missing, f"never drawn by Hypothesis in 800 examples: {missing}"


# --------------------------------------------------------------------------------------
# Shrinking: a failing case shrinks to a small model
# --------------------------------------------------------------------------------------

_FIND = settings(max_examples=500, database=None, derandomize=True, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
# Shrinking is checked on vocabulary version 3: Hypothesis's path to the minimum moves with the
# length of every choice list, and from version 4 (20 losses; 17, 18 or 19 measured alike for 18)
# this search stops at 2 outputs and 3 layers instead of 1 and 2: a finding about the generator's
# shrinkability (the number of outputs is drawn before them), left visible in the closing note.
def test_shrinks_to_one_output_one_sample_and_few_layers() -> None:
    minimal = find(cases(vocabulary_version=3), lambda c: "fully_masked_sample" in features(c), settings=_FIND)
    assert len(minimal.outputs) == 1
    assert minimal.batch_size == 1
    assert minimal.inputs[0].data.shape[1] == 1  # one timestep
    assert len(minimal.layers) <= 2  # the mask source and the head


def test_shrinks_toward_fewer_features() -> None:
    minimal = find(cases(), lambda c: len(c.outputs) >= 2, settings=_FIND)
    assert len(minimal.outputs) == 2
    assert minimal.sample_weight_form == "omitted" and minimal.loss_weights_form == "omitted"
    assert not any(layer.regularizers for layer in minimal.layers)


# --------------------------------------------------------------------------------------
# python -m harness cases
# --------------------------------------------------------------------------------------


def test_cli_writes_the_corpus_under_its_ids_and_shows_a_file(tmp_path, capsys) -> None:
    from harness.cli import main

    assert main(["cases", "--write", str(tmp_path), "-n", "3", "--seed", "0"]) == 0
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(f"{c.id}.json" for c in corpus(0, 3))
    capsys.readouterr()
    assert main(["cases", "--show", str(tmp_path / written[0])]) == 0
    shown = capsys.readouterr()
    assert spec.loads(shown.out).id == written[0][:-5]
    assert "valid" in shown.err


def test_cli_show_refuses_a_malformed_file_with_exit_2(tmp_path, capsys) -> None:
    from harness.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "dtype": "float16"}')
    assert main(["cases", "--show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "$.dtype" in err


def test_cli_stats_counts_features_and_flags_low_ones(capsys) -> None:
    from harness.cli import main

    status = main(["cases", "--stats", "-n", "5", "--seed", "0"])
    out = capsys.readouterr().out
    # Five cases cannot cover every feature: some are flagged, and the exit status says so.
    assert status == 1 and "LOW" in out
    assert f"loss:* ({len(vocabulary.LOSSES)} losses)" in out and "outputs>=2" in out
