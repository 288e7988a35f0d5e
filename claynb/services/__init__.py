"""Embedded services for the tiers that need them: Redis (queue tier) and NATS (event tier).

(claynb's own HTTP servers, the emulator and the webhook receivers, run in a background
thread through :class:`claynb.services._http.BackgroundServer`.)

Each service prefers a URL the team already runs (``REDIS_URL``, ``NATS_URL``) and
otherwise starts a private server on a free loopback port, cleaned up when done. Names
are loaded lazily so importing claynb never starts or imports anything heavy.
"""

from __future__ import annotations

from claynb._lazy import lazy_exports

_LAZY = {
    "RedisServer": "claynb.services.redis",
    "connect_redis": "claynb.services.redis",
    "ensure_redis": "claynb.services.redis",
    "find_redis_server": "claynb.services.redis",
    "redis_server": "claynb.services.redis",
    "stop_shared_redis": "claynb.services.redis",
    "NatsServer": "claynb.services.nats",
    "nats_service": "claynb.services.nats",
}

__all__, __getattr__ = lazy_exports("claynb.services", _LAZY, {"connect_redis": "connect"})
