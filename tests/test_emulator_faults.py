"""The emulator's rate limit and injected faults, over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from claynb import Faults

ITEMS = {"items": [{"id": "1", "inputs": {"domain": "acme.com"}}]}


def client(emu: Any, timeout: float = 10) -> httpx.Client:
    return httpx.Client(
        base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key}, timeout=timeout
    )


def test_rate_limit_429_carries_retry_after_and_the_trio(make_emulator: Any) -> None:
    # Slow refill (2/s) so a loaded test machine cannot refill the bucket between requests.
    emu = make_emulator(rate_limit_rps=2, rate_limit_burst=2)
    c = client(emu)
    ok = [c.get("/me") for _ in range(2)]
    assert all(r.status_code == 200 for r in ok)
    assert ok[0].headers["X-RateLimit-Limit"] == "2"
    assert int(ok[0].headers["X-RateLimit-Remaining"]) >= int(
        ok[1].headers["X-RateLimit-Remaining"]
    )
    limited = c.get("/me")
    assert limited.status_code == 429 and limited.json()["message"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    reset = float(limited.headers["X-RateLimit-Reset"])
    assert reset > time.time() - 1
    time.sleep(max(0.0, reset - time.time()) + 0.01)
    assert c.get("/me").status_code == 200
    assert emu.meters()["requests"]["by_status"]["429"] == 1


def test_no_rate_limit_headers_without_a_limit(emulator: Any) -> None:
    assert "X-RateLimit-Limit" not in client(emulator).get("/me").headers


def test_default_burst_is_one_second_of_requests_at_least_one(make_emulator: Any) -> None:
    c = client(make_emulator(rate_limit_rps=0.5))  # burst max(1, 0.5) = 1, refill every 2 s
    first, second = c.get("/me"), c.get("/me")
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["X-RateLimit-Limit"] == "0.5" and second.headers["Retry-After"] == "2"


def test_server_error_answers_5xx_and_does_no_work(make_emulator: Any) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0))
    r = client(emu).post("/routines/enrich-company/run", json=ITEMS)
    assert r.status_code in (500, 502, 503) and r.json()["message"]
    m = emu.meters()
    assert m["runs"]["total"] == 0 and m["actions_used"] == 0


def test_timeout_fault_does_the_work_but_answers_late(make_emulator: Any) -> None:
    emu = make_emulator(faults=Faults(timeout=1.0), slow_s=2.0)
    with pytest.raises(httpx.ReadTimeout):
        client(emu, timeout=0.2).post("/routines/enrich-company/run", json=ITEMS)
    m = emu.meters()
    assert (
        m["runs"]["total"] == 1 and m["actions_used"] == 1
    )  # acme.com matches: the run was charged


def test_drop_connection_really_drops_and_a_post_run_still_runs(make_emulator: Any) -> None:
    emu = make_emulator(faults=Faults(drop_connection=1.0))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client(emu).post("/routines/enrich-company/run", json=ITEMS)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client(emu).get("/me")
    m = emu.meters()
    assert m["runs"]["total"] == 1 and m["actions_used"] == 1
    deadline = time.monotonic() + 5  # the server counts a drop just after the client sees it
    while emu.meters()["requests"]["total"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emu.meters()["requests"]["by_status"] == {"dropped": 2}


def test_faults_are_seeded(make_emulator: Any) -> None:
    def statuses(seed: int) -> list[int]:
        c = client(make_emulator(faults=Faults(server_error=0.5), seed=seed))
        return [c.get("/me").status_code for _ in range(30)]

    first = statuses(7)
    assert first == statuses(7)
    assert 200 in first and any(s >= 500 for s in first)


def test_set_faults_and_admin_routes_are_not_faulted(emulator: Any) -> None:
    admin = httpx.Client(base_url=emulator.url + "/_emulator")
    r = admin.post("/faults", json={"server_error": 1.0})
    assert r.status_code == 200 and r.json()["server_error"] == 1.0
    assert client(emulator).get("/me").status_code >= 500
    assert admin.get("/meters").status_code == 200
    emulator.set_faults(Faults())
    assert client(emulator).get("/me").status_code == 200
    assert admin.post("/faults", json={"server_error": 3}).status_code == 400
    assert admin.post("/faults", json={"nonsense": 0.1}).status_code == 400


@pytest.mark.parametrize(
    "bad", [{"server_error": -0.1}, {"timeout": 1.5}, {"server_error": 0.6, "timeout": 0.6}]
)
def test_faults_must_be_probabilities(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Faults(**bad)
