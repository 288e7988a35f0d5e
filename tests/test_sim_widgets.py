"""The dashboards' callbacks, headless: build, move a slider, check what was redrawn."""

from __future__ import annotations

import pytest

from claynb import sim
from claynb.sim._widgets import simulator_view


def test_simulator_view_is_a_plain_function() -> None:
    fig, table = simulator_view({"volume_per_day": 2_000, "workers": 2})
    assert list(table.columns) == ["direct", "queue", "events"]
    assert len(fig.axes) == 6


def test_moving_sliders_redraws_the_simulator() -> None:
    board = sim.simulator_dashboard(volume_per_day=5_000, workers=8)
    assert board.renders == 1 and board.image.value[:4] == b"\x89PNG"
    first_png, first_p95 = board.image.value, board.table.loc["p95_s", "queue"]

    board.controls["workers"].value = 1  # the observer calls refresh()
    assert board.renders == 2
    assert board.table.loc["p95_s", "queue"] > first_p95
    assert board.image.value != first_png

    board.controls["volume_per_day"].value = 50_000
    assert board.table.loc["leads", "queue"] > 30_000
    assert board.table.loc["late_share", "direct"] > 0.5

    board.controls["monthly_budget_usd"].value = 2_000.0
    assert board.table.loc["over_budget", "queue"] > 0
    assert board.table.loc["overspend_usd_month", "direct"] > 0
    assert "over_budget" in board.html.value


def test_plan_and_burstiness_change_cost_and_depth() -> None:
    board = sim.simulator_dashboard(volume_per_day=3_000)
    growth_bill = board.table.loc["clay_usd_month", "queue"]
    board.controls["plan"].value = "launch"
    assert board.table.loc["clay_usd_month", "queue"] != growth_bill
    calm = board.table.loc["max_queue_depth", "queue"]
    board.controls["burstiness"].value = 0.8
    assert board.table.loc["max_queue_depth", "queue"] > calm


def test_matrix_dashboard_reprices_without_resimulating() -> None:
    board = sim.matrix_dashboard(volume_per_day=300, slo_s=300, team_size=20)
    assert board.reasons[0] == "recommended: direct"
    sims, png = board._sims, board.image.value
    board.controls["volume_per_day"].value = 200_000
    assert board.reasons[0] == "recommended: events"
    board.controls["team_size"].value = 4
    assert board.reasons[0] == "recommended: queue"
    assert any("needs about 10 people" in r for r in board.reasons)
    board.controls["engineer_usd_hour"].value = 20.0
    assert board._sims is sims  # point, team and prices only re-price the grid
    assert board.image.value != png
    board.controls["burstiness"].value = 0.5
    assert board._sims is not sims  # the arrivals changed: simulate again
    assert "<li>" in board.html.value and board.image.value[:4] == b"\x89PNG"


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dashboard settings"):
        sim.simulator_dashboard(colour="red")
