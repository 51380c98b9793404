"""The HTML report (`python -m harness report`): what a maintainer reads, checked structurally.

Two kinds of input:
- `tests/data/results/*.jsonl`: results recorded by real runs of `python -m harness run` (see
  tests/data/results/README.md for the commands); used to check that every verdict in them is
  counted and grouped, and to run one generated reproducer (test_report_repro.py).
- a *synthetic* results file written by `synthetic_results` below: hand-built records around
  the stored motivating case, with hostile strings in every field a person's eye reaches. It
  is never presented as a run; it exists to check grouping, breakdowns and escaping exactly.
- hand-built results with verdicts in every section (`every_section_results`: loss paths, a
  whole run, gradient, SGD update, distribution), shaped like the main job's files (one per
  environment) and with coloured (ANSI) error messages as TensorFlow and JAX write them: they
  check that the headline counts every verdict and that the page reads well.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import reference, spec
from harness.reference import rules
from harness.report import loading, render
from harness.results import decode_float

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "data" / "results"
CASE_FILE = ROOT / "cases" / "motivating_two_outputs.json"

SCRIPT_INJECTION = "<script>alert('x')</script>"
ATTR_INJECTION = '"><img src=x onerror=alert(1)>'


# --------------------------------------------------------------------------------------
# A small HTML tree (html.parser) with the queries the tests need
# --------------------------------------------------------------------------------------


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: "Node | None"):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **attrs: str) -> list["Node"]:
        out = []
        for n in self.iter():
            if n.tag != tag:
                continue
            if all((n.attrs.get(k.rstrip("_")) or "").split().count(v) if k.startswith("class")
                   else n.attrs.get(k) == v for k, v in attrs.items()):
                out.append(n)
        return out

    def by_id(self, ident: str) -> "Node":
        for n in self.iter():
            if n.attrs.get("id") == ident:
                return n
        raise KeyError(ident)


VOID = {"meta", "link", "br", "img", "input", "hr", "col", "area", "base", "source", "wbr"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID and tag not in ("circle", "line"):
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html: str) -> Node:
    b = TreeBuilder()
    b.feed(html)
    b.close()
    return b.root


# --------------------------------------------------------------------------------------
# The synthetic results file
# --------------------------------------------------------------------------------------


def _reference_total(case: spec.Case, profile: dict[str, str], path: str) -> float:
    return reference.compute(case, profile, path).total


def synthetic_results(folder: Path) -> Path:
    """A hand-built results file (NOT a run): tf_keras on the motivating case, with
    - test_on_batch/eager: agree (the recorded total *is* the reference total),
    - evaluate/eager: explained by evaluate_total=batch_mean (recorded = that reference total),
    - train_on_batch/eager: unexplained, recorded total 1.5 x the reference, reason with <script>,
    - fit/eager: error whose message carries an attribute-breaking string,
    and keras3-jax: crashed with a hostile stderr tail. Header versions carry hostile text too."""
    case = spec.load(CASE_FILE)
    cid = case.id
    expected = rules.PROFILES["tf_keras-2.21"]
    tob = _reference_total(case, expected, "test_on_batch")
    ev_alt = {**expected, "evaluate_total": "batch_mean"}
    ev_expected = _reference_total(case, expected, "evaluate")
    ev_alt_total = _reference_total(case, ev_alt, "evaluate")
    tr = _reference_total(case, expected, "train_on_batch")
    records = [
        {"kind": "header", "schema": 1, "impl": "tf_keras", "started": "2026-01-01T10:00:00+0000",
         "versions": {"python": "3.11.7", "tensorflow": "2.21.0", "tf_keras": "2.21.0 " + SCRIPT_INJECTION,
                      "backend": "tensorflow"}},
        {"kind": "header", "schema": 1, "impl": "keras3-jax", "started": "2026-01-01T10:05:00+0000",
         "versions": {"python": "3.11.7", "keras": "3.15.1", "jax": "0.10.2", "backend": "jax"}},
        {"kind": "case", "schema": 1, "case_id": cid, "case": case.to_json()},
        {"kind": "result", "schema": 1, "case_id": cid, "impl": "tf_keras", "status": "ok", "seconds": 2.5,
         "paths": [
             {"path": "test_on_batch", "mode": "eager", "status": "ok", "total": tob},
             {"path": "evaluate", "mode": "eager", "status": "ok", "total": ev_alt_total},
             {"path": "train_on_batch", "mode": "eager", "status": "ok", "total": 1.5 * tr,
              "terms": {"regularization": 0.125}},
             {"path": "fit", "mode": "eager", "status": "error", "error_type": "ValueError",
              "error_message": "bad " + ATTR_INJECTION + " [at tf_keras/src/engine/training.py:1 in fit]"},
         ],
         "verdicts": {
             "test_on_batch/eager": {"verdict": "agree", "profile": "tf_keras-2.21", "value": tob, "expected": tob,
                                     "rel_diff": 0.0},
             "evaluate/eager": {"verdict": "explained", "profile": "tf_keras-2.21",
                                "rules": {"evaluate_total": "batch_mean"}, "value": ev_alt_total,
                                "expected": ev_expected, "explained_value": ev_alt_total, "rel_diff": 0.01,
                                "differing_terms": ["total"]},
             "train_on_batch/eager": {"verdict": "unexplained", "profile": "tf_keras-2.21", "stage": "loss",
                                      "value": 1.5 * tr, "expected": tr, "rel_diff": 0.5,
                                      "differing_terms": ["total", "regularization"],
                                      "reason": "synthetic " + SCRIPT_INJECTION},
             "fit/eager": {"verdict": "error", "profile": "tf_keras-2.21",
                           "reason": "ValueError: bad " + ATTR_INJECTION},
         }},
        {"kind": "result", "schema": 1, "case_id": cid, "impl": "keras3-jax", "status": "crashed", "seconds": 1.0,
         "paths": [], "message": "worker killed by signal 9 (case)", "stderr_tail": "Traceback " + SCRIPT_INJECTION,
         "verdicts": {"*": {"verdict": "crashed", "profile": "", "reason": "worker killed " + ATTR_INJECTION}}},
    ]
    path = folder / "synthetic_handbuilt.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    results = synthetic_results(folder)
    out = folder / "out" / "index.html"
    view = render.write([results], out)
    html = out.read_text(encoding="utf-8")
    return {"results": results, "out": out, "view": view, "html": html, "tree": parse(html)}


RED, BOLD, RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"
LIST_ERROR = {"additional_losses_sum": "list_error"}  # a rule under which Keras raises (keras3 numpy)


def every_section_results(folder: Path) -> tuple[list[Path], dict[str, Counter]]:
    """Hand-built results files (NOT a run), one per environment as the main job writes them,
    with verdicts of every kind in every section, and the verdict counts per section that the
    headline must show (computed from the verdicts written):

    - tfkeras221: tf_keras on loss paths (agree; an error whose message is coloured), gradient
      (agree, 2 unexplained) and SGD update (explained, error); tf_keras-mirrored on
      distribution (agree on split and on an update, unexplained replica losses, an error on fit
      with a coloured reason). No loss path is unexplained: the headline's unexplained are all
      gradient and distribution verdicts.
    - keras315-tensorflow: keras3-tensorflow agrees on train_on_batch (a long chart label) and
      raises on fit, explained by additional_losses_sum=list_error (the reference predicts it).
    - keras315-jax: keras3-jax crashed (the whole run, key "*")."""
    case = spec.load(CASE_FILE)
    cid = case.id
    tf_profile, k3_profile = "tf_keras-2.21", "keras-3.15"
    tob = _reference_total(case, rules.PROFILES[tf_profile], "test_on_batch")
    tr = _reference_total(case, rules.PROFILES[k3_profile], "train_on_batch")
    fit_error = ("ValueError", f"{RED}Dimensions must be equal{RESET}, but are 3 and {BOLD}4{RESET} "
                 "[at tf_keras/src/engine/compile_utils.py:1 in __call__]")
    list_error = ("AttributeError", "'list' object has no attribute 'dtype' [at keras/src/backend/numpy/numpy.py:1 in sum]")
    runs = {  # (environment, implementation) -> path results, status, {section: {key: verdict}}
        ("tfkeras221", "tf_keras"): ([
            {"path": "test_on_batch", "mode": "eager", "status": "ok", "total": tob},
            {"path": "fit", "mode": "eager", "status": "error", "error_type": fit_error[0], "error_message": fit_error[1]},
        ], "ok", {
            "loss": {"test_on_batch/eager": {"verdict": "agree", "profile": tf_profile, "value": tob, "expected": tob,
                                             "rel_diff": 0.0},
                     "fit/eager": {"verdict": "error", "profile": tf_profile, "reason": ": ".join(fit_error)}},
            "gradient": {"gradient/loss": {"verdict": "agree", "profile": tf_profile, "value": tob, "expected": tob},
                         "gradient/hidden/kernel": {"verdict": "unexplained", "profile": tf_profile, "stage": "gradient",
                                                    "value": 2.0, "expected": 1.0, "reason": "entry [0, 0]"},
                         "gradient/hidden/bias": {"verdict": "unexplained", "profile": tf_profile, "stage": "gradient",
                                                  "value": 0.5, "expected": 0.25, "reason": "entry [1]"}},
            "sgd_update": {"gradient/hidden/kernel/sgd_update": {"verdict": "explained", "profile": tf_profile,
                                                                 "rules": {"mask_normalisation": "all_entries"}},
                           "gradient/hidden/bias/sgd_update": {"verdict": "error", "profile": tf_profile,
                                                               "reason": "update step: RuntimeError: no update"}},
        }),
        ("tfkeras221", "tf_keras-mirrored"): ([], "ok", {
            "distribution": {"distribution/split": {"verdict": "agree", "profile": "tf_keras-2.21-mirrored"},
                             "distribution/replica_losses": {"verdict": "unexplained", "stage": "distribution",
                                                             "profile": "tf_keras-2.21-mirrored", "reason": "replica 1"},
                             "distribution/fit/compiled": {"verdict": "error", "profile": "tf_keras-2.21-mirrored",
                                                           "reason": f"{RED}TypeError{RESET}: 'NoneType' object is not callable"},
                             "distribution/gradient/hidden/kernel/sgd_update": {"verdict": "agree",
                                                                                "profile": "tf_keras-2.21-mirrored"}},
        }),
        ("keras315-tensorflow", "keras3-tensorflow"): ([
            {"path": "train_on_batch", "mode": "compiled", "status": "ok", "total": tr},
            {"path": "fit", "mode": "compiled", "status": "error", "error_type": list_error[0],
             "error_message": list_error[1]},
        ], "ok", {
            "loss": {"train_on_batch/compiled": {"verdict": "agree", "profile": k3_profile, "value": tr, "expected": tr,
                                                 "rel_diff": 3e-8},
                     "fit/compiled": {"verdict": "explained", "profile": k3_profile, "rules": LIST_ERROR,
                                      "reason": ": ".join(list_error)}},
        }),
        ("keras315-jax", "keras3-jax"): ([], "crashed", {
            "run": {"*": {"verdict": "crashed", "profile": "", "reason": "worker killed by signal 9"}},
        }),
    }
    files: dict[str, list[dict]] = {}
    expected: dict[str, Counter] = {s: Counter() for s in loading.SECTIONS}
    for (env, impl), (paths, status, sections) in runs.items():
        records = files.setdefault(env, [{"kind": "case", "schema": 1, "case_id": cid, "case": case.to_json()}])
        records.insert(0, {"kind": "header", "schema": 1, "impl": impl, "started": "2026-01-01T10:00:00+0000",
                           "versions": {"python": "3.11.7"}})
        verdicts = {}
        for section, by_key in sections.items():
            verdicts.update(by_key)
            expected[section].update(v["verdict"] for v in by_key.values())
        records.append({"kind": "result", "schema": 1, "case_id": cid, "impl": impl, "status": status, "seconds": 1.0,
                        "paths": paths, "verdicts": verdicts})
    out = []
    for env, records in files.items():
        path = folder / f"{env}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        out.append(path)
    return out, expected


def headline_counts(tree: Node) -> dict[str, Counter]:
    """The page's headline table: section -> verdict -> count, as shown."""
    table = tree.by_id("headline-counts")
    out = {}
    for row in table.find_all("tr"):
        if "data-section" in row.attrs:
            out[row.attrs["data-section"]] = Counter({td.attrs["data-verdict"]: int(td.text()) for td in row.find_all("td")})
    return out


