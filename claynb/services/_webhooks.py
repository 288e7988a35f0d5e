"""claynb's one webhook receiver: how a delivery is taken in, whichever tier listens.

Clay's run-finished webhook (and, in the event tier, a table's HTTP API column) POSTs to
an endpoint claynb serves. The direct tier's :class:`claynb.WebhookReceiver` and the event
tier's receiver serve the endpoints built here, so a delivery meets one gate, whose steps
each refuse before the next one costs anything:

1. a declared ``Content-Length`` over the cap: 413, and not a byte of the body read;
2. a credential that can never pass (no ``X-Clay-Signature``, or one that is not
   ``sha256=<64 hex>``; a column's shared secret, compared whole): 401, nothing read;
3. the body, streamed and counted under the cap (413 as soon as it passes it) and under a
   deadline (408 when a slow sender has not finished in time);
4. the signature over the exact bytes read (:func:`claynb.verify_signature`): 401;
5. only then the JSON, and the run id in it: a short printable string, else 400 (a list,
   an object, a number, a document nested 100,000 deep: none of them reaches the tier);
6. the tier's own step (wake the pollers; or de-duplicate and publish, 503 when the bus is
   down so the sender retries).

An answer given before the body was read to its end closes the connection, so what the
sender still has to send is never read; memory per request stays under the cap whatever
is posted. The request's head has its own deadline, kept by the protocol
(:mod:`claynb.services._deadlines`), because the app is only called once the head is in.
Every answer is JSON ``{"status": <outcome>, "detail": ...}``; the outcomes are counted.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from claynb.wire._signatures import SIGNATURE_HEADER, signature_digest, verify_signature

#: Clay's webhook bodies are a few hundred bytes; table rows stay under Clay's 100 KB.
DEFAULT_MAX_BODY_BYTES = 128 * 1024
#: Seconds to send a request's head: an honest sender needs one packet, so this is generous.
DEFAULT_HEAD_TIMEOUT_S = 10.0
#: Seconds to send the body once the head is in: a body at the cap takes under a second on
#: a slow link.
DEFAULT_BODY_TIMEOUT_S = 15.0
#: Longest id accepted (Clay's run ids are a few dozen characters).
MAX_ID_CHARS = 200

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ReceiverLimits:
    """How much a receiver reads, and how long it waits, before it gives up on a sender."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "head_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")

    def server_options(self) -> dict[str, Any]:
        """``uvicorn.Config`` settings serving a receiver under these limits."""
        from claynb.services._deadlines import head_deadline_protocol

        return {"http": head_deadline_protocol(self.head_timeout_s)}


class Outcome(StrEnum):
    """What became of one delivery; each answers with its own HTTP status."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # a replay: acknowledged, and ignored
    TEST_EVENT = "test_event"  # Clay's test delivery (``data: {}``)
    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    FORGED = "forged"
    TOO_SLOW = "too_slow"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # the tier's store or bus is down: the sender should retry

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    Outcome.ACCEPTED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.TEST_EVENT: 200,
    Outcome.MALFORMED: 400,
    Outcome.UNSIGNED: 401,
    Outcome.FORGED: 401,
    Outcome.TOO_SLOW: 408,
    Outcome.TOO_LARGE: 413,
    Outcome.UNAVAILABLE: 503,
}


@dataclass(frozen=True)
class Answer:
    """The answer to one delivery: its outcome and, for a refusal, why."""

    outcome: Outcome
    detail: str = ""


class Refused(Exception):
    """A delivery refused at the gate; the receiver answers with :attr:`answer`."""

    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(f"{outcome.value}: {detail}")
        self.answer = Answer(outcome, detail)


@dataclass
class ReceiverStats:
    """Counts of what a receiver did, by outcome: for dashboards and tests."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.value] = self.counts.get(outcome.value, 0) + 1

    def total(self, *outcomes: Outcome) -> int:
        return sum(self.counts.get(o.value, 0) for o in outcomes)


@dataclass(frozen=True)
class RunFinished:
    """Clay's run-finished delivery, once it verified and parsed."""

    run_id: str
    webhook_id: str | None
    created_at: str


def valid_id(value: Any, *, numbers: bool = False) -> str | None:
    """``value`` as an id to key on: a short printable non-empty string (or, when
    ``numbers``, an integer), else None."""
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable():
        return value
    return None


