"""The waterfall optimiser against brute force and the exchange rule."""

from __future__ import annotations

import itertools

import pytest

from claynb import DEFAULT_ROUTINES, Provider, Routine, sim


def test_find_work_email_is_cheapest_cheapest_first() -> None:
    plan = sim.optimise_waterfall("find-work-email")
    assert plan.best == ("email-finder-a", "email-finder-b", "email-finder-c")
    assert len(plan.orders) == 6
    assert plan.orders["match_rate"].round(12).nunique() == 1  # order never changes the match rate
    assert plan.orders["usd_per_row"].is_monotonic_increasing


def test_matches_routine_expected_cost_for_every_order() -> None:
    routine = DEFAULT_ROUTINES["find-work-email"]
    plan = sim.optimise_waterfall(routine)
    for order in itertools.permutations(routine.providers):
        names = tuple(p.name for p in order)
        row = plan.orders[plan.orders["order"] == names].iloc[0]
        assert row["data_credits_per_row"] == pytest.approx(
            routine.with_providers(order).expected_cost().data_credits
        )


def test_rule_beats_a_bad_given_order_and_reports_the_saving() -> None:
    providers = [("pricey-but-good", 0.7, 8.0), ("cheap", 0.3, 1.0), ("mid", 0.5, 3.0)]
    plan = sim.optimise_waterfall(providers)
    assert plan.best == ("cheap", "mid", "pricey-but-good")
    assert plan.saving_per_row_usd > 0
    assert [p.name for p in plan.best_routine.providers] == list(plan.best)


def test_charge_on_miss_orders_by_cost_per_hit() -> None:
    providers = [
        Provider("a", 0.9, 5.0, charge_on_miss=True),
        Provider("b", 0.1, 1.0, charge_on_miss=True),
    ]
    plan = sim.optimise_waterfall(providers)
    # a: 5/0.9 = 5.6 credits per unit of hit rate, b: 1/0.1 = 10, so a first
    assert plan.best == ("a", "b")
    brute = min(
        itertools.permutations(providers),
        key=lambda o: Routine("x", (), (), o).expected_cost().data_credits,
    )
    assert tuple(p.name for p in brute) == plan.best


def test_many_providers_use_the_rule() -> None:
    providers = [(f"p{i}", 0.1 + 0.05 * i, float(10 - i)) for i in range(9)]
    plan = sim.optimise_waterfall(providers)
    assert plan.best == tuple(f"p{i}" for i in reversed(range(9)))


def test_plot_and_errors() -> None:
    from matplotlib.figure import Figure

    assert isinstance(sim.optimise_waterfall("find-work-email").plot(), Figure)
    with pytest.raises(ValueError, match="hit_rate"):
        sim.optimise_waterfall([("x", 1.5, 1.0)])
    with pytest.raises(ValueError, match="at least one"):
        sim.optimise_waterfall([])