@pytest.fixture(scope="module")
def every_section(tmp_path_factory):
    folder = tmp_path_factory.mktemp("every-section")
    inputs, expected = every_section_results(folder)
    out = folder / "site" / "index.html"
    view = render.write(inputs, out)
    html = out.read_text(encoding="utf-8")
    return {"inputs": inputs, "expected": expected, "out": out, "view": view, "html": html, "tree": parse(html),
            "findings": json.loads((out.parent / "findings.json").read_text(encoding="utf-8"))}


# --------------------------------------------------------------------------------------
# Grouping, counts and breakdown values
# --------------------------------------------------------------------------------------


def test_every_non_agreeing_verdict_is_one_group_with_its_kind(synthetic):
    tree = synthetic["tree"]
    articles = tree.find_all("article", class_="group")
    kinds = Counter(a.attrs["data-kind"] for a in articles)
    # explained (evaluate_total), unexplained (train_on_batch), failures: the fit error and the crash.
    assert kinds == {"explained": 1, "unexplained": 1, "failure": 2}, kinds
    index_rows = tree.find_all("tr")
    linked = {r.attrs.get("data-group") for r in index_rows if r.attrs.get("data-group")}
    assert linked == {a.attrs["id"][2:] for a in articles}, "the index links every group"


def _chip_counts(cell: Node) -> Counter:
    return Counter({chip.attrs["title"]: int(chip.text().split()[-1]) for chip in cell.find_all("span", class_="chip")})


