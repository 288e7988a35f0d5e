"""What claynb already knows about an item: its answer (the cache) or its failure.

Both live in the SQLite state file under ``CLAYNB_HOME`` (see :mod:`claynb.pipeline._journal`),
keyed by routine and the item key (a hash of the normalised inputs), so the same person
is never paid for twice, across frames, calls and kernel restarts.

- The **cache** keeps enriched and no-match answers with the time they were fetched. A
  no-match is an answer too (Clay charged nothing, or something, to say "nothing found"),
  so it is cached; ``max_age`` re-enriches answers older than that.
- The **dead-letter list** keeps items that failed (inputs, error, attempts) instead of
  answers. They are not cached, and not re-sent until the caller asks
  (``enrich(..., retry_failed=True)``): a failure that repeats costs time, and one that
  was charged costs money.

Functions take an open :class:`sqlite3.Connection` so the journal can write the cache, the
dead-letter list and the ledger in one transaction.

The cache is keyed by an INTEGER: :func:`key_hashes` folds the routine and the item key
(itself a hash) into 64 bits. Finding a row by its rowid is SQLite's cheapest look-up (one
B-tree, no index beside it), and a cached re-run looks up every row of the frame. Every
look-up checks the routine and the full key too, so two keys that share 64 bits (about one
chance in 10^19 per pair) are never confused: the later answer replaces the earlier, which
is then simply a miss (enriched again, never answered wrongly).

Answers are written once and never moved. They land in ``cache_answers`` (:func:`cache_put`),
appended in the order they arrive (its rowid ``seq`` only grows), so a landed run of 100
answers writes the few pages at the table's end, not the hundred random pages its keys would
fall on. The cache itself (``cache``) is a small index from the hash ``h`` to the ``seq`` of
its answer (about 20 bytes an entry, some 800 to a 16 KB page). ``cache_folded`` holds the
last ``seq`` the index knows: the answers after it are the inbox. :func:`fold` enters them
into the index in one transaction, in the order of the hashes (each index page rewritten
once, however many answers fall on it); for one hash the latest answer wins, and the rows of
the answers it replaces are deleted. So a fold writes index pages, not rows: when the cache
held the whole rows keyed by ``h`` (about 210 bytes each), 200,000 answers with random
hashes fell on nearly every leaf page of a cache of 2.2 million, and the fold rewrote all
460 MB of it through the write-ahead log (1.86 CPU-s, against 0.5 for an empty cache); the
index of the same cache is about 45 MB, and that fold now takes a quarter of the CPU it did
side by side (``benchmarks/enrich_overhead.py``). Every reader here folds a non-empty inbox first, so
nothing reads the cache without what has landed, whichever process landed it; the journal
folds when it closes (the end of an enrich call), when it opens (what a crashed process
left) and when the inbox grows past :data:`claynb.pipeline._journal.FOLD_ROWS`.

A state file written by an older claynb is moved over when it is opened (:func:`migrate`),
every answer kept under the same key: the cache with a TEXT unique index on (routine, key),
and the cache of whole rows keyed by ``h`` with its own inbox (``cache_inbox``).

Reading many answers (:func:`cache_hits`) first finds where they are (the index, in the
order of the hashes), then reads them in the order they were written (neighbouring answers
share pages), asking SQLite for one newline-delimited JSON text per chunk
(``group_concat``: no Python object per row) and parsing it as columns with
``pyarrow.json``; answers Arrow cannot hold exactly (nested values, a field whose type
changes from row to row) are read as dicts instead, the way :func:`cache_get` reads them.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from claynb._sqlite import immediate
from claynb.pipeline._keys import KeyList
from claynb.pipeline._work import Fields

#: An answer's columns, in order, behind its ``seq`` in ``cache_answers``.
_ANSWER_COLUMNS = "h INTEGER NOT NULL, routine TEXT NOT NULL, key TEXT NOT NULL, " + (
    "status TEXT NOT NULL, result TEXT NOT NULL, fetched_at REAL NOT NULL, run_id TEXT"
)

#: The answer columns an older layout's cache (or inbox) copies into ``cache_answers``.
_COPIED = "h, routine, key, status, result, fetched_at, run_id"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cache_answers (seq INTEGER PRIMARY KEY, {_ANSWER_COLUMNS});
CREATE TABLE IF NOT EXISTS cache_folded (
    one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    routine TEXT NOT NULL, key TEXT NOT NULL, inputs TEXT NOT NULL, error TEXT,
    attempts INTEGER NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL, run_id TEXT,
    PRIMARY KEY (routine, key)
) WITHOUT ROWID;
"""

