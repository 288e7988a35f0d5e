"""``claynb.search`` and ``claynb.search_fields``: Clay's Search as DataFrames.

Search is how an analyst finds the leads to enrich: people or companies from Clay's
database, by structured filters or an advanced query. Every page counts against the
workspace's period quota, and Clay cannot serve a page twice, so the paging here stops at
the first of ``limit``, the end of the results, the quota the last page reported, or a
:class:`claynb.Budget` (a page is only asked for once its worst case is held on the
budget). A 402 part-way keeps every record already fetched. Each page is written to the
ledger as it lands (records, the quota Clay reported, the declared cost), so what a
search used is on record even if the kernel dies before the frame is returned.

Clay reports no cost for a search page, and documents list building from searches as
free; ``cost=`` declares a worst case per record for workspaces where it is not.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from claynb._connect import connect
from claynb._plans import Plan, get_plan
from claynb._routines import Cost
from claynb.pipeline import _ledger
from claynb.pipeline._budget import Budget, reserve_largest
from claynb.pipeline._journal import Journal
from claynb.pipeline._progress import Progress, make_progress
from claynb.pipeline._work import BudgetGuard
from claynb.wire._client import AsyncClayClient, ClayClient
from claynb.wire._exceptions import ClayError, ConfigError
from claynb.wire._results import (
    Search,
    SearchFields,
    SearchPage,
    SearchResult,
    SearchStop,
    SourceType,
)
from claynb.wire._search_flow import SEARCH_PAGE_SIZE

logger = logging.getLogger("claynb")

#: Records a search returns unless told otherwise: every record spends quota, so the
#: default is a first look, and ``limit=None`` is an explicit "as many as allowed".
DEFAULT_LIMIT = 100
#: Flattened nested fields are joined with this: ``location_city``.
SEPARATOR = "_"
#: The columns of an empty result (the OpenAPI's record shapes, flattened).
EMPTY_COLUMNS = {
    SourceType.PEOPLE: [
        "clay_profile_id",
        "name",
        "first_name",
        "last_name",
        "location_name",
        "location_city",
        "location_state_or_province",
        "matched_experiences",
    ],
    SourceType.COMPANIES: [
        "clay_company_id",
        "name",
        "size",
        "type",
        "domain",
        "country",
        "industry",
        "location",
        "description",
        "linkedin_url",
        "annual_revenue",
        "total_funding_amount_range_usd",
    ],
}
#: Stops that leave records unfetched for a reason the user did not choose.
_EARLY = (SearchStop.PERIOD_QUOTA, SearchStop.BUDGET, SearchStop.PAYMENT_REQUIRED)


class BudgetGate:
    """Holds each page's worst case (``unit`` per record asked for) on a budget.

    A page is settled at what was asked for, not at what came back: Clay does not say what
    a page cost, and a short last page may have been counted in full.
    """

    def __init__(self, guard: BudgetGuard, unit: Cost) -> None:
        self.guard, self.unit = guard, unit

    def grant(self, wanted: int) -> int:
        return wanted if self.unit.is_zero else reserve_largest(self.guard, self.unit, wanted)

    def settle(self, granted: int, got: int) -> None:
        held = self.unit * granted
        self.guard.settle(held, held)

    def release(self, granted: int) -> None:
        self.guard.release(self.unit * granted)


@dataclass
class _Spec:
    """One search call, checked before anything is sent."""

    kind: SourceType | None
    filters: dict[str, Any] | None
    query: str | None
    limit: int | None
    page_size: int
    cost: Cost
    budget: Budget | None


def _spec(
    kind: str | SourceType | None,
    filters: Mapping[str, Any] | None,
    query: str | None,
    limit: int | None,
    page_size: int,
    cost: Cost | None,
    budget: Budget | None,
) -> _Spec:
    if filters is not None and query is not None:
        raise ConfigError("give filters= or query=, not both: they are two kinds of search")
    if filters is None and query is None:
        raise ConfigError("a search needs filters={...} (filters {} match everything) or query=")
    source = None if kind is None else SourceType.of(kind)
    if query is None and source is None:
        raise ConfigError("say what to search: claynb.search('people' or 'companies', filters=...)")
    if filters is not None and not isinstance(filters, Mapping):
        raise ConfigError(
            f"filters must be a dict of filter field -> value, not {type(filters).__name__}"
        )
    if cost is not None and not isinstance(cost, Cost):
        raise ConfigError("cost must be a claynb.Cost: the worst case per record")
    return _Spec(
        source,
        None if filters is None else dict(filters),
        query,
        limit,
        page_size,
        cost or Cost(),
        budget,
    )


def check_filter_names(filters: Mapping[str, Any], fields: SearchFields | None) -> None:
    """A ConfigError naming each unknown filter field, with the closest known names (when
    the fields are known: otherwise Clay's 400 will say it)."""
    if fields is None:
        return
    known = [str(f.get("name")) for f in fields.fields]
    unknown = [name for name in filters if name not in known]
    if not unknown or not known:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=2)
        hints.append(
            f"{name!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
        )
    raise ConfigError(
        f"unknown {fields.source_type.value} filter field(s): {', '.join(hints)}; "
        f"claynb.search_fields({fields.source_type.value!r}) lists them"
    )


