"""Small HTTP helpers shared by the emulator's routes: JSON answers, errors, dropping.

Dropping a connection has to be real (a client must see the socket close with no
answer), which ASGI cannot express; the server's protocol puts a ``claynb.drop``
callable in the scope that aborts the transport, and :class:`DropConnection` calls it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DROP_SCOPE_KEY = "claynb.drop"


class JSON(Response):
    """A compact JSON answer (Starlette's JSONResponse, without the indent work)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    """Clay's error shape: a bare ``{"message": ...}`` (no stable codes; the status is the category)."""
    return JSON({"message": message}, status_code=status, headers=headers)


class DropConnection(Response):
    """Close the TCP connection with no answer at all."""

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        drop = scope.get(DROP_SCOPE_KEY)
        if drop is None:  # served by a server without the dropping protocol
            raise RuntimeError("connection dropped by fault injection")
        drop()
        # Let the transport report the loss before returning, so the server does not
        # try (and log a failure) to answer on a closed connection.
        for _ in range(3):
            await asyncio.sleep(0)
