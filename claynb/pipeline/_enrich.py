"""``claynb.enrich``: a DataFrame in, a new enriched DataFrame out, nothing paid twice.

The steps, each a plain function other tiers can reuse:

1. :func:`claynb.pipeline._normalise.prepare` reduces the frame to its unique, normalised inputs;
   invalid ones are answered ``invalid_input`` on the spot.
2. :func:`plan_work` answers what is already known without sending anything: cached
   answers (``cached``, cost 0), items on the dead-letter list (``failed``, unless
   ``retry_failed``), items whose earlier send has an unknown outcome (``unknown``, unless
   ``resend_unknown``). What is left is the work to send.
3. A backend (:mod:`claynb.pipeline._backends`) sends it and returns one result per item, having
   journaled every run so a crash can be resumed.
4. :func:`merge` fans the results back out to every row, in the frame's own order and
   index; the first row of a group carries the cost, its duplicates show 0.

The input frame is never modified: the output is a new frame (pandas copy-on-write makes
the copy of the input columns free until someone writes to them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from claynb._routines import DEFAULT_ROUTINES, Routine
from claynb.pipeline._backends import get_backend
from claynb.pipeline._budget import Budget
from claynb.pipeline._cache import max_age_seconds
from claynb.pipeline._journal import Journal
from claynb.pipeline._normalise import Prepared, prepare
from claynb.pipeline._progress import make_progress
from claynb.pipeline._work import (
    CACHED,
    FAILED,
    INVALID_INPUT,
    STATUSES,
    UNKNOWN,
    ItemResult,
    WorkItem,
)

T = TypeVar("T")

PREFIX = "clay_"
STATUS_COLUMNS = ("clay_status", "clay_error", "clay_actions", "clay_data_credits")


def catalogue_of(client: Any) -> Mapping[str, Routine]:
    """The routines a client knows: an emulator's own catalogue, else the default one."""
    for owner in (client, getattr(client, "emulator", None)):
        # An Emulator keeps its catalogue in its settings (it has no public accessor).
        for holder in (owner, getattr(owner, "_settings", None)):
            routines = getattr(holder, "routines", None)
            if isinstance(routines, Mapping) and routines:
                return routines
    return DEFAULT_ROUTINES


def resolve_routine(routine: str | Routine, client: Any = None) -> Routine:
    """A Routine object by id (a ValueError naming the known ids) or as given."""
    if isinstance(routine, Routine):
        return routine
    catalogue = catalogue_of(client)
    if routine in catalogue:
        return catalogue[routine]
    known = ", ".join(sorted(catalogue))
    raise ValueError(
        f"unknown routine {routine!r}; known routines: {known} "
        f"(or pass a claynb.Routine describing your own)"
    )


@dataclass
class WorkPlan:
    """What a call will do: answers already known per group, and the items to send."""

    prepared: Prepared
    known: dict[int, ItemResult] = field(default_factory=dict)
    to_send: list[WorkItem] = field(default_factory=list)
    group_of: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.known.values() if r.status == status)


def plan_work(
    prepared: Prepared,
    journal: Journal,
    *,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    retry_failed: bool = False,
    resend_unknown: bool = False,
) -> WorkPlan:
    """Answer every group that needs no request; list the items that do. Sends nothing."""
    routine, plan = prepared.routine, WorkPlan(prepared)
    for g, reason in enumerate(prepared.reasons):
        if reason is not None:
            plan.known[g] = ItemResult(f"invalid:{g}", INVALID_INPUT, error=reason, attempts=0)
    plan.group_of = {key: g for g, key in enumerate(prepared.keys) if key is not None}
    keys = list(plan.group_of)
    if cache and not refresh:
        for key, hit in journal.cached(
            routine.id, keys, max_age_s=max_age_seconds(max_age)
        ).items():
            plan.known[plan.group_of[key]] = ItemResult(key, CACHED, hit.result, attempts=0)
    pending = [k for k in keys if plan.group_of[k] not in plan.known]
    _known_unknowns(plan, journal, pending, resend_unknown)
    _known_failures(plan, journal, pending, retry_failed)
    plan.to_send = [
        WorkItem(k, prepared.inputs[plan.group_of[k]])
        for k in keys
        if plan.group_of[k] not in plan.known
    ]
    return plan


def _known_unknowns(plan: WorkPlan, journal: Journal, keys: list[str], resend: bool) -> None:
    routine = plan.prepared.routine.id
    journal.recover(routine)
    unknown = journal.unknown_keys(routine, keys)
    if resend:
        journal.forget_unknown(routine, list(unknown))
        return
    for key, why in unknown.items():
        plan.known[plan.group_of[key]] = ItemResult(
            key,
            UNKNOWN,
            attempts=0,
            error=f"{why}; not re-sent, since Clay may already have charged it: "
            "pass resend_unknown=True to send it again",
        )


