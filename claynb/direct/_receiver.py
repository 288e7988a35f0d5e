"""Clay's run-finished webhooks for the direct tier: results as soon as Clay says.

A :class:`WebhookReceiver` serves one endpoint on loopback. Every delivery is verified
(``X-Clay-Signature``) before it is believed, de-duplicated on the run id, recorded in the
journal (so a later call can explain a send whose outcome was unknown) and wakes the
pollers waiting on that run. Delivery is not guaranteed, so the engine polls anyway.
"""

from __future__ import annotations

import asyncio
import json
import threading

from claynb._secrets import mask, register_secret
from claynb.pipeline._journal import Journal
from claynb.services._http import BackgroundServer
from claynb.wire._signatures import SIGNATURE_HEADER, verify_signature


class WebhookReceiver:
    """Clay's run-finished webhooks, received on loopback, waking the pollers early.

    Register :attr:`url` with Clay (``emu.create_webhook(rx.url)`` on the emulator, the
    Clay CLI for real Clay), then give the webhook's id and signing secret to
    :meth:`configure` and pass ``webhook=rx`` to ``enrich``. Deliveries are verified
    (``X-Clay-Signature``) before they are believed and de-duplicated on the run id;
    delivery is not guaranteed, so the engine keeps polling at ``poll_max_interval``.
    For Clay to reach it, the URL must be reachable from Clay (a tunnel, in practice).
    """

    PATH = "/clay-webhook"

    def __init__(
        self,
        *,
        webhook_id: str | None = None,
        signing_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        home: str | None = None,
    ) -> None:
        self.webhook_id: str | None = None
        self._secret: str | None = None
        self.configure(webhook_id, signing_secret)
        self.host, self._port = host, port
        self.finished: set[str] = set()
        self.received = self.rejected = 0
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()
        self._http: BackgroundServer | None = None
        self._home = home
        self._journal: Journal | None = None

    def configure(self, webhook_id: str | None, signing_secret: str | None) -> None:
        """The id Clay gave the webhook and its signing secret (shown once by Clay)."""
        if signing_secret:
            register_secret(signing_secret)
        self.webhook_id, self._secret = webhook_id, signing_secret

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}{self.PATH}"

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(url={self.url!r}, webhook_id={self.webhook_id!r}, "
            f"signing_secret={mask(self._secret)})"
        )

    def deliver(self, body: bytes, signature: str | None) -> int:
        """Handle one delivery; the HTTP status to answer (401 unless it verifies)."""
        if not self._secret or not verify_signature(self._secret, body, signature):
            with self._lock:
                self.rejected += 1
            return 401
        try:
            run_id = (json.loads(body).get("data") or {}).get("routine_run_id")
        except (ValueError, AttributeError):
            return 400
        with self._lock:
            self.received += 1
            if not run_id or run_id in self.finished:  # a test event, or a replay
                return 200
            self.finished.add(run_id)
            waiters = self._waiters.pop(run_id, [])
        if self._journal is not None:  # durable: a later call can explain an unknown send
            self._journal.delivered(run_id)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return 200

    async def wait(self, run_id: str, timeout: float) -> bool:
        """True as soon as the run's delivery has come, False after ``timeout`` seconds."""
        event, loop = asyncio.Event(), asyncio.get_running_loop()
        with self._lock:
            if run_id in self.finished:
                return True
            self._waiters.setdefault(run_id, []).append((loop, event))
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiting = self._waiters.get(run_id, [])
                if (loop, event) in waiting:
                    waiting.remove((loop, event))

    def start(self) -> WebhookReceiver:
        """Serve on a free loopback port (or the one given), in a background thread.

        Raises :class:`claynb.ConfigError` when the server does not come up.
        """
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def endpoint(request: Request) -> Response:
            status = self.deliver(await request.body(), request.headers.get(SIGNATURE_HEADER))
            return Response(status_code=status)

        app = Starlette(routes=[Route(self.PATH, endpoint, methods=["POST"])])
        self._journal = Journal.open(self._home)
        self._http = BackgroundServer(
            app, name="claynb-webhook-receiver", host=self.host, port=self._port
        )
        try:
            self._http.start()
        except BaseException:
            self.stop()
            raise
        self._port = self._http.port or self._port
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
        self._http = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
