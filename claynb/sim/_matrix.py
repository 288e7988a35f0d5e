"""The decision matrix, computed: which tier for which volume and latency SLO, and why.

``decision_grid`` evaluates every cell of a volume x SLO grid (see ``_decide`` for the model);
``thresholds`` finds where the recommendation changes along the volume axis by bisection;
``decision_matrix`` lays the result out like the common three-tier table (tiers against volume,
latency, cost, cost control, complexity and team size); ``recommend`` answers for one team.
``_heatmap`` draws the grid.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from claynb.sim._decide import (
    Assessed,
    Scenario,
    SimulationCache,
    best_per_tier,
    best_positions,
    best_shown,
    chosen,
    make_scenario,
    prepare,
    run_candidates,
)
from claynb.sim._result import SimResult
from claynb.sim._tiers import TIERS
from claynb.sim._units import NO_MATH, count, duration, money, to_html

DEFAULT_VOLUMES = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000)
DEFAULT_SLOS = (60, 90, 120, 300, 900, 3_600)
# Bisection depth for every threshold claynb reports: one figure, wherever it is printed.
THRESHOLD_STEPS = 7
LATENCY_CLASS = {"direct": "sync", "queue": "async", "events": "async"}


def decision_grid(
    volumes: Sequence[float] = DEFAULT_VOLUMES,
    slos: Sequence[float] = DEFAULT_SLOS,
    *,
    cache: SimulationCache | None = None,
    progress: Any = None,
    **options: Any,
) -> pd.DataFrame:
    """Every tier's best configuration in every (volume, SLO) cell, and the recommended one.

    ``options`` are those of :func:`recommend` (``arrivals``, ``clay``, ``prices``, ``plan``,
    ``tiers``, ``team_size``, ``monthly_budget_usd``, ``delay_usd_per_lead_hour``, ...).
    ``cache`` (a :class:`SimulationCache`) keeps the simulations for the next call;
    ``progress(done, total)`` is called after each volume.
    """
    scenario = make_scenario(**options)
    simulated = simulate_grid(volumes, scenario, cache, progress, slos=slos)
    return assess_grid(simulated, slos, scenario)


def simulate_grid(
    volumes: Sequence[float],
    scenario: Scenario,
    cache: SimulationCache | None = None,
    progress: Any = None,
    slos: Sequence[float] = (),
) -> dict[float, list[SimResult]]:
    """The simulations behind a grid, by volume. They do not depend on the SLO, the prices,
    the team or the delay value, so a dashboard can keep them while those sliders move.
    ``slos``: the SLOs the grid will be read at (counted while simulating, see ``fill``)."""
    cache = cache if cache is not None else SimulationCache()
    cache.fill(volumes, scenario, progress, slos=slos)
    return {float(v): run_candidates(float(v), scenario, cache) for v in volumes}


def assess_grid(
    simulated: dict[float, list[SimResult]], slos: Sequence[float], scenario: Scenario
) -> pd.DataFrame:
    """The grid from simulations already run: cheap, it only prices and compares.

    Each simulation is prepared once (its SLO-free figures) and read at every SLO; the
    per-tier choice and the recommendation are made over plain rows, and only the grid's
    own rows become a frame.
    """
    rows, owners = [], []
    for volume, results in simulated.items():
        prepared = [prepare(r, scenario) for r in results]
        for slo in slos:
            for p in prepared:
                rows.append({"volume_per_day": float(volume), "slo_s": float(slo), **p.row(slo)})
                owners.append(p)
    positions = best_positions(rows, ["volume_per_day", "slo_s"])
    best = [owners[i].shown(rows[i]) for i in positions]
    recommended = [False] * len(best)
    for _, group in itertools.groupby(
        range(len(best)), key=lambda i: (best[i]["volume_per_day"], best[i]["slo_s"])
    ):
        cell = list(group)
        recommended[cell[chosen([best[i] for i in cell])]] = True
    frame = pd.DataFrame(best)
    frame["recommended"] = recommended
    front = ["volume_per_day", "slo_s", "tier"]
    return frame[front + [c for c in frame.columns if c not in front]]


def _recommended_at(
    volume: float, slo_s: float, scenario: Scenario, cache: SimulationCache | None = None
) -> str:
    rows = [prepare(r, scenario).row(slo_s) for r in run_candidates(volume, scenario, cache)]
    best = [rows[i] for i in best_positions(rows, [])]  # no percentiles: only the tier is read
    return str(best[chosen(best)]["tier"])


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
    steps: int = THRESHOLD_STEPS,
    which: Sequence[str] = ("direct_to_queue", "queue_to_events"),
    cache: SimulationCache | None = None,
    **options: Any,
) -> dict[str, float]:
    """Volumes per day where direct gives way to another tier, and where events take over.

    Log bisection between ``low`` and ``high``; ``nan`` when a boundary is not in that range.
    ``which`` picks the boundaries to find (the queue-to-events search starts at ``low``
    when the direct one is not asked for). Every function that reports thresholds uses the
    same depth (``THRESHOLD_STEPS``), so they all print the same figures.
    """
    unknown = set(which) - {"direct_to_queue", "queue_to_events"}
    if unknown:
        raise ValueError(f"unknown boundary: {', '.join(sorted(unknown))}")
    scenario = make_scenario(**options)
    cache = cache if cache is not None else SimulationCache()
    answers: dict[float, str] = {}

    def tier_at(volume: float) -> str:
        if volume not in answers:
            answers[volume] = _recommended_at(volume, latency_slo_s, scenario, cache)
        return answers[volume]

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
    variants: dict[str, dict[str, Any]],
    latency_slo_s: float = 300.0,
    steps: int = THRESHOLD_STEPS,
    *,
    cache: SimulationCache | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Where the tier boundaries fall under each named set of options, one row per variant.

    ``sensitivity({"defaults": {}, "delay $3/lead-hour": {"delay_usd_per_lead_hour": 3}})``.
    Each variant simulates a dozen volumes or so; ``progress`` shows a bar, one step a
    variant. Pass the ``cache`` used for ``decision_matrix`` and its row costs nothing.
    """
    from tqdm.auto import tqdm

    cache = cache if cache is not None else SimulationCache()
    rows = {}
    for name, options in tqdm(
        list(variants.items()), desc="sensitivity", unit="variant", disable=not progress
    ):
        opts = dict(options)
        slo = opts.pop("latency_slo_s", latency_slo_s)
        rows[name] = thresholds(slo, steps=steps, cache=cache, **opts)
    frame = pd.DataFrame(rows).T.round(0)
    frame.columns = ["direct gives way (leads/day)", "events take over (leads/day)"][
        : len(frame.columns)
    ]
    return frame


