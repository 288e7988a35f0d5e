"""Where a named :class:`claynb.Budget` keeps its caps, what is held and what was spent.

An unnamed Budget lives in one Python object. A named one is kept where every process
that opens it by name finds the same figures:

- under ``CLAYNB_HOME`` (:class:`SqliteBudget`): a row of the ``budgets`` table in the
  state file, shared by every kernel, terminal and scheduled run on this machine that
  uses that home. A reservation is one ``BEGIN IMMEDIATE`` transaction that reads the
  caps, what is held and what was spent, and adds the amount only if every cap still
  holds: SQLite lets one writer at a time through, so no two processes both see the
  same last credit.
- in Redis (:class:`claynb.queue.RedisBudgetGuard`, chosen with ``Budget(redis=...)``,
  :func:`redis_guard`): the hash the queue tier's workers already reserve from, for
  processes on several machines sharing one Redis.

Both speak the same five verbs (``reserve``, ``settle``, ``release``, ``status``,
``set_limits``) and both count in integers (thousandths of an Action or a Data Credit,
millionths of a dollar) so that any number of half-credit rows add up exactly.

A named budget is declared once, by the first process that gives its caps; a process
that names it with the same caps (or none) joins it. Naming it with *other* caps is an
error, never a silent change: raising a shared budget is a decision, made explicitly with
:meth:`claynb.Budget.set_caps`, which every process sharing it sees at its next
reservation (:meth:`SqliteBudget.declare`, :func:`declare_in_redis`).
"""

from __future__ import annotations

import importlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from claynb._plans import Plan
from claynb._routines import Cost
from claynb._sqlite import connect_wal, immediate
from claynb.wire._exceptions import ConfigError

