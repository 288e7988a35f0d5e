"""``claynb.Emulator``: the Clay emulator on a free loopback port, in a background thread.

The ASGI app runs on uvicorn in its own thread and event loop
(:class:`claynb.services._http.BackgroundServer`), so a notebook or a test can use it
like a remote service while keeping it in-process. A background task in that loop
finishes runs when their latency has passed, so charging happens whether or not anyone
polls; ``meters()`` finishes due runs first, so what it shows is current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine, Mapping
from types import MappingProxyType, TracebackType
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from claynb._plans import Plan
from claynb._routines import Routine
from claynb._secrets import register_secret
from claynb.emulator._admin import AdminApi
from claynb.emulator._app import PublicApi
from claynb.emulator._counting import CountRequests
from claynb.emulator._faults import FaultDice, Faults
from claynb.emulator._http import error
from claynb.emulator._outbound import Outbound
from claynb.emulator._protocol import DroppingH11Protocol
from claynb.emulator._settings import DEFAULT_RATE_LIMIT_RPS, build_settings
from claynb.emulator._state import EmulatorState, Finished
from claynb.services._http import HOST, BackgroundServer

log = logging.getLogger("claynb.emulator")


class Emulator:
    """A local, faithful Clay: Public API v0, webhook sources, meters, latency and faults.

    ``plan`` is a plan name (free, launch, growth, enterprise) or a :class:`claynb.Plan`;
    ``run_latency_s`` a number or a (low, high) range sampled per run (0 finishes at
    once); ``rate_limit_rps`` a token bucket over all /public/v0 requests (20 a second
    unless told; None: no limit); ``faults`` the failure probabilities; ``api_key`` the key clients must send
    (one is generated when None); ``seed`` makes latencies and faults repeatable.

    Extra keyword settings: ``routines`` (a dict of :class:`claynb.Routine`),
    ``rate_limit_burst``, ``rate_limit_header`` (what X-RateLimit-Limit counts:
    "per_second", "per_minute" or "absent"), ``slow_s`` (how long a timeout fault holds its answer, 30 s),
    ``source_rate_per_s`` (10), ``source_burst`` (20), ``source_lifetime_cap`` (50,000),
    ``source_max_bytes`` (100 KB), ``batch_max_rows`` (50,000), ``webhook_hold_s`` (1 s).

    Behaviours Clay does not publish, each a setting with every plausible variant (the
    default first; see the README's table): ``array_posts`` ("rows", "one_row",
    "rejected": what a JSON array posted to a webhook source becomes), ``start_failure``
    ("not_started", "started": what a 5xx on a run-starting POST means), ``credits_out``
    ("both", "402", "item_failures": how running out of credits shows),
    ``webhook_retries`` ("none", "retried", with ``webhook_attempts`` and
    ``webhook_backoff_s``), ``source_cap_answer`` ("refused", "dropped": past a source's
    lifetime cap), and ``table_row_limit`` (default: the plan's rows per table). Answers
    carry only what Clay documents; what each item cost is at :attr:`admin_url`.

    Search settings (Clay publishes none of these numbers): ``search_period_quota``
    (records per calendar month; default the plan's monthly Actions), ``search_page_cap``
    (records per page; 50 on Free, else 500), ``search_per_search_cap`` (None),
    ``search_quota_counts`` ("requested": a page counts what it asked for; or "returned"),
    ``search_cost_per_record`` (a :class:`claynb.Cost`; free by default, as Clay lists
    building lists from searches as free), ``search_max_page_bytes`` (1 MiB, 413 above).
    """

    def __init__(
        self,
        plan: str | Plan = "growth",
        run_latency_s: float | tuple[float, float] = (1.0, 3.0),
        rate_limit_rps: float | None = DEFAULT_RATE_LIMIT_RPS,
        faults: Faults | None = None,
        api_key: str | None = None,
        port: int = 0,
        seed: int = 0,
        **settings: Any,
    ) -> None:
        self._settings = build_settings(
            plan=plan,
            run_latency_s=run_latency_s,
            rate_limit_rps=rate_limit_rps,
            faults=faults,
            seed=seed,
            **settings,
        )
        self._api_key = api_key or f"clay_test_{secrets.token_urlsafe(24)}"
        register_secret(self._api_key)
        self._requested_port = int(port)
        self._state = EmulatorState(self._settings)
        self._dice = FaultDice(self._settings.faults, seed)
        self._tables = _make_tables(self._state)
        self._port: int | None = None
        self._http: BackgroundServer | None = None
        self._outbound: Outbound | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- identity -----------------------------------------------------------------------

    @property
    def api_key(self) -> str:
        """The key clients send in ``clay-api-key``. Never printed by claynb."""
        return self._api_key

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; the Public API is at ``url + "/public/v0"``."""
        if self._port is None:
            raise RuntimeError(
                "the emulator is not running: call start() or use it as a context manager"
            )
        return f"http://{HOST}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def admin_url(self) -> str:
        """The root of this emulator's own routes (``url + "/_emulator"``): meters, what each
        item of a run cost. Not part of Clay; a client reads it only when given it."""
        return f"{self.url}/_emulator"

    def client(self, **options: Any) -> Any:
        """A :class:`claynb.ClayClient` for this emulator that knows it is one: costs are
        then read from the emulator's meters (``metered``) instead of estimated."""
        from claynb.wire._client import ClayClient

        return ClayClient(
            self.api_key, base_url=self.url, emulator_admin_url=self.admin_url, **options
        )

    def async_client(self, **options: Any) -> Any:
        """The :class:`claynb.AsyncClayClient` twin of :meth:`client`."""
        from claynb.wire._client import AsyncClayClient

        return AsyncClayClient(
            self.api_key, base_url=self.url, emulator_admin_url=self.admin_url, **options
        )

    @property
    def plan(self) -> Plan:
        return self._settings.plan

    @property
    def routines(self) -> Mapping[str, Routine]:
        """The routine catalogue this emulator answers from (read-only)."""
        return MappingProxyType(self._settings.routines)

    @property
    def faults(self) -> Faults:
        return self._dice.faults

    @property
    def running(self) -> bool:
        return self._http is not None and self._http.running

    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None:
        return self._http.loop if self._http is not None else None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not running"
        low, high = self._settings.run_latency_s
        latency = f"{low:g}" if low == high else f"({low:g}, {high:g})"
        return (
            f"Emulator({where}, plan={self.plan.name!r}, run_latency_s={latency}, "
            f"rate_limit_rps={self._settings.rate_limit_rps!r}, api_key='***')"
        )

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        """Serve on a free loopback port (or the one asked for) until :meth:`stop`.

        Raises :class:`claynb.ConfigError` when the server does not come up.
        """
        if self.running:
            return self
        self._http = BackgroundServer(
            self._build_app(),
            name="claynb-emulator",
            host=HOST,
            port=self._requested_port,
            main=self._main,
            http=DroppingH11Protocol,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._http.start()
        self._port = self._http.port
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end. Meters stay readable."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # Answers held back by a timeout fault go out now rather than hold up the stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stopping.set)
        if self._http is not None:
            self._http.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _build_app(self) -> Starlette:
        self._stopping = asyncio.Event()
        public = PublicApi(
            self._state,
            self._dice,
            self._api_key,
            self._notify,
            query=self._tables.query_endpoint if self._tables else None,
            stopping=self._stopping,
        )
        if self._tables is not None:
            self._tables.gate = lambda handler: public.faulty(handler, starts_work=True)
            self._tables.notify = self._notify
        routes: list[Any] = [
            Mount("/public/v0", routes=public.routes()),
            *AdminApi(self, self._state).routes(),
        ]
        if self._tables is not None:
            routes.extend(self._tables.routes())
        app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
        return CountRequests(app, self._state)  # type: ignore[return-value]

    async def _main(self, serving: Coroutine[Any, Any, None]) -> None:
        """On the server's loop: the finaliser and the outbound webhooks live as long as it."""
        self._wake = asyncio.Event()
        self._state.on_schedule = self._wake_threadsafe
        async with httpx.AsyncHTTPTransport() as transport:
            self._outbound = Outbound(self._state, self._dice, transport)
            finaliser = asyncio.get_running_loop().create_task(self._finaliser())
            try:
                await serving
            finally:
                finaliser.cancel()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(finaliser, *self._tasks, return_exceptions=True)

    async def _finaliser(self) -> None:
        """Finish runs as their latency passes, so they are charged without a poll."""
        assert self._wake is not None
        while True:
            self._wake.clear()
            self._dispatch(self._state.finalise_due())
            due = self._state.next_due()
            timeout = None if due is None else max(0.0, due - self._state.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _wake_threadsafe(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    # --- deliveries -----------------------------------------------------------------------

    def _notify(self, finished: Finished) -> None:
        """Hand finished work to the event loop, from whichever thread noticed it."""
        loop = self._loop
        if not finished or loop is None or loop.is_closed():
            return
        if self._in_loop():
            self._dispatch(finished)
        else:
            loop.call_soon_threadsafe(self._dispatch, finished)

    def _in_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _dispatch(self, finished: Finished) -> None:
        if not finished or self._outbound is None:
            return
        for run in finished.runs:
            if run.webhook_id is not None and not run.notified:
                run.notified = True
                # Faults are drawn now, in finishing order, so a test can change them between runs.
                faults = self._dice.webhook_faults()
                self._spawn(self._outbound.run_finished(run.webhook_id, run.id, faults))
        if self._tables is not None:
            for table_id, row_id in finished.rows_ready:
                self._tables.row_ready(table_id, row_id, self._outbound, self._spawn)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_in_loop(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # --- the admin API --------------------------------------------------------------------

    def meters(self, *, charges: bool = True) -> dict[str, Any]:
        """Meters used and left, per routine, every charge, every delivery, request counts."""
        self._notify(self._state.finalise_due())
        return self._state.snapshot(charges=charges)

    def create_webhook(self, url: str) -> dict[str, str]:
        """Register an outbound webhook. The signing secret is in this answer only."""
        hook = self._state.create_webhook(url)
        return {
            "id": hook.id,
            "url": hook.url,
            "createdAt": hook.created_at,
            "signingSecret": hook.signing_secret,
        }

    def has_webhook(self, webhook_id: str) -> bool:
        return webhook_id in self._state.webhooks

    def send_test_webhook(self, webhook_id: str) -> None:
        """Send a test delivery (``data: {}``) to a registered webhook, and wait for it."""
        if not self.has_webhook(webhook_id):
            raise KeyError(f"webhook {webhook_id!r} not found")
        self._run_in_loop(self.send_test_webhook_async(webhook_id))

    async def send_test_webhook_async(self, webhook_id: str) -> None:
        assert self._outbound is not None
        await self._outbound.webhook(self._state.webhooks[webhook_id], {})

    def set_credits(
        self, actions_left: float | None = None, data_credits_left: float | None = None
    ) -> None:
        """Set what is left on either meter (None leaves it as it is)."""
        with self._state.lock:
            self._state.meters.set_left(actions_left, data_credits_left)

    def top_up(self, actions: float = 0, data_credits: float = 0) -> None:
        """Add Actions and Data Credits, as a Clay top-up does."""
        with self._state.lock:
            self._state.meters.top_up(actions, data_credits)

    def set_faults(self, faults: Faults) -> None:
        """Change the fault probabilities from now on."""
        if not isinstance(faults, Faults):
            raise TypeError("set_faults takes a claynb.Faults")
        self._dice.faults = faults

    def reset_meters(self) -> None:
        """A fresh month: the plan's allowance back, charges, deliveries and counts cleared."""
        self._state.reset_meters()

    def create_table(
        self,
        name: str,
        enrichments: list[dict[str, Any]] | None = None,
        http_api: dict[str, Any] | None = None,
        auth_token: str | None = None,
    ) -> dict[str, str]:
        """An emulated Clay table with a webhook source, enrichment columns and an HTTP API column."""
        if self._tables is None:
            raise RuntimeError("tables are not available in this build")
        if self._port is None:
            raise RuntimeError(
                "start the emulator before creating tables (the webhook URL needs its port)"
            )
        return self._tables.create(name, enrichments or [], http_api, auth_token, self.url)  # type: ignore[no-any-return]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in Clay's error shape too, not Starlette's plain text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return error(status, f"{detail}: {request.method} {request.url.path}")


def _make_tables(state: EmulatorState) -> Any:
    try:
        from claynb.emulator._tables import Tables
    except ImportError:
        return None
    return Tables(state)
