"""The client's I/O-free core: request shaping, validation, retry decisions, pacing.

These run without a server. ``httpx.MockTransport`` appears only where the point is the
shape of a request or the parsing of an answer; every retry, fault and rate-limit
behaviour is tested for real against the emulator in test_client_retries.py.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

import claynb
from claynb.wire._core import BaseClient, Call, api_base, check_items
from claynb.wire._pacing import Pacer


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def core(**kw: Any) -> BaseClient:
    kw.setdefault("base_url", "http://127.0.0.1:9/public/v0")
    return BaseClient("secret-key-abcdef", **kw)


def answer(status: int, headers: dict[str, str] | None = None, body: Any = None) -> httpx.Response:
    request = httpx.Request("GET", "http://127.0.0.1:9/public/v0/me")
    return httpx.Response(status, headers=headers, json=body or {"message": "x"}, request=request)


# -- requests -----------------------------------------------------------------------------


def test_bare_host_gets_the_public_api_path_and_explicit_paths_are_kept() -> None:
    assert api_base("http://127.0.0.1:8765") == "http://127.0.0.1:8765/public/v0"
    assert api_base("https://api.clay.com/") == "https://api.clay.com/public/v0"
    assert api_base("https://proxy.example/clay/v0/") == "https://proxy.example/clay/v0"


def test_api_key_goes_only_to_the_public_api() -> None:
    c = core()
    api = c.build_call("GET", "/me").request
    upload = c.build_call("PUT", "http://127.0.0.1:9/_emulator/uploads/f1", content=b"x").request
    source = c.build_call(
        "POST", "http://127.0.0.1:9/v3/sources/webhook/abc", content=b"{}"
    ).request
    assert api.headers["clay-api-key"] == "secret-key-abcdef"
    assert "clay-api-key" not in upload.headers
    assert "clay-api-key" not in source.headers
    assert "authorization" not in api.headers  # Clay answers a Bearer header 401


def test_post_run_is_marked_as_spending_with_its_item_ids() -> None:
    c = core()
    flow = c._run_flow("enrich-person", [{"id": "a", "inputs": {"email": "a@b.co"}}], "wh_1")
    call = next(flow)
    assert isinstance(call, Call)
    assert call.spends and call.item_ids == ["a"]
    assert json.loads(call.request.content) == {
        "items": [{"id": "a", "inputs": {"email": "a@b.co"}}],
        "webhook_id": "wh_1",
    }
    assert not c.build_call("GET", "/me").spends


def test_a_url_that_cannot_be_built_is_a_config_error() -> None:
    with pytest.raises(claynb.ConfigError):
        core().build_call("GET", "http://exa\x00mple.com/me")


@pytest.mark.parametrize(
    "items, why",
    [
        ([], "1 to 100"),
        ([{"id": str(i), "inputs": {}} for i in range(101)], "1 to 100"),
        ([{"id": "a", "inputs": {}}, {"id": "a", "inputs": {}}], "duplicate"),
        ([{"id": "", "inputs": {}}], "1 to 64"),
        ([{"id": "a"}], "inputs"),
        ({"id": "a", "inputs": {}}, "list"),
    ],
)
def test_bad_items_are_refused_before_sending(items: Any, why: str) -> None:
    with pytest.raises(claynb.ConfigError, match=why):
        check_items(items)


def test_run_result_pages_are_parsed_into_typed_items() -> None:
    # MockTransport only shapes the answer; the real pagination is tested on the emulator.
    pages = {
        None: {
            "routine_run_id": "r1",
            "total": 2,
            "finished": 2,
            "status": "complete",
            "cursor": "c2",
            "data": [
                {
                    "id": "a",
                    "status": "complete",
                    "result": {"x": 1},
                }
            ],
        },
        "c2": {
            "routine_run_id": "r1",
            "total": 2,
            "finished": 2,
            "status": "complete",
            "data": [{"id": "b", "status": "failed", "error": {"message": "bad email"}}],
        },
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    with claynb.ClayClient(
        "secret-key-abcdef", base_url="http://127.0.0.1:9", transport=httpx.MockTransport(handler)
    ) as c:
        results = c.get_run_results("r1")
    assert results.complete and results.total == 2
    a, b = results.items
    assert a.result == {"x": 1} and a.ok
    assert b.status == "failed" and b.error == "bad email" and not b.ok
    assert [r.url.params.get("limit") for r in seen] == ["100", "100"]


# -- retry decisions ----------------------------------------------------------------------


def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    policy = claynb.RetryPolicy(backoff_initial_s=1.0, backoff_max_s=5.0, jitter=0.5)
    c1, c2 = core(retry=policy, rng=random.Random(7)), core(retry=policy, rng=random.Random(7))
    delays = [c1._backoff(n) for n in range(1, 7)]
    assert delays == [c2._backoff(n) for n in range(1, 7)]  # same seed, same jitter
    for n, d in enumerate(delays, start=1):
        cap = min(5.0, 2 ** (n - 1))
        assert cap * 0.5 <= d <= cap


def test_reset_is_preferred_to_retry_after_when_it_is_finer() -> None:
    wall = FakeClock(1_700_000_000.0)
    c = core(wall_clock=wall)
    headers = httpx.Headers({"retry-after": "1", "x-ratelimit-reset": f"{wall.now + 0.25:.3f}"})
    assert c._rate_limit_wait(headers) == pytest.approx(0.25, abs=1e-3)
    # A reset far beyond Retry-After is not believed (a clock skewed by minutes).
    skewed = httpx.Headers({"retry-after": "2", "x-ratelimit-reset": f"{wall.now + 600:.3f}"})
    assert c._rate_limit_wait(skewed) == 2.0
    assert c._rate_limit_wait(httpx.Headers({"retry-after": "3"})) == 3.0


def test_402_is_never_retried_and_5xx_is_until_attempts_run_out() -> None:
    c = core(retry=claynb.RetryPolicy(max_attempts=3))
    call = c.build_call("GET", "/me")
    call.attempts = 1
    assert isinstance(c.after_response(call, answer(402)).error, claynb.CreditsExhausted)
    assert c.after_response(call, answer(503)).error is None
    call.attempts = 3
    error = c.after_response(call, answer(503)).error
    assert isinstance(error, claynb.ServerError) and error.status == 503


def test_a_callers_item_cap_limits_failed_sends_but_not_waits_for_429() -> None:
    c = core(retry=claynb.RetryPolicy(max_attempts=4, max_retry_after_s=60))
    call = c._run_flow("enrich-person", [{"id": "a", "inputs": {}}], None, 1).send(None)
    assert isinstance(call, Call) and call.max_sends == 1
    for attempt in (1, 2, 3):  # a 429 asks to wait: retried within max_attempts alone
        call.attempts = attempt
        assert c.after_response(call, answer(429, {"retry-after": "0"})).error is None
    call.attempts = 4  # three waits and now a 5xx: the run may have started, never re-sent
    error = c.after_response(call, answer(503)).error
    assert isinstance(error, claynb.OutcomeUnknown) and error.item_ids == ["a"]
    assert (error.attempts, error.rate_limited) == (4, 3)
    assert claynb.RetryPolicy.counted(error) == 1
    waited = c.build_call("POST", "/routines/r/run", json_body={}, spends=True)
    waited.attempts, waited.rate_limited = 4, 3  # the fourth send is being answered now
    limited = c.after_response(waited, answer(429, {"retry-after": "0"})).error
    assert isinstance(limited, claynb.RateLimited) and claynb.RetryPolicy.counted(limited) == 1


def test_the_policy_counts_what_an_item_has_left() -> None:
    policy = claynb.RetryPolicy(max_attempts=3, max_sends_per_item=5)
    assert (policy.item_cap, policy.sends_left(2), policy.sends_left(7)) == (5, 3, 0)
    assert policy.sends_left(2, cap=2) == 0  # a tier's max_attempts overrides for a call
    assert claynb.RetryPolicy(max_attempts=4).item_cap == 4
    assert claynb.RetryPolicy(backoff_initial_s=0.5, backoff_max_s=3).delays(4) == (1, 1, 2, 3)
    with pytest.raises(claynb.ConfigError):
        claynb.RetryPolicy(max_sends_per_item=0)


def test_a_spending_call_that_may_have_been_received_is_unknown_not_retried() -> None:
    c = core()
    call = c._run_flow("enrich-person", [{"id": "a", "inputs": {}}], None).send(None)
    assert isinstance(call, Call)
    call.attempts = 1
    for exc in (
        httpx.ReadTimeout("t"),
        httpx.RemoteProtocolError("gone"),
        httpx.ReadError("r"),
        httpx.WriteError("w"),
        httpx.DecodingError("garbled body"),
    ):
        step = c.after_transport_error(call, exc)
        assert isinstance(step.error, claynb.OutcomeUnknown) and step.error.item_ids == ["a"]
    refused = c.after_transport_error(call, httpx.ConnectError("refused"))
    assert refused.error is None and refused.delay > 0  # never sent: safe to retry
    read = c.build_call("GET", "/me")
    read.attempts = 1
    assert c.after_transport_error(read, httpx.ReadTimeout("t")).error is None


def test_an_accepted_run_without_a_run_id_is_unknown() -> None:
    # A 202 whose body is a proxy's HTML page cannot come from the emulator: mocked.
    transport = httpx.MockTransport(lambda request: httpx.Response(202, text="<html>ok</html>"))
    with (
        claynb.ClayClient(
            "secret-key-abcdef", base_url="http://127.0.0.1:9", transport=transport
        ) as c,
        pytest.raises(claynb.OutcomeUnknown) as info,
    ):
        c.run_routine("enrich-person", [{"id": "a", "inputs": {}}])
    assert info.value.item_ids == ["a"] and "without a run id" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_any_5xx_to_a_run_starting_post_is_unknown_never_re_sent(status: int) -> None:
    """Clay does not say whether a run started behind a server error: never re-sent."""
    c = core()
    run = c._run_flow("enrich-person", [{"id": "a", "inputs": {}}], None).send(None)
    flow = c._batch_flow("enrich-person", [{"id": "b", "inputs": {"email": "b@x.co"}}], None)
    flow.send(None)  # the upload URL, then the upload: neither starts anything
    flow.send(answer(200, body={"upload_url": "http://127.0.0.1:9/u", "file_id": "f1"}))
    batch = flow.send(answer(200))
    for call in (run, batch):
        assert isinstance(call, Call) and call.starts_run
        call.attempts = 1
        error = c.after_response(call, answer(status)).error
        assert isinstance(error, claynb.OutcomeUnknown)
    read = c.build_call("GET", "/me")
    read.attempts = 1
    assert c.after_response(read, answer(status)).error is None  # a read is retried


# -- pacing -------------------------------------------------------------------------------


def test_pacer_spaces_requests_at_the_limit() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    waits = [pacer.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_pacer_allows_a_burst_then_the_rate_counted_in_records() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, burst=20, clock=clock)
    assert pacer.reserve(10) == 0.0 and pacer.reserve(10) == 0.0
    assert pacer.reserve(10) == pytest.approx(1.0)  # 10 more records need a second
    clock.now += 5.0
    assert pacer.reserve(10) == 0.0


def send(pacer: Pacer, clock: FakeClock, n: int, every: float, *, accepted: bool = True) -> None:
    """``n`` requests ``every`` seconds apart, each accepted by the server (or not)."""
    for _ in range(n):
        pacer.reserve()
        if accepted:
            pacer.accepted()
        clock.now += every


def test_pacer_learns_the_rate_between_two_empty_moments_and_holds_everyone() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    assert pacer.reserve() == 0.0 and pacer.limit is None  # unknown: nothing is paced
    send(pacer, clock, 8, 0.05)  # 8 accepted in 0.4 s from a full bucket, then a 429
    pacer.ran_out(2.0)
    # Not a measurement (it began with whatever the bucket held): until one is made, the
    # pace is one request per the wait the server named, and everyone is held.
    assert pacer.limit == pytest.approx(0.5)
    first, second = pacer.reserve(), pacer.reserve()
    assert first == pytest.approx(2.0) and second == pytest.approx(4.0)  # one by one
    clock.now += 2.0
    send(pacer, clock, 4, 0.25)
    pacer.ran_out(0.5)  # X-RateLimit-Remaining: 0 on an accepted answer, at 3.4 s
    assert pacer.limit == pytest.approx(4 / 3.0)  # 4 accepted since the empty moment at 0.4
    send(pacer, clock, 12, 0.25, accepted=False)  # in flight: these were refused
    clock.now -= 0.25
    for _ in range(7):
        pacer.accepted()
    pacer.ran_out(0.25)
    # Between two empty moments the server let through exactly what it refilled.
    assert pacer.limit == pytest.approx(7 / 2.75)
    given = Pacer(5.0, clock=clock)
    assert given.limit == 5.0  # the caller's cap holds until the server is measured lower
    given.reserve()
    given.ran_out(0.0)
    send(given, clock, 4, 0.4)
    given.ran_out(0.1)
    assert given.limit == pytest.approx(4 / 1.6)  # the lower of the two


def test_a_pace_held_back_without_running_out_looks_for_more() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    pacer.reserve()
    pacer.ran_out(0.0)
    send(pacer, clock, 4, 0.25)
    pacer.ran_out(0.0)
    assert pacer.limit == pytest.approx(4.0)
    send(pacer, clock, 120, 0.1)  # 12 s of callers queueing behind the pace, none ran out
    assert pacer.limit is not None and pacer.limit > 4.0


def test_x_ratelimit_limit_is_only_a_ceiling() -> None:
    """Its window is undocumented: 1200 may be a minute's worth. Read as per second it is
    never below what the server allows, so it caps the pace and is never taken for the
    rate; only Remaining 0 and Reset (or a 429) hold everyone until the reset."""
    clock = FakeClock()
    core = BaseClient("k", clock=clock, wall_clock=lambda: 1_000_000_000.0)
    request = httpx.Request("GET", "https://api.clay.com/public/v0/me")
    ok = {"x-ratelimit-limit": "1200", "x-ratelimit-remaining": "3"}
    core.after_response(
        core.build_call("GET", "/me"), httpx.Response(200, headers=ok, request=request)
    )
    assert core.rate_limit_rps == 1200  # a ceiling, nothing learned yet
    spent = {
        "x-ratelimit-limit": "1200",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1000000001.5",
    }
    core.after_response(
        core.build_call("GET", "/me"), httpx.Response(200, headers=spent, request=request)
    )
    assert core.pace_delay(core.build_call("GET", "/me")) == pytest.approx(1.5)
    # What is learned lowers the pace under the ceiling; the ceiling never raises it.
    pacer = Pacer(None, clock=clock)
    pacer.announced(600.0)
    pacer.reserve()
    pacer.ran_out(0.0)
    send(pacer, clock, 10, 0.1)
    pacer.ran_out(0.0)
    assert pacer.limit == pytest.approx(10.0)
    pacer.announced(5.0)  # a per-second limiter that says 5 caps a pace read higher
    assert pacer.limit == 5.0


def test_config_objects_refuse_nonsense() -> None:
    with pytest.raises(claynb.ConfigError):
        claynb.RetryPolicy(max_attempts=0)
    with pytest.raises(claynb.ConfigError):
        claynb.Timeout(0)
    with pytest.raises(claynb.ConfigError):
        claynb.SourcePolicy(max_chunk_records=30, burst=20)
    t = claynb.Timeout(5.0, connect=1.0)
    assert (t.connect, t.read, t.write, t.pool) == (1.0, 5.0, 5.0, 5.0)


def test_the_client_is_public_and_all_stays_sorted() -> None:
    mine = {
        "AsyncClayClient",
        "BatchResults",
        "ClayClient",
        "RetryPolicy",
        "RunItem",
        "RunResults",
        "SourceCapWarning",
        "SourcePolicy",
        "SourceReport",
        "Timeout",
        "connect",
        "verify_signature",
    }
    assert mine <= set(claynb.__all__)
    assert all(hasattr(claynb, name) for name in claynb.__all__)

    def group(
        name: str,
    ) -> tuple[int, str]:  # constants, then classes, then functions (ruff RUF022)
        return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)

    assert claynb.__all__ == sorted(claynb.__all__, key=group)


def test_pacer_hands_out_distinct_slots_to_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pacer = Pacer(100.0, clock=FakeClock())
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _: pacer.reserve(), range(800)))
    # No two callers got the same slot, none was skipped: exactly one every 10 ms.
    assert sorted(round(w, 6) for w in waits) == [round(n * 0.01, 6) for n in range(800)]
