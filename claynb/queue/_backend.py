"""``claynb.enrich(df, ..., backend="queue")``: the same enrichment, done by RQ workers.

The notebook holds the budget and the journal; workers only reach Clay. For each batch
of up to 100 items the backend reserves the worst case with the caller's guard (so the
cap holds exactly as in the direct tier), stores the batch in Redis and enqueues its job.
Workers send it, journal the run id in Redis, and write each item's outcome back; the
backend settles the reservation to what Clay charged and lands the run in the local
journal (cache, ledger, dead-letter list).

Batch ids are derived from the items, so after a kernel restart the same call finds the
batches its workers already sent (or finished) and collects them instead of sending
them again. A landed batch is deleted from Redis, so a later, deliberate re-enrichment
starts afresh.

Options: ``redis_url`` (default ``REDIS_URL``, else an embedded server), ``queue``
(default ``claynb-enrich``), ``workers`` (``"auto"``: start two local worker processes
for the call when none listens on the queue; an int: start that many; 0: rely on
workers already running), ``batch_size``, ``retries``, ``job_timeout``,
``poll_interval``, ``timeout``, ``webhook`` (a receiver such as
:class:`claynb.direct.WebhookReceiver`: runs are started with its webhook id, so a send
whose answer was lost is explained by its delivery and collected by a later call, never
sent again).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from claynb._plans import Plan, get_plan
from claynb._routines import Cost, Routine
from claynb.pipeline._budget import reserve_largest, row_reservation
from claynb.pipeline._outcome import outcomes_of
from claynb.pipeline._work import CostSource, ItemResult, Status, WorkItem
from claynb.queue._jobs import JobOptions, submit
from claynb.queue._store import (
    DONE,
    DONE_TTL_S,
    FAILED,
    PREFIX,
    Batch,
    BatchStore,
    Lead,
    batch_key,
)
from claynb.services.redis import text as _text
from claynb.wire._config import MAX_RUN_ITEMS, RetryPolicy, checked_batch_size
from claynb.wire._exceptions import ConfigError

KNOWN_OPTIONS = {
    "redis_url",
    "queue",
    "workers",
    "batch_size",
    "retries",
    "job_timeout",
    "poll_interval",
    "timeout",
    "plan",
    "concurrency",
    "connection",
    "webhook",
}
DEFAULT_QUEUE = "claynb-enrich"
#: With ``workers=0``, how long to wait for a worker to register before giving up.
WORKER_WAIT_S = 15.0


def batch_id_for(routine_id: str, keys: list[str]) -> str:
    """The same items always make the same batch id (for resuming after a restart)."""
    digest = hashlib.sha256("\x1f".join([routine_id, *keys]).encode()).hexdigest()[:24]
    return f"e-{digest}"


@dataclass
class _InFlight:
    items: list[WorkItem]
    reserved: Cost
    journal_batch: int | None = None
    run_id: str | None = None


@dataclass
class _Call:
    routine: Routine
    store: BatchStore
    queue: str
    opts: JobOptions
    base_url: str
    plan: Plan
    webhook_id: str | None = None
    inflight: dict[str, _InFlight] = field(default_factory=dict)
    results: dict[str, ItemResult] = field(default_factory=dict)


def run(
    routine: Routine,
    items: list[WorkItem],
    *,
    client: Any,
    guard: Any,
    journal: Any,
    progress: Any,
    **options: Any,
) -> list[ItemResult]:
    """Enrich ``items`` through RQ workers; exactly one result per item, in order."""
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise TypeError(f"backend 'queue' got unknown option(s): {', '.join(sorted(unknown))}")
    size = checked_batch_size(options.get("batch_size", MAX_RUN_ITEMS))
    url = None if options.get("connection") else _ensure(options.get("redis_url"))
    conn = options.get("connection") or _connect(url)
    call = _Call(
        routine,
        BatchStore(conn),
        options.get("queue", DEFAULT_QUEUE),
        _job_options(client.retry, int(options.get("retries", 3)), options),
        client.base_url,
        get_plan(options.get("plan") or "growth"),
        getattr(options.get("webhook"), "webhook_id", None),
    )
    pool = _workers(conn, url or _url_of(conn), call, client, options)
    try:
        _resume_journaled(call, items, client, journal, progress, options)
        pending = _adopt(call, [it for it in items if it.key not in call.results], guard)
        _drive(call, pending, size, guard, journal, progress, float(options.get("timeout", 3600)))
    finally:
        if pool is not None:
            pool.stop()
    return [
        call.results.get(it.key)
        or ItemResult(it.key, Status.UNKNOWN, error="no outcome came back", attempts=0)
        for it in items
    ]


def _job_options(retry: RetryPolicy, retries: int, options: dict[str, Any]) -> JobOptions:
    """RQ retries back off as the caller's policy does (its backoff, whole seconds)."""
    return JobOptions(
        retries=retries,
        backoff_s=retry.delays(retries),
        timeout_s=int(options.get("job_timeout", 600)),
        on_budget="report",
    )


