"""Each run's randomness, drawn ahead of the loops that need it, in blocks.

A run's latency uniform and its failed attempts do not depend on how many leads it carries,
so they are drawn in numpy before the batch loop reaches the run, a block at a time;
only the slowest-of-``n`` step is left to the loop, and only where the size changes the
poll at which the result is seen. Models of one ``simulate_each`` that draw alike (the queue
tier at each worker count) read the same blocks (``DrawBlocks``), each stream moved to where
it would be had it drawn them itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from claynb.sim._engine import BusyTime
from claynb.sim._tiers import ClayBehaviour, RunLatency, Tier


def retry_time(
    size: int, tier: Tier, clay: ClayBehaviour, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Extra seconds each run spends on failed attempts and backoff, and whether it gave up."""
    if clay.failure_rate <= 0:
        return np.zeros(size), np.zeros(size, dtype=bool)
    failures = rng.geometric(1.0 - clay.failure_rate, size) - 1
    gave_up = failures > tier.max_retries
    tries = np.minimum(failures, tier.max_retries + 1)
    waits = np.minimum(tries, tier.max_retries)
    extra = tries * clay.failure_detect_s + tier.backoff_s * (2.0**waits - 1.0)
    return extra, gave_up


def draw_key(tier: Tier) -> tuple[float, ...]:
    """What a tier's run draws depend on besides Clay, the leads and the stream: the models
    of one ``simulate_each`` with the same key draw the same numbers for every run."""
    return (tier.batch_size, tier.poll_interval_s, tier.max_retries, tier.backoff_s)


@dataclass
class DrawBlocks:
    """Blocks of run draws, made once and read by every model that draws them alike.

    ``values[k]`` is block ``k`` (latency uniforms, retry times, whether each run gave up,
    its time with one lead, its size-free time) and ``states[k]`` the random stream's state
    just after it: a model reading a block someone else drew moves its own stream there, so
    whatever it draws next is what it would have drawn itself.
    """

    values: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    states: list[Mapping[str, Any]] = field(default_factory=list)
    _joined: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict, repr=False)

    def joined(self, blocks: int) -> tuple[np.ndarray, ...]:
        """The first ``blocks`` blocks end to end, joined once for every model that reads them."""
        found = self._joined.get(blocks)
        if found is None:
            parts = self.values[:blocks]
            found = (
                parts[0]
                if blocks == 1
                else tuple(np.concatenate(c) for c in zip(*parts, strict=True))
            )
            self._joined[blocks] = found
        return found


# Where each of a block's arrays is in ``DrawBlocks.values``.
_DRAWN = {"uniform": 0, "extra": 1, "gave_up": 2, "single": 3, "flat": 4}


