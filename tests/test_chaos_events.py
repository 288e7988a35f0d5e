"""Chaos, event tier: NATS killed while the reconciler lands runs; no lead lost or paid twice.

A real nats-server (its JetStream on disk) SIGKILLed and started again, every webhook
dropped so the reconciler does all the landing; judged by :func:`_chaos.check` from the
emulator's per-lead charges. Marked ``chaos``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _chaos import check, run_events_nats_outage

pytestmark = pytest.mark.chaos


def test_nats_killed_while_the_reconciler_lands_runs_loses_no_lead(tmp_path: Path) -> None:
    check(run_events_nats_outage(tmp_path))
