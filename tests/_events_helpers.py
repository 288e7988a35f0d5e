"""Helpers shared by the event-tier tests (not a test module)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from claynb.events._bus import Bus


def webhook_body(run_id: str | None, webhook_id: str = "wh_test") -> bytes:
    data: dict[str, Any] = {} if run_id is None else {"routine_run_id": run_id}
    return json.dumps(
        {"webhookId": webhook_id, "createdAt": "2026-06-16T17:50:00.000Z", "data": data}
    ).encode()


def namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


def drain(
    url: str, ns: str, topic: str, *, expect: int, timeout: float = 60.0, settle: float = 0.3
) -> list[dict[str, Any]]:
    """Every event on ``topic`` (from the start), waiting for ``expect`` then a little more."""

    async def go() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        bus = Bus(url, ns)

        async def on(event: dict[str, Any]) -> None:
            got.append(event)

        await bus.subscribe(topic, on, "drain-" + uuid.uuid4().hex[:6])
        await bus.start()
        deadline = time.monotonic() + timeout
        while len(got) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        await bus.stop()
        return got

    return asyncio.run(go())
