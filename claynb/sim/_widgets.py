"""Interactive dashboards for the notebooks: sliders in, a picture and the figures out.

The drawing is done by plain functions in ``_views``; a :class:`Dashboard` only wires
ipywidgets to them. Every change calls ``refresh()``, which shows a busy line while it
works (and a progress bar when simulations have to run), renders the figure to a PNG
``Image`` and the figures to ``HTML``, then says how long the redraw took. That keeps the
callbacks testable without a browser: build a dashboard, set ``controls[name].value``, and
read ``dashboard.table`` or ``dashboard.image.value``.

Displayed, a dashboard is the live widget in JupyterLab and, in the same output, a static
picture of its current state with a short note. A page without the widget manager (an
exported HTML report read offline) shows that picture instead of an empty box.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from claynb._plans import PLANS
from claynb.sim._decide import SimulationCache
from claynb.sim._heatmap import HeatmapPicture
from claynb.sim._matrix import Recommendation
from claynb.sim._pictures import SimulatorPicture
from claynb.sim._result import SimResult
from claynb.sim._units import NO_MATH, count, duration, money, summary_table, to_html
from claynb.sim._views import (
    MATRIX_DEFAULTS,
    MATRIX_SLOS,
    MATRIX_VOLUMES,
    SIMULATOR_DEFAULTS,
    matrix_grid,
    matrix_needs_simulation,
    simulator_headline,
    simulator_view,
)

if TYPE_CHECKING:
    pass

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@dataclass
class Dashboard:
    """Sliders wired to a view function; ``refresh()`` is the callback every slider calls."""

    controls: dict[str, Any]
    image: Any
    html: Any
    status: Any
    progress: Any
    widget: Any
    kind: str
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    reasons: list[str] = field(default_factory=list)
    recommendation: Recommendation | None = None
    figure: Any = None
    picture: HeatmapPicture | SimulatorPicture | None = None
    renders: int = 0
    last_draw_s: float = 0.0
    cache: SimulationCache = field(default_factory=SimulationCache)
    memo: dict[tuple[Any, ...], SimResult] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, _change: Any = None) -> None:
        """Recompute from the current slider values and redraw, showing that it is busy."""
        started = time.perf_counter()
        self.status.value = _status("working…", busy=True)
        try:
            if self.kind == "simulator":
                self.image.value = self._draw_simulator()
            else:
                self.image.value = self._draw_matrix()
        finally:
            self.progress.layout.visibility = "hidden"
        self.renders += 1
        self.last_draw_s = time.perf_counter() - started
        self.status.value = _status(f"drawn in {self.last_draw_s:.2f} s", busy=False)

    def _draw_simulator(self) -> bytes:
        if not isinstance(self.picture, SimulatorPicture):
            self.picture = SimulatorPicture()
        self.figure, self.table = simulator_view(self.settings(), self.memo, self.picture)
        lines = "".join(f"<li>{line}</li>" for line in simulator_headline(self.table))
        self.html.value = f'<ul class="{NO_MATH}" style="margin:0">{lines}</ul>'
        return self.picture.png()

    def _draw_matrix(self) -> bytes:
        s = self.settings()
        report = None
        if matrix_needs_simulation(s, self.cache):
            self.progress.value, self.progress.layout.visibility = 0, "visible"

            def report(done: int, total: int) -> None:
                self.progress.max, self.progress.value = total, done

        grid, rec = matrix_grid(s, self.cache, progress=report)
        if not isinstance(self.picture, HeatmapPicture):
            self.picture = HeatmapPicture(MATRIX_VOLUMES, MATRIX_SLOS)
            self.figure = self.picture.figure
        png = self.picture.png(grid, float(s["volume_per_day"]), float(s["slo_s"]))
        self.recommendation, self.table = rec, rec.table
        head = f"recommended: {rec.tier}" if rec.fits else "nothing fits"
        self.reasons = [head, *rec.reasons]
        items = "".join(f"<li>{html.escape(r)}</li>" for r in rec.reasons)
        self.html.value = f'<div class="{NO_MATH}"><b>{head}</b><ul>{items}</ul></div>'
        return png

    def details(self) -> pd.DataFrame:
        """The figures behind the picture, in words and analyst units."""
        if self.kind == "simulator":
            return summary_table(self.table)
        return self.recommendation.details() if self.recommendation else pd.DataFrame()

    def static_html(self) -> str:
        """The dashboard's current state as a picture and text, for pages without widgets."""
        picture = base64.b64encode(self.image.value).decode("ascii")
        shown = ", ".join(
            f"{_NOTE.get(k, _label(k))} {_value(k, v)}" for k, v in self.settings().items()
        )
        return (
            f'<div class="{NO_MATH}">'
            f"<p><em>A static picture of the dashboard as it was drawn ({html.escape(shown)}). "
            "Open the notebook in JupyterLab to move the sliders.</em></p>"
            f"{self.html.value}"
            f'<img style="max-width:100%" src="data:image/png;base64,{picture}"/>'
            f"{to_html(self.details())}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            WIDGET_VIEW: {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.widget.model_id,
            },
            "text/html": self.static_html(),
            "text/plain": f"<{self.kind} dashboard: {len(self.controls)} controls>",
        }


def _status(text: str, busy: bool) -> str:
    colour = "#b35900" if busy else "#666"
    return f'<span style="color:{colour};font-size:90%">{html.escape(text)}</span>'


