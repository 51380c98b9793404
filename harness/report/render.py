"""Turn a loaded Report (harness.report.loading) into a view model, HTML, findings.json and reproducers.

`build(report)` computes everything the page shows as plain data (dicts, lists, numbers,
strings): the same data becomes `findings.json`. `render_html(view)` fills the jinja2 template
(autoescaping on; no `|safe` on any string that came from a case, an exception or a version).
`write(paths, out)` does it all and replaces the previous report only once the new one is
complete (temp files, then rename).

The reference (`harness.reference.compute`) and the rule texts (`harness.reference.rules`) are
used when importable; without them the page still shows the totals the engine recorded in the
verdicts and says why the per-term reference columns are missing.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import jinja2

from harness.compare import FAILURE_VERDICTS
from harness.report import loading as load_mod
from harness.report import repro
from harness.report.loading import Group, Member, Report
from harness.results import decode_float
from harness.tolerances import REFERENCE_RTOL

MAX_SEPARATING_CASES = 60  # cases per profile pair examined for "rules that changed a number"


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    """A number for people: 9 significant digits; NaN/inf by name; '' for None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.9g}"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return decode_float(value)
    except (TypeError, ValueError):
        return None


def _json_num(x: float | None) -> float | str | None:
    if x is None:
        return None
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _reference_modules() -> tuple[Any, Any, str]:
    """(reference, rules, '') or (None, None, why not)."""
    try:
        from harness import reference
        from harness.reference import rules
    except Exception as exc:  # noqa: BLE001 - any import failure is reported on the page
        return None, None, f"{type(exc).__name__}: {exc}"
    if not hasattr(reference, "compute"):
        return None, rules, "harness.reference has no compute()"
    return reference, rules, ""


def _case(case_json: dict[str, Any]) -> Any:
    from harness import spec

    return spec.from_json(case_json, "<results file>")


# --------------------------------------------------------------------------------------
# The model summary
# --------------------------------------------------------------------------------------


def _short_values(value: Any, limit: int = 12) -> str:
    flat: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)

    walk(value)
    text = ", ".join(fmt(x) if isinstance(x, float) else str(x) for x in flat[:limit])
    return "[" + text + (", ..." if len(flat) > limit else "") + "]"


def case_summary(case_json: dict[str, Any]) -> dict[str, Any]:
    """The Case as a readable model summary (all strings; the template escapes them)."""
    inputs = [{"name": i["name"], "kind": i["kind"], "shape": repro.nested_shape(i["data"])} for i in case_json["inputs"]]
    layers = []
    for layer in case_json["layers"]:
        regs = [f"{k}: {r['kind']}(l1={fmt(r.get('l1', 0.0))}, l2={fmt(r.get('l2', 0.0))})"
                for k, r in sorted(layer.get("regularizers", {}).items())]
        layers.append({
            "name": layer["name"], "type": layer["type"], "inbound": list(layer["inbound"]),
            "config": ", ".join(f"{k}={v!r}" for k, v in sorted(layer.get("config", {}).items())),
            "weights": ", ".join(f"{k} {tuple(repro.nested_shape(v))}" for k, v in sorted(layer.get("weights", {}).items())),
            "regularizers": regs,
        })
    outputs = []
    for o in case_json["outputs"]:
        sw = o.get("sample_weight")
        outputs.append({
            "name": o["layer"], "loss": o["loss"],
            "options": ", ".join(f"{k}={v!r}" for k, v in sorted(o.get("loss_options", {}).items())) or "(defaults)",
            "loss_weight": "" if o.get("loss_weight") is None else fmt(o["loss_weight"]),
            "target_shape": repro.nested_shape(o["target"]),
            "sample_weight": "" if sw is None else f"{tuple(repro.nested_shape(sw))} {_short_values(sw)}",
        })
    batch = repro.nested_shape(case_json["inputs"][0]["data"])[0]
    return {
        "dtype": case_json["dtype"], "batch": batch, "evaluate_batch_size": case_json["evaluate_batch_size"],
        "loss_form": case_json["loss_form"], "loss_weights_form": case_json["loss_weights_form"],
        "sample_weight_form": case_json["sample_weight_form"], "note": case_json.get("note", ""),
        "inputs": inputs, "layers": layers, "outputs": outputs,
        "json": json.dumps(case_json, sort_keys=True, indent=1),
    }


# --------------------------------------------------------------------------------------
# Breakdowns side by side
# --------------------------------------------------------------------------------------


def _breakdown(reference: Any, case_obj: Any, profile: dict[str, str],
               path: str) -> tuple[dict[str, float], float | None, str, list[str]]:
    """(terms, total, why the reference failed, its notes: the error it predicts, if any)."""
    try:
        b = reference.compute(case_obj, dict(profile), path)
    except Exception as exc:  # noqa: BLE001 - a reference failure is shown, not fatal
        return {}, None, f"{type(exc).__name__}: {exc}", []
    return {k: float(v) for k, v in b.terms.items()}, float(b.total), "", [str(n) for n in b.notes]


