"""Unknown sends explained by Clay's webhook: put back in flight, never sent again.

A send that timed out has no run id, but if Clay started the run its run-finished webhook
names it (recorded by :meth:`claynb.pipeline._journal.Journal.delivered`), and the run's
results carry our item ids: matching the two turns an unknown batch back into one in
flight, collected like any other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from claynb.pipeline._journal import Journal
from claynb.wire._exceptions import ClayError


async def adopt_delivered(journal: Journal, client: Any) -> dict[int, str]:
    """Unknown batches found in runs Clay's webhook reported: put back in flight.

    Each delivered run no batch claims is read once; when its item ids are exactly an
    unknown batch's keys, that batch adopts the run id (and is then collected like any
    run in flight). A run that is nobody's is marked checked. Returns {batch: run id}.
    """
    runs, batches, sending = await asyncio.to_thread(journal.adoptable)
    adopted: dict[int, str] = {}
    for run_id in runs if batches else []:
        try:
            results = await client.get_run_results(run_id)
        except ClayError:
            continue
        if not results.complete:
            continue
        ids = {item.id for item in results.items}
        match = next((b for b, keys in batches.items() if keys == ids), None)
        if match is not None:
            await asyncio.to_thread(journal.adopt, match, run_id)
            batches.pop(match)
            adopted[match] = run_id
        elif not ids & sending:
            await asyncio.to_thread(journal.delivery_checked, run_id)
    return adopted
