"""Stretches of the batch loop found in numpy: the same runs, to the last bit, many at once.

The batch loop (``_engine.batch_fcfs``) runs once per run, because where a run starts
depends on the runs before it. Where the workers keep up, that dependence is simple: each
run carries one lead and starts when it arrives, or, if the rate limit's spacing pushes it,
that long after the previous start. Such an **idle stretch** is guessed for hundreds of
runs at once, then cut at the first run where the guess is not what the loop would do; the
loop goes on from there. Every float is made by the same operation as in the loop (a start
pushed by the spacing is ``previous start + spacing``, one addition at a time), so the runs
are identical, not close: the tests compare both ways on many settings.

Whether a worker is free needs no heap walk. While every run of a stretch finds a worker
free at its start, each replaces the earliest free time with its own end, which is later
than every free time it removed; so after ``k`` runs the heap holds the ``servers`` latest
of the first free times and the stretch's ends, and a worker is free at ``T`` exactly when
fewer than ``servers`` of those are after ``T``: two sorted counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Passes of the spacing chain before a stretch is cut where it has not settled.
MAX_PASSES = 12


@dataclass(frozen=True)
class Stretch:
    """Runs found at once, one lead each from ``first_lead`` on: starts, busy times, ends."""

    first_lead: int
    start: np.ndarray
    busy: np.ndarray
    end: np.ndarray

    @property
    def runs(self) -> int:
        return int(self.start.size)

    @property
    def next_lead(self) -> int:
        return self.first_lead + self.runs


def free_prefix(held: np.ndarray, start: np.ndarray, end: np.ndarray) -> int:
    """How many of the runs find a worker free at their start (see the module docstring).

    ``held`` is the workers' free times before the stretch, sorted; ``start`` is increasing.
    """
    busy_before = held.size - np.searchsorted(held, start, side="right")
    # Runs of the stretch still going at its k-th start: the earlier ones ending after it.
    # A later run ends at or after its own start, so only run k itself can end at its own
    # start (if it takes no time): take it back out of the count.
    ended = np.searchsorted(np.sort(end), start, side="right") - (end <= start)
    fits = busy_before + np.arange(start.size) - ended < held.size
    return start.size if fits.all() else int(fits.argmin())


def spaced_chain(arrivals: np.ndarray, last: float, spacing: float) -> np.ndarray:
    """Starts ``T[k] = max(A[k], T[k-1] + spacing)`` after ``last``, as the loop's floats.

    The loop adds the spacing once per pushed run, so a chain of pushes is a run of
    additions, which a closed form (``k * spacing``) would round differently. Instead, each
    pass recomputes every start from the previous pass's starts; a chain of ``p`` pushes
    settles after ``p`` passes (pushes are rare and chains short where the workers keep up).
    Starts before the first one still moving are exact (each follows from an exact
    predecessor), so after ``MAX_PASSES`` the result is cut there.
    """
    start = arrivals.copy()
    if spacing <= 0 or start.size == 0:
        return start
    before = np.empty(start.size)
    for _ in range(MAX_PASSES):
        before[0] = last
        before[1:] = start[:-1]
        before += spacing
        settled = np.where(arrivals < before, before, arrivals)  # the loop's own test
        moved = settled != start
        start = settled
        if not moved.any():
            return start
    return start[: int(moved.argmax())]


def idle_stretch(
    arrivals: np.ndarray,
    i: int,
    held: np.ndarray,
    last: float,
    spacing: float,
    single: np.ndarray,
) -> Stretch:
    """Runs from lead ``i`` on that each carry one lead and find a worker free.

    ``single[k]`` is how long the k-th run would take with one lead. Lead ``i + k`` goes at
    ``T = max(A, T' + spacing)`` (``A`` its arrival, ``T'`` the previous start) while the
    next lead arrives after ``T`` (nobody joins the run) and a worker is free at ``T``.
    """
    size = single.size
    seg = arrivals[i : i + size + 1]
    start = spaced_chain(seg[:size], last, spacing)
    following = seg[1 : start.size + 1]  # one short when the stretch reaches the last lead
    alone = following > start[: following.size]
    m = start.size if alone.all() else int(alone.argmin())
    end = start[:m] + single[:m]
    k = free_prefix(held, start[:m], end)
    return Stretch(i, start[:k], single[:k], end[:k])
