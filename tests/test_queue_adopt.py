"""Queue tier: leads whose send's outcome is unknown are collected from Clay's webhook.

Real RQ workers, real Redis, the emulator over loopback sending run-finished webhooks to a
real receiver. Run-starting POSTs fail behind the run's back (a 5xx after the run started): the workers never send those batches again and
park their leads ``unknown``; the receiver hands each delivery to the queue, a worker
matches the run's item ids to the parked batch, and the leads get their answers. Judged
from the emulator's per-lead charges: every lead answered, none charged twice.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

import claynb
from claynb.direct import WebhookReceiver
from claynb.queue import JobOptions, LeadQueue, RedisBudgetGuard, WorkerPool
from claynb.queue._demo import synthetic_leads
from claynb.queue._store import unsettled_key

FAULTS = {
    "5xx after the run started": ({"start_failure": "started"}, claynb.Faults(server_error=0.3)),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_unknown_sends_are_collected_from_the_webhook_and_charged_once(
    redis_url: str, make_emulator: Any, tmp_path: Path, fault: str
) -> None:
    settings, faults = FAULTS[fault]
    emu = make_emulator(run_latency_s=0.2, seed=5, **settings)
    conn = redis.Redis.from_url(redis_url)
    name = f"adopt-{uuid.uuid4().hex[:8]}"
    guard = RedisBudgetGuard(conn, name, data_credits=10_000)
    lq: LeadQueue | None = None

    def delivered(run_id: str) -> None:  # the receiver hands each verified run to the queue
        assert lq is not None
        lq.delivered(run_id)

    with WebhookReceiver(home=str(tmp_path), on_finished=delivered) as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        lq = LeadQueue(
            "enrich-person",
            connection=conn,
            name=name,
            base_url=emu.url,
            batch_size=10,
            budget=name,
            webhook_id=hook["id"],
            options=JobOptions(retries=6, backoff_s=(0,), on_budget="report"),
        )
        emu.set_faults(faults)
        sub = lq.enqueue_frame(
            synthetic_leads(120, seed=9), inputs={"email": "Email"}, id_column="Lead ID"
        )
        pool = WorkerPool(
            redis_url,
            queues=[lq.name],
            n=2,
            api_key=emu.api_key,
            base_url=emu.url,
            emulator_admin_url=emu.admin_url,
            poll_interval_s=0.05,
            max_attempts=3,
        ).start()
        try:
            lq.wait(sub, timeout=120)
            emu.set_faults(claynb.Faults())
            out = _final(lq, sub, timeout=120)
        finally:
            pool.stop()
    parked = [o for o in lq.outcomes(sub.stream_mark) if o["status"] == "unknown"]
    assert parked, "the fault never hit a run's POST"
    assert len(out) == 120 and set(out["status"]) <= {"enriched", "no_match", "cached"}
    meters = emu.meters()
    charged = Counter(str(c["inputs_key"]) for c in meters["charges"])
    assert all(n == 1 for n in charged.values()), "an item was charged twice"
    answered = set(out.loc[out["status"] != "cached", "key"])
    assert set(charged) <= answered  # every charge reached its lead
    assert out["actions"].sum() == pytest.approx(meters["actions_used"])
    assert out["data_credits"].sum() == pytest.approx(meters["data_credits_used"])
    spent = guard.status().spent["data_credits"]
    assert spent == pytest.approx(meters["data_credits_used"])  # the worst case corrected
    assert not conn.scard(unsettled_key(lq.name))


def _final(lq: LeadQueue, sub: Any, timeout: float) -> Any:
    """Each lead's last outcome, once none is ``unknown`` (collected ones follow theirs)."""
    deadline = time.monotonic() + timeout
    while True:
        rows: dict[str, dict[str, Any]] = {}
        for outcome in lq.outcomes(sub.stream_mark):
            rows[outcome["lead"]] = outcome
        if len(rows) == len(sub) and all(o["status"] != "unknown" for o in rows.values()):
            break
        assert time.monotonic() < deadline, Counter(o["status"] for o in rows.values())
        time.sleep(0.2)
    return pd.DataFrame([rows[lead] for lead in sub.lead_ids])
