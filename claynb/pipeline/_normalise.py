"""From a DataFrame to the unique work it stands for: normalised, de-duplicated, validated.

Clay charges per row it enriches, so the same person written two ways (``" Ada@X.com"``
and ``"ada@x.com"``) must be sent once. Inputs are normalised first: trimmed; e-mails and
domains lower-cased; domains stripped of scheme, ``www.``, port and path; names with their
inner whitespace collapsed. Rows are then grouped by their normalised inputs, and each
distinct value is checked with the rules of :func:`~claynb._routines.validate_inputs`
input by input. A group that fails is ``invalid_input`` with the first input's reason
and is never sent. The result, :class:`Prepared`, is columns (an array per input, a key
and a reason per group), not a dict per row. (Clay's answers become results in
:mod:`claynb.pipeline._outcome`.)

Every call of ``enrich`` and ``estimate`` pays for this, so it is done a column at a time
(:mod:`claynb.pipeline._text`): Arrow's string kernels normalise printable-ASCII values
a slice of rows at a time into one column, Arrow's hashing or its sort finds the
distinct values and groups (:func:`_numbered`), RE2 checks them, and
:func:`~claynb.pipeline._work.item_digests` builds their keys' JSON by column
concatenation, a chunk of groups at a time. Memory freed here mostly stays resident
(Arrow's pool, pymalloc's arenas), so short-lived copies are kept to a slice or a chunk.
The Python functions below stay the definition: values that are not printable ASCII
go through them (once per distinct value), the values RE2 refuses get their reason from
:func:`claynb._routines.input_problems`, and the tests check the columns against them
row by row.

Pure functions only: no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from claynb._routines import Routine, input_problems, kind_patterns, validate_inputs
from claynb.pipeline._keys import KEY_BYTES, FrameKeys
from claynb.pipeline._text import (
    TEXT,
    as_text,
    joined_or_same,
    may_contain,
    not_printable,
    patch,
    text_bytes,
    through_python,
)
from claynb.pipeline._work import item_digests

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_USERINFO = re.compile(r"^[^/@]*@")
_AFTER_HOST = re.compile(r"[/?#].*$")
_PORT = re.compile(r":\d*$")
_SPACES = re.compile(r"\s+")
_QUERY = re.compile(r"[?#].*$")


def normalise_email(value: str) -> str:
    value = value.strip().lower()
    return value[len("mailto:") :] if value.startswith("mailto:") else value


def normalise_domain(value: str) -> str:
    """``"HTTPS://www.Acme.com/about"`` -> ``"acme.com"``."""
    value = _SCHEME.sub("", value.strip().lower())
    value = _AFTER_HOST.sub("", value)
    value = _PORT.sub("", _USERINFO.sub("", value)).rstrip(".")
    return value[4:] if value.startswith("www.") else value


def normalise_url(value: str) -> str:
    """Profile URLs: lower-cased, without query or fragment."""
    return _QUERY.sub("", value.strip().lower())


def normalise_text(value: str) -> str:
    return _SPACES.sub(" ", value.strip())


def normaliser_for(name: str) -> Any:
    """The normalising function for a routine input, chosen by what its kind says it is (an
    input's kind is its own name unless declared: :meth:`claynb.Routine.kind_of`)."""
    if "email" in name:
        return normalise_email
    if "domain" in name:
        return normalise_domain
    if "url" in name or "linkedin" in name:
        return normalise_url
    return normalise_text


def normalise_value(name: str, value: Any) -> str | None:
    """One input value normalised; ``None`` when it is missing (NA or blank)."""
    if value is None or (
        not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)
    ):
        return None
    text = value if isinstance(value, str) else str(value)
    out = normaliser_for(name)(text)
    return out or None


def normalise_inputs(
    routine: Routine, inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None]:
    """Normalised inputs of one item and why they cannot be sent (``None`` if they can)."""
    clean = {
        name: normalise_value(routine.kind_of(name), inputs.get(name)) for name in routine.inputs
    }
    return clean, validate_inputs(routine, clean)


