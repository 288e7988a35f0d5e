"""simulate(): one tier, one workload, one month's worth of numbers.

The pieces, in order: arrivals from a daily profile with bursts; the tier's way of forming
runs and waiting for them (see ``_tiers``); Clay's item latencies, transient failures with
retries and the workspace rate limit (polling requests eat into it, so the submissions get
what is left); then, per lead, what it was charged by the routine's waterfall, whether a
budget cap stopped it, and when its result was in hand.

Money is scaled from the simulated horizon to a 30-day month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from claynb._plans import Plan, get_plan
from claynb._routines import Routine, get_routine
from claynb.sim._arrivals import DAY_S, ArrivalProfile, as_profile, generate_arrivals
from claynb.sim._cost import DAYS_PER_MONTH, Prices, infra_lines, leads_within_budget, month_bill
from claynb.sim._draws import DrawBlocks, RunDraws, draw_key, retry_time
from claynb.sim._engine import (
    Runs,
    batch_fcfs,
    compiled_batch_fcfs,
    depth_over_time,
    fcfs_starts,
    flush_windows,
    spaced_starts,
)
from claynb.sim._result import SimResult
from claynb.sim._tiers import ClayBehaviour, EventTier, RunLatency, Tier, make_tier

# Requests each run costs besides polling: the submit and one page of results.
REQUESTS_PER_RUN = 2.0
# When polling alone would use the whole rate limit, clients still get this share of it
# for submissions (429s and Retry-After spread them out rather than starving them).
MIN_SUBMIT_SHARE = 0.05

_UNSET: Any = object()


def simulate(
    tier: str | Tier = "queue",
    volume_per_day: float = 10_000,
    *,
    days: float = 1.0,
    arrivals: ArrivalProfile | str | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    rate_limit_rps: float | None = _UNSET,
    run_latency: RunLatency | tuple[float, float] | None = None,
    clay: ClayBehaviour | None = None,
    routine: str | Routine = "enrich-person",
    plan: str | Plan = "growth",
    monthly_budget_usd: float | None = None,
    rollover_data_credits: float = 0.0,
    slo_s: float = 300.0,
    prices: Prices | None = None,
    seed: int = 0,
    **tier_options: Any,
) -> SimResult:
    """Simulate ``tier`` under ``volume_per_day`` leads for ``days`` days.

    ``tier`` is ``"direct"``, ``"queue"``, ``"events"`` or a tier model (``QueueTier(...)``);
    ``workers``, ``batch_size`` and ``tier_options`` override its fields. ``run_latency`` is a
    :class:`RunLatency` or a ``(low, high)`` range in seconds. ``rate_limit_rps`` is the
    workspace rate limit (``None``: unlimited). ``monthly_budget_usd`` caps the month's Clay
    bill for tiers that enforce caps; for the direct tier it only measures the overspend.
    Everything random comes from ``seed``.
    """
    model = make_tier(tier, workers=workers, batch_size=batch_size, **tier_options)
    terms = Terms(
        routine=get_routine(routine) if isinstance(routine, str) else routine,
        plan=get_plan(plan),
        budget=monthly_budget_usd,
        rollover=rollover_data_credits,
        slo_s=slo_s,
        prices=prices or Prices(),
    )
    clay = _behaviour(clay, run_latency, rate_limit_rps)
    (result,) = simulate_each(
        [model], volume_per_day, days, as_profile(arrivals), clay, terms, seed
    )
    return result


class Workload(NamedTuple):
    """The leads a simulation is given: their profile, volume a day, days, arrival times."""

    profile: ArrivalProfile
    volume_per_day: float
    days: float
    arrivals: np.ndarray


@dataclass(frozen=True)
class Terms:
    """What a simulation's leads are charged and judged by, whatever the tier: the routine's
    waterfall, the plan and its rollover, a monthly Clay budget, the SLO, the other prices."""

    routine: Routine
    plan: Plan
    budget: float | None = None
    rollover: float = 0.0
    slo_s: float = 300.0
    prices: Prices = field(default_factory=Prices)


def simulate_each(
    models: Sequence[Tier],
    volume_per_day: float,
    days: float,
    arrivals: ArrivalProfile,
    clay: ClayBehaviour,
    terms: Terms,
    seed: int = 0,
) -> list[SimResult]:
    """Several tier models under one workload, each exactly as :func:`simulate` has it alone.

    The leads are drawn once (they are the same for every model: the arrivals come first
    from ``seed``), and each model goes on from a copy of the random stream as it stood
    after them. Results share the arrival times, read-only, and models that draw their runs
    alike (the queue tier at each worker count) share those draws (``DrawBlocks``).
    """
    rng = np.random.default_rng(seed)
    times = generate_arrivals(volume_per_day, days, arrivals, rng)
    times.flags.writeable = False
    after_arrivals = rng.bit_generator.state
    shared: dict[tuple[float, ...], DrawBlocks] = {}
    results = []
    for model in models:
        stream = np.random.Generator(type(rng.bit_generator)())
        stream.bit_generator.state = after_arrivals
        blocks = shared.setdefault(draw_key(model), DrawBlocks())
        ran = _run_tier(model, clay, times, stream, blocks)
        workload = Workload(arrivals, volume_per_day, days, times)
        results.append(_assemble(model, clay, workload, ran, stream, terms))
    return results


def _behaviour(
    clay: ClayBehaviour | None,
    latency: RunLatency | tuple[float, float] | None,
    rate_limit_rps: float | None,
) -> ClayBehaviour:
    behaviour = clay or ClayBehaviour()
    if isinstance(latency, tuple):
        latency = RunLatency("uniform", low=float(latency[0]), high=float(latency[1]))
    if latency is not None:
        behaviour = replace(behaviour, run_latency=latency)
    if rate_limit_rps is not _UNSET:
        behaviour = replace(behaviour, rate_limit_rps=rate_limit_rps)
    return behaviour


def _submit_spacing(tier: Tier, clay: ClayBehaviour) -> float:
    """Seconds between run submissions the rate limit allows, after blocked workers' polls."""
    if clay.rate_limit_rps is None:
        return 0.0
    polling = (
        tier.servers / tier.poll_interval_s if tier.servers and tier.poll_interval_s > 0 else 0.0
    )
    left = max(clay.rate_limit_rps - polling, MIN_SUBMIT_SHARE * clay.rate_limit_rps)
    return REQUESTS_PER_RUN / left


