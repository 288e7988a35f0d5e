"""A tiny HTTP server that records what is POSTed to it: a stand-in for a webhook receiver.

Tests and notebooks point the emulator's outbound webhooks and HTTP API columns at it
to see exactly what Clay would deliver (raw bodies, headers, order). ``statuses`` lets
it answer with failures first, to exercise retries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claynb.services._http import BackgroundServer


@dataclass(frozen=True)
class Recorded:
    """One request as received: the raw body is kept byte for byte (signatures cover it)."""

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)
    time: float = 0.0

    def json(self) -> object:
        import json

        return json.loads(self.body)


class RecordingServer:
    """Records every request on a free loopback port; answers 200 unless told otherwise."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[Recorded] = []
        self.statuses = list(statuses or [])  # answered in order before falling back to 200
        self._lock = threading.Lock()
        self._http: BackgroundServer | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _record(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.requests.append(
                Recorded(request.method, request.url.path, dict(request.headers), body, time.time())
            )
            status = self.statuses.pop(0) if self.statuses else 200
        return Response(b'{"ok":true}', status_code=status, media_type="application/json")

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Wait until at least ``count`` requests arrived (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        with self._lock:
            return list(self.requests)

    def start(self) -> RecordingServer:
        app = Starlette(
            routes=[Route("/{path:path}", self._record, methods=["GET", "POST", "PUT"])]
        )
        self._http = BackgroundServer(app, name="claynb-recorder").start()
        self.port = self._http.port
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
