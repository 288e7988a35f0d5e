"""Budgets: a hard cap on Actions, Data Credits and dollars, never crossed by one unit.

A :class:`Budget` is a value the user makes once and passes to as many ``enrich`` calls
as they like: the cap is for the object's lifetime, so what one call spends the next one
cannot spend again (``Budget(data_credits=500)`` used twice allows 500 in all, not 1,000).
An unnamed Budget is that object only: a new object, or a new process, starts again from
zero (its repr says so); the ledger keeps the history.

A named Budget (``Budget(data_credits=500, name="march-outbound")``) is one cap for every
process that names it: kept under ``CLAYNB_HOME`` (every kernel, terminal and scheduled
run on this machine), or in Redis with ``redis=`` (workers and notebooks on several
machines), see :mod:`claynb.pipeline._budget_store`. The first process to name it with
caps declares it; naming it again with the same caps, or with none, joins it; naming it
with other caps raises a ConfigError, and :meth:`Budget.set_caps` changes them for all.

Money is held the way a card payment is: before a batch is sent, its **worst-case** cost
(``Routine.worst_case_cost() x rows``) is reserved atomically; when the results are in,
the reservation is settled to what Clay actually charged and the rest is freed for the
next batch. A batch that could cross the cap is cut down to the largest affordable size
(:func:`reserve_largest`) or not sent at all. Since the worst case bounds every real
charge, the spend can meet the cap exactly but never cross it, however many batches are
in flight. The guard of an unnamed Budget is in-process (a lock); a named one's is a
transaction in SQLite or a script in Redis, the same :class:`~claynb.pipeline._work.BudgetGuard`.

Two cases count differently on purpose: a batch whose send has an unknown outcome stays
counted at its worst case (Clay may have charged it), and runs collected after a crash
are not counted again (the call that started them reserved for them).

What was spent says where its figures come from (:attr:`Budget.cost_source`): read from an
emulator's meters, or estimated from declared prices (real Clay reports no per-item cost;
an estimate prices a match at the worst case, so it never undercounts). A routine with no
declared worst case cannot be held to a cap at all (:func:`check_priced`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claynb._home import state_home
from claynb._plans import Plan, get_plan
from claynb._routines import Cost, Routine
from claynb.pipeline._budget_store import (
    Caps,
    SharedStore,
    SqliteBudget,
    declare_in_redis,
    redis_guard,
)
from claynb.pipeline._journal import FILENAME
from claynb.pipeline._work import CostSource
from claynb.wire._exceptions import ConfigError

# Floating-point slack when comparing sums of fractional Data Credits with a cap.
EPSILON = 1e-9


class _Meter:
    """Reserved and spent amounts behind one Budget; every change under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reserved = Cost()
        self.spent = Cost()
        self.sources: set[CostSource] = set()


def _within(value: float, cap: float | None) -> bool:
    return cap is None or value <= cap + EPSILON


def _fits(caps: Caps, plan: Plan, cost: Cost) -> bool:
    return (
        _within(cost.actions, caps["actions"])
        and _within(cost.data_credits, caps["data_credits"])
        and _within(plan.usd(cost.actions, cost.data_credits), caps["usd"])
    )


