"""Calls the emulator makes to the outside: run-finished webhooks and HTTP API columns.

Outbound webhooks follow Clay's documented shape: ``{"webhookId", "createdAt",
"data": {"routine_run_id"}}`` signed with ``X-Clay-Signature: sha256=<hex HMAC-SHA256
of the raw body>``. Clay does not guarantee delivery, so the emulator can drop,
duplicate or reorder deliveries (seeded faults); every attempt is recorded, which is
how tests see what a receiver should have seen. Whether a failed attempt (an error, or
an answer other than 2xx) is tried again is not published: the ``webhook_retries``
setting decides (one attempt, or several with a doubling backoff).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from claynb._secrets import redact
from claynb.emulator._faults import (
    DUPLICATE_WEBHOOK,
    FAIL_WEBHOOK,
    REORDER_WEBHOOK,
    DeliveryFaults,
    FaultDice,
)
from claynb.emulator._settings import WebhookRetries
from claynb.emulator._state import EmulatorState, Webhook
from claynb.wire._signatures import SIGNATURE_HEADER, sign

DELIVERY_TIMEOUT_S = 10.0


def iso_now(wall: float) -> str:
    millis = int((wall % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{millis:03d}Z"


class Outbound:
    """Sends deliveries from the server's event loop and records every attempt."""

    def __init__(
        self, state: EmulatorState, dice: FaultDice, transport: httpx.AsyncBaseTransport
    ) -> None:
        self.state = state
        self.dice = dice
        self.transport = transport
        self._held: list[Callable[[], Awaitable[None]]] = []

    # --- run-finished webhooks ----------------------------------------------------------

    async def run_finished(self, webhook_id: str, run_id: str, faults: DeliveryFaults) -> None:
        hook = self.state.webhooks.get(webhook_id)
        if hook is not None:
            await self.webhook(hook, {"routine_run_id": run_id}, faults)

    async def webhook(
        self, hook: Webhook, data: dict[str, Any], faults: DeliveryFaults | None = None
    ) -> None:
        """One delivery, with faults drawn when the run finished."""
        body = json.dumps(
            {"webhookId": hook.id, "createdAt": iso_now(self.state.wall()), "data": data},
            separators=(",", ":"),
        ).encode()
        run_id = data.get("routine_run_id")
        drawn = faults if faults is not None else self.dice.webhook_faults()
        if drawn.drop:
            self._record(hook, run_id, "dropped", fault="dropped")
            return

        async def send(fault: str | None = None) -> None:
            await self._deliver(hook, run_id, body, fault, fail_first=drawn.fail_first)
            if drawn.duplicate:
                await self._post_webhook(hook, run_id, body, DUPLICATE_WEBHOOK)

        if drawn.reorder:
            await self._hold(lambda: send(REORDER_WEBHOOK))
            return
        await send()
        await self._release_held()

    async def _hold(self, send: Callable[[], Awaitable[None]]) -> None:
        """Keep a delivery back until the next one has gone (or the hold time passes)."""
        self._held.append(send)
        await asyncio.sleep(self.state.settings.webhook_hold_s)
        if send in self._held:
            self._held.remove(send)
            await send()

    async def _release_held(self) -> None:
        held, self._held = self._held, []
        for send in held:
            await send()

    async def _deliver(
        self, hook: Webhook, run_id: str | None, body: bytes, fault: str | None, *, fail_first: bool
    ) -> None:
        """Attempts of one delivery: one, or (``webhook_retries="retried"``) until it is
        accepted or the attempts run out, the wait doubling from ``webhook_backoff_s``."""
        settings = self.state.settings
        attempts = (
            settings.webhook_attempts if settings.webhook_retries == WebhookRetries.RETRIED else 1
        )
        for attempt in range(1, attempts + 1):
            if attempt == 1 and fail_first:
                self._record(hook, run_id, "error", error="lost on the way", fault=FAIL_WEBHOOK)
                delivered = False
            else:
                delivered = await self._post_webhook(hook, run_id, body, fault, attempt=attempt)
            if delivered or attempt == attempts:
                return
            await asyncio.sleep(settings.webhook_backoff_s * 2 ** (attempt - 1))

    async def _post_webhook(
        self, hook: Webhook, run_id: str | None, body: bytes, fault: str | None, attempt: int = 1
    ) -> bool:
        """One attempt, recorded; True when the receiver accepted it (2xx)."""
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(hook.signing_secret, body),
        }
        status, err = await self._post(hook.url, body, headers)
        outcome = _outcome(status, err)
        self._record(
            hook,
            run_id,
            outcome,
            status_code=status,
            error=err,
            fault=fault,
            attempt=attempt,
        )
        return outcome == "delivered"

    def _record(
        self,
        hook: Webhook,
        run_id: str | None,
        outcome: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        fault: str | None = None,
        attempt: int = 1,
    ) -> None:
        self.state.record_delivery(
            {
                "time": self.state.wall(),
                "kind": "webhook",
                "webhook_id": hook.id,
                "run_id": run_id,
                "url": redact(hook.url),
                "outcome": outcome,
                "status_code": status_code,
                "error": error,
                "fault": fault,
                "attempt": attempt,
            }
        )

    # --- plumbing -----------------------------------------------------------------------

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float = DELIVERY_TIMEOUT_S
    ) -> tuple[int | None, str | None]:
        # Straight to the transport: httpx.Client logs every URL at INFO, and a receiver's
        # URL may carry a token in its query string.
        request = httpx.Request(
            "POST",
            url,
            content=body,
            headers=headers,
            extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
        )
        try:
            response = await self.transport.handle_async_request(request)
            await response.aread()
            await response.aclose()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return None, redact(f"{type(exc).__name__}: {exc}")
        return response.status_code, None

    async def post_json(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float = DELIVERY_TIMEOUT_S
    ) -> tuple[int | None, str | None]:
        """POST for the HTTP API column: (status, None) or (None, error text)."""
        return await self._post(url, body, headers, timeout_s)


def _outcome(status: int | None, err: str | None) -> str:
    if status is None:
        return "error"
    return "delivered" if 200 <= status < 300 else "rejected"
