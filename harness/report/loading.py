"""Load results files from several environments, join them by case id, group findings by cause.

Input: `reports/results/*.jsonl` (harness/resultsfile.py), possibly from several machines copied
into one folder. The environment's name is the file stem. Each result record is tied to the
header (exact versions) that its worker wrote last for the same implementation in the same file.

Grouping (one group = one cause, shown by its smallest case):

- explained:   key = (implementation family, frozenset of (rule, alternative)). Every member
               differs from its expected profile exactly by those rules; the group lists which
               implementations and path/modes show it. A verdict with several equivalent
               explanations (its "equivalent" list: every smallest set of flips that fits) is
               keyed by the set of them, so two equally good explanations are one cause, one
               group, that lists every explanation (`Group.explanations`, best first).
- unexplained: key = (environment, implementation, paths, stage, kinds of differing terms),
               where `paths` is the set of paths (modes ignored) on which that run is
               unexplained *for the same case*, and the kinds are those of the differing terms
               on any of them (`unexplained_signatures`). One cause that shows on every
               whole-batch path of a case is then one group, and a cause that shows only in
               evaluate and fit is another. At stage "predictions" (the forward pass differs)
               the key is (environment, implementation, "*", "predictions"): one group per run.
               The kinds of differing terms ("total", "output", "regularization") separate a
               difference in one output's loss from one in the regularization sum. The group's
               *shared features* (the features present in every member case, from
               harness.features) are shown as its description: a deterministic summary of what
               its members have in common, computed after grouping, not part of the key.
- error / harness-error / crashed / timeout / import-error: key = (implementation family, verdict, error
               signature): the exception type and the innermost frame the adapter recorded
               ("KeyError [at keras/src/trainers/compile_utils.py:712 in resolve_path]"), so one
               exception raised on every path, mode and backend (the same Keras line under jax
               and torch) is one group (`failure_signature`); the group lists the runs.

Verdict keys whose path is "gradient" or "distribution" (added by a later issue) are kept apart
in `Report.extra_members` and never grouped with loss findings. Every verdict of every kind is
counted in one *section* (`section_of`): loss paths, whole runs ("*": crashed, timeout,
import-error), gradient, SGD update, distribution; the headline counts them all
(`Report.section_counts`). A path's observation verdicts (".../weights_moved",
".../log_entries", harness.compare_observations) are counted with the loss paths (or with the
distribution, for a distributed run) and grouped like loss findings, by their stage.

Judged on read: `load` judges every result record that carries a semantics hash again
(harness.judging), so the report shows the verdicts of the current semantics.

Reading checks every field the report uses (`check_record`) and names file, line and field on
error; strings from results lose terminal escape sequences (`plain_text`: TensorFlow and JAX
colour their messages) before anything is grouped or shown.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness import resultsfile, spec
from harness.compare import FAILURE_VERDICTS, VERDICTS
from harness.results import decode_float

VERDICT_ORDER = VERDICTS
EXTRA_KINDS = ("gradient", "distribution")  # verdict-key paths that a later issue adds
# Where a verdict is counted; every verdict key is in exactly one (section_of).
SECTIONS = {"loss": "loss paths", "run": "whole runs", "gradient": "gradient", "sgd_update": "SGD update",
            "distribution": "distribution"}
# The order in which the headline names verdicts: findings first.
HEADLINE_ORDER = ("unexplained", "error", "harness-error", "crashed", "timeout", "import-error", "explained",
                  "unsupported", "agree")


OBSERVATION_SUFFIXES = ("/weights_moved", "/log_entries")  # harness.compare_observations


def observed_path(key: str) -> str:
    """The path/mode key an observation verdict is about ("fit/eager/weights_moved" -> "fit/eager")."""
    return key.rsplit("/", 1)[0] if key.endswith(OBSERVATION_SUFFIXES) else key


def section_of(key: str) -> str:
    """The section a verdict key is counted in: "distribution/..." (all of a distributed run's
    verdicts, its gradients and updates included), ".../sgd_update", "gradient/...", "*" (a
    whole run that crashed, timed out or did not import), else a loss path ("<path>/<mode>")."""
    if key.startswith("distribution/"):
        return "distribution"
    if key.endswith("/sgd_update"):
        return "sgd_update"
    if key.startswith("gradient/"):
        return "gradient"
    if key == "*":
        return "run"
    return "loss"


class ReportInputError(ValueError):
    """No usable results: names the path and what was expected."""


# --------------------------------------------------------------------------------------
# The joined data
# --------------------------------------------------------------------------------------


@dataclass
class Environment:
    name: str  # file stem
    path: Path
    headers: list[dict[str, Any]] = field(default_factory=list)

    def headers_of(self, impl: str) -> list[dict[str, Any]]:
        return [h for h in self.headers if h["impl"] == impl]

    def versions_by_impl(self) -> dict[str, list[dict[str, str]]]:
        """Distinct version sets per implementation, in order of first appearance."""
        out: dict[str, list[dict[str, str]]] = defaultdict(list)
        for h in self.headers:
            v = dict(h.get("versions") or {})
            if v not in out[h["impl"]]:
                out[h["impl"]].append(v)
        return dict(out)


@dataclass
class Member:
    """One (environment, implementation, case, path/mode) verdict."""

    env: str
    impl: str
    case_id: str
    key: str  # "<path>/<mode>" or "*"
    verdict: dict[str, Any]
    path_result: dict[str, Any] | None  # the PathResult JSON for this key, if any
    record: dict[str, Any]  # the whole result record
    versions: dict[str, str]

    @property
    def path(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def mode(self) -> str:
        return self.key.split("/", 1)[1] if "/" in self.key else ""

    @property
    def run_label(self) -> str:
        return f"{self.impl} [{self.env}]"

    def number(self, name: str) -> float | None:
        value = self.verdict.get(name)
        return None if value is None else decode_float(value)


@dataclass
class Group:
    kind: str  # "explained" | "unexplained" | "failure"
    key: tuple
    slug: str  # stable id for anchors and file names
    title: str
    members: list[Member] = field(default_factory=list)
    representative: Member | None = None
    shared_features: list[str] = field(default_factory=list)

    @property
    def case_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.members:
            seen.setdefault(m.case_id, None)
        return list(seen)

    @property
    def other_case_ids(self) -> list[str]:
        rep = self.representative.case_id if self.representative else None
        return [c for c in self.case_ids if c != rep]

    @property
    def runs(self) -> list[str]:
        return sorted({m.run_label for m in self.members})

    @property
    def keys(self) -> list[str]:
        return sorted({m.key for m in self.members})

    @property
    def rules(self) -> dict[str, str]:
        return dict(sorted(self.representative.verdict.get("rules", {}).items())) if self.representative else {}

    @property
    def explanations(self) -> list[dict[str, str]]:
        """Every equivalent explanation of an explained group, best first (the representative's
        order; the first is `rules`); one entry for a group with one explanation."""
        if self.kind != "explained" or self.representative is None:
            return []
        return [dict(sorted(e.items())) for e in explanation_sets(self.representative.verdict)]


@dataclass
class Report:
    environments: list[Environment]
    cases: dict[str, dict[str, Any]]  # case id -> Case JSON
    members: list[Member]  # every loss-path verdict
    extra_members: dict[str, list[Member]]  # "gradient" / "distribution" -> verdicts
    groups: list[Group]
    # load(rejudge=True): "results" re-judged on read, "changed" verdicts that differ from the
    # recorded ones (as compared byte for byte), "as recorded" results without a semantics hash
    rejudged: Counter = field(default_factory=Counter)

    @property
    def runs(self) -> list[tuple[str, str]]:
        """(env, impl) pairs in a stable order."""
        return sorted({(m.env, m.impl) for m in self.members} | {(m.env, m.impl) for ms in self.extra_members.values() for m in ms})

    def versions_of(self, env: str, impl: str) -> dict[str, str]:
        for m in self.members:
            if m.env == env and m.impl == impl and m.versions:
                return m.versions
        for e in self.environments:
            if e.name == env:
                for v in e.versions_by_impl().get(impl, []):
                    return v
        return {}

    def all_members(self) -> list[Member]:
        return self.members + [m for kind in EXTRA_KINDS for m in self.extra_members.get(kind, [])]

    def section_counts(self) -> dict[str, Counter]:
        """Section (SECTIONS) -> Counter of verdicts, over every verdict of every section."""
        counts: dict[str, Counter] = {s: Counter() for s in SECTIONS}
        for m in self.all_members():
            counts[section_of(m.key)][m.verdict["verdict"]] += 1
        return counts

    def total_seconds(self) -> float:
        seen, total = set(), 0.0
        for m in self.members:
            ident = (m.env, m.impl, m.case_id)
            if ident not in seen:
                seen.add(ident)
                total += float(m.record.get("seconds") or 0.0)
        return total

    def started_span(self) -> tuple[str, str] | None:
        stamps = sorted(str(h["started"]) for e in self.environments for h in e.headers if h.get("started"))
        return (stamps[0], stamps[-1]) if stamps else None


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def results_paths(inputs: Iterable[Path]) -> list[Path]:
    """Expand folders to their *.jsonl files (sorted); keep files as given. Raises
    ReportInputError for a path that does not exist or a folder without results."""
    paths: list[Path] = []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            found = sorted(p.glob("*.jsonl"))
            if not found:
                raise ReportInputError(f"{p}: expected results files (*.jsonl) in this folder, found none")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise ReportInputError(f"{p}: no such file or folder")
    return paths


# `python -m harness report --as-recorded` sets this to False (render.write calls load(paths)).
REJUDGE_ON_READ = True


def load(paths: Iterable[Path], *, rejudge: bool | None = None) -> Report:
    """Read every results file and join by case id. A malformed file raises
    resultsfile.ResultsError (or spec.CaseError for a damaged case) naming file, line and field.

    Judged on read (`rejudge`): every result record that carries the hash of the semantics it
    was judged with (every record `run` writes) is judged again from its observation, with the
    call `run` and `judge` make (harness.judging), and the report shows the verdicts of now;
    editing the semantics and rebuilding the report re-judges the whole sweep. A record without
    the hash (hand-built, or older than the hash) is shown as recorded. `Report.rejudged` counts
    what was re-judged and how many verdicts changed."""
    from harness import judging

    rejudge = REJUDGE_ON_READ if rejudge is None else rejudge
    environments: list[Environment] = []
    cases: dict[str, dict[str, Any]] = {}
    members: list[Member] = []
    extra: dict[str, list[Member]] = {k: [] for k in EXTRA_KINDS}
    rejudged: Counter = Counter()
    for path in paths:
        path = Path(path)
        env = Environment(name=path.stem, path=path)
        environments.append(env)
        current: dict[str, dict[str, str]] = {}  # impl -> versions of its latest header
        context = judging.Context(path)
        for n, record in resultsfile.iter_records(path):
            check_record(record, f"{path}: line {n}")
            raw = record
            record = _plain(record)
            kind = record["kind"]
            if kind == "header":
                env.headers.append(record)
                current[record["impl"]] = dict(record.get("versions") or {})
                context.see(n, raw)
            elif kind == "case":
                cases.setdefault(record["case_id"], record["case"])
                context.see(n, raw)
            else:
                if rejudge and raw.get("semantics") and raw["case_id"] in context.cases:
                    now = _plain(context.judge(n, raw).verdicts)
                    recorded = record.get("verdicts") or {}
                    rejudged["results"] += 1
                    rejudged["changed"] += sum(1 for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))
                    record = {**record, "verdicts": now, "recorded_verdicts": recorded}
                elif rejudge:
                    rejudged["as recorded"] += 1
                by_key = {f"{p['path']}/{p['mode']}": p for p in record.get("paths") or []}
                for key, verdict in (record.get("verdicts") or {}).items():
                    m = Member(env.name, record["impl"], record["case_id"], key, verdict,
                               by_key.get(key, by_key.get(observed_path(key))), record, current.get(record["impl"], {}))
                    if m.path in EXTRA_KINDS:
                        extra[m.path].append(m)
                    else:
                        members.append(m)
    missing = sorted({m.case_id for ms in [members, *extra.values()] for m in ms} - set(cases))
    if missing:
        raise resultsfile.ResultsError(
            f"results refer to case ids with no 'case' record in any file: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else ""))
    report = Report(environments, cases, members, extra, [], rejudged)
    report.groups = group(report)
    return report


# --------------------------------------------------------------------------------------
# Checking records, plain text
# --------------------------------------------------------------------------------------

NUMBER = "a number or 'nan'/'inf'/'-inf'"


def _expect(ok: bool, where: str, field_name: str, expected: str, got: Any) -> None:
    if not ok:
        raise resultsfile.ResultsError(f"{where}: field {field_name}: expected {expected}, got {spec.short(got, 63)}")


def _is_number(x: Any) -> bool:
    return (isinstance(x, (int, float)) and not isinstance(x, bool)) or (isinstance(x, str) and x in ("nan", "inf", "-inf"))


def _optional(check: Any) -> Any:
    return lambda x: x is None or check(x)


def _is_text(x: Any) -> bool:
    return isinstance(x, str)


def _fields(obj: dict[str, Any], prefix: str, where: str, checks: dict[str, tuple[Any, str]]) -> None:
    for name, (check, expected) in checks.items():
        _expect(check(obj.get(name)), where, prefix + name, expected, obj.get(name))


_OPT_TEXT = (_optional(_is_text), "a string")
_OPT_NUMBER = (_optional(_is_number), NUMBER)

PATH_FIELDS = {
    "path": (_is_text, "a path name string"), "mode": (_is_text, "a mode string"), "status": _OPT_TEXT,
    "total": _OPT_NUMBER,
    "terms": (_optional(lambda t: isinstance(t, dict) and all(x is None or _is_number(x) for x in t.values())),
              "an object of term name -> " + NUMBER),
    "error_type": _OPT_TEXT, "error_message": _OPT_TEXT,
}
VERDICT_FIELDS = {
    "verdict": (lambda v: v in VERDICT_ORDER, "one of " + ", ".join(VERDICT_ORDER)),
    "value": _OPT_NUMBER, "expected": _OPT_NUMBER, "explained_value": _OPT_NUMBER, "rel_diff": _OPT_NUMBER,
    "rules": (_optional(lambda r: isinstance(r, dict) and all(isinstance(a, str) for a in r.values())),
              "an object of rule -> alternative strings"),
    "differing_terms": (_optional(lambda t: isinstance(t, list) and all(isinstance(x, str) for x in t)),
                        "a list of term names"),
    "reason": _OPT_TEXT, "stage": _OPT_TEXT, "profile": _OPT_TEXT,
    "equivalent": (_optional(lambda e: isinstance(e, list) and all(
        isinstance(r, dict) and all(isinstance(a, str) for a in r.values()) for r in e)),
        "a list of objects of rule -> alternative strings"),
    "precedents": (_optional(lambda r: isinstance(r, dict) and all(isinstance(a, str) for a in r.values())),
                   "an object of rule -> release strings"),
}


def check_record(record: dict[str, Any], where: str) -> None:
    """Every field of a record that the report reads has the type it needs; otherwise
    ResultsError "<where>: field <field>: expected ..., got ...". (resultsfile has checked the
    schema version, the kind and that the required fields are there.) A case must load
    (spec.CaseError names the field inside it)."""
    kind = record["kind"]
    if kind == "header":
        _fields(record, "", where, {
            "impl": (_is_text, "an implementation name string"), "started": _OPT_TEXT,
            "versions": (_optional(lambda v: isinstance(v, dict) and all(x is None or isinstance(x, str) for x in v.values())),
                         "an object of package -> version strings")})
    elif kind == "case":
        _expect(_is_text(record["case_id"]), where, "case_id", "a case id string", record["case_id"])
        spec.from_json(record["case"], f"{where}: field case")
    else:
        _fields(record, "", where, {
            "case_id": (_is_text, "a case id string"), "impl": (_is_text, "an implementation name string"),
            "status": (_is_text, "a status string"), "message": _OPT_TEXT, "stderr_tail": _OPT_TEXT,
            "seconds": (_optional(lambda x: _is_number(x) and not isinstance(x, str)), "a number of seconds"),
            "paths": (_optional(lambda x: isinstance(x, list)), "a list of path results"),
            "verdicts": (_optional(lambda x: isinstance(x, dict)), "an object of key -> verdict")})
        for i, pr in enumerate(record.get("paths") or []):
            _expect(isinstance(pr, dict), where, f"paths[{i}]", "an object (a path result)", pr)
            _fields(pr, f"paths[{i}].", where, PATH_FIELDS)
        for key, verdict in (record.get("verdicts") or {}).items():
            _expect(isinstance(verdict, dict), where, f"verdicts.{key}", "an object with a 'verdict'", verdict)
            _fields(verdict, f"verdicts.{key}.", where, VERDICT_FIELDS)


# Terminal escape sequences: CSI ("\x1b[31m", "\x1b[0m"), OSC ("\x1b]...\x07") and two-byte ones.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


def plain_text(text: str) -> str:
    """`text` without terminal escape sequences (TensorFlow and JAX colour their error
    messages) and without other control characters; newlines and tabs stay."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return plain_text(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------
