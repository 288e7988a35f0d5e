"""One Clay item answer, one claynb status: the mapping every tier uses.

Clay answers each item of a finished run with ``{"id", "status": "complete" | "failed",
"result" | "error"}`` (parsed into a :class:`claynb.RunItem`). The direct, queue and event
tiers all turn it into an :class:`~claynb.pipeline._work.ItemResult` here, so the same
answer reads the same in every tier:

- **complete** is ``enriched`` when anything came back (a provider named, or any result
  field with a value, listed in the routine's catalogue or not: Clay returns what the
  workspace's routine returns), else ``no_match``.
- **failed** is ``over_budget`` only when Clay says the credits ran out and charged nothing
  for the item (it stops running items at zero: those were not run and can be sent again
  after a top-up), and ``failed`` otherwise (the dead-letter list).
- an item missing from a complete run, or a status Clay has not documented, is ``failed``
  with the reason: Clay says to treat an unrecognised terminal status as an unhandled
  outcome, and a row is never dropped.

Clay publishes no stable error codes (the HTTP status is the category), so "the credits ran
out" is read from the item's error the way Clay words a 402: ``credits exhausted``.
What an item cost is what the emulator reports; real Clay reports nothing per item, so
:func:`price_item` prices it from the routine's catalogue. Pure functions only.
"""

from __future__ import annotations

import functools
from typing import Any

from claynb._routines import Cost, Routine
from claynb.pipeline._work import ItemResult, Status
from claynb.wire._results import RunItem

#: How Clay words an item it did not run because the workspace's meters are at zero.
CREDITS_OUT = ("credits exhausted", "insufficient credits", "out of credits")
COMPLETE, FAILED = "complete", "failed"

_ZERO = Cost()


def outcome_of(
    routine: Routine,
    key: str,
    item: RunItem | None,
    *,
    run_id: str | None = None,
    attempts: int = 1,
) -> ItemResult:
    """What Clay's answer for one item means for its row (see the module docstring)."""
    if item is None:
        why = f"run {run_id} returned no result for this item" if run_id else "no result"
        return ItemResult(key, Status.FAILED, error=why, attempts=attempts, run_id=run_id)
    if item.status == COMPLETE:
        return _answered(routine, key, item, run_id, attempts)
    message = item.error or item.status or FAILED
    if item.status != FAILED:
        message = f"unrecognised item status {item.status!r}: {message}"
    status = Status.OVER_BUDGET if _not_run(item, message) else Status.FAILED
    cost = _shared(item.cost) if item.cost is not None else _ZERO
    return ItemResult(key, status, {}, f"Clay: {message}", cost, attempts, run_id)


def _answered(
    routine: Routine, key: str, item: RunItem, run_id: str | None, attempts: int
) -> ItemResult:
    result = dict(item.result)
    matched = item.provider is not None or any(_has_value(v) for v in result.values())
    cost = item.cost if item.cost is not None else price_item(routine, matched, item.provider)
    status = Status.ENRICHED if matched else Status.NO_MATCH
    return ItemResult(key, status, result, None, _shared(cost), attempts, run_id)


def _has_value(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | list | dict | tuple):
        return len(value) > 0
    return True


def _not_run(item: RunItem, message: str) -> bool:
    """Clay says the credits ran out, and the item was charged nothing."""
    charged = item.cost is not None and not item.cost.is_zero
    text = message.lower()
    return not charged and any(words in text for words in CREDITS_OUT)


def price_item(routine: Routine, matched: bool, provider: str | None) -> Cost:
    """What an item probably cost when Clay does not say (real Clay reports no per-item cost).

    A hit by a named provider costs that step plus the misses charged before it; a hit
    with no provider named costs the routine's expected cost given a match; a miss costs
    only the providers that charge on a miss.
    """
    misses = [p for p in routine.providers if p.charge_on_miss]
    if not matched:
        credits = sum(p.data_credits for p in misses)
        return Cost(routine.actions_per_hit if credits else 0.0, credits)
    for i, p in enumerate(routine.providers):
        if p.name == provider:
            before = sum(q.data_credits for q in routine.providers[:i] if q.charge_on_miss)
            return Cost(routine.actions_per_hit, p.data_credits + before)
    rate = routine.match_rate()
    expected = routine.expected_cost()
    return Cost(routine.actions_per_hit, expected.data_credits / rate if rate else 0.0)


@functools.lru_cache(maxsize=1024)
def _interned(actions: float, data_credits: float) -> Cost:
    return Cost(actions, data_credits)


def _shared(cost: Cost) -> Cost:
    """One Cost object per distinct amount: 200,000 rows share a handful of them."""
    return _interned(cost.actions, cost.data_credits)
