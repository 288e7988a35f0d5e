"""The decision matrix, computed: which tier for which volume and latency SLO, and why.

``decision_grid`` evaluates every cell of a volume x SLO grid (see ``_decide`` for the model);
``thresholds`` finds where the recommendation changes along the volume axis by bisection;
``decision_matrix`` lays the result out like the seed's table (tiers against volume,
latency, cost, cost control, complexity and team size); ``plot_decision_matrix`` draws the
grid as a heatmap; ``recommend`` answers for one team.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from claynb.sim._decide import Scenario, best_per_tier, choose, make_scenario, run_candidates
from claynb.sim._result import TIER_COLOURS, SimResult
from claynb.sim._tiers import TIERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DEFAULT_VOLUMES = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000)
DEFAULT_SLOS = (60, 90, 120, 300, 900, 3_600)
LATENCY_CLASS = {"direct": "sync", "queue": "async", "events": "async"}


def decision_grid(
    volumes: Sequence[float] = DEFAULT_VOLUMES, slos: Sequence[float] = DEFAULT_SLOS, **options: Any
) -> pd.DataFrame:
    """Every tier's best configuration in every (volume, SLO) cell, and the recommended one.

    ``options`` are those of :func:`recommend` (``arrivals``, ``clay``, ``prices``, ``plan``,
    ``tiers``, ``team_size``, ``monthly_budget_usd``, ``delay_usd_per_lead_hour``, ...).
    """
    scenario = make_scenario(**options)
    return assess_grid(simulate_grid(volumes, scenario), slos, scenario)


def simulate_grid(volumes: Sequence[float], scenario: Scenario) -> dict[float, list[SimResult]]:
    """The simulations behind a grid, by volume. They do not depend on the SLO, the prices,
    the team or the delay value, so a dashboard can keep them while those sliders move."""
    return {float(v): run_candidates(float(v), scenario) for v in volumes}


def assess_grid(
    simulated: dict[float, list[SimResult]], slos: Sequence[float], scenario: Scenario
) -> pd.DataFrame:
    """The grid from simulations already run: cheap, it only prices and compares."""
    frames = []
    for volume, results in simulated.items():
        for slo in slos:
            best = best_per_tier(results, float(slo), scenario).reset_index()
            best["recommended"] = best["tier"] == choose(best.set_index("tier"))
            best.insert(0, "slo_s", float(slo))
            best.insert(0, "volume_per_day", float(volume))
            frames.append(best)
    return pd.concat(frames, ignore_index=True)


def _recommended_at(volume: float, slo_s: float, scenario: Scenario) -> str:
    return choose(best_per_tier(run_candidates(volume, scenario), slo_s, scenario))


def _first_volume(predicate: Any, lo: float, hi: float, steps: int) -> float:
    """Smallest volume in [lo, hi] (log bisection) where ``predicate`` turns true, else nan."""
    if predicate(lo):
        return lo
    if not predicate(hi):
        return math.nan
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if predicate(mid) else (mid, hi)
    return math.sqrt(lo * hi)


def thresholds(
    latency_slo_s: float = 300.0,
    *,
    low: float = 100.0,
    high: float = 300_000.0,
    steps: int = 7,
    which: Sequence[str] = ("direct_to_queue", "queue_to_events"),
    **options: Any,
) -> dict[str, float]:
    """Volumes per day where direct gives way to another tier, and where events take over.

    Log bisection between ``low`` and ``high``; ``nan`` when a boundary is not in that range.
    ``which`` picks the boundaries to find (the queue-to-events search starts at ``low``
    when the direct one is not asked for).
    """
    unknown = set(which) - {"direct_to_queue", "queue_to_events"}
    if unknown:
        raise ValueError(f"unknown boundary: {', '.join(sorted(unknown))}")
    scenario = make_scenario(**options)
    cache: dict[float, str] = {}

    def tier_at(volume: float) -> str:
        if volume not in cache:
            cache[volume] = _recommended_at(volume, latency_slo_s, scenario)
        return cache[volume]

    edges: dict[str, float] = {}
    start = low
    if "direct_to_queue" in which:
        edges["direct_to_queue"] = _first_volume(lambda v: tier_at(v) != "direct", low, high, steps)
        start = edges["direct_to_queue"] if not math.isnan(edges["direct_to_queue"]) else low
    if "queue_to_events" in which:
        edges["queue_to_events"] = _first_volume(
            lambda v: tier_at(v) == "events", start, high, steps
        )
    return edges


def sensitivity(
    variants: dict[str, dict[str, Any]], latency_slo_s: float = 300.0, steps: int = 6
) -> pd.DataFrame:
    """Where the tier boundaries fall under each named set of options, one row per variant.

    ``sensitivity({"defaults": {}, "delay $3/lead-hour": {"delay_usd_per_lead_hour": 3}})``
    """
    rows = {
        name: thresholds(options.pop("latency_slo_s", latency_slo_s), steps=steps, **options)
        for name, options in ((n, dict(o)) for n, o in variants.items())
    }
    return pd.DataFrame(rows).T.round(0)


def _fmt_volume(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v / 1000:.3g}K" if v >= 1000 else f"{v:.0f}"


def decision_matrix(
    volume_per_day: float | None = None,
    latency_slo_s: float = 300.0,
    *,
    steps: int = 7,
    **options: Any,
) -> pd.DataFrame:
    """The seed's decision matrix, computed: factors down the side, tiers across.

    Volume ranges come from :func:`thresholds`; latency and cost are each tier's best
    configuration at ``volume_per_day`` (default: the middle of the queue tier's range).
    The thresholds are also in ``frame.attrs["thresholds"]``; ``steps`` is the bisection depth.
    """
    edges = thresholds(latency_slo_s, steps=steps, **options)
    low, high = edges["direct_to_queue"], edges["queue_to_events"]
    if volume_per_day is None:
        volume_per_day = (
            math.sqrt(low * high) if not (math.isnan(low) or math.isnan(high)) else 10_000.0
        )
    scenario = make_scenario(**options)
    here = best_per_tier(run_candidates(float(volume_per_day), scenario), latency_slo_s, scenario)
    typical = _typical_volumes(low, high)
    own = {
        t: best_per_tier(run_candidates(typical[t], scenario), latency_slo_s, scenario).loc[t]
        for t in TIERS
    }
    ranges = {
        "direct": f"< {_fmt_volume(low)}/day",
        "queue": f"{_fmt_volume(low)}-{_fmt_volume(high)}/day",
        "events": f"{_fmt_volume(high)}+/day",
    }
    teams = [int(here.loc[t, "min_team"]) for t in TIERS]
    team_text = [
        f"{teams[i]}-{teams[i + 1]}" if i + 1 < len(TIERS) else f"{teams[i]}+"
        for i in range(len(TIERS))
    ]
    table = {
        "Volume": [ranges[t] for t in TIERS],
        "Latency": [
            f"{LATENCY_CLASS[t]}: p50 {own[t]['p50_s']:.0f} s, p95 {own[t]['p95_s']:.0f} s "
            f"at {_fmt_volume(typical[t])}/day"
            for t in TIERS
        ],
        f"Cost at {_fmt_volume(volume_per_day)}/day": [_cost_text(here.loc[t]) for t in TIERS],
        "Cost control": [str(here.loc[t, "cost_control"]) for t in TIERS],
        "Complexity": [
            f"{here.loc[t, 'complexity']} ({scenario.prices.upkeep_hours(t):g} h/month)"
            for t in TIERS
        ],
        "Team size": team_text,
    }
    frame = pd.DataFrame(table, index=list(TIERS)).T
    frame.columns.name = "tier"
    frame.attrs["thresholds"] = edges
    frame.attrs["volume_per_day"] = volume_per_day
    return frame


def _typical_volumes(low: float, high: float) -> dict[str, float]:
    """A volume well inside each tier's range, to quote its latency at."""
    low = 1_000.0 if math.isnan(low) else low
    high = max(50_000.0 if math.isnan(high) else high, low * 2)
    return {"direct": low / 3, "queue": math.sqrt(low * high), "events": high * 2}


def _cost_text(row: pd.Series) -> str:
    text = (
        f"${row['clay_usd'] + row['infra_usd'] + row['ops_usd']:,.0f}/mo "
        f"(infra ${row['infra_usd']:,.0f}, upkeep ${row['ops_usd']:,.0f})"
    )
    return text if row["feasible"] else text + ", misses SLO"


@dataclass(frozen=True)
class Recommendation:
    """A recommended tier, the reasons, and the per-tier figures behind them.

    Unpacks as ``tier, reasons = recommend(...)``.
    """

    tier: str
    reasons: list[str]
    table: pd.DataFrame

    def __iter__(self) -> Iterator[Any]:
        return iter((self.tier, self.reasons))

    def __str__(self) -> str:
        return f"{self.tier}\n" + "\n".join(f"  - {r}" for r in self.reasons)


def recommend(
    volume_per_day: float,
    latency_slo_s: float = 300.0,
    team_size: int | None = None,
    monthly_budget_usd: float | None = None,
    **options: Any,
) -> Recommendation:
    """The tier for this volume, SLO, team and Clay budget, with the reasons."""
    if volume_per_day <= 0 or latency_slo_s <= 0:
        raise ValueError("volume_per_day and latency_slo_s must be positive")
    scenario = make_scenario(team_size=team_size, monthly_budget_usd=monthly_budget_usd, **options)
    best = best_per_tier(run_candidates(float(volume_per_day), scenario), latency_slo_s, scenario)
    tier = choose(best)
    return Recommendation(tier, _reasons(tier, best, latency_slo_s, scenario), best)


def _reasons(tier: str, best: pd.DataFrame, slo_s: float, scenario: Scenario) -> list[str]:
    row = best.loc[tier]
    sizing = f" with {int(row['workers'])} workers" if tier == "queue" else ""
    if math.isnan(row["p50_s"]):
        speed = f"{tier}{sizing}: no lead would be enriched (all held back by the budget)"
    else:
        speed = (
            f"{tier}{sizing}: p50 {row['p50_s']:.0f} s, p95 {row['p95_s']:.0f} s, "
            f"{row['late_share']:.1%} of leads miss the {slo_s:g} s SLO"
        )
    reasons = [
        speed,
        f"{tier} costs ${row['total_usd']:,.0f} a month all-in: Clay ${row['clay_usd']:,.0f}, "
        f"infrastructure ${row['infra_usd']:,.0f}, upkeep ${row['ops_usd']:,.0f}, delay ${row['delay_usd']:,.0f}",
    ]
    if not row["feasible"]:
        reasons.append(f"no tier meets every constraint; {tier} misses least: {row['problems']}")
    for other in best.index:
        if other == tier:
            continue
        o = best.loc[other]
        if not o["feasible"]:
            reasons.append(f"not {other}: {o['problems']}")
        else:
            reasons.append(f"not {other}: ${o['total_usd'] - row['total_usd']:,.0f} a month more")
    if scenario.team_size is not None and row["min_team"] <= scenario.team_size:
        reasons.append(
            f"a team of {scenario.team_size} can own it (needs about {int(row['min_team'])})"
        )
    if (
        scenario.monthly_budget_usd is not None
        and scenario.monthly_budget_usd < scenario.plan.monthly_usd
    ):
        reasons.append(
            f"the {scenario.plan.name} plan alone costs ${scenario.plan.monthly_usd:,.0f} a month, "
            f"more than the ${scenario.monthly_budget_usd:,.0f} budget: a capped tier enriches nothing"
        )
    elif scenario.monthly_budget_usd is not None:
        if row["overspend_usd"] > 0 and tier != "direct":
            reasons.append(
                f"uncapped, the month's Clay bill would pass the ${scenario.monthly_budget_usd:,.0f} "
                f"budget by ${row['overspend_usd']:,.0f}; the {row['cost_control']} stops it there"
            )
        elif row["overspend_usd"] <= 0:
            reasons.append(
                f"the Clay bill of ${row['clay_usd']:,.0f} fits the ${scenario.monthly_budget_usd:,.0f} budget"
            )
    return reasons


def plot_decision_matrix(
    volumes: Sequence[float] = DEFAULT_VOLUMES,
    slos: Sequence[float] = DEFAULT_SLOS,
    *,
    volume_per_day: float | None = None,
    latency_slo_s: float | None = None,
    grid: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **options: Any,
) -> Figure:
    """Heatmap over volume x latency SLO: the recommended tier per cell, your point marked.

    Pass ``grid`` (from :func:`decision_grid`) to redraw without simulating again. Cells
    where even the recommended tier misses a constraint are hatched.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    grid = grid if grid is not None else decision_grid(volumes, slos, **options)
    rec = grid[grid["recommended"]]
    vols = np.sort(rec["volume_per_day"].unique())
    slo_vals = np.sort(rec["slo_s"].unique())
    codes = rec.pivot(index="slo_s", columns="volume_per_day", values="tier").loc[slo_vals, vols]
    ok = rec.pivot(index="slo_s", columns="volume_per_day", values="feasible").loc[slo_vals, vols]
    z = codes.map(TIERS.index).to_numpy(dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 5))
        plt.close(fig)
    else:
        fig = ax.get_figure(root=True)  # type: ignore[assignment]
    cmap = ListedColormap([TIER_COLOURS[t] for t in TIERS])
    ax.pcolormesh(_edges(vols), _edges(slo_vals), z, cmap=cmap, vmin=-0.5, vmax=2.5, shading="flat")
    xe, ye = _edges(vols), _edges(slo_vals)
    for i, slo in enumerate(slo_vals):
        for j, vol in enumerate(vols):
            ax.text(
                math.sqrt(xe[j] * xe[j + 1]),
                math.sqrt(ye[i] * ye[i + 1]),
                codes.loc[slo, vol],
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
            if not ok.loc[slo, vol]:
                ax.fill_between(
                    [xe[j], xe[j + 1]],
                    ye[i],
                    ye[i + 1],
                    hatch="///",
                    facecolor="none",
                    edgecolor="white",
                    lw=0,
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("leads per day")
    ax.set_ylabel("latency SLO (s)")
    ax.set_title("recommended tier (hatched: no tier meets every constraint)")
    handles = [Patch(color=TIER_COLOURS[t], label=t) for t in TIERS]
    if volume_per_day is not None and latency_slo_s is not None:
        (mark,) = ax.plot(
            [volume_per_day],
            [latency_slo_s],
            marker="*",
            markersize=18,
            color="black",
            markeredgecolor="white",
            ls="none",
            label="you",
        )
        handles.append(mark)  # type: ignore[arg-type]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended half a step at each end."""
    logs = np.log(centres.astype(float))
    if logs.size == 1:
        return np.exp(np.array([logs[0] - 0.5, logs[0] + 0.5]))
    mids = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]]))
