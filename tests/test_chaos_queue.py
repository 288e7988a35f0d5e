"""Chaos, queue tier: Redis and workers killed mid-run; no lead lost, none paid twice.

Real worker processes, a real redis-server (SIGKILLed and started again on its own
directory, or SIGSTOPped), real signals; judged by :func:`_chaos.check` from the
emulator's per-lead charges. Marked ``chaos``: ``pytest -m chaos`` runs only these.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from _chaos import (
    check,
    kill_all_workers,
    kill_one_worker,
    kill_redis_and_restart,
    kill_worker_at_share_of_budget,
    run_queue_scenario,
    stop_redis,
)

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize(
    ("scenario", "fault", "cap"),
    [
        ("redis SIGKILL + restart, cap 120", kill_redis_and_restart, 120),
        ("worker SIGKILL at 60% of cap 100", kill_worker_at_share_of_budget, 100),
    ],
)
def test_a_crash_under_a_shared_budget_loses_nothing_and_keeps_the_cap(
    tmp_path: Path, scenario: str, fault: Callable[..., float], cap: float
) -> None:
    fig = run_queue_scenario(tmp_path, scenario, fault, cap=cap)
    check(fig)
    assert fig.statuses.get("over_budget", 0) > 0  # the cap, not luck, ended the spending


def test_redis_stopped_for_seconds_loses_nothing(tmp_path: Path) -> None:
    check(run_queue_scenario(tmp_path, "redis SIGSTOP 4 s", partial(stop_redis, down_s=4.0)))


@pytest.mark.parametrize(
    ("scenario", "fault"),
    [("one worker SIGKILL", kill_one_worker), ("all workers SIGKILL", kill_all_workers)],
)
def test_killed_workers_are_replaced_and_lose_nothing(
    tmp_path: Path, scenario: str, fault: Callable[..., float]
) -> None:
    fig = run_queue_scenario(tmp_path, scenario, fault)
    check(fig)
    assert fig.replaced > 0