def submit_spacing(tier: Tier, clay: ClayBehaviour) -> float:
    """The spacing a tier's runs are submitted at: what the rate limit leaves, or 0 where
    workers of one lead a run can never submit faster than it allows anyway."""
    spacing = _submit_spacing(tier, clay)
    one_lead_runs = tier.batch_size == 1 and not isinstance(tier, EventTier)
    fastest = tier.servers / max(clay.run_latency.min_latency(), 1e-9)  # runs/s at most
    if spacing and one_lead_runs and fastest <= 1.0 / spacing:
        return 0.0
    return spacing


def clay_inputs(tier: Tier, clay: ClayBehaviour) -> tuple[ClayBehaviour, float]:
    """What of Clay's behaviour a tier's simulation depends on: everything but the rate
    limit, which it sees only as the spacing of its submissions (``submit_spacing``).
    Two behaviours with the same inputs simulate the tier the same, to the last bit."""
    return replace(clay, rate_limit_rps=None), submit_spacing(tier, clay)


def _observed(latency: np.ndarray, poll_s: float) -> np.ndarray:
    """When a poller sees a run finish: the first poll at or after its end."""
    if poll_s <= 0:
        return latency
    return np.ceil(latency / poll_s - 1e-9) * poll_s


def _run_tier(
    tier: Tier,
    clay: ClayBehaviour,
    arrivals: np.ndarray,
    rng: np.random.Generator,
    blocks: DrawBlocks | None = None,
) -> tuple[Runs, np.ndarray, np.ndarray, float]:
    """Runs, each run's done time, whether it failed, and the number of poll requests."""
    if isinstance(tier, EventTier):
        return _run_events(tier, clay, arrivals, rng)
    return _run_blocking(tier, clay, arrivals, rng, blocks)


