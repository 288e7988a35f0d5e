"""The units of work every backend shares: an item to enrich and what became of it.

``enrich`` turns a DataFrame into work items (one per unique, valid, uncached input, as
columns: :class:`WorkItems`; a :class:`WorkItem` each when read one by one), hands them to
a backend (direct, queue or events), and merges what became of them
back into a frame. Backends differ in how they reach Clay; they all speak these types
(an :class:`ItemResult` per item, taken into columns as results land: :class:`Landed`,
:class:`Answers`, :class:`Fields`), and all reserve money through a :class:`BudgetGuard`.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from json.encoder import encode_basestring_ascii as _json_text
from typing import Any, Protocol, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from claynb._routines import Cost
from claynb.pipeline._keys import KEY_BYTES, FrameKeys, key_texts
from claynb.pipeline._text import TEXT, as_text, json_parts, text_scalar


class Status(StrEnum):
    """What became of a row: its ``clay_status``, the same words in every tier.

    ``enriched`` and ``no_match`` are Clay's answers (a miss is an answer too); ``cached``
    was answered from the cache without a request; ``failed`` went wrong (Clay said so,
    or the send was refused) and is on the dead-letter list; ``invalid_input`` was never
    sent; ``over_budget`` was not run because a budget or Clay's own meters could not pay;
    ``unknown`` was sent and its outcome is not known yet (never re-sent on its own).
    """

    ENRICHED = "enriched"
    NO_MATCH = "no_match"
    CACHED = "cached"
    FAILED = "failed"
    INVALID_INPUT = "invalid_input"
    OVER_BUDGET = "over_budget"
    UNKNOWN = "unknown"


#: Every status, in the order the docs list them.
STATUSES = tuple(Status)


class CostSource(StrEnum):
    """Where a cost figure comes from: the ``clay_cost_source`` column, the ledger, budgets.

    Real Clay does not report what an item cost. ``metered`` figures were read from a claynb
    emulator's meters; ``estimated`` ones are declared prices times what came back (a match
    at the routine's worst case, a miss at what misses cost); ``unpriced`` means neither: a
    routine with no declared cost, on real Clay (the figures are then missing, not zero).
    """

    METERED = "metered"
    ESTIMATED = "estimated"
    UNPRICED = "unpriced"

    @classmethod
    def of_all(cls, sources: Iterable[CostSource | None]) -> CostSource | None:
        """The provenance of a sum: metered only when every part was, unpriced when any
        part was, else estimated (None: nothing was charged to say anything about)."""
        seen = {s for s in sources if s is not None}
        if not seen:
            return None
        if seen == {cls.METERED}:
            return cls.METERED
        return cls.UNPRICED if cls.UNPRICED in seen else cls.ESTIMATED


#: The statuses that are Clay's answer for an item: what the cache keeps.
ANSWERED = (Status.ENRICHED, Status.NO_MATCH)


def item_key(routine_id: str, inputs: dict[str, Any]) -> str:
    """A stable id for (routine, normalised inputs): the Clay item id and the cache key.

    The hash of ``json.dumps([routine_id, inputs], sort_keys=True, separators=(",", ":"))``.
    Normalised inputs are text or None, and for those the JSON is written directly (the
    same bytes, a few times faster); :func:`item_keys` does it for whole columns.
    """
    if all(v is None or type(v) is str for v in inputs.values()):
        names = sorted(inputs)
        blob = (
            f"[{_json_text(routine_id)},{{"
            + ",".join(f"{_json_text(name)}:{_json_value(inputs[name])}" for name in names)
            + "}]"
        )
    else:
        blob = json.dumps([routine_id, inputs], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _json_value(value: str | None) -> str:
    return "null" if value is None else _json_text(value)


def item_keys(routine_id: str, columns: Mapping[str, Any]) -> list[str]:
    """:func:`item_key` of every row of these input columns (text or None: Arrow text,
    arrays or lists): :func:`item_digests` as text."""
    return key_texts(item_digests(routine_id, columns))


def item_digests(routine_id: str, columns: Mapping[str, Any]) -> bytes:
    """The 16 bytes of :func:`item_key` of every row of these input columns, joined (a
    key is their hex text). The JSON of a chunk of rows is built by Arrow's kernels,
    column by column (:func:`claynb.pipeline._text.json_parts`), then hashed in one pass:
    it runs once per unique row of a frame."""
    names = sorted(columns)
    texts = [_text_column(columns[name]) for name in names]
    if not texts or not len(texts[0]):
        return b""
    return b"".join(
        _digests_of(routine_id, names, [text.slice(lo, _HASH_CHUNK) for text in texts])
        for lo in range(0, len(texts[0]), _HASH_CHUNK)
    )


#: Rows :func:`item_digests` writes as JSON and hashes at once: bounds the short-lived
#: copies (200,000 rows at once held about 15 MB of JSON in Arrow's pool and 27 MB of bytes).
_HASH_CHUNK = 8192


def _digests_of(routine_id: str, names: Sequence[str], texts: Sequence[pa.Array]) -> bytes:
    parts: list[Any] = [f"[{_json_text(routine_id)},{{"]
    for i, (name, text) in enumerate(zip(names, texts, strict=True)):
        parts += [f"{',' if i else ''}{_json_text(name)}:", *json_parts(text, _json_text)]
    parts.append("}]")
    joined: list[Any] = []  # constants next to each other written as one
    for part in parts:
        if isinstance(part, str) and joined and isinstance(joined[-1], str):
            joined[-1] += part
        else:
            joined.append(part)
    pieces = [text_scalar(p) if isinstance(p, str) else p for p in joined]
    blobs = pc.binary_join_element_wise(*pieces, text_scalar("")).cast(pa.large_binary())
    sha256 = hashlib.sha256
    return b"".join([sha256(b).digest()[:KEY_BYTES] for b in blobs.to_pylist()])


def _text_column(values: Any) -> pa.Array:
    if isinstance(values, pa.Array):
        return values.cast(TEXT)
    text, others = as_text(values)
    if len(others):
        wrong = np.asarray(values, dtype=object)[others[0]]
        raise TypeError(f"item_keys takes text or None, not {type(wrong).__name__}")
    return text


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One unique, valid set of normalised inputs to send to a routine.

    Slotted: a call holds one per row it sends until the merge (no ``__dict__`` per item
    halves a WorkItem's own memory: 48 bytes, not about 97)."""

    key: str
    inputs: dict[str, Any]

    @classmethod
    def of(cls, routine_id: str, inputs: dict[str, Any]) -> WorkItem:
        return cls(item_key(routine_id, inputs), dict(inputs))


