"""Numbers as an analyst reads them: whole counts, durations in s/min/h, dollars a month.

Every table and label a person reads in the notebooks and dashboards goes through these,
so ``2.00e+4`` reads ``20,000 leads/day``, ``198476.7`` seconds reads ``2.3 days`` and a
cost reads ``$1,234/month``. The machine-readable figures (``SimResult.summary()``, the
grids) keep their raw numbers; these only shape what is shown.

HTML tables are marked ``mathjax_ignore`` (and ``tex2jax_ignore``): two prices in one cell
would otherwise be typeset as a formula by JupyterLab, or by an exported page that loads
MathJax.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

NO_MATH = "mathjax_ignore tex2jax_ignore"

# Row labels of SimResult.summary() as a reader says them, and how each value is written.
SUMMARY_LABELS: dict[str, tuple[str, str]] = {
    "volume_per_day": ("leads per day", "count"),
    "leads": ("leads simulated", "count"),
    "p50_s": ("typical wait for a result (p50)", "duration"),
    "p95_s": ("slow wait (p95)", "duration"),
    "p99_s": ("slowest 1% (p99)", "duration"),
    "mean_wait_s": ("average time queued before sending", "duration"),
    "throughput_per_day": ("leads enriched per day", "count"),
    "slo_s": ("latency target (SLO)", "duration"),
    "late_share": ("leads missing the target", "share"),
    "failed": ("leads failed after retries", "count"),
    "over_budget": ("leads held back by the budget", "count"),
    "max_queue_depth": ("most leads waiting at once", "count"),
    "runs": ("Clay runs", "count"),
    "mean_batch": ("leads per run (average)", "decimal"),
    "api_requests_per_s": ("API requests per second", "decimal"),
    "actions_month": ("Actions per month", "count"),
    "data_credits_month": ("Data Credits per month", "count"),
    "clay_usd_month": ("Clay bill", "money"),
    "overspend_usd_month": ("overspend without a cap", "money"),
    "infra_usd_month": ("infrastructure", "money"),
    "ops_usd_month": ("engineer upkeep", "money"),
    "total_usd_month": ("total cost", "money"),
}


def count(value: float) -> str:
    """A whole number with thousands separators: ``20,000``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{round(value):,}"


def volume(per_day: float) -> str:
    """Leads a day, whole: ``20,000 leads/day``."""
    return f"{count(per_day)} leads/day"


def duration(seconds: float) -> str:
    """Seconds under 90 s, then minutes, hours, days: ``45 s``, ``3.5 min``, ``2.1 h``."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def money(usd: float, per: str | None = "month") -> str:
    """Dollars, whole above $100: ``$1,234/month``; ``per=None`` for a one-off amount."""
    if usd is None or math.isnan(usd):
        return "-"
    text = f"${usd:,.0f}" if abs(usd) >= 100 or usd == round(usd) else f"${usd:,.2f}"
    if abs(usd) < 0.1 and usd != 0:
        text = f"${usd:.4f}"
    return f"{text}/{per}" if per else text


def share(value: float) -> str:
    """A share as a percentage: ``4.5%``."""
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1%}" if value < 0.995 or value == 1 else f"{value:.2%}"


def decimal(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.1f}"


FORMATS = {
    "count": count,
    "duration": duration,
    "money": money,
    "share": share,
    "decimal": decimal,
}


def summary_table(results: Iterable[Any] | pd.DataFrame) -> pd.DataFrame:
    """Simulation results side by side, one column per tier, in words and analyst units.

    ``results`` are ``SimResult`` objects, or their ``summary()`` figures as a frame with one
    column per tier (what the simulator dashboard keeps as ``.table``).
    """
    if isinstance(results, pd.DataFrame):
        raw = {tier: results[tier].to_dict() for tier in results.columns}
    else:
        raw = {r.tier.name: r.summary() for r in results}
    rows = [key for key in SUMMARY_LABELS if all(key in r for r in raw.values())]
    frame = pd.DataFrame(
        {
            tier: [FORMATS[SUMMARY_LABELS[key][1]](figures[key]) for key in rows]
            for tier, figures in raw.items()
        },
        index=[SUMMARY_LABELS[key][0] for key in rows],
    )
    frame.columns.name = "tier"
    return frame


def to_html(frame: pd.DataFrame, *, index: bool = True) -> str:
    """A table that never turns into a formula and scrolls inside its cell when wide."""
    table = frame.to_html(index=index, classes=NO_MATH, border=0, escape=True)
    return f'<div class="{NO_MATH}" style="overflow-x:auto;max-width:100%">{table}</div>'


def count_formatter() -> Any:
    """A matplotlib tick formatter writing whole counts with separators."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: count(v))


_UNITS = ((90.0, 1.0, "s"), (90 * 60.0, 60.0, "min"), (48 * 3600.0, 3600.0, "h"))


def _axis_unit(top: float) -> tuple[float, str]:
    """Seconds per unit and its name for an axis reaching ``top`` seconds."""
    for below, size, name in _UNITS:
        if top < below:
            return size, name
    return 86400.0, "days"


def duration_axis(ax: Any, axis: str = "x") -> None:
    """Ticks at round numbers of one unit (s, min, h or days, whichever fits the range),
    few enough that labels never overlap."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    class DurationLocator(MaxNLocator):
        def tick_values(self, vmin: float, vmax: float) -> Any:
            size, _ = _axis_unit(max(abs(vmin), abs(vmax)))
            return np.asarray(super().tick_values(vmin / size, vmax / size)) * size

    target = ax.xaxis if axis == "x" else ax.yaxis

    def label(value: float, _pos: Any) -> str:
        lo, hi = target.get_view_interval()
        size, name = _axis_unit(max(abs(lo), abs(hi)))
        return "0" if value == 0 else f"{value / size:g} {name}"

    target.set_major_locator(DurationLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    target.set_major_formatter(FuncFormatter(label))


def money_formatter() -> Any:
    """A matplotlib tick formatter writing dollars with separators."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: money(v, None))
