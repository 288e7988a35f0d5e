"""Retries and error mapping against the emulator's injected faults, over real HTTP.

What matters is money: a run is never started twice by a retry, which the emulator's
own meters (runs started, items charged) confirm after every fault.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from _client_helpers import statuses

import claynb
from claynb import Faults
from claynb.emulator._settings import RATE_LIMIT_HEADERS

FAST = claynb.RetryPolicy(max_attempts=8, backoff_initial_s=0.01, backoff_max_s=0.05)


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"p{i}", "inputs": {"email": f"grace{i}@acme.com"}} for i in range(start, start + n)
    ]


def client_for(emu: Any, **kw: Any) -> claynb.ClayClient:
    kw.setdefault("retry", FAST)
    kw.setdefault("rng", random.Random(1))
    return claynb.ClayClient(emu.api_key, base_url=emu.url, **kw)


def runs_started(emu: Any) -> int:
    return int(emu.meters(charges=False)["runs"]["total"])


def items_run(emu: Any, routine: str = "enrich-person") -> int:
    per = emu.meters(charges=False)["per_routine"].get(routine, {})
    return int(per.get("items", 0))


@pytest.mark.parametrize("start_failure", ["not_started", "started"])
def test_a_5xx_storm_never_re_sends_a_run_and_reads_ride_it_out(
    make_emulator: Callable[..., Any], start_failure: str
) -> None:
    """Clay does not say whether a run started behind a 5xx: the POST is never re-sent
    (OutcomeUnknown with its items), under either meaning; reads are retried."""
    emu = make_emulator(faults=Faults(server_error=0.5), seed=3, start_failure=start_failure)
    started: list[str] = []
    unknown: list[list[str]] = []
    with client_for(emu) as c:
        for n in range(8):
            try:
                started.append(c.run_routine("enrich-person", people(10, start=10 * n)))
            except claynb.OutcomeUnknown as exc:
                unknown.append(exc.item_ids)
        results = [c.wait_for_run(r, poll_interval=0.01) for r in started]
    assert unknown and all(len(ids) == 10 for ids in unknown)  # the storm reached the POSTs
    assert all(r.complete and len(r.items) == 10 for r in results)  # reads rode it out
    behind_errors = len(unknown) if start_failure == "started" else 0
    assert runs_started(emu) == len(started) + behind_errors  # one run per POST at most
    assert items_run(emu) == 10 * runs_started(emu)
    charged = [c["inputs_key"] for c in emu.meters()["charges"]]
    assert len(charged) == len(set(charged))  # no lead charged twice


@pytest.mark.parametrize("start_failure", ["not_started", "started"])
def test_a_5xx_to_a_run_post_is_sent_once_and_unknown(
    make_emulator: Callable[..., Any], start_failure: str
) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0), start_failure=start_failure)
    with (
        client_for(emu, retry=claynb.RetryPolicy(max_attempts=3, backoff_initial_s=0.01)) as c,
        pytest.raises(claynb.OutcomeUnknown) as info,
    ):
        c.run_routine("enrich-person", people(3))
    assert info.value.item_ids == ["p0", "p1", "p2"] and info.value.attempts == 1
    assert sum(statuses(emu).values()) == 1  # sent once, not max_attempts times
    assert runs_started(emu) == (1 if start_failure == "started" else 0)


def test_5xx_to_a_read_is_retried_until_attempts_run_out(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0))
    with (
        client_for(emu, retry=claynb.RetryPolicy(max_attempts=3, backoff_initial_s=0.01)) as c,
        pytest.raises(claynb.ServerError) as info,
    ):
        c.me()
    assert info.value.status in (500, 502, 503)
    assert sum(statuses(emu).values()) == 3  # exactly max_attempts requests


def test_a_429_storm_is_recovered_by_honouring_the_servers_wait(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(rate_limit_rps=4, rate_limit_burst=1)
    # A noisy neighbour empties the bucket, then eight threads start at once on a client
    # that has not learned the limit yet: a storm of 429s, after which the client holds
    # every thread for the wait the server asked, learns the rate and paces the rest.
    drain = httpx.get(f"{emu.url}/public/v0/me", headers={"clay-api-key": emu.api_key})
    patient = claynb.RetryPolicy(max_attempts=30, backoff_initial_s=0.01, backoff_max_s=0.05)
    with client_for(emu, retry=patient) as c, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: c.me(), range(10)))
        learned = c.rate_limit_rps
    by_status = statuses(emu)
    assert drain.status_code == 200
    assert len(answers) == 10 and by_status["200"] == 11
    assert by_status.get("429", 0) >= 1
    # No thread kept hammering: each waited as asked, so 429s stay within a few per call
    # while the rate is unknown, far below the 30 attempts x 10 calls a client spinning on
    # a short backoff would burn through.
    assert by_status["429"] <= 4 * 10
    # Learned from what the server let through between empty moments: never more than
    # it refilled (a burst of one wastes refills while callers wait, so it may read low).
    assert learned is not None and 0 < learned <= 6


def test_a_429_retry_waits_for_the_reset_it_was_given(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(rate_limit_rps=2, rate_limit_burst=1)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with client_for(emu, sleep=sleep) as c:
        # Another consumer of the same workspace takes the only token first.
        assert (
            httpx.get(f"{emu.url}/public/v0/me", headers={"clay-api-key": emu.api_key}).status_code
            == 200
        )
        c.me()
    # One 429, then one retry that succeeded: the wait honoured was long enough, and it
    # was the precise X-RateLimit-Reset (< 1 s), not Retry-After's whole second (a
    # little jitter, taken out of the hold, spreads callers while the rate is unknown).
    assert statuses(emu) == {"200": 2, "429": 1}
    assert 0 < sum(slept) < 1.0


def test_429_until_attempts_run_out_is_rate_limited_with_retry_after(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(rate_limit_rps=1, rate_limit_burst=1)
    httpx.get(f"{emu.url}/public/v0/me", headers={"clay-api-key": emu.api_key})  # takes the token
    with (
        client_for(emu, retry=claynb.RetryPolicy(max_attempts=1)) as c,
        pytest.raises(claynb.RateLimited) as info,
    ):
        c.me()
    assert info.value.status == 429 and info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 1.0
    assert statuses(emu) == {"200": 1, "429": 1}


def test_a_post_run_that_timed_out_is_unknown_and_never_resent(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(faults=Faults(timeout=1.0), slow_s=1.0)
    items = people(5)
    with (
        client_for(emu, timeout=claynb.Timeout(5.0, read=0.3)) as c,
        pytest.raises(claynb.OutcomeUnknown) as info,
    ):
        c.run_routine("enrich-person", items)
    assert info.value.item_ids == [i["id"] for i in items]
    assert "idempotency" in str(info.value)
    emu.set_faults(Faults())
    assert runs_started(emu) == 1 and items_run(emu) == 5  # it ran, once


def test_a_dropped_post_run_is_unknown_and_ran_once(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(faults=Faults(drop_connection=1.0))
    with client_for(emu) as c, pytest.raises(claynb.OutcomeUnknown) as info:
        c.run_routine("enrich-person", people(4))
    assert len(info.value.item_ids) == 4 and isinstance(info.value, claynb.TransportError)
    assert isinstance(info.value.__cause__, Exception)  # the httpx error, chained
    assert statuses(emu) == {"dropped": 1}
    assert runs_started(emu) == 1 and items_run(emu) == 4


def test_a_dropped_batch_start_is_unknown_too(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator()
    with client_for(emu) as c:
        # Drops only from the start on: the upload URL and PUT go through first.
        flow = c._batch_flow("enrich-person", people(3), None)
        upload = c._send(next(flow))  # type: ignore[arg-type]
        put = c._send(flow.send(upload))  # type: ignore[arg-type]
        start = flow.send(put)
        emu.set_faults(Faults(drop_connection=1.0))
        with pytest.raises(claynb.OutcomeUnknown) as info:
            c._send(start)  # type: ignore[arg-type]
    assert info.value.item_ids == ["p0", "p1", "p2"]
    assert runs_started(emu) == 1


def test_reads_are_retried_after_drops_and_timeouts(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(slow_s=0.6, seed=5)
    with client_for(emu, timeout=claynb.Timeout(5.0, read=0.2)) as c:
        run_id = c.run_routine("enrich-person", people(30))
        emu.set_faults(Faults(drop_connection=0.3, timeout=0.2))
        c.page_limit = 7
        results = c.get_run_results(run_id)
        me = c.me()
    assert results.complete and [i.id for i in results.items] == [f"p{i}" for i in range(30)]
    assert me.workspace_id
    assert statuses(emu).get("dropped", 0) > 0  # GETs were dropped, and retried
    assert runs_started(emu) == 1


def test_a_refused_connection_is_retried_then_a_transport_error(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator()
    url, key = emu.url, emu.api_key
    emu.stop()
    policy = claynb.RetryPolicy(max_attempts=2, backoff_initial_s=0.01)
    with (
        claynb.ClayClient(key, base_url=url, retry=policy) as c,
        pytest.raises(claynb.TransportError) as info,
    ):
        c.run_routine("enrich-person", people(1))
    # Never sent, so not "unknown": the caller may simply try again later.
    assert not isinstance(info.value, claynb.OutcomeUnknown)
    assert "2 attempt" in str(info.value)


def test_error_statuses_map_to_the_tree(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator()
    with (
        claynb.ClayClient("wrong-key-123456", base_url=emu.url) as bad,
        pytest.raises(claynb.AuthenticationError) as e401,
    ):
        bad.me()
    assert (
        e401.value.status == 401 and e401.value.method == "GET" and e401.value.url.endswith("/me")
    )
    with client_for(emu) as c:
        with pytest.raises(claynb.NotFound):
            c.get_run_results("run_does_not_exist")
        with pytest.raises(claynb.NotFound):
            c.run_routine("no-such-routine", people(1))
        emu.set_credits(actions_left=0, data_credits_left=0)
        with pytest.raises(claynb.CreditsExhausted) as e402:
            c.run_routine("enrich-person", people(1))
    assert e402.value.status == 402 and isinstance(e402.value, claynb.ClayError)
    assert statuses(emu)["402"] == 1  # never retried
    assert runs_started(emu) == 0


@pytest.mark.parametrize("header", RATE_LIMIT_HEADERS)
def test_pacing_learns_the_limit_whatever_x_ratelimit_limit_counts(
    header: str, make_emulator: Callable[..., Any]
) -> None:
    """Per second, per minute or absent: the pace comes from what the server did (its
    429s, Remaining 0 and the reset), so a per-minute count is never taken for a rate."""
    emu = make_emulator(rate_limit_rps=10, rate_limit_burst=10, rate_limit_header=header)
    patient = claynb.RetryPolicy(max_attempts=30, backoff_initial_s=0.01, backoff_max_s=0.05)
    with client_for(emu, retry=patient) as c, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: c.me(), range(60)))
        learned = c.rate_limit_rps
    by_status = statuses(emu)
    assert len(answers) == 60 and by_status["200"] == 60
    assert learned is not None and learned <= 10 * 2  # per_minute announces 600
    assert by_status.get("429", 0) <= 60 // 3
