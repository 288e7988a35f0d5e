"""``backend="direct"``: the direct tier's entry points and options.

:func:`run` drives the engine (:mod:`claynb.direct._engine`) from sync code: on a fresh
event loop, or, when the calling thread already runs one (Jupyter), on a worker thread
with its own loop, so a notebook cell can call it directly. :func:`run_async` runs it on
the caller's loop. Options (anything else is a ``TypeError``) are listed in
:data:`DEFAULTS`, each with why it has its value.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from claynb._plans import get_plan
from claynb._routines import Routine
from claynb._sync import run_sync
from claynb.direct._engine import Engine
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import BudgetGuard, Landed, WorkItems
from claynb.wire._client import AsyncClayClient
from claynb.wire._config import MAX_RUN_ITEMS, checked_batch_size

DEFAULTS: dict[str, Any] = {
    "concurrency": 64,  # runs in flight at once
    "batch_size": MAX_RUN_ITEMS,  # items per run, at most 100 (Clay's documented limit)
    "poll_interval": 0.1,  # first poll after a POST; grows by poll_backoff
    "poll_backoff": 1.6,
    "poll_max_interval": 5.0,
    "poll_timeout": 600.0,  # then the rows are unknown and a later call resumes them
    # POSTs a row may ride in, the client's retries and this tier's re-sends together
    # (None: the client's RetryPolicy.max_sends_per_item).
    "max_attempts": None,
    "webhook": None,  # a RunWaiter (e.g. WebhookReceiver), or None to poll only
    "unknown_wait": 60.0,  # with a webhook: wait this long for it to explain a timed-out send
    "rng": None,
}


def _options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS) - {"plan"})
    if unknown:
        raise TypeError(
            f"the direct backend has no option {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(sorted(DEFAULTS))}"
        )
    merged = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    if merged["max_attempts"] is not None and int(merged["max_attempts"]) < 1:
        raise ValueError(f"max_attempts must be at least 1, got {merged['max_attempts']!r}")
    merged["batch_size"] = checked_batch_size(merged["batch_size"])
    if int(merged["concurrency"]) < 1:
        raise ValueError(f"concurrency must be at least 1, got {merged['concurrency']!r}")
    return merged


async def run_async(
    routine: Routine,
    items: WorkItems,
    *,
    client: Any,
    guard: BudgetGuard,
    journal: Journal,
    progress: Any,
    **options: Any,
) -> Landed:
    """The direct backend on the running event loop (see :mod:`claynb.pipeline._backends`)."""
    return await _run_on_loop(routine, items, client, guard, journal, progress, True, options)


def run(
    routine: Routine,
    items: WorkItems,
    *,
    client: Any,
    guard: BudgetGuard,
    journal: Journal,
    progress: Any,
    **options: Any,
) -> Landed:
    """The direct backend from sync code, Jupyter's running loop included."""
    return run_sync(
        lambda: _run_on_loop(routine, items, client, guard, journal, progress, False, options)
    )


async def _run_on_loop(
    routine: Routine,
    items: WorkItems,
    client: Any,
    guard: BudgetGuard,
    journal: Journal,
    progress: Any,
    reuse: bool,
    options: dict[str, Any],
) -> Landed:
    opts = _options(options)
    plan = get_plan(options.get("plan") or getattr(guard, "plan", None) or "growth")
    aclient, owned = _async_client(client, reuse)
    try:
        with old_objects_kept():
            engine = Engine(routine, items, aclient, guard, journal, progress, plan, opts)
            return await engine.run()
    finally:
        if owned:
            await aclient.aclose()


#: The cycle collector's thresholds while the engine runs (see :func:`old_objects_kept`).
ENGINE_GC_THRESHOLDS = (2_000, 10, 1_000)


@contextlib.contextmanager
def old_objects_kept() -> Iterator[None]:
    """Python's cycle collector tuned to leave old objects alone while the engine runs.

    Every run of 100 leaves a few hundred objects alive until the merge (answers, their
    dicts, results), and by default the collector re-walks everything alive each time the
    oldest generation grows by a quarter: at 100,000 rows about a tenth of the enriching
    process's CPU, most of it in a handful of full collections. With these thresholds the
    young generation is still collected (the engine leaves about one cyclic scrap per
    row: httpx responses and asyncio bookkeeping, freed as they were), less often, and the
    oldest is not walked until the engine is done. The young generation's threshold is
    2,000, not higher: those scraps hold httpx responses and their buffers until a
    collection finds them, and at 50,000 they kept about 16 MB more resident (the first
    run's RSS peak at 200,000 rows, side by side: 295 MB against 311; CPU 19.5 against
    18.5 CPU-s, within the run-to-run noise or about 5%). The thresholds are the process's: they
    are put back as they were found, and a call that finds them already set (another
    engine running in a thread) leaves them to the call that set them.
    """
    before = gc.get_threshold()
    if before == ENGINE_GC_THRESHOLDS:
        yield
        return
    gc.set_threshold(*ENGINE_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _async_client(client: Any, reuse: bool) -> tuple[AsyncClayClient, bool]:
    """The AsyncClayClient the engine drives, and whether it was made here (to close).

    An AsyncClayClient is used as it is when ``reuse`` (the engine runs on the caller's
    loop); otherwise, and for a sync ClayClient, its twin: connections belong to the loop
    that opened them.
    """
    if reuse and isinstance(client, AsyncClayClient):
        return client, False
    twin = getattr(client, "async_twin", None)
    if twin is None:
        raise TypeError(
            f"client must be a claynb.ClayClient or AsyncClayClient, got {type(client).__name__}"
        )
    return twin(), True
