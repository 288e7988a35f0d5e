"""simulate(): the behaviour a user would notice from each knob, and the money."""

from __future__ import annotations

import numpy as np
import pytest

from claynb import get_plan, sim

QUIET = sim.ClayBehaviour(rate_limit_rps=None, failure_rate=0.0)


def test_result_carries_the_headline_numbers() -> None:
    r = sim.simulate("queue", 5_000, days=2, seed=1)
    assert r.leads == r.arrivals.size > 8_000
    assert r.p50 <= r.p95 <= r.p99
    assert 30.0 <= r.p50 < 300.0  # Clay's 30-60 s plus polling and batching
    assert 0.0 <= r.late_share <= 1.0
    assert r.throughput_per_day == pytest.approx(r.leads / 2, rel=0.02)
    frame = r.queue_depth()
    assert list(frame.columns) == ["hour", "waiting", "in_flight"] and (frame["waiting"] >= 0).all()
    assert set(r.summary()) >= {
        "p50_s",
        "p95_s",
        "p99_s",
        "late_share",
        "clay_usd_month",
        "infra_usd_month",
    }
    assert "queue" in repr(r)


def test_same_seed_same_answer_other_seed_other_answer() -> None:
    a = sim.simulate("events", 3_000, seed=4)
    b = sim.simulate("events", 3_000, seed=4)
    c = sim.simulate("events", 3_000, seed=5)
    np.testing.assert_array_equal(a.latency_s, b.latency_s)
    assert a.leads != c.leads or not np.array_equal(a.latency_s, c.latency_s)


def test_the_direct_tier_saturates_where_the_queue_does_not() -> None:
    direct = sim.simulate("direct", 20_000, seed=2)
    queue = sim.simulate("queue", 20_000, seed=2)
    assert direct.late_share > 0.5 and direct.max_queue_depth > 1_000
    assert queue.late_share < 0.05


def test_more_workers_cut_queue_latency() -> None:
    one = sim.simulate("queue", 30_000, workers=1, clay=QUIET, seed=3)
    many = sim.simulate("queue", 30_000, workers=16, clay=QUIET, seed=3)
    assert many.p95 < one.p95
    assert many.mean_batch < one.mean_batch  # idle workers pick leads up one by one


def test_bursts_build_a_queue() -> None:
    steady = sim.simulate("queue", 20_000, clay=QUIET, seed=6)
    bursty = sim.simulate(
        "queue",
        20_000,
        arrivals=sim.ArrivalProfile(burstiness=0.5, burst_size=5_000),
        clay=QUIET,
        seed=6,
    )
    assert bursty.max_queue_depth > 5 * steady.max_queue_depth
    assert bursty.p99 > steady.p99


def test_lost_webhooks_fall_back_to_polling() -> None:
    clean = sim.simulate("events", 10_000, webhook_loss=0.0, clay=QUIET, seed=7)
    lossy = sim.simulate("events", 10_000, webhook_loss=0.2, clay=QUIET, seed=7)
    assert clean.p99 < 65.0
    assert lossy.p99 >= 120.0  # the fallback poller's delay
    assert lossy.api_requests > clean.api_requests


def test_a_tight_rate_limit_slows_polling_workers() -> None:
    free = sim.simulate("queue", 40_000, workers=32, batch_size=1, rate_limit_rps=None, seed=8)
    tight = sim.simulate("queue", 40_000, workers=32, batch_size=1, rate_limit_rps=1.2, seed=8)
    assert tight.p95 > free.p95 * 2


def test_retries_recover_failures_and_direct_loses_them() -> None:
    flaky = sim.ClayBehaviour(rate_limit_rps=None, failure_rate=0.05)
    direct = sim.simulate("direct", 500, clay=flaky, seed=9)
    queue = sim.simulate("queue", 500, clay=flaky, seed=9)
    assert direct.failed.mean() == pytest.approx(0.05, abs=0.02)
    assert queue.failed.sum() == 0
    assert (
        queue.p99 > sim.simulate("queue", 500, clay=QUIET, seed=9).p99
    )  # backoff shows in the tail


def test_clay_bill_is_plan_plus_top_ups_at_thirty_percent() -> None:
    r = sim.simulate("queue", 2_000, plan="growth", seed=10)
    growth = get_plan("growth")
    assert r.actions_month == pytest.approx(
        2_000 * 30 * 0.8, rel=0.05
    )  # enrich-person matches ~80%
    extra_actions = r.actions_month - growth.actions
    extra_credits = r.data_credits_month - growth.data_credits
    assert extra_actions > 0 and extra_credits > 0
    expected = growth.monthly_usd + 1.3 * (
        extra_actions * growth.usd_per_action + extra_credits * growth.usd_per_data_credit
    )
    assert r.clay_usd == pytest.approx(expected, rel=1e-9)
    assert r.top_up_usd == pytest.approx(expected - growth.monthly_usd)


