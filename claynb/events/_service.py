"""The enrichment service: lead events in, Clay runs out, enriched contacts back on the bus.

    leads ──► batch (≤100 per routine, short linger) ──► breaker ──► POST run (webhook_id)
                                      │                     └─► dead letters (budget)
    runs.finished (receiver) ─┐       ▼
    reconciler (polls) ───────┴─► fetch results ──► settle budget ──► contacts

A lead is ``{"lead_id", "routine", "inputs", "event_at"}``. Leads with the same inputs share
one Clay item (keyed like the cache), so each unique input is charged once however often it
arrives; each lead id yields exactly one contact, whatever the bus or Clay's webhooks
duplicate, drop or reorder. A run completes once: the first of its webhook and its poll
lands it (through the journal, which is idempotent across processes), the other finds it
done. A send Clay refuses is sent again while its items' POSTs (the client's retries
included) stay under the one per-item cap (:meth:`claynb.RetryPolicy.sends_left`); then
its leads go to the dead-letter subject with the error, as do leads the budget cannot pay for.
A send whose outcome is unknown (a timeout, a dropped connection, a 5xx: Clay may have
started the run) is never sent again: it is held for ``unknown_wait_s`` in case Clay's
webhook names a run whose results carry exactly its item ids (then it is landed like any
run, paid once), and otherwise goes to the dead letters as ``outcome_unknown``.

One service process per namespace: its bookkeeping of leads and runs is in memory, and what
must survive a crash (runs in flight, results, charges) is in the journal. A lead is
``pending`` until it gets its contact (``done``) or a dead letter (``dead``, from which only
a replay brings it back): :class:`LeadState` and :data:`LEAD_MOVES`, the one table of moves.

Crashes and outages (the bus's own delivery is the durable list of leads not yet answered):

- a lead event is acknowledged only once its contact or dead letter is published, so a
  lead held in memory by a process that dies is delivered again to the next one;
- on start, before taking any lead, the service adopts every run its journal has in
  flight (polled at once, or landed by its webhook): a lead delivered again joins the
  run already paid for, and one whose answer the journal already holds is answered from
  it; one whose send may have reached Clay is parked ``outcome_unknown``, never re-sent;
- a run-finished delivery for a run the journal has in flight but this process does not
  know (it started before a restart) is adopted and landed;
- a run is marked finished in the journal only after every contact of it is published:
  a publish that fails leaves the run in flight, and it is landed again later;
- a send that may or may not have reached Clay (a crash cut it short, or its answer was
  lost) holds its items for ``unknown_wait_s``, in the process that sent it or the one
  that starts after it died; leads delivered meanwhile join them. When a webhook names a
  run whose items are exactly that send's, the journal adopts it and the leads get their
  contacts from it; otherwise they are parked ``outcome_unknown`` (a person replays them),
  and a delivery that comes even later still answers them;
- the reconciler survives any error (logged, retried with backoff), and
  :meth:`EnrichmentService.health_problem` says when it cannot work (``/healthz``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from claynb._routines import Cost, Routine, get_routine, validate_inputs
from claynb._secrets import redact
from claynb._states import Machine
from claynb.events._breaker import CreditBreaker
from claynb.events._bus import CONTACTS, DEAD_LETTERS, LEADS, RUNS_FINISHED, Bus
from claynb.events._clay import RunsApi
from claynb.events._reconciler import Reconciler
from claynb.pipeline._adopt import adopt_delivered
from claynb.pipeline._budget import row_reservation
from claynb.pipeline._journal import Journal, UnknownBatch
from claynb.pipeline._outcome import outcomes_of
from claynb.pipeline._work import ANSWERED, CostSource, ItemResult, Status, item_key
from claynb.wire._config import MAX_RUN_ITEMS, checked_batch_size
from claynb.wire._exceptions import (
    ClayError,
    ConfigError,
    CreditsExhausted,
    NotFound,
    OutcomeUnknown,
)
from claynb.wire._results import RunItem

log = logging.getLogger("claynb.events.service")


class RunJournal(Protocol):
    """What the service writes to the journal (:class:`claynb.pipeline._journal.Journal`),
    in the order the backend contract (:mod:`claynb.pipeline._backends`) sets out."""

    def intent(
        self, routine: str, backend: str, inputs: Mapping[str, Mapping[str, Any]], reserved: Cost
    ) -> int: ...

    def started(self, batch: int, run_id: str) -> None: ...

    def abandon(self, batch: int, error: str | None = None) -> None: ...

    def unknown(self, batch: int, error: str) -> list[str]: ...

    def adopt(self, batch: int, run_id: str) -> None: ...

    def finished(
        self, run_id: str, results: Sequence[ItemResult], *, backend: str, plan: Any = None
    ) -> bool: ...

    def runs(self) -> list[dict[str, Any]]: ...

    def in_flight(self, routine: str, keys: Sequence[str] | None = None) -> list[Any]: ...

    def cached(self, routine: str, keys: Sequence[str]) -> Mapping[str, Any]: ...

    def unknown_keys(self, routine: str, keys: Sequence[str] | None = None) -> dict[str, str]: ...

    def unknown_batches(self, backend: str) -> list[UnknownBatch]: ...

    def recover(self, routine: str | None = None, *, backends: Sequence[str] = ...) -> int: ...

    def forget_unknown(self, routine: str, keys: Sequence[str]) -> None: ...


class NoJournal:
    """The journal of a service that keeps none (a test, a throwaway demo): it writes nothing,
    so runs in flight are not resumed after a crash."""

    def intent(
        self, routine: str, backend: str, inputs: Mapping[str, Mapping[str, Any]], reserved: Cost
    ) -> int:
        return 0

    def started(self, batch: int, run_id: str) -> None:
        return None

    def abandon(self, batch: int, error: str | None = None) -> None:
        return None

    def unknown(self, batch: int, error: str) -> list[str]:
        return []

    def adopt(self, batch: int, run_id: str) -> None:
        return None

    def finished(
        self, run_id: str, results: Sequence[ItemResult], *, backend: str, plan: Any = None
    ) -> bool:
        return True

    def runs(self) -> list[dict[str, Any]]:
        return []

    def in_flight(self, routine: str, keys: Sequence[str] | None = None) -> list[Any]:
        return []

    def cached(self, routine: str, keys: Sequence[str]) -> Mapping[str, Any]:
        return {}

    def unknown_keys(self, routine: str, keys: Sequence[str] | None = None) -> dict[str, str]:
        return {}

    def unknown_batches(self, backend: str) -> list[UnknownBatch]:
        return []

    def recover(self, routine: str | None = None, *, backends: Sequence[str] = ()) -> int:
        return 0

    def forget_unknown(self, routine: str, keys: Sequence[str]) -> None:
        return None


class LeadState(StrEnum):
    """Where a lead id is: waiting for its contact, answered, or parked in the dead letters."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