class WorkItems(Sequence[WorkItem]):
    """The items a call sends, as columns: each item's group of the frame
    (:class:`~claynb.pipeline._normalise.Prepared`), whose normalised inputs are Arrow
    text columns with a value per group (``texts``), and the frame's keys by group
    (``frame``, the plan's :class:`~claynb.pipeline._keys.FrameKeys`: shared, not one per
    item). An item's key and inputs dict are made when they are asked for (a run's when
    it is sent: :meth:`keys_of`, :meth:`inputs`), not held per row from planning to the
    merge: at 200,000 rows a dict and a :class:`WorkItem` per row, with the inputs as
    Python text, were about 60 MB. Read as a sequence, it is :class:`WorkItem` s (the
    queue and event tiers take it so), made a chunk at a time."""

    __slots__ = ("groups", "texts", "frame")

    def __init__(self, groups: np.ndarray, texts: Mapping[str, pa.Array], frame: FrameKeys) -> None:
        self.groups = np.asarray(groups, dtype=np.int64)
        if len(self.groups) and self.groups.min() < 0:
            raise ValueError("a work item is a group of the frame: a key of no group was asked for")
        self.texts = dict(texts)
        self.frame = frame

    def __len__(self) -> int:
        return len(self.groups)

    @overload
    def __getitem__(self, at: int) -> WorkItem: ...

    @overload
    def __getitem__(self, at: slice) -> WorkItems: ...

    def __getitem__(self, at: int | slice) -> WorkItem | WorkItems:
        if isinstance(at, slice):
            return WorkItems(self.groups[at], self.texts, self.frame)
        groups = self.groups[[at]]
        return WorkItem(self.keys_of(groups)[0], self.inputs(groups)[0])

    def __iter__(self) -> Iterator[WorkItem]:
        for lo in range(0, len(self), _ITEMS_CHUNK):
            chunk = self[lo : lo + _ITEMS_CHUNK]
            yield from map(WorkItem, chunk.keys, chunk.inputs())

    @property
    def keys(self) -> list[str]:
        """Every item's key, in order (a new list each time: the frame holds the keys)."""
        return self.frame.of(self.groups)

    def keys_of(self, groups: np.ndarray) -> list[str]:
        """The keys of these groups (groups of these items), in their order."""
        return self.frame.of(groups)

    def inputs(self, groups: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The inputs of these groups (every item's when None), each a dict: input name
        -> normalised text or None."""
        groups = self.groups if groups is None else groups
        if not self.texts:
            return [{} for _ in range(len(groups))]
        index = pa.array(groups)
        columns = {name: text.take(index).to_pylist() for name, text in self.texts.items()}
        names = list(columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    def groups_of(self, keys: Sequence[str]) -> np.ndarray:
        """The group of each of ``keys`` (-1 for a key of no group of this frame)."""
        return self.frame.groups_of(keys)

    def mask(self) -> np.ndarray:
        """A bool per group of the frame: True for the groups of these items."""
        mine = np.zeros(len(self.frame), dtype=bool)
        mine[self.groups] = True
        return mine


#: Items :meth:`WorkItems.__iter__` makes inputs for at once.
_ITEMS_CHUNK = 4096


@dataclass
class ItemResult:
    """What became of one work item. ``cost`` is what Clay charged for it, as far as
    ``cost_source`` can say (None: nothing was sent for it, so nothing was charged)."""

    key: str
    status: Status
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cost: Cost = Cost()
    attempts: int = 1
    run_id: str | None = None
    cost_source: CostSource | None = None


#: Arrow types a field keeps as a column: what pandas reads back as the same values.
_FLAT = (pa.types.is_string, pa.types.is_large_string, pa.types.is_int64, pa.types.is_float64)


@dataclass(frozen=True)
class Fields:
    """The answer fields of some items (``rows`` of them), in order.

    As columns (``table``: an Arrow table, a column per field, no Python object per item)
    where every field is flat (text, integers, floats, booleans, or nothing); otherwise
    as ``dicts`` (one per item, or None), exactly as Clay's answers parsed.
    """

    rows: int
    table: pa.Table | None = None
    dicts: list[dict[str, Any] | None] | None = None

    @staticmethod
    def flat(kind: pa.DataType) -> bool:
        return pa.types.is_null(kind) or pa.types.is_boolean(kind) or any(f(kind) for f in _FLAT)

    @classmethod
    def of_dicts(cls, dicts: Sequence[dict[str, Any] | None]) -> Fields:
        return cls(len(dicts), None, [d or None for d in dicts])

    def names(self) -> list[str]:
        """Field names, in order of first sight."""
        if self.table is not None:
            return list(self.table.column_names)
        return list(dict.fromkeys(chain.from_iterable(d for d in self.dicts or () if d)))

    def only(self, rows: np.ndarray) -> Fields:
        """The rows marked True."""
        if rows.all():
            return self
        kept = int(rows.sum())
        if self.dicts is not None:
            return Fields.of_dicts([d for d, keep in zip(self.dicts, rows, strict=True) if keep])
        table = None if self.table is None else self.table.filter(pa.array(rows))
        return Fields(kept, table)

    def wide(self) -> Fields:
        """These fields with their text as ``large_string`` (64-bit offsets): what pandas'
        Arrow-backed text holds, so the merge hands it over as it is. The characters are
        not copied, only the offsets; done once the answers are in, not as runs land (at
        200,000 rows, 4.8 MB more held through the engine)."""
        if self.table is None:
            return self
        schema = pa.schema(
            [
                (f.name, pa.large_string() if pa.types.is_string(f.type) else f.type)
                for f in self.table.schema
            ]
        )
        return self if schema == self.table.schema else Fields(self.rows, self.table.cast(schema))

    def first_seen(self, groups: np.ndarray) -> dict[str, tuple[int, int]]:
        """Per field, the first of ``groups`` (this block's slots) whose answer holds it,
        and the field's place there."""
        seen: dict[str, tuple[int, int]] = {}
        if self.dicts is not None:
            for g, d in zip(groups.tolist(), self.dicts, strict=True):
                for place, name in enumerate(d or ()):
                    seen[name] = min(seen.get(name, (g, place)), (g, place))
            return seen
        table = self.table
        lowest = int(groups.min()) if len(groups) else 0
        for place, name in enumerate(table.column_names if table is not None else ()):
            column = table.column(name)  # type: ignore[union-attr]
            if 0 < column.null_count < len(column):  # else every answer holds it, or none
                held = groups[column.is_valid().to_numpy(zero_copy_only=False)]
                seen[name] = (int(held.min()), place)
            else:
                seen[name] = (lowest, place)
        return seen

    def without(self, name: str) -> Fields:
        """These fields but ``name``, when held as columns (its buffers let go); dicts as
        they are."""
        if self.table is None or name not in self.table.column_names:
            return self
        return Fields(self.rows, self.table.drop_columns([name]))

    def column(self, name: str) -> pa.ChunkedArray | list[Any]:
        """One field's values (None or null where an item has none): an Arrow array when
        held as columns, else a list."""
        if self.dicts is not None:
            return [d.get(name) if d else None for d in self.dicts]
        if self.table is not None and name in self.table.column_names:
            return self.table.column(name)
        return pa.chunked_array([pa.nulls(self.rows)])


def fields_of(dicts: Sequence[dict[str, Any] | None]) -> Fields:
    """Answers' fields as columns when Arrow holds every one of them exactly (flat values,
    one type per field, integers and floats read as floats as pandas reads them), else as
    the dicts themselves."""
    names = list(dict.fromkeys(chain.from_iterable(d for d in dicts if d)))
    if not names:
        return Fields(len(dicts))
    try:
        table = pa.table({n: pa.array([d.get(n) if d else None for d in dicts]) for n in names})
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return Fields.of_dicts(dicts)
    if not all(Fields.flat(t) for t in table.schema.types):
        return Fields.of_dicts(dicts)
    return Fields(len(dicts), table)


class Landed:
    """Results as a backend hands them back, as columns: a few arrays and one
    :class:`Fields` block per run, instead of an :class:`ItemResult` and a dict per item
    held until the merge (a 200,000-row call's answers would be most of its memory).

    A result's status and cost source are a byte each (their place in :data:`STATUSES` and
    :data:`COST_SOURCES`; -1: no source), its error is kept only where there is one (most
    rows have none): a list of Python text per row held for the whole call was about 5 MB
    at 200,000 rows. A result is held by its group of the frame (``groups``; -1 for a key
    of no group here), not its key: the direct engine knows each run's groups; the
    results other tiers hand back are looked up in ``frame`` a list at a time. (Their
    keys as ``str`` were 16.8 MB at 200,000 rows, from the engine to the finish.)

    Each run's fields land as a block, which names its rows (``spans``: ranges of rows,
    ``[start, stop)`` each); every :data:`_COMPACT` blocks, the new ones are joined
    (:meth:`compact`): a call of 2,000 runs holds about 30 tables, not 2,000 tables with
    their own arrays, buffers and schema each. They are joined in their groups' order:
    runs are sent in group order but land out of it (8 at once, retries late), and where
    the answers lie in the frame's order the merge makes them the output's columns
    without a copy (:func:`claynb.pipeline._merge.merge`).
    """

    def __init__(self, frame: FrameKeys | None = None) -> None:
        self.frame = frame
        self.groups = array("q")
        self.status = array("b")
        self.errors: dict[int, str] = {}  # row -> its error, for the rows that have one
        self.actions = array("d")
        self.data_credits = array("d")
        self.source = array("b")
        self.blocks: list[tuple[np.ndarray, Fields]] = []  # (spans of rows, their fields)
        self._compact_from = 0  # the first block not joined yet

    def __len__(self) -> int:
        return len(self.groups)

    def add(self, results: Iterable[ItemResult], groups: np.ndarray | None = None) -> Landed:
        """Take these results in (a run's, or a whole tier's); their dicts become columns.
        ``groups[i]`` is ``results[i]``'s group, when the caller knows it; else its key is
        looked up in :attr:`frame` (-1 with no frame)."""
        kept = [(i, r) for i, r in enumerate(results) if r.status in STATUSES]
        results = [r for _, r in kept]
        base = len(self.groups)
        if groups is None:
            keys = [r.key for r in results]
            at = self.frame.groups_of(keys) if self.frame else np.full(len(keys), -1)
        else:
            at = np.asarray(groups, dtype=np.int64)
            at = at if len(kept) == len(at) else at[[i for i, _ in kept]]
        self.groups.frombytes(at.astype(np.int64).tobytes())
        self.status.extend(_STATUS_CODE[r.status] for r in results)
        self.errors.update(
            (base + i, r.error) for i, r in enumerate(results) if r.error is not None
        )
        self.actions.extend(r.cost.actions for r in results)
        self.data_credits.extend(r.cost.data_credits for r in results)
        self.source.extend(_SOURCE_CODE[r.cost_source] for r in results)
        if any(r.result for r in results):
            spans = np.array([[base, base + len(results)]], dtype=np.int64)
            self.blocks.append((spans, fields_of([r.result for r in results])))
            if len(self.blocks) - self._compact_from >= _COMPACT:
                self.compact(hold=True)
        return self

    def extend(self, other: Landed | Iterable[ItemResult]) -> Landed:
        """Another backend call's results: a :class:`Landed`, or ItemResults (the queue and
        event tiers hand back a list)."""
        if not isinstance(other, Landed):
            return self.add(other)
        self.compact()  # the other's blocks land after these: they are not joined with them
        base = len(self.groups)
        self.blocks += [(spans + base, fields) for spans, fields in other.blocks]
        self._compact_from += other._compact_from
        self.groups.extend(other.groups)
        self.status.extend(other.status)
        self.errors.update((base + row, error) for row, error in other.errors.items())
        self.actions.extend(other.actions)
        self.data_credits.extend(other.data_credits)
        self.source.extend(other.source)
        return self

    def compact(self, hold: bool = False) -> None:
        """Join the blocks landed since the last join (:func:`_compacted`), in the order of
        their groups unless a group is in two of them (then as they landed: a later row
        wins). ``hold``: keep apart, for the next join, the blocks after the first gap in
        the groups (runs sent before them are still in flight), when at least half of the
        blocks come before it; so a joined block rarely misses a run in its middle."""
        pending = self.blocks[self._compact_from :]
        ordered, gapless = _group_order(pending, np.frombuffer(self.groups, dtype=np.int64))
        kept = gapless if hold and 2 * gapless >= len(ordered) else len(ordered)
        joined = _compacted(ordered[:kept])
        self.blocks[self._compact_from :] = joined + ordered[kept:]
        self._compact_from += len(joined)

    def hand_over(self) -> list[tuple[np.ndarray, Fields]]:
        """Every block, joined (:meth:`compact`), no longer held here: the caller lets go
        of each once it is done with it."""
        self.compact()
        blocks, self.blocks, self._compact_from = self.blocks, [], 0
        return blocks

    def clear(self) -> None:
        """Let go of every result (they are in the call's :class:`Answers` by now), so
        what they held serves the output frame."""
        self.frame, self.errors, self.blocks, self._compact_from = None, {}, [], 0
        for column in (self.groups, self.status, self.actions, self.data_credits, self.source):
            del column[:]


#: Blocks :class:`Landed` lets land before it joins them: 64 runs of 100 rows, a table
#: of 6,400 rows each (the join's copy is short-lived and small).
_COMPACT = 64


def _spanned(spans: np.ndarray) -> np.ndarray:
    """The rows of these spans (``[start, stop)`` each), in order."""
    if len(spans) == 1:
        return np.arange(spans[0, 0], spans[0, 1], dtype=np.int64)
    return np.concatenate([np.arange(lo, hi, dtype=np.int64) for lo, hi in spans.tolist()])


def _group_order(
    blocks: list[tuple[np.ndarray, Fields]], groups: np.ndarray
) -> tuple[list[tuple[np.ndarray, Fields]], int]:
    """These blocks (spans, fields) by their lowest group (``groups``: each row's), and
    how many of them come before the first gap (a block whose lowest group is not one
    past the highest of the block before). As they are (and no gap) when some row has no
    group or a group is in two rows: which row is later decides which answer wins."""
    held = [groups[_spanned(spans)] for spans, _ in blocks]
    every = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
    if not len(every) or every.min() < 0 or len(np.unique(every)) < len(every):
        return blocks, len(blocks)
    order = sorted(range(len(blocks)), key=lambda b: int(held[b].min()))
    lows = np.array([held[b].min() for b in order])
    highs = np.array([held[b].max() for b in order])
    gaps = np.flatnonzero(lows[1:] != highs[:-1] + 1)
    return [blocks[b] for b in order], int(gaps[0]) + 1 if len(gaps) else len(blocks)


def _compacted(blocks: Sequence[tuple[np.ndarray, Fields]]) -> list[tuple[np.ndarray, Fields]]:
    """These blocks (spans, fields), each stretch of them that are Arrow tables of the
    same fields, in the same order, joined into one table of one chunk (their spans
    joined in the same order). A field null in a whole block takes the stretch's type
    (the same values); blocks of dicts and a field of two types end a stretch, so every
    row keeps its values."""
    joined: list[tuple[np.ndarray, Fields]] = []
    stretch: list[tuple[np.ndarray, Fields]] = []
    kinds: list[pa.DataType] = []
    for spans, fields in blocks:
        table = fields.table
        if stretch and not _follows(stretch[-1][1], table, kinds):
            joined.append(_joined(stretch, kinds))
            stretch = []
        if not stretch:
            kinds = list(table.schema.types) if table is not None else []
        stretch.append((spans, fields))
    if stretch:
        joined.append(_joined(stretch, kinds))
    return joined


def _follows(fields: Fields, table: pa.Table | None, kinds: list[pa.DataType]) -> bool:
    """Whether a block holding ``table`` joins the stretch ending in ``fields``, whose
    fields are of ``kinds`` (null: no type seen yet): updates ``kinds`` if so."""
    if table is None or fields.table is None:
        return False
    if table.column_names != fields.table.column_names:
        return False
    types = table.schema.types
    seen = [t if pa.types.is_null(k) else k for k, t in zip(kinds, types, strict=True)]
    if any(not (pa.types.is_null(t) or t == s) for t, s in zip(types, seen, strict=True)):
        return False
    kinds[:] = seen
    return True


def _joined(
    stretch: list[tuple[np.ndarray, Fields]], kinds: list[pa.DataType]
) -> tuple[np.ndarray, Fields]:
    """A stretch of blocks (:func:`_compacted`) as one."""
    if len(stretch) == 1:
        return stretch[0]
    first = stretch[0][1].table
    assert first is not None  # a stretch of more than one block is of tables
    schema = pa.schema(list(zip(first.column_names, kinds, strict=True)))
    tables = [f.table for _, f in stretch if f.table is not None]
    # joined as they are (a field null in a whole block takes the others' type), then cast
    # once: casting every block first was about 0.1 CPU-s of a 2,000-run call
    table = pa.concat_tables(tables, promote_options="default").combine_chunks().cast(schema)
    spans = np.concatenate([spans for spans, _ in stretch])
    return spans, Fields(table.num_rows, table)


#: Every cost source, in order: :attr:`Landed.source` holds a result's place here.
COST_SOURCES = tuple(CostSource)
_STATUS_CODE = {status: code for code, status in enumerate(STATUSES)}
_SOURCE_CODE: dict[CostSource | None, int] = {
    None: -1,
    **{source: code for code, source in enumerate(COST_SOURCES)},
}
#: A code of :attr:`Landed.status` or :attr:`Landed.source` -> its text (-1: None, at the end).
_STATUS_TEXT = np.array([s.value for s in STATUSES], dtype=object)
_SOURCE_TEXT = np.array([s.value for s in COST_SOURCES] + [None], dtype=object)


class Answers:
    """What became of each group of a frame's rows (one slot per group), as columns.

    A frame answered from the cache fills these with a few array assignments rather than
    an :class:`ItemResult` per row; :func:`claynb.pipeline._merge.merge` fans them out to
    rows. A slot whose ``status`` is None is not answered yet. The answers' fields come in
    blocks (:class:`Fields` for some groups: the cache's answers as one block, results
    as they come back as others); a later block answers a group over an earlier one.
    """

    def __init__(self, groups: int) -> None:
        self.status = np.full(groups, None, dtype=object)
        self.error = np.full(groups, None, dtype=object)
        self.actions = np.zeros(groups)
        self.data_credits = np.zeros(groups)
        self.source = np.full(groups, None, dtype=object)  # CostSource's text, or None
        self.blocks: list[tuple[np.ndarray, Fields]] = []

    def __len__(self) -> int:
        return len(self.status)

    def has(self, group: int) -> bool:
        return self.status[group] is not None

    def count(self, status: Status) -> int:
        return int(np.count_nonzero(self.status == Status(status).value))

    def put(self, groups: Sequence[int], results: Sequence[ItemResult]) -> None:
        """Answer ``groups[i]`` with ``results[i]`` (taken into columns as :class:`Landed`
        takes a run's results)."""
        self.put_landed(np.asarray(groups, dtype=np.int64), Landed().add(results))

    def put_landed(self, groups: np.ndarray, landed: Landed) -> None:
        """Answer ``groups[i]`` with ``landed``'s row ``i`` (a later row over an earlier; a
        group of -1 is a row of no group here, left out). ``landed``'s blocks are moved
        here (:meth:`Landed.hand_over`), their text widened block by block
        (:meth:`Fields.wide`: what a block held before is let go of as the next is
        widened)."""
        blocks = landed.hand_over()
        blocks.reverse()
        at = np.asarray(groups, dtype=np.int64)
        mine = at >= 0
        pick = slice(None) if mine.all() else mine  # every row mine: views, not copies
        to = at[pick]
        self.status[to] = _STATUS_TEXT[np.frombuffer(landed.status, dtype=np.int8)[pick]]
        self.error[to] = None
        if landed.errors:
            rows = np.fromiter(landed.errors, dtype=np.int64, count=len(landed.errors))
            last = np.full(len(self), -1, dtype=np.int64)
            last[to] = np.flatnonzero(mine)  # the row that answers each group: its last
            kept = mine[rows] & (last[np.where(mine[rows], at[rows], 0)] == rows)
            errors = np.array(list(landed.errors.values()), dtype=object)
            self.error[at[rows[kept]]] = errors[kept]
        self.actions[to] = np.frombuffer(landed.actions, dtype=np.float64)[pick]
        self.data_credits[to] = np.frombuffer(landed.data_credits, dtype=np.float64)[pick]
        self.source[to] = _SOURCE_TEXT[np.frombuffer(landed.source, dtype=np.int8)[pick]]
        while blocks:
            spans, fields = blocks.pop()
            rows = _spanned(spans)
            held = mine[rows]
            self.blocks.append((at[rows[held]], fields.only(held).wide()))

    def put_cached(self, groups: np.ndarray, fields: Fields | None) -> None:
        """Answer ``groups`` from the cache: ``cached``, at no cost, with these fields."""
        at = np.asarray(groups, dtype=np.int64)
        self.status[at] = Status.CACHED.value
        self.error[at] = None
        self.actions[at] = 0.0
        self.data_credits[at] = 0.0
        self.source[at] = None
        if fields is not None and len(at):
            self.blocks.append((at, fields))

    def let_go(self, name: str) -> None:
        """Let go of one field in every block held as columns (the merge has made it a
        column of the output): its memory serves the next, unless the output holds those
        buffers as they are (Arrow counts their users: what it shares stays alive)."""
        self.blocks = [(groups, fields.without(name)) for groups, fields in self.blocks]

    def release(self) -> None:
        """Let go of every answer's fields (the merge has taken them out to the rows): their
        memory goes back to Arrow's pool, for the output's other columns (but the buffers
        the output shares)."""
        self.blocks = []

    def field_names(self) -> list[str]:
        """Every field some answer holds, in order of first sight: by group, then by its
        place in that group's answer."""
        first: dict[str, tuple[int, int]] = {}
        for groups, fields in self.blocks:
            for name, seen in fields.first_seen(groups).items():
                first[name] = min(first.get(name, seen), seen)
        return sorted(first, key=first.__getitem__)


class BudgetGuard(Protocol):
    """Reserves worst-case cost before work is sent and settles it to the actual cost after.

    Implementations must be atomic: many threads (direct tier) or processes (queue and
    event tiers, through Redis) share one guard and the cap is never crossed by one unit.
    """

    def reserve(self, cost: Cost) -> bool:
        """Hold ``cost`` against the cap; False (and nothing held) when it would cross it."""
        ...

    def settle(self, reserved: Cost, actual: Cost, source: CostSource | None = None) -> None:
        """Replace a reservation by what was actually charged (never more than reserved);
        ``source`` says whether that figure was metered or estimated."""
        ...

    def release(self, reserved: Cost) -> None:
        """Give a reservation back unused (the work was never sent)."""
        ...
