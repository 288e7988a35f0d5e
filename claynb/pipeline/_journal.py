"""The resume journal: which runs were started, for what, and how they ended.

Clay has no idempotency key: a run that was started and then forgotten (a kernel restart,
``kill -9``) would be paid for again if its rows were simply re-sent. So every batch is
journaled in a SQLite file under ``CLAYNB_HOME`` (WAL mode, safe across processes):

    intent(...)    before the request that could start a run      state "sending"
    started(...)   as soon as Clay answers with a run id           state "in_flight"
    finished(...)  when the results are in                         state "finished"
    unknown(...)   when Clay may or may not have started it        state "unknown"
    abandon(...)   Clay certainly did not start it                 (forgotten)

The states are :class:`BatchState` and the moves between them :data:`BATCH_MOVES`; every
method that changes a batch's state checks the table first, so a move it does not allow
(landing a run that was never started, starting one twice) raises
:class:`claynb._states.IllegalTransition` instead of corrupting the journal.

``finished`` also caches the answers, puts failures on the dead-letter list and records
the charge in the ledger, in the same transaction: a run is either fully landed or still
in flight, never half. ``finished_runs`` lands several runs so, in one transaction (the
direct tier lands the runs that finish together: one commit, not one a run). The answers land in the cache's inbox (appended, a few pages a run;
see :mod:`claynb.pipeline._cache`), which every cache reader folds into the cache's index
before reading, and the journal folds when it is closed at the end of a call. A later call
collects ``in_flight`` runs instead of re-sending their items; a batch left "sending" by a process that died becomes "unknown" (the request may
have reached Clay), and its rows stay ``unknown`` until a recorded run-finished webhook
(``delivered``) names a run whose results carry exactly its item ids (``adopt``: in flight
again, collected, not re-sent), or the caller explicitly re-sends them.

The same file holds the cache (:mod:`claynb.pipeline._cache`), the ledger
(:mod:`claynb.pipeline._ledger`) and the claims on rows being sent (:mod:`claynb.pipeline._claims`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from claynb._home import state_home
from claynb._plans import Plan, get_plan
from claynb._routines import Cost
from claynb._sqlite import connect_wal, immediate
from claynb._states import Machine
from claynb.pipeline import _cache, _ledger
from claynb.pipeline._work import ANSWERED, CostSource, ItemResult, Status
from claynb.services._process import process_alive
from claynb.wire._exceptions import ConfigError

T = TypeVar("T")

FILENAME = "claynb.sqlite"

#: What the write-ahead log may hold before a commit copies its pages into the file
#: (SQLite's default is 1,000 pages). When a landed run wrote its answers straight into the
#: cache, it rewrote about a hundred pages, one per answer wherever its key fell, and 32
#: MB of log (8,000 pages of 4 KB) took 15% off landing a run; a fold rewrites many pages
#: at once, and the larger log copies them back in fewer, larger checkpoints. Counted in
#: the file's own pages (:data:`claynb._sqlite.PAGE_SIZE` for a new file, 4 KB for an older
#: one): 128 MB of 16 KB pages took 3 to 10% less CPU journaling 2,000 runs, not worth
#: four times the disk.
WAL_CHECKPOINT_BYTES = 32 << 20

#: Answers the cache's inbox may hold before the landing that passes it folds them into
#: the cache (:func:`claynb.pipeline._cache.fold`). A fold rewrites each page of the
#: cache's index its keys fall on once, so the more it folds at a time, the less it costs
#: per answer; but it holds the file's write lock while it runs (a fraction of a second at
#: this size, with a cache of millions), and other processes wait on that lock for at most
#: the busy timeout.
FOLD_ROWS = 200_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch INTEGER PRIMARY KEY AUTOINCREMENT, routine TEXT NOT NULL, backend TEXT,
    items TEXT, n INTEGER NOT NULL, run_id TEXT UNIQUE, state TEXT NOT NULL,
    reserved_actions REAL NOT NULL, reserved_credits REAL NOT NULL,
    pid INTEGER, host TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT
);
CREATE INDEX IF NOT EXISTS batches_state ON batches (routine, state);
CREATE TABLE IF NOT EXISTS deliveries (
    run_id TEXT PRIMARY KEY, at REAL NOT NULL, checked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unknown_items (
    routine TEXT NOT NULL, key TEXT NOT NULL, batch INTEGER, error TEXT, at REAL NOT NULL,
    PRIMARY KEY (routine, key)
) WITHOUT ROWID;
"""


