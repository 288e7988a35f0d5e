"""Real worker processes: a SIGKILL mid-job, faults with retries, the dead-letter registry."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import pytest
import redis

import claynb
from claynb.queue import JobOptions, LeadQueue, WorkerPool
from claynb.queue._demo import synthetic_leads
from claynb.queue._dlq import dead_letters, inspect_dead_letter, requeue_dead_letters


def _queue(redis_url: str, emu: Any, **options: Any) -> LeadQueue:
    conn = redis.Redis.from_url(redis_url)
    batch_size = options.pop("batch_size", 25)
    return LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        batch_size=batch_size,
        options=JobOptions(**options),
    )


def _pool(redis_url: str, lq: LeadQueue, emu: Any, **options: Any) -> WorkerPool:
    """Workers on ``lq``'s queue for ``emu``, reading its meters for what items cost."""
    return WorkerPool(
        redis_url,
        queues=[lq.name],
        api_key=emu.api_key,
        base_url=emu.url,
        emulator_admin_url=emu.admin_url,
        **options,
    )


def _assert_each_lead_once_and_paid_once(out: Any, emu: Any, n: int) -> None:
    meters = emu.meters()
    assert len(out) == n and out["lead"].is_unique
    assert out["actions"].sum() == meters["actions_used"]
    assert out["data_credits"].sum() == meters["data_credits_used"]


def _polling(pool: WorkerPool, lq: LeadQueue) -> tuple[int, str]:
    """A worker whose job's run is started (run id journaled): its pid and job id."""
    found = pool.polling_a_run(lq, timeout=30)
    assert found is not None, "no job reached the polling stage in time"
    return found


def _two_workers(redis_url: str, lq: LeadQueue, emu: Any, lease_s: float) -> WorkerPool:
    """Two workers polling every 0.1 s, holding leases of ``lease_s``."""
    return _pool(redis_url, lq, emu, n=2, poll_interval_s=0.1, lease_s=lease_s)


def test_sigkilled_worker_loses_no_lead_and_pays_none_twice(
    redis_url: str, make_emulator: Any
) -> None:
    emu = make_emulator(run_latency_s=1.0)
    lq = _queue(redis_url, emu, retries=3, backoff_s=(0,))
    df = synthetic_leads(150, seed=5)
    sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
    with _two_workers(redis_url, lq, emu, lease_s=0.5) as pool:
        pid, job_id = _polling(pool, lq)
        assert pid in pool.pids()
        os.kill(pid, signal.SIGKILL)
        out = lq.wait(sub, timeout=60)
    meters = emu.meters()
    # Six runs of 25: the killed job's run was polled again by id, never sent again.
    assert meters["per_routine"]["enrich-person"]["runs"] == 6
    assert meters["per_routine"]["enrich-person"]["items"] == 150
    assert lq.store.load(job_id).state == "done"
    _assert_each_lead_once_and_paid_once(out, emu, 150)
    assert set(out["status"]) <= {"enriched", "no_match"}


def test_a_starved_worker_keeps_its_job(redis_url: str, make_emulator: Any) -> None:
    """A worker that gets no CPU for longer than its lease (SIGSTOP stands for a loaded
    machine) is slow, not dead: its job is not handed to another worker or the dead letters."""
    from rq.job import Job, JobStatus

    from claynb.queue._worker import reap_abandoned

    emu = make_emulator(run_latency_s=1.0)
    lq = _queue(redis_url, emu, retries=0, backoff_s=(0,))
    df = synthetic_leads(50, seed=15)
    sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
    with _two_workers(redis_url, lq, emu, lease_s=0.3) as pool:
        pid, job_id = _polling(pool, lq)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(2.0)  # the lease (0.3 s) lapses; the job started over a grace ago
            assert reap_abandoned(lq.conn, [lq.name], grace_s=0.6) == []
            assert Job.fetch(job_id, connection=lq.conn).get_status() == JobStatus.STARTED
        finally:
            os.kill(pid, signal.SIGCONT)
        out = lq.wait(sub, timeout=60)
    _assert_each_lead_once_and_paid_once(out, emu, 50)
    assert emu.meters()["per_routine"]["enrich-person"]["runs"] == 2
    assert set(out["status"]) <= {"enriched", "no_match"}