def breakdown_table(report: Report, g: Group, reference: Any, rules_mod: Any, ref_note: str) -> dict[str, Any]:
    """Columns: reference (expected profile), reference (explaining profile), then every
    implementation run's result on this case and path (all modes); rows: total and terms."""
    rep = g.representative
    assert rep is not None
    columns: list[dict[str, Any]] = []
    stale = ""
    profile_name = rep.verdict.get("profile", "")
    case_obj = None
    note = ref_note
    if reference is not None and rules_mod is not None and _profile(rules_mod, profile_name) is not None:
        try:
            case_obj = _case(report.cases[rep.case_id])
        except Exception as exc:  # noqa: BLE001
            note = f"case does not load: {exc}"
    elif reference is not None and not note:
        note = f"no profile {profile_name!r} in the semantics table (harness.reference.semantics)"
    if case_obj is not None:
        profile = _profile(rules_mod, profile_name)
        terms, total, err, notes = _breakdown(reference, case_obj, profile, rep.path)
        columns.append({"label": "reference", "sub": f"profile {profile_name}", "total": total, "terms": terms,
                        "differing": [], "kind": "reference", "note": err, "predicts": notes})
        recorded_expected = rep.number("expected")
        if total is not None and recorded_expected is not None and not _close(total, recorded_expected):
            stale = (f"the reference here computes {fmt(total)} under {profile_name}, but the run recorded "
                     f"{fmt(recorded_expected)} as the expected value: the reference changed since the results "
                     "were judged; re-run `python -m harness run` to re-judge them")
        if g.rules:
            terms2, total2, err2, notes2 = _breakdown(reference, case_obj, {**profile, **g.rules}, rep.path)
            columns.append({"label": "reference", "sub": "with " + ", ".join(f"{r}={a}" for r, a in g.rules.items()),
                            "total": total2, "terms": terms2, "differing": [], "kind": "explaining", "note": err2,
                            "predicts": notes2})
    else:
        columns.append({"label": "reference", "sub": f"profile {profile_name} (total from the verdict)",
                        "total": rep.number("expected"), "terms": {}, "differing": [], "kind": "reference", "note": "",
                        "predicts": []})
        if g.rules:
            columns.append({"label": "reference", "sub": "with " + ", ".join(f"{r}={a}" for r, a in g.rules.items()),
                            "total": rep.number("explained_value"), "terms": {}, "differing": [],
                            "kind": "explaining", "note": "", "predicts": []})
    member_ids = {(m.env, m.impl, m.key) for m in g.members if m.case_id == rep.case_id}
    others = [m for m in report.members if m.case_id == rep.case_id and m.path == rep.path]
    others.sort(key=lambda m: ((m.env, m.impl, m.key) not in member_ids, m.env, m.impl, m.key))
    for m in others:
        pr = m.path_result or {}
        columns.append({
            "label": m.run_label, "sub": f"{m.key}: {m.verdict['verdict']}",
            "total": _num(pr.get("total")),
            "terms": {k: _num(v) for k, v in (pr.get("terms") or {}).items()},
            "differing": list(m.verdict.get("differing_terms", [])),
            "kind": "member" if (m.env, m.impl, m.key) in member_ids else "other", "note": "", "predicts": [],
        })
    names: list[str] = []
    for c in columns:
        for k in c["terms"]:
            if k not in names:
                names.append(k)
    names.sort(key=lambda n: (not n.startswith("output/"), n))
    rows = [{"term": "total", "cells": [{"value": c["total"], "text": fmt(c["total"]),
                                         "differs": "total" in c["differing"]} for c in columns]}]
    for n in names:
        rows.append({"term": n, "cells": [{"value": c["terms"].get(n), "text": fmt(c["terms"].get(n)),
                                           "differs": n in c["differing"]} for c in columns]})
    return {"columns": [{k: c[k] for k in ("label", "sub", "kind", "note", "predicts")} for c in columns],
            "rows": rows, "note": note, "stale": stale}


