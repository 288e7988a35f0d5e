"""What a month costs: Clay's bill, the infrastructure, and the people who keep it running.

Three lines, kept apart because different people pay them:

* **Clay**: the plan price plus top-ups at +30% for whatever the month uses beyond the plan
  and the credits rolled over (``claynb.Plan.monthly_bill``). A budget cap stops sending
  once the bill would pass the budget; without a cap (the direct tier) the month simply
  overspends, and that overspend is reported.
* **Infrastructure**: workers, Redis, the event bus, the webhook receiver, at monthly
  prices the user sets in :class:`Prices` (defaults are small managed services).
* **Operations**: engineer hours a tier takes each month to keep healthy (upgrades, alerts,
  the dead-letter queue), priced by the hour. This is the "complexity" row of the usual
  matrix turned into money; it also sets the smallest team that can own the tier.

The decision matrix adds a fourth, the cost of delay (``delay_usd_per_lead_hour``): a lead
followed up later converts less, so a faster tier can pay for itself at volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from claynb._plans import TOP_UP_PREMIUM, Plan

DAYS_PER_MONTH = 30.0


@dataclass(frozen=True)
class Prices:
    """Monthly prices of everything around Clay, all settable.

    Upkeep hours are per month for the tier as a whole; ``hours_per_person_month`` is the
    share of one engineer's month a team can give to running enrichment infrastructure,
    which turns upkeep into a minimum team size.
    """

    worker_usd_month: float = 25.0
    redis_usd_month: float = 30.0
    consumer_usd_month: float = 25.0
    event_bus_usd_month: float = 250.0
    receiver_usd_month: float = 25.0
    app_usd_month: float = 0.0
    engineer_usd_hour: float = 100.0
    direct_upkeep_hours: float = 2.0
    queue_upkeep_hours: float = 18.0
    events_upkeep_hours: float = 60.0
    hours_per_person_month: float = 6.0

    def upkeep_hours(self, tier: str) -> float:
        return float(getattr(self, f"{tier}_upkeep_hours"))

    def min_team(self, tier: str) -> int:
        """People needed so the tier's upkeep fits the time a team can give it."""
        return max(1, int(np.ceil(self.upkeep_hours(tier) / self.hours_per_person_month - 1e-9)))


def infra_lines(tier: str, servers: int, prices: Prices) -> dict[str, float]:
    """Monthly infrastructure dollars by line for a tier sized with ``servers``."""
    if tier == "direct":
        return {"app": prices.app_usd_month}
    if tier == "queue":
        return {"workers": servers * prices.worker_usd_month, "redis": prices.redis_usd_month}
    return {
        "consumers": servers * prices.consumer_usd_month,
        "event bus": prices.event_bus_usd_month,
        "webhook receiver": prices.receiver_usd_month,
    }


def month_bill(plan: Plan, actions: float, credits: float, rollover: float = 0.0) -> float:
    """:func:`bill_curve` for one month's totals (the simulations' own figure, to the bit)."""
    return float(bill_curve(plan, np.array([actions]), np.array([credits]), rollover)[0])


def bill_curve(
    plan: Plan, actions: np.ndarray, credits: np.ndarray, rollover: float = 0.0
) -> np.ndarray:
    """``plan.monthly_bill`` for many (Actions, Data Credits) month totals at once."""
    extra_a = np.maximum(0.0, actions - plan.actions) if plan.actions else np.zeros_like(actions)
    if plan.data_credits:
        extra_c = np.maximum(0.0, credits - plan.data_credits - rollover)
    else:
        extra_c = np.zeros_like(credits)
    rate = 1.0 + TOP_UP_PREMIUM
    return plan.monthly_usd + rate * (
        extra_a * plan.usd_per_action + extra_c * plan.usd_per_data_credit
    )


def leads_within_budget(
    plan: Plan,
    lead_actions: np.ndarray,
    lead_credits: np.ndarray,
    budget_usd: float,
    month_scale: float,
    rollover: float = 0.0,
) -> int:
    """How many leads, in order, a budget cap lets through before the bill would pass it.

    ``month_scale`` turns the simulated horizon into a month (30 / days), so a cap on a
    month's bill is applied pro rata to a shorter run. Processing stops at the first lead
    that would cross, as Clay does when a meter runs out.
    """
    bills = bill_curve(
        plan, np.cumsum(lead_actions) * month_scale, np.cumsum(lead_credits) * month_scale, rollover
    )
    over = np.flatnonzero(bills > budget_usd + 1e-9)
    return int(over[0]) if over.size else int(lead_actions.size)
