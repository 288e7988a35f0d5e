"""claynb.sim: simulate the three tiers, price them, and compute the decision matrix.

The common three-tier rule of thumb (under 1K leads a day direct, 1K-50K queue, over 50K
events) is only a rule of thumb. This package turns it into a model a team runs with its own numbers:

1. **Arrivals** (``ArrivalProfile``): steady, a business-day profile, and bursts (CSV imports,
   campaign launches).
2. **Tiers** (``DirectTier``, ``QueueTier``, ``EventTier``): how each forms runs of up to 100
   items and waits for them: blocking calls, polling workers, or webhooks with a polling
   fallback. Clay itself (``ClayBehaviour``): item latency (30-60 s a lead), transient
   failures with retries, the workspace rate limit that polling eats into.
3. **Engine**: FCFS queues solved with numpy (the Lindley recursion as a cumulative max)
   and a heap walked once per run, compiled with numba where the ``fast`` extra is
   installed (the same runs to the last bit); millions of leads a second, checked against
   Erlang C and a SimPy model of the same system (``_reference``).
4. **Money** (``Prices``, a ``claynb.Plan``): Clay's bill with top-ups at +30% and rollover,
   the overspend a missing budget cap would allow, infrastructure and engineer upkeep.
5. **Decision** (``recommend``, ``decision_matrix``, ``plot_decision_matrix``; a
   ``SimulationCache`` shared between them simulates each volume once): each tier is
   sized by simulation, kept if it meets the SLO (and the team and budget), and the one with
   the lowest monthly cost of ownership, delay included, wins. No threshold is written
   down anywhere: with the default prices the rule of thumb's 1K and 50K come out of the model, and
   they move when the prices, SLO, rate limit or arrival profile do.

``optimise_waterfall`` orders a routine's providers for the lowest expected cost per row.
"""

from claynb.sim import _units as units
from claynb.sim._arrivals import ArrivalProfile
from claynb.sim._cost import Prices
from claynb.sim._decide import SimulationCache
from claynb.sim._heatmap import plot_decision_matrix
from claynb.sim._matrix import (
    Recommendation,
    decision_grid,
    decision_matrix,
    format_thresholds,
    recommend,
    sensitivity,
    thresholds,
)
from claynb.sim._result import SimResult
from claynb.sim._simulate import simulate
from claynb.sim._tiers import ClayBehaviour, DirectTier, EventTier, QueueTier, RunLatency
from claynb.sim._units import summary_table
from claynb.sim._waterfall import WaterfallPlan, optimise_waterfall
from claynb.sim._widgets import Dashboard, matrix_dashboard, simulator_dashboard

__all__ = [
    "ArrivalProfile",
    "ClayBehaviour",
    "Dashboard",
    "DirectTier",
    "EventTier",
    "Prices",
    "QueueTier",
    "Recommendation",
    "RunLatency",
    "SimResult",
    "SimulationCache",
    "WaterfallPlan",
    "decision_grid",
    "decision_matrix",
    "format_thresholds",
    "matrix_dashboard",
    "optimise_waterfall",
    "plot_decision_matrix",
    "recommend",
    "sensitivity",
    "simulate",
    "simulator_dashboard",
    "summary_table",
    "thresholds",
    "units",
]
