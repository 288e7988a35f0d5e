"""When leads arrive: steady, over a business day, and in bursts.

Leads reach an enrichment pipeline in three patterns, and the tiers behave very differently
under each:

* **steady**: a homogeneous Poisson process (a form on a busy website, around the clock);
* **business hours**: a Poisson process whose rate follows a daily profile (leads from
  sales reps and CRM automations in the working day, a trickle at night);
* **bursts**: a CSV import or a campaign launch drops hundreds of leads at the same instant.

``burstiness`` is the share of each day's volume that arrives in bursts of ``burst_size``
leads; the rest follows the shape. A non-homogeneous Poisson process with a piecewise
constant rate is generated exactly and vectorised: a Poisson count per interval, then
uniform times inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY_S = 86_400.0

# Share of a day's leads arriving in each hour (local time) when shape="business_hours":
# a working day 08:00-18:00 with a late-morning and early-afternoon peak, a thin evening
# tail, and a few overnight leads from automations and other time zones.
BUSINESS_HOURS = (
    0.2,
    0.2,
    0.2,
    0.2,
    0.2,
    0.3,
    0.5,
    1.2,
    4.0,
    6.5,
    7.5,
    7.0,
    5.5,
    6.5,
    7.5,
    7.0,
    6.0,
    4.0,
    1.5,
    0.8,
    0.5,
    0.4,
    0.3,
    0.2,
)


@dataclass(frozen=True)
class ArrivalProfile:
    """How a day's leads are spread in time.

    ``shape`` is ``"steady"`` or ``"business_hours"`` (or pass ``hourly_weights``, 24
    numbers); ``burstiness`` in [0, 1] is the share of volume that comes in bursts of
    ``burst_size`` leads at once (CSV imports, campaign launches), placed at random times
    weighted by the same shape.
    """

    shape: str = "business_hours"
    burstiness: float = 0.0
    burst_size: int = 500
    hourly_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.burstiness <= 1.0:
            raise ValueError(f"burstiness must be in [0, 1], got {self.burstiness}")
        if self.burst_size < 1:
            raise ValueError(f"burst_size must be at least 1, got {self.burst_size}")
        if self.hourly_weights is None and self.shape not in ("steady", "business_hours"):
            raise ValueError(
                f"unknown arrival shape {self.shape!r}; use 'steady' or 'business_hours'"
            )
        if self.hourly_weights is not None and len(self.hourly_weights) != 24:
            raise ValueError("hourly_weights needs 24 numbers, one per hour")

    def weights(self) -> np.ndarray:
        """Hourly shares of a day's volume, summing to 1."""
        if self.hourly_weights is not None:
            w = np.asarray(self.hourly_weights, dtype=float)
        elif self.shape == "steady":
            w = np.ones(24)
        else:
            w = np.asarray(BUSINESS_HOURS, dtype=float)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("hourly weights must be non-negative and not all zero")
        return w / w.sum()

    def peak_factor(self) -> float:
        """Busiest hour's rate over the day's mean rate (1 for steady arrivals)."""
        return float(self.weights().max() * 24)


def as_profile(profile: ArrivalProfile | str | None) -> ArrivalProfile:
    """An :class:`ArrivalProfile` from itself, a shape name, or ``None`` (the default)."""
    if profile is None:
        return ArrivalProfile()
    if isinstance(profile, ArrivalProfile):
        return profile
    return ArrivalProfile(shape=profile)


def _poisson_in_bins(rates: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted event times of a Poisson process with a constant rate inside each bin.

    Given its count ``k``, a bin's points are ``k`` sorted uniforms, drawn without sorting
    as normalised partial sums of ``k + 1`` exponentials; so the whole horizon is O(n).
    The scaling is done bin by bin, in place, each bin's points moved down over the closing
    sums before it: a few calls per bin (there are hundreds) instead of several temporary
    arrays per lead (there are millions).
    """
    counts = rng.poisson(rates * width)
    n = int(counts.sum())
    if n == 0:
        return np.zeros(0)
    cum = rng.standard_exponential(n + counts.size)
    np.cumsum(cum, out=cum)
    src = dst = 0
    before = 0.0
    for b, k in enumerate(counts.tolist()):
        end = float(cum[src + k])  # the bin's (k+1)-th partial sum closes it
        if k:
            part = cum[dst : dst + k]  # dst <= src: the writes trail the reads
            np.subtract(cum[src : src + k], before, out=part)
            part /= end - before
            part += b
            part *= width
        before = end
        src += k + 1
        dst += k
    return cum[:n]


def generate_arrivals(
    volume_per_day: float,
    days: float,
    profile: ArrivalProfile | str | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sorted arrival times in seconds over ``days`` days, about ``volume_per_day`` a day."""
    if volume_per_day < 0 or days <= 0:
        raise ValueError("volume_per_day must be >= 0 and days > 0")
    prof = as_profile(profile)
    n_hours = int(np.ceil(days * 24))
    horizon = days * DAY_S
    hourly = np.resize(prof.weights(), n_hours) * volume_per_day
    stream = _poisson_in_bins(hourly * (1.0 - prof.burstiness) / 3600.0, 3600.0, rng)
    if prof.burstiness > 0.0:
        burst_rate = hourly * prof.burstiness / prof.burst_size / 3600.0
        bursts = np.repeat(_poisson_in_bins(burst_rate, 3600.0, rng), prof.burst_size)
        stream = np.concatenate([stream, bursts])
        stream.sort(kind="stable")  # two sorted runs: one merge pass
    # A partial last hour: the process restricted to the horizon is still exactly Poisson.
    return stream[: np.searchsorted(stream, horizon, side="right")]
