"""Sinks: where each lead's outcome goes (a function, a SQLite table, a CSV, the CRM).

Workers append every outcome once to the queue's Redis stream. A :class:`Dispatcher`
reads it through a consumer group (one group per sink, so each sink sees everything) and
hands outcomes to its sink. The sink hears each outcome once:

- entries are acknowledged only after the sink took them, and entries a dead dispatcher
  had read but not acknowledged are claimed by the next one, so nothing is lost;
- every entry delivered is remembered in Redis (by stream id) before it is acknowledged,
  and skipped if seen again;
- the SQLite and CSV sinks also keep the outcome id themselves (in the same transaction
  or the same file), so even a crash between writing and remembering cannot write twice;
- the HTTP sink sends an ``Idempotency-Key`` header (the outcome id), so a CRM can drop
  the one duplicate that a crash right after its 2xx answer could cause.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from claynb._secrets import redact
from claynb._sqlite import connect_wal
from claynb.queue._store import PREFIX, outcomes_key

#: Columns every tabular sink writes (result fields go in ``result`` as JSON).
COLUMNS = [
    "outcome_id",
    "lead",
    "status",
    "error",
    "actions",
    "data_credits",
    "routine",
    "run_id",
    "batch",
    "at",
    "result",
]

Delivery = list[tuple[str, dict[str, Any]]]  # (outcome id = stream entry id, outcome)


class Sink(Protocol):
    """Takes outcomes; raises to have them delivered again later."""

    name: str

    def deliver(self, outcomes: Delivery) -> None: ...


def _row(outcome_id: str, o: dict[str, Any]) -> list[Any]:
    return [
        outcome_id,
        o.get("lead"),
        o.get("status"),
        o.get("error"),
        o.get("actions", 0.0),
        o.get("data_credits", 0.0),
        o.get("routine"),
        o.get("run_id"),
        o.get("batch"),
        o.get("at"),
        json.dumps(o.get("result") or {}, default=str),
    ]


class CallableSink:
    """Calls ``fn(outcome)`` once per outcome (the outcome dict gains ``outcome_id``)."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or f"callable:{getattr(fn, '__name__', 'fn')}"

    def deliver(self, outcomes: Delivery) -> None:
        for outcome_id, o in outcomes:
            self.fn({**o, "outcome_id": outcome_id})


class SQLiteSink:
    """Upserts into a SQLite table keyed by outcome id: a second delivery changes nothing."""

    idempotent = True

    def __init__(self, path: str | os.PathLike[str], table: str = "lead_outcomes") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"table name {table!r} must be letters, digits and underscores")
        self.path, self.table = str(path), table
        self.name = f"sqlite:{Path(path).name}:{table}"
        with self._connect() as conn:
            cols = ", ".join(
                f"{c} {'TEXT PRIMARY KEY' if c == 'outcome_id' else ''}" for c in COLUMNS
            )
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")

    def _connect(self) -> sqlite3.Connection:
        return connect_wal(self.path, autocommit=False)

    def deliver(self, outcomes: Delivery) -> None:
        marks = ", ".join("?" for _ in COLUMNS)
        with self._connect() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {self.table} VALUES ({marks})",
                [_row(i, o) for i, o in outcomes],
            )

    def frame(self) -> Any:
        import pandas as pd

        with self._connect() as conn:
            return pd.read_sql_query(f"SELECT * FROM {self.table}", conn)


class CSVSink:
    """Appends rows to a CSV file; outcome ids already in the file are not written again.

    Several processes (workers) may share one file: each write holds an exclusive lock
    on it, and the ids already written are re-read whenever another process wrote since.
    """

    idempotent = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"csv:{self.path.name}"
        self._lock = threading.Lock()
        self._ids: set[str] = set()
        self._size = -1  # file size when _ids was last brought up to date

    def _written(self) -> set[str]:
        size = self.path.stat().st_size if self.path.exists() else 0
        if size != self._size:
            self._ids = set()
            if size:
                with self.path.open(newline="") as fh:
                    self._ids = {row["outcome_id"] for row in csv.DictReader(fh)}
            self._size = size
        return self._ids

    def deliver(self, outcomes: Delivery) -> None:
        import fcntl

        with self._lock, self.path.open("a", newline="") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                written = self._written()
                new = [(i, o) for i, o in outcomes if i not in written]
                writer = csv.writer(fh)
                if self._size == 0:
                    writer.writerow(COLUMNS)
                writer.writerows(_row(i, o) for i, o in new)
                fh.flush()
                os.fsync(fh.fileno())
                written.update(i for i, _ in new)
                self._size = self.path.stat().st_size
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


