"""Several processes, one CLAYNB_HOME: no lead paid twice, no shared budget passed.

Each process is a real ``python`` child running ``claynb.enrich`` on its own frame against
one emulator (runs that take a while, so their sends overlap); they are started together
and some are killed with SIGKILL in the middle. The truth is the emulator's own per-lead
charges: no lead is charged twice, every credit a process reports is one the emulator
charged, and a named budget is met but never passed by one credit.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import claynb
from claynb.pipeline._claims import Claims
from claynb.pipeline._journal import FILENAME, Journal
from claynb.pipeline._work import item_key
from claynb.services._process import process_started

CHILD = r"""
import json, os, sys
import claynb
sys.path.insert(0, os.environ["CLAIMS_TEST_DIR"])
from test_shared_home import frame
df = frame(int(os.environ["ROWS_FROM"]), int(os.environ["ROWS_TO"]))
client = claynb.ClayClient(api_key=os.environ["EMU_KEY"], base_url=os.environ["EMU_URL"])
budget = claynb.Budget(name=os.environ["BUDGET"]) if os.environ.get("BUDGET") else None
print("ready", flush=True)
sys.stdin.readline()
options = json.loads(os.environ["ENRICH_OPTIONS"])
out = claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, budget=budget,
                    progress=False, batch_size=10, **options)
print(json.dumps({"status": out["clay_status"].tolist(),
                  "credits": float(out["clay_data_credits"].sum())}), flush=True)
