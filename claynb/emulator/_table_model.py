"""Emulated Clay tables: rows from a webhook source, enrichment columns, an HTTP API column.

Pure data and decisions, no I/O: what a table holds, which columns it has, what each
cell shows (for ``/tables/query``), and what a row's HTTP API column would send.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from claynb._routines import Routine

QUEUED, RUNNING = "queued", "running"
MATCHED, NO_MATCH, FAILED, NOT_RUN = "matched", "no_match", "failed", "not_run"
RECORD_ID = "_record_id"


@dataclass(frozen=True)
class Enrichment:
    """An enrichment column: a routine, its inputs mapped to columns, a prefix for its fields."""

    routine: Routine
    inputs: dict[str, str]
    output_prefix: str = ""

    def columns(self) -> list[str]:
        return [f"{self.output_prefix}{name}" for name in self.routine.fields]


@dataclass(frozen=True)
class HttpApi:
    """The HTTP API column: where each finished row is POSTed, and how.

    ``actions_per_call``: Clay bills an HTTP API call one Action (set 0 to ignore).
    ``include_meta``: add a ``_clay`` key (row id, per-enrichment status and cost).
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    rate_limit_rps: float | None = None
    retry: bool = True
    max_attempts: int = 3
    retry_backoff_s: float = 0.5
    timeout_s: float = 10.0
    actions_per_call: float = 1.0
    include_meta: bool = False


@dataclass
class Step:
    """One row's progress through one enrichment column."""

    status: str = QUEUED
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    id: str
    values: dict[str, Any]
    steps: list[Step]
    updated: float
    http_status: str | None = None  # None until the HTTP API column has run

    def all_values(self) -> dict[str, Any]:
        """Inputs and every enriched field, as the HTTP API column sends them."""
        out = dict(self.values)
        for step in self.steps:
            out.update(step.fields)
        return out


@dataclass
class Table:
    id: str
    name: str
    source_id: str
    enrichments: list[Enrichment]
    http_api: HttpApi | None
    auth_token: str | None = field(default=None, repr=False)
    rows: dict[str, Row] = field(default_factory=dict)
    input_columns: dict[str, None] = field(default_factory=dict)  # an ordered set
    submissions: int = 0
    dropped: int = 0  # records the table silently did not keep (full, or past the cap)
    http_calls: int = 0

    def columns(self) -> list[str]:
        cols = [RECORD_ID, *self.input_columns]
        for enrichment in self.enrichments:
            cols.extend(c for c in enrichment.columns() if c not in cols)
        return cols

    def column_owner(self) -> dict[str, int]:
        """Enriched column -> index of the enrichment that fills it."""
        owner: dict[str, int] = {}
        for index, enrichment in enumerate(self.enrichments):
            for col in enrichment.columns():
                owner.setdefault(col, index)
        return owner


def field_id(table_id: str, name: str) -> str:
    return "f_" + hashlib.sha1(f"{table_id}:{name}".encode()).hexdigest()[:12]


def cell(row: Row, column: str, owner: dict[str, int]) -> dict[str, Any]:
    """What ``/tables/query`` shows for one cell (CellSuccess/Error/Pending/Empty)."""
    if column == RECORD_ID:
        return {"status": "success", "value": row.id, "fields": None}
    index = owner.get(column)
    if index is None:
        return _value_cell(row.values.get(column))
    step = row.steps[index]
    if step.status in (QUEUED, RUNNING):
        return {"status": step.status}
    if step.status in (FAILED, NOT_RUN):
        return {"status": "error", "error": step.error or step.status}
    return _value_cell(step.fields.get(column))


def cell_value(row: Row, column: str, owner: dict[str, int]) -> Any:
    """The plain value behind a cell, for filters, sorting and aggregates (None if none)."""
    shown = cell(row, column, owner)
    return shown.get("value") if shown["status"] == "success" else None


def _value_cell(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {"status": "empty"}
    return {
        "status": "success",
        "value": value,
        "fields": value if isinstance(value, dict) else None,
    }


def column_type(table: Table, column: str, owner: dict[str, int]) -> str:
    if column == RECORD_ID:
        return "text"
    if column in owner:
        return "enrichment"
    for row in table.rows.values():
        value = row.values.get(column)
        if value is not None:
            return _type_of(value)
    return "text"


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict | list):
        return "json"
    return "text"


def http_body(table: Table, row: Row) -> dict[str, Any]:
    """The JSON the HTTP API column POSTs for a row."""
    body = row.all_values()
    if table.http_api is not None and table.http_api.include_meta:
        body["_clay"] = {
            "table_id": table.id,
            "row_id": row.id,
            "enrichments": [
                {"routine": e.routine.id, "status": s.status, "error": s.error, "cost": s.cost}
                for e, s in zip(table.enrichments, row.steps, strict=True)
            ],
        }
    return body
