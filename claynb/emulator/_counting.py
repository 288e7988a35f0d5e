"""Counting answers by status for the meters' ``requests`` figure.

A thin ASGI wrapper over /public/v0 and the webhook sources (not /_emulator). A request
is counted as its answer starts, before the client can see it, so a client that reads
the meters right after an answer always finds its request there; a dropped connection
is counted as ``dropped`` just before the socket is closed, for the same reason.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claynb.emulator._http import DROP_SCOPE_KEY

COUNTED_PREFIXES = ("/public/v0", "/v3/")


class CountRequests:
    """Counts requests to Clay's surfaces by answer status."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(COUNTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        counted: list[str] = []

        def count(status: str) -> None:
            if not counted:
                counted.append(status)
                self.state.count_request(status)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                count(str(message["status"]))
            await send(message)

        drop = scope.get(DROP_SCOPE_KEY)
        if drop is not None:

            def counting_drop() -> None:
                count("dropped")
                drop()

            scope[DROP_SCOPE_KEY] = counting_drop
        try:
            await self.app(scope, receive, counting_send)
        finally:
            count("dropped")  # no answer was started: the client got nothing
