"""Helpers shared by the share/export tests (not a test module)."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def once_per_session(
    factory: pytest.TempPathFactory, name: str, produce: Callable[[Path], None]
) -> Path:
    """A directory that ``produce`` fills once per test session, even across xdist workers.

    Module fixtures would run once per worker: ``xdist_group`` is not honoured with
    pytest 9 and xdist 3.8 (no ``@group`` suffix reaches the scheduler), and executing a
    notebook is the slow part of these tests.
    """
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / f"once-{name}"
    with (root / f"once-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / ".done").exists():
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                produce(target)
                (target / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target
