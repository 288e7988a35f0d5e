"""The three architecture tiers as simulation models.

Every tier sends leads to Clay in *runs* of 1 to 100 items, and a run finishes when its
slowest item does (Clay answers ``202`` until the whole run is complete), so a run of ``n``
items takes the maximum of ``n`` item latencies. What differs is who waits and how:

* **direct**: the application calls Clay in its request path and blocks until the result
  is there (30-60 s per lead). ``concurrency`` calls can be in flight; there is
  no buffer, no retry and no budget cap.
* **queue**: leads go onto a Redis queue; each of ``workers`` takes whatever is waiting (up
  to ``batch_size``), submits one run, and polls every ``poll_interval_s`` until it is done.
  Failed runs are retried with exponential backoff; a shared budget caps spend.
* **events**: a consumer flushes micro-batches every ``linger_s`` (or at ``batch_size``)
  and never blocks: the result comes back by signed webhook a moment after the run ends.
  Webhooks can be lost (``webhook_loss``); a fallback poller catches those runs after
  ``fallback_after_s``. A credit circuit breaker caps spend.

All three share Clay's behaviour: the item latency distribution, transient run failures,
and the workspace request rate limit, which polling eats into.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

TIERS = ("direct", "queue", "events")


@dataclass(frozen=True)
class RunLatency:
    """How long Clay takes for one item, from submit to result.

    ``kind`` is ``"uniform"`` (between ``low`` and ``high``: 30-60 s by default),
    ``"exponential"`` (mean ``mean``), ``"lognormal"`` (``median`` and ``sigma``) or
    ``"fixed"`` (``low``).
    """

    kind: str = "uniform"
    low: float = 30.0
    high: float = 60.0
    mean: float = 45.0
    median: float = 40.0
    sigma: float = 0.4

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "exponential", "lognormal", "fixed"):
            raise ValueError(f"unknown run latency kind {self.kind!r}")
        if self.kind == "uniform" and not 0 <= self.low <= self.high:
            raise ValueError("uniform run latency needs 0 <= low <= high")

    def scalar_ppf(self) -> Callable[[float], float]:
        """The quantile function for one probability (fast: it runs once per run)."""
        if self.kind == "uniform":
            low, span = self.low, self.high - self.low
            return lambda q: low + span * q
        if self.kind == "exponential":
            mean = self.mean
            return lambda q: -mean * math.log1p(-q)
        if self.kind == "lognormal":
            inv, median, sigma = NormalDist().inv_cdf, self.median, self.sigma
            return lambda q: median * math.exp(sigma * inv(min(max(q, 1e-12), 1 - 1e-12)))
        fixed = self.low
        return lambda q: fixed

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """The quantile function, vectorised."""
        if self.kind == "uniform":  # in place on one new array: these can be millions long
            out = np.multiply(q, self.high - self.low)
            out += self.low
            return out
        if self.kind == "exponential":
            out = np.negative(q)
            np.log1p(out, out=out)
            out *= -self.mean
            return out
        if self.kind == "lognormal":
            return self.median * np.exp(self.sigma * _norm_ppf(q))
        return np.full_like(q, self.low, dtype=float)

    def run_latency(self, n_items: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Latency of runs of ``n_items`` items: the maximum of that many item latencies.

        The maximum of ``n`` i.i.d. draws has CDF ``F(x)**n``, so ``F^-1(q**(1/n))`` draws
        it from one uniform ``q``.
        """
        return self.ppf(q ** (1.0 / np.maximum(n_items, 1)))

    def mean_latency(self) -> float:
        if self.kind == "uniform":
            return (self.low + self.high) / 2
        if self.kind == "exponential":
            return self.mean
        if self.kind == "lognormal":
            return self.median * math.exp(self.sigma**2 / 2)
        return self.low

    def min_latency(self) -> float:
        return self.low if self.kind in ("uniform", "fixed") else 0.0


def _norm_ppf(q: np.ndarray) -> np.ndarray:
    """Standard normal quantiles, vectorised (Acklam's rational approximation, |err| < 1.2e-9)."""
    a = [
        -3.969683028665376e01,
        2.209460984245205e02,
        -2.759285104469687e02,
        1.383577518672690e02,
        -3.066479806614716e01,
        2.506628277459239e00,
    ]
    b = [
        -5.447609879822406e01,
        1.615858368580409e02,
        -1.556989798598866e02,
        6.680131188771972e01,
        -1.328068155288572e01,
        1.0,
    ]
    c = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e00,
        -2.549732539343734e00,
        4.374664141464968e00,
        2.938163982698783e00,
    ]
    d = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e00,
        3.754408661907416e00,
        1.0,
    ]
    q = np.clip(np.asarray(q, dtype=float), 1e-300, 1 - 1e-16)
    low, high = q < 0.02425, q > 1 - 0.02425
    mid = ~(low | high)
    out = np.empty_like(q)
    r = q[mid] - 0.5
    s = r * r
    out[mid] = np.polyval(a, s) * r / np.polyval(b, s)
    t = np.sqrt(-2.0 * np.log(q[low]))
    out[low] = np.polyval(c, t) / np.polyval(d, t)
    t = np.sqrt(-2.0 * np.log1p(-q[high]))
    out[high] = -np.polyval(c, t) / np.polyval(d, t)
    return out