def _known_failures(plan: WorkPlan, journal: Journal, keys: list[str], retry: bool) -> None:
    if retry:
        return
    for failure in journal.failures(plan.prepared.routine.id, keys):
        g = plan.group_of[failure.key]
        if g in plan.known:
            continue
        plan.known[g] = ItemResult(
            failure.key,
            FAILED,
            attempts=0,
            error=f"failed earlier after {failure.attempts} attempt(s): {failure.error}; "
            "not re-sent: pass retry_failed=True to send it again",
        )


def _complete(items: Sequence[WorkItem], results: Sequence[ItemResult]) -> dict[str, ItemResult]:
    """One result per item, whatever the backend returned: a missing one is ``unknown``."""
    by_key = {r.key: r for r in results if r.status in STATUSES}
    for item in items:
        if item.key not in by_key:
            by_key[item.key] = ItemResult(
                item.key, UNKNOWN, attempts=0, error="the backend returned no result for this row"
            )
    return by_key


def _text_dtype() -> Any:
    """The dtype read_csv gives text: "str" on pandas 3; object on pandas 2, where "str"
    means NumPy strings and would turn a missing value into the text 'None'."""
    return "str" if int(pd.__version__.split(".")[0]) >= 3 else object


def _column(values: list[Any], codes: np.ndarray) -> Any:
    """Per-group values fanned out to rows, as a pandas array with a sensible dtype."""
    groups = np.empty(len(values), dtype=object)
    groups[:] = values
    rows = groups[codes] if len(codes) else np.empty(0, dtype=object)
    present = [v for v in values if v is not None]
    if not present:
        return pd.array(rows, dtype=object)
    if pd.api.types.infer_dtype(present, skipna=True) == "string":
        return pd.array(rows, dtype=_text_dtype())
    try:
        return pd.array(rows)  # nullable Int64 / Float64 / boolean keep ints as ints
    except (TypeError, ValueError):
        return pd.array(rows, dtype=object)


def merge(df: pd.DataFrame, prepared: Prepared, by_group: Mapping[int, ItemResult]) -> pd.DataFrame:
    """A new frame: ``df``'s columns, then ``clay_<field>`` per result field and the status
    columns, every row answered from its group's result, in ``df``'s order and index."""
    routine, codes = prepared.routine, prepared.codes
    results = [by_group[g] for g in range(len(prepared.keys))]
    cols: dict[str, Any] = {}
    for name in routine.fields:
        cols[PREFIX + name] = _column(
            [r.result.get(name) if r.result else None for r in results], codes
        )
    cols["clay_status"] = _column([r.status for r in results], codes)
    cols["clay_error"] = _column([r.error for r in results], codes)
    first = prepared.first
    for column, attr in (("clay_actions", "actions"), ("clay_data_credits", "data_credits")):
        per_group = np.array([getattr(r.cost, attr) for r in results], dtype="float64")
        cols[column] = np.where(first, per_group[codes], 0.0) if len(codes) else np.zeros(0)
    return df.assign(**cols)


@dataclass
class Call:
    """Everything one enrich call needs, checked before anything is sent."""

    routine: Routine
    plan: WorkPlan
    journal: Journal
    backend: str
    options: dict[str, Any]


def _setup(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None,
    client: Any,
    backend: str,
    home: str | Path | None,
    plan_name: Any,
    cache: bool,
    max_age: Any,
    refresh: bool,
    retry_failed: bool,
    resend_unknown: bool,
    options: dict[str, Any],
) -> Call:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"enrich needs a pandas DataFrame, got {type(df).__name__}")
    resolved = resolve_routine(routine, client)
    prepared = prepare(df, resolved, inputs)
    get_backend(backend)  # fail on an unknown backend before touching the state file
    journal = Journal.open(home, plan=plan_name)
    try:
        _adopt_delivered(journal, client)
        work = plan_work(
            prepared,
            journal,
            cache=cache,
            max_age=max_age,
            refresh=refresh,
            retry_failed=retry_failed,
            resend_unknown=resend_unknown,
        )
    except BaseException:
        journal.close()
        raise
    return Call(resolved, work, journal, backend, options)


def _adopt_delivered(journal: Journal, client: Any) -> None:
    """Before planning: unknown batches that a recorded webhook delivery explains are put
    back in flight, so this call collects them instead of reporting them unknown again."""
    runs, batches, _ = journal.adoptable()
    if not runs or not batches:
        return
    from claynb.direct._engine import adopt_delivered

    async def adopt() -> None:
        aclient, owned = async_client_for(_client(client), reuse=False)
        try:
            await adopt_delivered(journal, aclient)
        finally:
            if owned:
                await aclient.aclose()

    run_sync(adopt)


def _finish(df: pd.DataFrame, call: Call, results: Sequence[ItemResult]) -> pd.DataFrame:
    by_key = _complete(call.plan.to_send, results)
    by_group = dict(call.plan.known)
    for key, result in by_key.items():
        g = call.plan.group_of.get(key)
        if g is not None:
            by_group[g] = result
    return merge(df, call.plan.prepared, by_group)


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
    if client is not None:
        return client
    from claynb import connect  # type: ignore[attr-defined]

    return connect()