@dataclass(frozen=True)
class Budget:
    """A cap on Actions, Data Credits and dollars (``None``: no cap on that meter).

    ``plan`` turns Actions and Data Credits into dollars for the ``usd`` cap and the ledger.
    The object keeps what it has spent: reuse it to cap several calls together.

    ``name`` shares the budget with every process that names it: kept under ``home``
    (default ``CLAYNB_HOME``), or in Redis when ``redis`` (a URL or a redis connection) is
    given. Named with other caps than it was declared with, it raises a ConfigError; named
    without caps, it joins the budget as declared.
    """

    actions: float | None = None
    data_credits: float | None = None
    usd: float | None = None
    plan: str | Plan = "growth"
    name: str | None = None
    home: str | Path | None = field(default=None, repr=False, compare=False)
    redis: Any = field(default=None, repr=False, compare=False)
    _meter: _Meter = field(default_factory=_Meter, init=False, repr=False, compare=False)
    _store: SharedStore | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("actions", "data_credits", "usd"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Budget {name} must not be negative, got {value!r}")
        object.__setattr__(self, "plan", get_plan(self.plan))
        if self.name is None:
            if self.redis is not None:
                raise ConfigError("Budget(redis=...) shares a budget by name: pass name= too")
            return
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Budget name must be a non-empty string, got {self.name!r}")
        self._declare()

    def _declare(self) -> None:
        """Open the named budget where it is kept, declaring it on first use (see the module)."""
        asked = self._declared_caps()
        sqlite: SqliteBudget | None = None
        if self.redis is not None:
            store, where = redis_guard(self.redis, str(self.name), self.price), "in Redis"
            found = declare_in_redis(store, asked)
        else:
            path = state_home(self.home) / FILENAME
            store = sqlite = SqliteBudget(path, str(self.name), self.price)
            where, found = f"under {path}", sqlite.declare(asked)
        if found is None and not any(v is not None for v in asked.values()):
            _close(sqlite)
            raise ConfigError(
                f"no budget named {self.name!r} {where}: declare it once with its caps, "
                f"e.g. claynb.Budget(data_credits=500, name={self.name!r})"
            )
        if (
            found is not None
            and any(v is not None for v in asked.values())
            and not _same(asked, found)
        ):
            _close(sqlite)
            raise ConfigError(
                f"budget {self.name!r} {where} was declared with {_describe(found)}, not "
                f"{_describe(asked)}: open it as claynb.Budget(name={self.name!r}) and change "
                "its caps for every process sharing it with .set_caps(...)"
            )
        for meter, cap in (found or asked).items():
            object.__setattr__(self, meter, cap)
        object.__setattr__(self, "_store", store)

    def _declared_caps(self) -> Caps:
        return {n: getattr(self, n) for n in ("actions", "data_credits", "usd")}

    def caps(self) -> Caps:
        """The caps in force: a named budget's as kept (another process may have changed them)."""
        if self._store is not None:
            return self._store.status().caps
        return self._declared_caps()

    @property
    def shared(self) -> bool:
        """Whether this Budget is one cap for every process naming it (``name=``)."""
        return self._store is not None

    @property
    def price(self) -> Plan:
        """The plan (a :class:`claynb.Plan`) the dollar figures are computed under."""
        assert isinstance(self.plan, Plan)
        return self.plan

    def dollars(self, cost: Cost) -> float:
        return self.price.usd(cost.actions, cost.data_credits)

    def fits(self, cost: Cost) -> bool:
        """Whether ``cost`` alone (nothing spent yet) is within the caps."""
        return _fits(self.caps(), self.price, cost)

    def _tally(self) -> tuple[Cost, Cost]:
        """(spent, reserved): this object's, or every process's for a named budget."""
        if self._store is not None:
            status = self._store.status()
            return (
                Cost(status.spent["actions"], status.spent["data_credits"]),
                Cost(status.held["actions"], status.held["data_credits"]),
            )
        with self._meter.lock:
            return self._meter.spent, self._meter.reserved

    @property
    def spent(self) -> Cost:
        """What Clay actually charged against this budget so far."""
        return self._tally()[0]

    @property
    def cost_source(self) -> CostSource | None:
        """Where :attr:`spent` comes from: ``metered`` only when every charge was read from
        an emulator's meters, else ``estimated`` (None: nothing settled yet)."""
        with self._meter.lock:
            return CostSource.of_all(self._meter.sources)

    @property
    def capped(self) -> bool:
        """Whether any cap is set (a Budget() with none only keeps the tally)."""
        return any(getattr(self, n) is not None for n in ("actions", "data_credits", "usd"))

    @property
    def reserved(self) -> Cost:
        """Worst-case cost of work in flight right now."""
        return self._tally()[1]

    @property
    def spent_usd(self) -> float:
        return self.dollars(self.spent)

    def remaining(self) -> dict[str, float | None]:
        """What is left under each cap, counting work in flight at its worst case."""
        spent, reserved = self._tally()
        held, caps = spent + reserved, self.caps()
        used = {
            "actions": held.actions,
            "data_credits": held.data_credits,
            "usd": self.dollars(held),
        }
        return {n: None if cap is None else cap - used[n] for n, cap in caps.items()}

    def guard(self) -> LocalGuard | SharedGuard:
        """The :class:`~claynb.pipeline._work.BudgetGuard` that spends this budget: in this
        process for an unnamed one, in its shared store for a named one."""
        return LocalGuard(self) if self._store is None else SharedGuard(self, self._store)

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
        This is how an event tier's tripped credit breaker is closed again. A named budget's
        caps change for every process that shares it.
        """
        caps = {"actions": actions, "data_credits": data_credits, "usd": usd}
        for name, value in caps.items():
            if value is not None and value < 0:
                raise ValueError(f"Budget {name} must not be negative, got {value!r}")
        with self._meter.lock:
            if self._store is not None:  # for every process sharing it, at its next reservation
                kept = self._store.status().caps
                self._store.set_limits(**{n: kept[n] if v is None else v for n, v in caps.items()})
            for name, value in caps.items():
                if value is not None:
                    object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        caps = (
            _describe(self.caps()) if self._store is not None else _describe(self._declared_caps())
        )
        spent, source = self.spent, self.cost_source
        scope = (
            f"name={self.name!r}, shared by every process naming it"
            if self._store is not None
            else "unnamed: this object only, in this process"
        )
        return (
            f"Budget({caps}; {scope}; plan={self.price.name}; spent {spent.actions:g} Actions, "
            f"{spent.data_credits:g} Data Credits, ${self.dollars(spent):.2f}"
            f"{f' ({source})' if source else ''})"
        )


class LocalGuard:
    """Reserves, settles and releases against one :class:`Budget`, atomically (a lock)."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget if budget is not None else Budget()

    @property
    def plan(self) -> Plan:
        return self.budget.price

    @property
    def capped(self) -> bool:
        return self.budget.capped

    def reserve(self, cost: Cost) -> bool:
        meter = self.budget._meter
        with meter.lock:
            if not self.budget.fits(meter.spent + meter.reserved + cost):
                return False
            meter.reserved = meter.reserved + cost
            return True

    def settle(self, reserved: Cost, actual: Cost, source: CostSource | None = None) -> None:
        meter = self.budget._meter
        with meter.lock:
            meter.reserved = _floor(meter.reserved + reserved * -1)
            meter.spent = meter.spent + actual
            # A reservation kept at its worst case (an unknown outcome) is an estimate too.
            meter.sources.add(source or CostSource.ESTIMATED)

    def release(self, reserved: Cost) -> None:
        meter = self.budget._meter
        with meter.lock:
            meter.reserved = _floor(meter.reserved + reserved * -1)

    def affordable(self, unit: Cost, n: int) -> int:
        """How many of ``n`` rows costing ``unit`` each could be reserved right now."""
        meter = self.budget._meter
        with meter.lock:
            held = meter.spent + meter.reserved
        return _affordable(self.budget.fits, held, unit, n)


class SharedGuard:
    """Reserves, settles and releases against a named :class:`Budget` in its shared store
    (each verb one SQLite transaction or one Redis script: atomic across processes)."""

    def __init__(self, budget: Budget, store: SharedStore) -> None:
        self.budget, self.store = budget, store

    @property
    def plan(self) -> Plan:
        return self.budget.price

    def reserve(self, cost: Cost) -> bool:
        return self.store.reserve(cost)

    def settle(self, reserved: Cost, actual: Cost, source: Any = None) -> None:
        """Replace a reservation by what Clay charged. ``source`` (metered or estimated) is
        not kept: a shared budget keeps amounts, as the Redis one does; the ledger says."""
        self.store.settle(reserved, actual)

    def release(self, reserved: Cost) -> None:
        self.store.release(reserved)

    def affordable(self, unit: Cost, n: int) -> int:
        """How many of ``n`` rows costing ``unit`` each the shared budget could hold now."""
        status = self.store.status()
        held = Cost(
            status.held["actions"] + status.spent["actions"],
            status.held["data_credits"] + status.spent["data_credits"],
        )
        return _affordable(lambda cost: _fits(status.caps, self.plan, cost), held, unit, n)


def _close(store: SqliteBudget | None) -> None:
    if store is not None:
        store.close()


def _describe(caps: Caps) -> str:
    return ", ".join(f"{n}={v:g}" for n, v in caps.items() if v is not None) or "unlimited"


def _same(a: Caps, b: Caps) -> bool:
    return all(
        (a[n] is None) == (b[n] is None) and _within(abs((a[n] or 0) - (b[n] or 0)), 0) for n in a
    )


def check_priced(routine: Routine, budget: Budget | None) -> None:
    """Refuse a capped budget for a routine whose worst case nobody declared: there is
    nothing to reserve, so the cap could be passed without a word."""
    if budget is not None and budget.capped and not routine.priced:
        raise ConfigError(
            f"{budget!r} cannot hold routine {routine.id!r}: it has no declared cost, so its "
            "worst case per row is unknown. Declare one with cost=claynb.Cost(actions=..., "
            'data_credits=...) or in claynb.toml ([routines."ID"] cost = {...})'
        )


def row_reservation(routine: Routine, capped: bool) -> Cost:
    """What a guard holds per row before sending: the routine's worst case. An unpriced
    routine holds nothing, which only a guard with no cap accepts (under a cap it is refused
    with the reason, by :meth:`Routine.worst_case_cost`)."""
    if routine.priced or capped:
        return routine.worst_case_cost()
    return Cost()


def _floor(cost: Cost) -> Cost:
    """Clamp float dust below zero that repeated add/subtract can leave."""
    return Cost(max(0.0, cost.actions), max(0.0, cost.data_credits))


def _affordable(fits: Callable[[Cost], bool], held: Cost, unit: Cost, n: int) -> int:
    lo, hi = 0, n
    while lo < hi:  # largest k in [0, n] with held + unit*k within the caps
        mid = (lo + hi + 1) // 2
        if fits(held + unit * mid):
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
