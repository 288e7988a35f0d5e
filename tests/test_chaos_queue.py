"""Chaos, queue tier: Redis and workers killed mid-run; no lead lost, none paid twice.

Real worker processes, a real redis-server (SIGKILLed and started again on its own
directory, or SIGSTOPped), real signals; judged by :func:`_chaos.check` from the
emulator's per-lead charges. Marked ``chaos``: ``pytest -m chaos`` runs only these.
"""

from __future__ import annotations

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


def test_redis_killed_and_restarted_with_a_budget_loses_nothing_and_keeps_the_cap(
    tmp_path: Path,
) -> None:
    fig = run_queue_scenario(
        tmp_path, "redis SIGKILL + restart, cap 120", kill_redis_and_restart, cap=120
    )
    check(fig)
    assert fig.statuses.get("over_budget", 0) > 0  # the cap, not luck, ended the spending
    assert fig.data_credits <= 120


def test_redis_stopped_for_seconds_loses_nothing(tmp_path: Path) -> None:
    check(run_queue_scenario(tmp_path, "redis SIGSTOP 4 s", partial(stop_redis, down_s=4.0)))


def test_one_worker_killed_is_replaced_and_loses_nothing(tmp_path: Path) -> None:
    fig = run_queue_scenario(tmp_path, "one worker SIGKILL", kill_one_worker)
    check(fig)
    assert fig.replaced > 0


def test_every_worker_killed_is_replaced_and_loses_nothing(tmp_path: Path) -> None:
    fig = run_queue_scenario(tmp_path, "all workers SIGKILL", kill_all_workers)
    check(fig)
    assert fig.replaced > 0


def test_worker_killed_at_60_percent_of_a_shared_budget_meets_the_cap_exactly(
    tmp_path: Path,
) -> None:
    fig = run_queue_scenario(
        tmp_path, "worker SIGKILL at 60% of cap 100", kill_worker_at_share_of_budget, cap=100
    )
    check(fig)
    assert fig.statuses.get("over_budget", 0) > 0
