"""Results back into a frame: every row answered from its group, in the frame's own order.

:func:`merge` fans each group's answer (:class:`~claynb.pipeline._work.Answers`: a slot per
group of identical rows) back out to every row, keeping the frame's index and order: ``clay_<field>`` per
result field (the routine's listed fields, then any other that came back: a workspace
routine returns what it returns), then the status columns. The first row of a group
carries the cost, its duplicates show 0, so each cost column sums to what was charged;
``clay_cost_source`` says where each figure comes from (``metered``, ``estimated``;
empty where nothing was sent), and an ``unpriced`` row's cost is missing, not zero.
Columns are built as whole arrays (one per field), never row by row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from claynb._routines import Routine
from claynb.pipeline._work import Answers, CostSource, ItemResult, Landed, Status, WorkItems

#: What every output column's name starts with, unless the caller chooses another prefix.
DEFAULT_PREFIX = "clay_"
#: The columns written after the result fields, each behind the prefix.
STATUS_FIELDS = ("status", "error", "actions", "data_credits", "cost_source")


class Grouped(Protocol):
    """What the merge reads of a prepared frame
    (:class:`~claynb.pipeline._normalise.Prepared` is one): the routine, each row's group
    (``codes``) and the first row of each group (``first``, which carries its cost)."""

    @property
    def routine(self) -> Routine: ...

    @property
    def codes(self) -> np.ndarray: ...

    @property
    def first(self) -> np.ndarray: ...


def output_columns(
    routine: Routine, prefix: str = DEFAULT_PREFIX, extra: Sequence[str] = ()
) -> list[str]:
    """The columns ``merge`` writes for ``routine``: result fields (the routine's, then
    ``extra`` ones that came back), then the status ones."""
    return [prefix + name for name in (*routine.fields, *extra, *STATUS_FIELDS)]


def result_fields(routine: Routine, answers: Answers) -> list[str]:
    """Fields in these answers which the routine does not list, in order of first sight."""
    listed = set(routine.fields)
    held = {name for _, fields in answers.blocks for name in fields.names()}
    if held <= listed:  # the usual case: no need to find where each field was first seen
        return []
    return [name for name in answers.field_names() if name not in listed]


def check_columns(
    df: pd.DataFrame,
    routine: Routine,
    prefix: str = DEFAULT_PREFIX,
    overwrite: bool = False,
    extra: Sequence[str] = (),
) -> None:
    """Refuse to write over columns the frame already has.

    A frame enriched once, or exported from a tool that uses the same names, would have
    its own values silently replaced; the caller picks another ``prefix`` or says
    ``overwrite=True``. Checked before anything is sent for the routine's listed fields,
    and again for ``extra`` fields a workspace routine returned (their answers are cached
    by then, so calling again with another prefix costs nothing).
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
    taken = [column for column in output_columns(routine, prefix, extra) if column in df.columns]
    if taken and not overwrite:
        shown = ", ".join(map(repr, taken[:8])) + (", ..." if len(taken) > 8 else "")
        after = (
            " (fields the routine returned: its answers are cached, calling again costs nothing)"
            if extra
            else ""
        )
        raise ValueError(
            f"the frame already has {len(taken)} column(s) that enrich would write: {shown}"
            f"{after}. Pass prefix= to write elsewhere (e.g. prefix={prefix + 'new_'!r}), or "
            "overwrite=True to replace them"
        )


def complete(items: WorkItems, landed: Landed) -> np.ndarray:
    """One result per item sent, whatever the backend returned: a missing one is
    ``unknown``. (Told by the items' groups, not a set of the landed keys.) The group of
    each of ``landed``'s results, those added here included (-1: a key of no group of the
    frame), as they landed."""
    got = np.frombuffer(landed.groups, dtype=np.int64).copy()
    left = items.mask()  # True: sent, no result seen yet
    left[got[got >= 0]] = False
    missing = items.groups[left[items.groups]]
    unknown = "the backend returned no result for this row"
    landed.add(
        (
            ItemResult(key, Status.UNKNOWN, attempts=0, error=unknown)
            for key in items.keys_of(missing)
        ),
        missing,
    )
    return np.concatenate([got, missing])


