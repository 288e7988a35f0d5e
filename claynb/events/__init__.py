"""The event-driven tier: signed webhooks into a receiver, an event bus, a dead-letter queue.

Loaded lazily: importing claynb does not import FastStream or start anything.
"""

from __future__ import annotations

from claynb._lazy import lazy_exports

_LAZY = {
    "Bus": "claynb.events._bus",
    "CreditBreaker": "claynb.events._breaker",
    "EnrichmentService": "claynb.events._service",
    "EventTier": "claynb.events._tier",
    "Receiver": "claynb.events._receiver",
    "ReceiverServer": "claynb.events._server",
    "ReceiverSettings": "claynb.events._receiver",
    "Reconciler": "claynb.events._reconciler",
    "ServiceSettings": "claynb.events._service",
    "build_app": "claynb.events._server",
    "collect_callbacks": "claynb.events._tables",
    "open_dedupe_store": "claynb.events._dedupe",
    "raise_budget": "claynb.events._tier",
    "run": "claynb.events._backend",
    "send_to_table": "claynb.events._tables",
}

__all__, __getattr__ = lazy_exports("claynb.events", _LAZY)