def format_thresholds(edges: dict[str, float]) -> str:
    """``direct below 1,341 leads/day, events above 45,731``: the sentence every cell prints."""
    low, high = edges.get("direct_to_queue", math.nan), edges.get("queue_to_events", math.nan)
    parts = []
    if not math.isnan(low):
        parts.append(f"direct below {count(low)} leads/day")
    if not math.isnan(high):
        parts.append(f"events above {count(high)} leads/day")
    return ", ".join(parts) or "no boundary between 100 and 300,000 leads/day"


def _fmt_volume(v: float) -> str:
    if math.isnan(v):
        return "-"
    return count(v)


def decision_matrix(
    volume_per_day: float | None = None,
    latency_slo_s: float = 300.0,
    *,
    steps: int = THRESHOLD_STEPS,
    cache: SimulationCache | None = None,
    **options: Any,
) -> pd.DataFrame:
    """The three-tier decision matrix, computed: factors down the side, tiers across.

    Volume ranges come from :func:`thresholds`; latency and cost are each tier's best
    configuration at ``volume_per_day`` (default: the middle of the queue tier's range).
    The thresholds are also in ``frame.attrs["thresholds"]``; ``steps`` is the bisection depth.
    """
    cache = cache if cache is not None else SimulationCache()
    edges = thresholds(latency_slo_s, steps=steps, cache=cache, **options)
    low, high = edges["direct_to_queue"], edges["queue_to_events"]
    if volume_per_day is None:
        volume_per_day = (
            math.sqrt(low * high) if not (math.isnan(low) or math.isnan(high)) else 10_000.0
        )
    scenario = make_scenario(**options)

    def best_at(volume: float) -> pd.DataFrame:
        return best_per_tier(run_candidates(volume, scenario, cache), latency_slo_s, scenario)

    here = best_at(float(volume_per_day))
    typical = _typical_volumes(low, high)
    own = {t: best_at(typical[t]).loc[t] for t in TIERS}
    ranges = {
        "direct": f"under {_fmt_volume(low)} a day",
        "queue": f"{_fmt_volume(low)} to {_fmt_volume(high)} a day",
        "events": f"over {_fmt_volume(high)} a day",
    }
    teams = [int(here.loc[t, "min_team"]) for t in TIERS]
    team_text = [
        f"{teams[i]}-{teams[i + 1]}" if i + 1 < len(TIERS) else f"{teams[i]}+"
        for i in range(len(TIERS))
    ]
    table = {
        "Leads per day": [ranges[t] for t in TIERS],
        "Latency": [
            f"{LATENCY_CLASS[t]}: typically {duration(own[t]['p50_s'])}, "
            f"slow {duration(own[t]['p95_s'])} at {_fmt_volume(typical[t])} a day"
            for t in TIERS
        ],
        f"Cost at {_fmt_volume(volume_per_day)} leads a day": [
            _cost_text(here.loc[t]) for t in TIERS
        ],
        "Cost control": [str(here.loc[t, "cost_control"]) for t in TIERS],
        "Complexity": [
            f"{here.loc[t, 'complexity']} ({scenario.prices.upkeep_hours(t):g} h of upkeep a month)"
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
        f"{money(row['clay_usd'] + row['infra_usd'] + row['ops_usd'])} "
        f"(infrastructure {money(row['infra_usd'], None)}, upkeep {money(row['ops_usd'], None)})"
    )
    return text if row["feasible"] else text + ", misses the SLO"


@dataclass(frozen=True, repr=False)
class Recommendation:
    """A recommended tier, the reasons, and the per-tier figures behind them.

    When no tier meets every constraint, ``tier`` is ``None``: claynb does not pick one the
    team cannot run. ``closest`` is then the tier that misses least, and ``changes`` the
    smallest changes that would make a tier fit (an SLO to accept, a team or budget to
    have), smallest first. Unpacks as ``tier, reasons = recommend(...)``.
    """

    tier: str | None
    reasons: list[str]
    table: pd.DataFrame
    closest: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.tier is not None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.tier, self.reasons))

    def details(self) -> pd.DataFrame:
        """Each tier's best configuration here, in words and analyst units."""
        best = self.table
        rows = {
            "size": [
                f"{int(best.loc[t, 'workers'])} workers" if t == "queue" else "-"
                for t in best.index
            ],
            "typical wait (p50)": [duration(v) for v in best["p50_s"]],
            "slow wait (p95)": [duration(v) for v in best["p95_s"]],
            "leads missing the target": [f"{v:.1%}" for v in best["late_share"]],
            "Clay bill": [money(v) for v in best["clay_usd"]],
            "infrastructure": [money(v) for v in best["infra_usd"]],
            "engineer upkeep": [money(v) for v in best["ops_usd"]],
            "cost of delay": [money(v) for v in best["delay_usd"]],
            "total": [money(v) for v in best["total_usd"]],
            "team it needs": [f"{int(v)} people" for v in best["min_team"]],
            "fits": [
                "yes" if ok else why
                for ok, why in zip(best["feasible"], best["problems"], strict=True)
            ],
        }
        frame = pd.DataFrame(rows, index=best.index).T
        frame.columns.name = "tier"
        return frame

    def _repr_html_(self) -> str:
        head = f"recommended: {self.tier}" if self.fits else "nothing fits"
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (
            f'<div class="{NO_MATH}"><b>{head}</b><ul>{items}</ul>{to_html(self.details())}</div>'
        )

    def __repr__(self) -> str:
        return f"Recommendation({self})"

    def __str__(self) -> str:
        head = self.tier if self.tier is not None else "nothing fits"
        return f"{head}\n" + "\n".join(f"  - {r}" for r in self.reasons)


