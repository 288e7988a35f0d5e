"""Clay's run-finished webhooks for the direct tier: results as soon as Clay says.

A :class:`WebhookReceiver` serves one endpoint on loopback: claynb's one receiver
(:mod:`claynb.services._webhooks`, which the event tier serves too), so a delivery is
capped, timed, and verified (``X-Clay-Signature``) before it is parsed. What passes is
de-duplicated on the run id, recorded in the journal (so a later call can explain a send
whose outcome was unknown) and wakes the pollers waiting on that run. Delivery is not
guaranteed, so the engine polls anyway.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from claynb._secrets import mask, register_secret
from claynb.pipeline._journal import Journal
from claynb.services._http import BackgroundServer
from claynb.services._webhooks import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    ClayWebhookEndpoint,
    Outcome,
    ReceiverLimits,
    ReceiverStats,
    RunFinished,
)


class WebhookReceiver:
    """Clay's run-finished webhooks, received on loopback, waking the pollers early.

    Register :attr:`url` with Clay (``emu.create_webhook(rx.url)`` on the emulator, the
    Clay CLI for real Clay), then give the webhook's id and signing secret to
    :meth:`configure` and pass ``webhook=rx`` to ``enrich``. Deliveries are verified
    (``X-Clay-Signature``) before they are believed and de-duplicated on the run id;
    delivery is not guaranteed, so the engine keeps polling at ``poll_max_interval``.
    For Clay to reach it, the URL must be reachable from Clay (a tunnel, in practice).

    Whatever else reaches the URL is refused without harm: bodies over ``max_body_bytes``
    (413, unread), unsigned deliveries (401, unread), headers not in within
    ``head_timeout_s`` (the connection closed), bodies not in within ``body_timeout_s``
    (408), malformed ones (400).

    ``on_finished`` is called with each verified run id once (the queue tier passes
    :meth:`claynb.queue.LeadQueue.delivered`, which collects leads parked ``unknown``).
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
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.webhook_id: str | None = None
        self._secret: str | None = None
        self.configure(webhook_id, signing_secret)
        self.host, self._port = host, port
        self.limits = ReceiverLimits(max_body_bytes, head_timeout_s, body_timeout_s)
        self.finished: set[str] = set()
        #: Deliveries by outcome (``accepted``, ``duplicate``, ``forged``, ``too_large``...).
        self.stats = ReceiverStats()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()
        self._http: BackgroundServer | None = None
        self._home = home
        self._journal: Journal | None = None
        self._on_finished = on_finished

    def configure(self, webhook_id: str | None, signing_secret: str | None) -> None:
        """The id Clay gave the webhook and its signing secret (shown once by Clay)."""
        if signing_secret:
            register_secret(signing_secret)
        self.webhook_id, self._secret = webhook_id, signing_secret

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}{self.PATH}"

    @property
    def received(self) -> int:
        """Deliveries that verified: runs, replays and test events."""
        return self.stats.total(Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.TEST_EVENT)

    @property
    def rejected(self) -> int:
        """Deliveries refused for their signature (missing, malformed or forged)."""
        return self.stats.total(Outcome.UNSIGNED, Outcome.FORGED)

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(url={self.url!r}, webhook_id={self.webhook_id!r}, "
            f"signing_secret={mask(self._secret)})"
        )

    def _secrets(self) -> list[str]:
        return [self._secret] if self._secret else []

    async def _run_finished(self, run: RunFinished) -> Outcome:
        """A verified delivery: wake the run's pollers, once per run."""
        with self._lock:
            if run.run_id in self.finished:  # a replay
                return Outcome.DUPLICATE
            self.finished.add(run.run_id)
            waiters = self._waiters.pop(run.run_id, [])
        if self._journal is not None:  # durable: a later call can explain an unknown send
            self._journal.delivered(run.run_id)
        if self._on_finished is not None:
            try:
                await asyncio.to_thread(self._on_finished, run.run_id)
            except Exception:  # its store is down: forget the run, so Clay's retry is heard
                with self._lock:
                    self.finished.discard(run.run_id)
                return Outcome.UNAVAILABLE
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return Outcome.ACCEPTED

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
        from starlette.routing import Route

        endpoint = ClayWebhookEndpoint(self._secrets, self._run_finished, self.limits, self.stats)
        app = Starlette(routes=[Route(self.PATH, endpoint, methods=["POST"])])
        self._journal = Journal.open(self._home)
        self._http = BackgroundServer(
            app,
            name="claynb-webhook-receiver",
            host=self.host,
            port=self._port,
            **self.limits.server_options(),
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
