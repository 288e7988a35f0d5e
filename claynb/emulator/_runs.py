"""Routine runs: items waiting for their latency to pass, then run, charged and kept.

A run is created when a client POSTs it and becomes *due* after its sampled latency.
Whoever notices first (the server's background task, a results poll, or a ``meters()``
call) finalises it: each item's outcome comes from :func:`claynb._routines.run_item`,
so the same inputs always give the same answer, and items are charged in order until a
meter would go below zero. Everything here is pure; the caller holds the lock.

A result item holds only what Clay documents (``id``, ``status``, ``result`` or
``error``). What each item was charged, which provider answered and whether it ran at all
is the emulator's own bookkeeping (:class:`ItemCharge`), shown under ``/_emulator`` only.
How an item the credits could not pay for shows is the ``credits_out`` setting: failed with
a wording that varies (nothing to rely on), or left out of the results.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from claynb._routines import Cost, Routine, run_item
from claynb.emulator._meters import Meters
from claynb.emulator._settings import CreditsOut

INLINE, BATCH, TABLE = "run", "batch", "table"
#: How an item not run for lack of credits is worded: Clay publishes no stable error codes,
#: so the emulator varies the text (per item, the same every time) to keep anyone from
#: relying on it.
NOT_RUN_WORDINGS = (
    "credits exhausted: not run",
    "Insufficient credits",
    "This enrichment could not run",
    "Limit reached for this workspace",
    "Something went wrong",
)


@dataclass(frozen=True)
class ItemCharge:
    """What one item of a run cost and who answered: the admin view, never a result item.

    ``ran`` is False for an item the meters could not pay for (it was not run).
    """

    cost: Cost = Cost()
    provider: str | None = None
    ran: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": _num(self.cost.actions),
            "data_credits": _num(self.cost.data_credits),
            "provider": self.provider,
            "ran": self.ran,
        }


@dataclass
class Run:
    """One routine run (inline, batch or a table's enrichment column)."""

    id: str
    routine_id: str
    kind: str
    items: list[tuple[str, dict[str, Any]]]
    created: float
    due: float
    webhook_id: str | None = None
    results: list[dict[str, Any]] | None = None
    terminal: dict[str, Any] | None = None  # a batch that failed validation or processing
    context: Any = None  # what a table run feeds back into (see _tables)
    notified: bool = field(default=False, repr=False)
    charges: dict[str, ItemCharge] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.results is not None or self.terminal is not None

    @property
    def total(self) -> int:
        return len(self.items)

    def finished_count(self, now: float) -> int:
        """Items finished so far: grows with elapsed time until the run is done."""
        if self.done:
            return self.total
        span = self.due - self.created
        if span <= 0:
            return 0
        share = max(0.0, min(1.0, (now - self.created) / span))
        return min(self.total - 1, int(self.total * share)) if self.total else 0


class RunBook:
    """Every run by id, plus a heap of the ones still waiting, earliest due first."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def add(self, run: Run) -> None:
        self.runs[run.id] = run
        if not run.done:
            heapq.heappush(self._heap, (run.due, next(self._seq), run.id))

    def get(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def pop_due(self, now: float) -> Iterator[Run]:
        """Runs whose latency has passed, earliest first, removed from the waiting heap."""
        while self._heap and self._heap[0][0] <= now:
            _, _, run_id = heapq.heappop(self._heap)
            run = self.runs.get(run_id)
            if run is not None and not run.done:
                yield run

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def in_progress(self) -> int:
        return len(self._heap)


def execute(
    run: Run,
    routine: Routine,
    meters: Meters,
    *,
    outcome_seed: int,
    wall: float,
    credits_out: CreditsOut = CreditsOut.BOTH,
) -> None:
    """Run every item of ``run`` in order, charging as it goes; store the results on it."""
    stats = meters.stats(routine.id)
    results: list[dict[str, Any]] = []
    for item_id, inputs in run.items:
        item = _execute_item(run, routine, meters, stats, item_id, inputs, outcome_seed, wall)
        if item is not None or credits_out != CreditsOut.PAYMENT_REQUIRED:
            results.append(item or _not_run(item_id))
    stats.items += len(run.items)
    run.results = results


def _not_run(item_id: str) -> dict[str, Any]:
    wording = NOT_RUN_WORDINGS[sum(item_id.encode()) % len(NOT_RUN_WORDINGS)]
    return {"id": item_id, "status": "failed", "error": {"message": wording}}


def _execute_item(
    run: Run,
    routine: Routine,
    meters: Meters,
    stats: Any,
    item_id: str,
    inputs: dict[str, Any],
    outcome_seed: int,
    wall: float,
) -> dict[str, Any] | None:
    """The item's answer, or None when the meters could not pay for it (it did not run)."""
    outcome = run_item(routine, inputs, outcome_seed)
    if outcome.status == "failed":
        stats.failed += 1
        run.charges[item_id] = ItemCharge()
        return {"id": item_id, "status": "failed", "error": {"message": outcome.error or "failed"}}
    cost = outcome.cost
    if not cost.is_zero:
        # The inputs dict stands in for its key until someone reads the charges (see Meters.charge).
        record = (
            wall,
            routine.id,
            run.id,
            item_id,
            inputs,
            cost.actions,
            cost.data_credits,
            outcome.provider,
        )
        if not meters.charge(cost, record):
            stats.not_run += 1
            run.charges[item_id] = ItemCharge(ran=False)
            return None
        stats.actions += cost.actions
        stats.data_credits += cost.data_credits
    matched = outcome.status == "matched"
    stats.matched += matched
    stats.no_match += not matched
    run.charges[item_id] = ItemCharge(cost, outcome.provider if matched else None)
    return {"id": item_id, "status": "complete", "result": dict(outcome.result)}


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def encode_cursor(run_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{run_id}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(run_id: str, cursor: str) -> int:
    """The offset a cursor stands for; ValueError when it was not issued for this run."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        owner, _, offset = base64.urlsafe_b64decode(padded.encode()).decode().rpartition(":")
        value = int(offset)
    except (ValueError, UnicodeError, binascii.Error):
        raise ValueError("invalid cursor") from None
    if owner != run_id or value < 0:
        raise ValueError("invalid cursor")
    return value


def page(run: Run, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a finished run's results and the cursor of the next (None on the last)."""
    assert run.results is not None
    start = decode_cursor(run.id, cursor) if cursor else 0
    end = start + limit
    data = run.results[start:end]
    return data, (encode_cursor(run.id, end) if end < len(run.results) else None)