def _close(a: float, b: float) -> bool:
    """Same number up to float64 noise of the reference itself (harness.tolerances.REFERENCE_RTOL)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= REFERENCE_RTOL * max(abs(a), abs(b), 1e-300)


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


def rule_texts(rules_mod: Any, chosen: dict[str, str], profile_name: str) -> list[dict[str, Any]]:
    out = []
    for name, alt in sorted(chosen.items()):
        entry: dict[str, Any] = {"name": name, "alternative": alt, "question": "", "description": "",
                                 "sources": [], "expected_alternative": "", "expected_description": "",
                                 "expected_sources": []}
        rule = getattr(rules_mod, "RULES", {}).get(name) if rules_mod is not None else None
        if rule is not None:
            entry["question"] = getattr(rule, "question", "")
            a = rule.alternatives.get(alt)
            if a is not None:
                entry["description"], entry["sources"] = a.description, list(a.sources)
            expected = (_profile(rules_mod, profile_name) or {}).get(name)
            if expected and expected in rule.alternatives:
                e = rule.alternatives[expected]
                entry["expected_alternative"] = expected
                entry["expected_description"] = e.description
                entry["expected_sources"] = list(e.sources)
        entry["precedent"] = _precedent(profile_name, name, alt)
        out.append(entry)
    return out


# --------------------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------------------


def verdict_overview(report: Report) -> dict[str, Any]:
    """Implementation x path; each cell lists its modes, each with its verdict counts."""
    rows, keys, cells = load_mod.verdict_matrix(report)
    paths: list[str] = []
    for k in keys:
        p = k.split("/", 1)[0]
        if p not in paths:
            paths.append(p)
    table = []
    for env, impl in rows:
        line: dict[str, Any] = {"env": env, "impl": impl, "cells": []}
        totals: Counter = Counter()
        for path in paths:
            modes = []
            for k in keys:
                if k.split("/", 1)[0] != path or (env, impl, k) not in cells:
                    continue
                c = cells[(env, impl, k)]
                totals.update(c)
                modes.append({"mode": k.split("/", 1)[1] if "/" in k else "", "key": k,
                              "counts": [{"verdict": v, "n": c[v]} for v in load_mod.VERDICT_ORDER if c[v]]})
            line["cells"].append({"path": path, "modes": modes})
        line["totals"] = [{"verdict": v, "n": totals[v]} for v in load_mod.VERDICT_ORDER if totals[v]]
        table.append(line)
    return {"columns": paths, "rows": table}


def _precedent(profile_name: str, rule: str, alternative: str) -> str:
    """The release nearest to the expected one that takes `alternative` (semantics.precedent)."""
    try:
        from harness.reference import semantics

        return semantics.precedent(profile_name, rule, alternative)
    except Exception:  # noqa: BLE001 - a profile name the table cannot parse: no precedent shown
        return ""


def _profile(rules_mod: Any, name: str) -> dict[str, str] | None:
    """The rule -> alternative mapping of a profile name, None when the semantics table has none."""
    try:
        return rules_mod.profile(name)
    except (KeyError, ValueError, AttributeError):
        return None


def _run_profiles(report: Report, rules_mod: Any) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for env, impl in report.runs:
        names = Counter(m.verdict.get("profile") for m in report.members
                        if m.env == env and m.impl == impl and m.verdict.get("profile"))
        if names:
            out[(env, impl)] = names.most_common(1)[0][0]
        elif rules_mod is not None:
            try:
                out[(env, impl)] = rules_mod.expected(impl, report.versions_of(env, impl))
            except Exception:  # noqa: BLE001
                pass
    return out


def separating_matrix(report: Report, reference: Any, rules_mod: Any) -> dict[str, Any]:
    """Implementation x implementation: rules on which their expected profiles differ, marked
    whether they changed a number in the cases run (harness.compare.separating_rules)."""
    if rules_mod is None:
        return {"available": False, "reason": "harness.reference.rules is not importable", "runs": [], "rows": []}
    profiles = _run_profiles(report, rules_mod)
    runs = [r for r in report.runs if r in profiles and _profile(rules_mod, profiles[r]) is not None]
    resolved = {profiles[r]: _profile(rules_mod, profiles[r]) for r in runs}
    changed: dict[tuple[str, str], set[str]] = {}
    checked = reference is not None
    reason = "" if checked else "the reference is not importable: rules listed from the profiles only"
    if checked:
        from harness import compare

        case_ids = sorted(report.cases, key=lambda c: (load_mod.case_size(report.cases[c]), c))[:MAX_SEPARATING_CASES]
        caches = {}
        for cid in case_ids:
            try:
                caches[cid] = compare.ReferenceCache(_case(report.cases[cid]))
            except Exception:  # noqa: BLE001
                continue
        pairs = {tuple(sorted((profiles[a], profiles[b]))) for a in runs for b in runs if profiles[a] != profiles[b]}
        for pa, pb in sorted(pairs):
            found: set[str] = set()
            for cid, cache in caches.items():
                for path in ("test_on_batch", "evaluate"):
                    try:
                        found.update(compare.separating_rules(cache.case, resolved[pa], resolved[pb], path, cache))
                    except Exception:  # noqa: BLE001 - a reference failure leaves the pair unchecked
                        pass
            changed[(pa, pb)] = found
        if len(report.cases) > MAX_SEPARATING_CASES:
            reason = f"checked on the {MAX_SEPARATING_CASES} smallest of {len(report.cases)} cases"
    rows = []
    for a in runs:
        cells = []
        for b in runs:
            pa, pb = profiles[a], profiles[b]
            differ = sorted(r for r in resolved[pa] if resolved[pa][r] != resolved[pb].get(r))
            seen = changed.get(tuple(sorted((pa, pb))), set())
            cells.append({"same": a == b, "rules": [{"name": r, "changed": (r in seen) if checked else None,
                                                     "a": resolved[pa][r], "b": resolved[pb].get(r)}
                                                    for r in differ]})
        rows.append({"run": f"{a[1]} [{a[0]}]", "profile": profiles[a], "cells": cells})
    return {"available": True, "reason": reason, "checked": checked,
            "runs": [{"label": f"{r[1]} [{r[0]}]", "profile": profiles[r]} for r in runs], "rows": rows}


def fingerprints_view(report: Report, reference: Any, rules_mod: Any) -> dict[str, Any]:
    """Rule x (environment, implementation): the alternative each run took, inferred from its
    numbers (harness.fingerprint), with the case that decided it; "not tested here" where no case
    of the run decides the rule. A rule where the inference and the semantics table disagree is
    a finding: the reading or the release is wrong."""
    if reference is None or rules_mod is None:
        return {"available": False, "reason": "the reference is not importable here", "columns": [], "rows": []}
    from harness import fingerprint

    columns, found, problems, undecided = [], {}, [], []
    for e in report.environments:
        try:
            fp = fingerprint.fingerprint(e.path)
        except Exception as exc:  # noqa: BLE001 - one unreadable run leaves the others shown
            problems.append(f"{e.name}: {type(exc).__name__}: {exc}")
            continue
        for impl, by_rule in sorted(fp.items()):
            if not any(f.admitted is not None for f in by_rule.values()):
                undecided.append(f"{impl} [{e.name}]")  # e.g. a distributed run: its paths are not read
                continue
            columns.append({"env": e.name, "impl": impl})
            found[(e.name, impl)] = by_rule
    rows, disagreements = [], []
    for rule in rules_mod.RULES:
        cells = []
        for col in columns:
            f = found[(col["env"], col["impl"])].get(rule)
            if f is None or f.admitted is None:
                cells.append({"kind": "untested", "text": "not tested here", "title": ""})
                continue
            table = "/".join(sorted(f.table))
            kind = {True: "agrees", False: "disagrees", None: "open"}[f.agrees]
            text = f.status.removeprefix("takes ")
            title = f"decided by {', '.join(f.deciding)}; the table says {table}"
            cells.append({"kind": kind, "text": text, "title": title})
            if f.agrees is False:
                disagreements.append({"env": col["env"], "impl": col["impl"], "rule": rule, "status": f.status,
                                      "table": table, "by": f.deciding[0] if f.deciding else ""})
        rows.append({"rule": rule, "cells": cells})
    tested = {f"{c['env']} {c['impl']}": sum(found[(c["env"], c["impl"])][r].admitted is not None
                                              for r in found[(c["env"], c["impl"])]) for c in columns}
    return {"available": True, "reason": "; ".join(problems), "columns": columns, "rows": rows,
            "disagreements": disagreements, "tested": tested, "rules": len(rules_mod.RULES), "undecided": undecided}


def _is_nightly(version: str) -> bool:
    return ".dev" in version  # PEP 440 dev releases: keras-nightly 3.N.0.devYYYYMMDDHH, tf-keras-nightly


def next_keras(report: Report, fingerprints: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a nightly build (tox -m nightly: judged by the newest release's semantics), each
    with what differs there: its unexplained verdicts and failures, and the rules its fingerprint
    takes otherwise than the table. The headline of a report that holds them: changed in the next Keras."""
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for e in report.environments:
        for impl, version_sets in e.versions_by_impl().items():
            builds = {k: v for vs in version_sets for k, v in vs.items() if v and _is_nightly(str(v))}
            if builds:
                runs[(e.name, impl)] = {"env": e.name, "impl": impl, "builds": builds,
                                        "unexplained": 0, "failures": 0, "cases": set(), "rules": []}
    for m in report.all_members():
        run = runs.get((m.env, m.impl))
        if run is None:
            continue
        kind = m.verdict.get("verdict")
        if kind == "unexplained" or kind in FAILURE_VERDICTS:
            run["unexplained" if kind == "unexplained" else "failures"] += 1
            run["cases"].add(m.case_id)
    for d in fingerprints.get("disagreements", []) if fingerprints.get("available") else []:
        if (d["env"], d["impl"]) in runs:
            runs[(d["env"], d["impl"])]["rules"].append(d)
    return [{**r, "cases": sorted(r["cases"])} for _, r in sorted(runs.items())]


