"""``POST /tables/query``: Clay's structured query over the emulated tables.

Supported: one table (by id or name), ``select`` of fields (with ``as`` and a nested
``path``) or aggregates (count, sum, avg, max, min) with ``group_by``, a ``filter`` tree
(and / or / not over every predicate operator), ``order_by``, ``field_mode`` names or
ids, ``limit`` and an opaque ``cursor``. Joins are answered 422: the emulator has no
cross-table semantics to offer. Pure: the caller holds the state's lock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from claynb.emulator._table_model import Row, Table, cell, cell_value, column_type, field_id
from claynb.emulator._validate import BadRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class QueryError(Exception):
    """A query that is well-formed JSON but cannot be answered (404 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def run_query(tables: dict[str, Table], body: Any) -> dict[str, Any]:
    """Answer a StructuredQueryRequest with a QueryResponse."""
    query, cursor, limit = _parse_request(body)
    table = _table(tables, query)
    owner = table.column_owner()
    known = set(table.columns())
    rows = [r for r in table.rows.values() if _matches(r, query.get("filter"), owner, known)]
    if query.get("order_by"):
        if cursor is not None:
            raise BadRequest("queries with a custom order_by do not support cursor pagination")
        rows = _ordered(rows, query["order_by"], owner, known)
    ids = query.get("field_mode") == "ids"
    if _is_aggregate(query):
        data, fields = _aggregate(table, rows, query, owner, known, ids)
        return {"data": data[:limit], "fields": fields}
    start = _decode(table.id, cursor) if cursor else 0
    selected = _selection(table, query.get("select"), known)
    page = rows[start : start + limit]
    out: dict[str, Any] = {
        "data": [{_key(table, s, ids): _select_cell(r, s, owner) for s in selected} for r in page],
        "fields": {_key(table, s, ids): _meta(table, s, owner) for s in selected},
    }
    if start + limit < len(rows) and not query.get("order_by"):
        out["cursor"] = _encode(table.id, start + limit)
    return out


# --- the request ------------------------------------------------------------------------


def _parse_request(body: Any) -> tuple[dict[str, Any], str | None, int]:
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object with 'query'")
    extra = set(body) - {"query", "cursor", "limit"}
    if extra:
        raise BadRequest(f"unknown field(s) {sorted(extra)}")
    query = body.get("query")
    if not isinstance(query, dict):
        raise BadRequest("'query' must be an object with 'tables'")
    limit = body.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be an integer from 1 to {MAX_LIMIT}")
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise BadRequest("'cursor' must be the string from the previous response")
    _check_query(query)
    return query, cursor, limit


def _check_query(query: dict[str, Any]) -> None:
    allowed = {"tables", "select", "filter", "order_by", "group_by", "join", "field_mode"}
    extra = set(query) - allowed
    if extra:
        raise BadRequest(f"query: unknown field(s) {sorted(extra)}")
    tables = query.get("tables")
    if (
        not isinstance(tables, list)
        or not 1 <= len(tables) <= 5
        or not all(isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"] for t in tables)
    ):
        raise BadRequest("query.tables must list 1 to 5 tables as {'id': ...}")
    for key in ("select", "order_by", "group_by", "join"):
        if key in query and not isinstance(query[key], list):
            raise BadRequest(f"query.{key} must be an array")
    if query.get("field_mode", "names") not in ("names", "ids"):
        raise BadRequest("query.field_mode must be 'names' or 'ids'")
    if query.get("join"):
        raise QueryError(422, "joins are not supported by the emulator: query one table at a time")


def _table(tables: dict[str, Table], query: dict[str, Any]) -> Table:
    if len(query["tables"]) > 1:
        raise QueryError(422, "several tables need a join, which the emulator does not support")
    wanted = query["tables"][0]["id"]
    for table in tables.values():
        if wanted in (table.id, table.name):
            return table
    raise QueryError(404, f"table {wanted!r} not found")


def _field(spec: Any, known: set[str], where: str) -> str:
    name = spec.get("field") if isinstance(spec, dict) else None
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where}: each entry needs a 'field'")
    if name not in known:
        raise QueryError(
            422, f"{where}: unknown field {name!r}; fields: {', '.join(sorted(known))}"
        )
    return name


# --- rows -------------------------------------------------------------------------------


def _value(row: Row, name: str, path: list[str] | None, owner: dict[str, int]) -> Any:
    value = cell_value(row, name, owner)
    for part in path or []:
        value = value.get(part) if isinstance(value, dict) else None
    return value


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a is not None and a > b,
    ">=": lambda a, b: a is not None and a >= b,
    "<": lambda a, b: a is not None and a < b,
    "<=": lambda a, b: a is not None and a <= b,
    "contains": lambda a, b: a is not None and str(b).lower() in str(a).lower(),
    "not_contains": lambda a, b: a is None or str(b).lower() not in str(a).lower(),
    "starts_with": lambda a, b: a is not None and str(a).lower().startswith(str(b).lower()),
    "ends_with": lambda a, b: a is not None and str(a).lower().endswith(str(b).lower()),
    "in": lambda a, b: isinstance(b, list) and a in b,
    "not_in": lambda a, b: isinstance(b, list) and a not in b,
    "is_empty": lambda a, b: a is None or a == "",
    "is_not_empty": lambda a, b: a is not None and a != "",
}


