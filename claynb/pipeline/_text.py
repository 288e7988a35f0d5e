"""Columns of text as Arrow arrays: the vectorised half of normalising and keying inputs.

Python's ``str`` methods and ``re`` patterns are the definition of how an input is
normalised, checked and written as JSON (:mod:`claynb.pipeline._normalise`,
:mod:`claynb._routines`, :func:`claynb.pipeline._work.item_key`); Arrow's kernels do the
same over a whole column at C speed, but only where the two provably agree. They agree
on *printable ASCII* (bytes 0x20 to 0x7e): there the only whitespace is the space, case
is ASCII case, ``.`` and ``$`` never meet a newline (RE2 and ``re`` differ on ``$``
before a final newline), and JSON escapes nothing but ``"`` and ``\\``. Every other value
(accents, emoji, tabs, control characters) goes through the Python code, once per distinct
value (:func:`not_printable` finds them). Real frames are almost all printable ASCII.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TEXT = pa.large_string()


def text_scalar(value: str) -> pa.Scalar:
    """A constant for Arrow's kernels, of the type every text column here has."""
    return pa.scalar(value, TEXT)


def as_text(values: Any) -> tuple[pa.Array, np.ndarray]:
    """``values`` (a Series, array or list) as Arrow text, and the positions of values
    that are neither text nor missing (numbers, booleans, bytes...), which are null in
    the text and left to the caller. Missing values (None, NaN, NA, NaT) are null."""
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if isinstance(series.dtype, pd.StringDtype):
        return _arrow_text(series), np.empty(0, dtype=np.int64)
    objects = np.asarray(series, dtype=object)
    if pd.api.types.infer_dtype(objects, skipna=True) in ("string", "empty"):
        return _arrow_text(objects), np.empty(0, dtype=np.int64)
    is_text = np.fromiter((type(v) is str for v in objects), dtype=bool, count=len(objects))
    others = np.flatnonzero(~is_text & ~pd.isna(objects))
    only_text = objects.copy()
    only_text[~is_text] = None
    return _arrow_text(only_text), others


def _arrow_text(values: Any) -> pa.Array:
    text = pa.array(values, type=TEXT, from_pandas=True)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The column's value offsets and the bytes they index (numpy views, no copy)."""
    _, offsets_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[
        text.offset : text.offset + len(text) + 1
    ]
    if data_buffer is None:
        return offsets, np.zeros(0, dtype=np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)[: int(offsets[-1])]


def text_bytes(text: pa.Array) -> int:
    """How many bytes of text the column's values hold (nulls hold none)."""
    if len(text) == 0:
        return 0
    offsets, _ = _bytes(text)
    return int(offsets[-1] - offsets[0])


def not_printable(text: pa.Array) -> np.ndarray:
    """Per value, whether it holds a byte outside printable ASCII: one pass of numpy over
    the column's bytes, not a Python call per value. Nulls are False."""
    out = np.zeros(len(text), dtype=bool)
    if len(text) == 0:
        return out
    offsets, data = _bytes(text)
    start = int(offsets[0])
    data = data[start:]
    if not data.size or (data.min() >= 0x20 and data.max() <= 0x7E):  # the common case
        return out
    # Below 0x20 wraps round to 0xe0 and up: one comparison finds both ends.
    odd = np.flatnonzero((data - np.uint8(0x20)) > np.uint8(0x7E - 0x20))
    if odd.size:
        out[np.searchsorted(offsets, odd + start, side="right") - 1] = True
        if text.null_count:
            out &= text.is_valid().to_numpy(zero_copy_only=False)
    return out


def may_contain(text: pa.Array, needle: str) -> bool:
    """Whether ``needle`` (ASCII) may be in some value: False means in none, cheaply (a
    search of the column's bytes, which may also find it across two values)."""
    if len(text) == 0:
        return False
    offsets, data = _bytes(text)
    return data[int(offsets[0]) :].tobytes().find(needle.encode("ascii")) >= 0