def feature_coverage(report: Report) -> dict[str, Any]:
    try:
        counts = load_mod.feature_counts(report)
    except Exception as exc:  # noqa: BLE001
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}", "rows": []}
    if counts is None:
        return {"available": False, "reason": "harness.features is not importable", "rows": []}
    try:
        from harness.features import FEATURES, all_features
        known = all_features()
    except Exception:  # noqa: BLE001
        FEATURES, known = {}, sorted(counts)
    names = [n for n in known if n in counts] + sorted(n for n in counts if n not in known)
    rows = [{"feature": n, "count": counts[n], "meaning": FEATURES.get(n, "")} for n in names]
    never = [n for n in known if n not in counts]
    return {"available": True, "reason": "", "rows": rows, "never": never, "cases": len(report.cases)}


# --------------------------------------------------------------------------------------
# The picture: |relative difference| per implementation and path, log scale (inline SVG)
# --------------------------------------------------------------------------------------

SVG_COLORS = {"agree": "#2e7d32", "explained": "#1565c0", "unexplained": "#c62828"}
LOG_MIN, LOG_MAX = -16, 2
# Row labels are set in an 11 px monospace font (report.css, svg .rowlabel): about 0.6 em a
# character in DejaVu Sans Mono, Menlo and Consolas (0.62 leaves a margin), so the space left of
# the plot fits the longest label (tests/test_report_browser.py measures it in Chromium).
LABEL_CHAR_WIDTH = 11 * 0.62
LABEL_PAD = 16


