"""The credit circuit breaker: no batch reaches Clay unless the budget can pay for it.

Before a batch of leads is sent, the breaker reserves the worst case the batch could be
charged against the :class:`~claynb.pipeline._work.BudgetGuard`. When the budget can pay for only
part of it, the part it can pay for is admitted and the breaker *opens*: the rest of the
batch (and whatever follows while it stays open) goes to the dead-letter subject with the
reason, instead of to Clay. Every later batch is still offered to the guard, so the
breaker *closes* again by itself as soon as the budget is raised (or reservations settle
below their worst case). A 402 from Clay opens it too: Clay's own meters ran out.

The breaker does no I/O; the guard is passed in, so the same code guards one notebook
(a thread-safe guard) or many processes (a guard backed by Redis).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from claynb._routines import Cost
from claynb.pipeline._budget import reserve_largest
from claynb.pipeline._work import BudgetGuard

CLOSED = "closed"
OPEN = "open"


@dataclass(frozen=True)
class Admission:
    """What the breaker let through: the first ``admitted`` items, with ``reserved`` held."""

    admitted: int
    reserved: Cost
    reason: str | None = None

    @property
    def rejected(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True)
class Transition:
    at: float
    state: str
    reason: str


@dataclass
class CreditBreaker:
    """Reserves each batch's worst case; opens when the budget cannot pay, closes when it can."""

    guard: BudgetGuard
    clock: Callable[[], float] = time.time
    state: str = CLOSED
    reason: str = ""
    transitions: list[Transition] = field(default_factory=list)

    def admit(self, per_item: Cost, count: int, what: str = "items") -> Admission:
        """Reserve ``per_item`` for as many of ``count`` items as the budget allows.

        A budget that can pay for 37 of 100 items admits 37
        (:func:`claynb.pipeline._budget.reserve_largest`, shared with the other tiers).
        """
        if count <= 0:
            return Admission(0, Cost())
        got = reserve_largest(self.guard, per_item, count)
        reserved = per_item * got
        if got == count:
            self._move(CLOSED, "the budget can pay again")
            return Admission(got, reserved)
        reason = (
            f"budget exhausted: cannot pay for {count - got} of {count} {what} "
            f"(worst case {per_item.actions:g} Actions + {per_item.data_credits:g} "
            "Data Credits each)"
        )
        self._move(OPEN, reason)
        return Admission(got, reserved, reason)

    def trip(self, reason: str) -> None:
        """Open because Clay itself refused (402): its meters, not ours, ran out."""
        self._move(OPEN, reason)

    def _move(self, state: str, reason: str) -> None:
        if state == self.state and state == CLOSED:
            return
        if state != self.state:
            self.transitions.append(Transition(self.clock(), state, reason))
        self.state = state
        self.reason = reason if state == OPEN else ""

    @property
    def is_open(self) -> bool:
        return self.state == OPEN
