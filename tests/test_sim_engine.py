"""The engine's queues against brute-force versions written the obvious way, and the
stretches it finds in numpy against its own loop, run for run."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np
import pytest
from _sim_helpers import QUEUE_SETTING_NAMES, QUEUE_SETTINGS, queue_case

from claynb.sim._draws import RunDraws, observed_many, scalar_observed, size_free
from claynb.sim._engine import (
    Runs,
    RunTimes,
    batch_fcfs,
    fcfs_starts,
    flush_windows,
    lindley_starts,
    spaced_starts,
)
from claynb.sim._stretches import spaced_chain
from claynb.sim._tiers import RunLatency


def _brute_fcfs(arr: np.ndarray, svc: np.ndarray, servers: int, spacing: float = 0.0) -> np.ndarray:
    free = [0.0] * servers
    starts, last = [], -np.inf
    for a, s in zip(arr, svc, strict=True):
        f = heapq.heappop(free)
        t = max(a, f, last + spacing)
        last = t
        heapq.heappush(free, t + s)
        starts.append(t)
    return np.array(starts)


@pytest.fixture
def jobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return np.cumsum(rng.exponential(1.0, 3000)), rng.exponential(2.5, 3000)


def test_lindley_matches_one_server_brute_force(jobs: tuple[np.ndarray, np.ndarray]) -> None:
    arr, svc = jobs
    np.testing.assert_allclose(
        lindley_starts(arr, svc), _brute_fcfs(arr, svc, 1), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("servers", [2, 3, 8])
def test_multi_server_matches_brute_force(
    jobs: tuple[np.ndarray, np.ndarray], servers: int
) -> None:
    arr, svc = jobs
    np.testing.assert_allclose(
        fcfs_starts(arr, svc, servers), _brute_fcfs(arr, svc, servers), atol=1e-9
    )


def test_spacing_is_honoured_with_many_servers(jobs: tuple[np.ndarray, np.ndarray]) -> None:
    arr, svc = jobs
    starts = fcfs_starts(arr, svc, 4, min_spacing=1.5)
    np.testing.assert_allclose(starts, _brute_fcfs(arr, svc, 4, 1.5), atol=1e-9)
    assert np.diff(starts).min() >= 1.5 - 1e-9


def test_spaced_starts_is_the_earliest_schedule() -> None:
    ready = np.array([0.0, 0.1, 0.2, 5.0, 5.0, 9.9])
    expected = [0.0, 1.0, 2.0, 5.0, 6.0, 9.9]
    np.testing.assert_allclose(spaced_starts(ready, 1.0), expected)


def test_batch_workers_take_everything_waiting_up_to_the_batch_size() -> None:
    arrivals = np.array([0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 20.0])
    runs = batch_fcfs(arrivals, servers=1, batch_size=3, busy_time=lambda r, n: 10.0)
    # run 0 takes the lead at 0; at 10 four more wait (capped at 3); at 20 the rest.
    assert runs.count.tolist() == [1, 3, 3, 1]
    assert runs.start.tolist() == [0.0, 10.0, 20.0, 30.0]
    assert runs.lead_run.tolist() == [0, 1, 1, 1, 2, 2, 2, 3]


def test_batch_of_one_equals_plain_fcfs(jobs: tuple[np.ndarray, np.ndarray]) -> None:
    arr, svc = jobs
    runs = batch_fcfs(arr, servers=3, batch_size=1, busy_time=lambda r, n: float(svc[r]))
    np.testing.assert_allclose(runs.start, fcfs_starts(arr, svc, 3), atol=1e-9)


def test_flush_windows_cut_on_time_and_on_size() -> None:
    arrivals = np.array([0.1, 0.2, 0.3, 0.4, 1.5, 3.2, 3.3])
    first, ready = flush_windows(arrivals, linger_s=1.0, batch_size=3)
    assert first.tolist() == [0, 3, 4, 5]
    # a full batch is ready when it fills; the others at the end of their window
    np.testing.assert_allclose(ready, [0.3, 1.0, 2.0, 4.0])


def test_flush_without_linger_groups_only_simultaneous_leads() -> None:
    arrivals = np.array([1.0, 2.0, 2.0, 2.0, 5.0])
    first, ready = flush_windows(arrivals, linger_s=0.0, batch_size=100)
    assert first.tolist() == [0, 1, 4]
    np.testing.assert_allclose(ready, [1.0, 2.0, 5.0])


# -- the stretches found in numpy against the loop alone, run for run -----------------------


class _Counted:
    """RunTimes that counts the runs asked for ahead of the loop (so a test can tell the
    stretches were used), or, as the reference, that says every run's time depends on its
    size, so the loop calls ``sized`` for every run as the engine did before stretches."""

    def __init__(self, inner: RunTimes, reference: bool = False) -> None:
        self.inner, self.reference, self.ahead = inner, reference, 0
        self.flat: list[float] = [math.nan] * len(inner.flat) if reference else inner.flat

    def sized(self, run: int, items: int) -> float:
        return self.inner.sized(run, items)

    def singles(self, first: int, stop: int) -> np.ndarray:
        self.ahead += stop - first
        return self.inner.singles(first, stop)

    def grow(self) -> None:
        self.inner.grow()
        if self.reference:
            self.flat.extend([math.nan] * (len(self.inner.flat) - len(self.flat)))


def _same_runs(fast: Runs, slow: Runs) -> None:
    for name in ("start", "first", "count", "busy"):
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name


@pytest.mark.parametrize(QUEUE_SETTING_NAMES, QUEUE_SETTINGS)
def test_stretches_find_exactly_the_runs_the_loop_makes(
    volume: float, burstiness: float, workers: int, batch: int, clay: dict, poll: float
) -> None:
    tier, behaviour, arrivals, spacing = queue_case(volume, burstiness, workers, batch, clay, poll)

    def runs(reference: bool) -> tuple[Runs, np.ndarray, _Counted]:
        draws = RunDraws(tier, behaviour, np.random.default_rng(5), arrivals.size)
        times = _Counted(draws, reference)
        found = batch_fcfs(arrivals, workers, batch, times, spacing, find_stretches=not reference)
        return found, draws.gave_up(found.start.size), times

    fast, fast_gave_up, counted = runs(reference=False)
    slow, slow_gave_up, _ = runs(reference=True)
    _same_runs(fast, slow)
    assert np.array_equal(fast_gave_up, slow_gave_up)
    assert counted.ahead > 0  # the stretches were looked for, not only the loop run


def test_stretches_match_the_loop_for_any_busy_function(
    jobs: tuple[np.ndarray, np.ndarray],
) -> None:
    arr, svc = jobs
    arr = np.round(arr, 1)  # ties: leads arriving together share a run

    def busy(r: int, n: int) -> float:  # depends on the run and its size
        return float(svc[r % svc.size]) * (1 + 0.1 * n)

    for servers, spacing in [(1, 0.0), (4, 0.0), (4, 0.7), (16, 0.3), (64, 2.0)]:
        fast = batch_fcfs(arr, servers, 5, busy, spacing)
        slow = batch_fcfs(arr, servers, 5, busy, spacing, find_stretches=False)
        _same_runs(fast, slow)
        brute = _brute_batches(arr, servers, 5, busy, spacing)
        np.testing.assert_array_equal(fast.start, brute)


def _brute_batches(
    arr: np.ndarray, servers: int, batch: int, busy: Callable[[int, int], float], spacing: float
) -> np.ndarray:
    """The batch loop written the obvious way: pop a worker, take what waits, push it back."""
    free = [-np.inf] * servers
    starts: list[float] = []
    i, last = 0, -np.inf
    while i < arr.size:
        f = heapq.heappop(free)
        t = max(arr[i], f, last + spacing)
        j = i
        while j < arr.size and j < i + batch and arr[j] <= t:
            j += 1
        heapq.heappush(free, t + busy(len(starts), j - i))
        starts.append(t)
        last, i = t, j
    return np.array(starts)


def test_spaced_chain_is_the_loops_sequence_of_pushes() -> None:
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.exponential(0.3, 5_000))
    last, expected = -1.0, []
    for a in arrivals.tolist():
        t = a if a >= last + 0.25 else last + 0.25
        expected.append(t)
        last = t
    chain = spaced_chain(arrivals, -1.0, 0.25)
    assert chain.size > 0
    assert np.array_equal(chain, np.array(expected[: chain.size]))  # cut where unsettled


@pytest.mark.parametrize(
    ("latency", "poll", "batch"),
    [
        (RunLatency(), 30.0, 100),
        (RunLatency(), 10.0, 100),
        (RunLatency(), 7.0, 10),
        (RunLatency("uniform", low=20.0, high=40.0), 20.0, 50),
        (RunLatency("exponential", mean=40.0), 600.0, 100),
        (RunLatency("lognormal"), 120.0, 100),
    ],
)
def test_a_run_counted_size_free_takes_that_time_at_every_size(
    latency: RunLatency, poll: float, batch: int
) -> None:
    rng = np.random.default_rng(1)
    u = np.concatenate([rng.random(20_000), 1 - rng.random(200) * 1e-7])  # and the far tail
    seen = observed_many(latency, poll, u)
    free = size_free(latency, poll, u, seen, batch)
    assert free.any()
    one = scalar_observed(latency, poll)
    for i in np.flatnonzero(free)[:3_000].tolist():
        for n in (2, 7, batch):
            assert one(float(u[i]) ** (1.0 / n)) == seen[i]