def patch(text: pa.Array, where: np.ndarray, values: pa.Array | Sequence[str | None]) -> pa.Array:
    """``text`` with the values at positions ``where`` (ascending) replaced by ``values``."""
    if not len(where):
        return text
    mask = np.zeros(len(text), dtype=bool)
    mask[where] = True
    replacements = values if isinstance(values, pa.Array) else pa.array(values, type=TEXT)
    return pc.replace_with_mask(text, pa.array(mask), replacements)


def joined(pieces: Iterable[pa.Array], rows: int, capacity: int) -> pa.Array:
    """Text arrays joined into one of ``rows`` values, copied a piece at a time into
    buffers made once (``capacity`` bytes of text, grown if that is short): each piece can
    be dropped as soon as it is copied, where ``pa.concat_arrays`` holds every piece and
    the result at once (twice the column). The buffers are numpy's, outside Arrow's pool,
    which would keep them resident once freed."""
    offsets = np.zeros(rows + 1, dtype=np.int64)
    data = np.empty(capacity, dtype=np.uint8)
    valid = np.ones(rows, dtype=bool)
    row = 0
    for piece in pieces:
        piece_offsets, piece_data = _bytes(piece)
        start, stop = int(piece_offsets[0]), int(piece_offsets[-1])
        at = int(offsets[row])
        if at + stop - start > len(data):
            data = np.concatenate([data[:at], np.empty(max(len(data), stop - start), np.uint8)])
        data[at : at + stop - start] = piece_data[start:stop]
        offsets[row + 1 : row + len(piece) + 1] = piece_offsets[1:] + (at - start)
        if piece.null_count:
            valid[row : row + len(piece)] = piece.is_valid().to_numpy(zero_copy_only=False)
        row += len(piece)
    nulls = rows - int(np.count_nonzero(valid))
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(data[: int(offsets[-1])])]
    return pa.Array.from_buffers(TEXT, rows, buffers, null_count=nulls)


def joined_or_same(pieces: Iterator[pa.Array], like: pa.Array, capacity: int) -> pa.Array:
    """:func:`joined` of ``pieces``, made slice by slice from ``like`` (as many rows):
    ``like`` itself while every piece holds the same values as its slice of it, so a
    column that normalising did not change is not copied at all (the frame's own
    buffers, where 200,000 e-mails joined were 9.2 MB held to the end of the call). The
    first piece that differs starts the copy, with the rows of ``like`` before it."""
    row = 0
    for piece in pieces:
        if not piece.equals(like.slice(row, len(piece))):
            head = like.slice(0, row)
            return joined(chain([head, piece], pieces), len(like), capacity)
        row += len(piece)
    return like


def through_python(
    out: pa.Array, where: np.ndarray, text: pa.Array, fn: Callable[[str], str | None]
) -> pa.Array:
    """``out`` with ``fn`` of ``text``'s values (not null) at positions ``where`` in their
    place: called once per distinct value, so a column of repeated accented names costs
    a call per name, not per row."""
    if not len(where):
        return out
    picked = pc.dictionary_encode(text.take(pa.array(where)))
    done = pa.array([fn(v) for v in picked.dictionary.to_pylist()], type=TEXT)
    return patch(out, where, done.take(picked.indices))


def json_parts(text: pa.Array, encode: Callable[[str], str]) -> list[pa.Array | str]:
    """Pieces whose concatenation is each value as a JSON string (null as ``null``): the
    bytes ``encode`` (the JSON encoder's own function) writes, which it is called for
    only where a value is :func:`not_printable`. A column of printable text comes back
    as its quotes around it, for the caller to fold into the constants either side."""
    escaped = text
    if may_contain(escaped, "\\"):
        escaped = pc.replace_substring(escaped, "\\", "\\\\")
    if may_contain(escaped, '"'):
        escaped = pc.replace_substring(escaped, '"', '\\"')
    odd = np.flatnonzero(not_printable(text))
    if not len(odd) and not text.null_count:
        return ['"', escaped, '"']
    quote = text_scalar('"')
    quoted = pc.binary_join_element_wise(quote, escaped, quote, text_scalar(""))
    quoted = through_python(quoted, odd, text, encode)
    return [pc.fill_null(quoted, text_scalar("null"))]
