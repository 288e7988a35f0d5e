"""The engine's two per-job loops compiled with numba: imported only where numba is installed.

Nothing here is a new model. Each function is the loop of ``_engine`` it is named after,
written again over plain arrays so numba can compile it, with every float made by the same
operation in the same order (no fast-math, no fused multiply-add), so a compiled run is
the pure-Python run to the last bit; ``tests/test_sim_compiled.py`` checks that on a grid
of settings. ``_compiled`` decides when these are used and keeps numba out of every other
import.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _replace_min(heap: np.ndarray, value: float) -> None:
    """``heapq.heapreplace`` on a float array: drop the smallest item, add ``value``."""
    size = heap.size
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= value:
            break
        heap[pos] = heap[child]
        pos = child
    heap[pos] = value


@njit(cache=True, nogil=True)
def heap_starts(
    arrivals: np.ndarray, service: np.ndarray, servers: int, spacing: float
) -> np.ndarray:
    """``_engine._heap_walk``: start times in a ``servers``-server FCFS queue, spaced."""
    n = arrivals.size
    free = np.full(servers, -np.inf)
    starts = np.empty(n)
    last = -np.inf
    for k in range(n):
        a = arrivals[k]
        f = free[0]
        t = a if a > f else f
        if spacing > 0:
            if t < last + spacing:
                t = last + spacing
            last = t
        _replace_min(free, t + service[k])
        starts[k] = t
    return starts


@njit(cache=True, nogil=True)
def _bisect_right(values: np.ndarray, x: float, lo: int, hi: int) -> int:
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def _observed(q: float, low: float, span: float, poll_s: float) -> float:
    """``_draws.scalar_observed`` for uniform (and fixed, ``span == 0``) latency."""
    latency = low + span * q
    if poll_s <= 0:
        return latency
    return math.ceil(latency / poll_s - 1e-9) * poll_s


@njit(cache=True, nogil=True)
def batch_runs(
    arrivals: np.ndarray,
    servers: int,
    batch_size: int,
    spacing: float,
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    latency: tuple[float, float, float, bool],
    free: np.ndarray,
    position: np.ndarray,
    last_start: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """``_engine.batch_fcfs``'s loop, from run ``position[1]`` and lead ``position[0]`` on.

    ``draws`` are each run's size-free time (NaN where its size matters), latency uniform,
    retry time and whether it gave up, and ``1/k`` for each size ``k``, as ``_draws.RunDraws``
    holds them; ``latency`` is ``(low, span, poll_s, failures)``. ``free`` (a heap),
    ``position`` (lead, run) and ``last_start`` are read and left where the loop stopped:
    at the last lead, or where the runs drawn so far ran out (the caller draws more and
    calls again). ``out`` receives each run's start, first lead and time.
    """
    flat, uniform, extra, gave_up, inverse = draws
    low, span, poll_s, failures = latency
    starts, firsts, busys = out
    n = arrivals.size
    i, r = position[0], position[1]
    last = last_start[0]
    drawn = flat.size
    while i < n and r < drawn:
        f, x = free[0], arrivals[i]
        t = x if x > f else f
        if t < last + spacing:
            t = last + spacing
        last = t
        hi = i + batch_size
        j = _bisect_right(arrivals, t, i, hi if hi < n else n)
        b = flat[r]
        if b != b:  # NaN: this run's time depends on its size
            if failures and gave_up[r]:
                b = extra[r]
            else:
                b = _observed(uniform[r] ** inverse[j - i], low, span, poll_s)
                if failures:
                    b = extra[r] + b
        _replace_min(free, t + b)
        starts[r] = t
        firsts[r] = i
        busys[r] = b
        i = j
        r += 1
    position[0], position[1] = i, r
    last_start[0] = last


@njit(cache=True, nogil=True)
def finished_at(grid: np.ndarray, done: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``np.bincount(np.searchsorted(grid, done), count, grid.size + 1)`` for ``_engine.
    depth_over_time``: how many leads (``count`` per run; one each where it is empty) each
    grid point is the first to see finished.

    ``grid`` is evenly spaced from 0, so a run's point is found by division and then checked
    against its neighbours (the first point at or after its end, as ``searchsorted`` has it),
    instead of a binary search per run: the same points, several times faster.
    """
    size = grid.size
    out = np.zeros(size + 1, dtype=np.int64)
    per_run = count.size > 0
    step = grid[1] - grid[0] if size > 1 else 1.0
    for r in range(done.size):
        d = done[r]
        if d != d:  # NaN sorts last
            i = size
        else:
            guess = d / step if step > 0 else 0.0
            i = 0 if guess < 0 else (size if guess > size else int(guess))
            while i > 0 and grid[i - 1] >= d:
                i -= 1
            while i < size and grid[i] < d:
                i += 1
        out[i] += count[r] if per_run else 1
    return out
