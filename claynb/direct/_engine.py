"""The direct backend: runs of up to 100 items, many in flight, from this process.

How one batch goes (see the contract in :mod:`claynb.pipeline._backends`)::

    reserve worst case -> journal intent -> POST run -> journal run id -> poll (backoff,
    or woken by an outbound webhook) -> journal finished (cache, ledger; with the runs
    that finished within a few ms of it, :mod:`claynb.direct._landing`) -> settle budget

Many batches are in flight at once (``concurrency`` runs; at most ``MAX_OPEN_REQUESTS``
requests open at a moment), paced under the rate limit by the client. Items are cut into batches sized
so all of them can be in flight together (never more than 100). A batch whose worst case
the budget cannot cover waits for earlier batches to settle, is cut down to what is
affordable, or comes back ``over_budget``. A 402 stops all sending; what is in flight is
still collected. A send that may have reached Clay (``OutcomeUnknown``: a timeout, a
dropped connection, any 5xx) is never re-sent: its rows come back ``unknown`` and stay
journaled, and with a webhook the engine waits ``unknown_wait`` for a delivery naming the
run, whose results carry the rows' ids (collected, paid once). A send refused with 429
after the client's own retries is sent again later only while the rows' POSTs stay under
the one per-row cap (:meth:`claynb.RetryPolicy.sends_left`: the client's retries count
too), then the rows fail and go on the dead-letter list. What a run cost is read from an
emulator's meters when the client knows one, else estimated (:mod:`claynb.pipeline._outcome`).

The engine is asyncio (:class:`claynb.AsyncClayClient`). :func:`run` drives it from sync
code: on a fresh loop, or, when the calling thread already runs one (Jupyter), on a
worker thread with its own loop, so a notebook cell can call it directly.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from itertools import compress
from typing import Any, Protocol

import numpy as np

from claynb._plans import Plan
from claynb._routines import Cost, Routine
from claynb.direct._landing import Landings
from claynb.pipeline._adopt import adopt_delivered
from claynb.pipeline._budget import reserve_largest, row_reservation
from claynb.pipeline._journal import InFlight, Journal
from claynb.pipeline._outcome import outcomes_of
from claynb.pipeline._work import BudgetGuard, CostSource, ItemResult, Landed, Status, WorkItems
from claynb.wire import _exceptions as errors
from claynb.wire._config import RetryPolicy
from claynb.wire._core import RunItems

BACKEND = "direct"
MIN_BATCH = 20
# Requests open at once. Runs spend most of their life waiting on Clay, so a few requests
# serve many runs (8 carry 25 to 80 requests a second at 100 to 300 ms each, above a
# workspace's rate limit as the emulator plays it); more only make the HTTP client slower:
# its connection pool re-checks every idle connection on every request (with 16, 10% of
# the enriching process's CPU on a fast Clay).
MAX_OPEN_REQUESTS = 8
# The first poll after a POST never comes sooner than this, however fast runs finish.
MIN_FIRST_POLL_S = 0.005
_FATAL = (errors.AuthenticationError, errors.Forbidden, errors.NotFound)


class RunWaiter(Protocol):
    """Wakes pollers when Clay's outbound webhook says a run finished.

    ``webhook_id`` is sent with every run; ``wait`` returns when the run's delivery came
    (True) or after ``timeout`` seconds (False), whichever is first. Delivery is not
    guaranteed, so the engine polls anyway, at ``poll_max_interval``.
    """

    webhook_id: str | None

    async def wait(self, run_id: str, timeout: float) -> bool: ...


def batch_size_for(n: int, opts: dict[str, Any]) -> int:
    """Small enough that every batch can be in flight at once, never above ``batch_size``,
    and not below ``MIN_BATCH`` (each run is a request against Clay's rate limit)."""
    spread = math.ceil(n / int(opts["concurrency"]))
    return max(1, min(int(opts["batch_size"]), max(MIN_BATCH, spread)))


@dataclass(frozen=True, slots=True)
class Rows:
    """Some of a call's rows as the engine sends, requeues and lands them: their keys
    (made when the batch is made, from the frame's keys by group) and their groups of
    the frame (-1 for a key of no group here: a resumed run may hold rows of other
    frames). The engine's state is kept by group, so a batch's rows are never looked up
    by key again: landing, requeueing, failing or pricing them index by ``groups``."""

    keys: list[str]
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def only(self, keep: np.ndarray) -> Rows:
        """The rows marked True."""
        if keep.all():
            return self
        return Rows(list(compress(self.keys, keep)), self.groups[keep])


class Pending:
    """The groups waiting to be sent, in order: a few arrays (the call's items, then
    what came back to be sent again), not an int object per row."""

    def __init__(self) -> None:
        self.parts: deque[np.ndarray] = deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def push_back(self, groups: np.ndarray) -> None:
        if len(groups):
            self.parts.append(groups)
            self.size += len(groups)

    def push_front(self, groups: np.ndarray) -> None:
        if len(groups):
            self.parts.appendleft(groups)
            self.size += len(groups)

    def pop(self, n: int) -> np.ndarray:
        """Up to ``n`` groups from the front."""
        taken: list[np.ndarray] = []
        while n > 0 and self.parts:
            part = self.parts.popleft()
            if len(part) > n:
                self.parts.appendleft(part[n:])
                part = part[:n]
            taken.append(part)
            n -= len(part)
        out = np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)
        self.size -= len(out)
        return out

    def drain(self) -> np.ndarray:
        """Every group left, emptying the queue."""
        return self.pop(self.size)


