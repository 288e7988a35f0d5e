"""Analyst units: what a person reads in the notebooks and dashboards."""

from __future__ import annotations

import math

import pytest

from claynb import sim
from claynb.sim._units import count, duration, money, share, to_html


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.25, "4.2 s"),
        (44.6684, "45 s"),
        (300, "5.0 min"),
        (5_400, "1.5 h"),
        (198_476.7, "2.3 days"),
        (math.nan, "-"),
    ],
)
def test_durations_read_in_s_min_h_days(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_counts_money_and_shares() -> None:
    assert count(125_892.54) == "125,893"
    assert count(1000.0) == "1,000"
    assert money(1_234.4) == "$1,234/month"
    assert money(0.0123, None) == "$0.0123"
    assert money(12.5, "hour") == "$12.50/hour"
    assert share(0.0451) == "4.5%"


def test_summary_table_is_worded_and_never_math() -> None:
    results = [sim.simulate(t, 2_000, slo_s=120) for t in ("direct", "queue", "events")]
    table = sim.summary_table(results)
    assert list(table.columns) == ["direct", "queue", "events"]
    assert "leads per day" in table.index and "total cost" in table.index
    assert not any("_" in label for label in table.index)
    assert table.loc["leads per day", "queue"] == "2,000"
    assert table.loc["latency target (SLO)", "queue"] == "2.0 min"
    assert table.loc["total cost", "queue"].endswith("/month")
    html = to_html(table)
    assert "mathjax_ignore" in html and "overflow-x:auto" in html


def test_latency_axes_tick_round_numbers_of_one_unit() -> None:
    """A direct tier that waits days reads in days, a queue that waits minutes in minutes."""
    for tier, unit in (("direct", "days"), ("queue", "min")):
        fig = sim.simulate(tier, 20_000, slo_s=300).plot()
        fig.canvas.draw()
        ax = fig.axes[0]
        lo, hi = ax.get_xlim()
        shown = [
            t.get_text()
            for t, x in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
            if lo <= x <= hi and x != 0
        ]
        assert shown and all(label.endswith(f" {unit}") for label in shown), shown
        numbers = [float(label.split()[0]) for label in shown]
        assert all(n == round(n, 1) for n in numbers), shown
        assert fig.axes[2].get_yticklabels()[1].get_text().startswith("$")
