"""Every notebook in notebooks/, shared with a real-looking key in the environment, leaks nothing.

Each notebook runs through ``claynb share`` exactly as a user would run it, with a fake
``CLAY_API_KEY`` and a fake signing secret in the environment and spending not allowed,
so ``claynb.connect()`` uses the embedded emulator. Neither fake value, nor the key the
emulator generated inside the kernel (``clay_test_...``), nor any webhook signing secret
(``whsec_...``) may appear in the .ipynb, the HTML, or what the command printed. The
emulator's values are never known to this process, so they are found by their shape.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from claynb.cli import main

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

FAKE_KEY = "clay_fake_7c1d9e2f4a6b8c0d1e2f"
FAKE_SIGNING_SECRET = "whsec_fakeSigningSecret0123456789"
FAKE_TOKEN = "fake-service-token-5f4e3d2c1b"

# The shapes of secrets generated where this test cannot see them (inside the kernel).
GENERATED = [re.compile(r"clay_test_[A-Za-z0-9_\-]{16,}"), re.compile(r"whsec_[A-Za-z0-9_\-]{8,}")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_a_shared_notebook_contains_no_secret(
    notebook: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CLAY_API_KEY", FAKE_KEY)
    monkeypatch.setenv("CLAYNB_WEBHOOK_SECRET", FAKE_SIGNING_SECRET)
    monkeypatch.setenv("SERVICE_TOKEN", FAKE_TOKEN)
    monkeypatch.delenv("CLAYNB_ALLOW_SPEND", raising=False)
    out_dir = tmp_path / "shared"

    # A cell stuck past 120 s fails here with its number, not later as a pytest timeout.
    rc = main(["share", str(notebook), "-o", str(out_dir), "-q", "--timeout", "120"])
    printed, errors = capsys.readouterr()

    assert rc == 0, errors[-3000:]
    texts = {
        "ipynb": (out_dir / f"{notebook.stem}.ipynb").read_text(encoding="utf-8"),
        "html": (out_dir / f"{notebook.stem}.html").read_text(encoding="utf-8"),
        "stdout": printed,
        "stderr": errors,
    }
    for where, text in texts.items():
        for secret in (FAKE_KEY, FAKE_SIGNING_SECRET, FAKE_TOKEN):
            assert secret not in text, f"a fake secret reached the {where}"
            assert html.escape(secret) not in text, f"a fake secret reached the {where}"
        for shape in GENERATED:
            found = shape.search(text)
            assert found is None, f"a generated secret reached the {where} at {found.start()}"
    assert "claynb-footer" in texts["ipynb"]