#: The cache: where the answer of each hash is. Made by :func:`migrate`, once an older
#: layout's ``cache`` (its rows whole) is out of the way. A fold that enters a later answer
#: for a hash (an upsert) deletes the row of the one it replaces, whichever it was: one
#: already in the index, or one landed earlier in the same inbox.
_INDEX = (
    "CREATE TABLE IF NOT EXISTS cache (h INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS cache_replaced AFTER UPDATE OF seq ON cache BEGIN "
    "DELETE FROM cache_answers WHERE seq = old.seq; END",
)

#: How many answers wait in the inbox (at least as many as do): the last ``seq`` landed
#: less the last folded, two B-tree descents where counting would read every row.
WAITING = "coalesce((SELECT max(seq) FROM cache_answers), 0) - (SELECT seq FROM cache_folded)"

# SQLite caps the number of host parameters per statement; stay well below it.
_CHUNK = 500
#: Keys per bulk look-up (:func:`cache_hits`): one JSON array of hashes in, one text of
#: answers out, a few MB each; and keys hashed at once (:func:`key_hashes`).
_BULK = 20_000


def to_json(value: Any) -> str:
    """An answer (or inputs) as JSON text, anything JSON cannot hold written as its text.
    orjson: a landed run writes 100 of these, in a seventh of :mod:`json`'s time."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}")


def _eight_bytes(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def key_hashes(routine: str, keys: Sequence[str]) -> np.ndarray:
    """The cache's INTEGER key of each (routine, key), as int64.

    An item key is 32 hex digits of a hash (:func:`claynb.pipeline._work.item_key`): its
    first 16 are 64 bits as good as any, read for a chunk of keys at once (the joined text
    and bytes are a chunk's, not the whole list's: a frame's 200,000 keys at once made
    megabytes of short-lived copies). Any other text is hashed. Either way the routine's
    own hash is mixed in, so one key under two routines is two rows.
    """
    salt = np.frombuffer(_eight_bytes(routine), dtype=">i8")[0]
    if isinstance(keys, KeyList):  # a frame's keys: their first 8 bytes, no text made
        return keys.word(0).view(np.int64) ^ salt
    hashes = np.empty(len(keys), dtype=np.int64)
    for lo in range(0, len(keys), _BULK):
        hashes[lo : lo + _BULK] = _key_bits(keys[lo : lo + _BULK]) ^ salt
    return hashes


def _key_bits(keys: Sequence[str]) -> np.ndarray:
    """64 bits of each key: its first 16 hex digits, or a hash of any other text."""
    joined = "".join(keys)
    try:  # all of them item keys: their bits in one call
        raw = bytes.fromhex(joined) if len(joined) == 32 * len(keys) else b"-"
    except ValueError:
        raw = b"-"
    if len(raw) == 16 * len(keys):
        return np.frombuffer(raw, dtype=">i8")[::2]
    return np.frombuffer(
        b"".join(bytes.fromhex(k[:16]) if _HEX_KEY.fullmatch(k) else _eight_bytes(k) for k in keys),
        dtype=">i8",
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Make the cache's index, first moving a cache written by an older claynb over, in one
    transaction: its keys and answers unchanged, later answers still winning.

    Two older layouts: whole rows keyed by ``h`` with their own inbox (``cache_inbox``,
    answers not yet folded), and, before that, a TEXT unique index on (routine, key). Their
    answers are appended to ``cache_answers`` (the cache's, then the inbox's in the order
    they landed) and folded into the index.
    """
    if conn.execute("SELECT 1 FROM cache_folded").fetchone() is None:  # a new file
        conn.execute("INSERT OR IGNORE INTO cache_folded VALUES (1, 0)")
    if _layout(conn) is None:
        for statement in _INDEX:  # IF NOT EXISTS: nothing written once made
            conn.execute(statement)
        return
    with immediate(conn):
        columns = _layout(conn)
        if columns is None:
            return
        if "h" in columns:
            conn.execute(f"INSERT INTO cache_answers ({_COPIED}) SELECT {_COPIED} FROM cache")
        else:
            for routine, keys in _keys_by_routine(conn):
                hashes = key_hashes(routine, keys).tolist()
                conn.executemany(
                    f"INSERT INTO cache_answers ({_COPIED}) SELECT ?, * FROM cache "
                    "WHERE routine = ? AND key = ?",
                    [(h, routine, key) for h, key in zip(hashes, keys, strict=True)],
                )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "cache_inbox" in tables:
            conn.execute(
                f"INSERT INTO cache_answers ({_COPIED}) SELECT {_COPIED} FROM cache_inbox "
                "ORDER BY seq"
            )
            conn.execute("DROP TABLE cache_inbox")
        conn.execute("DROP TABLE cache")
        for statement in _INDEX:
            conn.execute(statement)
        fold(conn)


