"""``claynb.enrich``: a DataFrame in, a new enriched DataFrame out, nothing paid twice.

The steps, each a plain function other tiers can reuse:

1. :func:`claynb.pipeline._normalise.prepare` reduces the frame to its unique, normalised inputs;
   invalid ones are answered ``invalid_input`` on the spot.
2. :func:`~claynb.pipeline._plan.plan_work` answers what is already known without sending anything: cached
   answers (``cached``, cost 0), items on the dead-letter list (``failed``, unless
   ``retry_failed``), items whose earlier send has an unknown outcome (``unknown``, unless
   ``resend_unknown``). What is left is the work to send.
3. The rows to send are claimed (:mod:`claynb.pipeline._claims`): rows another live process
   is sending are not sent again, but taken from its answers once it is done (``cached``,
   cost 0); rows a dead process held go through the journal's resume path.
   A backend (:mod:`claynb.pipeline._backends`) sends this call's rows and returns one result
   per item, having journaled every run so a crash can be resumed.
4. :func:`~claynb.pipeline._merge.merge` fans the results back out to every row, in the frame's own order and
   index; the first row of a group carries the cost, its duplicates show 0.

The input frame is never modified: the output is a new frame (pandas copy-on-write makes
the copy of the input columns free until someone writes to them).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from claynb._connect import clay_of, connect
from claynb._routines import Cost, Routine
from claynb._sync import run_sync
from claynb.pipeline._adopt import adopt_delivered
from claynb.pipeline._backends import get_backend
from claynb.pipeline._budget import Budget, check_priced
from claynb.pipeline._claims import Claims
from claynb.pipeline._journal import Journal
from claynb.pipeline._keys import FrameKeys
from claynb.pipeline._ledger import Ledger, charges_frame, quota_frame
from claynb.pipeline._merge import (
    DEFAULT_PREFIX,
    check_columns,
    complete,
    merge,
    result_fields,
)
from claynb.pipeline._normalise import Prepared, prepare
from claynb.pipeline._plan import WorkPlan, answer_landed, plan_work, resolve_routine
from claynb.pipeline._progress import Progress, make_progress
from claynb.pipeline._work import Answers, Landed, WorkItems


@dataclass
class Call:
    """Everything one enrich call needs, checked before anything is sent."""

    routine: Routine
    plan: WorkPlan
    journal: Journal
    backend: str
    prefix: str
    overwrite: bool
    options: dict[str, Any]
    claims: Claims


def _setup(arguments: dict[str, Any]) -> Call:
    """What ``enrich`` and ``enrich_async`` both do before sending, from their arguments
    (their ``locals()``): check the frame and the output columns, plan the work."""
    df, client = arguments["df"], arguments["client"]
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"enrich needs a pandas DataFrame, got {type(df).__name__}")
    resolved = resolve_routine(
        arguments["routine"],
        client,
        inputs=arguments["inputs"],
        cost=arguments["cost"],
        home=arguments["home"],
    )
    check_columns(df, resolved, arguments["prefix"], arguments["overwrite"])
    prepared = prepare(df, resolved, arguments["inputs"])
    get_backend(arguments["backend"])  # fail on an unknown backend before touching the state
    budget = arguments["budget"]
    check_priced(resolved, budget)
    journal = Journal.open(arguments["home"], plan=budget.price if budget is not None else "growth")
    try:
        journal.bind_clay(clay_of(client))
        _adopt_delivered(journal, client)
        claims = Claims(journal, resolved.id)  # before planning: what lands after, it sees
        work = plan_work(prepared, journal, **{k: arguments[k] for k in _PLANNING})
    except BaseException:
        journal.close()
        raise
    return Call(
        resolved,
        work,
        journal,
        arguments["backend"],
        arguments["prefix"],
        arguments["overwrite"],
        arguments["options"],
        claims,
    )


#: enrich's arguments that decide what is already known (see :func:`plan_work`).
_PLANNING = ("cache", "max_age", "refresh", "retry_failed", "resend_unknown")


def _adopt_delivered(journal: Journal, client: Any) -> None:
    """Before planning: unknown batches that a recorded webhook delivery explains are put
    back in flight, so this call collects them instead of reporting them unknown again."""
    runs, batches, _ = journal.adoptable()
    if not runs or not batches:
        return

    async def adopt() -> None:
        aclient = _client(client).async_twin()
        try:
            await adopt_delivered(journal, aclient)
        finally:
            await aclient.aclose()

    run_sync(adopt)


def _claimed_rounds(call: Call, progress: Progress) -> Iterator[WorkItems]:
    """The items this call sends, round by round: those it could claim; then, once the
    calls holding the others have ended, whatever those left unanswered (rarely any: a
    row they could not pay for, or one a dead process held). Rows answered meanwhile join
    ``call.plan.answers``; in the end ``call.plan.to_send`` lists what was sent."""
    plan, claims, sent = call.plan, call.claims, []
    todo = plan.to_send
    try:
        while len(todo):
            mine, claimed, others = _claim(call, todo)
            if len(mine):
                sent.append(mine)
                yield mine
            claims.release()
            progress.advance(claimed - len(mine))
            if not others:
                break
            claims.wait(others)
            todo = answer_landed(plan, call.journal, others, claims.since)
            progress.advance(len(others) - len(todo))
    finally:
        claims.release()
        # the rounds' groups, not their keys' text (a list of every key, made at the end)
        groups = [s.groups for s in sent] or [np.zeros(0, dtype=np.int64)]
        plan.to_send = sent[0] if len(sent) == 1 else plan.items_of(np.concatenate(groups))


def _claim(call: Call, todo: WorkItems) -> tuple[WorkItems, int, Sequence[str]]:
    """Claim ``todo``: the items this call now holds (less those that landed meanwhile),
    how many it claimed, and the keys other calls hold. The claimed keys' text is not
    kept: the items make their keys again, a run at a time, when they are sent."""
    taken = call.claims.take(todo.frame.listed(todo.groups))  # no str per key held at once
    # the keys it took, in their order: all of them when as many (no second list of keys)
    mine = todo if len(taken.mine) == len(todo) else call.plan.items(taken.mine)
    if taken.stale:  # some call ended since planning: its answers are not re-sent
        mine = answer_landed(call.plan, call.journal, taken.mine, call.claims.since)
    return mine, len(taken.mine), taken.others


def _send(call: Call, send: Any, kwargs: dict[str, Any], landed: Landed) -> None:
    """Every round of items through the backend ``send``, its results into ``landed``.
    (A function of its own: the last round's items are not held on to by ``enrich``
    during the merge.)"""
    with kwargs["progress"]:
        for items in _claimed_rounds(call, kwargs["progress"]):
            landed.extend(send(call.routine, items, **kwargs))


async def _send_async(call: Call, fn: Any, kwargs: dict[str, Any], landed: Landed) -> None:
    """:func:`_send` on the running loop: backends that have a ``run_async`` are awaited,
    others run in a worker thread."""
    run_async = getattr(inspect.getmodule(fn), "run_async", None)
    with kwargs["progress"]:
        rounds = _claimed_rounds(call, kwargs["progress"])
        # claiming and waiting touch SQLite and sleep: off the event loop
        while (items := await asyncio.to_thread(next, rounds, None)) is not None:
            if run_async is not None:
                landed.extend(await run_async(call.routine, items, **kwargs))
            else:
                landed.extend(await asyncio.to_thread(fn, call.routine, items, **kwargs))


def _finish(df: pd.DataFrame, call: Call, landed: Landed) -> pd.DataFrame:
    """The call's results into its answers, then the output frame.

    The merge is the plan's last use, and the output's columns are most of what the call
    allocates (1x the frame), so the call lets go of its plan first (:func:`_plan_taken`)
    and keeps of it only what the merge reads (:class:`_Answered`): the items' keys (16
    bytes each), the key index, the normalised inputs and the landed results are freed
    before the output is built, not held under it (the merge set the call's peak).
    """
    answered = _answered(_plan_taken(call), landed)
    extra = result_fields(call.routine, answered.answers)
    if extra:
        check_columns(df, call.routine, call.prefix, call.overwrite, extra)
    return merge(df, answered, answered.answers, call.prefix, extra)


@dataclass(frozen=True)
class _Answered:
    """What the merge reads of a plan once every group is answered: the routine, each
    row's group (``codes``), the first row of each group (``first``), the answers."""

    routine: Routine
    codes: np.ndarray
    first: np.ndarray
    answers: Answers


def _plan_taken(call: Call) -> WorkPlan:
    """The call's plan, which the call no longer holds (an empty one in its place): the
    caller's reference is then the last, and what the plan holds is freed with it."""
    plan, call.plan = call.plan, _no_plan(call.routine)
    return plan


def _no_plan(routine: Routine) -> WorkPlan:
    """A plan of no rows."""
    none = np.zeros(0, dtype=np.int64)
    keys = FrameKeys.of_keys([])
    prepared = Prepared(routine, none, {}, keys, [], np.zeros(0, dtype=bool))
    return WorkPlan(prepared, Answers(0), WorkItems(none, {}, keys))


def _answered(plan: WorkPlan, landed: Landed) -> _Answered:
    """Every sent item's result (a missing one ``unknown``) put in the plan's answers;
    ``landed`` emptied once they are in. The rest of the plan (the items, their keys and
    inputs, the key index) is let go of as soon as the missing results are made, before
    the results are put by group: what that puts in place reuses its memory, where it
    came on top of it (the finish was the call's peak)."""
    groups = complete(plan.to_send, landed)
    prepared, answers = plan.prepared, plan.answers
    answered = _Answered(prepared.routine, prepared.codes, prepared.first, answers)
    landed.frame = None  # the plan's keys
    del plan, prepared  # the caller's reference was the last (_plan_taken)
    answers.put_landed(groups, landed)
    del groups  # a view of the landed groups: they can be cleared now
    landed.clear()
    return answered


def _backend_kwargs(
    call: Call, client: Any, budget: Budget, progress: Any, concurrency: int | None
) -> dict[str, Any]:
    kwargs = dict(call.options)
    if concurrency is not None:
        kwargs["concurrency"] = concurrency
    return {
        "client": client,
        "guard": budget.guard(),
        "journal": call.journal,
        "progress": make_progress(
            progress, len(call.plan.to_send), f"{call.routine.id} ({call.backend})"
        ),
        "plan": budget.price,
        **kwargs,
    }


def _client(client: Any) -> Any:
    return client if client is not None else connect()


def enrich(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    budget: Budget | None = None,
    cost: Cost | Mapping[str, float] | None = None,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    backend: str = "direct",
    progress: bool | str = True,
    concurrency: int | None = None,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    prefix: str = DEFAULT_PREFIX,
    overwrite: bool = False,
    home: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Enrich every row of ``df`` with ``routine``; a new DataFrame (``df`` is untouched).

    ``routine`` is any Clay routine id (``"function:t_abc123"``): one listed in a routine
    catalogue file (``claynb.toml``) or the emulator's demo catalogue is checked against
    what it declares; any other is sent as it is, its inputs named by ``inputs``, and every
    field that comes back becomes a ``clay_<field>`` column. ``inputs`` maps the routine's
    inputs to columns (``{"email": "Email"}``); when omitted, columns named like the inputs
    are used. ``client`` defaults to :func:`claynb.connect`. ``cost`` declares the most
    one row can cost (``claynb.Cost(actions=1, data_credits=2)``), over what a catalogue
    says: real Clay reports no per-item cost, so the cost columns are estimated from it
    (``clay_cost_source``) unless the client reads an emulator's meters. ``budget`` caps
    what this call (and every other call sharing the Budget object) may spend; a routine
    with no declared cost cannot be held to one, and is refused. ``cache=False`` ignores cached answers (new answers are still stored);
    ``max_age`` (seconds or a timedelta) re-enriches answers older than that;
    ``refresh=True`` re-enriches everything. ``retry_failed=True`` re-sends rows on the
    dead-letter list (see :func:`claynb.failures`). Rows whose earlier send has an unknown
    outcome (a timeout, a dropped connection: Clay may have run and charged them) are
    never re-sent on their own: they are collected once a run-finished webhook recorded by
    a :class:`claynb.WebhookReceiver` names their run, and otherwise stay ``unknown`` until
    ``resend_unknown=True`` sends them again, accepting that Clay may charge them twice.
    ``progress`` is True (a tqdm bar in Jupyter or a terminal, plain text lines elsewhere),
    False, or "bar" / "text"; ``concurrency`` is how many runs are in flight at once.
    Other keyword arguments go to the backend (for "direct": ``batch_size``,
    ``poll_interval``, ``poll_max_interval``, ``poll_timeout``, ``webhook``,
    ``unknown_wait``, and ``max_attempts``: the POSTs a row may ride in, the client's
    retries included, default the client's ``RetryPolicy.max_sends_per_item``).

    Returns every input column, ``clay_<field>`` per result field, and ``clay_status``
    (enriched, no_match, cached, failed, invalid_input, over_budget, unknown),
    ``clay_error``, ``clay_actions``, ``clay_data_credits`` (what this call paid for the row)
    and ``clay_cost_source`` (metered, estimated, unpriced; empty where nothing was sent).
    When ``df`` already has columns the output would write (it was enriched before), the
    call stops before sending anything and names them: pass ``prefix`` (instead of
    ``"clay_"``) to write elsewhere, or ``overwrite=True`` to replace them.
    """
    call = _setup(locals())
    try:
        landed = Landed(call.plan.keys)
        if call.plan.to_send:
            budget = budget if budget is not None else Budget()
            kwargs = _backend_kwargs(call, _client(client), budget, progress, concurrency)
            _send(call, get_backend(backend), kwargs, landed)
        return _finish(df, call, landed)
    finally:
        call.claims.release()  # now, not when the rounds are collected: others wait on them
        call.journal.close()


async def enrich_async(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    budget: Budget | None = None,
    cost: Cost | Mapping[str, float] | None = None,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    backend: str = "direct",
    progress: bool | str = True,
    concurrency: int | None = None,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    prefix: str = DEFAULT_PREFIX,
    overwrite: bool = False,
    home: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`enrich` for async code: ``out = await claynb.enrich_async(df, ...)``.

    Backends that have a ``run_async`` are awaited on the running loop; others run in a
    worker thread so the loop is never blocked.
    """
    call = _setup(locals())
    try:
        landed = Landed(call.plan.keys)
        if call.plan.to_send:
            budget = budget if budget is not None else Budget()
            kwargs = _backend_kwargs(call, _client(client), budget, progress, concurrency)
            await _send_async(call, get_backend(backend), kwargs, landed)
        return _finish(df, call, landed)
    finally:
        call.claims.release()  # now, not when the rounds are collected: others wait on them
        call.journal.close()


def failures(
    routine: str | Routine | None = None, *, home: str | Path | None = None
) -> pd.DataFrame:
    """The dead-letter list: rows that failed, with their inputs, error and attempts.

    ``enrich(..., retry_failed=True)`` re-sends exactly these rows (those in its frame).
    """
    routine_id = routine.id if isinstance(routine, Routine) else routine
    with Journal.open(home) as journal:
        rows = journal.failures(routine_id)
    columns = ["routine", "key", "inputs", "error", "attempts", "first_at", "last_at", "run_id"]
    frame = pd.DataFrame(
        [
            [f.routine, f.key, f.inputs, f.error, f.attempts, f.first_at, f.last_at, f.run_id]
            for f in rows
        ],
        columns=columns,
    )
    for col in ("first_at", "last_at"):
        frame[col] = pd.to_datetime(frame[col].astype("float64"), unit="s", utc=True)
    return frame


def ledger(home: str | Path | None = None) -> Ledger:
    """The ledger of every charge claynb recorded under ``CLAYNB_HOME`` (or ``home``)."""
    with Journal.open(home) as journal:
        return Ledger(journal.read(charges_frame), journal.read(quota_frame))