def recommend(
    volume_per_day: float,
    latency_slo_s: float = 300.0,
    team_size: int | None = None,
    monthly_budget_usd: float | None = None,
    *,
    cache: SimulationCache | None = None,
    **options: Any,
) -> Recommendation:
    """The tier for this volume, SLO, team and Clay budget, with the reasons.

    When no tier fits, the answer says so, and what would change that.
    """
    if volume_per_day <= 0 or latency_slo_s <= 0:
        raise ValueError("volume_per_day and latency_slo_s must be positive")
    scenario = make_scenario(team_size=team_size, monthly_budget_usd=monthly_budget_usd, **options)
    results = run_candidates(float(volume_per_day), scenario, cache)
    prepared = [prepare(r, scenario) for r in results]
    rows = best_shown(prepared, latency_slo_s)
    best = pd.DataFrame(rows).set_index("tier")
    least_bad = str(rows[chosen(rows)]["tier"])
    if best.loc[least_bad, "feasible"]:
        reasons = _reasons(least_bad, best, latency_slo_s, scenario)
        return Recommendation(least_bad, reasons, best, closest=least_bad)
    changes = smallest_changes(prepared, latency_slo_s, scenario)
    reasons = _nothing_fits(least_bad, best, latency_slo_s, changes)
    return Recommendation(None, reasons, best, closest=least_bad, changes=changes)


@dataclass(frozen=True)
class Change:
    """What would make ``tier`` fit: an SLO to accept, a team or a Clay budget to have.

    Fields left ``None`` need no change. ``str(change)`` is the sentence the reasons print.
    """

    tier: str
    workers: int
    total_usd: float
    latency_slo_s: float | None = None
    team_size: int | None = None
    monthly_budget_usd: float | None = None

    @property
    def size(self) -> int:
        return sum(
            v is not None for v in (self.latency_slo_s, self.team_size, self.monthly_budget_usd)
        )

    def __str__(self) -> str:
        parts = []
        if self.latency_slo_s is not None:
            parts.append(f"accept an SLO of {duration(self.latency_slo_s)}")
        if self.team_size is not None:
            parts.append(f"a team of {self.team_size}")
        if self.monthly_budget_usd is not None:
            parts.append(f"a Clay budget of {money(self.monthly_budget_usd)}")
        sizing = f" with {self.workers} workers" if self.tier == "queue" else ""
        return f"{' and '.join(parts)}: then {self.tier}{sizing} fits, at {money(self.total_usd)}"