class BatchState(StrEnum):
    """Where a journaled batch is (the ``state`` column holds these values)."""

    SENDING = "sending"
    IN_FLIGHT = "in_flight"
    FINISHED = "finished"
    UNKNOWN = "unknown"


SENDING, IN_FLIGHT, FINISHED, UNKNOWN = BatchState

#: Every move a batch may make: the one place they are written down.
BATCH_MOVES = Machine(
    "journal batch",
    BatchState,
    {
        None: {SENDING},
        SENDING: {IN_FLIGHT, UNKNOWN, None},  # None: abandoned, certainly never started
        IN_FLIGHT: {FINISHED, UNKNOWN},  # UNKNOWN: Clay no longer knows the run
        UNKNOWN: {IN_FLIGHT},  # a webhook delivery named its run: adopted
        FINISHED: set(),
    },
)


@dataclass(frozen=True)
class InFlight:
    """A run that was started and whose results were never landed."""

    batch: int
    run_id: str
    routine: str
    backend: str | None
    inputs: dict[str, dict[str, Any]]
    reserved: Cost
    started_at: float

    @property
    def keys(self) -> list[str]:
        return list(self.inputs)


@dataclass(frozen=True)
class UnknownBatch:
    """A batch whose send may or may not have started a run (no run id known): since when."""

    batch: int
    routine: str
    inputs: dict[str, dict[str, Any]]
    since: float

    @property
    def keys(self) -> list[str]:
        return list(self.inputs)


#: What landing a run asks once its answers are in the inbox, in one statement: about
#: how many answers wait there (:func:`claynb.pipeline._cache.inbox_size`), and whether
#: the routine has any failure or unknown item that an answer may now replace.
_AFTER_LANDING = (
    f"SELECT {_cache.WAITING}, "
    "EXISTS (SELECT 1 FROM failures WHERE routine = ?1), "
    "EXISTS (SELECT 1 FROM unknown_items WHERE routine = ?1)"
)


