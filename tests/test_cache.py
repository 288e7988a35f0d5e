"""The answer cache: a cached row costs nothing; max_age and refresh re-enrich."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb.pipeline._cache import Cached, cache_get, cache_put, max_age_seconds
from claynb.pipeline._journal import FILENAME

ROUTINE = DEFAULT_ROUTINES["enrich-person"]


def emails(n: int) -> list[str]:
    return [f"c{i}.d{i}@cache{i % 5}.com" for i in range(n)]


@pytest.fixture
def client(emulator: Any) -> claynb.ClayClient:
    return claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)


def sent(emu: Any) -> int:
    return emu.meters(charges=False)["per_routine"].get("enrich-person", {}).get("items", 0)


def enrich(df: pd.DataFrame, client: Any, **kw: Any) -> pd.DataFrame:
    return claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, **kw
    )


def test_second_call_is_served_from_the_cache_at_no_cost(emulator: Any, client: Any) -> None:
    df = pd.DataFrame({"Email": emails(40)})
    first = enrich(df, client)
    meters = emulator.meters(charges=False)
    second = enrich(df, client)
    assert emulator.meters(charges=False)["data_credits_used"] == meters["data_credits_used"]
    assert sent(emulator) == 40
    assert (second["clay_status"] == "cached").all()
    assert second["clay_actions"].sum() == 0 and second["clay_data_credits"].sum() == 0
    fields = [
        c
        for c in first.columns
        if c.startswith("clay_")
        and c
        not in (
            "clay_status",
            "clay_error",
            "clay_actions",
            "clay_data_credits",
            "clay_cost_source",
        )
    ]
    pd.testing.assert_frame_equal(first[fields], second[fields])


def test_no_match_is_an_answer_and_is_cached(emulator: Any, client: Any) -> None:
    misses = [e for e in emails(60) if run_item(ROUTINE, {"email": e}).status == "no_match"][:3]
    df = pd.DataFrame({"Email": misses})
    assert (enrich(df, client)["clay_status"] == "no_match").all()
    again = enrich(df, client)
    assert (again["clay_status"] == "cached").all() and again["clay_full_name"].isna().all()
    assert sent(emulator) == 3


def test_cache_is_keyed_by_normalised_inputs(emulator: Any, client: Any) -> None:
    enrich(pd.DataFrame({"Email": ["ada.lovelace@acme.com"]}), client)
    out = enrich(pd.DataFrame({"Email": ["  ADA.Lovelace@Acme.COM "]}), client)
    assert out["clay_status"].tolist() == ["cached"] and sent(emulator) == 1


def test_max_age_re_enriches_only_older_answers(
    emulator: Any, client: Any, claynb_home: Path
) -> None:
    df = pd.DataFrame({"Email": emails(10)})
    enrich(df, client)
    with sqlite3.connect(claynb_home / FILENAME) as db:  # age three answers by two days
        old = db.execute("SELECT key FROM cache_answers ORDER BY key LIMIT 3").fetchall()
        db.executemany(
            "UPDATE cache_answers SET fetched_at = fetched_at - 172800 WHERE key = ?", old
        )
    out = enrich(df, client, max_age=timedelta(days=1))
    assert (out["clay_status"] != "cached").sum() == 3 and sent(emulator) == 13
    assert (enrich(df, client, max_age=3600)["clay_status"] == "cached").all()


def test_refresh_and_cache_false_send_again(emulator: Any, client: Any) -> None:
    df = pd.DataFrame({"Email": emails(5)})
    enrich(df, client)
    assert (enrich(df, client, refresh=True)["clay_status"] != "cached").all()
    assert (enrich(df, client, cache=False)["clay_status"] != "cached").all()
    assert sent(emulator) == 15
    assert (enrich(df, client)["clay_status"] == "cached").all()


def test_cache_functions_directly(tmp_path: Path) -> None:
    from claynb.pipeline._journal import Journal

    with Journal(tmp_path / "s.sqlite") as journal:
        with journal.transaction() as conn:
            cache_put(conn, "r", [("k1", "enriched", {"a": 1}), ("k2", "no_match", {})], now=1000.0)
        got = journal.read(lambda c: cache_get(c, "r", ["k1", "k2", "k3"], now=1500.0))
        assert set(got) == {"k1", "k2"} and got["k1"].result == {"a": 1}
        assert journal.read(lambda c: cache_get(c, "r", ["k1"], max_age_s=100, now=1500.0)) == {}
        assert journal.read(lambda c: cache_get(c, "other", ["k1"], now=1500.0)) == {}
    assert max_age_seconds(timedelta(minutes=2)) == 120 and max_age_seconds(None) is None
    with pytest.raises(ValueError):
        max_age_seconds(-1)


@pytest.mark.parametrize(
    "inputs",
    [
        {"email": "ada@acme.com"},
        {"email": "zoë@example.de", "domain": None},
        {"full_name": 'Ada "the count" \\ Lovelace', "domain": "acme.com"},
        {"full_name": "中文 \u2028 line\tbreak\x00", "email": "a@b.co"},
        {"email": ""},
        {"count": 3, "email": "a@b.co"},  # not text: the general path
    ],
)
def test_item_keys_are_the_hash_of_the_canonical_json(inputs: dict[str, Any]) -> None:
    """The fast path writes the JSON itself; a key must never change, or the cache and
    every journaled run would be forgotten."""
    import hashlib
    import json

    from claynb.pipeline._work import item_key

    for routine in ("enrich-person", 'function:t_"odd"'):
        blob = json.dumps([routine, inputs], sort_keys=True, separators=(",", ":"))
        assert item_key(routine, inputs) == hashlib.sha256(blob.encode()).hexdigest()[:32]


def test_item_keys_of_columns_are_each_rows_item_key() -> None:
    """prepare builds keys column by column: the same keys as one row at a time."""
    from claynb.pipeline._work import item_key, item_keys

    columns = {"full_name": ["Ada", None, 'O"Neil', "Ada"], "domain": ["a.com", "b.io", None, None]}
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    assert item_keys("find-work-email", columns) == [item_key("find-work-email", r) for r in rows]
    assert item_keys("r", {"email": []}) == []


def test_item_keys_past_one_hashing_chunk_are_each_rows_item_key() -> None:
    """item_keys hashes a chunk of rows at a time: rows on both sides of a chunk's edge
    get their own key, in order."""
    from claynb.pipeline._work import _HASH_CHUNK, item_key, item_keys

    emails = [f"p{i}@x.io" for i in range(_HASH_CHUNK * 2 + 3)]
    keys = item_keys("enrich-person", {"email": emails})
    assert len(keys) == len(emails)
    for i in (0, _HASH_CHUNK - 1, _HASH_CHUNK, _HASH_CHUNK * 2, len(emails) - 1):
        assert keys[i] == item_key("enrich-person", {"email": emails[i]})


def test_cache_hits_read_only_which_keys_are_cached_when_asked(tmp_path: Path) -> None:
    """estimate reads which keys are cached, not their answers; max_age still applies."""
    from claynb.pipeline._cache import cache_hits
    from claynb.pipeline._journal import Journal

    with Journal(tmp_path / "s.sqlite") as journal:
        with journal.transaction() as conn:
            cache_put(conn, "r", [("old", "enriched", {"a": 1})], now=1000.0)
            cache_put(conn, "r", [("new", "no_match", {})], now=1450.0)
        keys = ["old", "new", "none"]
        full = journal.read(lambda c: cache_hits(c, "r", keys, now=1500.0))
        assert full.fields is not None and full.fields.table is not None
        found = dict(zip(full.at.tolist(), full.fields.table.column("a").to_pylist(), strict=True))
        assert found == {0: 1, 1: None}
        bare = journal.read(lambda c: cache_hits(c, "r", keys, now=1500.0, results=False))
        assert sorted(bare.at.tolist()) == [0, 1] and bare.fields is None
        young = journal.read(
            lambda c: cache_hits(c, "r", keys, max_age_s=100, now=1500.0, results=False)
        )
        assert young.at.tolist() == [1]


def test_cache_hits_in_chunks_find_what_one_look_up_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys are hashed and looked up a chunk at a time (``_BULK``): hits on both sides
    of a chunk's border come back at their places; an empty cache finds nothing."""
    from claynb.pipeline import _cache
    from claynb.pipeline._journal import Journal

    keys = [f"k{i}" for i in range(11)]
    cached = {i: f"answer {i}" for i in (0, 2, 3, 5, 6, 10)}
    with Journal(tmp_path / "s.sqlite") as journal:
        for results in (True, False):
            empty = journal.read(
                lambda c, r=results: _cache.cache_hits(c, "r", keys, now=2.0, results=r)
            )
            assert empty.at.tolist() == [] and (empty.fields is None) is not results
        with journal.transaction() as conn:
            cache_put(
                conn, "r", [(keys[i], "enriched", {"v": v}) for i, v in cached.items()], now=1.0
            )
        whole = journal.read(lambda c: _cache.cache_hits(c, "r", keys, now=2.0))
        monkeypatch.setattr(_cache, "_BULK", 3)
        chunked = journal.read(lambda c: _cache.cache_hits(c, "r", keys, now=2.0))
    for hits in (whole, chunked):
        assert hits.fields is not None and hits.fields.table is not None
        got = dict(zip(hits.at.tolist(), hits.fields.table.column("v").to_pylist(), strict=True))
        assert got == cached


