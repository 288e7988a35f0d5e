"""Exported reports open in a real browser: headless Chromium loads them, plots and all.

The report that matters most is the one ``claynb demo`` writes (the README's first
command), so the demo runs once here, as on a fresh clone: a fake key and the allow-spend
switch in the environment must not stop it using the embedded emulator, the output
directory does not exist yet, and the report's path is what it prints.

A probe script is added to a copy of the report: once the page has loaded it counts the
images that actually decoded (``naturalWidth > 0``) and the table rows in the DOM, and
writes the counts onto ``<body>``, which ``--dump-dom`` then shows. A screenshot is taken
too and checked for ink. Chromium comes from Debian's ``chromium`` package (.ci/run
installs it); where there is none these tests skip and say so.

The dashboards' notebooks (04, 05) are shared and opened with the network off: every
picture and note a reader needs is there without a CDN, nothing tries to load from the
internet, prices stay text, and no table pushes the page wider than the window.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import nbformat
import pytest
from _browser_helpers import CANDIDATES, CHROMIUM_ARGS, find_chromium
from _share_helpers import once_per_session, python_notebook

from claynb.cli import main
from claynb.share import share_notebook

needs_browser = pytest.mark.browser
FAKE_KEY = "clay_fake_demo_4e5f6a7b8c9d0e1f"

PROBE = """
<script>
window.addEventListener("load", function () {
  var decoded = Array.prototype.filter.call(document.images, function (img) {
    return img.complete && img.naturalWidth > 0 && img.src.indexOf("data:image/png") === 0;
  });
  document.body.setAttribute("data-probe-images", String(decoded.length));
  document.body.setAttribute("data-probe-rows",
    String(document.querySelectorAll("table.dataframe tbody tr").length));
  document.body.setAttribute("data-probe-text", document.body.innerText.length > 0 ? "yes" : "no");
});
</script>
"""


def chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium offline-friendly: no sandbox (containers), no background calls."""
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def browser() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no headless browser: none of " + ", ".join(CANDIDATES) + " is on PATH "
            "(install Debian's chromium package, as .ci/run does)"
        )
    return path


def plot_and_table_notebook(path: Path) -> Path:
    nb = python_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Browser check"),
        nbformat.v4.new_code_cell(
            "import pandas as pd\n"
            "pd.DataFrame({'tier': ['direct', 'queue', 'events'], "
            "'leads_per_day': [1_000, 50_000, 500_000]})"
        ),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            "ax.bar(['direct', 'queue', 'events'], [1, 50, 500])\n"
            "plt.show()"
        ),
    ]
    nbformat.write(nb, str(path))
    return path


def _share_check(tmp: Path) -> None:
    source = plot_and_table_notebook(tmp / "check.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAYNB_HOME", str(tmp / "home"))
        shared = share_notebook(source, tmp / "out")
    assert shared.ok, shared.error


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return once_per_session(tmp_path_factory, "browser-check", _share_check) / "out" / "check.html"


def probe(browser: str, html_path: Path, tmp: Path) -> dict[str, str]:
    probed = tmp / f"probed-{html_path.name}"
    text = html_path.read_text(encoding="utf-8")
    probed.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    done = chromium(browser, tmp / "profile", "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body[^>]*>", done.stdout)
    assert body, "Chromium returned no <body>"
    return dict(re.findall(r'data-probe-(\w+)="([^"]*)"', body.group(0)))


