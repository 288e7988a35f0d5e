"""Results back into a frame: every row answered from its group, in the frame's own order.

:func:`merge` fans one :class:`~claynb.pipeline._work.ItemResult` per group of identical
rows back out to every row, keeping the frame's index and order: ``clay_<field>`` per
result field, then the status columns. The first row of a group carries the cost, its
duplicates show 0, so each cost column sums to what was charged. Columns are built as
whole arrays (one per field), never row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from claynb.pipeline._normalise import Prepared
from claynb.pipeline._work import STATUSES, ItemResult, Status, WorkItem

PREFIX = "clay_"
STATUS_COLUMNS = ("clay_status", "clay_error", "clay_actions", "clay_data_credits")


def complete(items: Sequence[WorkItem], results: Sequence[ItemResult]) -> dict[str, ItemResult]:
    """One result per item, whatever the backend returned: a missing one is ``unknown``."""
    by_key = {r.key: r for r in results if r.status in STATUSES}
    for item in items:
        if item.key not in by_key:
            by_key[item.key] = ItemResult(
                item.key,
                Status.UNKNOWN,
                attempts=0,
                error="the backend returned no result for this row",
            )
    return by_key


def _text_dtype() -> Any:
    """The dtype read_csv gives text: "str" on pandas 3; object on pandas 2, where "str"
    means NumPy strings and would turn a missing value into the text 'None'."""
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _column(values: list[Any], codes: np.ndarray) -> Any:
    """Per-group values fanned out to rows, as a pandas array with a sensible dtype."""
    groups = np.empty(len(values), dtype=object)
    groups[:] = values
    rows = groups[codes] if len(codes) else np.empty(0, dtype=object)
    present = [v for v in values if v is not None]
    if not present:
        return pd.array(rows, dtype=object)
    if pd.api.types.infer_dtype(present, skipna=True) == "string":
        return pd.array(rows, dtype=_text_dtype())
    try:
        return pd.array(rows)  # nullable Int64 / Float64 / boolean keep ints as ints
    except (TypeError, ValueError):
        return pd.array(rows, dtype=object)


def merge(df: pd.DataFrame, prepared: Prepared, by_group: Mapping[int, ItemResult]) -> pd.DataFrame:
    """A new frame: ``df``'s columns, then ``clay_<field>`` per result field and the status
    columns, every row answered from its group's result, in ``df``'s order and index."""
    routine, codes = prepared.routine, prepared.codes
    results = [by_group[g] for g in range(len(prepared.keys))]
    cols: dict[str, Any] = {}
    for name in routine.fields:
        cols[PREFIX + name] = _column(
            [r.result.get(name) if r.result else None for r in results], codes
        )
    cols["clay_status"] = _column([str(r.status) for r in results], codes)
    cols["clay_error"] = _column([r.error for r in results], codes)
    first = prepared.first
    for column, attr in (("clay_actions", "actions"), ("clay_data_credits", "data_credits")):
        per_group = np.array([getattr(r.cost, attr) for r in results], dtype="float64")
        cols[column] = np.where(first, per_group[codes], 0.0) if len(codes) else np.zeros(0)
    return df.assign(**cols)