def test_cache_keys_are_integers_checked_against_the_full_key(tmp_path: Path) -> None:
    """The INTEGER key mixes in the routine, reads item keys' own bits, and a look-up
    whose 64 bits match another key's row is a miss, never that row's answer."""
    from claynb.pipeline._cache import cache_hits, key_hashes
    from claynb.pipeline._journal import Journal
    from claynb.pipeline._work import item_key

    keys = [item_key("r", {"email": f"p{i}@x.io"}) for i in range(5)] + ["odd key", "k"]
    one_by_one = [int(key_hashes("r", [k])[0]) for k in keys]
    assert key_hashes("r", keys).tolist() == one_by_one  # the bulk path is the same hash
    assert key_hashes("other", keys[:1]).tolist() != one_by_one[:1]
    with Journal(tmp_path / "s.sqlite") as journal:
        with journal.transaction() as conn:
            cache_put(conn, "r", [(k, "enriched", {"n": i}) for i, k in enumerate(keys)], now=1.0)
            # A key sharing the first one's 64 bits (as a collision would): a miss.
            twin = keys[0][:16] + ("0" if keys[0][16] != "0" else "1") + keys[0][17:]
        hits = journal.read(lambda c: cache_hits(c, "r", [twin, *keys], now=2.0))
        assert hits.fields is not None and hits.fields.table is not None
        got = dict(zip(hits.at.tolist(), hits.fields.table.column("n").to_pylist(), strict=True))
        assert got == {i + 1: i for i in range(len(keys))}
        assert journal.read(lambda c: cache_get(c, "r", [twin], now=2.0)) == {}


