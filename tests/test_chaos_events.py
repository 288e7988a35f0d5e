"""Chaos, event tier: NATS killed while the reconciler lands runs; no lead lost or paid twice.

A real nats-server (its JetStream on disk) SIGKILLed and started again, every webhook
dropped so the reconciler does all the landing; judged by :func:`_chaos.check` from the
emulator's per-lead charges. Marked ``chaos``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from _chaos import check, run_events_nats_outage, run_events_service_restart

# Each scenario runs a real service, bus and emulator for minutes; on a loaded machine,
# beside the rest of the suite, that passed pytest's default 300 s once: give them room.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


def test_nats_killed_while_the_reconciler_lands_runs_loses_no_lead(tmp_path: Path) -> None:
    check(run_events_nats_outage(tmp_path))


def test_service_sigkilled_with_runs_in_flight_loses_no_lead(tmp_path: Path) -> None:
    fig = run_events_service_restart(tmp_path, "service SIGKILL, back 3.5 s later")
    check(fig)


def test_service_sigkilled_on_a_redis_bus_has_its_pending_leads_claimed(tmp_path: Path) -> None:
    """Redis Streams keeps a dead consumer's unacknowledged leads pending for good: the
    restarted service claims them once idle (``CLAYNB_BUS_RECLAIM_IDLE_S``)."""
    fig = run_events_service_restart(
        tmp_path, "service SIGKILL on a Redis Streams bus", bus_kind="redis", runs_before_fault=2
    )
    check(fig)


def test_service_sigkilled_mid_send_collects_the_runs_clay_started(tmp_path: Path) -> None:
    """Killed while every send waits for Clay's answer: the journal has no run id, only
    sends of unknown outcome. The new process holds their items, the leads delivered again
    join them, and the runs' webhooks (Clay's runs outlast a restart, as here) name them:
    collected, not sent again, not parked ``outcome_unknown``."""
    fig = run_events_service_restart(
        tmp_path,
        "service SIGKILL mid-send (Redis Streams bus)",
        bus_kind="redis",
        mid_send=True,
        latency_s=60.0,  # a restart beside a loaded suite took 25 s
    )
    check(fig)


def test_service_sigtermed_like_a_redeploy_loses_no_lead(tmp_path: Path) -> None:
    check(run_events_service_restart(tmp_path, "service SIGTERM (redeploy)", sig=signal.SIGTERM))


def test_receiver_restarted_during_deliveries_loses_no_lead(tmp_path: Path) -> None:
    fig = run_events_service_restart(
        tmp_path, "receiver restart during deliveries", during_deliveries=True, down_s=1.0
    )
    check(fig)


def test_half_the_webhooks_dropped_loses_no_lead(tmp_path: Path) -> None:
    check(
        run_events_service_restart(tmp_path, "50% of webhooks dropped", sig=None, drop_webhooks=0.5)
    )
