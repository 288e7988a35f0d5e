"""From a DataFrame to the unique work it stands for: normalised, de-duplicated, validated.

Clay charges per row it enriches, so the same person written two ways (``" Ada@X.com"``
and ``"ada@x.com"``) must be sent once. Inputs are normalised first: trimmed; e-mails and
domains lower-cased; domains stripped of scheme, ``www.``, port and path; names with their
inner whitespace collapsed. Rows are then grouped by their normalised inputs (vectorised:
each column is factorised, only its distinct values are normalised and checked, with
:func:`claynb._routines.input_problem`, the rules of
:func:`~claynb._routines.validate_inputs` input by input). A group that fails is
``invalid_input`` with the first input's reason and is never sent. The result,
:class:`Prepared`, is columns (an array per input, a key and a reason per group), not a
dict per row. (Clay's answers become results in
:mod:`claynb.pipeline._outcome`.)

Pure functions only: no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from claynb._routines import Routine, input_problem, validate_inputs
from claynb.pipeline._work import item_keys

_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_USERINFO = re.compile(r"^[^/@]*@")
_AFTER_HOST = re.compile(r"[/?#].*$")
_PORT = re.compile(r":\d*$")
_SPACES = re.compile(r"\s+")


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
    return re.sub(r"[?#].*$", "", value.strip().lower())


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

    ``codes[i]`` is the group of row ``i``; ``values[name][g]``, ``keys[g]`` and
    ``reasons[g]`` describe group ``g`` (``keys[g]`` is None and ``reasons[g]`` says why
    when the group is invalid); ``first[i]`` is True for the first row of each group,
    which carries the group's cost. A group's inputs as one dict: :meth:`inputs_of`
    (built only for the groups that are sent).
    """

    routine: Routine
    codes: np.ndarray
    values: dict[str, np.ndarray]
    keys: list[str | None]
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
        return [g for g, key in enumerate(self.keys) if key is not None]

    def inputs_of(self, g: int) -> dict[str, Any]:
        """Group ``g``'s normalised inputs (input name -> text or None)."""
        return {name: column[g] for name, column in self.values.items()}


@dataclass(frozen=True)
class _Column:
    """One input column, normalised and checked once per distinct value: ``codes[i]`` is
    row ``i``'s slot in ``clean`` (its normalised value) and ``reasons`` (why it is
    unusable, or None)."""

    codes: np.ndarray
    clean: np.ndarray
    reasons: np.ndarray


def _normalised_column(routine: Routine, name: str, column: pd.Series) -> _Column:
    """The column's distinct values normalised (None for missing) and checked."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    kind = routine.kind_of(name)
    clean = np.empty(len(uniques) + 1, dtype=object)
    # Missing values are factorised out (code -1), so text, the common case, goes straight
    # to its normaliser: once per distinct value, with no per-value NA checks.
    normalise = normaliser_for(kind)
    clean[:-1] = [
        (normalise(v) or None) if type(v) is str else normalise_value(kind, v)
        for v in np.asarray(uniques, dtype=object).tolist()  # not an element-wise __getitem__
    ]
    clean[-1] = None  # code -1 (NA) indexes the last slot
    reasons = np.empty(len(clean), dtype=object)
    reasons[:] = [input_problem(kind, name, v) for v in clean.tolist()]
    return _Column(codes.astype(np.int64), clean, reasons)


def _group(columns: Sequence[_Column]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by their tuple of normalised values: (row -> group, a row index of each
    group). Integers only: each column's slots are mapped to its distinct normalised
    values (two spellings can normalise alike), and the codes combined."""
    combined: np.ndarray | None = None
    for column in columns:
        same, uniques = pd.factorize(column.clean, use_na_sentinel=False)
        codes = same.astype(np.int64)[column.codes]
        combined = codes if combined is None else combined * (len(uniques) + 1) + codes
    assert combined is not None
    groups, _ = pd.factorize(combined)
    # factorize numbers groups in order of first appearance, so this is sorted by group.
    _, first_rows = np.unique(groups, return_index=True)
    return groups.astype(np.int64), first_rows.astype(np.int64)


def _first_reason(per_input: Sequence[np.ndarray], groups: int) -> list[str | None]:
    """Per group, the first input's reason (in the routine's order), as
    :func:`claynb._routines.validate_inputs` gives it."""
    reasons = np.full(groups, None, dtype=object)
    for column in reversed(per_input):
        reasons = np.where(pd.isna(column), reasons, column)
    return list(reasons.tolist())


def prepare(df: pd.DataFrame, routine: Routine, inputs: Mapping[str, Any] | None) -> Prepared:
    """Normalise, de-duplicate and validate the frame's inputs for ``routine``."""
    columns = resolve_columns(df, routine, inputs)
    names = list(routine.inputs)
    normalised = [_normalised_column(routine, name, df[columns[name]]) for name in names]
    codes, first_rows = _group(normalised)
    slots = [column.codes[first_rows] for column in normalised]
    values = {name: c.clean[at] for name, c, at in zip(names, normalised, slots, strict=True)}
    reasons = _first_reason(
        [c.reasons[at] for c, at in zip(normalised, slots, strict=True)], len(first_rows)
    )
    valid = np.flatnonzero(pd.isna(np.asarray(reasons, dtype=object)))
    keys: list[str | None] = [None] * len(first_rows)
    for g, key in zip(
        valid.tolist(), item_keys(routine.id, {n: v[valid] for n, v in values.items()}), strict=True
    ):
        keys[g] = key
    first = np.zeros(len(codes), dtype=bool)
    first[first_rows] = True
    return Prepared(routine, codes, values, keys, reasons, first)
