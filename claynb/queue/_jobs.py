"""The RQ job: take a batch of leads to Clay and bring every lead's outcome back.

An RQ job carries only a batch id and a queue name. Everything else (inputs, routine,
settings) is in the batch's Redis hash, and the Clay API key is in the worker's
environment (``CLAY_API_KEY``), never in a job payload or in Redis.

The job walks the batch journal of :mod:`claynb.queue._store` and can be stopped at any
point (SIGKILL included) and run again by another worker: a batch already sent is polled
by its journaled run id, never re-sent; a batch whose send was cut off half-way is
reported ``unknown`` rather than risked twice; a finished batch is not reported again.
While it runs the job holds a short *lease* in Redis, refreshed by a thread; a job whose
lease lapsed belongs to a dead worker, and :func:`claynb.queue._worker.reap_abandoned`
hands it back to RQ for a retry within seconds rather than RQ's own minutes.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from claynb._plans import get_plan
from claynb._routines import Cost
from claynb._secrets import mask, redact
from claynb._states import IllegalTransition
from claynb.pipeline._budget import row_reservation
from claynb.pipeline._outcome import outcomes_of
from claynb.pipeline._work import ItemResult, Status
from claynb.queue._store import (
    DONE,
    FAILED,
    NEW,
    RESERVED,
    SENDING,
    SENT,
    Batch,
    BatchStore,
    Lead,
    batch_key,
    lease_key,
    load_template,
    scaled,
)
from claynb.wire._config import DEFAULT_MAX_ATTEMPTS, ENV_ADMIN_URL, MAX_RUN_ITEMS, RetryPolicy
from claynb.wire._exceptions import ClayError, ConfigError, OutcomeUnknown
from claynb.wire._results import RunItem

#: Default lease: a dead worker's job is handed back within about this long.
DEFAULT_LEASE_S = 5.0


@dataclass(frozen=True)
class JobOptions:
    """How batch jobs are run: timeout, retries with backoff, and what to do over budget.

    ``on_budget``: ``"wait"`` re-schedules leads the budget cannot pay for every
    ``wait_s`` until it can (up to ``max_waits`` times, then dead-letter); ``"dead_letter"``
    puts them straight into RQ's failed-job registry for a person to requeue after a
    top-up; ``"report"`` answers them ``over_budget`` at once.
    """

    timeout_s: int = 600
    retries: int = 3
    backoff_s: tuple[int, ...] | None = None  # None: RetryPolicy's backoff, whole seconds
    on_budget: str = "wait"
    wait_s: int = 30
    max_waits: int = 120
    result_ttl_s: int = 600

    def __post_init__(self) -> None:
        if self.on_budget not in ("wait", "dead_letter", "report"):
            raise ConfigError(
                f"on_budget must be 'wait', 'dead_letter' or 'report', not {self.on_budget!r}"
            )
        if self.backoff_s is None:
            object.__setattr__(self, "backoff_s", RetryPolicy().delays(self.retries))

    @property
    def intervals(self) -> list[int]:
        """RQ's retry intervals."""
        return list(self.backoff_s or ())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backoff_s"] = self.intervals
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobOptions:
        """Back from :meth:`to_dict` (other keys stored beside the options are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "backoff_s" in known:
            known["backoff_s"] = tuple(known["backoff_s"])
        return cls(**known)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker knows that jobs must not carry: where Clay is and the key for it."""

    api_key: str = field(repr=False)
    base_url: str
    poll_interval_s: float = 1.0
    lease_s: float = DEFAULT_LEASE_S
    wait_timeout_s: float = 600.0
    #: Retries of one request, and the POSTs a batch's items may ride in across every
    #: execution of its job (CLAYNB_MAX_ATTEMPTS, CLAYNB_MAX_SENDS_PER_ITEM).
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Public API requests/s for every worker of the workspace together (None: learned).
    fleet_rps: float | None = None
    #: Pace every worker of a workspace as one, in Redis (CLAYNB_FLEET_PACING=0: each alone).
    fleet_pacing: bool = True
    #: The emulator's admin URL, when the worker was told it talks to one (costs metered).
    emulator_admin_url: str | None = None

    @classmethod
    def from_env(cls) -> WorkerSettings:
        key = os.environ.get("CLAY_API_KEY", "")
        if not key:
            raise ConfigError("CLAY_API_KEY is not set in this worker's environment")
        return cls(
            api_key=key,
            base_url=os.environ.get("CLAY_BASE_URL", "https://api.clay.com/public/v0"),
            poll_interval_s=float(os.environ.get("CLAYNB_POLL_INTERVAL_S", "1.0")),
            lease_s=float(os.environ.get("CLAYNB_LEASE_S", str(DEFAULT_LEASE_S))),
            wait_timeout_s=float(os.environ.get("CLAYNB_WAIT_TIMEOUT_S", "600")),
            retry=RetryPolicy(
                max_attempts=_env_int("CLAYNB_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS,
                max_sends_per_item=_env_int("CLAYNB_MAX_SENDS_PER_ITEM"),
            ),
            fleet_rps=float(os.environ["CLAYNB_FLEET_RPS"])
            if os.environ.get("CLAYNB_FLEET_RPS")
            else None,
            fleet_pacing=os.environ.get("CLAYNB_FLEET_PACING", "1") != "0",
            emulator_admin_url=os.environ.get(ENV_ADMIN_URL) or None,
        )

    def __repr__(self) -> str:
        return f"WorkerSettings(base_url={self.base_url!r}, api_key={mask(self.api_key)})"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def same_clay(a: str, b: str) -> bool:
    """Whether two base URLs reach the same Clay (with or without the API path)."""

    def norm(url: str) -> str:
        url = url.rstrip("/")
        return url[: -len("/public/v0")] if url.endswith("/public/v0") else url

    return norm(a) == norm(b)


# -- entry point run by RQ -------------------------------------------------------------


def run_batch(batch_id: str | None, queue: str, routine_id: str | None = None) -> dict[str, Any]:
    """RQ entry point: process one batch (``None``: claim up to 100 pending leads first)."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        raise RuntimeError("run_batch runs inside an RQ worker")
    settings = WorkerSettings.from_env()
    store = BatchStore(job.connection)
    with lease(job.connection, job.id, settings.lease_s):
        if batch_id is None:
            batch_id = job.id
            if not _claim(store, queue, routine_id or "", batch_id):
                return {"batch": None, "leads": 0}
        batch = store.load(batch_id)
        if batch is None:
            raise ConfigError(f"batch {batch_id} is not in Redis (expired or deleted)")
        final = not job.retries_left
        return process(store, batch, settings, final_attempt=final, job=job)


def _claim(store: BatchStore, queue: str, routine_id: str, batch_id: str) -> bool:
    """Take pending leads into this job's batch; chain another job if more remain."""
    conn = store.conn
    template = load_template(conn, queue, routine_id)
    if template is None:
        return False
    template.id = batch_id
    taken = store.claim(queue, routine_id, batch_id, template, MAX_RUN_ITEMS)
    if taken == 0:
        return False
    from claynb.queue._store import pending_key

    if conn.llen(pending_key(queue, routine_id)) > 0:
        submit(conn, queue, None, JobOptions.from_dict(template.opts), routine_id=routine_id)
    return True


@contextmanager
def lease(conn: Any, job_id: str, ttl_s: float) -> Iterator[None]:
    """Hold ``claynb:q:lease:<job>`` while the block runs, refreshed by a daemon thread."""
    key, ms = lease_key(job_id), max(int(ttl_s * 1000), 200)
    conn.set(key, os.getpid(), px=ms)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                conn.set(key, os.getpid(), px=ms)
            except Exception:  # Redis hiccup: the next beat tries again
                continue

    beat = threading.Thread(target=refresh, name=f"claynb-lease-{job_id}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=2)
        conn.delete(key)


# -- the batch journal, step by step ---------------------------------------------------


def process(
    store: BatchStore,
    batch: Batch,
    settings: WorkerSettings,
    *,
    final_attempt: bool = True,
    job: Any = None,
) -> dict[str, Any]:
    """Move ``batch`` to done from whatever state it was left in; a summary."""
    if batch.base_url and not same_clay(batch.base_url, settings.base_url):
        raise ConfigError(
            f"batch {batch.id} is for Clay at {batch.base_url} but this worker "
            f"talks to {settings.base_url}: start it with that CLAY_BASE_URL"
        )
    budget_key = budget_key_of(batch)
    plan = get_plan(str(batch.opts.get("plan", "growth")))
    if batch.state == FAILED:  # its job was run again without requeue_dead_letters
        store.move(batch.id, FAILED, NEW)
        batch = _reload(store, batch.id)
    if batch.state == NEW:
        # Cache hits are fixed once per batch, before money is held, so that a resumed
        # execution answers exactly the leads the first one reserved for.
        store.conn.hsetnx(batch_key(batch.id), "cached", _dumps(_lookup_cache(store, batch)))
    cached = _loads(store.conn.hget(batch_key(batch.id), "cached"))
    if batch.state == NEW:
        unit = row_reservation(batch.routine, capped=bool(batch.budget))
        per = scaled(unit, plan.usd(unit.actions, unit.data_credits))
        store.reserve(batch, budget_key, _unique_keys(batch, cached), per)
        batch = _reload(store, batch.id)
    if batch.state == DONE:
        return _summary(batch, emitted=False)
    overflow = _handle_overflow(store, batch, job)
    client = worker_client(settings, store.conn)
    results, run_id, error = _send_and_collect(
        store, batch, client, settings, budget_key, final_attempt, job
    )
    answers = None if error is not None else _answers(batch, results, run_id, client)
    outcomes = build_outcomes(batch, cached, answers, run_id, error, overflow)
    if error is not None:  # a delivery naming the run may still collect it (queue._adopt)
        store.park(batch.id)
    actual = actual_spend(batch, answers, plan)
    emitted = store.emit(batch, budget_key, outcomes, actual)
    if emitted:
        store.remember(batch, outcomes)
        _sample(store, batch, job, outcomes)
    batch.outcomes = outcomes
    return _summary(batch, emitted=emitted)


def budget_key_of(batch: Batch) -> str:
    """The shared budget's Redis hash a batch reserves from (an unnamed one without caps)."""
    return f"claynb:budget:{batch.budget}" if batch.budget else "claynb:budget:"


def _reload(store: BatchStore, batch_id: str) -> Batch:
    batch = store.load(batch_id)
    assert batch is not None
    return batch


def _lookup_cache(store: BatchStore, batch: Batch) -> dict[str, dict[str, Any]]:
    if not batch.use_cache:
        return {}
    max_age = batch.opts.get("max_age_s")
    keys = sorted({lead.key for lead in batch.leads})
    return store.cached(batch.routine.id, keys, max_age)


def _unique_keys(batch: Batch, cached: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for lead in batch.leads:
        if lead.key not in cached:
            seen.setdefault(lead.key, None)
    return list(seen)


def _handle_overflow(store: BatchStore, batch: Batch, job: Any) -> list[str]:
    """Keys the budget could not pay for: hand them on per the batch's policy.

    Returns the keys to answer ``over_budget`` now (policy "report"); for "wait" and
    "dead_letter" they travel on in a follow-up batch (created once, idempotently).
    """
    over = batch.send[batch.reserved :]
    if not over:
        return []
    opts = JobOptions.from_dict(batch.opts)
    if opts.on_budget == "report":
        return over
    root = str(batch.opts.get("root") or batch.id)
    follow_id = f"{root}-w{batch.waits + 1}"
    wanted = set(over)
    leads = [lead for lead in batch.leads if lead.key in wanted]
    follow = Batch(
        id=follow_id,
        queue=batch.queue,
        routine=batch.routine,
        leads=leads,
        policy=batch.policy,
        budget=batch.budget,
        base_url=batch.base_url,
        use_cache=batch.use_cache,
        stream=batch.stream,
        waits=batch.waits + 1,
        opts={**batch.opts, "root": root},
    )
    created = store.create(follow)
    if created or not _job_exists(store.conn, follow_id):
        if opts.on_budget == "wait" and follow.waits <= opts.max_waits:
            submit(store.conn, batch.queue, follow_id, opts, delay_s=opts.wait_s)
        else:
            dead_letter_now(
                store.conn,
                batch.queue,
                follow_id,
                opts,
                f"BudgetExceeded: the shared budget {batch.budget!r} cannot pay for "
                f"{len(leads)} leads; raise it, then requeue this job",
            )
    return []


def _job_exists(conn: Any, job_id: str) -> bool:
    from rq.job import Job

    return bool(Job.exists(job_id, connection=conn))


@functools.lru_cache(maxsize=4)
def _cached_client(settings: WorkerSettings, conn: Any) -> Any:
    from claynb.wire._client import ClayClient

    pace = fleet_pace(conn, settings) if settings.fleet_pacing else None
    return ClayClient(
        api_key=settings.api_key,
        base_url=settings.base_url,
        retry=settings.retry,
        rate_limit_rps=settings.fleet_rps,
        pace=pace,
        emulator_admin_url=settings.emulator_admin_url,
    )


def fleet_pace(conn: Any, settings: WorkerSettings) -> Any:
    """The workspace's pace in Redis, shared by every worker that talks to it."""
    from claynb.wire._config import Credentials
    from claynb.wire._fleet import workspace_pace

    credentials = Credentials(settings.api_key, settings.base_url)
    return workspace_pace(conn, credentials, limit=settings.fleet_rps)


def worker_client(settings: WorkerSettings, conn: Any = None) -> Any:
    """One client per worker process, kept across jobs, paced with the whole fleet.

    A job is a handful of requests; a client per job would start each job with a fresh
    pacer and forget every 429. With ``conn`` (the queue's Redis) the pace is the
    workspace's, shared by every worker on every host (``fleet_pacing``, on by default):
    Clay's limit is per workspace, so workers pacing alone send several times too fast.
    """
    return _cached_client(settings, conn if settings.fleet_pacing else None)


def _send_and_collect(
    store: BatchStore,
    batch: Batch,
    client: Any,
    settings: WorkerSettings,
    budget_key: str,
    final_attempt: bool,
    job: Any = None,
) -> tuple[dict[str, Any], str, str | None]:
    """Send the reserved items once and wait for their results: (by key, run id, error).

    ``error`` is set when the outcome is unknown (the send may have reached Clay).
    """
    keys = batch.send[: batch.reserved]
    if not keys:
        return {}, "", None
    if batch.state == SENDING:
        return (
            {},
            "",
            (
                "the worker sending this run died before Clay answered; the run may or "
                "may not have started, so it is not sent again"
            ),
        )
    run_id = batch.run_id
    if batch.state == RESERVED:
        try:
            run_id = _send(store, batch, keys, client, budget_key, final_attempt, job)
        except OutcomeUnknown as exc:
            return {}, "", redact(str(exc))
    results = client.wait_for_run(
        run_id, poll_interval=settings.poll_interval_s, timeout=settings.wait_timeout_s
    )
    return {item.id: item for item in results.items}, run_id, None


def _answers(
    batch: Batch, results: dict[str, RunItem], run_id: str, client: Any
) -> dict[str, ItemResult]:
    """Clay's answer for every key sent, read the way every tier reads it (costs from the
    emulator's meters when the worker knows one)."""
    charges = client.run_charges(run_id) if run_id else None
    keys = batch.send[: batch.reserved]
    got = outcomes_of(batch.routine, keys, results, run_id=run_id or None, charges=charges)
    return {r.key: r for r in got}


def _send(
    store: BatchStore,
    batch: Batch,
    keys: list[str],
    client: Any,
    budget_key: str,
    final_attempt: bool,
    job: Any,
) -> str:
    """POST the run once (the client retrying within what the items' cap has left)."""
    left = client.retry.sends_left(batch.posts)
    if not left:  # an earlier execution spent the cap and died before giving up
        why = f"not sent after {batch.posts} attempt(s)"
        store.give_up(batch, budget_key, why)
        _no_more_retries(job)
        raise ClayError(f"batch {batch.id}: {why}")
    store.unsettle(batch)  # until the run id is journaled, a delivery may be needed
    if not store.begin_send(batch.id):
        raise ClayError(f"batch {batch.id} is being sent by another worker")
    inputs = {lead.key: lead.inputs for lead in batch.leads}
    body = [{"id": k, "inputs": inputs[k]} for k in keys]
    try:
        run_id: str = client.run_routine(
            batch.routine.id, body, max_sends=left, webhook_id=batch.opts.get("webhook_id")
        )
    except OutcomeUnknown as exc:
        store.count_posts(batch.id, client.retry.counted(exc))
        raise
    except Exception as exc:
        # Certainly not started (refused, 402, 4xx, 5xx/429 after the client's retries):
        # keep the reservation for RQ's retry while the cap allows another send, else give
        # it back and let RQ file the job with the dead letters now.
        spent = client.retry.counted(exc) if isinstance(exc, ClayError) else 0
        posts = store.count_posts(batch.id, spent)
        if final_attempt or not client.retry.sends_left(posts):
            store.give_up(batch, budget_key, f"not sent after {posts} attempt(s): {exc}")
            store.settle(batch)
            _no_more_retries(job)
        else:
            store.move(batch.id, SENDING, RESERVED)
        raise
    # One write, right after the answer: a worker killed now must find the run id journaled.
    sent = str(batch.posts + 1)  # this execution holds the batch (sending): no other writer

    def journal_run() -> None:
        try:
            store.move(
                batch.id, SENDING, SENT, run_id=run_id, sent_at=repr(time.time()), posts=sent
            )
        except IllegalTransition:
            done = store.load(batch.id)
            if done is None or done.run_id != run_id:  # not our own write, landed before a drop
                raise

    _until_written(journal_run, store.conn)
    _until_written(lambda: store.settle(batch), store.conn)
    return run_id


def _until_written(write: Any, conn: Any) -> None:
    """Make ``write`` happen even if Redis is down for a while: wait for it and try again.

    Only this process knows the run id Clay just gave; dropping it would leave the batch
    ``sending`` and its paid-for leads ``unknown``. The job keeps its place meanwhile
    (its worker is alive and still on it, so the reaper leaves it alone).
    """
    import redis

    from claynb.queue._worker import wait_for_redis

    while True:
        try:
            write()
            return
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            wait_for_redis(conn, first_s=0.1, max_s=1.0)


def _no_more_retries(job: Any) -> None:
    """RQ retries the job only while it has retries left: none, once the cap is spent."""
    if job is not None:
        job.retries_left = 0


def build_outcomes(
    batch: Batch,
    cached: dict[str, dict[str, Any]],
    answers: dict[str, ItemResult] | None,
    run_id: str,
    error: str | None,
    over: list[str],
) -> list[dict[str, Any]]:
    """One outcome per lead: charged once per item key, duplicates and cache hits at 0.

    ``answers`` is None when the send's outcome is unknown (``error`` says why).
    """
    sent = set(batch.send[: batch.reserved])
    over_set = set(over)
    charged: set[str] = set()
    now = time.time()
    out = []
    for lead in batch.leads:
        base: dict[str, Any] = {
            "lead": lead.lead_id,
            "key": lead.key,
            "batch": batch.id,
            "run_id": run_id or None,
            "routine": batch.routine.id,
            "at": now,
            "result": {},
            "error": None,
            "actions": 0.0,
            "data_credits": 0.0,
            "charged_here": False,
        }
        if lead.key in cached:
            entry = cached[lead.key]
            base.update(
                status=Status.CACHED, result=entry.get("result", {}), enriched_at=entry.get("at")
            )
        elif lead.key in over_set:
            base.update(
                status=Status.OVER_BUDGET, error="the shared budget cannot pay for this lead"
            )
        elif lead.key in sent:
            base.update(_sent(answers, lead.key, error))
            if lead.key not in charged:
                charged.add(lead.key)
                base["charged_here"] = True
            else:
                base.update(actions=0.0, data_credits=0.0)
        else:
            continue  # carried on by a follow-up batch
        out.append(base)
    return out


def _sent(answers: dict[str, ItemResult] | None, key: str, error: str | None) -> dict[str, Any]:
    if answers is None:
        return {"status": Status.UNKNOWN, "error": error or "the outcome of the send is unknown"}
    answer = answers[key]
    return {
        "status": answer.status,
        "result": answer.result,
        "error": answer.error,
        "actions": answer.cost.actions,
        "data_credits": answer.cost.data_credits,
        "cost_source": answer.cost_source,
        "enriched_at": time.time(),
    }


def actual_spend(batch: Batch, answers: dict[str, ItemResult] | None, plan: Any) -> list[int]:
    """What Clay charged for the batch (scaled), the worst case when the outcome is unknown."""
    if answers is None:
        total = row_reservation(batch.routine, capped=bool(batch.budget)) * batch.reserved
    else:
        total = Cost.total(answer.cost for answer in answers.values())
    return scaled(total, plan.usd(total.actions, total.data_credits))


def _sample(store: BatchStore, batch: Batch, job: Any, outcomes: list[dict[str, Any]]) -> None:
    now = time.time()
    started = getattr(job, "started_at", None)
    start_ts = started.timestamp() if started is not None else now
    sample = {
        "end": now,
        "latency_s": now - batch.created_at,
        "work_s": now - start_ts,
        "leads": len(outcomes),
        "batch": batch.id,
        "actions": sum(o["actions"] for o in outcomes),
        "data_credits": sum(o["data_credits"] for o in outcomes),
        "enriched": sum(1 for o in outcomes if o["status"] == Status.ENRICHED),
    }
    store.record_sample(batch.queue, sample)


def _summary(batch: Batch, *, emitted: bool) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for o in batch.outcomes:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    return {"batch": batch.id, "leads": len(batch.outcomes), "statuses": counts, "emitted": emitted}


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def _loads(raw: Any) -> dict[str, Any]:
    import json

    if not raw:
        return {}
    return dict(json.loads(raw))


# -- putting batch jobs on RQ ----------------------------------------------------------


def submit(
    conn: Any,
    queue: str,
    batch_id: str | None,
    opts: JobOptions,
    *,
    delay_s: float | None = None,
    routine_id: str | None = None,
) -> Any:
    """Enqueue (or schedule) the job for a batch with the retry, backoff and timeout set."""
    from rq import Queue, Retry

    q = Queue(queue, connection=conn)
    kwargs: dict[str, Any] = {
        "job_timeout": opts.timeout_s,
        "result_ttl": opts.result_ttl_s,
        "failure_ttl": 30 * 24 * 3600,
        "meta": {"claynb": True, "batch": batch_id, "retries": opts.retries},
        "description": f"claynb batch {batch_id or '(pending leads)'}",
    }
    if opts.retries > 0:
        kwargs["retry"] = Retry(max=opts.retries, interval=opts.intervals or 0)
    if batch_id is not None:
        kwargs["job_id"] = batch_id
    args = (batch_id, queue, routine_id)
    if delay_s:
        return q.enqueue_in(timedelta(seconds=delay_s), run_batch, *args, **kwargs)
    return q.enqueue(run_batch, *args, **kwargs)


def dead_letter_now(conn: Any, queue: str, batch_id: str, opts: JobOptions, reason: str) -> Any:
    """Put a batch's job straight into RQ's failed-job registry, ready to requeue."""
    from rq import Queue, Retry
    from rq.job import JobStatus
    from rq.registry import FailedJobRegistry

    q = Queue(queue, connection=conn)
    retry = Retry(max=opts.retries, interval=opts.intervals or 0) if opts.retries else None
    job = q.create_job(
        run_batch,
        args=(batch_id, queue, None),
        job_id=batch_id,
        timeout=opts.timeout_s,
        result_ttl=opts.result_ttl_s,
        failure_ttl=30 * 24 * 3600,
        meta={"claynb": True, "batch": batch_id, "retries": opts.retries},
        description=f"claynb batch {batch_id}",
        retry=retry,
        status=JobStatus.FAILED,
    )
    job.origin = queue
    job.meta["reason"] = reason
    with conn.pipeline() as pipe:
        job.save(pipeline=pipe)
        FailedJobRegistry(queue=q).add(job, exc_string=reason, pipeline=pipe)
        pipe.execute()
    return job


__all__ = [
    "DONE",
    "SENT",
    "JobOptions",
    "Lead",
    "WorkerSettings",
    "build_outcomes",
    "dead_letter_now",
    "process",
    "run_batch",
    "submit",
]
