"""The report in a real browser: headless Chromium loads it with no console message, the
scripts enhance it (sort buttons, visible filters, copy buttons), and a screenshot is kept in
reports/artifacts/ for a person to look at.

Skipped only when no Chromium is installed (the CI script installs it:
`apt-get install -y chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report import render

from test_report import RECORDED, parse, synthetic_results

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
