"""Outbound webhooks from the emulator: shape, signature, test events, and delivery faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from claynb import Faults

ITEMS = {"items": [{"id": "1", "inputs": {"domain": "acme.com"}}]}


def client(emu: Any) -> httpx.Client:
    return httpx.Client(
        base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key}, timeout=10
    )


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def start_run(emu: Any, webhook_id: str) -> str:
    r = client(emu).post("/routines/enrich-company/run", json={**ITEMS, "webhook_id": webhook_id})
    assert r.status_code == 202, r.text
    return str(r.json()["routine_run_id"])


def wait_deliveries(emu: Any, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while len(deliveries := emu.meters()["deliveries"]) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(deliveries)


def test_finished_run_posts_a_signed_delivery(make_emulator: Any, recorder: Any) -> None:
    emu = make_emulator(run_latency_s=0.05)
    hook = emu.create_webhook(recorder.url + "/hooks/clay")
    assert set(hook) == {"id", "url", "createdAt", "signingSecret"}
    run_id = start_run(emu, hook["id"])
    [got] = recorder.wait_for(1)
    assert got.path == "/hooks/clay"
    body = json.loads(got.body)
    assert body["webhookId"] == hook["id"] and body["data"] == {"routine_run_id": run_id}
    assert body["createdAt"].endswith("Z")
    assert verify(hook["signingSecret"], got.body, got.headers["x-clay-signature"])
    assert not verify("whsec_wrong", got.body, got.headers["x-clay-signature"])
    # The run was finished (and charged) before the webhook said so.
    assert client(emu).get(f"/routines/run/{run_id}/results").status_code == 200
    [record] = wait_deliveries(emu, 1)
    assert (
        record["outcome"] == "delivered"
        and record["status_code"] == 200
        and record["run_id"] == run_id
    )


def test_test_webhook_has_empty_data_and_admin_routes_work(emulator: Any, recorder: Any) -> None:
    admin = httpx.Client(base_url=emulator.url + "/_emulator")
    created = admin.post("/webhooks", json={"url": recorder.url + "/h"})
    assert created.status_code == 201
    hook = created.json()
    emulator.send_test_webhook(hook["id"])
    assert admin.post(f"/webhooks/{hook['id']}/test").status_code == 200
    first, second = recorder.wait_for(2)
    assert json.loads(first.body)["data"] == {} == json.loads(second.body)["data"]
    assert verify(hook["signingSecret"], second.body, second.headers["x-clay-signature"])
    assert admin.post("/webhooks/wh_nope/test").status_code == 404
    assert admin.post("/webhooks", json={"url": "ftp://x"}).status_code == 400


def test_batch_runs_notify_too(emulator: Any, recorder: Any) -> None:
    hook = emulator.create_webhook(recorder.url)
    c = client(emulator)
    up = c.post("/routines/enrich-company/run-batch/upload-url").json()
    httpx.put(up["upload_url"], content=b'{"id":"1","inputs":{"domain":"acme.com"}}\n')
    run_id = c.post(
        "/routines/enrich-company/run-batch/start",
        json={"file_id": up["file_id"], "webhook_id": hook["id"]},
    ).json()["routine_run_id"]
    [got] = recorder.wait_for(1)
    assert json.loads(got.body)["data"]["routine_run_id"] == run_id


def test_dropped_delivery_is_recorded_not_sent(make_emulator: Any, recorder: Any) -> None:
    emu = make_emulator(faults=Faults(drop_webhook=1.0))
    hook = emu.create_webhook(recorder.url)
    run_id = start_run(emu, hook["id"])
    [record] = wait_deliveries(emu, 1)
    assert record["outcome"] == "dropped" and record["run_id"] == run_id
    time.sleep(0.2)  # a delivery would have arrived by now; nothing should
    assert recorder.requests == []


def test_duplicated_delivery_arrives_twice_identically(make_emulator: Any, recorder: Any) -> None:
    emu = make_emulator(faults=Faults(duplicate_webhook=1.0))
    hook = emu.create_webhook(recorder.url)
    start_run(emu, hook["id"])
    first, second = recorder.wait_for(2)
    assert first.body == second.body
    records = wait_deliveries(emu, 2)
    assert [r["fault"] for r in records] == [None, "duplicate"]


def test_reordered_delivery_arrives_after_a_later_one(make_emulator: Any, recorder: Any) -> None:
    emu = make_emulator(faults=Faults(reorder_webhook=1.0), webhook_hold_s=5.0)
    hook = emu.create_webhook(recorder.url)
    held = start_run(emu, hook["id"])
    emu.set_faults(Faults())
    later = start_run(emu, hook["id"])
    got = [json.loads(r.body)["data"]["routine_run_id"] for r in recorder.wait_for(2)]
    assert got == [later, held]
    records = wait_deliveries(emu, 2)
    assert [(r["run_id"], r["fault"]) for r in records] == [(later, None), (held, "reordered")]


def test_a_held_delivery_goes_out_alone_after_the_hold(make_emulator: Any, recorder: Any) -> None:
    emu = make_emulator(faults=Faults(reorder_webhook=1.0), webhook_hold_s=0.05)
    run_id = start_run(emu, emu.create_webhook(recorder.url)["id"])
    [got] = recorder.wait_for(1)
    assert json.loads(got.body)["data"]["routine_run_id"] == run_id


def test_failing_and_unreachable_receivers_are_recorded(emulator: Any, recorder: Any) -> None:
    recorder.statuses = [500]
    start_run(emulator, emulator.create_webhook(recorder.url)["id"])
    start_run(emulator, emulator.create_webhook("http://127.0.0.1:9/nowhere")["id"])
    outcomes = sorted((r["outcome"], r["status_code"]) for r in wait_deliveries(emulator, 2))
    assert outcomes == [("error", None), ("rejected", 500)]


@pytest.mark.parametrize("retries", ["none", "retried"])
def test_whether_a_failed_delivery_is_tried_again_is_a_setting(
    make_emulator: Any, recorder: Any, retries: str
) -> None:
    """Clay does not publish a retry policy: ``webhook_retries`` plays both answers."""
    emu = make_emulator(
        run_latency_s=0.05,
        faults=Faults(fail_webhook=1.0),
        webhook_retries=retries,
        webhook_backoff_s=0.01,
    )
    hook = emu.create_webhook(recorder.url)
    run_id = start_run(emu, hook["id"])
    records = wait_deliveries(emu, 2 if retries == "retried" else 1)
    assert records[0]["fault"] == "failed_attempt" and records[0]["attempt"] == 1
    if retries == "none":
        # A later run's delivery comes through; the lost one was never tried again.
        emu.set_faults(Faults())
        later = start_run(emu, hook["id"])
        [got] = recorder.wait_for(1)
        assert json.loads(got.body)["data"] == {"routine_run_id": later}
        assert [d["attempt"] for d in emu.meters()["deliveries"] if d["run_id"] == run_id] == [1]
        return
    assert (records[1]["attempt"], records[1]["outcome"]) == (2, "delivered")
    [got] = recorder.wait_for(1)
    assert json.loads(got.body)["data"] == {"routine_run_id": run_id}