class _Recorder:
    """What happens after each page: the progress bar moves, the ledger records it."""

    def __init__(self, spec: _Spec, journal: Journal, progress: Progress, plan: Plan) -> None:
        self.spec, self.journal, self.progress, self.plan = spec, journal, progress, plan

    def __call__(self, result: SearchResult, page: SearchPage) -> None:
        held = self.spec.cost * page.requested
        self.progress.advance(len(page.records), held)
        assert result.search is not None
        now = time.time()
        with self.journal.transaction() as conn:
            _ledger.record(conn, self._charge(result.search, result.pages, page, held, now))
            _ledger.record_quota(conn, _seen(result.search, result.pages, page, now))

    def _charge(
        self, search: Search, number: int, page: SearchPage, held: Cost, now: float
    ) -> _ledger.Charge:
        """A page as a ledger charge: its records, and the worst case held for it."""
        records = len(page.records)
        return _ledger.Charge(
            f"{search.id}:{number}",
            now,
            f"search:{search.source_type.value}",
            "search",
            self.plan.name,
            records,
            records,
            held.actions,
            held.data_credits,
            self.plan.usd(held.actions, held.data_credits),
        )


def _seen(search: Search, number: int, page: SearchPage, now: float) -> _ledger.QuotaSeen:
    """What a page reported of the period quota, for the ledger."""
    quota = page.quota
    return _ledger.QuotaSeen(
        search.id,
        number,
        now,
        search.source_type.value,
        len(page.records),
        page.requested,
        None if quota is None else quota.limit,
        None if quota is None else quota.used,
        None if quota is None else quota.remaining,
        None if quota is None else quota.resets_at,
    )


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as ``parent_child`` keys, in the record's own order; lists kept."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}{SEPARATOR}"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def records_frame(records: list[dict[str, Any]], source: SourceType | None) -> pd.DataFrame:
    """One row per record, flat columns (``location_city``), lists kept as lists."""
    if not records:
        return pd.DataFrame(columns=EMPTY_COLUMNS[source] if source else [])
    return pd.DataFrame([flatten(r) for r in records])


def _frame(spec: _Spec, result: SearchResult) -> pd.DataFrame:
    search = result.search
    source = search.source_type if search is not None else spec.kind
    frame = records_frame(result.records, source)
    quota = result.quota
    frame.attrs["search"] = {
        "search_id": None if search is None else search.id,
        "source_type": None if source is None else source.value,
        "mode": None if search is None else search.mode.value,
        "stop": None if result.stop is None else result.stop.value,
        "pages": result.pages,
        "requested": result.requested,
        "period_quota": None if quota is None else vars(quota).copy(),
        "message": result.message,
    }
    if result.stop in _EARLY:
        why = f": {result.message}" if result.message else ""
        logger.warning(
            "search stopped at %s after %d record(s)%s",
            result.stop.value if result.stop else "?",
            len(frame),
            why,
        )
    return frame


def _try_fields(fetch: Callable[[], SearchFields]) -> SearchFields | None:
    """The filter fields when the workspace will list them (a free GET), else None."""
    try:
        return fetch()
    except ClayError:
        return None


@dataclass
class _Run:
    """A search under way: its ledger, its progress bar, and what the client is given."""

    journal: Journal
    progress: Progress
    options: dict[str, Any]


def _start(spec: _Spec, progress: bool | str, home: str | Path | None) -> _Run:
    plan = spec.budget.price if spec.budget is not None else get_plan("growth")
    journal = Journal.open(home, plan=plan)
    bar = make_progress(progress, spec.limit, "searching")
    gate = None if spec.budget is None else BudgetGate(spec.budget.guard(), spec.cost)
    options = {
        "filters": spec.filters,
        "query": spec.query,
        "limit": spec.limit,
        "page_size": spec.page_size,
        "gate": gate,
        "on_page": _Recorder(spec, journal, bar, plan),
    }
    return _Run(journal, bar, options)