def _layout(conn: sqlite3.Connection) -> set[str] | None:
    """The columns of an older layout's cache (its rows whole), None if there is none."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(cache)")}
    return columns if "routine" in columns else None


def _keys_by_routine(conn: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    by_routine: dict[str, list[str]] = {}
    for routine, key in conn.execute("SELECT routine, key FROM cache ORDER BY rowid"):
        by_routine.setdefault(routine, []).append(key)
    return list(by_routine.items())


@dataclass(frozen=True)
class Cached:
    """A cached answer: ``status`` is enriched or no_match."""

    status: str
    result: dict[str, Any]
    fetched_at: float


@dataclass(frozen=True)
class Failure:
    """An entry of the dead-letter list."""

    routine: str
    key: str
    inputs: dict[str, Any]
    error: str | None
    attempts: int
    first_at: float
    last_at: float
    run_id: str | None


def max_age_seconds(max_age: timedelta | float | int | None) -> float | None:
    """``max_age`` as seconds (a timedelta or a number), ``None`` for "any age"."""
    if max_age is None:
        return None
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    if seconds < 0:
        raise ValueError(f"max_age must not be negative, got {max_age!r}")
    return seconds


def _chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


@dataclass(frozen=True)
class Hits:
    """Which of the keys asked about are cached, as columns: ``at`` their positions in
    the keys asked about, ``fields`` their answers' fields in the same order (None when
    read with ``results=False``)."""

    at: np.ndarray
    fields: Fields | None


def cache_hits(
    conn: sqlite3.Connection,
    routine: str,
    keys: Sequence[str],
    *,
    max_age_s: float | None = None,
    now: float,
    results: bool = True,
) -> Hits:
    """The cached ones of these keys, leaving out answers older than ``max_age_s``, as
    columns. ``results=False`` reads only which keys are cached.

    The keys are looked up in the order of their hashes (neighbouring keys share pages),
    in chunks of ``_BULK``: the hashes go in as one JSON array, and SQLite answers with
    one newline-delimited JSON text, a line per hit (its position and full key, checked
    here, and its answer), which Arrow parses in C. Nothing per key is made for the whole
    frame but its hash and its place in their order (16 bytes a key): a first run of
    200,000 keys looked up everything at once and made 16 MB of short-lived objects (the
    keys joined, an object array of them, their JSON) to find nothing. An empty cache is
    not asked at all.
    """
    fold(conn)
    if conn.execute("SELECT 1 FROM cache LIMIT 1").fetchone() is None:
        return Hits(np.zeros(0, dtype=np.int64), Fields(0) if results else None)
    place, seqs = _where(conn, key_hashes(routine, keys))
    order = np.argsort(seqs, kind="stable")
    place, seqs = place[order], seqs[order]
    age = "" if max_age_s is None else "AND a.fetched_at >= ? "
    ages: tuple[float, ...] = () if max_age_s is None else (now - max_age_s,)
    answer = ",\"r\":' || a.result || '" if results else ""
    sql = (
        "SELECT group_concat('{\"i\":' || j.key || ',\"k\":' || json_quote(a.key) || "
        f"'{answer}}}', char(10)) FROM json_each(?) AS j CROSS JOIN cache_answers AS a "
        f"ON a.seq = j.value WHERE a.routine = ? {age}"
    )
    parts: list[pa.Table] = []
    for lo in range(0, len(seqs), _BULK):
        asked = orjson.dumps(seqs[lo : lo + _BULK], option=orjson.OPT_SERIALIZE_NUMPY).decode()
        (text,) = conn.execute(sql, (asked, routine, *ages)).fetchone()
        if not text:
            continue
        try:
            table = pa_json.read_json(pa.py_buffer(text.encode("utf-8")), read_options=_READ)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a field changed type: not as columns
            return _as_dicts(conn, routine, list(keys), max_age_s, now)
        found = place[lo : lo + _BULK][table.column("i").to_numpy()]
        if isinstance(keys, KeyList):  # a frame's keys: the text of the hits only
            wanted: Iterable[str] = keys.at(found)
        else:
            wanted = map(keys.__getitem__, found.tolist())
        same = list(map(operator.eq, table.column("k").to_pylist(), wanted))
        table = table.flatten().append_column("at", pa.array(found, pa.int64()))
        parts.append(table.drop_columns(["i", "k"]).filter(pa.array(same, pa.bool_())))
    at = np.concatenate([p.column("at").to_numpy() for p in parts]) if parts else np.zeros(0)
    if not results:
        return Hits(at.astype(np.int64), None)
    fields = _fields(parts, len(at))
    if fields is None:
        return _as_dicts(conn, routine, list(keys), max_age_s, now)
    return Hits(at.astype(np.int64), fields)


def _where(conn: sqlite3.Connection, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of these hashes the index holds: their positions among them, and the ``seq`` of
    each one's answer. Looked up in the order of the hashes (neighbours share the index's
    pages), a chunk at a time, each chunk's answer one text of ``position,seq`` pairs for
    the hashes held, parsed by numpy.

    The text names each hit's position rather than relying on the order SQLite aggregates
    rows in, which its documentation leaves arbitrary: an answer paired with the wrong key
    would be checked, found wrong and counted a miss, and that row paid for again. (One
    ``seq`` or -1 per hash asked, in the order asked, was a quarter cheaper to parse.)"""
    order = np.argsort(hashes, kind="stable")
    sql = (
        "SELECT group_concat(j.key || ',' || c.seq) "
        "FROM json_each(?) AS j JOIN cache AS c ON c.h = j.value"
    )
    places: list[np.ndarray] = []
    seqs: list[np.ndarray] = []
    for lo in range(0, len(order), _BULK):
        chunk = order[lo : lo + _BULK]
        asked = orjson.dumps(hashes[chunk], option=orjson.OPT_SERIALIZE_NUMPY).decode()
        (text,) = conn.execute(sql, (asked,)).fetchone()
        if not text:  # no hash of this chunk is held
            continue
        pairs = np.fromstring(text, dtype=np.int64, sep=",").reshape(-1, 2)
        places.append(chunk[pairs[:, 0]])
        seqs.append(pairs[:, 1])
    if not places:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(places), np.concatenate(seqs)