def _ensure(url: str | None) -> str:
    from claynb.services.redis import ensure_redis

    return ensure_redis(url)


def _connect(url: str | None) -> Any:
    from claynb.services.redis import connect

    return connect(url)


def _workers(conn: Any, url: str, call: _Call, client: Any, options: dict[str, Any]) -> Any:
    """Start local worker processes for this call when asked (or when none listen)."""
    from claynb.queue._worker import WorkerPool, live_workers

    want = options.get("workers", "auto")
    listening = live_workers(conn, call.queue)
    if want == "auto":
        want = 0 if listening else 2
    if not int(want):
        deadline = time.monotonic() + WORKER_WAIT_S  # workers started a moment ago register soon
        while not listening and time.monotonic() < deadline:
            time.sleep(0.2)
            listening = live_workers(conn, call.queue)
        if not listening:
            raise ConfigError(
                f"no worker listens on queue {call.queue!r}: start one with "
                f"`claynb worker --queue {call.queue}` or pass workers=2"
            )
        return None
    credentials = client.credentials()
    return WorkerPool(
        url,
        queues=[call.queue],
        n=int(want),
        api_key=credentials.api_key,
        base_url=credentials.base_url,
        max_attempts=client.retry.max_attempts,
        max_sends_per_item=client.retry.max_sends_per_item,
        poll_interval_s=float(options.get("poll_interval", 0.5)),
        emulator_admin_url=credentials.emulator_admin_url,
    ).start()


def _url_of(conn: Any) -> str:
    kw = conn.connection_pool.connection_kwargs
    auth = f":{kw['password']}@" if kw.get("password") else ""
    return f"redis://{auth}{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def _resume_journaled(
    call: _Call,
    items: list[WorkItem],
    client: Any,
    journal: Any,
    progress: Any,
    options: dict[str, Any],
) -> None:
    """Runs a previous call journaled locally but never landed: collect them by run id."""
    wanted = {it.key for it in items}
    for run in journal.in_flight(call.routine.id, list(wanted)):
        try:
            results = client.wait_for_run(
                run.run_id, poll_interval=float(options.get("poll_interval", 0.5))
            )
        except Exception as exc:
            for key in run.keys:
                if key in wanted:
                    call.results[key] = ItemResult(
                        key, Status.UNKNOWN, error=f"{type(exc).__name__}: {exc}"
                    )
            continue
        charges = client.run_charges(run.run_id)
        got = outcomes_of(
            call.routine, run.keys, results.by_id(), run_id=run.run_id, charges=charges
        )
        journal.finished(run.run_id, got, backend="queue", plan=call.plan)
        # Landed here: its Redis batch (finished by its worker, or about to be) is not
        # followed again; the batch itself expires once done.
        call.store.conn.delete(*[item_index_key(call.routine.id, k) for k in run.keys])
        for res in got:
            if res.key in wanted:
                call.results[res.key] = res
        progress.advance(len(got), Cost.total(r.cost for r in got))