# Grouping
# --------------------------------------------------------------------------------------


def case_size(case_json: dict[str, Any]) -> tuple[int, int, int]:
    """(layers, outputs, array elements): the order in which a group's smallest case is chosen."""

    def count(v: Any) -> int:
        return sum(count(x) for x in v) if isinstance(v, list) else 1

    elements = sum(count(i["data"]) for i in case_json.get("inputs", []))
    for layer in case_json.get("layers", []):
        elements += sum(count(w) for w in layer.get("weights", {}).values())
    for o in case_json.get("outputs", []):
        elements += count(o.get("target", []))
        if o.get("sample_weight") is not None:
            elements += count(o["sample_weight"])
    return (len(case_json.get("layers", [])), len(case_json.get("outputs", [])), elements)


def impl_family(impl: str) -> str:
    from harness import impls

    entry = impls.IMPLEMENTATIONS.get(impl)
    return entry.family if entry else impl


def term_kinds(names: Iterable[str]) -> tuple[str, ...]:
    """'output/a', 'output/b' -> 'output'; 'total' and 'regularization' stay themselves."""
    return tuple(sorted({n.split("/", 1)[0] for n in names}))


def _slug(kind: str, title: str, key: tuple) -> str:
    """A stable, file-name-safe id: the kind, the start of the title, a hash of the key."""
    import hashlib

    head = "".join(c if c.isalnum() else "-" for c in f"{kind}-{title}".lower())
    head = "-".join(p for p in head.split("-") if p)[:48].strip("-")
    return f"{head}-{hashlib.sha256(repr((kind, key)).encode()).hexdigest()[:8]}"