def _as_dicts(
    conn: sqlite3.Connection,
    routine: str,
    keys: list[str],
    max_age_s: float | None,
    now: float,
) -> Hits:
    """:func:`cache_hits` for answers Arrow cannot hold exactly: each a dict, as stored."""
    got = cache_get(conn, routine, keys, max_age_s=max_age_s, now=now)
    at = [i for i, key in enumerate(keys) if key in got]
    return Hits(np.asarray(at, dtype=np.int64), Fields.of_dicts([got[keys[i]].result for i in at]))


#: One block for a whole chunk: a chunk's answers are typed as one.
_READ = pa_json.ReadOptions(use_threads=False, block_size=1 << 30)


def _fields(parts: list[pa.Table], rows: int) -> Fields | None:
    """The answers of these parsed chunks (their ``r.<field>`` columns) as one table of
    flat fields; None when a field holds nested values or changes type from chunk to
    chunk (Arrow would not give back the values as they were stored)."""
    try:
        table = pa.concat_tables(parts, promote_options="permissive") if parts else None
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    names = [] if table is None else [n for n in table.column_names if n.startswith("r.")]
    columns = {n[2:]: table.column(n) for n in names} if table is not None else {}
    if not all(Fields.flat(c.type) for c in columns.values()):
        return None
    return Fields(rows, pa.table(columns) if columns else None)


