"""claynb.Budget and its in-process guard: atomic, exact, never crossed."""

from __future__ import annotations

import random
import threading

import pytest

import claynb
from claynb._routines import Cost
from claynb.pipeline._budget import LocalGuard, reserve_largest


def test_reserve_refuses_what_would_cross_any_cap() -> None:
    guard = claynb.Budget(actions=10, data_credits=5).guard()
    assert guard.reserve(Cost(4, 5))
    assert not guard.reserve(Cost(1, 0.5))  # credits would reach 5.5
    assert guard.reserve(Cost(6, 0))  # actions exactly met
    assert not guard.reserve(Cost(0.001, 0))


def test_settle_frees_the_difference_and_counts_the_spend() -> None:
    budget = claynb.Budget(data_credits=10)
    guard = budget.guard()
    assert guard.reserve(Cost(10, 10))
    assert not guard.reserve(Cost(0, 1))
    guard.settle(Cost(10, 10), Cost(6, 6))
    assert budget.spent == Cost(6, 6) and budget.reserved == Cost()
    assert budget.remaining()["data_credits"] == 4
    assert guard.reserve(Cost(0, 4)) and not guard.reserve(Cost(0, 1))
    guard.release(Cost(0, 4))
    assert budget.reserved == Cost()


def test_usd_cap_uses_the_plan() -> None:
    budget = claynb.Budget(usd=1.0, plan="launch")
    plan = claynb.get_plan("launch")
    one_credit = plan.usd(0, 1)
    n = int(1.0 // one_credit)
    guard = budget.guard()
    assert reserve_largest(guard, Cost(0, 1), 10_000) == n
    assert budget.dollars(budget.reserved) <= 1.0


def test_reserve_largest_splits_to_what_is_affordable() -> None:
    budget = claynb.Budget(actions=100, data_credits=37)
    guard = budget.guard()
    assert reserve_largest(guard, Cost(1, 1), 100) == 37
    assert reserve_largest(guard, Cost(1, 1), 100) == 0
    assert reserve_largest(guard, Cost(1, 1), 0) == 0


def test_reserve_largest_works_with_any_guard() -> None:
    class Plain:
        """A guard without the ``affordable`` hint, like a remote one might be."""

        def __init__(self) -> None:
            self.inner = LocalGuard(claynb.Budget(data_credits=10))

        def reserve(self, cost: Cost) -> bool:
            return self.inner.reserve(cost)

    guard = Plain()
    k = reserve_largest(guard, Cost(0, 1), 64)
    assert 0 < k <= 10
    assert guard.inner.budget.reserved == Cost(0, k)


def test_never_crossed_by_many_threads() -> None:
    budget = claynb.Budget(actions=1_000, data_credits=777)
    barrier = threading.Barrier(16)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        guard = budget.guard()
        barrier.wait()
        for _ in range(400):
            unit = Cost(1, rng.choice([1, 2, 3]))
            k = reserve_largest(guard, unit, rng.randint(1, 10))
            if k:
                worst = unit * k
                guard.settle(
                    worst, Cost(worst.actions, worst.data_credits * rng.choice([0, 0.5, 1]))
                )

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent.data_credits <= 777 and budget.spent.actions <= 1_000
    assert budget.reserved == Cost()
    # Money ran out on one meter: everything affordable was spent.
    assert budget.spent.actions >= 1_000 - 30 or budget.spent.data_credits >= 777 - 30


def test_budget_repr_and_validation() -> None:
    budget = claynb.Budget(data_credits=500)
    assert "data_credits=500" in repr(budget) and "growth" in repr(budget)
    assert "unlimited" in repr(claynb.Budget())
    with pytest.raises(ValueError, match="negative"):
        claynb.Budget(actions=-1)
    with pytest.raises(ValueError, match="unknown plan"):
        claynb.Budget(plan="platinum")


def test_set_caps_raises_a_spent_budget_and_keeps_its_spend() -> None:
    budget = claynb.Budget(data_credits=3)
    guard = budget.guard()
    held = claynb.Cost(1, 3)
    assert guard.reserve(held)
    guard.settle(held, held)
    assert not guard.reserve(claynb.Cost(1, 1))  # spent to the cap
    budget.set_caps(data_credits=5)
    assert budget.spent == claynb.Cost(1, 3)
    assert guard.reserve(claynb.Cost(1, 2)) and not guard.reserve(claynb.Cost(1, 1))
    with pytest.raises(ValueError, match="data_credits"):
        budget.set_caps(data_credits=-1)