#: Every move a lead may make. A second event for a lead that is pending or done is a
#: duplicate (acknowledged, ignored); only a replay of a dead letter starts it again.
LEAD_MOVES = Machine(
    "event lead",
    LeadState,
    {
        None: {LeadState.PENDING},
        LeadState.PENDING: {LeadState.DONE, LeadState.DEAD},
        LeadState.DEAD: {LeadState.PENDING},
        LeadState.DONE: set(),
    },
)


@dataclass
class ServiceSettings:
    """How the service batches, retries and reconciles."""

    webhook_id: str | None = None
    batch_size: int = MAX_RUN_ITEMS
    linger_s: float = 0.25
    #: POSTs a lead's item may ride in, the client's retries and this service's re-sends
    #: together (None: the client's RetryPolicy.max_sends_per_item). Then: dead letters.
    max_attempts: int | None = None
    reconcile_timeout_s: float = 10.0
    reconcile_interval_s: float = 2.0
    max_concurrent_sends: int = 4
    group: str = "enrichment-service"
    backend_name: str = "events"
    #: Lead events handled at once: each is acknowledged only once answered, so this is
    #: how many leads may wait on batches and runs together.
    leads_in_flight: int = 1000
    #: Reconciler errors in a row after which ``/healthz`` reports the service unhealthy.
    unhealthy_after: int = 3
    #: The plan the journal's ledger prices charges under (None: the journal's own).
    plan: Any = None
    #: With a webhook, how long a send of unknown outcome waits for Clay's delivery to
    #: name its run before its leads go to the dead letters (``outcome_unknown``).
    unknown_wait_s: float = 60.0

    def __post_init__(self) -> None:
        self.batch_size = checked_batch_size(self.batch_size)
        if self.max_attempts is not None and int(self.max_attempts) < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts!r}")