class Engine:
    """One call's worth of batches: dispatch under budget, send, poll, land."""

    def __init__(
        self,
        routine: Routine,
        items: WorkItems,
        client: Any,
        guard: BudgetGuard,
        journal: Journal,
        progress: Any,
        plan: Plan,
        opts: dict[str, Any],
    ) -> None:
        self.routine, self.client, self.guard, self.journal = routine, client, guard, journal
        self.progress, self.plan, self.opts = progress, plan, opts
        # The items as columns (a run's keys and inputs are made from them when it is
        # sent); a row's state is kept by its group of the frame: ``mine`` marks this
        # call's rows.
        self.items, self.mine = items, items.mask()
        # What became of each row, as columns as runs land (never a dict per answer held
        # until the merge); ``done`` marks the rows whose result is in there.
        self.landed = Landed(items.frame)
        self.done = np.zeros_like(self.mine)
        self.sends = np.zeros(len(self.mine), dtype=np.int64)  # POSTs per group so far
        self.queue = Pending()
        self.http = asyncio.Semaphore(min(MAX_OPEN_REQUESTS, int(opts["concurrency"])))
        self.slots = asyncio.Semaphore(int(opts["concurrency"]))
        self.changed = asyncio.Event()
        self.outstanding = 0
        self.stopped: str | None = None  # why nothing more is sent, once something says so
        self.stop_status = Status.OVER_BUDGET
        self.unit = row_reservation(routine, getattr(guard, "capped", True))
        self.rng = opts["rng"] or random.Random()
        # One retry policy for every layer: the client retries within a send, this engine
        # re-sends a refused batch, and together they never exceed the per-row cap.
        self.retry: RetryPolicy = client.retry
        self.cap: int | None = opts["max_attempts"]
        self.first_poll = float(opts["poll_interval"])
        self.waiter: RunWaiter | None = opts["webhook"]
        self.tasks: set[asyncio.Task[None]] = set()
        self.held: dict[int, tuple[Rows, Cost]] = {}  # unknown sends a webhook may explain
        self.landings = Landings(journal, backend=BACKEND, plan=plan)

    # -- the whole call --------------------------------------------------------------------

    async def run(self) -> Landed:
        resumed = await asyncio.to_thread(self._resumed)
        covered = np.zeros_like(self.mine)
        for run, rows in resumed:
            covered[rows.groups[rows.groups >= 0]] = True
            self._spawn(self._resume(run, rows))
        groups = self.items.groups
        self.queue.push_back(groups[~covered[groups]])
        size = batch_size_for(len(self.queue), self.opts)
        await self._dispatch(size)
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
        if self.held:
            await self._explain_unknown()
            while self.tasks:
                await asyncio.gather(*list(self.tasks))
        await self.landings.drained()
        lost = groups[~self.done[groups]]
        return self.landed.add(map(self._lost, self.items.keys_of(lost)), lost)

    def _resumed(self) -> list[tuple[InFlight, Rows]]:
        """Runs a previous call started and never landed that hold any of this call's
        rows, with their rows (one look-up per run: their keys come from the journal)."""
        resumed = []
        for run in self.journal.in_flight(self.routine.id):
            keys = run.keys
            rows = Rows(keys, self.items.groups_of(keys))
            if self._mine(rows).any():
                resumed.append((run, rows))
        return resumed

    def _lost(self, key: str) -> ItemResult:
        return ItemResult(
            key, Status.UNKNOWN, error="no result was collected for this row", attempts=0
        )

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.changed.set()

    async def _dispatch(self, size: int) -> None:
        """Hand batches to tasks while there is work, budget and room in flight."""
        while self.queue or self.outstanding:
            if self.stopped:
                break
            if not self.queue:
                await self._wait_change()
                continue
            await self.slots.acquire()
            if self.stopped:
                self.slots.release()
                break
            batch = self.queue.pop(size)
            k = reserve_largest(self.guard, self.unit, len(batch))
            if k == 0:
                self.slots.release()
                self.queue.push_front(batch)
                if not self.outstanding:
                    break  # nothing in flight will free money: the rest is over budget
                await self._wait_change()
                continue
            self.queue.push_front(batch[k:])
            self.outstanding += 1
            self._spawn(self._batch(self._rows(batch[:k]), self.unit * k))
        self._over_budget(self._rows(self.queue.drain()))

    async def _wait_change(self) -> None:
        self.changed.clear()
        await self.changed.wait()

    def _rows(self, groups: np.ndarray) -> Rows:
        """These groups' rows (groups of this call's items), their keys made now."""
        return Rows(self.items.keys_of(groups), groups)

    def _over_budget(self, rows: Rows) -> None:
        if not len(rows):
            return
        why = self.stopped or (
            f"not sent: the budget cannot cover this row's worst case "
            f"({self.unit.actions:g} Actions, {self.unit.data_credits:g} "
            f"Data Credits) on top of what was already spent"
        )
        status = self.stop_status if self.stopped else Status.OVER_BUDGET
        self._finish_rows(rows, status, why)

    def _land(self, rows: Rows, results: list[ItemResult]) -> None:
        """These rows' results (this call's rows, ``results[i]`` of ``rows``' row ``i``),
        final: into the columns."""
        self.landed.add(results, rows.groups)
        self.done[rows.groups] = True

    def _mine(self, rows: Rows) -> np.ndarray:
        """Which of these rows are this call's (a resumed run may hold others)."""
        groups = rows.groups
        return (groups >= 0) & self.mine[np.maximum(groups, 0)]

    def _left(self, rows: Rows) -> Rows:
        """Those of these rows of this call's that have no result yet."""
        return rows.only(self._mine(rows) & ~self.done[np.maximum(rows.groups, 0)])

    # -- one batch -------------------------------------------------------------------------

    async def _batch(self, rows: Rows, reserved: Cost) -> None:
        sent = None
        try:
            sent = await self._send(rows, reserved)
            if sent is not None:
                await self._collect(*sent, rows, reserved)
        except Exception as exc:  # never lose rows to a bug or an unforeseen answer
            status = Status.UNKNOWN if sent is not None else Status.FAILED
            self._finish_rows(self._left(rows), status, f"{type(exc).__name__}: {exc}")
        finally:
            self.outstanding -= 1
            self.slots.release()
            self.changed.set()

    async def _send(self, rows: Rows, reserved: Cost) -> tuple[int, str] | None:
        """Journal, POST and journal the run id; None when the batch went no further."""
        inputs = self._inputs(rows)
        body = RunItems.of(inputs)  # prepare checked the rows: built once, not re-checked
        webhook_id = self.waiter.webhook_id if self.waiter else None
        left = self.retry.sends_left(self._sent(rows), self.cap)
        try:
            async with self.http:
                # Journaled on the loop thread, right before and right after the POST: the
                # window in which a crash leaves a batch's fate unknown is the POST itself.
                batch = self.journal.intent(self.routine.id, BACKEND, inputs, reserved)
                run_id: str = await self.client.run_routine(
                    self.routine.id, body, webhook_id=webhook_id, max_sends=left
                )
                self.journal.started(batch, run_id)
        except errors.ClayError as exc:
            self._count_sends(rows, self.retry.counted(exc))
            failure = exc
        else:
            self._count_sends(rows, 1)
            return batch, run_id
        await self._not_started(rows, reserved, batch, failure)
        return None

    def _sent(self, rows: Rows) -> int:
        """What the most-sent of these rows spent of its cap so far (sends Clay failed)."""
        return max(self._attempts(rows), default=0)

    def _sends(self, rows: Rows) -> np.ndarray:
        """The POSTs each of these rows rode in so far (0 for a row of no group here)."""
        groups = rows.groups
        return np.where(groups >= 0, self.sends[np.maximum(groups, 0)], 0)

    def _attempts(self, rows: Rows) -> list[int]:
        """:meth:`_sends` as a list."""
        return self._sends(rows).tolist()

    def _resent(self, rows: Rows) -> dict[str, int]:
        """The POSTs each of these rows rode in, for the rows sent more than once: a row
        not named counts one (:func:`~claynb.pipeline._outcome.outcomes_of`), as nearly
        every row does, so a run's outcomes need no dict of its hundred rows."""
        sends = self._sends(rows)
        again = np.flatnonzero(sends > 1)
        return {rows.keys[i]: int(sends[i]) for i in again.tolist()}

    def _count_sends(self, rows: Rows, sends: int) -> None:
        groups = rows.groups
        np.add.at(self.sends, groups[groups >= 0], sends)

    async def _not_started(
        self, rows: Rows, reserved: Cost, batch: int, exc: errors.ClayError
    ) -> None:
        """The POST failed: its outcome is unknown, or Clay refused the run."""
        if isinstance(exc, errors.OutcomeUnknown):
            await asyncio.to_thread(self.journal.unknown, batch, exc.message)
            if self.waiter is not None:  # Clay's webhook may yet name the run: wait for it
                self.held[batch] = (rows, reserved)
                return None
            self._unknown(rows, reserved, exc.message)
            return None
        await asyncio.to_thread(self.journal.abandon, batch)
        self.guard.release(reserved)
        self._refused(rows, exc)
        return None

    def _unknown(self, rows: Rows, reserved: Cost, why: str) -> None:
        # It may have been charged: count the worst.
        self.guard.settle(reserved, reserved, CostSource.ESTIMATED)
        self._finish_rows(
            rows,
            Status.UNKNOWN,
            f"{why} Not re-sent: a later call collects it once "
            "Clay's webhook names its run; resend_unknown=True "
            "sends it again.",
        )

    async def _explain_unknown(self) -> None:
        """With a webhook: turn sends that timed out back into runs, from its deliveries."""
        deadline = time.monotonic() + float(self.opts["unknown_wait"])
        while self.held and time.monotonic() < deadline:
            for run_id in list(getattr(self.waiter, "finished", ())):
                self.journal.delivered(run_id)
            for batch, run_id in (await adopt_delivered(self.journal, self.client)).items():
                if batch in self.held:
                    rows, reserved = self.held.pop(batch)
                    self._spawn(self._collect(batch, run_id, rows, reserved))
            await asyncio.sleep(0.1)
        for rows, reserved in self.held.values():
            self._unknown(
                rows,
                reserved,
                "the send timed out and no webhook named its run "
                f"within {self.opts['unknown_wait']:g}s.",
            )
        self.held.clear()

    def _refused(self, rows: Rows, exc: errors.ClayError) -> None:
        """Clay answered the POST with an error: it did not start the run."""
        if isinstance(exc, errors.CreditsExhausted):
            self.stopped = (
                f"not sent: Clay answered 402 (credits exhausted: {exc.message}); "
                "rows finished before it are kept"
            )
            self._finish_rows(rows, Status.OVER_BUDGET, self.stopped)
        elif isinstance(exc, _FATAL):
            self.stopped, self.stop_status = (
                f"not sent: Clay refused the run ({exc})",
                Status.FAILED,
            )
            self._finish_rows(rows, Status.FAILED, self.stopped)
            self._finish_rows(self._rows(self.queue.drain()), Status.FAILED, self.stopped)
        elif isinstance(
            exc, (errors.ServerError, errors.RateLimited, errors.TransportError)
        ) and self.retry.sends_left(self._sent(rows), self.cap):
            self._requeue(rows, exc)
        else:
            error = f"not sent after {self._sent(rows)} attempt(s): {exc}"
            self._record_failures(rows, error)
            self._finish_rows(rows, Status.FAILED, error)

    def _requeue(self, rows: Rows, exc: errors.ClayError) -> None:
        """Send these rows again later: the server's wait when it asked, else the policy's."""
        delay = getattr(exc, "retry_after", None) or self.retry.backoff(self._sent(rows), self.rng)

        async def later() -> None:
            await asyncio.sleep(float(delay))
            self.outstanding -= 1
            if self.stopped:
                self._finish_rows(rows, self.stop_status, self.stopped)
            else:
                self.queue.push_back(rows.groups)

        self.outstanding += 1  # keeps the dispatcher waiting for these rows to come back
        self._spawn(later())

    def _record_failures(self, rows: Rows, error: str) -> None:
        inputs, attempts = self.items.inputs(rows.groups), self._attempts(rows)
        keyed = [(k, i, error, n) for k, i, n in zip(rows.keys, inputs, attempts, strict=True)]
        self.journal.record_failures(self.routine.id, keyed)

    def _inputs(self, rows: Rows) -> dict[str, dict[str, Any]]:
        """These rows' inputs (made from the items' columns, a run at a time)."""
        return dict(zip(rows.keys, self.items.inputs(rows.groups), strict=True))

    def _finish_rows(self, rows: Rows, status: Status, error: str) -> None:
        self._land(
            rows,
            [
                ItemResult(k, status, error=error, attempts=n)
                for k, n in zip(rows.keys, self._attempts(rows), strict=True)
            ],
        )
        self.progress.advance(len(rows))

    # -- collecting results ----------------------------------------------------------------

    async def _resume(self, run: InFlight, rows: Rows) -> None:
        """A run a previous call started and never landed: collect it, send nothing."""
        self._count_sends(rows, 1)
        try:
            await self._collect(run.batch, run.run_id, rows, None)
        except Exception as exc:
            self._finish_rows(self._left(rows), Status.UNKNOWN, f"{type(exc).__name__}: {exc}")

    async def _collect(self, batch: int, run_id: str, rows: Rows, reserved: Cost | None) -> None:
        try:
            raw = await self._poll(run_id)
        except errors.HTTPStatusError as exc:  # 404: Clay no longer knows the run
            why = f"Clay could not give the results of run {run_id}: {exc}"
            await asyncio.to_thread(self.journal.unknown, batch, why)
            raw, timeout_why = None, why
        else:
            timeout_why = (
                f"run {run_id} did not finish within {self.opts['poll_timeout']:g}s;"
                " it is journaled and a later call collects it without re-sending"
            )
        mine = self._mine(rows)
        if raw is None:
            if reserved is not None:
                self.guard.settle(reserved, reserved, CostSource.ESTIMATED)
            self._finish_rows(rows.only(mine), Status.UNKNOWN, timeout_why)
            return
        async with self.http:
            charges = await self.client.run_charges(run_id)
        keys = rows.keys
        sent = self._resent(rows)
        # one result per key, in the keys' order: a result's row is its key's
        results = outcomes_of(
            self.routine, keys, raw.by_id(), run_id=run_id, charges=charges, attempts=sent
        )
        del raw  # the page's items were copied into the results: not held while they land
        actual = Cost.total(r.cost for r in results)
        await self.landings.land(run_id, results)
        if reserved is not None:
            self.guard.settle(reserved, actual, CostSource.of_all(r.cost_source for r in results))
        landing = results if mine.all() else list(compress(results, mine))
        self._land(rows.only(mine), landing)
        if any(r.status == Status.OVER_BUDGET for r in results) and not self.stopped:
            self.stopped = (
                "not sent: Clay's credits exhausted (it stopped running the "
                "items of an earlier run); rows finished before are kept"
            )
        paid = actual if landing is results else Cost.total(r.cost for r in landing)
        self.progress.advance(len(landing), paid)

    async def _poll(self, run_id: str) -> Any:
        """Poll until complete (with backoff, woken early by a webhook); None on timeout.

        The first poll's delay adapts to how long runs take: shorter while runs are found
        finished at the first look, longer while they are not. Later polls back off from
        ``poll_interval`` to ``poll_max_interval``.
        """
        deadline = time.monotonic() + float(self.opts["poll_timeout"])
        interval = float(self.opts["poll_interval"])
        first, wait = True, min(interval, self.first_poll)
        if self.waiter is not None:  # the webhook says when; polling is the fallback
            interval = wait = float(self.opts["poll_max_interval"])
            first = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await self._sleep_or_wake(run_id, min(left, wait * (0.8 + 0.4 * self.rng.random())))
            try:
                async with self.http:
                    results = await self.client.get_run_results(run_id)
            except (errors.TransportError, errors.ServerError, errors.RateLimited) as exc:
                results = None  # a read is always safe to retry; keep going until the deadline
                interval = max(interval, getattr(exc, "retry_after", None) or interval)
            done = results is not None and results.complete
            if first:
                self._learn_first_poll(done)
                first = False
            if done:
                return results
            wait = interval
            interval = min(
                interval * float(self.opts["poll_backoff"]), float(self.opts["poll_max_interval"])
            )

    def _learn_first_poll(self, done: bool) -> None:
        factor = 0.7 if done else 1.3
        self.first_poll = min(
            float(self.opts["poll_max_interval"]), max(MIN_FIRST_POLL_S, self.first_poll * factor)
        )

    async def _sleep_or_wake(self, run_id: str, seconds: float) -> None:
        if self.waiter is None:
            await asyncio.sleep(seconds)
        else:
            await self.waiter.wait(run_id, seconds)
