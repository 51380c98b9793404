"""The report in a real browser: headless Chromium loads it with no console message, the
scripts enhance it (sort buttons, visible filters, copy buttons), the headline of a report with
gradient, distribution and error verdicts counts every one of them as rendered, the chart's row
labels fit inside the picture, and screenshots are kept in reports/artifacts/ for a person to
look at (report.png: the recorded runs; report-headline.png: the top of the every-section report).

Skipped only when no Chromium is installed (the CI script installs it:
`apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from harness.report import render

from harness.report import loading

from test_report import RECORDED, every_section_results, headline_counts, parse, synthetic_results

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "reports" / "artifacts"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=180)


def console_lines(stderr: str) -> list[str]:
    """Chromium logs every console message (errors, uncaught exceptions, console.log) as
    `...:INFO:CONSOLE...] "message", source: ...`; the page itself logs nothing."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    inputs = sorted(RECORDED.glob("*.jsonl")) or [synthetic_results(folder)]
    out = folder / "site" / "index.html"
    render.write(inputs, out)
    return out, folder


def test_page_loads_without_console_messages_and_is_screenshotted(built):
    out, folder = built
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    proc = chromium(out, folder / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    assert console_lines(proc.stderr) == [], console_lines(proc.stderr)


def test_scripts_enhance_the_page(built):
    out, folder = built
    proc = chromium(out, folder / "profile-dom", "--dump-dom")
    assert console_lines(proc.stderr) == [], console_lines(proc.stderr)
    tree = parse(proc.stdout)
    assert tree.find_all("button", class_="sort"), "sortable tables got their header buttons"
    filters = tree.by_id("filters")
    assert "hidden" not in filters.attrs, "the filter bar is shown once the script runs"
    copies = tree.find_all("button", class_="copy")
    assert copies and all("hidden" not in b.attrs for b in copies)


def test_console_detection_is_not_blind(tmp_path):
    """The check above would see a script error: a page with one is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    proc = chromium(page, tmp_path / "profile-bad", "--dump-dom")
    assert any("undefinedFunction" in line for line in console_lines(proc.stderr)), proc.stderr[-2000:]


# Measures every chart row label as laid out (SVG user units) into data attributes, so that
# --dump-dom shows where the browser put them.
MEASURE = """<script>
document.querySelectorAll("svg text.rowlabel").forEach(function (t) {
  var box = t.getBBox();
  t.setAttribute("data-left", box.x);
  t.setAttribute("data-right", box.x + box.width);
});
</script>"""


@pytest.fixture(scope="module")
def every_section(tmp_path_factory):
    """The report of hand-built results with verdicts in every section (test_report.py)."""
    folder = tmp_path_factory.mktemp("browser-every-section")
    inputs, expected = every_section_results(folder)
    out = folder / "site" / "index.html"
    render.write(inputs, out)
    return out, folder, expected


def test_rendered_headline_counts_gradient_distribution_and_error_verdicts(every_section):
    out, folder, expected = every_section
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-headline.png"
    proc = chromium(out, folder / "profile-headline-shot", f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
    proc = chromium(out, folder / "profile-headline-dom", "--dump-dom")
    assert console_lines(proc.stderr) == [], console_lines(proc.stderr)
    tree = parse(proc.stdout)
    shown = headline_counts(tree)
    for section in ("gradient", "sgd_update", "distribution"):
        assert expected[section]["unexplained"] + expected[section]["error"] > 0, f"the fixture has {section} findings"
    for section, counts in expected.items():  # every kind, "all" the section's total (zeros dropped)
        assert +shown[section] == counts + Counter(all=sum(counts.values())), section
    everything = sum(expected.values(), Counter())
    failures = sum(everything[v] for v in loading.FAILURE_VERDICTS)
    title = " ".join(tree.by_id("h-headline").text().split())
    assert title.startswith(f"{everything['unexplained']} unexplained, {failures} failures"), title


def test_chart_row_labels_are_not_clipped(every_section):
    out, folder, _ = every_section
    page = out.with_name("measure.html")
    page.write_text(out.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    proc = chromium(page, folder / "profile-measure", "--dump-dom")
    assert console_lines(proc.stderr) == [], console_lines(proc.stderr)
    svg = parse(proc.stdout).by_id("chart").find_all("svg")[0]
    plot_left = min(float(line.attrs["x1"]) for line in svg.find_all("line", class_="rowline"))
    labels = svg.find_all("text", class_="rowlabel")
    assert any(len(t.text()) > 50 for t in labels), "a label as long as the main job's longest"
    for t in labels:
        assert float(t.attrs["data-left"]) >= 0, f"{t.text()!r} starts left of the picture"
        assert float(t.attrs["data-right"]) <= plot_left, f"{t.text()!r} runs into the plot"