def enrich(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    budget: Budget | None = None,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    backend: str = "direct",
    progress: bool | str = True,
    concurrency: int | None = None,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    home: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Enrich every row of ``df`` with ``routine``; a new DataFrame (``df`` is untouched).

    ``inputs`` maps the routine's inputs to columns (``{"email": "Email"}``); when omitted,
    columns named like the inputs are used. ``client`` defaults to :func:`claynb.connect`.
    ``budget`` caps what this call (and every other call sharing the Budget object) may
    spend. ``cache=False`` ignores cached answers (new answers are still stored);
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
    ``poll_interval``, ``poll_max_interval``, ``poll_timeout``, ``max_attempts``,
    ``webhook``, ``unknown_wait``).

    Returns every input column, ``clay_<field>`` per result field, and ``clay_status``
    (enriched, no_match, cached, failed, invalid_input, over_budget, unknown),
    ``clay_error``, ``clay_actions``, ``clay_data_credits`` (what this call paid for the row).
    """
    call = _setup(
        df,
        routine,
        inputs,
        client,
        backend,
        home,
        _plan_of(budget),
        cache,
        max_age,
        refresh,
        retry_failed,
        resend_unknown,
        options,
    )
    try:
        results: list[ItemResult] = []
        if call.plan.to_send:
            budget = budget if budget is not None else Budget()
            kwargs = _backend_kwargs(call, _client(client), budget, progress, concurrency)
            with kwargs["progress"]:
                results = get_backend(backend)(call.routine, call.plan.to_send, **kwargs)
        return _finish(df, call, results)
    finally:
        call.journal.close()


async def enrich_async(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    budget: Budget | None = None,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    backend: str = "direct",
    progress: bool | str = True,
    concurrency: int | None = None,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    home: str | Path | None = None,
    **options: Any,
) -> pd.DataFrame:
    """:func:`enrich` for async code: ``out = await claynb.enrich_async(df, ...)``.

    Backends that have a ``run_async`` are awaited on the running loop; others run in a
    worker thread so the loop is never blocked.
    """
    call = _setup(
        df,
        routine,
        inputs,
        client,
        backend,
        home,
        _plan_of(budget),
        cache,
        max_age,
        refresh,
        retry_failed,
        resend_unknown,
        options,
    )
    try:
        results: list[ItemResult] = []
        if call.plan.to_send:
            budget = budget if budget is not None else Budget()
            kwargs = _backend_kwargs(call, _client(client), budget, progress, concurrency)
            fn = get_backend(backend)
            run_async = getattr(inspect.getmodule(fn), "run_async", None)
            with kwargs["progress"]:
                if run_async is not None:
                    results = await run_async(call.routine, call.plan.to_send, **kwargs)
                else:
                    results = await asyncio.to_thread(fn, call.routine, call.plan.to_send, **kwargs)
        return _finish(df, call, results)
    finally:
        call.journal.close()


def _plan_of(budget: Budget | None) -> Any:
    return budget.price if budget is not None else "growth"


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


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end from sync code, even under a running event loop.

    Without a running loop in this thread, ``asyncio.run``. With one (a Jupyter cell), a
    worker thread with its own loop, since blocking the notebook's loop would deadlock it.
    An interrupt (the notebook's stop button) cancels the work and waits for it to wind
    down, so the journal is left consistent.
    """

    async def main() -> T:
        return await make()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def worker() -> T:
        loop = asyncio.new_event_loop()
        box["loop"] = loop
        try:
            box["task"] = loop.create_task(main())
            return loop.run_until_complete(box["task"])
        finally:
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="claynb-enrich") as pool:
        future = pool.submit(worker)
        try:
            return future.result()
        except KeyboardInterrupt:
            loop, task = box.get("loop"), box.get("task")
            if loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)
            concurrent.futures.wait([future])
            raise


def async_client_for(client: Any, *, reuse: bool = True) -> tuple[Any, bool]:
    """An AsyncClayClient to use on this loop, and whether we made it (and must close it).

    A sync :class:`claynb.ClayClient` is mirrored with the same key, URL and policies: the
    smallest adapter between the public client and this asyncio engine. An
    AsyncClayClient is used as it is when ``reuse`` (we run on the caller's loop), and
    mirrored otherwise: its connections belong to the loop that opened them.
    """
    from claynb.wire._client import AsyncClayClient

    if reuse and isinstance(client, AsyncClayClient):
        return client, False
    api_key = getattr(client, "_api_key", None)
    if api_key is None:
        raise TypeError(
            f"client must be a claynb.ClayClient or AsyncClayClient, got {type(client).__name__}"
        )
    mirror = AsyncClayClient(
        api_key,
        base_url=client.base_url,
        timeout=client.timeout,
        retry=client.retry,
        rate_limit_rps=client.rate_limit_rps,
        source_policy=client.source_policy,
        home=client.home,
    )
    return mirror, True
