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

#: The page size of a file claynb creates (SQLite's default is 4,096 bytes; a file keeps
#: the size it was made with). Every page a transaction changes goes to the write-ahead log
#: as a frame, two writes each, and is copied back at the next checkpoint: a landed run of
#: 100 answers changed about 27 pages of 4 KB (the batch's 7 KB of inputs on pages of their
#: own, the inbox's answers on five or six), and 14 of 16 KB; a fold of 200,000 answers
#: sorts and writes a quarter as many pages. Journaling 2,000 runs of 100, their landing
#: and the fold: 1.69 to 1.75 CPU-s against 1.91 to 2.01 (8 KB: 1.76 to 1.82), side by side.
PAGE_SIZE = 16_384


def connect_wal(
    path: str | Path, *, timeout_s: float = BUSY_TIMEOUT_S, autocommit: bool = True
) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode, usable from any thread (callers hold a lock).

    ``autocommit`` (the default) leaves transactions to explicit BEGIN/COMMIT;
    ``autocommit=False`` keeps :mod:`sqlite3`'s implicit transactions. A new file gets
    pages of :data:`PAGE_SIZE` (set before WAL is switched on, when it still can be); an
    existing one keeps its own.
    """
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False)
    if autocommit:
        conn.isolation_level = None
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
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
