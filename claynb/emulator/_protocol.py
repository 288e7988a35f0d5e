"""A uvicorn HTTP protocol that lets the app close the TCP connection without answering.

ASGI has no way to say "hang up"; returning without a response makes uvicorn send a
500, which is not what a flaky network looks like. This protocol adds a callable to
each request's scope (``claynb.drop``) that aborts the transport, so the client sees
the connection reset with no response, exactly as after a real network failure.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from claynb.emulator._http import DROP_SCOPE_KEY


class DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a ``claynb.drop`` hook in every request scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope[DROP_SCOPE_KEY] = self._abort
            await inner(scope, receive, send)

        self.app = app

    def _abort(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.abort()
