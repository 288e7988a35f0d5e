"""A token bucket: the rate limit of the Public API and of webhook sources.

Pure and clock-driven (the caller passes ``now``), so the same bucket serves the
per-workspace request limit, the 10 records/s webhook-source budget (counted in
records), and the HTTP API column's per-column rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """The bucket's answer: allowed or not, and what to tell the client."""

    allowed: bool
    remaining: int
    reset_in: float  # seconds until the next request of this size would be allowed
    retry_after: int  # whole seconds, at least 1, for a Retry-After header


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; a request takes ``cost`` tokens.

    A cost above the burst is allowed once the bucket is full and leaves it in debt,
    so the long-run rate holds and an oversized batch is slowed rather than refused
    forever.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        self.rate = float(rate)
        self.burst = float(max(1.0, burst))
        self._tokens = self.burst
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def take(self, now: float, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens if they are there; say when they will be otherwise."""
        self._refill(now)
        need = min(cost, self.burst)
        if self._tokens + 1e-9 >= need:
            self._tokens -= cost
            return Decision(True, self._remaining(), self._wait(1.0), 0)
        wait = self._wait(need)
        return Decision(False, self._remaining(), wait, max(1, math.ceil(wait)))

    def peek(self, now: float) -> Decision:
        """The state of the bucket without taking anything."""
        self._refill(now)
        return Decision(self._tokens >= 1.0, self._remaining(), self._wait(1.0), 0)

    def _remaining(self) -> int:
        return max(0, int(self._tokens + 1e-9))

    def _wait(self, need: float) -> float:
        return max(0.0, (need - self._tokens) / self.rate)
