"""Clay's Search, written once as flows that :class:`claynb.ClayClient` and
:class:`claynb.AsyncClayClient` both drive (see :mod:`claynb.wire._core` for flows).

A search is a stateful, forward-only iterator: each run call serves the records after
the previous page, and there is no cursor to ask for a page again. So a page request
that may have reached Clay (a timeout, a dropped connection) is never re-sent: the
records it served, and the quota it used, would be skipped and paid for. Such a request
raises :class:`claynb.OutcomeUnknown` with what was fetched so far on ``report``.

:func:`search_flow` pages until the first of: ``limit`` records, no more results, the
period quota reported by the last page, or what ``gate`` (a budget) allows. Before each
page it asks the gate for the page's records, and settles or releases what it was given
once the answer is in. A 402 or a 413 is not an error here: the page is refused whole, so
the flow asks again for half as many; a 402 for a single record ends the search
(``SearchStop.PAYMENT_REQUIRED``), since the quota or the credits are spent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from claynb.wire._core import BaseClient, Flow, _seg
from claynb.wire._exceptions import (
    ClayError,
    ConfigError,
    CreditsExhausted,
    OutcomeUnknown,
    PayloadTooLarge,
)
from claynb.wire._results import (
    Search,
    SearchFields,
    SearchMode,
    SearchPage,
    SearchResult,
    SearchStop,
    SourceType,
    answer_json,
    parse_search_created,
    parse_search_fields,
    parse_search_page,
)

#: Records per page when paging a whole search: Clay's default page is 20; 100 keeps the
#: requests few without asking more than most plans allow in one request.
SEARCH_PAGE_SIZE = 100
#: The OpenAPI's bounds for one page (NextSearchResultsBody.limit).
SEARCH_PAGE_MAX = 500


#: Called after each page with the result so far and the page (progress, a ledger).
SearchPageHook = Callable[[SearchResult, SearchPage], None]


class PageGate(Protocol):
    """What may be spent on a page, asked before it is requested (a budget, for instance).

    ``grant(wanted)`` returns how many records (0 to ``wanted``) may be asked for, and
    holds them; exactly that grant is then settled, with the records that came back, once
    the page is in, or released when it was refused.
    """

    def grant(self, wanted: int) -> int: ...

    def settle(self, granted: int, got: int) -> None: ...

    def release(self, granted: int) -> None: ...


def create_flow(
    core: BaseClient,
    source_type: SourceType | str | None,
    filters: Mapping[str, Any] | None,
    query: str | None,
) -> Flow[Search]:
    """Create a filters-mode search (``filters``) or a query-mode one (``query``)."""
    if (filters is None) == (query is None):
        raise ConfigError("a search takes filters= or query=, exactly one of them")
    source = None if source_type is None else SourceType.of(source_type)
    if query is not None:
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("query must be a non-empty Clay search query string")
        response = yield core.build_call(
            "POST", "/search/query-mode", json_body={"query": query}, spends=False
        )
        assert response is not None
        search = parse_search_created(answer_json(response), SearchMode.QUERY, None)
        if source is not None and search.source_type is not source:
            raise ConfigError(
                f"the query searches {search.source_type.value}, not {source.value}: "
                "drop the kind or change the query"
            )
        return search
    if source is None:
        raise ConfigError("a filters-mode search needs its kind: 'people' or 'companies'")
    if not isinstance(filters, Mapping):
        raise ConfigError("filters must be a dict of filter field -> value")
    body = {"source_type": source.value, "filters": dict(filters)}
    # Creating a search serves nothing and charges nothing: safe to retry.
    response = yield core.build_call("POST", "/search/filters-mode", json_body=body, spends=False)
    assert response is not None
    return parse_search_created(answer_json(response), SearchMode.FILTERS, source.value)


def page_flow(core: BaseClient, search: Search, limit: int) -> Flow[SearchPage]:
    """The next page of ``search``: up to ``limit`` (1-500) records. Never re-sent once it
    may have reached Clay, since the iterator would move past the records it served."""
    if not 1 <= limit <= SEARCH_PAGE_MAX:
        raise ConfigError(f"a search page holds 1 to {SEARCH_PAGE_MAX} records, not {limit}")
    response = yield core.build_call(
        "POST",
        f"/search/{search.mode.value}/{_seg(search.id)}/run",
        json_body={"limit": limit},
        spends=True,
    )
    assert response is not None
    return parse_search_page(answer_json(response), limit)


def fields_flow(core: BaseClient, source_type: SourceType | str) -> Flow[SearchFields]:
    """The filter fields of a source type, with their guidance."""
    source = SourceType.of(source_type)
    response = yield core.build_call(
        "GET", "/search/filters-mode/fields", params={"source_type": source.value}
    )
    assert response is not None
    return parse_search_fields(answer_json(response))


def reference_flow(core: BaseClient) -> Flow[str]:
    """The query reference document (markdown) for query-mode searches."""
    response = yield core.build_call("GET", "/search/query-mode/reference")
    assert response is not None
    return str(answer_json(response).get("reference", ""))


def search_flow(
    core: BaseClient,
    source_type: SourceType | str | None,
    *,
    filters: Mapping[str, Any] | None = None,
    query: str | None = None,
    limit: int | None = None,
    page_size: int = SEARCH_PAGE_SIZE,
    gate: PageGate | None = None,
    on_page: SearchPageHook | None = None,
) -> Flow[SearchResult]:
    """Create a search and page it until it stops (see the module docstring for when)."""
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be 0 or more (None: no limit), not {limit}")
    if not 1 <= page_size <= SEARCH_PAGE_MAX:
        raise ConfigError(f"page_size must be 1 to {SEARCH_PAGE_MAX}, not {page_size}")
    if limit == 0:
        return SearchResult(None, stop=SearchStop.LIMIT)
    try:
        search = yield from create_flow(core, source_type, filters, query)
    except CreditsExhausted as exc:  # the quota or the credits were spent before it began
        return _payment_required(SearchResult(None), exc)
    result = SearchResult(search)
    size = page_size
    while (stop := stop_before(result, limit)) is None:
        wanted = next_page_size(size, limit, result)
        granted = gate.grant(wanted) if gate is not None else wanted
        if granted <= 0:
            result.stop = SearchStop.BUDGET
            return result
        answer = yield from _ask(core, search, granted, gate, result)
        if isinstance(answer, SearchPage):
            result.add(answer)
            if on_page is not None:
                on_page(result, answer)
            if not answer.has_more or not answer.records:
                result.stop = _last_page_stop(answer)
                return result
        elif granted > 1:  # refused whole: a smaller page may fit
            size = granted // 2
        elif isinstance(answer, CreditsExhausted):
            return _payment_required(result, answer)
        else:
            answer.report = result
            raise answer
    result.stop = stop
    return result


def _ask(
    core: BaseClient, search: Search, granted: int, gate: PageGate | None, result: SearchResult
) -> Flow[SearchPage | CreditsExhausted | PayloadTooLarge]:
    """One page of ``granted`` records, settled on the gate. A 402 or 413 (the page refused
    whole) is returned; any other failure is raised with what was fetched on ``report``."""
    try:
        page = yield from page_flow(core, search, granted)
    except (CreditsExhausted, PayloadTooLarge) as exc:
        _release(gate, granted)
        return exc
    except OutcomeUnknown as exc:
        if gate is not None:  # the page may have been served, and charged
            gate.settle(granted, granted)
        exc.report = result
        raise
    except ClayError as exc:
        _release(gate, granted)
        exc.report = result
        raise
    if gate is not None:
        gate.settle(granted, len(page.records))
    return page


def _last_page_stop(page: SearchPage) -> SearchStop:
    if page.exhaustion_reason == SearchStop.QUERY_LIMIT.value:
        return SearchStop.QUERY_LIMIT
    return SearchStop.NO_MORE_RESULTS


def stop_before(result: SearchResult, limit: int | None) -> SearchStop | None:
    """Why no further page should be asked for, before asking (None: ask)."""
    if limit is not None and len(result.records) >= limit:
        return SearchStop.LIMIT
    if result.quota is not None and result.quota.remaining <= 0:
        return SearchStop.PERIOD_QUOTA
    return None


def next_page_size(size: int, limit: int | None, result: SearchResult) -> int:
    """The next page: ``size``, no more than the records still wanted nor the quota left."""
    wanted = size if limit is None else min(size, limit - len(result.records))
    if result.quota is not None:
        wanted = min(wanted, int(result.quota.remaining))
    return max(1, wanted)


def _release(gate: PageGate | None, granted: int) -> None:
    if gate is not None:
        gate.release(granted)


def _payment_required(result: SearchResult, exc: CreditsExhausted) -> SearchResult:
    result.stop = SearchStop.PAYMENT_REQUIRED
    result.message = exc.message
    return result
