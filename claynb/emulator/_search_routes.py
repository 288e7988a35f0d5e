"""The six Search routes of the Public API: create, list fields, page, in both modes.

Bodies and parameters are checked as the OpenAPI describes them (``CreateSearchRequest``,
the query-mode body, ``NextSearchResultsBody``); the search book decides the rest under
the state's lock. Creating a search and paging it are marked as starting work for fault
injection: a dropped connection after them has moved the iterator, as it would in Clay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claynb.emulator._http import JSON, error
from claynb.emulator._search_catalogue import check_filters, fields_answer
from claynb.emulator._search_query import parse_query, reference
from claynb.emulator._searches import DEFAULT_PAGE, Answer
from claynb.emulator._settings import SEARCH_PAGE_MAX
from claynb.emulator._state import EmulatorState
from claynb.emulator._validate import BadRequest, parse_json
from claynb.wire._results import SearchMode, SourceType

Handler = Callable[[Request], Any]
Gate = Callable[..., Handler]


class SearchRoutes:
    """Handlers for the Search operations, bound to one emulator's state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def routes(self, gate: Gate) -> list[Route]:
        filters, query = "/search/filters-mode", "/search/query-mode"
        return [
            Route(filters, gate(self.create_filters, starts_work=True), methods=["POST"]),
            Route(f"{filters}/fields", gate(self.fields, starts_work=False), methods=["GET"]),
            Route(
                filters + "/{search_id}/run",
                gate(self.run_filters, starts_work=True),
                methods=["POST"],
            ),
            Route(query, gate(self.create_query, starts_work=True), methods=["POST"]),
            Route(f"{query}/reference", gate(self.reference, starts_work=False), methods=["GET"]),
            Route(
                query + "/{search_id}/run", gate(self.run_query, starts_work=True), methods=["POST"]
            ),
        ]

    async def fields(self, request: Request) -> Response:
        try:
            source = SourceType(request.query_params.get("source_type", ""))
        except ValueError:
            return error(400, "'source_type' must be 'people' or 'companies'")
        return JSON(fields_answer(source))

    async def reference(self, request: Request) -> Response:
        return JSON({"reference": reference()})

    async def create_filters(self, request: Request) -> Response:
        try:
            source, filters = _create_request(parse_json(await request.body()))
        except BadRequest as exc:
            return error(400, str(exc))
        return self._create(SearchMode.FILTERS, source, filters)

    async def create_query(self, request: Request) -> Response:
        try:
            source, filters = parse_query(_query_text(parse_json(await request.body())))
        except BadRequest as exc:
            return error(400, str(exc))
        return self._create(SearchMode.QUERY, source, filters)

    async def run_filters(self, request: Request) -> Response:
        return await self._run(request, SearchMode.FILTERS)

    async def run_query(self, request: Request) -> Response:
        return await self._run(request, SearchMode.QUERY)

    def _create(self, mode: SearchMode, source: SourceType, filters: dict[str, Any]) -> Response:
        with self.state.lock:
            answer = self.state.searches.create(
                mode, source, filters, self.state.meters, self.state.wall()
            )
        return _respond(answer)

    async def _run(self, request: Request, mode: SearchMode) -> Response:
        try:
            limit = _page_limit(await request.body())
        except BadRequest as exc:
            return error(400, str(exc))
        with self.state.lock:
            answer = self.state.searches.run(
                request.path_params["search_id"], mode, limit, self.state.meters, self.state.wall()
            )
        return _respond(answer)


def _respond(answer: Answer) -> Response:
    return JSON(answer.body, status_code=answer.status)


def _create_request(body: Any) -> tuple[SourceType, dict[str, Any]]:
    """A CreateSearchRequest: ``source_type`` and ``filters``, nothing else."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be an object with 'source_type' and 'filters'")
    extra = sorted(set(body) - {"source_type", "filters"})
    if extra:
        raise BadRequest(f"request body: unknown field(s) {', '.join(map(repr, extra))}")
    if "filters" not in body:
        raise BadRequest("'filters' is required (an empty object matches everything)")
    try:
        source = SourceType(str(body.get("source_type")))
    except ValueError:
        raise BadRequest("'source_type' must be 'people' or 'companies'") from None
    return source, check_filters(source, body["filters"])


def _query_text(body: Any) -> str:
    if not isinstance(body, dict) or set(body) != {"query"}:
        raise BadRequest("request body must be {'query': '...'} and nothing else")
    query = body["query"]
    if not isinstance(query, str) or not query:
        raise BadRequest("'query' must be a non-empty string")
    return query


def _page_limit(raw: bytes) -> int:
    """A NextSearchResultsBody's ``limit`` (the body is optional: 20 when absent)."""
    if not raw.strip():
        return DEFAULT_PAGE
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("request body must be an object, like {'limit': 50}")
    extra = sorted(set(body) - {"limit"})
    if extra:
        raise BadRequest(f"request body: unknown field(s) {', '.join(map(repr, extra))}")
    limit = body.get("limit", DEFAULT_PAGE)
    whole = isinstance(limit, int) or (isinstance(limit, float) and limit.is_integer())
    if isinstance(limit, bool) or not whole or not 1 <= limit <= SEARCH_PAGE_MAX:
        raise BadRequest(f"'limit' must be an integer from 1 to {SEARCH_PAGE_MAX}")
    return int(limit)