def rel_diff_svg(report: Report) -> dict[str, Any]:
    """Data for the dot plot; the template draws it. Rows: (run, path); x: log10 |rel diff|."""
    rows: dict[tuple[str, str], list[tuple[float, str, str]]] = {}
    for m in report.members:
        d = load_mod.abs_rel_diff(m)
        if d is None or m.verdict["verdict"] not in SVG_COLORS:
            continue
        rows.setdefault((m.run_label, m.path), []).append((d, m.verdict["verdict"], f"{m.case_id} {m.key}"))
    width, row_h, top = 780, 18, 28
    left = LABEL_PAD + math.ceil(LABEL_CHAR_WIDTH * max((len(f"{run} {path}") for run, path in rows), default=0))
    plot_rows = []
    for i, ((run, path), pts) in enumerate(sorted(rows.items(), key=lambda kv: (kv[0][0], load_mod._key_order(kv[0][1])))):
        y = top + i * row_h + row_h / 2
        dots = []
        for d, verdict, label in pts:
            if d == 0:
                lx = LOG_MIN
            elif math.isinf(d):
                lx = LOG_MAX
            else:
                lx = min(max(math.log10(d), LOG_MIN), LOG_MAX)
            x = left + (lx - LOG_MIN) / (LOG_MAX - LOG_MIN) * width
            dots.append({"x": round(x, 1), "color": SVG_COLORS[verdict],
                         "title": f"{run} {label}: |rel diff| {fmt(d)} ({verdict})"})
        plot_rows.append({"label": f"{run} {path}", "y": y, "dots": dots})
    def at(e: float) -> float:
        return round(left + (e - LOG_MIN) / (LOG_MAX - LOG_MIN) * width, 1)

    ticks = [{"x": at(e), "label": ("0 / ≤1e-16" if e == LOG_MIN else "≥1e2 / nan" if e == LOG_MAX else f"1e{e}")}
             for e in range(LOG_MIN, LOG_MAX + 1, 2)]
    try:  # the engine's relative tolerances (harness.tolerances), as dashed lines
        from harness.tolerances import TOLERANCES
        tolerances = [{"x": at(math.log10(t.rtol)), "label": f"{name} rtol {t.rtol:g}"}
                      for name, t in TOLERANCES.items() if LOG_MIN < math.log10(t.rtol) < LOG_MAX]
    except Exception:  # noqa: BLE001 - the chart is still readable without them
        tolerances = []
    height = top + len(plot_rows) * row_h + 48
    return {"rows": plot_rows, "ticks": ticks, "tolerances": tolerances, "left": left, "right": left + width, "top": top,
            "bottom": top + len(plot_rows) * row_h, "width": left + width + 60, "height": height,
            "colors": SVG_COLORS}


# --------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------


