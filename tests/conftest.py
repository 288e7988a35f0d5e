"""Shared fixtures: every test gets its own CLAYNB_HOME, and no test can reach real Clay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def claynb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "claynb-home"
    monkeypatch.setenv("CLAYNB_HOME", str(home))
    # A real key in the developer's environment must never be used by a test.
    monkeypatch.delenv("CLAY_API_KEY", raising=False)
    monkeypatch.delenv("CLAY_BASE_URL", raising=False)
    yield home
