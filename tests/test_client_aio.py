"""AsyncClayClient's aiohttp sending (claynb.wire._aio), against real sockets on loopback.

Every failure a connection can have is produced for real: refused, never accepted (a
connect timeout), a name that does not resolve, a proxy that refuses, a server that hangs
before answering, drops the connection, cuts a body short or answers garbage. The money
rule under test: only a failure before the request went out is retried; any other makes
a spending call an unknown outcome, sent once, which the emulator's meters confirm.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
import pytest
from _loopback_helpers import (
    Script,
    Seen,
    cut_body,
    disconnect,
    garbage,
    hang,
    keep_answering,
    serve,
    trickle,
)

import claynb
from claynb import Faults
from claynb.services._process import free_port
from claynb.wire._aio import AioSender, client_timeout, translated

KEY = "aio-key-0123456789abcdef"
TWO = claynb.RetryPolicy(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)
#: A read timeout far below anything a hanging server does (it never answers), and far
#: above what a loopback answer takes on a loaded machine.
SHORT_READ = claynb.Timeout(10.0, read=0.5)


def people(n: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "inputs": {"email": f"grace{i}@acme.com"}} for i in range(n)]


@contextmanager
def never_accepting() -> Iterator[str]:
    """A listening port whose accept queue is full: a connect to it is never answered
    (Linux drops the SYN), which is a connect timeout, produced for real."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for s in [*fillers, listener]:
            s.close()


def client(url: str, **kw: Any) -> claynb.AsyncClayClient:
    kw.setdefault("retry", TWO)
    kw.setdefault("timeout", SHORT_READ)
    return claynb.AsyncClayClient(KEY, base_url=url, **kw)


# -- connections and headers -------------------------------------------------------------


def test_spending_posts_get_fresh_connections_reads_keep_theirs_and_no_cookie_returns() -> None:
    async def main() -> Seen:
        server, url, seen = await serve(keep_answering)
        async with client(url) as c:
            for _ in range(3):
                await c.request("GET", "/me")
            for _ in range(2):
                await c.request("POST", "/routines/r/run", json={"items": []})
            await c.request("POST", "/tables/query", json={}, spends=False)
            await c.request("GET", "/me")
        server.close()
        await server.wait_closed()
        return seen

    seen = asyncio.run(main())
    conns = [(conn, method) for conn, method, _ in seen.requests]
    reads = {conn for conn, method in conns if method == "GET"}
    spends = [conn for conn, method, headers in seen.requests if method == "POST"][:2]
    assert len(reads) == 1  # every read on one kept-alive connection
    assert len(set(spends)) == 2 and not set(spends) & reads  # each run on its own
    assert set(spends) <= set(seen.closed_by_client)  # and closed after its answer
    assert seen.requests[-2][0] in reads  # a POST that does not spend keeps alive too
    for _, method, headers in seen.requests:
        assert headers["clay-api-key"] == KEY
        assert headers["user-agent"].startswith("claynb/")
        assert headers["accept"] == "application/json"
        assert "cookie" not in headers and "accept-encoding" not in headers
        assert headers.get("content-type") == ("application/json" if method == "POST" else None)


def test_a_slow_answer_within_the_timeout_is_read_whole() -> None:
    async def main() -> httpx.Response:
        server, url, _ = await serve(trickle)
        async with client(url, timeout=claynb.Timeout(30.0)) as c:
            response = await c.request("POST", "/routines/r/run", json={"items": []})
        server.close()
        return response

    response = asyncio.run(main())
    assert response.json() == {"items": ["a", "b", "c"]}


# -- failures after the request may have gone out: unknown for a spend, retried for a read -


