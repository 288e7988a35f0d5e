"""The emulator's routine runs over real HTTP: auth, validation, results, pagination, charging."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb._work import COST_KEY, PROVIDER_KEY, item_key


def client(emu: Any) -> httpx.Client:
    return httpx.Client(base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key}, timeout=10)


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "inputs": {"email": f"ada.lovelace{i}@acme.com"}} for i in range(start, start + n)]


def run_all(c: httpx.Client, routine: str, items: list[dict[str, Any]], limit: int = 100) -> list[dict[str, Any]]:
    r = c.post(f"/routines/{routine}/run", json={"items": items})
    assert r.status_code == 202, r.text
    run_id = r.json()["routine_run_id"]
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = c.get(f"/routines/run/{run_id}/results", params=params)
        if page.status_code == 202:
            continue
        assert page.status_code == 200, page.text
        body = page.json()
        out.extend(body["data"])
        cursor = body.get("cursor")
        if cursor is None:
            return out


def test_me_answers_with_user_and_workspace(emulator: Any) -> None:
    body = client(emulator).get("/me").json()
    assert body["user"]["id"] and body["workspace"]["id"]


@pytest.mark.parametrize("headers", [{}, {"clay-api-key": "wrong-key-123"}])
def test_missing_or_wrong_key_is_401(emulator: Any, headers: dict[str, str]) -> None:
    r = httpx.get(emulator.url + "/public/v0/me", headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == {"message"}


def test_bearer_header_is_401_even_with_the_right_key(emulator: Any) -> None:
    r = httpx.get(emulator.url + "/public/v0/me", headers={"Authorization": f"Bearer {emulator.api_key}"})
    assert r.status_code == 401
    assert "clay-api-key" in r.json()["message"]


def test_run_results_match_run_item_and_are_charged_once(emulator: Any) -> None:
    routine = DEFAULT_ROUTINES["enrich-person"]
    items = people(50) + [{"id": "bad", "inputs": {"email": "not-an-email"}}]
    results = {r["id"]: r for r in run_all(client(emulator), routine.id, items)}
    assert len(results) == 51
    actions = credits = 0.0
    for item in items:
        outcome = run_item(routine, item["inputs"])
        got = results[item["id"]]
        if outcome.status == "failed":
            assert got["status"] == "failed" and got["error"]["message"]
            continue
        assert got["status"] == "complete"
        assert got["result"][COST_KEY] == {"actions": outcome.cost.actions, "data_credits": outcome.cost.data_credits}
        if outcome.status == "matched":
            assert got["result"][PROVIDER_KEY] == outcome.provider
            assert {k: got["result"][k] for k in routine.fields} == outcome.result
        actions += outcome.cost.actions
        credits += outcome.cost.data_credits
    m = emulator.meters()
    assert m["actions_used"] == actions and m["data_credits_used"] == credits
    assert m["actions_left"] == 40_000 - actions and m["data_credits_left"] == 6_000 - credits
    keys = [c["inputs_key"] for c in m["charges"]]
    assert len(keys) == len(set(keys)) == actions
    assert set(keys) <= {item_key(routine.id, i["inputs"]) for i in items}
    stats = m["per_routine"]["enrich-person"]
    assert stats["items"] == 51 and stats["failed"] == 1 and stats["matched"] + stats["no_match"] == 50


def test_same_inputs_same_answer_across_emulators(make_emulator: Any) -> None:
    a = run_all(client(make_emulator()), "find-work-email",
                [{"id": str(i), "inputs": {"full_name": f"Grace Hopper{i}", "company_domain": "navy.mil"}}
                 for i in range(40)])
    b = run_all(client(make_emulator(seed=99)), "find-work-email",
                [{"id": str(i), "inputs": {"full_name": f"Grace Hopper{i}", "company_domain": "navy.mil"}}
                 for i in range(40)])
    assert a == b


def test_latency_gives_202_then_200(make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=(0.2, 0.4))
    c = client(emu)
    run_id = c.post("/routines/enrich-company/run",
                    json={"items": [{"id": "1", "inputs": {"domain": "acme.com"}}]}).json()["routine_run_id"]
    first = c.get(f"/routines/run/{run_id}/results")
    assert first.status_code == 202
    assert first.json() == {"routine_run_id": run_id, "total": 1, "finished": 0, "status": "in_progress"}
    while (r := c.get(f"/routines/run/{run_id}/results")).status_code == 202:
        pass
    assert r.status_code == 200 and r.json()["status"] == "complete"
