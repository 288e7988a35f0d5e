"""Clay's plans and what their meters cost in dollars.

Figures are Clay's published monthly plans (clay.com/pricing, read 2026-08-14, as recorded
in shared/clay-reference/plans-pricing.yml). Clay sells the two meters together, so the
dollar price of one Action or one Data Credit is an attribution, not a published number:
``action_share`` of the plan price is spread over its Actions and the rest over its Data
Credits. Top-ups cost 30% more than the plan's own rate; monthly plans roll unused credits
over up to 2x the monthly amount.
"""

from __future__ import annotations

from dataclasses import dataclass

TOP_UP_PREMIUM = 0.30
ROLLOVER_CAP = 2.0


@dataclass(frozen=True)
class Plan:
    """A Clay plan: monthly price and included meters.

    ``actions`` or ``data_credits`` of ``None`` means unlimited (Enterprise, custom).
    ``rows_per_table`` is how many rows a table holds (Free 200, paid plans 50,000); a
    full table silently stops accepting rows.
    """

    name: str
    monthly_usd: float
    actions: float | None
    data_credits: float | None
    action_share: float = 0.25
    tables_api: bool = False
    rows_per_table: int = 50_000

    @property
    def usd_per_action(self) -> float:
        if not self.actions:
            return 0.0
        return self.monthly_usd * self.action_share / self.actions

    @property
    def usd_per_data_credit(self) -> float:
        if not self.data_credits:
            return 0.0
        return self.monthly_usd * (1.0 - self.action_share) / self.data_credits

    def usd(self, actions: float, data_credits: float, *, top_up: bool = False) -> float:
        """Dollars that these Actions and Data Credits stand for under this plan."""
        rate = 1.0 + TOP_UP_PREMIUM if top_up else 1.0
        return rate * (actions * self.usd_per_action + data_credits * self.usd_per_data_credit)

    def monthly_bill(self, actions: float, data_credits: float, rollover: float = 0.0) -> float:
        """The plan price plus top-ups at +30% for whatever the month used beyond it."""
        extra_a = max(0.0, actions - (self.actions or actions))
        extra_c = max(0.0, data_credits - (self.data_credits or data_credits) - rollover)
        return self.monthly_usd + self.usd(extra_a, extra_c, top_up=True)


PLANS: dict[str, Plan] = {
    "free": Plan("free", 0.0, 500, 100, rows_per_table=200),
    "launch": Plan("launch", 185.0, 15_000, 3_000),
    "growth": Plan("growth", 495.0, 40_000, 6_000),
    # Enterprise is custom: these are a placeholder large workspace, priced like Growth.
    "enterprise": Plan("enterprise", 2_000.0, 200_000, 50_000, tables_api=True),
}


def get_plan(plan: str | Plan) -> Plan:
    """A plan by name (free, launch, growth, enterprise) or a custom :class:`Plan`."""
    if isinstance(plan, Plan):
        return plan
    try:
        return PLANS[plan.lower()]
    except KeyError:
        raise ValueError(
            f"unknown plan {plan!r}; choose one of {', '.join(PLANS)} or pass a claynb.Plan"
        ) from None
