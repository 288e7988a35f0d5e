"""What the dashboards show, as plain functions of the slider values.

``simulator_view(settings)`` returns the simulator's figure and table, ``matrix_grid(settings)``
the decision grid and the recommendation at your point; ``claynb.sim._widgets`` only wires
sliders to them and keeps the pictures (``_pictures``, ``_heatmap``), which redraw in place.
Both take what was simulated before (a memo, a ``SimulationCache``), because a slider usually
changes one thing: the SLO, the prices, the team or (without a budget) the plan only re-price
what was simulated, and a worker count only re-simulates the queue tier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from claynb._plans import get_plan
from claynb.sim._arrivals import ArrivalProfile
from claynb.sim._cost import Prices
from claynb.sim._decide import SimulationCache, make_scenario
from claynb.sim._matrix import Recommendation, assess_grid, recommend, simulate_grid
from claynb.sim._pictures import SimulatorPicture
from claynb.sim._result import SimResult
from claynb.sim._simulate import simulate
from claynb.sim._tiers import TIERS, ClayBehaviour
from claynb.sim._units import count, duration, money, share

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIMULATOR_DEFAULTS: dict[str, Any] = {
    "volume_per_day": 10_000,
    "burstiness": 0.0,
    "workers": 4,
    "rate_limit_rps": 10.0,
    "slo_s": 300.0,
    "plan": "growth",
    "monthly_budget_usd": 0.0,
    "days": 1.0,
}
MATRIX_DEFAULTS: dict[str, Any] = {
    "volume_per_day": 20_000,
    "slo_s": 300.0,
    "team_size": 5,
    "monthly_budget_usd": 0.0,
    "burstiness": 0.0,
    "rate_limit_rps": 10.0,
    "plan": "growth",
    "delay_usd_per_lead_hour": 1.0,
    "engineer_usd_hour": 100.0,
    "worker_usd_month": 25.0,
}
MATRIX_VOLUMES = (200, 500, 1_000, 2_000, 5_000, 20_000, 50_000, 100_000, 200_000)
MATRIX_SLOS = (60, 120, 300, 900, 3_600)
MEMO_SIZE = 12  # simulator results kept for moving a slider back
# What each simulator tier's simulation depends on (the SLO only re-reads it, and without a
# budget the plan only re-bills it).
_TIER_INPUTS = ("volume_per_day", "days", "burstiness", "rate_limit_rps")


def budget_or_none(value: float) -> float | None:
    return float(value) if value and value > 0 else None


def _tier_key(tier: str, s: dict[str, Any]) -> tuple[Any, ...]:
    workers = int(s["workers"]) if tier == "queue" else None
    budget = budget_or_none(s["monthly_budget_usd"])
    plan = s["plan"] if budget is not None else None
    return (tier, workers, budget, plan, *(s[k] for k in _TIER_INPUTS))


def simulate_tiers(
    settings: dict[str, Any], memo: dict[tuple[Any, ...], SimResult] | None = None
) -> list[SimResult]:
    """Each tier under the slider settings; ``memo`` keeps them between redraws."""
    s = {**SIMULATOR_DEFAULTS, **settings}
    memo = memo if memo is not None else {}
    clay = ClayBehaviour(rate_limit_rps=s["rate_limit_rps"] or None)
    arrivals = ArrivalProfile(burstiness=float(s["burstiness"]))
    results = []
    for t in TIERS:
        key = _tier_key(t, s)
        if key in memo:
            memo[key] = memo.pop(key)  # most recently used last
        else:
            memo[key] = simulate(
                t,
                float(s["volume_per_day"]),
                days=float(s["days"]),
                arrivals=arrivals,
                clay=clay,
                workers=int(s["workers"]) if t == "queue" else None,
                plan=s["plan"],
                monthly_budget_usd=budget_or_none(s["monthly_budget_usd"]),
                slo_s=float(s["slo_s"]),
            )
        result = memo[key]
        if result.plan != get_plan(s["plan"]):  # only without a budget: see _tier_key
            result = memo[key] = result.billed_under(get_plan(s["plan"]))
        results.append(result.at_slo(float(s["slo_s"])))
    while len(memo) > MEMO_SIZE:  # a month at 300K a day is ~9M leads a tier: keep few
        del memo[next(iter(memo))]
    return results


def simulator_view(
    settings: dict[str, Any],
    memo: dict[tuple[Any, ...], SimResult] | None = None,
    picture: SimulatorPicture | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Every tier under the slider settings: latency histograms, queue depth, monthly cost.

    Pass the ``picture`` of the previous call and it is updated in place.
    """
    results = simulate_tiers(settings, memo)
    picture = picture if picture is not None else SimulatorPicture()
    picture.show(results)
    table = pd.DataFrame({r.tier.name: r.summary() for r in results}).drop(index="tier")
    return picture.figure, table


