"""The waterfall optimiser: in which order to try data providers.

A waterfall tries providers in order and stops at the first hit. Assuming each provider hits
independently of the ones before it (``hit_rate`` is "of the rows still unmatched"), the
match rate is the same for every order, but the expected Data Credits are not:

    E[credits] = sum_i  charge_i * prod_{j before i} (1 - h_j)

where ``charge_i`` is what provider ``i`` costs when a row reaches it: ``credits * h`` if it
charges only on a hit (Clay today), ``credits`` if it charges on a miss too. Swapping two
neighbours changes only their two terms, which gives the rule: **sort by charge / hit
rate, lowest first**. With pay-on-hit pricing that means cheapest provider first, whatever
the hit rates. Small waterfalls are also enumerated outright, so the table shows every order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from claynb._plans import Plan, get_plan
from claynb._routines import Provider, Routine, get_routine

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_ENUMERATED = 7  # 5,040 orders; beyond this only the rule's order and the given one are shown

ProviderLike = Provider | tuple[str, float, float] | dict[str, Any]


def _provider(p: ProviderLike) -> Provider:
    if isinstance(p, Provider):
        return p
    if isinstance(p, dict):
        return Provider(**p)
    name, hit_rate, credits = p
    return Provider(str(name), float(hit_rate), float(credits))


def _check(providers: tuple[Provider, ...]) -> None:
    if not providers:
        raise ValueError("a waterfall needs at least one provider")
    for p in providers:
        if not 0.0 < p.hit_rate <= 1.0:
            raise ValueError(f"provider {p.name!r}: hit_rate must be in (0, 1], got {p.hit_rate}")
        if p.data_credits < 0:
            raise ValueError(f"provider {p.name!r}: data_credits must be >= 0")


def _charge_when_reached(p: Provider) -> float:
    return p.data_credits if p.charge_on_miss else p.data_credits * p.hit_rate


def rule_order(providers: Iterable[Provider]) -> tuple[Provider, ...]:
    """The cheapest order: ascending expected charge per unit of hit rate."""
    return tuple(sorted(providers, key=lambda p: _charge_when_reached(p) / p.hit_rate))


@dataclass(frozen=True)
class WaterfallPlan:
    """Expected cost per row of each order, and the cheapest one."""

    orders: pd.DataFrame
    best: tuple[str, ...]
    routine: Routine
    plan: Plan

    @property
    def best_routine(self) -> Routine:
        by_name = {p.name: p for p in self.routine.providers}
        return self.routine.with_providers(tuple(by_name[n] for n in self.best))

    @property
    def saving_per_row_usd(self) -> float:
        """What the best order saves per row against the order it was given in."""
        given = self.orders[self.orders["given"]]["usd_per_row"].iloc[0]
        return float(given - self.orders["usd_per_row"].min())

    def plot(self, top: int = 12) -> Figure:
        """Expected Data Credits per row for each order, cheapest first; best and given marked."""
        import matplotlib.pyplot as plt

        shown = self.orders.head(top)
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.5))
        colours = [
            "#4A6FB5" if i == 0 else ("#E0A030" if g else "#BBBBBB")
            for i, g in enumerate(shown["given"])
        ]
        labels = [" > ".join(o) for o in shown["order"]]
        ax.barh(range(len(shown)), shown["data_credits_per_row"], color=colours)
        ax.set_yticks(range(len(shown)), labels, fontsize=8)
        ax.invert_yaxis()
        for i, (c, usd) in enumerate(
            zip(shown["data_credits_per_row"], shown["usd_per_row"], strict=True)
        ):
            ax.annotate(
                f"{c:.3f} DC  ${usd:.4f}",
                (c, i),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_xlabel("expected Data Credits per row")
        ax.set_title(
            f"{self.routine.id}: best order in blue, the given order in orange "
            f"(match rate {self.orders['match_rate'].iloc[0]:.1%})"
        )
        fig.tight_layout()
        plt.close(fig)
        return fig


def optimise_waterfall(
    providers: Routine | str | Iterable[ProviderLike], *, plan: str | Plan = "growth"
) -> WaterfallPlan:
    """Price every order of a waterfall and find the cheapest.

    ``providers`` is a :class:`claynb.Routine`, a routine id, or providers given as
    ``Provider`` objects, ``(name, hit_rate, data_credits)`` tuples or dicts. Dollars use
    the plan's rates (``Plan.usd``).
    """
    if isinstance(providers, str):
        routine = get_routine(providers)
    elif isinstance(providers, Routine):
        routine = providers
    else:
        provs = tuple(_provider(p) for p in providers)
        routine = Routine("waterfall", (), (), provs)
    _check(routine.providers)
    plan_obj = get_plan(plan)
    given = routine.providers
    if len(given) <= MAX_ENUMERATED:
        candidates = list(itertools.permutations(given))
    else:
        candidates = list(dict.fromkeys([rule_order(given), given]))
    rows = [_price(routine.with_providers(order), plan_obj, order == given) for order in candidates]
    table = pd.DataFrame(rows).sort_values(["usd_per_row", "data_credits_per_row"], kind="stable")
    table = table.reset_index(drop=True)
    return WaterfallPlan(table, tuple(table["order"].iloc[0]), routine, plan_obj)


def _price(routine: Routine, plan: Plan, given: bool) -> dict[str, Any]:
    cost = routine.expected_cost()
    match = routine.match_rate()
    usd = plan.usd(cost.actions, cost.data_credits)
    return {
        "order": tuple(p.name for p in routine.providers),
        "match_rate": match,
        "actions_per_row": cost.actions,
        "data_credits_per_row": cost.data_credits,
        "usd_per_row": usd,
        "usd_per_match": usd / match if match else math.inf,
        "given": given,
    }
