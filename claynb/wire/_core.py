"""The I/O-free heart of the Clay clients.

:class:`BaseClient` builds every request, decides after every answer or failure whether
to retry and how long to wait, paces requests under the rate limit and parses answers
into typed objects. It never touches the network: :class:`claynb.ClayClient` and
:class:`claynb.AsyncClayClient` only send what it builds and sleep when it says so.

Multi-step operations (following cursor pages, polling a run, the batch upload) are
written once, as generators ("flows") that yield a :class:`Call` to send or a
:class:`Sleep` and receive the answer; the sync and async clients each drive them.

Why the retry rules look the way they do: Clay has no idempotency key, so a
``POST /routines/{id}/run`` that reached Clay and was then re-sent runs, and is charged,
twice. A request that failed before it was sent (connection refused) or that Clay
answered 429 is retried; one that may have been received (a read timeout, a dropped
connection) is never re-sent: it raises :class:`claynb.OutcomeUnknown` with the ids of the
items whose fate is unknown, for the caller to resume. A run-starting POST (inline or
batch) answered with any 5xx is an unknown outcome too: Clay does not say whether a run
started behind the error, and if it did it will charge.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import orjson

from claynb._home import state_home
from claynb._secrets import mask, redact, register_secret
from claynb._version import __version__
from claynb.wire._config import (
    DEFAULT_BASE_URL,
    DEFAULT_PACING_FRACTION,
    DEFAULT_PAGE_LIMIT,
    DEFAULT_POLL_BACKOFF,
    DEFAULT_POLL_MAX_INTERVAL_S,
    MAX_RUN_ITEMS,
    SOURCE_PACING_FRACTION,
    Credentials,
    RetryPolicy,
    SourcePolicy,
    Timeout,
    checked_admin_url,
)
from claynb.wire._exceptions import (
    ClayError,
    ConfigError,
    HTTPStatusError,
    OutcomeUnknown,
    RateLimited,
    TransportError,
    error_for_status,
)
from claynb.wire._pacing import Pace, Pacer, header_number, reset_in_s, retry_after_s
from claynb.wire._results import (
    BatchResults,
    Me,
    RunResults,
    TableRows,
    answer_json,
    error_message,
    parse_batch_status,
    parse_jsonl_items,
    parse_me,
    parse_run_page,
    run_id_of,
)

logger = logging.getLogger("claynb")

API_PATH = "/public/v0"

T = TypeVar("T")
R = TypeVar("R", bound=RunResults)

#: Failures raised before any byte of the request left: always safe to retry.
NOT_SENT_ERRORS: tuple[type[httpx.RequestError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
#: Failures that retrying cannot fix (a wrong URL scheme, a proxy refusing).
FATAL_ERRORS: tuple[type[httpx.RequestError], ...] = (
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.TooManyRedirects,
)


@dataclass
class Call:
    """One request to send, with what the retry rules need to know about it.

    ``spends`` marks a request that may start paid work (a run, a batch start, rows into
    a table): once it may have reached Clay it is never re-sent. ``starts_run`` marks a
    run-starting POST, for which a 5xx is an unknown outcome too. ``item_ids`` are the
    items whose fate is unknown if that happens. ``pace`` names the pacer it waits for.
    """

    request: httpx.Request
    spends: bool = False
    starts_run: bool = False
    item_ids: list[str] = field(default_factory=list)
    pace: str | None = None
    cost: float = 1.0
    rate_limited: int = 0
    attempts: int = 0
    #: Sends Clay may fail (5xx, a dropped connection) in this call, when the caller has
    #: spent some of the item's cap already (:meth:`claynb.RetryPolicy.sends_left`). A 429
    #: is Clay asking to wait, not a failure: it is bounded by max_attempts alone.
    max_sends: int | None = None

    @property
    def failed(self) -> int:
        """Sends Clay failed so far (every attempt that was not answered 429)."""
        return self.attempts - self.rate_limited


@dataclass(frozen=True)
class Sleep:
    """A flow asking its driver to wait (polling)."""

    seconds: float


@dataclass(frozen=True)
class Step:
    """What to do after one attempt: ``done``, retry after ``delay`` s, or raise ``error``."""

    done: bool = False
    delay: float = 0.0
    error: ClayError | None = None


DONE = Step(done=True)

Flow = Generator[Call | Sleep, httpx.Response | None, T]


class BaseClient:
    """Everything a Clay client does except sending bytes and sleeping.

    ``rate_limit_rps`` caps the pace of requests to the Public API; either way the pacer
    learns what the server allows from its 429s and X-RateLimit-Remaining/Reset (see
    :mod:`claynb.wire._pacing`). ``pace`` shares one pace between clients, processes and
    hosts (:class:`claynb.wire._fleet.FleetPacer`); ``rate_limit_rps`` is then its cap. ``rng`` draws the
    backoff jitter and ``clock``/``wall_clock`` tell time, so tests can pin all three.
    ``emulator_admin_url`` is given only by a claynb emulator (see :mod:`claynb.wire._admin`):
    with it, what each item cost is read from the emulator's meters.
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
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        emulator_admin_url: str | None = None,
        pace: Pace | None = None,
    ) -> None:
        if not api_key or not isinstance(api_key, str):
            raise ConfigError("api_key is required (the clay-api-key from Clay's settings)")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, not {base_url!r}")
        if rate_limit_rps is not None and not rate_limit_rps > 0:
            raise ConfigError(
                f"rate_limit_rps must be positive (or None to learn it), not {rate_limit_rps}"
            )
        register_secret(api_key)
        self._api_key = api_key
        self.base_url = api_base(base_url)
        #: The emulator's own routes, when an emulator said it is one (never guessed).
        self.emulator_admin_url = checked_admin_url(emulator_admin_url, self.base_url)
        self.timeout = timeout if isinstance(timeout, Timeout) else Timeout(timeout)
        self.retry = retry or RetryPolicy()
        self.source_policy = source_policy or SourcePolicy()
        #: Where this client keeps webhook sources' submission counts (see :mod:`claynb._home`).
        self.home = str(state_home(home))
        self.emulator: Any = None  # set by claynb.connect() when it started one
        self._announced: float | None = None  # the last X-RateLimit-Limit passed to the pace
        #: Results per page when following cursors (1-100; the largest means fewest requests).
        self.page_limit = DEFAULT_PAGE_LIMIT
        self._rng = rng or random.Random()
        self._clock = clock
        self._wall_clock = wall_clock
        self._pacers: dict[str, Pace] = {
            "api": pace or Pacer(rate_limit_rps, fraction=DEFAULT_PACING_FRACTION, clock=clock),
            "source": Pacer(
                self.source_policy.records_per_s,
                burst=_source_burst(self.source_policy),
                fraction=SOURCE_PACING_FRACTION,
                clock=clock,
            ),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={mask(self._api_key)})"

    def credentials(self) -> Credentials:
        """The key and base URL, for a worker process or a twin client (masked in reprs)."""
        return Credentials(self._api_key, self.base_url, self.emulator_admin_url)

    @property
    def rate_limit_rps(self) -> float | None:
        """The Public API limit the pacer works to: given, learned, or None (not yet known)."""
        return self._pacers["api"].limit

    @property
    def pace(self) -> Pace:
        """The pace of Public API requests; ``pace=`` to another client paces both as one."""
        return self._pacers["api"]

    # -- building requests -------------------------------------------------------------

    def url_for(self, path: str) -> str:
        """``path`` under the base URL, or ``path`` itself when it is already absolute."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _is_api(self, url: str) -> bool:
        # The key goes only to the Public API itself, never to a presigned upload or
        # result URL or a webhook source, even on the same host.
        return url.startswith(self.base_url + "/")

    def build_call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        spends: bool | None = None,
        item_ids: Sequence[str] = (),
    ) -> Call:
        """A :class:`Call` for ``method path``; ``spends`` defaults to "any POST"."""
        url = self.url_for(path)
        is_api = self._is_api(url)
        merged = {"user-agent": f"claynb/{__version__}", "accept": "application/json"}
        if is_api:
            merged["clay-api-key"] = self._api_key
        merged.update(headers or {})
        body: dict[str, Any] = {}
        if json_body is not None:
            body["content"] = encode_json(json_body)
            merged["content-type"] = "application/json"
        elif content is not None:
            body["content"] = content
        try:
            request = httpx.Request(
                method.upper(), url, params=_clean(params), headers=merged, **body
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot build {method.upper()} {url}: {exc}") from exc
        will_spend = method.upper() == "POST" if spends is None else spends
        pace = "api" if is_api else None
        return Call(request, spends=will_spend, item_ids=list(item_ids), pace=pace)

    def _timeout(self) -> httpx.Timeout:
        t = self.timeout
        return httpx.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)

    # -- pacing and retry decisions ----------------------------------------------------

    def pace_delay(self, call: Call) -> float:
        """Seconds to wait before sending ``call`` so the rate limit is respected."""
        pacer = self._pacers.get(call.pace or "")
        return pacer.reserve(call.cost) if pacer else 0.0

    def after_response(self, call: Call, response: httpx.Response) -> Step:
        """Decide what an answer means: done, retry (429, 5xx) or an error to raise.

        A 429 is retried even for a POST that starts a run: Clay asked to wait and started
        nothing. A 5xx to a run-starting POST is never re-sent: Clay does not say whether
        the run started behind the error (a gateway may have given up on a run that goes
        on), so it is an unknown outcome like a timeout, collected if Clay's webhook names
        the run. Other requests that spend (rows into a table) are unknown on a 504 only;
        reads are retried on any 5xx.
        """
        status = response.status_code
        pacer = self._pacers.get(call.pace or "")
        if pacer is not None and status != 429:
            pacer.accepted(call.cost)
        if status < 400:
            if call.pace == "api":
                self._observe_limits(response.headers)
            return DONE
        if status == 429:
            call.rate_limited += 1
            return self._after_429(call, response)
        if (status >= 500 and call.starts_run) or (status == 504 and call.spends):
            return self._unknown(call, f"answered {status} {response.reason_phrase}".strip())
        if status >= 500 and self._may_retry(call):
            return self._retry(call, self._backoff(call.attempts), f"answered {status}")
        return Step(error=self.status_error(call, response))

    def after_transport_error(self, call: Call, exc: httpx.RequestError) -> Step:
        """Decide what a failure without an answer means.

        A connection that was never made is retried like any other. One that failed
        after the request went out may have started paid work: a spending call raises
        :class:`OutcomeUnknown` at once (Clay has no idempotency key, so a blind retry
        can pay twice); a read is retried.
        """
        req = call.request
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, FATAL_ERRORS):
            return Step(
                error=TransportError(
                    what,
                    method=req.method,
                    url=str(req.url),
                    attempts=call.attempts,
                    rate_limited=call.rate_limited,
                )
            )
        if call.spends and not isinstance(exc, NOT_SENT_ERRORS):
            return self._unknown(call, what)
        if self._may_retry(call):
            return self._retry(call, self._backoff(call.attempts), what)
        return Step(
            error=TransportError(
                f"{what} after {call.attempts} attempt(s)",
                method=req.method,
                url=str(req.url),
                attempts=call.attempts,
                rate_limited=call.rate_limited,
            )
        )

    def _unknown(self, call: Call, what: str) -> Step:
        req = call.request
        message = (
            f"{req.method} {req.url} may have reached Clay ({what}); it was not re-sent "
            f"because Clay has no idempotency key and a retry could charge twice. "
            f"{len(call.item_ids)} item(s) have an unknown outcome."
        )
        _log(logging.WARNING, message)
        return Step(
            error=OutcomeUnknown(
                message,
                item_ids=call.item_ids,
                method=req.method,
                url=str(req.url),
                attempts=call.attempts,
                rate_limited=call.rate_limited,
            )
        )

    def _after_429(self, call: Call, response: httpx.Response) -> Step:
        wait = self._rate_limit_wait(response.headers)
        if wait is None:
            wait = self._backoff(call.attempts)
        if call.attempts >= self.retry.max_attempts or wait > self.retry.max_retry_after_s:
            return Step(error=self.status_error(call, response, retry_after=wait))
        pacer = self._pacers.get(call.pace or "")
        if pacer is None:
            return self._retry(call, wait, "answered 429")
        # Every thread, task or process sharing this pacer holds off until the limit
        # resets, then goes through the pacer in turn, instead of all waking at once into
        # more 429s. With no rate known yet the pacer cannot space them, so each adds
        # some jitter.
        pacer.ran_out(wait)
        spread = 0.0 if pacer.limit else self._rng.random() * min(1.0, max(wait, 0.1))
        return self._retry(call, spread, f"answered 429, holding {wait:.2f}s")

    def _rate_limit_wait(self, headers: httpx.Headers) -> float | None:
        """Seconds the server asked for: X-RateLimit-Reset if sane (finer), else Retry-After."""
        retry_after = retry_after_s(headers.get("retry-after"), self._wall_clock())
        reset_in = reset_in_s(headers.get("x-ratelimit-reset"), self._wall_clock())
        if reset_in is not None and (retry_after is None or reset_in <= retry_after + 1.0):
            return reset_in
        return retry_after

    def _observe_limits(self, headers: httpx.Headers) -> None:
        """An accepted answer saying nothing is left (X-RateLimit-Remaining 0) holds every
        caller until X-RateLimit-Reset. X-RateLimit-Limit is read only as a ceiling: its
        window is not documented, but per second it is never below the truth, so a
        per-second limiter is paced to from the first answer (passed on when it changes)."""
        ceiling = header_number(headers.get("x-ratelimit-limit"))
        if ceiling is not None and ceiling > 0 and ceiling != self._announced:
            self._announced = ceiling
            self._pacers["api"].announced(ceiling)
        remaining = header_number(headers.get("x-ratelimit-remaining"))
        if remaining is None or remaining >= 1:
            return
        reset_in = reset_in_s(headers.get("x-ratelimit-reset"), self._wall_clock())
        if reset_in:
            self._pacers["api"].ran_out(reset_in)

    def _backoff(self, attempt: int) -> float:
        return self.retry.backoff(attempt, self._rng)

    def _may_retry(self, call: Call) -> bool:
        """Another send after a failure: within max_attempts, and within what the caller's
        item cap has left (``max_sends``) when it said."""
        if call.attempts >= self.retry.max_attempts:
            return False
        return call.max_sends is None or call.failed < call.max_sends

    def _retry(self, call: Call, delay: float, why: str) -> Step:
        req = call.request
        _log(
            logging.INFO,
            f"retrying {req.method} {req.url} in {delay:.2f}s "
            f"(attempt {call.attempts} of {self.retry.max_attempts}: {why})",
        )
        return Step(delay=delay)

    def status_error(
        self, call: Call, response: httpx.Response, *, retry_after: float | None = None
    ) -> HTTPStatusError:
        """The claynb error for an error answer (status is the category: no stable codes)."""
        req = call.request
        cls = error_for_status(response.status_code)
        message = error_message(response)
        if response.status_code in (429,) or response.status_code >= 500:
            message += f" (after {call.attempts} attempt(s))"
        if cls is RateLimited and retry_after is None:
            retry_after = self._rate_limit_wait(response.headers)
        return cls(
            message,
            status=response.status_code,
            retry_after=retry_after,
            method=req.method,
            url=str(req.url),
            attempts=call.attempts,
            rate_limited=call.rate_limited,
        )

    # -- flows: one implementation of every operation, driven by sync or async --------

    def _me_flow(self) -> Flow[Me]:
        response = yield self.build_call("GET", "/me")
        assert response is not None
        return parse_me(answer_json(response))

    def _run_flow(
        self,
        routine_id: str,
        items: Sequence[Mapping[str, Any]],
        webhook_id: str | None,
        max_sends: int | None = None,
    ) -> Flow[str]:
        body = run_payload(items, webhook_id)
        ids = [item["id"] for item in body["items"]]
        call = self.build_call(
            "POST", f"/routines/{_seg(routine_id)}/run", json_body=body, spends=True, item_ids=ids
        )
        call.max_sends, call.starts_run = max_sends, True
        response = yield call
        assert response is not None
        return self._started(call, response)

    def _results_flow(self, run_id: str) -> Flow[RunResults]:
        # Run results page by cursor, which is replayable: a page retried after a timeout
        # returns the same items (a stateful iterator would lose them).
        path = f"/routines/run/{_seg(run_id)}/results"
        response = yield self.build_call("GET", path, params={"limit": self.page_limit})
        assert response is not None
        first = answer_json(response)
        results = parse_run_page(run_id, response.status_code, first)
        cursor = first.get("cursor")
        while results.complete and cursor:
            page = yield self.build_call(
                "GET", path, params={"cursor": cursor, "limit": self.page_limit}
            )
            assert page is not None
            body = answer_json(page)
            results.items.extend(parse_run_page(run_id, page.status_code, body).items)
            cursor = body.get("cursor")
        return results

    def _wait_flow(
        self, flow: Callable[[], Flow[R]], run_id: str, poll_interval: float, timeout: float
    ) -> Flow[R]:
        deadline = self._clock() + timeout
        interval = poll_interval
        while True:
            results = yield from flow()
            if results.complete:
                return results
            left = deadline - self._clock()
            if left <= 0:
                raise ClayError(
                    f"run {run_id} not finished after {timeout:.0f}s "
                    f"({results.finished} of {results.total} items); it keeps running on "
                    "Clay's side: call again to keep waiting, nothing was re-sent"
                )
            _log(
                logging.DEBUG,
                f"run {run_id}: {results.finished} of {results.total} finished, "
                f"next poll in {min(interval, left):.1f}s",
            )
            yield Sleep(min(interval, left))
            interval = min(
                interval * DEFAULT_POLL_BACKOFF, max(poll_interval, DEFAULT_POLL_MAX_INTERVAL_S)
            )

    def _batch_flow(
        self, routine_id: str, items: Sequence[Mapping[str, Any]], webhook_id: str | None
    ) -> Flow[str]:
        checked = check_items(items, limit=None)
        upload = yield self.build_call(
            "POST", f"/routines/{_seg(routine_id)}/run-batch/upload-url", spends=False
        )
        assert upload is not None
        target = answer_json(upload)
        lines = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in checked)
        yield self.build_call(
            "PUT",
            target["upload_url"],
            content=lines.encode("utf-8"),
            headers={"content-type": "application/x-ndjson"},
            spends=False,
        )
        body: dict[str, Any] = {"file_id": target["file_id"]}
        if webhook_id:
            body["webhook_id"] = webhook_id
        start = self.build_call(
            "POST",
            f"/routines/{_seg(routine_id)}/run-batch/start",
            json_body=body,
            spends=True,
            item_ids=[item["id"] for item in checked],
        )
        start.starts_run = True
        started = yield start
        assert started is not None
        return self._started(start, started)

    def _started(self, call: Call, response: httpx.Response) -> str:
        """The run id of an accepted run. An answer without one (a proxy's page, a cut
        body) still means the run may have started: an unknown outcome, not an error."""
        try:
            return run_id_of(response)
        except ClayError as exc:
            step = self._unknown(
                call, f"answered {response.status_code} without a run id: {exc.message}"
            )
            assert step.error is not None
            raise step.error from exc

    def _batch_results_flow(self, run_id: str) -> Flow[BatchResults]:
        response = yield self.build_call("GET", f"/routines/run-batch/{_seg(run_id)}/results")
        assert response is not None
        results = parse_batch_status(run_id, response.status_code, answer_json(response))
        if results.result_url:
            download = yield self.build_call("GET", results.result_url)
            assert download is not None
            results.items.extend(parse_jsonl_items(download.text))
        return results

    def _query_flow(
        self, query: Mapping[str, Any] | str, limit: int, max_pages: int | None
    ) -> Flow[TableRows]:
        if not 1 <= limit <= DEFAULT_PAGE_LIMIT:
            raise ConfigError(f"limit must be between 1 and {DEFAULT_PAGE_LIMIT}, not {limit}")
        structured = {"tables": [{"id": query}]} if isinstance(query, str) else dict(query)
        rows = TableRows()
        cursor: str | None = None
        while max_pages is None or rows.pages < max_pages:
            body: dict[str, Any] = {"query": structured, "limit": limit}
            if cursor:
                body["cursor"] = cursor
            response = yield self.build_call("POST", "/tables/query", json_body=body, spends=False)
            assert response is not None
            cursor = rows.add_page(answer_json(response))
            if not cursor:
                break
        return rows

    def _request_flow(self, call: Call) -> Flow[httpx.Response]:
        response = yield call
        assert response is not None
        return response


# -- small pure helpers ------------------------------------------------------------------


class RunItems(list[dict[str, Any]]):
    """Run items ``{"id", "inputs"}`` built once, in the form the run's body takes, and
    checked as they were built (:meth:`of`).

    :func:`check_items` copies and checks every item of every run it is given; a caller
    that already holds unique ids and their inputs (the direct tier: 2,000 runs of 100 for
    200,000 rows) builds these instead, and they are sent as they are.
    """

    @classmethod
    def of(cls, inputs: Mapping[str, Mapping[str, Any]]) -> RunItems:
        """One item per key of ``inputs`` (unique, as a mapping's keys are), 1 to 100."""
        count = len(inputs)
        if not 1 <= count <= MAX_RUN_ITEMS:
            raise ConfigError(f"a run takes 1 to {MAX_RUN_ITEMS} items, not {count}")
        if not all(isinstance(k, str) and 1 <= len(k) <= 64 for k in inputs):
            raise ConfigError("every item id must be a string of 1 to 64 characters")
        # a dict is told by its type at once; only another kind of mapping needs the ABC's
        # slower check (100 of them a run)
        if not all(type(v) is dict or isinstance(v, Mapping) for v in inputs.values()):
            raise ConfigError("every item's inputs must be a dict")
        return cls([{"id": k, "inputs": v} for k, v in inputs.items()])


def check_items(
    items: Sequence[Mapping[str, Any]], *, limit: int | None = MAX_RUN_ITEMS
) -> list[dict[str, Any]]:
    """Validate run items locally: ``{"id": str, "inputs": dict}``, unique ids, 1 to ``limit``.

    Checked before sending because a malformed run costs a round trip at best, and at
    worst (a duplicate id) leaves results that cannot be told apart. :class:`RunItems`
    were checked as they were built, and pass as they are.
    """
    if isinstance(items, RunItems):
        return items
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ConfigError("items must be a list of {'id': ..., 'inputs': {...}}")
    count = len(items)
    if count < 1 or (limit is not None and count > limit):
        bound = f"1 to {limit}" if limit else "at least 1"
        raise ConfigError(f"a run takes {bound} items, not {count}")
    checked, seen = [], set()
    for n, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("inputs"), Mapping):
            raise ConfigError(f"item {n} must be {{'id': str, 'inputs': dict}}, not {item!r:.80}")
        item_id = item.get("id")
        if not isinstance(item_id, str) or not 1 <= len(item_id) <= 64:
            raise ConfigError(f"item {n}: id must be a string of 1 to 64 characters")
        if item_id in seen:
            raise ConfigError(f"item {n}: duplicate id {item_id!r}")
        seen.add(item_id)
        checked.append({"id": item_id, "inputs": dict(item["inputs"])})
    return checked


