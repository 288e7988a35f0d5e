"""Reference models in SimPy, and Erlang C, to check the fast engine against.

These are written the slow, obvious way on purpose: one SimPy process per lead or worker,
``random.Random`` instead of numpy, the maximum of a run's item latencies drawn item by item.
They import SimPy only when called, so SimPy stays a test and development dependency.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from typing import Any


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Probability an arrival waits in an M/M/c queue (Erlang C)."""
    load = arrival_rate / service_rate
    if load >= servers:
        raise ValueError("unstable queue: arrival rate must be below servers x service rate")
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= load / k
        total += term
    top = term * load / servers * servers / (servers - load)
    return top / (total + top)


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue (before service) of an M/M/c queue."""
    return erlang_c(arrival_rate, service_rate, servers) / (servers * service_rate - arrival_rate)


def mmc_wait_tail(t: float, arrival_rate: float, service_rate: float, servers: int) -> float:
    """P(W > t) for the time in queue of an M/M/c queue."""
    return erlang_c(arrival_rate, service_rate, servers) * math.exp(
        -(servers * service_rate - arrival_rate) * t
    )


def simpy_mmc(
    arrival_rate: float, service_rate: float, servers: int, jobs: int, seed: int = 0
) -> list[float]:
    """Waiting times of ``jobs`` customers of an M/M/c queue, simulated in SimPy."""
    import simpy

    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=servers)
    rng = random.Random(seed)
    waits: list[float] = []

    def customer() -> Generator[Any, Any, None]:
        arrived = env.now
        with desk.request() as req:
            yield req
            waits.append(env.now - arrived)
            yield env.timeout(rng.expovariate(service_rate))

    def source() -> Generator[Any, Any, None]:
        for _ in range(jobs):
            yield env.timeout(rng.expovariate(arrival_rate))
            env.process(customer())

    env.process(source())
    env.run()
    return waits


def simpy_queue_tier(
    arrival_rate: float,
    jobs: int,
    workers: int,
    batch_size: int,
    latency_range: tuple[float, float],
    poll_interval_s: float,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """The queue tier in SimPy: (latencies, waits) of ``jobs`` Poisson-arriving leads.

    Workers take everything waiting (up to ``batch_size``) from a store, submit one run,
    and poll until it is done; a run lasts as long as its slowest item.
    """
    import simpy

    env = simpy.Environment()
    store = simpy.Store(env)
    rng = random.Random(seed)
    low, high = latency_range
    latencies: list[float] = []
    waits: list[float] = []

    def source() -> Generator[Any, Any, None]:
        for _ in range(jobs):
            yield env.timeout(rng.expovariate(arrival_rate))
            store.put(env.now)

    def worker() -> Generator[Any, Any, None]:
        while True:
            first = yield store.get()
            batch = [first] + store.items[: batch_size - 1]
            del store.items[: batch_size - 1]
            waits.extend(env.now - a for a in batch)
            run = max(rng.uniform(low, high) for _ in batch)
            if poll_interval_s > 0:
                run = math.ceil(run / poll_interval_s - 1e-9) * poll_interval_s
            yield env.timeout(run)
            latencies.extend(env.now - a for a in batch)

    env.process(source())
    for _ in range(workers):
        env.process(worker())
    env.run()
    return latencies, waits
