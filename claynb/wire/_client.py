"""The Clay clients: :class:`ClayClient` (sync) and :class:`AsyncClayClient` (asyncio).

Both only send. Every decision (what to send, whether to retry, how long to wait, how
to read the answer) is made by :class:`claynb.wire._core.BaseClient`, so the two behave the
same by construction.

Why a run is never re-sent after it may have reached Clay: Clay has no idempotency key,
so a second ``POST /routines/{id}/run`` is a second run, charged again. After a read
timeout or a dropped connection the client raises :class:`claynb.OutcomeUnknown` with the
item ids, and the caller (``enrich`` marks them ``unknown``) decides. Requests that spend
go over connections that are never reused: a pooled connection the server had already
closed would fail like a dropped answer, and turn a harmless race into an unknown outcome.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from claynb.wire._admin import RunCharges, charges_flow, meters_flow, webhook_flow
from claynb.wire._aio import AioSender
from claynb.wire._config import (
    DEFAULT_BASE_URL,
    DEFAULT_PAGE_LIMIT,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_WAIT_TIMEOUT_S,
    RetryPolicy,
    SourcePolicy,
    Timeout,
)
from claynb.wire._core import BaseClient, Call, Flow, Sleep
from claynb.wire._exceptions import ClayError
from claynb.wire._pacing import Pace
from claynb.wire._results import (
    BatchResults,
    Me,
    RunResults,
    SearchFields,
    SearchResult,
    SourceType,
    TableRows,
)
from claynb.wire._search_flow import (
    SEARCH_PAGE_SIZE,
    PageGate,
    SearchPageHook,
    fields_flow,
    reference_flow,
    search_flow,
)
from claynb.wire._sources import SourceReport, SourceTracker, source_flow, tracker_for

T = TypeVar("T")
Self = TypeVar("Self", bound="ClayClient")
AsyncSelf = TypeVar("AsyncSelf", bound="AsyncClayClient")

# Keep-alive off for requests that spend (see the module docstring).
_NO_REUSE = httpx.Limits(max_keepalive_connections=0)


class ClayClient(BaseClient):
    """A synchronous client for Clay's Public API v0 and table webhook sources.

    >>> client = ClayClient(api_key=emu.api_key, base_url=emu.url)   # doctest: +SKIP
    >>> run_id = client.run_routine("enrich-person", [{"id": "1", "inputs": {"email": "a@b.co"}}])

    Safe to share between threads: the pacer keeps them all under the limit (learned
    from 429s and X-RateLimit-Remaining/Reset, capped by ``rate_limit_rps``) and a 429
    holds every thread. ``pace`` shares one pace with other clients or processes.
    ``transport`` replaces the network (``httpx.MockTransport`` in unit tests).
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        rate_limit_rps: float | None = None,
        source_policy: SourcePolicy | None = None,
        home: str | Path | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        emulator_admin_url: str | None = None,
        pace: Pace | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            rate_limit_rps=rate_limit_rps,
            source_policy=source_policy,
            home=home,
            rng=rng,
            clock=clock,
            wall_clock=wall_clock,
            emulator_admin_url=emulator_admin_url,
            pace=pace,
        )
        self._sleep = sleep
        self._http = httpx.Client(timeout=self._timeout(), transport=transport)
        self._spend_http = httpx.Client(
            timeout=self._timeout(), transport=transport, limits=_NO_REUSE
        )

    # -- the Public API ------------------------------------------------------------------

    def me(self) -> Me:
        """The user and workspace of the API key."""
        return self._drive(self._me_flow())

    def run_routine(
        self,
        routine_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        webhook_id: str | None = None,
        max_sends: int | None = None,
    ) -> str:
        """Start a run of 1-100 items ``{"id", "inputs"}``; return its run id.

        Never re-sent once it may have reached Clay (no idempotency key: a blind retry can
        pay twice): a timeout, a dropped connection or any 5xx answer raises
        :class:`claynb.OutcomeUnknown` with the item ids instead. A 429 means Clay asked to
        wait and started nothing, so it is retried; when ``max_sends`` is given (what the
        items' cap has left, see :meth:`claynb.RetryPolicy.sends_left`), at most that many
        sends may fail (a 429 waited through is not a failure). An error says how many
        were sent (``exc.attempts``) and how many answered 429.
        """
        return self._drive(self._run_flow(routine_id, items, webhook_id, max_sends))

    def get_run_results(self, run_id: str) -> RunResults:
        """The run's progress, and every result (all cursor pages) once it is complete."""
        return self._drive(self._results_flow(run_id))

    def wait_for_run(
        self,
        run_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> RunResults:
        """Poll until the run completes, at a modest interval that grows to 10 s."""
        return self._drive(
            self._wait_flow(lambda: self._results_flow(run_id), run_id, poll_interval, timeout)
        )

    def start_batch(
        self, routine_id: str, items: Sequence[Mapping[str, Any]], *, webhook_id: str | None = None
    ) -> str:
        """Upload the items as JSONL and start a batch run; return its run id.

        The start is never re-sent once it may have reached Clay, like :meth:`run_routine`.
        """
        return self._drive(self._batch_flow(routine_id, items, webhook_id))

    def get_batch_results(self, run_id: str) -> BatchResults:
        """A batch run's progress; once complete, its results downloaded from result_url."""
        return self._drive(self._batch_results_flow(run_id))

    def wait_for_batch(
        self,
        run_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> BatchResults:
        """Poll a batch run until it reaches a terminal state (complete or failed)."""
        return self._drive(
            self._wait_flow(
                lambda: self._batch_results_flow(run_id), run_id, poll_interval, timeout
            )
        )

    def run_charges(self, run_id: str) -> RunCharges | None:
        """What each item of a run cost, from the emulator's meters; None unless this
        client was told it talks to a claynb emulator (real Clay reports no per-item cost)."""
        return self._drive(charges_flow(self, run_id))

    def emulator_meters(self) -> dict[str, Any] | None:
        """The emulator's meters (used and left); None unless this client talks to one."""
        return self._drive(meters_flow(self))

    def create_emulator_webhook(self, url: str) -> dict[str, str] | None:
        """Register ``url`` as an outbound webhook on the emulator (``{"id",
        "signingSecret"}``); None for real Clay, where ``clay webhooks create URL`` does it."""
        return self._drive(webhook_flow(self, url))

    def query_table(
        self,
        query: Mapping[str, Any] | str,
        *,
        limit: int = DEFAULT_PAGE_LIMIT,
        max_pages: int | None = None,
    ) -> TableRows:
        """Read table rows (Enterprise plans; 403 otherwise). ``query`` is a structured
        query, or a table id to read it whole. Every page is followed unless ``max_pages``."""
        return self._drive(self._query_flow(query, limit, max_pages))

    def search(
        self,
        source_type: SourceType | str | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        query: str | None = None,
        limit: int | None = None,
        page_size: int = SEARCH_PAGE_SIZE,
        gate: PageGate | None = None,
        on_page: SearchPageHook | None = None,
    ) -> SearchResult:
        """Create a people or companies search (``filters=`` or a ``query=`` string) and
        page it until ``limit``, no more results, the period quota, or what ``gate``
        grants. A page that may have reached Clay is never re-sent (the iterator moves on)."""
        return self._drive(
            search_flow(
                self,
                source_type,
                filters=filters,
                query=query,
                limit=limit,
                page_size=page_size,
                gate=gate,
                on_page=on_page,
            )
        )

    def search_fields(self, source_type: SourceType | str) -> SearchFields:
        """The filter fields of ``people`` or ``companies``, with Clay's guidance."""
        return self._drive(fields_flow(self, source_type))

    def search_query_reference(self) -> str:
        """Clay's reference (markdown) for query-mode search queries."""
        return self._drive(reference_flow(self))

    def send_to_source(
        self,
        webhook_url: str,
        records: Sequence[Mapping[str, Any]],
        *,
        auth_token: str | None = None,
    ) -> SourceReport:
        """Send rows to a table's webhook source: paced, chunked, the lifetime cap tracked."""
        return self._drive(source_flow(self, self._tracker(), webhook_url, records, auth_token))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        spends: bool | None = None,
    ) -> httpx.Response:
        """Any other request, with the same auth, pacing, retries and errors.

        ``spends`` (default: True for POST) marks a request never re-sent once it may
        have reached Clay. Returns the successful response; errors raise.
        """
        call = self.build_call(
            method,
            path,
            params=params,
            json_body=json,
            content=content,
            headers=headers,
            spends=spends,
        )
        return self._drive(self._request_flow(call))

    def async_twin(self, pace: Pace | None = None) -> AsyncClayClient:
        """A new :class:`AsyncClayClient` with this client's key, URL, policies and pace
        (or ``pace``, a fleet's).

        For asyncio code (the direct tier's engine) driven from this client: the twin
        opens its own connections on the loop that uses it. The caller closes it.
        """
        return _twin(self, pace)

    # -- plumbing ------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._spend_http.close()

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _tracker(self) -> SourceTracker:
        return tracker_for(self.home)

    def _drive(self, flow: Flow[T]) -> T:
        """Run a flow: send its calls, sleep its sleeps, hand errors back to it."""
        try:
            op = next(flow)
            while True:
                if isinstance(op, Sleep):
                    self._sleep(op.seconds)
                    op = flow.send(None)
                    continue
                try:
                    response = self._send(op)
                except ClayError as exc:
                    op = flow.throw(exc)
                    continue
                op = flow.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _send(self, call: Call) -> httpx.Response:
        """Send one call, retrying as the core decides."""
        http = self._spend_http if call.spends else self._http
        while True:
            call.attempts += 1
            delay = self.pace_delay(call)
            if delay > 0:
                self._sleep(delay)
            try:
                response = http.send(call.request)
            except httpx.RequestError as exc:  # no usable answer (a 4xx/5xx is not raised)
                step = self.after_transport_error(call, exc)
                if step.error is not None:
                    raise step.error from exc
            else:
                step = self.after_response(call, response)
                if step.done:
                    return response
                if step.error is not None:
                    raise step.error
            if step.delay > 0:
                self._sleep(step.delay)


class AsyncClayClient(BaseClient):
    """The asyncio twin of :class:`ClayClient`: same methods, awaited.

    Safe to share between tasks of one event loop: the pacer is shared and never held
    across an ``await``. It sends through aiohttp (:mod:`claynb.wire._aio` says why and
    what is kept from httpx), on sessions opened by the first request in the loop that
    makes it and closed by :meth:`aclose`. ``transport`` is for tests: an httpx transport
    (``httpx.MockTransport`` to shape an answer) puts this client on httpx instead.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        rate_limit_rps: float | None = None,
        source_policy: SourcePolicy | None = None,
        home: str | Path | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        emulator_admin_url: str | None = None,
        pace: Pace | None = None,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            rate_limit_rps=rate_limit_rps,
            source_policy=source_policy,
            home=home,
            rng=rng,
            clock=clock,
            wall_clock=wall_clock,
            emulator_admin_url=emulator_admin_url,
            pace=pace,
        )
        self._sleep = sleep
        #: httpx only when a test gives a transport; aiohttp otherwise (see _aio).
        self._sender: AioSender | HttpxSender = (
            AioSender(self.timeout) if transport is None else HttpxSender(self, transport)
        )

    async def me(self) -> Me:
        """The user and workspace of the API key."""
        return await self._drive(self._me_flow())

    async def run_routine(
        self,
        routine_id: str,
        items: Sequence[Mapping[str, Any]],
        *,
        webhook_id: str | None = None,
        max_sends: int | None = None,
    ) -> str:
        """Start a run of 1-100 items; see :meth:`ClayClient.run_routine` (never re-sent)."""
        return await self._drive(self._run_flow(routine_id, items, webhook_id, max_sends))

    async def get_run_results(self, run_id: str) -> RunResults:
        """The run's progress, and every result (all cursor pages) once it is complete."""
        return await self._drive(self._results_flow(run_id))

    async def wait_for_run(
        self,
        run_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> RunResults:
        """Poll until the run completes, at a modest interval that grows to 10 s."""
        return await self._drive(
            self._wait_flow(lambda: self._results_flow(run_id), run_id, poll_interval, timeout)
        )

    async def start_batch(
        self, routine_id: str, items: Sequence[Mapping[str, Any]], *, webhook_id: str | None = None
    ) -> str:
        """Upload the items as JSONL and start a batch run (the start is never re-sent)."""
        return await self._drive(self._batch_flow(routine_id, items, webhook_id))

    async def get_batch_results(self, run_id: str) -> BatchResults:
        """A batch run's progress; once complete, its results downloaded from result_url."""
        return await self._drive(self._batch_results_flow(run_id))

    async def wait_for_batch(
        self,
        run_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> BatchResults:
        """Poll a batch run until it reaches a terminal state (complete or failed)."""
        return await self._drive(
            self._wait_flow(
                lambda: self._batch_results_flow(run_id), run_id, poll_interval, timeout
            )
        )

    async def run_charges(self, run_id: str) -> RunCharges | None:
        """What each item of a run cost, from the emulator's meters; see
        :meth:`ClayClient.run_charges`."""
        return await self._drive(charges_flow(self, run_id))

    async def emulator_meters(self) -> dict[str, Any] | None:
        """The emulator's meters (used and left); None unless this client talks to one."""
        return await self._drive(meters_flow(self))

    async def create_emulator_webhook(self, url: str) -> dict[str, str] | None:
        """Register ``url`` as an outbound webhook on the emulator; None for real Clay."""
        return await self._drive(webhook_flow(self, url))

    async def query_table(
        self,
        query: Mapping[str, Any] | str,
        *,
        limit: int = DEFAULT_PAGE_LIMIT,
        max_pages: int | None = None,
    ) -> TableRows:
        """Read table rows (Enterprise plans; 403 otherwise), every page followed."""
        return await self._drive(self._query_flow(query, limit, max_pages))

    async def search(
        self,
        source_type: SourceType | str | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        query: str | None = None,
        limit: int | None = None,
        page_size: int = SEARCH_PAGE_SIZE,
        gate: PageGate | None = None,
        on_page: SearchPageHook | None = None,
    ) -> SearchResult:
        """Create a people or companies search (``filters=`` or a ``query=`` string) and
        page it until ``limit``, no more results, the period quota, or what ``gate``
        grants. A page that may have reached Clay is never re-sent (the iterator moves on)."""
        return await self._drive(
            search_flow(
                self,
                source_type,
                filters=filters,
                query=query,
                limit=limit,
                page_size=page_size,
                gate=gate,
                on_page=on_page,
            )
        )

    async def search_fields(self, source_type: SourceType | str) -> SearchFields:
        """The filter fields of ``people`` or ``companies``, with Clay's guidance."""
        return await self._drive(fields_flow(self, source_type))

    async def search_query_reference(self) -> str:
        """Clay's reference (markdown) for query-mode search queries."""
        return await self._drive(reference_flow(self))

    async def send_to_source(
        self,
        webhook_url: str,
        records: Sequence[Mapping[str, Any]],
        *,
        auth_token: str | None = None,
    ) -> SourceReport:
        """Send rows to a table's webhook source: paced, chunked, the lifetime cap tracked."""
        flow = source_flow(self, tracker_for(self.home), webhook_url, records, auth_token)
        return await self._drive(flow)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        spends: bool | None = None,
    ) -> httpx.Response:
        """Any other request, with the same auth, pacing, retries and errors."""
        call = self.build_call(
            method,
            path,
            params=params,
            json_body=json,
            content=content,
            headers=headers,
            spends=spends,
        )
        return await self._drive(self._request_flow(call))

    def async_twin(self, pace: Pace | None = None) -> AsyncClayClient:
        """A new AsyncClayClient like this one (its pace, or ``pace``), for another event
        loop (connections belong to the loop that opened them). The caller closes it."""
        return _twin(self, pace)

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def close(self) -> None:
        """Same as :meth:`aclose`."""
        await self.aclose()

    async def __aenter__(self: AsyncSelf) -> AsyncSelf:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _drive(self, flow: Flow[T]) -> T:
        """Run a flow: send its calls, sleep its sleeps, hand errors back to it."""
        try:
            op = next(flow)
            while True:
                if isinstance(op, Sleep):
                    await self._sleep(op.seconds)
                    op = flow.send(None)
                    continue
                try:
                    response = await self._send(op)
                except ClayError as exc:
                    op = flow.throw(exc)
                    continue
                op = flow.send(response)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _send(self, call: Call) -> httpx.Response:
        """Send one call, retrying as the core decides."""
        while True:
            call.attempts += 1
            delay = self.pace_delay(call)
            if delay > 0:
                await self._sleep(delay)
            try:
                response = await self._sender.send(call.request, spends=call.spends)
            except httpx.RequestError as exc:  # no usable answer (a 4xx/5xx is not raised)
                step = self.after_transport_error(call, exc)
                if step.error is not None:
                    raise step.error from exc
            else:
                step = self.after_response(call, response)
                if step.done:
                    return response
                if step.error is not None:
                    raise step.error
            if step.delay > 0:
                await self._sleep(step.delay)


class HttpxSender:
    """What :class:`AsyncClayClient` sends through when a test gives it an httpx transport
    (``httpx.MockTransport`` to shape an answer): the same two pools as the sync client."""

    def __init__(self, client: BaseClient, transport: httpx.AsyncBaseTransport) -> None:
        timeout = client._timeout()
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._spend_http = httpx.AsyncClient(timeout=timeout, transport=transport, limits=_NO_REUSE)

    async def send(self, request: httpx.Request, *, spends: bool) -> httpx.Response:
        return await (self._spend_http if spends else self._http).send(request)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._spend_http.aclose()


def _twin(client: BaseClient, pace: Pace | None = None) -> AsyncClayClient:
    credentials = client.credentials()
    return AsyncClayClient(
        credentials.api_key,
        base_url=credentials.base_url,
        timeout=client.timeout,
        retry=client.retry,
        source_policy=client.source_policy,
        home=client.home,
        emulator_admin_url=credentials.emulator_admin_url,
        pace=pace or client.pace,
    )
