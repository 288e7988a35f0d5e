"""The cache's inbox: landed answers are appended, then folded into the cache, and no reader,
in this process or another, ever misses one (not after a kill -9 either)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from claynb._routines import Cost
from claynb.pipeline import _journal
from claynb.pipeline._cache import cache_clear, inbox_size
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import CostSource, ItemResult, Status

ROUTINE = "enrich-person"

#: Runs in a child process: lands one run of ``n`` answers (keys ``<tag>-<i>``), says so on
#: stdout, then waits to be killed, its journal never closed (so never folded by it).
_LAND_THEN_WAIT = """
import sys, time
from claynb._routines import Cost
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import ItemResult, Status
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
journal = Journal(path)
keys = [f"{tag}-{i}" for i in range(n)]
batch = journal.intent("enrich-person", "direct", {k: {} for k in keys})
journal.started(batch, f"run-{tag}")
journal.finished(
    f"run-{tag}", [ItemResult(k, Status.ENRICHED, {"n": i}, cost=Cost(1, 0)) for i, k in enumerate(keys)]
)
print("landed", flush=True)
time.sleep(600)
"""


def _land_and_kill(path: Path, tag: str, n: int) -> list[str]:
    """A child process lands a run, then is killed with SIGKILL; the run's keys."""
    child = subprocess.Popen(
        [sys.executable, "-c", _LAND_THEN_WAIT, str(path), tag, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "landed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    assert child.returncode == -signal.SIGKILL
    return [f"{tag}-{i}" for i in range(n)]


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _waiting(path: Path) -> int:
    """Answers landed and not yet entered in the cache's index (the inbox)."""
    with sqlite3.connect(path) as db:
        return inbox_size(db)


def _land(journal: Journal, run_id: str, answers: dict[str, dict[str, int]]) -> None:
    journal.started(journal.intent(ROUTINE, "direct", {k: {} for k in answers}), run_id)
    journal.finished(
        run_id,
        [
            ItemResult(k, Status.ENRICHED, v, cost=Cost(1, 0), cost_source=CostSource.METERED)
            for k, v in answers.items()
        ],
    )


def test_a_run_landed_before_a_kill_9_is_answered_here_and_at_the_next_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claynb.sqlite"
    with Journal(path) as already_open:  # open before the other process lands anything
        keys = _land_and_kill(path, "a", 150)
        assert _waiting(path) == 150  # landed, and never folded by its process
        hits = already_open.cache_hits(ROUTINE, keys)
        assert sorted(hits.at.tolist()) == list(range(150))
        assert _waiting(path) == 0 and _count(path, "cache") == 150
    later = _land_and_kill(path, "b", 120)
    assert _waiting(path) == 120
    with Journal(path) as reopened:
        assert _waiting(path) == 0  # folded as it opened
        assert set(reopened.cached(ROUTINE, keys + later)) == set(keys + later)
        [charge_a, charge_b] = sorted(
            reopened.read(lambda c: c.execute("SELECT run_id, rows FROM charges").fetchall())
        )
        assert charge_a == ("run-a", 150) and charge_b == ("run-b", 120)


def test_the_latest_answer_for_a_key_is_the_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "claynb.sqlite"
    with Journal(path) as journal:
        _land(journal, "run-1", {"k": {"v": 1}, "j": {"v": 1}})
        _land(journal, "run-2", {"k": {"v": 2}})  # both answers for k wait in the inbox
        assert _waiting(path) == 3
        assert journal.cached(ROUTINE, ["k", "j"])["k"].result == {"v": 2}
        _land(journal, "run-3", {"k": {"v": 3}})  # and now one in the cache, one in the inbox
        got = journal.cached(ROUTINE, ["k", "j"])
        assert (got["k"].result, got["j"].result) == ({"v": 3}, {"v": 1})
    assert _count(path, "cache") == 2 == _count(path, "cache_answers")  # replaced rows gone


def test_closing_folds_and_a_landing_past_fold_rows_folds_in_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "claynb.sqlite"
    monkeypatch.setattr(_journal, "FOLD_ROWS", 150)
    with Journal(path) as journal:
        _land(journal, "run-1", {f"a{i}": {"i": i} for i in range(100)})
        assert (_waiting(path), _count(path, "cache")) == (100, 0)
        _land(journal, "run-2", {f"b{i}": {"i": i} for i in range(100)})  # 200 >= 150
        assert (_waiting(path), _count(path, "cache")) == (0, 200)
        _land(journal, "run-3", {"c": {"i": 0}})
        assert _waiting(path) == 1
    assert (_waiting(path), _count(path, "cache")) == (0, 201)


def test_clearing_the_cache_clears_answers_still_in_the_inbox(tmp_path: Path) -> None:
    with Journal(tmp_path / "claynb.sqlite") as journal:
        _land(journal, "run-1", {"k": {"v": 1}})
        with journal.transaction() as conn:
            assert cache_clear(conn, ROUTINE) == 1
        assert journal.cached(ROUTINE, ["k"]) == {}
