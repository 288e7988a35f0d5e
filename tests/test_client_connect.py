"""claynb.connect(): the environment's key only reaches real Clay when spending is allowed."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import claynb
from claynb._connect import SpendGuardWarning, is_loopback

REAL = "https://api.clay.com/public/v0"
KEY = "clay_live_should_never_be_used_0001"


def test_without_a_key_connect_uses_the_embedded_emulator() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = claynb.connect()
    with client:
        assert isinstance(client, claynb.ClayClient) and client.emulator is not None
        assert is_loopback(client.base_url)
        assert client.me().workspace_id == "ws_emulator"
    assert claynb.connect().emulator is client.emulator  # one shared emulator per process


def test_a_real_key_without_permission_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAY_API_KEY", KEY)
    monkeypatch.setenv("CLAY_BASE_URL", REAL)
    monkeypatch.delenv("CLAYNB_ALLOW_SPEND", raising=False)
    with pytest.warns(SpendGuardWarning, match="allow_spend=True") as record:
        client = claynb.connect()
    with client:
        assert is_loopback(client.base_url) and client.emulator is not None
        assert client.me().user_id == "usr_emulator"
    assert all(KEY not in str(w.message) for w in record)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_spending_is_allowed_only_when_asked(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setenv("CLAY_API_KEY", KEY)
    if how == "environment":
        monkeypatch.setenv("CLAYNB_ALLOW_SPEND", "1")
        client = claynb.connect()
    else:
        client = claynb.connect(allow_spend=True)
    with client:  # built, never used: no request goes out in a test
        assert client.base_url == REAL and client.emulator is None
        assert KEY not in repr(client)


def test_a_loopback_url_needs_no_permission(
    make_emulator: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = make_emulator()
    monkeypatch.setenv("CLAY_API_KEY", emu.api_key)
    monkeypatch.setenv("CLAY_BASE_URL", emu.url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = claynb.connect()
    with client:
        assert client.emulator is None and client.base_url == emu.url + "/public/v0"
        client.me()
    assert emu.meters(charges=False)["requests"]["total"] == 1


def test_emulator_options_and_the_async_client() -> None:
    client = claynb.connect(
        asynchronous=True, emulator_options={"run_latency_s": 0, "rate_limit_rps": 50}
    )
    assert isinstance(client, claynb.AsyncClayClient)

    async def main() -> Any:
        async with client:
            return await client.wait_for_run(
                await client.run_routine(
                    "enrich-person", [{"id": "a", "inputs": {"email": "a@b.io"}}]
                ),
                poll_interval=0.01,
            )

    assert asyncio.run(main()).complete
    answer = httpx.get(
        f"{client.emulator.url}/public/v0/me", headers={"clay-api-key": client.emulator.api_key}
    )
    assert answer.headers["x-ratelimit-limit"] == "50"  # the dedicated emulator's setting
    client.emulator.stop()
    with pytest.raises(claynb.ConfigError):
        claynb.connect(emulator_options={"no_such_setting": 1})


def test_loopback_detection() -> None:
    assert is_loopback("http://127.0.0.1:8765/public/v0") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:80") and not is_loopback(REAL)
    assert not is_loopback("http://127.0.0.1.evil.example/")
