"""The webhook receiver: the event tier's front door, an ASGI (Starlette) app.

Two kinds of callers reach it:

- **Clay's outbound webhook** (``POST /webhooks/clay``) says a routine run finished. The
  body is signed: ``X-Clay-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, checked
  in constant time against the signing secret *before* the body is parsed. A test event
  (``data: {}``) is acknowledged and not published.
- **A table's HTTP API column** (``POST /callbacks/table``) posts an enriched row back,
  authenticated by a shared-secret header the user configured on the column; the row
  carries the row id claynb put in it when the frame was sent.

Both endpoints are claynb's one receiver (:mod:`claynb.services._webhooks`, which the
direct tier's :class:`claynb.WebhookReceiver` serves too): bodies capped (413) and timed
(408), the credential checked before a byte is parsed (401), malformed deliveries 400.
This module adds the event tier's step. Nothing is signed with a timestamp, so a captured
delivery verifies forever and Clay may deliver twice: every accepted delivery is claimed
in a durable :class:`DedupeStore` first, and a replay is answered 200 and ignored. No
input makes the receiver answer 5xx; only a bus or store that is down does (503, so the
sender retries and nothing is lost).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from claynb._secrets import mask, redact, register_secret
from claynb.events._bus import RUNS_FINISHED, TABLE_ROWS
from claynb.events._dedupe import DedupeStore
from claynb.services._webhooks import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    ClayWebhookEndpoint,
    Outcome,
    ReceiverLimits,
    ReceiverStats,
    RunFinished,
    SharedSecretEndpoint,
)

log = logging.getLogger("claynb.events.receiver")

#: The header an HTTP API column sends the shared secret in (configured on the column).
CALLBACK_HEADER = "x-claynb-secret"
#: The column claynb adds to every row it sends to a table, and expects back.
ROW_ID_FIELD = "claynb_row_id"

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class ReceiverSettings:
    """What the receiver checks deliveries against. Secrets never reach a repr or a log."""

    signing_secrets: Mapping[str, str] | str | None = None
    callback_secret: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    row_id_field: str = ROW_ID_FIELD
    callback_header: str = CALLBACK_HEADER
    head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S

    def __post_init__(self) -> None:
        for secret in self.secrets():
            register_secret(secret)
        register_secret(self.callback_secret)
        self.limits()  # a limit that is not positive fails here, not at the first delivery

    def secrets(self) -> list[str]:
        """Every signing secret the webhook endpoint accepts (one per registered webhook)."""
        if not self.signing_secrets:
            return []
        if isinstance(self.signing_secrets, str):
            return [self.signing_secrets]
        return [s for s in self.signing_secrets.values() if s]

    def limits(self) -> ReceiverLimits:
        """The body cap and the deadlines for slow senders, as the receiver applies them."""
        return ReceiverLimits(self.max_body_bytes, self.head_timeout_s, self.body_timeout_s)

    def __repr__(self) -> str:
        return (
            f"ReceiverSettings(signing_secrets={len(self.secrets())} set, "
            f"callback_secret={mask(self.callback_secret)}, max_body_bytes={self.max_body_bytes})"
        )


class Receiver:
    """The endpoints behind the app; the store and the publisher are passed in.

    :attr:`webhook` and :attr:`table_callback` are ASGI endpoints (claynb's one receiver);
    this class is what they do with a delivery that passed: claim it, then publish it.
    """

    def __init__(
        self,
        settings: ReceiverSettings,
        store: DedupeStore,
        publish: Publish,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.publish = publish
        self.clock = clock
        self.stats = ReceiverStats()
        #: What ``/healthz`` asks: each returns why a part cannot work, or None (the
        #: enrichment service served beside the receiver adds its reconciler's check).
        self.checks: list[Callable[[], str | None]] = []
        limits = settings.limits()
        self.webhook = ClayWebhookEndpoint(settings.secrets, self._run_finished, limits, self.stats)
        self.table_callback = SharedSecretEndpoint(
            settings.callback_header,
            lambda: settings.callback_secret,
            settings.row_id_field,
            self._row,
            limits,
            self.stats,
        )

    async def _run_finished(self, run: RunFinished) -> Outcome:
        event = {
            "routine_run_id": run.run_id,
            "webhook_id": run.webhook_id,
            "created_at": run.created_at,
            "received_at": self.clock(),
        }
        return await self._accept(f"run:{run.run_id}", RUNS_FINISHED, event, None)

    async def _row(self, row_id: str, row: dict[str, Any]) -> Outcome:
        event = {"row_id": row_id, "row": row, "received_at": self.clock()}
        return await self._accept(f"row:{row_id}", TABLE_ROWS, event, json.dumps(event))

    async def _accept(
        self, key: str, topic: str, event: dict[str, Any], payload: str | None
    ) -> Outcome:
        """Claim, then publish; a delivery that could not be published is un-claimed."""
        try:
            fresh = await anyio.to_thread.run_sync(self.store.claim, key, payload)
        except Exception as exc:  # noqa: BLE001 - the store is down, not the input
            log.warning("dedupe store unavailable: %s", redact(str(exc)))
            return Outcome.UNAVAILABLE
        if not fresh:
            return Outcome.DUPLICATE
        try:
            await self.publish(topic, event)
        except Exception as exc:  # noqa: BLE001 - the bus is down, not the input
            log.warning("event bus unavailable: %s", redact(str(exc)))
            await anyio.to_thread.run_sync(self.store.release, key)
            return Outcome.UNAVAILABLE
        return Outcome.ACCEPTED

    async def health(self, request: Request) -> JSONResponse:
        """200 while every part can work; 503 with the reasons when one cannot."""
        problems = [p for p in (check() for check in self.checks) if p]
        body = {"ok": not problems, "counts": dict(self.stats.counts)}
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=503 if problems else 200)


def create_receiver_app(receiver: Receiver, lifespan: Any = None) -> Starlette:
    """The ASGI app: the two delivery endpoints and a health check."""
    routes = [
        Route("/webhooks/clay", receiver.webhook, methods=["POST"]),
        Route("/callbacks/table", receiver.table_callback, methods=["POST"]),
        Route("/healthz", receiver.health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receiver = receiver
    return app