"""

ANSWERED = {"enriched", "no_match", "cached"}
#: Seconds a process may take on a loaded machine: generous, only a guard against a hang.
PROCESS_TIMEOUT_S = 240


def frame(start: int, stop: int) -> pd.DataFrame:
    """Rows ``start`` to ``stop`` of one list of leads: overlapping ranges share leads."""
    return pd.DataFrame(
        {"Email": [f"lead{i}.person@claims{i % 13}.com" for i in range(start, stop)]}
    )


def keys(start: int, stop: int) -> set[str]:
    return {item_key("enrich-person", {"email": e}) for e in frame(start, stop)["Email"]}


def spawn(
    emu: Any, rows: tuple[int, int], budget: str | None = None, **options: Any
) -> subprocess.Popen[str]:
    """A child enriching ``rows`` (``options`` go to enrich; default: the direct tier, three
    runs at once); it imports everything, says "ready", and waits for "go" on stdin."""
    env = dict(
        os.environ,
        EMU_URL=emu.url,
        EMU_KEY=emu.api_key,
        CLAIMS_TEST_DIR=str(Path(__file__).parent),
        ROWS_FROM=str(rows[0]),
        ROWS_TO=str(rows[1]),
        BUDGET=budget or "",
        ENRICH_OPTIONS=json.dumps(options or {"concurrency": 3}),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc


def go(*procs: subprocess.Popen[str]) -> None:
    """Let children go at once, each once it has imported everything (they start together)."""
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def outcome(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """What a child that was let run reported: its statuses and the credits it paid."""
    out, _ = proc.communicate(timeout=PROCESS_TIMEOUT_S)
    assert proc.returncode == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(PROCESS_TIMEOUT_S)
    assert proc.returncode == -signal.SIGKILL


@contextmanager
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Every child started in the block is gone after it, whatever the test did."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(PROCESS_TIMEOUT_S)


def charges(emu: Any) -> Counter[str]:
    """How many times the emulator charged each lead."""
    return Counter(c["inputs_key"] for c in emu.meters(charges=True)["charges"])


def assert_paid_once(emu: Any, wanted: set[str]) -> None:
    paid = charges(emu)
    assert [k for k, n in paid.items() if n > 1] == [], "a lead was charged twice"
    assert set(paid) <= wanted


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll the state file until ``check`` holds (it is written by another process)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def count(home: Path, sql: str) -> int:
    path = home / FILENAME
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:  # the tables are not made yet
            return 0


FRAMES = {
    "2 identical": [(0, 120), (0, 120)],
    "2 half-overlapping": [(0, 120), (60, 180)],
    "2 disjoint": [(0, 120), (120, 240)],
    "4 identical": [(0, 90)] * 4,
    "4 half-overlapping": [(0, 80), (40, 120), (80, 160), (120, 200)],
}


@pytest.mark.parametrize("ranges", list(FRAMES.values()), ids=list(FRAMES))
def test_processes_on_overlapping_frames_pay_each_lead_once(
    make_emulator: Any, ranges: Sequence[tuple[int, int]]
) -> None:
    emu = make_emulator(run_latency_s=(0.2, 0.6))
    with children() as procs:
        procs.extend(spawn(emu, rows) for rows in ranges)
        go(*procs)
        results = [outcome(proc) for proc in procs]

    wanted = set().union(*(keys(*rows) for rows in ranges))
    assert_paid_once(emu, wanted)
    for result, rows in zip(results, ranges, strict=True):
        assert len(result["status"]) == rows[1] - rows[0]
        assert set(result["status"]) <= ANSWERED
    # each process reports only what it paid: together, exactly what the emulator charged
    assert sum(r["credits"] for r in results) == emu.meters()["data_credits_used"]
    assert emu.meters()["per_routine"]["enrich-person"]["items"] == len(wanted)


def test_a_notebook_on_the_queue_tier_and_one_on_the_direct_tier_share_the_claims(
    make_emulator: Any, redis_url: str
) -> None:
    emu = make_emulator(run_latency_s=(0.3, 0.6))
    with children() as procs:
        procs.append(
            spawn(
                emu,
                (0, 80),
                backend="queue",
                redis_url=redis_url,
                queue=f"claims-{os.getpid()}",
                workers=1,
            )
        )
        procs.append(spawn(emu, (40, 120)))
        go(*procs)
        results = [outcome(proc) for proc in procs]

    assert_paid_once(emu, keys(0, 120))
    assert all(set(r["status"]) <= ANSWERED for r in results)
    assert sum(r["credits"] for r in results) == emu.meters()["data_credits_used"]


def test_a_notebook_on_the_event_tier_and_one_on_the_direct_tier_share_the_claims(
    make_emulator: Any,
) -> None:
    emu = make_emulator(run_latency_s=(0.3, 0.6))
    with children() as procs:  # the event tier starts its own bus, receiver and service
        procs.append(spawn(emu, (0, 60), backend="events", timeout=120))
        procs.append(spawn(emu, (30, 90)))
        go(*procs)
        results = [outcome(proc) for proc in procs]

    assert_paid_once(emu, keys(0, 90))
    assert all(set(r["status"]) <= ANSWERED for r in results)
    assert sum(r["credits"] for r in results) == emu.meters()["data_credits_used"]


def test_a_process_waits_for_a_live_claim_and_takes_its_answers(
    make_emulator: Any, claynb_home: Path
) -> None:
    emu = make_emulator(run_latency_s=1.0)
    with children() as procs:
        first = spawn(emu, (0, 60))
        procs.append(first)
        go(first)
        wait_until(lambda: count(claynb_home, "SELECT COUNT(*) FROM claims") == 60, "claims")
        second = spawn(emu, (0, 60))
        procs.append(second)
        go(second)
        results = [outcome(first), outcome(second)]

    assert_paid_once(emu, keys(0, 60))
    assert set(results[0]["status"]) <= {"enriched", "no_match"}
    assert results[1]["status"] == ["cached"] * 60 and results[1]["credits"] == 0


@pytest.mark.parametrize("waiting", [False, True], ids=["started after", "waiting"])
def test_a_killed_claimant_is_taken_over_through_the_resume_path(
    make_emulator: Any, claynb_home: Path, waiting: bool
) -> None:
    emu = make_emulator(run_latency_s=3.0)
    with children() as procs:
        victim, *others = (spawn(emu, rows) for rows in [(0, 120), (0, 120), (30, 90)])
        procs.extend([victim, *others])
        go(victim)
        wait_until(
            lambda: (
                count(claynb_home, "SELECT COUNT(*) FROM batches WHERE state = 'in_flight'") >= 3
            ),
            "runs in flight",
        )
        if waiting:  # both found every row claimed, ended their own claims, and wait
            go(*others)
            wait_until(
                lambda: count(claynb_home, "SELECT COALESCE(MAX(n), 0) FROM claims_ended") >= 2,
                "waiters",
            )
        kill(victim)
        if not waiting:
            go(*others)
        results = [outcome(proc) for proc in others]

    assert_paid_once(emu, keys(0, 120))
    for result in results:  # unknown: a send on the wire when it was killed, never re-sent
        assert set(result["status"]) <= ANSWERED | {"unknown"}
    with Journal.open() as journal:
        assert journal.in_flight("enrich-person") == []  # every run it started was collected
    assert count(claynb_home, "SELECT COUNT(*) FROM claims") == 0


def test_a_named_budget_is_met_never_passed_by_four_processes(
    make_emulator: Any, claynb_home: Path
) -> None:
    emu = make_emulator(run_latency_s=(0.1, 0.4))
    cap = 57
    budget = claynb.Budget(data_credits=cap, name="march-outbound")
    ranges = FRAMES["4 half-overlapping"]
    with children() as procs:
        procs.extend(spawn(emu, rows, budget="march-outbound") for rows in ranges)
        go(*procs)
        results = [outcome(proc) for proc in procs]

    used = emu.meters()["data_credits_used"]
    assert used <= cap
    assert budget.spent.data_credits == used
    for result in results:
        assert set(result["status"]) <= ANSWERED | {"over_budget"}
    # the rows they could not afford, once nobody holds money: the cap is met exactly
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    claynb.enrich(
        frame(0, 200),
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=budget,
        progress=False,
    )
    assert emu.meters()["data_credits_used"] == cap
    assert budget.spent.data_credits == cap and budget.reserved.data_credits == 0
    assert_paid_once(emu, keys(0, 200))


def test_a_named_budget_holds_when_a_process_is_killed(
    make_emulator: Any, claynb_home: Path
) -> None:
    emu = make_emulator(run_latency_s=(1.0, 1.5))
    cap = 40
    claynb.Budget(data_credits=cap, name="kill-me")
    with children() as procs:
        procs.extend(spawn(emu, rows, budget="kill-me") for rows in [(0, 100), (50, 150)])
        go(*procs)
        wait_until(
            lambda: (
                count(claynb_home, "SELECT COUNT(*) FROM batches WHERE state = 'in_flight'") >= 2
            ),
            "runs in flight",
        )
        kill(procs[0])
        survivor = outcome(procs[1])

    assert set(survivor["status"]) <= ANSWERED | {"over_budget", "unknown"}
    assert emu.meters()["data_credits_used"] <= cap
    assert_paid_once(emu, keys(0, 150))


def test_claynb_enrich_in_two_terminals_shares_claims_and_a_named_budget(
    make_emulator: Any, claynb_home: Path, tmp_path: Path
) -> None:
    emu = make_emulator(run_latency_s=(0.3, 0.6))
    env = {k: v for k, v in os.environ.items() if k != "CLAYNB_ALLOW_SPEND"}
    env.update(CLAY_BASE_URL=emu.url, CLAY_API_KEY=emu.api_key, CLAYNB_HOME=str(claynb_home))
    cap = 45
    terminals = []
    for n, rows in enumerate([(0, 100), (50, 150)]):
        source = tmp_path / f"leads-{n}.csv"
        frame(*rows).to_csv(source, index=False)
        terminals.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "claynb",
                    "enrich",
                    str(source),
                    "-r",
                    "enrich-person",
                    "-i",
                    "email=Email",
                    "--batch-size",
                    "10",
                    "--concurrency",
                    "3",
                    "-q",
                    "--budget-data-credits",
                    str(cap),
                    "--budget-name",
                    "two-terminals",
                ],  # fmt: skip
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in terminals:
        _, err = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        assert proc.returncode in (0, 1), err  # 1: some rows over the budget, file written

    assert emu.meters()["data_credits_used"] <= cap
    assert_paid_once(emu, keys(0, 150))
    assert (
        claynb.Budget(name="two-terminals").spent.data_credits == emu.meters()["data_credits_used"]
    )


def test_a_reused_pid_is_not_taken_for_the_claimant(claynb_home: Path) -> None:
    """A claim records pid, host and start time: a living process that was given the same
    pid later (here: this one, under another start time) does not keep the claim alive."""
    with Journal.open() as journal:
        ghost = Claims(journal, "enrich-person")
        assert ghost.take(["k1", "k2"]).mine == ["k1", "k2"]
        with journal.transaction() as conn:
            conn.execute(
                "UPDATE claimants SET started = 'another-boot:1' WHERE owner = ?", (ghost.owner,)
            )
        ghost.owner = None  # as if its process had died without releasing
        mine = Claims(journal, "enrich-person")
        assert mine.take(["k1", "k3"]).others == ["k1"]
        mine.release()
        mine.wait(["k1"])  # returns at once: the claimant is dead, its claims are freed
        assert mine.take(["k1"]).mine == ["k1"]
        mine.release()
    assert process_started(os.getpid()) is not None


def test_claims_on_a_frames_keys_split_mine_from_others(
    claynb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An enrich call claims its frame's keys as a ``KeyList`` (their text made a chunk at a
    time, sorted and written from their bytes): claimed across chunks, the same split as
    a list of the same keys, each key held by one call only, and released as one."""
    from claynb.pipeline import _claims
    from claynb.pipeline._keys import FrameKeys
    from claynb.pipeline._work import item_key

    monkeypatch.setattr(_claims, "_CLAIM_CHUNK", 3)
    keys = [item_key("enrich-person", {"email": f"p{i}@x.com"}) for i in range(10)]
    frame = FrameKeys.of_keys(keys)
    with Journal.open() as journal:
        first = Claims(journal, "enrich-person")
        held = frame.listed(np.array([8, 1, 4]))
        assert first.take(held).mine is held
        second = Claims(journal, "enrich-person")
        taken = second.take(frame.listed(np.arange(10)))
        assert list(taken.mine) == [keys[g] for g in (0, 2, 3, 5, 6, 7, 9)]
        assert list(taken.others) == [keys[1], keys[4], keys[8]]
        claimed = journal.read(lambda c: c.execute("SELECT key, owner FROM claims").fetchall())
        owners = dict(claimed)
        assert len(claimed) == 10 and sorted(owners) == sorted(keys)
        assert {owners[k] for k in held} == {first.owner}
        assert {owners[k] for k in taken.mine} == {second.owner}
        second.release()
        left = journal.read(lambda c: c.execute("SELECT key FROM claims").fetchall())
        assert sorted(k for (k,) in left) == sorted(held)
        first.release()


