"""What an enrich call will do, worked out before anything is sent.

:func:`resolve_routine` finds the routine (a routine catalogue file, the emulator's demo
catalogue, or a workspace routine named by the call's inputs);
:func:`plan_work` answers every group of rows that needs no request (invalid inputs,
cached answers, rows on the dead-letter list, rows whose earlier send has an unknown
outcome) and lists the items that do. ``enrich`` sends that list; ``estimate`` prices it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from claynb._catalogue import catalogue_paths, load_catalogue
from claynb._routines import DEFAULT_ROUTINES, Cost, Routine, workspace_routine
from claynb.pipeline._cache import Hits, max_age_seconds
from claynb.pipeline._journal import Journal
from claynb.pipeline._keys import FrameKeys, KeyList
from claynb.pipeline._normalise import Prepared
from claynb.pipeline._work import Answers, ItemResult, Status, WorkItems

_T = TypeVar("_T")


def catalogue_of(client: Any) -> Mapping[str, Routine]:
    """The routines a client knows: its emulator's catalogue (``client.emulator``, set by
    :func:`claynb.connect`, or an :class:`claynb.Emulator` itself), else the default one."""
    for owner in (client, getattr(client, "emulator", None)):
        routines = getattr(owner, "routines", None)
        if isinstance(routines, Mapping) and routines:
            return routines
    return DEFAULT_ROUTINES


def resolve_routine(
    routine: str | Routine,
    client: Any = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    cost: Cost | Mapping[str, Any] | None = None,
    home: Any = None,
) -> Routine:
    """The routine to run: as given; else by id in a routine catalogue file
    (``claynb.toml``), then in the client's (the emulator's demo catalogue); else a routine of
    the workspace whose inputs are the keys of ``inputs`` and whose fields are whatever
    comes back. ``cost`` declares its worst case per row, over any catalogue's."""
    if isinstance(routine, Routine):
        return routine.priced_at(cost)
    if not isinstance(routine, str) or not routine:
        raise ValueError(f"routine must be a routine id (a string), not {routine!r}")
    declared = load_catalogue(home)
    catalogue = catalogue_of(client)
    if routine in declared:
        found = declared[routine]
    elif routine in catalogue:
        found = catalogue[routine]
    elif isinstance(inputs, Mapping) and inputs:
        found = workspace_routine(routine, tuple(str(name) for name in inputs))
    else:
        files = ", ".join(str(p) for p in catalogue_paths(home)) or "no claynb.toml found"
        raise ValueError(
            f"unknown routine {routine!r}: it is in no routine catalogue ({files}; demo routines: "
            f"{', '.join(sorted(catalogue))}): name its inputs, e.g. "
            f"inputs={{'email': 'Email'}}, and declare what a row can cost with "
            "cost=claynb.Cost(actions=..., data_credits=...)"
        )
    return found.priced_at(cost)


@dataclass
class WorkPlan:
    """What a call will do: answers already known per group (:class:`Answers`, columns
    with a slot per group), and the items to send (:class:`WorkItems`, columns too).
    ``keys`` are the frame's keys by group (the items' own: one, shared by every
    :class:`WorkItems` made from this plan)."""

    prepared: Prepared
    answers: Answers
    to_send: WorkItems

    @property
    def keys(self) -> FrameKeys:
        return self.to_send.frame

    def count(self, status: Status) -> int:
        return self.answers.count(status)

    def groups(self, keys: Sequence[str]) -> np.ndarray:
        """The group of each of ``keys`` (-1 for a key of no group of this frame): a list
        of this frame's keys knows its groups; others are looked up."""
        if isinstance(keys, KeyList) and keys.frame is self.keys:
            return keys.groups
        return self.keys.groups_of(keys)

    def unanswered(self, groups: np.ndarray) -> np.ndarray:
        """Those of ``groups`` that have no answer yet (picked by a mask)."""
        return groups[pd.isna(self.answers.status[groups])]

    def items(self, keys: Sequence[str]) -> WorkItems:
        """Work items for these keys, their inputs as :func:`prepare` normalised them."""
        return self.items_of(self.groups(keys))

    def items_of(self, groups: np.ndarray) -> WorkItems:
        """Work items for these groups."""
        return WorkItems(groups, self.prepared.texts, self.keys)

    def answer(self, keys: list[str], status: Status, errors: list[str]) -> None:
        """Answer these keys' groups without a request (a failure or an unknown outcome)."""
        if not keys:
            return
        self.answers.put(
            self.groups(keys).tolist(),
            [
                ItemResult(key, status, error=error, attempts=0)
                for key, error in zip(keys, errors, strict=True)
            ],
        )

    def answer_cached(self, groups: np.ndarray, hits: Hits) -> None:
        """Answer the cached ones of the keys looked up (``groups``: theirs, in the same
        order): ``cached``, at no cost."""
        self.answers.put_cached(groups[hits.at], hits.fields)


