"""The webhook receiver: the event tier's front door, an ASGI (Starlette) app.

Two kinds of callers reach it:

- **Clay's outbound webhook** (``POST /webhooks/clay``) says a routine run finished. The
  body is signed: ``X-Clay-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, checked
  in constant time against the signing secret *before* the body is parsed. A test event
  (``data: {}``) is acknowledged and not published.
- **A table's HTTP API column** (``POST /callbacks/table``) posts an enriched row back,
  authenticated by a shared-secret header the user configured on the column; the row
  carries the row id claynb put in it when the frame was sent.

Nothing is signed with a timestamp, so a captured delivery verifies forever and Clay may
deliver twice: every accepted delivery is claimed in a durable :class:`DedupeStore` first,
and a replay is answered 200 and ignored. Forged or unsigned deliveries are answered 401,
malformed ones 400, bodies over ``max_body_bytes`` 413. No input makes the receiver answer
5xx; only a bus or store that is down does (503, so the sender retries and nothing is lost).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from claynb._secrets import mask, redact, register_secret
from claynb.events._bus import RUNS_FINISHED, TABLE_ROWS
from claynb.events._dedupe import DedupeStore
from claynb.wire._signatures import SIGNATURE_HEADER, verify_signature

log = logging.getLogger("claynb.events.receiver")

#: The header an HTTP API column sends the shared secret in (configured on the column).
CALLBACK_HEADER = "x-claynb-secret"
#: The column claynb adds to every row it sends to a table, and expects back.
ROW_ID_FIELD = "claynb_row_id"
#: Clay's webhook bodies are a few hundred bytes; table rows stay under Clay's 100 KB.
DEFAULT_MAX_BODY_BYTES = 128 * 1024
_MAX_ID_LEN = 200

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class ReceiverSettings:
    """What the receiver checks deliveries against. Secrets never reach a repr or a log."""

    signing_secrets: Mapping[str, str] | str | None = None
    callback_secret: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    row_id_field: str = ROW_ID_FIELD
    callback_header: str = CALLBACK_HEADER

    def __post_init__(self) -> None:
        for secret in self.secrets():
            register_secret(secret)
        register_secret(self.callback_secret)

    def secrets(self) -> list[str]:
        """Every signing secret the webhook endpoint accepts (one per registered webhook)."""
        if not self.signing_secrets:
            return []
        if isinstance(self.signing_secrets, str):
            return [self.signing_secrets]
        return [s for s in self.signing_secrets.values() if s]

    def __repr__(self) -> str:
        return (
            f"ReceiverSettings(signing_secrets={len(self.secrets())} set, "
            f"callback_secret={mask(self.callback_secret)}, max_body_bytes={self.max_body_bytes})"
        )


@dataclass
class ReceiverStats:
    """Counts of what the receiver did, by outcome: for dashboards and tests."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (before reading it all) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        return b""  # the sender is gone; an empty body is answered 400/401, never 5xx
    return b"".join(chunks)


def _answer(stats: ReceiverStats, status: int, outcome: str, detail: str = "") -> JSONResponse:
    stats.add(outcome)
    body: dict[str, Any] = {"status": outcome}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


def _parse_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _valid_id(value: Any) -> str | None:
    """A delivery id we can key on: a short non-empty string, or an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LEN and value.isprintable():
        return value
    return None


class Receiver:
    """The handlers behind the app; the store and the publisher are passed in."""

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

    async def webhook(self, request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
        except _TooLarge:
            return _answer(self.stats, 413, "too_large")
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return _answer(self.stats, 401, "unsigned", "missing X-Clay-Signature")
        if not verify_signature(self.settings.secrets(), body, header):
            return _answer(self.stats, 401, "forged", "signature does not verify")
        event = _parse_object(body)
        data = event.get("data") if event is not None else None
        if event is None or not isinstance(data, dict):
            return _answer(self.stats, 400, "malformed", "expected {webhookId, createdAt, data}")
        if not data:
            return _answer(self.stats, 200, "test_event")
        run_id = _valid_id(data.get("routine_run_id"))
        if run_id is None:
            return _answer(
                self.stats, 400, "malformed", "data.routine_run_id is missing or invalid"
            )
        out = {
            "routine_run_id": run_id,
            "webhook_id": _valid_id(event.get("webhookId")),
            "created_at": str(event.get("createdAt", ""))[:64],
            "received_at": self.clock(),
        }
        return await self._accept(f"run:{run_id}", RUNS_FINISHED, out, None)

    async def table_callback(self, request: Request) -> JSONResponse:
        try:
            body = await _read_body(request, self.settings.max_body_bytes)
        except _TooLarge:
            return _answer(self.stats, 413, "too_large")
        given = request.headers.get(self.settings.callback_header, "")
        expected = self.settings.callback_secret or ""
        if not expected or not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode("utf-8")
        ):
            return _answer(
                self.stats, 401, "forged", f"missing or wrong {self.settings.callback_header}"
            )
        row = _parse_object(body)
        row_id = _valid_id(row.get(self.settings.row_id_field)) if row is not None else None
        if row is None or row_id is None:
            return _answer(
                self.stats,
                400,
                "malformed",
                f"expected a JSON object with {self.settings.row_id_field}",
            )
        out = {"row_id": row_id, "row": row, "received_at": self.clock()}
        return await self._accept(f"row:{row_id}", TABLE_ROWS, out, json.dumps(out))

    async def _accept(
        self, key: str, topic: str, event: dict[str, Any], payload: str | None
    ) -> JSONResponse:
        """Claim, then publish; a delivery that could not be published is un-claimed."""
        try:
            fresh = await anyio.to_thread.run_sync(self.store.claim, key, payload)
        except Exception as exc:  # noqa: BLE001 - the store is down, not the input
            log.warning("dedupe store unavailable: %s", redact(str(exc)))
            return _answer(self.stats, 503, "unavailable", "try again")
        if not fresh:
            return _answer(self.stats, 200, "duplicate")
        try:
            await self.publish(topic, event)
        except Exception as exc:  # noqa: BLE001 - the bus is down, not the input
            log.warning("event bus unavailable: %s", redact(str(exc)))
            await anyio.to_thread.run_sync(self.store.release, key)
            return _answer(self.stats, 503, "unavailable", "try again")
        return _answer(self.stats, 200, "accepted")

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
