"""Running a coroutine to the end from sync code, even under a running event loop.

The direct tier and the adoption of delivered runs are asyncio; ``claynb.enrich`` is
called from plain code and from Jupyter cells, whose thread already runs a loop. This is
the one bridge between the two.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from sync code, even under a running event loop.

    Without a running loop in this thread, ``asyncio.run``. With one (a Jupyter cell), a
    worker thread with its own loop, since blocking the notebook's loop would deadlock it.
    An interrupt (the notebook's stop button) cancels the work and waits for it to wind
    down, so the journal is left consistent.
    """

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def worker() -> T:
        loop = asyncio.new_event_loop()
        box["loop"] = loop
        try:
            box["task"] = loop.create_task(main())
            return loop.run_until_complete(box["task"])
        finally:
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="claynb-enrich") as pool:
        future = pool.submit(worker)
        try:
            return future.result()
        except KeyboardInterrupt:
            loop, task = box.get("loop"), box.get("task")
            if loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)
            concurrent.futures.wait([future])
            raise
