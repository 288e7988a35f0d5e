"""The reconciler: Clay does not guarantee webhook delivery, so overdue runs are polled.

Clay's own rule is "use webhooks to react faster, but keep polling as a fallback". Each run
the service starts is tracked with the time it started; a run with no delivery after
``timeout_s`` is *overdue* and its results are fetched directly. A run that is still going
is polled again after ``interval_s``, growing by half each time up to ``max_interval_s`` so
a slow run is not hammered. Whichever comes first, the webhook or the poll, completes the
run; the other finds it done and does nothing, so every lead is enriched exactly once.

This module is pure: it decides *which* runs to poll and *when*; the service does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Seconds after a run starts before it is polled when no webhook arrived. Clay runs
#: usually finish in seconds; a delivery that has not come by then is probably lost.
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_INTERVAL_S = 2.0
DEFAULT_MAX_INTERVAL_S = 30.0


@dataclass
class Watch:
    """One run awaiting its delivery: when it is next due a poll, and how often it was polled."""

    run_id: str
    due_at: float
    polls: int = 0


@dataclass
class Reconciler:
    """Tracks runs awaiting a delivery and says which are overdue."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    interval_s: float = DEFAULT_INTERVAL_S
    max_interval_s: float = DEFAULT_MAX_INTERVAL_S
    watches: dict[str, Watch] = field(default_factory=dict)
    reconciled: set[str] = field(default_factory=set)

    def watch(self, run_id: str, started_at: float) -> None:
        self.watches[run_id] = Watch(run_id, started_at + self.timeout_s)

    def forget(self, run_id: str) -> None:
        """The run completed (by webhook or poll): stop watching it."""
        self.watches.pop(run_id, None)

    def overdue(self, now: float) -> list[str]:
        """Runs due a poll now, oldest first."""
        due = [w for w in self.watches.values() if w.due_at <= now]
        return [w.run_id for w in sorted(due, key=lambda w: w.due_at)]

    def polled(self, run_id: str, now: float) -> None:
        """A poll found the run still going (or failed): try again later, less often."""
        w = self.watches.get(run_id)
        if w is None:
            return
        w.polls += 1
        wait = min(self.interval_s * (1.5 ** (w.polls - 1)), self.max_interval_s)
        w.due_at = now + wait

    def completed_by_poll(self, run_id: str) -> None:
        self.reconciled.add(run_id)
        self.forget(run_id)

    def next_due(self) -> float | None:
        return min((w.due_at for w in self.watches.values()), default=None)