def test_rollover_credits_lower_the_bill() -> None:
    plain = sim.simulate("queue", 1_000, seed=11)
    rolled = sim.simulate("queue", 1_000, rollover_data_credits=5_000, seed=11)
    assert rolled.clay_usd < plain.clay_usd


def test_a_budget_cap_holds_and_the_direct_tier_overspends() -> None:
    budget = 5_000.0
    queue = sim.simulate("queue", 10_000, monthly_budget_usd=budget, seed=12)
    direct = sim.simulate("direct", 10_000, monthly_budget_usd=budget, seed=12)
    assert queue.clay_usd <= budget + 1e-6
    assert queue.over_budget.sum() > 0
    assert queue.overspend_usd == pytest.approx(queue.uncapped_bill_usd - budget)
    assert direct.over_budget.sum() == 0
    assert direct.clay_usd > budget
    assert direct.overspend_usd == pytest.approx(direct.clay_usd - budget, rel=1e-9)


def test_infrastructure_line_follows_the_prices() -> None:
    prices = sim.Prices(worker_usd_month=40.0, redis_usd_month=15.0, event_bus_usd_month=500.0)
    queue = sim.simulate("queue", 1_000, workers=3, prices=prices)
    events = sim.simulate("events", 1_000, prices=prices)
    assert queue.infra_usd == {"workers": 120.0, "redis": 15.0}
    assert events.infra_usd["event bus"] == 500.0
    table = queue.cost_table()
    assert table["usd_month"].sum() == pytest.approx(queue.total_usd_month)


def test_the_waterfall_routine_charges_more_credits_than_actions() -> None:
    r = sim.simulate("events", 2_000, routine="find-work-email", seed=13)
    assert r.data_credits_month > r.actions_month > 0


def test_plots_are_figures() -> None:
    from matplotlib.figure import Figure

    fig = sim.simulate("queue", 1_000, monthly_budget_usd=800).plot()
    assert isinstance(fig, Figure) and len(fig.axes) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tier": "kafka"}, "unknown tier"),
        ({"batch_size": 500}, "batch_size"),
        ({"workers": 0}, "at least one worker"),
        ({"arrivals": "weekends"}, "arrival shape"),
        ({"plan": "platinum"}, "unknown plan"),
        ({"nonsense": 1}, "queue tier"),
    ],
)
def test_bad_settings_say_what_is_wrong(kwargs: dict, message: str) -> None:
    tier = kwargs.pop("tier", "queue")
    with pytest.raises((ValueError, KeyError), match=message):
        sim.simulate(tier, 100, **kwargs)


def test_billing_under_another_plan_is_simulating_under_it() -> None:
    for tier in ("direct", "queue", "events"):
        growth = sim.simulate(tier, 30_000, plan="growth", seed=3)
        launch = sim.simulate(tier, 30_000, plan="launch", seed=3)
        rebilled = growth.billed_under(launch.plan)
        assert rebilled.summary() == launch.summary()
        assert rebilled.uncapped_bill_usd == launch.uncapped_bill_usd
        assert rebilled.clay_usd != growth.clay_usd
    capped = sim.simulate("queue", 1_000, monthly_budget_usd=900.0)
    with pytest.raises(ValueError, match="budget"):
        capped.billed_under(launch.plan)


@pytest.mark.parametrize("budget", [None, 15_000.0])
def test_models_simulated_together_are_each_what_simulate_gives_alone(budget: float | None) -> None:
    """simulate_each shares the arrivals and the queue's run draws between its models; each
    result must still be, to the bit, what that model gets alone."""
    from claynb._routines import get_routine
    from claynb.sim._simulate import Terms, simulate_each
    from claynb.sim._tiers import make_tier

    clay = sim.ClayBehaviour(failure_rate=0.05)
    arrivals = sim.ArrivalProfile(burstiness=0.2)
    models = [make_tier("queue", workers=w) for w in (1, 4, 64)]
    models += [make_tier("queue", workers=4, poll_interval_s=5.0), make_tier("direct")]
    terms = Terms(routine=get_routine("enrich-person"), plan=get_plan("growth"), budget=budget)
    together = simulate_each(models, 30_000, 1.0, arrivals, clay, terms, seed=3)
    for model, shared in zip(models, together, strict=True):
        alone = sim.simulate(
            model, 30_000, arrivals=arrivals, clay=clay, monthly_budget_usd=budget, seed=3
        )
        for name in ("latency_s", "wait_s", "failed", "over_budget", "depth_waiting"):
            assert np.array_equal(getattr(shared, name), getattr(alone, name), equal_nan=True)
        assert (shared.runs, shared.busy_s, shared.clay_usd) == (
            alone.runs,
            alone.busy_s,
            alone.clay_usd,
        )
