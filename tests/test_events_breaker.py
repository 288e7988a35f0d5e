"""The credit circuit breaker and the reconciler's schedule: pure logic, real budget guard."""

from __future__ import annotations

from claynb._routines import Cost
from claynb.events._breaker import CLOSED, OPEN, CreditBreaker
from claynb.events._reconciler import Reconciler
from claynb.events._tier import raise_budget
from claynb.pipeline._budget import Budget


def test_a_batch_the_budget_can_pay_for_is_admitted_and_reserved() -> None:
    budget = Budget(data_credits=100)
    breaker = CreditBreaker(budget.guard())
    admission = breaker.admit(Cost(1, 10), 5)
    assert admission.admitted == 5 and not admission.rejected
    assert admission.reserved == Cost(5, 50)
    assert budget.reserved == Cost(5, 50)
    assert breaker.state == CLOSED


def test_the_breaker_opens_with_the_reason_and_admits_only_what_fits() -> None:
    budget = Budget(data_credits=37)
    breaker = CreditBreaker(budget.guard())
    admission = breaker.admit(Cost(1, 1), 100, "enrich-person items")
    assert admission.admitted == 37
    assert breaker.state == OPEN
    assert "63 of 100 enrich-person items" in (admission.reason or "")
    assert budget.reserved.data_credits == 37  # never past the cap, not by one unit


def test_the_breaker_closes_again_when_the_budget_is_raised() -> None:
    budget = Budget(data_credits=0)
    breaker = CreditBreaker(budget.guard(), clock=lambda: 1.0)
    assert breaker.admit(Cost(1, 1), 10).admitted == 0
    assert breaker.is_open
    assert breaker.admit(Cost(1, 1), 10).admitted == 0  # still open: nothing changed
    raise_budget(budget, data_credits=50)
    admission = breaker.admit(Cost(1, 1), 10)
    assert admission.admitted == 10 and breaker.state == CLOSED
    assert [t.state for t in breaker.transitions] == [OPEN, CLOSED]


def test_a_402_from_clay_trips_the_breaker() -> None:
    breaker = CreditBreaker(Budget().guard())
    breaker.trip("Clay refused: 402")
    assert breaker.is_open and "402" in breaker.reason


def test_raise_budget_keeps_what_was_spent() -> None:
    budget = Budget(data_credits=10)
    guard = budget.guard()
    assert guard.reserve(Cost(0, 10))
    guard.settle(Cost(0, 10), Cost(0, 10))
    raise_budget(budget, data_credits=15)
    assert not guard.reserve(Cost(0, 6))
    assert guard.reserve(Cost(0, 5))


def test_the_reconciler_polls_only_overdue_runs_and_backs_off() -> None:
    rec = Reconciler(timeout_s=10, interval_s=2, max_interval_s=5)
    rec.watch("a", started_at=0)
    rec.watch("b", started_at=5)
    assert rec.overdue(9.9) == []
    assert rec.overdue(10) == ["a"]
    rec.polled("a", now=10)  # still running: next look in 2 s
    assert rec.overdue(11) == []
    assert rec.overdue(15) == ["b", "a"] or rec.overdue(15) == ["a", "b"]
    rec.polled("a", now=15)  # 3 s
    rec.polled("a", now=18)  # 4.5 s
    rec.polled("a", now=22.5)  # capped at 5 s
    assert rec.watches["a"].due_at == 27.5
    rec.completed_by_poll("a")
    rec.forget("b")
    assert rec.overdue(100) == [] and rec.reconciled == {"a"}
