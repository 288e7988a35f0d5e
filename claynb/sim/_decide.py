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
volume directly: the rule of thumb's thresholds come out of the model.

* Direct stops being feasible where its few synchronous calls saturate: Clay's 30-60 s per
  lead times a business-day peak passes what ``concurrency`` calls can carry.
* Queue beats direct as soon as direct is infeasible; it keeps winning while its polling
  delay (batching behind busy workers, results seen only at the next poll) costs less than
  the event tier's extra bus, receiver and upkeep.
* Events win when the volume is large enough that those seconds saved on every lead pay
  for the extra fixed cost, or when the SLO is too tight for polling workers.

Defaults were chosen to be plausible and to reproduce the common three-tier rule of thumb; change a price,
the SLO, the rate limit or the arrival profile and the boundaries move.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from claynb._plans import Plan, get_plan
from claynb._routines import Routine, get_routine
from claynb.sim._arrivals import ArrivalProfile, as_profile
from claynb.sim._compiled import kernels
from claynb.sim._cost import DAYS_PER_MONTH, Prices, infra_lines
from claynb.sim._result import SimResult
from claynb.sim._simulate import Terms, clay_inputs, machines, simulate_each
from claynb.sim._tiers import TIERS, ClayBehaviour, RunLatency, Tier, make_tier
from claynb.sim._units import duration, money

COMPLEXITY = {"direct": "low", "queue": "medium", "events": "high"}
COST_CONTROL = {
    "direct": "manual (no cap)",
    "queue": "budget cap",
    "events": "credit circuit breaker",
}
WORKER_OPTIONS = (1, 2, 4, 8, 16, 32, 64)
MIN_LEADS = 20_000  # enough leads per simulation for a stable late share at low volumes
MAX_DAYS = 30.0
FILL_THREADS = 2  # volumes simulated at once by SimulationCache.fill
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


def _simulation_key(volume_per_day: float, scenario: Scenario) -> tuple[Any, ...]:
    """What a simulation depends on. Prices, team, SLO and delay value only re-price it, and
    so does the plan when there is no budget (with one, the plan moves where the cap stops)."""
    s = scenario
    return (
        float(volume_per_day),
        s.arrivals,
        s.clay,
        s.plan if s.monthly_budget_usd is not None else None,
        s.routine,
        s.tiers,
        s.worker_options,
        s.monthly_budget_usd,
        s.seed,
    )


