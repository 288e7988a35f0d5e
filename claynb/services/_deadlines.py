"""A deadline on each request's head, for servers that slow senders must not hold open.

uvicorn times nothing before a request's headers are complete: its keep-alive timer starts
only after a response and is cancelled by any byte that arrives, so a sender trickling one
header byte a second ("slowloris") holds a connection, and a place in the server, for as
long as it likes. The ASGI app cannot help, because it is only called once the head is in.

:func:`head_deadline_protocol` is uvicorn's own h11 protocol with one timer more: armed
when a connection opens and again when a response completes (the next request on a
keep-alive connection), disarmed when a request's head has arrived, and closing the
connection when it fires. Bytes arriving do not push it back, so the whole head must come
within the deadline however it is sliced. The body has its own deadline, where it is read
(:mod:`claynb.services._webhooks`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not in on time."""

    #: Seconds a sender has to finish a request's head (set by :func:`head_deadline_protocol`).
    head_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head has arrived: its body is timed elsewhere
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # before uvicorn starts a pipelined request, which disarms it again
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(head_timeout_s: float) -> type[HeadDeadlineProtocol]:
    """The protocol class to give uvicorn (``http=``) for a ``head_timeout_s`` deadline.

    uvicorn builds protocols itself, with arguments of its own choosing, so the deadline
    travels as a class attribute of a subclass made for it.
    """
    if head_timeout_s <= 0:
        raise ValueError(f"head_timeout_s must be positive, not {head_timeout_s!r}")
    return type(
        "HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"head_timeout_s": float(head_timeout_s)}
    )
