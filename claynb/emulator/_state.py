"""The emulator's whole state behind one lock, with no I/O.

The HTTP layer (``_app``), the background finaliser and ``Emulator.meters()`` in the
caller's thread all go through :class:`EmulatorState`; it decides everything (what a
run returns, what it costs, whether a request is within the rate limit) and hands the
I/O layer a list of what to deliver.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from claynb._secrets import register_secret
from claynb.emulator._bucket import Decision, TokenBucket
from claynb.emulator._meters import Meters
from claynb.emulator._runs import INLINE, Run, RunBook, execute
from claynb.emulator._searches import SearchBook
from claynb.emulator._settings import Settings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Webhook:
    """A registered outbound webhook. The signing secret is shown once, at creation."""

    id: str
    url: str
    created_at: str
    signing_secret: str = field(repr=False)


@dataclass
class Upload:
    """A batch input file: issued by upload-url, filled by a PUT, used once by start."""

    file_id: str
    routine_id: str
    data: bytes | None = None
    used: bool = False


@dataclass
class Finished:
    """What the I/O layer must do after runs finish: webhooks to send, rows to post."""

    runs: list[Run] = field(default_factory=list)
    rows_ready: list[tuple[str, str]] = field(default_factory=list)  # (table_id, row_id)

    def __bool__(self) -> bool:
        return bool(self.runs or self.rows_ready)


class EmulatorState:
    """Meters, runs, searches, webhooks, uploads and counters of one emulated workspace."""

    def __init__(
        self, settings: Settings, *, clock: Clock = time.monotonic, wall: Clock = time.time
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.lock = threading.RLock()
        self.meters = Meters(settings.plan)
        self.book = RunBook()
        self.searches = SearchBook(settings)
        self.webhooks: dict[str, Webhook] = {}
        self.uploads: dict[str, Upload] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.requests_total = 0
        self.requests_by_status: dict[str, int] = {}
        self._latency_rng = random.Random(f"latency:{settings.seed}")
        self.bucket: TokenBucket | None = None
        if settings.rate_limit_rps is not None:
            self.bucket = TokenBucket(settings.rate_limit_rps, settings.burst, clock())
        self.tables: Any = None  # set by the server: claynb.emulator._tables.Tables
        self.on_table_run_done: Callable[[Run, Finished], None] | None = None
        self.on_schedule: Callable[[], None] | None = None  # wakes the server's finaliser

    # --- runs -------------------------------------------------------------------------

    def sample_latency(self) -> float:
        low, high = self.settings.run_latency_s
        return low if high <= low else self._latency_rng.uniform(low, high)

    def start_run(
        self,
        routine_id: str,
        items: list[tuple[str, dict[str, Any]]],
        *,
        kind: str = INLINE,
        webhook_id: str | None = None,
        context: Any = None,
        terminal: dict[str, Any] | None = None,
    ) -> tuple[Run, Finished]:
        """Create a run; one with no latency finishes (and is charged) at once."""
        with self.lock:
            now = self.clock()
            run = Run(
                id=f"run_{uuid.uuid4().hex[:24]}",
                routine_id=routine_id,
                kind=kind,
                items=items,
                created=now,
                due=now + self.sample_latency(),
                webhook_id=webhook_id,
                context=context,
                terminal=terminal,
            )
            if routine_id in self.settings.routines:
                self.meters.stats(routine_id).runs += 1
            self.book.add(run)
            finished = Finished()
            if run.due <= now or run.done:
                self._finish(run, finished)
            elif self.on_schedule is not None:
                self.on_schedule()
            return run, finished

    def finalise_due(self) -> Finished:
        """Finish (run and charge) every run whose latency has passed."""
        finished = Finished()
        with self.lock:
            for run in self.book.pop_due(self.clock()):
                self._finish(run, finished)
        return finished

    def _finish(self, run: Run, finished: Finished) -> None:
        if not run.done:
            routine = self.settings.routines[run.routine_id]
            execute(
                run,
                routine,
                self.meters,
                outcome_seed=self.settings.outcome_seed,
                wall=self.wall(),
                credits_out=self.settings.credits_out,
            )
        finished.runs.append(run)
        if run.kind == "table" and self.on_table_run_done is not None:
            self.on_table_run_done(run, finished)

    def next_due(self) -> float | None:
        with self.lock:
            return self.book.next_due()

    def run_view(self, run_id: str) -> dict[str, Any] | None:
        """The admin view of a run: what each item cost, who answered, whether it ran, and
        the meters as they stand. None for a run the emulator does not know."""
        run, _ = self.get_run(run_id)
        if run is None:
            return None
        with self.lock:
            return {
                "run_id": run.id,
                "routine": run.routine_id,
                "kind": run.kind,
                "done": run.done,
                "items": {item_id: c.to_dict() for item_id, c in run.charges.items()},
                "meters": self.meters.left(),
            }

    def get_run(self, run_id: str) -> tuple[Run | None, Finished]:
        """A run by id, finishing it first if its time has come (and what that finished)."""
        finished = Finished()
        with self.lock:
            run = self.book.get(run_id)
            if run is not None and not run.done and run.due <= self.clock():
                self._finish(run, finished)
            return run, finished

    # --- rate limit -------------------------------------------------------------------

    def rate_check(self) -> Decision | None:
        """Take a token for one /public/v0 request; None when there is no limit."""
        if self.bucket is None:
            return None
        with self.lock:
            return self.bucket.take(self.clock())

    def count_request(self, status: str) -> None:
        with self.lock:
            self.requests_total += 1
            self.requests_by_status[status] = self.requests_by_status.get(status, 0) + 1

    # --- webhooks and uploads -----------------------------------------------------------

    def create_webhook(self, url: str) -> Webhook:
        secret = f"whsec_{secrets.token_urlsafe(24)}"
        register_secret(secret)
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.wall())) + ".000Z"
        hook = Webhook(f"wh_{uuid.uuid4().hex[:16]}", url, created, secret)
        with self.lock:
            self.webhooks[hook.id] = hook
        return hook

    def new_upload(self, routine_id: str) -> Upload:
        upload = Upload(f"file_{uuid.uuid4().hex}", routine_id)
        with self.lock:
            self.uploads[upload.file_id] = upload
        return upload

    def record_delivery(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.deliveries.append(record)

    # --- admin ------------------------------------------------------------------------

    def reset_meters(self) -> None:
        with self.lock:
            self.meters.reset()
            self.searches.reset()
            self.deliveries = []
            self.requests_total = 0
            self.requests_by_status = {}

    def snapshot(self, *, charges: bool = True) -> dict[str, Any]:
        with self.lock:
            out = self.meters.snapshot(charges=charges)
            out["deliveries"] = [dict(d) for d in self.deliveries]
            out["requests"] = {
                "total": self.requests_total,
                "by_status": dict(sorted(self.requests_by_status.items())),
            }
            out["runs"] = {"total": len(self.book.runs), "in_progress": self.book.in_progress()}
            out["search"] = self.searches.summary(self.wall())
            if self.tables is not None:
                out["tables"] = self.tables.summary()
            return out
