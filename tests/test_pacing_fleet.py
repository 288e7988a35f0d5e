"""One pace for a whole fleet, in real Redis: shared slots, shared holds, a shared rate,
and real worker processes pacing together against the emulator's rate limit."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from claynb.queue import JobOptions, LeadQueue, WorkerPool
from claynb.queue._demo import synthetic_leads
from claynb.wire._core import api_base
from claynb.wire._fleet import FleetPacer, workspace_key
from claynb.wire._pacing import PaceState


def _redis_now(conn: Any) -> float:
    seconds, micros = conn.time()
    return float(seconds + micros / 1e6)


def _state(conn: Any, key: str) -> PaceState:
    return PaceState.from_fields({k.decode(): v.decode() for k, v in conn.hgetall(key).items()})


@pytest.fixture
def conn(redis_url: str) -> Any:
    return redis.Redis.from_url(redis_url)


def test_two_processes_draw_distinct_slots_from_one_bucket(conn: Any) -> None:
    key = f"test:pace:{uuid.uuid4().hex}"
    # Two pacers on one key are what two worker processes hold.
    a, b = FleetPacer(conn, key, limit=10.0), FleetPacer(conn, key, limit=10.0)
    before = _redis_now(conn)
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda i: (a if i % 2 else b).reserve(), range(40)))
    after = _redis_now(conn)
    # 40 slots a tenth of a second apart, none shared, none skipped: the bucket is full
    # again 4 s after the first reservation, whichever process took each slot.
    full_at = _state(conn, key).full_at
    assert before + 4.0 - 1e-6 <= full_at <= after + 4.0
    assert len({round(w, 3) for w in waits}) == 40


def test_a_429_seen_by_one_process_holds_every_process(conn: Any) -> None:
    key = f"test:pace:{uuid.uuid4().hex}"
    a, b = FleetPacer(conn, key), FleetPacer(conn, key)
    assert b.reserve() == 0.0  # unknown rate: nothing paced
    a.ran_out(5.0)
    assert 4.0 < b.reserve() <= 5.0


def test_the_rate_learned_by_the_fleet_is_every_processes_pace(conn: Any) -> None:
    key = f"test:pace:{uuid.uuid4().hex}"
    a, b = FleetPacer(conn, key), FleetPacer(conn, key)
    a.reserve()
    a.ran_out(0.0)  # an empty moment opens the window
    start = _redis_now(conn)
    for pacer in (a, b) * 6:
        pacer.reserve()
        pacer.accepted()
        time.sleep(0.1)  # keep the window busy: a gap of half a second would restart it
    b.ran_out(0.0)
    elapsed = _redis_now(conn) - start
    learned = a.limit
    assert learned is not None and learned == b.limit
    assert 12 / (elapsed + 0.1) <= learned <= 12 / 1.0  # 12 accepted over the window


def test_the_redis_key_is_a_digest_never_the_api_key(conn: Any) -> None:
    api_key = f"clay_test_{uuid.uuid4().hex}"
    key = workspace_key(api_key, "http://127.0.0.1:9/public/v0")
    FleetPacer(conn, key).reserve()
    assert api_key not in key and "127.0.0.1" not in key
    assert all(api_key.encode() not in v for v in conn.hgetall(key).values())
    assert key != workspace_key(api_key, "http://127.0.0.1:10/public/v0")  # per workspace
    assert api_key not in repr(FleetPacer(conn, key))


def test_worker_processes_pace_as_one_fleet_by_default(redis_url: str, make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0.2, rate_limit_rps=5, rate_limit_burst=5)
    conn = redis.Redis.from_url(redis_url)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        batch_size=5,
        use_cache=False,
        options=JobOptions(retries=3, backoff_s=(0,)),
    )
    df = synthetic_leads(60, seed=11)
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=3,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.05,
    ):
        out = lq.wait(
            lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID"), timeout=600
        )
    meters = emu.meters()
    assert len(out) == 60 and out["lead"].is_unique
    assert out["actions"].sum() == meters["actions_used"]  # each lead paid once
    # Every worker reserved its slots from the workspace's one bucket in Redis, and the
    # fleet's pace is the emulator's limit: its X-RateLimit-Limit as a ceiling from the
    # first answer, or learned from an empty moment (never above what it let through).
    state = _state(conn, workspace_key(emu.api_key, api_base(emu.url)))
    assert state.last_send > 0 and state.ceiling == 5
    assert state.limit is not None and state.limit <= 5


def test_event_services_and_queue_workers_share_the_workspaces_pace(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claynb.queue._jobs import WorkerSettings, fleet_pace
    from claynb.wire._config import Credentials
    from claynb.wire._fleet import shared_pace

    monkeypatch.delenv("REDIS_URL", raising=False)
    credentials = Credentials("clay_test_key", "http://127.0.0.1:9")
    assert shared_pace(credentials, "nats://127.0.0.1:4222") is None  # no Redis: alone
    service = shared_pace(credentials, redis_url)  # the bus is Redis: the pace lives there
    worker = fleet_pace(
        redis.Redis.from_url(redis_url),
        WorkerSettings(api_key=credentials.api_key, base_url=credentials.base_url),
    )
    assert service is not None
    service.ran_out(30.0)
    assert worker.reserve() > 25.0  # one workspace, one hold, whichever tier saw the 429
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert shared_pace(credentials, "nats://127.0.0.1:4222") is not None