def search(
    kind: str | SourceType | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    query: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    page_size: int = SEARCH_PAGE_SIZE,
    cost: Cost | None = None,
    client: Any = None,
    budget: Budget | None = None,
    progress: bool | str = True,
    home: str | Path | None = None,
) -> pd.DataFrame:
    """Search Clay for ``"people"`` or ``"companies"``; one row per record.

    ``filters`` are structured filters (``claynb.search_fields(kind)`` lists them; an
    unknown name is refused before anything is sent); ``query`` is an advanced search query
    instead (its kind is read from it). Paging stops at ``limit`` records (None: as many as
    allowed), when the results run out, at the period quota, or at ``budget``, whichever is
    first; a 402 part-way keeps what was fetched. ``cost`` is the most one record may cost
    (free when omitted, as Clay documents list building from searches), held on ``budget``
    before each page. ``client`` defaults to :func:`claynb.connect`. Nested fields become
    columns joined with ``_`` (``location_city``); lists stay lists.
    ``frame.attrs["search"]`` says why it stopped and the quota Clay last reported; the
    ledger (``claynb.ledger().search_quota``) keeps every page.
    """
    spec = _spec(kind, filters, query, limit, page_size, cost, budget)
    sync = client if client is not None else connect()
    if not isinstance(sync, ClayClient):
        raise TypeError(
            f"claynb.search needs a claynb.ClayClient, not {type(sync).__name__}: "
            "with an AsyncClayClient, await claynb.search_async(...)"
        )
    if spec.filters and spec.kind is not None:
        kind_ = spec.kind
        check_filter_names(spec.filters, _try_fields(lambda: sync.search_fields(kind_)))
    run = _start(spec, progress, home)
    try:
        with run.progress:
            result = sync.search(spec.kind, **run.options)
    finally:
        run.journal.close()
    return _frame(spec, result)


async def search_async(
    kind: str | SourceType | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
    query: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    page_size: int = SEARCH_PAGE_SIZE,
    cost: Cost | None = None,
    client: Any = None,
    budget: Budget | None = None,
    progress: bool | str = True,
    home: str | Path | None = None,
) -> pd.DataFrame:
    """:func:`search` for async code, with a :class:`claynb.AsyncClayClient`."""
    spec = _spec(kind, filters, query, limit, page_size, cost, budget)
    aclient = client if client is not None else connect(asynchronous=True)
    if not isinstance(aclient, AsyncClayClient):
        raise TypeError(
            f"claynb.search_async needs a claynb.AsyncClayClient, not {type(aclient).__name__}"
        )
    if spec.filters and spec.kind is not None:
        try:
            fields: SearchFields | None = await aclient.search_fields(spec.kind)
        except ClayError:
            fields = None
        check_filter_names(spec.filters, fields)
    run = _start(spec, progress, home)
    try:
        with run.progress:
            result = await aclient.search(spec.kind, **run.options)
    finally:
        run.journal.close()
    return _frame(spec, result)


def search_fields(kind: str | SourceType, *, client: Any = None) -> pd.DataFrame:
    """The filter fields of ``"people"`` or ``"companies"``: one row per field with its type,
    description, allowed values and Clay's guidance for it. Free: it spends nothing.

    ``frame.attrs`` holds the general ``behavior`` notes and ``create_examples``.
    """
    source = SourceType.of(kind)
    sync = client if client is not None else connect()
    if not isinstance(sync, ClayClient):
        raise TypeError(
            f"claynb.search_fields needs a claynb.ClayClient, not {type(sync).__name__}"
        )
    return fields_frame(sync.search_fields(source))


def fields_frame(fields: SearchFields) -> pd.DataFrame:
    """The fields answer as a DataFrame, each field with the guidance that names it."""
    guidance = [g for g in fields.guidance.get("field_guidance") or [] if isinstance(g, dict)]
    rows = [
        {
            "name": f.get("name"),
            "type": f.get("type"),
            "description": f.get("description"),
            "allowed_values": list(f.get("allowed_values") or []),
            "guidance": [
                str(g.get("text")) for g in guidance if f.get("name") in (g.get("fields") or [])
            ],
        }
        for f in fields.fields
    ]
    frame = pd.DataFrame(
        rows, columns=["name", "type", "description", "allowed_values", "guidance"]
    )
    frame.attrs["source_type"] = fields.source_type.value
    frame.attrs["behavior"] = list(fields.guidance.get("behavior") or [])
    frame.attrs["create_examples"] = list(fields.guidance.get("create_examples") or [])
    return frame
