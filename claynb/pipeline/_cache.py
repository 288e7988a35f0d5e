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
dead-letter list and the ledger in one transaction. The cache is a rowid table with a
unique index rather than a table keyed by (routine, key): its keys are hashes, so each
insert lands on a random page, and a small index entry rewrites far fewer pages than a
whole row would (tens of thousands of rows per call).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    routine TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL,
    result TEXT NOT NULL, fetched_at REAL NOT NULL, run_id TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS cache_key ON cache (routine, key);
CREATE TABLE IF NOT EXISTS failures (
    routine TEXT NOT NULL, key TEXT NOT NULL, inputs TEXT NOT NULL, error TEXT,
    attempts INTEGER NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL, run_id TEXT,
    PRIMARY KEY (routine, key)
) WITHOUT ROWID;
"""

# SQLite caps the number of host parameters per statement; stay well below it.
_CHUNK = 500


def to_json(value: Any) -> str:
    """An answer (or inputs) as JSON text, anything JSON cannot hold written as its text.
    orjson: a landed run writes 100 of these, in a seventh of :mod:`json`'s time."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


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
    """Cached answers found for some keys, as columns (``keys[i]`` answered
    ``statuses[i]`` with ``results[i]``, fetched at ``fetched_at[i]``; read with
    ``results=False``, only ``keys`` and ``results``, all None)."""

    keys: list[str]
    statuses: list[str]
    results: list[dict[str, Any] | None]
    fetched_at: list[float]


def cache_hits(
    conn: sqlite3.Connection,
    routine: str,
    keys: Sequence[str],
    *,
    max_age_s: float | None = None,
    now: float,
    results: bool = True,
) -> Hits:
    """Cached answers for these keys, leaving out those older than ``max_age_s``: one
    indexed query per chunk of keys, and one JSON parse per chunk. ``results=False`` reads
    only which keys are cached (their results are None): with no ``max_age_s`` that is
    the index alone, never the table."""
    ages: tuple[float, ...] = () if max_age_s is None else (now - max_age_s,)
    columns = "key, status, result, fetched_at" if results else "key"
    age = "" if max_age_s is None else "AND fetched_at >= ? "
    hits = Hits([], [], [], [])
    for chunk in _chunks(list(keys)):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {columns} FROM cache WHERE routine = ? {age}AND key IN ({marks})",
            (routine, *ages, *chunk),
        ).fetchall()
        if not rows:
            continue
        if not results:
            hits.keys.extend(key for (key,) in rows)
            continue
        found, statuses, texts, at = zip(*rows, strict=True)
        hits.keys.extend(found)
        hits.statuses.extend(statuses)
        # Each result is a JSON document: one parse of them all as an array is the same
        # objects for far fewer calls (a cached re-run reads every row of the frame).
        hits.results.extend(json.loads(f"[{','.join(texts)}]"))
        hits.fetched_at.extend(at)
    if not results:
        hits.results.extend([None] * len(hits.keys))
    return hits


def cache_get(
    conn: sqlite3.Connection,
    routine: str,
    keys: Sequence[str],
    *,
    max_age_s: float | None = None,
    now: float,
) -> dict[str, Cached]:
    """Cached answers for these keys (key -> :class:`Cached`), as :func:`cache_hits`."""
    hits = cache_hits(conn, routine, keys, max_age_s=max_age_s, now=now)
    return {
        key: Cached(status, result or {}, at)
        for key, status, result, at in zip(
            hits.keys, hits.statuses, hits.results, hits.fetched_at, strict=True
        )
    }


def cache_put(
    conn: sqlite3.Connection,
    routine: str,
    answers: Iterable[tuple[str, str, dict[str, Any]]],
    *,
    now: float,
    run_id: str | None = None,
) -> int:
    """Store (key, status, result) answers; a newer answer replaces an older one."""
    rows = [(routine, key, status, to_json(result), now, run_id) for key, status, result in answers]
    conn.executemany("INSERT OR REPLACE INTO cache VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def cache_clear(conn: sqlite3.Connection, routine: str | None = None) -> int:
    """Forget cached answers (of one routine, or all); the number forgotten."""
    if routine is None:
        return conn.execute("DELETE FROM cache").rowcount
    return conn.execute("DELETE FROM cache WHERE routine = ?", (routine,)).rowcount


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
    if keys is not None:
        wanted = set(keys)
        rows = [f for f in rows if f.key in wanted]
    return rows