@pytest.mark.parametrize("start_failure", ["not_started", "started"])
def test_a_5xx_to_a_run_post_is_never_re_sent_by_rq_retries(
    redis_url: str, make_emulator: Any, start_failure: str
) -> None:
    """Reads answered 5xx are retried; a batch whose POST was answered 5xx is not sent
    again by RQ's retries (Clay may have started the run): its leads are ``unknown``, every
    other lead is answered, and no lead is charged twice."""
    emu = make_emulator(run_latency_s=0, seed=11, start_failure=start_failure)
    emu.set_faults(claynb.Faults(server_error=0.4))
    lq = _queue(redis_url, emu, retries=12, backoff_s=(0,), batch_size=10)  # ten POSTs
    df = synthetic_leads(100, seed=6)
    sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
    with _pool(redis_url, lq, emu, n=2, poll_interval_s=0.02, max_attempts=3, burst=True) as pool:
        out = lq.wait(sub, timeout=60)
        pool.wait(timeout=20)
    meters = emu.meters()
    assert len(out) == 100 and out["lead"].is_unique
    unknown = out["status"] == "unknown"
    assert unknown.any() and set(out.loc[~unknown, "status"]) <= {"enriched", "no_match", "cached"}
    charged = [c["inputs_key"] for c in meters["charges"]]
    assert len(charged) == len(set(charged))
    # Items Clay ran: beyond the answered leads only when runs started behind the errors.
    answered = (~unknown & (out["status"] != "cached")).sum()
    ran = meters["per_routine"]["enrich-person"]["items"]
    assert (ran > answered) == (start_failure == "started")


def test_dead_letters_can_be_listed_inspected_and_requeued(
    redis_url: str, make_emulator: Any
) -> None:
    # Clay refuses the runs (402: the credits are out), so the jobs fail for certain.
    emu = make_emulator(run_latency_s=0)
    left = emu.meters(charges=False)
    emu.set_credits(actions_left=0, data_credits_left=0)
    lq = _queue(redis_url, emu, retries=1, backoff_s=(0,), batch_size=50)
    df = synthetic_leads(100, seed=7)
    sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
    with _pool(redis_url, lq, emu, n=1, poll_interval_s=0.02, max_attempts=1, burst=True) as pool:
        pool.wait(timeout=30)
    letters = dead_letters(lq.conn, lq.name)
    assert sorted(d.job_id for d in letters) == sorted(sub.batch_ids)
    assert all(d.leads == 50 and "CreditsExhausted" in d.reason for d in letters)
    detail = inspect_dead_letter(lq.conn, letters[0].job_id)
    assert detail["batch"]["state"] == "failed" and len(detail["batch"]["leads"]) == 50
    assert "Traceback" in detail["exc_info"]
    assert emu.meters()["actions_used"] == 0

    emu.set_credits(left["actions_left"], left["data_credits_left"])
    assert sorted(requeue_dead_letters(lq.conn, lq.name)) == sorted(sub.batch_ids)
    with _pool(redis_url, lq, emu, n=1, poll_interval_s=0.02, burst=True) as pool:
        out = lq.wait(sub, timeout=30)
        pool.wait(timeout=20)
    assert dead_letters(lq.conn, lq.name) == []
    _assert_each_lead_once_and_paid_once(out, emu, 100)


def test_a_worker_never_sees_the_api_key_in_redis(redis_url: str, make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0)
    lq = _queue(redis_url, emu)
    sub = lq.enqueue_frame(
        synthetic_leads(30, seed=8), inputs={"email": "Email"}, id_column="Lead ID"
    )
    with _pool(redis_url, lq, emu, n=1, poll_interval_s=0.02, burst=True) as pool:
        lq.wait(sub, timeout=30)
        pool.wait(timeout=20)
        assert emu.api_key not in repr(pool)
    conn = lq.conn
    key = emu.api_key.encode()
    readers = {
        b"string": lambda k: conn.get(k),
        b"hash": lambda k: conn.hgetall(k),
        b"list": lambda k: conn.lrange(k, 0, -1),
        b"set": lambda k: conn.smembers(k),
        b"zset": lambda k: conn.zrange(k, 0, -1),
        b"stream": lambda k: conn.xrange(k),
    }
    for k in conn.scan_iter(count=1000):
        blob = repr(readers.get(conn.type(k), lambda k: b"")(k)).encode()
        assert key not in blob, k


def test_worker_refuses_a_batch_for_another_clay(redis_url: str, make_emulator: Any) -> None:
    emu, other = make_emulator(), make_emulator()
    lq = _queue(redis_url, other, retries=1, backoff_s=(0,))
    sub = lq.enqueue_frame(
        synthetic_leads(5, seed=9), inputs={"email": "Email"}, id_column="Lead ID"
    )
    with _pool(redis_url, lq, emu, n=1, burst=True) as pool:
        pool.wait(timeout=30)
    (letter,) = dead_letters(lq.conn, lq.name)
    assert letter.job_id == sub.batch_ids[0] and "CLAY_BASE_URL" in letter.reason
    assert emu.meters()["actions_used"] == 0 and other.meters()["actions_used"] == 0


