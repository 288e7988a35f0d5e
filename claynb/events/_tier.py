"""The whole event-driven loop on one machine, for notebooks, tests and ``backend="events"``.

    leads ─► bus ─► EnrichmentService ─► Clay (or the emulator) ─► webhook ─► receiver ─► bus
                                                                    (dropped? the reconciler polls)

:class:`EventTier` starts, in order: the bus server (an embedded NATS JetStream unless a URL
or ``NATS_URL`` is given), the receiver on a free loopback port, an outbound webhook
pointing at it, and the service with a collector of contacts and dead letters, all on one
background event loop so a notebook's own loop is never touched. ``stop()`` (or leaving
the ``with`` block) stops all of it.

The webhook is registered on the emulator when the client knows it talks to one (its
admin URL, never guessed). Real Clay registers webhooks with its CLI only
(``clay webhooks create URL``), so there it comes from ``webhook=`` or the environment
(``CLAYNB_WEBHOOK_ID``, ``CLAYNB_WEBHOOK_SECRET``: the id and the signing secret the CLI
printed), and without one the reconciler polls every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from claynb._home import state_home
from claynb._routines import Routine
from claynb._secrets import register_secret
from claynb.events._breaker import CreditBreaker
from claynb.events._bus import CONTACTS, DEAD_LETTERS, LEADS, Bus, DeadLetter
from claynb.events._clay import ClientRunsApi
from claynb.events._dedupe import DedupeStore, SqliteDedupeStore
from claynb.events._dlq import NEEDS_CHECK, replay
from claynb.events._receiver import ReceiverSettings
from claynb.events._server import ReceiverServer
from claynb.events._service import EnrichmentService, ServiceSettings
from claynb.pipeline._budget import Budget
from claynb.pipeline._plan import catalogue_of
from claynb.pipeline._work import BudgetGuard
from claynb.services.nats import NatsServer
from claynb.wire._client import ClayClient
from claynb.wire._config import ENV_WEBHOOK_ID, ENV_WEBHOOK_SECRET
from claynb.wire._exceptions import ConfigError
from claynb.wire._fleet import shared_pace

T = TypeVar("T")

log = logging.getLogger("claynb.events")


class NoWebhookWarning(UserWarning):
    """The event tier talks to real Clay with no webhook configured: it polls every run."""


def raise_budget(
    budget: Budget,
    *,
    actions: float | None = None,
    data_credits: float | None = None,
    usd: float | None = None,
) -> None:
    """Raise (or lower) a :class:`claynb.Budget`'s caps in place: :meth:`Budget.set_caps`."""
    budget.set_caps(actions=actions, data_credits=data_credits, usd=usd)


@dataclass
class Collector:
    """Every contact and dead letter seen on the bus, with the time it was seen."""

    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    dead: dict[str, dict[str, Any]] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def on_contact(self, contact: dict[str, Any]) -> None:
        with self.cond:
            lead_id = str(contact.get("lead_id"))
            contact["seen_at"] = time.time()
            if lead_id in self.contacts:
                self.duplicates.append(contact)
            else:
                self.contacts[lead_id] = contact
                self.dead.pop(lead_id, None)
            self.cond.notify_all()

    async def on_dead_letter(self, letter: dict[str, Any]) -> None:
        with self.cond:
            lead = letter.get("lead") or {}
            lead_id = str(lead.get("lead_id"))
            if lead_id not in self.contacts:
                self.dead[lead_id] = letter
            self.cond.notify_all()

    def settled(self, lead_ids: Iterable[str]) -> bool:
        return all(i in self.contacts or i in self.dead for i in lead_ids)


