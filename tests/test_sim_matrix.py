"""The decision matrix: the rule of thumb's thresholds from the model, and how they move."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from claynb import sim

# Bisection range and depth for these tests: enough to tell the boundaries apart, quickly.
RANGE = {"low": 300.0, "high": 150_000.0, "steps": 5}


@pytest.fixture(scope="module")
def default_edges() -> dict[str, float]:
    return sim.thresholds(300.0, **RANGE)


def test_defaults_reproduce_the_rule_of_thumb(default_edges: dict[str, float]) -> None:
    # The common rule of thumb: under 1K/day direct, 1K-50K queue, over 50K event-driven.
    assert 700 <= default_edges["direct_to_queue"] <= 2_000
    assert 30_000 <= default_edges["queue_to_events"] <= 75_000


@pytest.mark.parametrize(
    ("volume", "tier"), [(300, "direct"), (8_000, "queue"), (200_000, "events")]
)
def test_recommend_by_volume(volume: float, tier: str) -> None:
    rec = sim.recommend(volume, 300.0)
    assert rec.tier == tier
    assert rec.reasons and rec.reasons[0].startswith(tier)
    chosen, reasons = rec  # unpacks as (tier, reasons)
    assert chosen == tier and reasons is rec.reasons


def test_a_dearer_delay_pulls_events_down_and_dearer_engineers_push_them_up(
    default_edges: dict[str, float],
) -> None:
    upper = {"low": 3_000.0, "high": 150_000.0, "steps": 5, "which": ["queue_to_events"]}
    cheap_wait = sim.thresholds(300.0, **upper, delay_usd_per_lead_hour=3.0)
    dear_people = sim.thresholds(300.0, **upper, prices=sim.Prices(engineer_usd_hour=150.0))
    assert cheap_wait["queue_to_events"] < 0.6 * default_edges["queue_to_events"]
    dear = dear_people["queue_to_events"]
    assert math.isnan(dear) or dear > 1.3 * default_edges["queue_to_events"]


def test_more_concurrency_or_a_looser_slo_keeps_direct_longer(
    default_edges: dict[str, float],
) -> None:
    lower = {"low": 300.0, "high": 20_000.0, "steps": 5, "which": ["direct_to_queue"]}
    wider = sim.thresholds(300.0, **lower, tiers={"direct": sim.DirectTier(concurrency=4)})
    tighter = sim.thresholds(90.0, **lower)
    assert wider["direct_to_queue"] > 1.5 * default_edges["direct_to_queue"]
    assert tighter["direct_to_queue"] < default_edges["direct_to_queue"]


def test_team_size_rules_out_a_tier_it_cannot_run() -> None:
    rec = sim.recommend(200_000, 300.0, team_size=4)
    assert rec.tier == "queue"
    assert any("needs about 10 people" in r for r in rec.reasons)
    assert any("team of 4 can own it" in r for r in rec.reasons)


def test_a_budget_rules_out_the_uncapped_direct_tier() -> None:
    free = sim.recommend(500, 300.0)
    capped = sim.recommend(500, 300.0, monthly_budget_usd=600.0)
    assert free.tier == "direct"
    assert capped.tier == "queue"
    assert any("no budget cap" in r for r in capped.reasons)
    assert any("stops it there" in r for r in capped.reasons)


def test_decision_matrix_is_the_three_tier_table_computed() -> None:
    frame = sim.decision_matrix(20_000, 300.0, steps=4)
    assert list(frame.columns) == ["direct", "queue", "events"]
    assert {"Leads per day", "Latency", "Cost control", "Complexity", "Team size"} <= set(
        frame.index
    )
    assert frame.loc["Team size"].tolist() == ["1-3", "3-10", "10+"]
    assert frame.loc["Latency", "direct"].startswith("sync")
    assert frame.attrs["thresholds"]["direct_to_queue"] > 0


def test_grid_and_heatmap() -> None:
    from matplotlib.figure import Figure

    grid = sim.decision_grid([300, 8_000, 200_000], [90, 300])
    assert isinstance(grid, pd.DataFrame)
    picked = grid[grid["recommended"]].set_index(["slo_s", "volume_per_day"])["tier"]
    assert picked[(300.0, 300.0)] == "direct" and picked[(300.0, 200_000.0)] == "events"
    assert grid.groupby(["volume_per_day", "slo_s"])["recommended"].sum().eq(1).all()
    fig = sim.plot_decision_matrix(grid=grid, volume_per_day=5_000, latency_slo_s=300)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1 and list(stars[0].get_xdata()) == [5_000]
    labels = {t.get_text() for t in ax.texts}
    assert {"direct", "events"} <= labels


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        sim.recommend(1_000, 300.0, colour="blue")
    with pytest.raises(ValueError):
        sim.recommend(-5, 300.0)


def test_the_grid_assessed_at_once_matches_cell_by_cell() -> None:
    """The one-pass grid (each simulation prepared once, every SLO a binary search) gives
    the answers the per-cell assessment gives."""
    from claynb.sim._decide import best_per_tier, choose, make_scenario
    from claynb.sim._matrix import assess_grid, simulate_grid

    scenario = make_scenario(team_size=4, monthly_budget_usd=3_000.0)
    sims = simulate_grid([300, 3_000, 60_000], scenario)
    slos = [45, 90, 300, 3_600]
    grid = assess_grid(sims, slos, scenario)
    for volume, results in sims.items():
        for slo in slos:
            best = best_per_tier(results, slo, scenario)
            cell = grid[(grid["volume_per_day"] == volume) & (grid["slo_s"] == slo)]
            cell = cell.set_index("tier")
            assert list(cell.index) == list(best.index)
            for column in ("workers", "late_share", "total_usd", "feasible", "problems"):
                assert cell[column].tolist() == best[column].tolist(), (volume, slo, column)
            assert cell.index[cell["recommended"]].tolist() == [choose(best)]


def test_nothing_fits_is_said_with_the_smallest_change_that_would() -> None:
    rec = sim.recommend(800, 60.0, team_size=2)
    assert rec.tier is None and not rec.fits
    chosen, reasons = rec
    assert chosen is None and reasons[0].startswith("no tier meets every constraint")
    assert str(rec).startswith("nothing fits")
    assert any("needs about 10 people" in r for r in reasons)
    assert rec.changes and any(r.startswith("smallest change: ") for r in reasons)
    assert [c.size for c in rec.changes] == sorted(c.size for c in rec.changes)
    for change in rec.changes:  # each change, applied, makes its tier fit
        applied = sim.recommend(
            800,
            change.latency_slo_s or 60.0,
            team_size=change.team_size or 2,
        )
        assert applied.fits, change
        assert change.tier in applied.table.index[applied.table["feasible"]], change


def test_a_budget_change_is_offered_when_only_money_stands_in_the_way() -> None:
    # A team of one can only run direct, which has no cap and would pass a $600 budget.
    rec = sim.recommend(500, 90.0, team_size=1, monthly_budget_usd=600.0)
    assert not rec.fits
    first = rec.changes[0]
    assert first.tier == "direct" and first.size == 1
    assert first.monthly_budget_usd is not None and first.monthly_budget_usd > 600.0
    assert "a Clay budget of $" in rec.reasons[-len(rec.changes)]
    applied = sim.recommend(500, 90.0, team_size=1, monthly_budget_usd=first.monthly_budget_usd)
    assert applied.tier == "direct"


def test_every_report_of_the_thresholds_agrees() -> None:
    """decision_matrix and sensitivity's defaults row come from one computation."""
    cache = sim.SimulationCache()
    matrix = sim.decision_matrix(20_000, 300.0, cache=cache)
    simulated = len(cache)
    table = sim.sensitivity({"defaults": {}}, 300.0, cache=cache, progress=False)
    assert len(cache) == simulated  # nothing simulated again
    edges = matrix.attrs["thresholds"]
    row = table.loc["defaults"].tolist()
    assert row == [round(edges["direct_to_queue"]), round(edges["queue_to_events"])]
    assert sim.format_thresholds(edges).startswith("direct below 1,")


