"""Typed answers from the Public API, parsed from its JSON.

Clay's docs say to treat an unrecognised terminal ``status`` as an unhandled outcome,
not to assume the set is closed, so every object keeps the raw ``status`` beside the
``complete`` flag. A result item says nothing of what it cost: Clay does not report it
(an emulator's meters do, read separately: :mod:`claynb.wire._admin`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import orjson

from claynb.wire._exceptions import ClayError, ConfigError


@dataclass(frozen=True)
class Me:
    """The user and workspace an API key belongs to."""

    user_id: str
    user_name: str | None
    workspace_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class RunItem:
    """One item of a finished run: its result, or why it failed."""

    id: str
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "complete"


@dataclass
class RunResults:
    """Progress and results of a routine run.

    ``complete`` is True once Clay answered 200 (a terminal state); ``items`` then holds
    every page. While the run is going, ``total`` and ``finished`` show progress.
    """

    run_id: str
    status: str
    complete: bool
    total: int
    finished: int
    items: list[RunItem] = field(default_factory=list)

    def by_id(self) -> dict[str, RunItem]:
        return {item.id: item for item in self.items}


@dataclass
class BatchResults(RunResults):
    """Progress and results of a batch run; ``error`` says why a failed batch failed."""

    error: str | None = None
    result_url: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "complete"


@dataclass
class TableRows:
    """Records read from Clay tables, every page followed."""

    records: list[dict[str, Any]] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    pages: int = 0

    def add_page(self, body: dict[str, Any]) -> str | None:
        """Append one page; return the cursor of the next, if any."""
        self.records.extend(body.get("data") or [])
        self.fields.update(body.get("fields") or {})
        self.pages += 1
        cursor = body.get("cursor")
        return cursor if isinstance(cursor, str) and cursor else None


def parse_me(body: dict[str, Any]) -> Me:
    user = body.get("user") or {}
    workspace = body.get("workspace") or {}
    return Me(str(user.get("id", "")), user.get("name"), str(workspace.get("id", "")), body)


def parse_item(raw: dict[str, Any]) -> RunItem:
    """A result item: its id, status, and result or error message.

    A result that is a JSON object is taken as it was parsed (the answer's objects belong
    to nobody else); anything else is copied into a dict.
    """
    error = raw.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    result = raw.get("result")
    return RunItem(
        str(raw.get("id", "")),
        str(raw.get("status", "")),
        result if type(result) is dict else dict(result or {}),
        None if message is None else str(message),
    )


def parse_run_page(run_id: str, http_status: int, body: dict[str, Any]) -> RunResults:
    """One answer of GET /routines/run/{id}/results: 202 in progress, 200 complete."""
    return RunResults(
        run_id=str(body.get("routine_run_id") or run_id),
        status=str(body.get("status", "")),
        complete=http_status == 200,
        total=int(body.get("total") or 0),
        finished=int(body.get("finished") or 0),
        items=[parse_item(raw) for raw in body.get("data") or []],
    )


def parse_batch_status(run_id: str, http_status: int, body: dict[str, Any]) -> BatchResults:
    """GET /routines/run-batch/{id}/results: progress, or a terminal state and result_url."""
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return BatchResults(
        run_id=str(body.get("routine_run_id") or run_id),
        status=str(body.get("status", "")),
        complete=http_status == 200,
        total=int(body.get("total") or 0),
        finished=int(body.get("finished") or 0),
        error=message,
        result_url=body.get("result_url"),
    )


def parse_jsonl_items(text: str) -> list[RunItem]:
    """A batch's result file: one result item per line (a JSON array is accepted too)."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        return [parse_item(raw) for raw in json.loads(stripped)]
    return [parse_item(json.loads(line)) for line in stripped.splitlines() if line.strip()]