def group_view(report: Report, g: Group, reference: Any, rules_mod: Any, ref_note: str) -> dict[str, Any]:
    rep = g.representative
    assert rep is not None
    case_json = report.cases[rep.case_id]
    profile_name = rep.verdict.get("profile", "")
    table = breakdown_table(report, g, reference, rules_mod, ref_note)
    ref_total = rep.number("expected")
    try:
        script = repro.reproducer(
            case_json, rep.case_id, rep.impl, rep.key,
            recorded=_num((rep.path_result or {}).get("total")) if rep.path_result else rep.number("value"),
            reference=ref_total, reference_profile=profile_name,
            explained=rep.number("explained_value"), explaining_rules=g.rules or None, versions=rep.versions)
        script_error = ""
    except Exception as exc:  # noqa: BLE001 - a case the generator cannot write is reported
        script, script_error = "", f"{type(exc).__name__}: {exc}"
    filename = f"{g.slug}.py"
    members = [{"env": m.env, "impl": m.impl, "case_id": m.case_id, "key": m.key, "verdict": m.verdict["verdict"],
                "value": _json_num(m.number("value")), "expected": _json_num(m.number("expected")),
                "rel_diff": _json_num(m.number("rel_diff")), "reason": m.verdict.get("reason") or "",
                "differing_terms": list(m.verdict.get("differing_terms", []))} for m in g.members]
    return {
        "slug": g.slug, "kind": g.kind, "title": g.title, "key": [list(k) if isinstance(k, tuple) else k for k in g.key],
        "n_cases": len(g.case_ids), "n_members": len(g.members), "case_ids": g.case_ids,
        "other_case_ids": g.other_case_ids, "runs": g.runs, "path_modes": g.keys, "shared_features": g.shared_features,
        "representative": {"env": rep.env, "impl": rep.impl, "case_id": rep.case_id, "key": rep.key,
                           "verdict": rep.verdict["verdict"], "profile": profile_name,
                           "stage": rep.verdict.get("stage") or "", "reason": rep.verdict.get("reason") or "",
                           "value": _json_num(rep.number("value")), "expected": _json_num(ref_total),
                           "explained_value": _json_num(rep.number("explained_value")),
                           "rel_diff": _json_num(rep.number("rel_diff")),
                           "differing_terms": list(rep.verdict.get("differing_terms", [])),
                           "error": _error_text(rep)},
        "rules": rule_texts(rules_mod, g.rules, profile_name),
        # every equivalent explanation, best first (one entry when there is one), and the texts of
        # the rules that only the others name
        "explanations": [{"label": ", ".join(f"{r} = {a}" for r, a in e.items()), "rules": list(e)}
                         for e in g.explanations],
        "other_rules": rule_texts(rules_mod, {r: a for e in g.explanations[1:] for r, a in e.items()
                                              if g.rules.get(r) != a}, profile_name),
        # an explained error: the error the reference predicts with the group's rules switched
        "predicted_error": next((c["predicts"] for c in table["columns"] if c["kind"] == "explaining"), []),
        "case": case_summary(case_json),
        "breakdown": table,
        "reproducer": {"filename": filename, "text": script, "error": script_error,
                       "data_uri": "data:text/x-python;charset=utf-8," + urllib.parse.quote(script) if script else ""},
        "members": members,
    }


def _error_text(m: Member) -> str:
    pr = m.path_result or {}
    parts = [p for p in (pr.get("error_type"), pr.get("error_message")) if p]
    if not parts and m.record.get("message"):
        parts.append(str(m.record["message"]))
    text = ": ".join(parts)
    tail = m.record.get("stderr_tail")
    if tail and m.verdict["verdict"] in ("crashed", "timeout", "import-error"):
        text += ("\n" if text else "") + str(tail)
    return text


MAX_EXTRA_ROWS = 300  # finding rows per gradient/distribution section (the rest are counted)


