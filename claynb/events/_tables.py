"""The table round trip: a frame into a Clay table, and its enriched rows back by row id.

This is how most Clay users run today: rows go into a table through its webhook source,
the table's enrichment columns run, and an HTTP API column posts each finished row to a URL
the user chose, here claynb's receiver (authenticated by a shared-secret header set on the
column). :func:`send_to_table` puts a ``claynb_row_id`` in every row it sends, sends the
frame through :meth:`claynb.ClayClient.send_to_source` (paced to ~10 records/s, chunked
under 100 KB, the 50,000-submission lifetime cap counted and warned about), then waits for
the receiver to have stored a callback for each row and joins them back by that id.

Rows with no callback by ``timeout`` are not forgotten: they come back with
``clay_callback = "missing"``, a warning names how many, and :func:`collect_callbacks`
joins late callbacks into the same frame later (the receiver keeps them durably).
"""

from __future__ import annotations

import json
import math
import time
import uuid
import warnings
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import pandas as pd

from claynb.events._dedupe import DedupeStore, open_dedupe_store
from claynb.events._receiver import ROW_ID_FIELD
from claynb.wire._exceptions import ClayError

#: ``clay_callback`` values: the row came back, was sent but has not come back yet, was
#: never accepted by the source, or may or may not have reached it (a dropped answer).
RECEIVED, MISSING, NOT_SENT, SEND_UNKNOWN = "received", "missing", "not_sent", "send_unknown"
DEFAULT_TIMEOUT_S = 300.0
ROW_ID_COLUMN = "clay_row_id"
STATUS_COLUMN = "clay_callback"


def _json_safe(value: Any) -> Any:
    """A cell as JSON: NaN/NaT as null, timestamps as ISO text, numpy scalars as Python."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        try:
            return _json_safe(value.item())
        except (TypeError, ValueError):
            pass
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def records_with_row_ids(df: pd.DataFrame, send_id: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The frame's rows as JSON records, each carrying its ``claynb_row_id``; and the ids."""
    ids = [f"{send_id}-{i}" for i in range(len(df))]
    records = []
    for row_id, (_, row) in zip(ids, df.iterrows(), strict=True):
        record = {str(col): _json_safe(val) for col, val in row.items()}
        record[ROW_ID_FIELD] = row_id
        records.append(record)
    return records, ids