def answer_json(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object (orjson: a results page of 100 items parsed in about half
    the time of :func:`json.loads`); a :class:`ClayError` for anything else."""
    try:
        body = orjson.loads(response.content)
    except ValueError as exc:
        raise ClayError(
            f"answer {response.status_code} is not JSON: {response.text[:200]!r}",
            method=response.request.method,
            url=str(response.request.url),
        ) from exc
    if not isinstance(body, dict):
        raise ClayError(
            f"expected a JSON object, got {type(body).__name__}",
            method=response.request.method,
            url=str(response.request.url),
        )
    return body


def run_id_of(response: httpx.Response) -> str:
    run_id = answer_json(response).get("routine_run_id")
    if not isinstance(run_id, str):
        raise ClayError(
            "the answer has no routine_run_id",
            method=response.request.method,
            url=str(response.request.url),
        )
    return run_id


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return json.dumps(body)[:500]


# -- Search ------------------------------------------------------------------------------


class SourceType(StrEnum):
    """What a Clay search finds: people or companies (the OpenAPI's ``source_type``)."""

    PEOPLE = "people"
    COMPANIES = "companies"

    @classmethod
    def of(cls, value: str | SourceType) -> SourceType:
        """The source type named ``value``; a ConfigError naming both when it is neither."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(f"a search finds 'people' or 'companies', not {value!r}") from None


class SearchMode(StrEnum):
    """How a search was created: structured filters, or an advanced query string (beta)."""

    FILTERS = "filters-mode"
    QUERY = "query-mode"


class SearchStop(StrEnum):
    """Why a paged search stopped: the first of these to happen ends it.

    ``PAYMENT_REQUIRED`` is a 402 that a smaller page could not avoid: the period quota,
    a per-search cap or the workspace's credits are spent (Clay's message says which; the
    status is the only thing to branch on, so claynb keeps the message for people to read).
    """

    LIMIT = "limit"
    NO_MORE_RESULTS = "no_more_results"
    QUERY_LIMIT = "query_limit"
    PERIOD_QUOTA = "period_quota"
    BUDGET = "budget"
    PAYMENT_REQUIRED = "payment_required"


@dataclass(frozen=True)
class PeriodQuota:
    """The search quota of the current period, as the last page reported it."""

    limit: float
    used: float
    remaining: float
    resets_at: str


@dataclass(frozen=True)
class Search:
    """A search Clay created: its id, what it finds and how it pages."""

    id: str
    source_type: SourceType
    mode: SearchMode


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: its records, whether more follow, and the quota after it."""

    records: list[dict[str, Any]]
    has_more: bool
    requested: int
    quota: PeriodQuota | None = None
    exhaustion_reason: str | None = None


@dataclass
class SearchResult:
    """Every record a paged search fetched, and why it stopped.

    ``search`` is None when none was created (a 402 at once, or a limit of 0);
    ``requested`` counts the records asked for (what a quota or a budget is held against);
    ``message`` is Clay's text when a 402 ended it.
    """

    search: Search | None
    records: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    requested: int = 0
    quota: PeriodQuota | None = None
    stop: SearchStop | None = None
    message: str | None = None

    def add(self, page: SearchPage) -> None:
        self.records.extend(page.records)
        self.pages += 1
        self.requested += page.requested
        if page.quota is not None:
            self.quota = page.quota


@dataclass(frozen=True)
class SearchFields:
    """The filter fields of a source type, with Clay's guidance on using them."""

    source_type: SourceType
    fields: list[dict[str, Any]]
    guidance: dict[str, Any] = field(default_factory=dict)


def parse_search_created(body: dict[str, Any], mode: SearchMode, source: str | None) -> Search:
    """The answer of a create: filters-mode gives the id; query-mode also the source type."""
    search_id = body.get("search_id")
    if not isinstance(search_id, str) or not search_id:
        raise ClayError("the search was created but the answer has no search_id")
    return Search(search_id, _answered_source(body.get("source_type") or source), mode)


def _answered_source(value: Any) -> SourceType:
    try:
        return SourceType(value)
    except ValueError:
        raise ClayError(f"Clay answered a source_type claynb does not know: {value!r}") from None


def parse_search_page(body: dict[str, Any], requested: int) -> SearchPage:
    """One answer of a search's run operation (either mode)."""
    data = body.get("data")
    quota = body.get("period_quota")
    return SearchPage(
        records=[r for r in data if isinstance(r, dict)] if isinstance(data, list) else [],
        has_more=bool(body.get("has_more")),
        requested=requested,
        quota=_quota(quota) if isinstance(quota, dict) else None,
        exhaustion_reason=body.get("exhaustion_reason"),
    )


def _quota(raw: dict[str, Any]) -> PeriodQuota:
    return PeriodQuota(
        limit=float(raw.get("limit") or 0),
        used=float(raw.get("used") or 0),
        remaining=float(raw.get("remaining") or 0),
        resets_at=str(raw.get("resets_at") or ""),
    )


def parse_search_fields(body: dict[str, Any]) -> SearchFields:
    fields = body.get("fields")
    guidance = body.get("guidance")
    return SearchFields(
        source_type=_answered_source(body.get("source_type")),
        fields=[f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else [],
        guidance=guidance if isinstance(guidance, dict) else {},
    )