def unexplained_signatures(members: list[Member]) -> dict[tuple[str, str, str], tuple[tuple[str, ...], tuple[str, ...]]]:
    """(env, impl, case id) -> (paths on which that run is unexplained at stage "loss", kinds of
    the terms that differ on any of them). One cause usually shows on several paths of a case
    (every whole-batch path, or evaluate and fit); the set of paths is part of its signature."""
    paths: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    kinds: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for m in members:
        if m.verdict["verdict"] == "unexplained" and m.verdict.get("stage") != "predictions":
            ident = (m.env, m.impl, m.case_id)
            paths[ident].add(m.path)
            kinds[ident].update(term_kinds(m.verdict.get("differing_terms", [])))
    return {k: (tuple(sorted(paths[k], key=_path_order)), tuple(sorted(kinds[k]))) for k in paths}


def _path_order(path: str) -> tuple:
    from harness.results import PATHS

    return (PATHS.index(path) if path in PATHS else len(PATHS), path)


def group_key(m: Member, signatures: dict | None = None) -> tuple[str, tuple] | None:
    v = m.verdict["verdict"]
    if v == "explained":
        sets = explanation_sets(m.verdict)
        if len(sets) <= 1:
            rules = tuple(sorted((m.verdict.get("rules") or {}).items()))
            return "explained", (impl_family(m.impl), rules)
        # Equivalent explanations: the key is the set of them (each a sorted tuple), whatever their rank.
        return "explained", (impl_family(m.impl), tuple(sorted(tuple(sorted(e.items())) for e in sets)))
    if v == "unexplained":
        stage = m.verdict.get("stage") or ""
        if stage == "predictions":  # the forward pass differs: one cause for every path
            return "unexplained", (m.env, m.impl, "*", stage, ())
        paths, kinds = (signatures or {}).get((m.env, m.impl, m.case_id), ((m.path,), term_kinds(m.verdict.get("differing_terms", []))))
        return "unexplained", (m.env, m.impl, "+".join(paths), stage, kinds)
    if v in FAILURE_VERDICTS:
        return "failure", (impl_family(m.impl), v, failure_signature(m))
    return None


