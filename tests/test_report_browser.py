"""A real browser opens a sweep's report.html from disk: every image loads; a screenshot goes to test-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from test_report import sweep  # noqa: F401  (the session fixture: a synthetic four-case sweep and its report)

from infomax_cli import rundir

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (bash .ci/install-browser installs it)"
)

ARTIFACTS = ROOT / "test-artifacts"
# Counts the images that decoded (naturalWidth > 0) once the page has loaded, and writes it into the DOM.
CHECK = (
    '<script>window.addEventListener("load", function () {var all = Array.from(document.images);'
    "var ok = all.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;"
    'var d = document.createElement("div"); d.id = "img-check"; d.textContent = "loaded " + ok + " of " + all.length;'
    "document.body.appendChild(d);});</script>"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_every_image_of_the_sweep_report_loads_in_chromium(sweep, tmp_path):  # noqa: F811
    page = (sweep / rundir.REPORT).read_text()
    n_img = page.count("<img ")
    assert n_img >= 6
    checked = tmp_path / "checked.html"  # the page as written, plus the counting script
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    done = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    found = re.search(r'id="img-check">loaded (\d+) of (\d+)<', done.stdout)
    assert found, (
        f"no image count in the DOM Chromium dumped (rc {done.returncode}): {done.stderr[-2000:]}"
    )
    assert (int(found[1]), int(found[2])) == (n_img, n_img)


@pytest.mark.slow
def test_screenshot_of_the_sweep_report(sweep, tmp_path):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-sweep.png"
    shot.unlink(missing_ok=True)
    done = chromium(
        tmp_path,
        "--window-size=1400,5000",
        f"--screenshot={shot}",
        (sweep / rundir.REPORT).as_uri(),
    )
    assert shot.is_file(), (
        f"Chromium wrote no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (5000, 1400)
    assert pixels.std() > 10  # not a blank page


# Measures, once the page has laid out, how far each table and the page reach past the window's width,
# and writes it into the DOM: a table wider than the page must scroll inside its own box.
WIDTHS = (
    '<script>window.addEventListener("load", function () {'
    "var page = document.documentElement.clientWidth, worst = 0, scrolling = 0;"
    "Array.from(document.querySelectorAll('table')).forEach(function (t) {"
    "worst = Math.max(worst, t.getBoundingClientRect().right - page);"
    "if (t.scrollWidth > t.clientWidth + 1) { scrolling += 1; } });"
    'var d = document.createElement("div"); d.id = "width-check";'
    'd.textContent = "page " + page + " scroll " + document.documentElement.scrollWidth +'
    ' " past " + Math.ceil(worst) + " scrolling " + scrolling;'
    "document.body.appendChild(d);});</script>"
)


@pytest.mark.slow
def test_the_sweep_report_fits_a_1280_pixel_window(sweep, tmp_path):  # noqa: F811
    """Every table of the report ends inside a 1280-px window (a wide one scrolls inside its box),
    nothing makes the page scroll sideways; the screenshot at 1280 px goes to test-artifacts/."""
    page = (sweep / rundir.REPORT).read_text()
    checked = tmp_path / "checked.html"
    # directory names as long as a real sweep's (overrides of dataset, steps, seeds) widen the job table
    wide = page.replace("case=a<", "case=a,dataset=samples,dataset.n_images=320,seed=0<")
    checked.write_text(wide.replace("</body>", WIDTHS + "</body>"))
    done = chromium(
        tmp_path,
        "--window-size=1280,2000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        checked.as_uri(),
    )
    found = re.search(
        r'id="width-check">page (\d+) scroll (\d+) past (-?\d+) scrolling (\d+)<', done.stdout
    )
    assert found, (
        f"no measurement in the DOM Chromium dumped (rc {done.returncode}): {done.stderr[-2000:]}"
    )
    page_width, scroll_width, past, scrolling = map(int, found.groups())
    assert 1200 <= page_width <= 1280
    assert scroll_width <= page_width and past <= 0, found[0]
    assert scrolling >= 1, found[0]  # the job table is wider than the page: it scrolls in its box
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-sweep-1280.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, "--window-size=1280,3000", f"--screenshot={shot}", checked.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1280) and pixels.std() > 10