def test_the_cache_keeps_the_most_recently_used_volumes() -> None:
    from claynb.sim._decide import make_scenario, run_candidates

    cache = sim.SimulationCache(max_volumes=2)
    scenario = make_scenario()
    first = run_candidates(300, scenario, cache)
    run_candidates(600, scenario, cache)
    assert run_candidates(300, scenario, cache) is first  # a hit, now the most recent
    run_candidates(900, scenario, cache)  # evicts 600, the least recently used
    assert len(cache) == 2 and cache.has(300, scenario) and not cache.has(600, scenario)


def test_without_a_budget_another_plan_rebills_the_cached_grid() -> None:
    cache = sim.SimulationCache()
    sim.decision_grid((500, 50_000), (300,), cache=cache)
    simulated = len(cache)
    rebilled = sim.decision_grid((500, 50_000), (300,), plan="launch", cache=cache)
    assert len(cache) == simulated
    pd.testing.assert_frame_equal(rebilled, sim.decision_grid((500, 50_000), (300,), plan="launch"))
    capped = {"monthly_budget_usd": 800.0, "cache": cache}
    sim.decision_grid((500,), (300,), **capped)
    sim.decision_grid((500,), (300,), plan="launch", **capped)
    assert len(cache) == simulated + 2  # with a budget the plan moves the cap: simulated