def explanation_sets(verdict: dict[str, Any]) -> list[dict[str, str]]:
    """An explained verdict's explanations, best first: its "equivalent" list (written when there
    are two or more), else its one "rules" set."""
    equivalent = verdict.get("equivalent")
    if isinstance(equivalent, list) and len(equivalent) >= 2 and all(isinstance(e, dict) for e in equivalent):
        return [dict(e) for e in equivalent]
    rules = verdict.get("rules") or {}
    return [dict(rules)] if rules else []


def failure_signature(m: Member) -> str:
    """What identifies the cause of an error: its type and where it was raised.

    harness/impls/paths.py appends "[at <file>:<line> in <function>]" (the innermost frame) to
    error messages; with the type that names the place in Keras. Without it, the type and the
    first 60 characters of the message. Crashes and timeouts: the verdict's reason as is."""
    pr = m.path_result or {}
    etype, message = pr.get("error_type"), str(pr.get("error_message") or "")
    if not etype:
        reason = str(m.verdict.get("reason") or m.verdict["verdict"])
        return reason.split("\n", 1)[0][:100]
    at = message.rfind(" [at ")
    if at >= 0 and message.endswith("]"):
        return f"{etype} {message[at + 1:]}"
    return f"{etype}: {message[:60]}"


def _title(kind: str, key: tuple) -> str:
    if kind == "explained":
        family, rules = key
        if rules and isinstance(rules[0][0], tuple):  # equivalent explanations: each set, "or" between
            return f"{family}: " + " or ".join(", ".join(f"{r} = {a}" for r, a in e) for e in rules)
        return f"{family}: " + ", ".join(f"{r} = {a}" for r, a in rules)
    if kind == "unexplained":
        env, impl, path, stage, kinds = key
        if stage == "predictions":
            return f"{impl} [{env}]: the forward pass (predictions) differs from the reference"
        return f"{impl} [{env}]: the loss differs on {path.replace('+', ', ')} in {', '.join(kinds) or 'total'}"
    family, verdict, signature = key
    return f"{family}: {verdict}: {signature}"