@pytest.mark.parametrize("policy", ["dead_letter", "wait"])
def test_an_empty_budget_parks_leads_until_it_is_raised(
    redis_url: str, make_emulator: Any, policy: str
) -> None:
    from claynb.queue import RedisBudgetGuard

    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    budget = uuid.uuid4().hex
    guard = RedisBudgetGuard(conn, budget, data_credits=10)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        batch_size=20,
        budget=budget,
        options=JobOptions(on_budget=policy, wait_s=1, retries=1, backoff_s=(0,)),
    )
    seed = 10 if policy == "wait" else 12  # distinct leads: the Redis cache is shared
    sub = lq.enqueue_frame(
        synthetic_leads(40, seed=seed), inputs={"email": "Email"}, id_column="Lead ID"
    )
    with _pool(redis_url, lq, emu, n=1, poll_interval_s=0.02):
        from claynb.queue import snapshot

        def parked() -> bool:  # the over-budget leads are waiting: scheduled or dead-lettered
            stats = snapshot(conn, lq.name)
            return bool(stats.dead_letters if policy == "dead_letter" else stats.scheduled_jobs)

        deadline = time.monotonic() + 30
        while not parked() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert parked()
        assert len(lq.outcomes(since=sub.stream_mark)) < 40
        with pytest.raises(TimeoutError):
            lq.wait(sub, timeout=1)
        assert emu.meters()["data_credits_used"] <= 10
        guard.set_limits(data_credits=1000)
        if policy == "dead_letter":
            letters = dead_letters(conn, lq.name)
            assert letters and all("BudgetExceeded" in d.reason for d in letters)
            requeue_dead_letters(conn, lq.name)
        out = lq.wait(sub, timeout=30)
    _assert_each_lead_once_and_paid_once(out, emu, 40)
    assert guard.status().spent["data_credits"] == emu.meters()["data_credits_used"]


def test_a_job_timeout_resumes_the_same_run_instead_of_sending_again(
    redis_url: str, make_emulator: Any
) -> None:
    emu = make_emulator(run_latency_s=2.5)
    lq = _queue(redis_url, emu, timeout_s=1, retries=6, backoff_s=(0,), batch_size=20)
    sub = lq.enqueue_frame(
        synthetic_leads(20, seed=13), inputs={"email": "Email"}, id_column="Lead ID"
    )
    with _pool(redis_url, lq, emu, n=1, poll_interval_s=0.1):
        out = lq.wait(sub, timeout=60)
    from rq.job import Job

    job = Job.fetch(sub.batch_ids[0], connection=lq.conn)
    assert job.retries_left < 6  # RQ's job timeout cut at least one attempt short
    assert emu.meters()["per_routine"]["enrich-person"]["runs"] == 1  # polled again, never re-sent
    _assert_each_lead_once_and_paid_once(out, emu, 20)


def test_a_send_cut_off_midway_is_reported_unknown_never_resent(
    redis_url: str, make_emulator: Any
) -> None:
    # A worker dying between "sending" and Clay's answer cannot be timed for real, so the
    # journal is put in that state by hand (the same calls a worker makes), then a real
    # worker picks the job up.
    from claynb.queue import RedisBudgetGuard
    from claynb.queue._store import scaled

    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    budget = uuid.uuid4().hex
    guard = RedisBudgetGuard(conn, budget, data_credits=100)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        budget=budget,
        batch_size=10,
    )
    sub = lq.enqueue_frame(
        synthetic_leads(10, seed=14), inputs={"email": "Email"}, id_column="Lead ID"
    )
    batch = lq.store.load(sub.batch_ids[0])
    unit = batch.routine.worst_case_cost()
    keys = [lead.key for lead in batch.leads]
    conn.hset(f"claynb:q:batch:{batch.id}", "cached", "{}")
    assert (
        lq.store.reserve(
            batch, guard.key, keys, scaled(unit, guard.plan.usd(unit.actions, unit.data_credits))
        )
        == 10
    )
    assert lq.store.begin_send(batch.id)
    with _pool(redis_url, lq, emu, n=1, burst=True) as pool:
        out = lq.wait(sub, timeout=30)
        pool.wait(timeout=20)
    assert set(out["status"]) == {"unknown"} and out["error"].str.contains("not sent again").all()
    assert emu.meters()["requests"]["total"] == 0  # nothing was sent again
    status = guard.status()
    assert status.held["data_credits"] == 0 and status.spent["data_credits"] == 10  # held as spent


def test_a_stopped_pool_leaves_no_process_behind_and_a_live_one_replaces_the_dead(
    redis_url: str, make_emulator: Any
) -> None:
    import psutil

    emu = make_emulator()
    lq = _queue(redis_url, emu)
    me = psutil.Process()

    def family() -> set[int]:
        return {p.pid for p in me.children(recursive=True)} - before

    before: set[int] = set()
    before = family()  # the session's redis-server, say: not the pool's
    pool = _two_workers(redis_url, lq, emu, lease_s=1.0).start()

    try:
        deadline = time.monotonic() + 60
        while len(family() - set(pool.pids())) < 1:  # RQ's scheduler child, a grandchild
            assert time.monotonic() < deadline, "no scheduler child appeared"
            time.sleep(0.1)
        killed = pool.kill(0)
        while len(pool.alive()) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.1)
        assert killed not in pool.pids() and pool.replaced >= 1
        seen = family()
    finally:
        pool.stop()
    left = [p for p in seen if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert left == []
