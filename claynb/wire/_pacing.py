"""Client-side rate pacing: send at the rate the server allows, not into its 429s.

A 429 costs a round trip and a wait; a client that paces itself gets the same throughput
without them. Clay publishes no number for its per-workspace limit, and the window of
``X-RateLimit-Limit`` is not documented (per second? per minute?), so the pace is learned
from what the server does, never from that number:

- An answer saying the server has nothing left (a 429, or ``X-RateLimit-Remaining: 0``)
  marks a moment when its bucket is empty. Everyone holds until it refills (the 429's
  ``X-RateLimit-Reset``, else ``Retry-After``), and the requests the server accepted
  since the previous empty moment, over the time between them, is the rate it allows:
  whatever its window, between two empty moments a limiter lets through exactly what it
  refills. Only windows that begin at an empty moment count (one that began with a full
  bucket would read high by what the bucket held).
- Until a window has been measured, the wait the server named is the provisional pace
  (one request per wait: with an empty bucket that is when the next one fits), so
  callers released from a hold go one at a time instead of all at once into more 429s.
- ``X-RateLimit-Limit`` is only a ceiling: read as per second it can never be below what
  the server allows, whatever its window (a second, a minute: any window of a second or
  more), so a per-second limiter is paced to from its first answer, without a 429, and a
  per-minute number (60 times the rate) caps nothing.
- While the pace holds callers back and nothing has run out for a while, the pace is
  raised: doubled every second while provisional (a provisional pace may be far too
  low, as with a window limiter's long reset), by a little every ten seconds once
  measured, so a limit that was read low (or was raised) is found again.

:class:`PaceState` is that rule as data and pure functions of a clock reading, so the same
rule runs in one process (:class:`Pacer`, under a lock) and across a fleet of processes
and hosts sharing one workspace (:class:`claynb.wire._fleet.FleetPacer`, in Redis).
Scheduling is a token bucket written as send times (the "generic cell rate algorithm"):
each caller reserves the next free slot and is told how long to wait for it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

#: A measurement needs at least this long between two empty moments: 429s answered to
#: requests already in flight together carry no news about the rate.
MIN_WINDOW_S = 1.0
#: Callers quiet for this long let the server's bucket fill: the measuring window starts again.
IDLE_GAP_S = 0.5
#: A window this long with nothing running out measures nothing: start it again.
MAX_WINDOW_S = 10.0
#: Held back by the pace and nothing ran out for this long: raise the pace by so much
#: (a measured pace; a provisional one doubles every second).
RAISE_AFTER_S = 10.0
RAISE_BY = 1.05
PROVISIONAL_RAISE_AFTER_S = 1.0
PROVISIONAL_RAISE_BY = 2.0


@dataclass
class PaceState:
    """Everything one pace knows; times are readings of one clock (seconds).

    ``given`` is a cap the caller chose (a share of the limit, or the limit it knows);
    ``learned`` what the server was measured to allow; ``ceiling`` the server's
    X-RateLimit-Limit read as per second (never below the truth). The pace is the lowest.
    """

    given: float | None = None
    learned: float | None = None
    ceiling: float | None = None
    full_at: float = -math.inf  # when the bucket would be full again
    blocked_until: float = -math.inf
    window_start: float | None = None  # the last empty moment, or the start of busy time
    window_count: float = 0.0  # requests accepted since window_start
    window_from_empty: bool = False  # the window began at an empty moment
    last_send: float = -math.inf  # the last send as scheduled, or the end of a hold
    last_change: float = -math.inf  # the last empty moment or raise
    provisional: bool = False  # learned is one request per the last wait, not measured

    @property
    def limit(self) -> float | None:
        """Requests per second the server allows, when known (the lowest of given, learned
        and ceiling)."""
        known = [r for r in (self.given, self.learned, self.ceiling) if r]
        return min(known) if known else None

    def to_fields(self) -> dict[str, str]:
        """The state as text fields (a Redis hash); None and infinities round-trip."""
        return {k: repr(v) for k, v in asdict(self).items()}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> PaceState:
        parsed: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            text = fields.get(name)
            if text in ("True", "False"):
                parsed[name] = text == "True"
            elif text is not None and text != "None":
                parsed[name] = float(text)
            elif text == "None":
                parsed[name] = None
        return cls(**parsed)


def reserve(
    state: PaceState, now: float, cost: float = 1.0, *, burst: int = 1, fraction: float = 1.0
) -> float:
    """Take ``cost`` tokens at ``now``; the seconds to wait before sending."""
    send_at = _slot(state, now, cost, burst=burst, fraction=fraction)
    start = state.window_start
    # Callers held by the pace or a 429 are busy, not idle: the gap runs from the last
    # send as scheduled.
    if start is None or now - state.last_send > IDLE_GAP_S or now - start > MAX_WINDOW_S:
        state.window_start, state.window_count, state.window_from_empty = now, 0.0, False
    state.last_send = max(state.last_send, send_at)
    if send_at > now:
        _raise(state, now)
    return send_at - now


def _raise(state: PaceState, now: float) -> None:
    """Callers are held by a learned pace and nothing ran out for a while: look for more."""
    caps = [c for c in (state.given, state.ceiling) if c]
    if state.learned is None or (caps and state.learned >= min(caps)):
        return
    after, by = (
        (PROVISIONAL_RAISE_AFTER_S, PROVISIONAL_RAISE_BY)
        if state.provisional
        else (RAISE_AFTER_S, RAISE_BY)
    )
    if now - state.last_change > after:
        state.learned *= by
        state.last_change = now


def _slot(state: PaceState, now: float, cost: float, *, burst: int, fraction: float) -> float:
    """When a send of ``cost`` tokens may go: the next free slot of the bucket."""
    start = max(now, state.blocked_until)
    limit = state.limit
    if limit is None:
        return start
    interval = 1.0 / (limit * fraction)
    cost = min(cost, burst)
    send_at = max(start, state.full_at + (cost - burst) * interval)
    state.full_at = max(state.full_at, send_at) + cost * interval
    return send_at


def accepted(state: PaceState, cost: float = 1.0) -> None:
    """The server accepted a request (any answer but a 429): it counts in the window."""
    if state.window_start is not None:
        state.window_count += cost


def announced(state: PaceState, per_window: float) -> None:
    """The server's X-RateLimit-Limit: a ceiling on the pace, read as per second (its window
    is undocumented; any window of a second or more allows at most this many per second)."""
    if per_window > 0:
        state.ceiling = per_window


def block(state: PaceState, now: float, seconds: float, *, burst: int = 1) -> None:
    """Hold every caller for ``seconds``; afterwards the bucket refills from one token."""
    until = now + max(0.0, seconds)
    state.blocked_until = max(state.blocked_until, until)
    state.last_send = max(state.last_send, until)  # a hold is not idle time
    limit = state.limit
    if limit:
        state.full_at = max(state.full_at, until + (burst - 1) / limit)


def ran_out(state: PaceState, now: float, wait: float, *, burst: int = 1) -> None:
    """The server has nothing left (a 429, or Remaining 0 on an answer): hold
    everyone for ``wait`` and learn the rate from the window that just ended."""
    start = state.window_start if state.window_start is not None else now
    elapsed = now - start
    from_empty = state.window_from_empty and state.window_count > 0
    if from_empty and elapsed >= MIN_WINDOW_S:
        state.learned, state.provisional = state.window_count / elapsed, False
    elif state.provisional or state.learned is None:
        guesses = [1.0 / wait] if wait > 0 else []  # at most one refill: reads high
        if from_empty and elapsed >= MIN_WINDOW_S / 4:
            guesses.append(state.window_count / elapsed)  # a short window: a noisy measure
        if guesses:
            state.learned, state.provisional = min([state.learned or math.inf, *guesses]), True
    if elapsed >= MIN_WINDOW_S or not state.window_from_empty:
        # A window that began with the bucket in an unknown state (full, after a quiet
        # spell) would read high by what it held: measure from this empty moment instead.
        state.window_start, state.window_count, state.window_from_empty = now, 0.0, True
    state.last_change = now
    block(state, now, wait, burst=burst)


class Pace(Protocol):
    """What a client needs of a pacer, in one process or shared by a fleet."""

    @property
    def limit(self) -> float | None: ...

    def reserve(self, cost: float = 1.0) -> float: ...

    def block_for(self, seconds: float) -> None: ...

    def ran_out(self, wait: float) -> None: ...

    def announced(self, per_window: float) -> None: ...

    def accepted(self, cost: float = 1.0) -> None: ...


class Pacer:
    """A :class:`PaceState` in one process: a token bucket of ``burst`` tokens refilled at
    ``limit * fraction`` per second, the limit given or learned.

    The lock is held for microseconds and never across a sleep, so one pacer serves many
    threads (the sync client) or many tasks (the async client) alike.
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
        self._state = PaceState(given=limit)
        self._burst = max(1, burst)
        self._fraction = fraction
        self._clock = clock

    @property
    def limit(self) -> float | None:
        """Requests (or records) per second the server allows, when known."""
        return self._state.limit

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return the seconds to wait before sending."""
        with self._lock:
            return reserve(
                self._state, self._clock(), cost, burst=self._burst, fraction=self._fraction
            )

    def block_for(self, seconds: float) -> None:
        """Hold every caller for ``seconds``; afterwards the bucket refills from one token."""
        with self._lock:
            block(self._state, self._clock(), seconds, burst=self._burst)

    def ran_out(self, wait: float) -> None:
        """The server has nothing left: hold everyone for ``wait`` and learn the rate."""
        with self._lock:
            ran_out(self._state, self._clock(), wait, burst=self._burst)

    def accepted(self, cost: float = 1.0) -> None:
        """The server accepted a request of ``cost`` tokens."""
        with self._lock:
            accepted(self._state, cost)

    def announced(self, per_window: float) -> None:
        """The server's X-RateLimit-Limit: a ceiling on the pace (see :func:`announced`)."""
        with self._lock:
            announced(self._state, per_window)


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
