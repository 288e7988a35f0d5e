"""Budgets: a hard cap on Actions, Data Credits and dollars, never crossed by one unit.

A :class:`Budget` is a value the user makes once and passes to as many ``enrich`` calls
as they like: the cap is for the object's lifetime, so what one call spends the next one
cannot spend again (``Budget(data_credits=500)`` used twice allows 500 in all, not 1,000).
A new object, or a new process, starts again from zero; the ledger keeps the history.

Money is held the way a card payment is: before a batch is sent, its **worst-case** cost
(``Routine.worst_case_cost() x rows``) is reserved atomically; when the results are in,
the reservation is settled to what Clay actually charged and the rest is freed for the
next batch. A batch that could cross the cap is cut down to the largest affordable size
(:func:`reserve_largest`) or not sent at all. Since the worst case bounds every real
charge, the spend can meet the cap exactly but never cross it, however many batches are
in flight. The guard here is in-process (a lock); the queue and event tiers implement
the same :class:`~claynb.pipeline._work.BudgetGuard` protocol across processes.

Two cases count differently on purpose: a batch whose send has an unknown outcome stays
counted at its worst case (Clay may have charged it), and runs collected after a crash
are not counted again (the call that started them reserved for them).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from claynb._plans import Plan, get_plan
from claynb._routines import Cost

# Floating-point slack when comparing sums of fractional Data Credits with a cap.
EPSILON = 1e-9


class _Meter:
    """Reserved and spent amounts behind one Budget; every change under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reserved = Cost()
        self.spent = Cost()


def _within(value: float, cap: float | None) -> bool:
    return cap is None or value <= cap + EPSILON


@dataclass(frozen=True)
class Budget:
    """A cap on Actions, Data Credits and dollars (``None``: no cap on that meter).

    ``plan`` turns Actions and Data Credits into dollars for the ``usd`` cap and the ledger.
    The object keeps what it has spent: reuse it to cap several calls together.
    """

    actions: float | None = None
    data_credits: float | None = None
    usd: float | None = None
    plan: str | Plan = "growth"
    _meter: _Meter = field(default_factory=_Meter, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("actions", "data_credits", "usd"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Budget {name} must not be negative, got {value!r}")
        object.__setattr__(self, "plan", get_plan(self.plan))

    @property
    def price(self) -> Plan:
        """The plan (a :class:`claynb.Plan`) the dollar figures are computed under."""
        assert isinstance(self.plan, Plan)
        return self.plan

    def dollars(self, cost: Cost) -> float:
        return self.price.usd(cost.actions, cost.data_credits)

    def fits(self, cost: Cost) -> bool:
        """Whether ``cost`` alone (nothing spent yet) is within the caps."""
        return (
            _within(cost.actions, self.actions)
            and _within(cost.data_credits, self.data_credits)
            and _within(self.dollars(cost), self.usd)
        )

    @property
    def spent(self) -> Cost:
        """What Clay actually charged against this budget so far."""
        with self._meter.lock:
            return self._meter.spent

    @property
    def reserved(self) -> Cost:
        """Worst-case cost of work in flight right now."""
        with self._meter.lock:
            return self._meter.reserved

    @property
    def spent_usd(self) -> float:
        return self.dollars(self.spent)

    def remaining(self) -> dict[str, float | None]:
        """What is left under each cap, counting work in flight at its worst case."""
        with self._meter.lock:
            held = self._meter.spent + self._meter.reserved
        return {
            "actions": None if self.actions is None else self.actions - held.actions,
            "data_credits": None
            if self.data_credits is None
            else self.data_credits - held.data_credits,
            "usd": None if self.usd is None else self.usd - self.dollars(held),
        }

    def guard(self) -> LocalGuard:
        """The in-process :class:`~claynb.pipeline._work.BudgetGuard` that spends this budget."""
        return LocalGuard(self)

    def set_caps(
        self,
        *,
        actions: float | None = None,
        data_credits: float | None = None,
        usd: float | None = None,
    ) -> None:
        """Raise (or lower) caps in place, keeping what was spent and what is in flight.

        A Budget is shared by every guard made from it, so the caps change under its meter's
        lock: a reservation in progress sees either the old cap or the new one, never a mix.
        This is how an event tier's tripped credit breaker is closed again.
        """
        caps = {"actions": actions, "data_credits": data_credits, "usd": usd}
        for name, value in caps.items():
            if value is not None and value < 0:
                raise ValueError(f"Budget {name} must not be negative, got {value!r}")
        with self._meter.lock:
            for name, value in caps.items():
                if value is not None:
                    object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        caps = (
            ", ".join(
                f"{n}={getattr(self, n):g}"
                for n in ("actions", "data_credits", "usd")
                if getattr(self, n) is not None
            )
            or "unlimited"
        )
        spent = self.spent
        return (
            f"Budget({caps}; plan={self.price.name}; spent {spent.actions:g} Actions, "
            f"{spent.data_credits:g} Data Credits, ${self.spent_usd:.2f})"
        )


class LocalGuard:
    """Reserves, settles and releases against one :class:`Budget`, atomically (a lock)."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget if budget is not None else Budget()

    @property
    def plan(self) -> Plan:
        return self.budget.price

    def reserve(self, cost: Cost) -> bool:
        meter = self.budget._meter
        with meter.lock:
            if not self.budget.fits(meter.spent + meter.reserved + cost):
                return False
            meter.reserved = meter.reserved + cost
            return True

    def settle(self, reserved: Cost, actual: Cost) -> None:
        meter = self.budget._meter
        with meter.lock:
            meter.reserved = _floor(meter.reserved + reserved * -1)
            meter.spent = meter.spent + actual

    def release(self, reserved: Cost) -> None:
        meter = self.budget._meter
        with meter.lock:
            meter.reserved = _floor(meter.reserved + reserved * -1)

    def affordable(self, unit: Cost, n: int) -> int:
        """How many of ``n`` rows costing ``unit`` each could be reserved right now."""
        meter = self.budget._meter
        with meter.lock:
            held = meter.spent + meter.reserved
        return _affordable(self.budget, held, unit, n)


def _floor(cost: Cost) -> Cost:
    """Clamp float dust below zero that repeated add/subtract can leave."""
    return Cost(max(0.0, cost.actions), max(0.0, cost.data_credits))


def _affordable(budget: Budget, held: Cost, unit: Cost, n: int) -> int:
    lo, hi = 0, n
    while lo < hi:  # largest k in [0, n] with held + unit*k within the caps
        mid = (lo + hi + 1) // 2
        if budget.fits(held + unit * mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def reserve_largest(guard: object, unit: Cost, n: int) -> int:
    """Reserve ``unit x k`` for the largest ``k <= n`` the guard allows; returns ``k``.

    Works with any :class:`~claynb.pipeline._work.BudgetGuard`: it asks ``affordable`` first when the
    guard has it, then halves on refusal (another thread may have taken money meanwhile).
    Whatever is returned is held: settle or release exactly ``unit x k``.
    """
    if n <= 0:
        return 0
    k = n
    hint = getattr(guard, "affordable", None)
    if callable(hint):
        k = min(n, int(hint(unit, n)))
    while k > 0:
        if guard.reserve(unit * k):  # type: ignore[attr-defined]
            return k
        k //= 2
    return 0