def _text_dtype() -> Any:
    """The dtype read_csv gives text: "str" on pandas 3; object on pandas 2, where "str"
    means NumPy strings and would turn a missing value into the text 'None'."""
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _column(values: list[Any], codes: np.ndarray) -> Any:
    """Per-group values fanned out to rows, as a pandas array with a sensible dtype: built
    once over the groups, then taken row by row (one vectorised take)."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "empty":  # nothing but missing values
        groups = np.empty(len(values), dtype=object)
        groups[:] = values
        return pd.array(groups[codes], dtype=object)
    if kind == "string":
        return pd.array(values, dtype=_text_dtype()).take(codes)
    try:
        array = pd.array(values)  # nullable Int64 / Float64 / boolean keep ints as ints
    except (TypeError, ValueError):
        array = pd.array(values, dtype=object)
    return array.take(codes)


def _text_column(per_group: np.ndarray, codes: np.ndarray, nothing: Any = None) -> Any:
    """Per-group text (an object array of str or None) fanned out to rows as a text column
    (:func:`_text_dtype`): the rows' values taken by one NumPy take and converted by Arrow
    once, never through a Python list. ``nothing``: the dtype when no group holds any text
    (None: text all the same), as :func:`_column` gives a column of nothing but missing
    values."""
    rows = per_group[codes]
    if nothing is not None and not pd.notna(per_group).any():
        return pd.array(rows, dtype=nothing)
    text = pd.api.types.pandas_dtype(_text_dtype())
    if hasattr(text, "__from_arrow__"):
        return text.__from_arrow__(pa.array(rows, type=pa.large_string(), from_pandas=True))
    return pd.array(rows, dtype=object)


#: Arrow types -> the pandas dtype that reads them back as the values they hold (text is
#: :func:`_text_dtype`).
_NUMBERS = {
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}
#: A field that came back as integers in some answers and floats in others: floats, as
#: pandas reads such values.
_INT_FLOAT = {pa.int64(), pa.float64()}


def _field_column(answers: Answers, name: str, codes: np.ndarray, rows: pa.Array) -> Any:
    """One field fanned out to rows. Where every block holds it as an Arrow column of one
    flat type, the column is taken straight from Arrow (no Python object per row; ``rows``:
    :func:`_block_rows`); otherwise from the values, as :func:`_column` reads them."""
    parts = [(groups, fields.column(name)) for groups, fields in answers.blocks]
    arrow = [p for _, p in parts if isinstance(p, pa.ChunkedArray)]
    kinds = {a.type for a in arrow if not pa.types.is_null(a.type)}
    if len(arrow) == len(parts) and kinds and (len(kinds) == 1 or kinds == _INT_FLOAT):
        kind = pa.float64() if len(kinds) > 1 else kinds.pop()
        if kind in _NUMBERS or pa.types.is_string(kind) or pa.types.is_large_string(kind):
            same = [a if a.type == kind else a.cast(kind) for a in arrow]
            return _arrow_column(same, kind, rows)
    values = np.full(len(answers), None, dtype=object)
    for groups, part in parts:
        values[groups] = part.to_pylist() if isinstance(part, pa.ChunkedArray) else part
    return _column(values.tolist(), codes)


def _block_rows(answers: Answers, codes: np.ndarray) -> pa.Array:
    """For each of the frame's rows, its group's row in the answers' blocks laid end to
    end (null for a group no block answers): the same for every field, so worked out once."""
    slot = np.full(len(answers), -1, dtype=np.int64)
    offset = 0
    for groups, fields in answers.blocks:
        slot[groups] = np.arange(offset, offset + fields.rows)
        offset += fields.rows
    rows = slot[codes]
    return pa.array(rows, mask=rows < 0)


def _arrow_column(arrays: list[pa.ChunkedArray], kind: pa.DataType, rows: pa.Array) -> Any:
    """The blocks' arrays (one flat type) as a column: each group's row of them, taken
    out to the frame's rows (:func:`_block_rows`)."""
    taken = pa.chunked_array([c for a in arrays for c in a.chunks], kind).take(rows)
    if kind in _NUMBERS:
        return _NUMBERS[kind].__from_arrow__(taken)
    text = pd.api.types.pandas_dtype(_text_dtype())
    if hasattr(text, "__from_arrow__"):
        return text.__from_arrow__(taken)
    return pd.array(taken.to_numpy(), dtype=object)


def merge(
    df: pd.DataFrame,
    prepared: Grouped,
    answers: Answers,
    prefix: str = DEFAULT_PREFIX,
    extra: Sequence[str] = (),
) -> pd.DataFrame:
    """A new frame: ``df``'s columns, then ``<prefix><field>`` per result field (the
    routine's, then ``extra``) and the status columns, every row answered from its group's
    slot of ``answers``, in ``df``'s order and index.

    The last use of ``answers``' fields: each is let go once it is a column
    (:meth:`~claynb.pipeline._work.Answers.let_go`), so its memory serves the next one,
    and the rest once every field is (:meth:`~claynb.pipeline._work.Answers.release`).
    (Field by field was too slow over 2,000 blocks, one per run: 0.05 to 0.09 CPU-s; it
    is about 30 since ``Landed`` joins its runs'.) ``df``'s own columns are shared with
    the output, not copied (pandas' copy-on-write), and so are the new ones (each handed
    over as a Series on ``df``'s index, which ``assign`` takes as it is)."""
    routine, codes = prepared.routine, prepared.codes
    cols: dict[str, Any] = {}
    rows = _block_rows(answers, codes)
    for name in (*routine.fields, *extra):
        cols[prefix + name] = _field_column(answers, name, codes, rows)
        answers.let_go(name)
    answers.release()  # every field is a column now: what the answers held serves the rest
    cols[prefix + "status"] = _text_column(answers.status, codes)
    cols[prefix + "error"] = _text_column(answers.error, codes, nothing=object)
    first = prepared.first
    unpriced = answers.source == str(CostSource.UNPRICED)
    for meter, per_group in (("actions", answers.actions), ("data_credits", answers.data_credits)):
        per_group = np.where(unpriced, np.nan, per_group)  # nobody can say what these cost
        cols[prefix + meter] = np.where(first, per_group[codes], 0.0) if len(codes) else np.zeros(0)
    # Always text, so a frame of cached rows (nothing sent, no source) concatenates with any.
    cols[prefix + "cost_source"] = _text_column(answers.source, codes)
    return df.assign(
        **{name: pd.Series(col, index=df.index, copy=False) for name, col in cols.items()}
    )
