"""Which tier for a workload: sizing each tier by simulation, then comparing what it costs.

For a volume and a latency SLO, each tier is simulated (the queue tier once per candidate
worker count). A configuration is **feasible** when at most ``max_late_share`` of leads miss
the SLO (failures count as missed), and, when a team size is given, when its upkeep fits
that team (``Prices.min_team``), and, when a Clay budget is given, when it either caps spend
or stays within the budget uncapped. Among feasible configurations the one with the lowest
**monthly cost of ownership** wins:

    Clay bill + infrastructure + engineer upkeep + delay cost

where the delay cost is ``delay_usd_per_lead_hour`` times the hours leads spend waiting
for their result, because a lead followed up later is worth less. Nothing here looks at the
volume directly: the seed's thresholds come out of the model.

* Direct stops being feasible where its few synchronous calls saturate: Clay's 30-60 s per
  lead times a business-day peak passes what ``concurrency`` calls can carry.
* Queue beats direct as soon as direct is infeasible; it keeps winning while its polling
  delay (batching behind busy workers, results seen only at the next poll) costs less than
  the event tier's extra bus, receiver and upkeep.
* Events win when the volume is large enough that those seconds saved on every lead pay
  for the extra fixed cost, or when the SLO is too tight for polling workers.

Defaults were chosen to be plausible and to reproduce the seed's matrix; change a price,
the SLO, the rate limit or the arrival profile and the boundaries move.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from claynb._plans import Plan, get_plan
from claynb._routines import Routine
from claynb.sim._arrivals import ArrivalProfile, as_profile
from claynb.sim._cost import DAYS_PER_MONTH, Prices, infra_lines
from claynb.sim._result import SimResult
from claynb.sim._simulate import machines, simulate
from claynb.sim._tiers import TIERS, ClayBehaviour, RunLatency, Tier, make_tier

COMPLEXITY = {"direct": "low", "queue": "medium", "events": "high"}
COST_CONTROL = {
    "direct": "manual (no cap)",
    "queue": "budget cap",
    "events": "credit circuit breaker",
}
WORKER_OPTIONS = (1, 2, 4, 8, 16, 32, 64)
MIN_LEADS = 20_000  # enough leads per simulation for a stable late share at low volumes
MAX_DAYS = 30.0
_UNSET: Any = object()


@dataclass(frozen=True)
class Scenario:
    """Everything but volume and SLO that a decision depends on."""

    arrivals: ArrivalProfile = field(default_factory=ArrivalProfile)
    clay: ClayBehaviour = field(default_factory=ClayBehaviour)
    prices: Prices = field(default_factory=Prices)
    plan: Plan = field(default_factory=lambda: get_plan("growth"))
    routine: str | Routine = "enrich-person"
    tiers: tuple[Tier, ...] = field(default_factory=lambda: tuple(make_tier(t) for t in TIERS))
    worker_options: tuple[int, ...] = WORKER_OPTIONS
    max_late_share: float = 0.05
    delay_usd_per_lead_hour: float = 1.0
    team_size: int | None = None
    monthly_budget_usd: float | None = None
    seed: int = 0


def make_scenario(
    *,
    arrivals: ArrivalProfile | str | None = None,
    clay: ClayBehaviour | None = None,
    prices: Prices | None = None,
    plan: str | Plan = "growth",
    tiers: dict[str, Tier] | None = None,
    rate_limit_rps: Any = _UNSET,
    run_latency: RunLatency | tuple[float, float] | None = None,
    **options: Any,
) -> Scenario:
    """A :class:`Scenario` from the keyword arguments the public functions take.

    ``rate_limit_rps`` and ``run_latency`` are shortcuts into ``clay``; ``tiers`` maps a tier
    name to a model (``{"queue": QueueTier(poll_interval_s=10)}``).
    """
    unknown = set(options) - set(Scenario.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    models = tuple((tiers or {}).get(t, make_tier(t)) for t in TIERS)
    behaviour = clay or ClayBehaviour()
    if rate_limit_rps is not _UNSET:
        behaviour = replace(behaviour, rate_limit_rps=rate_limit_rps)
    if isinstance(run_latency, tuple):
        run_latency = RunLatency("uniform", low=float(run_latency[0]), high=float(run_latency[1]))
    if run_latency is not None:
        behaviour = replace(behaviour, run_latency=run_latency)
    values = {
        k: v
        for k, v in options.items()
        if v is not None or k in ("team_size", "monthly_budget_usd")
    }
    return Scenario(
        arrivals=as_profile(arrivals),
        clay=behaviour,
        prices=prices or Prices(),
        plan=get_plan(plan),
        tiers=models,
        **values,
    )


def simulated_days(volume_per_day: float) -> float:
    """A horizon long enough for a stable estimate, at most a month."""
    return float(np.clip(MIN_LEADS / max(volume_per_day, 1.0), 1.0, MAX_DAYS))


def _candidates(tier: Tier, scenario: Scenario) -> list[Tier]:
    if tier.name != "queue":
        return [tier]
    return [make_tier(tier, workers=w) for w in scenario.worker_options]


def run_candidates(volume_per_day: float, scenario: Scenario) -> list[SimResult]:
    """One simulation per tier configuration worth considering at this volume."""
    days = simulated_days(volume_per_day)
    results = []
    for tier in scenario.tiers:
        for model in _candidates(tier, scenario):
            results.append(
                simulate(
                    model,
                    volume_per_day,
                    days=days,
                    arrivals=scenario.arrivals,
                    clay=scenario.clay,
                    routine=scenario.routine,
                    plan=scenario.plan,
                    monthly_budget_usd=scenario.monthly_budget_usd,
                    prices=scenario.prices,
                    seed=scenario.seed,
                )
            )
    return results


def delay_usd(result: SimResult, scenario: Scenario) -> float:
    """What the month's waiting costs: lead-hours of latency times the hourly value lost."""
    lat = result.completed_latency_s
    hours = float(lat.sum()) / 3600.0 * DAYS_PER_MONTH / result.days
    return hours * scenario.delay_usd_per_lead_hour


