"""Durable de-duplication for the receiver: each delivery is acted on once, ever.

Clay signs only the body, with no timestamp, so a captured delivery verifies forever and
Clay itself may deliver twice. The receiver therefore claims a key per delivery
(``run:<routine_run_id>`` or ``row:<row id>``) before publishing it; a second claim of the
same key is a replay, acknowledged and ignored. Claims live in SQLite under
``CLAYNB_HOME`` (one machine, any number of receiver processes) or in Redis (receivers on
several machines). A table callback's body is kept with its claim, so the frame that sent
the rows can join them back even when the receiver ran in another process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Protocol

from claynb._home import state_home
from claynb._sqlite import connect_wal

#: How long Redis keeps a claim. Clay has no replay window, so this is long; SQLite keeps
#: claims until the file is removed.
REDIS_CLAIM_TTL_S = 30 * 24 * 3600


class DedupeStore(Protocol):
    """Claims delivery keys at most once, and keeps the body stored with a claim."""

    def claim(self, key: str, payload: str | None = None) -> bool:
        """True the first time ``key`` is claimed; False for every replay."""
        ...

    def release(self, key: str) -> None:
        """Forget a claim whose delivery could not be passed on, so a retry is accepted."""
        ...

    def payloads(self, keys: list[str]) -> dict[str, str]:
        """The stored bodies of those ``keys`` that were claimed with one."""
        ...

    def close(self) -> None: ...


class SqliteDedupeStore:
    """Claims in one SQLite file; safe across threads and processes on one machine."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else state_home() / "events" / "receiver.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = connect_wal(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, "
            "payload TEXT, claimed_at REAL NOT NULL)"
        )

    def claim(self, key: str, payload: str | None = None) -> bool:
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?)", (key, payload, time.time())
            )
            return cur.rowcount == 1

    def release(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM claims WHERE key = ?", (key,))

    def payloads(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, payload FROM claims WHERE payload IS NOT NULL AND key IN ({marks})",
                    chunk,
                )
                found.update({k: p for k, p in rows})
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SqliteDedupeStore({str(self.path)!r})"


class RedisDedupeStore:
    """Claims as Redis keys set with NX: shared by receivers on any number of machines."""

    def __init__(self, url: str, prefix: str = "claynb:dedupe:") -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self._redis: Any = redis.Redis.from_url(url)

    def claim(self, key: str, payload: str | None = None) -> bool:
        value = payload if payload is not None else ""
        return bool(self._redis.set(self.prefix + key, value, nx=True, ex=REDIS_CLAIM_TTL_S))

    def release(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    def payloads(self, keys: list[str]) -> dict[str, str]:
        if not keys:
            return {}
        values = self._redis.mget([self.prefix + k for k in keys])
        return {k: v.decode("utf-8") for k, v in zip(keys, values, strict=True) if v}

    def close(self) -> None:
        self._redis.close()

    def __repr__(self) -> str:
        from claynb.events._bus import safe_url

        return f"RedisDedupeStore({safe_url(self.url)!r})"


def open_dedupe_store(where: str | Path | None = None) -> DedupeStore:
    """A store from a location: ``redis://...`` for Redis, else a SQLite path (default home)."""
    text = str(where) if where else ""
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisDedupeStore(text)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite://") :]
    return SqliteDedupeStore(text or None)