@dataclass
class SimulationCache:
    """Simulations already run, kept so the next question that needs them does not wait.

    A volume's simulations depend on the arrivals, Clay's behaviour, the budget and the
    tiers, not on the prices, the team, the SLO or the delay value, which are applied when
    they are assessed; nor, without a budget, on the plan, which then only re-bills them. Pass one cache to ``decision_matrix``, ``decision_grid``,
    ``recommend``, ``thresholds``, ``sensitivity`` and ``matrix_dashboard`` and each volume
    is simulated once for all of them.
    """

    runs: dict[tuple[Any, ...], list[SimResult]] = field(default_factory=dict)
    # Each entry holds a volume's simulations, lead by lead (up to ~50 MB at 200K a day):
    # the least recently used go first, so a long session of slider moves stays bounded.
    max_volumes: int = 48

    def candidates(self, volume_per_day: float, scenario: Scenario) -> list[SimResult]:
        key = _simulation_key(volume_per_day, scenario)
        found = self.runs.pop(key, None)
        if found is None:
            found = _simulate_candidates(volume_per_day, scenario, self.reusable(key, scenario))
        elif found[0].plan != scenario.plan:  # no budget: the same runs, billed anew
            found = [r.billed_under(scenario.plan) for r in found]
        self._keep(key, found)
        return found

    def reusable(self, key: tuple[Any, ...], scenario: Scenario) -> dict[int, SimResult]:
        """Simulations already here that ``scenario`` would run the same, by candidate.

        Another rate limit changes only the tiers it binds (``_simulate.clay_inputs``):
        usually not the direct tier's few calls. Those results are taken from a volume
        simulated under another limit, everything else alike, recorded under this one.
        """
        wanted = _candidate_models(scenario)
        reused: dict[int, SimResult] = {}
        for held, results in self.runs.items():
            if not _differ_only_in_rate_limit(held, key):
                continue
            for i, model in enumerate(wanted):
                if i not in reused and clay_inputs(model, held[2]) == clay_inputs(model, key[2]):
                    result = results[i].under(scenario.clay)
                    if result.plan != scenario.plan:  # no budget: the same runs, billed anew
                        result = result.billed_under(scenario.plan)
                    reused[i] = result
        return reused

    def fill(
        self,
        volumes: Sequence[float],
        scenario: Scenario,
        progress: Callable[[int, int], None] | None = None,
        slos: Sequence[float] = (),
    ) -> None:
        """Simulate every volume not here yet; ``progress(done, total)`` after each.

        Where the compiled loops run, two volumes are simulated at a time, largest first:
        those loops and numpy's array work release the GIL, so a second core takes half the
        work. Each volume's simulations are their own (streams, draws), so they are the same
        whichever thread ran them; only this thread touches the cache. The threads also read
        what assessing them will need (percentiles, sums, and the late counts at ``slos``,
        the SLOs a grid is about to read), each a pass over millions of latencies.
        """
        wanted = list(dict.fromkeys(float(v) for v in volumes))
        missing = sorted((v for v in wanted if not self.has(v, scenario)), reverse=True)
        done = len(wanted) - len(missing)
        reused = {v: self.reusable(_simulation_key(v, scenario), scenario) for v in missing}
        threads = min(FILL_THREADS, os.cpu_count() or 1, len(missing))
        if threads < 2 or kernels() is None:
            simulated: Iterator[tuple[float, list[SimResult]]] = (
                (v, _simulate_candidates(v, scenario, reused[v])) for v in missing
            )
            self._keep_all(simulated, scenario, done, len(wanted), progress)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="claynb-sim") as pool:
            futures = {
                pool.submit(_simulate_and_read, v, scenario, slos, reused[v]): v for v in missing
            }
            finished = ((futures[f], f.result()) for f in as_completed(futures))
            self._keep_all(finished, scenario, done, len(wanted), progress)

    def _keep_all(
        self,
        simulated: Iterator[tuple[float, list[SimResult]]],
        scenario: Scenario,
        done: int,
        total: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        for volume, results in simulated:
            self._keep(_simulation_key(volume, scenario), results)
            done += 1
            if progress is not None:
                progress(done, total)

    def _keep(self, key: tuple[Any, ...], results: list[SimResult]) -> None:
        self.runs[key] = results
        while len(self.runs) > self.max_volumes:
            del self.runs[next(iter(self.runs))]

    def has(self, volume_per_day: float, scenario: Scenario) -> bool:
        return _simulation_key(volume_per_day, scenario) in self.runs

    def __len__(self) -> int:
        return len(self.runs)


def _simulate_and_read(
    volume_per_day: float,
    scenario: Scenario,
    slos: Sequence[float],
    reused: dict[int, SimResult],
) -> list[SimResult]:
    """A volume's simulations with what assessing them at ``slos`` reads worked out (sums,
    late counts, and the percentiles of the configurations a grid shows: kept by each
    result): for a worker thread."""
    results = _simulate_candidates(volume_per_day, scenario, reused)
    prepared = [prepare(r, scenario) for r in results]  # the sums and counts
    for slo in slos:
        rows = [p.row(float(slo)) for p in prepared]  # the late counts
        for i in best_positions(rows, []):
            results[i].p50  # noqa: B018 - a cached property, computed here, not by the caller
    return results


def run_candidates(
    volume_per_day: float, scenario: Scenario, cache: SimulationCache | None = None
) -> list[SimResult]:
    """One simulation per tier configuration worth considering at this volume."""
    if cache is not None:
        return cache.candidates(volume_per_day, scenario)
    return _simulate_candidates(volume_per_day, scenario)


def _candidate_models(scenario: Scenario) -> list[Tier]:
    return [m for tier in scenario.tiers for m in _candidates(tier, scenario)]


def _differ_only_in_rate_limit(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two ``_simulation_key`` keys are alike but for Clay's rate limit."""
    same_clay = replace(a[2], rate_limit_rps=None) == replace(b[2], rate_limit_rps=None)
    return a[:2] == b[:2] and a[3:] == b[3:] and same_clay and a[2] != b[2]


def _simulate_candidates(
    volume_per_day: float, scenario: Scenario, reused: dict[int, SimResult] | None = None
) -> list[SimResult]:
    """Every candidate at this volume; those in ``reused`` (by position) are not run again."""
    kernels()  # nine simulations, and usually more volumes to come: worth the compiled loops
    s = scenario
    reused = reused or {}
    models = _candidate_models(s)
    run = [m for i, m in enumerate(models) if i not in reused]
    routine = get_routine(s.routine) if isinstance(s.routine, str) else s.routine
    terms = Terms(routine, s.plan, budget=s.monthly_budget_usd, prices=s.prices)
    days = simulated_days(volume_per_day)
    fresh = iter(
        simulate_each(run, volume_per_day, days, s.arrivals, s.clay, terms, s.seed) if run else ()
    )
    return [reused[i] if i in reused else next(fresh) for i in range(len(models))]


def delay_usd(result: SimResult, scenario: Scenario) -> float:
    """What the month's waiting costs: lead-hours of latency times the hourly value lost."""
    hours = result.completed_latency_sum / 3600.0 * DAYS_PER_MONTH / result.days
    return hours * scenario.delay_usd_per_lead_hour


@dataclass(frozen=True)
class Assessed:
    """What a configuration costs and needs, whatever the SLO; ``row(slo)`` adds the rest.

    The completed latencies are kept as they are: a late share is one count over them (kept
    by the result, see ``SimResult.completed_over``), a fraction of what sorting them once
    would cost for the handful of SLOs a grid reads.
    """

    fixed: dict[str, Any]
    static_problems: tuple[str, ...]
    result: SimResult
    max_late_share: float

    def late_share(self, slo_s: float) -> float:
        """As ``SimResult.late_share_at``: missed or failed, of the leads not held back."""
        r = self.result
        if r.considered_leads == 0:
            return 0.0
        return (r.completed_over(slo_s) + r.failed_leads) / r.considered_leads

    def slo_that_fits(self) -> float:
        """The tightest SLO this configuration meets (at most the allowed share late)."""
        r = self.result
        allowed = int(np.floor(self.max_late_share * r.considered_leads + 1e-9)) - r.failed_leads
        lat = r.completed_latency_s  # held-back and failed leads have no latency
        if allowed < 0 or lat.size == 0:
            return float("nan")
        if allowed >= lat.size:
            return 0.0
        kth = max(lat.size - 1 - allowed, 0)  # the latency that many leads may exceed
        return float(np.partition(lat, kth)[kth])

    def row(self, slo_s: float) -> dict[str, Any]:
        late = self.late_share(slo_s)
        problems = list(self.static_problems)
        if late > self.max_late_share:
            problems.insert(
                0,
                f"{late:.1%} of leads would miss the {duration(slo_s)} SLO "
                f"(at most {self.max_late_share:.0%} allowed)",
            )
        return {
            **self.fixed,
            "late_share": late,
            "feasible": not problems,
            "problems": "; ".join(problems),
        }

    def shown(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with this configuration's latency percentiles, which ``row`` leaves out:
        each is a partial sort of the latencies, so only the rows a table shows get them."""
        return {**row, "p50_s": self.result.p50, "p95_s": self.result.p95}


def prepare(result: SimResult, scenario: Scenario) -> Assessed:
    """Everything about one configuration that does not depend on the SLO."""
    tier = result.tier.name
    prices = scenario.prices
    problems = []
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
            f"has no budget cap and would overspend the {money(scenario.monthly_budget_usd)} "
            f"budget by {money(result.overspend_usd)}"
        )
    delay = delay_usd(result, scenario)
    # Priced here, not taken from the result, so one set of simulations serves any prices.
    infra = sum(infra_lines(tier, machines(result.tier), prices).values())
    ops = prices.upkeep_hours(tier) * prices.engineer_usd_hour
    fixed = {
        "tier": tier,
        "workers": result.tier.servers
        if tier != "events"
        else getattr(result.tier, "consumers", 0),
        "p50_s": None,  # see Assessed.shown
        "p95_s": None,
        "clay_usd": result.clay_usd,
        "infra_usd": infra,
        "ops_usd": ops,
        "delay_usd": delay,
        "total_usd": result.clay_usd + infra + ops + delay,
        "overspend_usd": result.overspend_usd,
        "uncapped_bill_usd": result.uncapped_bill_usd,
        "budget_capped": result.tier.budget_capped,
        "complexity": COMPLEXITY[tier],
        "min_team": prices.min_team(tier),
        "cost_control": COST_CONTROL[tier],
    }
    return Assessed(
        fixed=fixed,
        static_problems=tuple(problems),
        result=result,
        max_late_share=scenario.max_late_share,
    )


def assess(result: SimResult, slo_s: float, scenario: Scenario) -> dict[str, Any]:
    """One configuration's row: its latency, cost of ownership, and why it may not fit."""
    prepared = prepare(result, scenario)
    return prepared.shown(prepared.row(slo_s))


def _nan_last(value: float) -> tuple[bool, float]:
    """A sort key that puts NaN after every number, where pandas sorts it."""
    return (True, 0.0) if value != value else (False, value)


def _best_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A tier's configurations in order of preference: feasible ones first, then the
    cheapest, then the least late."""
    return (not row["feasible"], _nan_last(row["total_usd"]), _nan_last(row["late_share"]))


def _choice_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Tiers in order of preference: the cheapest feasible one, else the one that misses
    least, then the cheapest."""
    if row["feasible"]:
        return (False, _nan_last(row["total_usd"]), _nan_last(0.0))
    return (True, _nan_last(row["late_share"]), _nan_last(row["total_usd"]))


def best_positions(rows: Sequence[Mapping[str, Any]], by: Sequence[str]) -> list[int]:
    """Where in ``rows`` each tier's cheapest feasible configuration (or its least-late one)
    is, within each group ``by``; ties go to the earlier row. Groups in ascending order of
    ``by``, tiers in their usual order.

    Plain rows, not a frame: a grid has hundreds, and sorting and grouping a frame cost
    more than reading them once.
    """
    best: dict[tuple[Any, ...], int] = {}
    for i, row in enumerate(rows):
        group = (*(row[k] for k in by), TIERS.index(row["tier"]))
        held = best.get(group)
        if held is None or _best_key(row) < _best_key(rows[held]):
            best[group] = i
    return [best[group] for group in sorted(best)]


def best_shown(prepared: Sequence[Assessed], slo_s: float) -> list[dict[str, Any]]:
    """Each tier's best configuration at ``slo_s`` as a table shows it, tiers in order."""
    rows = [p.row(slo_s) for p in prepared]
    return [prepared[i].shown(rows[i]) for i in best_positions(rows, [])]


def chosen(rows: Sequence[Mapping[str, Any]]) -> int:
    """Which of one cell's rows (a tier's best each) is chosen: the cheapest feasible one,
    else the one that misses least (then the cheapest); ties go to the earlier row."""
    return min(range(len(rows)), key=lambda i: _choice_key(rows[i]))


def best_per_tier(results: list[SimResult], slo_s: float, scenario: Scenario) -> pd.DataFrame:
    """For each tier, its cheapest feasible configuration (or its least-late one)."""
    prepared = [prepare(r, scenario) for r in results]
    return pd.DataFrame(best_shown(prepared, slo_s)).set_index("tier")


def choose(best: pd.DataFrame) -> str:
    """The cheapest feasible tier, else the one that misses least (see ``fits``)."""
    return str(best.index[chosen(best.to_dict("records"))])


def with_options(scenario: Scenario, **changes: Any) -> Scenario:
    return replace(scenario, **changes)