def simulator_headline(results_table: pd.DataFrame) -> list[str]:
    """One line a tier: how late, how slow, what it costs a month."""
    lines = []
    for tier in results_table.columns:
        col = results_table[tier]
        held = (
            f"; {count(col['over_budget'])} leads held back by the budget"
            if col["over_budget"]
            else ""
        )
        lines.append(
            f"<b>{tier}</b>: {share(col['late_share'])} miss the {duration(col['slo_s'])} "
            f"target; typically {duration(col['p50_s'])}, slow {duration(col['p95_s'])}; "
            f"{money(col['total_usd_month'])}{held}"
        )
    return lines


def matrix_options(s: dict[str, Any]) -> dict[str, Any]:
    """The matrix sliders as the keyword arguments of ``recommend`` and ``decision_grid``."""
    prices = Prices(
        engineer_usd_hour=float(s["engineer_usd_hour"]),
        worker_usd_month=float(s["worker_usd_month"]),
    )
    return {
        "arrivals": ArrivalProfile(burstiness=float(s["burstiness"])),
        "clay": ClayBehaviour(rate_limit_rps=s["rate_limit_rps"] or None),
        "plan": s["plan"],
        "prices": prices,
        "delay_usd_per_lead_hour": float(s["delay_usd_per_lead_hour"]),
        "team_size": int(s["team_size"]) if s["team_size"] else None,
        "monthly_budget_usd": budget_or_none(s["monthly_budget_usd"]),
    }


def matrix_needs_simulation(
    settings: dict[str, Any],
    cache: SimulationCache,
    volumes: tuple[float, ...] = MATRIX_VOLUMES,
) -> bool:
    """Whether the next ``matrix_grid`` has simulations to run (worth a progress bar)."""
    s = {**MATRIX_DEFAULTS, **settings}
    scenario = make_scenario(**matrix_options(s))
    return not all(cache.has(float(v), scenario) for v in (*volumes, s["volume_per_day"]))


def matrix_grid(
    settings: dict[str, Any],
    cache: SimulationCache | None = None,
    volumes: tuple[float, ...] = MATRIX_VOLUMES,
    slos: tuple[float, ...] = MATRIX_SLOS,
    progress: Any = None,
) -> tuple[pd.DataFrame, Recommendation]:
    """The grid behind the heatmap, and the recommendation at your point with its reasons.

    Pass the same ``cache`` between calls: while only prices, team, delay value, SLO, plan
    (without a budget) or your point move, the grid is re-priced, not re-simulated.
    """
    s = {**MATRIX_DEFAULTS, **settings}
    options = matrix_options(s)
    cache = cache if cache is not None else SimulationCache()
    scenario = make_scenario(**options)
    point = (float(s["volume_per_day"]), float(s["slo_s"]))
    cache.fill((*volumes, point[0]), scenario, progress, slos=(*slos, point[1]))  # at once
    grid = assess_grid(simulate_grid(volumes, scenario, cache), slos, scenario)
    rec = recommend(*point, cache=cache, **options)
    return grid, rec
