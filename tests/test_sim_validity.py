"""The simulator against queueing theory (Erlang C) and against SimPy models of the same system."""

from __future__ import annotations

import numpy as np
import pytest

from claynb import sim
from claynb.sim._reference import mmc_mean_wait, mmc_wait_tail, simpy_queue_tier

NO_FAULTS = sim.ClayBehaviour(rate_limit_rps=None, failure_rate=0.0)


@pytest.mark.parametrize(("servers", "load"), [(4, 0.8), (2, 0.6)])
def test_mmc_mean_wait_and_tail_match_erlang_c(servers: int, load: float) -> None:
    mu = 1.0
    lam = load * servers * mu
    # The queue tier with runs of one item, exponential service, no polling, faults or rate
    # limit, and steady Poisson arrivals is exactly an M/M/c queue.
    result = sim.simulate(
        "queue",
        lam * 86_400,
        days=1.5e6 / (lam * 86_400),
        arrivals="steady",
        workers=servers,
        batch_size=1,
        poll_interval_s=0.0,
        run_latency=sim.RunLatency("exponential", mean=1 / mu),
        clay=NO_FAULTS,
        seed=11,
    )
    waits = result.wait_s
    assert waits.size > 1_000_000
    expected = mmc_mean_wait(lam, mu, servers)
    assert waits.mean() == pytest.approx(expected, rel=0.02)
    for t in (0.0, 0.5, 1.0, 2.0, 4.0):
        assert abs(np.mean(waits > t) - mmc_wait_tail(t, lam, mu, servers)) < 0.02


def test_queue_tier_agrees_with_simpy_on_p50_and_p95() -> None:
    rate, jobs = 0.5, 120_000  # leads/s; two workers batching up to 100, polling every 30 s
    simpy_latency, _ = simpy_queue_tier(
        rate,
        jobs,
        workers=2,
        batch_size=100,
        latency_range=(30.0, 60.0),
        poll_interval_s=30.0,
        seed=5,
    )
    ours = sim.simulate(
        "queue",
        rate * 86_400,
        days=jobs / rate / 86_400,
        arrivals="steady",
        workers=2,
        batch_size=100,
        poll_interval_s=30.0,
        run_latency=(30.0, 60.0),
        clay=NO_FAULTS,
        seed=5,
    )
    reference = np.percentile(simpy_latency, [50, 95])
    assert ours.p50 == pytest.approx(reference[0], rel=0.03)
    assert ours.p95 == pytest.approx(reference[1], rel=0.03)


def test_direct_tier_agrees_with_simpy_when_it_is_busy() -> None:
    # Two synchronous calls in flight, one lead per run, polling every 2 s, at 75% load.
    rate, jobs = 2 * 0.75 / 46.0, 60_000
    simpy_latency, _ = simpy_queue_tier(
        rate, jobs, workers=2, batch_size=1, latency_range=(30.0, 60.0), poll_interval_s=2.0, seed=9
    )
    ours = sim.simulate(
        "direct",
        rate * 86_400,
        days=jobs / rate / 86_400,
        arrivals="steady",
        run_latency=(30.0, 60.0),
        clay=NO_FAULTS,
        seed=9,
    )
    reference = np.percentile(simpy_latency, [50, 95])
    assert ours.p50 == pytest.approx(reference[0], rel=0.03)
    assert ours.p95 == pytest.approx(reference[1], rel=0.03)
