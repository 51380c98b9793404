"""One record per implementation (harness/impls/__init__.py IMPLEMENTATIONS): every other
per-implementation list reads it, or is checked here against it.

- tox.ini: each environment of its env_list and labels runs, through its one `harness run`
  command, exactly the implementations whose record names the environment in `tox_envs`, in the
  registry's order (set_env HARNESS_IMPLS); every environment a record names is one of tox's.
- .github/workflows/matrix.yml runs the environments of tox.ini's labels core, sweep and nightly.
- harness/reference/semantics.py selects each implementation's semantics with its record's query,
  and harness/reference/rules.py lists the same implementations.
- The modes of the recorded results (tests/data/results) are their record's modes.
- `bench --impl all` runs the records marked `bench`; a reproducer opens with its record's install
  line and preamble, and an implementation without a preamble has no reproducer.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from harness.commands import bench as bench_cmd
from harness.commands import run as run_cmd
from harness.commands.impls import expand, github_matrix, read_tox_ini, tox_label
from harness.impls import IMPLEMENTATIONS, Implementation
from harness.reference import rules, semantics
from harness.report import repro

ROOT = Path(__file__).resolve().parent.parent
KERAS = {name: impl for name, impl in IMPLEMENTATIONS.items() if impl.family != "test"}


def tox_environments() -> list[str]:
    """Every environment of tox.ini's env_list and labels that runs the harness (not `report`)."""
    tox = read_tox_ini()["tox"]
    names = expand(",".join(tox["env_list"].splitlines()))
    for line in tox["labels"].splitlines():
        names += expand(line.partition("=")[2])
    return [name for name in dict.fromkeys(names) if name != "report"]


def tox_set_env(env: str) -> dict[str, str]:
    """[testenv] set_env for one environment, as tox resolves it: the unconditional lines and the
    lines whose condition the environment's factors meet ("a-b": a and b; "a,b": a or b)."""
    factors = set(env.split("-"))
    out: dict[str, str] = {}
    for line in read_tox_ini()["testenv"]["set_env"].splitlines():
        conditional = re.fullmatch(r"([\w.{},-]+):\s*(\w+)\s*=\s*(.*)", line.strip())
        if conditional:
            condition, key, value = conditional.groups()
            if any(set(alternative.split("-")) <= factors for alternative in expand(condition)):
                out[key] = value.strip()
        elif "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_the_tox_matrix_has_one_run_command_that_reads_harness_impls():
    commands = [c for c in read_tox_ini()["testenv"]["commands"].splitlines() if "harness run" in c]
    assert len(commands) == 1, commands
    assert commands[0].strip().startswith("python -m harness run ")  # no factor condition: every environment
    assert commands[0].endswith("--impl {env:HARNESS_IMPLS}")


@pytest.mark.parametrize("env", tox_environments())
def test_each_tox_environment_runs_the_implementations_whose_record_names_it(env):
    named = [name for name, impl in KERAS.items() if env in expand(impl.tox_envs)]
    given = tox_set_env(env).get("HARNESS_IMPLS", "")
    assert given.split(",") == named, (
        f"tox.ini gives {env} HARNESS_IMPLS = {given!r}; the records naming it in tox_envs: {named}")


@pytest.mark.parametrize("name", list(KERAS))
def test_each_record_names_tox_environments_that_exist(name):
    envs = expand(KERAS[name].tox_envs)
    assert envs, f"{name}: no tox_envs"
    unknown = sorted(set(envs) - set(tox_environments()))
    assert not unknown, f"{name}: tox_envs names {unknown}, which tox.ini's env_list and labels lack"


def test_expand_follows_tox_brace_syntax():
    assert expand("a{1,2}-{x,y}, b") == ["a1-x", "a1-y", "a2-x", "a2-y", "b"]
    assert expand("keras231") == ["keras231"]


def test_the_github_workflow_runs_every_environment_of_tox_labels_core_sweep_and_nightly():
    workflow = (ROOT / ".github" / "workflows" / "matrix.yml").read_text(encoding="utf-8")
    assert "matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}" in workflow
    assert 'echo "matrix=$(python -m harness impls --github-matrix)" >> "$GITHUB_OUTPUT"' in workflow
    envs = github_matrix()["toxenv"]
    for label in ("core", "sweep", "nightly"):
        assert set(tox_label(label)) <= set(envs), label
    assert len(envs) == len(set(envs)) and set(envs) <= set(tox_environments())


def test_the_github_matrix_is_one_line_of_json(capsys):
    from harness import cli

    assert cli.main(["impls", "--github-matrix"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == github_matrix()


@pytest.mark.parametrize("name", list(KERAS))
def test_each_record_selects_the_semantics_the_table_queries(name):
    impl = KERAS[name]
    assert impl.lineage in semantics.LINEAGES
    assert semantics.IMPLEMENTATION_QUERIES[name] == impl.semantics_query()


def test_the_reference_knows_exactly_the_recorded_implementations():
    assert set(semantics.IMPLEMENTATION_QUERIES) == set(KERAS)
    assert set(rules.IMPLEMENTATIONS) == set(KERAS)


def test_recorded_results_run_in_their_records_modes():
    seen: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests" / "data" / "results").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("kind") == "result":
                seen.setdefault(record["impl"], set()).update(p["mode"] for p in record["paths"])
    assert seen, "no recorded results"
    for name, modes in seen.items():
        assert modes <= set(KERAS[name].modes), f"{name} ran in {sorted(modes)}, its record says {KERAS[name].modes}"


def test_bench_all_runs_the_records_marked_bench():
    assert bench_cmd.BENCH_IMPLS == [name for name, impl in KERAS.items() if impl.bench]
    assert "keras3-tensorflow" in bench_cmd.BENCH_IMPLS


def _script(impl: str) -> str:
    case = json.loads((ROOT / "cases" / "motivating_two_outputs.json").read_text(encoding="utf-8"))
    return repro.reproducer(case, "id", impl, "test_on_batch/eager", recorded=1.0, reference=2.0)


@pytest.mark.parametrize("name", [name for name, impl in KERAS.items() if impl.repro_preamble])
def test_a_reproducer_opens_with_its_records_install_line_and_preamble(name):
    impl: Implementation = KERAS[name]
    script = _script(name)
    assert f"Needs only: {impl.repro_install} and numpy." in script
    preamble = impl.repro_preamble.replace("{shims}", repro.keras231_shims_source())
    assert preamble in script


@pytest.mark.parametrize("name", [name for name, impl in KERAS.items() if not impl.repro_preamble])
def test_an_implementation_without_a_preamble_has_no_reproducer(name):
    with pytest.raises(KeyError, match="replay"):
        _script(name)


def test_run_takes_implementations_comma_separated_or_repeated():
    parser = argparse.ArgumentParser()
    run_cmd.add_arguments(parser)
    assert parser.parse_args(["--impl", "tf_keras,tf_keras-graph", "--impl", "keras3-jax"]).impl == [
        "tf_keras", "tf_keras-graph", "keras3-jax"]
    assert parser.parse_args([]).impl is None  # every implementation importable here
    with pytest.raises(SystemExit):
        parser.parse_args(["--impl", ""])  # an unset HARNESS_IMPLS is refused, not "every implementation"
