"""Clay's answer for one item becomes one status: the mapping every tier uses (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from claynb._routines import DEFAULT_ROUTINES, Cost, Provider, Routine
from claynb.pipeline._outcome import outcome_of, price_item
from claynb.wire._results import parse_item

PERSON = DEFAULT_ROUTINES["enrich-person"]
EMAIL_FINDER = DEFAULT_ROUTINES["find-work-email"]


def answer(raw: dict[str, Any], routine: Routine = PERSON) -> Any:
    return outcome_of(routine, "k", parse_item({"id": "k", **raw}), run_id="run_1", attempts=2)


def test_a_match_is_enriched_with_what_clay_charged() -> None:
    hit = answer(
        {
            "status": "complete",
            "result": {
                "full_name": "Ada",
                "_cost": {"actions": 1, "data_credits": 1},
                "_provider": "person-db",
            },
        }
    )
    assert (hit.status, hit.cost, hit.run_id, hit.attempts) == ("enriched", Cost(1, 1), "run_1", 2)
    assert hit.result == {"full_name": "Ada"}  # the emulator's bookkeeping keys are gone


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


def test_a_named_provider_is_a_match_even_with_no_fields() -> None:
    assert answer({"status": "complete", "result": {"_provider": "person-db"}}).status == "enriched"


def test_items_clay_did_not_run_for_credits_are_over_budget_only_when_uncharged() -> None:
    not_run = answer({"status": "failed", "error": {"message": "credits exhausted: not run"}})
    assert (not_run.status, not_run.cost) == ("over_budget", Cost())
    assert not_run.error == "Clay: credits exhausted: not run"
    charged = answer(
        {
            "status": "failed",
            "result": {"_cost": {"actions": 1, "data_credits": 2}},
            "error": {"message": "credits exhausted"},
        }
    )
    assert (charged.status, charged.cost) == ("failed", Cost(1, 2))  # it was charged: a failure


@pytest.mark.parametrize(
    "raw",
    [
        {"status": "failed", "error": {"message": "malformed email 'x'"}},
        {"status": "failed", "error": {"message": "provider timeout: not run"}},  # not credits
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


def test_pricing_without_a_reported_cost() -> None:
    """Real Clay reports no per-item cost: the routine's catalogue prices it."""
    assert price_item(EMAIL_FINDER, True, "email-finder-b") == Cost(1, 2)
    assert price_item(EMAIL_FINDER, False, None) == Cost()
    guess = price_item(EMAIL_FINDER, True, None)
    assert guess.actions == 1 and 1 < guess.data_credits < 3
    charging = Routine(
        "r",
        ("email",),
        ("x",),
        (Provider("a", 0.5, 2.0, charge_on_miss=True), Provider("b", 0.5, 3.0)),
    )
    assert price_item(charging, False, None) == Cost(1, 2)
    assert price_item(charging, True, "b") == Cost(1, 5)
    real = answer(
        {"status": "complete", "result": {"work_email": "a@b.co", "_provider": "email-finder-c"}},
        EMAIL_FINDER,
    )
    assert real.cost == Cost(1, 3)
    miss = answer({"status": "complete", "result": {}}, charging)
    assert (miss.status, miss.cost) == ("no_match", Cost(1, 2))