def _run_blocking(
    tier: Tier,
    clay: ClayBehaviour,
    arrivals: np.ndarray,
    rng: np.random.Generator,
    blocks: DrawBlocks | None = None,
) -> tuple[Runs, np.ndarray, np.ndarray, float]:
    """Direct and queue: each worker is held from submit until it has polled the result."""
    n = arrivals.size
    spacing = submit_spacing(tier, clay)
    if tier.batch_size == 1:
        extra, gave_up = retry_time(n, tier, clay, rng)
        busy = _observed(clay.run_latency.ppf(rng.random(n)), tier.poll_interval_s)
        if clay.failure_rate > 0:
            busy = np.where(gave_up, extra, busy + extra)
        starts = fcfs_starts(arrivals, busy, tier.servers, spacing)
        runs = Runs(
            starts, np.arange(n), np.broadcast_to(np.int64(1), (n,)), busy
        )  # one lead a run
    else:
        draws = RunDraws(tier, clay, rng, n, as_lists=False, blocks=blocks)
        compiled = compiled_batch_fcfs(arrivals, tier.servers, tier.batch_size, draws, spacing)
        if compiled is None:
            draws.keep_lists()
            runs = batch_fcfs(arrivals, tier.servers, tier.batch_size, draws, spacing)
        else:
            runs = compiled
        gave_up = draws.gave_up(runs.start.size)
    polls = (
        float(np.sum(np.floor(runs.busy / tier.poll_interval_s)))
        if tier.poll_interval_s > 0
        else 0.0
    )
    return runs, runs.start + runs.busy, gave_up, polls


def _run_events(
    tier: EventTier, clay: ClayBehaviour, arrivals: np.ndarray, rng: np.random.Generator
) -> tuple[Runs, np.ndarray, np.ndarray, float]:
    """Events: flush on a clock, submit within the rate limit, hear back by webhook or poll."""
    first, ready = flush_windows(arrivals, tier.linger_s, tier.batch_size)
    count = np.diff(np.append(first, arrivals.size))
    starts = spaced_starts(ready, submit_spacing(tier, clay))
    m = first.size
    extra, gave_up = retry_time(m, tier, clay, rng)
    latency = clay.run_latency.run_latency(count, rng.random(m))
    lost = rng.random(m) < tier.webhook_loss
    late = np.maximum(latency - tier.fallback_after_s, 0.0)
    by_poll = tier.fallback_after_s + _observed(late, tier.poll_interval_s)
    heard = np.where(lost, by_poll, latency + tier.webhook_delay_s)
    busy = np.where(gave_up, extra, heard + extra)
    polls_per_run = 1.0 + (
        np.ceil(late / tier.poll_interval_s) if tier.poll_interval_s > 0 else 0.0
    )
    polls = float(np.sum(np.where(lost & ~gave_up, polls_per_run, 0.0)))
    return Runs(starts, first, count, busy), starts + busy, gave_up, polls


def machines(tier: Tier) -> int:
    """Processes to pay for: workers, direct concurrency, or event consumers."""
    return tier.consumers if isinstance(tier, EventTier) else tier.servers


def _charge_tables(routine: Routine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a lead's draw stops the waterfall, and what each stop costs.

    A lead's charge depends only on where the waterfall stopped (provider ``i`` hit, or
    nothing did, ``i == len``): it stops at the number of the rising bounds its uniform
    draw reaches. Returns those bounds, and the actions and Data Credits of each stop.
    """
    hit = np.array([p.hit_rate for p in routine.providers])
    cost = np.array([p.data_credits for p in routine.providers])
    miss_cost = np.array([p.data_credits if p.charge_on_miss else 0.0 for p in routine.providers])
    reach = np.cumprod(np.append(1.0, 1.0 - hit))  # chance of reaching provider i
    bounds = 1.0 - reach[1:]
    credit_table = np.append(0.0, np.cumsum(miss_cost)) + np.append(cost, 0.0)
    action_table = np.where(
        (np.arange(hit.size + 1) < hit.size) | (credit_table > 0),
        float(routine.actions_per_hit),
        0.0,
    )
    return bounds, action_table, credit_table


def _charges(routine: Routine, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Actions and Data Credits each lead is charged, from its uniform draw ``u``."""
    bounds, action_table, credit_table = _charge_tables(routine)
    if bounds.size > 8:
        step = np.searchsorted(bounds, u, side="right")
        return action_table[step], credit_table[step]
    # A short waterfall: pick bound by bound (no index array, no gather).
    if bounds.size == 0:
        return np.full(u.size, action_table[0]), np.full(u.size, credit_table[0])
    reached = u >= bounds[0]
    actions = np.where(reached, action_table[1], action_table[0])
    credits = np.where(reached, credit_table[1], credit_table[0])
    for k in range(2, bounds.size + 1):
        reached = u >= bounds[k - 1]
        actions = np.where(reached, action_table[k], actions)
        credits = np.where(reached, credit_table[k], credits)
    return actions, credits