def extra_view(report: Report) -> list[dict[str, Any]]:
    """The gradient and distribution sections: verdict counts per run, explained differences
    grouped by (implementation, rules), unsupported grouped by reason, and every other
    non-agreeing verdict as a row (unexplained first; the page shows the first MAX_EXTRA_ROWS)."""
    out = []
    titles = {"gradient": "Gradient findings", "distribution": "Distribution findings"}
    order = {v: i for i, v in enumerate(("unexplained", "error", "harness-error", "crashed", "timeout", "import-error"))}
    for kind in load_mod.EXTRA_KINDS:
        ms = report.extra_members.get(kind, [])
        counts: dict[str, Counter] = {}
        explained: dict[tuple, dict[str, Any]] = {}
        unsupported: dict[tuple, dict[str, Any]] = {}
        findings = []
        for m in ms:
            verdict = m.verdict["verdict"]
            counts.setdefault(m.run_label, Counter())[verdict] += 1
            if verdict == "explained":  # equivalent explanations are one row that names each
                rules = " or ".join(sorted(", ".join(f"{r}={a}" for r, a in sorted(e.items()))
                                           for e in load_mod.explanation_sets(m.verdict)))
                g = explained.setdefault((m.impl, rules), {"impl": m.impl, "rules": rules, "n": 0, "cases": set(),
                                                           "example": m.key})
                g["n"] += 1
                g["cases"].add(m.case_id)
            elif verdict == "unsupported":
                reason = m.verdict.get("reason") or ""
                g = unsupported.setdefault((m.impl, reason), {"impl": m.impl, "reason": reason, "n": 0})
                g["n"] += 1
            elif verdict != "agree":
                findings.append(m)
        findings.sort(key=lambda m: (order.get(m.verdict["verdict"], 9), m.impl, m.env, m.case_id, m.key))
        total = sum(counts.values(), Counter())
        out.append({
            "kind": kind, "title": titles[kind], "n": len(ms), "unexplained": total["unexplained"],
            "failures": sum(total[v] for v in load_mod.FAILURE_VERDICTS),
            "summary": [{"run": run, "counts": [{"verdict": v, "n": c[v]} for v in load_mod.VERDICT_ORDER if c[v]]}
                        for run, c in sorted(counts.items())],
            "explained": [{**g, "cases": len(g["cases"])} for g in sorted(explained.values(), key=lambda g: -g["n"])],
            "unsupported": sorted(unsupported.values(), key=lambda g: -g["n"]),
            "rows": [{"env": m.env, "impl": m.impl, "case_id": m.case_id, "key": m.key, "verdict": m.verdict["verdict"],
                      "stage": m.verdict.get("stage") or "", "value": fmt(m.number("value")),
                      "expected": fmt(m.number("expected")), "reason": m.verdict.get("reason") or ""}
                     for m in findings],  # all of them (findings.json); the page shows MAX_EXTRA_ROWS
            "max_rows": MAX_EXTRA_ROWS,
        })
    return out


# --------------------------------------------------------------------------------------
# The headline: every verdict of every section
# --------------------------------------------------------------------------------------


def headline(sections: dict[str, Counter]) -> dict[str, Any]:
    """What the page's headline, findings.json and `harness report`'s summary line say: the
    verdicts of every section (loading.SECTIONS) by kind, unexplained and failures first."""
    total: Counter = sum(sections.values(), Counter())
    failures = {v: total[v] for v in load_mod.FAILURE_VERDICTS if total[v]}
    n_failures = sum(failures.values())
    by_section = "; ".join(f"{load_mod.SECTIONS[s]}: " + _counts_text(c) for s, c in sections.items() if c)
    text = (f"{total['unexplained']} unexplained, {n_failures} failure{'s' if n_failures != 1 else ''}"
            + (" (" + ", ".join(f"{v} {n}" for v, n in failures.items()) + ")" if failures else "")
            + f" in {sum(total.values())} verdicts" + (f"; {by_section}" if by_section else ""))
    return {
        "text": text,
        "unexplained": total["unexplained"],
        "failures": n_failures,
        "n_verdicts": sum(total.values()),
        "order": list(load_mod.HEADLINE_ORDER),
        "counts": {v: total[v] for v in load_mod.HEADLINE_ORDER},
        "sections": [{"section": s, "title": load_mod.SECTIONS[s], "anchor": SECTION_ANCHORS[s], "n": sum(c.values()),
                      "counts": {v: c[v] for v in load_mod.HEADLINE_ORDER}} for s, c in sections.items()],
    }


SECTION_ANCHORS = {"loss": "overview", "run": "overview", "gradient": "gradient", "sgd_update": "gradient",
                   "distribution": "distribution"}


def _counts_text(counts: Counter) -> str:
    return ", ".join(f"{v} {counts[v]}" for v in load_mod.HEADLINE_ORDER if counts[v])


# --------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------


def build(report: Report, *, now: _dt.datetime | None = None) -> dict[str, Any]:
    reference, rules_mod, ref_note = _reference_modules()
    now = now or _dt.datetime.now(_dt.timezone.utc)
    envs = []
    for e in report.environments:
        impls = []
        for impl, version_sets in sorted(e.versions_by_impl().items()):
            hs = e.headers_of(impl)
            impls.append({"impl": impl, "versions": [sorted((k, v) for k, v in vs.items() if v) for vs in version_sets],
                          "headers": len(hs), "started": sorted(str(h["started"]) for h in hs if h.get("started"))})
        envs.append({"name": e.name, "file": str(e.path), "headers": len(e.headers), "impls": impls})
    span = report.started_span()
    groups = [group_view(report, g, reference, rules_mod, ref_note) for g in report.groups]
    fingerprints = fingerprints_view(report, reference, rules_mod)
    return {
        "built": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "environments": envs,
        "n_cases": len(report.cases),
        "n_results": len({(m.env, m.impl, m.case_id) for m in report.all_members()}),
        "headline": headline(report.section_counts()),
        "seconds": round(report.total_seconds(), 3),
        "started_span": list(span) if span else None,
        "span_seconds": _span_seconds(span),
        "reference_note": ref_note,
        "overview": verdict_overview(report),
        "separating": separating_matrix(report, reference, rules_mod),
        "fingerprints": fingerprints,
        "next_keras": next_keras(report, fingerprints),
        "features": feature_coverage(report),
        "chart": rel_diff_svg(report),
        "groups": groups,
        "group_counts": {k: sum(1 for g in groups if g["kind"] == k) for k in ("unexplained", "failure", "explained")},
        "extra": extra_view(report),
    }


