"""Running the receiver: in a background thread for notebooks and tests, or in the foreground.

The receiver publishes to the bus from its own event loop, so it opens its own
publisher-only :class:`Bus` in the app's lifespan. :class:`ReceiverServer` serves the app
with uvicorn on a free loopback port in a daemon thread and stops it cleanly; the
``claynb receiver`` command serves the same app in the foreground.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from claynb.events._bus import Bus
from claynb.events._dedupe import DedupeStore, open_dedupe_store
from claynb.events._receiver import Receiver, ReceiverSettings, create_receiver_app
from claynb.services.nats import free_port
from claynb.wire._exceptions import ConfigError

STARTUP_TIMEOUT_S = 15.0


def build_app(
    settings: ReceiverSettings,
    bus_url: str,
    namespace: str = "default",
    store: DedupeStore | None = None,
) -> Any:
    """The receiver app, publishing to ``bus_url`` (connected when the app starts)."""
    store = store if store is not None else open_dedupe_store()
    bus = Bus(bus_url, namespace)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await bus.start()
        try:
            yield
        finally:
            await bus.stop()

    return create_receiver_app(Receiver(settings, store, bus.publish), lifespan=lifespan)


class ReceiverServer:
    """The receiver served on loopback in a background thread; a context manager."""

    def __init__(
        self,
        settings: ReceiverSettings,
        bus_url: str,
        namespace: str = "default",
        *,
        store: DedupeStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.settings = settings
        self.bus_url = bus_url
        self.namespace = namespace
        self.store = store if store is not None else open_dedupe_store()
        self.host = host
        self.port = port
        self.app: Any = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/clay"

    @property
    def callback_url(self) -> str:
        return f"{self.url}/callbacks/table"

    @property
    def stats(self) -> dict[str, int]:
        return dict(self.app.state.receiver.stats.counts) if self.app is not None else {}

    def start(self) -> ReceiverServer:
        import uvicorn

        self.port = self.port or free_port()
        self.app = build_app(self.settings, self.bus_url, self.namespace, self.store)
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="claynb-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the receiver did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ReceiverServer({self.url!r}, {self.settings!r})"
