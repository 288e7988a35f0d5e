"""Live visibility: queue depth, throughput, per-job latency and credits, from a notebook.

The data side is plain functions over Redis (:func:`snapshot`, :func:`throughput_series`,
:func:`latencies`) so they are tested headlessly; :class:`LiveMonitor` draws them with
matplotlib into an ipywidgets ``Image`` that it refreshes from a background thread (or
once per :meth:`LiveMonitor.update` call, for scripts and nbmake).

The figures are plain ``matplotlib.figure.Figure`` objects, never pyplot's: a figure pyplot
knows about is shown by the notebook's inline backend at the end of whatever cell is
running, so a frame drawn from the monitor's thread would land in an unrelated cell (and
a figure returned by a cell would show twice). Each frame is rendered to PNG bytes and
swapped into the image in one assignment, so no frame is ever seen half drawn.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from claynb.queue._store import pending_key, samples_key, stats_key


@dataclass(frozen=True)
class QueueStats:
    """One look at a queue: what waits, what runs, what failed, what it cost so far."""

    at: float
    queued_jobs: int
    pending_leads: int
    running_jobs: int
    scheduled_jobs: int
    dead_letters: int
    workers: int
    leads_done: int
    batches_done: int
    actions: float
    data_credits: float

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def snapshot(conn: Any, queue: str = "claynb", routines: tuple[str, ...] = ()) -> QueueStats:
    """Counts for ``queue`` right now (``routines``: also count their pending leads)."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from claynb.queue._worker import live_workers

    q = Queue(queue, connection=conn)
    raw = {
        (k.decode() if isinstance(k, bytes) else k): int(v)
        for k, v in conn.hgetall(stats_key(queue)).items()
    }
    return QueueStats(
        at=time.time(),
        queued_jobs=q.count,
        pending_leads=sum(int(conn.llen(pending_key(queue, r))) for r in routines),
        running_jobs=int(conn.zcard(StartedJobRegistry(queue=q).key)),
        scheduled_jobs=int(conn.zcard(ScheduledJobRegistry(queue=q).key)),
        dead_letters=int(conn.zcard(FailedJobRegistry(queue=q).key)),
        workers=live_workers(conn, queue),
        leads_done=raw.get("leads", 0),
        batches_done=raw.get("batches", 0),
        actions=raw.get("actions_milli", 0) / 1000,
        data_credits=raw.get("data_credits_milli", 0) / 1000,
    )


def latencies(conn: Any, queue: str = "claynb", limit: int = 5000) -> list[dict[str, Any]]:
    """Finished jobs, newest first: end time, latency (enqueue to done), work time, leads."""
    return [json.loads(s) for s in conn.lrange(samples_key(queue), 0, limit - 1)]


def throughput_series(
    samples: list[dict[str, Any]], bucket_s: float = 1.0
) -> list[tuple[float, float]]:
    """(bucket start, leads per second) over the span the samples cover, oldest first."""
    if not samples:
        return []
    start = min(s["end"] for s in samples)
    counts: dict[int, int] = {}
    for s in samples:
        idx = int((s["end"] - start) // bucket_s)
        counts[idx] = counts.get(idx, 0) + int(s["leads"])
    last = max(counts)
    return [(start + i * bucket_s, counts.get(i, 0) / bucket_s) for i in range(last + 1)]


def summary(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Leads per second overall and latency percentiles (seconds) for a set of samples."""
    if not samples:
        return {"leads": 0, "leads_per_s": 0.0, "p50_latency_s": 0.0, "p95_latency_s": 0.0}
    lat = sorted(s["latency_s"] for s in samples)
    leads = sum(int(s["leads"]) for s in samples)
    first_start = min(s["end"] - s["latency_s"] for s in samples)
    span = max(s["end"] for s in samples) - first_start
    return {
        "leads": leads,
        "leads_per_s": leads / span if span > 0 else float(leads),
        "p50_latency_s": lat[len(lat) // 2],
        "p95_latency_s": lat[min(len(lat) - 1, int(len(lat) * 0.95))],
        "actions": sum(s["actions"] for s in samples),
        "data_credits": sum(s["data_credits"] for s in samples),
    }


def plot(history: list[QueueStats], samples: list[dict[str, Any]], *, fig: Any = None) -> Any:
    """Four panels: depth, throughput, job latency and credits spent; a matplotlib Figure."""
    from matplotlib.figure import Figure

    history = list(history)  # the monitor's thread may append while this draws
    if fig is None:
        fig = Figure(figsize=(11, 6))
    fig.clear()
    axes = fig.subplots(2, 2)
    t0 = history[0].at if history else time.time()
    ts = [h.at - t0 for h in history]
    ax = axes[0][0]
    ax.plot(ts, [h.queued_jobs + h.pending_leads / 100 for h in history], label="queued jobs")
    ax.plot(ts, [h.running_jobs for h in history], label="running")
    ax.plot(ts, [h.dead_letters for h in history], label="dead letters")
    ax.set_title("queue depth")
    ax.set_xlabel("s")
    ax.legend(fontsize=8)
    series = throughput_series(samples)
    ax = axes[0][1]
    ax.bar([t - t0 for t, _ in series], [v for _, v in series], width=0.9)
    ax.set_title("throughput (leads/s)")
    ax = axes[1][0]
    ax.hist([s["latency_s"] for s in samples] or [0], bins=30)
    ax.set_title("job latency, enqueue to done (s)")
    ax = axes[1][1]
    ax.plot(ts, [h.data_credits for h in history], label="Data Credits")
    ax.plot(ts, [h.actions for h in history], label="Actions")
    ax.set_title("spent")
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.94, bottom=0.08, hspace=0.35, wspace=0.2)
    return fig


class LiveMonitor:
    """A refreshing plot of a queue, in a notebook (ipywidgets) or as a plain figure."""

    def __init__(
        self,
        conn: Any,
        queue: str = "claynb",
        routines: tuple[str, ...] = (),
        interval_s: float = 1.0,
    ) -> None:
        self.conn, self.queue, self.routines, self.interval_s = conn, queue, routines, interval_s
        self.history: list[QueueStats] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._out: Any = None

    def update(self) -> QueueStats:
        """Take one snapshot (and redraw the widget when there is one)."""
        stats = snapshot(self.conn, self.queue, self.routines)
        self.history.append(stats)
        if self._out is not None:
            self._draw()
        return stats

    def _draw(self) -> None:
        # No ``with output:`` capture from this thread (it would catch the prints of the cell
        # running meanwhile): the image's bytes are replaced in one assignment instead.
        self._out.value = self.png()

    def png(self) -> bytes:
        """The current plot as PNG bytes (``IPython.display.Image(monitor.png())``)."""
        import io

        buffer = io.BytesIO()
        self.figure().savefig(buffer, format="png", dpi=72)
        return buffer.getvalue()

    def widget(self) -> Any:
        """An ``ipywidgets.Image`` the monitor draws into (the current frame from the start)."""
        import ipywidgets

        if self._out is None:
            self._out = ipywidgets.Image(format="png", layout=ipywidgets.Layout(max_width="100%"))
            self.update()
        return self._out

    def start(self) -> LiveMonitor:
        """Refresh every ``interval_s`` in a background thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.update()
                except Exception:  # a redraw failing must not kill the monitor
                    continue

        self._thread = threading.Thread(target=loop, name="claynb-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def figure(self) -> Any:
        """The current plot as a matplotlib Figure (for a final, static cell)."""
        return plot(self.history, latencies(self.conn, self.queue))
