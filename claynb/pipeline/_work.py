"""The units of work every backend shares: an item to enrich and what became of it.

``enrich`` turns a DataFrame into :class:`WorkItem` s (one per unique, valid, uncached
input), hands them to a backend (direct, queue or events), and merges the
:class:`ItemResult` s back into a frame. Backends differ in how they reach Clay; they all
speak these types, and all reserve money through a :class:`BudgetGuard`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from claynb._routines import Cost

# Row statuses as the user sees them in ``clay_status``.
ENRICHED = "enriched"
NO_MATCH = "no_match"
CACHED = "cached"
FAILED = "failed"
INVALID_INPUT = "invalid_input"
OVER_BUDGET = "over_budget"
UNKNOWN = "unknown"
STATUSES = (ENRICHED, NO_MATCH, CACHED, FAILED, INVALID_INPUT, OVER_BUDGET, UNKNOWN)


def item_key(routine_id: str, inputs: dict[str, Any]) -> str:
    """A stable id for (routine, normalised inputs): the Clay item id and the cache key."""
    blob = json.dumps([routine_id, inputs], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class WorkItem:
    """One unique, valid set of normalised inputs to send to a routine."""

    key: str
    inputs: dict[str, Any]

    @classmethod
    def of(cls, routine_id: str, inputs: dict[str, Any]) -> WorkItem:
        return cls(item_key(routine_id, inputs), dict(inputs))


@dataclass
class ItemResult:
    """What became of one work item. ``cost`` is what Clay charged for it."""

    key: str
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: Cost = Cost()
    attempts: int = 1
    run_id: str | None = None


class BudgetGuard(Protocol):
    """Reserves worst-case cost before work is sent and settles it to the actual cost after.

    Implementations must be atomic: many threads (direct tier) or processes (queue and
    event tiers, through Redis) share one guard and the cap is never crossed by one unit.
    """

    def reserve(self, cost: Cost) -> bool:
        """Hold ``cost`` against the cap; False (and nothing held) when it would cross it."""
        ...

    def settle(self, reserved: Cost, actual: Cost) -> None:
        """Replace a reservation by what was actually charged (never more than reserved)."""
        ...

    def release(self, reserved: Cost) -> None:
        """Give a reservation back unused (the work was never sent)."""
        ...
