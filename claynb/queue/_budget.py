"""One budget shared by every worker, on every machine, through Redis.

The cap is held in a Redis hash next to what is reserved (``held``) and what Clay charged
(``spent``). A Lua script checks and reserves in one step, so two workers can never both
see the same last credit: Redis runs a script atomically, and no other command runs
between the check and the increment. Amounts are stored as integers in thousandths (and
dollars in millionths) so that sums stay exact however many half-credit items add up.

A record whose caps were never written (a Redis restarted without its data, a budget
``reset``, a worker settling into a record its application has not set up) is not a
budget without limits: every reservation against it is refused until :meth:`set_limits`
writes the caps, and with them the :data:`CAPS_KNOWN` field. "No cap" is only ever what
someone said, never what went missing.
"""

from __future__ import annotations

from typing import Any

from claynb._plans import Plan, get_plan
from claynb._routines import Cost
from claynb.pipeline._budget_store import METERS, SCALE, BudgetStatus
from claynb.pipeline._work import CostSource

#: The hash field :meth:`RedisBudgetGuard.set_limits` writes with the caps. Without it the
#: caps are unknown and nothing is reserved: a lost cap never reads as no cap.
CAPS_KNOWN = "caps_known"

# KEYS[1] the budget hash. ARGV: amounts a, c, u (scaled ints). Returns 1 when reserved,
# 0 when a cap would be crossed, -1 when the caps are unknown.
_RESERVE = """
local key = KEYS[1]
if redis.call('HGET', key, '$CAPS_KNOWN') ~= '1' then return -1 end
local meters = {'a', 'c', 'u'}
for i, m in ipairs(meters) do
  local cap = redis.call('HGET', key, 'cap_' .. m)
  if cap then
    local used = tonumber(redis.call('HGET', key, 'held_' .. m) or '0')
               + tonumber(redis.call('HGET', key, 'spent_' .. m) or '0')
    if used + tonumber(ARGV[i]) > tonumber(cap) then
      return 0
    end
  end
end
for i, m in ipairs(meters) do
  redis.call('HINCRBY', key, 'held_' .. m, ARGV[i])
end
return 1
""".replace("$CAPS_KNOWN", CAPS_KNOWN)

# KEYS[1] the budget hash. ARGV: reserved a, c, u then actual a, c, u (scaled ints).
_SETTLE = """
local key = KEYS[1]
local meters = {'a', 'c', 'u'}
for i, m in ipairs(meters) do
  redis.call('HINCRBY', key, 'held_' .. m, 0 - tonumber(ARGV[i]))
  redis.call('HINCRBY', key, 'spent_' .. m, ARGV[i + 3])
end
return 1
"""


class RedisBudgetGuard:
    """A :class:`claynb.pipeline._work.BudgetGuard` whose cap every process shares through Redis.

    ``name`` picks the budget: guards built with the same connection and name share one
    cap. Caps are written only when given (or by :meth:`set_limits`), so a worker that
    opens the guard by name joins the budget its application set; until someone sets them,
    the budget refuses every reservation (see the module docstring).
    """

    def __init__(
        self,
        connection: Any,
        name: str = "default",
        *,
        actions: float | None = None,
        data_credits: float | None = None,
        usd: float | None = None,
        plan: str | Plan = "growth",
    ) -> None:
        self.connection = connection
        self.name = name
        self.key = f"claynb:budget:{name}"
        self.plan = get_plan(plan)
        self._reserve = connection.register_script(_RESERVE)
        self._settle = connection.register_script(_SETTLE)
        if actions is not None or data_credits is not None or usd is not None:
            self.set_limits(actions=actions, data_credits=data_credits, usd=usd)

    def _scaled(self, cost: Cost) -> list[int]:
        usd = self.plan.usd(cost.actions, cost.data_credits)
        values = {"a": cost.actions, "c": cost.data_credits, "u": usd}
        return [round(values[m] * SCALE[m]) for m in METERS]

    def set_limits(
        self,
        *,
        actions: float | None = None,
        data_credits: float | None = None,
        usd: float | None = None,
    ) -> None:
        """Set the caps (None removes a cap): raising one lets waiting jobs go on.

        Calling it with no cap at all says, on purpose, that the budget has no limit.
        """
        caps = {"a": actions, "c": data_credits, "u": usd}
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, CAPS_KNOWN, "1")
            for m, cap in caps.items():
                if cap is None:
                    pipe.hdel(self.key, f"cap_{m}")
                else:
                    pipe.hset(self.key, f"cap_{m}", round(cap * SCALE[m]))
            pipe.execute()

    def reserve(self, cost: Cost) -> bool:
        """Hold ``cost`` against the caps; False (and nothing held) when it would cross one,
        or while the caps are unknown."""
        return int(self._reserve(keys=[self.key], args=self._scaled(cost))) == 1

    def settle(self, reserved: Cost, actual: Cost, source: CostSource | None = None) -> None:
        """Replace a reservation by what Clay actually charged. The shared budget keeps
        amounts only: whether each was metered or estimated is on every outcome
        (``cost_source``) and in the ledger."""
        self._settle(keys=[self.key], args=self._scaled(reserved) + self._scaled(actual))

    def release(self, reserved: Cost) -> None:
        """Give a reservation back unused (the work was never sent)."""
        self.settle(reserved, Cost())

    def status(self) -> BudgetStatus:
        raw = {
            k.decode() if isinstance(k, bytes) else k: int(v)
            for k, v in self.connection.hgetall(self.key).items()
        }
        known = raw.pop(CAPS_KNOWN, 0) == 1
        names = {"a": "actions", "c": "data_credits", "u": "usd"}

        def get(prefix: str, m: str) -> float:
            return raw.get(f"{prefix}_{m}", 0) / SCALE[m]

        caps = {
            names[m]: (raw[f"cap_{m}"] / SCALE[m] if f"cap_{m}" in raw else None) for m in METERS
        }
        held = {names[m]: get("held", m) for m in METERS}
        spent = {names[m]: get("spent", m) for m in METERS}
        return BudgetStatus(caps, held, spent, known)

    def reset(self) -> None:
        """Forget the caps and everything held and spent (a new budget period); nothing is
        reserved again until :meth:`set_limits` sets the new period's caps."""
        self.connection.delete(self.key)

    def __repr__(self) -> str:
        return f"RedisBudgetGuard(name={self.name!r})"
