"""The API key, signing secrets and source tokens never reach a repr, a log line, an
exception's text or a traceback, whatever the client goes through."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _loopback_helpers import cut_body, disconnect, garbage, serve

import claynb

KEY = "clay_live_k3y_0123456789abcdef"
TOKEN = "src-token-9876543210-secret"


def everything_said(exc: BaseException | None, caplog: pytest.LogCaptureFixture) -> str:
    parts = [r.getMessage() for r in caplog.records]
    parts += [logging.Formatter().format(r) for r in caplog.records]
    if exc is not None:
        parts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        parts += [str(getattr(exc, "url", "")), str(getattr(exc, "report", ""))]
    return "\n".join(parts)


@pytest.fixture
def loud(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # claynb, httpx and httpcore at their most talkative
    return caplog


def test_repr_masks_the_key() -> None:
    for client in (
        claynb.ClayClient(KEY, base_url="http://127.0.0.1:9"),
        claynb.AsyncClayClient(KEY, base_url="http://127.0.0.1:9"),
    ):
        assert KEY not in repr(client) and "api_key='***'" in repr(client)
        assert "base_url='http://127.0.0.1:9/public/v0'" in repr(client)
        for part in ("_http", "_spend_http", "_sender"):
            assert KEY not in repr(vars(client).get(part))


def test_a_refused_key_leaves_no_trace(
    make_emulator: Callable[..., Any], loud: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator()
    with (
        claynb.ClayClient(KEY, base_url=emu.url) as c,
        pytest.raises(claynb.AuthenticationError) as info,
    ):
        c.me()
    said = everything_said(info.value, loud)
    assert "401" in said and KEY not in said


def test_retries_and_unknown_outcomes_log_without_the_key(
    make_emulator: Callable[..., Any], loud: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(api_key=KEY, faults=claynb.Faults(server_error=0.5), seed=2)
    retry = claynb.RetryPolicy(max_attempts=10, backoff_initial_s=0.01)
    with claynb.ClayClient(KEY, base_url=emu.url, retry=retry) as c:
        for _ in range(3):
            c.me()
        emu.set_faults(claynb.Faults(drop_connection=1.0))
        with pytest.raises(claynb.OutcomeUnknown) as info:
            c.run_routine("enrich-person", [{"id": "a", "inputs": {"email": "a@acme.com"}}])
    said = everything_said(info.value, loud)
    assert "retrying" in said and "idempotency" in said  # the lines under test were logged
    assert KEY not in said


def test_a_transport_error_traceback_is_clean(loud: pytest.LogCaptureFixture) -> None:
    retry = claynb.RetryPolicy(max_attempts=2, backoff_initial_s=0.01)
    with (
        claynb.ClayClient(KEY, base_url="http://127.0.0.1:9", retry=retry) as c,
        pytest.raises(claynb.TransportError) as info,
    ):
        c.me()
    assert info.value.__cause__ is not None
    assert KEY not in everything_said(info.value, loud)


def test_an_answer_echoing_the_key_is_redacted(loud: pytest.LogCaptureFixture) -> None:
    # The emulator never echoes a key, but a misbehaving proxy could: the only fault here
    # that cannot be produced for real, so it is mocked.
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, json={"message": f"bad header clay-api-key: {request.headers['clay-api-key']}"}
        )

    with (
        claynb.ClayClient(
            KEY, base_url="http://127.0.0.1:9", transport=httpx.MockTransport(echo)
        ) as c,
        pytest.raises(claynb.HTTPStatusError) as info,
    ):
        c.me()
    said = everything_said(info.value, loud)
    assert "bad header" in said and KEY not in said


def test_source_tokens_and_signing_secrets_stay_hidden(
    make_emulator: Callable[..., Any], loud: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(api_key=KEY)
    hook = emu.create_webhook("http://127.0.0.1:9/hook")
    table = emu.create_table("leads", auth_token=TOKEN)
    with claynb.ClayClient(KEY, base_url=emu.url) as c:
        report = c.send_to_source(table["webhook_url"], [{"a": 1}], auth_token=TOKEN)
        with pytest.raises(claynb.AuthenticationError) as info:
            c.send_to_source(table["webhook_url"], [{"a": 2}], auth_token=TOKEN[::-1])
    said = everything_said(info.value, loud) + repr(report)
    for secret in (KEY, TOKEN, TOKEN[::-1], hook["signingSecret"]):
        assert secret not in said


def test_the_async_client_is_as_discreet(
    make_emulator: Callable[..., Any], loud: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator()

    async def main() -> None:
        async with claynb.AsyncClayClient(KEY, base_url=emu.url) as c:
            await c.me()

    with pytest.raises(claynb.AuthenticationError) as info:
        asyncio.run(main())
    assert KEY not in everything_said(info.value, loud)


@pytest.mark.parametrize("script", [garbage, disconnect, cut_body], ids=lambda s: s.__name__)
def test_aiohttps_failures_leave_no_trace(script: Any, loud: pytest.LogCaptureFixture) -> None:
    # aiohttp's ClientResponseError (an answer that is not HTTP) prints the request's
    # headers in its repr: the client must not chain it where a traceback shows it.
    async def main() -> tuple[claynb.ClayError, claynb.ClayError]:
        server, url, _ = await serve(script)
        retry = claynb.RetryPolicy(max_attempts=2, backoff_initial_s=0.01)
        async with claynb.AsyncClayClient(KEY, base_url=url, retry=retry) as c:
            with pytest.raises(claynb.OutcomeUnknown) as run:
                await c.run_routine("enrich-person", [{"id": "a", "inputs": {"email": "a@b.co"}}])
            with pytest.raises(claynb.TransportError) as read:
                await c.me()
        server.close()
        return run.value, read.value

    run, read = asyncio.run(main())
    said = everything_said(run, loud) + everything_said(read, loud)
    assert "idempotency" in said and "retrying" in said  # the lines under test were logged
    assert KEY not in said
    for exc in (run, read):
        cause = exc.__cause__
        assert cause is not None and cause.__context__ is None and cause.__cause__ is None
