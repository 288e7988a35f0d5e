"""The emulator's settings, checked once when it is built.

Real Clay publishes no numbers for its API rate limit, run latency, webhook retries or
HTTP API column timeouts; every one of those is a setting here, with the defaults the
reference notes suggest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from claynb._plans import Plan, get_plan
from claynb._routines import DEFAULT_ROUTINES, Routine
from claynb.emulator._faults import Faults

DEFAULT_SLOW_S = 30.0
SOURCE_RATE_PER_S = 10.0
SOURCE_BURST = 20
SOURCE_LIFETIME_CAP = 50_000
SOURCE_MAX_BYTES = 100 * 1024
BATCH_MAX_ROWS = 50_000
WEBHOOK_HOLD_S = 1.0


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the emulator's behaviour; see :class:`claynb.Emulator`."""

    plan: Plan
    run_latency_s: tuple[float, float] = (1.0, 3.0)
    rate_limit_rps: float | None = None
    rate_limit_burst: float | None = None
    faults: Faults = Faults()
    seed: int = 0
    outcome_seed: int = 0
    slow_s: float = DEFAULT_SLOW_S
    routines: Mapping[str, Routine] = field(default_factory=lambda: dict(DEFAULT_ROUTINES))
    source_rate_per_s: float = SOURCE_RATE_PER_S
    source_burst: float = SOURCE_BURST
    source_lifetime_cap: int = SOURCE_LIFETIME_CAP
    source_max_bytes: int = SOURCE_MAX_BYTES
    batch_max_rows: int = BATCH_MAX_ROWS
    webhook_hold_s: float = WEBHOOK_HOLD_S

    @property
    def burst(self) -> float:
        """Public API burst: the setting, else one second's worth (at least 1)."""
        if self.rate_limit_burst is not None:
            return max(1.0, float(self.rate_limit_burst))
        return max(1.0, float(self.rate_limit_rps or 1.0))


def parse_latency(
    value: float | int | str | tuple[float, float] | list[float],
) -> tuple[float, float]:
    """A latency as (low, high): a number, a (low, high) pair, or "LOW,HIGH" text."""
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        if len(parts) not in (1, 2):
            raise ValueError(f"run latency {value!r}: give SECONDS or LOW,HIGH")
        value = (float(parts[0]), float(parts[-1]))
    if isinstance(value, int | float):
        low = high = float(value)
    else:
        low, high = (float(v) for v in value)
    if low < 0 or high < low:
        raise ValueError(f"run latency must be >= 0 with low <= high, got {value!r}")
    return low, high


def build_settings(
    *,
    plan: str | Plan,
    run_latency_s: float | tuple[float, float],
    rate_limit_rps: float | None,
    faults: Faults | None,
    seed: int,
    **extra: object,
) -> Settings:
    """Check and combine the constructor's arguments into :class:`Settings`."""
    if rate_limit_rps is not None and rate_limit_rps <= 0:
        raise ValueError(f"rate_limit_rps must be positive or None, got {rate_limit_rps!r}")
    known = set(Settings.__dataclass_fields__) - {
        "plan",
        "run_latency_s",
        "rate_limit_rps",
        "faults",
        "seed",
    }
    unknown = set(extra) - known
    if unknown:
        raise TypeError(f"unknown emulator setting(s) {sorted(unknown)}; known: {sorted(known)}")
    if "routines" in extra and extra["routines"] is not None:
        extra["routines"] = dict(extra["routines"])  # type: ignore[call-overload]
    else:
        extra.pop("routines", None)
    return Settings(
        plan=get_plan(plan),
        run_latency_s=parse_latency(run_latency_s),
        rate_limit_rps=rate_limit_rps,
        faults=faults or Faults(),
        seed=seed,
        **extra,  # type: ignore[arg-type]
    )