def parse_object(body: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object; anything else (nesting too deep to parse included) is
    refused as malformed."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise Refused(Outcome.MALFORMED, f"expected {what}") from None
    if not isinstance(value, dict):
        raise Refused(Outcome.MALFORMED, f"expected {what}")
    return value


def parse_run_finished(body: bytes) -> RunFinished | None:
    """Clay's delivery ``{"webhookId", "createdAt", "data": {"routine_run_id"}}``; None for
    a test event (``data: {}``). Raises :class:`Refused` when it is neither."""
    event = parse_object(body, "{webhookId, createdAt, data}")
    data = event.get("data")
    if not isinstance(data, dict):
        raise Refused(Outcome.MALFORMED, "expected {webhookId, createdAt, data}")
    if not data:
        return None
    run_id = valid_id(data.get("routine_run_id"))
    if run_id is None:
        raise Refused(Outcome.MALFORMED, "data.routine_run_id is missing or not a run id")
    created_at = event.get("createdAt")
    return RunFinished(
        run_id=run_id,
        webhook_id=valid_id(event.get("webhookId")),
        created_at=created_at[:64] if isinstance(created_at, str) else "",
    )


class Body:
    """A request's body, read from ASGI ``receive`` under the cap and the deadline."""

    def __init__(self, receive: Receive, limits: ReceiverLimits) -> None:
        self._receive = receive
        self._limits = limits
        #: True once the sender's last byte was read (else the connection is closed after).
        self.complete = False

    async def read(self) -> bytes:
        """Every byte, or :class:`Refused` (413 past the cap, 408 past the deadline)."""
        try:
            async with asyncio.timeout(self._limits.body_timeout_s):
                return await self._read()
        except TimeoutError:
            raise Refused(
                Outcome.TOO_SLOW, f"the body took over {self._limits.body_timeout_s:g}s"
            ) from None

    async def _read(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise Refused(Outcome.MALFORMED, "the sender left before the body ended")
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self._limits.max_body_bytes:
                raise _too_large(self._limits)
            chunks.append(chunk)
            if not message.get("more_body", False):
                self.complete = True
                return b"".join(chunks)


def _too_large(limits: ReceiverLimits) -> Refused:
    return Refused(Outcome.TOO_LARGE, f"bodies are at most {limits.max_body_bytes} bytes")


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the first of a repeated one)."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


class Endpoint:
    """An ASGI endpoint taking deliveries through the gate; subclasses say what passes.

    :meth:`handle` checks the credential, reads the body (:class:`Body`) and hands what
    passed to the tier, raising :class:`Refused` to refuse. The declared length is
    checked before it is called, and the outcome counted and answered after.
    """

    def __init__(self, limits: ReceiverLimits, stats: ReceiverStats) -> None:
        self.limits = limits
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        body = Body(receive, self.limits)
        try:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limits.max_body_bytes:
                raise _too_large(self.limits)
            answer = await self.handle(headers, body)
        except Refused as refused:
            answer = refused.answer
        self.stats.add(answer.outcome)
        await respond(send, answer, close=not body.complete)

    async def handle(self, headers: Mapping[str, str], body: Body) -> Answer:
        raise NotImplementedError


class ClayWebhookEndpoint(Endpoint):
    """Clay's run-finished webhook: signed with ``X-Clay-Signature``, verified before parsed.

    ``secrets`` is asked at every delivery (a receiver may be given its secret after it
    starts); ``on_run`` is the tier's step for a verified run id, and says what came of it.
    """

    def __init__(
        self,
        secrets: Callable[[], Iterable[str]],
        on_run: Callable[[RunFinished], Awaitable[Outcome]],
        limits: ReceiverLimits,
        stats: ReceiverStats,
    ) -> None:
        super().__init__(limits, stats)
        self.secrets = secrets
        self.on_run = on_run

    async def handle(self, headers: Mapping[str, str], body: Body) -> Answer:
        signature = headers.get(SIGNATURE_HEADER.lower())
        if not signature:
            raise Refused(Outcome.UNSIGNED, f"missing {SIGNATURE_HEADER}")
        if signature_digest(signature) is None:
            raise Refused(Outcome.FORGED, f"{SIGNATURE_HEADER} is not sha256=<hex>")
        raw = await body.read()
        if not verify_signature(list(self.secrets()), raw, signature):
            raise Refused(Outcome.FORGED, "signature does not verify")
        event = parse_run_finished(raw)
        if event is None:
            return Answer(Outcome.TEST_EVENT)
        return Answer(await self.on_run(event))


class SharedSecretEndpoint(Endpoint):
    """A table's HTTP API column posting a row back, with a shared secret in a header.

    The secret does not depend on the body, so it is checked before a byte is read; the
    row must carry ``id_field`` (the id claynb put in it when the row was sent).
    """

    def __init__(
        self,
        header: str,
        secret: Callable[[], str | None],
        id_field: str,
        on_row: Callable[[str, dict[str, Any]], Awaitable[Outcome]],
        limits: ReceiverLimits,
        stats: ReceiverStats,
    ) -> None:
        super().__init__(limits, stats)
        self.header, self.secret, self.id_field, self.on_row = header, secret, id_field, on_row

    async def handle(self, headers: Mapping[str, str], body: Body) -> Answer:
        given = headers.get(self.header.lower(), "").encode("latin-1")
        expected = (self.secret() or "").encode("utf-8")
        if not expected or not hmac.compare_digest(given, expected):
            raise Refused(Outcome.FORGED, f"missing or wrong {self.header}")
        expects = f"a JSON object with {self.id_field}"
        row = parse_object(await body.read(), expects)
        row_id = valid_id(row.get(self.id_field), numbers=True)
        if row_id is None:
            raise Refused(Outcome.MALFORMED, f"expected {expects}")
        return Answer(await self.on_row(row_id, row))


async def respond(send: Send, answer: Answer, *, close: bool) -> None:
    """Send ``answer`` as JSON; ``close`` ends the connection after it (the body was not
    read to its end, and what remains of it is not worth reading)."""
    payload: dict[str, str] = {"status": answer.outcome.value}
    if answer.detail:
        payload["detail"] = answer.detail
    content = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": answer.outcome.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
