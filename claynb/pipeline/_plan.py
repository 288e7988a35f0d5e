"""What an enrich call will do, worked out before anything is sent.

:func:`resolve_routine` finds the routine (a routine catalogue file, the emulator's demo
catalogue, or a workspace routine named by the call's inputs);
:func:`plan_work` answers every group of rows that needs no request (invalid inputs,
cached answers, rows on the dead-letter list, rows whose earlier send has an unknown
outcome) and lists the items that do. ``enrich`` sends that list; ``estimate`` prices it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from itertools import compress
from typing import Any

import numpy as np
import pandas as pd

from claynb._catalogue import catalogue_paths, load_catalogue
from claynb._routines import DEFAULT_ROUTINES, Cost, Routine, workspace_routine
from claynb.pipeline._cache import Hits, max_age_seconds
from claynb.pipeline._journal import Journal
from claynb.pipeline._keys import FrameKeys
from claynb.pipeline._normalise import Prepared
from claynb.pipeline._work import Answers, ItemResult, Status, WorkItems


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

    def groups(self, keys: list[str]) -> np.ndarray:
        """The group of each of ``keys`` (-1 for a key of no group of this frame)."""
        return self.keys.groups_of(keys)

    def unanswered(self, groups: np.ndarray) -> np.ndarray:
        """Those of ``groups`` that have no answer yet (picked by a mask)."""
        return groups[pd.isna(self.answers.status[groups])]

    def items(self, keys: list[str]) -> WorkItems:
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
    for lo in range(0, len(valid), _KEYS_AT_ONCE):  # the keys as text a part at a time
        groups = valid[lo : lo + _KEYS_AT_ONCE]
        if cache and not refresh:
            plan.answer_cached(
                groups,
                journal.cache_hits(
                    routine.id,
                    frame.of(groups),
                    max_age_s=max_age_seconds(max_age),
                    results=read_answers,
                ),
            )
        keys = frame.of(plan.unanswered(groups))
        _known_unknowns(plan, journal, keys, resend_unknown)
        _known_failures(plan, journal, keys, retry_failed)
    plan.to_send = plan.items_of(plan.unanswered(valid))
    return plan


#: Keys :func:`plan_work` makes as text and looks up at once: the frame's keys are held as
#: 16 bytes each; 200,000 of them as ``str`` at once were 16.8 MB of planning's peak. Not
#: fewer: each cache look-up reads the cache in its keys' hash order, and 32,768 at a time
#: cost a cached re-run of 200,000 rows 0.07 CPU-s more (0.89 against 0.82).
_KEYS_AT_ONCE = 100_000


def _known_unknowns(plan: WorkPlan, journal: Journal, keys: list[str], resend: bool) -> None:
    routine = plan.prepared.routine.id
    journal.recover(routine)
    unknown = journal.unknown_keys(routine, keys)
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


def _known_failures(plan: WorkPlan, journal: Journal, keys: list[str], retry: bool) -> None:
    if retry:
        return
    failures = journal.failures(plan.prepared.routine.id, keys)
    if not failures:
        return
    answered = pd.notna(plan.answers.status[plan.groups([f.key for f in failures])])
    left = list(compress(failures, ~answered))
    plan.answer(
        [f.key for f in left],
        Status.FAILED,
        [
            f"failed earlier after {f.attempts} attempt(s): {f.error}; "
            "not re-sent: pass retry_failed=True to send it again"
            for f in left
        ],
    )


def answer_landed(plan: WorkPlan, journal: Journal, keys: list[str], since: float) -> WorkItems:
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
    rest_keys = plan.keys.of(rest)
    _known_unknowns(plan, journal, rest_keys, False)
    fresh = [f.key for f in journal.failures(routine, rest_keys) if f.last_at >= since]
    _known_failures(plan, journal, fresh, False)
    return plan.items_of(plan.unanswered(rest))
