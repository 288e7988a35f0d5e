"""The shared budget: atomic across processes, and never crossed by real workers."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from typing import Any

import redis

from claynb import Cost
from claynb.queue import JobOptions, LeadQueue, RedisBudgetGuard, WorkerPool
from claynb.queue._demo import synthetic_leads


def _hammer(url: str, name: str, n: int, out: Any) -> None:
    guard = RedisBudgetGuard(redis.Redis.from_url(url), name)
    got = 0
    for _ in range(n):
        if guard.reserve(Cost(1, 0.5)):
            got += 1
            guard.settle(Cost(1, 0.5), Cost(1, 0.5))
    out.put(got)


def test_reservations_from_many_processes_stop_exactly_at_the_cap(redis_url: str) -> None:
    name = uuid.uuid4().hex
    guard = RedisBudgetGuard(redis.Redis.from_url(redis_url), name, data_credits=100.5)
    out: Any = mp.get_context("fork").Queue()
    procs = [
        mp.get_context("fork").Process(target=_hammer, args=(redis_url, name, 150, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    won = sum(out.get(timeout=60) for _ in procs)
    status = guard.status()
    assert won == 201  # 201 x 0.5 = 100.5: the cap met exactly, never crossed
    assert status.spent["data_credits"] == 100.5
    assert status.held["data_credits"] == 0
    assert status.left("data_credits") == 0


def test_guard_settles_and_releases(redis_url: str) -> None:
    guard = RedisBudgetGuard(redis.Redis.from_url(redis_url), uuid.uuid4().hex, actions=3, usd=1000)
    assert guard.reserve(Cost(2, 10))
    assert not guard.reserve(Cost(2, 0))
    guard.settle(Cost(2, 10), Cost(1, 3))
    assert guard.reserve(Cost(2, 0))
    guard.release(Cost(2, 0))
    status = guard.status()
    assert status.spent == {"actions": 1.0, "data_credits": 3.0, "usd": status.spent["usd"]}
    assert status.spent["usd"] > 0
    assert status.held["actions"] == 0
    guard.set_limits(actions=10)
    assert guard.reserve(Cost(9, 0))
    assert "name=" in repr(guard)


def test_four_workers_never_cross_the_budget(redis_url: str, make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0.05)
    conn = redis.Redis.from_url(redis_url)
    queue, budget = f"q-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    cap = 37
    guard = RedisBudgetGuard(conn, budget, data_credits=cap)
    lq = LeadQueue(
        "find-work-email",
        connection=conn,
        name=queue,
        budget=budget,
        base_url=emu.url,
        batch_size=4,
        options=JobOptions(on_budget="report"),
    )
    df = synthetic_leads(160, seed=3)
    sub = lq.enqueue_frame(
        df, inputs={"full_name": "Name", "company_domain": "Domain"}, id_column="Lead ID"
    )
    with WorkerPool(
        redis_url,
        queues=[queue],
        n=4,
        api_key=emu.api_key,
        base_url=emu.url,
        emulator_admin_url=emu.admin_url,
        burst=True,
        poll_interval_s=0.02,
    ):
        out = lq.wait(sub, timeout=60)
    meters = emu.meters()
    status = guard.status()
    assert len(out) == 160 and out["lead"].is_unique
    assert meters["data_credits_used"] <= cap  # Clay's own meter: never one unit over
    assert status.spent["data_credits"] == meters["data_credits_used"]
    assert status.spent["actions"] == meters["actions_used"]
    assert status.held["data_credits"] == 0
    assert out["data_credits"].sum() == meters["data_credits_used"]
    assert (out["status"] == "over_budget").sum() > 0
    # Worst case 3 credits per item: whatever was refused could not have fitted at the time.
    assert meters["per_routine"]["find-work-email"]["items"] <= cap


def test_a_budget_whose_caps_are_unknown_pays_for_nothing(redis_url: str) -> None:
    """A record with spend but no caps (Redis lost its data, a worker settled into it) is
    not a budget without limits: nothing is reserved until someone sets the caps."""
    conn = redis.Redis.from_url(redis_url)
    name = uuid.uuid4().hex
    guard = RedisBudgetGuard(conn, name)
    guard.settle(Cost(), Cost(0, 5))  # a worker's late settle creates the record
    assert not guard.reserve(Cost(0, 0.5))
    assert guard.status().left("data_credits") == 0
    guard.set_limits(data_credits=10)
    assert guard.reserve(Cost(0, 0.5))
    guard.reset()
    assert not guard.reserve(Cost(0, 0.5))
    guard.set_limits()  # no cap, said on purpose
    assert guard.reserve(Cost(0, 1000))