def test_overview_counts_each_verdict_of_the_file(synthetic):
    table = synthetic["tree"].by_id("overview").find_all("table")[0]
    rows = {r.find_all("th")[0].text().split()[0]: r.find_all("td") for r in table.find_all("tr") if r.find_all("td")}
    heads = [th.text() for th in table.find_all("th") if th.attrs.get("scope") == "col"]
    assert _chip_counts(rows["tf_keras"][-1]) == {"agree": 1, "explained": 1, "unexplained": 1, "error": 1}
    assert _chip_counts(rows["keras3-jax"][-1]) == {"crashed": 1}
    evaluate = heads.index("evaluate") - 1
    assert _chip_counts(rows["tf_keras"][evaluate]) == {"explained": 1}


def test_breakdown_shows_reference_columns_and_highlights_differing_terms(synthetic):
    case = spec.load(CASE_FILE)
    tree = synthetic["tree"]
    art = next(a for a in tree.find_all("article", class_="group") if a.attrs["data-kind"] == "unexplained")
    table = art.find_all("table", class_="breakdown")[0]
    header = [th.text() for th in table.find_all("th") if th.attrs.get("scope") == "col"]
    assert header[0] == "term" and header[1].startswith("reference") and "tf_keras [synthetic_handbuilt]" in header[2]
    rows = {r.find_all("th")[0].text(): r.find_all("td") for r in table.find_all("tr") if r.find_all("td")}
    expected_total = reference.compute(case, rules.PROFILES["tf_keras-2.21"], "train_on_batch").total
    assert rows["total"][0].text() == render.fmt(expected_total)
    assert rows["total"][1].text().startswith(render.fmt(1.5 * expected_total))
    assert "differs" in rows["total"][1].attrs.get("class", "")
    assert "differs" in rows["regularization"][1].attrs.get("class", "")
    assert "differs" not in rows["total"][0].attrs.get("class", ""), "reference cells are never flagged"


