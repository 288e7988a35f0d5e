"""``claynb.read_table``: a Clay table into a DataFrame, through ``POST /tables/query``.

Clay serves table queries on Enterprise workspaces only (403 elsewhere), so a 403 is
turned into an error that says so instead of a bare "forbidden". Rows come page by page
(a cursor, replayable: a page retried after a timeout returns the same rows) in
least-recently-updated-first order; a row written while the scan runs can come back
twice with fresher values, so ``unique_by`` keeps the last copy of each id.

Cells are Clay's cell results: a value for ``success``, missing (None) for ``empty``, an
``error``, or a cell still running (``queued``, ``running`` and the like).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from claynb._connect import connect
from claynb.wire._client import ClayClient
from claynb.wire._config import DEFAULT_PAGE_LIMIT
from claynb.wire._exceptions import ConfigError, Forbidden
from claynb.wire._results import TableRows

#: Keys that make a mapping a FilterExpression already, passed through as it is.
_EXPRESSION_KEYS = ({"and"}, {"or"}, {"not"})


def table_filter(filters: Mapping[str, Any]) -> dict[str, Any]:
    """A StructuredQuery ``filter`` from ``{"column": value}`` (all must hold: a list is
    any of its values, None is an empty cell), or a FilterExpression given as it is."""
    if set(filters) in _EXPRESSION_KEYS or {"field", "op"} <= set(filters):
        return dict(filters)
    predicates = [_predicate(str(name), value) for name, value in filters.items()]
    if not predicates:
        raise ConfigError("filters is empty: leave it out to read every row")
    return predicates[0] if len(predicates) == 1 else {"and": predicates}


def _predicate(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"field": name, "op": "is_empty"}
    if isinstance(value, list | tuple | set):
        return {"field": name, "op": "in", "value": list(value)}
    return {"field": name, "op": "=", "value": value}


def structured_query(
    table_id: str, filters: Mapping[str, Any] | None, select: Sequence[str] | None
) -> dict[str, Any]:
    """The StructuredQuery for one table."""
    if not isinstance(table_id, str) or not table_id:
        raise ConfigError("read_table needs the table's id (t_...)")
    query: dict[str, Any] = {"tables": [{"id": table_id}]}
    if filters is not None:
        query["filter"] = table_filter(filters)
    if select is not None:
        query["select"] = [{"field": str(name)} for name in select]
    return query


def cell_value(cell: Any) -> Any:
    """What a DataFrame shows for one cell: its value on success, else None."""
    if isinstance(cell, Mapping) and cell.get("status") == "success":
        return cell.get("value")
    return None


def rows_frame(rows: TableRows, unique_by: str | None = None) -> pd.DataFrame:
    """One row per record, one column per field, named as the query answered them."""
    keys = dict.fromkeys(rows.fields)
    for record in rows.records:
        keys.update(dict.fromkeys(record))
    frame = pd.DataFrame(
        [[cell_value(record.get(key)) for key in keys] for record in rows.records],
        columns=list(keys),
    )
    if unique_by is not None:
        if unique_by not in frame.columns:
            raise ConfigError(f"unique_by={unique_by!r} is not a column: {list(frame.columns)}")
        frame = frame.drop_duplicates(subset=unique_by, keep="last").reset_index(drop=True)
    return frame


def read_table(
    table_id: str,
    *,
    filters: Mapping[str, Any] | None = None,
    select: Sequence[str] | None = None,
    limit: int | None = None,
    unique_by: str | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """A Clay table as a DataFrame (Enterprise workspaces: Clay's Tables API).

    ``filters`` keeps rows where every ``column: value`` holds (a list: any of its values;
    None: an empty cell), or takes a Clay FilterExpression (``{"field", "op", "value"}``,
    ``{"and": [...]}``) as it is. ``select`` names the columns to read (default: all).
    ``limit`` caps the rows read (None: every page). ``unique_by`` names an id column to
    keep one copy of each row (a row updated mid-scan can come back twice).
    ``client`` defaults to :func:`claynb.connect`. Reading spends nothing.
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be 0 or more (None: every row), not {limit}")
    query = structured_query(table_id, filters, select)
    sync = client if client is not None else connect()
    if not isinstance(sync, ClayClient):
        raise TypeError(f"claynb.read_table needs a claynb.ClayClient, not {type(sync).__name__}")
    if limit == 0:
        return rows_frame(TableRows())
    page = DEFAULT_PAGE_LIMIT if limit is None else min(limit, DEFAULT_PAGE_LIMIT)
    pages = None if limit is None else math.ceil(limit / page)
    try:
        rows = sync.query_table(query, limit=page, max_pages=pages)
    except Forbidden as exc:
        raise Forbidden(
            "read_table needs an Enterprise workspace: Clay serves POST /tables/query "
            f"(its Tables API) on Enterprise plans only. Clay answered 403: {exc.message}",
            status=exc.status,
            method=exc.method,
            url=exc.url,
        ) from exc
    if limit is not None:
        rows.records = rows.records[:limit]
    return rows_frame(rows, unique_by)