def test_answers_arrow_cannot_hold_exactly_are_read_as_dicts(tmp_path: Path) -> None:
    """A field whose type changes from answer to answer, or that holds nested values, is
    read back as stored (the columnar read would change it)."""
    from claynb.pipeline._cache import cache_hits
    from claynb.pipeline._journal import Journal

    mixed = [("a", "enriched", {"score": 1}), ("b", "enriched", {"score": "high"})]
    nested = [("c", "enriched", {"address": {"city": "Oslo"}, "tags": ["x"]})]
    with Journal(tmp_path / "s.sqlite") as journal:
        with journal.transaction() as conn:
            cache_put(conn, "r", mixed + nested, now=1.0)
        for keys, want in (
            (["a", "b"], [{"score": 1}, {"score": "high"}]),
            (["c"], [nested[0][2]]),
        ):
            hits = journal.read(lambda c, keys=keys: cache_hits(c, "r", keys, now=2.0))
            assert hits.fields is not None and hits.fields.dicts is not None
            got = dict(zip(hits.at.tolist(), hits.fields.dicts, strict=True))
            assert [got[i] for i in range(len(keys))] == want


def test_a_cache_written_by_an_older_claynb_is_migrated(tmp_path: Path) -> None:
    """State files from before the INTEGER key (a TEXT unique index on routine and key)
    keep every answer, under the same keys, and are read the new way."""
    from claynb.pipeline._journal import Journal
    from claynb.pipeline._work import item_key

    path = tmp_path / "old.sqlite"
    keys = [item_key("enrich-person", {"email": f"p{i}@x.io"}) for i in range(3)]
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE cache (routine TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT "
            "NULL, result TEXT NOT NULL, fetched_at REAL NOT NULL, run_id TEXT);"
            "CREATE UNIQUE INDEX cache_key ON cache (routine, key);"
        )
        db.executemany(
            "INSERT INTO cache VALUES ('enrich-person', ?, 'enriched', ?, 5.0, 'run-1')",
            [(k, f'{{"full_name": "P {i}"}}') for i, k in enumerate(keys)],
        )
        db.execute("INSERT INTO cache VALUES ('r', 'k1', 'no_match', '{}', 6.0, NULL)")
    for _ in range(2):  # a second open finds it migrated
        with Journal(path) as journal:
            got = journal.cached("enrich-person", keys)
            assert {k: c.result["full_name"] for k, c in got.items()} == {
                k: f"P {i}" for i, k in enumerate(keys)
            }
            assert journal.cached("r", ["k1"])["k1"] == Cached("no_match", {}, 6.0)
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(cache)")]
        indexes = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert columns[0] == "h" and ("cache_key",) not in indexes


