"""Running the receiver: in a background thread for notebooks and tests, or in the foreground.

The receiver publishes to the bus from its own event loop, so it opens its own
publisher-only :class:`Bus` in the app's lifespan. :class:`ReceiverServer` serves the app
on a free loopback port in a daemon thread (:class:`claynb.services._http.BackgroundServer`,
which raises when the app's lifespan cannot reach the bus) and stops it cleanly; the
``claynb receiver`` command serves the same app in the foreground.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from claynb.events._bus import Bus
from claynb.events._dedupe import DedupeStore, open_dedupe_store
from claynb.events._receiver import Receiver, ReceiverSettings, create_receiver_app
from claynb.services._http import BackgroundServer


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
        self._http: BackgroundServer | None = None

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
        """Serve until :meth:`stop`; raises :class:`claynb.ConfigError` when it does not
        come up (the bus refused the app's lifespan, the port is taken)."""
        self.app = build_app(self.settings, self.bus_url, self.namespace, self.store)
        self._http = BackgroundServer(
            self.app,
            name="claynb-receiver",
            host=self.host,
            port=self.port,
            lifespan="on",
            **self.settings.limits().server_options(),
        ).start()
        self.port = self._http.port or self.port
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.stop()
        self._http = None

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ReceiverServer({self.url!r}, {self.settings!r})"
