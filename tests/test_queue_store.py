"""The queue batch's journal in Redis: its states are an enum, its moves one table, in Lua too."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

import claynb
from claynb._routines import DEFAULT_ROUTINES, Cost
from claynb._states import IllegalTransition
from claynb.queue import RedisBudgetGuard
from claynb.queue import _store as store_module
from claynb.queue._jobs import WorkerSettings, process
from claynb.queue._store import (
    _BEGIN_SEND,
    _EMIT,
    _GIVE_UP,
    _MOVE,
    _RESERVE,
    BATCH_MOVES,
    DONE,
    FAILED,
    NEW,
    RESERVED,
    SENDING,
    SENT,
    Batch,
    BatchState,
    BatchStore,
    Lead,
    scaled,
)

PERSON = DEFAULT_ROUTINES["enrich-person"]


def new_batch(store: BatchStore, budget: str = "") -> Batch:
    leads = [Lead(f"lead-{i}", f"key-{i}", {"email": f"p{i}@x.co"}) for i in range(3)]
    batch = Batch(f"b-{uuid.uuid4().hex[:8]}", "q", PERSON, leads, budget=budget)
    assert store.create(batch)
    return batch


def test_states_are_written_once_and_the_lua_scripts_take_them_from_the_enum() -> None:
    source = Path(store_module.__file__).read_text()
    enum_block = source[source.index("class BatchState") : source.index("NEW, RESERVED")]
    elsewhere = source.replace(enum_block, "")
    for state in BatchState:
        assert not re.search(rf"""['"]{state.value}['"]""", elsewhere), state
    assert "'reserved'" in _BEGIN_SEND and "'sending'" in _BEGIN_SEND  # written in
    for script in (_RESERVE, _BEGIN_SEND, _GIVE_UP, _MOVE, _EMIT):
        assert "$" not in script  # every placeholder filled


def test_a_batch_walks_the_table_and_illegal_moves_raise(redis_url: str) -> None:
    store = BatchStore(redis.Redis.from_url(redis_url))
    guard = RedisBudgetGuard(store.conn, f"b{uuid.uuid4().hex[:8]}", data_credits=10)
    batch = new_batch(store, budget=guard.name)
    per = scaled(Cost(1, 1), 0.0)
    with pytest.raises(IllegalTransition):
        store.emit(batch, guard.key, [], [0, 0, 0])  # new -> done: nothing was reserved
    with pytest.raises(IllegalTransition):
        store.move(batch.id, SENDING, SENT, run_id="r1")  # it is not being sent
    assert store.reserve(batch, guard.key, ["key-0", "key-1", "key-2"], per) == 3
    assert guard.status().held["data_credits"] == 3
    assert store.begin_send(batch.id) and not store.begin_send(batch.id)  # exactly one sender
    store.move(batch.id, SENDING, RESERVED)  # refused by Clay: kept for RQ's retry
    assert guard.status().held["data_credits"] == 3
    assert store.begin_send(batch.id)
    assert store.give_up(batch, guard.key, "not sent after 6 attempt(s)")  # the money back
    assert guard.status().held["data_credits"] == 0
    assert not store.give_up(batch, guard.key, "again")  # nothing to give back twice
    failed = store.load(batch.id)
    assert failed is not None and (failed.state, failed.error) == (
        FAILED,
        "not sent after 6 attempt(s)",
    )
    store.count_posts(batch.id, 6)
    store.requeue(batch.id)  # a person: the outage is over
    again = store.load(batch.id)
    assert again is not None and (again.state, again.posts, again.error) == (NEW, 0, None)
    store.reserve(batch, guard.key, ["key-0"], per)
    store.begin_send(batch.id)
    store.move(batch.id, SENDING, SENT, run_id="r1")
    assert store.emit(batch, guard.key, [], scaled(Cost(1, 1), 0.0))
    assert not store.emit(batch, guard.key, [], scaled(Cost(1, 1), 0.0))  # reported once
    assert guard.status().spent["data_credits"] == 1 and guard.status().held["data_credits"] == 0
    assert store.load(batch.id).state == DONE  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition):
        store.move(batch.id, SENT, DONE)  # done is final, and only emit gets there


def test_the_table() -> None:
    assert BATCH_MOVES.sources(DONE) == {RESERVED, SENDING, SENT}
    assert not BATCH_MOVES.allows(NEW, SENDING)  # never sent without money held
    assert not BATCH_MOVES.allows(SENT, SENDING)  # never sent twice


def test_a_refused_send_keeps_its_reservation_for_the_retry_and_releases_it_once(
    redis_url: str, make_emulator: Any
) -> None:
    """A 402 with RQ retries left: the retry sends on the same reservation, which is
    settled once (it used to be released at the 402 and again when the retry landed)."""
    emu = make_emulator()
    emu.set_credits(actions_left=0, data_credits_left=0)
    store = BatchStore(redis.Redis.from_url(redis_url))
    guard = RedisBudgetGuard(store.conn, f"b{uuid.uuid4().hex[:8]}", data_credits=10)
    batch = new_batch(store, budget=guard.name)
    settings = WorkerSettings(api_key=emu.api_key, base_url=emu.url, poll_interval_s=0.01)
    with pytest.raises(claynb.CreditsExhausted):
        process(store, batch, settings, final_attempt=False)
    assert store.load(batch.id).state == RESERVED  # type: ignore[union-attr]
    assert guard.status().held["data_credits"] == 3  # kept for the retry
    emu.top_up(actions=100, data_credits=100)
    process(store, store.load(batch.id), settings, final_attempt=True)  # type: ignore[arg-type]
    status = guard.status()
    assert status.held["data_credits"] == 0
    assert status.spent["data_credits"] == emu.meters()["data_credits_used"]
