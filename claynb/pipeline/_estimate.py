"""What an enrichment would cost, worked out without sending anything.

The frame goes through the same steps as :func:`claynb.enrich` up to the point where a
request would be sent (normalise, de-duplicate, validate, look up the cache, the
dead-letter list and the journal), so "to send" is exactly what ``enrich`` would send.
Costs are priced per row to send:

- **worst case**: every row charged the routine's maximum (what a Budget reserves);
- **expected**: the routine's catalogue rates (a declared routine's worst case, since
  nothing else is known of it), or, once the ledger has seen at least ``min_observed``
  rows of this routine, the match rate and cost per row actually observed.
  ``Estimate.basis`` says which was used, and ``Estimate.cost_source`` whether those
  observations were ``metered`` (an emulator's meters) or themselves ``estimated``.

A routine with no declared price is ``unpriced``: its cost figures are NaN, not zero.
Dollars are attributed under a plan (:mod:`claynb._plans`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from claynb._plans import Plan, get_plan
from claynb._routines import Cost, Routine
from claynb.pipeline._enrich import failures
from claynb.pipeline._journal import Journal
from claynb.pipeline._normalise import prepare
from claynb.pipeline._plan import plan_work, resolve_routine
from claynb.pipeline._work import CostSource, Status

# Rows the ledger must have seen for a routine before its observed rates replace the
# catalogue's: fewer would make the estimate swing with every small test run.
MIN_OBSERVED = 20


@dataclass(frozen=True)
class Estimate:
    """Rows, what would be sent, and the expected and worst-case cost of sending it."""

    routine: str
    plan: str
    rows: int
    unique: int
    cached: int
    invalid: int
    failed: int
    unknown: int
    to_send: int
    match_rate: float
    basis: str
    expected_actions: float
    expected_data_credits: float
    expected_usd: float
    worst_actions: float
    worst_data_credits: float
    worst_usd: float
    cost_source: str = CostSource.ESTIMATED

    @property
    def expected(self) -> Cost:
        return Cost(self.expected_actions, self.expected_data_credits)

    @property
    def worst_case(self) -> Cost:
        return Cost(self.worst_actions, self.worst_data_credits)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """Expected and worst case side by side: Actions, Data Credits, dollars."""
        return pd.DataFrame(
            {
                "expected": [self.expected_actions, self.expected_data_credits, self.expected_usd],
                "worst case": [self.worst_actions, self.worst_data_credits, self.worst_usd],
            },
            index=["Actions", "Data Credits", f"USD ({self.plan})"],
        )

    def __str__(self) -> str:
        return (
            f"{self.routine}: {self.rows} rows, {self.unique} unique, {self.cached} cached, "
            f"{self.invalid} invalid, {self.failed} failed earlier, {self.unknown} unknown; "
            f"{self.to_send} to send. Expected {self.expected_actions:g} Actions, "
            f"{self.expected_data_credits:g} Data Credits (${self.expected_usd:.2f}); "
            f"worst case {self.worst_actions:g} Actions, {self.worst_data_credits:g} Data "
            f"Credits (${self.worst_usd:.2f}) on the {self.plan} plan. Match rate "
            f"{_rate(self.match_rate)} ({self.basis}; {self.cost_source})."
        )

    def _repr_html_(self) -> str:
        counts = (
            f"<p><b>{self.routine}</b>: {self.rows} rows, {self.unique} unique, "
            f"{self.cached} cached, {self.invalid} invalid, {self.failed} failed earlier, "
            f"{self.unknown} unknown: <b>{self.to_send} to send</b>. Match rate "
            f"{_rate(self.match_rate)} ({self.basis}; {self.cost_source}).</p>"
        )
        return counts + self.to_frame().round(2)._repr_html_()  # type: ignore[operator]


def _rate(rate: float) -> str:
    return "unknown" if np.isnan(rate) else f"{rate:.0%}"


def expected_per_row(
    routine: Routine, journal: Journal, min_observed: int = MIN_OBSERVED
) -> tuple[Cost, float, str, CostSource]:
    """Expected cost of one row sent, its match rate, where those came from, and whether
    the figures behind them were metered or estimated."""
    rows, matched, actions, credits, source = journal.observed_rates(routine.id)
    if rows >= max(1, min_observed):
        return (
            Cost(actions / rows, credits / rows),
            matched / rows,
            f"observed in the ledger over {rows} rows",
            CostSource(source or CostSource.ESTIMATED),
        )
    if not routine.priced:
        nan = float("nan")
        return Cost(nan, nan), routine.match_rate(), "no declared cost", CostSource.UNPRICED
    basis = "the routine's catalogue rates" if routine.providers else "its declared worst case"
    return routine.expected_cost(), routine.match_rate(), basis, CostSource.ESTIMATED


def _worst(routine: Routine) -> Cost:
    """The worst case per row; NaN for an unpriced routine (unknown, not free)."""
    return routine.worst_case_cost() if routine.priced else Cost(float("nan"), float("nan"))


def estimate(
    df: pd.DataFrame,
    routine: str | Routine,
    inputs: Mapping[str, Any] | None = None,
    *,
    client: Any = None,
    plan: str | Plan | None = None,
    budget: Any = None,
    cost: Cost | Mapping[str, float] | None = None,
    cache: bool = True,
    max_age: timedelta | float | None = None,
    refresh: bool = False,
    retry_failed: bool = False,
    resend_unknown: bool = False,
    min_observed: int = MIN_OBSERVED,
    home: str | Path | None = None,
    **_ignored: Any,
) -> Estimate:
    """What ``enrich`` with the same arguments would send and cost. Sends nothing.

    ``plan`` prices dollars (default: the budget's plan, else Growth). ``client`` is only
    used for its routine catalogue; no request is made. ``cost`` declares the routine's
    worst case per row, as for ``enrich``; ``Estimate.cost_source`` says whether the
    expected figures rest on metered or estimated charges (NaN figures: ``unpriced``).
    """
    resolved = resolve_routine(routine, client, inputs=inputs, cost=cost, home=home)
    price = get_plan(plan if plan is not None else getattr(budget, "plan", None) or "growth")
    prepared = prepare(df, resolved, inputs)
    with Journal.open(home, plan=price) as journal:
        work = plan_work(
            prepared,
            journal,
            cache=cache,
            max_age=max_age,
            refresh=refresh,
            retry_failed=retry_failed,
            resend_unknown=resend_unknown,
            read_answers=False,  # what is cached is all an estimate needs
        )
        per_row, rate, basis, source = expected_per_row(resolved, journal, min_observed)
    n = len(work.to_send)
    invalid_group = np.array([r is not None for r in prepared.reasons], dtype=bool)
    invalid_rows = int(invalid_group[prepared.codes].sum()) if prepared.rows else 0
    expected, worst = per_row * n, _worst(resolved) * n
    return Estimate(
        resolved.id,
        price.name,
        prepared.rows,
        len(prepared.valid_groups),
        work.count(Status.CACHED),
        invalid_rows,
        work.count(Status.FAILED),
        work.count(Status.UNKNOWN),
        n,
        rate,
        basis,
        expected.actions,
        expected.data_credits,
        price.usd(expected.actions, expected.data_credits),
        worst.actions,
        worst.data_credits,
        price.usd(worst.actions, worst.data_credits),
        str(source),
    )


def frame_failures(
    df: pd.DataFrame,
    routine: str | Routine | None = None,
    inputs: Mapping[str, Any] | None = None,
    *,
    home: str | Path | None = None,
) -> pd.DataFrame:
    """The rows of this frame that failed.

    On an enriched frame (it has ``clay_status``), its failed rows. Given a routine and
    ``inputs``, the dead-letter entries for this frame's rows (what ``retry_failed=True``
    would re-send). Otherwise the whole dead-letter list (:func:`claynb.failures`), of one
    routine when given.
    """
    if routine is not None and inputs is not None:
        resolved = resolve_routine(routine, inputs=inputs, home=home)
        prepared = prepare(df, resolved, inputs)
        keys = {k for k in prepared.keys if k is not None}
        listed = failures(resolved, home=home)
        return listed[listed["key"].isin(keys)].reset_index(drop=True)
    if "clay_status" in df.columns:
        return df[df["clay_status"] == Status.FAILED]
    return failures(routine, home=home)
