"""The two calls the event tier makes to Clay, behind a small protocol.

The service starts runs with a ``webhook_id`` and, when told a run finished (or when the
reconciler decides to look), reads its results once, without waiting: a run still going
is simply looked at again later. :class:`ClientRunsApi` does that with an
:class:`claynb.AsyncClayClient`; tests and other transports can supply their own. What an
item's answer means is decided where every tier decides it,
:func:`claynb.pipeline._outcome.outcome_of`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from claynb.wire._admin import RunCharges
from claynb.wire._config import RetryPolicy
from claynb.wire._results import RunItem


class RunsApi(Protocol):
    #: How patiently requests are retried and how many POSTs an item may ride in.
    retry: RetryPolicy

    async def start_run(
        self,
        routine_id: str,
        items: Sequence[Mapping[str, Any]],
        webhook_id: str | None,
        max_sends: int | None = None,
    ) -> str:
        """Start a run; its id. At most ``max_sends`` sends Clay fails (see
        :meth:`claynb.RetryPolicy.sends_left`). Raises the claynb error tree
        (OutcomeUnknown included), saying what was sent (``exc.attempts``,
        ``exc.rate_limited``)."""
        ...

    async def results(self, run_id: str) -> list[RunItem] | None:
        """The run's result items when it is complete, ``None`` while it is going."""
        ...

    async def charges(self, run_id: str) -> RunCharges | None:
        """What each item cost, from an emulator's meters; None on real Clay (estimated)."""
        ...


class ClientRunsApi:
    """:class:`RunsApi` over an :class:`claynb.AsyncClayClient`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.retry: RetryPolicy = client.retry

    async def start_run(
        self,
        routine_id: str,
        items: Sequence[Mapping[str, Any]],
        webhook_id: str | None,
        max_sends: int | None = None,
    ) -> str:
        run_id = await self.client.run_routine(
            routine_id, items, webhook_id=webhook_id, max_sends=max_sends
        )
        return str(run_id)

    async def results(self, run_id: str) -> list[RunItem] | None:
        answer = await self.client.get_run_results(run_id)
        return list(answer.items) if answer.complete else None

    async def charges(self, run_id: str) -> RunCharges | None:
        charges: RunCharges | None = await self.client.run_charges(run_id)
        return charges