@pytest.mark.parametrize("script", [hang, disconnect, cut_body, garbage], ids=lambda s: s.__name__)
def test_a_failure_after_sending_is_unknown_for_a_run_and_retried_for_a_read(
    script: Script,
) -> None:
    async def main() -> tuple[BaseException, BaseException, Seen]:
        server, url, seen = await serve(script)
        async with client(url) as c:
            with pytest.raises(claynb.OutcomeUnknown) as run:
                await c.run_routine("enrich-person", people(3))
            with pytest.raises(claynb.TransportError) as read:
                await c.get_run_results("run_1")
        server.close()
        return run.value, read.value, seen

    run, read, seen = asyncio.run(main())
    assert isinstance(run, claynb.OutcomeUnknown) and run.item_ids == ["p0", "p1", "p2"]
    assert run.attempts == 1 and "idempotency" in str(run)
    assert not isinstance(read, claynb.OutcomeUnknown) and read.attempts == TWO.max_attempts
    assert Counter(method for _, method, _ in seen.requests) == {"POST": 1, "GET": 2}


@pytest.mark.parametrize("script", [disconnect, cut_body], ids=lambda s: s.__name__)
def test_a_spending_put_is_sent_once_whatever_aiohttp_would_retry(script: Script) -> None:
    async def main() -> Seen:
        server, url, seen = await serve(script)
        async with client(url) as c:
            with pytest.raises(claynb.OutcomeUnknown):
                await c.request("PUT", "/tables/t/rows", json={"rows": [1]}, spends=True)
        server.close()
        return seen

    assert [method for _, method, _ in asyncio.run(main()).requests] == ["PUT"]


