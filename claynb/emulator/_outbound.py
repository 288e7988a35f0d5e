"""Calls the emulator makes to the outside: run-finished webhooks and HTTP API columns.

Outbound webhooks follow Clay's documented shape: ``{"webhookId", "createdAt",
"data": {"routine_run_id"}}`` signed with ``X-Clay-Signature: sha256=<hex HMAC-SHA256
of the raw body>``. Clay does not guarantee delivery, so the emulator can drop,
duplicate or reorder deliveries (seeded faults); every attempt is recorded, which is
how tests see what a receiver should have seen.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from claynb._secrets import redact
from claynb.emulator._faults import DUPLICATE_WEBHOOK, REORDER_WEBHOOK, FaultDice
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

    async def run_finished(
        self, webhook_id: str, run_id: str, faults: tuple[bool, bool, bool]
    ) -> None:
        hook = self.state.webhooks.get(webhook_id)
        if hook is not None:
            await self.webhook(hook, {"routine_run_id": run_id}, faults)

    async def webhook(
        self, hook: Webhook, data: dict[str, Any], faults: tuple[bool, bool, bool] | None = None
    ) -> None:
        """One delivery, with faults (drop, duplicate, reorder) drawn when the run finished."""
        body = json.dumps(
            {"webhookId": hook.id, "createdAt": iso_now(self.state.wall()), "data": data},
            separators=(",", ":"),
        ).encode()
        run_id = data.get("routine_run_id")
        drop, duplicate, reorder = faults if faults is not None else self.dice.webhook_faults()
        if drop:
            self._record(hook, run_id, "dropped", fault="dropped")
            return

        async def send(fault: str | None = None) -> None:
            await self._post_webhook(hook, run_id, body, fault)
            if duplicate:
                await self._post_webhook(hook, run_id, body, DUPLICATE_WEBHOOK)

        if reorder:
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

    async def _post_webhook(
        self, hook: Webhook, run_id: str | None, body: bytes, fault: str | None
    ) -> None:
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(hook.signing_secret, body),
        }
        status, err = await self._post(hook.url, body, headers)
        self._record(
            hook, run_id, _outcome(status, err), status_code=status, error=err, fault=fault
        )

    def _record(
        self,
        hook: Webhook,
        run_id: str | None,
        outcome: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        fault: str | None = None,
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
                "attempt": 1,
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