def _change_for(p: Assessed, slo_s: float, scenario: Scenario) -> Change | None:
    """What would make one configuration fit (``None`` if nothing would)."""
    row = p.fixed
    slo = team = budget = None
    if p.late_share(slo_s) > p.max_late_share:
        fits_at = p.slo_that_fits()
        if math.isnan(fits_at):
            return None  # too many leads fail, whatever the SLO
        slo = float(math.ceil(fits_at))
    if scenario.team_size is not None and row["min_team"] > scenario.team_size:
        team = int(row["min_team"])
    over = scenario.monthly_budget_usd is not None and row["overspend_usd"] > 0
    if over and not row["budget_capped"]:
        budget = float(math.ceil(row["uncapped_bill_usd"]))
    return Change(row["tier"], int(row["workers"]), float(row["total_usd"]), slo, team, budget)


def smallest_changes(prepared: list[Assessed], slo_s: float, scenario: Scenario) -> list[Change]:
    """Per tier, the fewest changes that make one of its configurations fit; fewest first,
    then cheapest."""
    best: dict[str, Change] = {}
    for p in prepared:
        change = _change_for(p, slo_s, scenario)
        if change is None or change.size == 0:
            continue
        held = best.get(change.tier)
        if held is None or (change.size, change.total_usd) < (held.size, held.total_usd):
            best[change.tier] = change
    return sorted(best.values(), key=lambda c: (c.size, c.total_usd))


def _nothing_fits(
    closest: str, best: pd.DataFrame, slo_s: float, changes: list[Change]
) -> list[str]:
    reasons = [f"no tier meets every constraint at a {duration(slo_s)} SLO"]
    for tier in best.index:
        reasons.append(f"not {tier}: {best.loc[tier, 'problems']}")
    if changes:
        reasons.append(f"smallest change: {changes[0]}")
        reasons += [f"or: {c}" for c in changes[1:]]
    else:
        reasons.append(f"closest is {closest}; no single change found that makes a tier fit")
    return reasons


def _reasons(tier: str, best: pd.DataFrame, slo_s: float, scenario: Scenario) -> list[str]:
    row = best.loc[tier]
    sizing = f" with {int(row['workers'])} workers" if tier == "queue" else ""
    if math.isnan(row["p50_s"]):
        speed = f"{tier}{sizing}: no lead would be enriched (all held back by the budget)"
    else:
        speed = (
            f"{tier}{sizing}: typically {duration(row['p50_s'])}, slow {duration(row['p95_s'])}; "
            f"{row['late_share']:.1%} of leads miss the {duration(slo_s)} SLO"
        )
    reasons = [
        speed,
        f"{tier} costs {money(row['total_usd'])} all-in: Clay {money(row['clay_usd'], None)}, "
        f"infrastructure {money(row['infra_usd'], None)}, upkeep {money(row['ops_usd'], None)}, "
        f"delay {money(row['delay_usd'], None)}",
    ]
    for other in best.index:
        if other == tier:
            continue
        o = best.loc[other]
        if not o["feasible"]:
            reasons.append(f"not {other}: {o['problems']}")
        else:
            reasons.append(f"not {other}: {money(o['total_usd'] - row['total_usd'])} more")
    if scenario.team_size is not None and row["min_team"] <= scenario.team_size:
        reasons.append(
            f"a team of {scenario.team_size} can own it (needs about {int(row['min_team'])})"
        )
    if (
        scenario.monthly_budget_usd is not None
        and scenario.monthly_budget_usd < scenario.plan.monthly_usd
    ):
        reasons.append(
            f"the {scenario.plan.name} plan alone costs {money(scenario.plan.monthly_usd)}, "
            f"more than the {money(scenario.monthly_budget_usd)} budget: a capped tier enriches nothing"
        )
    elif scenario.monthly_budget_usd is not None:
        if row["overspend_usd"] > 0 and tier != "direct":
            reasons.append(
                f"uncapped, the month's Clay bill would pass the {money(scenario.monthly_budget_usd)} "
                f"budget by {money(row['overspend_usd'], None)}; the {row['cost_control']} stops it there"
            )
        elif row["overspend_usd"] <= 0:
            reasons.append(
                f"the Clay bill of {money(row['clay_usd'])} fits the {money(scenario.monthly_budget_usd)} budget"
            )
    return reasons