def resolve_columns(
    df: pd.DataFrame, routine: Routine, inputs: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Routine input -> column, checked; a ValueError naming whatever does not fit."""
    if inputs is None:
        inputs = {name: name for name in routine.inputs if name in df.columns}
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"inputs must map routine inputs to columns, e.g. "
            f"{{{routine.inputs[0]!r}: 'Column'}}; got {type(inputs).__name__}"
        )
    unknown = [name for name in inputs if name not in routine.inputs]
    if unknown:
        raise ValueError(
            f"routine {routine.id!r} has no input {unknown[0]!r}; "
            f"its inputs are {', '.join(routine.inputs)}"
        )
    unmapped = [name for name in routine.inputs if name not in inputs]
    if unmapped:
        raise ValueError(
            f"routine {routine.id!r} needs input {unmapped[0]!r}: map it to a "
            f"column, e.g. inputs={{{unmapped[0]!r}: 'Column'}}"
        )
    for name, column in inputs.items():
        if column not in df.columns:
            shown = ", ".join(map(repr, list(df.columns)[:20]))
            raise ValueError(
                f"column {column!r} (for input {name!r}) is not in the frame; "
                f"its columns are {shown}"
            )
    return dict(inputs)


@dataclass(frozen=True)
class Prepared:
    """A frame reduced to its unique work, as columns.

    ``codes[i]`` is the group of row ``i``; ``texts[name][g]`` (Arrow text),
    ``keys[g]`` and ``reasons[g]`` describe group ``g`` (``keys[g]`` is None and
    ``reasons[g]`` says why when the group is invalid); ``first[i]`` is True for the first
    row of each group, which carries the group's cost. A group's inputs as one dict:
    :meth:`inputs_of`. The keys are held as 16 bytes each
    (:class:`~claynb.pipeline._keys.FrameKeys`), made as text when they are asked for.
    """

    routine: Routine
    codes: np.ndarray
    texts: dict[str, pa.Array]
    keys: FrameKeys
    reasons: list[str | None]
    first: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.codes)

    @property
    def groups(self) -> int:
        return len(self.keys)

    @property
    def valid_groups(self) -> list[int]:
        return self.keys.valid().tolist()

    def inputs_of(self, g: int) -> dict[str, Any]:
        """Group ``g``'s normalised inputs (input name -> text or None). The items a call
        sends take theirs a run at a time (:class:`~claynb.pipeline._work.WorkItems`)."""
        return {name: text[g].as_py() for name, text in self.texts.items()}


@dataclass(frozen=True)
class _Column:
    """One input column, normalised: ``codes[i]`` is row ``i``'s slot in ``distinct``
    (its distinct normalised values, null for missing) and ``problems`` says why the
    slots that are unusable are (the others are fine)."""

    codes: np.ndarray
    distinct: pa.Array
    problems: dict[int, str]


def _normalised_column(routine: Routine, name: str, column: pd.Series) -> _Column:
    """The column normalised, numbered by distinct value (as each first appears, so
    ``distinct`` holds each value's first row) and its distinct values checked."""
    kind = routine.kind_of(name)
    clean = _normalised_text(kind, column)
    codes = _numbered(clean)
    first = _first_of_each_group(codes)
    distinct = clean if first.all() else clean.take(pa.array(np.flatnonzero(first)))
    return _Column(codes, distinct, _problems(kind, name, distinct))


def _numbered(text: pa.Array) -> np.ndarray:
    """Per value, its number among the distinct values (missing ones share one), numbered
    in order of first appearance.

    Arrow finds equal values one of two ways, chosen by how many bytes the distinct
    values hold (estimated from a sample). Its dictionary encoding hashes each value,
    but its hash table and copy of the distinct values peak at 3 to 4 times their bytes
    (29 to 38 MB for 200,000 distinct e-mails, which then stay resident in Arrow's pool).
    Its sort (a dense rank) copies nothing (3 MB for those e-mails) but takes 2 to 3
    times the CPU on values in a random order, and more where they repeat (0.03 s
    against 0.004 for 200,000 rows of 36,000 e-mails). So: hashing for few distinct
    bytes, the sort for many."""
    if _distinct_bytes(text) <= _HASHED_BYTES:
        equal = pc.dictionary_encode(text, null_encoding="encode").indices.to_numpy()
        return np.asarray(equal, dtype=np.int64)  # numbered as they first appear
    ranks = pc.rank(text, tiebreaker="dense").to_numpy()
    if len(ranks) and int(ranks.max()) == len(ranks):  # all distinct: a group per row
        return np.arange(len(ranks), dtype=np.int64)
    return np.asarray(pd.factorize(ranks)[0], dtype=np.int64)


#: Distinct bytes up to which :func:`_numbered` hashes (its peak: about 7 MB).
_HASHED_BYTES = 2_000_000

#: Rows :func:`_distinct_bytes` samples.
_SAMPLE = 8192


def _distinct_bytes(text: pa.Array) -> float:
    """About how many bytes of text the column's distinct values hold: at most the whole
    column's (all it needs to know when that is few), exact for a column of few rows,
    else estimated from a sample of rows (Chao's estimator: the values the sample saw
    once and twice say how many it missed)."""
    rows, total = len(text), text_bytes(text)
    if total <= _HASHED_BYTES:
        return float(total)
    if rows <= _SAMPLE:
        sample = text
    else:  # rows drawn at random (the same every call), none twice
        picked = np.unique(np.random.default_rng(0).integers(0, rows, _SAMPLE))
        sample = text.take(pa.array(picked))
    # Counted by the sort (its kernels are the ones the column will need; the first use
    # of Arrow's hashing costs 2 MB and 5 ms of its own).
    ranks = pc.rank(sample, tiebreaker="dense").to_numpy()
    seen = np.bincount(ranks)[1:]  # how often the sample saw each distinct value
    once, twice = int(np.count_nonzero(seen == 1)), int(np.count_nonzero(seen == 2))
    missed = 0 if len(sample) == rows else once * (once - 1) / (2 * (twice + 1))
    distinct = min(rows, len(seen) + missed)
    lengths = pc.fill_null(pc.binary_length(sample), 0).to_numpy()
    sample_bytes = float(np.sum(lengths / seen[ranks - 1]))  # each distinct value once
    return min(total, distinct * sample_bytes / max(len(seen), 1))


def _normalised_text(kind: str, column: pd.Series) -> pa.Array:
    """The column normalised by Arrow's kernels a slice of rows at a time (Python only for
    values that are not printable ASCII, once per distinct value); null where missing."""
    text, others = as_text(column)
    odd = np.flatnonzero(not_printable(text))
    normalise = normaliser_for(kind)
    clean = joined_or_same(  # a slice at a time: each kernel's temporaries stay small
        (
            _printable_normalised(normalise, text.slice(lo, _ROWS_AT_ONCE))
            for lo in range(0, len(text), _ROWS_AT_ONCE)
        ),
        text,  # already normalised: the column's own text, not a copy
        text_bytes(text),  # normalising printable text never lengthens it
    )
    clean = through_python(clean, odd, text, lambda v: normalise(v) or None)
    if len(others):
        raw = np.asarray(column, dtype=object)[others]
        slots, uniques = pd.factorize(raw, use_na_sentinel=False)
        done = [normalise_value(kind, v) for v in np.asarray(uniques, dtype=object).tolist()]
        clean = patch(clean, others, pa.array(done, type=TEXT).take(pa.array(slots)))
    return clean


#: Rows a column is normalised in at once: Arrow's kernels make a new column per step
#: (trimmed, lower-cased, prefix removed, blanks made null), and Arrow's pool (mimalloc)
#: keeps freed buffers resident: over 200,000 e-mails (9.2 MB of text) normalising the
#: whole column left the RSS 31 MB higher, a slice at a time 16.
_ROWS_AT_ONCE = 16_384


def _printable_normalised(normalise: Any, text: pa.Array) -> pa.Array:
    """``normalise`` (one of the normalisers above) done by Arrow's kernels over a column,
    the same text wherever a value is printable ASCII (elsewhere: nonsense, replaced by
    the caller); an empty result is null, as a missing value."""
    if normalise is normalise_text:
        out = pc.ascii_trim(text, " ")  # the only whitespace in printable ASCII
        if may_contain(out, "  "):
            out = pc.replace_substring_regex(out, " {2,}", " ")
    else:
        out = pc.ascii_lower(pc.ascii_trim(text, " "))
    if normalise is normalise_email:
        out = _without_prefix(out, "mailto:")
    elif normalise is normalise_url:
        out = _without_match(out, _QUERY, "?#")
    elif normalise is normalise_domain:
        for pattern, marks in (
            (_SCHEME, ":"),
            (_AFTER_HOST, "/?#"),
            (_USERINFO, "@"),
            (_PORT, ":"),
        ):
            out = _without_match(out, pattern, marks)
        out = _without_prefix(pc.ascii_rtrim(out, "."), "www.")
    return pc.if_else(pc.equal(pc.binary_length(out), 0), pa.scalar(None, TEXT), out)


def _without_match(text: pa.Array, pattern: re.Pattern[str], marks: str) -> pa.Array:
    """``pattern.sub("", value)`` of each value (RE2 reads these patterns as ``re`` does
    on printable ASCII), skipped when no value holds any of ``marks``, without which the
    pattern cannot match."""
    if not any(may_contain(text, mark) for mark in marks):
        return text
    return pc.replace_substring_regex(text, pattern.pattern, "")


def _without_prefix(text: pa.Array, prefix: str) -> pa.Array:
    starts = pc.starts_with(text, prefix)
    if not pc.any(starts).as_py():
        return text
    return pc.if_else(starts, pc.utf8_slice_codeunits(text, len(prefix)), text)


def _problems(kind: str, name: str, distinct: pa.Array) -> dict[int, str]:
    """Why each unusable distinct value is unusable: :func:`claynb._routines.input_problems`,
    asked only of values Arrow's RE2 refuses (or cannot judge: not printable ASCII), so
    the reasons are the same words."""
    patterns = kind_patterns(kind) or (r"[^ ]",)  # no pattern: only blanks are refused
    ok = pc.is_valid(distinct)
    for pattern in patterns:
        ok = pc.and_(ok, pc.fill_null(pc.match_substring_regex(distinct, pattern), False))
    ask = np.flatnonzero(~ok.to_numpy(zero_copy_only=False) | not_printable(distinct))
    reasons = input_problems(kind, name, distinct.take(pa.array(ask)).to_pylist())
    return {slot: r for slot, r in zip(ask.tolist(), reasons, strict=True) if r is not None}


def _group(columns: Sequence[_Column]) -> np.ndarray:
    """Row -> group: rows whose tuple of normalised values is the same share a group,
    numbered in order of first appearance. Integers only: the columns' slot codes (each
    numbered by first appearance too) are combined one column at a time, renumbered each
    time so they never overflow."""
    combined = columns[0].codes
    for column in columns[1:]:
        combined = pd.factorize(combined * len(column.distinct) + column.codes)[0]
    return np.asarray(combined, dtype=np.int64)


def _first_of_each_group(groups: np.ndarray) -> np.ndarray:
    """True for the first row of each group (groups are numbered as they first appear,
    so a row starts one where its number passes every number before it)."""
    first = np.zeros(len(groups), dtype=bool)
    if len(groups):
        first[0] = True
        first[1:] = groups[1:] > np.maximum.accumulate(groups)[:-1]
    return first


def _reasons(
    columns: Sequence[_Column], slots: Sequence[np.ndarray], groups: int
) -> list[str | None]:
    """Per group, the first input's reason (in the routine's order), as
    :func:`claynb._routines.validate_inputs` gives it."""
    reasons: list[str | None] = [None] * groups
    for column, at in reversed(list(zip(columns, slots, strict=True))):
        if not column.problems:
            continue
        bad = np.flatnonzero(np.isin(at, np.fromiter(column.problems, dtype=np.int64)))
        for g, slot in zip(bad.tolist(), at[bad].tolist(), strict=True):
            reasons[g] = column.problems[slot]
    return reasons


def _keys(
    routine_id: str, texts: Mapping[str, pa.Array], reasons: Sequence[str | None]
) -> FrameKeys:
    """Per group, its item key (as its 16 bytes), or none where it has a reason not to be
    sent. The groups that can be sent are picked a chunk at a time (picking them all at
    once copied every input's text)."""
    held = np.fromiter((r is None for r in reasons), bool, len(reasons))
    digests = np.zeros((len(reasons), KEY_BYTES), dtype=np.uint8)
    valid = np.flatnonzero(held)
    for lo in range(0, len(valid), _KEYS_AT_ONCE):
        at = valid[lo : lo + _KEYS_AT_ONCE]
        start, stop = int(at[0]), int(at[-1]) + 1
        chunk = {name: text.slice(start, stop - start) for name, text in texts.items()}
        if len(at) < stop - start:  # some of them cannot be sent: the others picked
            picked = pa.array(at - start)
            chunk = {name: text.take(picked) for name, text in chunk.items()}
        raw = item_digests(routine_id, chunk)
        digests[at] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, KEY_BYTES)
    return FrameKeys(digests, held)


#: Groups :func:`_keys` picks and keys at once (as many as ``item_digests`` hashes at once).
_KEYS_AT_ONCE = 8192


def prepare(df: pd.DataFrame, routine: Routine, inputs: Mapping[str, Any] | None) -> Prepared:
    """Normalise, de-duplicate and validate the frame's inputs for ``routine``."""
    columns = resolve_columns(df, routine, inputs)
    names = list(routine.inputs)
    normalised = [_normalised_column(routine, name, df[columns[name]]) for name in names]
    codes = _group(normalised)
    first = _first_of_each_group(codes)
    first_rows = np.flatnonzero(first)
    slots = [column.codes[first_rows] for column in normalised]
    texts = {
        name: c.distinct if len(normalised) == 1 else c.distinct.take(pa.array(at))
        for name, c, at in zip(names, normalised, slots, strict=True)
    }  # one input: its distinct values are the groups, in the same order
    reasons = _reasons(normalised, slots, len(first_rows))
    keys = _keys(routine.id, texts, reasons)
    return Prepared(routine, codes, texts, keys, reasons, first)
