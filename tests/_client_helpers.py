"""Helpers shared by the client tests against the emulator (not a test module)."""

from __future__ import annotations

import time
from typing import Any


def statuses(emu: Any) -> dict[str, int]:
    """Answers by status, once settled: the emulator counts an answer just after sending it."""
    previous: dict[str, int] | None = None
    for _ in range(40):
        now = dict(emu.meters(charges=False)["requests"]["by_status"])
        if now == previous:
            return now
        previous = now
        time.sleep(0.05)
    return previous or {}