def item_index_key(routine_id: str, key: str) -> str:
    """Which batch an item was put in by an earlier call (until that batch is landed)."""
    return f"{PREFIX}:item:{routine_id}:{key}"


def _adopt(call: _Call, pending: list[WorkItem], guard: Any) -> list[WorkItem]:
    """Items an earlier call (a kernel since restarted) already queued: follow their batches.

    Their money was committed by that call, so the reservation is taken when the budget
    allows and otherwise the charge is simply recorded when it lands.
    """
    if not pending:
        return pending
    conn = call.store.conn
    found = conn.mget([item_index_key(call.routine.id, it.key) for it in pending])
    by_key = {it.key: it for it in pending}
    adopted: set[str] = set()
    for bid in sorted({_text(b) for b in found if b}):
        batch = call.store.load(bid)
        if batch is None or bid in call.inflight:
            continue
        items = [by_key.get(lead.key) or WorkItem(lead.key, lead.inputs) for lead in batch.leads]
        unit = row_reservation(call.routine, getattr(guard, "capped", True)) * len(items)
        reserved = unit if guard.reserve(unit) else Cost()
        if batch.state != DONE and not _job_alive(conn, bid):
            submit(conn, call.queue, bid, call.opts)
        call.inflight[bid] = _InFlight(items, reserved)
        adopted.update(lead.key for lead in batch.leads)
    return [it for it in pending if it.key not in adopted]


def _drive(
    call: _Call,
    pending: list[WorkItem],
    size: int,
    guard: Any,
    journal: Any,
    progress: Any,
    timeout: float,
) -> None:
    from claynb.queue._worker import reap_abandoned

    unit = row_reservation(call.routine, getattr(guard, "capped", True))
    deadline, last_reap = time.monotonic() + timeout, 0.0
    while pending or call.inflight:
        while pending:
            chunk = pending[:size]
            k = reserve_largest(guard, unit, len(chunk))
            if k == 0:
                break
            _enqueue(call, chunk[:k], unit * k)
            pending = pending[k:]
        if pending and not call.inflight:  # nothing will free money: the rest is over budget
            for it in pending:
                call.results[it.key] = ItemResult(
                    it.key,
                    Status.OVER_BUDGET,
                    attempts=0,
                    error="the budget cannot pay for this row",
                )
            progress.advance(len(pending))
            pending = []
        _collect(call, guard, journal, progress)
        now = time.monotonic()
        if now > deadline:
            _give_up(call, guard, progress, timeout)
            return
        if now - last_reap > 1.0:
            reap_abandoned(call.store.conn, [call.queue])
            last_reap = now
        if call.inflight:
            time.sleep(0.05)


def _enqueue(call: _Call, items: list[WorkItem], reserved: Cost) -> None:
    keys = [it.key for it in items]
    bid = batch_id_for(call.routine.id, keys)
    batch = Batch(
        id=bid,
        queue=call.queue,
        routine=call.routine,
        leads=[Lead(it.key, it.key, it.inputs) for it in items],
        policy="report",
        budget="",
        base_url=call.base_url,
        use_cache=False,
        stream=False,
        opts={**call.opts.to_dict(), "plan": call.plan.name, "webhook_id": call.webhook_id},
    )
    if call.store.create(batch) or not _job_alive(call.store.conn, bid):
        with call.store.conn.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(item_index_key(call.routine.id, key), bid, ex=DONE_TTL_S)
            pipe.execute()
        submit(call.store.conn, call.queue, bid, call.opts)
    call.inflight[bid] = _InFlight(items, reserved)