class EventTier:
    """Bus, receiver, webhook and enrichment service, running locally; a context manager."""

    def __init__(
        self,
        client: Any,
        *,
        budget: Budget | None = None,
        bus_url: str | None = None,
        namespace: str | None = None,
        webhook: Mapping[str, str] | None = None,
        settings: ServiceSettings | None = None,
        journal: Any = None,
        dedupe: DedupeStore | None = None,
        callback_secret: str | None = None,
        guard: BudgetGuard | None = None,
        catalogue: Mapping[str, Routine] | None = None,
    ) -> None:
        self.client = client
        self.budget = budget if budget is not None else Budget()
        self.guard = guard if guard is not None else self.budget.guard()
        self.bus_url = bus_url
        self.namespace = namespace or f"t{uuid.uuid4().hex[:10]}"
        # None: the emulator's, else the environment's; {}: none (the reconciler polls every run)
        self.webhook = dict(webhook) if webhook is not None else None
        self.settings = settings or ServiceSettings()
        self.journal = journal
        #: The routines lead events may name (default: the client's emulator's, else claynb's).
        self.catalogue = dict(catalogue) if catalogue is not None else dict(catalogue_of(client))
        self.callback_secret = callback_secret or f"cb_{uuid.uuid4().hex}"
        register_secret(self.callback_secret)
        self.collector = Collector()
        self.receiver_settings = ReceiverSettings(callback_secret=self.callback_secret)
        self._dedupe = dedupe
        self._own_store: SqliteDedupeStore | None = None
        self._nats: NatsServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.receiver: ReceiverServer | None = None
        self.bus: Bus | None = None
        self.service: EnrichmentService | None = None
        self._aclient: Any = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> EventTier:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        import os

        url = self.bus_url or os.environ.get("NATS_URL")
        if not url:
            self._nats = NatsServer().start()
            url = self._nats.url
        self.bus_url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="claynb-events", daemon=True
        )
        self._thread.start()
        store = self._dedupe
        if store is None:
            # Deliveries are only ever for this tier's runs, so its claims live and die with it.
            store = self._own_store = SqliteDedupeStore(
                state_home() / "events" / f"{self.namespace}.sqlite"
            )
        self.receiver = ReceiverServer(
            self.receiver_settings, url, self.namespace, store=store
        ).start()
        if self.webhook is None:
            self.webhook = webhook_for(self.client, self.receiver.webhook_url)
        if self.webhook:
            register_secret(self.webhook.get("signingSecret"))
            self.receiver_settings.signing_secrets = {
                self.webhook["id"]: self.webhook["signingSecret"]
            }
            self.settings.webhook_id = self.webhook["id"]
        self.call(self._start_service(url))

    async def _start_service(self, url: str) -> None:
        self.bus = Bus(url, self.namespace)
        self._aclient = _async_twin(self.client, url)
        breaker = CreditBreaker(self.guard)
        self.service = EnrichmentService(
            self.bus,
            ClientRunsApi(self._aclient),
            breaker,
            self.settings,
            journal=self.journal,
            catalogue=self.catalogue,
        )
        await self.service.start()
        if self.receiver is not None and self.receiver.app is not None:
            self.receiver.app.state.receiver.checks.append(self.service.health_problem)
        await self.bus.subscribe(CONTACTS, self.collector.on_contact, "collector")
        await self.bus.subscribe(DEAD_LETTERS, self.collector.on_dead_letter, "collector")
        await self.bus.start()

    def stop(self) -> None:
        """Stop everything this tier started, in reverse order; safe to call twice."""
        if self._loop is not None and self._loop.is_running():
            with contextlib.suppress(Exception):  # stopping must go on whatever failed
                self.call(self._stop_service(), timeout=15)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        if self.receiver is not None:
            self.receiver.stop()
        if self._nats is not None:
            self._nats.stop()
        self._loop = self._thread = None
        self.receiver = self._nats = None
        if self._own_store is not None:
            self._own_store.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self._own_store.path}{suffix}").unlink(missing_ok=True)
            self._own_store = None

    async def _stop_service(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self.bus is not None:
            await self.bus.stop()
        if self._aclient is not None:
            await self._aclient.aclose()

    def __enter__(self) -> EventTier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        """Run a coroutine on the tier's loop from any thread; its result."""
        if self._loop is None:
            coro.close()
            raise ConfigError("the event tier is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # using it ----------------------------------------------------------------------------
    def publish_leads(
        self, routine: str, leads: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> list[str]:
        """Publish ``(lead_id, inputs)`` pairs as lead events, stamped now; their ids."""
        events: list[dict[str, Any]] = [
            {
                "lead_id": str(lid),
                "routine": routine,
                "inputs": dict(inputs),
                "event_at": time.time(),
            }
            for lid, inputs in leads
        ]
        self.call(self._publish_all(events))
        return [str(e["lead_id"]) for e in events]

    async def _publish_all(self, events: list[dict[str, Any]]) -> None:
        assert self.bus is not None
        for event in events:
            await self.bus.publish(LEADS, event)

    def publish_lead(self, lead_id: str, routine: str, inputs: Mapping[str, Any]) -> None:
        self.publish_leads(routine, [(lead_id, inputs)])

    def wait(self, lead_ids: Iterable[str], timeout: float = 60.0) -> bool:
        """Block until every lead has a contact or a dead letter; False on timeout."""
        ids = list(lead_ids)
        deadline = time.monotonic() + timeout
        with self.collector.cond:
            while not self.collector.settled(ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.collector.cond.wait(min(left, 0.5))
        return True

    def dead_letters(self) -> list[DeadLetter]:
        assert self.bus is not None
        return self.call(self.bus.dead_letters())

    def replay_dead_letters(
        self, limit: int | None = None, *, include_unknown: bool = False
    ) -> list[str]:
        """Put dead-lettered leads back on the lead subject (after raising the budget).

        Letters of kind ``outcome_unknown`` (the send may have been charged) stay unless
        ``include_unknown``. Returns the replayed lead ids; :meth:`wait` on them.
        """
        assert self.bus is not None
        letters = [
            letter
            for letter in self.call(self.bus.dead_letters(limit or 1_000_000))
            if include_unknown or letter.event.get("kind") != NEEDS_CHECK
        ]
        with self.collector.cond:  # forget the old outcome first: wait() must see the new one
            for letter in letters:
                self.collector.dead.pop(str((letter.event.get("lead") or {}).get("lead_id")), None)
        return self.call(
            replay(self.bus, limit=limit, letters=letters, include_unknown=include_unknown)
        )

    def raise_budget(self, **caps: float | None) -> None:
        """Raise this tier's :class:`claynb.Budget` caps (the breaker closes on the next batch)."""
        raise_budget(self.budget, **caps)

    def adopt_runs(self, routine: str, runs: Iterable[Any]) -> None:
        """Collect runs a previous process started (journal ``in_flight``) instead of re-sending."""
        assert self.service is not None
        service = self.service
        for run in runs:
            self.call(_adopt(service, routine, run))

    @property
    def breaker_state(self) -> str:
        return self.service.breaker.state if self.service else "stopped"

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"EventTier({state}, bus={self.bus_url!r}, namespace={self.namespace!r})"


async def _adopt(service: EnrichmentService, routine: str, run: Any) -> None:
    service.adopt_run(run.run_id, routine, dict(run.inputs), batch=getattr(run, "batch", None))


def webhook_for(client: Any, url: str) -> dict[str, str]:
    """The outbound webhook the service starts runs with, whose deliveries go to ``url``.

    On an emulator the client knows (its admin URL): registered there. Otherwise (real
    Clay, which registers webhooks with its CLI only): ``CLAYNB_WEBHOOK_ID`` and
    ``CLAYNB_WEBHOOK_SECRET`` from the environment. Neither: ``{}`` and a warning saying
    how to create one; the reconciler then polls every run.
    """
    made = _emulator_webhook(client, url)
    if made:
        return made
    from_env = webhook_from_env()
    if from_env:
        return from_env
    message = no_webhook_message(url)
    log.warning("%s", message)
    warnings.warn(message, NoWebhookWarning, stacklevel=3)
    return {}


def _emulator_webhook(client: Any, url: str) -> dict[str, str] | None:
    """Register ``url`` on the emulator the client was told of (None: it knows of none).
    Done with a short-lived sync client, whichever kind the caller holds."""
    credentials = client.credentials()
    if not credentials.emulator_admin_url:
        return None
    with ClayClient(
        credentials.api_key,
        base_url=credentials.base_url,
        emulator_admin_url=credentials.emulator_admin_url,
    ) as admin:
        return admin.create_emulator_webhook(url)


def webhook_from_env() -> dict[str, str] | None:
    """``{"id", "signingSecret"}`` from ``CLAYNB_WEBHOOK_ID`` / ``CLAYNB_WEBHOOK_SECRET``."""
    webhook_id = os.environ.get(ENV_WEBHOOK_ID, "").strip()
    secret = os.environ.get(ENV_WEBHOOK_SECRET, "").strip()
    if not (webhook_id and secret):
        return None
    register_secret(secret)
    return {"id": webhook_id, "signingSecret": secret}


def no_webhook_message(url: str) -> str:
    """How to give the event tier a webhook on real Clay (it has no API for it)."""
    return (
        f"no Clay webhook for the receiver at {url}: runs are found by polling only. Clay "
        "registers webhooks with its CLI: run `clay webhooks create <a URL that reaches the "
        f"receiver>`, then set {ENV_WEBHOOK_ID} to the id it prints and {ENV_WEBHOOK_SECRET} "
        "to its signingSecret (shown once), or pass webhook={'id': ..., 'signingSecret': ...}"
    )


def _async_twin(client: Any, bus_url: str | None = None) -> Any:
    """The service's own asyncio client, like the caller's (it runs on the tier's loop),
    paced with every service of the workspace when a Redis is at hand (the bus, or
    REDIS_URL): Clay's rate limit is per workspace, not per process."""
    twin = getattr(client, "async_twin", None)
    if twin is None:
        raise ConfigError(
            "the event tier needs a claynb.ClayClient (or AsyncClayClient) with an API key"
        )
    return twin(shared_pace(client.credentials(), bus_url))
