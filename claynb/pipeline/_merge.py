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
from typing import Any, Protocol, TypeAlias

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
    frame), as they landed: a view of ``landed``'s own, not a copy (1.6 MB at 200,000
    rows, at the finish's peak), so ``landed`` cannot grow or be cleared while it is held."""
    left = items.mask()  # True: sent, no result seen yet
    got = np.frombuffer(landed.groups, dtype=np.int64)
    left[got[got >= 0] if (got < 0).any() else got] = False
    del got  # landed grows below: no view of its groups may be alive
    missing = items.groups[left[items.groups]]
    if len(missing):
        unknown = "the backend returned no result for this row"
        landed.add(
            (
                ItemResult(key, Status.UNKNOWN, attempts=0, error=unknown)
                for key in items.keys_of(missing)
            ),
            missing,
        )
    return np.frombuffer(landed.groups, dtype=np.int64)


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
        # Built by the system's allocator, which reuses what the finish freed (the plan,
        # the landed results: its heap), where Arrow's pool took new pages for it (in a
        # trial at 200,000 rows, the merge added 11.5 MB, not 17.7).
        built = pa.array(rows, _TEXT, from_pandas=True, memory_pool=pa.system_memory_pool())
        return text.__from_arrow__(built)
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


def _field_column(answers: Answers, name: str, codes: np.ndarray, rows: BlockRows) -> Any:
    """One field fanned out to rows. Where every block holds it as an Arrow column of one
    flat type, the column is made straight from Arrow (no Python object per row; ``rows``:
    :func:`_block_rows`); otherwise from the values, as :func:`_column` reads them."""
    parts = [(groups, fields.column(name)) for groups, fields in answers.blocks]
    arrow = [p for _, p in parts if isinstance(p, pa.ChunkedArray)]
    kinds = {_TEXT if _is_text(a.type) else a.type for a in arrow if not pa.types.is_null(a.type)}
    if len(arrow) == len(parts) and kinds and (len(kinds) == 1 or kinds == _INT_FLOAT):
        kind = pa.float64() if len(kinds) > 1 else kinds.pop()
        if kind in _NUMBERS or kind == _TEXT:
            same = [a if a.type == kind else a.cast(kind) for a in arrow]
            return _arrow_column(same, kind, rows)
    values = np.full(len(answers), None, dtype=object)
    for groups, part in parts:
        values[groups] = part.to_pylist() if isinstance(part, pa.ChunkedArray) else part
    return _column(values.tolist(), codes)


#: Text fields as the output takes them: 64-bit offsets, what pandas' Arrow-backed text
#: holds (text of 32-bit offsets is cast: its characters are shared, its offsets made anew).
_TEXT = pa.large_string()


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


#: For each of the frame's rows, where its group's answer lies in the answers' blocks laid
#: end to end (:func:`_block_rows`): at most :data:`_MAX_STRETCHES` stretches, ``(first
#: block row, length)`` each, row after row (first -1: a stretch of nulls); else the
#: block row of each (null for a group no block answers), to take. The same for every
#: field.
BlockRows: TypeAlias = "list[tuple[int, int]] | pa.Array"

#: Stretches of block rows a field column is made of without a copy: more, and it is
#: taken (pandas walks a column's chunks one by one; a few dozen cost nothing).
_MAX_STRETCHES = 64


def _block_rows(answers: Answers, codes: np.ndarray) -> BlockRows:
    """The frame's rows in the answers' blocks (:data:`BlockRows`): worked out once."""
    slot = np.full(len(answers), -1, dtype=np.int64)
    offset = 0
    for groups, fields in answers.blocks:
        slot[groups] = np.arange(offset, offset + fields.rows)
        offset += fields.rows
    rows = slot[codes]
    stretches = _stretches(rows)
    return stretches if stretches is not None else pa.array(rows, mask=rows < 0)


def _stretches(rows: np.ndarray) -> list[tuple[int, int]] | None:
    """``rows`` (-1: none) as stretches of consecutive rows or of nones (:data:`BlockRows`),
    None when there are more than :data:`_MAX_STRETCHES`."""
    held = rows >= 0
    starts = np.ones(len(rows), dtype=bool)
    after = rows[1:] != rows[:-1] + 1  # a new stretch of rows, when held
    starts[1:] = np.where(held[1:], after | ~held[:-1], held[:-1])
    begins = np.flatnonzero(starts)
    if len(begins) > _MAX_STRETCHES:
        return None
    lengths = np.diff(np.append(begins, len(rows)))
    return list(zip(rows[begins].tolist(), lengths.tolist(), strict=True))


def _arrow_column(arrays: list[pa.ChunkedArray], kind: pa.DataType, rows: BlockRows) -> Any:
    """The blocks' arrays (one flat type) as a column: each group's row of them, out to
    the frame's rows (:func:`_block_rows`). Where the rows are a few stretches of the
    blocks, row after row, the column is those stretches' slices: the answers' own
    buffers, not a copy (text keeps them in the output; pandas copies numbers)."""
    laid = pa.chunked_array([c for a in arrays for c in a.chunks], kind)
    if isinstance(rows, pa.Array):
        column = laid.take(rows)
    else:
        chunks = [
            [pa.nulls(length, kind)] if first < 0 else laid.slice(first, length).chunks
            for first, length in rows
        ]
        column = pa.chunked_array([c for part in chunks for c in part], kind)
    if kind in _NUMBERS:
        return _NUMBERS[kind].__from_arrow__(column)
    text = pd.api.types.pandas_dtype(_text_dtype())
    if hasattr(text, "__from_arrow__"):
        return text.__from_arrow__(column)
    return pd.array(column.to_numpy(), dtype=object)


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

    The last use of ``answers``' fields. Where the frame's rows lie in the answers' blocks
    in order (a few stretches of them, row after row: every row its own group, runs
    joined in group order by ``Landed``), a text field's column is slices of the answers'
    own buffers, not a copy (at 200,000 rows the merge had taken 22 MB of them anew);
    otherwise it is taken row by row. Each field is let go once it is a column
    (:meth:`~claynb.pipeline._work.Answers.let_go`), so a taken copy's source serves the
    next one, and the rest once every field is
    (:meth:`~claynb.pipeline._work.Answers.release`).
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