def _matches(row: Row, expr: Any, owner: dict[str, int], known: set[str]) -> bool:
    if expr is None:
        return True
    if not isinstance(expr, dict):
        raise BadRequest("a filter must be an object")
    if "and" in expr:
        return all(_matches(row, e, owner, known) for e in _branch(expr["and"]))
    if "or" in expr:
        return any(_matches(row, e, owner, known) for e in _branch(expr["or"]))
    if "not" in expr:
        return not _matches(row, expr["not"], owner, known)
    op = expr.get("op")
    if op not in _OPS:
        raise BadRequest(f"filter op must be one of {', '.join(_OPS)}")
    value = _value(row, _field(expr, known, "filter"), expr.get("path"), owner)
    try:
        return _OPS[op](value, expr.get("value"))
    except TypeError:
        return False


def _branch(items: Any) -> list[Any]:
    if not isinstance(items, list) or not items:
        raise BadRequest("'and' / 'or' take a non-empty array of filters")
    return items


def _ordered(
    rows: list[Row], order: list[Any], owner: dict[str, int], known: set[str]
) -> list[Row]:
    for spec in reversed(order):
        name = _field(spec, known, "order_by")
        reverse = spec.get("direction", "asc") == "desc"
        rows = sorted(rows, key=_sorter(name, owner), reverse=reverse)
    return rows


def _sorter(name: str, owner: dict[str, int]) -> Callable[[Row], tuple[int, Any]]:
    return lambda row: _sort_key(cell_value(row, name, owner))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


# --- selection and aggregates -------------------------------------------------------------


def _selection(table: Table, select: list[Any] | None, known: set[str]) -> list[dict[str, Any]]:
    if not select:
        return [{"field": c} for c in table.columns()]
    out = []
    for spec in select:
        _field(spec, known, "select")
        out.append(spec)
    return out


def _key(table: Table, spec: dict[str, Any], ids: bool) -> str:
    if spec.get("as"):
        return str(spec["as"])
    return field_id(table.id, spec["field"]) if ids else str(spec["field"])


def _select_cell(row: Row, spec: dict[str, Any], owner: dict[str, int]) -> dict[str, Any]:
    shown = cell(row, spec["field"], owner)
    if not spec.get("path") or shown["status"] != "success":
        return shown
    value = _value(row, spec["field"], spec["path"], owner)
    if value is None:
        return {"status": "empty"}
    return {
        "status": "success",
        "value": value,
        "fields": value if isinstance(value, dict) else None,
    }


def _meta(table: Table, spec: dict[str, Any], owner: dict[str, int]) -> dict[str, str]:
    name = spec["field"]
    return {
        "id": field_id(table.id, name),
        "name": spec.get("as") or name,
        "type": column_type(table, name, owner),
    }


def _is_aggregate(query: dict[str, Any]) -> bool:
    return bool(query.get("group_by")) or any(
        isinstance(s, dict) and "fn" in s for s in query.get("select") or []
    )


_FNS: dict[str, Callable[[list[Any]], Any]] = {
    "count": len,
    "sum": lambda v: sum(_numbers(v)),
    "avg": lambda v: (sum(_numbers(v)) / len(_numbers(v))) if _numbers(v) else None,
    "max": lambda v: max(_numbers(v), default=None),
    "min": lambda v: min(_numbers(v), default=None),
}


def _numbers(values: list[Any]) -> list[float]:
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _aggregate(
    table: Table,
    rows: list[Row],
    query: dict[str, Any],
    owner: dict[str, int],
    known: set[str],
    ids: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    group_by = [
        g if g in known else _field({"field": g}, known, "group_by")
        for g in query.get("group_by") or []
    ]
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(_hashable(cell_value(row, g, owner)) for g in group_by), []).append(
            row
        )
    if not group_by:
        groups.setdefault((), [])
    aggs = [s for s in query.get("select") or [] if isinstance(s, dict) and "fn" in s]
    for spec in aggs:
        _field(spec, known, "select")
        if spec["fn"] not in _FNS or not spec.get("as"):
            raise BadRequest(f"aggregate needs 'fn' in {sorted(_FNS)} and an 'as' name")
    data = []
    for key, members in groups.items():
        out = {
            (field_id(table.id, g) if ids else g): _success(k)
            for g, k in zip(group_by, key, strict=True)
        }
        for spec in aggs:
            values = [
                v
                for r in members
                if (v := _value(r, spec["field"], spec.get("path"), owner)) is not None
            ]
            out[spec["as"]] = _success(_FNS[spec["fn"]](values))
        data.append(out)
    fields = {
        (field_id(table.id, g) if ids else g): _meta(table, {"field": g}, owner) for g in group_by
    }
    fields.update(
        {
            s["as"]: {"id": field_id(table.id, s["as"]), "name": s["as"], "type": "number"}
            for s in aggs
        }
    )
    return data, fields


def _hashable(value: Any) -> Any:
    return value if not isinstance(value, dict | list) else repr(value)


def _success(value: Any) -> dict[str, Any]:
    if value is None:
        return {"status": "empty"}
    return {"status": "success", "value": value, "fields": None}


def _encode(table_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{table_id}:{offset}".encode()).decode().rstrip("=")


def _decode(table_id: str, cursor: str) -> int:
    try:
        owner, _, offset = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().rpartition(":")
        )
        value = int(offset)
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest("invalid cursor") from None
    if owner != table_id or value < 0:
        raise BadRequest("invalid cursor")
    return value