def test_explained_group_names_its_rule_with_description_and_sources(synthetic):
    tree = synthetic["tree"]
    art = next(a for a in tree.find_all("article", class_="group") if a.attrs["data-kind"] == "explained")
    text = " ".join(art.text().split())
    alt = rules.RULES["evaluate_total"].alternatives["batch_mean"]
    assert "evaluate_total = batch_mean" in text
    assert " ".join(alt.description.split()) in text
    for source in alt.sources:
        assert source in text
    # the breakdown has the explaining-profile column, equal to the reference with the rule switched
    case = spec.load(CASE_FILE)
    switched = {**rules.PROFILES["tf_keras-2.21"], "evaluate_total": "batch_mean"}
    table = art.find_all("table", class_="breakdown")[0]
    total_row = next(r for r in table.find_all("tr") if r.find_all("th") and r.find_all("th")[0].text() == "total")
    assert total_row.find_all("td")[1].text() == render.fmt(reference.compute(case, switched, "evaluate").total)


def test_group_shows_smallest_case_and_a_reproducer(synthetic):
    tree = synthetic["tree"]
    cid = spec.load(CASE_FILE).id
    art = next(a for a in tree.find_all("article", class_="group") if a.attrs["data-kind"] == "unexplained")
    assert cid in art.text()
    model_tables = art.find_all("table", class_="model")
    layer_names = [r.find_all("td")[0].text() for r in model_tables[0].find_all("tr") if r.find_all("td")]
    assert layer_names == ["x", "mask", "hidden", "seq_out", "pool", "vec_out"]
    pre = [p for p in art.find_all("pre") if p.attrs.get("id", "").startswith("code-")][0]
    script = pre.text()
    compile(script, "reproducer", "exec")  # valid Python
    assert "import tf_keras as keras" in script and "model.train_on_batch(" in script
    links = [a for a in art.find_all("a") if "download" in a.attrs]
    assert links and links[0].attrs["href"].startswith("data:text/x-python")
    assert (synthetic["out"].parent / "repro" / links[0].attrs["download"]).read_text() == script


def test_findings_json_holds_the_same_groups(synthetic):
    findings = json.loads((synthetic["out"].parent / "findings.json").read_text())
    html_ids = {a.attrs["id"][2:] for a in synthetic["tree"].find_all("article", class_="group")}
    assert {g["slug"] for g in findings["groups"]} == html_ids
    unexplained = next(g for g in findings["groups"] if g["kind"] == "unexplained")
    assert unexplained["representative"]["differing_terms"] == ["total", "regularization"]
    assert findings["verdict_counts"] == {"agree": 1, "explained": 1, "unexplained": 1, "error": 1, "crashed": 1}


def test_gradient_and_distribution_sections_are_present_and_empty(synthetic):
    tree = synthetic["tree"]
    for kind in ("gradient", "distribution"):
        section = tree.by_id(kind)
        assert section.find_all("p", class_="empty"), f"{kind} section shows its empty state"


