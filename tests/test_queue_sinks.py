"""Sinks hear each lead's outcome once; refresh, the monitor and the enrich backend."""

from __future__ import annotations

import csv
import socket
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import claynb
from claynb.queue import (
    CallableSink,
    CSVSink,
    Dispatcher,
    HTTPSink,
    JobOptions,
    LeadQueue,
    SQLiteSink,
    WorkerPool,
    sink_from_spec,
)
from claynb.queue._demo import synthetic_leads
from claynb.queue._monitor import LiveMonitor, latencies, snapshot, summary, throughput_series
from claynb.queue._refresh import cancel_refresh, refresh_stale, schedule_refresh


class CRM:
    """A small CRM: records every outcome POSTed to it, duplicates included."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.keys: list[str] = []
        app = Starlette(routes=[Route("/leads", self.receive, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    async def receive(self, request: Request) -> JSONResponse:
        self.calls.append(await request.json())
        self.keys.append(request.headers["idempotency-key"])
        return JSONResponse({"ok": True})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/leads"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture
def crm() -> Any:
    app = CRM()
    yield app
    app.stop()


def test_every_sink_hears_each_lead_once(
    redis_url: str, make_emulator: Any, crm: CRM, tmp_path: Path
) -> None:
    emu = make_emulator(run_latency_s=0.05)
    conn = redis.Redis.from_url(redis_url)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        options=JobOptions(retries=2, backoff_s=(0,)),
    )
    df = synthetic_leads(130, seed=21)
    one_by_one = [
        lq.enqueue_lead(row["Lead ID"], {"email": row["Email"]})
        for row in df.iloc[:110].to_dict("records")
    ]
    bad = lq.enqueue_lead("bad-1", {"email": "not an email"})
    frame = lq.enqueue_frame(df.iloc[110:], inputs={"email": "Email"}, id_column="Lead ID")
    heard: list[str] = []
    sinks = [
        HTTPSink(crm.url),
        SQLiteSink(tmp_path / "crm.db"),
        CSVSink(tmp_path / "out.csv"),
        CallableSink(lambda o: heard.append(o["lead"]), name="list"),
    ]
    # A dispatcher that reads and dies before acknowledging: its entries must not be lost.
    doomed = Dispatcher(conn, sinks[0], queue=lq.name, consumer="doomed")
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=2,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.02,
        burst=True,
    ) as pool:
        pool.wait(timeout=60)
    assert doomed._read()  # read, never acknowledged, never delivered
    for sink in sinks:
        Dispatcher(conn, sink, queue=lq.name, min_idle_ms=0).drain(timeout_s=30, idle_s=0.05)
        again = Dispatcher(conn, sink, queue=lq.name, min_idle_ms=0)
        assert again.drain(timeout_s=5, idle_s=0.05) == 0  # nothing is delivered twice
    expected = set(df["Lead ID"]) | {"bad-1"}
    assert len(one_by_one) == 110 and bad.invalid == 1 and len(frame) == 20
    assert Counter(o["lead"] for o in crm.calls) == Counter({lead: 1 for lead in expected})
    assert len(set(crm.keys)) == len(crm.keys) == 131
    assert Counter(heard) == Counter({lead: 1 for lead in expected})
    table = sinks[1].frame()
    assert sorted(table["lead"]) == sorted(expected)
    with (tmp_path / "out.csv").open() as fh:
        assert sorted(r["lead"] for r in csv.DictReader(fh)) == sorted(expected)
    paid = table["data_credits"].astype(float).sum()
    assert paid == emu.meters()["data_credits_used"]
    # One-at-a-time leads were still sent as runs of up to 100, not one run each.
    assert emu.meters()["per_routine"]["enrich-person"]["runs"] < 20


def test_sink_specs_and_redaction(tmp_path: Path) -> None:
    assert isinstance(sink_from_spec(f"sqlite:{tmp_path}/a.db#t"), SQLiteSink)
    assert isinstance(sink_from_spec(f"csv:{tmp_path}/a.csv"), CSVSink)
    sink = HTTPSink("http://127.0.0.1:9/x", headers={"x-claynb-secret": "crm-shared-secret-1"})
    assert "crm-shared-secret-1" not in repr(sink)
    with pytest.raises(ConnectionError) as info:
        sink.deliver([("1-0", {"lead": "a"})])
    assert "crm-shared-secret-1" not in str(info.value)
    with pytest.raises(ValueError):
        sink_from_spec("ftp://nope")


def test_refresh_requeues_stale_leads_within_budget(redis_url: str, make_emulator: Any) -> None:
    from claynb.queue import RedisBudgetGuard

    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    budget = uuid.uuid4().hex
    guard = RedisBudgetGuard(conn, budget, data_credits=1000)
    lq = LeadQueue(
        "enrich-company",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        budget=budget,
    )
    df = synthetic_leads(30, seed=22).drop_duplicates("Domain")
    sub = lq.enqueue_frame(df, inputs={"domain": "Domain"}, id_column="Lead ID")
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=1,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.02,
    ) as pool:
        lq.wait(sub, timeout=30)
        before = emu.meters()["per_routine"]["enrich-company"]["items"]
        assert refresh_stale(conn, lq.name, "enrich-company", max_age_s=3600) == []  # all fresh
        spent = guard.status().spent["data_credits"]
        guard.set_limits(data_credits=spent + 5)  # room for 5 worst-case refreshes only
        mark = lq._mark()
        schedule_refresh(conn, lq.name, "enrich-company", every_s=1, max_age_s=0)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(lq.outcomes(since=mark)) < 5:
            time.sleep(0.1)
        cancel_refresh(conn, lq.name, "enrich-company")
        time.sleep(1.5)
        pool.stop()
    refreshed = lq.outcomes(since=mark)
    assert len(refreshed) >= 5 and all(o["status"] != "cached" for o in refreshed)
    assert emu.meters()["per_routine"]["enrich-company"]["items"] > before
    assert guard.status().spent["data_credits"] <= spent + 5
    assert emu.meters()["data_credits_used"] == guard.status().spent["data_credits"]


def test_monitor_data_is_right_without_a_screen(redis_url: str, make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        batch_size=20,
    )
    sub = lq.enqueue_frame(
        synthetic_leads(100, seed=23), inputs={"email": "Email"}, id_column="Lead ID"
    )
    before = snapshot(conn, lq.name)
    assert before.queued_jobs == 5 and before.leads_done == 0
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=1,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.02,
        burst=True,
    ) as pool:
        lq.wait(sub, timeout=30)
        pool.wait(timeout=20)
    after = snapshot(conn, lq.name)
    samples = latencies(conn, lq.name)
    assert after.leads_done == 100 and after.batches_done == 5 and after.queued_jobs == 0
    assert after.data_credits == emu.meters()["data_credits_used"]
    assert len(samples) == 5 and all(s["latency_s"] >= s["work_s"] >= 0 for s in samples)
    assert sum(v for _, v in throughput_series(samples, bucket_s=1.0)) == 100
    assert summary(samples)["leads"] == 100
    monitor = LiveMonitor(conn, lq.name)
    monitor.update()
    image = monitor.widget()  # drawn at once: never a blank first frame
    first = image.value
    assert first[:4] == b"\x89PNG"
    monitor.update()
    assert image.value[:4] == b"\x89PNG" and len(monitor.history) == 3
    import matplotlib.pyplot as plt

    open_before = set(plt.get_fignums())  # other tests in this process may leave some open
    fig = monitor.figure()
    assert len(fig.axes) == 4 and monitor.png()[:4] == b"\x89PNG"
    # Not pyplot's: the notebook's inline backend would show it again in whatever cell runs.
    assert set(plt.get_fignums()) == open_before


def test_enrich_backend_queue_respects_the_budget(redis_url: str, make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    df = synthetic_leads(120, seed=24)
    out = claynb.enrich(
        df,
        "enrich-person",
        inputs={"email": "Email"},
        client=client,
        backend="queue",
        redis_url=redis_url,
        queue=f"e-{uuid.uuid4().hex[:8]}",
        workers=1,
        poll_interval=0.02,
        budget=claynb.Budget(data_credits=50),
        progress=False,
    )
    meters = emu.meters()
    assert len(out) == 120 and list(out.index) == list(df.index)
    assert meters["data_credits_used"] <= 50
    assert out["clay_data_credits"].sum() == meters["data_credits_used"]
    assert (out["clay_status"] == "over_budget").sum() > 0
    with pytest.raises(TypeError, match="unknown option"):
        claynb.enrich(
            synthetic_leads(1, seed=99),
            "enrich-person",
            inputs={"email": "Email"},
            client=client,
            backend="queue",
            redis_url=redis_url,
            bogus=1,
            progress=False,
        )


def test_enrich_after_a_kernel_crash_collects_instead_of_resending(
    redis_url: str, make_emulator: Any, tmp_path: Path
) -> None:
    import json
    import signal
    import subprocess
    import sys

    emu = make_emulator(run_latency_s=1.5)
    queue = f"e-{uuid.uuid4().hex[:8]}"
    conn = redis.Redis.from_url(redis_url)
    df = synthetic_leads(150, seed=25)
    df.to_csv(tmp_path / "leads.csv", index=False)
    code = (
        "import sys, pandas as pd, claynb\n"
        "df = pd.read_csv(sys.argv[1])\n"
        "c = claynb.ClayClient(api_key=sys.argv[2], base_url=sys.argv[3])\n"
        "claynb.enrich(df, 'enrich-person', inputs={'email': 'Email'}, client=c, backend='queue',"
        " redis_url=sys.argv[4], queue=sys.argv[5], workers=0, batch_size=50, progress=False)\n"
    )
    with WorkerPool(
        redis_url, queues=[queue], n=2, api_key=emu.api_key, base_url=emu.url, poll_interval_s=0.05
    ):
        from claynb.queue._worker import live_workers

        while live_workers(conn, queue) < 2:
            time.sleep(0.05)
        kernel = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                str(tmp_path / "leads.csv"),
                emu.api_key,
                emu.url,
                redis_url,
                queue,
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the "kernel" dies once its first run is in flight
            states = [conn.hget(k, "state") for k in conn.scan_iter("claynb:q:batch:e-*")]
            if b"sent" in states:
                break
            time.sleep(0.02)
        kernel.send_signal(signal.SIGKILL)
        kernel.wait(10)
        client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
        out = claynb.enrich(
            df,
            "enrich-person",
            inputs={"email": "Email"},
            client=client,
            backend="queue",
            redis_url=redis_url,
            queue=queue,
            workers=0,
            batch_size=50,
            progress=False,
        )
    meters = emu.meters()
    assert meters["per_routine"]["enrich-person"]["items"] == 150  # none sent twice
    assert set(out["clay_status"]) <= {"enriched", "no_match", "cached"}
    # What this call reports plus what the killed call had already landed is what Clay charged.
    assert out["clay_data_credits"].sum() <= meters["data_credits_used"]
    assert (
        out["clay_status"] != "cached"
    ).sum() > 0  # collected from the queue, not only the cache
    assert json.dumps(meters).count(emu.api_key) == 0


def test_workers_deliver_to_a_sink_themselves(
    redis_url: str, make_emulator: Any, tmp_path: Path
) -> None:
    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    lq = LeadQueue(
        "enrich-person",
        connection=conn,
        name=f"q-{uuid.uuid4().hex[:8]}",
        base_url=emu.url,
        batch_size=10,
    )
    sub = lq.enqueue_frame(
        synthetic_leads(40, seed=26), inputs={"email": "Email"}, id_column="Lead ID"
    )
    out_csv = tmp_path / "crm.csv"
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=2,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.02,
        burst=True,
        sinks=[f"csv:{out_csv}"],
    ) as pool:
        lq.wait(sub, timeout=30)
        pool.wait(timeout=30)
    with out_csv.open() as fh:
        leads = [r["lead"] for r in csv.DictReader(fh)]
    assert sorted(leads) == sorted(sub.lead_ids)  # both workers shared the group: each once


def test_a_stream_of_single_leads_is_sent_in_runs_of_up_to_100(
    redis_url: str, make_emulator: Any
) -> None:
    emu = make_emulator(run_latency_s=0)
    conn = redis.Redis.from_url(redis_url)
    lq = LeadQueue(
        "enrich-person", connection=conn, name=f"q-{uuid.uuid4().hex[:8]}", base_url=emu.url
    )
    df = synthetic_leads(250, seed=27)
    subs = [lq.enqueue_lead(r["Lead ID"], {"email": r["Email"]}) for r in df.to_dict("records")]
    with WorkerPool(
        redis_url,
        queues=[lq.name],
        n=1,
        api_key=emu.api_key,
        base_url=emu.url,
        poll_interval_s=0.02,
        burst=True,
    ) as pool:
        pool.wait(timeout=30)
    outcomes = lq.outcomes()
    assert sorted(o["lead"] for o in outcomes) == sorted(s.lead_ids[0] for s in subs)
    runs = emu.meters()["per_routine"]["enrich-person"]
    assert runs["items"] == 250 and runs["runs"] == 3  # 100 + 100 + 50: full runs, chained
