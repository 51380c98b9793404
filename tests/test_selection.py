"""The main job's ci corpus is chosen to test every rule (harness.selection, issue 17 item 2).

The recorded choice (harness/ci_selection.json) is derived: these tests fail when it is stale or
when its cases no longer distinguish what it says they do, and they check the greedy cover itself
on small candidate pools (reference only, no framework).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import coverage, selection
from harness.commands.run import drawn_cases, load_stored
from harness.reference import rules
from harness.spec import CaseError

ROOT = Path(__file__).resolve().parent.parent
SMALL = ("keras-3.15",)  # one profile and a few candidates keep the cover tests fast


@pytest.fixture(scope="module")
def recorded() -> selection.Selection:
    return selection.load()


@pytest.fixture(scope="module")
def stored() -> list:
    return load_stored([ROOT / "cases"])


def test_the_recorded_selection_is_current(recorded: selection.Selection) -> None:
    assert not recorded.stale(), (f"{selection.FILE} was chosen for other semantics, vocabulary or tolerances: "
                                  f"regenerate it with `{selection.REGENERATE}`")
    assert recorded.profiles == list(selection.PROFILES)


def test_the_ci_corpus_of_run_is_the_recorded_choice(recorded: selection.Selection) -> None:
    assert [c.id for c in drawn_cases("ci", None, recorded.seed)] == [e["case"] for e in recorded.chosen]


def test_the_recorded_cases_distinguish_what_the_file_says(recorded: selection.Selection, stored: list) -> None:
    cases = stored + recorded.cases()
    for name in recorded.profiles:
        got = {coverage.label(c) for c in coverage.coverage(cases, name, pairs=False).distinguished}
        missing = set(recorded.distinguished[name]) - got
        assert not missing, f"{name}: the ci cases no longer distinguish {sorted(missing)}: `{selection.REGENERATE}`"


def test_every_pick_adds_a_change_and_the_picks_are_in_greedy_order(recorded: selection.Selection) -> None:
    gains = [len(e["adds"]) for e in recorded.chosen]
    assert all(g > 0 for g in gains)
    assert gains == sorted(gains, reverse=True)  # each pick adds at most what the one before it added


@pytest.fixture(scope="module")
def small() -> selection.Selection:
    return selection.choose([], profiles=SMALL, candidates=6)


def test_the_cover_distinguishes_everything_any_candidate_does(small: selection.Selection) -> None:
    from harness.strategies import corpus_case

    each = [selection.case_changes(corpus_case(0, i), SMALL) for i in range(6)]
    anywhere = set().union(*(m.distinguished[SMALL[0]] for m in each))
    assert set(small.distinguished[SMALL[0]]) == anywhere
    picked = set().union(*(each[i].distinguished[SMALL[0]] for i in small.indices))
    assert picked == anywhere


def test_every_single_change_is_distinguished_or_listed_with_its_reason(small: selection.Selection) -> None:
    singles = {coverage.label([f]) for f in coverage.single_flips(rules.profile(SMALL[0]))}
    told = set(small.distinguished[SMALL[0]])
    untold = {u["change"]: u["reason"] for u in small.undistinguished[SMALL[0]]}
    assert singles <= told | set(untold)
    assert not told & set(untold)
    assert all(r.startswith(("changes no number", "changes numbers on")) for r in untold.values())
    # 6 cases, none of a zero loss weight folded into the loss: nothing to tell it by
    assert any(c.startswith("zero_loss_weight=") and r.startswith("changes no number") for c, r in untold.items())


def test_the_choice_is_the_same_in_two_processes() -> None:
    code = ("import json; from harness import selection; "
            f"s = selection.choose([], profiles={SMALL!r}, candidates=5).to_json(); s.pop('seconds'); "
            "print(json.dumps(s, sort_keys=True))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert json.loads(runs[0].stdout)["chosen"]


def test_a_malformed_selection_file_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "sel.json"
    bad.write_text(json.dumps({**selection.load().to_json(), "chosen": [{"index": "7"}]}))
    with pytest.raises(CaseError) as err:
        selection.load(bad)
    assert str(bad) in str(err.value) and "chosen[0].index" in str(err.value)
    with pytest.raises(CaseError) as err:
        selection.load(tmp_path / "missing.json")
    assert "missing.json" in str(err.value)


def test_ci_with_another_seed_is_refused(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as err:
        drawn_cases("ci", None, seed=3)
    assert err.value.code == 2
    assert "-n N" in capsys.readouterr().err