@dataclass
class _Item:
    """One unique (routine, inputs): the leads waiting on it and, once known, its outcome."""

    key: str
    routine: str
    inputs: dict[str, Any]
    leads: list[str] = field(default_factory=list)
    attempts: int = 0
    run_id: str | None = None
    outcome: ItemResult | None = None


@dataclass
class _Run:
    run_id: str
    routine: str
    keys: list[str]
    reserved: Cost
    started_at: float
    batch: int | None = None
    done: bool = False


@dataclass
class _Held:
    """A send whose outcome is unknown, waiting for a webhook to name its run."""

    batch: int
    routine: str
    keys: list[str]
    reserved: Cost
    until: float


@dataclass
class ServiceStats:
    leads: int = 0
    duplicate_leads: int = 0
    contacts: int = 0
    runs_started: int = 0
    runs_by_webhook: int = 0
    runs_by_reconciler: int = 0
    dead_lettered: int = 0
    send_failures: int = 0
    runs_adopted: int = 0
    answered_from_journal: int = 0
    reconcile_errors: int = 0


class EnrichmentService:
    """Consumes leads and run-finished events from a :class:`Bus`; see the module docstring."""

    def __init__(
        self,
        bus: Bus,
        api: RunsApi,
        breaker: CreditBreaker,
        settings: ServiceSettings | None = None,
        *,
        journal: RunJournal | None = None,
        catalogue: dict[str, Routine] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.api = api
        self.breaker = breaker
        self.settings = settings or ServiceSettings()
        self.journal: RunJournal = journal if journal is not None else NoJournal()
        self.catalogue = catalogue
        self.clock = clock
        self.reconciler = Reconciler(
            self.settings.reconcile_timeout_s, self.settings.reconcile_interval_s
        )
        self.stats = ServiceStats()
        self._leads: dict[str, dict[str, Any]] = {}
        self._lead_state: dict[str, LeadState] = {}
        self._items: dict[str, _Item] = {}
        self._runs: dict[str, _Run] = {}
        self._queues: dict[str, list[str]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._completing: set[str] = set()
        self._held: list[_Held] = []
        self._orphans: dict[str, float] = {}  # delivered runs no send claims (yet), when seen
        self._sends: asyncio.Semaphore | None = None
        self._settled = asyncio.Event()
        self._stopping = False
        self._rng = random.Random()
        #: Lead id -> resolved once its contact or dead letter is published (then acked).
        self._answered: dict[str, asyncio.Future[None]] = {}
        self._reconcile_failures = 0
        self._reconcile_error: str | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        #: Item key -> leads parked ``outcome_unknown``: answered if a delivery names the run.
        self._unknown_leads: dict[str, list[str]] = {}

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._sends = asyncio.Semaphore(self.settings.max_concurrent_sends)
        await asyncio.to_thread(self.journal.recover, backends=(self.settings.backend_name,))
        for run in await asyncio.to_thread(self._journaled_runs):
            self._adopt(run)
        for unknown in await asyncio.to_thread(
            self.journal.unknown_batches, self.settings.backend_name
        ):
            self._hold_unknown(unknown)
        await self.bus.subscribe(
            LEADS, self.on_lead, self.settings.group, concurrency=self.settings.leads_in_flight
        )
        await self.bus.subscribe(RUNS_FINISHED, self.on_run_finished, self.settings.group)
        self._reconcile_task = self._spawn(self._reconcile_forever())

    def _journaled_runs(self, run_id: str | None = None) -> list[Any]:
        """This tier's runs the journal has in flight (``run_id``: only that one)."""
        routines = {
            str(r["routine"])
            for r in self.journal.runs()
            if r.get("state") == "in_flight"
            and r.get("backend") == self.settings.backend_name
            and (run_id is None or r.get("run_id") == run_id)
        }
        return [
            run
            for routine in sorted(routines)
            for run in self.journal.in_flight(routine)
            if run.backend == self.settings.backend_name and run_id in (None, run.run_id)
        ]

    def _hold_unknown(self, unknown: UnknownBatch) -> None:
        """A send a crash cut short (or one already unknown): its items wait, like a send
        of unknown outcome in this process, for Clay's webhook to name its run; the leads
        delivered again join them meanwhile. Without a webhook nothing can name it."""
        until = unknown.since + self.settings.unknown_wait_s
        if not self.settings.webhook_id or until <= self.clock():
            return
        for key in unknown.keys:
            self._items.setdefault(key, _Item(key, unknown.routine, dict(unknown.inputs[key])))
        self._held.append(_Held(unknown.batch, unknown.routine, unknown.keys, Cost(), until))

    def _adopt(self, run: Any) -> None:
        if run.run_id not in self._runs:
            self.stats.runs_adopted += 1
            self.adopt_run(run.run_id, run.routine, dict(run.inputs), batch=run.batch)

    async def _adopt_delivered(self, run_id: str) -> bool:
        """Record Clay's word that ``run_id`` finished and let the journal match it to a
        send whose outcome was unknown; True when it did."""
        client = getattr(self.api, "client", None)
        if client is None or not isinstance(self.journal, Journal):
            return False
        await asyncio.to_thread(self.journal.delivered, run_id)
        return run_id in (await adopt_delivered(self.journal, client)).values()

    def _remember_unknown(self, keys: list[str]) -> None:
        for key in keys:
            item = self._items.get(key)
            if item is not None and item.leads:
                self._unknown_leads.setdefault(key, []).extend(item.leads)

    def health_problem(self) -> str | None:
        """Why the service cannot do its work right now, or None when it can (``/healthz``)."""
        task = self._reconcile_task
        if task is not None and task.done() and not self._stopping:
            return "the reconciler stopped"
        if self._reconcile_failures >= self.settings.unhealthy_after:
            return f"the reconciler failed {self._reconcile_failures} times in a row: {self._reconcile_error}"
        return None

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self._tasks) + list(self._flushers.values()):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._flushers.values(), return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def pending_runs(self) -> int:
        return sum(1 for r in self._runs.values() if not r.done)

    # leads -------------------------------------------------------------------------------
    async def on_lead(self, event: dict[str, Any]) -> None:
        """One lead event; duplicates of a lead id are acknowledged and ignored."""
        lead_id = str(event.get("lead_id") or "")
        if not lead_id:
            return
        state = self._lead_state.get(lead_id)
        if state is not None and not (state == LeadState.DEAD and event.get("replay")):
            self.stats.duplicate_leads += 1
            waiting = self._answered.get(lead_id)
            if waiting is not None:  # delivered again before it was answered: ack with it
                await asyncio.shield(waiting)
            return
        answered = self._answered[lead_id] = asyncio.get_running_loop().create_future()
        await self._take(lead_id, event)
        # Acknowledged (by returning) only once answered: a crash before that redelivers it.
        await asyncio.shield(answered)

    async def _take(self, lead_id: str, event: dict[str, Any]) -> None:
        self.stats.leads += 1
        self._leads[lead_id] = event
        self._move(lead_id, LeadState.PENDING)
        routine_id = str(event.get("routine") or "")
        raw_inputs = event.get("inputs")
        inputs: dict[str, Any] = dict(raw_inputs) if isinstance(raw_inputs, dict) else {}
        try:
            routine = get_routine(routine_id, self.catalogue)
        except KeyError as exc:
            await self._dead_letter([lead_id], "failed", str(exc.args[0]))
            return
        reason = validate_inputs(routine, inputs)
        if reason is not None:
            key = item_key(routine_id, inputs)
            await self._publish_contact(
                lead_id, ItemResult(key, Status.INVALID_INPUT, error=reason), "validation"
            )
            return
        await self._attach(lead_id, routine_id, inputs, replay=bool(event.get("replay")))

    async def _attach(
        self, lead_id: str, routine_id: str, inputs: dict[str, Any], *, replay: bool = False
    ) -> None:
        key = item_key(routine_id, inputs)
        item = self._items.get(key)
        if item is None and await self._answered_by_journal(lead_id, routine_id, key, replay):
            return
        if item is not None and item.outcome is not None:
            shared = replace(item.outcome, cost=Cost())  # charged once, to the first lead
            await self._publish_contact(lead_id, shared, "shared")
            return
        if item is not None:
            item.leads.append(lead_id)
            return
        self._items[key] = _Item(key, routine_id, dict(inputs), [lead_id])
        self._enqueue(routine_id, key)

    async def _answered_by_journal(
        self, lead_id: str, routine_id: str, key: str, replay: bool
    ) -> bool:
        """A lead delivered again after a crash: answered from what the journal holds (its
        answer, or "unknown" when its send may have been charged); never sent again.

        A replay of a dead letter is a person's decision (``claynb dlq replay``): an
        answer the journal holds still serves it, but an unknown one is sent again.
        """
        cached = await asyncio.to_thread(self.journal.cached, routine_id, [key])
        hit = cached.get(key)
        if hit is not None and hit.status in ANSWERED:
            self.stats.answered_from_journal += 1
            outcome = ItemResult(key, Status(hit.status), dict(hit.result or {}), None, Cost())
            await self._publish_contact(lead_id, outcome, "journal")
            return True
        unknown = await asyncio.to_thread(self.journal.unknown_keys, routine_id, [key])
        if key in unknown and replay:
            await asyncio.to_thread(self.journal.forget_unknown, routine_id, [key])
        elif key in unknown:
            self._unknown_leads.setdefault(key, []).append(lead_id)  # a late delivery revives it
            await self._dead_letter(
                [lead_id], "outcome_unknown", f"the send may have reached Clay: {unknown[key]}"
            )
            return True
        return False

    def _enqueue(self, routine_id: str, key: str) -> None:
        queue = self._queues.setdefault(routine_id, [])
        queue.append(key)
        if len(queue) >= self.settings.batch_size:
            self._flush_now(routine_id)
        elif routine_id not in self._flushers or self._flushers[routine_id].done():
            self._flushers[routine_id] = asyncio.get_running_loop().create_task(
                self._linger(routine_id)
            )

    async def _linger(self, routine_id: str) -> None:
        await asyncio.sleep(self.settings.linger_s)
        self._flush_now(routine_id)

    def _flush_now(self, routine_id: str) -> None:
        queue = self._queues.get(routine_id) or []
        while queue:
            batch, queue[:] = queue[: self.settings.batch_size], queue[self.settings.batch_size :]
            self._spawn(self._send(routine_id, batch))

    # sending -----------------------------------------------------------------------------
    async def _send(self, routine_id: str, keys: list[str]) -> None:
        routine = get_routine(routine_id, self.catalogue)
        per_item = row_reservation(routine, getattr(self.breaker.guard, "capped", True))
        admission = self.breaker.admit(per_item, len(keys), f"{routine_id} items")
        go, refused = keys[: admission.admitted], keys[admission.admitted :]
        if refused and self.pending_runs:
            # Runs in flight hold worst-case reservations that will mostly come back when
            # they settle: wait for that before deciding the budget cannot pay.
            self._spawn(self._after_settle(routine_id, refused))
        elif refused:
            await self._dead_letter(
                self._leads_of(refused, forget=True), "budget", admission.reason or ""
            )
        if not go:
            return
        assert self._sends is not None
        async with self._sends:
            await self._start_run(routine, go, admission.reserved)

    async def _after_settle(self, routine_id: str, keys: list[str]) -> None:
        if self.pending_runs:
            self._settled.clear()
            await self._settled.wait()
        for key in keys:
            self._enqueue(routine_id, key)

    async def _start_run(self, routine: Routine, keys: list[str], reserved: Cost) -> None:
        items = [{"id": k, "inputs": self._items[k].inputs} for k in keys]
        batch = self.journal.intent(
            routine.id,
            self.settings.backend_name,
            {k: self._items[k].inputs for k in keys},
            reserved,
        )
        try:
            left = self.api.retry.sends_left(
                max(self._items[k].attempts for k in keys), self.settings.max_attempts
            )
            run_id = await self.api.start_run(
                routine.id, items, self.settings.webhook_id, max_sends=left
            )
        except OutcomeUnknown as exc:
            # The POST may have started (and been charged for) a run we cannot see: never
            # re-send on our own. Clay's webhook may name it (held a while for it); else
            # a person decides, from the dead letters.
            self.journal.unknown(batch, redact(str(exc)))
            if self.settings.webhook_id and self.settings.unknown_wait_s > 0:
                until = self.clock() + self.settings.unknown_wait_s
                self._held.append(_Held(batch, routine.id, keys, reserved, until))
                await self._adopt_orphans()
                return
            self._remember_unknown(keys)
            await self._give_up_unknown(keys, reserved, str(exc))
            return
        except CreditsExhausted as exc:
            self.journal.abandon(batch, str(exc))
            self.breaker.guard.release(reserved)
            self.breaker.trip(f"Clay refused: {exc}")
            await self._dead_letter(
                self._leads_of(keys, forget=True), "credits_exhausted", str(exc)
            )
            return
        except ClayError as exc:
            self.journal.abandon(batch, str(exc))
            self.breaker.guard.release(reserved)
            await self._send_failed(routine.id, keys, exc)
            return
        self.journal.started(batch, run_id)
        now = self.clock()
        self._runs[run_id] = _Run(run_id, routine.id, keys, reserved, now, batch)
        for key in keys:
            self._items[key].run_id = run_id
        self.stats.runs_started += 1
        self.reconciler.watch(run_id, now)

    def adopt_run(
        self,
        run_id: str,
        routine_id: str,
        inputs: dict[str, dict[str, Any]],
        batch: int | None = None,
    ) -> None:
        """Take over a run started by a process that died: poll it at once, send nothing.

        Its reservation died with that process (a send of unknown outcome held here keeps
        its own); what it charged is landed in the journal when it is collected.
        """
        if run_id in self._runs:
            return
        held = next((h for h in self._held if batch is not None and h.batch == batch), None)
        if held is not None:  # a send of unknown outcome, named by a delivery: not expired
            self._held.remove(held)
        keys = list(inputs)
        for key in keys:
            item = self._items.setdefault(key, _Item(key, routine_id, dict(inputs[key])))
            item.run_id = run_id
            for lead_id in self._unknown_leads.pop(key, []):  # parked unknown: answered now
                if self._lead_state.get(lead_id) == LeadState.DEAD:
                    self._move(lead_id, LeadState.PENDING)
                    item.leads.append(lead_id)
        reserved = held.reserved if held is not None else Cost()
        self._runs[run_id] = _Run(run_id, routine_id, keys, reserved, self.clock(), batch)
        self.reconciler.watch(run_id, self.clock() - self.reconciler.timeout_s)

    def item_state(self, key: str) -> str:
        """``done``, ``in_run``, ``queued`` or ``unknown`` (never seen): for callers that gave up waiting."""
        item = self._items.get(key)
        if item is None:
            return "unknown"
        if item.outcome is not None:
            return "done"
        return "in_run" if item.run_id else "queued"

    async def _send_failed(self, routine_id: str, keys: list[str], exc: ClayError) -> None:
        """Retry the batch's items later, or dead-letter those that failed too often."""
        self.stats.send_failures += 1
        retry: list[str] = []
        policy = self.api.retry
        for key in keys:
            item = self._items[key]
            item.attempts += policy.counted(exc)
            if policy.sends_left(item.attempts, self.settings.max_attempts):
                retry.append(key)
            else:
                await self._dead_letter(
                    self._leads_of([key], forget=True),
                    "failed",
                    f"failed {item.attempts} times: {exc}",
                )
        if retry:
            delay = getattr(exc, "retry_after", None)
            sent = max(self._items[key].attempts for key in retry)
            await asyncio.sleep(delay or policy.backoff(sent, self._rng))
            for key in retry:
                self._enqueue(routine_id, key)

    async def _give_up_unknown(self, keys: list[str], reserved: Cost, why: str) -> None:
        """No webhook named the run: the leads go to the dead letters, the worst case kept."""
        self.breaker.guard.settle(reserved, reserved, CostSource.ESTIMATED)
        await self._dead_letter(
            self._leads_of(keys, forget=True),
            "outcome_unknown",
            f"the send may have reached Clay and been charged: {why}",
        )

    # completing runs ---------------------------------------------------------------------
    async def on_run_finished(self, event: dict[str, Any]) -> None:
        """A webhook said a run finished: fetch and land it, unless it is already landed.
        A run no send claims may be one whose POST answer was lost: it is kept a while,
        to be matched against the sends held as unknown."""
        run_id = str(event.get("routine_run_id") or "")
        if run_id and run_id not in self._runs:
            # Started before a restart: the journal knows it even if this process does not;
            # or a send that timed out did start it: the journal may adopt it now.
            journaled = await asyncio.to_thread(self._journaled_runs, run_id)
            if not journaled and await self._adopt_delivered(run_id):
                journaled = await asyncio.to_thread(self._journaled_runs, run_id)
            for run in journaled:
                self._adopt(run)
        run = self._runs.get(run_id)
        if run is None:
            if run_id:
                self._orphans.setdefault(run_id, self.clock())
                await self._adopt_orphans()
            return  # a replay, a run of another service, or held for a send to claim
        if not run.done:
            await self._complete(run, "webhook")

    async def _adopt_orphans(self) -> None:
        """Match delivered runs no send claims with sends held as unknown: a run whose
        results carry exactly a held send's item ids is that send's run (landed, paid once)."""
        for run_id in list(self._orphans):
            if not self._held:
                return
            try:
                items = await self.api.results(run_id)
            except ClayError:
                items = None
            if items is None:
                continue  # not finished, or not known: looked at again with the next one
            ids = {item.id for item in items}
            held = next((h for h in self._held if set(h.keys) == ids), None)
            if held is None:
                continue
            self._held.remove(held)
            self._orphans.pop(run_id, None)
            self.journal.adopt(held.batch, run_id)
            run = _Run(run_id, held.routine, held.keys, held.reserved, self.clock(), held.batch)
            self._runs[run_id] = run
            for key in held.keys:
                self._items[key].run_id = run_id
            self.stats.runs_adopted += 1
            await self._land(run, items, "webhook")

    async def _expire_held(self, now: float) -> None:
        """Sends held past ``unknown_wait_s`` with no webhook naming them; old deliveries."""
        for held in [h for h in self._held if h.until <= now]:
            self._held.remove(held)
            self._remember_unknown(held.keys)
            await self._give_up_unknown(
                held.keys,
                held.reserved,
                f"no webhook named its run within {self.settings.unknown_wait_s:g}s",
            )
        keep = now - max(self.settings.unknown_wait_s, self.settings.reconcile_timeout_s)
        self._orphans = {r: at for r, at in self._orphans.items() if at >= keep}

    async def _complete(self, run: _Run, via: str) -> bool:
        if run.done or run.run_id in self._completing:
            return False
        self._completing.add(run.run_id)
        try:
            try:
                results = await self.api.results(run.run_id)
            except NotFound as exc:
                await self._lost_run(run, exc)
                return False
            except ClayError as exc:
                log.warning("fetching run %s failed: %s", run.run_id, redact(str(exc)))
                results = None
            if results is None or run.done:
                self.reconciler.polled(run.run_id, self.clock())
                return False
            await self._land(run, results, via)
            return True
        finally:
            self._completing.discard(run.run_id)

    async def _lost_run(self, run: _Run, exc: Exception) -> None:
        """Clay no longer knows the run: its items may have been charged, so they are parked
        as ``outcome_unknown`` (replayed only on purpose), never silently re-sent."""
        run.done = True
        self.reconciler.forget(run.run_id)
        if run.batch is not None:
            self.journal.unknown(run.batch, f"run {run.run_id} not found: {exc}")
        self.breaker.guard.settle(run.reserved, run.reserved, CostSource.ESTIMATED)
        await self._dead_letter(
            self._leads_of(run.keys, forget=True),
            "outcome_unknown",
            f"Clay does not know run {run.run_id} any more: {exc}",
        )

    async def _land(self, run: _Run, raw: list[RunItem], via: str) -> None:
        routine = get_routine(run.routine, self.catalogue)
        try:
            charges = await self.api.charges(run.run_id)
        except ClayError:
            charges = None
        outcomes = outcomes_of(
            routine,
            run.keys,
            {item.id: item for item in raw},
            run_id=run.run_id,
            charges=charges,
            attempts={key: self._items[key].attempts + 1 for key in run.keys},
        )
        # Contacts first, the journal after: a publish that fails (the bus is down) raises
        # here with the run still in flight, and the run is landed again later; leads
        # already answered are not answered twice.
        for outcome in outcomes:
            item = self._items[outcome.key]
            item.outcome = outcome
            first = True
            while item.leads:
                shown = outcome if first else _free(outcome)
                await self._publish_contact(item.leads[0], shown, via)
                item.leads.pop(0)
                first = False
        await asyncio.to_thread(
            self.journal.finished,
            run.run_id,
            outcomes,
            backend=self.settings.backend_name,
            plan=self.settings.plan,
        )
        run.done = True
        actual = Cost.total(o.cost for o in outcomes)
        source = CostSource.of_all(o.cost_source for o in outcomes)
        self.breaker.guard.settle(run.reserved, actual, source)
        if any(o.status == Status.OVER_BUDGET for o in outcomes):
            self.breaker.trip("Clay stopped running items: its credits ran out")
        self._settled.set()
        self.reconciler.forget(run.run_id)
        if via == "reconciler":
            self.reconciler.completed_by_poll(run.run_id)
            self.stats.runs_by_reconciler += 1
        else:
            self.stats.runs_by_webhook += 1

    async def _reconcile_forever(self) -> None:
        """Poll overdue runs until stopped. No error ends it: each is logged and the next
        pass waits longer (up to the reconciler's longest interval) until one succeeds."""
        pause = min(0.2, self.settings.reconcile_interval_s)
        while not self._stopping:
            try:
                await self._reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the bus or the journal is down: wait
                self._reconcile_failures += 1
                self.stats.reconcile_errors += 1
                self._reconcile_error = redact(f"{type(exc).__name__}: {exc}")
                log.warning("reconciler pass failed: %s", self._reconcile_error)
                backoff = self.settings.reconcile_interval_s * 2 ** min(self._reconcile_failures, 5)
                await asyncio.sleep(min(backoff, self.reconciler.max_interval_s))
                continue
            self._reconcile_failures, self._reconcile_error = 0, None
            await asyncio.sleep(pause)

    async def _reconcile_once(self) -> None:
        now = self.clock()
        await self._expire_held(now)
        if self._held and self._orphans:
            await self._adopt_orphans()  # a results read that failed is tried again
        for run_id in self.reconciler.overdue(now):
            run = self._runs.get(run_id)
            if run is None or run.done:
                self.reconciler.forget(run_id)
                continue
            await self._complete(run, "reconciler")

    # output ------------------------------------------------------------------------------
    async def _publish_contact(self, lead_id: str, outcome: ItemResult, via: str) -> None:
        lead = self._leads.get(lead_id, {})
        contact = {
            "lead_id": lead_id,
            "routine": lead.get("routine"),
            "item_key": outcome.key,
            "status": outcome.status,
            "result": outcome.result,
            "error": outcome.error,
            "cost": {"actions": outcome.cost.actions, "data_credits": outcome.cost.data_credits},
            "cost_source": outcome.cost_source,
            "run_id": outcome.run_id,
            "attempts": outcome.attempts,
            "via": via,
            "event_at": lead.get("event_at"),
            "enriched_at": self.clock(),
        }
        await self.bus.publish(CONTACTS, contact)
        self._move(lead_id, LeadState.DONE)
        self.stats.contacts += 1
        self._resolve(lead_id)

    async def _dead_letter(self, lead_ids: list[str], kind: str, reason: str) -> None:
        for lead_id in lead_ids:
            letter = {
                "lead": self._leads.get(lead_id, {"lead_id": lead_id}),
                "kind": kind,
                "reason": redact(reason),
                "at": self.clock(),
            }
            await self.bus.publish(DEAD_LETTERS, letter)
            self._move(lead_id, LeadState.DEAD)
            self.stats.dead_lettered += 1
            self._resolve(lead_id)

    def _resolve(self, lead_id: str) -> None:
        """The lead's answer is published: its event may be acknowledged now."""
        waiting = self._answered.pop(lead_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def _move(self, lead_id: str, new: LeadState) -> None:
        self._lead_state[lead_id] = LEAD_MOVES.move(self._lead_state.get(lead_id), new)

    def _leads_of(self, keys: list[str], *, forget: bool) -> list[str]:
        """The leads waiting on ``keys``; ``forget`` drops the items (sent to dead letters)."""
        leads: list[str] = []
        for key in keys:
            item = self._items.get(key)
            if item is None:
                continue
            leads.extend(item.leads)
            if forget:
                del self._items[key]
        return leads


def _free(outcome: ItemResult) -> ItemResult:
    """The same answer for a second lead with the same inputs: charged once, so at no cost."""
    return ItemResult(
        outcome.key,
        outcome.status,
        outcome.result,
        outcome.error,
        Cost(),
        outcome.attempts,
        outcome.run_id,
    )