def assert_inked(browser: str, html_path: Path, tmp: Path) -> None:
    from matplotlib.image import imread

    shot = tmp / f"{html_path.stem}.png"
    done = chromium(
        browser,
        tmp / "profile-shot",
        "--window-size=1200,1600",
        f"--screenshot={shot}",
        html_path.as_uri(),
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = imread(str(shot))[..., :3]
    not_white = (pixels < 0.9).any(axis=-1).mean()
    assert not_white > 0.01, f"the screenshot is blank ({not_white:.2%} ink)"


@needs_browser
def test_plots_and_tables_render_in_chromium(browser: str, report: Path, tmp_path: Path) -> None:
    found = probe(browser, report, tmp_path)
    assert found.get("images") == "1", found
    assert found.get("rows") == "3", found
    assert found.get("text") == "yes"


@needs_browser
def test_screenshot_of_the_report_has_ink(browser: str, report: Path, tmp_path: Path) -> None:
    assert_inked(browser, report, tmp_path)


def _run_demo(tmp: Path) -> None:
    out_dir = tmp / "fresh" / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAYNB_HOME", str(tmp / "home"))
        mp.setenv("CLAY_API_KEY", FAKE_KEY)  # would be real Clay if the demo honoured it
        mp.setenv("CLAYNB_ALLOW_SPEND", "1")
        mp.chdir(tmp)
        with (tmp / "stdout.txt").open("w") as fh, redirect_stdout(fh):
            rc = main(["demo", "-o", str(out_dir), "-q"])
    (tmp / "rc").write_text(str(rc))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    tmp = once_per_session(tmp_path_factory, "demo", _run_demo)
    return (
        int((tmp / "rc").read_text()),
        (tmp / "stdout.txt").read_text(),
        tmp / "fresh" / "reports",
    )


def test_demo_writes_the_report_and_prints_its_path(demo: tuple[int, str, Path]) -> None:
    rc, printed, out_dir = demo
    assert rc == 0
    report_path = out_dir / "quickstart.html"
    assert printed.strip() == str(report_path.resolve())
    assert report_path.is_file() and (out_dir / "quickstart.ipynb").is_file()
    for name in ("quickstart.html", "quickstart.ipynb"):
        assert FAKE_KEY not in (out_dir / name).read_text(encoding="utf-8")
    nb = nbformat.read(str(out_dir / "quickstart.ipynb"), as_version=4)
    assert nb.metadata["papermill"]["parameters"]["allow_spend"] is False
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []


@needs_browser
def test_demo_report_renders_plots_and_tables(
    browser: str, demo: tuple[int, str, Path], tmp_path: Path
) -> None:
    _, _, out_dir = demo
    found = probe(browser, out_dir / "quickstart.html", tmp_path)
    assert int(found.get("images", "0")) >= 1, found
    assert int(found.get("rows", "0")) >= 5, found
    assert_inked(browser, out_dir / "quickstart.html", tmp_path)


DASHBOARDS = ("04_volume_cost_simulator", "05_decision_matrix")
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _share_dashboards(tmp: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLAYNB_HOME", str(tmp / "home"))
        for name in DASHBOARDS:
            shared = share_notebook(NOTEBOOKS / f"{name}.ipynb", tmp / "out")
            assert shared.ok, shared.error


@pytest.fixture(scope="module")
def dashboards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return once_per_session(tmp_path_factory, "dashboards", _share_dashboards) / "out"


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("name", DASHBOARDS)
def test_exported_dashboards_stand_alone_offline(browser: str, dashboards: Path, name: str) -> None:
    from playwright.sync_api import sync_playwright

    html_path = dashboards / f"{name}.html"
    fetched: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=browser, args=list(CHROMIUM_ARGS))
        try:
            context = chrome.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on(
                "request", lambda r: fetched.append(r.url) if r.url.startswith("http") else None
            )
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(html_path.as_uri(), wait_until="load")
            found = page.evaluate(
                """() => ({
                  pictures: Array.from(document.images).filter(i => i.naturalWidth > 0).length,
                  dashboardPicture: Array.from(document.querySelectorAll('img')).some(i =>
                      i.naturalWidth > 400 && i.closest('div')?.textContent.includes('static picture')),
                  note: document.body.innerText.includes('Open the notebook in JupyterLab'),
                  mathjax: typeof window.MathJax !== 'undefined',
                  dollars: document.body.innerText.includes('$'),
                  overflow: document.documentElement.scrollWidth - window.innerWidth,
                })"""
            )
            (Path(__file__).resolve().parents[1] / "test-artifacts" / "browser").mkdir(
                parents=True, exist_ok=True
            )
            page.screenshot(
                path=str(
                    Path(__file__).resolve().parents[1]
                    / "test-artifacts"
                    / "browser"
                    / f"{name}-exported-offline.png"
                ),
                full_page=True,
            )
        finally:
            chrome.close()
    assert fetched == [], f"the page tried the network: {fetched}"
    assert errors == []
    assert found["dashboardPicture"] and found["note"], found
    assert found["pictures"] >= 2, found  # the heatmap or plots above, and the dashboard
    assert not found["mathjax"] and found["dollars"], found
    assert found["overflow"] <= 1, f"the page is {found['overflow']} px wider than the window"
