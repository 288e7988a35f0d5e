"""The two calls the event tier makes to Clay, behind a small protocol.

The service starts runs with a ``webhook_id`` and, when told a run finished (or when the
reconciler decides to look), reads its results once, without waiting: a run still going
is simply looked at again later. :class:`ClientRunsApi` does that with an
:class:`claynb.AsyncClayClient`; tests and other transports can supply their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from claynb._routines import Routine
from claynb.pipeline._normalise import price_item
from claynb.pipeline._work import ENRICHED, FAILED, NO_MATCH, ItemResult


class RunsApi(Protocol):
    async def start_run(
        self, routine_id: str, items: Sequence[Mapping[str, Any]], webhook_id: str | None
    ) -> str:
        """Start a run; its id. Raises the claynb error tree (OutcomeUnknown included)."""
        ...

    async def results(self, run_id: str) -> list[Any] | None:
        """The run's result items when it is complete, ``None`` while it is going."""
        ...


class ClientRunsApi:
    """:class:`RunsApi` over an :class:`claynb.AsyncClayClient`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def start_run(
        self, routine_id: str, items: Sequence[Mapping[str, Any]], webhook_id: str | None
    ) -> str:
        return str(await self.client.run_routine(routine_id, items, webhook_id=webhook_id))

    async def results(self, run_id: str) -> list[Any] | None:
        answer = await self.client.get_run_results(run_id)
        return list(answer.items) if answer.complete else None


def outcome_of(routine: Routine, key: str, item: Any, run_id: str) -> ItemResult:
    """One parsed result item (:class:`claynb.wire._results.RunItem`) as an :class:`ItemResult`.

    Enriched when any of the routine's fields has a value, no_match otherwise; the cost is
    what the emulator says it charged, or the catalogue's price (real Clay does not say).
    An item missing from a complete run is reported failed, never dropped.
    """
    if item is None:
        return ItemResult(key, FAILED, error="missing from the run's results", run_id=run_id)
    result = dict(getattr(item, "result", {}) or {})
    if getattr(item, "status", "") != "complete":
        cost = getattr(item, "cost", None)
        return ItemResult(
            key,
            FAILED,
            {},
            str(getattr(item, "error", None) or "failed"),
            cost if cost is not None else price_item(routine, False, None),
            run_id=run_id,
        )
    matched = any(result.get(f) not in (None, "") for f in routine.fields)
    cost = getattr(item, "cost", None)
    if cost is None:
        cost = price_item(routine, matched, getattr(item, "provider", None))
    return ItemResult(key, ENRICHED if matched else NO_MATCH, result, None, cost, run_id=run_id)
