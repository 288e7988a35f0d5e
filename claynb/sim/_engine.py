"""The simulation engine: first-come-first-served queues, fast.

A discrete-event simulator (SimPy and the like) pays for a coroutine switch and a heap
operation per event, a few microseconds each. These queues need much less, because jobs are
served in arrival order:

* **one server**: the Lindley recursion ``D[n] = max(A[n], D[n-1]) + S[n]`` unrolls to
  ``D = C + cummax(A - C + S)`` with ``C = cumsum(S)``: one numpy pass, no Python loop;
* **c servers**: job ``n`` starts at ``max(A[n], earliest free server)``; a heap of the
  ``c`` free times is the whole state, so one tight loop over plain floats does it;
* **workers that take whatever is waiting** (up to a batch size): the same heap, but the
  loop runs once per *run*, and a run picks up its leads with a binary search, so a busy
  month of millions of leads costs a few tens of thousands of iterations; where the workers
  keep up (a run per lead), stretches of hundreds of runs are found in numpy instead
  (``_stretches``), the same runs to the last bit; and a run whose time does not depend on
  its size is read from a list, not computed;
* **non-blocking senders** (the event tier): micro-batches flushed on a clock are pure
  arithmetic on the arrival times, and a rate limit that spaces submissions at least ``T``
  apart is again a cumulative maximum: ``s[k] = k*T + cummax(r[k] - k*T)``.

The two loops (the heap walk and the batch loop) have compiled twins in ``_kernels``, used
where numba is installed (``_compiled`` decides): the same floats by the same operations, so
the same runs to the last bit, tens of times faster.

Every function is pure: arrays in, arrays out, no clock and no global random state.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from claynb.sim._compiled import kernels
from claynb.sim._stretches import idle_stretch


def lindley_starts(arrivals: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Start times at a single FCFS server (vectorised Lindley recursion)."""
    if arrivals.size == 0:
        return arrivals.astype(float)
    cum = np.cumsum(service)
    departures = cum + np.maximum.accumulate(arrivals - cum + service)
    return departures - service


def spaced_starts(ready: np.ndarray, min_spacing: float) -> np.ndarray:
    """Earliest times at or after ``ready`` that are at least ``min_spacing`` apart, in order."""
    if min_spacing <= 0 or ready.size == 0:
        return ready.astype(float)
    steps = np.arange(ready.size) * min_spacing
    return np.maximum.accumulate(ready - steps) + steps


def fcfs_starts(
    arrivals: np.ndarray, service: np.ndarray, servers: int, min_spacing: float = 0.0
) -> np.ndarray:
    """Start times in a ``servers``-server FCFS queue; starts at least ``min_spacing`` apart.

    ``arrivals`` must be sorted. One server without spacing takes the vectorised path;
    otherwise a heap of server-free times is walked once (compiled where numba is installed).
    """
    if servers < 1:
        raise ValueError("servers must be >= 1")
    if servers == 1 and min_spacing <= 0:
        return lindley_starts(arrivals, service)
    if servers >= arrivals.size and min_spacing <= 0:
        return arrivals.astype(float)
    compiled = kernels(arrivals.size)
    if compiled is not None:
        arr = np.ascontiguousarray(arrivals, dtype=float)
        svc = np.ascontiguousarray(service, dtype=float)
        return compiled.heap_starts(arr, svc, servers, float(min_spacing))  # type: ignore[no-any-return]
    starts = _heap_walk(_floats(arrivals), _floats(service), servers, min_spacing)
    return np.fromiter(starts, dtype=float, count=len(starts))


def _floats(values: np.ndarray) -> memoryview:
    """A read-only view whose items are plain Python floats, made as the loop reads them.

    Cheaper than ``tolist()``: no list of a million floats is built up front.
    """
    return np.ascontiguousarray(values, dtype=float).data


def _heap_walk(arr: memoryview, svc: memoryview, servers: int, spacing: float) -> list[float]:
    # Hot loop: one comprehension, locals only, one heapreplace per job; the
    # ``is not None`` test is always true and only there to run the replace.
    free = [float("-inf")] * servers
    replace = heapq.heapreplace
    if spacing <= 0:
        return [
            t
            for a, s in zip(arr, svc, strict=True)
            if replace(free, (t := a if a > (f := free[0]) else f) + s) is not None
        ]
    starts: list[float] = []
    add = starts.append
    last = float("-inf")
    for a, s in zip(arr, svc, strict=True):
        f = free[0]
        t = a if a > f else f
        if t < last + spacing:
            t = last + spacing
        last = t
        replace(free, t + s)
        add(t)
    return starts


@dataclass(frozen=True)
class Runs:
    """Runs sent to Clay: when each started, which leads it carried, how long it took."""

    start: np.ndarray
    first: np.ndarray
    count: np.ndarray
    busy: np.ndarray

    @property
    def lead_run(self) -> np.ndarray:
        """For each lead (in arrival order), the index of the run that carried it."""
        return np.repeat(np.arange(self.count.size), self.count)

    @property
    def one_lead_each(self) -> bool:
        """Whether every run carried one lead (runs are in lead order: the last tells)."""
        m = self.count.size
        return m == 0 or bool(self.first[-1] == m - 1 and self.count[-1] == 1)

    def per_lead(self, values: np.ndarray) -> np.ndarray:
        """A per-run array spread to the leads each run carried (itself when one lead a run)."""
        return values if self.one_lead_each else np.repeat(values, self.count)


