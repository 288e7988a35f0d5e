"""The decision matrix as a heatmap: laid out once, then only its cells and your point redrawn.

:class:`Heatmap` lays out an axes for a fixed set of volumes and SLOs (log axes, ticks in
analyst units, the legend) and keeps the artists that change: the coloured cells, each cell's
tier name, the hatching where no tier meets every constraint, and your point; ``show(grid)``
sets their data. :func:`plot_decision_matrix` draws one in a new figure. The matrix dashboard
keeps a :class:`HeatmapPicture`: it draws everything else once, keeps that as a background,
and afterwards paints only the changing artists onto it (blitting), so a redraw costs the
cells, not the figure: the axes, ticks and legend are most of a full draw. Of the cells'
artists, the tier names are most of what is left (one text layout and glyph render each), so
only the names of cells that changed are drawn again; every other cell is copied from the
last picture.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from claynb.sim._matrix import DEFAULT_SLOS, DEFAULT_VOLUMES, decision_grid
from claynb.sim._pictures import canvas_png, picture_figure
from claynb.sim._result import TIER_COLOURS
from claynb.sim._tiers import TIERS
from claynb.sim._units import count, duration

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE = "recommended tier (hatched: no tier meets every constraint)"
FIGSIZE = (10, 4.6)


class Heatmap:
    """Volume across, latency SLO up, the recommended tier in each cell; your point starred.

    ``animated`` artists are left out of a figure's normal draw, for :class:`HeatmapPicture`
    to paint over its background.
    """

    def __init__(
        self,
        ax: Axes,
        volumes: Sequence[float],
        slos: Sequence[float],
        *,
        marked: bool,
        animated: bool = False,
    ) -> None:
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch

        self.ax = ax
        self.volumes = np.sort(np.asarray(volumes, dtype=float))
        self.slos = np.sort(np.asarray(slos, dtype=float))
        xe, ye = _edges(self.volumes), _edges(self.slos)
        self._cells = [  # each cell's corners, row (SLO) by row
            (x0, x1, y0, y1)
            for y0, y1 in zip(ye[:-1], ye[1:], strict=True)
            for x0, x1 in zip(xe[:-1], xe[1:], strict=True)
        ]
        cmap = ListedColormap([TIER_COLOURS[t] for t in TIERS])
        blank = np.zeros((self.slos.size, self.volumes.size))
        self.mesh = ax.pcolormesh(xe, ye, blank, cmap=cmap, vmin=-0.5, vmax=2.5, shading="flat")
        self.names = [
            ax.text(
                math.sqrt(x0 * x1),
                math.sqrt(y0 * y1),
                "",
                ha="center",
                va="center",
                fontsize=8,
                color="white",
            )
            for x0, x1, y0, y1 in self._cells
        ]
        self.misses = PolyCollection([], facecolor="none", edgecolor="white", hatch="///", lw=0)
        ax.add_collection(self.misses)
        (self.mark,) = ax.plot(
            [],
            [],
            marker="*",
            markersize=18,
            color="black",
            markeredgecolor="white",
            ls="none",
            label="you",
        )
        self._lay_out(xe, ye)
        handles: list[Any] = [Patch(color=TIER_COLOURS[t], label=t) for t in TIERS]
        if marked:
            handles.append(self.mark)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
        for artist in self.changing:
            artist.set_animated(animated)
        self.states: list[tuple[str, bool]] = []  # each cell's tier and whether it misses

    @property
    def cells(self) -> list[tuple[float, float, float, float]]:
        """Each cell's corners in data units, ``(x0, x1, y0, y1)``, in the order of ``names``."""
        return list(self._cells)

    def _lay_out(self, xe: np.ndarray, ye: np.ndarray) -> None:
        ax = self.ax
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(self.volumes, [count(v) for v in self.volumes], fontsize=8, rotation=30)
        ax.set_yticks(self.slos, [duration(v) for v in self.slos], fontsize=8)
        ax.minorticks_off()
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel("leads per day")
        ax.set_ylabel("latency target (SLO)")
        ax.set_title(TITLE, y=1.0)  # placed, not measured against the tick labels each draw

    @property
    def changing(self) -> list[Artist]:
        """What ``show`` changes, and the frame, which the cells paint over."""
        return [self.mesh, *self.names, self.misses, self.mark, *self.ax.spines.values()]

    def show(
        self,
        grid: pd.DataFrame,
        volume_per_day: float | None = None,
        latency_slo_s: float | None = None,
    ) -> None:
        """Paint the recommended tier of every cell of ``grid`` (from ``decision_grid``)."""
        rec = grid[grid["recommended"]]
        cells = pd.MultiIndex.from_product([self.slos, self.volumes])
        picked = rec.set_index(["slo_s", "volume_per_day"]).reindex(cells)
        if picked["tier"].isna().any():
            raise ValueError("the grid does not cover this heatmap's volumes and SLOs")
        tiers = picked["tier"].tolist()
        self.mesh.set_array(np.array([TIERS.index(t) for t in tiers], dtype=float))
        for text, tier in zip(self.names, tiers, strict=True):
            text.set_text(tier)
        missed = ~picked["feasible"].to_numpy(dtype=bool)
        self.states = list(zip(tiers, missed.tolist(), strict=True))
        self.misses.set_verts(
            [
                [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                for (x0, x1, y0, y1), miss in zip(self._cells, missed, strict=True)
                if miss
            ]
        )
        if volume_per_day is not None and latency_slo_s is not None:
            self.mark.set_data([volume_per_day], [latency_slo_s])
        else:
            self.mark.set_data([], [])


class HeatmapPicture:
    """A :class:`Heatmap` in a figure of its own that redraws only what changed.

    The figure is a picture's (``_pictures``): its own Agg canvas, no pyplot. A redraw
    paints the cells, the hatching, your point and the frame onto the background (cheap:
    one mesh, one collection, one marker), then puts back, from the last picture, the inside
    of every cell whose tier and hatching are unchanged and that your point neither leaves
    nor reaches: those hold their tier name already. Only the other cells' names are drawn
    again. The inside stops ``INSET_PX`` short of the cell's edges, which are always fresh
    (the hatching's antialiased edge reaches a pixel into the neighbour). The tests compare
    the result with a full draw, pixel for pixel.
    """

    INSET_PX = 3

    def __init__(self, volumes: Sequence[float], slos: Sequence[float]) -> None:
        self.figure, self._canvas = picture_figure(FIGSIZE)
        ax = self.figure.add_subplot()
        _frame(self.figure)
        self.heatmap = Heatmap(ax, volumes, slos, marked=True, animated=True)
        self._canvas.draw()  # everything but the changing artists, once
        self._background = self._canvas.copy_from_bbox(self.figure.bbox)
        self._boxes = [_pixel_box(ax, cell) for cell in self.heatmap.cells]
        self._last: _Shown | None = None
        self.names_drawn = 0  # tier names the last redraw drew (the rest were copied)

    def png(
        self, grid: pd.DataFrame, volume_per_day: float | None, latency_slo_s: float | None
    ) -> bytes:
        """The heatmap of ``grid`` with your point, as PNG bytes."""
        heatmap, canvas = self.heatmap, self._canvas
        heatmap.show(grid, volume_per_day, latency_slo_s)
        canvas.restore_region(self._background)
        names = set(heatmap.names)
        below = [a for a in sorted(heatmap.changing, key=_zorder) if a not in names]
        for artist in below:  # in the figure's own order; the names are above them all
            heatmap.ax.draw_artist(artist)
        mark = _mark_box(heatmap, canvas)
        pixels = np.asarray(canvas.buffer_rgba())
        kept = self._kept(heatmap.states, mark)
        for i, name in enumerate(heatmap.names):
            if i in kept and self._last is not None:
                rows, cols = self._boxes[i].inside(self.INSET_PX)
                pixels[rows, cols] = self._last.pixels[rows, cols]
            else:
                heatmap.ax.draw_artist(name)
        self.names_drawn = len(heatmap.names) - len(kept)
        self._last = _Shown(pixels.copy(), list(heatmap.states), mark)
        return canvas_png(canvas)

    def _kept(self, states: list[tuple[str, bool]], mark: _PixelBox | None) -> set[int]:
        """The cells whose inside the last picture holds as this one would draw it."""
        last = self._last
        if last is None or len(last.states) != len(states):
            return set()
        marks = [m for m in (mark, last.mark) if m is not None]
        return {
            i
            for i, (box, now, before) in enumerate(
                zip(self._boxes, states, last.states, strict=True)
            )
            if now == before and not any(box.meets(m) for m in marks)
        }


@dataclass(frozen=True)
class _PixelBox:
    """A rectangle of the canvas in pixels: rows down from the top, columns from the left."""

    top: float
    bottom: float
    left: float
    right: float

    def inside(self, inset: int) -> tuple[slice, slice]:
        """The rows and columns wholly inside, ``inset`` pixels short of every edge."""
        rows = slice(math.ceil(self.top) + inset, math.floor(self.bottom) - inset)
        cols = slice(math.ceil(self.left) + inset, math.floor(self.right) - inset)
        return rows, cols

    def meets(self, other: _PixelBox) -> bool:
        return not (
            other.left > self.right
            or other.right < self.left
            or other.top > self.bottom
            or other.bottom < self.top
        )


@dataclass(frozen=True)
class _Shown:
    """The last picture: its pixels, each cell's tier and hatching, where your point was."""

    pixels: np.ndarray
    states: list[tuple[str, bool]]
    mark: _PixelBox | None


def _pixel_box(ax: Axes, cell: tuple[float, float, float, float]) -> _PixelBox:
    x0, x1, y0, y1 = cell
    (left, low), (right, high) = ax.transData.transform([(x0, y0), (x1, y1)])
    height = ax.get_figure(root=True).bbox.height  # type: ignore[union-attr]
    return _PixelBox(top=height - high, bottom=height - low, left=left, right=right)


def _mark_box(heatmap: Heatmap, canvas: Any) -> _PixelBox | None:
    """Where your point is drawn, with a pixel to spare for its antialiased edge."""
    if np.size(heatmap.mark.get_xdata()) == 0:
        return None
    box = heatmap.mark.get_window_extent(canvas.get_renderer())
    height = canvas.figure.bbox.height
    return _PixelBox(
        top=height - box.y1 - 2, bottom=height - box.y0 + 2, left=box.x0 - 2, right=box.x1 + 2
    )


def plot_decision_matrix(
    volumes: Sequence[float] = DEFAULT_VOLUMES,
    slos: Sequence[float] = DEFAULT_SLOS,
    *,
    volume_per_day: float | None = None,
    latency_slo_s: float | None = None,
    grid: pd.DataFrame | None = None,
    ax: Axes | None = None,
    **options: Any,
) -> Figure:
    """Heatmap over volume x latency SLO: the recommended tier per cell, your point marked.

    Pass ``grid`` (from :func:`decision_grid`) to redraw without simulating again. Cells
    where even the recommended tier misses a constraint are hatched.
    """
    grid = grid if grid is not None else decision_grid(volumes, slos, **options)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=FIGSIZE)
        _frame(fig)
        plt.close(fig)
    else:
        fig = ax.get_figure(root=True)  # type: ignore[assignment]
    here = volume_per_day is not None and latency_slo_s is not None
    Heatmap(ax, grid["volume_per_day"].unique(), grid["slo_s"].unique(), marked=here).show(
        grid, volume_per_day, latency_slo_s
    )
    return fig


def _zorder(artist: Artist) -> float:
    return float(artist.get_zorder())


def _frame(fig: Figure) -> None:
    # A fixed layout instead of tight_layout: it measures every label on each draw.
    fig.subplots_adjust(left=0.1, right=0.84, top=0.92, bottom=0.17)


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended half a step at each end."""
    logs = np.log(centres.astype(float))
    if logs.size == 1:
        return np.exp(np.array([logs[0] - 0.5, logs[0] + 0.5]))
    mids = (logs[1:] + logs[:-1]) / 2
    return np.exp(np.concatenate([[2 * logs[0] - mids[0]], mids, [2 * logs[-1] - mids[-1]]]))
