"""One Clay item answer, one claynb status and cost: the mapping every tier uses.

Clay answers each item of a finished run with ``{"id", "status": "complete" | "failed",
"result" | "error"}`` (parsed into a :class:`claynb.RunItem`). The direct, queue and event
tiers all turn it into an :class:`~claynb.pipeline._work.ItemResult` here, so the same
answer reads the same in every tier:

- **complete** is ``enriched`` when any result field came back with a value (listed in
  the routine's catalogue or not: Clay returns what the workspace's routine returns),
  else ``no_match``.
- **failed** is ``over_budget`` when the meters say the item was not run because the
  credits ran out (it was not charged, and can be sent again after a top-up), and
  ``failed`` otherwise (the dead-letter list, which ``retry_failed=True`` re-sends).
- an item missing from a complete run, or a status Clay has not documented, is ``failed``
  with the reason (``over_budget`` when the meters say it was not run): Clay says to treat
  an unrecognised terminal status as an unhandled outcome, and a row is never dropped.

Clay publishes no stable error codes and words an item it did not run however it likes, so
the error's text is never read: running out of credits is known from a 402 (the tiers stop
sending) and from a claynb emulator's meters (:class:`claynb.wire._admin.RunCharges`). On
real Clay there are no meters to ask, and such items are ``failed``.

Costs come from the same meters when the client knows it talks to an emulator
(``metered``). Real Clay reports nothing per item, so there an item is priced from what was
declared (``estimated``, :func:`estimated_cost`): a match at the routine's worst case, a
miss at what misses cost, so a budget settled with estimates is never passed. A routine
with no declared price is ``unpriced``. Pure functions only.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from claynb._routines import Cost, Routine
from claynb.pipeline._work import CostSource, ItemResult, Status
from claynb.wire._admin import RunCharges
from claynb.wire._results import RunItem

COMPLETE, FAILED = "complete", "failed"

_ZERO = Cost()


def outcome_of(
    routine: Routine,
    key: str,
    item: RunItem | None,
    *,
    run_id: str | None = None,
    attempts: int = 1,
    charges: RunCharges | None = None,
) -> ItemResult:
    """What Clay's answer for one item means for its row (see the module docstring).

    ``charges`` is the emulator's record of the run (None on real Clay: costs estimated).
    """
    sent = {key: attempts}
    found = {} if item is None else {key: item}
    return outcomes_of(routine, [key], found, run_id=run_id, charges=charges, attempts=sent)[0]


def outcomes_of(
    routine: Routine,
    keys: Sequence[str],
    items: Mapping[str, RunItem],
    *,
    run_id: str | None,
    charges: RunCharges | None = None,
    attempts: Mapping[str, int] | None = None,
) -> list[ItemResult]:
    """:func:`outcome_of` for every key of a run (``items``: its answers by id).

    One pass over the run: the estimates are priced once, not per item, and an answered
    item (nearly every one) costs a dict copy, a test for a value and an ``ItemResult``.
    """
    sent = attempts or {}
    (hit, hit_source), (miss, miss_source) = (
        estimated_cost(routine, True),
        estimated_cost(routine, False),
    )
    enriched, no_match = Status.ENRICHED, Status.NO_MATCH
    found, tries = items.get, sent.get
    out: list[ItemResult] = []
    append = out.append
    for key in keys:
        item = found(key)
        if item is None or item.status != COMPLETE:
            append(_not_answered(key, item, run_id, tries(key, 1), charges))
            continue
        result = dict(item.result)
        values = result.values()
        matched = any(values) or _has_values(values)  # a truthy value, at once, in C
        if charges is not None:
            cost, source = _shared(charges.cost_of(key)), CostSource.METERED
        elif matched:
            cost, source = hit, hit_source
        else:
            cost, source = miss, miss_source
        status = enriched if matched else no_match
        append(ItemResult(key, status, result, None, cost, tries(key, 1), run_id, source))
    return out


def _not_answered(
    key: str, item: RunItem | None, run_id: str | None, attempts: int, charges: RunCharges | None
) -> ItemResult:
    """An item Clay failed, left out of a complete run, or gave a status it does not document."""
    if item is None:
        message = f"run {run_id} returned no result for this item" if run_id else "no result"
    else:
        message = item.error or item.status or FAILED
        if item.status != FAILED:
            message = f"unrecognised item status {item.status!r}: {message}"
        message = f"Clay: {message}"
    not_run = charges is not None and charges.ran_out(key)
    status = Status.OVER_BUDGET if not_run else Status.FAILED
    if not_run:
        message = f"not run: the workspace's credits ran out ({message})"
    cost, source = _failed_cost(key, charges)
    return ItemResult(key, status, {}, message, cost, attempts, run_id, source)


def _failed_cost(key: str, charges: RunCharges | None) -> tuple[Cost, CostSource]:
    """A failed item is not charged: the meters say so exactly, or it is the estimate."""
    if charges is not None:
        return _shared(charges.cost_of(key)), CostSource.METERED
    return _ZERO, CostSource.ESTIMATED


_SIZED = (str, list, dict, tuple)


def _has_values(values: Collection[Any]) -> bool:
    """Whether any of a result's values is a value: not None, and not an empty text, list
    or object (a zero or False is a value). The values are parsed JSON: a truthy one is a
    value, so the common case is one ``any`` over them, in C."""
    return any(values) or any(v is not None and not isinstance(v, _SIZED) for v in values)


def estimated_cost(routine: Routine, matched: bool) -> tuple[Cost, CostSource]:
    """What an item may have cost when Clay does not say (real Clay reports no per-item cost).

    A match is priced at the routine's worst case (declared, or its waterfall's): Clay does
    not say which provider answered, and a budget settled to an estimate must never be
    passed. A miss costs what the providers that charge on a miss add up to (Clay charges
    nothing for a lookup that returns nothing). An unpriced routine's items cost nothing
    that anyone can say: ``unpriced``.
    """
    if not routine.priced:
        return _ZERO, CostSource.UNPRICED
    if matched:
        return _shared(routine.worst_case_cost()), CostSource.ESTIMATED
    credits = sum(p.data_credits for p in routine.providers if p.charge_on_miss)
    return _shared(Cost(routine.actions_per_hit if credits else 0.0, credits)), CostSource.ESTIMATED


@functools.lru_cache(maxsize=1024)
def _interned(actions: float, data_credits: float) -> Cost:
    return Cost(actions, data_credits)


def _shared(cost: Cost) -> Cost:
    """One Cost object per distinct amount: 200,000 rows share a handful of them."""
    return _interned(cost.actions, cost.data_credits)
