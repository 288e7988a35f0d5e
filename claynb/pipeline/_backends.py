"""Backends: the ways a list of work items reaches Clay, chosen by name.

``claynb.enrich`` does everything that does not depend on *how* Clay is reached
(normalising, de-duplicating, the cache, the dead-letter list, merging back into a frame)
and hands the rest to a backend:

    "direct" -> claynb.direct:run          runs of up to 100 items, many in flight, from this process
    "queue"  -> claynb.queue:run     RQ jobs on Redis, executed by ``claynb worker`` processes
    "events" -> claynb.events:run    signed webhooks in, an event bus, a dead-letter subject

Backends are imported only when chosen, so a missing extra (rq, nats) breaks only its
own backend, with a :class:`~claynb.ConfigError` that says what to install.

The backend contract
--------------------
A backend is a plain function::

    def run(routine: Routine, items: WorkItems, *, client, guard: BudgetGuard,
            journal: Journal, progress: Progress, **options) -> Landed | list[ItemResult]

- ``items`` are unique (one per key), valid, normalised, and neither cached nor known to
  have failed or to be in an unknown state: every one must be accounted for. They come
  as columns (:class:`~claynb.pipeline._work.WorkItems`: their groups of the frame;
  ``keys_of(groups)`` and ``inputs(groups)`` make a run's keys and inputs when it is
  sent); read as a sequence they are
  :class:`~claynb.pipeline._work.WorkItem` s, made a chunk at a time, which is how the
  queue and event tiers take them.
- It returns **exactly one** result per item (any order; matched by ``key``): a
  :class:`~claynb.pipeline._work.Landed` (the direct tier: each run's results taken into
  columns as it lands, so a large call holds no dict per answer until the merge), or a
  list of :class:`~claynb.pipeline._work.ItemResult` (the queue and event tiers), which
  ``enrich`` feeds into the same columns. ``status`` (a :class:`~claynb.pipeline._work.Status`) is one
  of ``enriched``, ``no_match``, ``failed``, ``over_budget``, ``unknown``; ``error`` says
  why for the last three; ``attempts`` counts sends.
- Clay's answer for an item becomes its result through
  :func:`claynb.pipeline._outcome.outcome_of`, in every tier, so the same answer reads the
  same whichever tier sent it. ``cost`` is what Clay charged for the item: the emulator
  reports it (``"_cost"``); real Clay reports no per-item cost, so the item is priced from
  the routine's catalogue (the provider named by ``"_provider"`` when present, else the
  routine's expected cost per row).
- Money: before a batch is sent, ``guard.reserve(routine.worst_case_cost() * len(batch))``
  must succeed (:func:`claynb.pipeline._budget.reserve_largest` splits a batch to what is
  affordable); after, ``guard.settle(reserved, actual)``, or ``guard.release(reserved)``
  when nothing was sent. Rows that cannot be paid for come back ``over_budget``. A 402
  from Clay (``CreditsExhausted``) stops sending; rows not sent come back
  ``over_budget`` and finished rows are kept. No exception escapes for a 402.
- The journal (:class:`claynb.pipeline._journal.Journal`, SQLite under ``CLAYNB_HOME``, usable from
  any process) is written in this order so a crash at any moment loses nothing and pays
  nothing twice:

  1. ``batch = journal.intent(routine.id, backend, {key: inputs}, reserved)`` BEFORE the
     request that could start a run is sent (``journal.abandon(batch)`` if Clay refused it);
  2. ``journal.started(batch, run_id)`` as soon as Clay answers with a run id, before
     anything else happens to it;
  3. ``journal.finished(run_id, results, ...)`` when its results are in: one transaction
     marks the run finished, caches enriched and no-match results, records failures in
     the dead-letter list, and records the charge in the ledger.
  4. ``journal.unknown(batch, error)`` when the send may or may not have reached
     Clay (``OutcomeUnknown``); those rows come back ``unknown`` and are never re-sent
     automatically.

  On entry, a backend collects the runs ``journal.in_flight(routine.id, keys)`` lists
  instead of sending their items again (a previous process died while they ran).
- ``progress.advance(rows, cost)`` as rows finish (see :mod:`claynb.pipeline._progress`).
- ``plan`` (a :class:`claynb.Plan`) is always passed in ``options``: it prices charges
  in dollars for the ledger (``journal.finished(..., plan=plan)``).
- ``options`` are otherwise backend-specific keyword arguments passed through ``enrich(**options)``;
  a backend must reject ones it does not know with a ``TypeError`` naming them.

Pieces a backend (or a worker process) can reuse as plain functions
--------------------------------------------------------------------
- normalising: :func:`claynb.pipeline._normalise.prepare` (frame -> unique work) and
  :func:`claynb.pipeline._normalise.normalise_inputs` (one item);
- reading Clay's answers: :func:`claynb.pipeline._outcome.outcome_of` (one item ->
  ItemResult, priced when Clay does not say);
- merging: :func:`claynb.pipeline._merge.merge` (answers as columns -> the output frame;
  :meth:`~claynb.pipeline._work.Landed.add` takes ItemResults into columns);
- the cache: :func:`claynb.pipeline._cache.cache_get` (item by item, each answer's dict) /
  :func:`~claynb.pipeline._cache.cache_hits` (many keys, answers as columns) /
  :func:`~claynb.pipeline._cache.cache_put` (or ``Journal.cached``), the dead-letter list: ``Journal.failures`` / ``record_failures``;
- the ledger: :func:`claynb.pipeline._ledger.record` (``Journal.finished`` already calls it);
- money: :class:`claynb.pipeline._budget.LocalGuard`, :func:`claynb.pipeline._budget.reserve_largest`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> "module:function"; imported lazily by :func:`get_backend`.
BACKENDS: dict[str, str] = {
    "direct": "claynb.direct:run",
    "queue": "claynb.queue:run",
    "events": "claynb.events:run",
}

# What to install when a backend's module cannot be imported.
_EXTRAS = {"queue": "claynb[queue]", "events": "claynb[events]"}

Backend = Callable[..., Any]


def get_backend(name: str) -> Backend:
    """The backend function registered under ``name``; a ConfigError when there is none."""
    from claynb.wire._exceptions import ConfigError

    if callable(name):
        return name
    try:
        target = BACKENDS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in BACKENDS)
        raise ConfigError(f"unknown backend {name!r}; choose one of {known}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(name, "claynb")
        raise ConfigError(f"backend {name!r} is not available ({exc}); install {extra}") from exc
    try:
        return getattr(module, attr)  # type: ignore[no-any-return]
    except AttributeError:
        raise ConfigError(
            f"backend {name!r} is not available: {module_name} has no {attr}()"
        ) from None
