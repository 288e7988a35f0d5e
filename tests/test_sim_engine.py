"""The engine's queues against brute-force versions written the obvious way."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from claynb.sim._engine import (
    batch_fcfs,
    fcfs_starts,
    flush_windows,
    lindley_starts,
    spaced_starts,
)


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