def test_a_read_timeout_on_a_run_is_unknown_and_charged_once(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(faults=Faults(timeout=1.0), slow_s=1.0)
    items = people(5)

    async def main() -> claynb.OutcomeUnknown:
        retry = claynb.RetryPolicy(max_attempts=5, backoff_initial_s=0.01)
        async with claynb.AsyncClayClient(
            emu.api_key, base_url=emu.url, retry=retry, timeout=claynb.Timeout(10.0, read=0.3)
        ) as c:
            with pytest.raises(claynb.OutcomeUnknown) as info:
                await c.run_routine("enrich-person", items)
        return info.value

    unknown = asyncio.run(main())
    assert unknown.item_ids == [i["id"] for i in items] and unknown.attempts == 1
    emu.set_faults(Faults())
    meters = emu.meters()
    assert meters["runs"]["total"] == 1  # a retry would have started (and charged) a second
    charged = Counter(charge["item_id"] for charge in meters["charges"])
    assert charged and max(charged.values()) == 1
    assert meters["per_routine"]["enrich-person"]["items"] == 5


def test_a_dropped_run_is_unknown_and_ran_once(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(faults=Faults(drop_connection=1.0))

    async def main() -> None:
        async with claynb.AsyncClayClient(emu.api_key, base_url=emu.url, retry=TWO) as c:
            with pytest.raises(claynb.OutcomeUnknown):
                await c.run_routine("enrich-person", people(4))

    asyncio.run(main())
    emu.set_faults(Faults())
    assert emu.meters(charges=False)["runs"]["total"] == 1


# -- failures before anything was sent: retried, never unknown ----------------------------


def refused() -> str:
    return f"http://127.0.0.1:{free_port()}"


def unresolvable() -> str:
    return "http://claynb-test.invalid"


@pytest.mark.parametrize("where", [refused, unresolvable], ids=lambda w: w.__name__)
def test_a_connection_never_made_is_retried_not_unknown(where: Callable[[], str]) -> None:
    async def main() -> claynb.TransportError:
        async with client(where()) as c:
            with pytest.raises(claynb.TransportError) as info:
                await c.run_routine("enrich-person", people(1))
        return info.value

    error = asyncio.run(main())
    assert not isinstance(error, claynb.OutcomeUnknown) and error.attempts == TWO.max_attempts
    assert "ConnectError" in str(error)


def test_a_connect_timeout_is_retried_not_unknown() -> None:
    async def main(url: str) -> claynb.TransportError:
        async with client(url, timeout=claynb.Timeout(10.0, connect=0.3)) as c:
            with pytest.raises(claynb.TransportError) as info:
                await c.run_routine("enrich-person", people(1))
        return info.value

    with never_accepting() as url:
        error = asyncio.run(main(url))
    assert not isinstance(error, claynb.OutcomeUnknown) and error.attempts == TWO.max_attempts
    assert "ConnectTimeout" in str(error)


def test_proxies_come_from_the_environment_and_a_refusing_one_is_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "NO_PROXY",
        "no_proxy",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)

    async def through(proxy_url: str) -> httpx.Response | claynb.ClayError:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        async with client(unresolvable()) as c:  # a name only the proxy can reach
            try:
                return await c.request("GET", "/me")
            except claynb.ClayError as exc:
                return exc

    async def main() -> tuple[Any, Any, Seen]:
        proxy, proxy_url, seen = await serve(keep_answering)
        served = await through(proxy_url)
        proxy.close()
        refusing = await through(refused())
        return served, refusing, seen

    served, refusing, seen = asyncio.run(main())
    assert isinstance(served, httpx.Response) and served.json() == {"ok": True}
    assert len(seen.requests) == 1 and seen.requests[0][2]["host"] == "claynb-test.invalid"
    assert isinstance(refusing, claynb.TransportError)
    assert "ProxyError" in str(refusing) and refusing.attempts == 1  # never retried


# -- the sender itself --------------------------------------------------------------------


def test_timeouts_map_onto_aiohttps_phases() -> None:
    t = client_timeout(claynb.Timeout(30.0, connect=2.0, pool=5.0))
    assert (t.total, t.sock_connect, t.connect, t.sock_read) == (None, 2.0, 7.0, 30.0)


def test_every_aiohttp_failure_lands_in_a_category_of_the_core() -> None:
    # Classes the tests above produce for real, and the rest by construction: anything
    # not known to have failed before sending must read as "may have reached Clay".
    request = httpx.Request("POST", "http://127.0.0.1:9/x")
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None)
    cases: list[tuple[BaseException, type[httpx.RequestError]]] = [
        (aiohttp.ClientConnectorError(key, OSError(111, "refused")), httpx.ConnectError),
        (aiohttp.ClientProxyConnectionError(key, OSError(111, "refused")), httpx.ProxyError),
        (aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.RemoteProtocolError),
        (aiohttp.UploadAbortedError(), httpx.RemoteProtocolError),
        (aiohttp.InvalidURL("ftp://x"), httpx.UnsupportedProtocol),
    ]
    for exc, expected in cases:
        assert type(translated(exc, request)) is expected, exc
    from claynb.wire._core import NOT_SENT_ERRORS

    not_sent = [e for e, _ in cases if isinstance(translated(e, request), NOT_SENT_ERRORS)]
    assert [type(e) for e in not_sent] == [
        aiohttp.ClientConnectorError,
        aiohttp.ConnectionTimeoutError,
    ]


def test_sessions_open_in_the_loop_that_uses_them_and_close_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = client("http://127.0.0.1:9")  # made outside any loop, as a twin is

    async def use() -> int:
        server, url, seen = await serve(keep_answering)
        c.base_url = url + "/public/v0"
        await c.request("GET", "/me")
        await c.request("POST", "/routines/r/run", json={"items": []})
        await c.aclose()
        server.close()
        return len(seen.requests)

    gc.collect()  # what earlier tests in this process left is theirs: not counted here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(use()) == 2
        assert asyncio.run(use()) == 2  # a new loop, new sessions
        gc.collect()
    unclosed = [w for w in caught if "nclosed" in str(w.message)]
    assert not unclosed, [f"{w.category.__name__}: {str(w.message)[:200]}" for w in unclosed]
    assert not [r for r in caplog.records if "nclosed" in r.getMessage()]
    assert "open=False" in repr(c._sender) and isinstance(c._sender, AioSender)