def _span_seconds(span: tuple[str, str] | None) -> float | None:
    """Seconds between the first and the last worker start (ISO-8601 header stamps)."""
    if not span:
        return None
    try:
        a, b = (_dt.datetime.fromisoformat(t) for t in span)
        return (b - a).total_seconds()
    except (ValueError, TypeError):
        return None


def findings_json(view: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable companion: the same groups, without HTML-only fields."""
    groups = []
    for g in view["groups"]:
        g = dict(g)
        g["reproducer"] = {"file": f"repro/{g['reproducer']['filename']}", "error": g["reproducer"]["error"]}
        g["case"] = {k: v for k, v in g["case"].items() if k != "json"}
        g["breakdown"] = {
            "columns": g["breakdown"]["columns"],
            "rows": [{"term": r["term"], "values": [_json_num(c["value"]) for c in r["cells"]],
                      "differs": [c["differs"] for c in r["cells"]]} for r in g["breakdown"]["rows"]],
            "note": g["breakdown"]["note"],
            "stale": g["breakdown"]["stale"],
        }
        groups.append(g)
    h = view["headline"]
    return {
        "schema": 2,  # 2: verdict counts and the headline cover every section, not only loss paths
        "built": view["built"],
        "environments": view["environments"],
        "cases": view["n_cases"],
        "headline": {k: h[k] for k in ("text", "unexplained", "failures", "n_verdicts")},
        "verdict_counts": {v: n for v, n in h["counts"].items() if n},
        "verdict_counts_by_section": {s["section"]: {v: n for v, n in s["counts"].items() if n} for s in h["sections"]},
        "seconds": view["seconds"],
        "started_span": view["started_span"],
        "span_seconds": view["span_seconds"],
        "groups": groups,
        "extra": view["extra"],
    }


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # every template: the report shows strings from cases and exceptions
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = fmt
    return env


def render_html(view: dict[str, Any]) -> str:
    return environment().get_template("report.html.j2").render(v=view)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_out(out: Path, inputs: list[Path]) -> None:
    """Refuse, before anything is read or written, an `out` the report cannot be written to:
    ReportInputError naming the path and what was expected."""
    out = Path(out)
    folder = out.parent
    if out.is_dir():
        raise load_mod.ReportInputError(f"{out}: is a folder; expected the HTML file to write (e.g. {out / 'index.html'})")
    if out.name == "findings.json":
        raise load_mod.ReportInputError(f"{out}: expected the HTML file to write; findings.json is written beside it")
    if any(Path(p).resolve() == out.resolve() for p in inputs):
        raise load_mod.ReportInputError(f"{out}: is a results file given as input; expected the HTML file to write "
                                        f"(e.g. {folder / 'index.html'})")
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise load_mod.ReportInputError(f"{parent}: is a file; expected a folder to write {out} into")
            break
    if (folder / "findings.json").is_dir():
        raise load_mod.ReportInputError(f"{folder / 'findings.json'}: is a folder; expected a file or nothing "
                                        f"(findings.json is written beside {out})")
    if (folder / "repro").exists() and not (folder / "repro").is_dir():
        raise load_mod.ReportInputError(f"{folder / 'repro'}: is a file; expected a folder or nothing "
                                        f"(the reproducers are written to repro/ beside {out})")


def write(paths: list[Path], out: Path) -> dict[str, Any]:
    """Check `out`, read, build, render everything in memory, then write reproducers,
    findings.json and the HTML (each through a temp file and a rename; the HTML last).
    Returns the view."""
    check_out(out, paths)
    report = load_mod.load(paths)
    view = build(report)
    html = render_html(view)
    findings = json.dumps(findings_json(view), indent=1, sort_keys=True, allow_nan=False)
    out = Path(out)
    repro_dir = out.parent / "repro"
    written = set()
    for g in view["groups"]:
        if g["reproducer"]["text"]:
            _atomic_write(repro_dir / g["reproducer"]["filename"], g["reproducer"]["text"])
            written.add(g["reproducer"]["filename"])
    if repro_dir.is_dir():  # scripts of groups that no longer exist would mislead: repro/ is ours
        for old in repro_dir.glob("*.py"):
            if old.name not in written:
                old.unlink()
    _atomic_write(out.parent / "findings.json", findings + "\n")
    _atomic_write(out, html)
    return view
