"""The dashboards' callbacks, headless: build, move a slider, check what was redrawn."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
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
    assert "held back by the budget" in board.html.value


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
    png = board.image.value
    board.controls["volume_per_day"].value = 200_000
    assert board.reasons[0] == "recommended: events"
    simulated = len(board.cache)
    board.controls["team_size"].value = 4
    assert board.reasons[0] == "recommended: queue"
    assert any("needs about 10 people" in r for r in board.reasons)
    board.controls["engineer_usd_hour"].value = 20.0
    board.controls["slo_s"].value = 120.0
    assert len(board.cache) == simulated  # SLO, team and prices only re-price the grid
    assert board.image.value != png
    board.controls["burstiness"].value = 0.5
    assert len(board.cache) > simulated  # the arrivals changed: simulate again
    assert board.progress.layout.visibility == "hidden"  # shown while simulating, then hidden
    assert "<li>" in board.html.value and board.image.value[:4] == b"\x89PNG"
    assert "drawn in" in board.status.value


def test_matrix_dashboard_says_when_nothing_fits() -> None:
    board = sim.matrix_dashboard(volume_per_day=800, slo_s=60, team_size=2)
    assert board.reasons[0] == "nothing fits"
    assert board.recommendation is not None and board.recommendation.changes
    assert "smallest change: " in board.html.value


def test_a_shared_cache_makes_the_first_draw_simulation_free() -> None:
    cache = sim.SimulationCache()
    grid = sim.decision_grid(cache=cache)
    simulated = len(cache)
    board = sim.matrix_dashboard(cache=cache, volume_per_day=20_000)
    assert len(cache) == simulated  # the dashboard's volumes were all in the grid
    assert board.progress.layout.visibility == "hidden"
    assert grid["recommended"].sum() == grid.groupby(["volume_per_day", "slo_s"]).ngroups


def test_the_simulator_resimulates_only_the_tier_a_slider_touches() -> None:
    board = sim.simulator_dashboard(volume_per_day=2_000)
    assert len(board.memo) == 3
    board.controls["slo_s"].value = 120.0  # read again at the new target, not re-run
    assert len(board.memo) == 3 and board.table.loc["slo_s", "queue"] == 120.0
    board.controls["workers"].value = 2  # only the queue tier has workers
    assert len(board.memo) == 4


def test_displayed_it_is_the_widget_with_a_static_picture_beside_it() -> None:
    board = sim.matrix_dashboard(volume_per_day=5_000)
    bundle = board._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == board.widget.model_id
    static = bundle["text/html"]
    assert "data:image/png;base64," in static and "static picture" in static
    assert "mathjax_ignore" in static and "5,000" in static
    assert "recommended: queue" in static


def test_readouts_are_analyst_units() -> None:
    board = sim.matrix_dashboard()
    assert board.controls["volume_per_day"].readout_format == ",.0f"
    assert board.controls["burstiness"].readout_format == ".0%"
    assert all("_" not in c.description for c in board.controls.values())


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dashboard settings"):
        sim.simulator_dashboard(colour="red")


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def test_the_heatmap_repaints_in_place_as_a_full_draw_would() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from claynb.sim._heatmap import FIGSIZE, Heatmap, HeatmapPicture, _frame
    from claynb.sim._pictures import DPI, canvas_png

    cache = sim.SimulationCache()
    volumes, slos = (300, 3_000, 30_000, 200_000), (60, 300, 3_600)
    grid = sim.decision_grid(volumes, slos, cache=cache)
    other = sim.decision_grid(volumes, slos, cache=cache, team_size=2)

    def picked(g: pd.DataFrame) -> list[str]:
        return g[g["recommended"]]["tier"].tolist()

    assert picked(grid) != picked(other)
    picture = HeatmapPicture(volumes, slos)
    picture.png(other, 30_000, 60)  # something else first: nothing of it may remain
    blitted = _pixels(picture.png(grid, 3_000, 300))

    full = Figure(figsize=FIGSIZE, dpi=DPI)
    canvas = FigureCanvasAgg(full)
    _frame(full)
    Heatmap(full.add_subplot(), volumes, slos, marked=True).show(grid, 3_000, 300)
    canvas.draw()
    drawn = _pixels(canvas_png(canvas))
    assert blitted.shape == drawn.shape
    differ = np.any(blitted != drawn, axis=2).mean()
    # A handful of pixels may differ where antialiased edges meet (the frame's corners).
    assert differ < 1e-4, f"{differ:.3%} of the pixels differ"


def test_the_heatmap_draws_again_only_the_cells_that_changed_as_a_full_draw_would() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from claynb.sim._heatmap import FIGSIZE, Heatmap, HeatmapPicture, _frame
    from claynb.sim._pictures import DPI, canvas_png

    cache = sim.SimulationCache()
    volumes, slos = (300, 3_000, 30_000, 200_000), (60, 300, 3_600)
    grid = sim.decision_grid(volumes, slos, cache=cache)
    other = sim.decision_grid(volumes, slos, cache=cache, team_size=2)
    picture = HeatmapPicture(volumes, slos)
    drawn_names = []
    # Your point on a cell's name, between cells, at the edge; the grid changing under it.
    for g, volume, slo in (
        (grid, 3_000, 300),
        (grid, 3_000, 300),
        (grid, 30_000, 60),
        (other, 30_000, 60),
        (other, 1_000, 150),
        (grid, 200_000, 3_600),
        (grid, 250_000, 3_600),
    ):
        blitted = _pixels(picture.png(g, volume, slo))
        drawn_names.append(picture.names_drawn)
        full = Figure(figsize=FIGSIZE, dpi=DPI)
        canvas = FigureCanvasAgg(full)
        _frame(full)
        Heatmap(full.add_subplot(), volumes, slos, marked=True).show(g, volume, slo)
        canvas.draw()
        drawn = _pixels(canvas_png(canvas))
        differ = np.any(blitted != drawn, axis=2).mean()
        assert differ < 1e-4, f"at {volume}, {slo}: {differ:.3%} of the pixels differ"
    cells = len(volumes) * len(slos)
    assert drawn_names[0] == cells  # nothing to copy yet
    assert drawn_names[1] == 1  # nothing changed: only the name under your point
    assert 0 < drawn_names[3] < cells  # the cells the team size changed


def test_the_simulator_repaints_in_place_as_a_full_draw_would() -> None:
    from claynb.sim._pictures import SimulatorPicture, canvas_png
    from claynb.sim._views import simulate_tiers

    memo: dict = {}
    picture = SimulatorPicture()
    picture.show(simulate_tiers({"volume_per_day": 60_000, "monthly_budget_usd": 3_000.0}, memo))
    picture.png()  # something else first: nothing of it may remain
    for settings in (  # every panel moves; then some panels; then the SLO and the workers
        {"volume_per_day": 2_000, "slo_s": 60.0},
        {"volume_per_day": 2_000, "slo_s": 90.0},
        {"volume_per_day": 2_000, "slo_s": 90.0, "workers": 1},
        {"volume_per_day": 200_000, "plan": "launch"},
    ):
        results = simulate_tiers(settings, memo)
        picture.show(results)
        blitted = _pixels(picture.png())
        full = SimulatorPicture()
        full.show(results)
        for artist in full.changing:
            artist.set_animated(False)
        full._canvas.draw()
        drawn = _pixels(canvas_png(full._canvas))
        assert blitted.shape == drawn.shape
        differ = np.any(blitted != drawn, axis=2).mean()
        assert differ < 1e-4, f"{differ:.3%} of the pixels differ"


@pytest.mark.parametrize("kind", ["simulator", "matrix"])
def test_a_redraw_in_place_leaves_nothing_of_the_last_picture(kind: str) -> None:
    if kind == "simulator":
        board = sim.simulator_dashboard(volume_per_day=2_000)
        moves = {"volume_per_day": 60_000.0, "monthly_budget_usd": 3_000.0, "slo_s": 60.0}
    else:
        board = sim.matrix_dashboard(volume_per_day=2_000)
        moves = {"volume_per_day": 60_000.0, "team_size": 2, "slo_s": 60.0}
    first = board.image.value
    before = {name: board.controls[name].value for name in moves}
    for name, value in moves.items():
        board.controls[name].value = value
        assert board.image.value != first
    for name, value in before.items():
        board.controls[name].value = value
    assert _pixels(board.image.value).tolist() == _pixels(first).tolist()
