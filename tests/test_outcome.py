"""Clay's answer for one item becomes one status: the mapping every tier uses (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from claynb._routines import DEFAULT_ROUTINES, Cost, Provider, Routine, workspace_routine
from claynb.pipeline._outcome import estimated_cost, outcome_of
from claynb.pipeline._work import CostSource
from claynb.wire._admin import RunCharges
from claynb.wire._results import parse_item

PERSON = DEFAULT_ROUTINES["enrich-person"]
EMAIL_FINDER = DEFAULT_ROUTINES["find-work-email"]


def answer(raw: dict[str, Any], routine: Routine = PERSON, charges: Any = None) -> Any:
    return outcome_of(
        routine,
        "k",
        parse_item({"id": "k", **raw}),
        run_id="run_1",
        attempts=2,
        charges=charges,
    )


def metered(cost: Cost | None = None, *, ran: bool = True) -> RunCharges:
    """What an emulator's admin view says item ``k`` cost (and whether it ran)."""
    return RunCharges("run_1", {"k": cost or Cost()}, frozenset() if ran else frozenset({"k"}))


def test_a_match_is_enriched_with_what_the_meters_charged() -> None:
    hit = answer(
        {"status": "complete", "result": {"full_name": "Ada"}}, charges=metered(Cost(1, 1))
    )
    assert (hit.status, hit.cost, hit.run_id, hit.attempts) == ("enriched", Cost(1, 1), "run_1", 2)
    assert hit.cost_source == CostSource.METERED and hit.result == {"full_name": "Ada"}


@pytest.mark.parametrize(
    ("result", "status"),
    [
        ({}, "no_match"),
        ({"full_name": None, "title": "", "tags": [], "extra": {}}, "no_match"),
        ({"not_in_the_catalogue": "yes"}, "enriched"),  # any value Clay returns is a match
        ({"employee_count": 0}, "enriched"),
        ({"flag": False}, "enriched"),
    ],
)
def test_a_match_is_any_value_returned(result: dict[str, Any], status: str) -> None:
    assert answer({"status": "complete", "result": result}).status == status


@pytest.mark.parametrize(
    "message",
    ["credits exhausted: not run", "Something went wrong", "Insufficient credits", ""],
)
def test_not_run_for_credits_is_known_from_the_meters_never_the_wording(message: str) -> None:
    raw = {"status": "failed", "error": {"message": message}}
    not_run = answer(raw, charges=metered(ran=False))
    assert (not_run.status, not_run.cost) == ("over_budget", Cost())
    assert not_run.cost_source == CostSource.METERED
    # Without meters (real Clay) the same words are a plain failure: the text is never read.
    plain = answer(raw)
    assert (plain.status, plain.cost, plain.cost_source) == ("failed", Cost(), "estimated")
    # And an item the meters say ran (and failed) is a failure, whatever its wording.
    assert answer(raw, charges=metered()).status == "failed"


@pytest.mark.parametrize(
    "raw",
    [
        {"status": "failed", "error": {"message": "malformed email 'x'"}},
        {"status": "failed", "error": {"message": "provider timeout: not run"}},
        {"status": "failed"},
        {"status": "cancelled"},  # Clay's status set is open: an unhandled outcome
    ],
)
def test_other_failures_are_failed_with_clays_reason(raw: dict[str, Any]) -> None:
    out = answer(raw)
    assert out.status == "failed" and out.error and out.error.startswith("Clay: ")
    if raw["status"] == "cancelled":
        assert "cancelled" in out.error


def test_an_item_missing_from_a_complete_run_is_failed_not_dropped() -> None:
    out = outcome_of(PERSON, "k", None, run_id="run_9")
    assert out.status == "failed" and "run_9" in (out.error or "")
    gone = outcome_of(PERSON, "k", None, run_id="run_9", charges=metered(ran=False))
    assert gone.status == "over_budget"  # credits_out="402": left out of the results


def test_without_meters_costs_are_estimated_from_declared_prices() -> None:
    """Real Clay reports no per-item cost: a match at the worst case, a miss at what
    misses cost, so a budget settled with estimates is never passed."""
    hit = answer({"status": "complete", "result": {"work_email": "a@b.co"}}, EMAIL_FINDER)
    assert (hit.cost, hit.cost_source) == (EMAIL_FINDER.worst_case_cost(), "estimated")
    miss = answer({"status": "complete", "result": {}}, EMAIL_FINDER)
    assert (miss.cost, miss.cost_source) == (Cost(), "estimated")
    charging = Routine(
        "r",
        ("email",),
        ("x",),
        (Provider("a", 0.5, 2.0, charge_on_miss=True), Provider("b", 0.5, 3.0)),
    )
    assert estimated_cost(charging, False) == (Cost(1, 2), CostSource.ESTIMATED)
    assert estimated_cost(charging, True) == (Cost(1, 5), CostSource.ESTIMATED)


def test_a_workspace_routine_is_priced_as_declared_or_unpriced() -> None:
    declared = workspace_routine("function:t_abc123", ("email",), cost=Cost(1, 2))
    hit = answer({"status": "complete", "result": {"anything": 1}}, declared)
    assert (hit.status, hit.cost, hit.cost_source) == ("enriched", Cost(1, 2), "estimated")
    unpriced = workspace_routine("function:t_abc123", ("email",))
    hit = answer({"status": "complete", "result": {"anything": 1}}, unpriced)
    assert (hit.status, hit.cost_source) == ("enriched", "unpriced")
