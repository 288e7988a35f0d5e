"""The dead-letter queue: RQ's failed-job registry, listed, inspected and requeued.

A claynb job lands there when its retries ran out (Clay kept failing, a worker died with
no retries left) or when the shared budget could not pay and the user chose
``on_budget="dead_letter"``. Its batch keeps its journal, so a requeued job resumes:
a run already started is polled, not sent again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from claynb.queue._store import FAILED, BatchStore


@dataclass(frozen=True)
class DeadLetter:
    """One failed job: which batch, how many leads, and why it failed (last line)."""

    job_id: str
    queue: str
    batch_id: str | None
    leads: int
    state: str | None
    reason: str
    failed_at: datetime | None

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _registry(conn: Any, queue: str) -> Any:
    from rq import Queue
    from rq.registry import FailedJobRegistry

    return FailedJobRegistry(queue=Queue(queue, connection=conn))


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _exc(job: Any) -> str:
    result = job.latest_result()
    text = getattr(result, "exc_string", None) if result is not None else None
    if not text:  # put there by claynb (budget) or by RQ's abandoned-job clean-up
        text = job.meta.get("reason") or job._exc_info or ""
    return str(text)


def dead_letters(conn: Any, queue: str = "claynb") -> list[DeadLetter]:
    """Every job in the queue's failed-job registry, oldest first."""
    from rq.job import Job

    store = BatchStore(conn)
    out = []
    for job_id in _registry(conn, queue).get_job_ids():
        job = Job.fetch(job_id, connection=conn)
        batch_id = job.meta.get("batch") or job.id
        batch = store.load(batch_id)
        out.append(
            DeadLetter(
                job.id,
                queue,
                batch_id if batch else None,
                len(batch.leads) if batch else 0,
                batch.state if batch else None,
                _last_line(_exc(job)),
                job.ended_at,
            )
        )
    return out


def dead_letter_frame(conn: Any, queue: str = "claynb") -> Any:
    """:func:`dead_letters` as a DataFrame (for a notebook)."""
    import pandas as pd

    cols = ["job_id", "queue", "batch_id", "leads", "state", "reason", "failed_at"]
    return pd.DataFrame([d.as_row() for d in dead_letters(conn, queue)], columns=cols)


def inspect_dead_letter(conn: Any, job_id: str) -> dict[str, Any]:
    """Everything about one dead letter: the traceback, the batch journal, its leads."""
    from rq.job import Job

    job = Job.fetch(job_id, connection=conn)
    batch = BatchStore(conn).load(job.meta.get("batch") or job.id)
    return {
        "job_id": job.id,
        "queue": job.origin,
        "status": str(job.get_status()),
        "exc_info": _exc(job),
        "retries_left": job.retries_left,
        "enqueued_at": job.enqueued_at,
        "ended_at": job.ended_at,
        "batch": None
        if batch is None
        else {
            "id": batch.id,
            "state": batch.state,
            "run_id": batch.run_id or None,
            "routine": batch.routine.id,
            "reserved_items": batch.reserved,
            "leads": [{"lead": lead.lead_id, "inputs": lead.inputs} for lead in batch.leads],
        },
    }


def requeue_dead_letters(
    conn: Any, queue: str = "claynb", job_ids: list[str] | None = None
) -> list[str]:
    """Put dead letters back on their queue (all of them by default); the ids requeued.

    A requeued job gets its retries back, and its batch its sends (the per-item cap of
    :class:`claynb.RetryPolicy` counts from zero again: a person decided to try again),
    so a second bad spell does not send it straight back here.
    """
    from rq.job import Job

    registry = _registry(conn, queue)
    store = BatchStore(conn)
    ids = job_ids if job_ids is not None else registry.get_job_ids()
    done = []
    for job_id in ids:
        job = Job.fetch(job_id, connection=conn)
        batch = store.load(job.meta.get("batch") or job.id)
        if batch is not None and batch.state == FAILED:
            store.requeue(batch.id)
        if job.retries_left is not None and job.retry_intervals is not None:
            job.retries_left = max(job.retries_left, int(job.meta.get("retries", 0)))
            job.save()
        registry.requeue(job_id)
        done.append(job_id)
    return done


def describe(letters: list[DeadLetter]) -> str:
    return json.dumps([d.as_row() for d in letters], default=str, indent=2)