#: Fixed-point scale per meter: Data Credits come in halves, dollars in fractions of a cent
#: (the Redis store, :mod:`claynb.queue._budget`, counts in the same units).
SCALE = {"a": 1_000, "c": 1_000, "u": 1_000_000}
METERS = ("a", "c", "u")
#: The meters' names as :class:`claynb.Budget` spells them.
NAMES = {"a": "actions", "c": "data_credits", "u": "usd"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS budgets (
    name TEXT PRIMARY KEY, plan TEXT NOT NULL, cap_a INTEGER, cap_c INTEGER, cap_u INTEGER,
    held_a INTEGER NOT NULL DEFAULT 0, held_c INTEGER NOT NULL DEFAULT 0,
    held_u INTEGER NOT NULL DEFAULT 0, spent_a INTEGER NOT NULL DEFAULT 0,
    spent_c INTEGER NOT NULL DEFAULT 0, spent_u INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class BudgetStatus:
    """A snapshot of a shared budget: caps (None = no cap), held and spent per meter.

    ``caps_known`` is False when no caps were ever set on the record (or they were lost, as
    with a Redis that restarted without its data): then nothing is left to spend, whatever
    ``caps`` says. The SQLite store always knows its caps; the Redis one may not.
    """

    caps: dict[str, float | None]
    held: dict[str, float]
    spent: dict[str, float]
    caps_known: bool = True

    def left(self, meter: str) -> float | None:
        """What ``meter`` can still spend: None for no cap, 0 while the caps are unknown."""
        if not self.caps_known:
            return 0.0
        cap = self.caps[meter]
        return None if cap is None else cap - self.held[meter] - self.spent[meter]


Caps = dict[str, float | None]


class SharedStore(Protocol):
    """What a named Budget needs of where it is kept (SQLite or Redis)."""

    def reserve(self, cost: Cost) -> bool: ...
    def settle(self, reserved: Cost, actual: Cost) -> None: ...
    def release(self, reserved: Cost) -> None: ...
    def status(self) -> BudgetStatus: ...
    def set_limits(
        self,
        *,
        actions: float | None = None,
        data_credits: float | None = None,
        usd: float | None = None,
    ) -> None: ...


def scaled(plan: Plan, cost: Cost) -> list[int]:
    """``cost`` as integers per meter (a, c, u), dollars priced under ``plan``."""
    values = {
        "a": cost.actions,
        "c": cost.data_credits,
        "u": plan.usd(cost.actions, cost.data_credits),
    }
    return [round(values[m] * SCALE[m]) for m in METERS]


def _scaled_caps(caps: Caps) -> list[int | None]:
    return [None if caps[NAMES[m]] is None else round(caps[NAMES[m]] * SCALE[m]) for m in METERS]  # type: ignore[operator]


class SqliteBudget:
    """A named budget in the state file under ``CLAYNB_HOME``; every change one transaction."""

    def __init__(self, path: Path, name: str, plan: Plan) -> None:
        self.path, self.name, self.plan = path, name, plan
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = connect_wal(path)
        self._conn.executescript(SCHEMA)

    def _write(self, sql: str, args: tuple[Any, ...]) -> list[Any] | None:
        """Run ``sql`` in one immediate transaction; its first row, if any."""
        with self._lock, immediate(self._conn) as conn:
            rows = conn.execute(sql, args).fetchall()
        return list(rows[0]) if rows else None

    def declare(self, caps: Caps) -> Caps | None:
        """Create the budget with ``caps`` unless it exists; the caps it had (None: new)."""
        with self._lock, immediate(self._conn) as conn:
            row = conn.execute(
                "SELECT cap_a, cap_c, cap_u FROM budgets WHERE name = ?", (self.name,)
            ).fetchone()
            if row is None and any(v is not None for v in caps.values()):
                conn.execute(
                    "INSERT INTO budgets (name, plan, cap_a, cap_c, cap_u, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (self.name, self.plan.name, *_scaled_caps(caps), time.time()),
                )
        if row is None:
            return None
        return {
            NAMES[m]: None if v is None else v / SCALE[m] for m, v in zip(METERS, row, strict=True)
        }

    def reserve(self, cost: Cost) -> bool:
        """Hold ``cost`` unless a cap would be crossed: checked and added in one statement."""
        a, c, u = scaled(self.plan, cost)
        row = self._write(
            "UPDATE budgets SET held_a = held_a + ?, held_c = held_c + ?, held_u = held_u + ? "
            "WHERE name = ? AND (cap_a IS NULL OR held_a + spent_a + ? <= cap_a) "
            "AND (cap_c IS NULL OR held_c + spent_c + ? <= cap_c) "
            "AND (cap_u IS NULL OR held_u + spent_u + ? <= cap_u) RETURNING 1",
            (a, c, u, self.name, a, c, u),
        )
        return row is not None

    def settle(self, reserved: Cost, actual: Cost) -> None:
        """Replace a reservation by what Clay actually charged."""
        held, spent = scaled(self.plan, reserved), scaled(self.plan, actual)
        self._write(
            "UPDATE budgets SET held_a = MAX(0, held_a - ?), held_c = MAX(0, held_c - ?), "
            "held_u = MAX(0, held_u - ?), spent_a = spent_a + ?, spent_c = spent_c + ?, "
            "spent_u = spent_u + ? WHERE name = ?",
            (*held, *spent, self.name),
        )

    def release(self, reserved: Cost) -> None:
        """Give a reservation back unused (the work was never sent)."""
        self.settle(reserved, Cost())

    def status(self) -> BudgetStatus:
        with self._lock:
            row = self._conn.execute(
                "SELECT cap_a, cap_c, cap_u, held_a, held_c, held_u, spent_a, spent_c, spent_u "
                "FROM budgets WHERE name = ?",
                (self.name,),
            ).fetchone()
        if row is None:
            raise ConfigError(f"no budget named {self.name!r} in {self.path}")
        caps = {
            NAMES[m]: None if v is None else v / SCALE[m]
            for m, v in zip(METERS, row[:3], strict=True)
        }
        held = {NAMES[m]: v / SCALE[m] for m, v in zip(METERS, row[3:6], strict=True)}
        spent = {NAMES[m]: v / SCALE[m] for m, v in zip(METERS, row[6:], strict=True)}
        return BudgetStatus(caps, held, spent)

    def set_limits(
        self,
        *,
        actions: float | None = None,
        data_credits: float | None = None,
        usd: float | None = None,
    ) -> None:
        """Set the caps (None removes a cap), keeping what is held and spent."""
        caps = _scaled_caps({"actions": actions, "data_credits": data_credits, "usd": usd})
        self._write(
            "UPDATE budgets SET cap_a = ?, cap_c = ?, cap_u = ? WHERE name = ? RETURNING 1",
            (*caps, self.name),
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteBudget(name={self.name!r}, path={str(self.path)!r})"


# KEYS[1] the budget hash. ARGV: caps a, c, u as scaled ints, '' for no cap. A budget that
# has a cap or was declared keeps its caps and returns them; else ARGV's are set (unless
# all are empty: naming a budget without caps never creates one) and 0 is returned.
_DECLARE = """
local key = KEYS[1]
local meters = {'a', 'c', 'u'}
local known = redis.call('HEXISTS', key, 'declared') == 1
for i, m in ipairs(meters) do
  if redis.call('HEXISTS', key, 'cap_' .. m) == 1 then known = true end
end
if known then
  local caps = {}
  for i, m in ipairs(meters) do caps[i] = redis.call('HGET', key, 'cap_' .. m) or '' end
  return caps
end
if ARGV[1] == '' and ARGV[2] == '' and ARGV[3] == '' then return 0 end
for i, m in ipairs(meters) do
  if ARGV[i] ~= '' then redis.call('HSET', key, 'cap_' .. m, ARGV[i]) end
end
redis.call('HSET', key, 'declared', '1')
return 0
"""


def redis_guard(redis: Any, name: str, plan: Plan) -> SharedStore:
    """The queue tier's :class:`claynb.queue.RedisBudgetGuard` for budget ``name`` (found by
    name, so the pipeline imports no tier); ``redis`` is a URL or a redis connection."""
    guard_type = importlib.import_module("claynb.queue._budget").RedisBudgetGuard
    connection = redis
    if isinstance(redis, str):
        connection = importlib.import_module("claynb.services.redis").connect(redis)
    guard: SharedStore = guard_type(connection, name, plan=plan)
    return guard


def declare_in_redis(guard: Any, caps: Caps) -> Caps | None:
    """Set ``caps`` on a Redis budget unless it already has some; the caps it had (None: new)."""
    script = guard.connection.register_script(_DECLARE)
    found = script(keys=[guard.key], args=["" if v is None else str(v) for v in _scaled_caps(caps)])
    if not isinstance(found, list):
        if any(v is not None for v in caps.values()):
            guard.set_limits(**caps)  # as the guard writes caps (and whatever it marks them with)
        return None
    return {
        NAMES[m]: None if v in (b"", "") else int(v) / SCALE[m]
        for m, v in zip(METERS, found, strict=True)
    }
