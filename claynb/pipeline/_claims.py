"""Claims: a row is claimed before it is sent, so two processes never send it both.

The cache and the journal are shared on disk by every process with the same
``CLAYNB_HOME``, but a cache only answers rows that have *landed*: two kernels (or a
scheduled run and an interactive one) enriching the same frame at the same time would
both find every row uncached and both pay for it. So before an enrich call sends
anything, it claims the rows it is about to send, in one transaction in the same SQLite
file as the journal:

- a row nobody claims becomes this call's, and is sent;
- a row claimed by a call of a live process is not sent: this call waits for that call
  to end, then takes its answer from the cache (``cached``, cost 0), or its failure or
  unknown outcome from the journal, exactly as if it had been there at planning time;
- a row claimed by a process that died (``kill -9``, a kernel restart) is freed, and the
  journal's resume path takes it over: batches the dead process left "sending" become
  "unknown" (:meth:`~claynb.pipeline._journal.Journal.recover`), runs it started are
  collected by the next send instead of being sent again.

A claimant is a call: its process id, host and the process's start time (so a pid the
system gave to a newer process is not taken for the old one), plus a number of its own,
so two calls in one process wait for each other too. A call's claims end when its sends
have returned, that is once every row it sent has landed in the journal (an answer, a
failure or an unknown outcome): a waiter never finds a row unclaimed and unanswered
while its run is still being collected. A claimant on another host cannot be checked
and is taken to be alive (one ``CLAYNB_HOME`` is meant for one machine; see the README).

Claims are written in bulk (a statement per 20,000 keys, in key order; the owners of
conflicting rows are read only when some insert was refused), so the cost per row stays
small next to the rest of the pipeline (``benchmarks/claims_cost.py`` prints it).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import orjson

from claynb.pipeline._keys import KeyList
from claynb.services._process import process_started, same_process_alive

SCHEMA = """
CREATE TABLE IF NOT EXISTS claimants (
    owner INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL, host TEXT NOT NULL,
    started TEXT, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    routine TEXT NOT NULL, key TEXT NOT NULL, owner INTEGER NOT NULL,
    PRIMARY KEY (routine, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims_ended (
    id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL
);
"""

#: How often a waiting call looks again (seconds), first and at most.
POLL_S = 0.2
POLL_MAX_S = 1.0
# SQLite caps the number of host parameters per statement; stay well below it.
_CHUNK = 500


class StateFile(Protocol):
    """What claims need of the journal (:class:`claynb.pipeline._journal.Journal`): a write
    transaction on its SQLite file, where the claims' tables live beside the journal's."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class Taken:
    """What one :meth:`Claims.take` got: the keys now this call's, those another live (or
    not yet known to be dead) call holds, and whether some call's claims ended since this
    one planned (``stale``): then rows it now holds may have landed meanwhile, and are
    looked up again before being sent."""

    mine: Sequence[str]
    others: Sequence[str]
    stale: bool = False


#: Keys claimed by one statement (their JSON text is about 35 bytes a key).
_CLAIM_CHUNK = 20_000


def _claim(conn: sqlite3.Connection, routine: str, keys: Sequence[str], owner: int) -> int:
    """Insert the claims on ``keys`` nobody holds; how many were inserted.

    In key order (appending to the table's index costs about half of random inserts), and
    a chunk of keys a statement, as one JSON array SQLite reads in C: half the CPU of
    binding a row at a time (0.2 against 0.43 CPU-s for 200,000 keys), and no tuple per
    key held at once (13 MB at 200,000). A frame's keys (a
    :class:`~claynb.pipeline._keys.KeyList`) are sorted and written as JSON from their
    bytes, a chunk at a time: no ``str`` per key (their list was 17.8 MB at 200,000).
    """
    ordered = keys.ordered() if isinstance(keys, KeyList) else sorted(keys)
    inserted = 0
    for lo in range(0, len(ordered), _CLAIM_CHUNK):
        inserted += conn.execute(
            "INSERT OR IGNORE INTO claims (routine, key, owner) SELECT ?, value, ? "
            "FROM json_each(?)",
            (routine, owner, _json(ordered[lo : lo + _CLAIM_CHUNK])),
        ).rowcount
    return inserted


def _json(keys: Sequence[str]) -> str:
    """The keys as one JSON array."""
    return keys.json() if isinstance(keys, KeyList) else orjson.dumps(list(keys)).decode()


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


class Claims:
    """One enrich call's claims on rows of one routine, under one ``CLAYNB_HOME``.

    Use as a context manager: every claim still held is released on the way out, whatever
    happened (an exception, ``KeyboardInterrupt``).
    """

    def __init__(self, journal: StateFile, routine: str) -> None:
        """Made before the call plans (reads the cache): ``since`` and the count of ended
        claims are what :meth:`take` compares with to tell that rows may have landed."""
        self.journal = journal
        self.routine = routine
        self.owner: int | None = None
        self.since = time.time()
        self._host = socket.gethostname()
        with journal.transaction() as conn:
            for table in SCHEMA.split(";"):  # the journal makes its own; these are ours
                conn.execute(table)
            self._ended = _ended(conn)

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _register(self, conn: sqlite3.Connection) -> int:
        if self.owner is None:
            cur = conn.execute(
                "INSERT INTO claimants (pid, host, started, at) VALUES (?, ?, ?, ?)",
                (os.getpid(), self._host, process_started(os.getpid()), time.time()),
            )
            self.owner = int(cur.lastrowid or 0)
        return self.owner

    def take(self, keys: Sequence[str]) -> Taken:
        """Claim every key nobody holds, in one transaction; the rest are someone else's.
        Both come back as ``keys`` does (a frame's :class:`~claynb.pipeline._keys.KeyList`
        as two of them, in its order; ``keys`` itself when every one was claimed)."""
        if not keys:
            return Taken([], [])
        with self.journal.transaction() as conn:
            owner = self._register(conn)
            inserted = _claim(conn, self.routine, keys, owner)
            ended, self._ended = self._ended, _ended(conn)
            stale = ended != self._ended
            if inserted == len(keys):
                return Taken(keys, [], stale)
            held = self._held_by_others(conn, keys)
        if isinstance(keys, KeyList):
            free = np.fromiter((k not in held for k in keys), dtype=bool, count=len(keys))
            return Taken(keys.picked(free), keys.picked(~free), stale)
        return Taken([k for k in keys if k not in held], [k for k in keys if k in held], stale)

    def _held_by_others(self, conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, int]:
        held: dict[str, int] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            held.update(
                conn.execute(
                    f"SELECT key, owner FROM claims WHERE routine = ? AND owner IS NOT ? "
                    f"AND key IN ({marks})",
                    (self.routine, self.owner, *chunk),
                ).fetchall()
            )
        return held

    def release(self) -> None:
        """End every claim this call holds (its sends have returned: the rows landed)."""
        if self.owner is None:
            return
        with self.journal.transaction() as conn:
            _end(conn, self.owner)
        self.owner = None

    def wait(self, keys: Sequence[str], poll_s: float = POLL_S) -> None:
        """Block until no live call holds any of ``keys``; claims of dead ones are freed."""
        while True:
            with self.journal.transaction() as conn:
                held = self._held_by_others(conn, keys)
                dead = self._dead(conn, set(held.values()))
                for owner in dead:
                    _end(conn, owner)
            if not set(held.values()) - dead:
                return
            time.sleep(poll_s)
            poll_s = min(POLL_MAX_S, poll_s * 1.5)

    def _dead(self, conn: sqlite3.Connection, owners: set[int]) -> set[int]:
        """The claimants among ``owners`` whose process has ended (on this host)."""
        dead: set[int] = set()
        for owner in owners:
            row = conn.execute(
                "SELECT pid, host, started FROM claimants WHERE owner = ?", (owner,)
            ).fetchone()
            if row is None or (row[1] == self._host and not same_process_alive(row[0], row[2])):
                dead.add(owner)
        return dead


def _ended(conn: sqlite3.Connection) -> int:
    """How many calls' claims have ended so far (a counter, never reset)."""
    row = conn.execute("SELECT n FROM claims_ended WHERE id = 0").fetchone()
    return 0 if row is None else int(row[0])


def _end(conn: sqlite3.Connection, owner: int) -> None:
    """End a claimant's claims, and count it: a call planning meanwhile looks again."""
    conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))
    conn.execute("DELETE FROM claimants WHERE owner = ?", (owner,))
    conn.execute(
        "INSERT INTO claims_ended (id, n) VALUES (0, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1"
    )