def _job_alive(conn: Any, job_id: str) -> bool:
    from rq.job import Job, JobStatus

    try:
        status = Job.fetch(job_id, connection=conn).get_status()
    except Exception:
        return False
    return status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def _collect(call: _Call, guard: Any, journal: Any, progress: Any) -> None:
    """Land every batch that finished; journal run ids as soon as workers report them."""
    ids = list(call.inflight)
    if not ids:
        return
    with call.store.conn.pipeline(transaction=False) as pipe:
        for bid in ids:
            pipe.hmget(batch_key(bid), "state", "run_id")
        states = pipe.execute()
    for bid, (raw_state, run_id) in zip(ids, states, strict=True):
        state = _text(raw_state) if raw_state is not None else None
        flight = call.inflight[bid]
        if run_id and flight.run_id is None:
            flight.run_id = run_id.decode() if isinstance(run_id, bytes) else run_id
            flight.journal_batch = journal.intent(
                call.routine.id,
                "queue",
                {it.key: it.inputs for it in flight.items},
                flight.reserved,
            )
            journal.started(flight.journal_batch, flight.run_id)
        if state == DONE:
            _land(call, bid, flight, guard, journal, progress)
        elif state == FAILED:
            _failed(call, bid, flight, guard, journal, progress)


def _land(
    call: _Call, bid: str, flight: _InFlight, guard: Any, journal: Any, progress: Any
) -> None:
    batch = call.store.load(bid)
    assert batch is not None
    results = [_item(o) for o in batch.outcomes]
    actual = Cost.total(r.cost for r in results)
    guard.settle(flight.reserved, actual, CostSource.of_all(r.cost_source for r in results))
    known = [r for r in results if r.status != Status.UNKNOWN]
    if flight.run_id and flight.journal_batch is not None:
        journal.finished(flight.run_id, known, backend="queue", plan=call.plan)
    unknown = [r for r in results if r.status == Status.UNKNOWN]
    if unknown:
        inputs = {it.key: it.inputs for it in flight.items}
        jb = journal.intent(
            call.routine.id,
            "queue",
            {r.key: inputs.get(r.key, {}) for r in unknown},
            flight.reserved,
        )
        journal.unknown(jb, unknown[0].error or "outcome unknown")
    for r in results:
        call.results[r.key] = r
    progress.advance(len(results), actual)  # adopted batches may hold a few rows not asked for
    _forget(call, bid, [it.key for it in flight.items])
    del call.inflight[bid]


def _failed(
    call: _Call, bid: str, flight: _InFlight, guard: Any, journal: Any, progress: Any
) -> None:
    """The workers gave the batch up (its sends spent): its rows fail, like the direct
    tier's, and go on the dead-letter list; the money held for them comes back."""
    batch = call.store.load(bid)
    assert batch is not None
    error = batch.error or f"not sent after {batch.posts} attempt(s)"
    guard.release(flight.reserved)
    journal.record_failures(
        call.routine.id, [(it.key, it.inputs, error, batch.posts) for it in flight.items]
    )
    for it in flight.items:
        call.results[it.key] = ItemResult(it.key, Status.FAILED, error=error, attempts=batch.posts)
    progress.advance(len(flight.items))
    _forget(call, bid, [it.key for it in flight.items])
    del call.inflight[bid]


def _forget(call: _Call, bid: str, keys: list[str]) -> None:
    """A landed batch leaves Redis: a later, deliberate re-enrichment starts afresh."""
    conn = call.store.conn
    conn.delete(batch_key(bid), *[item_index_key(call.routine.id, k) for k in keys])


def _item(o: dict[str, Any]) -> ItemResult:
    return ItemResult(
        o["key"],
        Status(o["status"]),
        dict(o.get("result") or {}),
        o.get("error"),
        Cost(float(o.get("actions", 0)), float(o.get("data_credits", 0))),
        1,
        o.get("run_id"),
        CostSource(o["cost_source"]) if o.get("cost_source") else None,
    )


def _give_up(call: _Call, guard: Any, progress: Any, timeout: float) -> None:
    """Stop waiting: what is still out is ``unknown`` and stays queued to be collected later."""
    for flight in call.inflight.values():
        # It may all be charged: hold it.
        guard.settle(flight.reserved, flight.reserved, CostSource.ESTIMATED)
        for it in flight.items:
            call.results[it.key] = ItemResult(
                it.key,
                Status.UNKNOWN,
                attempts=1,
                error=f"no outcome from the workers within {timeout:g}s; the batch stays queued "
                "and a later call collects it without sending it again",
            )
        progress.advance(len(flight.items))
    call.inflight.clear()