class HTTPSink:
    """POSTs each outcome as JSON to an endpoint (the CRM), with an Idempotency-Key.

    ``headers`` may carry a shared secret for the endpoint; it is registered for
    redaction and never appears in a repr or an error.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        client: Any = None,
    ) -> None:
        import httpx

        from claynb._secrets import register_secret

        self.url = url
        self.name = f"http:{url}"
        for value in (headers or {}).values():
            register_secret(value)
        self._client = client or httpx.Client(timeout=timeout_s, headers=headers or {})

    def deliver(self, outcomes: Delivery) -> None:
        import httpx

        for outcome_id, o in outcomes:
            try:
                response = self._client.post(
                    self.url,
                    json={**o, "outcome_id": outcome_id},
                    headers={"Idempotency-Key": outcome_id},
                )
            except httpx.HTTPError as exc:
                raise ConnectionError(redact(f"sink {self.url} unreachable: {exc}")) from None
            if response.status_code >= 300:
                raise ConnectionError(f"sink {self.url} answered {response.status_code}")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"HTTPSink(url={self.url!r})"


def sink_from_spec(spec: str) -> Sink:
    """A sink from a string: ``http(s)://...``, ``sqlite:PATH[#table]`` or ``csv:PATH``."""
    if spec.startswith(("http://", "https://")):
        return HTTPSink(spec)
    if spec.startswith("sqlite:"):
        path, _, table = spec[len("sqlite:") :].partition("#")
        return SQLiteSink(path, table or "lead_outcomes")
    if spec.startswith("csv:"):
        return CSVSink(spec[len("csv:") :])
    raise ValueError(f"unknown sink {spec!r}: use http(s)://..., sqlite:PATH[#table] or csv:PATH")


class Dispatcher:
    """Delivers a queue's outcome stream to one sink, each outcome once.

    Several dispatchers of the same sink may run (for instance one per worker): they
    share the consumer group and split the stream between them.
    """

    def __init__(
        self,
        conn: Any,
        sink: Sink,
        *,
        queue: str = "claynb",
        consumer: str | None = None,
        count: int = 100,
        min_idle_ms: int = 5_000,
    ) -> None:
        self.conn, self.sink, self.queue = conn, sink, queue
        self.stream = outcomes_key(queue)
        self.group = f"sink:{sink.name}"
        self.seen = f"{PREFIX}:{queue}:delivered:{sink.name}"
        self.consumer = consumer or f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"
        self.count, self.min_idle_ms = count, min_idle_ms
        self.delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ensure_group()

    def _ensure_group(self) -> None:
        try:
            self.conn.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists already, which is fine
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        # First what a dead colleague read and never acknowledged, then what is new.
        claimed = self.conn.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            self.min_idle_ms,
            start_id="0-0",
            count=self.count,
        )
        entries = list(claimed[1]) if claimed else []
        if not entries:
            got = self.conn.xreadgroup(
                self.group, self.consumer, {self.stream: ">"}, count=self.count
            )
            entries = list(got[0][1]) if got else []
        out = []
        for eid, fields in entries:
            if not fields:
                continue  # trimmed away
            raw = fields.get(b"o", fields.get("o"))
            out.append((_s(eid), json.loads(_s(raw))))
        return out

    def run_once(self) -> int:
        """Deliver whatever is waiting; how many outcomes the sink heard."""
        entries = self._read()
        if not entries:
            return 0
        seen = self.conn.smismember(self.seen, [eid for eid, _ in entries])
        fresh = [e for e, was in zip(entries, seen, strict=True) if not was]
        if getattr(self.sink, "idempotent", False):
            chunks = [fresh] if fresh else []
        else:  # remember each one as soon as it is through: a failure midway repeats none
            chunks = [[e] for e in fresh]
        for chunk in chunks:
            self.sink.deliver(chunk)
            self.conn.sadd(self.seen, *[eid for eid, _ in chunk])
        self.conn.xack(self.stream, self.group, *[eid for eid, _ in entries])
        self.delivered += len(fresh)
        return len(fresh)

    def drain(self, timeout_s: float = 30.0, idle_s: float = 0.3) -> int:
        """Deliver until nothing new arrived for ``idle_s``; how many were delivered."""
        total, deadline, quiet_since = 0, time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline:
            n = self.run_once()
            total += n
            if n:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > idle_s:
                break
            else:
                time.sleep(0.05)
        return total

    def start(self, interval_s: float = 0.1) -> Dispatcher:
        """Deliver in a background thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if not self.run_once():
                        self._stop.wait(interval_s)
                except Exception:  # the sink failed: entries stay pending, try again later
                    self._stop.wait(1.0)

        self._thread = threading.Thread(target=loop, name=f"claynb-{self.group}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
