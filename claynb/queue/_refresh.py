"""Periodic refresh: re-enrich leads whose data is older than a max age, within budget.

Enrichment goes stale (people change jobs). Every lead a queue enriched is remembered
with the time of its answer; :func:`refresh_stale` re-queues those older than
``max_age_s`` (bypassing the cache), no more than the shared budget can pay for at its
worst case. :func:`schedule_refresh` runs it every ``every_s`` with RQ's scheduler: the job
re-schedules itself with ``enqueue_in``, so it needs a worker started with the scheduler
(``claynb worker`` is, by default), and :func:`cancel_refresh` stops it.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

from claynb.pipeline._budget import row_reservation
from claynb.queue._budget import RedisBudgetGuard
from claynb.queue._jobs import JobOptions, submit
from claynb.queue._store import (
    PREFIX,
    BatchStore,
    Lead,
    fresh_key,
    leads_key,
    load_template,
)
from claynb.wire._config import MAX_RUN_ITEMS


def refresh_key(queue: str, routine_id: str) -> str:
    return f"{PREFIX}:{queue}:refresh:{routine_id}"


def affordable(conn: Any, budget: str, unit_credits: float, unit_actions: float) -> int | None:
    """How many worst-case items the shared budget can still pay for (None: no cap)."""
    if not budget:
        return None
    status = RedisBudgetGuard(conn, budget).status()
    room = []
    for meter, unit in (("data_credits", unit_credits), ("actions", unit_actions)):
        left = status.left(meter)
        if left is not None and unit > 0:
            room.append(int(left // unit))
    return max(0, min(room)) if room else None


def refresh_stale(
    conn: Any, queue: str, routine_id: str, max_age_s: float, limit: int | None = None
) -> list[str]:
    """Queue the stale leads of ``routine_id`` again (oldest first); the batch ids."""
    template = load_template(conn, queue, routine_id)
    if template is None:
        return []
    worst = row_reservation(template.routine, capped=bool(template.budget))
    room = affordable(conn, template.budget, worst.data_credits, worst.actions)
    cap = min(x for x in (limit, room, 10_000) if x is not None)
    if cap <= 0:
        return []
    stale = conn.zrangebyscore(fresh_key(queue), "-inf", time.time() - max_age_s, start=0, num=cap)
    leads = []
    for raw_id in stale:
        lead_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        raw = conn.hget(leads_key(queue), lead_id)
        if raw is None:
            continue
        data = json.loads(raw)
        if data["routine"] != routine_id:
            continue
        from claynb.pipeline._work import item_key

        leads.append(Lead(lead_id, item_key(routine_id, data["inputs"]), data["inputs"]))
    if not leads:
        return []
    # Mark them as being refreshed now, so the next period does not queue them again.
    conn.zadd(fresh_key(queue), {lead.lead_id: time.time() for lead in leads})
    store, opts = BatchStore(conn), JobOptions.from_dict(template.opts)
    ids, stem = [], uuid.uuid4().hex[:12]
    for n, start in enumerate(range(0, len(leads), MAX_RUN_ITEMS)):
        template.id = f"{queue}-r{stem}-{n}"
        template.leads = leads[start : start + MAX_RUN_ITEMS]
        template.use_cache = False
        store.create(template)
        submit(conn, queue, template.id, opts)
        ids.append(template.id)
    return ids


def refresh_job(queue: str, routine_id: str, token: str = "") -> dict[str, Any]:
    """RQ job: refresh once, then schedule the next run unless cancelled or replaced."""
    from rq import Queue, get_current_job

    job = get_current_job()
    assert job is not None
    conn = job.connection
    raw = conn.get(refresh_key(queue, routine_id))
    if raw is None:
        return {"cancelled": True}
    cfg = json.loads(raw)
    if cfg.get("token", "") != token:  # a newer schedule_refresh replaced this chain
        return {"replaced": True}
    ids = refresh_stale(conn, queue, routine_id, cfg["max_age_s"], cfg.get("limit"))
    Queue(queue, connection=conn).enqueue_in(
        timedelta(seconds=cfg["every_s"]),
        refresh_job,
        queue,
        routine_id,
        token,
        meta={"claynb_refresh": True},
    )
    return {"batches": ids}


def schedule_refresh(
    conn: Any,
    queue: str,
    routine_id: str,
    *,
    every_s: float,
    max_age_s: float,
    limit: int | None = None,
) -> Any:
    """Refresh stale leads every ``every_s`` seconds (a worker with the scheduler runs it).

    Calling it again replaces the schedule: the earlier chain stops at its next run.
    """
    from rq import Queue

    token = uuid.uuid4().hex
    conn.set(
        refresh_key(queue, routine_id),
        json.dumps({"every_s": every_s, "max_age_s": max_age_s, "limit": limit, "token": token}),
    )
    return Queue(queue, connection=conn).enqueue_in(
        timedelta(seconds=every_s),
        refresh_job,
        queue,
        routine_id,
        token,
        meta={"claynb_refresh": True},
    )


def cancel_refresh(conn: Any, queue: str, routine_id: str) -> bool:
    """Stop the periodic refresh (the next scheduled run sees it is cancelled)."""
    return bool(conn.delete(refresh_key(queue, routine_id)))