BusyTime = Callable[[int, int], float]


@runtime_checkable
class RunTimes(Protocol):
    """How long each run holds its worker, drawn in blocks as the engine reaches them.

    ``flat[r]`` is run ``r``'s time whatever its size, or NaN where its size matters (then
    ``sized(r, n)`` gives it); ``singles(first, stop)`` is the times of those runs if each
    carried one lead, as an array. Both cover the runs drawn so far, and ``grow()`` draws the
    next block, so finding runs ahead of the loop never changes which random numbers a run
    gets.
    """

    flat: list[float]

    def sized(self, run: int, items: int) -> float: ...

    def singles(self, first: int, stop: int) -> np.ndarray: ...

    def grow(self) -> None: ...


@dataclass
class FunctionTimes:
    """:class:`RunTimes` from a plain ``busy_time(run, items)`` function, called as needed."""

    busy_time: BusyTime
    block: int = 1024
    flat: list[float] = field(default_factory=list)

    def sized(self, run: int, items: int) -> float:
        return self.busy_time(run, items)

    def singles(self, first: int, stop: int) -> np.ndarray:
        return np.array([self.busy_time(r, 1) for r in range(first, stop)], dtype=float)

    def grow(self) -> None:
        self.flat.extend([math.nan] * self.block)


@dataclass
class _Pace:
    """When the batch loop looks for an idle stretch to find in numpy, and how far ahead.

    A look costs a dozen numpy calls (tens of microseconds), a run in the loop under one,
    so a look pays only when it finds a hundred runs or so. Every ``patience`` runs the loop
    looks if those runs each carried one lead, guesses as far ahead as the last look reached
    (twice that after a full one), and after a look that found too little to pay waits twice
    as long.
    """

    patience: int = 8
    reach: int = 256

    def after(self, tried: int, found: int) -> None:
        self.reach = min(tried * 2, 16_384) if found >= tried else max(128, 2 * found)
        self.patience = 8 if found >= 100 else min(self.patience * 2, 4096)


def batch_fcfs(
    arrivals: np.ndarray,
    servers: int,
    batch_size: int,
    busy_time: BusyTime | RunTimes,
    min_spacing: float = 0.0,
    *,
    find_stretches: bool = True,
) -> Runs:
    """Workers that each take everything waiting (up to ``batch_size``) when they free up.

    ``busy_time`` is how long the worker is held by each run (Clay's latency, polling
    granularity, retries): a :class:`RunTimes`, or a function ``busy_time(run, items)``.
    Leads leave the queue in arrival order; runs start at least ``min_spacing`` apart.

    The loop runs once per run. Where the workers keep up (runs start as leads arrive, or as
    the spacing allows) ``find_stretches`` finds hundreds of runs at a time in numpy
    (``_stretches``), the same runs to the last bit.
    """
    times = busy_time if isinstance(busy_time, RunTimes) else FunctionTimes(busy_time)
    a = np.ascontiguousarray(arrivals, dtype=float)
    arr = a.data
    n = len(arr)
    free = [float("-inf")] * servers
    replace, search = heapq.heapreplace, bisect_right
    flat, sized = times.flat, times.sized
    starts: list[float] = []
    firsts: list[int] = []
    busys: list[float] = []
    add_start, add_first, add_busy = starts.append, firsts.append, busys.append
    pace = _Pace()
    look_at = pace.patience if find_stretches else n + 1  # runs: n + 1 never come
    i = r = 0
    last = float("-inf")
    while i < n:
        if r >= look_at:  # look only if the last runs each carried one lead
            look_at = r + pace.patience
            if firsts[-1] - firsts[-pace.patience] != pace.patience - 1:
                continue
            if r == len(flat):
                times.grow()  # run r will happen (lead i is waiting): its draws are due anyway
            stop = r + min(pace.reach, n - i, len(flat) - r)
            held = np.sort(free)
            found = idle_stretch(a, i, held, last, min_spacing, times.singles(r, stop))
            pace.after(stop - r, found.runs)
            look_at = r + pace.patience
            if found.runs:
                starts.extend(found.start.tolist())
                firsts.extend(range(i, found.next_lead))
                busys.extend(found.busy.tolist())
                free = np.sort(np.concatenate([held, found.end]))[-servers:].tolist()  # a heap
                last, i, r = starts[-1], found.next_lead, r + found.runs
                look_at = r + pace.patience
                continue
        f, x = free[0], arr[i]
        t = x if x > f else f
        if t < last + min_spacing:
            t = last + min_spacing
        last = t
        hi = i + batch_size
        j = search(arr, t, i, hi if hi < n else n)
        try:
            b = flat[r]
        except IndexError:
            times.grow()
            b = flat[r]
        if b != b:  # NaN: this run's time depends on its size
            b = sized(r, j - i)
        replace(free, t + b)
        add_start(t)
        add_first(i)
        add_busy(b)
        i = j
        r += 1
    first = np.asarray(firsts, dtype=np.int64)
    count = np.diff(np.append(first, n))
    return Runs(
        np.fromiter(starts, float, len(starts)), first, count, np.fromiter(busys, float, len(busys))
    )