def test_filling_the_cache_simulates_each_missing_volume_once_as_alone() -> None:
    """fill simulates volumes side by side (threads, where the compiled loops run); each
    volume's results are what it gets simulated on its own, and progress counts to the end."""
    from claynb.sim._decide import make_scenario, run_candidates

    cache = sim.SimulationCache()
    scenario = make_scenario(arrivals=sim.ArrivalProfile(burstiness=0.2))
    run_candidates(2_000, scenario, cache)
    seen: list[tuple[int, int]] = []
    volumes = (500, 2_000, 40_000, 120_000, 2_000)
    cache.fill(volumes, scenario, lambda done, total: seen.append((done, total)))
    assert seen == [(2, 4), (3, 4), (4, 4)]  # 2,000 was there already; listed twice, once
    assert len(cache) == 4
    for volume in (500, 120_000):
        alone = run_candidates(volume, scenario)  # no cache: simulated here, in this thread
        for filled, own in zip(run_candidates(volume, scenario, cache), alone, strict=True):
            assert np.array_equal(filled.latency_s, own.latency_s, equal_nan=True)
            assert filled.clay_usd == own.clay_usd


@pytest.mark.parametrize("fill", [True, False])
def test_a_rate_limit_move_simulates_again_only_the_tiers_it_binds(fill: bool) -> None:
    """The direct tier's two calls never reach 10 or 5 requests/s: moving the limit between
    them takes its simulation from the cache, recorded under the new limit; at 1/s the limit
    binds and it is simulated again. Either way every result is what a fresh simulation under
    that limit gives, to the last bit."""
    from claynb.sim._decide import make_scenario, run_candidates

    cache = sim.SimulationCache()
    volume = 20_000.0
    before = run_candidates(volume, make_scenario(rate_limit_rps=10.0), cache)
    for limit, direct_reused in ((5.0, True), (1.0, False)):
        scenario = make_scenario(rate_limit_rps=limit, plan="launch")
        if fill:
            cache.fill((volume,), scenario, slos=(300.0,))
        moved = run_candidates(volume, scenario, cache)
        fresh = run_candidates(volume, scenario)  # no cache
        for got, own in zip(moved, fresh, strict=True):
            assert got.clay == own.clay and got.plan == own.plan
            assert got.summary() == own.summary()
            for name in ("latency_s", "wait_s", "failed", "over_budget", "depth_waiting"):
                assert np.array_equal(getattr(got, name), getattr(own, name), equal_nan=True)
        taken = [
            np.shares_memory(m.latency_s, b.latency_s) for m, b in zip(moved, before, strict=True)
        ]
        assert taken[0] is direct_reused  # the direct tier comes first
        assert not any(taken[1:])  # the queue and event tiers submit as the limit allows
