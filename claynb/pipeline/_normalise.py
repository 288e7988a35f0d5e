"""From a DataFrame to the unique work it stands for, and from Clay's answers to results.

Clay charges per row it enriches, so the same person written two ways (``" Ada@X.com"``
and ``"ada@x.com"``) must be sent once. Inputs are normalised first: trimmed; e-mails and
domains lower-cased; domains stripped of scheme, ``www.``, port and path; names with their
inner whitespace collapsed. Rows are then grouped by their normalised inputs (vectorised:
each column is factorised, only its distinct values are normalised), and every distinct
group is validated once with :func:`claynb._routines.validate_inputs`. A group that fails
is ``invalid_input`` with the reason and is never sent.

Pure functions only: no I/O here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from claynb._routines import Cost, Routine, validate_inputs
from claynb.pipeline._work import (
    ENRICHED,
    FAILED,
    NO_MATCH,
    OVER_BUDGET,
    ItemResult,
    item_key,
)
from claynb.wire._results import COST_KEY, PROVIDER_KEY

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
    """The normalising function for a routine input, chosen by what its name says it is."""
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
    clean = {name: normalise_value(name, inputs.get(name)) for name in routine.inputs}
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
    """A frame reduced to its unique work.

    ``codes[i]`` is the group of row ``i``; ``inputs[g]``, ``keys[g]`` and ``reasons[g]``
    describe group ``g`` (``keys[g]`` is None and ``reasons[g]`` says why when the group
    is invalid); ``first[i]`` is True for the first row of each group, which carries the
    group's cost.
    """

    routine: Routine
    codes: np.ndarray
    inputs: list[dict[str, Any]]
    keys: list[str | None]
    reasons: list[str | None]
    first: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.codes)

    @property
    def valid_groups(self) -> list[int]:
        return [g for g, key in enumerate(self.keys) if key is not None]


def _normalised_column(name: str, column: pd.Series) -> np.ndarray:
    """The column's values normalised, as an object array (None for missing)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    clean = np.empty(len(uniques) + 1, dtype=object)
    clean[:-1] = [normalise_value(name, v) for v in uniques]
    clean[-1] = None  # code -1 (NA) indexes the last slot
    return clean[codes]


def _group(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by their tuple of values: (row -> group, a row index of each group)."""
    combined: np.ndarray | None = None
    for values in columns:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        codes = codes.astype(np.int64)
        combined = codes if combined is None else combined * (len(uniques) + 1) + codes
    assert combined is not None
    groups, _ = pd.factorize(combined)
    # factorize numbers groups in order of first appearance, so this is sorted by group.
    _, first_rows = np.unique(groups, return_index=True)
    return groups.astype(np.int64), first_rows.astype(np.int64)


def prepare(df: pd.DataFrame, routine: Routine, inputs: Mapping[str, Any] | None) -> Prepared:
    """Normalise, de-duplicate and validate the frame's inputs for ``routine``."""
    columns = resolve_columns(df, routine, inputs)
    names = list(routine.inputs)
    values = [_normalised_column(name, df[columns[name]]) for name in names]
    codes, first_rows = _group(values)
    group_inputs = [{name: values[j][row] for j, name in enumerate(names)} for row in first_rows]
    reasons = [validate_inputs(routine, item) for item in group_inputs]
    keys = [
        None if reason else item_key(routine.id, item)
        for item, reason in zip(group_inputs, reasons, strict=True)
    ]
    first = np.zeros(len(codes), dtype=bool)
    first[first_rows] = True
    return Prepared(routine, codes, group_inputs, keys, reasons, first)


def price_item(routine: Routine, matched: bool, provider: str | None) -> Cost:
    """What an item probably cost when Clay does not say (real Clay reports no per-item cost).

    A hit by a named provider costs that step plus the misses charged before it; a hit
    with no provider named costs the routine's expected cost given a match; a miss costs
    only the providers that charge on a miss.
    """
    misses = [p for p in routine.providers if p.charge_on_miss]
    if not matched:
        credits = sum(p.data_credits for p in misses)
        return Cost(routine.actions_per_hit if credits else 0.0, credits)
    for i, p in enumerate(routine.providers):
        if p.name == provider:
            before = sum(q.data_credits for q in routine.providers[:i] if q.charge_on_miss)
            return Cost(routine.actions_per_hit, p.data_credits + before)
    rate = routine.match_rate()
    expected = routine.expected_cost()
    return Cost(routine.actions_per_hit, expected.data_credits / rate if rate else 0.0)


_ZERO = Cost()


@functools.lru_cache(maxsize=1024)
def _interned(actions: float, data_credits: float) -> Cost:
    return Cost(actions, data_credits)


def _shared(cost: Cost) -> Cost:
    """One Cost object per distinct amount: 200,000 rows share a handful of them."""
    return _interned(cost.actions, cost.data_credits)


def _cost_from(raw: Any) -> Cost | None:
    if isinstance(raw, Cost):
        return raw
    if isinstance(raw, Mapping):
        return Cost(float(raw.get("actions", 0.0)), float(raw.get("data_credits", 0.0)))
    return None


def _not_run(error: str) -> bool:
    """Clay stops at zero credits: items it did not start say so, and were not charged."""
    text = error.lower()
    return "credits exhausted" in text or "not run" in text


def item_result(
    routine: Routine,
    key: str,
    *,
    status: str,
    result: Mapping[str, Any] | None,
    error: str | None = None,
    cost: Any = None,
    provider: str | None = None,
    run_id: str | None = None,
    attempts: int = 1,
) -> ItemResult:
    """One item of a finished run as an :class:`ItemResult`.

    ``status`` is Clay's item status: "complete" is enriched when a provider hit or any
    result field has a value, and no_match otherwise; "failed" is failed, or over_budget
    when Clay did not run it because the credits ran out.
    """
    data = dict(result) if result else {}
    raw_cost, raw_provider = data.pop(COST_KEY, None), data.pop(PROVIDER_KEY, None)
    given = _cost_from(cost if cost is not None else raw_cost)
    provider = provider or raw_provider
    if status == "failed":
        message = str(error or "failed")
        final = OVER_BUDGET if _not_run(message) else FAILED
        return ItemResult(key, final, {}, f"Clay: {message}", given or _ZERO, attempts, run_id)
    # A hit is any value returned (Clay may return fields the catalogue does not list).
    matched = provider is not None
    if not matched:
        for value in data.values():
            if value is not None and value != "":
                matched = True
                break
    if given is None:
        given = price_item(routine, matched, provider)
    return ItemResult(
        key, ENRICHED if matched else NO_MATCH, data, None, _shared(given), attempts, run_id
    )


def result_from_clay(
    routine: Routine,
    key: str,
    item: Mapping[str, Any],
    *,
    run_id: str | None = None,
    attempts: int = 1,
) -> ItemResult:
    """A raw result item ``{"id", "status", "result" | "error"}`` as an :class:`ItemResult`."""
    error = item.get("error")
    message = error.get("message") if isinstance(error, Mapping) else error
    return item_result(
        routine,
        key,
        status=str(item.get("status", "")),
        result=item.get("result"),
        error=message,
        run_id=run_id,
        attempts=attempts,
    )
