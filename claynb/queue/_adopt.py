"""Leads whose send's outcome is unknown, collected when Clay's webhook names their run.

A worker whose run-starting POST timed out, was cut or got a 5xx cannot know whether Clay
started the run, so it never sends the batch again: it reports its leads ``unknown`` and
*parks* the batch. Runs carry the receiver's webhook id (``LeadQueue(webhook_id=)``), so if
Clay did start the run, its run-finished delivery names it; the run's results carry our
item ids, and matching them to a parked batch's keys turns ``unknown`` into an answer.

The pieces:

- a queue's *unsettled* set holds every batch whose run id is not journaled: written just
  before the POST, cleared once the run id is (see :mod:`claynb.queue._jobs`), kept while
  the batch is parked. Deliveries for runs claynb already knows are skipped cheaply;
- :meth:`claynb.queue.LeadQueue.delivered` (what a receiver calls for each verified
  run-finished delivery) enqueues :func:`collect_run` on the queue when anything is unsettled;
- :func:`collect_run` runs on a worker (which holds the API key): it polls the run until
  it is complete (RQ retries it with backoff: the *later poll*), matches its item ids to
  a parked batch and publishes those leads' answers once, atomically, correcting the
  shared budget from the worst case to what Clay charged. Nothing is ever sent again.
"""

from __future__ import annotations

import json
from typing import Any

from claynb._plans import get_plan
from claynb.pipeline._outcome import outcomes_of
from claynb.queue._jobs import (
    WorkerSettings,
    actual_spend,
    budget_key_of,
    build_outcomes,
    worker_client,
)
from claynb.queue._store import (
    DONE,
    RESERVED,
    SENDING,
    Batch,
    BatchStore,
    batch_key,
    unsettled_key,
)
from claynb.wire._exceptions import ClayError

#: How often, and how far apart (seconds), a delivered run is looked at again while its
#: results are not complete or its batch is still being sent.
COLLECT_BACKOFF_S = (1, 2, 4, 8, 15, 30, 60, 60, 60, 60)


class NotYet(ClayError):
    """The run or its batch is not ready to be matched; RQ tries again with backoff."""


def job_id_for(run_id: str) -> str:
    """One collect job per delivered run, however often it is delivered."""
    return f"claynb-collect-{run_id}"


def notify_delivered(conn: Any, queue: str, run_id: str) -> bool:
    """A verified run-finished delivery: look for parked leads in it (True: a job was queued).

    Nothing is queued when no batch of ``queue`` is unsettled (the common case: every run
    claynb started has its id journaled), nor twice for the same run.
    """
    from rq import Queue, Retry
    from rq.job import Job

    if not conn.scard(unsettled_key(queue)):
        return False
    job_id = job_id_for(run_id)
    if Job.exists(job_id, connection=conn):
        return False
    Queue(queue, connection=conn).enqueue(
        collect_run,
        run_id,
        queue,
        job_id=job_id,
        retry=Retry(max=len(COLLECT_BACKOFF_S), interval=list(COLLECT_BACKOFF_S)),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        meta={"claynb": True, "run": run_id},
        description=f"claynb collect run {run_id}",
    )
    return True


def collect_run(run_id: str, queue: str) -> dict[str, Any]:
    """RQ entry point: match a delivered run to a parked batch of ``queue`` and collect it."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("collect_run runs inside an RQ worker")
    settings = WorkerSettings.from_env()
    store = BatchStore(job.connection)
    client = worker_client(settings, store.conn)
    return {"run": run_id, "batch": adopt_run(store, queue, run_id, client)}


def adopt_run(store: BatchStore, queue: str, run_id: str, client: Any) -> str | None:
    """The parked batch of ``queue`` that ``run_id`` is, collected; None when it is nobody's.

    Raises :class:`NotYet` while the run is not complete or a batch with its items is
    still being sent (its worker may yet learn the run id itself).
    """
    candidates = store.unsettled(queue)
    if not candidates:
        return None
    results = client.get_run_results(run_id)
    if not results.complete:
        raise NotYet(f"run {run_id} is not complete yet")
    ids = {item.id for item in results.items}
    for batch_id in candidates:
        batch = store.load(batch_id)
        if batch is None:  # expired (parked longer than a finished batch is kept)
            store.conn.srem(unsettled_key(queue), batch_id)
            continue
        if set(batch.send[: batch.reserved]) != ids:
            continue
        if batch.state in (RESERVED, SENDING):
            raise NotYet(f"batch {batch_id} is still being sent")
        if batch.state == DONE and _parked(store, batch_id):
            _collect(store, batch, run_id, results.by_id(), client)
            return batch_id
    return None


def _parked(store: BatchStore, batch_id: str) -> bool:
    raw = store.conn.hget(batch_key(batch_id), "parked")
    return raw is not None and (raw.decode() if isinstance(raw, bytes) else str(raw)) == "1"


def _collect(
    store: BatchStore, batch: Batch, run_id: str, items: dict[str, Any], client: Any
) -> None:
    """Publish the parked leads' answers once and correct the budget to Clay's charge."""
    keys = batch.send[: batch.reserved]
    charges = client.run_charges(run_id)
    got = outcomes_of(batch.routine, keys, items, run_id=run_id, charges=charges)
    answers = {r.key: r for r in got}
    cached = json.loads(store.conn.hget(batch_key(batch.id), "cached") or "{}")
    fresh = build_outcomes(batch, cached, answers, run_id, None, [])
    sent = set(keys)
    published = [o for o in fresh if o["key"] in sent]
    by_lead = {o["lead"]: o for o in published}
    outcomes = [by_lead.get(o["lead"], o) for o in batch.outcomes]
    plan = get_plan(str(batch.opts.get("plan", "growth")))
    worst, actual = actual_spend(batch, None, plan), actual_spend(batch, answers, plan)
    correction = [a - w for a, w in zip(actual, worst, strict=True)]
    if store.adopt(batch, budget_key_of(batch), run_id, outcomes, published, correction):
        store.remember(batch, published)


__all__ = ["NotYet", "adopt_run", "collect_run", "notify_delivered"]
