"""claynb.sim: simulate the three tiers and compute the decision matrix (work in progress)."""

from claynb.sim._arrivals import ArrivalProfile
from claynb.sim._cost import Prices
from claynb.sim._result import SimResult
from claynb.sim._simulate import simulate
from claynb.sim._tiers import ClayBehaviour, DirectTier, EventTier, QueueTier, RunLatency

__all__ = ["ArrivalProfile", "ClayBehaviour", "DirectTier", "EventTier", "Prices", "QueueTier",
           "RunLatency", "SimResult", "simulate"]