def cache_get(
    conn: sqlite3.Connection,
    routine: str,
    keys: Sequence[str],
    *,
    max_age_s: float | None = None,
    now: float,
) -> dict[str, Cached]:
    """Cached answers for these keys (key -> :class:`Cached`), each its dict exactly as
    stored: for the tiers that answer item by item (and answers Arrow cannot hold)."""
    fold(conn)
    ages: tuple[float, ...] = () if max_age_s is None else (now - max_age_s,)
    age = "" if max_age_s is None else "AND a.fetched_at >= ? "
    found: dict[str, Cached] = {}
    for chunk in _chunks(list(keys)):
        hashes = key_hashes(routine, chunk).tolist()
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            "SELECT a.key, a.status, a.result, a.fetched_at FROM cache AS c "
            f"CROSS JOIN cache_answers AS a ON a.seq = c.seq WHERE c.h IN ({marks}) "
            f"AND a.routine = ? {age}",
            (*hashes, routine, *ages),
        ).fetchall()
        wanted = set(chunk)
        rows = [row for row in rows if row[0] in wanted]
        if not rows:
            continue
        # One parse of every result as an array: the same objects for far fewer calls.
        parsed = json.loads(f"[{','.join(row[2] for row in rows)}]")
        for (key, status, _, at), result in zip(rows, parsed, strict=True):
            found[key] = Cached(status, result, at)
    return found


