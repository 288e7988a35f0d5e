"""Interactive dashboards for the notebooks: sliders in, plots and tables out.

The work is done by two plain functions, ``simulator_view(settings)`` and
``matrix_view(settings, grid=None)``, which take a dict of slider values and return the
figure and tables. The dashboards only wire ipywidgets to them: every change calls
``refresh()``, which renders the figure to a PNG ``Image`` widget and the tables to an
``HTML`` widget. That keeps the callbacks testable without a browser or a kernel: build a
dashboard, set ``controls[name].value``, and read ``dashboard.table`` or
``dashboard.image.value``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from claynb._plans import PLANS
from claynb.sim._arrivals import ArrivalProfile
from claynb.sim._cost import Prices
from claynb.sim._decide import make_scenario
from claynb.sim._matrix import assess_grid, plot_decision_matrix, recommend, simulate_grid
from claynb.sim._simulate import simulate
from claynb.sim._tiers import TIERS, ClayBehaviour

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
# The matrix settings that change what is simulated; the others only re-price the grid.
_SIMULATION_INPUTS = ("burstiness", "rate_limit_rps", "plan", "monthly_budget_usd")


def _budget(value: float) -> float | None:
    return float(value) if value and value > 0 else None


def simulator_view(settings: dict[str, Any]) -> tuple[Figure, pd.DataFrame]:
    """Every tier under the slider settings: latency histograms, queue depth, monthly cost."""
    import matplotlib.pyplot as plt

    s = {**SIMULATOR_DEFAULTS, **settings}
    clay = ClayBehaviour(rate_limit_rps=s["rate_limit_rps"] or None)
    arrivals = ArrivalProfile(burstiness=float(s["burstiness"]))
    results = [
        simulate(
            t,
            float(s["volume_per_day"]),
            days=float(s["days"]),
            arrivals=arrivals,
            clay=clay,
            workers=int(s["workers"]) if t == "queue" else None,
            plan=s["plan"],
            monthly_budget_usd=_budget(s["monthly_budget_usd"]),
            slo_s=float(s["slo_s"]),
        )
        for t in TIERS
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    for ax, result in zip(axes[0], results, strict=True):
        result.plot_latency(ax)
    for result in results:
        axes[1][0].plot(result.depth_time_s / 3600, result.depth_waiting, label=result.tier.name)
    axes[1][0].set(title="leads waiting", xlabel="hour", ylabel="leads", yscale="symlog")
    axes[1][0].legend(fontsize=8)
    _cost_bars(axes[1][1], results)
    axes[1][2].axis("off")
    fig.tight_layout()
    plt.close(fig)
    table = pd.DataFrame({r.tier.name: r.summary() for r in results}).drop(index="tier")
    return fig, table


def _cost_bars(ax: Any, results: list[Any]) -> None:
    names = [r.tier.name for r in results]
    clay = [r.clay_usd for r in results]
    infra = [r.infra_usd_month for r in results]
    ops = [r.ops_usd for r in results]
    ax.bar(names, clay, label="Clay")
    ax.bar(names, infra, bottom=clay, label="infrastructure")
    ax.bar(names, ops, bottom=[c + i for c, i in zip(clay, infra, strict=True)], label="upkeep")
    budget = results[0].monthly_budget_usd
    if budget:
        ax.axhline(budget, color="crimson", ls="--", label="Clay budget")
    ax.set(title="monthly cost (USD)")
    ax.legend(fontsize=8)


def _matrix_options(s: dict[str, Any]) -> dict[str, Any]:
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
        "monthly_budget_usd": _budget(s["monthly_budget_usd"]),
    }


def matrix_view(
    settings: dict[str, Any],
    sims: dict[float, list[Any]] | None = None,
    volumes: tuple[float, ...] = MATRIX_VOLUMES,
    slos: tuple[float, ...] = MATRIX_SLOS,
) -> tuple[Figure, pd.DataFrame, list[str], dict[float, list[Any]]]:
    """The heatmap with your point, the recommendation's table and reasons, and the simulations.

    Pass back ``sims`` from a previous call while only prices, team, delay value, SLO or your
    point changed: the grid is then re-priced, not re-simulated.
    """
    s = {**MATRIX_DEFAULTS, **settings}
    options = _matrix_options(s)
    scenario = make_scenario(**options)
    if sims is None:
        sims = simulate_grid(volumes, scenario)
    grid = assess_grid(sims, slos, scenario)
    fig = plot_decision_matrix(
        grid=grid, volume_per_day=float(s["volume_per_day"]), latency_slo_s=float(s["slo_s"])
    )
    rec = recommend(float(s["volume_per_day"]), float(s["slo_s"]), **options)
    return fig, rec.table, [f"recommended: {rec.tier}", *rec.reasons], sims


@dataclass
class Dashboard:
    """Sliders wired to a view function; ``refresh()`` is the callback every slider calls."""

    controls: dict[str, Any]
    image: Any
    html: Any
    widget: Any
    kind: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    reasons: list[str] = field(default_factory=list)
    figure: Any = None
    renders: int = 0
    _sims: dict[float, list[Any]] | None = None
    _sims_key: tuple[Any, ...] | None = None

    def settings(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, _change: Any = None) -> None:
        """Recompute from the current slider values and redraw."""
        s = self.settings()
        if self.kind == "simulator":
            self.figure, self.table = simulator_view(s)
            self.html.value = self.table.to_html(float_format=lambda v: f"{v:,.2f}")
        else:
            key = tuple(s[k] for k in _SIMULATION_INPUTS)
            sims = self._sims if key == self._sims_key else None
            self.figure, self.table, self.reasons, self._sims = matrix_view(s, sims)
            self._sims_key = key
            items = "".join(f"<li>{r}</li>" for r in self.reasons[1:])
            self.html.value = f"<b>{self.reasons[0]}</b><ul>{items}</ul>"
        self.image.value = _png(self.figure)
        self.renders += 1


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _sliders(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    import ipywidgets as w

    style = {"description_width": "150px"}
    layout = w.Layout(width="420px")
    common = {"style": style, "layout": layout, "continuous_update": False}
    controls: dict[str, Any] = {
        "volume_per_day": w.FloatLogSlider(
            value=values["volume_per_day"],
            base=10,
            min=2,
            max=5.5,
            step=0.05,
            description="leads per day",
            **common,
        ),
        "burstiness": w.FloatSlider(
            value=values["burstiness"],
            min=0,
            max=0.9,
            step=0.05,
            description="burstiness",
            **common,
        ),
        "rate_limit_rps": w.FloatSlider(
            value=values["rate_limit_rps"],
            min=1,
            max=50,
            step=1,
            description="Clay rate limit (req/s)",
            **common,
        ),
        "slo_s": w.FloatLogSlider(
            value=values["slo_s"],
            base=10,
            min=1.5,
            max=4,
            step=0.05,
            description="latency SLO (s)",
            **common,
        ),
        "plan": w.Dropdown(
            options=list(PLANS),
            value=values["plan"],
            description="plan",
            style=style,
            layout=layout,
        ),
        "monthly_budget_usd": w.FloatText(
            value=values["monthly_budget_usd"],
            description="Clay budget ($, 0=none)",
            style=style,
            layout=layout,
        ),
    }
    if kind == "simulator":
        controls["workers"] = w.IntSlider(
            value=values["workers"], min=1, max=64, description="queue workers", **common
        )
        controls["days"] = w.FloatSlider(
            value=values["days"], min=1, max=30, step=1, description="days simulated", **common
        )
    else:
        controls["team_size"] = w.IntSlider(
            value=values["team_size"], min=1, max=30, description="team size", **common
        )
        controls["delay_usd_per_lead_hour"] = w.FloatSlider(
            value=values["delay_usd_per_lead_hour"],
            min=0,
            max=5,
            step=0.1,
            description="delay $/lead-hour",
            **common,
        )
        controls["engineer_usd_hour"] = w.FloatSlider(
            value=values["engineer_usd_hour"],
            min=20,
            max=300,
            step=10,
            description="engineer $/hour",
            **common,
        )
        controls["worker_usd_month"] = w.FloatSlider(
            value=values["worker_usd_month"],
            min=5,
            max=200,
            step=5,
            description="worker $/month",
            **common,
        )
    return controls


def _dashboard(kind: str, defaults: dict[str, Any], initial: dict[str, Any]) -> Dashboard:
    import ipywidgets as w

    unknown = set(initial) - set(defaults)
    if unknown:
        raise ValueError(f"unknown dashboard settings: {', '.join(sorted(unknown))}")
    controls = _sliders(kind, {**defaults, **initial})
    image, html = w.Image(format="png"), w.HTML()
    panel = w.VBox([w.HBox([w.VBox(list(controls.values())), html]), image])
    board = Dashboard(controls, image, html, panel, kind)
    for control in controls.values():
        control.observe(board.refresh, names="value")
    board.refresh()
    return board


def simulator_dashboard(**initial: Any) -> Dashboard:
    """Sliders for volume, burstiness, workers, rate limit, SLO, plan and budget; display ``.widget``."""
    return _dashboard("simulator", SIMULATOR_DEFAULTS, initial)


def matrix_dashboard(**initial: Any) -> Dashboard:
    """The decision matrix under your prices, with your point and the reasons; display ``.widget``."""
    return _dashboard("matrix", MATRIX_DEFAULTS, initial)