def assess(result: SimResult, slo_s: float, scenario: Scenario) -> dict[str, Any]:
    """One configuration's row: its latency, cost of ownership, and why it may not fit."""
    tier = result.tier.name
    late = result.late_share_at(slo_s)
    prices = scenario.prices
    problems = []
    if late > scenario.max_late_share:
        problems.append(
            f"{late:.1%} of leads would miss the {slo_s:g} s SLO "
            f"(at most {scenario.max_late_share:.0%} allowed)"
        )
    if scenario.team_size is not None and prices.min_team(tier) > scenario.team_size:
        problems.append(
            f"needs about {prices.min_team(tier)} people for its "
            f"{prices.upkeep_hours(tier):g} h/month of upkeep; the team has {scenario.team_size}"
        )
    if (
        scenario.monthly_budget_usd is not None
        and not result.tier.budget_capped
        and result.overspend_usd > 0
    ):
        problems.append(
            f"has no budget cap and would overspend the ${scenario.monthly_budget_usd:,.0f} "
            f"budget by ${result.overspend_usd:,.0f} a month"
        )
    delay = delay_usd(result, scenario)
    # Priced here, not taken from the result, so one set of simulations serves any prices.
    infra = sum(infra_lines(tier, machines(result.tier), prices).values())
    ops = prices.upkeep_hours(tier) * prices.engineer_usd_hour
    return {
        "tier": tier,
        "workers": result.tier.servers
        if tier != "events"
        else getattr(result.tier, "consumers", 0),
        "p50_s": result.p50,
        "p95_s": result.p95,
        "late_share": late,
        "clay_usd": result.clay_usd,
        "infra_usd": infra,
        "ops_usd": ops,
        "delay_usd": delay,
        "total_usd": result.clay_usd + infra + ops + delay,
        "overspend_usd": result.overspend_usd,
        "complexity": COMPLEXITY[tier],
        "min_team": prices.min_team(tier),
        "cost_control": COST_CONTROL[tier],
        "feasible": not problems,
        "problems": "; ".join(problems),
    }


def best_per_tier(results: list[SimResult], slo_s: float, scenario: Scenario) -> pd.DataFrame:
    """For each tier, its cheapest feasible configuration (or its least-late one)."""
    rows = pd.DataFrame([assess(r, slo_s, scenario) for r in results])
    rows = rows.sort_values(
        ["tier", "feasible", "total_usd", "late_share"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    best = rows.groupby("tier", sort=False).head(1)
    return best.set_index("tier").reindex([t for t in TIERS if t in set(best["tier"])])


def choose(best: pd.DataFrame) -> str:
    """The recommended tier: the cheapest feasible one, else the one that misses least."""
    feasible = best[best["feasible"]]
    if len(feasible):
        return str(feasible["total_usd"].idxmin())
    return str(best.sort_values(["late_share", "total_usd"]).index[0])


def with_options(scenario: Scenario, **changes: Any) -> Scenario:
    return replace(scenario, **changes)