KIND_ORDER = {"unexplained": 0, "failure": 1, "explained": 2}


# Which member of a group represents it on its smallest case: test_on_batch first (the path a
# reproducer shows most plainly), then the other paths; eager before compiled modes.
REPRESENTATIVE_PATHS = ("test_on_batch", "train_on_batch", "evaluate", "fit", "compute_loss")
REPRESENTATIVE_MODES = ("eager", "graph", "function", "compiled", "jit")


def _representative_rank(m: Member) -> tuple[int, int]:
    p = REPRESENTATIVE_PATHS.index(m.path) if m.path in REPRESENTATIVE_PATHS else len(REPRESENTATIVE_PATHS)
    md = REPRESENTATIVE_MODES.index(m.mode) if m.mode in REPRESENTATIVE_MODES else len(REPRESENTATIVE_MODES)
    return p, md


def group(report: Report) -> list[Group]:
    buckets: dict[tuple[str, tuple], list[Member]] = defaultdict(list)
    signatures = unexplained_signatures(report.members)
    for m in report.members:
        k = group_key(m, signatures)
        if k is not None:
            buckets[k].append(m)
    groups = []
    for (kind, key), members in buckets.items():
        members.sort(key=lambda m: (case_size(report.cases[m.case_id]), m.case_id, m.env, m.impl,
                                    _representative_rank(m), m.key))
        title = _title(kind, key)
        if kind == "explained" and len(explanation_sets(members[0].verdict)) > 1:
            # equivalent explanations: the title names them in the representative's (ranked) order
            title = f"{key[0]}: " + " or ".join(", ".join(f"{r} = {a}" for r, a in sorted(e.items()))
                                               for e in explanation_sets(members[0].verdict))
        g = Group(kind, key, _slug(kind, title, key), title, members, members[0])
        g.shared_features = shared_features(report, g.case_ids)
        groups.append(g)
    groups.sort(key=lambda g: (KIND_ORDER[g.kind], -len(g.case_ids), g.title))
    return groups