class RunDraws:
    """How long a worker is held by each run (:class:`~claynb.sim._engine.RunTimes`).

    A run's randomness (its latency uniform, its failed attempts) does not depend on its
    size, so it is drawn in numpy ahead of the loop, in blocks as the loop reaches them; only
    the size-dependent step (the slowest of ``n`` items, ``F^-1(u ** (1/n))``, seen at the
    next poll) is left to ``sized``. That step is non-decreasing in ``n``, so where one lead
    and a full batch take the same time (the common case: both seen at the same poll) every
    size does, and ``flat`` holds it.
    """

    def __init__(
        self,
        tier: Tier,
        clay: ClayBehaviour,
        rng: np.random.Generator,
        leads: int,
        *,
        as_lists: bool = True,
        blocks: DrawBlocks | None = None,
    ):
        self._tier, self._clay, self._rng = tier, clay, rng
        self._blocks = blocks if blocks is not None else DrawBlocks()
        self._inv = [1.0] + [1.0 / k for k in range(1, tier.batch_size + 1)]
        self.inverse = np.array(self._inv)
        self.latency = compiled_latency(clay, tier.poll_interval_s)
        self._count = self._made = 0  # runs and blocks drawn
        # ``flat`` as plain floats for the pure loop (``as_lists``); the compiled loop reads
        # the arrays and needs no list. The draws as plain floats for ``sized``, which runs
        # once per run where the size matters (every run, with a short poll; hardly ever with
        # the default one): caught up with the draws when it first needs them, and extended
        # in place, so it reads lists it holds, no attributes.
        self._as_lists = as_lists
        self._uniforms: list[float] = []
        self._extras: list[float] = []
        self._gone: list[bool] = []
        self.flat: list[float] = []
        self.sized = self._sized_function()
        self._draw(max(1024, 2 * leads // tier.batch_size))

    def _sized_function(self) -> BusyTime:
        observed = scalar_observed(self._clay.run_latency, self._tier.poll_interval_s)
        uniforms, extras, gone, inv = self._uniforms, self._extras, self._gone, self._inv
        failures = self._clay.failure_rate > 0

        def sized(run: int, items: int) -> float:
            try:
                u = uniforms[run]
            except IndexError:
                self._catch_up()
                u = uniforms[run]
            if not failures:
                return observed(u ** inv[items])
            if gone[run]:  # every attempt failed: the worker spent the failures and backoff
                return extras[run]
            return extras[run] + observed(u ** inv[items])

        return sized

    def _catch_up(self) -> None:
        done = len(self._uniforms)
        self._uniforms.extend(self._all("uniform")[done:].tolist())
        self._extras.extend(self._all("extra")[done:].tolist())
        self._gone.extend(self._all("gave_up")[done:].tolist())

    def _draw(self, size: int) -> None:
        """The next block of ``size`` runs: drawn, or read where another model drew it."""
        block, shared = self._made, self._blocks
        if block < len(shared.values):  # the same size: it follows from the blocks before
            values = shared.values[block]
            self._rng.bit_generator.state = shared.states[block]
        else:
            values = self._make(size)
            shared.values.append(values)
            shared.states.append(self._rng.bit_generator.state)
        self._count += size
        self._made += 1
        if self._as_lists:
            self.flat.extend(values[-1].tolist())

    def _make(self, size: int) -> tuple[np.ndarray, ...]:
        tier, clay = self._tier, self._clay
        extra, gave_up = retry_time(size, tier, clay, self._rng)
        u = self._rng.random(size)
        seen = observed_many(clay.run_latency, tier.poll_interval_s, u)
        free = size_free(clay.run_latency, tier.poll_interval_s, u, seen, tier.batch_size)
        one = np.where(gave_up, extra, extra + seen) if clay.failure_rate > 0 else seen
        flat = np.where(free | gave_up, one, np.nan)
        return u, extra, gave_up, one, flat

    def _all(self, key: str) -> np.ndarray:
        return self._blocks.joined(self._made)[_DRAWN[key]]

    def grow(self) -> None:
        self._draw(self._count)

    def keep_lists(self) -> None:
        """Keep ``flat`` as plain floats from now on, for the pure loop."""
        self._as_lists = True
        self.flat.extend(self._all("flat")[len(self.flat) :].tolist())

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every run drawn so far, as the compiled loop reads them (``DrawnRunTimes``)."""
        return self._all("flat"), self._all("uniform"), self._all("extra"), self._all("gave_up")

    def singles(self, first: int, stop: int) -> np.ndarray:
        return self._all("single")[first:stop]

    def gave_up(self, runs: int) -> np.ndarray:
        """Which of the first ``runs`` runs gave up after their retries."""
        return self._all("gave_up")[:runs]


# How far below the next poll a full batch's quantile must stay for a run to count as
# taking the same time whatever its size: far more than float rounding, far less than
# anything a draw could notice.
SAFETY = 1e-9


def size_free(
    latency: RunLatency, poll_s: float, u: np.ndarray, seen: np.ndarray, batch_size: int
) -> np.ndarray:
    """Which runs take the time ``seen`` (of one lead, from quantile ``u``) at any size.

    A run of ``n`` leads takes ``observed(F^-1(u ** (1/n)))``, non-decreasing in ``n``: the
    same as one lead's for every size up to a full batch when even the full batch's quantile
    ``u ** (1/B)`` is seen at the same poll. Decided with a margin (``SAFETY``), so a run
    counted here provably takes that time; any other is left to ``sized``, which computes
    it as always. Uniform latency (the default): the poll is passed at a known quantile
    ``q*``, so the test is ``u <= (q* (1 - SAFETY)) ** B``, one power per distinct poll.
    """
    if latency.kind != "uniform" or poll_s <= 0:
        # At or above the full batch's quantile, below 1 (where a long tail is infinite).
        full = np.minimum(u ** (1.0 / batch_size) * (1 + SAFETY), np.nextafter(1.0, 0.0))
        return observed_many(latency, poll_s, full) == seen
    # seen / poll_s is the poll count k: the latency passes k * poll_s (less the 1e-9 the
    # count allows) at the quantile q* = (k * poll_s + 1e-9 * poll_s - low) / span.
    span = latency.high - latency.low
    if span <= 0:
        return np.ones(u.size, dtype=bool)
    # ``seen`` is a whole number of polls times poll_s: a table indexed by that number holds
    # the same float for each, and costs no sort of the draws (``np.unique`` would).
    polls_seen = np.rint(seen / poll_s).astype(np.intp)
    first = int(polls_seen.min()) if polls_seen.size else 0
    last = int(polls_seen.max()) if polls_seen.size else -1
    polls = np.arange(first, last + 1, dtype=float) * poll_s
    passed = ((polls / poll_s + 1e-9) * poll_s - latency.low) / span
    reach = np.where(passed >= 1.0, np.inf, np.clip(passed * (1 - SAFETY), 0, None) ** batch_size)
    polls_seen -= first
    return u <= reach[polls_seen]


def compiled_latency(clay: ClayBehaviour, poll_s: float) -> tuple[float, float, float, bool] | None:
    """``(low, span, poll_s, failures)`` for the compiled loop, which knows uniform latency
    (and fixed, a uniform of no span: the same floats); ``None`` for the other kinds."""
    latency = clay.run_latency
    if latency.kind == "uniform":
        span = latency.high - latency.low
    elif latency.kind == "fixed":
        span = 0.0
    else:
        return None
    return float(latency.low), float(span), float(poll_s), clay.failure_rate > 0


def observed_many(latency: RunLatency, poll_s: float, q: np.ndarray) -> np.ndarray:
    """:func:`scalar_observed` over an array, to the same bit (uniform: the same operations)."""
    if latency.kind != "uniform":
        one = scalar_observed(latency, poll_s)
        return np.array([one(x) for x in q.tolist()], dtype=float)
    seen = q * (latency.high - latency.low)
    seen += latency.low
    if poll_s > 0:
        seen /= poll_s
        seen -= 1e-9
        np.ceil(seen, out=seen)
        seen *= poll_s
    return seen


def scalar_observed(latency: RunLatency, poll_s: float) -> Callable[[float], float]:
    """One run's latency from its quantile, as a poller every ``poll_s`` sees it (scalar)."""
    ppf, ceil = latency.scalar_ppf(), math.ceil
    if poll_s <= 0:
        return ppf
    if latency.kind == "uniform":  # the common case, fused: one call a run instead of two
        low, span = latency.low, latency.high - latency.low
        return lambda q: ceil((low + span * q) / poll_s - 1e-9) * poll_s
    return lambda q: ceil(ppf(q) / poll_s - 1e-9) * poll_s