class Journal:
    """A handle on the state file. Thread-safe; open one per process (or per call).

    ``plan`` prices charges in dollars for the ledger when ``finished`` is not told another.
    """

    def __init__(self, path: str | Path, *, plan: str | Plan = "growth") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.plan = get_plan(plan)
        self._lock = threading.RLock()
        self._open = True
        self._conn = connect_wal(self.path)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        (page,) = self._conn.execute("PRAGMA page_size").fetchone()
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page}")
        with self._lock:  # executescript manages its own transaction
            self._conn.executescript(SCHEMA + _cache.SCHEMA + _ledger.SCHEMA)
            _ledger.migrate(self._conn)
        _cache.migrate(self._conn)
        self.fold()  # what a process that died left in the inbox

    @classmethod
    def open(cls, home: str | Path | None = None, *, plan: str | Plan = "growth") -> Journal:
        """The journal under ``home`` (default ``CLAYNB_HOME``, else ``./.claynb``)."""
        return cls(state_home(home) / FILENAME, plan=plan)

    def close(self) -> None:
        """Fold the answers landed into the cache's inbox (the end of a call), then close.

        A fold that cannot take the write lock within the busy timeout (another process
        holds it) is left to whoever reads the cache next: every reader folds first.
        """
        with self._lock:
            if not self._open:
                return
            self._open = False
            try:
                self.fold()
            except sqlite3.OperationalError:
                pass  # the answers are safe in the inbox; the next reader folds them
            finally:
                self._conn.close()

    def fold(self) -> int:
        """Enter the answers waiting in the cache's inbox in the cache's index; how many entered.
        Nothing is written when none wait (the usual case at open)."""
        with self._lock:
            return _cache.fold(self._conn)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), serialised across threads."""
        with self._lock, immediate(self._conn) as conn:
            yield conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only function on the connection."""
        with self._lock:
            return fn(self._conn)

    def bind_clay(self, clay: str) -> None:
        """Tie this state file to one Clay (see :func:`claynb._connect.clay_identity`).

        The cache answers by routine id and inputs, and the ledger prices routines by what
        they charged, so answers from one Clay would be served as another's: an emulator's
        made-up values returned ``cached`` to a real-Clay call, at no cost. The first call
        that talks to a Clay records which; a call to another is refused before anything
        is read or sent.
        """
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('clay', ?)", (clay,))
            row = conn.execute("SELECT value FROM meta WHERE key = 'clay'").fetchone()
        if row[0] != clay:
            raise ConfigError(
                f"the claynb state in {self.path.parent} holds answers from {row[0]}, and "
                f"this call talks to {clay}: a cached answer from one Clay is not an answer "
                "from another. Give each its own state home: export CLAYNB_HOME=<a new "
                "directory> (or pass home=...)"
            )

    # -- the journal proper -------------------------------------------------------------

    def intent(
        self,
        routine: str,
        backend: str,
        inputs: Mapping[str, Mapping[str, Any]],
        reserved: Cost | None = None,
    ) -> int:
        """Record a batch about to be sent (key -> normalised inputs); its batch number."""
        now, reserved = time.time(), reserved or Cost()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO batches (routine, backend, items, n, state, reserved_actions, "
                "reserved_credits, pid, host, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    routine,
                    backend,
                    _cache.to_json(inputs),
                    len(inputs),
                    SENDING,
                    reserved.actions,
                    reserved.data_credits,
                    os.getpid(),
                    socket.gethostname(),
                    now,
                    now,
                ),
            )
            return int(cur.lastrowid or 0)

    @staticmethod
    def _state(conn: sqlite3.Connection, batch: int) -> str | None:
        row = conn.execute("SELECT state FROM batches WHERE batch = ?", (batch,)).fetchone()
        return None if row is None else str(row[0])

    def started(self, batch: int, run_id: str) -> None:
        """Clay answered with a run id: from now on the batch is collected, never re-sent."""
        move = "UPDATE batches SET run_id = ?, state = ?, updated_at = ? WHERE batch = ?"
        values = (run_id, IN_FLIGHT, time.time(), batch)
        with self.transaction() as conn:
            # The usual move (sending -> in flight) in one statement; any other is checked.
            if conn.execute(f"{move} AND state = ?", (*values, SENDING)).rowcount == 0:
                BATCH_MOVES.check(self._state(conn, batch), IN_FLIGHT)
                conn.execute(move, values)

    def abandon(self, batch: int, error: str | None = None) -> None:
        """The batch was certainly not started (answered 4xx/429/402): forget the intent."""
        with self.transaction() as conn:
            BATCH_MOVES.check(self._state(conn, batch), None)
            conn.execute("DELETE FROM batches WHERE batch = ?", (batch,))

    def unknown(self, batch: int, error: str) -> list[str]:
        """The send may have reached Clay: park the batch's items as unknown; their keys."""
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT routine, items, state FROM batches WHERE batch = ?", (batch,)
            ).fetchone()
            if row is None:
                return []
            routine, items, state = row
            BATCH_MOVES.check(state, UNKNOWN)
            keys = list(json.loads(items or "{}"))
            conn.execute(
                "UPDATE batches SET state = ?, error = ?, updated_at = ? WHERE batch = ?",
                (UNKNOWN, error, now, batch),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO unknown_items VALUES (?, ?, ?, ?, ?)",
                [(routine, k, batch, error, now) for k in keys],
            )
            return keys

    def finished(
        self,
        run_id: str,
        results: Sequence[ItemResult],
        *,
        backend: str = "direct",
        plan: str | Plan | None = None,
    ) -> bool:
        """Land a run: cache answers, list failures, record the charge, mark it finished.

        Idempotent: False (and nothing written) when the run was already landed, for
        instance by another process collecting the same in-flight run.
        """
        return self.finished_runs([(run_id, results)], backend=backend, plan=plan)[0]

    def finished_runs(
        self,
        runs: Sequence[tuple[str, Sequence[ItemResult]]],
        *,
        backend: str = "direct",
        plan: str | Plan | None = None,
    ) -> list[bool]:
        """Land several runs (run id, results) in one transaction, each as :meth:`finished`
        does; for each, whether it was landed now (False: it was already).

        One commit for a few runs: a commit writes every page the transaction changed to
        the write-ahead log, and the pages a landing changes besides its answers (the
        batch's row and index, the ledger's) are the same few for every run, written once
        for all of them. All or none: a run that cannot be landed (never journaled, or in a
        state that may not finish) raises, and none of the others is landed either.
        """
        now, price = time.time(), get_plan(plan) if plan is not None else self.plan
        with self.transaction() as conn:
            return [
                self._finish(conn, run_id, results, backend, price, now) for run_id, results in runs
            ]

    def _finish(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        results: Sequence[ItemResult],
        backend: str,
        price: Plan,
        now: float,
    ) -> bool:
        """:meth:`finished`'s writes for one run, in the caller's transaction."""
        row = conn.execute(
            "SELECT batch, routine, items, state FROM batches WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is not None and row[3] == FINISHED:
            return False
        if row is None:
            raise KeyError(f"run {run_id!r} was never journaled")
        batch, routine, items, state = row
        BATCH_MOVES.check(state, FINISHED)
        self._land(conn, routine, run_id, results, items, now)
        cost, matched, source = _tally(results)
        _ledger.record(
            conn,
            _ledger.Charge(
                run_id,
                now,
                routine,
                backend,
                price.name,
                len(results),
                matched,
                cost.actions,
                cost.data_credits,
                price.usd(cost.actions, cost.data_credits),
                source,
            ),
        )
        conn.execute(
            "UPDATE batches SET state = ?, items = NULL, updated_at = ? WHERE batch = ?",
            (FINISHED, now, batch),
        )
        return True

    @staticmethod
    def _land(
        conn: sqlite3.Connection,
        routine: str,
        run_id: str,
        results: Sequence[ItemResult],
        items: str | None,
        now: float,
    ) -> None:
        """Cache the answers, list the failures (with the batch's ``items``, its inputs as
        journaled: read only when something failed), forget what is now known."""
        answers = [(r.key, r.status, r.result) for r in results if r.status in ANSWERED]
        _cache.cache_put(conn, routine, answers, now=now, run_id=run_id)
        waiting, failures, unknowns = conn.execute(_AFTER_LANDING, (routine,)).fetchone()
        if (waiting or 0) >= FOLD_ROWS:
            _cache.fold(conn)
        if failures:  # the common case has none: skip the deletes
            _cache.failures_forget(conn, routine, [a[0] for a in answers])
        failed = [r for r in results if r.status == Status.FAILED]
        if failed:
            inputs = json.loads(items or "{}")
            _cache.failures_put(
                conn,
                routine,
                [(r.key, inputs.get(r.key, {}), r.error, r.attempts) for r in failed],
                now=now,
                run_id=run_id,
            )
        if unknowns:
            conn.executemany(
                "DELETE FROM unknown_items WHERE routine = ? AND key = ?",
                [(routine, r.key) for r in results],
            )

    def record_failures(
        self, routine: str, failed: Sequence[tuple[str, Mapping[str, Any], str | None, int]]
    ) -> None:
        """Put items that failed without a run (for instance a send refused with 4xx)
        on the dead-letter list: (key, inputs, error, attempts)."""
        with self.transaction() as conn:
            _cache.failures_put(
                conn, routine, [(k, dict(i), e, a) for k, i, e, a in failed], now=time.time()
            )

    def recover(self, routine: str | None = None, *, backends: Sequence[str] = ("direct",)) -> int:
        """Batches left "sending" by a process that died on this host become "unknown".

        Returns how many. Their request may have reached Clay and been charged, so the
        rows are parked as unknown, never re-sent on their own. Only ``backends`` whose
        journaling process is also the sending one (the direct tier) are judged by that
        process's death: a queue batch is sent by a worker that may well be alive.
        """
        host = socket.gethostname()
        rows = self.read(
            lambda c: c.execute(
                "SELECT batch, routine, backend, pid, host FROM batches WHERE state = ?", (SENDING,)
            ).fetchall()
        )
        dead = [
            b
            for b, r, be, pid, h in rows
            if (routine is None or r == routine)
            and be in backends
            and h == host
            and pid != os.getpid()
            and not process_alive(int(pid))
        ]
        for batch in dead:
            self.unknown(
                batch,
                "the process sending this run died before Clay answered; "
                "the run may or may not have started",
            )
        return len(dead)

    def in_flight(self, routine: str, keys: Sequence[str] | None = None) -> list[InFlight]:
        """Runs of ``routine`` started and never landed (holding any of ``keys``)."""
        rows = self.read(
            lambda c: c.execute(
                "SELECT batch, run_id, routine, backend, items, reserved_actions, reserved_credits, "
                "updated_at FROM batches WHERE routine = ? AND state = ? ORDER BY batch",
                (routine, IN_FLIGHT),
            ).fetchall()
        )
        runs = [
            InFlight(b, run_id, r, be, json.loads(items or "{}"), Cost(a, c), at)
            for b, run_id, r, be, items, a, c, at in rows
        ]
        if keys is None:
            return runs
        wanted = set(keys)
        return [run for run in runs if wanted.intersection(run.inputs)]

    def unknown_batches(self, backend: str) -> list[UnknownBatch]:
        """``backend``'s batches whose send may or may not have started a run, oldest first.

        A process that starts again (after a crash cut a send short) holds their items a
        while: Clay's webhook may yet name the run, which is then collected, not re-sent.
        """
        rows = self.read(
            lambda c: c.execute(
                "SELECT batch, routine, items, updated_at FROM batches "
                "WHERE state = ? AND backend = ? ORDER BY batch",
                (UNKNOWN, backend),
            ).fetchall()
        )
        return [UnknownBatch(b, r, json.loads(items or "{}"), at) for b, r, items, at in rows]

    def unknown_keys(self, routine: str, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Items of ``routine`` whose send may or may not have reached Clay: key -> why."""
        rows = self.read(
            lambda c: c.execute(
                "SELECT key, error FROM unknown_items WHERE routine = ?", (routine,)
            ).fetchall()
        )
        found = {k: e or "outcome unknown" for k, e in rows}
        if keys is None:
            return found
        return {k: found[k] for k in keys if k in found}

    def forget_unknown(self, routine: str, keys: Sequence[str]) -> None:
        """The caller chose to re-send these unknown items (``resend_unknown=True``)."""
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM unknown_items WHERE routine = ? AND key = ?",
                [(routine, k) for k in keys],
            )

    # -- outbound webhooks: how an unknown outcome becomes known --------------------------

    def delivered(self, run_id: str) -> None:
        """Clay said (a verified run-finished webhook) that this run finished."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO deliveries (run_id, at) VALUES (?, ?)", (run_id, time.time())
            )

    def adoptable(self) -> tuple[list[str], dict[int, set[str]], set[str]]:
        """Delivered runs no batch claims yet, the unknown batches (batch -> keys), and the
        keys of batches still being sent (whose delivery may come before their run id).

        A send that timed out has no run id, but if Clay started the run its webhook
        names it, and the run's results carry our item ids: matching the two turns an
        unknown batch back into one in flight, collected without being sent again.
        """

        def query(c: sqlite3.Connection) -> tuple[list[str], dict[int, set[str]], set[str]]:
            runs = [
                r
                for (r,) in c.execute(
                    "SELECT run_id FROM deliveries WHERE checked = 0 AND run_id NOT IN "
                    "(SELECT run_id FROM batches WHERE run_id IS NOT NULL)"
                )
            ]
            if not runs:
                return [], {}, set()
            batches = {
                b: set(json.loads(items or "{}"))
                for b, items in c.execute(
                    "SELECT batch, items FROM batches WHERE state = ?", (UNKNOWN,)
                )
            }
            sending = {
                k
                for (items,) in c.execute("SELECT items FROM batches WHERE state = ?", (SENDING,))
                for k in json.loads(items or "{}")
            }
            return runs, batches, sending

        return self.read(query)

    def adopt(self, batch: int, run_id: str) -> None:
        """An unknown batch was found in a delivered run: it is in flight again."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT routine, items FROM batches WHERE batch = ? AND state = ?", (batch, UNKNOWN)
            ).fetchone()
            if row is None:
                return  # another process adopted it first
            BATCH_MOVES.check(UNKNOWN, IN_FLIGHT)
            conn.execute(
                "UPDATE batches SET run_id = ?, state = ?, error = NULL, updated_at = ? "
                "WHERE batch = ?",
                (run_id, IN_FLIGHT, time.time(), batch),
            )
            conn.executemany(
                "DELETE FROM unknown_items WHERE routine = ? AND key = ?",
                [(row[0], k) for k in json.loads(row[1] or "{}")],
            )
            conn.execute("UPDATE deliveries SET checked = 1 WHERE run_id = ?", (run_id,))

    def delivery_checked(self, run_id: str) -> None:
        """A delivered run that matches no unknown batch (someone else's): stop looking."""
        with self.transaction() as conn:
            conn.execute("UPDATE deliveries SET checked = 1 WHERE run_id = ?", (run_id,))

    def runs(self) -> list[dict[str, Any]]:
        """Every journaled batch (without its items), oldest first: for inspection."""
        cols = [
            "batch",
            "routine",
            "backend",
            "n",
            "run_id",
            "state",
            "created_at",
            "updated_at",
            "error",
        ]
        rows = self.read(
            lambda c: c.execute(f"SELECT {', '.join(cols)} FROM batches ORDER BY batch").fetchall()
        )
        return [dict(zip(cols, row, strict=True)) for row in rows]

    # -- the cache and the dead-letter list, through the same connection ---------------

    def cached(
        self, routine: str, keys: Sequence[str], *, max_age_s: float | None = None
    ) -> dict[str, _cache.Cached]:
        now = time.time()
        return self.read(lambda c: _cache.cache_get(c, routine, keys, max_age_s=max_age_s, now=now))

    def cache_hits(
        self,
        routine: str,
        keys: Sequence[str],
        *,
        max_age_s: float | None = None,
        results: bool = True,
    ) -> _cache.Hits:
        now = time.time()
        return self.read(
            lambda c: _cache.cache_hits(
                c, routine, keys, max_age_s=max_age_s, now=now, results=results
            )
        )

    def failures(
        self, routine: str | None = None, keys: Sequence[str] | None = None
    ) -> list[_cache.Failure]:
        return self.read(lambda c: _cache.failures_get(c, routine, keys))

    def forget_failures(self, routine: str, keys: Sequence[str]) -> None:
        with self.transaction() as conn:
            _cache.failures_forget(conn, routine, keys)

    def observed_rates(self, routine: str) -> tuple[int, int, float, float, str | None]:
        return self.read(lambda c: _ledger.observed_rates(c, routine))


def _tally(results: Sequence[ItemResult]) -> tuple[Cost, int, str | None]:
    """What a run cost, how many of its items matched, and where the cost's figures come
    from (:meth:`CostSource.of_all`): one pass over its results."""
    actions = data_credits = 0.0
    matched = 0
    sources: set[CostSource | None] = set()
    for r in results:
        actions += r.cost.actions
        data_credits += r.cost.data_credits
        matched += r.status == Status.ENRICHED
        sources.add(r.cost_source)
    found = CostSource.of_all(sources)
    return Cost(actions, data_credits), matched, None if found is None else str(found)
