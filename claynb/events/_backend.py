"""``backend="events"``: ``claynb.enrich`` through the whole event-driven loop, locally.

Each work item becomes a lead event on the bus; the enrichment service batches them into
runs started with a webhook, the receiver turns Clay's "run finished" deliveries into
events, the reconciler polls the runs whose delivery never came, and the contacts that come
back are this call's results. Everything is started for the call and stopped after it: an
embedded NATS (or ``bus_url`` / ``NATS_URL``), the receiver on loopback, the webhook (on
the emulator, or the one passed in for real Clay), the service.

Options (anything else is a ``TypeError``):

- ``bus_url``: the bus to use (``nats://``, ``redis://``); default embedded NATS.
- ``webhook``: ``{"id", "signingSecret"}`` of a webhook registered with Clay's CLI whose
  URL reaches this machine; default: registered on the emulator when the client knows it
  talks to one, else ``CLAYNB_WEBHOOK_ID`` / ``CLAYNB_WEBHOOK_SECRET``; ``{}``: none,
  poll only.
- ``timeout``: seconds to wait for every item (default 600); items still in a run then
  come back ``unknown`` and a later call collects them from the journal, never re-sending.
- ``batch_size``, ``linger_s``, ``reconcile_timeout_s``, ``reconcile_interval_s``,
  ``max_attempts``, ``unknown_wait_s``: the service's settings (:class:`ServiceSettings`);
  ``concurrency``: runs being started at once.
"""

from __future__ import annotations

import time
from typing import Any

from claynb._routines import Cost, Routine
from claynb.events._service import ServiceSettings
from claynb.events._tier import EventTier
from claynb.pipeline._plan import catalogue_of
from claynb.pipeline._work import BudgetGuard, CostSource, ItemResult, Status, WorkItem

DEFAULT_TIMEOUT_S = 600.0
_SETTINGS = (
    "batch_size",
    "linger_s",
    "reconcile_timeout_s",
    "reconcile_interval_s",
    "max_attempts",
    "unknown_wait_s",
)
_OPTIONS = {"bus_url", "webhook", "timeout", "plan", "concurrency", *_SETTINGS}
#: Dead-letter kinds as row statuses: what the user sees in ``clay_status``.
_DEAD_STATUS = {
    "budget": Status.OVER_BUDGET,
    "credits_exhausted": Status.OVER_BUDGET,
    "outcome_unknown": Status.UNKNOWN,
}


def run(
    routine: Routine,
    items: list[WorkItem],
    *,
    client: Any,
    guard: BudgetGuard,
    journal: Any,
    progress: Any,
    **options: Any,
) -> list[ItemResult]:
    """Enrich ``items`` through the event tier; exactly one result per item."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"backend 'events' got unexpected options: {', '.join(sorted(unknown))}")
    if not items:
        return []
    settings = ServiceSettings(
        backend_name="events",
        plan=options.get("plan"),
        **{k: options[k] for k in _SETTINGS if k in options},
    )
    if options.get("concurrency"):
        settings.max_concurrent_sends = max(1, int(options["concurrency"]))
    timeout = float(options.get("timeout", DEFAULT_TIMEOUT_S))
    keys = [item.key for item in items]
    with EventTier(
        client,
        guard=guard,
        bus_url=options.get("bus_url"),
        webhook=options.get("webhook"),
        settings=settings,
        journal=journal,
        catalogue={**catalogue_of(client), routine.id: routine},
    ) as tier:
        tier.adopt_runs(
            routine.id, journal.in_flight(routine.id, keys) if journal is not None else []
        )
        tier.publish_leads(routine.id, [(item.key, item.inputs) for item in items])
        _wait_with_progress(tier, keys, timeout, progress)
        return [_result_for(tier, key) for key in keys]


def _wait_with_progress(tier: EventTier, keys: list[str], timeout: float, progress: Any) -> None:
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while True:
        done = tier.wait(keys, timeout=min(0.25, max(0.0, deadline - time.monotonic())))
        with tier.collector.cond:
            fresh = [
                k
                for k in keys
                if k not in seen and (k in tier.collector.contacts or k in tier.collector.dead)
            ]
            cost = Cost.total(_cost(tier.collector.contacts.get(k)) for k in fresh)
        seen.update(fresh)
        if fresh and progress is not None:
            progress.advance(len(fresh), cost)
        if done or time.monotonic() >= deadline:
            return


def _cost(contact: dict[str, Any] | None) -> Cost:
    if not contact:
        return Cost()
    raw = contact.get("cost") or {}
    return Cost(float(raw.get("actions", 0)), float(raw.get("data_credits", 0)))


def _status(value: Any) -> Status:
    """A contact's status as sent by the service; anything else is an unhandled outcome."""
    try:
        return Status(str(value))
    except ValueError:
        return Status.FAILED


def _result_for(tier: EventTier, key: str) -> ItemResult:
    contact = tier.collector.contacts.get(key)
    if contact is not None:
        return ItemResult(
            key,
            _status(contact.get("status")),
            dict(contact.get("result") or {}),
            contact.get("error"),
            _cost(contact),
            int(contact.get("attempts") or 1),
            contact.get("run_id"),
            CostSource(contact["cost_source"]) if contact.get("cost_source") else None,
        )
    letter = tier.collector.dead.get(key)
    if letter is not None:
        status = _DEAD_STATUS.get(str(letter.get("kind")), Status.FAILED)
        return ItemResult(
            key, status, error=str(letter.get("reason") or "dead-lettered"), attempts=0
        )
    state = tier.service.item_state(key) if tier.service is not None else "unknown"
    if state == "in_run":
        return ItemResult(
            key,
            Status.UNKNOWN,
            error="its run did not finish in time; it is journaled and "
            "a later call collects it without sending it again",
        )
    return ItemResult(key, Status.FAILED, error="not sent before the timeout", attempts=0)