@runtime_checkable
class DrawnRunTimes(Protocol):
    """:class:`RunTimes` as arrays, for the compiled batch loop (``_kernels.batch_runs``).

    ``arrays()`` is every run drawn so far: its size-free time (NaN where the size matters),
    latency uniform, retry time and whether it gave up; ``grow()`` draws the next block, as
    for :class:`RunTimes`. ``inverse[k]`` is ``1/k``, and ``latency`` is ``(low, span,
    poll_s, failures)`` of a uniform (or fixed) latency seen by a poller, or ``None`` where
    the loop needs a size-dependent time it has no compiled form of.
    """

    inverse: np.ndarray
    latency: tuple[float, float, float, bool] | None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...

    def grow(self) -> None: ...


def compiled_batch_fcfs(
    arrivals: np.ndarray,
    servers: int,
    batch_size: int,
    times: DrawnRunTimes,
    min_spacing: float = 0.0,
) -> Runs | None:
    """:func:`batch_fcfs`, compiled: the same runs, or ``None`` where it does not run here
    (see ``_compiled.kernels``), or for a latency it has no compiled form of."""
    compiled = kernels(arrivals.size)
    if compiled is None or times.latency is None:
        return None
    a = np.ascontiguousarray(arrivals, dtype=float)
    n = a.size
    free = np.full(servers, -np.inf)
    position = np.zeros(2, dtype=np.int64)  # the next lead, the next run
    last = np.full(1, -np.inf)
    out = (np.empty(n), np.empty(n, dtype=np.int64), np.empty(n))  # a run carries >= 1 lead
    while True:
        draws = (*times.arrays(), times.inverse)
        compiled.batch_runs(
            a,
            servers,
            batch_size,
            float(min_spacing),
            draws,
            times.latency,
            free,
            position,
            last,
            out,
        )
        if position[0] >= n:
            break
        times.grow()  # lead position[0] is waiting: run position[1] will happen
    m = int(position[1])
    first = out[1][:m].copy()
    return Runs(out[0][:m].copy(), first, np.diff(np.append(first, n)), out[2][:m].copy())


def flush_windows(
    arrivals: np.ndarray, linger_s: float, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Micro-batches of a consumer that flushes every ``linger_s`` or at ``batch_size`` leads.

    Returns each batch's first lead index and the time it is ready to send: the end of its
    window, or the arrival of the lead that filled it. With ``linger_s <= 0`` leads arriving
    at the same instant (a burst) still share runs.
    """
    n = arrivals.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    window = np.floor(arrivals / linger_s) if linger_s > 0 else arrivals
    new_window = np.empty(n, dtype=bool)
    new_window[0] = True
    new_window[1:] = window[1:] != window[:-1]
    window_first = np.flatnonzero(new_window)
    rank = np.arange(n) - np.repeat(window_first, np.diff(np.append(window_first, n)))
    first = np.flatnonzero(rank % batch_size == 0)
    last = np.append(first[1:], n) - 1
    full = (last - first + 1) == batch_size
    window_end = (window[first] + 1.0) * linger_s if linger_s > 0 else arrivals[first]
    ready = np.where(full, arrivals[last], np.maximum(window_end, arrivals[last]))
    return first, ready


def depth_over_time(
    arrivals: np.ndarray, runs: Runs, done: np.ndarray, horizon_s: float, points: int = 600
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leads waiting to be sent and leads in flight at ``points`` times over the horizon.

    Counted per run (runs start in FCFS order, so their starts are sorted); runs finish out
    of order, so each is binned at the first grid point at or after its end instead of sorting
    (compiled where numba is installed: ``_kernels.finished_at``, the same bins).
    """
    grid = np.linspace(0.0, horizon_s, points)
    arrived = np.searchsorted(arrivals, grid, side="right")
    m = runs.start.size
    # Leads sent once k runs have started: runs.first[k], or all of them after the last run.
    k = np.searchsorted(runs.start, grid, side="right")
    started = (
        np.where(k < m, runs.first[np.minimum(k, m - 1)], arrivals.size)
        if m
        else np.zeros(points, np.int64)
    )
    one_each = m == arrivals.size  # every run carried one lead: count the runs
    compiled = kernels(m)
    if compiled is not None:
        count = np.zeros(0, np.int64) if one_each else np.asarray(runs.count, np.int64)
        seen = compiled.finished_at(grid, np.ascontiguousarray(done, dtype=float), count)
    else:
        seen_at = np.searchsorted(grid, done, side="left")
        seen = np.bincount(seen_at, weights=None if one_each else runs.count, minlength=points + 1)
    finished = np.cumsum(seen[:points])
    return grid, arrived - started, started - finished.astype(np.int64)
