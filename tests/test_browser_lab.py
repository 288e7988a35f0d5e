"""Every notebook as an analyst meets it: JupyterLab in Chromium, Run All, every widget moved.

JupyterLab is started on loopback (a token, no browser of its own, nothing fetched from the
internet) over a copy of notebooks/, and Debian's Chromium, driven by Playwright, opens
each notebook and runs it all. Then every slider, dropdown and number box is moved once
and the picture or text it drives must change; controls that only feed a **Run again**
button are moved, then the button is pressed (after Run All has shut the services down,
so it must start them again). No cell may end in an error, the browser console must stay
free of errors, and screenshots are kept under ``test-artifacts/browser``.

It is one test, not one per notebook: one server and one browser, on one xdist worker.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from _browser_helpers import ARTIFACTS, CHROMIUM_ARGS, Lab, find_chromium, jupyterlab

playwright = pytest.importorskip("playwright.sync_api")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RUN_ALL_S = 420.0  # a few times the slowest notebook's quiet Run All in JupyterLab
REDRAW_S = 120.0  # a few times the slowest redraw (a re-simulated grid, a re-run stream)

KERNEL = "window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel"
READY = (
    f"() => window.jupyterapp?.shell.currentWidget?.sessionContext && {KERNEL}?.status === 'idle'"
)
# Idle, no cell queued or running, no dashboard saying it is working.
SETTLED = f"""() => {{
  const nb = window.jupyterapp.shell.currentWidget;
  const running = nb.content.widgets.some(c => c.model.type === 'code'
      && (c.model.executionState === 'running' || c.promptNode?.textContent.includes('*')));
  const working = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
      .some(o => o.textContent.includes('…'));
  return {KERNEL}?.status === 'idle' && !running && !working;
}}"""
# What a person sees change: every picture's source and every widget's text, per output.
PICTURE = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(o =>
  Array.from(o.querySelectorAll('img')).map(i => i.src.length + ':' + i.src.slice(-64)).join('|')
  + '#' + Array.from(o.querySelectorAll('.widget-html-content')).map(h => h.textContent).join('|')
).join('\\n')"""
OUTPUTS = """() => window.jupyterapp.shell.currentWidget.content.model.toJSON().cells
  .filter(c => c.cell_type === 'code').map(c => c.outputs)"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium to drive: install Debian's chromium package, as .ci/run does")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("lab")
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        shutil.copy(notebook, root / notebook.name)
    env = {k: v for k, v in os.environ.items() if k not in ("CLAY_API_KEY", "CLAY_BASE_URL")}
    env.pop("CLAYNB_ALLOW_SPEND", None)
    env["CLAYNB_HOME"] = str(root / ".claynb")
    with jupyterlab(root, env, root / "jupyterlab.log") as server:
        yield server


class Page:
    """One notebook open in JupyterLab, with what went wrong collected as it happens."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name = page, name
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text[:300]}")

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{Path(self.name).stem}-{label}.png"))

    def settle(self, timeout_s: float = REDRAW_S) -> None:
        self.page.wait_for_function(SETTLED, timeout=timeout_s * 1000, polling=250)

    def run_all(self) -> None:
        self.page.wait_for_function(READY, timeout=120_000)
        self.page.evaluate(
            "async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
        )
        self.settle(RUN_ALL_S)
        for i, outputs in enumerate(self.page.evaluate(OUTPUTS)):
            for out in outputs:
                if out["output_type"] == "error":
                    self.problems.append(f"cell {i}: {out['ename']}: {out['evalue'][:300]}")
                elif out.get("name") == "stderr" and "Traceback" in out.get("text", ""):
                    self.problems.append(f"cell {i}: traceback on stderr")

    def expect_redraw(self, what: str, before: str) -> None:
        try:
            self.page.wait_for_function(
                f"(before) => ({PICTURE})() !== before", arg=before, timeout=REDRAW_S * 1000
            )
            self.settle()
        except playwright.TimeoutError:
            self.problems.append(f"{what}: nothing redrew")


def _group_has_button(control: Any) -> bool:
    return bool(
        control.evaluate(
            "el => !!el.closest('.jp-OutputArea-output')?.querySelector('button.jupyter-button')"
        )
    )


def _move_slider(nb: Page, handle: Any) -> None:
    now = float(handle.get_attribute("aria-valuenow") or 0)
    top = float(handle.get_attribute("aria-valuemax") or 0)
    handle.scroll_into_view_if_needed()
    handle.focus()
    nb.page.keyboard.press("ArrowLeft" if now >= top else "ArrowRight")


def move_every_widget(nb: Page) -> int:
    """Move each control once; a redraw must follow, or the group's Run again button."""
    page, moved = nb.page, 0
    deferred: set[str] = set()
    controls = [
        *(("slider", h) for h in page.locator(".jp-OutputArea-output .noUi-handle").all()),
        *(
            ("dropdown", s)
            for s in page.locator(".jp-OutputArea-output .widget-dropdown select").all()
        ),
        *(
            ("number", i)
            for i in page.locator(".jp-OutputArea-output .widget-text input[type=number]").all()
        ),
    ]
    for kind, control in controls:
        before = page.evaluate(PICTURE)
        if kind == "slider":
            _move_slider(nb, control)
        elif kind == "dropdown":
            options = control.evaluate("s => Array.from(s.options).map(o => o.value)")
            current = control.input_value()
            control.select_option(next(o for o in options if o != current))
        else:
            control.scroll_into_view_if_needed()
            control.fill(str(float(control.input_value() or 0) + 5_000))
            control.press("Enter")
        moved += 1
        label = f"{kind} {moved}"
        if _group_has_button(control):
            deferred.add(label)
            nb.settle()
        else:
            nb.expect_redraw(label, before)
    for button in page.locator(".jp-OutputArea-output button.jupyter-button").all():
        before = page.evaluate(PICTURE)
        button.scroll_into_view_if_needed()
        button.click()
        nb.expect_redraw(f"button {button.inner_text()!r}", before)
        page.wait_for_function(
            "b => !b.disabled", arg=button.element_handle(), timeout=REDRAW_S * 1000
        )
        nb.settle()
    return moved


def _shut_down(page: Any) -> None:
    page.evaluate(
        "async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }"
    )


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_notebook_runs_and_every_widget_redraws_in_jupyterlab(
    chromium: str, lab: Lab
) -> None:
    report: dict[str, dict[str, Any]] = {}
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            for notebook in sorted(lab.root.glob("*.ipynb")):
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                nb = Page(page, notebook.name)
                started = time.monotonic()
                page.goto(lab.notebook_url(notebook.name), timeout=120_000)
                nb.run_all()
                nb.shot("run-all")
                moved = move_every_widget(nb)
                nb.shot("widgets-moved")
                _shut_down(page)
                page.close()
                report[notebook.name] = {
                    "seconds": round(time.monotonic() - started, 1),
                    "widgets moved": moved,
                    "problems": nb.problems,
                }
        finally:
            browser.close()
    (ARTIFACTS / "report.json").write_text(json.dumps(report, indent=2))
    assert len(report) == len(list(NOTEBOOKS.glob("*.ipynb")))
    problems = {name: r["problems"] for name, r in report.items() if r["problems"]}
    assert not problems, json.dumps(problems, indent=2)
    # Every notebook with controls had them moved (00 and 06 have none).
    without_controls = ("00_", "06_")
    assert all(
        r["widgets moved"] > 0 for n, r in report.items() if not n.startswith(without_controls)
    ), report