def test_header_names_environment_versions_and_time(synthetic):
    tree = synthetic["tree"]
    env = " ".join(tree.by_id("environments").text().split())
    assert "synthetic_handbuilt" in env and "keras 3.15.1" in env and "jax 0.10.2" in env
    lede = " ".join(tree.find_all("p", class_="lede")[0].text().split())
    assert "1 case," in lede and "3.5 s" in lede and "2026-01-01T10:00:00+0000" in lede


# --------------------------------------------------------------------------------------
# Escaping
# --------------------------------------------------------------------------------------


def test_hostile_strings_are_shown_as_text_never_as_markup(synthetic):
    html, tree = synthetic["html"], synthetic["tree"]
    assert SCRIPT_INJECTION not in html and ATTR_INJECTION not in html
    assert len(tree.find_all("script")) == 1, "only the page's own script element"
    assert not tree.find_all("img"), "no element was injected"
    assert not any(k.startswith("on") for n in tree.iter() for k in n.attrs), "no event-handler attribute"
    text = tree.text()
    assert SCRIPT_INJECTION in text and ATTR_INJECTION in text, "the strings are displayed, escaped"


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.commands.report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_malformed_file_exits_2_naming_file_line_field_and_keeps_the_old_report(tmp_path, synthetic):
    out = tmp_path / "index.html"
    out.write_text("previous report", encoding="utf-8")
    bad = tmp_path / "broken.jsonl"
    good = synthetic["results"].read_text(encoding="utf-8").splitlines()
    bad.write_text("\n".join(good[:2] + ['{"kind": "result", "schema": 1, "case_id": "x"}'] + good[2:]) + "\n")
    proc = _cli(str(bad), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr and "line 3" in proc.stderr and "field impl" in proc.stderr, proc.stderr
    assert out.read_text(encoding="utf-8") == "previous report"
    assert not (tmp_path / "findings.json").exists()


def test_cli_reads_a_folder_and_writes_report_findings_and_reproducers(tmp_path, synthetic):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "envA.jsonl").write_text(synthetic["results"].read_text())
    out = tmp_path / "site" / "index.html"
    proc = _cli(str(folder), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and (out.parent / "findings.json").exists()
    assert list((out.parent / "repro").glob("*.py"))
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")], "no temp file left behind"


# --------------------------------------------------------------------------------------
# Recorded runs
# --------------------------------------------------------------------------------------


def recorded_files() -> list[Path]:
    return sorted(RECORDED.glob("*.jsonl"))


@pytest.mark.skipif(not recorded_files(), reason="no recorded results in tests/data/results")
def test_recorded_runs_every_verdict_is_counted_and_every_finding_grouped(tmp_path):
    files = recorded_files()
    report = loading.load(files)
    # Count from the files directly, not through the report.
    direct: Counter = Counter()
    findings: set[tuple] = set()
    for f in files:
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec["kind"] != "result":
                continue
            for key, v in rec["verdicts"].items():
                direct[v["verdict"]] += 1
                if v["verdict"] not in ("agree", "unsupported"):
                    findings.add((f.stem, rec["impl"], rec["case_id"], key))
    assert Counter(m.verdict["verdict"] for m in report.all_members()) == direct
    grouped = {(m.env, m.impl, m.case_id, m.key) for g in report.groups for m in g.members}
    assert grouped == findings
    for g in report.groups:  # the representative is the smallest member case
        sizes = [loading.case_size(report.cases[c]) for c in g.case_ids]
        assert loading.case_size(report.cases[g.representative.case_id]) == min(sizes)
    out = tmp_path / "index.html"
    view = render.write(files, out)
    tree = parse(out.read_text())
    assert len(tree.find_all("article", class_="group")) == len(view["groups"]) == len(report.groups)
    # several environments joined by case id: one case appears under more than one environment
    envs_per_case: dict[str, set] = {}
    for m in report.members:
        envs_per_case.setdefault(m.case_id, set()).add(m.env)
    if len(files) > 1:
        assert any(len(e) > 1 for e in envs_per_case.values())


@pytest.mark.skipif(not recorded_files(), reason="no recorded results in tests/data/results")
def test_recorded_breakdown_columns_show_the_recorded_totals(tmp_path):
    # The recorded runs agree with their own releases' semantics; judged as a migration from
    # keras 2.3.1 (`run --strict keras-2.3.1`, a field of each record) they have explained groups
    # with recorded totals.
    files = []
    for f in recorded_files():
        records = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
        for r in records:
            if r["kind"] in ("header", "result"):
                r["strict"] = "keras-2.3.1"
        files.append(tmp_path / f.name)
        files[-1].write_text("".join(json.dumps(r) + "\n" for r in records))
    report = loading.load(files)
    out = tmp_path / "index.html"
    render.write(files, out)
    tree = parse(out.read_text())
    checked = 0
    for g in report.groups:
        rep = g.representative
        pr = rep.path_result
        if not pr or pr.get("total") is None:
            continue
        art = tree.by_id("g-" + g.slug)
        table = art.find_all("table", class_="breakdown")[0]
        heads = [th.text() for th in table.find_all("th") if th.attrs.get("scope") == "col"]
        col = next(i for i, h in enumerate(heads) if h.startswith(rep.run_label) and rep.key in h)
        total_row = next(r for r in table.find_all("tr") if r.find_all("th") and r.find_all("th")[0].text() == "total")
        cell = total_row.find_all("td")[col - 1].text()
        assert cell.startswith(render.fmt(decode_float(pr["total"]))), (g.title, cell)
        checked += 1
    assert checked, "at least one group with a recorded total"


def test_reproducer_strings_are_python_literals_not_code():
    case = json.loads(CASE_FILE.read_text())
    case["layers"][1]["name"] = 'h"); import os; os.system("echo pwned"); ("'
    case["layers"][2]["inbound"] = [case["layers"][1]["name"]]
    case["layers"][3]["inbound"] = [case["layers"][1]["name"]]
    from harness.report import repro

    script = repro.reproducer(case, "id", "keras3-jax", "test_on_batch/eager", recorded=1.0, reference=2.0)
    tree = compile(script, "r", "exec")
    names = {n for n in tree.co_names}
    assert "system" not in names, "a layer name cannot become a call"
    assert re.search(r"import keras\b", script)


def test_reproducers_of_groups_that_are_gone_are_removed(tmp_path, synthetic):
    out = tmp_path / "index.html"
    render.write([synthetic["results"]], out)
    stale = out.parent / "repro" / "a-group-from-an-older-report.py"
    stale.write_text("print('old')\n")
    render.write([synthetic["results"]], out)
    assert not stale.exists()
    assert sorted(p.name for p in (out.parent / "repro").glob("*.py")) == sorted(
        f"{a.attrs['id'][2:]}.py" for a in synthetic["tree"].find_all("article", class_="group"))


def test_gradient_and_distribution_verdicts_get_their_own_sections(tmp_path):
    """A hand-built file (not a run) whose tf_keras result carries gradient and distribution
    verdicts: they are counted per run, explained ones grouped by rules, the others listed."""
    case = spec.load(CASE_FILE)
    cid = case.id
    verdicts = {
        "gradient/loss": {"verdict": "agree", "profile": "tf_keras-2.21", "value": 1.0, "expected": 1.0},
        "gradient/hidden/kernel": {"verdict": "unexplained", "profile": "tf_keras-2.21", "stage": "gradient",
                                   "value": 2.0, "expected": 1.0, "reason": "entry [0, 0] " + SCRIPT_INJECTION},
        "gradient/hidden/bias": {"verdict": "explained", "profile": "tf_keras-2.21",
                                 "rules": {"mask_normalisation": "all_entries"}, "value": 0.5, "expected": 0.25},
        "gradient/hidden/bias/sgd_update": {"verdict": "explained", "profile": "tf_keras-2.21",
                                            "rules": {"mask_normalisation": "all_entries"}},
        "distribution/split": {"verdict": "agree", "profile": "tf_keras-2.21"},
    }
    records = [
        {"kind": "header", "schema": 1, "impl": "tf_keras", "versions": {"tf_keras": "2.21.0"}},
        {"kind": "case", "schema": 1, "case_id": cid, "case": case.to_json()},
        {"kind": "result", "schema": 1, "case_id": cid, "impl": "tf_keras", "status": "ok", "paths": [],
         "verdicts": verdicts},
    ]
    results = tmp_path / "grad.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out" / "index.html"
    render.write([results], out)
    html = out.read_text(encoding="utf-8")
    assert SCRIPT_INJECTION not in html
    tree = parse(html)
    grad = tree.by_id("gradient")
    assert not grad.find_all("p", class_="empty")
    text = " ".join(grad.text().split())
    assert "agree 1" in text and "explained 2" in text and "unexplained 1" in text
    assert "mask_normalisation=all_entries" in text
    rows = [r for r in grad.find_all("tr") if "gradient/hidden/kernel" in r.text()]
    assert len(rows) == 1 and "unexplained" in rows[0].text()
    dist = " ".join(tree.by_id("distribution").text().split())
    assert "agree 1" in dist and "No unexplained distribution difference" in dist
    findings = json.loads((out.parent / "findings.json").read_text())
    grad_json = next(x for x in findings["extra"] if x["kind"] == "gradient")
    assert [r["key"] for r in grad_json["rows"]] == ["gradient/hidden/kernel"]
    # The headline counts them (there is no loss verdict in this file).
    assert findings["verdict_counts"] == Counter(v["verdict"] for v in verdicts.values())
    assert findings["headline"]["unexplained"] == 1


# --------------------------------------------------------------------------------------
# The headline counts every verdict of every section
# --------------------------------------------------------------------------------------


def test_headline_counts_every_verdict_kind_of_every_section(every_section):
    expected = every_section["expected"]
    assert expected["loss"]["unexplained"] == 0 < expected["gradient"]["unexplained"], "the fixture is what it says"
    shown = headline_counts(every_section["tree"])
    for section, counts in expected.items():
        for verdict in loading.HEADLINE_ORDER:
            assert shown[section][verdict] == counts[verdict], (section, verdict)
        assert shown[section]["all"] == sum(counts.values()), section
    everything = sum(expected.values(), Counter())
    for verdict in loading.HEADLINE_ORDER:
        assert shown["all"][verdict] == everything[verdict], verdict
    failures = sum(everything[v] for v in loading.FAILURE_VERDICTS)
    title = " ".join(every_section["tree"].by_id("h-headline").text().split())
    assert title.startswith(f"{everything['unexplained']} unexplained, {failures} failures")
    lede = " ".join(every_section["tree"].find_all("p", class_="lede")[0].text().split())
    assert f"{sum(everything.values())} verdicts" in lede


def test_findings_json_counts_every_verdict_of_every_section(every_section):
    expected, findings = every_section["expected"], every_section["findings"]
    assert findings["verdict_counts_by_section"] == {s: dict(+c) for s, c in expected.items()}
    everything = sum(expected.values(), Counter())
    assert findings["verdict_counts"] == dict(everything)
    assert findings["headline"]["unexplained"] == everything["unexplained"]
    assert findings["headline"]["failures"] == sum(everything[v] for v in loading.FAILURE_VERDICTS)


def test_report_command_summary_counts_every_verdict_of_every_section(tmp_path, capsys):
    from harness.commands import report as report_cli

    inputs, expected = every_section_results(tmp_path)
    assert report_cli.main([*map(str, inputs), "--out", str(tmp_path / "site" / "index.html")]) == 0
    line = capsys.readouterr().out.strip()
    everything = sum(expected.values(), Counter())
    failures = sum(everything[v] for v in loading.FAILURE_VERDICTS)
    assert f": {everything['unexplained']} unexplained, {failures} failures (" in line, line
    # "...; loss paths: agree 2, error 1; gradient: unexplained 2, agree 1; ... (loss finding groups: ...)"
    by_section = line.split(" verdicts; ", 1)[1].split(" (loss finding groups", 1)[0]
    said = {}
    for part in by_section.split("; "):
        title, counts = part.split(": ", 1)
        said[title] = Counter({c.rsplit(" ", 1)[0]: int(c.rsplit(" ", 1)[1]) for c in counts.split(", ")})
    assert said == {loading.SECTIONS[s]: c for s, c in expected.items() if c}


# --------------------------------------------------------------------------------------
# The page reads well
# --------------------------------------------------------------------------------------


def test_terminal_colour_codes_never_reach_the_page_or_findings_json(every_section):
    assert "\\u001b" in every_section["inputs"][0].read_text(), "the fixture has coloured messages (JSON-escaped)"
    html = every_section["html"]
    assert "\x1b" not in html and "[31m" not in html and "[0m" not in html
    assert "\\u001b" not in (every_section["out"].parent / "findings.json").read_text()
    errors = [" ".join(pre.text().split()) for pre in every_section["tree"].find_all("pre", class_="error")]
    assert any("ValueError: Dimensions must be equal, but are 3 and 4" in e for e in errors), errors
    distribution = every_section["tree"].by_id("distribution").text()
    assert "TypeError: 'NoneType' object is not callable" in distribution


def test_explained_error_group_shows_the_exception_and_the_error_the_rules_predict(every_section):
    art = next(a for a in every_section["tree"].find_all("article", class_="group")
               if a.attrs["data-kind"] == "explained")
    assert "fit/compiled" in art.text()
    error = " ".join(art.find_all("pre", class_="error")[0].text().split())
    assert error.startswith("AttributeError: 'list' object has no attribute 'dtype'"), error
    case = spec.load(CASE_FILE)
    predicted = reference.compute(case, {**rules.PROFILES["keras-3.15"], **LIST_ERROR}, "fit").notes
    assert predicted and all(" ".join(n.split()) in " ".join(art.text().split()) for n in predicted)
    finding = " ".join(art.find_all("p", class_="finding")[0].text().split())
    assert finding.startswith("The implementation raised") and "Recorded" not in finding, finding


def _tree_state(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _damaged(results: Path, n: int, change) -> Path:
    """A copy of `results` whose line n (1-based) is the record after `change(record)`."""
    lines = results.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[n - 1])
    change(record)
    lines[n - 1] = json.dumps(record)
    bad = results.with_name("damaged.jsonl")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


def _line_of(results: Path, **match: str) -> int:
    for n, line in enumerate(results.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(line)
        if all(record.get(k) == v for k, v in match.items()):
            return n
    raise AssertionError(match)


def _set(path: list, value):
    def change(record):
        target = record
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return change


# Bad input a careful tester tries: (what, arguments given the tmp folder, the good results
# and the existing report, the strings the message must contain).
BAD_OUT = [
    ("--out is an existing folder", lambda tmp, res, site: ["--out", str(site)],
     lambda tmp, res, site: [str(site), "is a folder", "expected the HTML file"]),
    ("--out ends in a slash", lambda tmp, res, site: ["--out", str(tmp / "new") + "/"],
     lambda tmp, res, site: [str(tmp / "new"), "names a folder", "expected the HTML file"]),
    ("--out is findings.json", lambda tmp, res, site: ["--out", str(site / "findings.json")],
     lambda tmp, res, site: [str(site / "findings.json"), "expected the HTML file"]),
    ("--out is an input", lambda tmp, res, site: ["--out", str(res)],
     lambda tmp, res, site: [str(res), "is a results file given as input"]),
    ("--out lies under a file", lambda tmp, res, site: ["--out", str(res / "index.html")],
     lambda tmp, res, site: [str(res), "is a file", "expected a folder"]),
]
BAD_RESULTS = [
    ("results path does not exist", lambda res: res.with_name("nowhere"), lambda res: [str(res.with_name("nowhere")),
                                                                                      "no such file or folder"]),
    ("results folder without results", lambda res: res.parent / "site", lambda res: [str(res.parent / "site"),
                                                                                    "expected results files"]),
    ("unknown verdict", lambda res: _damaged(res, _line_of(res, kind="result", impl="tf_keras"),
                                             _set(["verdicts", "fit/eager", "verdict"], "fine")),
     lambda res: ["damaged.jsonl", f"line {_line_of(res, kind='result', impl='tf_keras')}",
                  "field verdicts.fit/eager.verdict", "expected one of agree"]),
    ("a number that is not one", lambda res: _damaged(res, _line_of(res, kind="result", impl="tf_keras"),
                                                      _set(["verdicts", "test_on_batch/eager", "rel_diff"], "small")),
     lambda res: ["damaged.jsonl", "field verdicts.test_on_batch/eager.rel_diff", "expected a number"]),
    ("a path result that is not an object", lambda res: _damaged(res, _line_of(res, kind="result", impl="tf_keras"),
                                                                 _set(["paths", 1], "fit")),
     lambda res: ["damaged.jsonl", "field paths[1]", "expected an object"]),
    ("seconds as text", lambda res: _damaged(res, _line_of(res, kind="result", impl="tf_keras"), _set(["seconds"], "2.5")),
     lambda res: ["damaged.jsonl", "field seconds", "expected a number of seconds"]),
    ("header versions as a list", lambda res: _damaged(res, _line_of(res, kind="header", impl="tf_keras"),
                                                       _set(["versions"], ["2.21"])),
     lambda res: ["damaged.jsonl", f"line {_line_of(res, kind='header', impl='tf_keras')}", "field versions"]),
    ("a damaged case", lambda res: _damaged(res, _line_of(res, kind="case"), _set(["case", "inputs"], [])),
     lambda res: ["damaged.jsonl", f"line {_line_of(res, kind='case')}", "field case", "$.inputs"]),
]


def _refused(tmp_path, capsys, argv, texts) -> None:
    """`report` on a folder that already holds a good report: argv exits 2, its message holds
    every one of `texts`, and nothing under tmp_path changed."""
    from harness.commands import report as report_cli

    before = _tree_state(tmp_path)
    assert report_cli.main(argv) == 2
    err = capsys.readouterr().err
    for text in texts:
        assert text in err, (text, err)
    assert _tree_state(tmp_path) == before


def _good_report(tmp_path, capsys):
    from harness.commands import report as report_cli

    inputs, _ = every_section_results(tmp_path)
    site = tmp_path / "site"
    assert report_cli.main([str(inputs[0]), "--out", str(site / "index.html")]) == 0
    capsys.readouterr()
    return inputs[0], site


@pytest.mark.parametrize("what, args, message", BAD_OUT, ids=[b[0] for b in BAD_OUT])
def test_bad_out_exits_2_naming_the_path_and_changes_nothing(tmp_path, capsys, what, args, message):
    results, site = _good_report(tmp_path, capsys)
    _refused(tmp_path, capsys, [str(results), *args(tmp_path, results, site)], message(tmp_path, results, site))


@pytest.mark.parametrize("what, results, message", BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_bad_results_exit_2_naming_file_line_and_field_and_change_nothing(tmp_path, capsys, what, results, message):
    good, site = _good_report(tmp_path, capsys)
    given = results(good)
    _refused(tmp_path, capsys, [str(given), "--out", str(site / "index.html")], message(good))