_FEATURES_CACHE: dict[str, frozenset[str] | None] = {}


def case_features(case_json: dict[str, Any], case_id: str | None = None) -> frozenset[str] | None:
    """harness.features.features(case), or None when that module is not available. Memoised
    by case id (features run a small forward pass)."""
    if case_id is not None and case_id in _FEATURES_CACHE:
        return _FEATURES_CACHE[case_id]
    try:
        from harness import features as features_mod
    except ImportError:
        return None
    found = frozenset(features_mod.features(spec.from_json(case_json)))
    if case_id is not None:
        _FEATURES_CACHE[case_id] = found
    return found


def shared_features(report: Report, case_ids: list[str]) -> list[str]:
    sets = [case_features(report.cases[c], c) for c in case_ids]
    if not sets or any(s is None for s in sets):
        return []
    common = frozenset.intersection(*sets)  # type: ignore[arg-type]
    return sorted(common)


def feature_counts(report: Report) -> Counter | None:
    counts: Counter = Counter()
    for cid, case_json in report.cases.items():
        f = case_features(case_json, cid)
        if f is None:
            return None
        counts.update(f)
    return counts


def verdict_matrix(report: Report) -> tuple[list[tuple[str, str]], list[str], dict[tuple, Counter]]:
    """Rows (env, impl), columns path/mode, cells Counter of verdicts."""
    cells: dict[tuple, Counter] = defaultdict(Counter)
    for m in report.members:
        cells[(m.env, m.impl, m.key)][m.verdict["verdict"]] += 1
    rows = sorted({(m.env, m.impl) for m in report.members})
    cols = sorted({m.key for m in report.members}, key=_key_order)
    return rows, cols, cells


def _key_order(key: str) -> tuple:
    from harness.results import PATHS

    path, _, mode = key.partition("/")
    return (PATHS.index(path) if path in PATHS else len(PATHS), path, mode)


def abs_rel_diff(m: Member) -> float | None:
    v = m.number("rel_diff")
    if v is None:
        return None
    return abs(v) if not math.isnan(v) else math.inf