def run_payload(items: Sequence[Mapping[str, Any]], webhook_id: str | None) -> dict[str, Any]:
    """The body of ``POST /routines/{id}/run``."""
    body: dict[str, Any] = {"items": check_items(items)}
    if webhook_id:
        body["webhook_id"] = webhook_id
    return body


def encode_json(value: Any) -> bytes:
    """A request body as compact UTF-8 JSON (keys that are not text written as text, as
    :func:`json.dumps` does; what JSON cannot hold raises a TypeError, as it does). orjson:
    a run's body of 100 items in a fraction of the time."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _source_burst(policy: SourcePolicy) -> int:
    """The burst the client allows itself: one chunk less than the server's, so that a
    chunk reaching Clay late (a slow first connection) still finds its tokens there. The
    bucket counts arrivals, and a late arrival eats into the next chunk's refill."""
    cushion = min(policy.max_chunk_records, policy.burst - policy.max_chunk_records)
    return policy.burst - cushion


def api_base(base_url: str) -> str:
    """The Public API root: a bare host (``emu.url``, ``https://api.clay.com``) gets
    ``/public/v0``, as Clay serves it; any other path is taken as given."""
    base = base_url.rstrip("/")
    return base + API_PATH if urlsplit(base).path in ("", "/") else base


def _seg(value: str) -> str:
    if not value or not isinstance(value, str):
        raise ConfigError(f"an id is required, not {value!r}")
    return quote(value, safe=":")


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in params.items() if v is not None} if params else None


def _log(level: int, message: str) -> None:
    # Every line goes through redact(): a URL or an error text must not carry a key out.
    if logger.isEnabledFor(level):
        logger.log(level, "%s", redact(message))
