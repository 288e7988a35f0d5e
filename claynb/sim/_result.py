"""SimResult: what one simulation found, as numbers, tables and plots.

Latency is from a lead's arrival to its result being in hand (the request returning, the
worker's poll seeing it, or the webhook arriving). Leads that failed after their retries, or
that a budget cap held back, have no latency: failures count as missing the SLO, held-back
leads are counted on their own. Percentiles are over the leads that completed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from claynb._plans import Plan
from claynb.sim._arrivals import DAY_S, ArrivalProfile
from claynb.sim._cost import DAYS_PER_MONTH, month_bill
from claynb.sim._tiers import ClayBehaviour, Tier
from claynb.sim._units import count_formatter, duration, duration_axis, money, money_formatter

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The figures a result works out once from its lead arrays and keeps (cached properties):
# the same simulation read another way (``at_slo``, ``billed_under``) keeps them too.
_READ_ONCE = (
    "wait_s",
    "completed_latency_s",
    "_percentiles",
    "completed_latency_sum",
    "failed_leads",
    "considered_leads",
    "_late_counts",
)
TIER_COLOURS = {"direct": "#4C9F70", "queue": "#E0A030", "events": "#4A6FB5"}


@dataclass(frozen=True, repr=False, eq=False)
class SimResult:
    """The outcome of :func:`claynb.sim.simulate`. Money is per 30-day month."""

    tier: Tier
    clay: ClayBehaviour
    arrivals_profile: ArrivalProfile
    volume_per_day: float
    days: float
    slo_s: float
    arrivals: np.ndarray
    latency_s: np.ndarray
    sent_at: np.ndarray  # when each run started (see ``wait_s``)
    run_leads: np.ndarray | None  # leads each run carried; None: one each
    failed: np.ndarray
    over_budget: np.ndarray
    runs: int
    busy_s: float
    api_requests: float
    depth_time_s: np.ndarray
    depth_waiting: np.ndarray
    depth_in_flight: np.ndarray
    actions_month: float
    data_credits_month: float
    plan: Plan
    rollover_data_credits: float
    monthly_budget_usd: float | None
    uncapped_bill_usd: float
    infra_usd: dict[str, float]
    ops_usd: float

    # -- the same simulation, read another way ------------------------------------------
    def at_slo(self, slo_s: float) -> SimResult:
        """This simulation judged against another SLO (the SLO only reads the latencies)."""
        return self._reread(slo_s=slo_s)

    def billed_under(self, plan: Plan) -> SimResult:
        """This simulation billed under another plan, without simulating again.

        Only without a budget: then the plan only prices the month's Actions and Data
        Credits. With one, where the cap stops depends on the plan's prices: simulate.
        """
        if self.monthly_budget_usd is not None:
            raise ValueError("with a budget the plan changes where the cap stops: simulate again")
        bill = month_bill(
            plan, self.actions_month, self.data_credits_month, self.rollover_data_credits
        )
        return self._reread(plan=plan, uncapped_bill_usd=bill)

    def under(self, clay: ClayBehaviour) -> SimResult:
        """This simulation, recorded under another behaviour of Clay's that simulates it the
        same (``_simulate.clay_inputs``: say, a rate limit this tier never reaches)."""
        return self._reread(clay=clay)

    def _reread(self, **changes: Any) -> SimResult:
        """A copy with ``changes`` that keeps the latency figures already worked out."""
        copy = replace(self, **changes)
        for name in _READ_ONCE:  # cached_property values
            if name in self.__dict__:
                copy.__dict__[name] = self.__dict__[name]
        return copy

    # -- latency -------------------------------------------------------------------------
    @property
    def leads(self) -> int:
        return int(self.arrivals.size)

    @cached_property
    def completed_latency_s(self) -> np.ndarray:
        """The latencies of leads that completed, read-only.

        Usually every lead completed: then this is ``latency_s`` itself, not a copy (a grid
        keeps hundreds of these, millions of floats each, and fresh memory costs time).
        """
        missing = np.isnan(self.latency_s)
        completed = self.latency_s[~missing] if missing.any() else self.latency_s.view()
        completed.flags.writeable = False
        return completed

    @cached_property
    def completed_latency_sum(self) -> float:
        """Lead-seconds of waiting for a result, over the leads that completed."""
        return float(self.completed_latency_s.sum())

    @cached_property
    def failed_leads(self) -> int:
        return int(self.failed.sum())

    @cached_property
    def considered_leads(self) -> int:
        """Leads a budget cap did not hold back: those a late share is a share of."""
        return int((~self.over_budget).sum())

    @cached_property
    def _late_counts(self) -> dict[float, int]:
        return {}

    def completed_over(self, slo_s: float) -> int:
        """How many completed leads took longer than ``slo_s`` (counted once per SLO)."""
        counts = self._late_counts
        if slo_s not in counts:
            counts[slo_s] = int(np.count_nonzero(self.completed_latency_s > slo_s))
        return counts[slo_s]

    @cached_property
    def _percentiles(self) -> np.ndarray:
        lat = self.completed_latency_s
        return np.percentile(lat, [50, 95, 99]) if lat.size else np.full(3, np.nan)

    @property
    def p50(self) -> float:
        return float(self._percentiles[0])

    @property
    def p95(self) -> float:
        return float(self._percentiles[1])

    @property
    def p99(self) -> float:
        return float(self._percentiles[2])

    @property
    def mean_latency_s(self) -> float:
        lat = self.completed_latency_s
        return float(lat.mean()) if lat.size else float("nan")

    @cached_property
    def wait_s(self) -> np.ndarray:
        """How long each lead waited to be sent: from its arrival to its run's start.

        Worked out when asked, from the runs (a decision grid never asks)."""
        if self.run_leads is None:
            return np.subtract(self.sent_at, self.arrivals)
        start = np.repeat(self.sent_at, self.run_leads)
        return np.subtract(start, self.arrivals, out=start)

    @property
    def mean_wait_s(self) -> float:
        return float(self.wait_s.mean()) if self.wait_s.size else float("nan")

    def percentile(self, q: float) -> float:
        """Any latency percentile (0-100) over completed leads."""
        lat = self.completed_latency_s
        return float(np.percentile(lat, q)) if lat.size else float("nan")

    def late_share_at(self, slo_s: float) -> float:
        """Share of leads (not held back by a budget cap) that missed ``slo_s`` or failed."""
        considered = ~self.over_budget
        total = int(considered.sum())
        if total == 0:
            return 0.0
        late = np.count_nonzero(self.latency_s[considered] > slo_s) + int(self.failed.sum())
        return late / total

    @property
    def late_share(self) -> float:
        """Share of leads that missed the SLO this result was simulated with."""
        return self.late_share_at(self.slo_s)

    @property
    def late_leads_month(self) -> float:
        return self.late_share * int((~self.over_budget).sum()) * DAYS_PER_MONTH / self.days

    # -- throughput ----------------------------------------------------------------------
    @property
    def horizon_s(self) -> float:
        return self.days * DAY_S

    @property
    def throughput_per_s(self) -> float:
        return self.completed_latency_s.size / self.horizon_s

    @property
    def throughput_per_day(self) -> float:
        return self.throughput_per_s * DAY_S

    @property
    def utilisation(self) -> float:
        """Share of worker time spent on runs (blocking tiers); 0 for the event tier."""
        servers = self.tier.servers
        return self.busy_s / (servers * self.horizon_s) if servers else 0.0

    @property
    def api_requests_per_s(self) -> float:
        return self.api_requests / self.horizon_s

    @property
    def mean_batch(self) -> float:
        return self.leads / self.runs if self.runs else 0.0

    @property
    def max_queue_depth(self) -> int:
        return int(self.depth_waiting.max()) if self.depth_waiting.size else 0

    def queue_depth(self) -> pd.DataFrame:
        """Leads waiting to be sent and in flight at Clay, over time (hours)."""
        return pd.DataFrame(
            {
                "hour": self.depth_time_s / 3600.0,
                "waiting": self.depth_waiting,
                "in_flight": self.depth_in_flight,
            }
        )

    # -- money ---------------------------------------------------------------------------
    @property
    def clay_usd(self) -> float:
        """The month's Clay bill: plan price plus top-ups at +30%."""
        return self.plan.monthly_bill(
            self.actions_month, self.data_credits_month, self.rollover_data_credits
        )

    @property
    def top_up_usd(self) -> float:
        return self.clay_usd - self.plan.monthly_usd

    @property
    def overspend_usd(self) -> float:
        """How far past the budget the month's bill goes without a cap (0 without a budget).

        For the queue and event tiers the cap prevents it; the direct tier pays it.
        """
        if self.monthly_budget_usd is None:
            return 0.0
        return max(0.0, self.uncapped_bill_usd - self.monthly_budget_usd)

    @property
    def infra_usd_month(self) -> float:
        return float(sum(self.infra_usd.values()))

    @property
    def total_usd_month(self) -> float:
        return self.clay_usd + self.infra_usd_month + self.ops_usd

    def cost_table(self) -> pd.DataFrame:
        """Monthly cost by line: Clay (plan, top-ups), each infrastructure line, operations."""
        rows = [
            ("clay", "plan " + self.plan.name, self.plan.monthly_usd),
            ("clay", "top-ups (+30%)", self.top_up_usd),
        ]
        rows += [("infrastructure", name, usd) for name, usd in self.infra_usd.items()]
        rows.append(("operations", "engineer upkeep", self.ops_usd))
        return pd.DataFrame(rows, columns=["group", "line", "usd_month"])

    # -- views ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Headline numbers as a flat dict (rounded for reading)."""
        return {
            "tier": self.tier.name,
            "volume_per_day": self.volume_per_day,
            "leads": self.leads,
            "p50_s": round(self.p50, 1),
            "p95_s": round(self.p95, 1),
            "p99_s": round(self.p99, 1),
            "mean_wait_s": round(self.mean_wait_s, 1),
            "throughput_per_day": round(self.throughput_per_day),
            "slo_s": self.slo_s,
            "late_share": round(self.late_share, 4),
            "failed": int(self.failed.sum()),
            "over_budget": int(self.over_budget.sum()),
            "max_queue_depth": self.max_queue_depth,
            "runs": self.runs,
            "mean_batch": round(self.mean_batch, 1),
            "api_requests_per_s": round(self.api_requests_per_s, 2),
            "actions_month": round(self.actions_month),
            "data_credits_month": round(self.data_credits_month),
            "clay_usd_month": round(self.clay_usd, 2),
            "overspend_usd_month": round(self.overspend_usd, 2),
            "infra_usd_month": round(self.infra_usd_month, 2),
            "ops_usd_month": round(self.ops_usd, 2),
            "total_usd_month": round(self.total_usd_month, 2),
        }

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary()])

    def __repr__(self) -> str:
        return (
            f"SimResult(tier={self.tier.name!r}, volume_per_day={self.volume_per_day:g}, "
            f"p50={self.p50:.1f}s, p95={self.p95:.1f}s, p99={self.p99:.1f}s, "
            f"late_share={self.late_share:.3f}, clay_usd={self.clay_usd:.2f})"
        )

    # -- plots ---------------------------------------------------------------------------
    def plot_latency(self, ax: Axes | None = None) -> Axes:
        """Histogram of lead latency with p50/p95/p99 and the SLO marked, in s/min/h."""
        ax = _axes(ax)
        LatencyPanel(ax, self.tier.name).show(self)
        return ax

    def plot_queue_depth(self, ax: Axes | None = None) -> Axes:
        """Leads waiting and in flight over the simulated horizon."""
        ax = _axes(ax)
        hours = self.depth_time_s / 3600.0
        ax.fill_between(
            hours,
            self.depth_waiting,
            step="post",
            alpha=0.6,
            label="waiting",
            color=TIER_COLOURS.get(self.tier.name, "grey"),
        )
        ax.plot(hours, self.depth_in_flight, color="black", lw=0.8, label="in flight at Clay")
        ax.set_xlabel("hour")
        ax.set_ylabel("leads")
        ax.yaxis.set_major_formatter(count_formatter())
        ax.set_title("queue depth")
        ax.legend(loc="upper right", fontsize=8)
        return ax

    def plot_cost(self, ax: Axes | None = None) -> Axes:
        """A stacked bar of the month's cost lines, and the budget if there is one."""
        ax = _axes(ax)
        table = self.cost_table()
        bottom = 0.0
        for _, row in table.iterrows():
            if row.usd_month > 0:
                ax.bar(0, row.usd_month, bottom=bottom, label=f"{row.line}: ${row.usd_month:,.0f}")
                bottom += row.usd_month
        if self.monthly_budget_usd is not None:
            ax.axhline(
                self.monthly_budget_usd,
                color="crimson",
                ls="--",
                label=f"Clay budget {money(self.monthly_budget_usd, None)}",
            )
        ax.set_xticks([])
        ax.set_xlim(-0.6, 2.2)  # room on the right for the legend, inside the axes
        ax.set_ylabel("dollars per month")
        ax.yaxis.set_major_formatter(money_formatter())
        ax.set_title(f"monthly cost {money(self.total_usd_month)}")
        ax.legend(loc="upper right", fontsize=7)
        return ax

    def plot(self) -> Figure:
        """Latency distribution, queue depth and monthly cost side by side."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(14, 4), gridspec_kw={"width_ratios": [3, 3, 2]})
        fig.subplots_adjust(left=0.05, right=0.98, top=0.9, bottom=0.14, wspace=0.3)
        self.plot_latency(axes[0])
        self.plot_queue_depth(axes[1])
        self.plot_cost(axes[2])
        plt.close(fig)  # returned, not shown twice in a notebook
        return fig


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    fig, new = plt.subplots(figsize=(6, 4))
    plt.close(fig)
    return new


class LatencyPanel:
    """A latency histogram with p50/p95/p99 and the SLO marked, updated in place.

    The artists are made once; ``show(result)`` gives them another simulation's numbers,
    so a dashboard redraw reuses the axes, ticks and legend instead of building them again.
    """

    MARKS = ("p50", "p95", "p99")

    def __init__(self, ax: Axes, tier: str) -> None:
        self.ax = ax
        colour = TIER_COLOURS.get(tier, "grey")
        # np.histogram + stairs: one artist instead of 80 bar patches, same picture.
        self.bars = ax.stairs([0.0], [0.0, 1.0], fill=True, color=colour, alpha=0.8)
        self.marks = [ax.axvline(0.0, color="black", lw=0.8, ls=":") for _ in self.MARKS]
        self.names = [  # x in data, y in axes fraction: just below the top
            ax.text(
                0.0,
                0.97,
                name,
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                rotation=90,
                va="top",
                ha="right",
            )
            for name in self.MARKS
        ]
        self.target = ax.axvline(0.0, color="crimson", lw=1.5, label="target")
        duration_axis(ax)
        ax.set_xlabel("latency, arrival to result")
        ax.set_ylabel("leads")
        self.legend = ax.legend(loc="upper right", fontsize=8)

    @property
    def changing(self) -> list[Artist]:
        """What ``show`` changes, with the title, the legend and the frame drawn over them."""
        ax = self.ax
        return [
            self.bars,
            *self.marks,
            *self.names,
            self.target,
            ax.title,
            self.legend,
            *ax.spines.values(),
        ]

    def show(self, result: SimResult) -> None:
        lat = result.completed_latency_s
        ax = self.ax
        if lat.size:
            top = max(float(np.percentile(lat, 99.5)), result.slo_s) * 1.1
            heights, edges = np.histogram(np.minimum(lat, top), bins=80)
            self.bars.set_data(heights, edges)
        values = (result.p50, result.p95, result.p99)
        for line, note, value in zip(self.marks, self.names, values, strict=True):
            line.set_xdata([value, value])
            note.set_x(value)
            line.set_visible(bool(lat.size))
            note.set_visible(bool(lat.size))
        self.bars.set_visible(bool(lat.size))
        self.target.set_xdata([result.slo_s, result.slo_s])
        self.legend.get_texts()[0].set_text(f"target {duration(result.slo_s)}")
        ax.set_title(f"{result.tier.name}: {result.late_share:.1%} missed the target", y=1.0)
        ax.relim(visible_only=True)
        ax.autoscale_view()