def _charge_totals(routine: Routine, u: np.ndarray) -> tuple[float, float]:
    """The summed actions and Data Credits of leads with draws ``u``, without per-lead arrays.

    The same draws and stops as :func:`_charges`: how many leads stop at each step, times
    what that step costs.
    """
    bounds, action_table, credit_table = _charge_tables(routine)
    reached = [u.size] + [int(np.count_nonzero(u >= b)) for b in bounds.tolist()] + [0]
    stops = np.diff(np.array(reached)) * -1  # leads that stop exactly at each step
    return float(stops @ action_table), float(stops @ credit_table)


def _assemble(
    model: Tier,
    behaviour: ClayBehaviour,
    workload: Workload,
    ran: tuple[Runs, np.ndarray, np.ndarray, float],
    rng: np.random.Generator,
    terms: Terms,
) -> SimResult:
    """Per lead, from the runs: when it started and finished, what it was charged, whether a
    budget cap held it back; then the month's figures. ``ran`` is what ``_run_tier`` returns."""
    profile, volume_per_day, days, arrivals = workload
    runs, run_done, run_failed, polls = ran
    lead_failed = (
        runs.per_lead(run_failed) if run_failed.any() else np.zeros(arrivals.size, dtype=bool)
    )
    lead_done = runs.per_lead(run_done)
    routine, plan, budget, rollover, prices = (
        terms.routine,
        terms.plan,
        terms.budget,
        terms.rollover,
        terms.prices,
    )
    horizon = days * DAY_S
    n = arrivals.size
    month = DAYS_PER_MONTH / days
    u = rng.random(n)  # each lead's draw down the routine's waterfall
    over_budget = np.zeros(n, dtype=bool)
    allowed = n
    if budget is not None and model.budget_capped:  # the cap needs the charges lead by lead
        actions, credits = _charges(routine, u)
        if lead_failed.any():
            actions[lead_failed] = 0.0
            credits[lead_failed] = 0.0
        uncapped = (float(actions.sum()), float(credits.sum()))
        allowed = leads_within_budget(plan, actions, credits, budget, month, rollover)
        over_budget[allowed:] = True
        charged = (float(actions[:allowed].sum()), float(credits[:allowed].sum()))
    else:  # only the totals are kept: count the leads at each step of the waterfall
        charged = uncapped = _charge_totals(routine, u[~lead_failed] if lead_failed.any() else u)
    uncapped_bill = month_bill(plan, uncapped[0] * month, uncapped[1] * month, rollover)
    grid, waiting, in_flight = depth_over_time(arrivals, runs, run_done, horizon)
    # The per-lead times are spent from here on: reuse their memory for latency (fresh
    # pages for another array of every lead cost more than the arithmetic).
    latency = np.subtract(lead_done, arrivals, out=lead_done)
    if lead_failed.any():
        latency[lead_failed] = np.nan
    latency[allowed:] = np.nan
    failed = lead_failed if allowed == n else lead_failed & ~over_budget
    return SimResult(
        tier=model,
        clay=behaviour,
        arrivals_profile=profile,
        volume_per_day=volume_per_day,
        days=days,
        slo_s=terms.slo_s,
        arrivals=arrivals,
        latency_s=latency,
        sent_at=runs.start,
        run_leads=None if runs.one_lead_each else runs.count,
        failed=failed,
        over_budget=over_budget,
        runs=int(runs.start.size),
        busy_s=float(runs.busy.sum()),
        api_requests=REQUESTS_PER_RUN * runs.start.size + polls,
        depth_time_s=grid,
        depth_waiting=waiting,
        depth_in_flight=in_flight,
        actions_month=charged[0] * month,
        data_credits_month=charged[1] * month,
        plan=plan,
        rollover_data_credits=rollover,
        monthly_budget_usd=budget,
        uncapped_bill_usd=uncapped_bill,
        infra_usd=infra_lines(model.name, machines(model), prices),
        ops_usd=prices.upkeep_hours(model.name) * prices.engineer_usd_hour,
    )
