"""One pace for every process and host that talks to the same Clay workspace, in Redis.

Clay's rate limit is per workspace: six queue workers that each pace themselves on their
own send six times too fast, and each learns the limit alone, from its own 429s. A
:class:`FleetPacer` keeps the one :class:`claynb.wire._pacing.PaceState` of a workspace in
a Redis hash, so every worker reserves its send slots from the same bucket, a 429 (or an
answer saying nothing is left) seen by any worker holds all of them until the reset it
names, and the rate learned from it is what every worker paces to.

Each step reads the state, applies the same pure function the in-process
:class:`claynb.wire._pacing.Pacer` applies, and writes it back in one optimistic
transaction (WATCH/MULTI/EXEC, retried when another worker wrote in between), so the
fleet and a single process follow one rule. Time is Redis's own clock (``TIME``), shared
by every host. The hash is named after a digest of the API key and base URL, never the
key itself, and expires after a quiet hour.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from claynb.services.redis import text as _text
from claynb.wire._config import DEFAULT_PACING_FRACTION, Credentials
from claynb.wire._core import api_base
from claynb.wire._pacing import PaceState, accepted, announced, block, ran_out, reserve

T = TypeVar("T")

#: The hash expires after this long unused (what was learned outlives a worker restart).
STATE_TTL_S = 3600


def workspace_key(api_key: str, base_url: str, prefix: str = "claynb:pace") -> str:
    """The Redis key of a workspace's pace: a digest, so the key never reaches Redis."""
    digest = hashlib.sha256(f"{base_url}\0{api_key}".encode()).hexdigest()[:24]
    return f"{prefix}:{digest}"


def workspace_pace(conn: Any, credentials: Credentials, limit: float | None = None) -> FleetPacer:
    """The pace of the workspace ``credentials`` reach, in the Redis of ``conn``: every
    process or host that asks for it with the same key and URL shares it."""
    key = workspace_key(credentials.api_key, api_base(credentials.base_url))
    return FleetPacer(conn, key, limit=limit, fraction=DEFAULT_PACING_FRACTION)


def shared_pace(credentials: Credentials, bus_url: str | None = None) -> FleetPacer | None:
    """The workspace's pace for an event-tier service: in the bus itself when it is
    Redis, else in REDIS_URL; None when there is no Redis (the process paces alone).

    The pace is asked for with the synchronous Redis client, also from an event loop:
    a loopback round trip or two per request to Clay, which is rate-limited anyway.
    """
    url = bus_url if bus_url and bus_url.startswith(("redis://", "rediss://", "unix://")) else None
    url = url or os.environ.get("REDIS_URL")
    if not url:
        return None
    import redis

    return workspace_pace(redis.Redis.from_url(url), credentials)


class FleetPacer:
    """The pace of one workspace, shared through Redis (``conn``: a redis.Redis).

    ``limit`` caps the pace for the whole fleet (None: what the server is learned to
    allow); ``fraction`` and ``burst`` are as for :class:`claynb.wire._pacing.Pacer`.
    """

    def __init__(
        self,
        conn: Any,
        key: str,
        *,
        limit: float | None = None,
        fraction: float = 1.0,
        burst: int = 1,
    ) -> None:
        if limit is not None and limit <= 0:
            raise ValueError(f"a rate limit must be positive, not {limit}")
        self._conn = conn
        self._key = key
        self._given = limit
        self._fraction = fraction
        self._burst = max(1, burst)

    def __repr__(self) -> str:
        return f"FleetPacer(key={self._key!r}, limit={self._given!r})"

    @property
    def limit(self) -> float | None:
        """Requests per second the workspace allows, as the fleet knows it."""
        return self._load(self._conn.hgetall(self._key)).limit

    def reserve(self, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from the fleet's bucket; the seconds to wait before sending."""
        return self._update(
            lambda state, now: reserve(state, now, cost, burst=self._burst, fraction=self._fraction)
        )

    def block_for(self, seconds: float) -> None:
        """Hold every worker of the fleet for ``seconds``."""
        self._update(lambda state, now: block(state, now, seconds, burst=self._burst))

    def ran_out(self, wait: float) -> None:
        """The server has nothing left: hold the fleet for ``wait`` and learn the rate."""
        self._update(lambda state, now: ran_out(state, now, wait, burst=self._burst))

    def accepted(self, cost: float = 1.0) -> None:
        """The server accepted a request of ``cost`` tokens (counted for every worker)."""
        self._update(lambda state, now: accepted(state, cost))

    def announced(self, per_window: float) -> None:
        """The server's X-RateLimit-Limit: a ceiling on the fleet's pace."""
        self._update(lambda state, now: announced(state, per_window))

    def _load(self, raw: dict[Any, Any]) -> PaceState:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        state = PaceState.from_fields(fields)
        state.given = self._given
        return state

    def _update(self, step: Callable[[PaceState, float], T]) -> T:
        from redis.exceptions import WatchError

        while True:
            with self._conn.pipeline() as pipe:
                try:
                    pipe.watch(self._key)
                    state = self._load(pipe.hgetall(self._key))
                    seconds, micros = pipe.time()
                    result = step(state, seconds + micros / 1e6)
                    pipe.multi()
                    pipe.hset(self._key, mapping=state.to_fields())
                    pipe.expire(self._key, STATE_TTL_S)
                    pipe.execute()
                    return result
                except WatchError:
                    continue  # another worker moved the state first: read it again
