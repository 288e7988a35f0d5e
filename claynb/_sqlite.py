"""Opening claynb's SQLite files: one way, safe when several processes open one at once.

Every state file runs in WAL mode (readers never block the writer, and it is what makes a
file safe to share between the processes of one machine). Switching a new file to WAL
takes an exclusive lock, and SQLite answers a second process doing the same at that moment
with "database is locked" at once, without waiting out the busy timeout: two processes
opening a fresh ``CLAYNB_HOME`` together (two terminals, a worker pool) met it. So the
switch is retried until the same timeout has passed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: How long a statement waits for another process's lock (seconds).
BUSY_TIMEOUT_S = 30.0


def connect_wal(
    path: str | Path, *, timeout_s: float = BUSY_TIMEOUT_S, autocommit: bool = True
) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, usable from any thread (callers hold a lock).

    ``autocommit`` (the default) leaves transactions to explicit BEGIN/COMMIT;
    ``autocommit=False`` keeps :mod:`sqlite3`'s implicit transactions.
    """
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False)
    if autocommit:
        conn.isolation_level = None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.05)


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on an autocommit connection: ``BEGIN IMMEDIATE`` (the write
    lock taken up front, so a read-then-write cannot fail half-way on another process's
    lock), ``COMMIT`` at the end, ``ROLLBACK`` on any error. Callers sharing a connection
    between threads hold their own lock around it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