_LABELS = {
    "volume_per_day": "leads per day",
    "burstiness": "share in bursts",
    "workers": "queue workers",
    "rate_limit_rps": "Clay rate limit (requests/s)",
    "slo_s": "latency target",
    "plan": "plan",
    "monthly_budget_usd": "Clay budget, $/month",
    "days": "days simulated",
    "team_size": "team size",
    "delay_usd_per_lead_hour": "cost of delay, $ per lead-hour",
    "engineer_usd_hour": "engineer, $/hour",
    "worker_usd_month": "worker, $/month",
}


# The same settings in the static picture's note, where the value carries the unit.
_NOTE = {
    "rate_limit_rps": "Clay rate limit",
    "monthly_budget_usd": "Clay budget",
    "delay_usd_per_lead_hour": "cost of delay per lead-hour",
    "engineer_usd_hour": "engineer",
    "worker_usd_month": "worker",
}


def _label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " "))


def _value(name: str, value: Any) -> str:
    if name == "slo_s":
        return duration(value)
    if name == "monthly_budget_usd":
        return money(value, "month") if value else "none (0)"
    if name == "worker_usd_month":
        return money(value, "month") if value else "none"
    if name == "engineer_usd_hour":
        return money(value, "hour")
    if name == "delay_usd_per_lead_hour":
        return money(value, None)
    if name == "rate_limit_rps":
        return f"{value:g} requests/s"
    if name == "burstiness":
        return f"{value:.0%}"
    if isinstance(value, int | float):
        return count(value)
    return str(value)


def _sliders(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    import ipywidgets as w

    style = {"description_width": "200px"}
    layout = w.Layout(width="470px")
    common = {"style": style, "layout": layout, "continuous_update": False}
    whole = {**common, "readout_format": ",.0f"}
    controls: dict[str, Any] = {
        "volume_per_day": w.FloatLogSlider(
            value=values["volume_per_day"], base=10, min=2, max=5.5, step=0.05, **whole
        ),
        "burstiness": w.FloatSlider(
            value=values["burstiness"], min=0, max=0.9, step=0.05, readout_format=".0%", **common
        ),
        "rate_limit_rps": w.FloatSlider(
            value=values["rate_limit_rps"], min=1, max=50, step=1, **whole
        ),
        "slo_s": w.FloatLogSlider(
            value=values["slo_s"], base=10, min=1.5, max=4, step=0.05, **whole
        ),
        "plan": w.Dropdown(options=list(PLANS), value=values["plan"], style=style, layout=layout),
        "monthly_budget_usd": w.BoundedFloatText(
            value=values["monthly_budget_usd"],
            min=0,
            max=10_000_000,
            step=500,
            style=style,
            layout=layout,
        ),
    }
    if kind == "simulator":
        controls["workers"] = w.IntSlider(value=values["workers"], min=1, max=64, **common)
        controls["days"] = w.IntSlider(value=int(values["days"]), min=1, max=30, **common)
    else:
        controls["team_size"] = w.IntSlider(value=values["team_size"], min=1, max=30, **common)
        controls["delay_usd_per_lead_hour"] = w.FloatSlider(
            value=values["delay_usd_per_lead_hour"],
            min=0,
            max=5,
            step=0.1,
            readout_format=".1f",
            **common,
        )
        controls["engineer_usd_hour"] = w.FloatSlider(
            value=values["engineer_usd_hour"], min=20, max=300, step=10, **whole
        )
        controls["worker_usd_month"] = w.FloatSlider(
            value=values["worker_usd_month"], min=5, max=200, step=5, **whole
        )
    for name, control in controls.items():
        control.description = _label(name)
        control.description_allow_html = False
    controls["monthly_budget_usd"].tooltip = "0 means no budget: the month is not capped"
    if "slo_s" in controls:
        controls["slo_s"].description = "latency target (seconds)"
    return controls


def _dashboard(
    kind: str, defaults: dict[str, Any], initial: dict[str, Any], cache: SimulationCache | None
) -> Dashboard:
    import ipywidgets as w

    unknown = set(initial) - set(defaults)
    if unknown:
        raise ValueError(f"unknown dashboard settings: {', '.join(sorted(unknown))}")
    controls = _sliders(kind, {**defaults, **initial})
    image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
    info = w.HTML(layout=w.Layout(flex="1 1 360px", min_width="300px"))
    status = w.HTML()
    progress = w.IntProgress(
        value=0, min=0, max=1, description="simulating", layout=w.Layout(visibility="hidden")
    )
    top = w.Box(
        [w.VBox(list(controls.values())), info],
        layout=w.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"),
    )
    panel = w.VBox([top, w.HBox([status, progress]), image], layout=w.Layout(max_width="100%"))
    board = Dashboard(controls, image, info, status, progress, panel, kind)
    if cache is not None:
        board.cache = cache
    for control in controls.values():
        control.observe(board.refresh, names="value")
    board.refresh()
    return board


def simulator_dashboard(**initial: Any) -> Dashboard:
    """Sliders for volume, burstiness, workers, rate limit, SLO, plan and budget; display it."""
    return _dashboard("simulator", SIMULATOR_DEFAULTS, initial, None)


def matrix_dashboard(*, cache: SimulationCache | None = None, **initial: Any) -> Dashboard:
    """The decision matrix under your prices, with your point and the reasons; display it.

    Pass the ``cache`` the notebook's earlier cells used and the first draw needs no
    simulation.
    """
    return _dashboard("matrix", MATRIX_DEFAULTS, initial, cache)
