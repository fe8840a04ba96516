"""The HTML report in a real browser: headless Chromium runs its script, sorts the per-task table
from the link's fragment, shows both inline figures, and runs nothing from the hostile texts.

Needs Chromium (Debian: ``apt-get install -y chromium``); skipped with the reason where none is
installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_passk.html_report import render_html

from .reports import report

pytestmark = pytest.mark.browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_BROWSER = "no headless Chromium installed (Debian: apt-get install -y chromium)"


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(NO_BROWSER)


def _chromium(tmp_path: Path, *args: str) -> str:
    pytest.importorskip("matplotlib")
    command = [
        _browser(),
        "--headless",
        "--no-sandbox",  # as root in a container; the page is our own, offline file
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]


def test_chromium_renders_sorted_tables_and_figures_and_runs_no_hostile_text(
    tmp_path: Path,
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(report()), encoding="utf-8")
    # Column 2 is the first model's pass@1; sort it descending from the fragment.
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri() + "#sort=2:desc")
    opening = re.search(r"<html[^>]*>", dom)
    assert opening is not None
    assert 'data-ready="1"' in opening.group(0), "the report's script did not run"
    assert "data-pwned" not in opening.group(0), "a hostile text ran as code"
    table = re.search(r'<table class="sortable" id="tasks"[^>]*>(.*?)</table>', dom, re.S)
    assert table is not None
    assert 'data-sorted="2:desc"' in dom
    body = table.group(1).split("<tbody>")[1]
    rows = [_cells(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]
    values = [float(row[2]) for row in rows]
    assert len(rows) == 6
    assert values == sorted(values, reverse=True)
    assert values != [float(row[2]) for row in sorted(rows)]  # not merely the original order
    assert dom.count("<svg") == 2
    assert 'aria-sort="descending"' in dom


def test_chromium_screenshot_is_a_real_image(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(report()), encoding="utf-8")
    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 50_000