def test_named_budgets_redeclared_with_other_caps_refuse(claynb_home: Path) -> None:
    first = claynb.Budget(data_credits=500, name="march-outbound")
    assert "shared by every process" in repr(first)
    assert "unnamed: this object only" in repr(claynb.Budget(data_credits=500))
    assert claynb.Budget(data_credits=500, name="march-outbound").caps()["data_credits"] == 500
    with pytest.raises(claynb.ConfigError, match="set_caps"):
        claynb.Budget(data_credits=600, name="march-outbound")
    joined = claynb.Budget(name="march-outbound")
    joined.set_caps(data_credits=600)
    assert first.caps()["data_credits"] == 600 and first.remaining()["data_credits"] == 600
    with pytest.raises(claynb.ConfigError, match="no budget named"):
        claynb.Budget(name="never-declared")


def test_a_named_budget_in_redis_keeps_its_url_out_of_sight(redis_url: str) -> None:
    secret_url = redis_url  # may carry a password: it must never show
    budget = claynb.Budget(data_credits=3, name=f"redis-{os.getpid()}", redis=secret_url)
    other = claynb.Budget(name=f"redis-{os.getpid()}", redis=secret_url)
    guard = other.guard()
    assert guard.reserve(claynb.Cost(1, 2)) and not budget.guard().reserve(claynb.Cost(1, 2))
    guard.settle(claynb.Cost(1, 2), claynb.Cost(1, 1))
    assert budget.spent.data_credits == 1 and budget.remaining()["data_credits"] == 2
    assert secret_url not in repr(budget) and "redis://" not in repr(budget)


def test_claims_taken_a_chunk_at_a_time_split_mine_from_others(
    claynb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims go in a chunk of keys a statement: across chunks, the keys another live call
    holds are its, every other key is this call's, and releasing frees only this call's."""
    from claynb.pipeline import _claims

    monkeypatch.setattr(_claims, "_CLAIM_CHUNK", 2)
    keys = [f"k{i}" for i in range(7)]
    with Journal.open() as journal:
        first = Claims(journal, "enrich-person")
        assert first.take(["k1", "k4", "k5"]).mine == ["k1", "k4", "k5"]
        second = Claims(journal, "enrich-person")
        taken = second.take(keys)
        assert taken.mine == ["k0", "k2", "k3", "k6"] and taken.others == ["k1", "k4", "k5"]
        second.release()
        held = journal.read(lambda c: c.execute("SELECT key FROM claims ORDER BY key").fetchall())
        assert [k for (k,) in held] == ["k1", "k4", "k5"]
        first.release()