def _callbacks(store: DedupeStore, row_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    found = store.payloads([f"row:{rid}" for rid in row_ids])
    rows: dict[str, dict[str, Any]] = {}
    for key, payload in found.items():
        try:
            rows[key[len("row:") :]] = dict(json.loads(payload).get("row") or {})
        except (ValueError, AttributeError):
            continue
    return rows


def join_callbacks(frame: pd.DataFrame, callbacks: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """``frame`` (with ``clay_row_id``) plus the callback values as ``clay_<name>`` columns.

    Values the frame sent are not repeated; new ones (the enrichment columns) are added.
    ``clay_callback`` is set to ``received`` for rows that came back.
    """
    out = frame.copy()
    sent_columns = {str(c) for c in frame.columns} | {ROW_ID_FIELD}
    new: dict[str, list[Any]] = {}
    for position, row_id in enumerate(out[ROW_ID_COLUMN].tolist()):
        row = callbacks.get(str(row_id))
        if row is None:
            continue
        for name, value in row.items():
            if name in sent_columns or name.startswith("_"):
                continue
            column = f"clay_{name}"
            new.setdefault(column, [None] * len(out))[position] = value
    for column, values in new.items():
        if column in out.columns:
            out[column] = [
                v if v is not None else old for v, old in zip(values, out[column], strict=True)
            ]
        else:
            out[column] = values
    back = out[ROW_ID_COLUMN].astype(str).isin(callbacks.keys())
    out.loc[back, STATUS_COLUMN] = RECEIVED
    return out


def collect_callbacks(frame: pd.DataFrame, store: DedupeStore | str | None = None) -> pd.DataFrame:
    """Join callbacks that arrived after :func:`send_to_table` returned into its frame."""
    store = store if store is not None and not isinstance(store, str) else open_dedupe_store(store)
    waiting = frame.loc[frame[STATUS_COLUMN] == MISSING, ROW_ID_COLUMN].astype(str).tolist()
    return join_callbacks(frame, _callbacks(store, waiting)) if waiting else frame.copy()


def send_to_table(
    df: pd.DataFrame,
    webhook_url: str,
    auth_token: str | None = None,
    *,
    client: Any = None,
    receiver: Any = None,
    store: DedupeStore | str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    poll_s: float = 0.25,
    wait: bool = True,
    send_id: str | None = None,
) -> pd.DataFrame:
    """Push ``df`` into a Clay table and join back what its HTTP API column posts.

    ``receiver`` is a running :class:`claynb.events.ReceiverServer` (or ``store`` the
    receiver's dedupe store: a SQLite path, ``redis://`` URL, or None for the default under
    ``CLAYNB_HOME``, which is where ``claynb receiver`` keeps callbacks). Returns a new
    frame: the input's columns, ``clay_row_id``, ``clay_callback`` and one ``clay_<name>``
    column per value the table added. The input frame is not changed.
    """
    from claynb._secrets import register_secret

    register_secret(auth_token)
    if client is None:
        from claynb._connect import connect

        client = connect()
    callbacks_store: DedupeStore = (
        receiver.store
        if receiver is not None
        else store
        if store is not None and not isinstance(store, str)
        else open_dedupe_store(store)
    )
    send_id = send_id or uuid.uuid4().hex[:12]
    records, row_ids = records_with_row_ids(df, send_id)
    report, send_error = _send(client, webhook_url, records, auth_token)
    out = df.copy()
    out[ROW_ID_COLUMN] = row_ids
    status = [MISSING] * len(df)
    for i in getattr(report, "unsent", []) or []:
        status[i] = NOT_SENT
    for i in getattr(report, "unknown", []) or []:
        status[i] = SEND_UNKNOWN
    out[STATUS_COLUMN] = status
    expected = [rid for rid, s in zip(row_ids, status, strict=True) if s != NOT_SENT]
    got: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while wait and expected:
        got = _callbacks(callbacks_store, expected)
        if len(got) >= len(expected) or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    out = join_callbacks(out, got)
    out.attrs["clay_send_report"] = report
    if send_error is not None:
        out.attrs["clay_send_error"] = str(send_error)
    _warn_missing(out, timeout)
    return out


def _send(
    client: Any, webhook_url: str, records: list[dict[str, Any]], auth_token: str | None
) -> tuple[Any, ClayError | None]:
    """Send the records; a send that stops part-way still returns what it did.

    The client raises when a chunk cannot be delivered (a cap reached, an unknown outcome,
    retries spent) and attaches its report: the rows already accepted must still be waited
    for and joined, and the rest marked, rather than the whole frame being lost to the error.
    """
    try:
        return client.send_to_source(webhook_url, records, auth_token=auth_token), None
    except ClayError as exc:
        report = getattr(exc, "report", None)
        if report is None:
            raise
        warnings.warn(f"the webhook source stopped accepting rows part-way: {exc}", stacklevel=3)
        return report, exc


def _warn_missing(out: pd.DataFrame, timeout: float) -> None:
    counts = out[STATUS_COLUMN].value_counts()
    missing = int(counts.get(MISSING, 0)) + int(counts.get(SEND_UNKNOWN, 0))
    unsent = int(counts.get(NOT_SENT, 0))
    if missing or unsent:
        warnings.warn(
            f"{missing} row(s) had no callback within {timeout:g}s and {unsent} were not accepted by "
            f"the source; they are marked in '{STATUS_COLUMN}' (join late callbacks with "
            "claynb.events.collect_callbacks)",
            stacklevel=3,
        )
