"""Counting answers by status for the meters' ``requests`` figure.

A thin ASGI wrapper: it sees the status line of every answer to /public/v0 and the
webhook sources, and counts a request that got no answer at all as ``dropped``.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COUNTED_PREFIXES = ("/public/v0", "/v3/")


class CountRequests:
    """Counts requests to Clay's surfaces (not /_emulator) by answer status."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(COUNTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.state.count_request(str(status[0]) if status else "dropped")
