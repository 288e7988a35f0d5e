"""Landing finished runs in the journal a few at a time: one transaction, one commit.

Every run the direct tier collects is landed (:meth:`claynb.pipeline._journal.Journal.finished`:
its answers cached, its charge in the ledger, its batch marked finished) before its rows
count as done and its budget is settled. Landed one by one, each run was a commit and a
trip to a worker thread; and a commit writes every page the transaction changed to the
write-ahead log, the same few pages each time besides the answers (the batch's row and
its index, the ledger's row and indexes): 9 to 10 pages of 16 KB a run. Landed together
(:meth:`~claynb.pipeline._journal.Journal.finished_runs`), the runs that finished within
:data:`LANDING_WINDOW_S` of each other share one trip and one commit.

A run waits at most that long beyond its results: Clay takes far longer to run one, and
the runs' answers are safe at Clay meanwhile (a run not yet landed is still "in flight" in
the journal: a crash now means a later call collects it, never sends it again). A group the
journal refuses as a whole (one run it cannot land) is landed run by run, so only the run
at fault fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from claynb._plans import Plan
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import ItemResult

#: How long the first run of a group waits for others to land with it. The direct tier
#: collects a run every few milliseconds at full speed (64 in flight, an instant Clay),
#: and more finish while a group lands: a first run of 200,000 rows landed in 137 to 151
#: transactions with 20 ms, 129 with 50 ms (the same CPU, a longer wall clock: runs
#: waiting to land hold their slots). A slow Clay's runs land about as they did.
LANDING_WINDOW_S = 0.02
#: Runs landed in one transaction at most (its write lock is held that long; 32 let so
#: many runs wait that the wall clock grew by half).
LANDING_GROUP = 16

_Waiting = tuple[str, Sequence[ItemResult], "asyncio.Future[None]"]


class Landings:
    """The runs of one engine waiting to be landed, and the one task that lands them.

    It holds nothing of the engine's (no callback into it): an engine and its landings in
    a reference cycle outlived the call until the cycle collector's next full pass, and
    with them every array the engine holds (30 MB more resident through the merge).
    """

    def __init__(self, journal: Journal, *, backend: str, plan: Plan) -> None:
        self.journal, self.backend, self.plan = journal, backend, plan
        self.waiting: list[_Waiting] = []
        self.task: asyncio.Task[None] | None = None

    async def land(self, run_id: str, results: Sequence[ItemResult]) -> None:
        """Land this run's results with whatever other runs finish within the window;
        returns once they are committed (raises what landing this run raised)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((run_id, results, future))
        if self.task is None:
            self.task = asyncio.ensure_future(self._drain())
        await future

    async def drained(self) -> None:
        """Returns once no run waits to land (the engine's last step)."""
        if self.task is not None:
            await self.task

    async def _drain(self) -> None:
        try:
            while self.waiting:
                if len(self.waiting) < LANDING_GROUP:
                    await asyncio.sleep(LANDING_WINDOW_S)
                group = self.waiting[:LANDING_GROUP]
                del self.waiting[:LANDING_GROUP]
                await self._land(group)
        finally:
            self.task = None
            for _, _, future in self.waiting:  # cancelled before their turn
                future.cancel()
            self.waiting.clear()

    async def _land(self, group: list[_Waiting]) -> None:
        runs = [(run_id, results) for run_id, results, _ in group]
        try:
            await asyncio.to_thread(
                self.journal.finished_runs, runs, backend=self.backend, plan=self.plan
            )
        except asyncio.CancelledError:
            for _, _, future in group:
                future.cancel()
            raise
        except Exception as exc:
            if len(group) > 1:  # all or none: land each alone, so only the run at fault fails
                for one in group:
                    await self._land([one])
                return
            _settle(group[0][2], exc)
            return
        for _, _, future in group:
            _settle(future, None)


def _settle(future: asyncio.Future[None], exc: Exception | None) -> None:
    if future.done():  # its collector was cancelled meanwhile
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