def cache_put(
    conn: sqlite3.Connection,
    routine: str,
    answers: Iterable[tuple[str, str, dict[str, Any]]],
    *,
    now: float,
    run_id: str | None = None,
) -> int:
    """Store (key, status, result) answers; a newer answer replaces an older one.

    They land in ``cache_answers`` (appended: a few pages whatever their keys), waiting
    for a fold to enter them in the index; every reader here folds first. The number
    stored.

    A status is bound as plain text (``str``): :mod:`sqlite3` binds an exact ``str`` at
    once but looks a subclass such as :class:`~claynb.pipeline._work.Status` up among its
    adapters first, and that look-up was a quarter of inserting a run's answers.
    """
    answers = list(answers)
    hashes = key_hashes(routine, [key for key, _, _ in answers]).tolist()
    rows = [
        (h, routine, key, str(status), to_json(result), now, run_id)
        for h, (key, status, result) in zip(hashes, answers, strict=True)
    ]
    conn.executemany(f"INSERT INTO cache_answers ({_COPIED}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def inbox_size(conn: sqlite3.Connection) -> int:
    """About how many answers wait in the inbox (at least as many as do): see :data:`WAITING`."""
    (waiting,) = conn.execute(f"SELECT {WAITING}").fetchone()
    return max(int(waiting), 0)


def fold(conn: sqlite3.Connection) -> int:
    """Enter the inbox's answers in the cache's index, in one transaction (the caller's, if
    one is open); how many entered. Every reader here calls it first.

    In the order of their hashes, so each of the index's pages is read and written once
    however many answers fall on it; for one hash, in the order they landed, so the latest
    answer is the one kept (the index's trigger deletes the rows it replaces). No answer's
    row is copied or moved.
    """
    if inbox_size(conn) == 0:  # the usual case for a reader: nothing written, no lock taken
        return 0
    with nullcontext() if conn.in_transaction else immediate(conn):
        (folded,) = conn.execute("SELECT seq FROM cache_folded").fetchone()
        (last,) = conn.execute("SELECT max(seq) FROM cache_answers").fetchone()
        if last is None or last <= folded:  # another process folded them first
            return 0
        moved = conn.execute(
            "INSERT INTO cache (h, seq) SELECT h, seq FROM cache_answers WHERE seq > ? "
            "ORDER BY h, seq ON CONFLICT (h) DO UPDATE SET seq = excluded.seq",
            (folded,),
        ).rowcount
        conn.execute("UPDATE cache_folded SET seq = ?", (last,))
    return moved


def cache_clear(conn: sqlite3.Connection, routine: str | None = None) -> int:
    """Forget cached answers (of one routine, or all); the number forgotten. After a fold,
    every answer's row is the one its hash's index entry points at."""
    with nullcontext() if conn.in_transaction else immediate(conn):
        fold(conn)
        if routine is None:
            conn.execute("DELETE FROM cache_answers")
            forgotten = conn.execute("DELETE FROM cache").rowcount
        else:
            forgotten = conn.execute(
                "DELETE FROM cache WHERE h IN (SELECT h FROM cache_answers WHERE routine = ?)",
                (routine,),
            ).rowcount
            conn.execute("DELETE FROM cache_answers WHERE routine = ?", (routine,))
        # the last rows may be gone: what lands next must still come after the mark
        conn.execute(
            "UPDATE cache_folded SET seq = coalesce((SELECT max(seq) FROM cache_answers), 0)"
        )
    return forgotten


def failures_put(
    conn: sqlite3.Connection,
    routine: str,
    failed: Iterable[tuple[str, dict[str, Any], str | None, int]],
    *,
    now: float,
    run_id: str | None = None,
) -> None:
    """Add (key, inputs, error, attempts) to the dead-letter list, adding up attempts."""
    conn.executemany(
        "INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (routine, key) DO UPDATE SET error = excluded.error, "
        "attempts = failures.attempts + excluded.attempts, last_at = excluded.last_at, "
        "run_id = excluded.run_id",
        [
            (routine, key, to_json(inputs), error, attempts, now, now, run_id)
            for key, inputs, error, attempts in failed
        ],
    )


def failures_forget(conn: sqlite3.Connection, routine: str, keys: Sequence[str]) -> None:
    """Take items off the dead-letter list (they have an answer now)."""
    for chunk in _chunks(list(keys)):
        marks = ",".join("?" * len(chunk))
        conn.execute(
            f"DELETE FROM failures WHERE routine = ? AND key IN ({marks})", (routine, *chunk)
        )


def failures_get(
    conn: sqlite3.Connection, routine: str | None = None, keys: Sequence[str] | None = None
) -> list[Failure]:
    """The dead-letter list, for one routine and optionally some keys, oldest first."""
    sql = "SELECT * FROM failures"
    args: tuple[Any, ...] = ()
    if routine is not None:
        sql, args = sql + " WHERE routine = ?", (routine,)
    rows = [
        Failure(r, k, json.loads(i), e, a, f, la, run)
        for r, k, i, e, a, f, la, run in conn.execute(sql + " ORDER BY first_at", args)
    ]
    if keys is not None and rows:  # no set of a whole frame's keys for an empty list
        wanted = set(keys)
        rows = [f for f in rows if f.key in wanted]
    return rows
