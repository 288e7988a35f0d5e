"""The emulator's batch flow over real HTTP: upload-url, PUT JSONL, start, results, result file."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from claynb._routines import DEFAULT_ROUTINES, run_item


def client(emu: Any) -> httpx.Client:
    return httpx.Client(
        base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key}, timeout=10
    )


def jsonl(rows: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def upload(c: httpx.Client, routine: str, data: bytes) -> str:
    up = c.post(f"/routines/{routine}/run-batch/upload-url")
    assert up.status_code == 200, up.text
    body = up.json()
    assert body["upload_url"].startswith("http://127.0.0.1:")
    assert (
        httpx.put(body["upload_url"], content=data).status_code == 200
    )  # presigned: no key needed
    return str(body["file_id"])


def wait_terminal(c: httpx.Client, run_id: str) -> httpx.Response:
    while (r := c.get(f"/routines/run-batch/{run_id}/results")).status_code == 202:
        assert r.json()["status"] == "in_progress"
        time.sleep(0.05)
    return r


def test_batch_runs_every_row_and_serves_a_result_file(emulator: Any) -> None:
    c = client(emulator)
    rows = [{"id": f"b{i}", "inputs": {"domain": f"company{i}.com"}} for i in range(250)]
    file_id = upload(c, "enrich-company", jsonl(rows))
    start = c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id})
    assert start.status_code == 202 and start.json()["status"] == "in_progress"
    run_id = start.json()["routine_run_id"]
    done = wait_terminal(c, run_id)
    body = done.json()
    assert done.status_code == 200 and body["status"] == "complete"
    assert body["total"] == body["finished"] == 250
    lines = [json.loads(line) for line in httpx.get(body["result_url"]).text.splitlines()]
    assert [item["id"] for item in lines] == [r["id"] for r in rows]
    routine = DEFAULT_ROUTINES["enrich-company"]
    expected = sum(run_item(routine, r["inputs"]).cost.data_credits for r in rows)
    books = httpx.get(f"{emulator.admin_url}/runs/{run_id}").json()["items"]
    assert (
        emulator.meters()["data_credits_used"]
        == expected
        == sum(book["data_credits"] for book in books.values())
    )
    # Lines hold only what the OpenAPI's RunResultItem documents.
    assert all(set(item) <= {"id", "status", "result", "error"} for item in lines)
    assert all(set(item.get("result", {})) <= set(routine.fields) for item in lines)


def test_batch_with_latency_reports_progress(make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=1.0)  # long enough that the first poll is early
    c = client(emu)
    file_id = upload(c, "enrich-company", jsonl([{"id": "1", "inputs": {"domain": "acme.com"}}]))
    run_id = c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id}).json()[
        "routine_run_id"
    ]
    first = c.get(f"/routines/run-batch/{run_id}/results")
    assert first.status_code == 202 and first.json()["total"] == 1
    assert wait_terminal(c, run_id).json()["status"] == "complete"


def test_invalid_lines_give_validation_failed_with_details(emulator: Any) -> None:
    c = client(emulator)
    data = jsonl([{"id": "1", "inputs": {"domain": "acme.com"}}, {"id": "2"}]) + b"not json\n"
    file_id = upload(c, "enrich-company", data)
    run_id = c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id}).json()[
        "routine_run_id"
    ]
    body = wait_terminal(c, run_id).json()
    assert body["status"] == "validation_failed"
    assert body["error"]["total_invalid_rows"] == 2
    assert [d["line_number"] for d in body["error"]["details"]] == [2, 3]
    assert emulator.meters()["actions_used"] == 0


def test_a_file_that_is_not_text_gives_processing_failed(emulator: Any) -> None:
    c = client(emulator)
    file_id = upload(c, "enrich-company", b"\xff\xfe\x00garbage")
    run_id = c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id}).json()[
        "routine_run_id"
    ]
    body = wait_terminal(c, run_id).json()
    assert body["status"] == "processing_failed" and body["error"]["message"]


def test_start_checks_file_and_routine(emulator: Any) -> None:
    c = client(emulator)
    assert c.post("/routines/nope/run-batch/upload-url").status_code == 404
    up = c.post("/routines/enrich-company/run-batch/upload-url").json()
    r = c.post("/routines/enrich-company/run-batch/start", json={"file_id": up["file_id"]})
    assert r.status_code == 400 and "upload" in r.json()["message"]  # nothing PUT yet
    assert (
        c.post(
            "/routines/enrich-company/run-batch/start", json={"file_id": "file_nope"}
        ).status_code
        == 404
    )
    assert c.post("/routines/enrich-company/run-batch/start", json={}).status_code == 400
    file_id = upload(c, "enrich-company", jsonl([{"id": "1", "inputs": {"domain": "acme.com"}}]))
    assert (
        c.post("/routines/enrich-person/run-batch/start", json={"file_id": file_id}).status_code
        == 404
    )
    assert (
        c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id}).status_code
        == 202
    )
    again = c.post("/routines/enrich-company/run-batch/start", json={"file_id": file_id})
    assert again.status_code == 400 and "already" in again.json()["message"]
    assert c.get("/routines/run-batch/run_nope/results").status_code == 404


@pytest.mark.parametrize("routine", ["enrich-company"])
def test_batch_start_is_402_at_zero(emulator: Any, routine: str) -> None:
    c = client(emulator)
    file_id = upload(c, routine, jsonl([{"id": "1", "inputs": {"domain": "acme.com"}}]))
    emulator.set_credits(data_credits_left=0)
    assert (
        c.post(f"/routines/{routine}/run-batch/start", json={"file_id": file_id}).status_code == 402
    )
