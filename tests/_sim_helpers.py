"""Settings shared by the simulation engine's tests (not a test module)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from claynb.sim._arrivals import ArrivalProfile, generate_arrivals
from claynb.sim._simulate import _submit_spacing
from claynb.sim._tiers import ClayBehaviour, QueueTier, RunLatency

# Queue settings that cover what the batch loop branches on: one lead or many a run, free
# or busy workers, the rate limit's spacing, failures, short and long polls, latency kinds.
QUEUE_SETTINGS = [  # volume a day, burstiness, workers, batch size, Clay, poll interval
    (200, 0.0, 2, 100, {}, 30.0),
    (1_341, 0.0, 64, 100, {}, 30.0),
    (1_341, 0.0, 4, 100, {}, 30.0),
    (5_000, 0.0, 8, 100, {"failure_rate": 0.2}, 30.0),
    (20_000, 0.0, 64, 100, {}, 30.0),
    (20_000, 0.3, 16, 100, {}, 30.0),
    (60_000, 0.0, 64, 100, {"rate_limit_rps": 3.0}, 30.0),
    (60_000, 0.0, 32, 10, {}, 30.0),
    (3_000, 0.5, 8, 100, {"rate_limit_rps": 1.0}, 7.0),
    (3_000, 0.0, 16, 100, {"rate_limit_rps": None}, 0.0),
    (8_000, 0.0, 16, 100, {"run_latency": RunLatency("exponential", mean=40.0)}, 10.0),
    (8_000, 0.0, 16, 50, {"run_latency": RunLatency("lognormal")}, 30.0),
    (2_000, 0.0, 3, 1, {}, 2.0),
]
QUEUE_SETTING_NAMES = ("volume", "burstiness", "workers", "batch", "clay", "poll")


class QueueCase(NamedTuple):
    tier: QueueTier
    behaviour: ClayBehaviour
    arrivals: np.ndarray
    spacing: float


def queue_case(
    volume: float, burstiness: float, workers: int, batch: int, clay: dict[str, Any], poll: float
) -> QueueCase:
    """One of the settings above made concrete: the tier, Clay, three days of leads, and the
    spacing the rate limit leaves between submissions."""
    tier = QueueTier(workers=workers, batch_size=batch, poll_interval_s=poll)
    behaviour = ClayBehaviour(**clay)
    profile = ArrivalProfile(burstiness=burstiness)
    arrivals = generate_arrivals(volume, 3.0, profile, np.random.default_rng(4))
    return QueueCase(tier, behaviour, arrivals, _submit_spacing(tier, behaviour))