def plan_work(
    prepared: Prepared,
    journal: Journal,
    *,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    read_answers: bool = True,
) -> WorkPlan:
    """Answer every group that needs no request; list the items that do. Sends nothing.

    ``read_answers=False`` (``estimate``) notes which groups are cached without reading
    what their answers hold (their fields are None). The groups are known here, so no
    key is looked up: the cache's hits come back as positions in the list asked for."""
    routine = prepared.routine
    frame = prepared.keys
    nothing = WorkItems(np.zeros(0, dtype=np.int64), prepared.texts, frame)
    plan = WorkPlan(prepared, Answers(prepared.groups), nothing)
    invalid = [g for g, reason in enumerate(prepared.reasons) if reason is not None]
    plan.answers.put(
        invalid,
        [
            ItemResult(f"invalid:{g}", Status.INVALID_INPUT, error=prepared.reasons[g], attempts=0)
            for g in invalid
        ],
    )
    valid = frame.valid()
    if cache and not refresh:
        hits = journal.cache_hits(
            routine.id,
            frame.listed(valid),  # their text made a chunk at a time, where it is needed
            max_age_s=max_age_seconds(max_age),
            results=read_answers,
        )
        plan.answer_cached(valid, hits)
    _known_unknowns(plan, journal, plan.unanswered(valid), resend_unknown)
    _known_failures(plan, journal, plan.unanswered(valid), retry_failed)
    plan.to_send = plan.items_of(plan.unanswered(valid))
    return plan


def _known_unknowns(plan: WorkPlan, journal: Journal, groups: np.ndarray, resend: bool) -> None:
    """Answer those of ``groups`` whose earlier send has an unknown outcome ``unknown``
    (or forget that outcome, to send them again). The journal's unknown items are read
    whole (few) and found among the groups: no key of the groups is made as text."""
    routine = plan.prepared.routine.id
    journal.recover(routine)
    unknown = _among(plan, groups, journal.unknown_keys(routine))
    if resend:
        journal.forget_unknown(routine, list(unknown))
        return
    plan.answer(
        list(unknown),
        Status.UNKNOWN,
        [
            f"{why}; not re-sent, since Clay may already have charged it: "
            "pass resend_unknown=True to send it again"
            for why in unknown.values()
        ],
    )


def _known_failures(
    plan: WorkPlan, journal: Journal, groups: np.ndarray, retry: bool, since: float = 0.0
) -> None:
    """Answer those of ``groups`` still unanswered that are on the dead-letter list (put
    there at ``since`` or later) ``failed``, unless ``retry``."""
    if retry:
        return
    failures = [f for f in journal.failures(plan.prepared.routine.id) if f.last_at >= since]
    left = _among(plan, plan.unanswered(groups), {f.key: f for f in failures})
    plan.answer(
        list(left),
        Status.FAILED,
        [
            f"failed earlier after {f.attempts} attempt(s): {f.error}; "
            "not re-sent: pass retry_failed=True to send it again"
            for f in left.values()
        ],
    )


def _among(plan: WorkPlan, groups: np.ndarray, by_key: dict[str, _T]) -> dict[str, _T]:
    """Those of ``by_key`` (the state file's, for keys of any frame) whose key is the key
    of one of ``groups``, in their order."""
    if not by_key or not len(groups):
        return {}
    found = plan.groups(list(by_key))
    mine = np.isin(found, groups) & (found >= 0)
    return {
        key: value for (key, value), keep in zip(by_key.items(), mine.tolist(), strict=True) if keep
    }


def answer_landed(plan: WorkPlan, journal: Journal, keys: Sequence[str], since: float) -> WorkItems:
    """Rows another call held (or may have landed) since this call planned at ``since``:
    take what it found, as if it had been known when planning, and list the rest to send.

    An answer fetched since then is ``cached`` (cost 0) whatever ``cache``, ``max_age`` or
    ``refresh`` said: it is as fresh as one this call would fetch. Its failure or unknown
    outcome is final for this call too (``retry_failed`` and ``resend_unknown`` re-send what
    was known before the call, never what another call just paid for).
    """
    routine = plan.prepared.routine.id
    age = max(0.0, time.time() - since)
    groups = plan.groups(keys)
    plan.answer_cached(groups, journal.cache_hits(routine, keys, max_age_s=age))
    rest = plan.unanswered(groups)
    _known_unknowns(plan, journal, rest, False)
    _known_failures(plan, journal, rest, False, since)
    return plan.items_of(plan.unanswered(rest))
