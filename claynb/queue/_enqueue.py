"""The application API: put leads on the queue, one at a time or a whole frame.

    lq = LeadQueue("enrich-person", redis_url=url, budget="crm", options=JobOptions(on_budget="wait"))
    lq.enqueue_lead("crm-123", {"email": "ada@example.com"})    # e.g. from a CRM webhook
    sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Id")
    lq.wait(sub)                                               # a DataFrame of outcomes

Leads sent one at a time wait in a per-routine Redis list; the first lead (and every
100th) schedules a job that takes up to 100 of them as one run, so a busy webhook still
sends full runs. A frame is cut into batches of up to 100 leads straight away. Every
lead's outcome is appended once to the queue's outcome stream, which sinks read.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from claynb._routines import Routine, get_routine
from claynb.pipeline._normalise import normalise_inputs, resolve_columns
from claynb.pipeline._work import Status, item_key
from claynb.queue._budget import RedisBudgetGuard
from claynb.queue._jobs import JobOptions, submit
from claynb.queue._store import (
    Batch,
    BatchStore,
    Lead,
    outcomes_key,
    pending_key,
    template_key,
)
from claynb.wire._config import MAX_RUN_ITEMS, checked_batch_size

DEFAULT_QUEUE = "claynb"


@dataclass
class Submission:
    """What one ``enqueue_*`` call put on the queue: for :meth:`LeadQueue.wait`."""

    lead_ids: list[str]
    batch_ids: list[str] = field(default_factory=list)
    invalid: int = 0
    stream_mark: str = "0-0"
    submitted_at: float = field(default_factory=time.time)

    def __len__(self) -> int:
        return len(self.lead_ids)


class LeadQueue:
    """Leads to enrich with one routine, through RQ workers, against one Redis.

    ``budget`` names a :class:`~claynb.queue.RedisBudgetGuard` shared by every worker (or
    is one); ``None`` sends without a cap. ``base_url`` is the Clay the workers must talk
    to (checked by each worker; defaults to ``CLAY_BASE_URL``); the API key is never
    given here: workers read it from their own environment. ``webhook_id`` (the id Clay
    gave the outbound webhook of a receiver you run) is sent with every run, so a lead
    whose send's outcome is unknown is collected when the receiver hands the run's
    delivery to :meth:`delivered`.
    """

    def __init__(
        self,
        routine: str | Routine = "enrich-person",
        *,
        connection: Any = None,
        redis_url: str | None = None,
        name: str = DEFAULT_QUEUE,
        budget: str | RedisBudgetGuard | None = None,
        options: JobOptions | None = None,
        base_url: str | None = None,
        use_cache: bool = True,
        max_age_s: float | None = None,
        plan: str = "growth",
        linger_s: float = 0.0,
        batch_size: int = MAX_RUN_ITEMS,
        webhook_id: str | None = None,
    ) -> None:
        checked_batch_size(batch_size)
        if connection is None:
            from claynb.services.redis import connect

            connection = connect(redis_url)
        self.conn = connection
        self.name = name
        self.routine = routine if isinstance(routine, Routine) else get_routine(routine)
        self.budget = budget.name if isinstance(budget, RedisBudgetGuard) else (budget or "")
        self.options = options or JobOptions()
        self.base_url = base_url if base_url is not None else os.environ.get("CLAY_BASE_URL", "")
        self.use_cache = use_cache
        self.max_age_s = max_age_s
        self.plan = plan
        self.linger_s = linger_s
        self.batch_size = batch_size
        self.webhook_id = webhook_id
        self.store = BatchStore(connection)
        self._save_template()

    def __repr__(self) -> str:
        return (
            f"LeadQueue(routine={self.routine.id!r}, queue={self.name!r}, budget={self.budget!r})"
        )

    def _opts(self) -> dict[str, Any]:
        return {
            **self.options.to_dict(),
            "plan": self.plan,
            "max_age_s": self.max_age_s,
            "webhook_id": self.webhook_id,
        }

    def _batch(self, batch_id: str, leads: list[Lead], *, use_cache: bool | None = None) -> Batch:
        return Batch(
            id=batch_id,
            queue=self.name,
            routine=self.routine,
            leads=leads,
            policy=self.options.on_budget,
            budget=self.budget,
            base_url=self.base_url,
            use_cache=self.use_cache if use_cache is None else use_cache,
            opts=self._opts(),
        )

    def _save_template(self) -> None:
        fields = self._batch("", []).fields()
        fields.pop("leads")
        self.conn.hset(template_key(self.name, self.routine.id), mapping=fields)

    # -- putting leads in ---------------------------------------------------------------

    def _lead(self, lead_id: Any, inputs: Mapping[str, Any]) -> tuple[Lead | None, str | None]:
        clean, reason = normalise_inputs(self.routine, inputs)
        if reason is not None:
            return None, reason
        return Lead(str(lead_id), item_key(self.routine.id, clean), clean), None

    def enqueue_lead(self, lead_id: Any, inputs: Mapping[str, Any]) -> Submission:
        """Queue one lead (say, from a CRM webhook); it joins the next run of up to 100."""
        sub = Submission([str(lead_id)], stream_mark=self._mark())
        lead, reason = self._lead(lead_id, inputs)
        if lead is None:
            self._invalid(str(lead_id), dict(inputs), reason or "invalid input")
            sub.invalid = 1
            return sub
        depth = self.conn.rpush(pending_key(self.name, self.routine.id), lead.to_json())
        if depth == 1 or depth % MAX_RUN_ITEMS == 0:
            submit(
                self.conn,
                self.name,
                None,
                self.options,
                delay_s=self.linger_s or None,
                routine_id=self.routine.id,
            )
        return sub

    def enqueue_frame(
        self,
        df: Any,
        inputs: Mapping[str, str] | None = None,
        *,
        id_column: str | None = None,
        force: bool = False,
    ) -> Submission:
        """Queue every row of ``df`` in batches of up to 100 (``force``: ignore the cache)."""
        columns = resolve_columns(df, self.routine, inputs)
        ids = df[id_column].astype(str).tolist() if id_column else [str(i) for i in df.index]
        records = df[list(columns.values())].to_dict("records")
        sub = Submission(ids, stream_mark=self._mark())
        leads: list[Lead] = []
        for lead_id, rec in zip(ids, records, strict=True):
            raw = {name: rec[col] for name, col in columns.items()}
            lead, reason = self._lead(lead_id, raw)
            if lead is None:
                self._invalid(lead_id, raw, reason or "invalid input")
                sub.invalid += 1
            else:
                leads.append(lead)
        sub.batch_ids = self.enqueue_leads(leads, use_cache=False if force else None)
        return sub

    def enqueue_leads(self, leads: list[Lead], *, use_cache: bool | None = None) -> list[str]:
        """Queue already-normalised leads in batches of up to 100; the batch ids."""
        batch_ids = []
        stem = uuid.uuid4().hex[:12]
        size = self.batch_size
        for n, start in enumerate(range(0, len(leads), size)):
            batch = self._batch(
                f"{self.name}-{stem}-{n}", leads[start : start + size], use_cache=use_cache
            )
            self.store.create(batch)
            submit(self.conn, self.name, batch.id, self.options)
            batch_ids.append(batch.id)
        return batch_ids

    def _invalid(self, lead_id: str, inputs: dict[str, Any], reason: str) -> None:
        """Inputs that can never be sent are answered at once, never queued."""
        outcome = {
            "lead": lead_id,
            "key": None,
            "status": Status.INVALID_INPUT,
            "error": reason,
            "routine": self.routine.id,
            "result": {},
            "actions": 0.0,
            "data_credits": 0.0,
            "batch": None,
            "run_id": None,
            "at": time.time(),
            "inputs": {k: (None if v is None else str(v)) for k, v in inputs.items()},
        }
        self.conn.xadd(outcomes_key(self.name), {"o": json.dumps(outcome, default=str)})

    def _mark(self) -> str:
        last = self.conn.xrevrange(outcomes_key(self.name), count=1)
        return _s(last[0][0]) if last else "0-0"

    def delivered(self, run_id: str) -> None:
        """Clay said (a verified run-finished webhook) that ``run_id`` finished: leads
        parked ``unknown`` in that run are collected by a worker, never sent again.

        Pass it to a receiver: ``WebhookReceiver(on_finished=lq.delivered)``.
        """
        from claynb.queue._adopt import notify_delivered

        notify_delivered(self.conn, self.name, run_id)

    # -- reading outcomes back ----------------------------------------------------------

    def outcomes(self, since: str = "0-0", count: int | None = None) -> list[dict[str, Any]]:
        """Outcomes appended to this queue's stream after stream id ``since``."""
        return read_outcomes(self.conn, self.name, since, count)

    def wait(
        self, sub: Submission, *, timeout: float = 300.0, poll_s: float = 0.1, reap: bool = True
    ) -> Any:
        """Block until every lead of ``sub`` has an outcome; a DataFrame of them, in order.

        Leads held back by an empty budget (``on_budget="wait"``) keep this waiting until
        the budget is raised or ``timeout`` passes (then a TimeoutError says how many).
        """
        import pandas as pd

        from claynb.queue._worker import reap_abandoned

        wanted = set(sub.lead_ids)
        seen: dict[str, dict[str, Any]] = {}
        mark, deadline, last_reap = sub.stream_mark, time.monotonic() + timeout, 0.0
        while True:
            for entry_id, outcome in read_stream(self.conn, self.name, mark):
                mark = entry_id
                if outcome["lead"] in wanted and outcome.get("routine") == self.routine.id:
                    seen[outcome["lead"]] = outcome
            if len(seen) >= len(wanted):
                break
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(
                    f"{len(wanted) - len(seen)} of {len(wanted)} leads have no "
                    f"outcome after {timeout:.0f}s; they are still queued"
                )
            if reap and now - last_reap > 1.0:
                reap_abandoned(self.conn, [self.name])
                last_reap = now
            time.sleep(poll_s)
        rows = [seen[lead_id] for lead_id in dict.fromkeys(sub.lead_ids)]
        return pd.DataFrame(rows)


def read_stream(
    conn: Any, queue: str, since: str = "0-0", count: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(stream id, outcome) pairs after ``since``."""
    start = "(" + since if since not in ("0-0", "-") else "-"
    entries = conn.xrange(outcomes_key(queue), min=start, max="+", count=count)
    return [
        (_s(eid), json.loads(_s(fields[b"o"] if b"o" in fields else fields["o"])))
        for eid, fields in entries
    ]


def read_outcomes(
    conn: Any, queue: str, since: str = "0-0", count: int | None = None
) -> list[dict[str, Any]]:
    return [o for _, o in read_stream(conn, queue, since, count)]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = [
    "DEFAULT_QUEUE",
    "LeadQueue",
    "Submission",
    "read_outcomes",
    "read_stream",
]
