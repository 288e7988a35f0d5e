"""claynb.sim against SimPy on the same models, side by side in one run.

    python benchmarks/sim_vs_simpy.py [--leads 400000] [--repeat 3]

Two models, each simulated by both with the same parameters and the same number of leads:

* the queue tier: Poisson leads at 100K a day, 4 workers that take everything waiting (up to
  100) as one Clay run, runs lasting the slowest of their items (30-60 s each), results seen
  at the next 10 s poll;
* M/M/4 at 80% load: the textbook case, one job per run, no batching to help the engine.

For each: jobs per second of each simulator (best of ``--repeat``), their ratio, and the gap
between them in mean and p95 wait (time from arrival to the run's start), with Erlang C for
M/M/c. Timings are wall clock on a shared machine: read the ratio, not the absolute numbers.
Waits in a busy queue are strongly correlated from one lead to the next, so with 400K leads a
single run's mean and p95 wait move by 2-3% from seed to seed in either simulator; the
tests (tests/test_sim_validity.py) check agreement on larger samples.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from claynb import sim
from claynb.sim._reference import mmc_mean_wait, simpy_mmc, simpy_queue_tier

QUIET = sim.ClayBehaviour(rate_limit_rps=None, failure_rate=0.0)


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _row(
    name: str,
    leads: int,
    t_ours: float,
    t_simpy: float,
    ours: np.ndarray,
    ref: np.ndarray,
    theory: float | None = None,
) -> None:
    ours_rate, simpy_rate = leads / t_ours, leads / t_simpy
    mean_gap = ours.mean() / ref.mean() - 1
    p95_gap = np.percentile(ours, 95) / np.percentile(ref, 95) - 1
    print(f"\n{name}  ({leads:,} leads each)")
    print(
        f"  claynb.sim : {ours_rate:>12,.0f} jobs/s   mean wait {ours.mean():8.3f} s   p95 wait {np.percentile(ours, 95):8.3f} s"
    )
    print(
        f"  SimPy      : {simpy_rate:>12,.0f} jobs/s   mean wait {ref.mean():8.3f} s   p95 wait {np.percentile(ref, 95):8.3f} s"
    )
    print(f"  speed-up   : {ours_rate / simpy_rate:>12.1f}x   (target >= 30x)")
    print(f"  gap        : mean wait {mean_gap:+.2%}, p95 wait {p95_gap:+.2%}")
    if theory is not None:
        print(
            f"  Erlang C   : mean wait {theory:.3f} s (claynb.sim {ours.mean() / theory - 1:+.2%}, "
            f"SimPy {ref.mean() / theory - 1:+.2%})"
        )


def queue_tier(leads: int, repeat: int) -> None:
    rate, workers = 100_000 / 86_400, 4
    days = leads / rate / 86_400

    def ours() -> np.ndarray:
        r = sim.simulate(
            "queue",
            rate * 86_400,
            days=days,
            arrivals="steady",
            workers=workers,
            batch_size=100,
            poll_interval_s=10.0,
            run_latency=(30.0, 60.0),
            clay=QUIET,
            seed=1,
        )
        return r.wait_s

    def reference() -> np.ndarray:
        _, waits = simpy_queue_tier(
            rate,
            leads,
            workers=workers,
            batch_size=100,
            latency_range=(30.0, 60.0),
            poll_interval_s=10.0,
            seed=1,
        )
        return np.asarray(waits)

    t_ours, w_ours = _best(ours, repeat)
    t_simpy, w_ref = _best(reference, max(1, repeat - 1))
    _row(
        "queue tier, 100K leads/day, 4 workers, runs of up to 100",
        leads,
        t_ours,
        t_simpy,
        w_ours,
        w_ref,
    )


def mmc(leads: int, repeat: int) -> None:
    servers, mu = 4, 1.0
    lam = 0.8 * servers * mu
    days = leads / lam / 86_400

    def ours() -> np.ndarray:
        r = sim.simulate(
            "queue",
            lam * 86_400,
            days=days,
            arrivals="steady",
            workers=servers,
            batch_size=1,
            poll_interval_s=0.0,
            run_latency=sim.RunLatency("exponential", mean=1 / mu),
            clay=QUIET,
            seed=2,
        )
        return r.wait_s

    t_ours, w_ours = _best(ours, repeat)
    t_simpy, w_ref = _best(
        lambda: np.asarray(simpy_mmc(lam, mu, servers, leads, seed=2)), max(1, repeat - 1)
    )
    _row(
        "M/M/4 at 80% load, one job per run",
        leads,
        t_ours,
        t_simpy,
        w_ours,
        w_ref,
        theory=mmc_mean_wait(lam, mu, servers),
    )


def month(repeat: int) -> None:
    t, r = _best(lambda: sim.simulate("queue", 100_000, days=30, workers=8, seed=3), repeat)
    print(
        f"\na month at 100K leads/day, business hours, all defaults: {r.leads:,} leads in {t:.2f} s "
        f"({r.leads / t:,.0f} jobs/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    queue_tier(args.leads, args.repeat)
    mmc(args.leads, args.repeat)
    month(args.repeat)


if __name__ == "__main__":
    main()
