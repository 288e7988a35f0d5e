"""claynb's own HTTP servers come up, or say why they did not: never a silent half-start."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import claynb
from claynb.services._http import BackgroundServer


def hello_app(lifespan: Any = None) -> Starlette:
    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)], lifespan=lifespan)


def test_a_server_serves_until_stopped() -> None:
    with BackgroundServer(hello_app(), name="test-server") as server:
        assert server.running and server.port
        assert httpx.get(server.url, timeout=10).text == "hello"
    assert not server.running
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url, timeout=2)


def test_a_taken_port_raises_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(claynb.ConfigError, match="cannot listen"):
            BackgroundServer(hello_app(), name="test-server", port=port).start()
        with pytest.raises(claynb.ConfigError, match="cannot listen"):
            claynb.WebhookReceiver(port=port).start()
        with pytest.raises(claynb.ConfigError, match="cannot listen"):
            claynb.Emulator(port=port).start()


def test_a_lifespan_that_fails_raises_instead_of_returning(claynb_home: Any) -> None:
    """The event tier's receiver connects to its bus in the app's lifespan: a bus that is
    not there must stop start(), not leave a thread that never serves."""

    @asynccontextmanager
    async def broken(app: Any) -> AsyncIterator[None]:
        raise RuntimeError("the bus is not there")
        yield

    server = BackgroundServer(hello_app(broken), name="test-server", lifespan="on")
    with pytest.raises(claynb.ConfigError, match="did not start"):
        server.start()
    assert not server.running