def test_a_cache_of_whole_rows_keyed_by_hash_with_its_inbox_is_migrated(tmp_path: Path) -> None:
    """State files from before the cache's index (whole rows keyed by the hash ``h``, and an
    inbox of answers not yet folded) keep every answer under the same key, the inbox's
    answers still the latest, and are read the new way."""
    from claynb.pipeline._cache import key_hashes
    from claynb.pipeline._journal import Journal
    from claynb.pipeline._work import item_key

    path = tmp_path / "before-index.sqlite"
    keys = [item_key("enrich-person", {"email": f"p{i}@x.io"}) for i in range(4)]
    hashes = key_hashes("enrich-person", keys).tolist()
    columns = "routine TEXT NOT NULL, key TEXT NOT NULL, status TEXT NOT NULL, " + (
        "result TEXT NOT NULL, fetched_at REAL NOT NULL, run_id TEXT"
    )
    with sqlite3.connect(path) as db:
        db.executescript(
            f"CREATE TABLE cache (h INTEGER PRIMARY KEY, {columns});"
            f"CREATE TABLE cache_inbox (seq INTEGER PRIMARY KEY, h INTEGER NOT NULL, {columns});"
        )
        db.executemany(  # three answers folded, then a newer one for p0 and one for p3
            "INSERT INTO cache VALUES (?, 'enrich-person', ?, 'enriched', ?, 5.0, 'run-1')",
            [(hashes[i], keys[i], f'{{"full_name": "P {i}"}}') for i in range(3)],
        )
        db.executemany(
            "INSERT INTO cache_inbox (h, routine, key, status, result, fetched_at, run_id) "
            "VALUES (?, 'enrich-person', ?, ?, ?, 7.0, 'run-2')",
            [
                (hashes[0], keys[0], "enriched", '{"full_name": "P 0 again"}'),
                (hashes[3], keys[3], "no_match", "{}"),
            ],
        )
    for _ in range(2):  # a second open finds it migrated
        with Journal(path) as journal:
            got = journal.cached("enrich-person", keys)
            assert {k: (c.status, c.result, c.fetched_at) for k, c in got.items()} == {
                keys[0]: ("enriched", {"full_name": "P 0 again"}, 7.0),
                keys[1]: ("enriched", {"full_name": "P 1"}, 5.0),
                keys[2]: ("enriched", {"full_name": "P 2"}, 5.0),
                keys[3]: ("no_match", {}, 7.0),
            }
            hits = journal.cache_hits("enrich-person", keys)
            assert sorted(hits.at.tolist()) == [0, 1, 2, 3]
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        index = [row[1] for row in db.execute("PRAGMA table_info(cache)")]
        rows = db.execute("SELECT count(*) FROM cache_answers").fetchone()[0]
    assert "cache_inbox" not in tables and index == ["h", "seq"] and rows == 4


def _fold_frames(home: Path, cached: int, landed: int) -> int:
    """Pages a fold writes (frames of the write-ahead log) entering ``landed`` answers into
    a cache that holds ``cached`` others, each answer about a kilobyte."""
    from claynb.pipeline._journal import Journal

    def answers(tag: str, n: int) -> list[tuple[str, str, dict[str, str]]]:
        return [(f"{tag}-{i}", "enriched", {"bio": f"{tag} {i} " + "x" * 1000}) for i in range(n)]

    with Journal(home / FILENAME) as journal:
        with journal.transaction() as conn:
            cache_put(conn, "r", answers("old", cached), now=1.0)
        journal.fold()
        with journal.transaction() as conn:
            cache_put(conn, "r", answers("new", landed), now=2.0)
        journal.read(lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        assert (home / f"{FILENAME}-wal").stat().st_size == 0
        assert journal.fold() == landed
        (page,) = journal.read(lambda c: c.execute("PRAGMA page_size").fetchone())
        wal = (home / f"{FILENAME}-wal").stat().st_size
    return (wal - 32) // (page + 24)  # the log's header, then a header and a page a frame


def test_a_fold_writes_index_pages_not_the_cached_answers(tmp_path: Path) -> None:
    """A fold enters hashes in the cache's index (some 20 bytes an entry): the pages it
    writes do not grow with the answers already cached (here a kilobyte each), which it
    leaves where they are."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    into_small = _fold_frames(small, 500, 500)
    into_large = _fold_frames(large, 5_000, 500)
    with sqlite3.connect(large / FILENAME) as db:
        (answer_pages,) = db.execute("PRAGMA page_count").fetchone()
    assert 0 < into_small <= into_large <= into_small + 12
    assert into_large * 20 < answer_pages  # rewriting the cached answers would be 5 MB