@dataclass(frozen=True)
class ClayBehaviour:
    """What Clay does, whichever tier calls it.

    ``rate_limit_rps`` is the workspace request rate limit (Clay publishes none; the default
    is a setting, ``None`` for unlimited). ``failure_rate`` is the chance a run attempt fails
    transiently (5xx, timeout) and ``failure_detect_s`` how long a client takes to notice.
    """

    run_latency: RunLatency = field(default_factory=RunLatency)
    rate_limit_rps: float | None = 10.0
    failure_rate: float = 0.01
    failure_detect_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.failure_rate < 1.0:
            raise ValueError("failure_rate must be in [0, 1)")
        if self.rate_limit_rps is not None and self.rate_limit_rps <= 0:
            raise ValueError("rate_limit_rps must be positive or None")


@dataclass(frozen=True)
class DirectTier:
    """Synchronous calls in the request path: tier 1.

    ``concurrency`` defaults to 2: a notebook or a small app with a couple of calls in
    flight. Each call holds its slot for the whole run (polling every ``poll_interval_s``).
    """

    concurrency: int = 2
    batch_size: int = 1
    poll_interval_s: float = 2.0
    max_retries: int = 0
    backoff_s: float = 0.0
    name: str = "direct"

    @property
    def servers(self) -> int:
        return self.concurrency

    @property
    def budget_capped(self) -> bool:
        return False


@dataclass(frozen=True)
class QueueTier:
    """Redis queue and polling workers: tier 2.

    Workers poll every 30 s by default, gently, so that many of them fit under the
    workspace rate limit; the price is that a result is seen up to one poll late.
    """

    workers: int = 4
    batch_size: int = 100
    poll_interval_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 30.0
    name: str = "queue"

    @property
    def servers(self) -> int:
        return self.workers

    @property
    def budget_capped(self) -> bool:
        return True


@dataclass(frozen=True)
class EventTier:
    """Event bus, micro-batching consumer and webhook receiver: tier 3."""

    consumers: int = 2
    batch_size: int = 100
    linger_s: float = 1.0
    webhook_delay_s: float = 0.5
    webhook_loss: float = 0.02
    fallback_after_s: float = 120.0
    poll_interval_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 5.0
    name: str = "events"

    @property
    def servers(self) -> int:
        return 0  # non-blocking: no worker waits on a run

    @property
    def budget_capped(self) -> bool:
        return True


Tier = DirectTier | QueueTier | EventTier


def make_tier(tier: str | Tier, **overrides: Any) -> Tier:
    """A tier model from its name (``direct``, ``queue``, ``events``) or itself, with overrides.

    ``workers`` is accepted for every tier (it means ``concurrency`` for direct and
    ``consumers`` for events), so a dashboard slider can drive whichever tier is shown.
    """
    if isinstance(tier, str):
        key = {"event": "events", "event-driven": "events", "event_driven": "events"}.get(
            tier, tier
        )
        classes: dict[str, type[Tier]] = {
            "direct": DirectTier,
            "queue": QueueTier,
            "events": EventTier,
        }
        if key not in classes:
            raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        base: Tier = classes[key]()
    else:
        base = tier
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "workers" in overrides and not isinstance(base, QueueTier):
        alias = "concurrency" if isinstance(base, DirectTier) else "consumers"
        overrides[alias] = overrides.pop("workers")
    try:
        tier_obj = replace(base, **overrides)
    except TypeError as exc:
        raise ValueError(f"{base.name} tier: {exc}") from None
    _check(tier_obj)
    return tier_obj


def _check(tier: Tier) -> None:
    if not 1 <= tier.batch_size <= 100:
        raise ValueError(f"batch_size must be 1..100 (Clay's run limit), got {tier.batch_size}")
    if isinstance(tier, DirectTier | QueueTier) and tier.servers < 1:
        raise ValueError(f"{tier.name} tier needs at least one worker, got {tier.servers}")
    if tier.max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    if isinstance(tier, EventTier) and not 0.0 <= tier.webhook_loss <= 1.0:
        raise ValueError("webhook_loss must be in [0, 1]")
