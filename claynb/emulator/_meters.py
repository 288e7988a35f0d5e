"""The workspace's two meters, Actions and Data Credits, and a record of every charge.

Clay bills an item when it finishes. The meters never go below zero: an item whose
charge would overdraw a meter is not run (Clay stops processing at zero and keeps the
rows already finished). Charges are kept as tuples, the cheapest thing to append on the
hot path, and turned into dicts only when someone asks to see them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from claynb._plans import Plan
from claynb._routines import Cost
from claynb.pipeline._work import item_key

EPSILON = 1e-9
CHARGE_FIELDS = (
    "time",
    "routine",
    "run_id",
    "item_id",
    "inputs_key",
    "actions",
    "data_credits",
    "provider",
)


@dataclass
class RoutineStats:
    """What one routine did: runs started, items by outcome, and what it charged."""

    runs: int = 0
    items: int = 0
    matched: int = 0
    no_match: int = 0
    failed: int = 0
    not_run: int = 0
    actions: float = 0.0
    data_credits: float = 0.0


class Meters:
    """Actions and Data Credits used and left under a plan. ``None`` left means unlimited.

    Not thread-safe on its own: the emulator's state holds one lock around it.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.reset()

    def reset(self) -> None:
        """Back to a fresh month: the plan's allowance, nothing used, nothing recorded."""
        self.actions_used = 0.0
        self.data_credits_used = 0.0
        self.actions_left: float | None = _allowance(self.plan.actions)
        self.data_credits_left: float | None = _allowance(self.plan.data_credits)
        self.per_routine: dict[str, RoutineStats] = {}
        self.charges: list[tuple[Any, ...]] = []
        self._keyed = 0  # charges before this index have their inputs_key computed

    def exhausted(self) -> bool:
        """True when either meter is at zero: new work is refused with 402."""
        return _at_zero(self.actions_left) or _at_zero(self.data_credits_left)

    def can_pay(self, cost: Cost) -> bool:
        return _covers(self.actions_left, cost.actions) and _covers(
            self.data_credits_left, cost.data_credits
        )

    def charge(self, cost: Cost, record: tuple[Any, ...]) -> bool:
        """Take ``cost`` off both meters and keep ``record``; False (nothing taken) if it cannot pay.

        ``record`` is a tuple in the order of :data:`CHARGE_FIELDS`, except that its
        ``inputs_key`` slot may hold the inputs dict itself: hashing it is left to the first
        :meth:`snapshot` that needs it, off the hot path of a run.
        """
        if not self.can_pay(cost):
            return False
        if cost.is_zero:
            return True
        self.actions_used += cost.actions
        self.data_credits_used += cost.data_credits
        if self.actions_left is not None:
            self.actions_left = max(0.0, self.actions_left - cost.actions)
        if self.data_credits_left is not None:
            self.data_credits_left = max(0.0, self.data_credits_left - cost.data_credits)
        self.charges.append(record)
        return True

    def stats(self, routine_id: str) -> RoutineStats:
        stats = self.per_routine.get(routine_id)
        if stats is None:
            stats = self.per_routine[routine_id] = RoutineStats()
        return stats

    def set_left(self, actions_left: float | None, data_credits_left: float | None) -> None:
        """Set what is left (tests and notebooks use it to reach zero quickly)."""
        if actions_left is not None:
            self.actions_left = max(0.0, float(actions_left))
        if data_credits_left is not None:
            self.data_credits_left = max(0.0, float(data_credits_left))

    def top_up(self, actions: float, data_credits: float) -> None:
        """Add to what is left, as a Clay top-up does. Unlimited meters stay unlimited."""
        if self.actions_left is not None:
            self.actions_left += max(0.0, float(actions))
        if self.data_credits_left is not None:
            self.data_credits_left += max(0.0, float(data_credits))

    def left(self) -> dict[str, Any]:
        """What is left on each meter (None: unlimited)."""
        return {
            "actions_left": None if self.actions_left is None else _num(self.actions_left),
            "data_credits_left": None
            if self.data_credits_left is None
            else _num(self.data_credits_left),
        }

    def snapshot(self, *, charges: bool = True) -> dict[str, Any]:
        """The meters as plain JSON-ready data."""
        out: dict[str, Any] = {
            "plan": self.plan.name,
            "actions_used": _num(self.actions_used),
            "data_credits_used": _num(self.data_credits_used),
            **self.left(),
            "per_routine": {
                rid: {k: _num(v) for k, v in asdict(s).items()}
                for rid, s in sorted(self.per_routine.items())
            },
            "charge_count": len(self.charges),
        }
        if charges:
            self._key_charges()
            out["charges"] = [dict(zip(CHARGE_FIELDS, c, strict=True)) for c in self.charges]
        return out

    def _key_charges(self) -> None:
        """Replace inputs dicts kept by :meth:`charge` with their ``item_key``, once each."""
        charges = self.charges
        for index in range(self._keyed, len(charges)):
            record = charges[index]
            if isinstance(record[4], dict):
                charges[index] = (*record[:4], item_key(record[1], record[4]), *record[5:])
        self._keyed = len(charges)


def _allowance(amount: float | None) -> float | None:
    return None if amount is None else float(amount)


def _at_zero(left: float | None) -> bool:
    return left is not None and left <= EPSILON


def _covers(left: float | None, amount: float) -> bool:
    return left is None or amount <= left + EPSILON


def _num(value: Any) -> Any:
    """Whole floats as ints, so meters read 12 rather than 12.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
