"""Helpers shared by the browser tests (not a test module): Chromium, JupyterLab, a free port.

Chromium is Debian's package (.ci/run installs it); Playwright for Python drives it through
``executable_path`` and never downloads a browser of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from claynb.services._process import free_port

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# No sandbox (containers), no GPU, and nothing that calls home.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def no_chromium_reason() -> str:
    return (
        "no headless browser: none of " + ", ".join(CANDIDATES) + " is on PATH "
        "(install Debian's chromium package, as .ci/run does)"
    )


@dataclass(frozen=True)
class Lab:
    """A JupyterLab server this test started: its base URL and token."""

    url: str
    token: str
    root: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


@contextmanager
def jupyterlab(root: Path, env: dict[str, str], log: Path) -> Iterator[Lab]:
    """JupyterLab on a loopback port serving ``root``, app exposed to the page, nothing
    fetched from the internet (no extension manager, update check or news)."""
    port, token = free_port(), "claynb-browser-test"
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/api/status?token={token}", proc, log)
        yield Lab(url, token, root)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_up(status_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer in 120 s: {log.read_text()[-2000:]}")
