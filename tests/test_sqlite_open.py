"""Several processes opening one fresh state file at the same moment all get it.

Switching a new SQLite file to WAL takes an exclusive lock, and SQLite answers another
process doing it at that moment with "database is locked" at once (no busy wait): two
processes sharing a fresh CLAYNB_HOME failed so in a CI run. Real processes, a real file.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from claynb._sqlite import connect_wal
from claynb.pipeline._journal import Journal

PROCESSES = 6
ROUNDS = 60  # a plain open failed about one round in seven here


def _open(path: str, start: object, results: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    try:
        with Journal(path):
            pass
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_processes_opening_a_fresh_journal_together_all_get_it(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")  # started at once, so they race for the switch
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"claynb-{round_}.sqlite")
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, start, results)) for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        start.set()
        answers = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert answers == ["ok"] * PROCESSES, answers


def test_a_wal_connection_is_in_wal_mode_and_autocommits(tmp_path: Path) -> None:
    conn = connect_wal(tmp_path / "x.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.isolation_level is None
    conn.close()


def test_a_new_file_gets_the_page_size_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """New state files get pages of PAGE_SIZE (fewer, larger frames in the write-ahead
    log); a file made with SQLite's default keeps its pages and its rows."""
    from claynb._sqlite import PAGE_SIZE

    with Journal(tmp_path / "new.sqlite") as journal:
        assert journal.read(lambda c: c.execute("PRAGMA page_size").fetchone()[0]) == PAGE_SIZE
    old = tmp_path / "old.sqlite"
    made = sqlite3.connect(old)
    with made:
        made.execute("CREATE TABLE t (x)")
        made.execute("INSERT INTO t VALUES (1)")
    made.close()
    conn = connect_wal(old)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096 != PAGE_SIZE
    assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
