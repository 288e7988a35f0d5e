"""The dashboards' pictures: figures of their own, drawn in place and handed out as PNG.

A dashboard redraws after every slider move, so its figure is made once and kept: a redraw
gives the artists new data and renders (``SimulatorPicture`` here, ``HeatmapPicture`` in
``_heatmap``). The figures have their own Agg canvas, never pyplot's, so nothing is left
open for a notebook to show a second time; the PNG is written with light compression, as it
is replaced at the next redraw.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from claynb.sim._result import TIER_COLOURS, LatencyPanel, SimResult
from claynb.sim._tiers import TIERS
from claynb.sim._units import count_formatter, money_formatter

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

DPI = 80
MARGIN_PX = 2  # blanked around a panel's place, for antialiased edges
COST_LINES = ("Clay", "infrastructure", "upkeep")


def picture_figure(size: tuple[float, float]) -> tuple[Figure, FigureCanvasAgg]:
    """A figure with its own Agg canvas, at the pictures' resolution."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI)
    return figure, FigureCanvasAgg(figure)


def canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """What the canvas holds now, as PNG bytes."""
    from PIL import Image

    size = canvas.get_width_height()
    image = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class SimulatorPicture:
    """The simulator dashboard's figure, made once and given new numbers on each redraw.

    Six panels: a latency histogram per tier, the leads waiting over time, the monthly cost.
    Its own Agg canvas, no pyplot (nothing left open for a notebook to show again), fixed
    title positions and a fixed layout: a redraw sets data and renders, it does not build
    axes, ticks and legends again, nor measure labels.

    The ticks and their labels are most of a render, and they change only with a panel's
    limits: the figure without its changing artists is kept as a background, a redraw blanks
    and draws again only the panels whose limits moved (where they were and where they will
    be), then paints the changing artists over it (blitting). The tests compare the result
    with a full draw, pixel for pixel.
    """

    def __init__(self) -> None:
        self.figure, self._canvas = picture_figure((14, 6.6))
        axes = self.figure.subplots(2, 3)
        self.figure.subplots_adjust(
            left=0.06, right=0.98, top=0.94, bottom=0.09, hspace=0.5, wspace=0.28
        )
        self.latency = [LatencyPanel(ax, t) for ax, t in zip(axes[0], TIERS, strict=True)]
        depth = axes[1][0]
        self.depth = [depth.plot([], [], label=t, color=TIER_COLOURS[t])[0] for t in TIERS]
        depth.set_xlabel("hour")
        depth.set_ylabel("leads")
        depth.set_title("leads waiting to be sent", y=1.0)
        depth.set_yscale("symlog")
        depth.yaxis.set_major_formatter(count_formatter())
        depth.legend(fontsize=8, loc="upper left")
        self.cost = axes[1][1]
        self.cost.set_title("monthly cost", y=1.0)
        self.cost.yaxis.set_major_formatter(money_formatter())
        zero = np.zeros(len(TIERS))
        self.bars = [self.cost.bar(list(TIERS), zero, label=name) for name in COST_LINES]
        self.budget = self.cost.axhline(0.0, color="crimson", ls="--", label="Clay budget")
        axes[1][2].axis("off")
        # Each panel's limits as the background has them (none yet), and the background.
        self._frames: list[Any] = [None] * len(self.figure.axes)
        self._background: Any = None
        self._blank: Any = None
        self._places: list[Bbox] = []
        self._show_budget(False)
        self._animate()

    def _animate(self) -> None:
        for artist in self.changing:
            artist.set_animated(True)

    @property
    def changing(self) -> list[Artist]:
        """What a redraw paints over the background, panel by panel."""
        depth, cost = self.depth[0].axes, self.cost
        return [
            *(a for panel in self.latency for a in panel.changing),
            *self.depth,
            *depth.spines.values(),
            depth.get_legend(),
            *(bar for bars in self.bars for bar in bars),
            self.budget,
            *cost.spines.values(),
            cost.get_legend(),
        ]

    def show(self, results: list[SimResult]) -> None:
        for panel, result in zip(self.latency, results, strict=True):
            panel.show(result)
        for line, result in zip(self.depth, results, strict=True):
            line.set_data(result.depth_time_s / 3600, result.depth_waiting)
        depth = self.depth[0].axes
        depth.relim()
        depth.autoscale_view()
        self._show_cost(results)

    def _show_cost(self, results: list[SimResult]) -> None:
        lines = [
            np.array([r.clay_usd for r in results]),
            np.array([r.infra_usd_month for r in results]),
            np.array([r.ops_usd for r in results]),
        ]
        bottom = np.zeros(len(results))
        for bars, heights in zip(self.bars, lines, strict=True):
            for bar, low, height in zip(bars, bottom, heights, strict=True):
                bar.set_y(low)
                bar.set_height(height)
            bottom = bottom + heights
        budget = results[0].monthly_budget_usd
        self.budget.set_ydata([budget or 0.0] * 2)
        if self.budget.get_visible() != bool(budget):
            self._show_budget(bool(budget))
        self.cost.relim(visible_only=True)
        self.cost.autoscale_view()

    def _show_budget(self, shown: bool) -> None:
        """The budget line and its legend entry, only where there is a budget."""
        self.budget.set_visible(shown)
        handles = [*self.bars, self.budget] if shown else list(self.bars)
        self.cost.legend(handles=handles, fontsize=8, loc="upper left").set_animated(True)

    def png(self) -> bytes:
        """The figure as it stands, as PNG bytes: the changing artists over the background,
        whose panels are drawn again only where their limits moved."""
        from matplotlib.transforms import Bbox

        canvas, axes = self._canvas, self.figure.axes
        frames = [(ax.get_xlim(), ax.get_ylim()) for ax in axes]
        if self._background is None:
            renderer = canvas.get_renderer()
            renderer.clear()
            self.figure.patch.draw(renderer)
            self._blank = canvas.copy_from_bbox(self.figure.bbox)
            canvas.draw()  # everything but the changing artists
            self._places = [_place(ax, canvas.get_renderer()) for ax in axes]
        else:
            canvas.restore_region(self._background)
            renderer = canvas.get_renderer()
            height = self.figure.bbox.height
            for k, (ax, frame, had) in enumerate(zip(axes, frames, self._frames, strict=True)):
                if frame != had:  # this panel's ticks moved: blank where it was and will be
                    place = _place(ax, renderer)
                    both = Bbox.union([place, self._places[k]])
                    canvas.restore_region(self._blank, bbox=_rows_from_top(both, height), xy=(0, 0))
                    ax.draw(renderer)
                    self._places[k] = place
        self._background = canvas.copy_from_bbox(self.figure.bbox)
        self._frames = frames
        for ax in axes:
            mine = [a for a in self.changing if a.axes is ax]
            for artist in sorted(mine, key=lambda a: float(a.get_zorder())):
                ax.draw_artist(artist)
        return canvas_png(canvas)


def _place(ax: Axes, renderer: RendererAgg) -> Bbox:
    """Where ``ax`` draws, labels and all, as the renderer lays it out now (display pixels)."""
    box = ax.get_tightbbox(renderer)
    return (box if box is not None else ax.bbox).padded(MARGIN_PX)


def _rows_from_top(box: Bbox, height: float) -> tuple[float, float, float, float]:
    """``box`` as the extents ``restore_region`` takes: Agg counts rows from the top."""
    return (box.x0, height - box.y1, box.x1, height - box.y0)
