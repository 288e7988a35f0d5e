"""Client-side rate pacing: send at the rate the server allows, not into its 429s.

A 429 costs a round trip and a wait; a client that paces itself gets the same throughput
without them. :class:`Pacer` is a token bucket written as send times (the "generic cell
rate algorithm"): each caller reserves the next free slot under a lock and is told how
long to wait for it. The lock is held for microseconds and never across a sleep, so one
pacer serves many threads (the sync client) or many tasks (the async client) alike.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime


class Pacer:
    """A token bucket of ``burst`` tokens refilled at ``limit * fraction`` per second.

    ``limit`` None means unknown: nothing is paced until :meth:`observe` learns it from
    the server's X-RateLimit-* headers (a lower announced limit also overrides a given
    one), and waits asked for by a 429 apply to every caller. ``fraction`` leaves headroom below the limit for timing jitter.
    """

    def __init__(
        self,
        limit: float | None,
        *,
        burst: int = 1,
        fraction: float = 1.0,
        clock: Callable[[], float],
    ) -> None:
        if limit is not None and limit <= 0:
            raise ValueError(f"a rate limit must be positive, not {limit}")
        self._lock = threading.Lock()
        self._given = limit
        self._limit = limit
        self._burst = max(1, burst)
        self._fraction = fraction
        self._clock = clock
        self._full_at = -math.inf  # when the bucket would be full again
        self._blocked_until = -math.inf

    @property
    def limit(self) -> float | None:
        """Requests (or records) per second the server allows, when known."""
        return self._limit

    def _interval(self) -> float | None:
        return 1.0 / (self._limit * self._fraction) if self._limit else None

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return the seconds to wait before sending."""
        with self._lock:
            now = self._clock()
            start = max(now, self._blocked_until)
            interval = self._interval()
            if interval is None:
                return start - now
            cost = min(cost, self._burst)
            send_at = max(start, self._full_at + (cost - self._burst) * interval)
            self._full_at = max(self._full_at, send_at) + cost * interval
            return send_at - now

    def block_for(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (a 429 said so); afterwards the bucket refills
        from one token, as the server's does."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._blocked_until = max(self._blocked_until, until)
            interval = self._interval()
            if interval is not None:
                self._full_at = max(self._full_at, until + (self._burst - 1) * interval)

    def observe(
        self, *, limit: float | None, remaining: float | None, reset_in: float | None
    ) -> None:
        """Learn from X-RateLimit-Limit / Remaining / Reset on an answer.

        The pace is the lower of the limit given to the client (a share the caller
        chose) and the one the server announces (what it will actually allow).
        ``remaining`` 0 means the window is spent: hold everyone until ``reset_in``.
        """
        if limit is not None and limit > 0:
            with self._lock:
                self._limit = limit if self._given is None else min(self._given, limit)
        if remaining is not None and remaining < 1 and reset_in:
            self.block_for(reset_in)


def header_number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def retry_after_s(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: an integer, or an HTTP date (RFC 9110 allows both)."""
    seconds = header_number(value)
    if seconds is not None:
        return max(0.0, seconds)
    if not value:
        return None
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def reset_in_s(value: str | None, now: float) -> float | None:
    """X-RateLimit-Reset as seconds from now: epoch seconds, or a delta when it is small."""
    reset = header_number(value)
    if reset is None or reset < 0:
        return None
    if reset > 1e9:  # an epoch timestamp
        return max(0.0, reset - now)
    return reset
